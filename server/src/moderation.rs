//! Moderation: the facilitator hides, merges and restores canvas cards and gap rows. A hidden
//! item leaves its document entirely — its map entry is deleted, so every replica drops it on
//! sync and yrs garbage-collects its content on the server — and is held in the board's state
//! on the server (`BoardState::hidden`), which only the facilitator can read
//! (`GET /api/boards/{id}/hidden`, the facilitator's export). `restore` writes it back under the
//! same id with its fields, texts, `owner` tag, author and votes, as a server edit.
//!
//! Edits that reach a hidden item after it left the document (an offline participant's, or one
//! made concurrently with the hide) land in deleted content: they are lost.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use tafel_protocol::{DocKey, DocName, ErrorCode, Role};
use yrs::types::text::TextPrelim;
use yrs::{GetString, Map, MapPrelim, MapRef, Out, Text, TransactionMut, WriteTxn};

use crate::board::{author_key, Board, HiddenItem, Participant};
use crate::domain::any;
use crate::edge::{board_or_404, forbidden, parse_board, unavailable, AppError, AppState, Auth};

/// Server-only fields that are kept apart from the plain fields of a held item.
const APART: &[&str] = &["owner", "author", "votes", "hidden", "mergedInto"];

/// What a moderation command acts on: a canvas card or a gap row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub doc: DocName,
    pub id: String,
}

impl Target {
    /// From a command's `card` or `row` field (exactly one).
    pub fn from_fields(card: Option<String>, row: Option<String>) -> Result<Target, AppError> {
        match (card, row) {
            (Some(id), None) => Ok(Target {
                doc: DocName::Canvas,
                id,
            }),
            (None, Some(id)) => Ok(Target {
                doc: DocName::Gap,
                id,
            }),
            _ => Err(bad("name either a card or a row")),
        }
    }

    fn root(&self) -> &'static str {
        root_of(self.doc)
    }

    fn key(&self) -> String {
        author_key(self.doc, &self.id)
    }

    fn what(&self) -> &'static str {
        match self.doc {
            DocName::Gap => "row",
            _ => "card",
        }
    }

    /// The audit detail: `{"card": …}` or `{"row": …}`.
    pub fn detail(&self) -> Value {
        json!({ self.what(): self.id })
    }
}

fn root_of(doc: DocName) -> &'static str {
    match doc {
        DocName::Gap => "rows",
        _ => "cards",
    }
}

fn bad(msg: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::BadRequest, msg)
}

