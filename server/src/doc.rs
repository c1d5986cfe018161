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
use tafel_protocol::inspect::{InspectError, Shadow};
use tafel_protocol::policy::{judge, schema_roots, Verdict, Writer};
use tafel_protocol::wire::encode_permission_denied;
use tafel_protocol::wire::{
    decode_update, encode_awareness, encode_join_frames, encode_sync_step2, encode_update,
};
use tafel_protocol::{CloseCode, DocKey, DocName, Role};
use tokio::sync::{mpsc, oneshot, watch};
use yrs::sync::{Awareness, AwarenessUpdate};
use yrs::types::AsPrelim;
use yrs::types::ToJson;
use yrs::{
    Any, ClientID, Doc, GetString, In, Map, Out, ReadTxn, StateVector, Transact, TransactionMut,
    WriteTxn,
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
    /// An update from a read-only connection: ignored if it adds nothing, else refused.
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
    update: Bytes,
    frame: Bytes,
}

/// Why an update was not applied.
enum Refusal {
    /// Against the rules: the sender gets `permission-denied` and stays connected.
    Denied(String),
    /// Not a valid update: the sender is disconnected (1007).
    Broken(String),
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
    /// Which connection announced which awareness client id; a connection may not change or
    /// remove another connection's presence.
    awareness_owner: HashMap<ClientID, ConnId>,
    pending: Vec<Pending>,
    /// Sync step 2 for an empty state vector, encoded once per change and shared by every
    /// joining client (a room joining at once costs one encode, not one per client).
    full_state_frame: Option<Bytes>,
    log_entries: u64,
    log_bytes: u64,
    /// The copy updates are tried on before they touch the real document (see `inspect`).
    shadow: Shadow,
    /// Server edits waiting for their flush, to be answered once stored.
    replies: Vec<(oneshot::Sender<serde_json::Value>, serde_json::Value)>,
}

/// Runs a document until it is evicted, fails or is shut down.
pub async fn run(ctx: DocContext, mut rx: mpsc::Receiver<DocCmd>) {
    let loaded = load(&*ctx.store, &ctx.key).await;
    let (doc, log_entries, log_bytes) = match loaded {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(doc = %ctx.key, error = %e, "cannot load document");
            ctx.metrics.store_errors.inc();
            ctx.registry.forget(&ctx.key, ctx.generation);
            drain(&mut rx, || JoinError::Store(e.clone())).await;
            return;
        }
    };
    let shadow = match new_shadow(&doc, ctx.key.doc) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(doc = %ctx.key, error = %e, "cannot build the document's shadow");
            ctx.registry.forget(&ctx.key, ctx.generation);
            drain(&mut rx, || JoinError::Gone).await;
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
        shadow,
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

fn new_shadow(doc: &Doc, name: DocName) -> Result<Shadow, InspectError> {
    let (items, others) = schema_roots(name);
    let state = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    Shadow::new(&state, items, others)
}

