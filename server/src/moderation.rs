//! Moderation: the facilitator hides, merges and restores canvas cards and gap rows. A hidden
//! item leaves its document entirely — its map entry is deleted, so every replica drops it on
//! sync and yrs garbage-collects its content on the server — and is held in the board's state
//! on the server (`BoardState::hidden`), which only the facilitator can read
//! (`GET /api/boards/{id}/hidden`, the facilitator's export). `restore` writes it back under the
//! same id with its fields, texts, `owner` tag, author and votes, as a server edit.
//!
//! Edits that reach a hidden item after it left the document (an offline participant's, or one
//! made concurrently with the hide) land in deleted content: they are lost.

use std::sync::Arc;

use axum::Json;
use serde_json::{json, Value};
use tafel_protocol::DocName;

use crate::board::Board;
use crate::domain::edits::{self, items_root};
use crate::domain::state::{author_key, HiddenItem, Participant};
use crate::domain::Refusal;
use crate::edge::{AppError, AppState, FacilitatorOf};
use crate::ops::{self, now_ms};

/// What a moderation command acts on: a canvas card or a gap row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub doc: DocName,
    pub id: String,
}

impl Target {
    /// From a command's `card` or `row` field (exactly one).
    pub fn from_fields(card: Option<String>, row: Option<String>) -> Result<Target, Refusal> {
        match (card, row) {
            (Some(id), None) => Ok(Target {
                doc: DocName::Canvas,
                id,
            }),
            (None, Some(id)) => Ok(Target {
                doc: DocName::Gap,
                id,
            }),
            _ => Err(Refusal::bad("name either a card or a row")),
        }
    }

    fn root(&self) -> &'static str {
        items_root(self.doc)
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

fn bad(msg: impl Into<String>) -> AppError {
    Refusal::bad(msg).into()
}

fn not_found(t: &Target) -> AppError {
    Refusal::not_found(format!("no such {}", t.what())).into()
}

/// Reads the item as it is now; `None` when it is not in its document.
async fn read(
    state: &AppState,
    board: &Arc<Board>,
    t: &Target,
) -> Result<Option<HiddenItem>, AppError> {
    let (root, id) = (t.root(), t.id.clone());
    let v = ops::edit(state, board, t.doc, move |txn| {
        json!(edits::read_item(txn, root, &id))
    })
    .await?;
    Ok(serde_json::from_value(v).ok().flatten())
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
        .update(|st| st.hidden.insert(key.clone(), held.clone()))
        .await?;
    let (root, id, target) = (t.root(), t.id.clone(), merged_into.clone());
    let taken = ops::edit(state, board, t.doc, move |txn| {
        json!(edits::take(txn, root, &id, target.as_deref()))
    })
    .await?;
    let action = if into.is_some() { "merge" } else { "hide" };
    let mut detail = t.detail();
    if let Some(i) = into {
        detail["into"] = json!(i);
    }
    board
        .update(|st| {
            // What the item held at the moment it left (edits made between the two steps).
            if let Ok(now) = serde_json::from_value::<HiddenItem>(taken.clone()) {
                st.hidden.insert(
                    key.clone(),
                    HiddenItem {
                        merged_into: merged_into.clone(),
                        hidden_at,
                        ..now
                    },
                );
            }
            board.audit(st, who, action, detail.clone());
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
    let written = ops::edit(state, board, t.doc, move |txn| {
        Value::Bool(edits::recreate(txn, root, &id, &held))
    })
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

/// Items that an older Tafel hid by marking them `hidden: true` in the document are moved out
/// of it into the held state, as a hide would.
pub async fn sweep_marked(state: &AppState, board: &Arc<Board>) -> Result<(), AppError> {
    for doc in [DocName::Canvas, DocName::Gap] {
        let root = items_root(doc);
        let taken = ops::edit(state, board, doc, move |txn| {
            json!(edits::take_marked(txn, root))
        })
        .await?;
        let taken: Vec<(String, HiddenItem)> = serde_json::from_value(taken).unwrap_or_default();
        if taken.is_empty() {
            continue;
        }
        let at = now_ms();
        board
            .update(|st| {
                for (id, h) in &taken {
                    st.hidden.insert(
                        author_key(doc, id),
                        HiddenItem {
                            hidden_at: at,
                            ..h.clone()
                        },
                    );
                }
            })
            .await?;
    }
    Ok(())
}

/// `GET /api/boards/{id}/hidden`: the hidden and merged cards and rows, facilitator only.
pub async fn hidden(
    axum::extract::State(state): axum::extract::State<AppState>,
    FacilitatorOf(at): FacilitatorOf,
) -> Result<Json<Value>, AppError> {
    sweep_marked(&state, &at.board).await?;
    let listing = at.board.lock().hidden_json();
    Ok(Json(listing))
}
