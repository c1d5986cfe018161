//! Reading an update struct by struct (`protocol/src/structs.rs`): the bounds and kinds the
//! cargo-mutants run found without a test (docs/testing.md, "Mutation testing"). Malformed bytes
//! close the connection (1007); content the schema has no place for is refused and the
//! connection stays open, so which of the two an input is matters.

use tafel_protocol::structs::{decode, Content, DecodeError, Id, TypeKind, MAX_VALUE_DEPTH};
use yrs::block::{
    BLOCK_ITEM_ANY_REF_NUMBER, BLOCK_ITEM_BINARY_REF_NUMBER, BLOCK_ITEM_DOC_REF_NUMBER,
    BLOCK_ITEM_JSON_REF_NUMBER, HAS_ORIGIN, HAS_PARENT_SUB,
};
use yrs::encoding::write::Write;
use yrs::updates::encoder::{Encoder, EncoderV1};
use yrs::{ArrayPrelim, Doc, Map, ReadTxn, StateVector, Transact};

/// The widest client id JavaScript's numbers hold exactly (2^53 - 1).
const WIDEST: u64 = (1 << 53) - 1;

/// One struct under `client` at clock 0: `info`'s content ref, placed under root `m` at key `k`
/// (or after `origin`), then `content` as written.
fn one(client: u64, origin: Option<u64>, content_ref: u8, content: &[u8]) -> Vec<u8> {
    let mut e = EncoderV1::new();
    e.write_var(1u32);
    e.write_var(1u32);
    e.write_var(client);
    e.write_var(0u32);
    match origin {
        Some(c) => {
            e.write_info(content_ref | HAS_ORIGIN);
            // The id as v1 writes it (client, clock), by hand: yrs's own `ClientID` asserts
            // 53 bits.
            e.write_var(c);
            e.write_var(0u32);
        }
        None => {
            e.write_info(content_ref | HAS_PARENT_SUB);
            e.write_parent_info(true);
            e.write_string("m");
            e.write_string("k");
        }
    }
    e.write_all(content);
    e.write_var(0u32);
    e.to_vec()
}

/// `null` as one plain value.
fn null() -> Vec<u8> {
    vec![1, 126]
}

/// One plain value: `levels` nested arrays around `null`.
fn nested(levels: usize) -> Vec<u8> {
    let mut v = vec![1];
    v.extend([117u8, 1].repeat(levels));
    v.push(126);
    v
}

#[test]
fn client_ids_up_to_53_bits_are_read_wider_ones_are_malformed() {
    let d = decode(&one(WIDEST, None, BLOCK_ITEM_ANY_REF_NUMBER, &null()))
        .expect("the widest JavaScript client id is read");
    assert_eq!(d.structs[0].id, Id::new(WIDEST, 0));
    assert_eq!(
        decode(&one(WIDEST + 1, None, BLOCK_ITEM_ANY_REF_NUMBER, &null())),
        Err(DecodeError::Malformed(
            "client id wider than 53 bits".into()
        ))
    );
}

#[test]
fn origins_up_to_53_bits_are_read_wider_ones_are_malformed() {
    let chars = {
        let mut e = EncoderV1::new();
        e.write_string("x");
        e.to_vec()
    };
    let string = yrs::block::BLOCK_ITEM_STRING_REF_NUMBER;
    let d = decode(&one(5, Some(WIDEST), string, &chars)).expect("read");
    assert_eq!(d.structs[0].origin, Some(Id::new(WIDEST, 0)));
    match decode(&one(5, Some(WIDEST + 1), string, &chars)) {
        Err(DecodeError::Malformed(_)) => {}
        other => panic!("an origin wider than 53 bits is malformed, got {other:?}"),
    }
}

#[test]
fn plain_values_nest_exactly_max_value_depth_levels_and_no_more() {
    let deepest = decode(&one(
        5,
        None,
        BLOCK_ITEM_ANY_REF_NUMBER,
        &nested(MAX_VALUE_DEPTH),
    ))
    .expect("32 levels are read");
    assert!(matches!(&deepest.structs[0].content, Content::Any(v) if v.len() == 1));
    assert_eq!(
        decode(&one(
            5,
            None,
            BLOCK_ITEM_ANY_REF_NUMBER,
            &nested(MAX_VALUE_DEPTH + 1)
        )),
        Err(DecodeError::TooDeep)
    );
}

