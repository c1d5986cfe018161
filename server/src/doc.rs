//! One live document: an actor task that owns the yrs `Doc` (inside its `Awareness`) and the
//! list of connections, and is the only place updates are applied, stored and forwarded.
//!
//! The promise it keeps: an update is in the store before any other connection is sent it, and
//! no connection is ever answered with state that is not yet stored. Commands are taken in
//! batches; accepted updates of a batch are written in one store call (group commit), then
//! forwarded, each encoded once and shared by every recipient. A command that reads state
//! (join, sync step 1, export) first flushes what is pending.
//!
//! When the store fails, nothing unstored is forwarded: every connection is closed with 4503 and
//! the document is dropped from memory; clients reconnect, the document is reloaded from the
//! store and each client's sync step 2 sends back what the store missed.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tafel_protocol::anonymity::scrub_employee_awareness;
use tafel_protocol::index::{Index, Owner, Shape};
use tafel_protocol::judge::{self, Accepted, Context, Rejection, Writer, YrsView};
use tafel_protocol::stored;
use tafel_protocol::structs;
use tafel_protocol::wire::encode_permission_denied;
use tafel_protocol::wire::{
    decode_update, encode_awareness, encode_join_frames, encode_sync_step2, encode_update,
};
use tafel_protocol::{CloseCode, DocKey, DocName, Role};
use tokio::sync::{mpsc, oneshot, watch};
use yrs::sync::{Awareness, AwarenessUpdate};
use yrs::{
    Any, Array, ClientID, Doc, GetString, IdSet, Map, Out, ReadTxn, StateVector, Text, Transact,
    TransactionMut, WriteTxn,
};

use crate::board::{Board, Participant};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::{Store, StoreError};

pub type ConnId = u64;

/// A server-side edit: runs inside one transaction of the document.
pub type ServerEdit = Box<dyn FnOnce(&mut TransactionMut) -> serde_json::Value + Send>;

/// The connection id used for changes the server makes itself (forwarded to everyone).
const SERVER: ConnId = 0;

