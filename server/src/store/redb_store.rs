//! The embedded store, on redb, in one file `tafel.redb` inside the configured folder.
//!
//! Writes go through one writer thread that commits everything queued in one transaction (group
//! commit): under load many documents' updates share one fsync, and each caller is answered only
//! after the commit. Reads run in `spawn_blocking` on their own read transactions.
//!
//! Tables: `log` ((doc key, seq) → update), `snapshot` (doc key → update), `board`
//! (board id → JSON), `board_state` (board id → the server-side session state, JSON), `meta`
//! (name → bytes; holds the generated JWT secret), `history_meta` and `history_data` ((board id,
//! snapshot id) → a snapshot's list entry and its encoded states), and the ballots: `round`
//! ((board id, round id) → status), `ballot` ((board id, round id, `tag|item`) → dots) and
//! `ballot_used` ((board id, round id, participant tag) → dots used, the budget counter). A
//! dot is one write in the writer's transaction that checks what it was decided on first.

use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tafel_protocol::{BoardId, DocKey, DocName};
use tokio::sync::{mpsc, oneshot};

use super::{board_from_json, board_to_json, BoardMeta, Store, StoreError, StoreHooks, StoredDoc};

const LOG: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("log");
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");
const BOARD: TableDefinition<&str, &[u8]> = TableDefinition::new("board");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BOARD_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("board_state");
/// (board id, snapshot id) → the snapshot's list entry (JSON), and → its encoded states.
const SNAP_META: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("history_meta");
const SNAP_DATA: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("history_data");
const ROUND: TableDefinition<(&str, &str), &str> = TableDefinition::new("round");
const BALLOT: TableDefinition<(&str, &str, &str), u32> = TableDefinition::new("ballot");
const BALLOT_USED: TableDefinition<(&str, &str, &str), u32> = TableDefinition::new("ballot_used");

/// The last string key in a range of `&str` keys (for range ends).
const MAX_STR: &str = "\u{10ffff}";

/// Most write requests folded into one transaction.
const MAX_GROUP_COMMIT: usize = 512;
/// Write requests that may wait for the writer thread before callers wait in turn.
const WRITE_QUEUE: usize = 4096;

enum WriteOp {
    Append {
        doc: String,
        updates: Vec<Bytes>,
    },
    Compact {
        doc: String,
        snapshot: Vec<u8>,
        covered: u64,
    },
    PutBoardState {
        id: String,
        json: Vec<u8>,
    },
    PutBoard {
        id: String,
        json: Vec<u8>,
    },
    DeleteBoard {
        id: BoardId,
    },
    PutSnapshot {
        board: String,
        id: String,
        meta: Vec<u8>,
        data: Vec<u8>,
    },
    DeleteSnapshot {
        board: String,
        id: String,
    },
    InitSecret {
        candidate: String,
    },
    PutRound {
        board: String,
        round: String,
        status: String,
        ballots: Vec<super::BallotEntry>,
    },
    SetRoundStatus {
        board: String,
        round: String,
        status: String,
    },
    ChangeBallot {
        board: String,
        round: String,
        tag: String,
        item: String,
        delta: i64,
        used: u32,
        on_item: u32,
    },
    EraseBallots {
        board: String,
        tag: String,
        rounds: Vec<String>,
    },
}

/// The answer to one write: for `InitSecret` the kept secret, for `DeleteBoard` whether it
/// existed, for `PutRound` whether it created the round, for `ChangeBallot` whether it applied.
enum WriteOk {
    Done,
    Existed(bool),
    Secret(String),
}

type WriteReply = oneshot::Sender<Result<WriteOk, StoreError>>;