async fn load(store: &dyn Store, key: &DocKey) -> Result<(Doc, u64, u64), StoreError> {
    let stored = store.load(key).await?;
    let doc = Doc::new();
    let mut bytes = 0u64;
    {
        let mut txn = doc.transact_mut();
        let parts = stored.snapshot.iter().chain(stored.log.iter());
        for (i, raw) in parts.enumerate() {
            bytes += raw.len() as u64;
            let applied = decode_update(raw)
                .map_err(|e| e.to_string())
                .and_then(|u| txn.apply_update(u).map_err(|e| e.to_string()));
            if let Err(e) = applied {
                // Keep serving what can be read; say loudly what could not.
                tracing::error!(doc = %key, part = i, error = %e, "skipping an unreadable stored update");
            }
        }
    }
    Ok((doc, stored.log.len() as u64, bytes))
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
            DocCmd::Apply { conn, update } => return Ok(self.apply(conn, update)),
            DocCmd::SyncStep1 { conn, sv } => {
                self.flush().await?;
                let frame = self.sync_step2(&sv);
                self.send_to(conn, frame);
            }
            DocCmd::Awareness { conn, update } => self.awareness_update(conn, update),
            DocCmd::ReadOnly { conn, update } => self.read_only(conn, &update),
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
        }
        Ok(Flow::Continue)
    }

    /// Validates an update on the shadow, judges it against the board's rules, and applies it;
    /// it is stored and forwarded at the next flush. A refused update touches nothing.
    fn apply(&mut self, conn: ConnId, raw: Vec<u8>) -> Flow {
        let malformed = |e: String| {
            (
                CloseCode::MalformedMessage,
                format!("malformed update: {e}"),
            )
        };
        let (update, for_shadow) = match (decode_update(&raw), decode_update(&raw)) {
            (Ok(u), Ok(v)) => (u, v),
            (Err(e), _) | (_, Err(e)) => {
                let (code, reason) = malformed(e.to_string());
                self.kick(conn, code, reason);
                return Flow::Continue;
            }
        };
        if update.is_empty() {
            return Flow::Continue;
        }
        let Some(who) = self.members.get(&conn).map(|m| m.handle.who.clone()) else {
            return Flow::Continue;
        };
        let verdict = match self.judge(&who, for_shadow) {
            Ok(v) => v,
            Err(Refusal::Denied(reason)) => {
                self.deny(conn, &who, &reason);
                return Flow::Continue;
            }
            Err(Refusal::Broken(reason)) => {
                self.rebuild_shadow();
                self.kick(conn, CloseCode::MalformedMessage, reason);
                return Flow::Continue;
            }
        };
        let doc = self.awareness.doc();
        let applied =
            std::panic::catch_unwind(AssertUnwindSafe(|| doc.transact_mut().apply_update(update)));
        match applied {
            Ok(Ok(())) => {
                self.ctx.metrics.updates_in.inc();
                self.full_state_frame = None;
                let update = Bytes::from(raw);
                let frame = Bytes::from(encode_update(update.to_vec()));
                self.pending.push(Pending {
                    from: conn,
                    update,
                    frame,
                });
                if !verdict.new_items.is_empty() {
                    self.stamp(&verdict.new_items, &who);
                }
                Flow::Continue
            }
            Ok(Err(e)) => {
                self.rebuild_shadow();
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
                self.kick(
                    conn,
                    CloseCode::MalformedMessage,
                    "update cannot be applied".into(),
                );
                self.pending.clear();
                self.close_all(CloseCode::InternalError, "document reloaded; reconnect");
                Flow::Stop
            }
        }
    }

    /// Tries the update on the shadow and judges what it changes.
    fn judge(&mut self, who: &Participant, update: yrs::Update) -> Result<Verdict, Refusal> {
        let tried = std::panic::catch_unwind(AssertUnwindSafe(|| self.shadow.apply(update)));
        let changes = match tried {
            Ok(Ok(changes)) => changes,
            Ok(Err(InspectError::MissingDependencies)) => {
                self.rebuild_shadow();
                return Err(Refusal::Denied(
                    InspectError::MissingDependencies.to_string(),
                ));
            }
            Ok(Err(e)) => return Err(Refusal::Broken(e.to_string())),
            Err(_) => return Err(Refusal::Broken("update cannot be applied".into())),
        };
        let (session, _) = self.ctx.board.policy();
        let board = self.ctx.board.clone();
        let sub = who.sub.clone();
        let owns = move |item: &str, tag: &str| board.owner_tag(&sub, item) == tag;
        let writer = Writer {
            role: who.role,
            owns: &owns,
        };
        let verdict = judge(
            self.ctx.key.doc,
            &changes,
            self.awareness.doc(),
            self.shadow.doc(),
            &self.ctx.board.template,
            &session,
            &writer,
        );
        verdict.map_err(|reason| {
            self.rebuild_shadow();
            Refusal::Denied(reason)
        })
    }

    /// A read-only connection's update (its sync step 2, a replayed offline copy) is fine when
    /// every struct and deletion in it is already in the document; otherwise it is refused.
    fn read_only(&mut self, conn: ConnId, raw: &[u8]) {
        let update = match decode_update(raw) {
            Ok(u) => u,
            Err(e) => {
                self.kick(
                    conn,
                    CloseCode::MalformedMessage,
                    format!("malformed update: {e}"),
                );
                return;
            }
        };
        let adds_nothing = {
            let txn = self.awareness.doc().transact();
            let known_deletes = txn.snapshot().delete_set;
            !update.extends(&txn.state_vector())
                && update.delete_set().diff(&known_deletes).is_empty()
        };
        if !adds_nothing {
            if let Some(who) = self.members.get(&conn).map(|m| m.handle.who.clone()) {
                self.deny(
                    conn,
                    &who,
                    "read-only: this role may not change this document",
                );
            }
        }
    }

    /// Refuses an update: nothing applied, stored or forwarded; the sender is told why.
    fn deny(&mut self, conn: ConnId, who: &Participant, reason: &str) {
        self.ctx.metrics.refused_updates.inc();
        tracing::info!(doc = %self.ctx.key, conn, sub = %who.sub, role = %who.role, %reason, "update refused");
        self.send_to(conn, Bytes::from(encode_permission_denied(reason)));
    }

    fn rebuild_shadow(&mut self) {
        match new_shadow(self.awareness.doc(), self.ctx.key.doc) {
            Ok(s) => self.shadow = s,
            Err(e) => tracing::error!(doc = %self.ctx.key, error = %e, "cannot rebuild the shadow"),
        }
    }

    /// Writes owner tag, author and creation time on items a participant just created.
    fn stamp(&mut self, items: &[String], who: &Arc<Participant>) {
        let (items_root, _) = schema_roots(self.ctx.key.doc);
        if !matches!(self.ctx.key.doc, DocName::Canvas | DocName::Gap) {
            return;
        }
        let board = self.ctx.board.clone();
        let (_, mode) = board.policy();
        let author = Participant::author_text(who.role, &who.display, mode);
        let now_ms = now_millis();
        let ids = items.to_vec();
        let sub = who.sub.clone();
        let tags: Vec<(String, String)> = ids
            .iter()
            .map(|id| (id.clone(), board.owner_tag(&sub, id)))
            .collect();
        self.server_edit(Box::new(move |txn| {
            let map = txn.get_or_insert_map(items_root);
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
            board.record_author(id, who);
        }
    }

    /// Runs a server edit in one transaction of the real document, mirrors it to the shadow and
    /// queues it (stored and forwarded to everyone at the next flush).
    fn server_edit(&mut self, edit: ServerEdit) -> serde_json::Value {
        let (value, update) = {
            let mut txn = self.awareness.doc().transact_mut();
            let value = edit(&mut txn);
            (value, txn.encode_update_v1())
        };
        match decode_update(&update) {
            Ok(u) if !u.is_empty() => {
                if let Err(e) = self.shadow.apply(u) {
                    tracing::warn!(doc = %self.ctx.key, error = %e, "shadow out of step after a server edit; rebuilding");
                    self.rebuild_shadow();
                }
                self.full_state_frame = None;
                let frame = Bytes::from(encode_update(update.clone()));
                self.pending.push(Pending {
                    from: SERVER,
                    update: Bytes::from(update),
                    frame,
                });
            }
            _ => {}
        }
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
        let updates: Vec<Bytes> = self.pending.iter().map(|p| p.update.clone()).collect();
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
        self.log_entries += updates.len() as u64;
        self.log_bytes += updates.iter().map(|u| u.len() as u64).sum::<u64>();
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

    /// Replaces the stored snapshot with the current state and drops the log entries it covers.
    /// A failure is logged and retried later; the log still holds everything.
    async fn compact(&mut self) {
        if self.log_entries == 0 {
            return;
        }
        let snapshot = self
            .awareness
            .doc()
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
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

    fn awareness_update(&mut self, conn: ConnId, mut update: AwarenessUpdate) {
        if !self.members.contains_key(&conn) {
            return;
        }
        update.clients.retain(|id, _| {
            self.awareness_owner
                .get(id)
                .is_none_or(|owner| *owner == conn)
        });
        if update.clients.is_empty() {
            return;
        }
        if let Some(m) = self.members.get(&conn) {
            if m.handle.who.role == Role::Employee {
                for entry in update.clients.values_mut() {
                    entry.json =
                        scrub_employee_awareness(&entry.json, &m.handle.who.display).into();
                }
            }
        }
        if let Some(m) = self.members.get_mut(&conn) {
            for id in update.clients.keys() {
                self.awareness_owner.insert(*id, conn);
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

    /// Removes a connection and tells the others that its presence is gone.
    fn leave(&mut self, conn: ConnId) {
        let Some(member) = self.members.remove(&conn) else {
            return;
        };
        let ids: Vec<ClientID> = member.awareness_ids.into_iter().collect();
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

    /// The document as JSON, root by root. Root types arrive untyped from clients, so their
    /// kind is inferred from their content (as yrs does) on a scratch copy of the document.
    fn export(&self) -> serde_json::Value {
        let state = self
            .awareness
            .doc()
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let scratch = Doc::new();
        if let Ok(u) = decode_update(&state) {
            let _ = scratch.transact_mut().apply_update(u);
        }
        let kinds: Vec<(String, In)> = {
            let txn = scratch.transact();
            txn.root_refs()
                .map(|(name, value)| (name.to_owned(), value.as_prelim(&txn)))
                .collect()
        };
        let mut out = serde_json::Map::new();
        for (name, kind) in kinds {
            let any = match kind {
                In::Text(_) => Any::from(
                    scratch
                        .get_or_insert_text(name.as_str())
                        .get_string(&scratch.transact()),
                ),
                In::Array(_) => scratch
                    .get_or_insert_array(name.as_str())
                    .to_json(&scratch.transact()),
                In::XmlText(_) | In::XmlElement(_) | In::XmlFragment(_) => Any::from(
                    scratch
                        .get_or_insert_xml_fragment(name.as_str())
                        .get_string(&scratch.transact()),
                ),
                _ => scratch
                    .get_or_insert_map(name.as_str())
                    .to_json(&scratch.transact()),
            };
            out.insert(
                name,
                serde_json::to_value(any).unwrap_or(serde_json::Value::Null),
            );
        }
        serde_json::Value::Object(out)
    }
}
