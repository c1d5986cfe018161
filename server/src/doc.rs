//! One live document's host: an actor task that owns the document's sans-IO core
//! (`tafel_protocol::document::DocCore`: the yrs document, the ownership index, the judge's
//! decisions, presence) and carries out its effects: batching, the store call, sending frames
//! to connections, closing them, compaction.
//!
//! The promise it keeps: an update is in the store before any other connection is sent it, and
//! no connection is ever answered with state that is not yet stored. Commands are taken in
//! batches; accepted updates of a batch are written in one store call (group commit), then
//! forwarded, each encoded once and shared by every recipient. A command that reads state
//! (join, sync step 1, export) first flushes what is pending.
//!
//! On a shared log (Redis, several nodes): the document's log is one Redis stream that every
//! node follows (a follower task per loaded document, blocking `XREAD` on its own connection,
//! feeding this actor). A batch is appended only if the stream's tip is still the id this node
//! judged at; otherwise (`Appended::Moved`) the actor reloads what is stored, judges its pending
//! updates again and retries, so every node applies one order and two nodes never both accept
//! conflicting claims. Entries other nodes appended are applied and sent to everyone here. Sync
//! step 1 is answered only after catching up to the tip. Presence goes to the other nodes on a
//! capped presence stream, coalesced per tick, with each node re-sending its own every second;
//! a node not heard from for a few seconds has its presence removed. See docs/scale.md.
//!
//! When the store fails, nothing unstored is forwarded: every connection is closed with 4503 and
//! the document is dropped from memory; clients reconnect, the document is reloaded from the
//! store and each client's sync step 2 sends back what the store missed. When the actor panics,
//! its connections notice the closed mailbox and close with 1011; the next join reloads it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tafel_protocol::document::{DocCore, Effect, MemberInfo, Rules, Stored};
use tafel_protocol::{CloseCode, DocKey, DocName};
use tokio::sync::{mpsc, oneshot, watch};
use yrs::sync::AwarenessUpdate;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Map, Out, StateVector, TransactionMut, WriteTxn};

use crate::board::Board;
use crate::config::Config;
use crate::domain::state::Participant;
use crate::metrics::Metrics;
use crate::store::{Appended, Followed, Follower, LogId, Store, StoreError};

/// How often a document publishes changed presence to the other nodes (at most).
const PRESENCE_TICK: Duration = Duration::from_millis(50);
/// Local presence is coalesced per document over this tick: at most one message per recipient
/// per tick (a lone update after a quiet tick goes at once).
const PRESENCE_COALESCE: Duration = Duration::from_millis(40);
/// How often a node re-sends its presence on a document even when it did not change.
const PRESENCE_HEARTBEAT: Duration = Duration::from_secs(1);
/// A node not heard from for this long has its presence removed.
const PRESENCE_EXPIRY: Duration = Duration::from_secs(3);
/// How often one batch may find the log moved before the document gives up (4503).
const MAX_MOVES: usize = 20;

pub use tafel_protocol::document::ConnId;

/// A server-side edit: runs inside one transaction of the document.
pub type ServerEdit = Box<dyn FnOnce(&mut TransactionMut) -> serde_json::Value + Send>;

// Most commands handled between two store writes (`config::MAX_BATCH`): one flush may queue
// this many frames on a connection at once, so a connection's queue is never smaller than
// twice this (see `Config::outgoing_queue`).
use crate::config::MAX_BATCH;

/// Why a connection is being closed.
#[derive(Debug, Clone, PartialEq)]
pub struct Close {
    pub code: CloseCode,
    pub reason: String,
}

/// The document's way to reach one connection: its [`Link`] (the bounded queue of encoded
/// frames and the close signal, used when the queue is full, so a slow client never grows
/// memory).
#[derive(Clone)]
pub struct ConnHandle {
    pub id: ConnId,
    /// Who is on the other end (role, pseudonym): what the rules and presence need.
    pub who: Arc<Participant>,
    /// Whether this connection may write the document (the baseline matrix).
    pub can_write: bool,
    pub link: Arc<Link>,
}

impl ConnHandle {
    /// Asks the connection to close; the first reason wins. Returns whether this call set it.
    pub fn kick(&self, code: CloseCode, reason: impl Into<String>) -> bool {
        self.link.kick(code, reason)
    }

    /// Queues a frame. A full queue — more than `max_queued_bytes` waiting (one frame always
    /// fits into an empty queue, however large: a big document's shared first sync), or the
    /// frame bound — closes the connection (4508) and returns false.
    fn send(&self, frame: Bytes, metrics: &Metrics) -> bool {
        let len = frame.len();
        match self.link.push(frame) {
            Pushed::Queued => {
                metrics.bytes_out.inc_by(len as u64);
                true
            }
            Pushed::Full(queued) => {
                self.too_slow(metrics, queued);
                false
            }
            Pushed::Gone => false,
        }
    }

    fn too_slow(&self, metrics: &Metrics, queued: usize) {
        if self.kick(
            CloseCode::TooSlow,
            "too slow: outgoing queue full; reconnect to resync",
        ) {
            tracing::warn!(
                conn = self.id,
                queued_bytes = queued,
                "client too slow: outgoing queue full, closing"
            );
            metrics.slow_clients_closed.inc();
        }
    }
}

/// What [`Link::push`] did with a frame.
pub enum Pushed {
    Queued,
    /// The queue is full (it held this many bytes); the frame was dropped.
    Full(usize),
    /// The connection has ended.
    Gone,
}

/// One connection's outgoing side, shared by the document (which queues frames and may close
/// it) and the connection's task (which writes them): a queue bounded in frames and bytes, the
/// close reason, and the task's waker. It holds no buffer while empty: the queue's storage is
/// released each time it drains.
pub struct Link {
    state: std::sync::Mutex<LinkState>,
    max_bytes: usize,
    max_frames: usize,
}

