//! The server's own Yjs edits, as plain functions on a transaction: seeding a new board,
//! mirroring the public session into `control`, rewriting authors, publishing revealed drafts,
//! writing vote totals, and taking items out of (and back into) their documents for
//! moderation. No IO: `ops` runs them inside the document actors, whose server-edit path
//! stamps what they write as the server's and checks it against the judge's zones.

use serde_json::{json, Value};
use tafel_protocol::DocName;
use yrs::types::text::TextPrelim;
use yrs::{GetString, Map, MapPrelim, MapRef, Out, ReadTxn, Text, TransactionMut, WriteTxn};

use super::any;
use super::state::{Draft, HiddenItem};

/// The root map of a document's moderated items: canvas `cards`, gap `rows`.
pub fn items_root(doc: DocName) -> &'static str {
    match doc {
        DocName::Gap => "rows",
        _ => "cards",
    }
}

/// Writes `meta` (and, on the canvas, the board's copy of the template's themes).
pub fn seed(txn: &mut TransactionMut, meta: &Value, themes: &[(String, Value)]) {
    let m = txn.get_or_insert_map("meta");
    for (k, v) in meta.as_object().into_iter().flatten() {
        m.insert(txn, k.as_str(), any(v.clone()));
    }
    if !themes.is_empty() {
        let th = txn.get_or_insert_map("themes");
        for (id, v) in themes {
            th.insert(txn, id.as_str(), any(v.clone()));
        }
    }
}

/// Mirrors the public session state and the public rounds (no ballots) into `control`.
pub fn mirror_session(txn: &mut TransactionMut, session: &Value, rounds: &[(String, Value)]) {
    let m = txn.get_or_insert_map("session");
    for (k, v) in session.as_object().into_iter().flatten() {
        m.insert(txn, k.as_str(), any(v.clone()));
    }
    let r = txn.get_or_insert_map("rounds");
    for (id, v) in rounds {
        r.insert(txn, id.as_str(), any(v.clone()));
    }
}

/// The ids in `wanted` that are not items under `root` (`cards` of canvas, `rows` of gap).
pub fn missing_items(txn: &mut TransactionMut, root: &str, wanted: &[String]) -> Vec<String> {
    let existing = txn.get_or_insert_map(root);
    wanted
        .iter()
        .filter(|c| existing.get(txn, c.as_str()).is_none())
        .cloned()
        .collect()
}

/// Sets (or, for `None`, removes) the `author` of each named item under `root`.
pub fn rewrite_authors(txn: &mut TransactionMut, root: &str, authors: &[(String, Option<String>)]) {
    let items = txn.get_or_insert_map(root);
    for (id, text) in authors {
        if let Some(Out::YMap(item)) = items.get(txn, id) {
            match text {
                Some(t) => {
                    item.insert(txn, "author", t.as_str());
                }
                None => {
                    item.remove(txn, "author");
                }
            }
        }
    }
}

/// A revealed draft as the canvas card it becomes.
#[derive(Debug, Clone)]
pub struct Published {
    pub id: String,
    pub draft: Draft,
    /// The owner tag of the draft's author for the new card id.
    pub owner: String,
    pub author: Option<String>,
}

/// Writes revealed drafts as canvas cards, created at `now_ms`.
pub fn publish(txn: &mut TransactionMut, cards: &[Published], now_ms: u64) {
    let root = txn.get_or_insert_map("cards");
    for p in cards {
        let d = &p.draft;
        let mut fields: Vec<(String, yrs::In)> = vec![
            ("section".into(), yrs::In::Any(d.section.as_str().into())),
            ("owner".into(), yrs::In::Any(p.owner.as_str().into())),
            ("createdAt".into(), yrs::In::Any((now_ms as f64).into())),
            ("pijlers".into(), yrs::In::Any(any(json!(d.pijlers)))),
        ];
        if let Some(a) = &p.author {
            fields.push(("author".into(), yrs::In::Any(a.as_str().into())));
        }
        if let Some(th) = &d.thema {
            fields.push(("thema".into(), yrs::In::Any(th.as_str().into())));
        }
        if let Some(k) = &d.kind {
            fields.push(("type".into(), yrs::In::Any(k.as_str().into())));
        }
        let item = root.insert(txn, p.id.as_str(), MapPrelim::from_iter(fields));
        item.insert(txn, "text", TextPrelim::new(d.text.as_str()));
    }
}

