//! A participant's own commands on canvas cards and gap rows, for what a direct Yjs write
//! cannot do well: moving a card to another section (`POST .../cards/{card}/move`), decided on
//! the judge's rules for both sections (`protocol::rights`) and done as a server edit, so the
//! card keeps its id, text, labels, `owner`, `author` and votes; and taking back one's own
//! deletion (`POST .../cards/{card}/restore`, `.../rows/{row}/restore`): the server kept the
//! item when the deletion was accepted (`BoardState::trash`), and writes it back under the
//! same id, with the server's fields a participant may not write.

use std::sync::{Arc, Mutex};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tafel_protocol::judge::{Code, Refusal};
use tafel_protocol::rights::Seat;
use tafel_protocol::{DocName, ErrorCode, Role};

use crate::domain::edits::{self, items_root};
use crate::domain::state::{author_key, HiddenItem, Participant, TRASH_MS};
use crate::edge::{AppError, AppState, ForBoard};
use crate::ops::{self, now_ms};

#[derive(Deserialize)]
pub struct MoveTo {
    to: String,
}

/// A refusal of the rules as an HTTP error: `message` is `<code>: <reason>`, as in a
/// WebSocket `permission-denied`, so a client explains both the same way.
fn refused(r: Refusal) -> AppError {
    let code = match r.code {
        Code::InvalidValue => ErrorCode::BadRequest,
        _ => ErrorCode::PermissionDenied,
    };
    AppError::new(code, r.to_string())
}

/// What the move's server edit found.
enum Moved {
    NoCard,
    Refused(Refusal),
    Done { from: Option<String>, moved: bool },
}

/// The caller may write the document at all (observers may not).
fn may_write(at: &ForBoard, doc: DocName) -> Result<(), AppError> {
    if at.claims.access(at.board.id(), doc).can_write() {
        return Ok(());
    }
    Err(refused(Refusal::new(
        Code::ReadOnly,
        "this role may not change this document",
    )))
}

/// `POST /api/boards/{id}/cards/{card}/move {"to": section}`: moves a card to another section
/// when the caller may edit it where it is and add to the section it goes to, under the locks;
/// the check and the write are one server edit, so nothing can change in between.
pub async fn move_card(
    State(state): State<AppState>,
    at: ForBoard,
    Path((_, card)): Path<(String, String)>,
    body: Result<Json<MoveTo>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let Json(MoveTo { to }) = body?;
    may_write(&at, DocName::Canvas)?;
    let board = at.board.clone();
    if board.template.section(&to).is_none() {
        return Err(refused(Refusal::new(
            Code::InvalidValue,
            format!("section: unknown section {to:?}"),
        )));
    }
    let (session, _) = board.policy();
    let (role, sub) = (at.claims.role, at.claims.sub.clone());
    let out: Arc<Mutex<Option<Moved>>> = Arc::default();
    let sink = out.clone();
    let (id, target, owner_of) = (card.clone(), to.clone(), board.clone());
    ops::edit(&state, &board, DocName::Canvas, move |txn| {
        let found = match edits::live_item(txn, "cards", &id) {
            None => Moved::NoCard,
            Some(item) => {
                let held = edits::capture(txn, &item);
                let from = held.fields.get("section").and_then(Value::as_str);
                let template = owner_of.template.clone();
                let seat = Seat {
                    doc: DocName::Canvas,
                    role,
                    template: &template,
                    session: &session,
                };
                let owns = || {
                    held.owner
                        .as_deref()
                        .is_some_and(|t| owner_of.owns(&sub, &id, t))
                };
                match seat.may_move(from, owns, &target) {
                    Err(r) => Moved::Refused(r),
                    Ok(()) => {
                        let moved = from != Some(target.as_str());
                        if moved {
                            edits::move_to(txn, &item, &target);
                        }
                        Moved::Done {
                            from: from.map(str::to_owned),
                            moved,
                        }
                    }
                }
            }
        };
        *sink.lock().unwrap_or_else(|p| p.into_inner()) = Some(found);
        Value::Null
    })
    .await?;
    let found = out.lock().unwrap_or_else(|p| p.into_inner()).take();
    match found {
        Some(Moved::Done { from, moved }) => Ok(Json(
            json!({"ok": true, "card": card, "section": to, "from": from, "moved": moved}),
        )),
        Some(Moved::Refused(r)) => Err(refused(r)),
        Some(Moved::NoCard) | None => Err(AppError::new(ErrorCode::NotFound, "no such card")),
    }
}

/// `POST /api/boards/{id}/cards/{card}/restore`: takes back one's own deletion of a card.
pub async fn restore_card(
    state: State<AppState>,
    at: ForBoard,
    Path((_, card)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    restore(state, at, DocName::Canvas, card).await
}

/// `POST /api/boards/{id}/rows/{row}/restore`: the same for a gap row.
pub async fn restore_row(
    state: State<AppState>,
    at: ForBoard,
    Path((_, row)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    restore(state, at, DocName::Gap, row).await
}

/// Writes a deleted item back under its id when the caller deleted it and it is theirs (its
/// `owner` tag; the facilitator's own deletions too), and they may add it where it was.
async fn restore(
    State(state): State<AppState>,
    at: ForBoard,
    doc: DocName,
    id: String,
) -> Result<Json<Value>, AppError> {
    may_write(&at, doc)?;
    let board = at.board.clone();
    let key = author_key(doc, &id);
    let what = if doc == DocName::Gap { "row" } else { "card" };
    let (session, mode) = board.policy();
    let item = {
        let st = board.lock();
        let Some(t) = st
            .trash
            .get(&key)
            .filter(|t| t.item.hidden_at + TRASH_MS > now_ms())
        else {
            return Err(AppError::new(
                ErrorCode::NotFound,
                format!("no deleted {what} with this id to restore"),
            ));
        };
        let theirs = t
            .item
            .owner
            .as_deref()
            .is_some_and(|tag| board.owns(&at.claims.sub, &id, tag));
        if t.by != at.claims.sub || !(theirs || at.claims.role == Role::Facilitator) {
            return Err(refused(Refusal::new(
                Code::NotYourItem,
                format!("only its author may restore a deleted {what}"),
            )));
        }
        let author = st
            .authors
            .get(&key)
            .map(|a| Participant::author_text(a.role, &a.display, mode));
        HiddenItem {
            author: author.unwrap_or(t.item.author.clone()),
            merged_into: None,
            ..t.item.clone()
        }
    };
    let seat = Seat {
        doc,
        role: at.claims.role,
        template: &board.template,
        session: &session,
    };
    seat.open().map_err(refused)?;
    let section = item.fields.get("section").and_then(Value::as_str);
    seat.may_add(section).map_err(refused)?;
    let root = items_root(doc);
    let (rid, held) = (id.clone(), item);
    let written = ops::edit(&state, &board, doc, move |txn| {
        Value::Bool(edits::recreate(txn, root, &rid, &held))
    })
    .await?;
    if written != Value::Bool(true) {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            format!("another {what} is on the board under this id"),
        ));
    }
    board
        .update(|st| {
            st.trash.remove(&key);
        })
        .await?;
    Ok(Json(json!({"ok": true, what: id})))
}