#[derive(Default)]
struct LinkState {
    frames: VecDeque<Bytes>,
    bytes: usize,
    close: Option<Close>,
    ended: bool,
    waker: Option<std::task::Waker>,
}

impl Link {
    pub fn new(max_bytes: usize, max_frames: usize) -> Arc<Link> {
        Arc::new(Link {
            state: std::sync::Mutex::new(LinkState::default()),
            max_bytes,
            max_frames,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame within the bounds (one frame always fits into an empty queue).
    pub fn push(&self, frame: Bytes) -> Pushed {
        let mut s = self.lock();
        if s.ended || s.close.is_some() {
            return Pushed::Gone;
        }
        let len = frame.len();
        if !s.frames.is_empty()
            && (s.bytes + len > self.max_bytes || s.frames.len() >= self.max_frames)
        {
            return Pushed::Full(s.bytes);
        }
        s.bytes += len;
        s.frames.push_back(frame);
        let waker = s.waker.take();
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
        Pushed::Queued
    }

    /// Asks the connection to close; the first reason wins. Returns whether this call set it.
    pub fn kick(&self, code: CloseCode, reason: impl Into<String>) -> bool {
        let mut s = self.lock();
        if s.close.is_some() {
            return false;
        }
        s.close = Some(Close {
            code,
            reason: reason.into(),
        });
        let waker = s.waker.take();
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Why the connection is to close, once it is.
    pub fn close(&self) -> Option<Close> {
        self.lock().close.clone()
    }

    /// The next frame to write, or `Pending` (the task is woken by the next push or kick).
    /// `Ready(None)` once the connection is closing.
    pub fn poll_next(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Bytes>> {
        let mut s = self.lock();
        if s.close.is_some() {
            return std::task::Poll::Ready(None);
        }
        match s.frames.pop_front() {
            Some(f) => {
                s.bytes -= f.len();
                if s.frames.is_empty() && s.frames.capacity() > 0 {
                    // Drained after a burst: give the storage back.
                    s.frames = VecDeque::new();
                }
                std::task::Poll::Ready(Some(f))
            }
            None => {
                if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.waker = Some(cx.waker().clone());
                }
                std::task::Poll::Pending
            }
        }
    }

    /// Registers the task to be woken by a kick (while it is not taking frames).
    pub fn poll_kicked(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Close> {
        let mut s = self.lock();
        match &s.close {
            Some(c) => std::task::Poll::Ready(c.clone()),
            None => {
                if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.waker = Some(cx.waker().clone());
                }
                std::task::Poll::Pending
            }
        }
    }

    /// The connection's task has ended: nothing more is queued, what is queued is dropped.
    pub fn end(&self) {
        let mut s = self.lock();
        s.ended = true;
        s.frames = VecDeque::new();
        s.bytes = 0;
        s.waker = None;
    }
}

pub enum JoinError {
    /// The document was being unloaded; ask the registry again.
    Gone,
    Store(StoreError),
    /// The board is being deleted.
    Deleted,
}

pub enum DocCmd {
    Join {
        conn: ConnHandle,
        reply: oneshot::Sender<Result<(), JoinError>>,
    },
    Leave {
        conn: ConnId,
    },
    Apply {
        conn: ConnId,
        update: Vec<u8>,
    },
    SyncStep1 {
        conn: ConnId,
        sv: StateVector,
    },
    /// An update from a read-only connection: accepted when it adds nothing, else refused.
    ReadOnly {
        conn: ConnId,
        update: Vec<u8>,
    },
    Awareness {
        conn: ConnId,
        update: AwarenessUpdate,
    },
    AwarenessQuery {
        conn: ConnId,
    },
    Export {
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// A change made by the server itself (seeding, moderation, reveals, the control mirror).
    /// The reply comes once the change is stored; it carries what the edit returned.
    ServerEdit {
        edit: ServerEdit,
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// The board is deleted: close everyone, store nothing more, unload.
    Discard,
    /// The server is stopping: close everyone, store everything, unload.
    Shutdown,
    /// Test hook (`--test-hooks`): the actor panics, as a bug would make it.
    TestPanic,
    /// What the follower read from the shared log (internal).
    Followed(Result<Followed, StoreError>),
    /// Presence tick (internal, shared log only).
    Tick,
    /// The facilitator removed a participant: close their connections with 4403.
    RemoveParticipant {
        owner: tafel_protocol::index::Owner,
    },
    /// Who is connected: the participant tag of every open connection.
    Online {
        reply: oneshot::Sender<Vec<tafel_protocol::index::Owner>>,
    },
}

/// How long one node may hold a document's compaction before another may take it over.
const COMPACTION_LEASE_MS: u64 = 5_000;

/// What the actor needs from the rest of the server.
pub struct DocContext {
    pub key: DocKey,
    pub generation: u64,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    /// Takes the document out of the registry (called once the actor ends, also by a panic).
    pub forget: ForgetFn,
    pub board: Arc<Board>,
}

/// How an ending actor takes its document out of the registry: `(key, generation)`.
pub type ForgetFn = Arc<dyn Fn(&DocKey, u64) + Send + Sync>;

/// An accepted update not yet stored, and who is sent it once it is.
struct Pending {
    entry: Bytes,
    frame: Bytes,
    except: Option<ConnId>,
    origin: Origin,
}

impl Pending {
    /// A `Store` effect as a pending update (any other effect is handed back).
    fn of(effect: Effect, origin: impl FnOnce() -> Origin) -> Result<Pending, Effect> {
        match effect {
            Effect::Store {
                entry,
                frame,
                except,
            } => Ok(Pending {
                entry,
                frame,
                except,
                origin: origin(),
            }),
            other => Err(other),
        }
    }
}

/// Where a pending update came from: what to do with it when the log moved under it.
enum Origin {
    /// A connection's update: judged again.
    Client { conn: ConnId, raw: Vec<u8> },
    /// A server edit: applied again as it is.
    Server,
    /// A stamp of created items: dropped (judging the creation again stamps again).
    Stamp,
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

enum Flow {
    Continue,
    Stop,
}

struct LiveDoc {
    ctx: DocContext,
    core: DocCore,
    conns: HashMap<ConnId, ConnHandle>,
    pending: Vec<Pending>,
    log_entries: u64,
    log_bytes: u64,
    /// When another node held the compaction lease: try again (on a tick) after this.
    compact_again_at: Option<std::time::Instant>,
    /// The compaction whose store write is under way, off the actor.
    compacting: Option<Compacting>,
    /// Set when the core asks to be reloaded: the actor stops after this batch.
    reload: bool,
    /// Server edits waiting for their flush, to be answered once stored.
    replies: Vec<(oneshot::Sender<serde_json::Value>, serde_json::Value)>,
    /// The shared log, when the store has one.
    shared: Option<Shared>,
    /// When the presence buffered in the core is to be relayed.
    presence_due: Option<tokio::time::Instant>,
    /// When presence was last relayed.
    presence_relayed: Option<tokio::time::Instant>,
}

/// A document on a shared log: its position, its follower and the other nodes' presence.
struct Shared {
    /// The id of the last log entry applied here (everything up to it is applied).
    tip: LogId,
    /// Tells the follower where the actor is, so it never reads what was applied already.
    tip_tx: watch::Sender<LogId>,
    follow_rx: mpsc::Receiver<Result<Followed, StoreError>>,
    follower: tokio::task::JoinHandle<()>,
    /// Per other node: when it was last heard of, and the presence ids it shows here.
    remote: HashMap<String, (Instant, HashSet<ClientID>)>,
    presence_dirty: bool,
    presence_sent: Option<Instant>,
    /// Whether the last presence this node published was non-empty.
    presence_shown: bool,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// Reads the shared log and presence and hands them to the actor until it ends or Redis fails.
async fn follow(
    mut follower: Box<dyn Follower>,
    tip: watch::Receiver<LogId>,
    tx: mpsc::Sender<Result<Followed, StoreError>>,
) {
    let mut at = *tip.borrow();
    loop {
        let from = at.max(*tip.borrow());
        match follower.next(from).await {
            Ok(got) => {
                at = got.log.last().map_or(from, |(id, _)| *id);
                if (!got.log.is_empty() || !got.presence.is_empty())
                    && tx.send(Ok(got)).await.is_err()
                {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// A stream id's time, in milliseconds since the epoch.
fn lag_seconds(id: LogId) -> f64 {
    now_millis().saturating_sub(id.0) as f64 / 1000.0
}

/// The `sub` behind a connection (empty when it is gone).
fn conn_sub(conns: &HashMap<ConnId, ConnHandle>, id: ConnId) -> String {
    conns
        .get(&id)
        .map(|c| c.who.sub.clone())
        .unwrap_or_default()
}

/// Takes the document out of the registry when the actor ends, even by a panic, so the next
/// join loads it afresh (connections notice the actor is gone and close with 1011).
struct Forget {
    forget: ForgetFn,
    key: DocKey,
    generation: u64,
}

impl Drop for Forget {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(doc = %self.key, "document actor panicked; its connections close with 1011 and it reloads on the next join");
        }
        (self.forget)(&self.key, self.generation);
    }
}

/// Runs a document until it is evicted, fails or is shut down.
pub async fn run(ctx: DocContext, mut rx: mpsc::Receiver<DocCmd>) {
    let _forget = Forget {
        forget: ctx.forget.clone(),
        key: ctx.key.clone(),
        generation: ctx.generation,
    };
    let loaded = async {
        let loaded = ctx.store.load_at(&ctx.key).await?;
        let follower = if ctx.store.shared() {
            ctx.store.follower(&ctx.key).await?
        } else {
            None
        };
        Ok::<_, StoreError>((loaded, follower))
    };
    let (stored_doc, tip, follower) = match loaded.await {
        Ok((l, f)) => (l.doc, l.tip, f),
        Err(e) => {
            tracing::error!(doc = %ctx.key, error = %e, "cannot load document");
            ctx.metrics.store_errors.inc();
            (ctx.forget)(&ctx.key, ctx.generation);
            drain(&mut rx, || JoinError::Store(e.clone())).await;
            return;
        }
    };
    let log_entries = stored_doc.log.len() as u64;
    let log_bytes = stored_doc.log.iter().map(|b| b.len() as u64).sum();
    let (core, errors) = DocCore::load(
        ctx.key.doc,
        ctx.config.limits,
        Stored {
            snapshot: stored_doc.snapshot.as_deref(),
            log: stored_doc.log.iter().map(|b| &b[..]).collect(),
        },
    );
    let mut core = core;
    core.set_alias_seed(rand::random());
    for e in errors {
        // Keep serving what can be read; say loudly what could not.
        tracing::error!(doc = %ctx.key, error = %e, "skipping an unreadable stored update");
    }
    ctx.metrics.documents_loaded.inc();
    tracing::debug!(doc = %ctx.key, log_entries, "document loaded");
    let shared = follower.map(|f| {
        // Loading read up to `tip`; the follower reads from there, so nothing falls between.
        let (tip_tx, tip_rx) = watch::channel(tip);
        let (tx, follow_rx) = mpsc::channel(16);
        Shared {
            tip,
            tip_tx,
            follow_rx,
            follower: tokio::spawn(follow(f, tip_rx, tx)),
            remote: HashMap::new(),
            presence_dirty: false,
            presence_sent: None,
            presence_shown: false,
        }
    });
    let mut live = LiveDoc {
        ctx,
        core,
        conns: HashMap::new(),
        pending: Vec::new(),
        log_entries,
        log_bytes,
        compact_again_at: None,
        compacting: None,
        reload: false,
        replies: Vec::new(),
        shared,
        presence_due: None,
        presence_relayed: None,
    };
    live.publish_gap_rows();
    let final_join_error = live.serve(&mut rx).await;
    // A compaction still under way ends before the document does (a deleted board's data
    // must not be written back after it).
    if live.compacting.is_some() {
        live.wait_compaction().await;
    }
    live.ctx.metrics.documents_loaded.dec();
    (live.ctx.forget)(&live.ctx.key, live.ctx.generation);
    drain(&mut rx, final_join_error).await;
}

/// After the document stopped: refuse what is still queued so joiners retry elsewhere.
async fn drain(rx: &mut mpsc::Receiver<DocCmd>, err: impl Fn() -> JoinError) {
    rx.close();
    while let Some(cmd) = rx.recv().await {
        if let DocCmd::Join { reply, conn } = cmd {
            if let Err(Err(JoinError::Store(_))) = reply.send(Err(err())) {
                conn.kick(CloseCode::StoreUnavailable, "store unavailable");
            }
        }
    }
}

impl LiveDoc {
    /// The main loop. Returns the error that joins still queued at the end should get.
    async fn serve(&mut self, rx: &mut mpsc::Receiver<DocCmd>) -> fn() -> JoinError {
        let mut tick = tokio::time::interval(PRESENCE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_local = tokio::time::Instant::now();
        loop {
            let idle_at = last_local + self.ctx.config.idle_evict;
            let shared = self.shared.is_some();
            let presence_due = self.presence_due;
            let first = tokio::select! {
                _ = tokio::time::sleep_until(presence_due.unwrap_or(idle_at)), if presence_due.is_some() => {
                    self.relay_presence();
                    continue;
                }
                cmd = rx.recv() => match cmd {
                    Some(cmd) => {
                        last_local = tokio::time::Instant::now();
                        cmd
                    }
                    None => return || JoinError::Gone,
                },
                Some(f) = recv_followed(&mut self.shared) => DocCmd::Followed(f),
                _ = tick.tick(), if shared => DocCmd::Tick,
                outcome = compaction_done(&mut self.compacting) => {
                    self.compaction_finished(outcome);
                    continue;
                }
                _ = tokio::time::sleep_until(idle_at), if self.conns.is_empty() => {
                    tracing::debug!(doc = %self.ctx.key, "idle, unloading");
                    self.compact_now().await;
                    return || JoinError::Gone;
                }
            };
            let mut batch = Vec::with_capacity(8);
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            for cmd in batch {
                match self.handle(cmd).await {
                    Ok(Flow::Continue) if !self.reload => {}
                    _ => return || JoinError::Gone,
                }
            }
            if self.flush().await.is_err() {
                return || JoinError::Gone;
            }
            self.publish_gap_rows();
        }
    }

    /// On the gap document: hands the board the ids of its rows as stored, which the canvas
    /// judge checks a card's `gapRow` against.
    fn publish_gap_rows(&self) {
        if self.ctx.key.doc != DocName::Gap {
            return;
        }
        use yrs::{Map, ReadTxn, Transact};
        let txn = self.core.doc().transact();
        let rows = txn
            .get_map("rows")
            .map(|m| m.keys(&txn).map(str::to_owned).collect())
            .unwrap_or_default();
        self.ctx.board.set_gap_rows(rows);
    }

    async fn handle(&mut self, cmd: DocCmd) -> Result<Flow, StoreError> {
        let effects = match cmd {
            DocCmd::Join { conn, reply } => {
                self.flush().await?;
                let id = conn.id;
                let info = MemberInfo {
                    role: conn.who.role,
                    owner: conn.who.tag.clone(),
                    display: conn.who.display.clone(),
                    can_write: conn.can_write,
                };
                self.conns.insert(id, conn);
                let owner = info.owner.clone();
                let mut effects = self.core.join(id, info);
                if reply.send(Ok(())).is_err() {
                    self.conns.remove(&id);
                    effects = self.core.leave(id);
                } else if self.ctx.board.is_removed(&conn_sub(&self.conns, id)) {
                    // Removed while this connection was on its way in.
                    effects.extend(self.core.close_owner(
                        &owner,
                        CloseCode::Removed,
                        crate::domain::state::REMOVED_REASON,
                    ));
                }
                effects
            }
            DocCmd::Leave { conn } => {
                self.presence_changed();
                self.conns.remove(&conn);
                self.core.leave(conn)
            }
            DocCmd::Apply { conn, update } | DocCmd::ReadOnly { conn, update } => {
                let Some(who) = self.conns.get(&conn).map(|c| c.who.clone()) else {
                    return Ok(Flow::Continue);
                };
                let (session, _) = self.ctx.board.policy();
                let board = self.ctx.board.clone();
                let owns_tag = move |item: &str, tag: &str| board.owns(&who.sub, item, tag);
                let rules = Rules {
                    template: &self.ctx.board.template,
                    session: &session,
                    owns_tag: &owns_tag,
                };
                let raw = self.shared.as_ref().map(|_| update.clone());
                let effects = self.core.update(conn, update, &rules);
                self.take_stores(conn, raw, effects)
            }
            DocCmd::SyncStep1 { conn, sv } => {
                self.flush().await?;
                // Answered only once caught up to the log's tip: a client that failed over
                // from a node that was ahead is then judged against everything it has seen.
                self.catch_up().await?;
                self.core.sync_step1(conn, &sv)
            }
            DocCmd::Awareness { conn, update } => {
                self.presence_changed();
                self.awareness(conn, update)
            }
            DocCmd::AwarenessQuery { conn } => self.core.awareness_query(conn),
            DocCmd::Export { reply } => {
                self.flush().await?;
                self.catch_up().await?;
                let _ = reply.send(self.core.export());
                Vec::new()
            }
            DocCmd::ServerEdit { edit, reply } => {
                let (value, effects) = self.core.server_edit(edit);
                self.replies.push((reply, value));
                effects
            }
            DocCmd::Discard => {
                self.pending.clear();
                let effects = self
                    .core
                    .close_all(CloseCode::GoingAway, "the board was deleted");
                self.carry_out(effects);
                return Ok(Flow::Stop);
            }
            DocCmd::Shutdown => {
                self.flush().await?;
                let effects = self.core.close_all(
                    CloseCode::GoingAway,
                    "server shutting down; reconnect shortly",
                );
                self.carry_out(effects);
                self.compact_now().await;
                return Ok(Flow::Stop);
            }
            DocCmd::RemoveParticipant { owner } => self.core.close_owner(
                &owner,
                CloseCode::Removed,
                crate::domain::state::REMOVED_REASON,
            ),
            DocCmd::Online { reply } => {
                let _ = reply.send(self.conns.values().map(|c| c.who.tag.clone()).collect());
                Vec::new()
            }
            DocCmd::TestPanic => {
                if self.ctx.config.test_hooks {
                    panic!("test hook: document actor panic");
                }
                Vec::new()
            }
            DocCmd::Followed(Ok(got)) => {
                if !got.log.is_empty() {
                    self.flush().await?;
                    self.apply_followed(got.log);
                }
                self.remote_presence(got.presence)
            }
            DocCmd::Followed(Err(e)) => {
                return Err(self.store_lost(
                    e,
                    "store unavailable: this server lost the shared log; reconnect",
                ));
            }
            DocCmd::Tick => {
                self.presence_tick().await;
                if self
                    .compact_again_at
                    .is_some_and(|at| std::time::Instant::now() >= at)
                {
                    self.start_compaction();
                }
                Vec::new()
            }
        };
        self.carry_out(effects);
        Ok(Flow::Continue)
    }

    /// Presence is buffered in the core and relayed on the next tick ([`PRESENCE_COALESCE`]).
    fn awareness(&mut self, conn: ConnId, update: AwarenessUpdate) -> Vec<Effect> {
        let effects = self.core.presence(conn, update);
        if self.core.presence_pending() && self.presence_due.is_none() {
            // At once when nothing was relayed within the last tick, else at the tick's end.
            let now = tokio::time::Instant::now();
            self.presence_due = Some(
                self.presence_relayed
                    .map_or(now, |last| (last + PRESENCE_COALESCE).max(now)),
            );
        }
        effects
    }

    /// Relays the presence buffered since the last tick.
    fn relay_presence(&mut self) {
        self.presence_due = None;
        self.presence_relayed = Some(tokio::time::Instant::now());
        let effects = self.core.flush_presence();
        self.carry_out(effects);
    }

    /// Carries out the core's effects. Sends that fail (a full queue) drop the connection,
    /// whose own effects (presence removal) are carried out in turn, without recursion.
    fn carry_out(&mut self, effects: Vec<Effect>) {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            let effect = match Pending::of(effect, || Origin::Server) {
                Ok(p) => {
                    self.pending.push(p);
                    continue;
                }
                Err(effect) => effect,
            };
            match effect {
                Effect::Store { .. } => {}
                Effect::Send { to, frame } => {
                    if let Some(c) = self.conns.get(&to) {
                        if !c.send(frame, &self.ctx.metrics) {
                            self.conns.remove(&to);
                            queue.extend(self.core.leave(to));
                        }
                    }
                }
                Effect::Broadcast { except, frame } => {
                    queue.push_front(Effect::BroadcastExcept {
                        except: except.into_iter().collect(),
                        frame,
                    });
                }
                Effect::BroadcastExcept { except, frame } => {
                    let mut slow = Vec::new();
                    for (id, c) in &self.conns {
                        if !except.contains(id) && !c.send(frame.clone(), &self.ctx.metrics) {
                            slow.push(*id);
                        }
                    }
                    for id in slow {
                        self.conns.remove(&id);
                        queue.extend(self.core.leave(id));
                    }
                }
                Effect::Close { conn, code, reason } => {
                    self.presence_changed();
                    tracing::info!(doc = %self.ctx.key, conn, code = code.code(), %reason, "closing connection");
                    if let Some(c) = self.conns.remove(&conn) {
                        c.kick(code, reason);
                    }
                }
                Effect::Refused { conn, reason } => {
                    // The log names the role and connection, never the participant's `sub`.
                    self.ctx.metrics.refused_updates.inc();
                    let role = self.conns.get(&conn).map(|c| c.who.role);
                    tracing::info!(doc = %self.ctx.key, conn, role = ?role, %reason, "update refused");
                }
                Effect::Created { by, items } => {
                    if let Some(who) = self.conns.get(&by).map(|c| c.who.clone()) {
                        for e in self.stamp(&items, &who) {
                            match Pending::of(e, || Origin::Stamp) {
                                Ok(p) => self.pending.push(p),
                                Err(other) => queue.push_back(other),
                            }
                        }
                    }
                }
                Effect::Removed { by, items } => {
                    if let Some(who) = self.conns.get(&by).map(|c| c.who.clone()) {
                        self.ctx
                            .board
                            .keep_deleted(self.ctx.key.doc, items, &who, now_millis());
                    }
                }
                Effect::Reload => {
                    tracing::error!(doc = %self.ctx.key, "applying an update panicked; reloading the document");
                    self.pending.clear();
                    self.reload = true;
                }
            }
        }
    }

    /// Writes owner tag, author and creation time on items a participant just created.
    fn stamp(&mut self, items: &[String], who: &Arc<Participant>) -> Vec<Effect> {
        let root = match self.ctx.key.doc {
            DocName::Canvas => "cards",
            DocName::Gap => "rows",
            _ => return Vec::new(),
        };
        let board = self.ctx.board.clone();
        let (_, mode) = board.policy();
        let author = Participant::author_text(who.role, &who.display, mode);
        let now_ms = now_millis();
        let tags: Vec<(String, String)> = items
            .iter()
            .map(|id| (id.clone(), board.owner_tag(&who.sub, id)))
            .collect();
        let ((), effects) = self.core.server_edit(move |txn| {
            let map = txn.get_or_insert_map(root);
            for (id, tag) in &tags {
                if let Some(Out::YMap(item)) = map.get(txn, id) {
                    item.insert(txn, "owner", tag.as_str());
                    match &author {
                        Some(a) => {
                            item.insert(txn, "author", a.as_str());
                        }
                        None => {
                            item.remove(txn, "author");
                        }
                    }
                    item.insert(txn, "createdAt", now_ms as f64);
                }
            }
        });
        for id in items {
            board.record_author(self.ctx.key.doc, id, who);
        }
        effects
    }

    /// Stores every pending update in one write, then forwards each to everyone but its sender.
    /// On failure nothing is forwarded and every connection is closed with 4503. On a shared
    /// log that moved, the pending updates are judged again on what is stored and retried.
    async fn flush(&mut self) -> Result<(), StoreError> {
        let mut moves = 0;
        loop {
            if self.pending.is_empty() {
                for (reply, value) in self.replies.drain(..) {
                    let _ = reply.send(value);
                }
                return Ok(());
            }
            let updates: Vec<Bytes> = self.pending.iter().map(|p| p.entry.clone()).collect();
            let started = Instant::now();
            let appended = match &self.shared {
                Some(sh) => {
                    self.ctx
                        .store
                        .append_at(&self.ctx.key, sh.tip, &updates)
                        .await
                }
                None => self
                    .ctx
                    .store
                    .append(&self.ctx.key, &updates)
                    .await
                    .map(|()| Appended::At(LogId::ZERO)),
            };
            let appended = match appended {
                Ok(Appended::Moved) if moves < MAX_MOVES => {
                    moves += 1;
                    self.ctx.metrics.log_moved.inc();
                    match self.rebase().await {
                        Ok(()) => continue,
                        Err(e) => Err(e),
                    }
                }
                Ok(Appended::Moved) => Err(StoreError::Unavailable(
                    "the shared log kept moving; giving up this batch".into(),
                )),
                other => other,
            };
            let tip = match appended {
                Ok(Appended::At(tip)) => tip,
                Ok(Appended::Moved) | Err(_) => {
                    let e = appended.err().unwrap_or_else(|| {
                        StoreError::Unavailable("the shared log kept moving".into())
                    });
                    return Err(self.store_lost(
                        e,
                        "store unavailable: your edit was not saved; reconnecting resends it",
                    ));
                }
            };
            if let Some(sh) = &mut self.shared {
                sh.tip = tip;
                sh.tip_tx.send_replace(tip);
            }
            self.ctx
                .metrics
                .store_write_seconds
                .observe(started.elapsed().as_secs_f64());
            self.log_entries += updates.len() as u64;
            self.log_bytes += updates.iter().map(|u| u.len() as u64).sum::<u64>();
            let sends: Vec<Effect> = self
                .pending
                .drain(..)
                .flat_map(|p| {
                    self.ctx.metrics.updates_out.inc_by(
                        self.conns
                            .keys()
                            .filter(|id| Some(**id) != p.except)
                            .count() as u64,
                    );
                    [Effect::Broadcast {
                        except: p.except,
                        frame: p.frame,
                    }]
                })
                .collect();
            self.carry_out(sends);
            for (reply, value) in self.replies.drain(..) {
                let _ = reply.send(value);
            }
            if self.log_entries >= self.ctx.config.compact_updates
                || self.log_bytes >= self.ctx.config.compact_bytes
            {
                self.start_compaction();
            }
            return Ok(());
        }
    }

    /// Moves a client update's `Store` effect into the pending list (with what is needed to
    /// judge it again) and returns the other effects.
    fn take_stores(
        &mut self,
        conn: ConnId,
        raw: Option<Vec<u8>>,
        effects: Vec<Effect>,
    ) -> Vec<Effect> {
        let mut rest = Vec::with_capacity(effects.len());
        for e in effects {
            let origin = || Origin::Client {
                conn,
                raw: raw.clone().unwrap_or_default(),
            };
            match Pending::of(e, origin) {
                Ok(p) => {
                    self.ctx.metrics.updates_in.inc();
                    self.pending.push(p);
                }
                Err(other) => rest.push(other),
            }
        }
        rest
    }

    /// The log moved under the pending updates (they are applied here but not stored): reload
    /// what is stored, then judge the connections' updates again and apply the server's edits
    /// again on top.
    async fn rebase(&mut self) -> Result<(), StoreError> {
        let loaded = self.ctx.store.load_at(&self.ctx.key).await?;
        let pending = std::mem::take(&mut self.pending);
        let old_tip = self.shared.as_ref().map_or(LogId::ZERO, |s| s.tip);
        let errors = self.core.rebuild(tafel_protocol::document::Stored {
            snapshot: loaded.doc.snapshot.as_deref(),
            log: loaded.doc.log.iter().map(|b| &b[..]).collect(),
        });
        for e in errors {
            tracing::error!(doc = %self.ctx.key, error = %e, "skipping an unreadable stored update");
        }
        self.log_entries = loaded.doc.log.len() as u64;
        self.log_bytes = loaded.doc.log.iter().map(|b| b.len() as u64).sum();
        if let Some(sh) = &mut self.shared {
            sh.tip = loaded.tip;
            sh.tip_tx.send_replace(loaded.tip);
        }
        tracing::debug!(doc = %self.ctx.key, pending = pending.len(), tip = %loaded.tip, "the log moved; judging pending updates again");
        // What the other nodes appended meanwhile is in the document now and stored: send it
        // to everyone here (the follower will skip it, being at or before the new tip).
        let missed: Vec<Effect> = loaded
            .ids
            .iter()
            .zip(&loaded.doc.log)
            .filter(|(id, _)| **id > old_tip)
            .map(|(id, entry)| {
                self.ctx.metrics.log_followed.inc();
                self.ctx.metrics.log_lag_seconds.observe(lag_seconds(*id));
                let (_, update) = tafel_protocol::stored::decode_entry(entry);
                Effect::Broadcast {
                    except: None,
                    frame: Bytes::from(tafel_protocol::wire::encode_update(update.to_vec())),
                }
            })
            .collect();
        self.carry_out(missed);
        for p in pending {
            match p.origin {
                Origin::Client { conn, raw } => {
                    let effects = self.judge_again(conn, raw);
                    self.carry_out(effects);
                }
                Origin::Server => {
                    if let Err(e) = self.core.apply_logged(&p.entry) {
                        tracing::error!(doc = %self.ctx.key, error = %e, "a server edit could not be applied again");
                    }
                    self.pending.push(p);
                }
                Origin::Stamp => {}
            }
        }
        Ok(())
    }

    /// Judges a connection's update again (after a rebase).
    fn judge_again(&mut self, conn: ConnId, raw: Vec<u8>) -> Vec<Effect> {
        let Some(who) = self.conns.get(&conn).map(|c| c.who.clone()) else {
            return Vec::new();
        };
        let (session, _) = self.ctx.board.policy();
        let board = self.ctx.board.clone();
        let owns_tag = move |item: &str, tag: &str| board.owns(&who.sub, item, tag);
        let rules = Rules {
            template: &self.ctx.board.template,
            session: &session,
            owns_tag: &owns_tag,
        };
        let effects = self.core.update(conn, raw.clone(), &rules);
        self.take_stores(conn, Some(raw), effects)
    }

    /// Applies log entries other nodes appended (those after the tip) and sends them to
    /// everyone here. Called with nothing pending.
    fn apply_followed(&mut self, entries: Vec<(LogId, Vec<u8>)>) {
        let Some(mut tip) = self.shared.as_ref().map(|s| s.tip) else {
            return;
        };
        let mut effects = Vec::new();
        for (id, entry) in entries {
            if id <= tip {
                continue;
            }
            tip = id;
            self.ctx.metrics.log_followed.inc();
            self.ctx.metrics.log_lag_seconds.observe(lag_seconds(id));
            self.log_entries += 1;
            self.log_bytes += entry.len() as u64;
            match self.core.apply_logged(&entry) {
                Ok(e) => effects.extend(e),
                Err(e) => {
                    tracing::error!(doc = %self.ctx.key, error = %e, entry = %id, "skipping an unreadable log entry")
                }
            }
        }
        if let Some(sh) = &mut self.shared {
            sh.tip = tip;
            sh.tip_tx.send_replace(tip);
        }
        self.carry_out(effects);
    }

    /// Reads and applies what the log holds after the tip (shared log only).
    async fn catch_up(&mut self) -> Result<(), StoreError> {
        let Some(tip) = self.shared.as_ref().map(|s| s.tip) else {
            return Ok(());
        };
        match self.ctx.store.read_after(&self.ctx.key, tip).await {
            Ok(entries) => {
                self.apply_followed(entries);
                Ok(())
            }
            Err(e) => Err(self.store_lost(
                e,
                "store unavailable: this server cannot read the shared log; reconnect",
            )),
        }
    }

    /// The store failed: nothing pending is stored or forwarded, every connection is closed
    /// with 4503 (`reason`), and the actor stops with the returned error.
    fn store_lost(&mut self, e: StoreError, reason: &str) -> StoreError {
        self.ctx.metrics.store_errors.inc();
        tracing::error!(doc = %self.ctx.key, error = %e, pending = self.pending.len(), "store failed; closing the document's connections");
        self.pending.clear();
        let effects = self.core.close_all(CloseCode::StoreUnavailable, reason);
        self.carry_out(effects);
        e
    }

    fn presence_changed(&mut self) {
        if let Some(sh) = &mut self.shared {
            sh.presence_dirty = true;
        }
    }

    /// Presence messages from other nodes: each is the node's whole presence on the document.
    fn remote_presence(&mut self, messages: Vec<(LogId, String, Vec<u8>)>) -> Vec<Effect> {
        let me = crate::store::node_id();
        let mut effects = Vec::new();
        for (_, node, msg) in messages {
            if node == me {
                continue;
            }
            let Ok(update) = AwarenessUpdate::decode_v1(&msg) else {
                tracing::warn!(doc = %self.ctx.key, node, "unreadable presence message");
                continue;
            };
            let ids: HashSet<ClientID> = update.clients.keys().copied().collect();
            let Some(sh) = &mut self.shared else {
                return effects;
            };
            let gone: Vec<ClientID> = sh
                .remote
                .get(&node)
                .map(|(_, before)| before.difference(&ids).copied().collect())
                .unwrap_or_default();
            sh.remote.insert(node, (Instant::now(), ids));
            effects.extend(self.core.drop_remote_presence(gone));
            effects.extend(self.core.remote_presence(update));
        }
        effects
    }

    /// Publishes this node's presence when it changed (or once a second while it shows any),
    /// and removes the presence of nodes not heard from for a while.
    async fn presence_tick(&mut self) {
        let Some(sh) = &mut self.shared else {
            return;
        };
        let now = Instant::now();
        let expired: Vec<String> = sh
            .remote
            .iter()
            .filter(|(_, (seen, _))| now.duration_since(*seen) > PRESENCE_EXPIRY)
            .map(|(n, _)| n.clone())
            .collect();
        let mut gone = Vec::new();
        for n in expired {
            if let Some((_, ids)) = sh.remote.remove(&n) {
                tracing::info!(doc = %self.ctx.key, node = %n, "a node went silent; removing its presence");
                gone.extend(ids);
            }
        }
        let heartbeat = sh.presence_shown
            && sh
                .presence_sent
                .is_none_or(|t| now.duration_since(t) >= PRESENCE_HEARTBEAT);
        let publish = sh.presence_dirty || heartbeat;
        if publish {
            sh.presence_dirty = false;
            sh.presence_sent = Some(now);
        }
        let effects = self.core.drop_remote_presence(gone);
        self.carry_out(effects);
        if !publish {
            return;
        }
        let presence = self.core.local_presence();
        let shown = !presence.clients.is_empty();
        if let Some(sh) = &mut self.shared {
            if !shown && !sh.presence_shown {
                return;
            }
            sh.presence_shown = shown;
        }
        let msg = presence.encode_v1();
        if let Err(e) = self
            .ctx
            .store
            .publish_presence(&self.ctx.key, crate::store::node_id(), &msg)
            .await
        {
            tracing::warn!(doc = %self.ctx.key, error = %e, "could not publish presence");
        }
    }

    /// Starts a compaction: the snapshot (the current state and the index at that state) is
    /// encoded here, and stored — the lease, then the write that replaces the snapshot and drops
    /// the log entries it covers — by a task of its own, so that live updates go on meanwhile
    /// (they are appended after the covered entries; the store drops only those). One at a time;
    /// a failure is logged and retried later.
    fn start_compaction(&mut self) {
        if self.log_entries == 0 || self.compacting.is_some() {
            return;
        }
        let started = Instant::now();
        let snapshot = self.core.snapshot();
        let size = snapshot.len() as u64;
        let at = self.shared.as_ref().map_or(LogId::ZERO, |s| s.tip);
        let covered = self.log_entries;
        let (tx, done) = oneshot::channel();
        let store = self.ctx.store.clone();
        let key = self.ctx.key.clone();
        let task = tokio::spawn(async move {
            let _ = tx.send(store_compaction(&*store, &key, snapshot, at, covered).await);
        });
        tracing::debug!(doc = %self.ctx.key, bytes = size, encode_ms = started.elapsed().as_millis() as u64, "compaction started");
        self.compacting = Some(Compacting {
            done,
            task,
            covered,
            covered_bytes: self.log_bytes,
            size,
        });
    }

    /// A compaction's store write ended.
    fn compaction_finished(&mut self, outcome: Compacted) {
        let Some(c) = self.compacting.take() else {
            return;
        };
        match outcome {
            Compacted::Done => {
                tracing::debug!(doc = %self.ctx.key, covered = c.covered, "compacted");
                self.log_entries = self.log_entries.saturating_sub(c.covered);
                self.log_bytes = self.log_bytes.saturating_sub(c.covered_bytes);
                // The stored document: the snapshot plus what was logged since it was taken.
                self.core.compacted(c.size + self.log_bytes);
                self.compact_again_at = None;
            }
            Compacted::Busy => {
                tracing::debug!(doc = %self.ctx.key, "another node is compacting this document");
                self.compact_again_at =
                    Some(std::time::Instant::now() + std::time::Duration::from_secs(1));
            }
            Compacted::LeaseFailed(e) => {
                self.ctx.metrics.store_errors.inc();
                tracing::warn!(doc = %self.ctx.key, error = %e, "compaction lease unavailable; will retry");
            }
            Compacted::Failed(e) => {
                self.ctx.metrics.store_errors.inc();
                tracing::warn!(doc = %self.ctx.key, error = %e, "compaction failed; will retry");
            }
        }
    }

    /// Waits for a compaction under way (the document is stopping, or about to compact).
    async fn wait_compaction(&mut self) {
        let outcome = compaction_done(&mut self.compacting).await;
        self.compaction_finished(outcome);
    }

    /// Compacts and waits for it (the document is stopping).
    async fn compact_now(&mut self) {
        if self.compacting.is_some() {
            self.wait_compaction().await;
        }
        self.start_compaction();
        if self.compacting.is_some() {
            self.wait_compaction().await;
        }
    }
}

/// A compaction whose store write is under way.
struct Compacting {
    done: oneshot::Receiver<Compacted>,
    task: tokio::task::JoinHandle<()>,
    /// Log entries and bytes the snapshot covers, and its size.
    covered: u64,
    covered_bytes: u64,
    size: u64,
}

impl Drop for Compacting {
    /// A document that ends (or panics) does not leave its compaction running on its own.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a compaction's store write ended.
enum Compacted {
    Done,
    /// Another node holds the compaction lease.
    Busy,
    LeaseFailed(StoreError),
    Failed(StoreError),
}

/// The lease (nodes sharing a store compact a document one at a time: the lease expires by
/// itself when its holder dies, a killed node's after COMPACTION_LEASE_MS, and a node without
/// it tries again a second later; the board as hash tag, like every key of a board, one Redis
/// Cluster slot), then the write.
async fn store_compaction(
    store: &dyn Store,
    key: &DocKey,
    snapshot: Vec<u8>,
    at: LogId,
    covered: u64,
) -> Compacted {
    let lease = format!("compact:{{{}}}:{}", key.board, key.doc);
    match store
        .lease(&lease, crate::store::node_id(), COMPACTION_LEASE_MS)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Compacted::Busy,
        Err(e) => return Compacted::LeaseFailed(e),
    }
    match store.compact_at(key, snapshot, at, covered).await {
        Ok(()) => Compacted::Done,
        Err(e) => Compacted::Failed(e),
    }
}

/// The end of the compaction under way (never, when there is none).
async fn compaction_done(compacting: &mut Option<Compacting>) -> Compacted {
    match compacting {
        Some(c) => match (&mut c.done).await {
            Ok(outcome) => outcome,
            Err(_) => Compacted::Failed(StoreError::Unavailable("compaction task ended".into())),
        },
        None => std::future::pending().await,
    }
}

/// The next message of the document's follower (never, when it has none).
async fn recv_followed(shared: &mut Option<Shared>) -> Option<Result<Followed, StoreError>> {
    match shared {
        Some(sh) => sh.follow_rx.recv().await,
        None => std::future::pending().await,
    }
}