pub struct RedbStore {
    /// Shared by readers and the writer thread; taken exclusively only to compact the file after
    /// a board is deleted (redb's `compact` needs no transaction open).
    db: Arc<RwLock<Database>>,
    /// `None` only while dropping: closing the channel stops the writer thread.
    writes: Option<mpsc::Sender<(WriteOp, WriteReply)>>,
    /// Joined on drop, so the file lock is released when the store is gone.
    writer: Option<std::thread::JoinHandle<()>>,
    path: String,
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        self.writes.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedbStore {
    pub async fn open(folder: &Path) -> Result<Self, StoreError> {
        RedbStore::open_with(folder, StoreHooks::off()).await
    }

    /// [`RedbStore::open`] with the `--test-hooks` store hooks (a compaction can stop inside its
    /// transaction, before the commit).
    pub async fn open_with(folder: &Path, hooks: Arc<StoreHooks>) -> Result<Self, StoreError> {
        let folder = folder.to_owned();
        let path = folder.join("tafel.redb");
        let shown = path.display().to_string();
        let db = tokio::task::spawn_blocking(move || -> Result<Database, StoreError> {
            std::fs::create_dir_all(&folder)
                .map_err(|e| unavailable(format!("cannot create {}: {e}", folder.display())))?;
            let db = Database::create(&path)
                .map_err(|e| unavailable(format!("cannot open {}: {e}", path.display())))?;
            let txn = db.begin_write().map_err(unavailable)?;
            txn.open_table(LOG).map_err(unavailable)?;
            txn.open_table(SNAPSHOT).map_err(unavailable)?;
            txn.open_table(BOARD).map_err(unavailable)?;
            txn.open_table(META).map_err(unavailable)?;
            txn.open_table(BOARD_STATE).map_err(unavailable)?;
            txn.open_table(SNAP_META).map_err(unavailable)?;
            txn.open_table(SNAP_DATA).map_err(unavailable)?;
            txn.open_table(ROUND).map_err(unavailable)?;
            txn.open_table(BALLOT).map_err(unavailable)?;
            txn.open_table(BALLOT_USED).map_err(unavailable)?;
            txn.commit().map_err(unavailable)?;
            Ok(db)
        })
        .await
        .map_err(unavailable)??;
        let db = Arc::new(RwLock::new(db));
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("tafel-redb-writer".into())
            .spawn(move || writer_loop(&writer_db, rx, &hooks))
            .map_err(unavailable)?;
        Ok(RedbStore {
            db,
            writes: Some(tx),
            writer: Some(writer),
            path: shown,
        })
    }

    async fn write(&self, op: WriteOp) -> Result<WriteOk, StoreError> {
        let (tx, rx) = oneshot::channel();
        let writes = self
            .writes
            .as_ref()
            .ok_or_else(|| unavailable("the store is closed"))?;
        writes
            .send((op, tx))
            .await
            .map_err(|_| unavailable("the store writer has stopped"))?;
        rx.await
            .map_err(|_| unavailable("the store writer has stopped"))?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = shared(&db).begin_read().map_err(unavailable)?;
            f(&txn)
        })
        .await
        .map_err(unavailable)?
    }
}

fn shared(db: &RwLock<Database>) -> RwLockReadGuard<'_, Database> {
    db.read().unwrap_or_else(|p| p.into_inner())
}

/// Erasure: after a board is deleted, its bytes are still in the file's freed pages. Compacting
/// moves every live page down over the freed ones and truncates the file, so nothing of the
/// deleted board stays readable. Readers and writers wait meanwhile (it takes the lock whole).
fn erase_freed(db: &RwLock<Database>) {
    let mut db = db.write().unwrap_or_else(|p| p.into_inner());
    let started = std::time::Instant::now();
    for _ in 0..64 {
        match db.compact() {
            Ok(true) => continue,
            Ok(false) => break,
            Err(e) => {
                tracing::error!(error = %e, "compacting the embedded store after a board deletion failed; deleted content may stay in freed pages until the next compaction");
                return;
            }
        }
    }
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "embedded store compacted after a board deletion"
    );
}

