//! The board schema's rules applied to the changes an update makes (see `inspect`): which
//! roles may add, edit and remove items in which section, "only your own" items, locks,
//! presentation mode, private writing, server-only fields and valid values. Pure: documents in,
//! a verdict out. The facilitator is bound only by the server-managed parts of `control`.

use std::collections::BTreeSet;

use yrs::{Any, Doc, Map, MapRef, Out, ReadTxn, Transact};

use crate::ids::DocName;
use crate::inspect::Change;
use crate::roles::Role;
use crate::template::{Rules, Template};

/// Fields of a card or row that only the server writes.
pub const SERVER_FIELDS: [&str; 6] = [
    "owner",
    "author",
    "createdAt",
    "hidden",
    "votes",
    "mergedInto",
];
pub const TYPES: [&str; 3] = ["curatief", "preventief", "versterkend"];
pub const PIJLERS: [&str; 3] = ["gezondheid", "bekwaamheid", "motivatie"];
pub const STEPS: [&str; 7] = ["1", "2", "3A", "3B", "4", "5", "6"];

/// The roots of each document kind: (items map, other known roots).
pub fn schema_roots(doc: DocName) -> (&'static str, &'static [&'static str]) {
    match doc {
        DocName::Canvas => ("cards", &["themes", "meta"]),
        DocName::Gap => ("rows", &["meta"]),
        DocName::Party(_) => ("cards", &["meta"]),
        DocName::Control => ("rounds", &["session"]),
    }
}

/// The facilitator's session state that the rules depend on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionPolicy {
    pub board_locked: bool,
    pub locked_docs: BTreeSet<String>,
    pub locked_sections: BTreeSet<String>,
    pub presentation: bool,
    pub private_writing: bool,
}

/// Who is writing: the role, and how to tell whether an item's `owner` tag is theirs.
pub struct Writer<'a> {
    pub role: Role,
    /// `owns(item_id, owner_tag)`: whether the tag was made for this writer and this item.
    pub owns: &'a dyn Fn(&str, &str) -> bool,
}

/// An accepted update: the items it creates (the server stamps owner and author on them).
#[derive(Debug, Default, PartialEq)]
pub struct Verdict {
    pub new_items: Vec<String>,
}

