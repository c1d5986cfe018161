//! The HTTP routes, the probes, and the WebSocket upgrade with its checks (401, 403, 404, 503)
//! made before the upgrade. Handlers live in `boards`, `session`, `moderation` and `people`;
//! what they share (state, errors, extractors) in `edge`, how they carry changes out in `ops`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tafel_protocol::{DocKey, DocName, ErrorCode};
use tower_http::services::{ServeDir, ServeFile};

use crate::auth::now_secs;
use crate::store::{HookChange, HookReport, Store};
use crate::ws::{self, WsSession};
use crate::{boards, history, people, session};

pub use crate::edge::{
    board_or_404, existing_board, forbidden, invite_only, parse_board, refuse_removed,
    require_facilitator, AnyToken, AppError, AppState, Auth,
};

/// Largest JSON export `POST /api/boards/import` reads, in bytes.
const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let web = state.config.web_dir.clone();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/templates", get(boards::templates))
        .route("/api/templates/{id}", get(boards::template))
        .route("/api/boards", get(boards::list).post(boards::create))
        .route(
            "/api/boards/import",
            post(boards::import).layer(DefaultBodyLimit::max(IMPORT_LIMIT)),
        )
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
        .route("/api/signin", post(people::signin))
        .route("/api/boards/{id}/export", get(boards::export))
        .route("/api/boards/{id}/mine", get(boards::mine))
        .route("/api/boards/{id}/control", post(session::control))
        .route("/api/boards/{id}/next-round", post(boards::next_round))
        .route(
            "/api/boards/{id}/snapshots",
            get(history::list).post(history::create),
        )
        .route(
            "/api/boards/{id}/snapshots/{snapshot}",
            get(history::open).delete(history::delete),
        )
        .route(
            "/api/boards/{id}/snapshots/{snapshot}/compare",
            get(history::compare),
        )
        .route(
            "/api/boards/{id}/snapshots/{snapshot}/restore",
            post(history::restore),
        )
        .route(
            "/api/boards/{id}/cards/{card}/move",
            post(crate::cards::move_card),
        )
        .route(
            "/api/boards/{id}/cards/{card}/restore",
            post(crate::cards::restore_card),
        )
        .route(
            "/api/boards/{id}/rows/{row}/restore",
            post(crate::cards::restore_row),
        )
        .route("/api/boards/{id}/audit", get(session::audit))
        .route("/api/boards/{id}/hidden", get(crate::moderation::hidden))
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
        .route("/ws/{board}/{doc}", get(ws_upgrade))
        // An unknown path under /api/ is an error, never the web client's index.html.
        .route("/api", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
        .method_not_allowed_fallback(method_not_allowed);
    // Test-only: make one document's actor panic (see `--test-hooks`).
    let app = if state.config.test_hooks {
        app.route("/api/boards/{id}/docs/{doc}/test-panic", post(test_panic))
            .route(
                "/api/test-hooks/store",
                get(test_store).post(test_store_set),
            )
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
    let board = board_or_404(&state, &id).await?;
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

/// `--test-hooks` only: what the store hooks do now (see `store::StoreHooks`).
async fn test_store(
    State(state): State<AppState>,
    Auth(claims): Auth,
) -> Result<Json<HookReport>, AppError> {
    require_facilitator(&claims, None)?;
    Ok(Json(state.store.report()))
}

/// `--test-hooks` only: sets store hooks, e.g. `{"hold_writes":true}`; fields left out are kept.
async fn test_store_set(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Json(change): Json<HookChange>,
) -> Result<Json<HookReport>, AppError> {
    require_facilitator(&claims, None)?;
    let settings = state.store.hooks().change(change);
    tracing::warn!(?settings, "test hook: store hooks changed");
    Ok(Json(state.store.report()))
}

async fn api_not_found(uri: axum::http::Uri) -> AppError {
    AppError::new(
        ErrorCode::NotFound,
        format!("no such endpoint: {}; see docs/api.md", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> AppError {
    AppError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
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
    mut req: Request,
) -> Result<Response, AppError> {
    let upgrade = upgrade_accept(req.headers());
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
    let board_state = board_or_404(&state, &board).await?;
    refuse_removed(&board_state, &claims)?;
    let who = Arc::new(
        board_state
            .participant(&claims.sub, claims.role, &claims.name)
            .await,
    );
    crate::ops::note(&board_state, &who, None).await;
    let accept = upgrade.map_err(|e| AppError::new(ErrorCode::BadRequest, e))?;
    // A store that just failed takes no new connection, even to a document still in memory.
    if !state.store.healthy() {
        return Err(AppError::new(
            ErrorCode::StoreUnavailable,
            "the store is unavailable; try again shortly",
        ));
    }
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
        role: claims.role,
        exp: claims.exp,
        access,
        registry: state.registry.clone(),
        metrics: state.metrics.clone(),
        config: state.config.clone(),
        permit,
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    // One task per connection, on hyper's upgraded socket (see `ws`): it holds no buffer of
    // its own while the connection is idle.
    let task = ws::serve(on_upgrade, session);
    tracing::trace!(
        task_bytes = std::mem::size_of_val(&task),
        "WebSocket connection task"
    );
    tokio::spawn(task);
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(axum::body::Body::empty())
        .map_err(|e| AppError::new(ErrorCode::Internal, e.to_string()))
}

/// Checks a WebSocket opening handshake (RFC 6455 4.2.1) and returns its accept key.
fn upgrade_accept(headers: &HeaderMap) -> Result<String, &'static str> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") {
        return Err("Connection header did not include 'upgrade'");
    }
    if !has_token(header::UPGRADE, "websocket") {
        return Err("`Upgrade` header did not include 'websocket'");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err("`Sec-WebSocket-Version` header did not include '13'");
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("`Sec-WebSocket-Key` header missing")?;
    Ok(tungstenite::handshake::derive_accept_key(key.as_bytes()))
}