/// The writer thread: takes every queued write, applies all in one transaction, commits once,
/// answers each. When the commit fails every caller of the group gets the error.
fn writer_loop(
    db: &RwLock<Database>,
    mut rx: mpsc::Receiver<(WriteOp, WriteReply)>,
    hooks: &StoreHooks,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP_COMMIT {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let deletes = group.iter().any(|(op, _)| {
            matches!(
                op,
                WriteOp::DeleteBoard { .. } | WriteOp::DeleteSnapshot { .. }
            )
        });
        let result = commit_group(&shared(db), group.iter().map(|(op, _)| op), hooks);
        if deletes && result.is_ok() {
            // Answered only once the deleted bytes are gone from the file.
            erase_freed(db);
        }
        match result {
            Ok(answers) => {
                for ((_, reply), answer) in group.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "embedded store commit failed");
                for (_, reply) in group {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

fn commit_group<'a>(
    db: &Database,
    ops: impl Iterator<Item = &'a WriteOp>,
    hooks: &StoreHooks,
) -> Result<Vec<WriteOk>, StoreError> {
    let txn = db.begin_write().map_err(unavailable)?;
    let mut answers = Vec::new();
    {
        let mut log = txn.open_table(LOG).map_err(unavailable)?;
        let mut snap = txn.open_table(SNAPSHOT).map_err(unavailable)?;
        let mut boards = txn.open_table(BOARD).map_err(unavailable)?;
        let mut meta = txn.open_table(META).map_err(unavailable)?;
        let mut states = txn.open_table(BOARD_STATE).map_err(unavailable)?;
        let mut snap_meta = txn.open_table(SNAP_META).map_err(unavailable)?;
        let mut snap_data = txn.open_table(SNAP_DATA).map_err(unavailable)?;
        let mut rounds = txn.open_table(ROUND).map_err(unavailable)?;
        let mut ballots = txn.open_table(BALLOT).map_err(unavailable)?;
        let mut used_t = txn.open_table(BALLOT_USED).map_err(unavailable)?;
        for op in ops {
            answers.push(match op {
                WriteOp::Append { doc, updates } => {
                    let first = last_seq(&log, doc)?.map_or(0, |s| s + 1);
                    for (seq, u) in (first..).zip(updates) {
                        log.insert((doc.as_str(), seq), u.as_ref())
                            .map_err(unavailable)?;
                    }
                    WriteOk::Done
                }
                WriteOp::Compact {
                    doc,
                    snapshot,
                    covered,
                } => {
                    snap.insert(doc.as_str(), snapshot.as_slice())
                        .map_err(unavailable)?;
                    let seqs: Vec<u64> = log
                        .range((doc.as_str(), 0)..=(doc.as_str(), u64::MAX))
                        .map_err(unavailable)?
                        .take(*covered as usize)
                        .map(|e| e.map(|(k, _)| k.value().1))
                        .collect::<Result<_, _>>()
                        .map_err(unavailable)?;
                    for s in seqs {
                        log.remove((doc.as_str(), s)).map_err(unavailable)?;
                    }
                    // Test hook: stop here, snapshot replaced and log trimmed, not committed.
                    hooks.compaction_midway_blocking();
                    WriteOk::Done
                }
                WriteOp::PutBoard { id, json } => {
                    boards
                        .insert(id.as_str(), json.as_slice())
                        .map_err(unavailable)?;
                    WriteOk::Done
                }
                WriteOp::PutBoardState { id, json } => {
                    states
                        .insert(id.as_str(), json.as_slice())
                        .map_err(unavailable)?;
                    WriteOk::Done
                }
                WriteOp::DeleteBoard { id } => {
                    let existed = boards.remove(id.as_str()).map_err(unavailable)?.is_some();
                    states.remove(id.as_str()).map_err(unavailable)?;
                    for name in DocName::ALL {
                        let key = DocKey::new(id.clone(), name).to_string();
                        snap.remove(key.as_str()).map_err(unavailable)?;
                        log.retain_in((key.as_str(), 0)..=(key.as_str(), u64::MAX), |_, _| false)
                            .map_err(unavailable)?;
                    }
                    let b = id.as_str();
                    snap_meta
                        .retain_in((b, "")..=(b, "\u{10ffff}"), |_, _| false)
                        .map_err(unavailable)?;
                    snap_data
                        .retain_in((b, "")..=(b, "\u{10ffff}"), |_, _| false)
                        .map_err(unavailable)?;
                    rounds
                        .retain_in((b, "")..=(b, MAX_STR), |_, _| false)
                        .map_err(unavailable)?;
                    ballots
                        .retain_in((b, "", "")..=(b, MAX_STR, MAX_STR), |_, _| false)
                        .map_err(unavailable)?;
                    used_t
                        .retain_in((b, "", "")..=(b, MAX_STR, MAX_STR), |_, _| false)
                        .map_err(unavailable)?;
                    WriteOk::Existed(existed)
                }
                WriteOp::PutSnapshot {
                    board,
                    id,
                    meta,
                    data,
                } => {
                    snap_meta
                        .insert((board.as_str(), id.as_str()), meta.as_slice())
                        .map_err(unavailable)?;
                    snap_data
                        .insert((board.as_str(), id.as_str()), data.as_slice())
                        .map_err(unavailable)?;
                    WriteOk::Done
                }
                WriteOp::DeleteSnapshot { board, id } => {
                    let key = (board.as_str(), id.as_str());
                    let existed = snap_meta.remove(key).map_err(unavailable)?.is_some();
                    snap_data.remove(key).map_err(unavailable)?;
                    WriteOk::Existed(existed)
                }
                WriteOp::PutRound {
                    board,
                    round,
                    status,
                    ballots: moved,
                } => {
                    let key = (board.as_str(), round.as_str());
                    if rounds.get(key).map_err(unavailable)?.is_some() {
                        WriteOk::Existed(false)
                    } else {
                        rounds.insert(key, status.as_str()).map_err(unavailable)?;
                        for (tag, item, n) in moved.iter().filter(|b| b.2 > 0) {
                            let field = format!("{tag}|{item}");
                            let k = (board.as_str(), round.as_str(), field.as_str());
                            let was = ballots
                                .get(k)
                                .map_err(unavailable)?
                                .map_or(0, |v| v.value());
                            ballots.insert(k, was + n).map_err(unavailable)?;
                            let k = (board.as_str(), round.as_str(), tag.as_str());
                            let was = used_t.get(k).map_err(unavailable)?.map_or(0, |v| v.value());
                            used_t.insert(k, was + n).map_err(unavailable)?;
                        }
                        WriteOk::Existed(true)
                    }
                }
                WriteOp::SetRoundStatus {
                    board,
                    round,
                    status,
                } => {
                    rounds
                        .insert((board.as_str(), round.as_str()), status.as_str())
                        .map_err(unavailable)?;
                    WriteOk::Done
                }
                WriteOp::ChangeBallot {
                    board,
                    round,
                    tag,
                    item,
                    delta,
                    used,
                    on_item,
                } => {
                    let open = rounds
                        .get((board.as_str(), round.as_str()))
                        .map_err(unavailable)?
                        .is_some_and(|v| v.value() == "open");
                    let field = format!("{tag}|{item}");
                    let dots_key = (board.as_str(), round.as_str(), field.as_str());
                    let used_key = (board.as_str(), round.as_str(), tag.as_str());
                    let on = ballots
                        .get(dots_key)
                        .map_err(unavailable)?
                        .map_or(0, |v| v.value());
                    let spent = used_t
                        .get(used_key)
                        .map_err(unavailable)?
                        .map_or(0, |v| v.value());
                    if !open || on != *on_item || spent != *used {
                        WriteOk::Existed(false)
                    } else {
                        let next = |n: u32| (i64::from(n) + delta).max(0) as u32;
                        match next(on) {
                            0 => ballots.remove(dots_key).map(|_| ()),
                            n => ballots.insert(dots_key, n).map(|_| ()),
                        }
                        .map_err(unavailable)?;
                        match next(spent) {
                            0 => used_t.remove(used_key).map(|_| ()),
                            n => used_t.insert(used_key, n).map(|_| ()),
                        }
                        .map_err(unavailable)?;
                        WriteOk::Existed(true)
                    }
                }
                WriteOp::EraseBallots {
                    board,
                    tag,
                    rounds: of,
                } => {
                    let prefix = format!("{tag}|");
                    for r in of {
                        let (b, r) = (board.as_str(), r.as_str());
                        ballots
                            .retain_in((b, r, "")..=(b, r, MAX_STR), |k, _| {
                                !k.2.starts_with(&prefix)
                            })
                            .map_err(unavailable)?;
                        used_t.remove((b, r, tag.as_str())).map_err(unavailable)?;
                    }
                    WriteOk::Done
                }
                WriteOp::InitSecret { candidate } => {
                    let kept = meta
                        .get("jwt-secret")
                        .map_err(unavailable)?
                        .map(|v| String::from_utf8_lossy(v.value()).into_owned());
                    match kept {
                        Some(s) => WriteOk::Secret(s),
                        None => {
                            meta.insert("jwt-secret", candidate.as_bytes())
                                .map_err(unavailable)?;
                            WriteOk::Secret(candidate.clone())
                        }
                    }
                }
            });
        }
    }
    txn.commit().map_err(unavailable)?;
    Ok(answers)
}

fn last_seq(log: &redb::Table<(&str, u64), &[u8]>, doc: &str) -> Result<Option<u64>, StoreError> {
    let mut range = log.range((doc, 0)..=(doc, u64::MAX)).map_err(unavailable)?;
    match range.next_back() {
        Some(entry) => Ok(Some(entry.map_err(unavailable)?.0.value().1)),
        None => Ok(None),
    }
}

#[async_trait]
impl Store for RedbStore {
    fn describe(&self) -> String {
        format!("embedded (redb) at {}", self.path)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|txn| {
            txn.open_table(META).map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn load(&self, doc: &DocKey) -> Result<StoredDoc, StoreError> {
        let key = doc.to_string();
        self.read(move |txn| {
            let snap = txn.open_table(SNAPSHOT).map_err(unavailable)?;
            let log = txn.open_table(LOG).map_err(unavailable)?;
            let snapshot = snap
                .get(key.as_str())
                .map_err(unavailable)?
                .map(|v| v.value().to_vec());
            let mut updates = Vec::new();
            for entry in log
                .range((key.as_str(), 0)..=(key.as_str(), u64::MAX))
                .map_err(unavailable)?
            {
                updates.push(entry.map_err(unavailable)?.1.value().to_vec());
            }
            Ok(StoredDoc {
                snapshot,
                log: updates,
            })
        })
        .await
    }

    async fn append(&self, doc: &DocKey, updates: &[Bytes]) -> Result<(), StoreError> {
        self.write(WriteOp::Append {
            doc: doc.to_string(),
            updates: updates.to_vec(),
        })
        .await
        .map(|_| ())
    }

    async fn compact(
        &self,
        doc: &DocKey,
        snapshot: Vec<u8>,
        covered: u64,
    ) -> Result<(), StoreError> {
        self.write(WriteOp::Compact {
            doc: doc.to_string(),
            snapshot,
            covered,
        })
        .await
        .map(|_| ())
    }

    async fn put_board(&self, board: &BoardMeta) -> Result<(), StoreError> {
        self.write(WriteOp::PutBoard {
            id: board.id.to_string(),
            json: board_to_json(board),
        })
        .await
        .map(|_| ())
    }

    async fn get_board(&self, id: &BoardId) -> Result<Option<BoardMeta>, StoreError> {
        let id = id.to_string();
        self.read(move |txn| {
            let t = txn.open_table(BOARD).map_err(unavailable)?;
            let v = t.get(id.as_str()).map_err(unavailable)?;
            v.map(|v| board_from_json(v.value())).transpose()
        })
        .await
    }

    async fn list_boards(&self) -> Result<Vec<BoardMeta>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(BOARD).map_err(unavailable)?;
            let mut out = Vec::new();
            for e in t.iter().map_err(unavailable)? {
                out.push(board_from_json(e.map_err(unavailable)?.1.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn put_board_state(&self, id: &BoardId, state: Vec<u8>) -> Result<(), StoreError> {
        self.write(WriteOp::PutBoardState {
            id: id.to_string(),
            json: state,
        })
        .await
        .map(|_| ())
    }

    async fn get_board_state(&self, id: &BoardId) -> Result<Option<Vec<u8>>, StoreError> {
        let id = id.to_string();
        self.read(move |txn| {
            let t = txn.open_table(BOARD_STATE).map_err(unavailable)?;
            let v = t.get(id.as_str()).map_err(unavailable)?;
            Ok(v.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn delete_board(&self, id: &BoardId) -> Result<bool, StoreError> {
        match self.write(WriteOp::DeleteBoard { id: id.clone() }).await? {
            WriteOk::Existed(b) => Ok(b),
            _ => Ok(false),
        }
    }

    async fn put_snapshot(
        &self,
        board: &BoardId,
        id: &str,
        meta: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.write(WriteOp::PutSnapshot {
            board: board.to_string(),
            id: id.to_owned(),
            meta,
            data,
        })
        .await
        .map(|_| ())
    }

    async fn list_snapshots(&self, board: &BoardId) -> Result<Vec<Vec<u8>>, StoreError> {
        let b = board.to_string();
        self.read(move |txn| {
            let t = txn.open_table(SNAP_META).map_err(unavailable)?;
            let mut out = Vec::new();
            for e in t
                .range((b.as_str(), "")..=(b.as_str(), "\u{10ffff}"))
                .map_err(unavailable)?
            {
                out.push(e.map_err(unavailable)?.1.value().to_vec());
            }
            Ok(out)
        })
        .await
    }

    async fn get_snapshot(&self, board: &BoardId, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (b, id) = (board.to_string(), id.to_owned());
        self.read(move |txn| {
            let t = txn.open_table(SNAP_DATA).map_err(unavailable)?;
            let v = t.get((b.as_str(), id.as_str())).map_err(unavailable)?;
            Ok(v.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn delete_snapshot(&self, board: &BoardId, id: &str) -> Result<bool, StoreError> {
        match self
            .write(WriteOp::DeleteSnapshot {
                board: board.to_string(),
                id: id.to_owned(),
            })
            .await?
        {
            WriteOk::Existed(b) => Ok(b),
            _ => Ok(false),
        }
    }

    async fn put_round(
        &self,
        board: &BoardId,
        round: &str,
        status: &str,
        ballots: &[super::BallotEntry],
    ) -> Result<bool, StoreError> {
        let op = WriteOp::PutRound {
            board: board.to_string(),
            round: round.to_owned(),
            status: status.to_owned(),
            ballots: ballots.to_vec(),
        };
        Ok(matches!(self.write(op).await?, WriteOk::Existed(true)))
    }

    async fn set_round_status(
        &self,
        board: &BoardId,
        round: &str,
        status: &str,
    ) -> Result<(), StoreError> {
        let op = WriteOp::SetRoundStatus {
            board: board.to_string(),
            round: round.to_owned(),
            status: status.to_owned(),
        };
        self.write(op).await.map(|_| ())
    }

    async fn get_ballot(
        &self,
        board: &BoardId,
        round: &str,
        tag: &str,
        items: &[String],
    ) -> Result<super::StoredBallot, StoreError> {
        let (b, r, tag, items) = (
            board.to_string(),
            round.to_owned(),
            tag.to_owned(),
            items.to_vec(),
        );
        self.read(move |txn| {
            let rounds = txn.open_table(ROUND).map_err(unavailable)?;
            let ballots = txn.open_table(BALLOT).map_err(unavailable)?;
            let used = txn.open_table(BALLOT_USED).map_err(unavailable)?;
            let status = rounds
                .get((b.as_str(), r.as_str()))
                .map_err(unavailable)?
                .map(|v| v.value().to_owned());
            let mut dots = std::collections::BTreeMap::new();
            for item in items {
                let field = format!("{tag}|{item}");
                if let Some(n) = ballots
                    .get((b.as_str(), r.as_str(), field.as_str()))
                    .map_err(unavailable)?
                    .map(|v| v.value())
                    .filter(|n| *n > 0)
                {
                    dots.insert(item, n);
                }
            }
            let used = used
                .get((b.as_str(), r.as_str(), tag.as_str()))
                .map_err(unavailable)?
                .map_or(0, |v| v.value());
            Ok(super::StoredBallot { status, dots, used })
        })
        .await
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
        let op = WriteOp::ChangeBallot {
            board: board.to_string(),
            round: round.to_owned(),
            tag: tag.to_owned(),
            item: item.to_owned(),
            delta,
            used,
            on_item,
        };
        Ok(matches!(self.write(op).await?, WriteOk::Existed(true)))
    }

    async fn round_ballots(
        &self,
        board: &BoardId,
        round: &str,
    ) -> Result<Vec<super::BallotEntry>, StoreError> {
        let (b, r) = (board.to_string(), round.to_owned());
        self.read(move |txn| {
            let t = txn.open_table(BALLOT).map_err(unavailable)?;
            let mut out = Vec::new();
            for e in t
                .range((b.as_str(), r.as_str(), "")..=(b.as_str(), r.as_str(), MAX_STR))
                .map_err(unavailable)?
            {
                let (k, v) = e.map_err(unavailable)?;
                if let Some((tag, item)) = k.value().2.split_once('|') {
                    out.push((tag.to_owned(), item.to_owned(), v.value()));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn round_voters(
        &self,
        board: &BoardId,
        rounds: &[String],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        let (b, rounds) = (board.to_string(), rounds.to_vec());
        self.read(move |txn| {
            let known = txn.open_table(ROUND).map_err(unavailable)?;
            let used = txn.open_table(BALLOT_USED).map_err(unavailable)?;
            let mut out = Vec::new();
            for r in &rounds {
                if known
                    .get((b.as_str(), r.as_str()))
                    .map_err(unavailable)?
                    .is_none()
                {
                    out.push(None);
                    continue;
                }
                let n = used
                    .range((b.as_str(), r.as_str(), "")..=(b.as_str(), r.as_str(), MAX_STR))
                    .map_err(unavailable)?
                    .count();
                out.push(Some(n as u64));
            }
            Ok(out)
        })
        .await
    }

    async fn erase_ballots(
        &self,
        board: &BoardId,
        tag: &str,
        rounds: &[String],
    ) -> Result<(), StoreError> {
        let op = WriteOp::EraseBallots {
            board: board.to_string(),
            tag: tag.to_owned(),
            rounds: rounds.to_vec(),
        };
        self.write(op).await.map(|_| ())
    }

    async fn get_or_init_secret(&self, candidate: &str) -> Result<String, StoreError> {
        match self
            .write(WriteOp::InitSecret {
                candidate: candidate.to_owned(),
            })
            .await?
        {
            WriteOk::Secret(s) => Ok(s),
            _ => Err(StoreError::Corrupt("secret".into())),
        }
    }
}

impl RedbStore {
    /// Every key the store holds that mentions `board` (for tests that prove a delete erased all).
    pub async fn keys_mentioning(&self, board: &str) -> Result<Vec<String>, StoreError> {
        let needle = board.to_owned();
        self.read(move |txn| {
            let mut out = Vec::new();
            for e in txn
                .open_table(LOG)
                .map_err(unavailable)?
                .iter()
                .map_err(unavailable)?
            {
                let (k, _) = e.map_err(unavailable)?;
                if k.value().0.starts_with(&format!("{needle}/")) {
                    out.push(format!("log:{}:{}", k.value().0, k.value().1));
                }
            }
            for table in [SNAPSHOT, BOARD, BOARD_STATE] {
                for e in txn
                    .open_table(table)
                    .map_err(unavailable)?
                    .iter()
                    .map_err(unavailable)?
                {
                    let (k, _) = e.map_err(unavailable)?;
                    if k.value() == needle || k.value().starts_with(&format!("{needle}/")) {
                        out.push(k.value().to_owned());
                    }
                }
            }
            for e in txn
                .open_table(ROUND)
                .map_err(unavailable)?
                .iter()
                .map_err(unavailable)?
            {
                let (k, _) = e.map_err(unavailable)?;
                if k.value().0 == needle {
                    out.push(format!("round:{}:{}", k.value().0, k.value().1));
                }
            }
            for table in [BALLOT, BALLOT_USED] {
                for e in txn
                    .open_table(table)
                    .map_err(unavailable)?
                    .iter()
                    .map_err(unavailable)?
                {
                    let (k, _) = e.map_err(unavailable)?;
                    let (b, r, f) = k.value();
                    if b == needle {
                        out.push(format!("ballot:{b}:{r}:{f}"));
                    }
                }
            }
            for table in [SNAP_META, SNAP_DATA] {
                for e in txn
                    .open_table(table)
                    .map_err(unavailable)?
                    .iter()
                    .map_err(unavailable)?
                {
                    let (k, _) = e.map_err(unavailable)?;
                    if k.value().0 == needle {
                        out.push(format!("history:{}:{}", k.value().0, k.value().1));
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}
