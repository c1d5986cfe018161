//! One WebSocket connection: a reader loop (this task) that decodes frames, lets
//! `tafel_protocol::classify` decide and hands the result to the document; and a writer task that
//! drains the connection's bounded queue, writing everything queued before one flush, and sends
//! keepalive pings. Either side closes the connection through the shared kick signal, with a
//! close code and a reason.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tafel_protocol::wire::{decode_frame, encode_permission_denied};
use tafel_protocol::{classify, Access, Action, Claims, CloseCode, DocKey};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};

use crate::auth::now_secs;
use crate::board::Board;
use crate::config::Config;
use crate::doc::{Close, ConnHandle, DocCmd, Queued};
use crate::domain::state::Participant;
use crate::metrics::Metrics;
use crate::registry::{DocHandle, JoinFailure, Registry};
use tafel_protocol::document::EMPTY_AWARENESS;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// Most queued frames written before one flush.
const MAX_FRAMES_PER_FLUSH: usize = 256;
/// How long a closing connection's writer may take to send its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Everything a connection needs, decided before the upgrade.
pub struct WsSession {
    pub key: DocKey,
    pub board: Arc<Board>,
    pub who: Arc<Participant>,
    pub claims: Claims,
    pub access: Access,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    /// Held for the life of the connection: the bound on simultaneous connections.
    pub permit: OwnedSemaphorePermit,
}

/// Decrements the connection gauge however the connection ends.
struct Counted(Arc<Metrics>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

/// When the peer was last heard from, for the keepalive.
struct LastSeen {
    base: Instant,
    millis: AtomicU64,
}

impl LastSeen {
    fn touch(&self) {
        self.millis
            .store(self.base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn silent_for(&self) -> Duration {
        let last = self.millis.load(Ordering::Relaxed);
        Duration::from_millis((self.base.elapsed().as_millis() as u64).saturating_sub(last))
    }
}

pub async fn serve(socket: WebSocket, session: WsSession) {
    let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
    session.metrics.connections.inc();
    let _counted = Counted(session.metrics.clone());
    let (out_tx, out_rx) = mpsc::channel(session.config.outgoing_queue);
    let (kick_tx, kick_rx) = watch::channel(None);
    let conn = ConnHandle {
        id,
        who: session.who.clone(),
        can_write: session.access.can_write(),
        out: out_tx,
        queued: Queued::new(session.config.outgoing_queue_bytes),
        kick: Arc::new(kick_tx),
    };
    let last_seen = Arc::new(LastSeen {
        base: Instant::now(),
        millis: AtomicU64::new(0),
    });
    let (sink, stream) = socket.split();
    let writer = tokio::spawn(write_loop(
        sink,
        out_rx,
        conn.clone(),
        session.config.ping_interval,
        last_seen.clone(),
        session.metrics.clone(),
    ));
    tracing::debug!(conn = id, doc = %session.key, role = %session.claims.role, "connected");

    match session
        .registry
        .join(&session.key, &session.board, conn.clone())
        .await
    {
        Ok(doc) => read_loop(stream, &session, &doc, &conn, kick_rx, &last_seen).await,
        Err(JoinFailure::Store(e)) => {
            tracing::warn!(conn = id, doc = %session.key, error = %e, "cannot open document");
            conn.kick(
                CloseCode::StoreUnavailable,
                "store unavailable; retry shortly",
            );
        }
        Err(JoinFailure::Closed) => {
            conn.kick(CloseCode::GoingAway, "board deleted or server stopping");
        }
    }
    conn.kick(CloseCode::Normal, "bye");
    let abort = writer.abort_handle();
    if tokio::time::timeout(CLOSE_GRACE * 3, writer).await.is_err() {
        tracing::debug!(
            conn = id,
            "writer did not finish in time; dropping the socket"
        );
        abort.abort();
    }
    drop(session.permit);
}

async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    session: &WsSession,
    doc: &DocHandle,
    conn: &ConnHandle,
    mut kick_rx: watch::Receiver<Option<Close>>,
    last_seen: &LastSeen,
) {
    let mut rate = Rate::new(
        session.config.max_messages_per_sec,
        session.config.max_bytes_per_sec,
        session.config.max_message_bytes as u64,
    );
    let expires_in = Duration::from_secs(session.claims.exp.saturating_sub(now_secs()));
    let expiry = tokio::time::sleep(expires_in);
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            biased;
            _ = kick_rx.changed() => break,
            // The document's actor is gone (it panicked): never stay connected to nothing.
            () = doc.tx.closed() => {
                conn.kick(CloseCode::InternalError, "document failed; reconnect to reload it");
                break;
            }
            () = &mut expiry => {
                tracing::info!(conn = conn.id, role = %session.claims.role, "token expired, closing");
                conn.kick(CloseCode::TokenExpired, "token expired; sign in again");
                break;
            }
            msg = stream.next() => {
                last_seen.touch();
                match msg {
                    None | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(Message::Binary(bytes))) => {
                        session.metrics.bytes_in.inc_by(bytes.len() as u64);
                        if let Err(what) = rate.take(bytes.len() as u64, Instant::now()) {
                            tracing::info!(conn = conn.id, doc = %session.key, role = %session.claims.role, what, "rate limit exceeded, closing");
                            conn.kick(CloseCode::RateLimited, format!("rate limit: too many {what} per second; slow down"));
                            break;
                        }
                        if let Err(close) = handle_frame(&bytes, session, doc, conn).await {
                            tracing::info!(conn = conn.id, doc = %session.key, code = close.code.code(), reason = %close.reason, "closing connection");
                            conn.kick(close.code, close.reason);
                            break;
                        }
                    }
                    Some(Ok(Message::Text(_))) => {
                        conn.kick(CloseCode::PolicyViolation, "binary frames only (y-websocket protocol)");
                        break;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Err(e)) => {
                        if is_too_big(e) {
                            tracing::info!(conn = conn.id, limit = session.config.max_message_bytes, "message too big, closing");
                            conn.kick(CloseCode::MessageTooBig, format!("message larger than {} bytes", session.config.max_message_bytes));
                        }
                        break;
                    }
                }
            }
        }
    }
    let _ = doc.tx.send(DocCmd::Leave { conn: conn.id }).await;
}

