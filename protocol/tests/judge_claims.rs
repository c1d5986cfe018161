//! The update judge's rules, one claim a test (docs/schema.md, "What the server accepts"): the
//! boundaries and cases the cargo-mutants run of `protocol/src/judge.rs` found without a test
//! (docs/testing.md, "Mutation testing"). Each test names the claim it shows; each refusal is
//! checked by its code, next to a positive control that the same kind of edit goes in.

mod support;
use support::raw_item;
use tafel_protocol::index::{Index, Owner};
use tafel_protocol::judge::{
    self, Accepted, Code, Context, Limits, Refusal, Rejection, Writer, YrsView,
};
use tafel_protocol::policy::SessionPolicy;
use tafel_protocol::template::Template;
use tafel_protocol::{DocName, Role};
use yrs::encoding::write::Write;
use yrs::updates::encoder::{Encoder, EncoderV1};
use yrs::{
    Any, Array, Doc, Map, MapPrelim, MapRef, Out, ReadTxn, StateVector, Text, TextPrelim, TextRef,
    Transact, TransactionMut,
};

fn template() -> Template {
    Template::from_json(include_str!(
        "../../server/templates/cao-di-organisatie.json"
    ))
    .expect("the template parses")
}

const EMPLOYEE: u64 = 101;
const EMPLOYER: u64 = 202;
const FACILITATOR: u64 = 9;

fn owner(role: Role) -> Owner {
    Owner::Participant(format!("{role}").into())
}

/// The server's side: the live document and its index, judged and applied as `document.rs`
/// does it.
struct Server {
    doc: Doc,
    index: Index,
    name: DocName,
    session: SessionPolicy,
    template: Template,
    limits: Limits,
    doc_bytes: u64,
}

impl Server {
    fn new(name: DocName) -> Server {
        let mut index = Index::new();
        index.claim_for_server(1);
        Server {
            doc: Doc::with_client_id(1),
            index,
            name,
            session: SessionPolicy::default(),
            template: template(),
            limits: Limits::default(),
            doc_bytes: 0,
        }
    }

    fn sv(&self) -> StateVector {
        self.doc.transact().state_vector()
    }

