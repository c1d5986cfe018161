//! The document registry: at most one live document per `board/doc` on this node. A document is
//! spawned through the map's entry API under one lock, so concurrent first connections share one
//! load; joins queue in the actor's mailbox until the load is done, so nobody sees an empty
//! document while it loads. An actor removes itself (by generation) when it unloads.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tafel_protocol::index::Owner;
use tafel_protocol::{BoardId, DocKey, DocName};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::board::Board;
use crate::config::Config;
use crate::doc::{self, ConnHandle, DocCmd, DocContext, JoinError, ServerEdit};
use crate::domain::state::BoardState;
use crate::metrics::Metrics;
use crate::store::{StateChange, Store, StoreError};
use crate::templates::Templates;

/// Commands that may wait for one document before senders wait in turn.
const DOC_MAILBOX: usize = 4096;

#[derive(Clone)]
pub struct DocHandle {
    pub tx: mpsc::Sender<DocCmd>,
    generation: u64,
}

#[derive(Default)]
struct Docs {
    live: HashMap<DocKey, DocHandle>,
    tasks: Vec<JoinHandle<()>>,
    /// Boards being deleted: joins are refused until the store has erased them.
    deleting: HashSet<BoardId>,
    /// Set when the server stops: no document is loaded any more.
    stopping: bool,
}

pub struct Registry {
    docs: Mutex<Docs>,
    /// Boards whose server-side state is in memory (loaded once, dropped on delete).
    boards: Mutex<HashMap<BoardId, Arc<Board>>>,
    /// One board load at a time, so two first requests never make two copies of its state.
    board_load: tokio::sync::Mutex<()>,
    templates: Arc<Templates>,
    /// Key for items' owner tags (derived from the JWT secret).
    owner_key: Vec<u8>,
    next_generation: AtomicU64,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    config: Arc<Config>,
}

pub enum JoinFailure {
    Store(StoreError),
    /// The board is being deleted or the server is stopping.
    Closed,
}