/// How long a connection may be sent nothing before it gets an empty awareness message.
const IDLE_NUDGE: Duration = Duration::from_secs(15);

/// Two token buckets per connection: messages and bytes per second. A bucket holds a second's
/// worth twice over (bytes: at least one largest message), so bursts pass and only sustained
/// floods are cut off.
struct Rate {
    messages: f64,
    bytes: f64,
    per_sec: (f64, f64),
    cap: (f64, f64),
    last: Instant,
}

impl Rate {
    fn new(messages_per_sec: u32, bytes_per_sec: u64, max_message: u64) -> Rate {
        let cap = (
            2.0 * messages_per_sec as f64,
            (2 * bytes_per_sec).max(max_message) as f64,
        );
        Rate {
            messages: cap.0,
            bytes: cap.1,
            per_sec: (messages_per_sec as f64, bytes_per_sec as f64),
            cap,
            last: Instant::now(),
        }
    }

    /// Takes one message of `len` bytes; `Err` names what ran out.
    fn take(&mut self, len: u64, now: Instant) -> Result<(), &'static str> {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.messages = (self.messages + dt * self.per_sec.0).min(self.cap.0);
        self.bytes = (self.bytes + dt * self.per_sec.1).min(self.cap.1);
        if self.messages < 1.0 {
            return Err("messages");
        }
        if self.bytes < len as f64 {
            return Err("bytes");
        }
        self.messages -= 1.0;
        self.bytes -= len as f64;
        Ok(())
    }
}

