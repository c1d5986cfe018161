//! The Redis store, through the `redis` crate's `ConnectionManager` (one multiplexed connection
//! that reconnects by itself; commands from all documents are pipelined on it).
//!
//! Key layout (every key of a document carries `{board/doc}` as its hash tag, so a Redis Cluster
//! keeps a document's keys on one slot and the MULTI blocks below stay legal):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `tafel:{B/D}:log` | list | Yjs v1 updates appended since the snapshot (RPUSH) |
//! | `tafel:{B/D}:snap` | string | the compacted snapshot (a Yjs v1 update) |
//! | `tafel:boards` | hash | board id → board record (JSON) |
//! | `tafel:board-state:{B}` | string | the board's server-side session state (JSON) |
//! | `tafel:board-state-version:{B}` | string | how often that state was stored (compare-and-set) |
//! | `tafel:lease:NAME` | string | a lease (SET NX PX) held by one node, e.g. for compaction |
//!
//! The board state is changed only by `STATE_CAS` (compare the version, store, count up,
//! PUBLISH the board id on `tafel:board-state-changed`), so two nodes never both decide on the
//! same state: the one that loses reads the new state and decides again.
//! | `tafel:jwt-secret` | string | the generated HS256 secret (SET NX) |

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use tafel_protocol::{BoardId, DocKey, DocName};

use tokio::sync::mpsc;

use super::{board_from_json, board_to_json, BoardMeta, StateChange, Store, StoreError, StoredDoc};

const BOARDS_KEY: &str = "tafel:boards";
const SECRET_KEY: &str = "tafel:jwt-secret";
/// How long one command may take before the store counts as unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where every node hears that a board's state was stored (the message is the board id).
const STATE_CHANNEL: &str = "tafel:board-state-changed";

/// Stores a board state if its version is still the one the node decided on, counts the
/// version up and tells the other nodes, as one atomic step. KEYS: state, version. ARGV:
/// expected version, state, channel, board. Answers the new version, or -1 when overtaken.
const STATE_CAS: &str = r#"
local v = tonumber(redis.call('GET', KEYS[2]) or '0')
if v ~= tonumber(ARGV[1]) then return -1 end
redis.call('SET', KEYS[1], ARGV[2])
v = v + 1
redis.call('SET', KEYS[2], v)
redis.call('PUBLISH', ARGV[3], ARGV[4])
return v
"#;

/// Takes the lease KEYS[1] for holder ARGV[1] for ARGV[2] ms, or renews it when the holder
/// already has it. Answers 1 when the holder has the lease.
const LEASE: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

pub struct RedisStore {
    conn: ConnectionManager,
    /// For the pub/sub connection of `board_state_changes` (a connection of its own).
    client: redis::Client,
    state_cas: redis::Script,
    lease: redis::Script,
    shown: String,
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn log_key(doc: &DocKey) -> String {
    format!("tafel:{{{doc}}}:log")
}

fn state_key(board: &BoardId) -> String {
    format!("tafel:board-state:{{{board}}}")
}

/// A board's snapshots (history): id → list entry, and id → encoded states.
fn history_key(board: &BoardId) -> String {
    format!("tafel:history:{{{board}}}")
}

fn history_data_key(board: &BoardId) -> String {
    format!("tafel:history-data:{{{board}}}")
}

/// How many times the board state was stored: the compare-and-set's version.
fn state_version_key(board: &BoardId) -> String {
    format!("tafel:board-state-version:{{{board}}}")
}

fn snap_key(doc: &DocKey) -> String {
    format!("tafel:{{{doc}}}:snap")
}

/// The URL without user info, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***@{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

impl RedisStore {
    /// Connects lazily: `tafel` starts even while Redis is down, answers `/readyz` with 503 and
    /// begins serving as soon as Redis answers.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(3);
        let conn =
            ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(unavailable)?;
        Ok(RedisStore {
            conn,
            client,
            state_cas: redis::Script::new(STATE_CAS),
            lease: redis::Script::new(LEASE),
            shown: redact(url),
        })
    }

