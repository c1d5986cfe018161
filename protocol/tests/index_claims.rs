//! The ownership index's claims (docs/schema.md, "The ownership index"), one a test: the cases the
//! cargo-mutants run of `protocol/src/index.rs` found without a test (docs/testing.md, "Mutation
//! testing").

use serde_json::{json, Value};
use tafel_protocol::index::{Index, NodeRef, Owner, Shape, Zone};
use tafel_protocol::judge;
use tafel_protocol::structs::{decode, TypeKind};
use tafel_protocol::DocName;
use yrs::{Array, Doc, IdSet, Map, ReadTxn, StateVector, Text, Transact, ID};

fn ids(ranges: &[(u64, u32, u32)]) -> IdSet {
    let mut set = IdSet::new();
    for (c, a, b) in ranges {
        set.insert(ID::new(yrs::ClientID::new(*c), *a), b - a);
    }
    set
}

fn stored_deletions(index: &Index) -> Value {
    let v: Value = serde_json::from_slice(&index.to_bytes()).expect("the index is JSON");
    v["deleted"].clone()
}

#[test]
fn stored_deletions_come_back_identically() {
    let mut index = Index::new();
    index.apply(
        Default::default(),
        None,
        &ids(&[(5, 0, 3), (7, 10, 12), (7, 20, 21)]),
    );
    let want = json!([[5, 0, 3], [7, 10, 12], [7, 20, 21]]);
    assert_eq!(stored_deletions(&index), want);
    let back = Index::from_bytes(&index.to_bytes()).expect("the stored index reads back");
    assert_eq!(stored_deletions(&back), want);
    assert_eq!(back, index);
}

#[test]
fn a_stored_index_drops_empty_inverted_and_too_wide_deletion_ranges() {
    let mut index = Index::new();
    index.apply(Default::default(), None, &ids(&[(5, 0, 3)]));
    let mut v: Value = serde_json::from_slice(&index.to_bytes()).expect("the index is JSON");
    v["deleted"] = json!([
        [5, 0, 3],
        [6, 4, 4],
        [6, 9, 2],
        [9_007_199_254_740_992u64, 0, 1],
        [9_007_199_254_740_991u64, 0, 1]
    ]);
    let back = Index::from_bytes(&serde_json::to_vec(&v).expect("JSON"))
        .expect("a stored index with odd ranges still reads");
    assert_eq!(
        stored_deletions(&back),
        json!([[5, 0, 3], [9_007_199_254_740_991u64, 0, 1]])
    );
}

#[test]
fn a_type_below_a_too_deep_type_is_too_deep_and_nothing_nests_in_a_card_text() {
    let canvas = judge::schema(DocName::Canvas, 16);
    for kind in [TypeKind::Map, TypeKind::Array, TypeKind::Text] {
        assert_eq!(
            canvas.child_zone(&Zone::TooDeep, Some("k"), kind),
            Zone::TooDeep
        );
        assert_eq!(canvas.child_zone(&Zone::TooDeep, None, kind), Zone::TooDeep);
        let text = Zone::Field {
            root: "cards".into(),
            key: "k".into(),
            field: "text".into(),
        };
        assert_eq!(canvas.child_zone(&text, None, kind), Zone::Outside);
    }
}

/// One update that starts two free roots, one as a map and one as a list: each root takes the
/// shape of its own first use.
#[test]
fn each_free_root_takes_the_shape_of_its_own_first_use() {
    let doc = Doc::with_client_id(5);
    doc.get_or_insert_map("kaart")
        .insert(&mut doc.transact_mut(), "k", 1);
    doc.get_or_insert_array("lijst")
        .push_back(&mut doc.transact_mut(), 2);
    let update = decode(
        &doc.transact()
            .encode_state_as_update_v1(&StateVector::default()),
    )
    .expect("decodes");
    let schema = judge::schema(DocName::Party(tafel_protocol::Party::Employee), 16);
    let index = Index::new();
    let owner = Owner::Participant("p".into());
    let r = index
        .resolve(&update, &schema, Some(&owner))
        .expect("resolves");
    let root = |name: &str| -> NodeRef {
        r.placed
            .iter()
            .filter_map(|p| p.node)
            .find(|n| matches!(&r.node(&index, *n).zone, Zone::Root(x) if x.as_ref() == name))
            .expect("the root is placed")
    };
    assert_eq!(r.shape(&index, root("kaart")), Shape::Map);
    assert_eq!(r.shape(&index, root("lijst")), Shape::Seq);
    // Once applied, the index holds both shapes.
    let mut index = index;
    index.apply(r, Some(&owner), &IdSet::new());
    assert_eq!(index.root("kaart").map(|n| n.shape), Some(Shape::Map));
    assert_eq!(index.root("lijst").map(|n| n.shape), Some(Shape::Seq));
}

