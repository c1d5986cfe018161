//! The board's history over HTTP: snapshots of every document with content (the canvas with its
//! themes, the gap, the party workspaces) — the facilitator's named ones, and automatic ones at
//! every step change and before every restore —, listing them, opening one read-only, comparing
//! it with the present in words, and restoring it as a new state through the server's edit
//! path. The stored form and the comparisons are `domain::history`; a snapshot shows each role
//! only what that role may see now (its documents, no hidden item, no `owner` tag but the
//! facilitator's).

use std::collections::BTreeMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tafel_protocol::{Claims, DocName, ErrorCode, Role};

use crate::board::Board;
use crate::domain::edits::items_root;
use crate::domain::history::{self, SnapshotMeta};
use crate::domain::state::{author_key, HiddenItem, Participant};
use crate::edge::{AppError, AppState, FacilitatorOf, ForBoard};
use crate::ops;
use crate::store::Store;

async fn list_of(state: &AppState, board: &Board) -> Result<Vec<SnapshotMeta>, AppError> {
    Ok(state
        .store
        .list_snapshots(board.id())
        .await?
        .iter()
        .filter_map(|m| serde_json::from_slice(m).ok())
        .collect())
}

/// `GET /api/boards/{id}/snapshots`: every snapshot, oldest first.
pub async fn list(State(state): State<AppState>, at: ForBoard) -> Result<Json<Value>, AppError> {
    Ok(Json(json!(list_of(&state, &at.board).await?)))
}

#[derive(Deserialize)]
pub struct NewSnapshot {
    name: String,
}

/// `POST /api/boards/{id}/snapshots` `{"name"}`: the facilitator's named snapshot.
pub async fn create(
    State(state): State<AppState>,
    FacilitatorOf(at): FacilitatorOf,
    body: Result<Json<NewSnapshot>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(body) = body?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            "a snapshot name is 1 to 120 characters",
        ));
    }
    let meta = ops::snapshot(&state, &at.board, name, false).await?;
    let who = at.who().await;
    audit(
        &at.board,
        &who,
        "snapshot",
        json!({"snapshot": meta.id, "name": meta.name}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!(meta))).into_response())
}

async fn audit(
    board: &Board,
    who: &Participant,
    action: &str,
    detail: Value,
) -> Result<(), AppError> {
    board
        .update(|st| board.audit(st, who, action, detail.clone()))
        .await?;
    Ok(())
}

/// A snapshot as a role may see it: its entry, its items per document and the board's themes
/// then.
struct Visible {
    meta: SnapshotMeta,
    docs: BTreeMap<DocName, BTreeMap<String, HiddenItem>>,
    /// The canvas's themes then (`None` when the snapshot has no canvas).
    themes: Option<BTreeMap<String, Value>>,
}

/// A snapshot's items per document, as `claims` may see them now: only documents the role may
/// read, and no item that is hidden now.
async fn visible(
    state: &AppState,
    board: &Board,
    claims: &Claims,
    id: &str,
) -> Result<Visible, AppError> {
    let meta = list_of(state, board)
        .await?
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such snapshot"))?;
    let data = state
        .store
        .get_snapshot(board.id(), id)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such snapshot"))?;
    let docs = history::decode(&data)
        .ok_or_else(|| AppError::new(ErrorCode::Internal, "the snapshot cannot be read"))?;
    let hidden: Vec<String> = board.lock().hidden.keys().cloned().collect();
    let mut out = BTreeMap::new();
    let mut themes = None;
    for (doc, bytes) in docs {
        if !claims.access(board.id(), doc).can_read() {
            continue;
        }
        let mut items = history::items(&bytes, items_root(doc));
        items.retain(|item, _| !hidden.contains(&author_key(doc, item)));
        out.insert(doc, items);
        if doc == DocName::Canvas {
            themes = Some(history::themes(&bytes));
        }
    }
    Ok(Visible {
        meta,
        docs: out,
        themes,
    })
}

