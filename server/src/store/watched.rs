//! The store as the server uses it: any [`Store`] behind a health flag, plus the `--test-hooks`
//! store hooks that make outages and slow writes deterministic in tests.
//!
//! Health: any call that fails with [`StoreError::Unavailable`] marks the store unhealthy; while
//! it is unhealthy a probe pings it every [`PROBE_EVERY`] and a successful ping marks it healthy
//! again (so does `/readyz` when its ping succeeds). While unhealthy, the WebSocket upgrade answers
//! 503 before upgrading and `/readyz` answers 503: a new connection is never upgraded onto a store
//! that just failed, even when its document is still in memory.
//!
//! Test hooks (only with `--test-hooks`; off and unreachable otherwise), set through
//! `POST /api/test-hooks/store` (see `http.rs`):
//! - `hold_writes`: `append` and `compact` wait until it is cleared (a store that hangs);
//! - `fail_writes`: `append`, `compact` and `ping` fail as if the store were gone;
//! - `pause_compaction`: a compaction stops in the middle — redb after the snapshot is written
//!   and the covered log entries are removed but before the transaction commits; Redis with the
//!   MULTI/EXEC pipeline built but not sent — until it is cleared (a test kills the process there);
//! - `hold_follow`: a document's follower (the task that reads the shared log after the tip)
//!   delivers nothing while it is set: what it read waits until it is cleared (a node behind the
//!   log);
//! - `force_moved`: a conditional append (`append_at`, shared log only) appends nothing and
//!   answers [`Appended::Moved`], every time (a log another node always appended to first).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tafel_protocol::{BoardId, DocKey};
use tokio::sync::watch;

use super::{
    Appended, BallotEntry, BoardMeta, Followed, Follower, LoadedDoc, LogId, StateChange, Store,
    StoreError, StoredBallot, StoredDoc,
};

/// How often an unhealthy store is probed.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);
/// How long a probe waits for the store.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the store hooks are set to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookSettings {
    #[serde(default)]
    pub hold_writes: bool,
    #[serde(default)]
    pub fail_writes: bool,
    #[serde(default)]
    pub pause_compaction: bool,
    #[serde(default)]
    pub hold_follow: bool,
    #[serde(default)]
    pub force_moved: bool,
}

/// A change to the hooks: fields left out keep their value.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct HookChange {
    pub hold_writes: Option<bool>,
    pub fail_writes: Option<bool>,
    pub pause_compaction: Option<bool>,
    pub hold_follow: Option<bool>,
    pub force_moved: Option<bool>,
}

/// What the hooks are doing now (the answer of the test-hooks endpoint).
#[derive(Debug, Clone, Serialize)]
pub struct HookReport {
    #[serde(flatten)]
    pub settings: HookSettings,
    /// Writes waiting on `hold_writes` right now.
    pub held: usize,
    /// Compactions stopped in the middle right now.
    pub paused: usize,
    /// Followers waiting on `hold_follow` right now.
    pub follows_held: usize,
    /// Whether the store counts as healthy.
    pub healthy: bool,
}

/// The store hooks. Inert unless built with `enabled` (`--test-hooks`).
pub struct StoreHooks {
    enabled: bool,
    settings: watch::Sender<HookSettings>,
    held: AtomicUsize,
    paused: AtomicUsize,
    follows_held: AtomicUsize,
}

impl StoreHooks {
    pub fn new(enabled: bool) -> Arc<StoreHooks> {
        Arc::new(StoreHooks {
            enabled,
            settings: watch::Sender::new(HookSettings::default()),
            held: AtomicUsize::new(0),
            paused: AtomicUsize::new(0),
            follows_held: AtomicUsize::new(0),
        })
    }

    /// Hooks that never do anything.
    pub fn off() -> Arc<StoreHooks> {
        StoreHooks::new(false)
    }

