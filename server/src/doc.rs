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
//! When the store fails, nothing unstored is forwarded: every connection is closed with 4503 and
//! the document is dropped from memory; clients reconnect, the document is reloaded from the
//! store and each client's sync step 2 sends back what the store missed. When the actor panics,
//! its connections notice the closed mailbox and close with 1011; the next join reloads it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tafel_protocol::document::{DocCore, Effect, MemberInfo, Rules, Stored};
use tafel_protocol::{CloseCode, DocKey, DocName};
use tokio::sync::{mpsc, oneshot, watch};
use yrs::sync::AwarenessUpdate;
use yrs::{Map, Out, StateVector, TransactionMut, WriteTxn};

use crate::board::Board;
use crate::config::Config;
use crate::domain::state::Participant;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

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

/// The document's way to reach one connection: a bounded queue of encoded frames, and a kick
/// signal that closes it (used when the queue is full, so a slow client never grows memory).
#[derive(Clone)]
pub struct ConnHandle {
    pub id: ConnId,
    /// Who is on the other end (role, pseudonym): what the rules and presence need.
    pub who: Arc<Participant>,
    /// Whether this connection may write the document (the baseline matrix).
    pub can_write: bool,
    pub out: mpsc::Sender<Bytes>,
    /// What `out` holds, in bytes.
    pub queued: Arc<Queued>,
    pub kick: Arc<watch::Sender<Option<Close>>>,
}

impl ConnHandle {
    /// Asks the connection to close; the first reason wins. Returns whether this call set it.
    pub fn kick(&self, code: CloseCode, reason: impl Into<String>) -> bool {
        let reason = reason.into();
        self.kick.send_if_modified(|c| {
            if c.is_none() {
                *c = Some(Close { code, reason });
                true
            } else {
                false
            }
        })
    }

