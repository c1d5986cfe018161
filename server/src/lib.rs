//! The Tafel server: hosts the pure `tafel_protocol` decisions on sockets and stores.
//!
//! Layout:
//! - [`config`]: command line, environment and the `Config` of named bounds.
//! - [`auth`]: JWT signing and verification (HS256 secret, optional outside public key).
//! - [`store`]: the storage trait and its redb and Redis implementations.
//! - [`registry`]: one live document per `board/doc`, loaded once, unloaded when idle.
//! - [`doc`]: the document actor — apply, store, then forward; awareness; compaction.
//! - [`ws`]: one WebSocket connection, one task — reading, writing from the shared frames, keepalive.
//! - [`wsframe`]: WebSocket framing (RFC 6455, server side) without a read or write buffer, on
//!   tungstenite's frame header, opcodes and close codes.
//! - [`domain`]: the board's domain apart from HTTP: the facilitator's commands as typed
//!   values and a pure `apply(state, command, now)`.
//! - [`edge`]: what HTTP handlers share: state, errors, the token extractors.
//! - [`boards`], [`session`], [`cards`]: thin HTTP handlers for boards, the session and a
//!   participant's own card commands (move, restore).
//! - [`http`]: routes and the pre-upgrade checks.
//! - [`metrics`]: Prometheus series.
//!
//! The entry point is [`run`]: `main.rs` only parses arguments and calls it.

pub mod auth;
pub mod board;
pub mod boards;
pub mod cards;
pub mod config;
pub mod doc;
pub mod domain;
pub mod edge;
pub mod history;
pub mod http;
pub mod metrics;
pub mod moderation;
pub mod ops;
pub mod people;
pub mod registry;
pub mod session;
pub mod store;
pub mod templates;
pub mod ws;
pub mod wsframe;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use rand::distr::{Alphanumeric, SampleString};
use tafel_protocol::Role;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;

use crate::auth::{now_secs, Keys};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::{Store, StoreError};

/// Pending connections the kernel keeps for us. tokio's default of 128 makes a room that
/// (re)connects at once wait a second for SYN retries.
const LISTEN_BACKLOG: u32 = 4096;
/// How long `serve` waits for the store at start before giving up.
const STORE_WAIT_AT_START: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the JWT public key: {0}")]
    PublicKey(String),
    #[error("bad board template: {0}")]
    Template(String),
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
}

/// Binds with a large backlog (see [`LISTEN_BACKLOG`]).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Runs the server on `listener` until `shutdown` completes; then closes every connection,
/// stores everything and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let config = Arc::new(config);
    let hooks = store::StoreHooks::new(config.test_hooks);
    let store = store::Watched::new(
        store::open_with_hooks(&config.store, hooks.clone()).await?,
        hooks,
    );
    let secret = match &config.jwt_secret {
        Some(s) => s.clone(),
        None => kept_secret(&*store).await?,
    };
    let mut keys = Keys::new(&secret);
    if let Some(path) = &config.jwt_public_key {
        let pem =
            std::fs::read(path).map_err(|e| ServerError::PublicKey(format!("{path}: {e}")))?;
        keys = keys
            .with_public_key_pem(path, &pem)
            .map_err(|e| ServerError::PublicKey(e.to_string()))?;
    }
    let keys = Arc::new(keys);
    let metrics = Arc::new(Metrics::new());
    let templates = Arc::new(
        templates::Templates::load(config.templates.as_deref())
            .map_err(|e| ServerError::Template(e.to_string()))?,
    );
    let owner_key = format!("tafel-owner-tags:{secret}").into_bytes();
    let registry = Registry::new(
        store.clone(),
        metrics.clone(),
        config.clone(),
        templates,
        owner_key,
    );
    // Other nodes' board state changes (a shared store only; returns at once otherwise).
    tokio::spawn(registry.clone().follow_board_states());
    let state = http::AppState {
        keys: keys.clone(),
        store: store.clone(),
        registry: registry.clone(),
        metrics,
        config: config.clone(),
        connections: Arc::new(Semaphore::new(config.max_connections)),
    };
    let addr = listener.local_addr()?;
    let signin = keys.issue(
        "facilitator",
        "Facilitator",
        Role::Facilitator,
        "*",
        Duration::from_secs(12 * 3600),
        now_secs(),
    );
    println!("Tafel listens on http://{addr}");
    println!("Store: {}", store.describe());
    println!("Facilitator sign-in (12 h): http://{addr}/#token={signin}");
    tracing::info!(%addr, store = %store.describe(), "serving");

    let listener = listener.tap_io(|tcp| {
        // Small frames must leave at once; Nagle adds tens of ms at p99.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!("stopping: closing connections and storing documents");
    registry.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// The HS256 secret kept in the store, generating it on first start. Waits for the store for a
/// while, so that `tafel` and Redis may start in any order.
async fn kept_secret(store: &dyn store::Store) -> Result<String, StoreError> {
    let candidate = Alphanumeric.sample_string(&mut rand::rng(), 48);
    let started = std::time::Instant::now();
    loop {
        match store.get_or_init_secret(&candidate).await {
            Ok(s) => return Ok(s),
            Err(e) if started.elapsed() < STORE_WAIT_AT_START => {
                tracing::warn!(error = %e, "waiting for the store to read the JWT secret");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
