//! The board's history as plain functions: a snapshot's stored form (the encoded Yjs states of
//! `canvas` and `gap`, framed), reading a state's items, comparing a snapshot with the present
//! in words a participant reads, and the server edit that restores one as a new state (so the
//! history stays). No IO.
//!
//! Encoded states, not Yjs snapshots with GC off: a state holds only the live content of its
//! moment (hidden items were already taken out and collected), and restoring writes new
//! content, so nothing deleted ever comes back into a participant's sync.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tafel_protocol::template::Template;
use tafel_protocol::{DocName, Party};
use yrs::updates::decoder::Decode;
use yrs::{Doc, Map, Out, ReadTxn, StateVector, Transact, TransactionMut, Update, WriteTxn};

use super::edits::{capture, live_item, recreate};
use super::state::HiddenItem;

/// A snapshot as listed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotMeta {
    pub id: String,
    pub name: String,
    /// Milliseconds since the epoch.
    pub at: u64,
    /// Taken by the server (a step change, before a restore) rather than by a person.
    pub auto: bool,
    /// The step the board was at.
    pub step: String,
    /// Size of the stored states, in bytes.
    pub bytes: usize,
}

/// The documents a snapshot holds: every document with board content — the canvas (its cards,
/// the monitoring plan's indicator cards with their measured values among them, and its themes),
/// the gap analysis and the three party workspaces. Not `control`: that is the session's course
/// (step, locks, timer, rounds), not content; the revealed totals are on the cards.
pub const DOCS: [DocName; 5] = [
    DocName::Canvas,
    DocName::Gap,
    DocName::Party(Party::Employer),
    DocName::Party(Party::Union),
    DocName::Party(Party::Employee),
];

/// Where an item of `doc` is, for the words of a comparison: a party workspace by its name.
fn workspace(doc: DocName) -> Option<&'static str> {
    match doc {
        DocName::Party(Party::Employer) => Some("Werkruimte werkgever"),
        DocName::Party(Party::Union) => Some("Werkruimte vakbond"),
        DocName::Party(Party::Employee) => Some("Werkruimte medewerkers"),
        _ => None,
    }
}