/// Most commands handled between two store writes. One flush may queue this many frames on a
/// connection at once, so a connection's queue is never smaller than twice this
/// (see `Config::outgoing_queue`).
pub const MAX_BATCH: usize = 64;

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
    pub out: mpsc::Sender<Bytes>,
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

    /// Queues a frame. A full queue closes the connection (4508) and returns false.
    fn send(&self, frame: Bytes, metrics: &Metrics) -> bool {
        let len = frame.len() as u64;
        match self.out.try_send(frame) {
            Ok(()) => {
                metrics.bytes_out.inc_by(len);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.kick(
                    CloseCode::TooSlow,
                    "too slow: outgoing queue full; reconnect to resync",
                ) {
                    tracing::warn!(
                        conn = self.id,
                        "client too slow: outgoing queue full, closing"
                    );
                    metrics.slow_clients_closed.inc();
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
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
}

/// What the actor needs from the rest of the server.
pub struct DocContext {
    pub key: DocKey,
    pub generation: u64,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    pub registry: Arc<Registry>,
    pub board: Arc<Board>,
}

struct Member {
    handle: ConnHandle,
    awareness_ids: HashSet<ClientID>,
}

/// An accepted update not yet stored.
struct Pending {
    from: ConnId,
    /// The log entry (the update with its writer).
    entry: Bytes,
    frame: Bytes,
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
    awareness: Awareness,
    members: HashMap<ConnId, Member>,
    /// Which connection currently shows which awareness client id. Who may claim an id at all
    /// is the ownership index's (`Index::claim_presence`); a newer connection of the same
    /// participant takes the id over at once.
    awareness_owner: HashMap<ClientID, ConnId>,
    pending: Vec<Pending>,
    /// Sync step 2 for an empty state vector, encoded once per change and shared by every
    /// joining client (a room joining at once costs one encode, not one per client).
    full_state_frame: Option<Bytes>,
    log_entries: u64,
    log_bytes: u64,
    /// Snapshot plus log, for the document size limit.
    doc_bytes: u64,
    /// Who wrote under which client id, and where every clock range lives (see `judge`).
    index: Index,
    /// Server edits waiting for their flush, to be answered once stored.
    replies: Vec<(oneshot::Sender<serde_json::Value>, serde_json::Value)>,
}

/// Takes the document out of the registry when the actor ends, even by a panic, so the next
/// join loads it afresh (connections notice the actor is gone and close with 1011).
struct Forget {
    registry: Arc<Registry>,
    key: DocKey,
    generation: u64,
}

impl Drop for Forget {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(doc = %self.key, "document actor panicked; its connections close with 1011 and it reloads on the next join");
        }
        self.registry.forget(&self.key, self.generation);
    }
}

/// Runs a document until it is evicted, fails or is shut down.
pub async fn run(ctx: DocContext, mut rx: mpsc::Receiver<DocCmd>) {
    let _forget = Forget {
        registry: ctx.registry.clone(),
        key: ctx.key.clone(),
        generation: ctx.generation,
    };
    let loaded = load(&*ctx.store, &ctx.key, &ctx.config).await;
    let (doc, index, log_entries, log_bytes) = match loaded {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(doc = %ctx.key, error = %e, "cannot load document");
            ctx.metrics.store_errors.inc();
            ctx.registry.forget(&ctx.key, ctx.generation);
            drain(&mut rx, || JoinError::Store(e.clone())).await;
            return;
        }
    };
    ctx.metrics.documents_loaded.inc();
    tracing::debug!(doc = %ctx.key, log_entries, "document loaded");
    let mut live = LiveDoc {
        ctx,
        awareness: Awareness::new(doc),
        members: HashMap::new(),
        awareness_owner: HashMap::new(),
        pending: Vec::new(),
        full_state_frame: None,
        log_entries,
        log_bytes,
        doc_bytes: log_bytes,
        index,
        replies: Vec::new(),
    };
    let final_join_error = live.serve(&mut rx).await;
    live.ctx.metrics.documents_loaded.dec();
    live.ctx.registry.forget(&live.ctx.key, live.ctx.generation);
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

/// Applies stored bytes to `doc` and extends the index with them (as written by `writer`).
/// Returns false when the bytes could not be applied.
fn replay(
    doc: &Doc,
    index: &mut Index,
    key: &DocKey,
    config: &Config,
    writer: Option<&Owner>,
    update: &[u8],
) -> Result<(), String> {
    let decoded = decode_update(update).map_err(|e| e.to_string())?;
    let schema = judge::schema(key.doc, config.limits.max_depth);
    let walked = structs::decode(update).map_err(|e| e.to_string());
    let creator = writer.filter(|w| **w != Owner::Server);
    let resolved = walked.and_then(|w| {
        index
            .resolve(&w, &schema, creator)
            .map_err(|e| e.to_string())
    });
    let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut txn = doc.transact_mut();
        txn.apply_update(decoded).map(|()| txn.delete_set().clone())
    }));
    let deleted = match applied {
        Ok(Ok(ds)) => ds,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("applying it panicked".into()),
    };
    match resolved {
        Ok(r) => index.apply(r, writer, &deleted),
        Err(e) => {
            tracing::warn!(doc = %key, error = %e, "a stored update is outside the index; its ranges stay unowned")
        }
    }
    Ok(())
}