impl Registry {
    pub fn new(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        config: Arc<Config>,
        templates: Arc<Templates>,
        owner_key: Vec<u8>,
    ) -> Arc<Self> {
        Arc::new(Registry {
            docs: Mutex::new(Docs::default()),
            boards: Mutex::new(HashMap::new()),
            board_load: tokio::sync::Mutex::new(()),
            templates,
            owner_key,
            next_generation: AtomicU64::new(1),
            store,
            metrics,
            config,
        })
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// The board with its server-side state, loading it from the store on first use.
    pub async fn board(&self, id: &BoardId) -> Result<Option<Arc<Board>>, StoreError> {
        if let Some(b) = self.cached_board(id) {
            return Ok(Some(b));
        }
        let _one_at_a_time = self.board_load.lock().await;
        if let Some(b) = self.cached_board(id) {
            return Ok(Some(b));
        }
        let Some(meta) = self.store.get_board(id).await? else {
            return Ok(None);
        };
        let (version, state) = self.store.get_board_state_versioned(id).await?;
        let state = match state {
            Some(json) => serde_json::from_slice::<BoardState>(&json)
                .map_err(|e| StoreError::Corrupt(format!("board state of {id}: {e}")))?,
            None => BoardState::default(),
        };
        let template = self.templates.get(&meta.template).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "board {id} uses template {:?}, which is not loaded",
                meta.template
            ))
        })?;
        let board = Arc::new(Board::new(
            meta,
            template,
            state,
            version,
            self.owner_key.clone(),
            self.store.clone(),
        ));
        self.boards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), board.clone());
        Ok(Some(board))
    }

    fn cached_board(&self, id: &BoardId) -> Option<Arc<Board>> {
        self.boards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn lock(&self) -> MutexGuard<'_, Docs> {
        // A panic while holding this lock cannot leave the map half-changed; keep going.
        self.docs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live document for `key`, spawning (and so loading) it when there is none.
    fn get_or_spawn(self: &Arc<Self>, key: &DocKey, board: &Arc<Board>) -> Option<DocHandle> {
        let mut docs = self.lock();
        if docs.stopping || docs.deleting.contains(&key.board) {
            return None;
        }
        if let Some(h) = docs.live.get(key) {
            return Some(h.clone());
        }
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(DOC_MAILBOX);
        let handle = DocHandle { tx, generation };
        docs.live.insert(key.clone(), handle.clone());
        let ctx = DocContext {
            key: key.clone(),
            generation,
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            config: self.config.clone(),
            forget: {
                let registry = self.clone();
                Arc::new(move |key: &DocKey, generation: u64| registry.forget(key, generation))
            },
            board: board.clone(),
        };
        docs.tasks.retain(|t| !t.is_finished());
        docs.tasks.push(tokio::spawn(doc::run(ctx, rx)));
        Some(handle)
    }

    /// Joins `conn` to the document, loading it if needed. On success the document has queued
    /// its sync step 1 and awareness states on `conn`, and returns the handle to send it commands.
    pub async fn join(
        self: &Arc<Self>,
        key: &DocKey,
        board: &Arc<Board>,
        conn: ConnHandle,
    ) -> Result<DocHandle, JoinFailure> {
        if key.doc == DocName::Canvas {
            // The canvas judge checks a card's `gapRow` against the gap document's rows, which
            // its actor hands the board once loaded.
            let gap = DocKey {
                board: key.board.clone(),
                doc: DocName::Gap,
            };
            let _ = self.get_or_spawn(&gap, board);
        }
        loop {
            let handle = self.get_or_spawn(key, board).ok_or(JoinFailure::Closed)?;
            let (reply, answer) = oneshot::channel();
            let sent = handle
                .tx
                .send(DocCmd::Join {
                    conn: conn.clone(),
                    reply,
                })
                .await;
            if sent.is_err() {
                self.forget(key, handle.generation);
                continue;
            }
            match answer.await {
                Ok(Ok(())) => return Ok(handle),
                Ok(Err(JoinError::Store(e))) => return Err(JoinFailure::Store(e)),
                Ok(Err(JoinError::Deleted)) => return Err(JoinFailure::Closed),
                Ok(Err(JoinError::Gone)) | Err(_) => {
                    self.forget(key, handle.generation);
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    /// Removes the entry for `key` if it is still the given generation.
    pub fn forget(&self, key: &DocKey, generation: u64) {
        let mut docs = self.lock();
        if docs
            .live
            .get(key)
            .is_some_and(|h| h.generation == generation)
        {
            docs.live.remove(key);
        }
    }

    /// Test hook: makes the document's actor panic.
    pub async fn test_panic(self: &Arc<Self>, key: &DocKey, board: &Arc<Board>) -> bool {
        match self.get_or_spawn(key, board) {
            Some(h) => h.tx.send(DocCmd::TestPanic).await.is_ok(),
            None => false,
        }
    }

    /// Sends `Export` to the document, loading it when needed.
    pub async fn export(
        self: &Arc<Self>,
        key: &DocKey,
        board: &Arc<Board>,
    ) -> Option<serde_json::Value> {
        for _ in 0..3 {
            let handle = self.get_or_spawn(key, board)?;
            let (reply, answer) = oneshot::channel();
            if handle.tx.send(DocCmd::Export { reply }).await.is_ok() {
                if let Ok(v) = answer.await {
                    return Some(v);
                }
            }
            self.forget(key, handle.generation);
        }
        None
    }

    /// Runs a server edit on the document (loading it when needed); answers once it is stored.
    /// `None` when the document could not be reached or the store failed.
    pub async fn server_edit(
        self: &Arc<Self>,
        key: &DocKey,
        board: &Arc<Board>,
        edit: ServerEdit,
    ) -> Option<serde_json::Value> {
        let handle = self.get_or_spawn(key, board)?;
        let (reply, answer) = oneshot::channel();
        if handle
            .tx
            .send(DocCmd::ServerEdit { edit, reply })
            .await
            .is_err()
        {
            self.forget(key, handle.generation);
            return None;
        }
        answer.await.ok()
    }

    /// The live documents of one board (none is loaded for this).
    fn live_of(&self, board: &BoardId) -> Vec<DocHandle> {
        self.lock()
            .live
            .iter()
            .filter(|(k, _)| &k.board == board)
            .map(|(_, h)| h.clone())
            .collect()
    }

    /// Closes a removed participant's connections on every loaded document of the board with
    /// 4403. Documents that are not loaded have no connections; joins that are on their way
    /// in are refused by the document itself (it checks the board's removed list).
    pub async fn remove_participant(&self, board: &BoardId, owner: &Owner) {
        for h in self.live_of(board) {
            let _ =
                h.tx.send(DocCmd::RemoveParticipant {
                    owner: owner.clone(),
                })
                .await;
        }
    }

    /// Follows the other nodes' changes of board state on a shared store (returns at once on
    /// the embedded store): a loaded board reads its new state, so its policy (locks, the
    /// author setting) holds here too, and a participant removed on another node has their
    /// connections here closed with 4403.
    pub async fn follow_board_states(self: Arc<Self>) {
        let Some(mut changes) = self.store.board_state_changes().await else {
            return;
        };
        while let Some(change) = changes.recv().await {
            let boards: Vec<Arc<Board>> = match change {
                StateChange::Stored(id) => self.cached_board(&id).into_iter().collect(),
                StateChange::Any => self
                    .boards
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .cloned()
                    .collect(),
            };
            for board in boards {
                match board.refresh().await {
                    Ok(removed) => {
                        for sub in removed {
                            let owner = Owner::Participant(board.participant_tag(&sub).into());
                            self.remove_participant(board.id(), &owner).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(board = %board.id(), error = %e, "cannot read another node's board state change yet")
                    }
                }
            }
        }
    }

    /// The participant tags of every connection open on this node to the board's documents.
    pub async fn online(&self, board: &BoardId) -> HashSet<Owner> {
        let mut out = HashSet::new();
        for h in self.live_of(board) {
            let (reply, answer) = oneshot::channel();
            if h.tx.send(DocCmd::Online { reply }).await.is_ok() {
                if let Ok(owners) = answer.await {
                    out.extend(owners);
                }
            }
        }
        out
    }

    /// Starts deleting a board: new joins are refused and its live documents are discarded
    /// (closed, nothing more stored). Call `end_delete` once the store has erased it.
    pub async fn begin_delete(&self, board: &BoardId) {
        self.boards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(board);
        let handles: Vec<DocHandle> = {
            let mut docs = self.lock();
            docs.deleting.insert(board.clone());
            let keys: Vec<DocKey> = docs
                .live
                .keys()
                .filter(|k| &k.board == board)
                .cloned()
                .collect();
            keys.iter().filter_map(|k| docs.live.remove(k)).collect()
        };
        for h in &handles {
            let _ = h.tx.send(DocCmd::Discard).await;
        }
        for h in handles {
            h.tx.closed().await;
        }
    }

    pub fn end_delete(&self, board: &BoardId) {
        self.lock().deleting.remove(board);
    }

    /// Stops every document: connections are closed with 1001, everything is stored, and this
    /// returns when every document task has finished.
    pub async fn shutdown(&self) {
        let (handles, tasks) = {
            let mut docs = self.lock();
            docs.stopping = true;
            let handles: Vec<DocHandle> = docs.live.drain().map(|(_, h)| h).collect();
            (handles, std::mem::take(&mut docs.tasks))
        };
        for h in &handles {
            let _ = h.tx.send(DocCmd::Shutdown).await;
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}