    /// Every key in the Redis database that mentions `board` (for tests that prove a delete
    /// erased everything).
    pub async fn keys_mentioning(&self, board: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let mut keys: Vec<String> = conn.keys(format!("*{board}*")).await.map_err(unavailable)?;
        let in_hash: bool = conn.hexists(BOARDS_KEY, board).await.map_err(unavailable)?;
        if in_hash {
            keys.push(format!("{BOARDS_KEY}[{board}]"));
        }
        Ok(keys)
    }
}

#[async_trait]
impl Store for RedisStore {
    fn describe(&self) -> String {
        format!("redis at {}", self.shown)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn load(&self, doc: &DocKey) -> Result<StoredDoc, StoreError> {
        let mut conn = self.conn.clone();
        let (snapshot, log): (Option<Vec<u8>>, Vec<Vec<u8>>) = redis::pipe()
            .atomic()
            .get(snap_key(doc))
            .lrange(log_key(doc), 0, -1)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(StoredDoc { snapshot, log })
    }

    async fn append(&self, doc: &DocKey, updates: &[Bytes]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("RPUSH");
        cmd.arg(log_key(doc));
        for u in updates {
            cmd.arg(u.as_ref());
        }
        let _: u64 = cmd.query_async(&mut conn).await.map_err(unavailable)?;
        Ok(())
    }

    async fn compact(
        &self,
        doc: &DocKey,
        snapshot: Vec<u8>,
        covered: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let () = redis::pipe()
            .atomic()
            .set(snap_key(doc), snapshot)
            .ignore()
            .ltrim(log_key(doc), covered as isize, -1)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn put_board(&self, board: &BoardMeta) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = conn
            .hset(BOARDS_KEY, board.id.as_str(), board_to_json(board))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get_board(&self, id: &BoardId) -> Result<Option<BoardMeta>, StoreError> {
        let mut conn = self.conn.clone();
        let v: Option<Vec<u8>> = conn
            .hget(BOARDS_KEY, id.as_str())
            .await
            .map_err(unavailable)?;
        v.map(|v| board_from_json(&v)).transpose()
    }

    async fn list_boards(&self) -> Result<Vec<BoardMeta>, StoreError> {
        let mut conn = self.conn.clone();
        let all: Vec<Vec<u8>> = conn.hvals(BOARDS_KEY).await.map_err(unavailable)?;
        all.iter().map(|v| board_from_json(v)).collect()
    }

    async fn delete_board(&self, id: &BoardId) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        // Documents first, the board record last: a crash in between leaves a board whose
        // documents are empty, which a second DELETE finishes.
        for name in DocName::ALL {
            let key = DocKey::new(id.clone(), name);
            let _: i64 = conn
                .del(&[log_key(&key), snap_key(&key)])
                .await
                .map_err(unavailable)?;
        }
        // The session state (ballots, drafts, pseudonyms, audit) goes with it.
        let _: i64 = conn
            .del(&[
                state_key(id),
                state_version_key(id),
                history_key(id),
                history_data_key(id),
            ])
            .await
            .map_err(unavailable)?;
        let removed: i64 = conn
            .hdel(BOARDS_KEY, id.as_str())
            .await
            .map_err(unavailable)?;
        // Erasure: deleted values stay in the append-only file until it is rewritten. When
        // Redis keeps an AOF, start that rewrite now (RDB snapshots taken earlier are the
        // operator's to expire; see the README).
        let aof: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if aof.get(1).is_some_and(|v| v == "yes") {
            let rewrite: Result<String, _> =
                redis::cmd("BGREWRITEAOF").query_async(&mut conn).await;
            if let Err(e) = rewrite {
                tracing::warn!(board = %id, error = %e, "could not start an AOF rewrite after a board deletion; deleted values stay in the AOF until the next rewrite");
            }
        }
        Ok(removed > 0)
    }

    async fn put_board_state(&self, id: &BoardId, state: Vec<u8>) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let () = conn.set(state_key(id), state).await.map_err(unavailable)?;
        Ok(())
    }