/// Frames `(doc, state)` pairs: per doc one length-prefixed name and one length-prefixed state.
pub fn encode(docs: &[(DocName, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, state) in docs {
        let n = name.as_str().as_bytes();
        out.push(n.len() as u8);
        out.extend_from_slice(n);
        out.extend_from_slice(&(state.len() as u32).to_be_bytes());
        out.extend_from_slice(state);
    }
    out
}

/// Reads what `encode` wrote; `None` for bytes it did not write.
pub fn decode(mut bytes: &[u8]) -> Option<Vec<(DocName, Vec<u8>)>> {
    let mut out = Vec::new();
    while let Some((&n, rest)) = bytes.split_first() {
        let name = rest.get(..n as usize)?;
        let rest = &rest[n as usize..];
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let state = rest.get(4..4 + len)?;
        out.push((
            DocName::parse(std::str::from_utf8(name).ok()?).ok()?,
            state.to_vec(),
        ));
        bytes = &rest[4 + len..];
    }
    Some(out)
}

/// The full state of a document, as `encode` keeps it.
pub fn state_of<T: ReadTxn>(txn: &T) -> Vec<u8> {
    txn.encode_state_as_update_v1(&StateVector::default())
}

/// The items (`cards` or `rows`) of an encoded state, by id; empty for a state that does not
/// decode.
pub fn items(state: &[u8], root: &str) -> BTreeMap<String, HiddenItem> {
    let doc = Doc::new();
    let Ok(update) = Update::decode_v1(state) else {
        return BTreeMap::new();
    };
    {
        let mut txn = doc.transact_mut();
        if txn.apply_update(update).is_err() {
            return BTreeMap::new();
        }
    }
    let txn = doc.transact();
    let Some(map) = txn.get_map(root) else {
        return BTreeMap::new();
    };
    map.iter(&txn)
        .filter_map(|(id, v)| match v {
            Out::YMap(m) => Some((id.to_owned(), capture(&txn, &m))),
            _ => None,
        })
        .collect()
}

/// The board's themes (the canvas's `themes`: id → `{"name", "description"}`) of an encoded
/// state; empty for a state that does not decode.
pub fn themes(state: &[u8]) -> BTreeMap<String, Value> {
    let doc = Doc::new();
    let Ok(update) = Update::decode_v1(state) else {
        return BTreeMap::new();
    };
    if doc.transact_mut().apply_update(update).is_err() {
        return BTreeMap::new();
    }
    let txn = doc.transact();
    let Some(map) = txn.get_map("themes") else {
        return BTreeMap::new();
    };
    map.iter(&txn)
        .filter_map(|(id, v)| match v {
            Out::Any(a) => Some((id.to_owned(), serde_json::to_value(&a).ok()?)),
            _ => None,
        })
        .collect()
}

/// Where the board's own theme list is, in the words of a comparison.
const THEME_LIST: &str = "Thema's van het bord";

/// Compares the board's themes then and now, in words, as `compare` does for items.
pub fn compare_themes(
    then: &BTreeMap<String, Value>,
    now: &BTreeMap<String, Value>,
) -> Vec<Change> {
    let name = |v: &Value| short(v.get("name").and_then(Value::as_str).unwrap_or(""));
    let change = |kind: &'static str, id: &str, text: String| Change {
        kind,
        doc: DocName::Canvas,
        item: format!("themes/{id}"),
        place: THEME_LIST.into(),
        text: format!("{THEME_LIST}: {text}"),
    };
    let mut out = Vec::new();
    for (id, n) in now {
        match then.get(id) {
            None => out.push(change("added", id, format!("toegevoegd: “{}”", name(n)))),
            Some(o) if o != n => out.push(change(
                "changed",
                id,
                format!("“{}”: gewijzigd (was “{}”)", name(n), name(o)),
            )),
            Some(_) => {}
        }
    }
    for (id, o) in then {
        if !now.contains_key(id) {
            out.push(change("removed", id, format!("verwijderd: “{}”", name(o))));
        }
    }
    out
}

/// Makes the canvas's `themes` hold `then` again (a server edit); answers how many entries it
/// wrote or removed.
pub fn restore_themes(txn: &mut TransactionMut, then: &BTreeMap<String, Value>) -> usize {
    let map = txn.get_or_insert_map("themes");
    let now: BTreeMap<String, Value> = map
        .iter(txn)
        .filter_map(|(id, v)| match v {
            Out::Any(a) => Some((id.to_owned(), serde_json::to_value(&a).ok()?)),
            _ => Some((id.to_owned(), Value::Null)),
        })
        .collect();
    let mut n = 0;
    for id in now.keys().filter(|id| !then.contains_key(*id)) {
        map.remove(txn, id);
        n += 1;
    }
    for (id, v) in then {
        if now.get(id) != Some(v) {
            map.insert(txn, id.as_str(), super::any(v.clone()));
            n += 1;
        }
    }
    n
}

/// An item as JSON, the way the export shows it: plain fields, texts as strings, and the
/// server's fields (`owner` only when `with_owner`).
pub fn item_json(item: &HiddenItem, with_owner: bool) -> Value {
    let mut o = serde_json::Map::new();
    for (k, v) in &item.fields {
        o.insert(k.clone(), v.clone());
    }
    for (k, v) in &item.texts {
        o.insert(k.clone(), Value::String(v.clone()));
    }
    if let Some(a) = &item.author {
        o.insert("author".into(), json!(a));
    }
    if let Some(v) = item.votes {
        o.insert("votes".into(), json!(v));
    }
    if with_owner {
        if let Some(t) = &item.owner {
            o.insert("owner".into(), json!(t));
        }
    }
    Value::Object(o)
}

/// Whether two items hold the same content (the `author` label and `createdAt` aside).
fn same(a: &HiddenItem, b: &HiddenItem) -> bool {
    let plain = |h: &HiddenItem| {
        let mut f = h.fields.clone();
        f.remove("createdAt");
        f
    };
    plain(a) == plain(b) && a.texts == b.texts && a.votes == b.votes
}