fn is_too_big(e: axum::Error) -> bool {
    e.into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// Decodes one frame and carries out what the protocol decides. An `Err` closes the connection.
async fn handle_frame(
    frame: &[u8],
    session: &WsSession,
    doc: &DocHandle,
    conn: &ConnHandle,
) -> Result<(), Close> {
    let malformed = |e: tafel_protocol::wire::WireError| Close {
        code: CloseCode::MalformedMessage,
        reason: format!("malformed message: {e}"),
    };
    let msg = decode_frame(frame).map_err(malformed)?;
    let action = classify(session.access, msg).map_err(malformed)?;
    let cmd = match action {
        Action::AnswerSyncStep1(sv) => DocCmd::SyncStep1 { conn: conn.id, sv },
        Action::Apply(update) => DocCmd::Apply {
            conn: conn.id,
            update,
        },
        Action::Awareness(update) => DocCmd::Awareness {
            conn: conn.id,
            update,
        },
        Action::AnswerAwarenessQuery => DocCmd::AwarenessQuery { conn: conn.id },
        Action::CheckReadOnly(update) => DocCmd::ReadOnly {
            conn: conn.id,
            update,
        },
        Action::Deny(reason) => {
            session.metrics.refused_updates.inc();
            tracing::info!(conn = conn.id, doc = %session.key, role = %session.claims.role, %reason, "update refused");
            let frame = Bytes::from(encode_permission_denied(&reason));
            if conn.out.try_send(frame).is_err() {
                return Err(Close {
                    code: CloseCode::TooSlow,
                    reason: "too slow: outgoing queue full".into(),
                });
            }
            return Ok(());
        }
        Action::Ignore => return Ok(()),
    };
    doc.tx.send(cmd).await.map_err(|_| Close {
        code: CloseCode::InternalError,
        reason: "document reloaded; reconnect".into(),
    })
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut out: mpsc::Receiver<Bytes>,
    conn: ConnHandle,
    ping_every: Duration,
    last_seen: Arc<LastSeen>,
    metrics: Arc<Metrics>,
) {
    let mut kick = conn.kick.subscribe();
    let mut ping = tokio::time::interval(ping_every);
    ping.tick().await;
    // y-websocket closes a socket that received no message for 30 s (pings do not count in a
    // browser): a connection that was sent nothing for IDLE_NUDGE gets an empty awareness
    // message, which changes nothing on the client.
    let mut nudge = tokio::time::interval(IDLE_NUDGE / 3);
    nudge.tick().await;
    let mut last_write = Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = kick.changed() => break,
            frame = out.recv() => {
                let Some(frame) = frame else { break };
                // A peer that stops reading blocks the flush; the kick must still get through.
                tokio::select! {
                    biased;
                    _ = kick.changed() => break,
                    written = write_batch(&mut sink, frame, &mut out, &conn.queued) => {
                        if written.is_err() {
                            conn.kick(CloseCode::GoingAway, "connection lost");
                            return;
                        }
                        last_write = Instant::now();
                    }
                }
            }
            _ = nudge.tick() => {
                if last_write.elapsed() >= IDLE_NUDGE {
                    let frame = Message::Binary(Bytes::from_static(EMPTY_AWARENESS));
                    let sent = tokio::time::timeout(ping_every, sink.send(frame)).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        conn.kick(CloseCode::GoingAway, "connection lost");
                        return;
                    }
                    last_write = Instant::now();
                }
            }
            _ = ping.tick() => {
                if last_seen.silent_for() > ping_every * 3 {
                    if conn.kick(CloseCode::TooSlow, "no answer to keepalive pings") {
                        tracing::info!(conn = conn.id, "no answer to keepalive pings, closing");
                        metrics.slow_clients_closed.inc();
                    }
                    break;
                }
                let pinged = tokio::time::timeout(ping_every, sink.send(Message::Ping(Bytes::new()))).await;
                if !matches!(pinged, Ok(Ok(()))) {
                    conn.kick(CloseCode::GoingAway, "connection lost");
                    return;
                }
            }
        }
    }
    let close = conn.kick.borrow().clone();
    if let Some(close) = close {
        let frame = Message::Close(Some(CloseFrame {
            code: close.code.code(),
            reason: truncate_reason(&close.reason).into(),
        }));
        // A peer that does not read cannot take the close frame either; don't wait for it long.
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(frame)).await;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
}

/// Writes `first` and whatever else is queued, then flushes once.
async fn write_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    first: Bytes,
    out: &mut mpsc::Receiver<Bytes>,
    queued: &Queued,
) -> Result<(), axum::Error> {
    queued.done(first.len());
    sink.feed(Message::Binary(first)).await?;
    for _ in 1..MAX_FRAMES_PER_FLUSH {
        match out.try_recv() {
            Ok(frame) => {
                queued.done(frame.len());
                sink.feed(Message::Binary(frame)).await?
            }
            Err(_) => break,
        }
    }
    sink.flush().await
}

/// Close reasons are limited to 123 bytes by RFC 6455.
fn truncate_reason(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}
