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
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tafel_protocol::{BoardId, Claims, DocKey, DocName, ErrorCode, Role};
use tokio::sync::Semaphore;
use tower_http::services::{ServeDir, ServeFile};

use crate::auth::{now_secs, AuthError, Keys};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::{BoardMeta, Store, StoreError};
use crate::ws::{self, WsSession};
use crate::{boards, people, session};

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
    let web = state.config.web_dir.clone();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/templates", get(boards::templates))
        .route("/api/templates/{id}", get(boards::template))
        .route("/api/boards", get(boards::list).post(boards::create))
        .route("/api/boards/{id}", get(boards::get).delete(boards::delete))
        .route(
            "/api/boards/{id}/invites",
            get(people::invites).post(people::invite),
        )
        .route("/api/boards/{id}/invites/{invite}", delete(people::revoke))
        .route("/api/boards/{id}/participants", get(people::participants))
        .route(
            "/api/boards/{id}/participants/{participant}",
            delete(people::remove),
        )
        .route("/api/boards/{id}/join", post(people::join))
        .route("/api/boards/{id}/export", get(boards::export))
        .route("/api/boards/{id}/control", post(session::control))
        .route("/api/boards/{id}/audit", get(session::audit))
        .route(
            "/api/boards/{id}/drafts",
            get(session::drafts).post(session::add_draft),
        )
        .route(
            "/api/boards/{id}/drafts/{draft}",
            delete(session::remove_draft),
        )
        .route(
            "/api/boards/{id}/rounds/{round}/ballot",
            get(session::ballot),
        )
        .route("/api/boards/{id}/rounds/{round}/votes", post(session::vote))
        .route(
            "/api/boards/{id}/rounds/{round}/votes/{card}",
            delete(session::unvote),
        )
        .route("/ws/{board}/{doc}", get(ws_upgrade));
    // Test-only: make one document's actor panic (see `--test-hooks`).
    let app = if state.config.test_hooks {
        app.route("/api/boards/{id}/docs/{doc}/test-panic", post(test_panic))
    } else {
        app
    };
    let app = app.with_state(state);
    // The built web client when there is one; otherwise a page that says how to build it.
    match web.filter(|dir| dir.join("index.html").is_file()) {
        Some(dir) => {
            let index = dir.join("index.html");
            app.fallback_service(ServeDir::new(dir).fallback(ServeFile::new(index)))
        }
        None => app.route("/", get(index)),
    }
}

/// `--test-hooks` only: the document's actor panics, as a bug would make it.
async fn test_panic(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path((id, doc)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let id = parse_board(&id)?;
    require_facilitator(&claims, Some(&id))?;
    let doc = tafel_protocol::DocName::parse(&doc)
        .map_err(|e| AppError::new(ErrorCode::BadRequest, e.to_string()))?;
    let board = crate::boards::board_or_404(&state, &id).await?;
    let key = tafel_protocol::DocKey::new(id, doc);
    if state.registry.test_panic(&key, &board).await {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(AppError::new(
            ErrorCode::StoreUnavailable,
            "document not available",
        ))
    }
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

/// A verified personal token from `Authorization: Bearer ...`: never an invite token (403
/// `invite-token`), and never one of a participant the facilitator removed (403 `removed`).
/// What every endpoint but joining, the board summary and the template list takes.
pub struct Auth(pub Claims);

impl FromRequestParts<AppState> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let AnyToken(claims) = AnyToken::from_request_parts(parts, state).await?;
        if claims.is_invite() {
            return Err(invite_only());
        }
        Ok(Auth(claims))
    }
}

/// The refusal of an invite token outside joining.
pub(crate) fn invite_only() -> AppError {
    AppError::new(
        ErrorCode::InviteToken,
        "an invite link only lets you join: POST /api/boards/{id}/join answers your own token",
    )
}

/// Any verified token, invite tokens included (the board summary and the template list); a
/// removed participant's token is still refused.
pub struct AnyToken(pub Claims);

impl FromRequestParts<AppState> for AnyToken {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            AppError::new(
                ErrorCode::Unauthorized,
                "send a token as Authorization: Bearer TOKEN",
            )
        })?;
        let claims = state.keys.verify(token, now_secs())?;
        refuse_if_removed(state, &claims).await?;
        Ok(AnyToken(claims))
    }
}

/// 403 `removed` for a board token whose participant the facilitator removed.
async fn refuse_if_removed(state: &AppState, claims: &Claims) -> Result<(), AppError> {
    if let Ok(tafel_protocol::BoardScope::One(id)) = claims.scope() {
        if let Some(board) = state.registry.board(&id).await? {
            crate::people::refuse_removed(&board, claims)?;
        }
    }
    Ok(())
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

pub(crate) fn forbidden(msg: &str) -> AppError {
    AppError::new(ErrorCode::Forbidden, msg)
}

pub(crate) fn parse_board(id: &str) -> Result<BoardId, AppError> {
    BoardId::parse(id).map_err(|_| AppError::new(ErrorCode::NotFound, "no such board"))
}

pub(crate) async fn existing_board(state: &AppState, id: &BoardId) -> Result<BoardMeta, AppError> {
    state
        .store
        .get_board(id)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such board"))
}

pub(crate) fn require_facilitator(
    claims: &Claims,
    board: Option<&BoardId>,
) -> Result<(), AppError> {
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
    if claims.is_invite() {
        return Err(invite_only());
    }
    let access = claims.access(&board, doc);
    if !access.can_read() {
        return Err(forbidden("this role may not open this document"));
    }
    let board_state = crate::boards::board_or_404(&state, &board).await?;
    people::refuse_removed(&board_state, &claims)?;
    let who = Arc::new(
        board_state
            .participant(&claims.sub, claims.role, &claims.name)
            .await,
    );
    people::note(&board_state, &who, None).await;
    let upgrade = upgrade.map_err(|e| AppError::new(ErrorCode::BadRequest, e.body_text()))?;
    let permit = state.connections.clone().try_acquire_owned().map_err(|_| {
        AppError::new(
            ErrorCode::Overloaded,
            "too many connections; try again shortly",
        )
    })?;
    let session = WsSession {
        key: DocKey::new(board, doc),
        board: board_state,
        who,
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