async fn load(
    store: &dyn Store,
    key: &DocKey,
    config: &Config,
) -> Result<(Doc, Index, u64, u64), StoreError> {
    let stored_doc = store.load(key).await?;
    let doc = Doc::new();
    let mut index = Index::new();
    let mut bytes = 0u64;
    if let Some(raw) = &stored_doc.snapshot {
        bytes += raw.len() as u64;
        let (stored_index, state) = stored::decode_snapshot(raw);
        let restored = stored_index.map(Index::from_bytes);
        match restored {
            Some(Ok(i)) => {
                index = i;
                let applied = decode_update(state)
                    .map_err(|e| e.to_string())
                    .and_then(|u| {
                        doc.transact_mut()
                            .apply_update(u)
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = applied {
                    tracing::error!(doc = %key, error = %e, "skipping an unreadable stored snapshot");
                }
            }
            other => {
                if let Some(Err(e)) = other {
                    tracing::error!(doc = %key, error = %e, "the stored index cannot be read; client ids are unowned until claimed");
                }
                if let Err(e) = replay(&doc, &mut index, key, config, None, state) {
                    tracing::error!(doc = %key, error = %e, "skipping an unreadable stored snapshot");
                }
            }
        }
    }
    for (i, raw) in stored_doc.log.iter().enumerate() {
        bytes += raw.len() as u64;
        let (writer, update) = stored::decode_entry(raw);
        if let Err(e) = replay(&doc, &mut index, key, config, writer.as_ref(), update) {
            // Keep serving what can be read; say loudly what could not.
            tracing::error!(doc = %key, part = i, error = %e, "skipping an unreadable stored update");
        }
    }
    // The server writes under this document's own client id.
    index.claim_for_server(doc.client_id().get());
    Ok((doc, index, stored_doc.log.len() as u64, bytes))
}

impl LiveDoc {
    /// The main loop. Returns the error that joins still queued at the end should get.
    async fn serve(&mut self, rx: &mut mpsc::Receiver<DocCmd>) -> fn() -> JoinError {
        loop {
            let first = if self.members.is_empty() {
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
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Stop) => return || JoinError::Gone,
                    Err(_) => return || JoinError::Gone,
                }
            }
            if self.flush().await.is_err() {
                return || JoinError::Gone;
            }
        }
    }

    async fn handle(&mut self, cmd: DocCmd) -> Result<Flow, StoreError> {
        match cmd {
            DocCmd::Join { conn, reply } => {
                self.flush().await?;
                for frame in encode_join_frames(&self.awareness) {
                    conn.send(Bytes::from(frame), &self.ctx.metrics);
                }
                let id = conn.id;
                self.members.insert(
                    id,
                    Member {
                        handle: conn,
                        awareness_ids: HashSet::new(),
                    },
                );
                if reply.send(Ok(())).is_err() {
                    self.leave(id);
                }
            }
            DocCmd::Leave { conn } => self.leave(conn),
            DocCmd::Apply { conn, update } => return Ok(self.apply(conn, update, true)),
            DocCmd::ReadOnly { conn, update } => return Ok(self.apply(conn, update, false)),
            DocCmd::SyncStep1 { conn, sv } => {
                self.flush().await?;
                let frame = self.sync_step2(&sv);
                self.send_to(conn, frame);
            }
            DocCmd::Awareness { conn, update } => self.awareness_update(conn, update),
            DocCmd::AwarenessQuery { conn } => {
                if let Ok(update) = self.awareness.update() {
                    self.send_to(conn, Bytes::from(encode_awareness(update)));
                }
            }
            DocCmd::Export { reply } => {
                self.flush().await?;
                let _ = reply.send(self.export());
            }
            DocCmd::ServerEdit { edit, reply } => {
                let value = self.server_edit(edit);
                self.replies.push((reply, value));
            }
            DocCmd::Discard => {
                self.pending.clear();
                self.close_all(CloseCode::GoingAway, "the board was deleted");
                return Ok(Flow::Stop);
            }
            DocCmd::Shutdown => {
                self.flush().await?;
                self.close_all(
                    CloseCode::GoingAway,
                    "server shutting down; reconnect shortly",
                );
                self.compact().await;
                return Ok(Flow::Stop);
            }
            DocCmd::TestPanic => {
                if self.ctx.config.test_hooks {
                    panic!("test hook: document actor panic");
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// Judges an update struct by struct (`judge`), applies it once, and queues it for the
    /// next flush (stored, then forwarded). A refused update touches nothing.
    fn apply(&mut self, conn: ConnId, raw: Vec<u8>, can_write: bool) -> Flow {
        let Some(who) = self.members.get(&conn).map(|m| m.handle.who.clone()) else {
            return Flow::Continue;
        };
        let verdict = self.judge(&who, &raw, can_write);
        let accepted = match verdict {
            Ok(a) => a,
            Err(Rejection::Refused(r)) => {
                self.deny(conn, &who, &r.to_string());
                return Flow::Continue;
            }
            Err(Rejection::Malformed(e)) => {
                self.kick(
                    conn,
                    CloseCode::MalformedMessage,
                    format!("malformed update: {e}"),
                );
                return Flow::Continue;
            }
        };
        if accepted.resolved.is_empty() {
            // Nothing the server does not hold already: nothing to store or forward.
            return Flow::Continue;
        }
        let update = match decode_update(&raw) {
            Ok(u) => u,
            Err(e) => {
                self.kick(
                    conn,
                    CloseCode::MalformedMessage,
                    format!("malformed update: {e}"),
                );
                return Flow::Continue;
            }
        };
        let doc = self.awareness.doc();
        let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut txn = doc.transact_mut();
            txn.apply_update(update).map(|()| txn.delete_set().clone())
        }));
        match applied {
            Ok(Ok(deleted)) => {
                self.ctx.metrics.updates_in.inc();
                self.full_state_frame = None;
                self.index
                    .apply(accepted.resolved, Some(&who.tag), &deleted);
                let entry = Bytes::from(stored::encode_entry(&who.tag, &raw));
                let frame = Bytes::from(encode_update(raw));
                self.pending.push(Pending {
                    from: conn,
                    entry,
                    frame,
                });
                if !accepted.created.is_empty() {
                    self.stamp(&accepted.created, &who);
                }
                Flow::Continue
            }
            Ok(Err(e)) => {
                // Judged but not appliable: nothing of it was integrated (yrs checks first).
                self.kick(
                    conn,
                    CloseCode::MalformedMessage,
                    format!("update cannot be applied: {e}"),
                );
                Flow::Continue
            }
            Err(_) => {
                // yrs panicked half-way: the in-memory document can no longer be trusted. Drop
                // it (nothing unstored was forwarded) and let everyone resync from the store.
                tracing::error!(doc = %self.ctx.key, conn, "applying an update panicked; reloading the document");
                self.pending.clear();
                self.close_all(CloseCode::InternalError, "document reloaded; reconnect");
                Flow::Stop
            }
        }
    }

    fn judge(&self, who: &Participant, raw: &[u8], can_write: bool) -> Result<Accepted, Rejection> {
        let (session, _) = self.ctx.board.policy();
        let board = self.ctx.board.clone();
        let sub = who.sub.clone();
        let owns_tag = move |item: &str, tag: &str| board.owner_tag(&sub, item) == tag;
        let writer = Writer {
            role: who.role,
            owner: who.tag.clone(),
            can_write,
            owns_tag: &owns_tag,
        };
        let txn = self.awareness.doc().transact();
        let view = YrsView { txn: &txn };
        let ctx = Context {
            doc: self.ctx.key.doc,
            index: &self.index,
            view: &view,
            template: &self.ctx.board.template,
            session: &session,
            limits: self.ctx.config.limits,
            doc_bytes: self.doc_bytes,
        };
        judge::judge(&ctx, &writer, raw)
    }

    /// Refuses an update: nothing applied, stored or forwarded; the sender is told why. The
    /// log names the role and connection, never the participant's `sub`.
    fn deny(&mut self, conn: ConnId, who: &Participant, reason: &str) {
        self.ctx.metrics.refused_updates.inc();
        tracing::info!(doc = %self.ctx.key, conn, role = %who.role, %reason, "update refused");
        self.send_to(conn, Bytes::from(encode_permission_denied(reason)));
    }

    /// Writes owner tag, author and creation time on items a participant just created.
    fn stamp(&mut self, items: &[String], who: &Arc<Participant>) {
        let root = match self.ctx.key.doc {
            DocName::Canvas => "cards",
            DocName::Gap => "rows",
            _ => return,
        };
        let board = self.ctx.board.clone();
        let (_, mode) = board.policy();
        let author = Participant::author_text(who.role, &who.display, mode);
        let now_ms = now_millis();
        let sub = who.sub.clone();
        let tags: Vec<(String, String)> = items
            .iter()
            .map(|id| (id.clone(), board.owner_tag(&sub, id)))
            .collect();
        self.server_edit(Box::new(move |txn| {
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
            serde_json::Value::Null
        }));
        for id in items {
            board.record_author(self.ctx.key.doc, id, who);
        }
    }

    /// Runs a server edit in one transaction of the real document, records it in the index
    /// and queues it (stored and forwarded to everyone at the next flush).
    fn server_edit(&mut self, edit: ServerEdit) -> serde_json::Value {
        let (value, update, deleted) = {
            let mut txn = self.awareness.doc().transact_mut();
            let value = edit(&mut txn);
            let deleted: IdSet = txn.delete_set().clone();
            (value, txn.encode_update_v1(), deleted)
        };
        let walked = structs::decode(&update).map_err(|e| e.to_string());
        let schema = judge::schema(self.ctx.key.doc, self.ctx.config.limits.max_depth);
        match walked.and_then(|w| {
            self.index
                .resolve(&w, &schema, None)
                .map_err(|e| e.to_string())
        }) {
            Ok(r) if r.is_empty() && deleted.is_empty() => return value,
            Ok(r) => self.index.apply(r, Some(&Owner::Server), &deleted),
            Err(e) => {
                tracing::warn!(doc = %self.ctx.key, error = %e, "a server edit is outside the index")
            }
        }
        self.full_state_frame = None;
        let entry = Bytes::from(stored::encode_entry(&Owner::Server, &update));
        let frame = Bytes::from(encode_update(update));
        self.pending.push(Pending {
            from: SERVER,
            entry,
            frame,
        });
        value
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
            self.close_all(
                CloseCode::StoreUnavailable,
                "store unavailable: your edit was not saved; reconnecting resends it",
            );
            return Err(e);
        }
        self.ctx
            .metrics
            .store_write_seconds
            .observe(started.elapsed().as_secs_f64());
        let written: u64 = updates.iter().map(|u| u.len() as u64).sum();
        self.log_entries += updates.len() as u64;
        self.log_bytes += written;
        self.doc_bytes += written;
        let mut slow = Vec::new();
        for p in self.pending.drain(..) {
            for (id, m) in &self.members {
                if *id != p.from && !slow.contains(id) {
                    if m.handle.send(p.frame.clone(), &self.ctx.metrics) {
                        self.ctx.metrics.updates_out.inc();
                    } else {
                        slow.push(*id);
                    }
                }
            }
        }
        for id in slow {
            self.leave(id);
        }
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
        let state = self
            .awareness
            .doc()
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let snapshot = stored::encode_snapshot(&self.index.to_bytes(), &state);
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
                self.doc_bytes = size;
            }
            Err(e) => {
                self.ctx.metrics.store_errors.inc();
                tracing::warn!(doc = %self.ctx.key, error = %e, "compaction failed; will retry");
            }
        }
    }

    fn sync_step2(&mut self, sv: &StateVector) -> Bytes {
        if sv.is_empty() {
            if let Some(f) = &self.full_state_frame {
                return f.clone();
            }
        }
        let diff = self.awareness.doc().transact().encode_diff_v1(sv);
        let frame = Bytes::from(encode_sync_step2(diff));
        if sv.is_empty() {
            self.full_state_frame = Some(frame.clone());
        }
        frame
    }

    /// Relays presence. An entry is kept only for an awareness id the sender's participant
    /// owns (or claims now, being the first to announce it); others are dropped silently (the
    /// npm client re-sends everyone's states it receives). A newer connection of the owner
    /// takes the id over at once.
    fn awareness_update(&mut self, conn: ConnId, mut update: AwarenessUpdate) {
        let Some(who) = self.members.get(&conn).map(|m| m.handle.who.clone()) else {
            return;
        };
        let index = &mut self.index;
        update
            .clients
            .retain(|id, _| index.claim_presence(id.get(), &who.tag));
        if update.clients.is_empty() {
            return;
        }
        if who.role == Role::Employee {
            for entry in update.clients.values_mut() {
                entry.json = scrub_employee_awareness(&entry.json, &who.display).into();
            }
        }
        for id in update.clients.keys() {
            if let Some(prev) = self.awareness_owner.insert(*id, conn) {
                if prev != conn {
                    if let Some(m) = self.members.get_mut(&prev) {
                        m.awareness_ids.remove(id);
                    }
                }
            }
            if let Some(m) = self.members.get_mut(&conn) {
                m.awareness_ids.insert(*id);
            }
        }
        let frame = Bytes::from(encode_awareness(update.clone()));
        let _ = self.awareness.apply_update(update);
        self.broadcast(Some(conn), frame);
    }

    fn broadcast(&mut self, except: Option<ConnId>, frame: Bytes) {
        let mut slow = Vec::new();
        for (id, m) in &self.members {
            if Some(*id) != except && !m.handle.send(frame.clone(), &self.ctx.metrics) {
                slow.push(*id);
            }
        }
        for id in slow {
            self.leave(id);
        }
    }

    fn send_to(&mut self, conn: ConnId, frame: Bytes) {
        let ok = match self.members.get(&conn) {
            Some(m) => m.handle.send(frame, &self.ctx.metrics),
            None => return,
        };
        if !ok {
            self.leave(conn);
        }
    }

    fn kick(&mut self, conn: ConnId, code: CloseCode, reason: String) {
        tracing::info!(doc = %self.ctx.key, conn, code = code.code(), %reason, "closing connection");
        if let Some(m) = self.members.get(&conn) {
            m.handle.kick(code, reason);
        }
        self.leave(conn);
    }

    /// Removes a connection and tells the others that its presence is gone (only the ids it
    /// still shows: a newer connection of the same participant may have taken some over).
    fn leave(&mut self, conn: ConnId) {
        let Some(member) = self.members.remove(&conn) else {
            return;
        };
        let ids: Vec<ClientID> = member
            .awareness_ids
            .into_iter()
            .filter(|id| self.awareness_owner.get(id) == Some(&conn))
            .collect();
        if ids.is_empty() {
            return;
        }
        for id in &ids {
            self.awareness_owner.remove(id);
            self.awareness.remove_state(*id);
        }
        if let Ok(update) = self.awareness.update_with_clients(ids) {
            self.broadcast(None, Bytes::from(encode_awareness(update)));
        }
    }

    fn close_all(&mut self, code: CloseCode, reason: &str) {
        for m in self.members.values() {
            m.handle.kick(code, reason);
        }
        self.members.clear();
        self.awareness_owner.clear();
    }

    /// The document as JSON, root by root. Roots are read as the index knows them (maps, or
    /// lists and texts); the walk is iterative and stops at `max_depth` levels, so no content
    /// can make it recurse without bound.
    fn export(&self) -> serde_json::Value {
        let txn = self.awareness.doc().transact();
        let names: Vec<String> = txn.root_refs().map(|(n, _)| n.to_owned()).collect();
        let mut out = serde_json::Map::new();
        for name in names {
            let shape = self
                .index
                .root(&name)
                .map(|n| n.shape)
                .unwrap_or(Shape::Map);
            let value = match shape {
                Shape::Seq => match txn.get_text(name.as_str()) {
                    Some(t) if t.len(&txn) > 0 => serde_json::Value::String(t.get_string(&txn)),
                    _ => match txn.get_array(name.as_str()) {
                        Some(a) => out_json(&txn, Out::YArray(a), self.ctx.config.limits.max_depth),
                        None => serde_json::Value::Null,
                    },
                },
                _ => match txn.get_map(name.as_str()) {
                    Some(m) => out_json(&txn, Out::YMap(m), self.ctx.config.limits.max_depth),
                    None => serde_json::Value::Null,
                },
            };
            out.insert(name, value);
        }
        serde_json::Value::Object(out)
    }
}