/// Judges the changes of one update. `before` is the real document, `after` the shadow with the
/// update applied. `Err` carries the reason sent with `permission-denied`.
pub fn judge(
    doc: DocName,
    changes: &BTreeSet<Change>,
    before: &Doc,
    after: &Doc,
    template: &Template,
    session: &SessionPolicy,
    writer: &Writer<'_>,
) -> Result<Verdict, String> {
    if changes.is_empty() {
        // Nothing new (a reconnecting client's sync step 2 resending what the server has):
        // no rule applies, not even a lock.
        return Ok(Verdict::default());
    }
    let (items_root, _) = schema_roots(doc);
    let added: Vec<String> = changes
        .iter()
        .filter_map(|c| match c {
            Change::ItemAdded(id) | Change::ItemReplaced(id) => Some(id.clone()),
            _ => None,
        })
        .collect();
    if doc == DocName::Control {
        // `session` and `rounds` are written by the server on the facilitator's commands.
        return match changes
            .iter()
            .find(|c| !matches!(c, Change::Root(r) if r != "session"))
        {
            Some(_) => Err(
                "the session state in control is changed through the facilitator's commands".into(),
            ),
            None if writer.role == Role::Facilitator => Ok(Verdict::default()),
            None => Err("only the facilitator writes control".into()),
        };
    }
    if writer.role == Role::Facilitator {
        return Ok(Verdict { new_items: added });
    }
    if session.board_locked {
        return Err("the board is locked by the facilitator".into());
    }
    if session.presentation {
        return Err("presentation mode: the board is read-only".into());
    }
    if session.locked_docs.contains(doc.as_str()) {
        return Err(format!("{} is locked by the facilitator", doc.as_str()));
    }
    if let DocName::Party(_) = doc {
        // A party's own workspace: the baseline matrix already limits it to that party.
        return match changes
            .iter()
            .find(|c| matches!(c, Change::Root(r) if r == "meta"))
        {
            Some(_) => Err("only the facilitator changes meta".into()),
            None => Ok(Verdict::default()),
        };
    }
    let bt = before.transact();
    let at = after.transact();
    let items_before: Option<MapRef> = bt.get_map(items_root);
    let items_after: Option<MapRef> = at.get_map(items_root);
    let item = |map: &Option<MapRef>, txn: &yrs::Transaction, id: &str| -> Option<MapRef> {
        match map.as_ref()?.get(txn, id)? {
            Out::YMap(m) => Some(m),
            _ => None,
        }
    };
    let rules_for = |card: &MapRef, txn: &yrs::Transaction| -> Result<(String, Rules), String> {
        if doc == DocName::Gap {
            return Ok(("gap".into(), template.gap.clone()));
        }
        let section = string_field(card, txn, "section").ok_or("a card needs a section")?;
        let s = template
            .section(&section)
            .ok_or_else(|| format!("unknown section {section:?}"))?;
        Ok((section, s.rules()))
    };
    let unlocked = |section: &str| -> Result<(), String> {
        if session.locked_sections.contains(section) {
            Err(format!("section {section} is locked by the facilitator"))
        } else {
            Ok(())
        }
    };
    let owned = |card: &MapRef, txn: &yrs::Transaction, id: &str| -> bool {
        string_field(card, txn, "owner").is_some_and(|tag| (writer.owns)(id, &tag))
    };
    let themes: BTreeSet<String> = at
        .get_map("themes")
        .map(|m| m.keys(&at).map(str::to_owned).collect())
        .unwrap_or_default();

    for change in changes {
        match change {
            Change::Root(name) => return Err(format!("only the facilitator changes {name}")),
            Change::ItemAdded(id) | Change::ItemReplaced(id) => {
                if matches!(change, Change::ItemReplaced(_)) {
                    let old = item(&items_before, &bt, id).ok_or("replacing an item")?;
                    let (section, rules) = rules_for(&old, &bt)?;
                    allowed(&rules.remove, writer.role, "remove items", &section)?;
                    unlocked(&section)?;
                    if !owned(&old, &bt, id) {
                        return Err("you may only replace your own items".into());
                    }
                }
                let new = item(&items_after, &at, id).ok_or("an item must be a map")?;
                let (section, rules) = rules_for(&new, &at)?;
                allowed(&rules.add, writer.role, "add items", &section)?;
                unlocked(&section)?;
                if doc == DocName::Canvas && session.private_writing {
                    return Err(
                        "private writing: add cards to your own drafts until the reveal".into(),
                    );
                }
                for field in new.keys(&at) {
                    check_field(doc, &new, &at, field, &themes)?;
                }
            }
            Change::ItemRemoved(id) => {
                let old = item(&items_before, &bt, id).ok_or("removing an unknown item")?;
                let (section, rules) = rules_for(&old, &bt)?;
                allowed(&rules.remove, writer.role, "remove items", &section)?;
                unlocked(&section)?;
                if !owned(&old, &bt, id) {
                    return Err("you may only remove your own items".into());
                }
            }
            Change::FieldChanged { item: id, field } => {
                if added.contains(id) {
                    continue;
                }
                let old = item(&items_before, &bt, id).ok_or("changing an unknown item")?;
                let (section, rules) = rules_for(&old, &bt)?;
                allowed(&rules.edit, writer.role, "edit items", &section)?;
                unlocked(&section)?;
                if rules.edit_own_only && !owned(&old, &bt, id) {
                    return Err(format!("in {section} you may only edit your own items"));
                }
                let new = item(&items_after, &at, id).ok_or("an item must stay a map")?;
                check_field(doc, &new, &at, field, &themes)?;
                if field == "section" {
                    let (to, rules) = rules_for(&new, &at)?;
                    allowed(&rules.add, writer.role, "move items into", &to)?;
                    unlocked(&to)?;
                }
            }
        }
    }
    Ok(Verdict { new_items: added })
}

fn allowed(roles: &[Role], role: Role, what: &str, section: &str) -> Result<(), String> {
    if roles.contains(&role) {
        Ok(())
    } else {
        Err(format!("the {role} role may not {what} in {section}"))
    }
}