    /// Queues a frame. A full queue — more than `max_queued_bytes` waiting (one frame always
    /// fits into an empty queue, however large), or the frame bound — closes the connection
    /// (4508) and returns false.
    fn send(&self, frame: Bytes, metrics: &Metrics) -> bool {
        let len = frame.len();
        let before = self.queued.bytes.fetch_add(len, Ordering::Relaxed);
        if before > 0 && before + len > self.queued.max {
            self.queued.bytes.fetch_sub(len, Ordering::Relaxed);
            self.too_slow(metrics, before);
            return false;
        }
        match self.out.try_send(frame) {
            Ok(()) => {
                metrics.bytes_out.inc_by(len as u64);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued.bytes.fetch_sub(len, Ordering::Relaxed);
                self.too_slow(metrics, before);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued.bytes.fetch_sub(len, Ordering::Relaxed);
                false
            }
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

/// Bytes waiting in one connection's outgoing queue, and the most that may wait.
#[derive(Debug)]
pub struct Queued {
    pub bytes: AtomicUsize,
    pub max: usize,
}

impl Queued {
    pub fn new(max: usize) -> Arc<Queued> {
        Arc::new(Queued {
            bytes: AtomicUsize::new(0),
            max,
        })
    }

    /// The writer took `len` bytes off the queue.
    pub fn done(&self, len: usize) {
        self.bytes.fetch_sub(len, Ordering::Relaxed);
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
const COMPACTION_LEASE_MS: u64 = 30_000;

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
    /// Set when the core asks to be reloaded: the actor stops after this batch.
    reload: bool,
    /// Server edits waiting for their flush, to be answered once stored.
    replies: Vec<(oneshot::Sender<serde_json::Value>, serde_json::Value)>,
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
    let stored_doc = match ctx.store.load(&ctx.key).await {
        Ok(v) => v,
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
    let mut live = LiveDoc {
        ctx,
        core,
        conns: HashMap::new(),
        pending: Vec::new(),
        log_entries,
        log_bytes,
        reload: false,
        replies: Vec::new(),
    };
    let final_join_error = live.serve(&mut rx).await;
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
        loop {
            let first = if self.conns.is_empty() {
                match tokio::time::timeout(self.ctx.config.idle_evict, rx.recv()).await {
                    Ok(Some(cmd)) => cmd,
                    Ok(None) => return || JoinError::Gone,
                    Err(_) => {
                        tracing::debug!(doc = %self.ctx.key, "idle, unloading");
                        self.compact().await;
                        return || JoinError::Gone;
                    }
                }
            } else {
                match rx.recv().await {
                    Some(cmd) => cmd,
                    None => return || JoinError::Gone,
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
        }
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
                let effects = self.core.update(conn, update, &rules);
                if effects.iter().any(|e| matches!(e, Effect::Store { .. })) {
                    self.ctx.metrics.updates_in.inc();
                }
                effects
            }
            DocCmd::SyncStep1 { conn, sv } => {
                self.flush().await?;
                self.core.sync_step1(conn, &sv)
            }
            DocCmd::Awareness { conn, update } => self.awareness(conn, update),
            DocCmd::AwarenessQuery { conn } => self.core.awareness_query(conn),
            DocCmd::Export { reply } => {
                self.flush().await?;
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
                self.compact().await;
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
        };
        self.carry_out(effects);
        Ok(Flow::Continue)
    }

    fn awareness(&mut self, conn: ConnId, update: AwarenessUpdate) -> Vec<Effect> {
        self.core.awareness(conn, update)
    }

    /// Carries out the core's effects. Sends that fail (a full queue) drop the connection,
    /// whose own effects (presence removal) are carried out in turn, without recursion.
    fn carry_out(&mut self, effects: Vec<Effect>) {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Store {
                    entry,
                    frame,
                    except,
                } => self.pending.push(Pending {
                    entry,
                    frame,
                    except,
                }),
                Effect::Send { to, frame } => {
                    if let Some(c) = self.conns.get(&to) {
                        if !c.send(frame, &self.ctx.metrics) {
                            self.conns.remove(&to);
                            queue.extend(self.core.leave(to));
                        }
                    }
                }
                Effect::Broadcast { except, frame } => {
                    let mut slow = Vec::new();
                    for (id, c) in &self.conns {
                        if Some(*id) != except && !c.send(frame.clone(), &self.ctx.metrics) {
                            slow.push(*id);
                        }
                    }
                    for id in slow {
                        self.conns.remove(&id);
                        queue.extend(self.core.leave(id));
                    }
                }
                Effect::Close { conn, code, reason } => {
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
                        queue.extend(self.stamp(&items, &who));
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
    /// On failure nothing is forwarded and every connection is closed with 4503.
    async fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            for (reply, value) in self.replies.drain(..) {
                let _ = reply.send(value);
            }
            return Ok(());
        }
        let updates: Vec<Bytes> = self.pending.iter().map(|p| p.entry.clone()).collect();
        let started = Instant::now();
        if let Err(e) = self.ctx.store.append(&self.ctx.key, &updates).await {
            self.ctx.metrics.store_errors.inc();
            tracing::error!(doc = %self.ctx.key, error = %e, updates = updates.len(), "store write failed; closing the document's connections");
            self.pending.clear();
            let effects = self.core.close_all(
                CloseCode::StoreUnavailable,
                "store unavailable: your edit was not saved; reconnecting resends it",
            );
            self.carry_out(effects);
            return Err(e);
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
            self.compact().await;
        }
        Ok(())
    }

    /// Replaces the stored snapshot with the current state (and the index at that state) and
    /// drops the log entries it covers. A failure is logged and retried later.
    async fn compact(&mut self) {
        if self.log_entries == 0 {
            return;
        }
        // Nodes sharing a store compact a document one at a time: the lease expires by itself
        // when its holder dies, and a node without it tries again at its next threshold.
        let lease = format!("compact:{}", self.ctx.key);
        match self
            .ctx
            .store
            .lease(&lease, crate::store::node_id(), COMPACTION_LEASE_MS)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(doc = %self.ctx.key, "another node is compacting this document");
                return;
            }
            Err(e) => {
                self.ctx.metrics.store_errors.inc();
                tracing::warn!(doc = %self.ctx.key, error = %e, "compaction lease unavailable; will retry");
                return;
            }
        }
        let snapshot = self.core.snapshot();
        let size = snapshot.len() as u64;
        match self
            .ctx
            .store
            .compact(&self.ctx.key, snapshot, self.log_entries)
            .await
        {
            Ok(()) => {
                tracing::debug!(doc = %self.ctx.key, covered = self.log_entries, "compacted");
                self.log_entries = 0;
                self.log_bytes = 0;
                self.core.compacted(size);
            }
            Err(e) => {
                self.ctx.metrics.store_errors.inc();
                tracing::warn!(doc = %self.ctx.key, error = %e, "compaction failed; will retry");
            }
        }
    }
}
