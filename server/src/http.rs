//! The HTTP edge: routes, the bearer-token extractor, one `AppError` that turns every failure into
//! the contract's JSON error body, and the WebSocket upgrade with its checks (401, 403, 404, 503)
//! made before the upgrade.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::json;
use tafel_protocol::{BoardId, BoardScope, Claims, DocKey, DocName, ErrorCode, Role};
use tokio::sync::Semaphore;

use crate::auth::{now_secs, parse_ttl, AuthError, Keys};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::{BoardMeta, Store, StoreError};
use crate::templates::TEMPLATES;
use crate::ws::{self, WsSession};

#[derive(Clone)]
pub struct AppState {
    pub keys: Arc<Keys>,
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    /// One permit per open WebSocket: the bound on simultaneous connections.
    pub connections: Arc<Semaphore>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/templates", get(templates))
        .route("/api/boards", get(list_boards).post(create_board))
        .route("/api/boards/{id}", get(get_board).delete(delete_board))
        .route("/api/boards/{id}/invites", post(create_invite))
        .route("/api/boards/{id}/export", get(export))
        .route("/ws/{board}/{doc}", get(ws_upgrade))
        .with_state(state)
}

/// The one error type of the HTTP edge.
#[derive(Debug)]
pub struct AppError {
    code: ErrorCode,
    message: String,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"error": self.code.as_str(), "message": self.message});
        (status, Json(body)).into_response()
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "store error at the HTTP edge");
        AppError::new(
            ErrorCode::StoreUnavailable,
            "the store is unavailable; try again shortly",
        )
    }
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        AppError::new(ErrorCode::Unauthorized, e.to_string())
    }
}

impl From<JsonRejection> for AppError {
    fn from(e: JsonRejection) -> Self {
        AppError::new(ErrorCode::BadRequest, e.body_text())
    }
}

/// A verified token from `Authorization: Bearer ...`.
pub struct Auth(pub Claims);

impl FromRequestParts<AppState> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            AppError::new(
                ErrorCode::Unauthorized,
                "send a token as Authorization: Bearer TOKEN",
            )
        })?;
        Ok(Auth(state.keys.verify(token, now_secs())?))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn forbidden(msg: &str) -> AppError {
    AppError::new(ErrorCode::Forbidden, msg)
}

fn parse_board(id: &str) -> Result<BoardId, AppError> {
    BoardId::parse(id).map_err(|_| AppError::new(ErrorCode::NotFound, "no such board"))
}

async fn existing_board(state: &AppState, id: &BoardId) -> Result<BoardMeta, AppError> {
    state
        .store
        .get_board(id)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such board"))
}

fn require_facilitator(claims: &Claims, board: Option<&BoardId>) -> Result<(), AppError> {
    if claims.role != Role::Facilitator {
        return Err(forbidden("only a facilitator may do this"));
    }
    if let Some(b) = board {
        if !claims.may_open_board(b) {
            return Err(forbidden("this token is for another board"));
        }
    }
    Ok(())
}

async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({"ready": true}))).into_response(),
        Ok(Err(e)) => AppError::from(e).into_response(),
        Err(_) => AppError::new(
            ErrorCode::StoreUnavailable,
            "the store did not answer in time",
        )
        .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn templates(_auth: Auth) -> Json<serde_json::Value> {
    Json(json!(TEMPLATES
        .iter()
        .map(|t| json!({"id": t.id, "title": t.title}))
        .collect::<Vec<_>>()))
}

#[derive(Deserialize)]
struct CreateBoard {
    title: String,
    template: String,
}

async fn create_board(
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
    if !TEMPLATES.iter().any(|t| t.id == body.template) {
        return Err(AppError::new(
            ErrorCode::BadRequest,
            format!(
                "unknown template {:?}; see GET /api/templates",
                body.template
            ),
        ));
    }
    let id = BoardId::parse(
        &Alphanumeric
            .sample_string(&mut rand::rng(), 12)
            .to_lowercase(),
    )
    .map_err(|_| AppError::new(ErrorCode::Internal, "could not make a board id"))?;
    let meta = BoardMeta {
        id,
        title: title.to_owned(),
        template: body.template,
        created_at: now_secs(),
    };
    state.store.put_board(&meta).await?;
    tracing::info!(board = %meta.id, by = %claims.sub, "board created");
    Ok((StatusCode::CREATED, Json(board_json(&meta))).into_response())
}

fn board_json(meta: &BoardMeta) -> serde_json::Value {
    json!({
        "id": meta.id,
        "title": meta.title,
        "template": meta.template,
        "created_at": meta.created_at,
        "documents": DocName::ALL.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
    })
}