fn string_field(map: &MapRef, txn: &yrs::Transaction, key: &str) -> Option<String> {
    match map.get(txn, key)? {
        Out::Any(Any::String(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// Checks one field a participant wrote (or left) on an item.
fn check_field(
    doc: DocName,
    item: &MapRef,
    txn: &yrs::Transaction,
    field: &str,
    themes: &BTreeSet<String>,
) -> Result<(), String> {
    if SERVER_FIELDS.contains(&field) {
        return Err(format!("{field} is set by the server"));
    }
    let value = item.get(txn, field);
    let Some(value) = value else {
        // Removing an optional field is fine; a required one is checked by its kind below.
        return match field {
            "section" if doc == DocName::Canvas => Err("a card needs a section".into()),
            _ => Ok(()),
        };
    };
    let text_fields: &[&str] = match doc {
        DocName::Gap => &["onderwerp", "huidig", "gewenst", "gap", "oplossingen"],
        _ => &["text"],
    };
    let bad = |what: &str| Err(format!("{field}: {what}"));
    match (field, &value) {
        (f, Out::YText(_)) if text_fields.contains(&f) => Ok(()),
        (f, _) if text_fields.contains(&f) => bad("must be a shared text (Y.Text)"),
        ("section", Out::Any(Any::String(_))) if doc == DocName::Canvas => Ok(()),
        ("type", Out::Any(Any::String(s))) if TYPES.contains(&s.as_ref()) => Ok(()),
        ("type", _) => bad("must be curatief, preventief or versterkend"),
        ("stap", Out::Any(Any::String(s))) if STEPS.contains(&s.as_ref()) => Ok(()),
        ("stap", _) => bad("must be one of 1, 2, 3A, 3B, 4, 5, 6"),
        ("thema", Out::Any(Any::String(s))) if themes.is_empty() || themes.contains(s.as_ref()) => {
            Ok(())
        }
        ("thema", _) => bad("must be one of the board's themes"),
        ("pijlers", Out::Any(Any::Array(a)))
            if a.iter()
                .all(|p| matches!(p, Any::String(s) if PIJLERS.contains(&s.as_ref()))) =>
        {
            Ok(())
        }
        ("pijlers", _) => bad("must be a list of gezondheid, bekwaamheid, motivatie"),
        ("partijen", Out::Any(Any::Array(a)))
            if doc == DocName::Gap
                && a.iter()
                    .all(|p| matches!(p, Any::String(s) if s.len() <= 200)) =>
        {
            Ok(())
        }
        ("source", Out::Any(Any::String(s))) if doc == DocName::Canvas && s.len() <= 64 => Ok(()),
        ("order" | "priority", Out::Any(Any::Number(_))) => Ok(()),
        _ => Err(format!(
            "{field} is not a field a participant may write here"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::Shadow;
    use crate::template::Template;
    use yrs::updates::decoder::Decode;
    use yrs::{MapPrelim, StateVector, TextPrelim, Update};

    fn template() -> Template {
        let json = include_str!("../../server/templates/cao-di-organisatie.json");
        Template::from_json(json).unwrap()
    }

    /// A client-side card creation as an update, plus the server's documents before and after.
    fn try_card(role: Role, section: &str, extra: (&str, Any)) -> Result<Verdict, String> {
        let server = Doc::new();
        let client = Doc::new();
        {
            let cards = client.get_or_insert_map("cards");
            let mut txn = client.transact_mut();
            let card = cards.insert(
                &mut txn,
                "k1",
                MapPrelim::from_iter([
                    ("section", yrs::In::Any(section.into())),
                    (extra.0, yrs::In::Any(extra.1)),
                ]),
            );
            card.insert(&mut txn, "text", TextPrelim::new("hallo"));
        }
        let update = client
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let shadow = Shadow::new(
            &server
                .transact()
                .encode_state_as_update_v1(&StateVector::default()),
            "cards",
            &["themes", "meta"],
        )
        .unwrap();
        let changes = shadow.apply(Update::decode_v1(&update).unwrap()).unwrap();
        let owns = |_: &str, _: &str| false;
        judge(
            DocName::Canvas,
            &changes,
            &server,
            shadow.doc(),
            &template(),
            &SessionPolicy::default(),
            &Writer { role, owns: &owns },
        )
    }

    #[test]
    fn section_add_rules() {
        let ok = try_card(Role::Employee, "themas", ("type", "curatief".into())).unwrap();
        assert_eq!(ok.new_items, vec!["k1".to_string()]);
        assert!(try_card(Role::Employee, "opdracht", ("type", "curatief".into())).is_err());
        assert!(try_card(Role::Employer, "nergens", ("type", "curatief".into())).is_err());
        assert!(try_card(Role::Facilitator, "opdracht", ("type", "curatief".into())).is_ok());
    }

    #[test]
    fn server_fields_and_values() {
        let e = try_card(Role::Union, "bouwstenen", ("votes", Any::from(3.0))).unwrap_err();
        assert!(e.contains("votes"), "{e}");
        let e = try_card(Role::Union, "bouwstenen", ("type", "magisch".into())).unwrap_err();
        assert!(e.contains("type"), "{e}");
        assert!(try_card(Role::Union, "bouwstenen", ("stap", "3B".into())).is_ok());
    }
}