fn short(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 80 {
        format!("{}…", one.chars().take(79).collect::<String>())
    } else {
        one
    }
}

/// One difference between a snapshot and the present.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `added` (now there, not in the snapshot), `changed`, or `removed` (in the snapshot, not now).
    pub kind: &'static str,
    pub doc: DocName,
    pub item: String,
    /// The canvas section's title, or "Gap-analyse".
    pub place: String,
    /// The sentence a participant reads.
    pub text: String,
}

impl Change {
    pub fn json(&self) -> Value {
        json!({"kind": self.kind, "doc": self.doc.as_str(), "item": self.item, "place": self.place, "text": self.text})
    }
}

const ROW_FIELDS: [(&str, &str); 5] = [
    ("onderwerp", "onderwerp"),
    ("huidig", "huidige situatie"),
    ("gewenst", "gewenste situatie"),
    ("gap", "gap"),
    ("oplossingen", "aanbevolen oplossingen"),
];

/// A card's plain fields by the words a comparison names them with (the monitoring plan's
/// among them); a change in another field is "kenmerken gewijzigd".
const CARD_FIELDS: [(&str, &str); 13] = [
    ("type", "soort voorstel"),
    ("pijlers", "pijlers"),
    ("thema", "thema"),
    ("stap", "stap"),
    ("afspraak", "afspraak"),
    ("soort", "soort indicator"),
    ("nulmeting", "nulmeting"),
    ("streefwaarde", "streefwaarde"),
    ("meetmomenten", "meetmomenten"),
    ("verzamelt", "wie verzamelt"),
    ("rapporteert", "wie rapporteert"),
    ("status", "status"),
    ("metingen", "gemeten waarden"),
];

/// Compares the items of a snapshot (`then`) with the present (`now`), per section and per gap
/// row, in Dutch: what was added since, changed, or removed since.
pub fn compare(
    t: &Template,
    doc: DocName,
    then: &BTreeMap<String, HiddenItem>,
    now: &BTreeMap<String, HiddenItem>,
) -> Vec<Change> {
    let place = |h: &HiddenItem| -> String {
        if doc == DocName::Gap {
            return "Gap-analyse".into();
        }
        if let Some(w) = workspace(doc) {
            return w.into();
        }
        let s = h
            .fields
            .get("section")
            .and_then(Value::as_str)
            .unwrap_or("");
        t.sections
            .iter()
            .find(|x| x.id == s)
            .map(|x| x.title.clone())
            .unwrap_or_else(|| s.to_owned())
    };
    let label = |h: &HiddenItem| -> String {
        let key = if doc == DocName::Gap {
            "onderwerp"
        } else {
            "text"
        };
        short(h.texts.get(key).map(String::as_str).unwrap_or(""))
    };
    let mut out = Vec::new();
    for (id, n) in now {
        match then.get(id) {
            None => out.push(Change {
                kind: "added",
                doc,
                item: id.clone(),
                place: place(n),
                text: format!("{}: toegevoegd: “{}”", place(n), label(n)),
            }),
            Some(o) if !same(o, n) => {
                let what = if doc == DocName::Gap {
                    let fields: Vec<&str> = ROW_FIELDS
                        .iter()
                        .filter(|(k, _)| o.texts.get(*k) != n.texts.get(*k))
                        .map(|(_, name)| *name)
                        .collect();
                    if fields.is_empty() {
                        "kenmerken gewijzigd".to_owned()
                    } else {
                        format!("{} gewijzigd", fields.join(", "))
                    }
                } else if workspace(doc).is_none()
                    && o.fields.get("section") != n.fields.get("section")
                {
                    format!("verplaatst van {}", place(o))
                } else if o.texts != n.texts {
                    format!("tekst gewijzigd (was “{}”)", label(o))
                } else {
                    let fields: Vec<&str> = CARD_FIELDS
                        .iter()
                        .filter(|(k, _)| o.fields.get(*k) != n.fields.get(*k))
                        .map(|(_, name)| *name)
                        .collect();
                    if fields.is_empty() {
                        "kenmerken gewijzigd".to_owned()
                    } else {
                        format!("{} gewijzigd", fields.join(", "))
                    }
                };
                out.push(Change {
                    kind: "changed",
                    doc,
                    item: id.clone(),
                    place: place(n),
                    text: format!("{}: “{}”: {what}", place(n), label(n)),
                });
            }
            Some(_) => {}
        }
    }
    for (id, o) in then {
        if !now.contains_key(id) {
            out.push(Change {
                kind: "removed",
                doc,
                item: id.clone(),
                place: place(o),
                text: format!("{}: verwijderd: “{}”", place(o), label(o)),
            });
        }
    }
    out.sort_by(|a, b| {
        a.place
            .cmp(&b.place)
            .then(a.kind.cmp(b.kind))
            .then(a.text.cmp(&b.text))
    });
    out
}

