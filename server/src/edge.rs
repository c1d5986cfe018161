//! What every HTTP handler shares, apart from the routes: the application state, the one
//! `AppError` that turns every failure into the contract's JSON error body, the extractors for
//! "a verified token" (`Auth`), "a token for the board in the path" (`ForBoard`) and "the
//! facilitator of the board in the path" (`FacilitatorOf`), and small lookups. The handler
//! modules (`boards`, `session`, `moderation`, `people`) import this and `ops`, never each
//! other, and `http` only wires them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tafel_protocol::{BoardId, Claims, ErrorCode, Role};
use tokio::sync::Semaphore;

use crate::auth::{now_secs, AuthError, Keys};
use crate::board::Board;
use crate::config::Config;
use crate::domain::state::Participant;
use crate::domain::Refusal;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::{BoardMeta, Store, StoreError};

#[derive(Clone)]
pub struct AppState {
    pub keys: Arc<Keys>,
    /// The store behind its health flag (new connections get 503 while it is unhealthy).
    pub store: Arc<crate::store::Watched>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    /// One permit per open WebSocket: the bound on simultaneous connections.
    pub connections: Arc<Semaphore>,
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

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        AppError::new(r.code, r.message)
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
pub fn invite_only() -> AppError {
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
            refuse_removed(&board, claims)?;
        }
    }
    Ok(())
}

/// Refuses a personal token whose participant the facilitator removed from `board`.
pub fn refuse_removed(board: &Board, claims: &Claims) -> Result<(), AppError> {
    if board.is_removed(&claims.sub) {
        return Err(AppError::new(
            ErrorCode::Removed,
            "the facilitator removed you from this board",
        ));
    }
    Ok(())
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

pub fn forbidden(msg: &str) -> AppError {
    AppError::new(ErrorCode::Forbidden, msg)
}

pub fn parse_board(id: &str) -> Result<BoardId, AppError> {
    BoardId::parse(id).map_err(|_| AppError::new(ErrorCode::NotFound, "no such board"))
}

pub async fn existing_board(state: &AppState, id: &BoardId) -> Result<BoardMeta, AppError> {
    state
        .store
        .get_board(id)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such board"))
}

pub fn require_facilitator(claims: &Claims, board: Option<&BoardId>) -> Result<(), AppError> {
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

/// A verified personal token that may open the live board named by the path's `{id}`: 404 for
/// a malformed or unknown board, 403 for a token of another board (checked before any lookup).
pub struct ForBoard {
    pub claims: Claims,
    pub board: Arc<Board>,
}

impl ForBoard {
    /// The caller as the board shows them (an employee's pseudonym is made on first sight).
    pub async fn who(&self) -> Participant {
        self.board
            .participant(&self.claims.sub, self.claims.role, &self.claims.name)
            .await
    }
}

impl FromRequestParts<AppState> for ForBoard {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Auth(claims) = Auth::from_request_parts(parts, state).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::new(ErrorCode::NotFound, "no such board"))?;
        let id = params
            .get("id")
            .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such board"))?;
        let id = parse_board(id)?;
        if !claims.may_open_board(&id) {
            return Err(forbidden("this token is for another board"));
        }
        let board = board_or_404(state, &id).await?;
        Ok(ForBoard { claims, board })
    }
}

/// The facilitator of the board named by the path's `{id}`.
pub struct FacilitatorOf(pub ForBoard);

impl FromRequestParts<AppState> for FacilitatorOf {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let b = ForBoard::from_request_parts(parts, state).await?;
        if b.claims.role != Role::Facilitator {
            return Err(forbidden("only a facilitator may do this"));
        }
        Ok(FacilitatorOf(b))
    }
}

/// The live board, or 404.
pub async fn board_or_404(state: &AppState, id: &BoardId) -> Result<Arc<Board>, AppError> {
    state
        .registry
        .board(id)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such board"))
}

/// The answer when a document could not be reached.
pub fn unavailable() -> AppError {
    AppError::new(
        ErrorCode::StoreUnavailable,
        "the store is unavailable; try again shortly",
    )
}