/// A shared value as JSON, without recursion: an explicit stack, and `null` below `max_depth`.
fn out_json<T: ReadTxn>(txn: &T, root: Out, max_depth: u16) -> serde_json::Value {
    // Work items: a value to convert (with its depth), or the end of a map or list whose
    // converted children are the last `n` results.
    enum Work {
        Value(Out, usize),
        EndMap(usize),
        EndList(usize),
    }
    let mut results: Vec<serde_json::Value> = Vec::new();
    let mut work = vec![Work::Value(root, 0)];
    let mut pending_keys: Vec<Vec<String>> = Vec::new();
    while let Some(w) = work.pop() {
        match w {
            Work::Value(v, depth) => match v {
                Out::Any(a) => results.push(any_json(&a)),
                Out::YText(t) => results.push(serde_json::Value::String(t.get_string(txn))),
                Out::YMap(m) if depth < max_depth as usize => {
                    let entries: Vec<(String, Out)> =
                        m.iter(txn).map(|(k, v)| (k.to_owned(), v)).collect();
                    pending_keys.push(entries.iter().map(|(k, _)| k.clone()).collect());
                    work.push(Work::EndMap(entries.len()));
                    for (_, v) in entries.into_iter().rev() {
                        work.push(Work::Value(v, depth + 1));
                    }
                }
                Out::YArray(a) if depth < max_depth as usize => {
                    let items: Vec<Out> = a.iter(txn).collect();
                    work.push(Work::EndList(items.len()));
                    for v in items.into_iter().rev() {
                        work.push(Work::Value(v, depth + 1));
                    }
                }
                _ => results.push(serde_json::Value::Null),
            },
            Work::EndMap(n) => {
                let values = results.split_off(results.len() - n);
                let keys = pending_keys.pop().unwrap_or_default();
                results.push(serde_json::Value::Object(
                    keys.into_iter().zip(values).collect(),
                ));
            }
            Work::EndList(n) => {
                let values = results.split_off(results.len() - n);
                results.push(serde_json::Value::Array(values));
            }
        }
    }
    results.pop().unwrap_or(serde_json::Value::Null)
}

/// Plain values are at most `structs::MAX_VALUE_DEPTH` deep (the judge refuses deeper ones).
fn any_json(a: &Any) -> serde_json::Value {
    serde_json::to_value(a).unwrap_or(serde_json::Value::Null)
}
