//! Board endpoints: templates, create (seeding the documents from the template), list, get,
//! delete, invites, joining with a chosen name, and the role-filtered JSON export.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{json, Value};
use tafel_protocol::{BoardId, BoardScope, DocKey, DocName, ErrorCode, Role};

use crate::auth::now_secs;
use crate::board::Board;
use crate::domain::edits;
use crate::edge::unavailable;
use crate::edge::{
    board_or_404, existing_board, forbidden, parse_board, require_facilitator, AnyToken, AppError,
    AppState, Auth, FacilitatorOf, ForBoard,
};
use crate::ops;
use crate::store::{BoardMeta, Store};

pub async fn templates(State(state): State<AppState>, _auth: AnyToken) -> Json<Value> {
    Json(json!(state
        .registry
        .templates()
        .all()
        .iter()
        .map(|t| json!({"id": t.id, "title": t.title, "level": t.level, "description": t.description}))
        .collect::<Vec<_>>()))
}

/// The whole template: sections with their rules, steps, phases, themes seed, staalkaart.
pub async fn template(
    State(state): State<AppState>,
    _auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let t = state
        .registry
        .templates()
        .get(&id)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such template"))?;
    Ok(Json(serde_json::to_value(&*t).unwrap_or(Value::Null)))
}

#[derive(Deserialize)]
pub struct CreateBoard {
    title: String,
    template: String,
}

pub async fn create(
    State(state): State<AppState>,
    Auth(claims): Auth,
    body: Result<Json<CreateBoard>, JsonRejection>,
) -> Result<Response, AppError> {
    if claims.role != Role::Facilitator || claims.scope() != Ok(BoardScope::All) {
        return Err(forbidden(
            "creating boards needs a facilitator token for board \"*\"",
        ));
    }
    let Json(body) = body?;
    let title = body.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            "a title is 1 to 200 characters",
        ));
    }
    let Some(template) = state.registry.templates().get(&body.template) else {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            format!(
                "unknown template {:?}; see GET /api/templates",
                body.template
            ),
        ));
    };
    let id = BoardId::parse(
        &Alphanumeric
            .sample_string(&mut rand::rng(), 12)
            .to_lowercase(),
    )
    .map_err(|_| AppError::new(ErrorCode::Internal, "could not make a board id"))?;
    let meta = BoardMeta {
        id: id.clone(),
        title: title.to_owned(),
        template: template.id.clone(),
        created_at: now_secs(),
    };
    state.store.put_board(&meta).await?;
    let board = board_or_404(&state, &id).await?;
    seed(&state, &board).await?;
    tracing::info!(board = %meta.id, template = %meta.template, "board created");
    Ok((StatusCode::CREATED, Json(board_json(&meta))).into_response())
}

/// Writes a new board's starting content: the canvas and gap `meta`, the board's own copy of
/// the template's themes (editable per board), and the session mirror in `control`.
async fn seed(state: &AppState, board: &Arc<Board>) -> Result<(), AppError> {
    let t = board.template.clone();
    let meta = json!({"title": board.meta.title, "template": t.id, "level": t.level});
    let themes: Vec<(String, Value)> = t
        .themes
        .iter()
        .map(|th| {
            (
                th.id.clone(),
                json!({"name": th.name, "description": th.description}),
            )
        })
        .collect();
    let canvas_meta = meta.clone();
    ops::edit(state, board, DocName::Canvas, move |txn| {
        edits::seed(txn, &canvas_meta, &themes);
        Value::Null
    })
    .await?;
    ops::edit(state, board, DocName::Gap, move |txn| {
        edits::seed(txn, &meta, &[]);
        Value::Null
    })
    .await?;
    ops::mirror(state, board).await
}

fn board_json(meta: &BoardMeta) -> Value {
    json!({
        "id": meta.id,
        "title": meta.title,
        "template": meta.template,
        "created_at": meta.created_at,
        "documents": DocName::ALL.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
    })
}

pub async fn list(
    State(state): State<AppState>,
    Auth(claims): Auth,
) -> Result<Json<Value>, AppError> {
    require_facilitator(&claims, None)?;
    let mut boards = state.store.list_boards().await?;
    boards.retain(|b| claims.may_open_board(&b.id));
    boards.sort_by_key(|b| std::cmp::Reverse(b.created_at));
    Ok(Json(json!(boards
        .iter()
        .map(board_json)
        .collect::<Vec<_>>())))
}