/// Writes a revealed round's totals onto the canvas cards that are there.
pub fn write_votes(txn: &mut TransactionMut, totals: &std::collections::BTreeMap<String, u32>) {
    let cards = txn.get_or_insert_map("cards");
    for (card, n) in totals {
        if let Some(Out::YMap(item)) = cards.get(txn, card) {
            item.insert(txn, "votes", *n as f64);
        }
    }
}

/// Moves a card to another section: only its `section` changes, so it keeps its id, text,
/// labels and server fields (and stays its creator's).
pub fn move_to(txn: &mut TransactionMut, card: &MapRef, section: &str) {
    card.insert(txn, "section", section);
}

/// Server-only fields that are kept apart from the plain fields of a held item.
const APART: &[&str] = &["owner", "author", "votes", "hidden", "mergedInto"];

/// Reads a live item into the held form (nothing changes).
pub fn capture<T: ReadTxn>(txn: &T, item: &MapRef) -> HiddenItem {
    let mut held = HiddenItem::default();
    for (key, value) in item.iter(txn) {
        match value {
            Out::Any(a) => {
                let v = serde_json::to_value(&a).unwrap_or(Value::Null);
                match key {
                    "owner" => held.owner = v.as_str().map(str::to_owned),
                    "author" => held.author = v.as_str().map(str::to_owned),
                    "votes" => held.votes = v.as_f64(),
                    "mergedInto" => held.merged_into = v.as_str().map(str::to_owned),
                    k if APART.contains(&k) => {}
                    k => {
                        held.fields.insert(k.to_owned(), v);
                    }
                }
            }
            Out::YText(t) => {
                held.texts.insert(key.to_owned(), t.get_string(txn));
            }
            // The schema allows nothing else in an item.
            _ => {}
        }
    }
    held
}

/// The live item `id` under `root`, if it is there.
pub fn live_item(txn: &mut TransactionMut, root: &str, id: &str) -> Option<MapRef> {
    match txn.get_or_insert_map(root).get(txn, id) {
        Some(Out::YMap(m)) => Some(m),
        _ => None,
    }
}

/// Reads the item as it is now; `None` when it is not in its document.
pub fn read_item(txn: &mut TransactionMut, root: &str, id: &str) -> Option<HiddenItem> {
    live_item(txn, root, id).map(|item| capture(txn, &item))
}

/// Takes an item out of its document (its map entry deleted, so every replica drops it and
/// yrs garbage-collects its content), after appending its texts to `into`'s on a new line when
/// it is merged. Answers what it held at that moment; `None` when it was not there.
pub fn take(
    txn: &mut TransactionMut,
    root: &str,
    id: &str,
    into: Option<&str>,
) -> Option<HiddenItem> {
    let item = live_item(txn, root, id)?;
    let held = capture(txn, &item);
    if let Some(target) = into.and_then(|t| live_item(txn, root, t)) {
        for (field, text) in &held.texts {
            if text.is_empty() {
                continue;
            }
            match target.get(txn, field) {
                Some(Out::YText(tt)) => {
                    let at = tt.len(txn);
                    tt.insert(txn, at, &format!("\n{text}"));
                }
                _ => {
                    target.insert(txn, field.as_str(), TextPrelim::new(text.as_str()));
                }
            }
        }
    }
    txn.get_or_insert_map(root).remove(txn, id);
    Some(held)
}