// ---------------------------------------------------------------------------------------------
// Hand-made updates: the structs yrs itself would not write in this order or shape.

use tafel_protocol::index::{ResolveError, Schema};
use tafel_protocol::structs::{Content, Id};
use yrs::block::{
    BLOCK_GC_REF_NUMBER, BLOCK_ITEM_ANY_REF_NUMBER, BLOCK_ITEM_DELETED_REF_NUMBER,
    BLOCK_ITEM_STRING_REF_NUMBER, HAS_ORIGIN, HAS_PARENT_SUB,
};
use yrs::encoding::write::Write;
use yrs::updates::encoder::{Encoder, EncoderV1};
use yrs::Any;

/// Where a hand-made item says it is.
enum At<'a> {
    Root(&'a str, Option<&'a str>),
    Type((u64, u32), Option<&'a str>),
    After((u64, u32)),
}

/// What a hand-made struct holds.
enum Holds<'a> {
    Values(&'a [Any]),
    Chars(&'a str),
    Deleted(u32),
}

fn item(at: At<'_>, holds: Holds<'_>) -> Vec<u8> {
    let mut e = EncoderV1::new();
    let mut info = match holds {
        Holds::Values(_) => BLOCK_ITEM_ANY_REF_NUMBER,
        Holds::Chars(_) => BLOCK_ITEM_STRING_REF_NUMBER,
        Holds::Deleted(_) => BLOCK_ITEM_DELETED_REF_NUMBER,
    };
    match &at {
        At::Root(_, Some(_)) | At::Type(_, Some(_)) => info |= HAS_PARENT_SUB,
        At::After(_) => info |= HAS_ORIGIN,
        _ => {}
    }
    e.write_info(info);
    match at {
        At::Root(root, key) => {
            e.write_parent_info(true);
            e.write_string(root);
            if let Some(k) = key {
                e.write_string(k);
            }
        }
        At::Type((c, k), key) => {
            e.write_parent_info(false);
            e.write_left_id(&ID::new(yrs::ClientID::new(c), k));
            if let Some(k) = key {
                e.write_string(k);
            }
        }
        At::After((c, k)) => e.write_left_id(&ID::new(yrs::ClientID::new(c), k)),
    }
    match holds {
        Holds::Values(v) => {
            e.write_len(v.len() as u32);
            for x in v {
                e.write_any(x);
            }
        }
        Holds::Chars(s) => e.write_string(s),
        Holds::Deleted(n) => e.write_len(n),
    }
    e.to_vec()
}

fn gc(len: u32) -> Vec<u8> {
    let mut e = EncoderV1::new();
    e.write_info(BLOCK_GC_REF_NUMBER);
    e.write_len(len);
    e.to_vec()
}

/// An update of `(client, first clock, structs)` blocks and an empty delete set, decoded.
fn update(clients: &[(u64, u32, Vec<Vec<u8>>)]) -> tafel_protocol::structs::Decoded {
    let mut e = EncoderV1::new();
    e.write_var(clients.len() as u32);
    for (client, clock, structs) in clients {
        e.write_var(structs.len() as u32);
        e.write_var(*client);
        e.write_var(*clock);
        for s in structs {
            e.write_all(s);
        }
    }
    e.write_var(0u32);
    decode(&e.to_vec()).expect("a hand-made update decodes")
}

fn party() -> Schema {
    judge::schema(DocName::Party(tafel_protocol::Party::Employee), 16)
}

fn me() -> Owner {
    Owner::Participant("p".into())
}

/// Resolves and applies, as the server does with an accepted update.
fn take(index: &mut Index, u: &tafel_protocol::structs::Decoded) {
    let r = index.resolve(u, &party(), Some(&me())).expect("resolves");
    index.apply(r, Some(&me()), &IdSet::new());
}

#[test]
fn a_partly_held_struct_is_trimmed_to_its_new_part() {
    let mut index = Index::new();
    take(
        &mut index,
        &update(&[(5, 0, vec![item(At::Root("t", None), Holds::Chars("ab"))])]),
    );
    let r = index
        .resolve(
            &update(&[(5, 0, vec![item(At::Root("t", None), Holds::Chars("abcd"))])]),
            &party(),
            Some(&me()),
        )
        .expect("resolves");
    assert_eq!(r.placed.len(), 1);
    let s = &r.placed[0].s;
    assert_eq!((s.id, s.len), (Id::new(5, 2), 2), "only the new characters");
    assert_eq!(s.origin, Some(Id::new(5, 1)), "after its own first part");
    assert_eq!((s.parent.clone(), s.key.clone()), (None, None));
    assert!(
        matches!(&r.node(&index, r.placed[0].node.expect("placed")).zone,
        Zone::Root(t) if t.as_ref() == "t")
    );
    // A struct that starts inside what is held, not at clock 0.
    index.apply(r, Some(&me()), &IdSet::new());
    let r = index
        .resolve(
            &update(&[(5, 2, vec![item(At::After((5, 1)), Holds::Chars("cdef"))])]),
            &party(),
            Some(&me()),
        )
        .expect("resolves");
    let s = &r.placed[0].s;
    assert_eq!((s.id, s.len), (Id::new(5, 4), 2), "only e and f");
    assert_eq!(s.origin, Some(Id::new(5, 3)));
    // Plain values are cut the same way.
    let mut index = Index::new();
    let vals = |n: u32| (1..=n).map(|i| Any::from(f64::from(i))).collect::<Vec<_>>();
    take(
        &mut index,
        &update(&[(
            5,
            0,
            vec![item(At::Root("l", None), Holds::Values(&vals(2)))],
        )]),
    );
    let r = index
        .resolve(
            &update(&[(
                5,
                0,
                vec![item(At::Root("l", None), Holds::Values(&vals(5)))],
            )]),
            &party(),
            Some(&me()),
        )
        .expect("resolves");
    let s = &r.placed[0].s;
    assert_eq!((s.id, s.len), (Id::new(5, 2), 3));
    assert_eq!(s.content, Content::Any(vals(5)[2..].to_vec()));
    index.apply(r, Some(&me()), &IdSet::new());
    assert_eq!(index.clock(5), 5);
}

#[test]
fn an_origin_just_past_a_new_struct_is_missing() {
    let index = Index::new();
    let ab = || item(At::Root("t", None), Holds::Chars("ab"));
    let u = update(&[
        (6, 0, vec![item(At::After((5, 2)), Holds::Chars("x"))]),
        (5, 0, vec![ab()]),
    ]);
    assert_eq!(
        index.resolve(&u, &party(), Some(&me())).unwrap_err(),
        ResolveError::Missing
    );
    // Control: after the last character of the same struct it is placed.
    let u = update(&[
        (6, 0, vec![item(At::After((5, 1)), Holds::Chars("x"))]),
        (5, 0, vec![ab()]),
    ]);
    let r = index.resolve(&u, &party(), Some(&me())).expect("resolves");
    assert!(r.placed.iter().all(|p| p.node.is_some()));
}

#[test]
fn content_whose_parent_is_a_new_plain_value_is_not_a_type() {
    let index = Index::new();
    let u = update(&[(
        5,
        0,
        vec![
            item(At::Root("m", Some("a")), Holds::Values(&[Any::from("x")])),
            item(
                At::Type((5, 0), Some("b")),
                Holds::Values(&[Any::from("y")]),
            ),
        ],
    )]);
    assert_eq!(
        index.resolve(&u, &party(), Some(&me())).unwrap_err(),
        ResolveError::NotAType
    );
}

#[test]
fn content_whose_new_parent_is_garbage_collected_or_deleted_is_dropped() {
    let index = Index::new();
    for parent in [gc(1), item(At::Root("m", Some("a")), Holds::Deleted(1))] {
        let u = update(&[(
            5,
            0,
            vec![
                parent,
                item(
                    At::Type((5, 0), Some("b")),
                    Holds::Values(&[Any::from("y")]),
                ),
            ],
        )]);
        let r = index.resolve(&u, &party(), Some(&me())).expect("resolves");
        let child = r
            .placed
            .iter()
            .find(|p| p.s.id == Id::new(5, 1))
            .expect("the child is there");
        assert_eq!(child.node, None, "no place: yrs drops it as well");
    }
}

#[test]
fn content_whose_held_parent_is_garbage_collected_is_dropped_under_a_held_value_refused() {
    let mut index = Index::new();
    take(
        &mut index,
        &update(&[(
            5,
            0,
            vec![
                gc(3),
                item(At::Root("m", Some("a")), Holds::Values(&[Any::from("x")])),
            ],
        )]),
    );
    let child = |parent: (u64, u32)| {
        update(&[(
            5,
            4,
            vec![item(
                At::Type(parent, Some("b")),
                Holds::Values(&[Any::from("y")]),
            )],
        )])
    };
    let r = index
        .resolve(&child((5, 1)), &party(), Some(&me()))
        .expect("resolves");
    assert_eq!(r.placed.len(), 1);
    assert_eq!(r.placed[0].node, None);
    assert_eq!(
        index
            .resolve(&child((5, 3)), &party(), Some(&me()))
            .unwrap_err(),
        ResolveError::NotAType
    );
}

#[test]
fn keyed_and_keyless_content_in_one_free_root_is_refused() {
    let index = Index::new();
    let keyed = || item(At::Root("r", Some("a")), Holds::Values(&[Any::from("x")]));
    let keyless = || item(At::Root("r", None), Holds::Values(&[Any::from("y")]));
    let u = update(&[(5, 0, vec![keyed(), keyless()])]);
    assert_eq!(
        index.resolve(&u, &party(), Some(&me())).unwrap_err(),
        ResolveError::MixedRoot("r".into())
    );
    // And across updates: the root keeps the shape of its first use.
    let mut index = Index::new();
    take(&mut index, &update(&[(5, 0, vec![keyed()])]));
    assert_eq!(
        index
            .resolve(&update(&[(5, 1, vec![keyless()])]), &party(), Some(&me()))
            .unwrap_err(),
        ResolveError::MixedRoot("r".into())
    );
    take(&mut index, &update(&[(5, 1, vec![keyed()])]));
}

/// docs/schema.md: clock ranges are "merged while they run on (a sentence typed into one text
/// is one range)"; a type and a keyed entry are ranges of their own.
#[test]
fn a_sentence_typed_into_one_text_is_one_clock_range() {
    let doc = Doc::with_client_id(5);
    let m = doc.get_or_insert_map("m");
    let mut index = Index::new();
    let mut sv = StateVector::default();
    let step = |index: &mut Index, sv: &mut StateVector| {
        take(
            index,
            &decode(&doc.transact().encode_diff_v1(sv)).expect("decodes"),
        );
        *sv = doc.transact().state_vector();
    };
    let text = m.insert(&mut doc.transact_mut(), "t", yrs::TextPrelim::new(""));
    step(&mut index, &mut sv);
    for (i, c) in "een zin".chars().enumerate() {
        text.insert(&mut doc.transact_mut(), i as u32, &c.to_string());
        step(&mut index, &mut sv);
    }
    let v: Value = serde_json::from_slice(&index.to_bytes()).expect("the index is JSON");
    let ranges = v["recs"]["5"].as_object().expect("client 5 has ranges");
    let lens: Vec<(String, u64)> = ranges
        .iter()
        .map(|(start, r)| (start.clone(), r["len"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(
        lens,
        vec![("0".to_string(), 1), ("1".to_string(), 7)],
        "the text type, then one range of seven characters: {ranges:?}"
    );
    assert_eq!(index.clock(5), 8);
}

/// The schema's map roots (`meta`, `themes`) and the items root are maps from their first use,
/// so keyless content there is mixing; any other root's shape is open until it is used.
#[test]
fn map_roots_and_the_items_root_are_maps_before_their_first_use() {
    let canvas = judge::schema(DocName::Canvas, 16);
    for root in ["meta", "themes", "cards", "vrij"] {
        let doc = Doc::with_client_id(5);
        doc.get_or_insert_text(root)
            .push(&mut doc.transact_mut(), "x");
        let u = decode(
            &doc.transact()
                .encode_state_as_update_v1(&StateVector::default()),
        )
        .expect("decodes");
        let r = Index::new().resolve(&u, &canvas, None);
        if root == "vrij" {
            let r = r.expect("an open root takes keyless content (the judge refuses the root)");
            let node = r
                .new_nodes
                .iter()
                .find(|n| matches!(&n.zone, Zone::Root(x) if x.as_ref() == root))
                .expect("a new root node");
            assert_eq!(node.shape, Shape::Unknown);
        } else {
            assert_eq!(
                r.unwrap_err(),
                ResolveError::MixedRoot(root.into()),
                "{root}"
            );
        }
    }
}