/// The board's summary. An invite token may read it too (the web client shows the title
/// before asking for a name); it then says so (`"you": {"invite": true}`) and names no one.
pub async fn get(
    State(state): State<AppState>,
    AnyToken(claims): AnyToken,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = parse_board(&id)?;
    if !claims.may_open_board(&id) {
        return Err(forbidden("this token is for another board"));
    }
    let mut out = board_json(&existing_board(&state, &id).await?);
    let board = board_or_404(&state, &id).await?;
    if let Some(inv) = &claims.inv {
        let revoked = board
            .lock()
            .invites
            .get(inv)
            .is_none_or(|i| i.revoked_at.is_some());
        if revoked {
            return Err(AppError::new(
                ErrorCode::InviteRevoked,
                "the facilitator revoked this invite; ask for a new link",
            ));
        }
        out["you"] = json!({"role": claims.role, "display": null, "invite": true});
        return Ok(Json(out));
    }
    let me = board
        .participant(&claims.sub, claims.role, &claims.name)
        .await;
    ops::note(&board, &me, None).await;
    out["you"] = json!({"role": claims.role, "display": me.display, "invite": false});
    Ok(Json(out))
}

pub async fn delete(
    State(state): State<AppState>,
    FacilitatorOf(at): FacilitatorOf,
) -> Result<StatusCode, AppError> {
    let id = at.board.id().clone();
    drop(at);
    state.registry.begin_delete(&id).await;
    let result = state.store.delete_board(&id).await;
    state.registry.end_delete(&id);
    result?;
    tracing::info!(board = %id, "board deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/boards/{id}/mine`: the ids of the canvas cards and gap rows the caller created, as
/// the server knows from their `owner` tags (so a device that did not make a card — a revealed
/// draft, another phone of the same person — can still offer its author to edit it). Only the
/// caller's own items; nobody learns whose the others are.
pub async fn mine(State(state): State<AppState>, at: ForBoard) -> Result<Json<Value>, AppError> {
    let ForBoard { claims, board } = at;
    let id = board.id().clone();
    let mut out = serde_json::Map::new();
    for (name, items) in [(DocName::Canvas, "cards"), (DocName::Gap, "rows")] {
        let mut own: Vec<String> = Vec::new();
        if claims.access(&id, name).can_read() {
            let content = state
                .registry
                .export(&DocKey::new(id.clone(), name), &board)
                .await
                .ok_or_else(unavailable)?;
            if let Some(Value::Object(map)) = content.get(items) {
                own = map
                    .iter()
                    .filter(|(item, v)| {
                        v.get("owner")
                            .and_then(Value::as_str)
                            .is_some_and(|tag| board.owns(&claims.sub, item, tag))
                    })
                    .map(|(item, _)| item.clone())
                    .collect();
            }
        }
        out.insert(name.as_str().to_owned(), json!(own));
    }
    Ok(Json(Value::Object(out)))
}

/// Every document the role may read, plus the public session state; the facilitator also gets
/// the audit log and the hidden items (held on the server, in no document).
pub async fn export(
    State(state): State<AppState>,
    at: ForBoard,
    Query(q): Query<ExportQuery>,
) -> Result<Json<Value>, AppError> {
    if q.format.as_deref().is_some_and(|f| f != "json") {
        return Err(AppError::new(ErrorCode::BadRequest, "format must be json"));
    }
    let ForBoard { claims, board } = at;
    let id = board.id().clone();
    let meta = board.meta.clone();
    let mut docs = serde_json::Map::new();
    for name in DocName::ALL {
        if claims.access(&id, name).can_read() {
            let key = DocKey::new(id.clone(), name);
            let mut content = state
                .registry
                .export(&key, &board)
                .await
                .ok_or_else(unavailable)?;
            if claims.role != Role::Facilitator {
                for items in ["cards", "rows"] {
                    if let Some(Value::Object(map)) = content.get_mut(items) {
                        map.retain(|_, item| item.get("hidden") != Some(&Value::Bool(true)));
                        for item in map.values_mut() {
                            if let Value::Object(o) = item {
                                o.remove("owner");
                            }
                        }
                    }
                }
            }
            docs.insert(name.as_str().to_owned(), content);
        }
    }
    let (session, audit) = {
        let st = board.lock();
        (
            st.session_json(now_secs() * 1000),
            serde_json::to_value(&st.audit).unwrap_or(Value::Null),
        )
    };
    let mut out = json!({"board": board_json(&meta), "session": session, "documents": docs});
    if claims.role == Role::Facilitator {
        out["audit"] = audit;
        // Hidden and merged items are in no document; the facilitator's export holds them.
        out["hidden"] = board.lock().hidden_json();
    }
    Ok(Json(out))
}
