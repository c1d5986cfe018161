//! Looking inside a Yjs update before it is applied: the update is applied to a *shadow* copy of
//! the document, whose deep observers report every change by path; the result is a list of
//! [`Change`]s that `policy` judges. The real document is only touched once the whole update is
//! accepted; after a refusal the shadow is rebuilt from the real document.
//!
//! Why a shadow (DESIGN-NOTES option 2): yrs exposes no way to read an update's structs or to
//! roll back a transaction, while its deep events give exact paths (`cards/<id>/text`) and map
//! keys. The price is a second copy of each policed document and applying accepted updates twice.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use yrs::types::{EntryChange, Event, PathSegment, ToJson};
use yrs::{DeepObservable, Doc, MapRef, ReadTxn, StateVector, Transact, Update};

use crate::wire::decode_update;

/// One change an update makes, in terms of the board schema.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// A new entry in the items map (`cards` or `rows`).
    ItemAdded(String),
    /// An entry of the items map removed.
    ItemRemoved(String),
    /// An entry of the items map replaced by another value under the same key.
    ItemReplaced(String),
    /// A field of an existing item changed (including edits inside its nested text).
    FieldChanged { item: String, field: String },
    /// Anything under another root (themes, meta, session, or a root outside the schema).
    Root(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("{0}")]
    Undecodable(String),
    #[error("the update depends on changes the server does not have; resync")]
    MissingDependencies,
    #[error("the update cannot be applied: {0}")]
    Unapplicable(String),
}

/// A shadow document with observers on the roots a document kind's schema names.
pub struct Shadow {
    doc: Doc,
    items_root: &'static str,
    observed: Vec<&'static str>,
    changes: Arc<Mutex<BTreeSet<Change>>>,
}

impl Shadow {
    /// Builds a shadow of the document whose full state is `state` (a v1 update).
    /// `items_root` is the map of cards or rows; `observed` are the other known roots.
    pub fn new(
        state: &[u8],
        items_root: &'static str,
        observed: &[&'static str],
    ) -> Result<Shadow, InspectError> {
        let doc = Doc::new();
        let update = decode_update(state).map_err(|e| InspectError::Undecodable(e.to_string()))?;
        doc.transact_mut()
            .apply_update(update)
            .map_err(|e| InspectError::Unapplicable(e.to_string()))?;
        let changes: Arc<Mutex<BTreeSet<Change>>> = Arc::default();
        let items: MapRef = doc.get_or_insert_map(items_root);
        let sink = changes.clone();
        items.observe_deep(
            "tafel-inspect",
            move |txn: &yrs::TransactionMut, events: &yrs::types::Events| {
                let mut out = lock(&sink);
                for event in events.iter() {
                    item_changes(txn, event, &mut out);
                }
            },
        );
        for root in observed {
            let map: MapRef = doc.get_or_insert_map(*root);
            let sink = changes.clone();
            let name = root.to_string();
            map.observe_deep(
                "tafel-inspect",
                move |_: &yrs::TransactionMut, _: &yrs::types::Events| {
                    lock(&sink).insert(Change::Root(name.clone()));
                },
            );
        }
        Ok(Shadow {
            doc,
            items_root,
            observed: observed.to_vec(),
            changes,
        })
    }

    pub fn doc(&self) -> &Doc {
        &self.doc
    }

    pub fn items_root(&self) -> &'static str {
        self.items_root
    }

    /// Applies `update` to the shadow and returns what it changed. On `Err` the shadow may be
    /// half-changed and must be rebuilt.
    pub fn apply(&self, update: Update) -> Result<BTreeSet<Change>, InspectError> {
        lock(&self.changes).clear();
        let before = self.other_roots();
        {
            let mut txn = self.doc.transact_mut();
            txn.apply_update(update)
                .map_err(|e| InspectError::Unapplicable(e.to_string()))?;
        }
        if self.doc.transact().has_missing_updates() {
            return Err(InspectError::MissingDependencies);
        }
        let mut changes = std::mem::take(&mut *lock(&self.changes));
        // Roots the observers do not cover: a new root, or content changed in an existing one.
        let after = self.other_roots();
        for (name, json) in &after {
            if before.iter().find(|(n, _)| n == name).map(|(_, j)| j) != Some(json) {
                changes.insert(Change::Root(name.clone()));
            }
        }
        Ok(changes)
    }

    /// The roots outside the schema, each with a JSON fingerprint of its content.
    fn other_roots(&self) -> Vec<(String, String)> {
        let txn = self.doc.transact();
        txn.root_refs()
            .filter(|(name, _)| *name != self.items_root && !self.observed.contains(name))
            .map(|(name, value)| (name.to_owned(), format!("{:?}", value.to_json(&txn))))
            .collect()
    }

    /// The shadow's full state, to compare with the real document in tests.
    pub fn state(&self) -> Vec<u8> {
        self.doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
    }
}

fn lock(m: &Mutex<BTreeSet<Change>>) -> std::sync::MutexGuard<'_, BTreeSet<Change>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(seg: Option<&PathSegment>) -> Option<String> {
    match seg {
        Some(PathSegment::Key(k)) => Some(k.to_string()),
        _ => None,
    }
}

/// Maps one deep event under the items root to changes.
fn item_changes(txn: &yrs::TransactionMut, event: &Event, out: &mut BTreeSet<Change>) {
    let path = event.path();
    let mut segments = path.iter();
    match (segments.next(), segments.next()) {
        // The items map itself: entries added, replaced or removed.
        (None, _) => {
            if let Event::Map(m) = event {
                for (k, change) in m.keys(txn) {
                    out.insert(match change {
                        EntryChange::Inserted(_) => Change::ItemAdded(k.to_string()),
                        EntryChange::Updated(..) => Change::ItemReplaced(k.to_string()),
                        EntryChange::Removed(_) => Change::ItemRemoved(k.to_string()),
                    });
                }
            } else {
                out.insert(Change::Root("items".into()));
            }
        }
        // One item's own map: its fields.
        (Some(item), None) => {
            let Some(item) = key(Some(item)) else {
                out.insert(Change::Root("items".into()));
                return;
            };
            match event {
                Event::Map(m) => {
                    for k in m.keys(txn).keys() {
                        out.insert(Change::FieldChanged {
                            item: item.clone(),
                            field: k.to_string(),
                        });
                    }
                }
                _ => {
                    out.insert(Change::FieldChanged {
                        item,
                        field: "*".into(),
                    });
                }
            }
        }
        // Deeper: inside a field of an item (its text, a nested list).
        (Some(item), Some(field)) => match (key(Some(item)), key(Some(field))) {
            (Some(item), Some(field)) => {
                out.insert(Change::FieldChanged { item, field });
            }
            _ => {
                out.insert(Change::Root("items".into()));
            }
        },
    }
}