    fn state(&self) -> Vec<u8> {
        self.doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    fn send(&mut self, role: Role, bytes: &[u8]) -> Result<Accepted, Rejection> {
        let owner = owner(role);
        let tags = |_: &str, _: &str| false;
        let writer = Writer {
            role,
            owner: owner.clone(),
            can_write: role != Role::Observer,
            owns_tag: &tags,
        };
        let accepted = {
            let txn = self.doc.transact();
            let view = YrsView { txn: &txn };
            let ctx = Context {
                doc: self.name,
                index: &self.index,
                view: &view,
                template: &self.template,
                session: &self.session,
                limits: self.limits,
                doc_bytes: self.doc_bytes,
            };
            judge::judge(&ctx, &writer, bytes)?
        };
        if !accepted.resolved.is_empty() {
            let u = tafel_protocol::wire::decode_update(bytes).expect("accepted bytes decode");
            let mut txn = self.doc.transact_mut();
            txn.apply_update(u).expect("accepted bytes apply");
            let ds = txn.delete_set().clone();
            drop(txn);
            self.index
                .apply(accepted.resolved.clone(), Some(&owner), &ds);
        }
        Ok(accepted)
    }

    /// Sends and expects it to be taken with a change.
    fn takes(&mut self, role: Role, bytes: &[u8]) -> Accepted {
        match self.send(role, bytes) {
            Ok(a) => {
                assert!(!a.resolved.is_empty(), "taken, but as a change of nothing");
                a
            }
            Err(e) => panic!("expected the update to be taken, got {e:?}"),
        }
    }

    /// Sends and expects a refusal that changes nothing.
    fn refusal(&mut self, role: Role, bytes: &[u8]) -> Refusal {
        let before = self.state();
        match self.send(role, bytes) {
            Err(Rejection::Refused(r)) => {
                assert_eq!(before, self.state(), "a refusal changes nothing");
                r
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn code(&mut self, role: Role, bytes: &[u8]) -> Code {
        self.refusal(role, bytes).code
    }

    fn card(&self, key: &str) -> Option<MapRef> {
        let cards = self.doc.get_or_insert_map("cards");
        match cards.get(&self.doc.transact(), key) {
            Some(Out::YMap(m)) => Some(m),
            _ => None,
        }
    }

    fn field(&self, key: &str, field: &str) -> Option<Out> {
        let card = self.card(key)?;
        let txn = self.doc.transact();
        card.get(&txn, field)
    }
}

/// A participant's replica, synced from the server.
struct Client {
    doc: Doc,
}

impl Client {
    fn new(id: u64, server: &Server) -> Client {
        let c = Client {
            doc: Doc::with_client_id(id),
        };
        c.pull(server);
        c
    }

    fn pull(&self, server: &Server) {
        let diff = server
            .doc
            .transact()
            .encode_diff_v1(&self.doc.transact().state_vector());
        let u = tafel_protocol::wire::decode_update(&diff).expect("the server's diff decodes");
        self.doc
            .transact_mut()
            .apply_update(u)
            .expect("the server's diff applies");
    }

    /// Runs an edit and returns exactly what is new to the server.
    fn edit(&self, server: &Server, f: impl FnOnce(&Doc)) -> Vec<u8> {
        f(&self.doc);
        self.doc.transact().encode_diff_v1(&server.sv())
    }

    /// A new item under `root` (`cards`, `rows`) with the fields `set` writes.
    fn new_item(
        &self,
        server: &Server,
        root: &str,
        key: &str,
        set: impl FnOnce(&mut TransactionMut, &MapRef),
    ) -> Vec<u8> {
        self.edit(server, |d| {
            let items = d.get_or_insert_map(root);
            let mut txn = d.transact_mut();
            let item = items.insert(&mut txn, key, MapPrelim::default());
            set(&mut txn, &item);
        })
    }

    fn add_card(&self, server: &Server, key: &str, section: &str) -> Vec<u8> {
        self.new_item(server, "cards", key, |txn, c| {
            c.insert(txn, "section", section);
            c.insert(txn, "text", TextPrelim::new("tekst"));
        })
    }

    fn card_in(d: &Doc, key: &str) -> MapRef {
        let cards = d.get_or_insert_map("cards");
        let txn = d.transact();
        match cards.get(&txn, key) {
            Some(Out::YMap(m)) => m,
            other => panic!("no card {key}: {other:?}"),
        }
    }

    fn text_in(d: &Doc, key: &str) -> TextRef {
        let card = Client::card_in(d, key);
        let txn = d.transact();
        match card.get(&txn, "text") {
            Some(Out::YText(t)) => t,
            other => panic!("card {key} has no text: {other:?}"),
        }
    }
}

/// A canvas with one card `k1` of the employee in `section`.
fn canvas_with_card(section: &str) -> (Server, Client) {
    let mut s = Server::new(DocName::Canvas);
    let e = Client::new(EMPLOYEE, &s);
    let u = e.add_card(&s, "k1", section);
    assert_eq!(s.takes(Role::Employee, &u).created, vec!["k1".to_string()]);
    (s, e)
}

/// Plain-value content (`Any`) holding `values`, as struct content bytes.
fn any_content(values: &[Any]) -> Vec<u8> {
    let mut e = EncoderV1::new();
    e.write_len(values.len() as u32);
    for v in values {
        e.write_any(v);
    }
    let mut out = vec![yrs::block::BLOCK_ITEM_ANY_REF_NUMBER];
    out.extend(e.to_vec());
    out
}

fn id_of(s: &Server, key: &str) -> (u64, u32) {
    let card = s.card(key).expect("the card is there");
    let branch: &yrs::branch::Branch = card.as_ref();
    match branch.id() {
        yrs::branch::BranchID::Nested(id) => (id.client.get(), id.clock),
        yrs::branch::BranchID::Root(_) => panic!("a card is not a root"),
    }
}

// ---------------------------------------------------------------------------------------------
// Size limits.

#[test]
fn an_update_of_exactly_max_update_bytes_is_taken_one_byte_more_is_refused() {
    let (mut s, _e) = canvas_with_card("bouwstenen");
    let w = Client::new(EMPLOYER, &s);
    let u = w.add_card(&s, "w", "bouwstenen");
    s.limits.max_update_bytes = u.len() - 1;
    assert_eq!(s.code(Role::Employer, &u), Code::UpdateTooLarge);
    s.limits.max_update_bytes = u.len();
    s.takes(Role::Employer, &u);
}

#[test]
fn a_document_may_grow_to_exactly_max_doc_bytes_not_one_byte_more() {
    let (mut s, _e) = canvas_with_card("bouwstenen");
    let w = Client::new(EMPLOYER, &s);
    let u = w.add_card(&s, "w", "bouwstenen");
    let len = u.len() as u64;
    s.limits.max_doc_bytes = 10_000;
    s.doc_bytes = 10_000 - len + 1;
    let r = s.refusal(Role::Employer, &u);
    assert_eq!(r.code, Code::DocumentTooLarge);
    assert!(
        r.reason.contains("10000"),
        "the reason names the limit: {r:?}"
    );
    s.doc_bytes = 10_000 - len;
    s.takes(Role::Employer, &u);
}

// ---------------------------------------------------------------------------------------------
// Items created and edited in one update.

#[test]
fn editing_someone_elses_card_is_refused_even_beside_a_new_card_of_ones_own() {
    let (mut s, _e) = canvas_with_card("themas");
    let w = Client::new(EMPLOYER, &s);
    let u = w.edit(&s, |d| {
        let cards = d.get_or_insert_map("cards");
        {
            let mut txn = d.transact_mut();
            let mine = cards.insert(&mut txn, "w", MapPrelim::default());
            mine.insert(&mut txn, "section", "themas");
        }
        Client::text_in(d, "k1").push(&mut d.transact_mut(), " erbij");
    });
    assert_eq!(s.code(Role::Employer, &u), Code::NotYourItem);
    // Control: the new card alone goes in.
    let w = Client::new(EMPLOYER + 1, &s);
    s.takes(Role::Employer, &w.add_card(&s, "w", "themas"));
}

#[test]
fn a_new_card_needs_a_section_of_its_own_not_one_written_on_another_card() {
    let (mut s, e) = canvas_with_card("themas");
    // The employee moves their own card and, in the same update, creates one without a section.
    let u = e.edit(&s, |d| {
        let cards = d.get_or_insert_map("cards");
        let mut txn = d.transact_mut();
        let own = match cards.get(&txn, "k1") {
            Some(Out::YMap(m)) => m,
            other => panic!("no card k1: {other:?}"),
        };
        own.insert(&mut txn, "section", "bouwstenen");
        let bare = cards.insert(&mut txn, "bare", MapPrelim::default());
        bare.insert(&mut txn, "text", TextPrelim::new("zonder vak"));
    });
    let r = s.refusal(Role::Employee, &u);
    assert_eq!(r.code, Code::InvalidValue);
    assert!(r.reason.contains("needs a section"), "{r:?}");
    // Control: the move alone goes in.
    let (mut s, e) = canvas_with_card("themas");
    let u = e.edit(&s, |d| {
        Client::card_in(d, "k1").insert(&mut d.transact_mut(), "section", "bouwstenen");
    });
    s.takes(Role::Employee, &u);
    assert_eq!(
        s.field("k1", "section"),
        Some(Out::Any(Any::from("bouwstenen")))
    );
}

#[test]
fn a_server_field_written_and_removed_offline_on_a_new_card_is_refused() {
    let mut s = Server::new(DocName::Canvas);
    let e = Client::new(EMPLOYEE, &s);
    let u = e.new_item(&s, "cards", "v", |txn, c| {
        c.insert(txn, "section", "bouwstenen");
        c.insert(txn, "votes", 3);
        c.remove(txn, "votes");
    });
    assert_eq!(s.code(Role::Employee, &u), Code::ServerField);
    // Control: an allowed field written and removed offline goes in.
    let e = Client::new(EMPLOYEE + 1, &s);
    let u = e.new_item(&s, "cards", "v", |txn, c| {
        c.insert(txn, "section", "bouwstenen");
        c.insert(txn, "type", "curatief");
        c.remove(txn, "type");
    });
    s.takes(Role::Employee, &u);
}

#[test]
fn a_card_created_and_removed_offline_goes_in_as_deleted_content() {
    let (mut s, _e) = canvas_with_card("bouwstenen");
    let w = Client::new(EMPLOYER, &s);
    let u = w.edit(&s, |d| {
        let cards = d.get_or_insert_map("cards");
        let mut txn = d.transact_mut();
        let c = cards.insert(&mut txn, "kort", MapPrelim::default());
        c.insert(&mut txn, "section", "bouwstenen");
        cards.remove(&mut txn, "kort");
    });
    s.takes(Role::Employer, &u);
    assert!(s.card("kort").is_none());
    assert!(s.card("k1").is_some(), "the other card stays");
}

// ---------------------------------------------------------------------------------------------
// Field values.

#[test]
fn a_field_holds_exactly_one_plain_value() {
    let (mut s, _e) = canvas_with_card("bouwstenen");
    let card = id_of(&s, "k1");
    // Under the employee's own client id, right after their card.
    let clock = s.sv().get(&yrs::ClientID::new(EMPLOYEE));
    let two = any_content(&[Any::from("curatief"), Any::from("preventief")]);
    let u = raw_item(EMPLOYEE, clock, Err(card), Some("type"), &two);
    let r = s.refusal(Role::Employee, &u);
    assert_eq!(r.code, Code::InvalidValue, "{r:?}");
    // Control: one value in the same place goes in.
    let one = any_content(&[Any::from("curatief")]);
    let u = raw_item(EMPLOYEE, clock, Err(card), Some("type"), &one);
    s.takes(Role::Employee, &u);
    assert_eq!(s.field("k1", "type"), Some(Out::Any(Any::from("curatief"))));
}

#[test]
fn thema_must_be_one_of_the_boards_themes_once_it_has_any() {
    let mut s = Server::new(DocName::Canvas);
    let f = Client::new(FACILITATOR, &s);
    let u = f.edit(&s, |d| {
        d.get_or_insert_map("themes")
            .insert(&mut d.transact_mut(), "werkdruk", "Werkdruk");
    });
    s.takes(Role::Facilitator, &u);
    let e = Client::new(EMPLOYEE, &s);
    let u = e.new_item(&s, "cards", "a", |txn, c| {
        c.insert(txn, "section", "themas");
        c.insert(txn, "thema", "werkdruk");
    });
    s.takes(Role::Employee, &u);
    // A value that is not a theme, even one that names a field the card has.
    for (n, bad) in ["verzuim", "thema", "section"].into_iter().enumerate() {
        let e = Client::new(EMPLOYEE + 1 + n as u64, &s);
        let u = e.new_item(&s, "cards", "b", |txn, c| {
            c.insert(txn, "section", "themas");
            c.insert(txn, "thema", bad);
        });
        let r = s.refusal(Role::Employee, &u);
        assert_eq!(r.code, Code::InvalidValue, "thema {bad}");
        assert!(r.reason.starts_with("thema:"), "{r:?}");
    }
}

#[test]
fn gap_rows_take_their_text_fields_as_shared_texts_and_partijen() {
    let mut g = Server::new(DocName::Gap);
    let w = Client::new(EMPLOYER, &g);
    let u = w.new_item(&g, "rows", "r", |txn, row| {
        for f in ["onderwerp", "huidig", "gewenst", "gap", "oplossingen"] {
            row.insert(txn, f, TextPrelim::new("iets"));
        }
        row.insert(
            txn,
            "partijen",
            Any::from(vec![Any::from("werkgever"), Any::from("FNV")]),
        );
    });
    g.takes(Role::Employer, &u);
    // A gap text field as a plain value is refused.
    let w = Client::new(EMPLOYER + 1, &g);
    let u = w.new_item(&g, "rows", "r2", |txn, row| {
        row.insert(txn, "onderwerp", "plat");
    });
    let r = g.refusal(Role::Employer, &u);
    assert_eq!(r.code, Code::InvalidValue);
    assert!(r.reason.contains("shared text"), "{r:?}");
    // Partijen: at most 50 names of at most 200 bytes.
    let names = |n: usize, len: usize| Any::from(vec![Any::from("x".repeat(len)); n]);
    for (n, (value, ok)) in [
        (names(50, 200), true),
        (names(51, 1), false),
        (names(1, 201), false),
        (Any::from(vec![Any::from(3.0)]), false),
        (Any::from("FNV"), false),
    ]
    .into_iter()
    .enumerate()
    {
        let w = Client::new(EMPLOYER + 10 + n as u64, &g);
        let u = w.new_item(&g, "rows", &format!("p{n}"), |txn, row| {
            row.insert(txn, "partijen", value.clone());
        });
        if ok {
            g.takes(Role::Employer, &u);
        } else {
            assert_eq!(g.code(Role::Employer, &u), Code::InvalidValue, "case {n}");
        }
    }
    // On a canvas card `partijen` is not a field; card text there is the only text.
    let mut s = Server::new(DocName::Canvas);
    let w = Client::new(EMPLOYER, &s);
    let u = w.new_item(&s, "cards", "c", |txn, c| {
        c.insert(txn, "section", "bouwstenen");
        c.insert(txn, "partijen", Any::from(vec![Any::from("FNV")]));
    });
    assert_eq!(s.code(Role::Employer, &u), Code::UnknownField);
    let w = Client::new(EMPLOYER + 1, &s);
    let u = w.new_item(&s, "cards", "c", |txn, c| {
        c.insert(txn, "section", "bouwstenen");
        c.insert(txn, "onderwerp", TextPrelim::new("x"));
    });
    assert_eq!(s.code(Role::Employer, &u), Code::UnknownField);
}

// ---------------------------------------------------------------------------------------------
// Structure.

#[test]
fn embeds_and_formatting_in_card_text_are_refused_with_their_reason() {
    let (mut s, e) = canvas_with_card("themas");
    let u = e.edit(&s, |d| {
        Client::text_in(d, "k1").insert_embed(&mut d.transact_mut(), 0, Any::from("plat"));
    });
    let r = s.refusal(Role::Employee, &u);
    assert_eq!(r.code, Code::SchemaViolation);
    assert!(r.reason.contains("embeds and formatting"), "{r:?}");
    let e = Client::new(EMPLOYEE + 1, &s);
    let u = e.edit(&s, |d| {
        let attrs = yrs::types::Attrs::from([("bold".into(), Any::from(true))]);
        Client::text_in(d, "k1").format(&mut d.transact_mut(), 0, 2, attrs);
    });
    let r = s.refusal(Role::Employee, &u);
    assert_eq!(r.code, Code::SchemaViolation);
    assert!(r.reason.contains("embeds and formatting"), "{r:?}");
    // Control: characters go in.
    let e = Client::new(EMPLOYEE + 2, &s);
    let u = e.edit(&s, |d| {
        Client::text_in(d, "k1").push(&mut d.transact_mut(), " erbij");
    });
    s.takes(Role::Employee, &u);
}

#[test]
fn free_content_nests_exactly_max_depth_types_and_no_more() {
    let nest = |s: &Server, client: u64, levels: usize| {
        Client::new(client, s).edit(s, |d| {
            let m = d.get_or_insert_map("notities");
            let mut txn = d.transact_mut();
            let mut cur = m.insert(&mut txn, "n", MapPrelim::default());
            for _ in 1..levels {
                cur = cur.insert(&mut txn, "n", MapPrelim::default());
            }
        })
    };
    let mut s = Server::new(DocName::Party(tafel_protocol::Party::Employee));
    s.limits.max_depth = 4;
    let u = nest(&s, EMPLOYEE, 5);
    let r = s.refusal(Role::Employee, &u);
    assert_eq!(r.code, Code::TooDeep);
    s.takes(Role::Employee, &nest(&s, EMPLOYEE + 1, 4));
}

#[test]
fn a_shared_type_inside_a_card_field_is_too_deep() {
    let (mut s, e) = canvas_with_card("bouwstenen");
    let u = e.edit(&s, |d| {
        Client::card_in(d, "k1").insert(&mut d.transact_mut(), "type", MapPrelim::default());
    });
    assert_eq!(s.code(Role::Employee, &u), Code::TooDeep);
}

#[test]
fn a_shared_type_in_meta_is_a_schema_violation_for_every_role() {
    for (n, role) in [Role::Employer, Role::Facilitator].into_iter().enumerate() {
        let mut s = Server::new(DocName::Canvas);
        let c = Client::new(EMPLOYER + n as u64, &s);
        let u = c.edit(&s, |d| {
            d.get_or_insert_map("meta").insert(
                &mut d.transact_mut(),
                "title",
                MapPrelim::default(),
            );
        });
        assert_eq!(s.code(role, &u), Code::SchemaViolation, "{role}");
    }
    // Control: a plain value in meta is the facilitator's to write.
    let mut s = Server::new(DocName::Canvas);
    let f = Client::new(FACILITATOR, &s);
    let u = f.edit(&s, |d| {
        d.get_or_insert_map("meta")
            .insert(&mut d.transact_mut(), "title", "Werkgroep");
    });
    s.takes(Role::Facilitator, &u);
}

#[test]
fn free_roots_take_one_plain_value_or_a_type_under_a_key_and_lists_take_items() {
    let party = DocName::Party(tafel_protocol::Party::Employee);
    let mut s = Server::new(party);
    let mut string = vec![yrs::block::BLOCK_ITEM_STRING_REF_NUMBER];
    let mut enc = EncoderV1::new();
    enc.write_string("los");
    string.extend(enc.to_vec());
    let two = any_content(&[Any::from(1.0), Any::from(2.0)]);
    for (n, content) in [string, two].into_iter().enumerate() {
        let u = raw_item(EMPLOYEE + n as u64, 0, Ok("notities"), Some("k"), &content);
        let r = s.refusal(Role::Employee, &u);
        assert_eq!(r.code, Code::SchemaViolation, "case {n}");
        assert!(r.reason.contains("schema does not name"), "{r:?}");
    }
    // Controls: one plain value under a key; items in a list root.
    let u = raw_item(
        EMPLOYEE + 5,
        0,
        Ok("notities"),
        Some("k"),
        &any_content(&[Any::from(1.0)]),
    );
    s.takes(Role::Employee, &u);
    let e = Client::new(EMPLOYEE + 6, &s);
    let u = e.edit(&s, |d| {
        d.get_or_insert_array("lijst")
            .insert_range(&mut d.transact_mut(), 0, [1, 2, 3]);
    });
    s.takes(Role::Employee, &u);
    let txn = s.doc.transact();
    assert_eq!(
        txn.get_array("lijst").map(|a| a.len(&txn)),
        Some(3),
        "the list is in the workspace"
    );
}

/// Every wrong value is refused as `invalid-value` with a reason that says what the field takes
/// (the reason the client shows), and the values at the bounds go in.
#[test]
fn each_field_refuses_a_wrong_value_with_what_it_takes() {
    let long = |n: usize| "x".repeat(n);
    let measured = |entries: &[(&str, &str)]| {
        Any::from(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), Any::from(*v)))
                .collect::<std::collections::HashMap<_, _>>(),
        )
    };
    let list = |n: usize, len: usize| Any::from(vec![Any::from(long(len)); n]);
    // (section of the card, field, value, the reason's text or None: taken)
    let cases = [
        (
            "bouwstenen",
            "type",
            Any::from("magisch"),
            Some("curatief, preventief"),
        ),
        ("bouwstenen", "type", Any::from("preventief"), None),
        (
            "bouwstenen",
            "stap",
            Any::from("7"),
            Some("one of 1, 2, 3A"),
        ),
        ("bouwstenen", "stap", Any::from("3B"), None),
        (
            "bouwstenen",
            "pijlers",
            Any::from(vec![Any::from("geld")]),
            Some("gezondheid, bekwaamheid"),
        ),
        (
            "bouwstenen",
            "order",
            Any::from("eerst"),
            Some("must be a number"),
        ),
        ("bouwstenen", "order", Any::from(2.5), None),
        (
            "bouwstenen",
            "source",
            Any::from(long(65)),
            Some("staalkaart id"),
        ),
        (
            "bouwstenen",
            "source",
            Any::from(3.0),
            Some("staalkaart id"),
        ),
        ("bouwstenen", "source", Any::from(long(64)), None),
        (
            "bouwstenen",
            "text",
            Any::from("plat"),
            Some("must be a shared text"),
        ),
        (
            "monitoring",
            "afspraak",
            Any::from(long(65)),
            Some("agreement's card"),
        ),
        (
            "monitoring",
            "afspraak",
            Any::from(2.0),
            Some("agreement's card"),
        ),
        ("monitoring", "afspraak", Any::from(long(64)), None),
        (
            "monitoring",
            "soort",
            Any::from("veel"),
            Some("kwantitatief or kwalitatief"),
        ),
        ("monitoring", "soort", Any::from("kwalitatief"), None),
        (
            "monitoring",
            "status",
            Any::from("klaar"),
            Some("one of gepland, loopt"),
        ),
        ("monitoring", "status", Any::from("gestopt"), None),
        (
            "monitoring",
            "nulmeting",
            Any::from(long(501)),
            Some("at most 500 bytes"),
        ),
        (
            "monitoring",
            "streefwaarde",
            Any::from(3.0),
            Some("at most 500 bytes"),
        ),
        ("monitoring", "verzamelt", Any::from(long(500)), None),
        ("monitoring", "rapporteert", Any::from(long(500)), None),
        (
            "monitoring",
            "meetmomenten",
            list(21, 1),
            Some("at most 20 moments"),
        ),
        (
            "monitoring",
            "meetmomenten",
            list(1, 101),
            Some("at most 20 moments"),
        ),
        (
            "monitoring",
            "meetmomenten",
            Any::from(vec![Any::from(1.0)]),
            Some("at most 20 moments"),
        ),
        ("monitoring", "meetmomenten", list(20, 100), None),
        (
            "monitoring",
            "metingen",
            Any::from(vec![measured(&[
                ("moment", "a"),
                ("waarde", "b"),
                ("extra", "c"),
            ])]),
            Some("moment"),
        ),
        (
            "monitoring",
            "metingen",
            Any::from(vec![measured(&[("moment", "a"), ("anders", "b")])]),
            Some("moment"),
        ),
        (
            "monitoring",
            "metingen",
            Any::from(vec![measured(&[("moment", "a"), ("waarde", &long(501))])]),
            Some("moment"),
        ),
        (
            "monitoring",
            "metingen",
            Any::from(vec![
                measured(&[("moment", "a"), ("waarde", &long(500))]);
                100
            ]),
            None,
        ),
        (
            "monitoring",
            "metingen",
            Any::from(vec![measured(&[("moment", "a"), ("waarde", "b")]); 101]),
            Some("at most 100"),
        ),
    ];
    let mut s = Server::new(DocName::Canvas);
    for (n, (section, field, value, refused)) in cases.into_iter().enumerate() {
        let w = Client::new(EMPLOYER + 100 + n as u64, &s);
        let key = format!("c{n}");
        let u = w.new_item(&s, "cards", &key, |txn, c| {
            c.insert(txn, "section", section);
            c.insert(txn, field, value.clone());
        });
        match refused {
            Some(what) => {
                let r = s.refusal(Role::Employer, &u);
                assert_eq!(r.code, Code::InvalidValue, "{field} = {value:?}");
                assert!(
                    r.reason.starts_with(&format!("{field}: ")) && r.reason.contains(what),
                    "{field} = {value:?}: {r:?}"
                );
            }
            None => {
                s.takes(Role::Employer, &u);
                assert_eq!(s.field(&key, field), Some(Out::Any(value)), "{field}");
            }
        }
    }
}

#[test]
fn thema_is_checked_against_the_themes_with_its_own_reason() {
    let mut s = Server::new(DocName::Canvas);
    let f = Client::new(FACILITATOR, &s);
    let u = f.edit(&s, |d| {
        d.get_or_insert_map("themes")
            .insert(&mut d.transact_mut(), "werkdruk", "Werkdruk");
    });
    s.takes(Role::Facilitator, &u);
    let e = Client::new(EMPLOYEE, &s);
    let u = e.new_item(&s, "cards", "b", |txn, c| {
        c.insert(txn, "section", "themas");
        c.insert(txn, "thema", "verzuim");
    });
    let r = s.refusal(Role::Employee, &u);
    assert!(r.reason.contains("board's themes"), "{r:?}");
}

#[test]
fn a_section_written_into_a_removed_card_is_still_checked() {
    let (mut s, e) = canvas_with_card("themas");
    // Two more tabs of the same employee that still show the card.
    let tab = Client::new(EMPLOYEE + 50, &s);
    let tab2 = Client::new(EMPLOYEE + 51, &s);
    let u = e.edit(&s, |d| {
        d.get_or_insert_map("cards")
            .remove(&mut d.transact_mut(), "k1");
    });
    s.takes(Role::Employee, &u);
    assert!(s.card("k1").is_none());
    // A late move of the removed card into a section the template does not have.
    let late = |tab: &Client, s: &Server, to: &str| {
        tab.edit(s, |d| {
            Client::card_in(d, "k1").insert(&mut d.transact_mut(), "section", to);
        })
    };
    let r = s.refusal(Role::Employee, &late(&tab, &s, "nergens"));
    assert_eq!(r.code, Code::InvalidValue);
    assert!(r.reason.contains("template's sections"), "{r:?}");
    // Control: a late move into a real section lands in deleted content, harmlessly.
    s.takes(Role::Employee, &late(&tab2, &s, "bouwstenen"));
    assert!(s.card("k1").is_none());
}

/// A hand-made update that creates a card, writes a server field on it as deleted content and
/// removes the card again: the fields of a card removed in the same update are judged with its
/// creation, so the server field is still refused.
#[test]
fn a_server_field_on_a_card_created_and_removed_in_one_update_is_refused() {
    let update = |field: &str| {
        let client = 150u64;
        let mut e = EncoderV1::new();
        e.write_var(1u32); // one client
        e.write_var(3u32); // three structs
        e.write_var(client);
        e.write_var(0u32);
        // 0: a Y.Map under `cards` at key "x".
        e.write_info(yrs::block::BLOCK_ITEM_TYPE_REF_NUMBER | yrs::block::HAS_PARENT_SUB);
        e.write_parent_info(true);
        e.write_string("cards");
        e.write_string("x");
        e.write_type_ref(yrs::types::TYPE_REFS_MAP);
        // 1: its section.
        e.write_info(yrs::block::BLOCK_ITEM_ANY_REF_NUMBER | yrs::block::HAS_PARENT_SUB);
        e.write_parent_info(false);
        e.write_left_id(&yrs::ID::new(yrs::ClientID::new(client), 0));
        e.write_string("section");
        e.write_len(1);
        e.write_any(&Any::from("bouwstenen"));
        // 2: `field`, written and removed (deleted content).
        e.write_info(yrs::block::BLOCK_ITEM_DELETED_REF_NUMBER | yrs::block::HAS_PARENT_SUB);
        e.write_parent_info(false);
        e.write_left_id(&yrs::ID::new(yrs::ClientID::new(client), 0));
        e.write_string(field);
        e.write_len(1);
        // Delete set: the card.
        e.write_var(1u32);
        e.write_var(client);
        e.write_var(1u32);
        e.write_var(0u32);
        e.write_var(1u32);
        e.to_vec()
    };
    let mut s = Server::new(DocName::Canvas);
    assert_eq!(s.code(Role::Employee, &update("votes")), Code::ServerField);
    assert_eq!(s.code(Role::Employee, &update("kleur")), Code::UnknownField);
    // Control: a field the card may have goes in, and the card is gone.
    s.takes(Role::Employee, &update("type"));
    assert!(s.card("x").is_none());
}