/// `GET /api/boards/{id}/snapshots/{snapshot}`: the snapshot, read-only, as the export shows
/// documents (`{"canvas": {"cards": …}, "gap": {"rows": …}}`).
pub async fn open(
    State(state): State<AppState>,
    at: ForBoard,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let Visible { meta, docs, themes } = visible(&state, &at.board, &at.claims, &id).await?;
    let owner = at.claims.role == Role::Facilitator;
    let documents: serde_json::Map<String, Value> = docs
        .iter()
        .map(|(doc, items)| {
            let items: serde_json::Map<String, Value> = items
                .iter()
                .map(|(id, item)| (id.clone(), history::item_json(item, owner)))
                .collect();
            let mut d = json!({ items_root(*doc): items });
            if let (DocName::Canvas, Some(themes)) = (doc, &themes) {
                d["themes"] = json!(themes);
            }
            (doc.as_str().to_owned(), d)
        })
        .collect();
    Ok(Json(json!({"snapshot": meta, "documents": documents})))
}

/// `GET /api/boards/{id}/snapshots/{snapshot}/compare`: what changed since the snapshot, per
/// section and per gap row, in words.
pub async fn compare(
    State(state): State<AppState>,
    at: ForBoard,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let Visible { meta, docs, themes } = visible(&state, &at.board, &at.claims, &id).await?;
    let mut changes = Vec::new();
    for (doc, then) in &docs {
        let bytes = ops::state_now(&state, &at.board, *doc).await?;
        let now = history::items(&bytes, items_root(*doc));
        changes.extend(history::compare(&at.board.template, *doc, then, &now));
        if let (DocName::Canvas, Some(themes)) = (doc, &themes) {
            changes.extend(history::compare_themes(themes, &history::themes(&bytes)));
        }
    }
    let count = |k: &str| changes.iter().filter(|c| c.kind == k).count();
    Ok(Json(json!({
        "snapshot": meta,
        "added": count("added"),
        "changed": count("changed"),
        "removed": count("removed"),
        "changes": changes.iter().map(history::Change::json).collect::<Vec<_>>(),
    })))
}

/// `POST /api/boards/{id}/snapshots/{snapshot}/restore`: takes an automatic snapshot of the
/// present, then writes the snapshot's content back as a new state, through the server's edit
/// path (stored, sent to everyone, judged against the zones like every server edit). Items
/// hidden now stay hidden.
pub async fn restore(
    State(state): State<AppState>,
    FacilitatorOf(at): FacilitatorOf,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let Visible { meta, docs, themes } = visible(&state, &at.board, &at.claims, &id).await?;
    let before = ops::snapshot(
        &state,
        &at.board,
        &format!("Voor herstel van “{}”", meta.name),
        true,
    )
    .await?;
    let hidden: Vec<String> = at.board.lock().hidden.keys().cloned().collect();
    let mut counts = json!({});
    for (doc, then) in docs {
        let root = items_root(doc);
        let hidden = hidden.clone();
        let themes = themes.clone().filter(|_| doc == DocName::Canvas);
        let result = ops::edit(&state, &at.board, doc, move |txn| {
            let skip = |item: &str| hidden.contains(&author_key(doc, item));
            let (removed, rewritten, recreated) = history::restore(txn, root, &then, &skip);
            let mut counts =
                json!({"removed": removed, "rewritten": rewritten, "recreated": recreated});
            if let Some(themes) = &themes {
                counts["themes"] = json!(history::restore_themes(txn, themes));
            }
            counts
        })
        .await?;
        counts[doc.as_str()] = result;
    }
    let who = at.who().await;
    audit(
        &at.board,
        &who,
        "snapshot-restore",
        json!({"snapshot": meta.id, "name": meta.name, "before": before.id}),
    )
    .await?;
    Ok(Json(
        json!({"ok": true, "restored": meta.id, "before": before.id, "counts": counts}),
    ))
}

/// `DELETE /api/boards/{id}/snapshots/{snapshot}`: the facilitator erases one snapshot.
pub async fn delete(
    State(state): State<AppState>,
    FacilitatorOf(at): FacilitatorOf,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    if !state.store.delete_snapshot(at.board.id(), &id).await? {
        return Err(AppError::new(ErrorCode::NotFound, "no such snapshot"));
    }
    let who = at.who().await;
    audit(&at.board, &who, "snapshot-delete", json!({"snapshot": id})).await?;
    Ok(StatusCode::NO_CONTENT)
}