fn not_found(t: &Target) -> AppError {
    AppError::new(ErrorCode::NotFound, format!("no such {}", t.what()))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Reads a live item into the held form (nothing changes).
fn capture<T: yrs::ReadTxn>(txn: &T, item: &MapRef) -> HiddenItem {
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

fn live_item(txn: &mut TransactionMut, root: &str, id: &str) -> Option<MapRef> {
    match txn.get_or_insert_map(root).get(txn, id) {
        Some(Out::YMap(m)) => Some(m),
        _ => None,
    }
}

/// Writes a held item back into `root` under `id`, as one new map.
fn recreate(txn: &mut TransactionMut, root: &str, id: &str, held: &HiddenItem) {
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
}

async fn edit(
    state: &AppState,
    board: &Arc<Board>,
    doc: DocName,
    f: crate::doc::ServerEdit,
) -> Result<Value, AppError> {
    state
        .registry
        .server_edit(&DocKey::new(board.id().clone(), doc), board, f)
        .await
        .ok_or_else(unavailable)
}

/// Reads the item as it is now; `None` when it is not in its document.
async fn read(
    state: &AppState,
    board: &Arc<Board>,
    t: &Target,
) -> Result<Option<HiddenItem>, AppError> {
    let (root, id) = (t.root(), t.id.clone());
    let v = edit(
        state,
        board,
        t.doc,
        Box::new(move |txn| match live_item(txn, root, &id) {
            Some(item) => serde_json::to_value(capture(txn, &item)).unwrap_or(Value::Null),
            None => Value::Null,
        }),
    )
    .await?;
    Ok(serde_json::from_value(v).ok())
}

/// Hides an item, or merges it into `into` (its texts appended to the target's, on a new
/// line) and hides it. The held copy is stored before the item leaves the document, so a crash
/// in between leaves it in both places, never in neither.
pub async fn hide(
    state: &AppState,
    board: &Arc<Board>,
    who: &Participant,
    t: &Target,
    into: Option<&str>,
) -> Result<(), AppError> {
    if into == Some(t.id.as_str()) {
        return Err(bad(format!("a {} cannot be merged into itself", t.what())));
    }
    let key = t.key();
    if board.lock().hidden.contains_key(&key) {
        // Someone put a new item under the id of a hidden one: keep the held one.
        return Err(bad(format!(
            "a hidden {} has this id; restore it first",
            t.what()
        )));
    }
    let Some(first) = read(state, board, t).await? else {
        return Err(not_found(t));
    };
    if let Some(target) = into {
        let target = Target {
            doc: t.doc,
            id: target.to_owned(),
        };
        if read(state, board, &target).await?.is_none() {
            return Err(not_found(&target));
        }
    }
    let hidden_at = now_ms();
    let merged_into = into.map(str::to_owned);
    let held = HiddenItem {
        merged_into: merged_into.clone(),
        hidden_at,
        ..first
    };
    board
        .update(|st| st.hidden.insert(key.clone(), held))
        .await?;
    let (root, id, target) = (t.root(), t.id.clone(), merged_into.clone());
    let taken = edit(
        state,
        board,
        t.doc,
        Box::new(move |txn| {
            let Some(item) = live_item(txn, root, &id) else {
                return Value::Null;
            };
            let held = capture(txn, &item);
            if let Some(target_id) = &target {
                if let Some(target) = live_item(txn, root, target_id) {
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
            }
            txn.get_or_insert_map(root).remove(txn, &id);
            serde_json::to_value(held).unwrap_or(Value::Null)
        }),
    )
    .await?;
    let action = if into.is_some() { "merge" } else { "hide" };
    let mut detail = t.detail();
    if let Some(i) = into {
        detail["into"] = json!(i);
    }
    board
        .update(|st| {
            // What the item held at the moment it left (edits made between the two steps).
            if let Ok(now) = serde_json::from_value::<HiddenItem>(taken) {
                st.hidden.insert(
                    key.clone(),
                    HiddenItem {
                        merged_into,
                        hidden_at,
                        ..now
                    },
                );
            }
            board.audit(st, who, action, detail);
        })
        .await?;
    Ok(())
}

/// Writes a held item back under its id, with its owner tag, its author (as the author setting
/// now says, when the server knows who created it) and its votes; `mergedInto` is dropped.
pub async fn restore(
    state: &AppState,
    board: &Arc<Board>,
    who: &Participant,
    t: &Target,
) -> Result<(), AppError> {
    let key = t.key();
    let held = {
        let st = board.lock();
        let Some(held) = st.hidden.get(&key).cloned() else {
            return Err(not_found(t));
        };
        let (_, mode) = board.policy();
        // Records from before they named their document are bare canvas card ids.
        let record = st.authors.get(&key).or_else(|| match t.doc {
            DocName::Canvas => st.authors.get(&t.id),
            _ => None,
        });
        let author = record.map(|a| Participant::author_text(a.role, &a.display, mode));
        HiddenItem {
            author: author.unwrap_or(held.author.clone()),
            merged_into: None,
            ..held
        }
    };
    let (root, id) = (t.root(), t.id.clone());
    let written = edit(
        state,
        board,
        t.doc,
        Box::new(move |txn| {
            if live_item(txn, root, &id).is_some() {
                return Value::Bool(false);
            }
            recreate(txn, root, &id, &held);
            Value::Bool(true)
        }),
    )
    .await?;
    if written != Value::Bool(true) {
        return Err(bad(format!(
            "another {} is on the board under this id; remove it first",
            t.what()
        )));
    }
    board
        .update(|st| {
            st.hidden.remove(&key);
            board.audit(st, who, "restore", t.detail());
        })
        .await?;
    Ok(())
}

/// Vote totals revealed for cards that are hidden go onto their held copies.
pub fn held_votes(st: &mut crate::board::BoardState, totals: &BTreeMap<String, u32>) {
    for (card, n) in totals {
        if let Some(h) = st.hidden.get_mut(&author_key(DocName::Canvas, card)) {
            h.votes = Some(*n as f64);
        }
    }
}

/// The held items as the facilitator sees them, oldest first.
pub fn listing(board: &Board) -> Value {
    let st = board.lock();
    let mut items: Vec<(&String, &HiddenItem)> = st.hidden.iter().collect();
    items.sort_by_key(|(k, h)| (h.hidden_at, (*k).clone()));
    json!(items
        .into_iter()
        .map(|(key, h)| {
            let (doc, id) = key.split_once('/').unwrap_or(("canvas", key.as_str()));
            json!({
                "doc": doc,
                "id": id,
                "fields": h.fields,
                "texts": h.texts,
                "owner": h.owner,
                "author": h.author,
                "votes": h.votes,
                "mergedInto": h.merged_into,
                "hiddenAt": h.hidden_at,
            })
        })
        .collect::<Vec<_>>())
}

/// Items that an older Tafel hid by marking them `hidden: true` in the document are moved out
/// of it into the held state, as a hide would.
pub async fn sweep_marked(state: &AppState, board: &Arc<Board>) -> Result<(), AppError> {
    for doc in [DocName::Canvas, DocName::Gap] {
        let root = root_of(doc);
        let taken = edit(
            state,
            board,
            doc,
            Box::new(move |txn| {
                let items = txn.get_or_insert_map(root);
                let marked: Vec<(String, MapRef)> = items
                    .iter(txn)
                    .filter_map(|(id, v)| match v {
                        Out::YMap(m)
                            if matches!(
                                m.get(txn, "hidden"),
                                Some(Out::Any(yrs::Any::Bool(true)))
                            ) =>
                        {
                            Some((id.to_owned(), m))
                        }
                        _ => None,
                    })
                    .collect();
                let mut out = serde_json::Map::new();
                for (id, item) in marked {
                    let held = capture(txn, &item);
                    out.insert(id, serde_json::to_value(held).unwrap_or(Value::Null));
                }
                for id in out.keys() {
                    items.remove(txn, id);
                }
                Value::Object(out)
            }),
        )
        .await?;
        if let Value::Object(taken) = taken {
            if taken.is_empty() {
                continue;
            }
            let at = now_ms();
            board
                .update(|st| {
                    for (id, v) in taken {
                        if let Ok(h) = serde_json::from_value::<HiddenItem>(v) {
                            st.hidden
                                .insert(author_key(doc, &id), HiddenItem { hidden_at: at, ..h });
                        }
                    }
                })
                .await?;
        }
    }
    Ok(())
}

/// `GET /api/boards/{id}/hidden`: the hidden and merged cards and rows, facilitator only.
pub async fn hidden(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = parse_board(&id)?;
    if !claims.may_open_board(&id) {
        return Err(forbidden("this token is for another board"));
    }
    if claims.role != Role::Facilitator {
        return Err(forbidden("only the facilitator sees hidden items"));
    }
    let board = board_or_404(&state, &id).await?;
    sweep_marked(&state, &board).await?;
    Ok(Json(listing(&board)))
}