    /// Applies a change (ignored when the hooks are off) and returns the settings now in force.
    pub fn change(&self, c: HookChange) -> HookSettings {
        if self.enabled {
            self.settings.send_modify(|s| {
                s.hold_writes = c.hold_writes.unwrap_or(s.hold_writes);
                s.fail_writes = c.fail_writes.unwrap_or(s.fail_writes);
                s.pause_compaction = c.pause_compaction.unwrap_or(s.pause_compaction);
                s.hold_follow = c.hold_follow.unwrap_or(s.hold_follow);
                s.force_moved = c.force_moved.unwrap_or(s.force_moved);
            });
        }
        *self.settings.borrow()
    }

    fn settings(&self) -> HookSettings {
        if self.enabled {
            *self.settings.borrow()
        } else {
            HookSettings::default()
        }
    }

    /// A write's way through the hooks: waits while `hold_writes`, then fails if `fail_writes`.
    async fn before_write(&self) -> Result<(), StoreError> {
        if !self.enabled {
            return Ok(());
        }
        if self.settings().hold_writes {
            self.held.fetch_add(1, Ordering::SeqCst);
            let mut rx = self.settings.subscribe();
            let _ = rx.wait_for(|s| !s.hold_writes).await;
            self.held.fetch_sub(1, Ordering::SeqCst);
        }
        self.fail_check()
    }

    fn fail_check(&self) -> Result<(), StoreError> {
        if self.settings().fail_writes {
            Err(StoreError::Unavailable("test hook: fail_writes".into()))
        } else {
            Ok(())
        }
    }

