//! Storage: one small async trait over bytes, two implementations (redb embedded, Redis), and
//! the records they keep. The document layer decides *when* to write; a store only writes.
//!
//! Every document is an append-only log of Yjs updates plus a compacted snapshot. Loading is
//! snapshot + log. Compaction replaces the snapshot and drops the log entries it covers in one
//! atomic step, so a crash at any instant leaves either the old snapshot and the full log, or the
//! new snapshot and the rest of the log. Replaying an update already in a snapshot is harmless:
//! Yjs updates are idempotent.

mod redb_store;
mod redis_store;
mod watched;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tafel_protocol::{BoardId, DocKey};

pub use redb_store::RedbStore;
pub use redis_store::RedisStore;
pub use watched::{HookChange, HookReport, HookSettings, StoreHooks, Watched, PROBE_EVERY};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or refused the write (Redis down, disk full, ...).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with something we cannot read.
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    #[error("bad store URL: {0}")]
    BadUrl(String),
}

/// A document as stored: the latest snapshot (if any) and the updates appended after it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoredDoc {
    pub snapshot: Option<Vec<u8>>,
    pub log: Vec<Vec<u8>>,
}

/// A position in a document's shared log: a Redis stream id (`ms-seq`). `LogId::ZERO` is the
/// position before the first entry; a store without a shared log (redb) keeps it there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId(pub u64, pub u64);

impl LogId {
    pub const ZERO: LogId = LogId(0, 0);

    /// Reads a stream id `ms-seq`.
    pub fn parse(s: &str) -> Option<LogId> {
        let (ms, seq) = s.split_once('-')?;
        Some(LogId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl std::fmt::Display for LogId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// A document as stored, with the position of the log's tip it was read at.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadedDoc {
    pub doc: StoredDoc,
    /// The id of the last entry read (the snapshot's id when the log after it is empty).
    pub tip: LogId,
    /// The id of each entry of `doc.log` (empty for a store without a shared log).
    pub ids: Vec<LogId>,
}

/// What a conditional append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Appended; the log's tip is now this id.
    At(LogId),
    /// The log moved past the position the updates were judged at: nothing was appended.
    Moved,
}

/// What a follower read: log entries and presence messages, each after the given positions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Followed {
    pub log: Vec<(LogId, Vec<u8>)>,
    /// `(id, node, message)`: a node's presence on the document.
    pub presence: Vec<(LogId, String, Vec<u8>)>,
}

/// A dedicated reader of one document's log and presence (one blocking read at a time).
#[async_trait]
pub trait Follower: Send + 'static {
    /// Waits (up to about a second) for log entries after `log` and for presence messages
    /// newer than the last it read (the first call starts from the presence tip).
    async fn next(&mut self, log: LogId) -> Result<Followed, StoreError>;
}

/// One participant's ballot in one round as the ballot store holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredBallot {
    /// The round's status in the ballot store (`open`, `closed`, `revealed`); `None` when the
    /// store has no record of the round yet (see `put_round`).
    pub status: Option<String>,
    /// Item (`doc/id`) → dots, only items with a dot.
    pub dots: std::collections::BTreeMap<String, u32>,
    /// The participant's budget counter: dots used in the round.
    pub used: u32,
}

/// One stored dot count: (participant tag, item `doc/id`, dots).
pub type BallotEntry = (String, String, u32);