async fn list_boards(
    State(state): State<AppState>,
    Auth(claims): Auth,
) -> Result<Json<serde_json::Value>, AppError> {
    require_facilitator(&claims, None)?;
    let mut boards = state.store.list_boards().await?;
    boards.retain(|b| claims.may_open_board(&b.id));
    boards.sort_by_key(|b| std::cmp::Reverse(b.created_at));
    Ok(Json(json!(boards
        .iter()
        .map(board_json)
        .collect::<Vec<_>>())))
}

async fn get_board(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, AppError> {
    let id = parse_board(&id)?;
    if !claims.may_open_board(&id) {
        return Err(forbidden("this token is for another board"));
    }
    Ok(Json(board_json(&existing_board(&state, &id).await?)))
}

async fn delete_board(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = parse_board(&id)?;
    require_facilitator(&claims, Some(&id))?;
    existing_board(&state, &id).await?;
    state.registry.begin_delete(&id).await;
    let result = state.store.delete_board(&id).await;
    state.registry.end_delete(&id);
    result?;
    tracing::info!(board = %id, by = %claims.sub, "board deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct CreateInvite {
    role: String,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

async fn create_invite(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<CreateInvite>, JsonRejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    let id = parse_board(&id)?;
    require_facilitator(&claims, Some(&id))?;
    let Json(body) = body?;
    existing_board(&state, &id).await?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        AppError::new(
            ErrorCode::BadRequest,
            "role must be facilitator, employer, union, employee or observer",
        )
    })?;
    let ttl = parse_ttl(body.ttl.as_deref().unwrap_or("8h"))
        .map_err(|e| AppError::new(ErrorCode::BadRequest, e))?;
    let sub = format!("p-{}", Alphanumeric.sample_string(&mut rand::rng(), 16));
    let name = body.name.unwrap_or_default();
    let token = state
        .keys
        .issue(&sub, &name, role, id.as_str(), ttl, now_secs());
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let url = format!("http://{host}/?board={id}#token={token}");
    Ok(Json(
        json!({"token": token, "url": url, "role": role, "expires_in": ttl.as_secs()}),
    ))
}

#[derive(Deserialize)]
struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
}

async fn export(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Json<serde_json::Value>, AppError> {
    let id = parse_board(&id)?;
    if !claims.may_open_board(&id) {
        return Err(forbidden("this token is for another board"));
    }
    if q.format.as_deref().is_some_and(|f| f != "json") {
        return Err(AppError::new(ErrorCode::BadRequest, "format must be json"));
    }
    let meta = existing_board(&state, &id).await?;
    let mut docs = serde_json::Map::new();
    for name in DocName::ALL {
        if claims.access(&id, name).can_read() {
            let key = DocKey::new(id.clone(), name);
            let content = state.registry.export(&key).await.ok_or_else(|| {
                AppError::new(
                    ErrorCode::StoreUnavailable,
                    "the store is unavailable; try again shortly",
                )
            })?;
            docs.insert(name.as_str().to_owned(), content);
        }
    }
    Ok(Json(json!({"board": board_json(&meta), "documents": docs})))
}

#[derive(Deserialize)]
struct WsQuery {
    #[serde(default)]
    token: String,
}

async fn ws_upgrade(
    State(state): State<AppState>,
    Path((board, doc)): Path<(String, String)>,
    Query(q): Query<WsQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    let claims = state.keys.verify(&q.token, now_secs())?;
    let board = parse_board(&board)?;
    let doc =
        DocName::parse(&doc).map_err(|e| AppError::new(ErrorCode::NotFound, e.to_string()))?;
    if !claims.may_open_board(&board) {
        return Err(forbidden("this token is for another board"));
    }
    let access = claims.access(&board, doc);
    if !access.can_read() {
        return Err(forbidden("this role may not open this document"));
    }
    existing_board(&state, &board).await?;
    let upgrade = upgrade.map_err(|e| AppError::new(ErrorCode::BadRequest, e.body_text()))?;
    let permit = state.connections.clone().try_acquire_owned().map_err(|_| {
        AppError::new(
            ErrorCode::Overloaded,
            "too many connections; try again shortly",
        )
    })?;
    let session = WsSession {
        key: DocKey::new(board, doc),
        claims,
        access,
        registry: state.registry.clone(),
        metrics: state.metrics.clone(),
        config: state.config.clone(),
        permit,
    };
    let limit = state.config.max_message_bytes;
    Ok(upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| ws::serve(socket, session)))
}