    /// A follower's way through the hooks: waits while `hold_follow`.
    async fn follow_gate(&self) {
        if self.settings().hold_follow {
            self.follows_held.fetch_add(1, Ordering::SeqCst);
            let mut rx = self.settings.subscribe();
            let _ = rx.wait_for(|s| !s.hold_follow).await;
            self.follows_held.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Called by a store in the middle of a compaction (async stores).
    pub async fn compaction_midway(&self) {
        if self.settings().pause_compaction {
            self.paused.fetch_add(1, Ordering::SeqCst);
            let mut rx = self.settings.subscribe();
            let _ = rx.wait_for(|s| !s.pause_compaction).await;
            self.paused.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The same for a store whose writes run on a thread of their own (redb's writer).
    pub fn compaction_midway_blocking(&self) {
        if self.settings().pause_compaction {
            self.paused.fetch_add(1, Ordering::SeqCst);
            while self.settings().pause_compaction {
                std::thread::sleep(Duration::from_millis(10));
            }
            self.paused.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A store with a health flag (see the module doc).
pub struct Watched {
    inner: Arc<dyn Store>,
    healthy: Arc<AtomicBool>,
    hooks: Arc<StoreHooks>,
}

impl Watched {
    /// Wraps `inner` and starts its probe (needs a tokio runtime).
    pub fn new(inner: Arc<dyn Store>, hooks: Arc<StoreHooks>) -> Arc<Watched> {
        let w = Arc::new(Watched {
            inner,
            healthy: Arc::new(AtomicBool::new(true)),
            hooks,
        });
        let weak = Arc::downgrade(&w);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PROBE_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(w) = weak.upgrade() else { return };
                if !w.healthy() {
                    let _ = w.ping().await;
                }
            }
        });
        w
    }

    /// Whether the store may be written to: false from a failed call until a successful probe.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    pub fn hooks(&self) -> &Arc<StoreHooks> {
        &self.hooks
    }

    pub fn report(&self) -> HookReport {
        HookReport {
            settings: self.hooks.settings(),
            held: self.hooks.held.load(Ordering::SeqCst),
            paused: self.hooks.paused.load(Ordering::SeqCst),
            follows_held: self.hooks.follows_held.load(Ordering::SeqCst),
            healthy: self.healthy(),
        }
    }

    /// Notes the outcome of a call: an unavailable store is unhealthy until a probe succeeds.
    fn note<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Unavailable(why)) = &r {
            if self.healthy.swap(false, Ordering::SeqCst) {
                tracing::warn!(error = %why, "store unhealthy: new connections get 503 until a probe succeeds");
            }
        }
        r
    }
}

#[async_trait]
impl Store for Watched {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    /// The probe: a successful ping marks the store healthy again.
    async fn ping(&self) -> Result<(), StoreError> {
        let r = match self.hooks.fail_check() {
            Ok(()) => match tokio::time::timeout(PROBE_TIMEOUT, self.inner.ping()).await {
                Ok(r) => r,
                Err(_) => Err(StoreError::Unavailable("no answer to a ping".into())),
            },
            Err(e) => Err(e),
        };
        if r.is_ok() && !self.healthy.swap(true, Ordering::SeqCst) {
            tracing::info!("store healthy again");
        }
        self.note(r)
    }

    async fn load(&self, doc: &DocKey) -> Result<StoredDoc, StoreError> {
        self.note(self.inner.load(doc).await)
    }

    async fn append(&self, doc: &DocKey, updates: &[Bytes]) -> Result<(), StoreError> {
        let r = match self.hooks.before_write().await {
            Ok(()) => self.inner.append(doc, updates).await,
            Err(e) => Err(e),
        };
        self.note(r)
    }

    async fn compact(
        &self,
        doc: &DocKey,
        snapshot: Vec<u8>,
        covered: u64,
    ) -> Result<(), StoreError> {
        let r = match self.hooks.before_write().await {
            Ok(()) => self.inner.compact(doc, snapshot, covered).await,
            Err(e) => Err(e),
        };
        self.note(r)
    }

    async fn put_board(&self, board: &BoardMeta) -> Result<(), StoreError> {
        self.note(self.inner.put_board(board).await)
    }

    async fn get_board(&self, id: &BoardId) -> Result<Option<BoardMeta>, StoreError> {
        self.note(self.inner.get_board(id).await)
    }

    async fn list_boards(&self) -> Result<Vec<BoardMeta>, StoreError> {
        self.note(self.inner.list_boards().await)
    }

    async fn put_board_state(&self, id: &BoardId, state: Vec<u8>) -> Result<(), StoreError> {
        self.note(self.inner.put_board_state(id, state).await)
    }

    async fn get_board_state(&self, id: &BoardId) -> Result<Option<Vec<u8>>, StoreError> {
        self.note(self.inner.get_board_state(id).await)
    }

    async fn put_snapshot(
        &self,
        board: &BoardId,
        id: &str,
        meta: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.note(self.inner.put_snapshot(board, id, meta, data).await)
    }

    async fn list_snapshots(&self, board: &BoardId) -> Result<Vec<Vec<u8>>, StoreError> {
        self.note(self.inner.list_snapshots(board).await)
    }

    async fn get_snapshot(&self, board: &BoardId, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.note(self.inner.get_snapshot(board, id).await)
    }

    async fn delete_snapshot(&self, board: &BoardId, id: &str) -> Result<bool, StoreError> {
        self.note(self.inner.delete_snapshot(board, id).await)
    }

    async fn delete_board(&self, id: &BoardId) -> Result<bool, StoreError> {
        self.note(self.inner.delete_board(id).await)
    }

    async fn get_or_init_secret(&self, candidate: &str) -> Result<String, StoreError> {
        self.note(self.inner.get_or_init_secret(candidate).await)
    }

    async fn put_round(
        &self,
        board: &BoardId,
        round: &str,
        status: &str,
        ballots: &[BallotEntry],
    ) -> Result<bool, StoreError> {
        self.note(self.inner.put_round(board, round, status, ballots).await)
    }

    async fn set_round_status(
        &self,
        board: &BoardId,
        round: &str,
        status: &str,
    ) -> Result<(), StoreError> {
        self.note(self.inner.set_round_status(board, round, status).await)
    }

    async fn get_ballot(
        &self,
        board: &BoardId,
        round: &str,
        tag: &str,
        items: &[String],
    ) -> Result<StoredBallot, StoreError> {
        self.note(self.inner.get_ballot(board, round, tag, items).await)
    }

    async fn change_ballot_if(
        &self,
        board: &BoardId,
        round: &str,
        tag: &str,
        item: &str,
        delta: i64,
        used: u32,
        on_item: u32,
    ) -> Result<bool, StoreError> {
        let r = self
            .inner
            .change_ballot_if(board, round, tag, item, delta, used, on_item)
            .await;
        self.note(r)
    }

    async fn round_ballots(
        &self,
        board: &BoardId,
        round: &str,
    ) -> Result<Vec<BallotEntry>, StoreError> {
        self.note(self.inner.round_ballots(board, round).await)
    }

    async fn round_voters(
        &self,
        board: &BoardId,
        rounds: &[String],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        self.note(self.inner.round_voters(board, rounds).await)
    }

    async fn erase_ballots(
        &self,
        board: &BoardId,
        tag: &str,
        rounds: &[String],
    ) -> Result<(), StoreError> {
        self.note(self.inner.erase_ballots(board, tag, rounds).await)
    }

    // Every method with a default in the trait is forwarded too: the default would quietly
    // make a shared store behave as a single node.
    fn shared(&self) -> bool {
        self.inner.shared()
    }

    async fn load_at(&self, doc: &DocKey) -> Result<LoadedDoc, StoreError> {
        self.note(self.inner.load_at(doc).await)
    }

    async fn append_at(
        &self,
        doc: &DocKey,
        at: LogId,
        updates: &[Bytes],
    ) -> Result<Appended, StoreError> {
        let r = match self.hooks.before_write().await {
            Ok(()) if self.hooks.settings().force_moved => Ok(Appended::Moved),
            Ok(()) => self.inner.append_at(doc, at, updates).await,
            Err(e) => Err(e),
        };
        self.note(r)
    }

    async fn read_after(
        &self,
        doc: &DocKey,
        after: LogId,
    ) -> Result<Vec<(LogId, Vec<u8>)>, StoreError> {
        self.note(self.inner.read_after(doc, after).await)
    }

    async fn compact_at(
        &self,
        doc: &DocKey,
        snapshot: Vec<u8>,
        at: LogId,
        covered: u64,
    ) -> Result<(), StoreError> {
        let r = match self.hooks.before_write().await {
            Ok(()) => self.inner.compact_at(doc, snapshot, at, covered).await,
            Err(e) => Err(e),
        };
        self.note(r)
    }

    async fn follower(&self, doc: &DocKey) -> Result<Option<Box<dyn Follower>>, StoreError> {
        let follower = self.note(self.inner.follower(doc).await)?;
        if !self.hooks.enabled {
            return Ok(follower);
        }
        Ok(follower.map(|inner| {
            Box::new(HookedFollower {
                inner,
                hooks: self.hooks.clone(),
            }) as Box<dyn Follower>
        }))
    }

    async fn publish_presence(
        &self,
        doc: &DocKey,
        node: &str,
        message: &[u8],
    ) -> Result<(), StoreError> {
        self.note(self.inner.publish_presence(doc, node, message).await)
    }

    async fn get_board_state_versioned(
        &self,
        id: &BoardId,
    ) -> Result<(u64, Option<Vec<u8>>), StoreError> {
        self.note(self.inner.get_board_state_versioned(id).await)
    }

    async fn put_board_state_if(
        &self,
        id: &BoardId,
        expected: u64,
        state: Vec<u8>,
    ) -> Result<Option<u64>, StoreError> {
        self.note(self.inner.put_board_state_if(id, expected, state).await)
    }

    async fn board_state_changes(&self) -> Option<tokio::sync::mpsc::Receiver<StateChange>> {
        self.inner.board_state_changes().await
    }

    async fn lease(&self, name: &str, holder: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        self.note(self.inner.lease(name, holder, ttl_ms).await)
    }
}

/// A follower behind the `hold_follow` hook (only with `--test-hooks`): it neither starts a read
/// nor hands one over while the hook is set, so an entry read just as the hook was set waits too.
struct HookedFollower {
    inner: Box<dyn Follower>,
    hooks: Arc<StoreHooks>,
}

#[async_trait]
impl Follower for HookedFollower {
    async fn next(&mut self, log: LogId) -> Result<Followed, StoreError> {
        self.hooks.follow_gate().await;
        let got = self.inner.next(log).await;
        self.hooks.follow_gate().await;
        got
    }
}