/// What Tafel knows of a board besides its documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardMeta {
    pub id: BoardId,
    pub title: String,
    pub template: String,
    /// Seconds since the epoch.
    pub created_at: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short description for logs (never contains a password).
    fn describe(&self) -> String;
    /// Answers when the store can serve requests.
    async fn ping(&self) -> Result<(), StoreError>;
    async fn load(&self, doc: &DocKey) -> Result<StoredDoc, StoreError>;
    /// Appends updates to the document's log, all or none. Returns once they are durable as far
    /// as the store promises (redb: fsynced; Redis: acknowledged, see the README).
    async fn append(&self, doc: &DocKey, updates: &[Bytes]) -> Result<(), StoreError>;
    /// Atomically sets the snapshot and drops the first `covered` log entries.
    async fn compact(
        &self,
        doc: &DocKey,
        snapshot: Vec<u8>,
        covered: u64,
    ) -> Result<(), StoreError>;
    // With a shared store (`shared()`, below) the document host follows the log, appends
    // conditionally and publishes presence. redb (one node) never needs the methods below,
    // whose defaults fall back on `load`/`append`/`compact`.
    /// Loads the document and the id of the log's tip it read up to.
    async fn load_at(&self, doc: &DocKey) -> Result<LoadedDoc, StoreError> {
        Ok(LoadedDoc {
            doc: self.load(doc).await?,
            tip: LogId::ZERO,
            ids: Vec::new(),
        })
    }
    /// Appends the updates only when the log's tip is still `at` (what they were judged at),
    /// all or none, in one atomic step.
    async fn append_at(
        &self,
        doc: &DocKey,
        at: LogId,
        updates: &[Bytes],
    ) -> Result<Appended, StoreError> {
        self.append(doc, updates).await?;
        Ok(Appended::At(at))
    }
    /// The log entries after `after`, in order (no waiting).
    async fn read_after(
        &self,
        _doc: &DocKey,
        _after: LogId,
    ) -> Result<Vec<(LogId, Vec<u8>)>, StoreError> {
        Ok(Vec::new())
    }
    /// Sets the snapshot taken at log id `at` and drops the entries before it, unless a newer
    /// snapshot is stored already. `covered` is the number of entries it covers (redb).
    async fn compact_at(
        &self,
        doc: &DocKey,
        snapshot: Vec<u8>,
        _at: LogId,
        covered: u64,
    ) -> Result<(), StoreError> {
        self.compact(doc, snapshot, covered).await
    }
    /// A dedicated reader for the document's log and presence (None: nothing to follow).
    async fn follower(&self, _doc: &DocKey) -> Result<Option<Box<dyn Follower>>, StoreError> {
        Ok(None)
    }
    /// Tells the other nodes this node's presence on the document.
    async fn publish_presence(
        &self,
        _doc: &DocKey,
        _node: &str,
        _message: &[u8],
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn put_board(&self, board: &BoardMeta) -> Result<(), StoreError>;
    async fn get_board(&self, id: &BoardId) -> Result<Option<BoardMeta>, StoreError>;
    async fn list_boards(&self) -> Result<Vec<BoardMeta>, StoreError>;
    /// Replaces the board's server-side session state (an opaque JSON document).
    async fn put_board_state(&self, id: &BoardId, state: Vec<u8>) -> Result<(), StoreError>;
    async fn get_board_state(&self, id: &BoardId) -> Result<Option<Vec<u8>>, StoreError>;
    /// Keeps a snapshot of the board (history): `meta` is what the list shows (small JSON),
    /// `data` the encoded states. Replaces a snapshot with the same id.
    async fn put_snapshot(
        &self,
        board: &BoardId,
        id: &str,
        meta: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<(), StoreError>;
    /// The `meta` of every snapshot of the board, in id order.
    async fn list_snapshots(&self, board: &BoardId) -> Result<Vec<Vec<u8>>, StoreError>;
    /// One snapshot's `data`.
    async fn get_snapshot(&self, board: &BoardId, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Erases one snapshot; answers whether it existed.
    async fn delete_snapshot(&self, board: &BoardId, id: &str) -> Result<bool, StoreError>;
    /// Erases the board, its session state, its rounds and ballots, its snapshots and every
    /// document of it. Returns whether it existed.
    async fn delete_board(&self, id: &BoardId) -> Result<bool, StoreError>;
    /// Returns the kept HS256 secret, storing `candidate` first when none is kept yet.
    async fn get_or_init_secret(&self, candidate: &str) -> Result<String, StoreError>;

    // Ballots: one record per round (its status), per participant and item (dots) and per
    // participant (the budget counter), apart from the board state, so a dot is one atomic step
    // and not a rewrite of the state. The rules are the domain's (`commands::decide_ballot`);
    // the store applies a decided change only while what it was decided on still holds.
    /// Creates the round's record with `status` and `ballots` (moved from an older state), only
    /// when the store has none yet. Answers whether it created it.
    async fn put_round(
        &self,
        board: &BoardId,
        round: &str,
        status: &str,
        ballots: &[BallotEntry],
    ) -> Result<bool, StoreError>;
    /// Sets the round's status (creating the record): `closed`/`revealed` stop every vote
    /// from the moment it is stored.
    async fn set_round_status(
        &self,
        board: &BoardId,
        round: &str,
        status: &str,
    ) -> Result<(), StoreError>;
    /// The round's status and the participant's dots on `items` and budget counter.
    async fn get_ballot(
        &self,
        board: &BoardId,
        round: &str,
        tag: &str,
        items: &[String],
    ) -> Result<StoredBallot, StoreError>;
    /// Adds `delta` dots to the participant's dots on `item` and to their budget counter, only
    /// if the round is still `open`, the counter still `used` and the dots on the item still
    /// `on_item` (what the change was decided on), as one atomic step. Answers false when
    /// something moved: nothing changed; read again and decide again.
    #[allow(clippy::too_many_arguments)]
    async fn change_ballot_if(
        &self,
        board: &BoardId,
        round: &str,
        tag: &str,
        item: &str,
        delta: i64,
        used: u32,
        on_item: u32,
    ) -> Result<bool, StoreError>;
    /// Every dot count of the round.
    async fn round_ballots(
        &self,
        board: &BoardId,
        round: &str,
    ) -> Result<Vec<BallotEntry>, StoreError>;
    /// For each round: how many participants have a dot in it, `None` when the store has no
    /// record of the round.
    async fn round_voters(
        &self,
        board: &BoardId,
        rounds: &[String],
    ) -> Result<Vec<Option<u64>>, StoreError>;
    /// Erases the participant's dots and budget counters in the given rounds.
    async fn erase_ballots(
        &self,
        board: &BoardId,
        tag: &str,
        rounds: &[String],
    ) -> Result<(), StoreError>;

    /// Whether other nodes share this store (Redis): each document's log is then one ordered
    /// log every node follows (`load_at`, `append_at`, `follower`), and the board state is kept
    /// under a version that nodes change by compare-and-set and hear of through
    /// `board_state_changes`. The embedded store has one node, and the defaults.
    fn shared(&self) -> bool {
        false
    }
    /// The board state with its version (how many times it was stored; 0 before the first).
    async fn get_board_state_versioned(
        &self,
        id: &BoardId,
    ) -> Result<(u64, Option<Vec<u8>>), StoreError> {
        Ok((0, self.get_board_state(id).await?))
    }
    /// Stores `state` only if the stored version is still `expected`, as one atomic step.
    /// Answers the new version, or `None` when another node stored a newer state first (read
    /// it, decide again, retry). One node (the default) is never overtaken.
    async fn put_board_state_if(
        &self,
        id: &BoardId,
        expected: u64,
        state: Vec<u8>,
    ) -> Result<Option<u64>, StoreError> {
        self.put_board_state(id, state).await?;
        Ok(Some(expected + 1))
    }
    /// The boards whose state was stored by any node, as they are stored. `None` when the
    /// store is not shared. The feed reconnects by itself; after a gap it sends
    /// `StateChange::Any`, since changes may have been missed.
    async fn board_state_changes(&self) -> Option<tokio::sync::mpsc::Receiver<StateChange>> {
        None
    }
    /// Takes or renews the lease `name` for `holder` for `ttl_ms`: true when `holder` has it
    /// now. A lease that is not renewed expires by itself, so a node that dies holding one
    /// stops blocking the others after `ttl_ms`. One node (the default) always has it.
    async fn lease(&self, _name: &str, _holder: &str, _ttl_ms: u64) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// This process's name as a lease holder: random per start, so a restarted node does not
/// mistake a lease of its previous life for its own.
pub fn node_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| format!("node-{:016x}", rand::random::<u64>()))
}

/// What a shared store reports when a board's state changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChange {
    /// This board's state was stored (by any node).
    Stored(BoardId),
    /// The feed was interrupted: any board may have changed.
    Any,
}