    async fn get_board_state(&self, id: &BoardId) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.conn.clone();
        conn.get(state_key(id)).await.map_err(unavailable)
    }

    async fn put_snapshot(
        &self,
        board: &BoardId,
        id: &str,
        meta: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        // Data first: a listed snapshot always has its states.
        let () = redis::pipe()
            .atomic()
            .hset(history_data_key(board), id, data)
            .ignore()
            .hset(history_key(board), id, meta)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn list_snapshots(&self, board: &BoardId) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut conn = self.conn.clone();
        let mut all: Vec<(String, Vec<u8>)> = conn
            .hgetall(history_key(board))
            .await
            .map_err(unavailable)?;
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all.into_iter().map(|(_, v)| v).collect())
    }

    async fn get_snapshot(&self, board: &BoardId, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.conn.clone();
        conn.hget(history_data_key(board), id)
            .await
            .map_err(unavailable)
    }

    async fn delete_snapshot(&self, board: &BoardId, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let (removed, _): (i64, i64) = redis::pipe()
            .atomic()
            .hdel(history_key(board), id)
            .hdel(history_data_key(board), id)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(removed > 0)
    }

    async fn get_or_init_secret(&self, candidate: &str) -> Result<String, StoreError> {
        let mut conn = self.conn.clone();
        let _: Option<String> = redis::cmd("SET")
            .arg(SECRET_KEY)
            .arg(candidate)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let kept: Option<String> = conn.get(SECRET_KEY).await.map_err(unavailable)?;
        kept.ok_or_else(|| StoreError::Corrupt("jwt secret vanished".into()))
    }

    fn shared(&self) -> bool {
        true
    }

    async fn get_board_state_versioned(
        &self,
        id: &BoardId,
    ) -> Result<(u64, Option<Vec<u8>>), StoreError> {
        let mut conn = self.conn.clone();
        let (version, state): (Option<u64>, Option<Vec<u8>>) = redis::pipe()
            .atomic()
            .get(state_version_key(id))
            .get(state_key(id))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok((version.unwrap_or(0), state))
    }

    async fn put_board_state_if(
        &self,
        id: &BoardId,
        expected: u64,
        state: Vec<u8>,
    ) -> Result<Option<u64>, StoreError> {
        let mut conn = self.conn.clone();
        let stored: i64 = self
            .state_cas
            .key(state_key(id))
            .key(state_version_key(id))
            .arg(expected)
            .arg(state)
            .arg(STATE_CHANNEL)
            .arg(id.as_str())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(stored).ok())
    }

    async fn board_state_changes(&self) -> Option<mpsc::Receiver<StateChange>> {
        let (tx, rx) = mpsc::channel(1024);
        let client = self.client.clone();
        tokio::spawn(async move {
            let mut first = true;
            loop {
                match follow_state_channel(&client, &tx, first).await {
                    Ok(()) => return, // nobody listens any more
                    Err(e) => {
                        tracing::warn!(error = %e, "board state feed interrupted; reconnecting")
                    }
                }
                first = false;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Some(rx)
    }

    async fn lease(&self, name: &str, holder: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let held: i64 = self
            .lease
            .key(format!("tafel:lease:{name}"))
            .arg(holder)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(held == 1)
    }
}

/// Subscribes to the board state channel and forwards what it hears until the connection
/// fails (an error) or the receiver is gone (Ok). A resubscription first sends `Any`.
async fn follow_state_channel(
    client: &redis::Client,
    tx: &mpsc::Sender<StateChange>,
    first: bool,
) -> Result<(), redis::RedisError> {
    use futures_util::StreamExt;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(STATE_CHANNEL).await?;
    if !first && tx.send(StateChange::Any).await.is_err() {
        return Ok(());
    }
    let mut messages = pubsub.on_message();
    while let Some(msg) = messages.next().await {
        let change = match msg
            .get_payload::<String>()
            .ok()
            .and_then(|b| BoardId::parse(&b).ok())
        {
            Some(id) => StateChange::Stored(id),
            None => continue,
        };
        if tx.send(change).await.is_err() {
            return Ok(());
        }
    }
    Err(redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "pub/sub connection closed",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_document_as_hash_tag() {
        let k = DocKey::new(BoardId::parse("b1").unwrap(), DocName::Canvas);
        assert_eq!(log_key(&k), "tafel:{b1/canvas}:log");
        assert_eq!(snap_key(&k), "tafel:{b1/canvas}:snap");
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("redis://:pw@host:6379/0"), "redis://***@host:6379/0");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }
}