/// Restores `then` under `root` as a server edit: items not in it are removed, items that
/// differ are written anew (new Yjs content under the same id), missing ones are recreated,
/// equal ones are left alone. Items in `skip` (hidden now) are neither removed nor written.
/// Answers how many items it removed, rewrote and recreated.
pub fn restore(
    txn: &mut TransactionMut,
    root: &str,
    then: &BTreeMap<String, HiddenItem>,
    skip: &dyn Fn(&str) -> bool,
) -> (usize, usize, usize) {
    let items = txn.get_or_insert_map(root);
    let now: Vec<String> = items.keys(txn).map(str::to_owned).collect();
    let (mut removed, mut rewritten, mut recreated) = (0, 0, 0);
    for id in now {
        match then.get(&id) {
            None => {
                items.remove(txn, &id);
                removed += 1;
            }
            Some(old) => {
                let current = live_item(txn, root, &id).map(|m| capture(txn, &m));
                if current.is_some_and(|c| !same(&c, old)) {
                    items.remove(txn, &id);
                    recreate(txn, root, &id, old);
                    rewritten += 1;
                }
            }
        }
    }
    for (id, old) in then {
        if !skip(id) && live_item(txn, root, id).is_none() {
            recreate(txn, root, id, old);
            recreated += 1;
        }
    }
    (removed, rewritten, recreated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::types::text::TextPrelim;
    use yrs::MapPrelim;

    fn template() -> Template {
        serde_json::from_str(include_str!("../../templates/cao-di-organisatie.json"))
            .expect("template")
    }

    fn card(doc: &Doc, id: &str, section: &str, text: &str) {
        let mut txn = doc.transact_mut();
        let cards = txn.get_or_insert_map("cards");
        let m = cards.insert(
            &mut txn,
            id,
            MapPrelim::from_iter([("section".to_owned(), yrs::In::Any(section.into()))]),
        );
        m.insert(&mut txn, "text", TextPrelim::new(text));
    }

    fn state(doc: &Doc) -> Vec<u8> {
        state_of(&doc.transact())
    }

    #[test]
    fn framing_round_trips_and_refuses_garbage() {
        let docs = vec![(DocName::Canvas, vec![1, 2, 3]), (DocName::Gap, vec![])];
        assert_eq!(decode(&encode(&docs)), Some(docs));
        assert_eq!(decode(&[]), Some(vec![]));
        assert_eq!(decode(&[200, 1, 2]), None);
        assert_eq!(
            decode(&[3, b'f', b'o', b'o', 0, 0, 0, 0]),
            None,
            "unknown doc"
        );
    }

    #[test]
    fn compare_in_words_and_restore_as_new_state() {
        let t = template();
        let doc = Doc::new();
        card(&doc, "a", "themas", "Nachtdiensten");
        card(&doc, "b", "bouwstenen", "Ontwikkelbudget");
        let snap = state(&doc);
        // After the snapshot: a removed, b changed, c added.
        {
            let mut txn = doc.transact_mut();
            let cards = txn.get_or_insert_map("cards");
            cards.remove(&mut txn, "a");
        }
        {
            let mut txn = doc.transact_mut();
            if let Some(Out::YMap(b)) = txn.get_or_insert_map("cards").get(&txn, "b") {
                if let Some(Out::YText(tx)) = b.get(&txn, "text") {
                    yrs::Text::push(&tx, &mut txn, " voor iedereen");
                }
            }
        }
        card(&doc, "c", "themas", "Werkdruk");
        let then = items(&snap, "cards");
        let now = items(&state(&doc), "cards");
        let changes = compare(&t, DocName::Canvas, &then, &now);
        let texts: Vec<&str> = changes.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Bouwstenen: “Ontwikkelbudget voor iedereen”: tekst gewijzigd (was “Ontwikkelbudget”)",
                "Thema's: toegevoegd: “Werkdruk”",
                "Thema's: verwijderd: “Nachtdiensten”",
            ]
        );
        assert!(compare(&t, DocName::Canvas, &now, &now).is_empty());

        let counts = restore(&mut doc.transact_mut(), "cards", &then, &|_| false);
        assert_eq!(counts, (1, 1, 1));
        let after = items(&state(&doc), "cards");
        assert!(compare(&t, DocName::Canvas, &then, &after).is_empty());
        // A restore is a new state: the document's history (its state vector) grew.
        assert!(state(&doc).len() > snap.len());
        // An item hidden now is not brought back.
        card(&doc, "d", "themas", "weg");
        {
            let mut txn = doc.transact_mut();
            txn.get_or_insert_map("cards").remove(&mut txn, "a");
        }
        restore(&mut doc.transact_mut(), "cards", &then, &|id| id == "a");
        let after = items(&state(&doc), "cards");
        assert!(!after.contains_key("a") && !after.contains_key("d"));
    }

    #[test]
    fn gap_rows_name_the_changed_fields() {
        let t = template();
        let row = |huidig: &str| HiddenItem {
            texts: [("onderwerp", "Werkdruk"), ("huidig", huidig)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..HiddenItem::default()
        };
        let then = BTreeMap::from([("r1".to_owned(), row("hoog"))]);
        let now = BTreeMap::from([("r1".to_owned(), row("lager"))]);
        let c = compare(&t, DocName::Gap, &then, &now);
        assert_eq!(
            c[0].text,
            "Gap-analyse: “Werkdruk”: huidige situatie gewijzigd"
        );
    }

    #[test]
    fn monitoring_values_and_party_workspaces_in_words() {
        let t = template();
        let card = |section: &str, fields: Value| HiddenItem {
            fields: fields
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain([("section".to_owned(), json!(section))])
                .collect(),
            texts: [("text".to_owned(), "Verzuim".to_owned())].into(),
            ..HiddenItem::default()
        };
        let then = BTreeMap::from([(
            "i1".to_owned(),
            card("monitoring", json!({"status": "loopt", "metingen": []})),
        )]);
        let now = BTreeMap::from([(
            "i1".to_owned(),
            card(
                "monitoring",
                json!({"status": "op-koers", "metingen": [{"moment": "2027", "waarde": "4%"}]}),
            ),
        )]);
        let c = compare(&t, DocName::Canvas, &then, &now);
        assert_eq!(
            c[0].text,
            "Monitoring en evaluatie: “Verzuim”: status, gemeten waarden gewijzigd"
        );
        // A party workspace is named as such, also when a note moves between its sections.
        let then = BTreeMap::from([("p1".to_owned(), card("themas", json!({})))]);
        let now = BTreeMap::from([("p1".to_owned(), card("bouwstenen", json!({})))]);
        let c = compare(&t, DocName::Party(Party::Union), &then, &now);
        assert_eq!(
            c[0].text,
            "Werkruimte vakbond: “Verzuim”: kenmerken gewijzigd"
        );
        let c = compare(&t, DocName::Party(Party::Union), &BTreeMap::new(), &now);
        assert_eq!(c[0].text, "Werkruimte vakbond: toegevoegd: “Verzuim”");
    }
}