/// One plain value: `levels` nested one-entry maps around `null`.
fn nested_maps(levels: usize) -> Vec<u8> {
    let mut v = vec![1];
    v.extend([118u8, 1, 1, b'k'].repeat(levels));
    v.push(126);
    v
}

#[test]
fn nested_maps_count_toward_the_depth_bound_like_arrays() {
    let ok = decode(&one(
        5,
        None,
        BLOCK_ITEM_ANY_REF_NUMBER,
        &nested_maps(MAX_VALUE_DEPTH),
    ));
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(
        decode(&one(
            5,
            None,
            BLOCK_ITEM_ANY_REF_NUMBER,
            &nested_maps(MAX_VALUE_DEPTH + 1)
        )),
        Err(DecodeError::TooDeep)
    );
}

#[test]
fn legacy_json_binary_and_subdocuments_are_unsupported_not_malformed() {
    for (what, content_ref) in [
        ("legacy JSON", BLOCK_ITEM_JSON_REF_NUMBER),
        ("binary", BLOCK_ITEM_BINARY_REF_NUMBER),
        ("subdocument", BLOCK_ITEM_DOC_REF_NUMBER),
    ] {
        match decode(&one(5, None, content_ref, &[1, 1, b'x'])) {
            Err(DecodeError::Unsupported(_)) => {}
            other => panic!("{what}: expected unsupported, got {other:?}"),
        }
    }
}

#[test]
fn a_y_array_is_read_as_an_array_type() {
    let doc = Doc::with_client_id(7);
    doc.get_or_insert_map("m")
        .insert(&mut doc.transact_mut(), "a", ArrayPrelim::default());
    let d = decode(
        &doc.transact()
            .encode_state_as_update_v1(&StateVector::default()),
    )
    .expect("read");
    assert_eq!(d.structs[0].content, Content::Type(TypeKind::Array));
}

#[test]
fn an_empty_deletion_range_deletes_nothing() {
    let mut e = EncoderV1::new();
    e.write_var(0u32); // no structs
    e.write_var(1u32); // delete set: one client
    e.write_var(5u64);
    e.write_var(2u32); // two ranges
    e.write_var(3u32); // clock 3, length 0
    e.write_var(0u32);
    e.write_var(8u32); // clock 8, length 2
    e.write_var(2u32);
    let d = decode(&e.to_vec()).expect("read");
    assert_eq!(d.deletes, vec![(5, 8, 10)]);
}

/// The bounded value reader agrees with yrs's own `Any::decode` on every value kind of lib0's
/// table (tags 116 to 127).
#[test]
fn every_plain_value_kind_reads_as_yrs_reads_it() {
    use std::collections::{BTreeSet, HashMap};
    use yrs::encoding::read::Cursor;
    use yrs::updates::decoder::DecoderV1;
    use yrs::{Any, Number};
    let values = [
        Any::Undefined,
        Any::Null,
        Any::Bool(true),
        Any::Bool(false),
        Any::from("héé"),
        Any::Number(Number::Int(-5)),
        Any::Number(Number::Int(1 << 40)),
        Any::Number(Number::Int((1 << 53) - 1)),
        Any::Number(Number::Int(i64::MAX - 1)),
        Any::Number(Number::Float(0.5)),
        Any::Number(Number::Float(0.1)),
        Any::from(HashMap::from([("a".to_owned(), Any::from("b"))])),
        Any::from(vec![Any::Null, Any::from(1.5)]),
        Any::Buffer(vec![1u8, 2, 3].into()),
    ];
    let mut tags = BTreeSet::new();
    for v in values {
        let mut e = EncoderV1::new();
        e.write_any(&v);
        let bytes = e.to_vec();
        tags.insert(bytes[0]);
        let want = Any::decode(&mut DecoderV1::new(Cursor::new(&bytes))).expect("yrs reads it");
        let mut content = vec![1];
        content.extend(&bytes);
        let d = decode(&one(5, None, BLOCK_ITEM_ANY_REF_NUMBER, &content))
            .unwrap_or_else(|e| panic!("{v:?}: {e}"));
        assert_eq!(d.structs[0].content, Content::Any(vec![want]), "{v:?}");
    }
    assert_eq!(
        tags,
        (116..=127).collect::<BTreeSet<u8>>(),
        "every tag is written"
    );
    // An unknown tag is malformed.
    assert!(matches!(
        decode(&one(5, None, BLOCK_ITEM_ANY_REF_NUMBER, &[1, 115])),
        Err(DecodeError::Malformed(_))
    ));
}