/// Writes a held item back into `root` under `id`, as one new map. `false` (and nothing
/// written) when another item holds that id now.
pub fn recreate(txn: &mut TransactionMut, root: &str, id: &str, held: &HiddenItem) -> bool {
    if live_item(txn, root, id).is_some() {
        return false;
    }
    let mut fields: Vec<(String, yrs::In)> = held
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), yrs::In::Any(any(v.clone()))))
        .collect();
    if let Some(o) = &held.owner {
        fields.push(("owner".into(), yrs::In::Any(o.as_str().into())));
    }
    if let Some(a) = &held.author {
        fields.push(("author".into(), yrs::In::Any(a.as_str().into())));
    }
    if let Some(v) = held.votes {
        fields.push(("votes".into(), yrs::In::Any(v.into())));
    }
    let items = txn.get_or_insert_map(root);
    let item = items.insert(txn, id, MapPrelim::from_iter(fields));
    for (field, text) in &held.texts {
        item.insert(txn, field.as_str(), TextPrelim::new(text.as_str()));
    }
    true
}

/// Takes out every item an older Tafel hid by marking it `hidden: true`; answers them by id.
pub fn take_marked(txn: &mut TransactionMut, root: &str) -> Vec<(String, HiddenItem)> {
    let items = txn.get_or_insert_map(root);
    let marked: Vec<(String, MapRef)> = items
        .iter(txn)
        .filter_map(|(id, v)| match v {
            Out::YMap(m)
                if matches!(m.get(txn, "hidden"), Some(Out::Any(yrs::Any::Bool(true)))) =>
            {
                Some((id.to_owned(), m))
            }
            _ => None,
        })
        .collect();
    let taken: Vec<(String, HiddenItem)> = marked
        .into_iter()
        .map(|(id, item)| {
            let held = capture(txn, &item);
            (id, held)
        })
        .collect();
    for (id, _) in &taken {
        items.remove(txn, id);
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, Transact};

    fn card(txn: &mut TransactionMut, id: &str, text: &str) {
        let cards = txn.get_or_insert_map("cards");
        let item = cards.insert(
            txn,
            id,
            MapPrelim::from_iter([
                ("section".to_owned(), yrs::In::Any("bouwstenen".into())),
                ("owner".to_owned(), yrs::In::Any("tag".into())),
            ]),
        );
        item.insert(txn, "text", TextPrelim::new(text));
    }

    #[test]
    fn take_and_recreate_round_trip_an_item() {
        let doc = Doc::new();
        let mut txn = doc.transact_mut();
        card(&mut txn, "a", "Leerbudget");
        card(&mut txn, "b", "Ontwikkelbudget");
        let held = take(&mut txn, "cards", "a", Some("b")).expect("a is there");
        assert_eq!(held.texts["text"], "Leerbudget");
        assert_eq!(held.owner.as_deref(), Some("tag"));
        assert_eq!(held.fields["section"], json!("bouwstenen"));
        assert!(read_item(&mut txn, "cards", "a").is_none());
        let b = read_item(&mut txn, "cards", "b").unwrap();
        assert_eq!(b.texts["text"], "Ontwikkelbudget\nLeerbudget");
        assert!(take(&mut txn, "cards", "a", None).is_none());
        assert!(recreate(&mut txn, "cards", "a", &held));
        assert_eq!(read_item(&mut txn, "cards", "a").unwrap(), held);
        // The id is taken now: a second restore writes nothing.
        assert!(!recreate(&mut txn, "cards", "a", &held));
    }

    #[test]
    fn marked_items_are_taken_out() {
        let doc = Doc::new();
        let mut txn = doc.transact_mut();
        card(&mut txn, "a", "weg");
        card(&mut txn, "b", "blijft");
        let a = live_item(&mut txn, "cards", "a").unwrap();
        a.insert(&mut txn, "hidden", true);
        let taken = take_marked(&mut txn, "cards");
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].0, "a");
        assert_eq!(taken[0].1.texts["text"], "weg");
        assert!(live_item(&mut txn, "cards", "a").is_none());
        assert!(live_item(&mut txn, "cards", "b").is_some());
    }

    #[test]
    fn missing_cards_names_only_absent_ones() {
        let doc = Doc::new();
        let mut txn = doc.transact_mut();
        card(&mut txn, "a", "x");
        let missing = missing_items(&mut txn, "cards", &["a".into(), "z".into()]);
        assert_eq!(missing, vec!["z".to_owned()]);
    }
}