/// Opens the store named by a contract URL: `file:PATH`, `redis://...`, `rediss://...` or
/// `redis+cluster://HOST:PORT,HOST:PORT,...` (a Redis Cluster, any of its nodes).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with_hooks(url, StoreHooks::off()).await
}

/// [`open`] with the `--test-hooks` store hooks (see [`StoreHooks`]).
pub async fn open_with_hooks(
    url: &str,
    hooks: Arc<StoreHooks>,
) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("file:") {
        if path.is_empty() {
            return Err(StoreError::BadUrl(
                "file: needs a folder, e.g. file:./tafel-data".into(),
            ));
        }
        Ok(Arc::new(RedbStore::open_with(path.as_ref(), hooks).await?))
    } else if url.starts_with("redis://")
        || url.starts_with("rediss://")
        || url.starts_with("redis+cluster://")
    {
        Ok(Arc::new(RedisStore::open(url).await?.with_hooks(hooks)))
    } else {
        Err(StoreError::BadUrl(format!(
            "{url:?}: use file:PATH, redis://HOST:PORT[/DB] or rediss://HOST:PORT[/DB]"
        )))
    }
}

fn board_from_json(bytes: &[u8]) -> Result<BoardMeta, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("board record: {e}")))
}

fn board_to_json(board: &BoardMeta) -> Vec<u8> {
    // Serializing a struct of strings and numbers cannot fail.
    serde_json::to_vec(board).unwrap_or_default()
}
