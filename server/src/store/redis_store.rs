//! The Redis store, through the `redis` crate: one `ConnectionManager` (one multiplexed
//! connection that reconnects by itself) or, for a `redis+cluster://` URL, one cluster
//! connection; commands from all documents are pipelined on it. Each followed document gets a
//! dedicated connection of its own for its blocking `XREAD`.
//!
//! Every key of a board carries the board as its hash tag (`{B}`), so a Redis Cluster keeps a
//! board's keys on one slot and one script may span them. Key layout:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `tafel:{B}:D:log` | stream | the document's ordered log: field `u` = a log entry (writer + Yjs v1 update) |
//! | `tafel:{B}:D:snap` | hash | `id`: the log id the snapshot was taken at, `data`: the snapshot |
//! | `tafel:{B}:D:aw` | stream (capped) | presence: field `n` = node id, `p` = the node's presence on D |
//! | `tafel:boards` | hash | board id → board record (JSON) |
//! | `tafel:board-state:{B}` | string | the board's server-side session state (JSON) |
//! | `tafel:board-state-version:{B}` | string | how often that state was stored (compare-and-set) |
//! | `tafel:lease:NAME` | string | a lease (SET NX PX) held by one node, e.g. for compaction |
//!
//! | `tafel:{B}:rounds` | hash | round id → its status (`open`, `closed`, `revealed`): what votes are checked against |
//! | `tafel:{B}:round:R:ballots` | hash | `tag\|item` → dots of one participant (tag) on one item (`doc/id`) |
//! | `tafel:{B}:round:R:used` | hash | participant tag → dots used in the round (the budget counter; HLEN = voters) |
//!
//! A dot is `BALLOT`: it compares the round's status and the participant's counters with what
//! the node decided on and applies the change (HINCRBY) in one step; the board state is not
//! touched.
//!
//! The board state is changed only by `STATE_CAS` (compare the version, store, count up,
//! PUBLISH the board id on `tafel:board-state-changed`), so two nodes never both decide on the
//! same state: the one that loses reads the new state and decides again.
//! | `tafel:jwt-secret` | string | the generated HS256 secret (SET NX) |
//!
//! Older versions kept `tafel:{B/D}:log` (a list) and `tafel:{B/D}:snap` (a string); loading a
//! document that has no new keys moves those over once (see `migrate`).
//!
//! Ordering (docs/scale.md): appending is the `APPEND` script, which adds the entries only when
//! the stream's last id is still the one the node judged at, so the stream is the one order
//! every node applies; loading is the `LOAD` script, which reads the snapshot and the entries
//! after its id and the tip in one step; compaction (`COMPACT`) stores a snapshot only when it
//! is newer than the stored one and trims the entries before it (`XTRIM MINID`, keeping the
//! entry at its id, so the stream never loses its last entry).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, Script, Value};
use tafel_protocol::{BoardId, DocKey, DocName};

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{
    board_from_json, board_to_json, Appended, BallotEntry, BoardMeta, Followed, Follower,
    LoadedDoc, LogId, StateChange, Store, StoreError, StoreHooks, StoredBallot, StoredDoc,
};

const BOARDS_KEY: &str = "tafel:boards";
const SECRET_KEY: &str = "tafel:jwt-secret";
/// How long one command may take before the store counts as unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a follower's `XREAD` blocks; its connection waits this plus `RESPONSE_TIMEOUT`.
const FOLLOW_BLOCK_MS: u64 = 1000;
/// Most entries one follower read returns.
const FOLLOW_COUNT: usize = 500;
/// About how many presence messages a document's presence stream keeps.
const PRESENCE_KEEP: usize = 64;

/// The stream's last id ('0-0' when it does not exist).
const LAST_ID_LUA: &str = r#"
local function last_id(key)
  if redis.call('EXISTS', key) == 0 then return '0-0' end
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return '0-0'
end
"#;

/// KEYS[1] log; ARGV[1] the id the entries were judged at; ARGV[2..] entries.
/// Returns {1, new tip} or {0, the tip that moved}.
const APPEND_LUA: &str = r#"
local last = last_id(KEYS[1])
if last ~= ARGV[1] then return {0, last} end
for i = 2, #ARGV do
  last = redis.call('XADD', KEYS[1], '*', 'u', ARGV[i])
end
return {1, last}
"#;

/// KEYS[1] log, KEYS[2] snap. Returns {snapshot or false, snapshot id, tip, entries after it}.
const LOAD_LUA: &str = r#"
local snap = redis.call('HMGET', KEYS[2], 'id', 'data')
local from = snap[1] or '0-0'
local entries = redis.call('XRANGE', KEYS[1], '(' .. from, '+')
return {snap[2] or false, from, last_id(KEYS[1]), entries}
"#;

/// KEYS[1] log, KEYS[2] snap; ARGV[1] id, ARGV[2] snapshot. Returns 1 when stored.
const COMPACT_LUA: &str = r#"
local function parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local cur = redis.call('HGET', KEYS[2], 'id')
if cur then
  local am, as = parts(ARGV[1])
  local bm, bs = parts(cur)
  if am < bm or (am == bm and as <= bs) then return 0 end
end
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'data', ARGV[2])
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
return 1
"#;

/// KEYS[1] log, KEYS[2] snap; ARGV[1] snapshot ('' for none), ARGV[2..] entries. Writes the
/// migrated document only when it has no new keys yet (another node may have been first).
const MIGRATE_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[2], 'id', '0-0', 'data', ARGV[1]) end
for i = 2, #ARGV do redis.call('XADD', KEYS[1], '*', 'u', ARGV[i]) end
return 1
"#;

/// One Redis or one Redis Cluster, behind the same commands.
#[derive(Clone)]
enum Conn {
    One(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::One(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::One(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::One(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

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

/// Creates a round's record unless it exists. KEYS: rounds, ballots, used. ARGV: round,
/// status, then (tag, item, dots) triples. Answers 1 when it created it.
const PUT_ROUND: &str = r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
for i = 3, #ARGV, 3 do
  local n = tonumber(ARGV[i + 2])
  if n > 0 then
    redis.call('HINCRBY', KEYS[2], ARGV[i] .. '|' .. ARGV[i + 1], n)
    redis.call('HINCRBY', KEYS[3], ARGV[i], n)
  end
end
return 1
"#;

/// One ballot change, applied only while the round is open and the participant's counters are
/// what it was decided on. KEYS: rounds, ballots, used. ARGV: round, tag, item, delta, used,
/// dots on the item. Answers 1 when applied, 0 when something moved.
const BALLOT: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'open' then return 0 end
local field = ARGV[2] .. '|' .. ARGV[3]
local used = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
local on = tonumber(redis.call('HGET', KEYS[2], field) or '0')
if used ~= tonumber(ARGV[5]) or on ~= tonumber(ARGV[6]) then return 0 end
local d = tonumber(ARGV[4])
if redis.call('HINCRBY', KEYS[2], field, d) <= 0 then redis.call('HDEL', KEYS[2], field) end
if redis.call('HINCRBY', KEYS[3], ARGV[2], d) <= 0 then redis.call('HDEL', KEYS[3], ARGV[2]) end
return 1
"#;

/// Erases one participant's dots in a round. KEYS: ballots, used. ARGV: tag.
const ERASE_BALLOTS: &str = r#"
local prefix = ARGV[1] .. '|'
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, #prefix) == prefix then redis.call('HDEL', KEYS[1], f) end
end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
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
    conn: Conn,
    /// The cluster, for dedicated connections (None: one Redis, `client`).
    cluster: Option<ClusterClient>,
    /// For the pub/sub connection of `board_state_changes` (a connection of its own; on a
    /// cluster, to its first node: PUBLISH reaches every node of a cluster).
    client: redis::Client,
    state_cas: redis::Script,
    lease: redis::Script,
    put_round: Script,
    ballot: Script,
    erase_ballots: Script,
    shown: String,
    append: Script,
    load: Script,
    compact: Script,
    migrate: Script,
    hooks: Arc<StoreHooks>,
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("redis: {what}"))
}

/// `tafel:{B}:D:<what>`: a document's key, with its board as hash tag.
fn doc_key(doc: &DocKey, what: &str) -> String {
    format!("tafel:{{{}}}:{}:{what}", doc.board, doc.doc)
}

fn log_key(doc: &DocKey) -> String {
    doc_key(doc, "log")
}

fn snap_key(doc: &DocKey) -> String {
    doc_key(doc, "snap")
}

fn presence_key(doc: &DocKey) -> String {
    doc_key(doc, "aw")
}

/// The keys of versions before the board hash tag.
fn legacy_log_key(doc: &DocKey) -> String {
    format!("tafel:{{{doc}}}:log")
}

fn legacy_snap_key(doc: &DocKey) -> String {
    format!("tafel:{{{doc}}}:snap")
}

fn state_key(board: &BoardId) -> String {
    format!("tafel:board-state:{{{board}}}")
}

fn parse_id(s: &str) -> Result<LogId, StoreError> {
    LogId::parse(s).ok_or_else(|| corrupt(&format!("stream id {s:?}")))
}

/// The bytes of field `field` of a stream entry.
fn field(entry: &StreamId, field: &str) -> Option<Vec<u8>> {
    match entry.map.get(field)? {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

fn log_entries(ids: &[StreamId]) -> Result<Vec<(LogId, Vec<u8>)>, StoreError> {
    ids.iter()
        .map(|e| {
            Ok((
                parse_id(&e.id)?,
                field(e, "u").ok_or_else(|| corrupt("log entry without an update"))?,
            ))
        })
        .collect()
}

/// The board's rounds: round id → status.
fn rounds_key(board: &BoardId) -> String {
    format!("tafel:{{{board}}}:rounds")
}

/// A round's dots (`tag|item` → dots) and budget counters (`tag` → dots used).
fn ballots_key(board: &BoardId, round: &str) -> String {
    format!("tafel:{{{board}}}:round:{round}:ballots")
}

fn used_key(board: &BoardId, round: &str) -> String {
    format!("tafel:{{{board}}}:round:{round}:used")
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

/// The URL without user info, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***@{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// `redis+cluster://[user:pw@]h1:p1,h2:p2` → one `redis://[user:pw@]h:p` per node.
fn cluster_nodes(rest: &str) -> Result<Vec<String>, StoreError> {
    let (auth, hosts) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    let hosts = hosts.trim_end_matches('/');
    let nodes: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("redis://{auth}{h}"))
        .collect();
    if nodes.is_empty() {
        return Err(StoreError::BadUrl(
            "redis+cluster:// needs at least one HOST:PORT".into(),
        ));
    }
    Ok(nodes)
}

impl RedisStore {
    /// Connects lazily: `tafel` starts even while Redis is down, answers `/readyz` with 503 and
    /// begins serving as soon as Redis answers.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let (conn, cluster, client) = if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let client = ClusterClient::builder(cluster_nodes(rest)?)
                .response_timeout(RESPONSE_TIMEOUT)
                .connection_timeout(CONNECT_TIMEOUT)
                .retries(3)
                .build()
                .map_err(|e| StoreError::BadUrl(e.to_string()))?;
            let config = redis::cluster::ClusterConfig::new()
                .set_response_timeout(RESPONSE_TIMEOUT)
                .set_connection_timeout(CONNECT_TIMEOUT);
            let conn = client.get_pending_async_connection_with_config(config);
            let first = cluster_nodes(rest)?.remove(0);
            let one = redis::Client::open(first).map_err(|e| StoreError::BadUrl(e.to_string()))?;
            (Conn::Cluster(conn), Some(client), one)
        } else {
            let client = redis::Client::open(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_max_delay(Duration::from_secs(2))
                .set_number_of_retries(3);
            let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
                .map_err(unavailable)?;
            (Conn::One(conn), None, client)
        };
        let script = |body: &str| Script::new(&format!("{LAST_ID_LUA}{body}"));
        Ok(RedisStore {
            conn,
            cluster,
            client,
            state_cas: redis::Script::new(STATE_CAS),
            lease: redis::Script::new(LEASE),
            put_round: Script::new(PUT_ROUND),
            ballot: Script::new(BALLOT),
            erase_ballots: Script::new(ERASE_BALLOTS),
            shown: redact(url),
            append: script(APPEND_LUA),
            load: script(LOAD_LUA),
            compact: script(COMPACT_LUA),
            migrate: script(MIGRATE_LUA),
            hooks: StoreHooks::off(),
        })
    }

    /// Uses the `--test-hooks` store hooks (a compaction can stop before it is sent).
    pub fn with_hooks(mut self, hooks: Arc<StoreHooks>) -> Self {
        self.hooks = hooks;
        self
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

    /// A connection of its own (for a follower's blocking reads).
    async fn dedicated(&self) -> Result<Conn, StoreError> {
        let wait = Duration::from_millis(FOLLOW_BLOCK_MS) + RESPONSE_TIMEOUT;
        match &self.cluster {
            None => {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(wait))
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_number_of_retries(1);
                let conn = ConnectionManager::new_with_config(self.client.clone(), config)
                    .await
                    .map_err(unavailable)?;
                Ok(Conn::One(conn))
            }
            Some(cluster) => {
                let config = redis::cluster::ClusterConfig::new()
                    .set_response_timeout(wait)
                    .set_connection_timeout(CONNECT_TIMEOUT);
                let conn = cluster
                    .get_async_connection_with_config(config)
                    .await
                    .map_err(unavailable)?;
                Ok(Conn::Cluster(conn))
            }
        }
    }

    /// Reads the document with the `LOAD` script.
    async fn load_new(&self, doc: &DocKey) -> Result<LoadedDoc, StoreError> {
        let mut conn = self.conn.clone();
        let (snapshot, _from, tip, entries): (Option<Vec<u8>>, String, String, StreamRangeReply) =
            self.load
                .key(log_key(doc))
                .key(snap_key(doc))
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
        let (ids, log) = log_entries(&entries.ids)?.into_iter().unzip();
        Ok(LoadedDoc {
            doc: StoredDoc { snapshot, log },
            tip: parse_id(&tip)?,
            ids,
        })
    }

    /// Moves a document kept under the keys of older versions (`{B/D}`) to the board-tagged
    /// keys. Returns whether there was anything to move. The old keys live on another slot, so
    /// this is three steps: read the old keys, write the new ones unless they exist (a script:
    /// of two racing nodes one writes), delete the old ones. A crash in between leaves both,
    /// and the next load finds the new keys and only deletes the old ones.
    async fn migrate(&self, doc: &DocKey) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let (old_snap, old_log): (Option<Vec<u8>>, Vec<Vec<u8>>) = redis::pipe()
            .atomic()
            .get(legacy_snap_key(doc))
            .lrange(legacy_log_key(doc), 0, -1)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if old_snap.is_none() && old_log.is_empty() {
            return Ok(false);
        }
        let mut inv = self.migrate.key(log_key(doc));
        inv.key(snap_key(doc)).arg(old_snap.unwrap_or_default());
        for e in &old_log {
            inv.arg(e);
        }
        let moved: i64 = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
        let _: i64 = conn
            .del(&[legacy_log_key(doc), legacy_snap_key(doc)])
            .await
            .map_err(unavailable)?;
        tracing::info!(doc = %doc, moved = moved == 1, entries = old_log.len(), "migrated a document to the board-tagged keys");
        Ok(true)
    }
}

/// A document's follower on its own connection.
struct RedisFollower {
    conn: Conn,
    log: String,
    presence: String,
    /// The last presence message read (None until the first read sets it to the tip).
    presence_at: Option<String>,
}

#[async_trait]
impl Follower for RedisFollower {
    async fn next(&mut self, log: LogId) -> Result<Followed, StoreError> {
        if self.presence_at.is_none() {
            // Presence from before this node followed is stale; every node re-sends its own
            // presence every second.
            let last: Vec<StreamId> = redis::cmd("XREVRANGE")
                .arg(&self.presence)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async::<StreamRangeReply>(&mut self.conn)
                .await
                .map_err(unavailable)?
                .ids;
            self.presence_at = Some(last.first().map_or_else(|| "0-0".into(), |e| e.id.clone()));
        }
        let presence_at = self.presence_at.clone().unwrap_or_else(|| "0-0".into());
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(FOLLOW_COUNT)
            .arg("BLOCK")
            .arg(FOLLOW_BLOCK_MS)
            .arg("STREAMS")
            .arg(&self.log)
            .arg(&self.presence)
            .arg(log.to_string())
            .arg(&presence_at)
            .query_async(&mut self.conn)
            .await
            .map_err(unavailable)?;
        let mut out = Followed::default();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            if key.key == self.log {
                out.log = log_entries(&key.ids)?;
            } else {
                for e in &key.ids {
                    self.presence_at = Some(e.id.clone());
                    let node = field(e, "n").and_then(|n| String::from_utf8(n).ok());
                    if let (Some(node), Some(p)) = (node, field(e, "p")) {
                        out.presence.push((parse_id(&e.id)?, node, p));
                    }
                }
            }
        }
        Ok(out)
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
        Ok(self.load_at(doc).await?.doc)
    }

    async fn append(&self, doc: &DocKey, updates: &[Bytes]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for u in updates {
            pipe.cmd("XADD")
                .arg(log_key(doc))
                .arg("*")
                .arg("u")
                .arg(u.as_ref())
                .ignore();
        }
        let mut conn = self.conn.clone();
        let () = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        Ok(())
    }

    async fn compact(
        &self,
        doc: &DocKey,
        snapshot: Vec<u8>,
        covered: u64,
    ) -> Result<(), StoreError> {
        // The position of the `covered`-th entry after the stored snapshot.
        let mut conn = self.conn.clone();
        let from: Option<String> = conn.hget(snap_key(doc), "id").await.map_err(unavailable)?;
        let from = from.as_deref().map_or(Ok(LogId::ZERO), parse_id)?;
        let at = if covered == 0 {
            from
        } else {
            let reply: StreamRangeReply = redis::cmd("XRANGE")
                .arg(log_key(doc))
                .arg(format!("({from}"))
                .arg("+")
                .arg("COUNT")
                .arg(covered)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            reply.ids.last().map_or(Ok(from), |e| parse_id(&e.id))?
        };
        self.compact_at(doc, snapshot, at, covered).await
    }

    async fn load_at(&self, doc: &DocKey) -> Result<LoadedDoc, StoreError> {
        let loaded = self.load_new(doc).await?;
        if loaded.tip == LogId::ZERO && loaded.doc.snapshot.is_none() && self.migrate(doc).await? {
            return self.load_new(doc).await;
        }
        Ok(loaded)
    }

    async fn append_at(
        &self,
        doc: &DocKey,
        at: LogId,
        updates: &[Bytes],
    ) -> Result<Appended, StoreError> {
        if updates.is_empty() {
            return Ok(Appended::At(at));
        }
        let mut inv = self.append.key(log_key(doc));
        inv.arg(at.to_string());
        for u in updates {
            inv.arg(u.as_ref());
        }
        let mut conn = self.conn.clone();
        let (ok, tip): (i64, String) = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
        if ok == 1 {
            Ok(Appended::At(parse_id(&tip)?))
        } else {
            Ok(Appended::Moved)
        }
    }

    async fn read_after(
        &self,
        doc: &DocKey,
        after: LogId,
    ) -> Result<Vec<(LogId, Vec<u8>)>, StoreError> {
        let mut conn = self.conn.clone();
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(log_key(doc))
            .arg(format!("({after}"))
            .arg("+")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        log_entries(&reply.ids)
    }

    async fn compact_at(
        &self,
        doc: &DocKey,
        snapshot: Vec<u8>,
        at: LogId,
        _covered: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        // Test hook: stop here, the script built and nothing of it sent.
        self.hooks.compaction_midway().await;
        let _: i64 = self
            .compact
            .key(log_key(doc))
            .key(snap_key(doc))
            .arg(at.to_string())
            .arg(snapshot)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn follower(&self, doc: &DocKey) -> Result<Option<Box<dyn Follower>>, StoreError> {
        Ok(Some(Box::new(RedisFollower {
            conn: self.dedicated().await?,
            log: log_key(doc),
            presence: presence_key(doc),
            presence_at: None,
        })))
    }

    async fn publish_presence(
        &self,
        doc: &DocKey,
        node: &str,
        message: &[u8],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("XADD")
            .arg(presence_key(doc))
            .arg("MAXLEN")
            .arg("~")
            .arg(PRESENCE_KEEP)
            .arg("*")
            .arg("n")
            .arg(node)
            .arg("p")
            .arg(message)
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
                .del(&[
                    log_key(&key),
                    snap_key(&key),
                    presence_key(&key),
                    legacy_log_key(&key),
                    legacy_snap_key(&key),
                    format!("tafel:lease:compact:{{{}}}:{}", key.board, key.doc),
                ])
                .await
                .map_err(unavailable)?;
        }
        // The rounds and their ballots.
        let rounds: Vec<String> = conn.hkeys(rounds_key(id)).await.map_err(unavailable)?;
        let mut keys = vec![rounds_key(id)];
        for r in &rounds {
            keys.push(ballots_key(id, r));
            keys.push(used_key(id, r));
        }
        let _: i64 = conn.del(&keys).await.map_err(unavailable)?;
        // The session state (drafts, pseudonyms, audit) goes with it.
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

    async fn put_round(
        &self,
        board: &BoardId,
        round: &str,
        status: &str,
        ballots: &[BallotEntry],
    ) -> Result<bool, StoreError> {
        let mut inv = self.put_round.key(rounds_key(board));
        inv.key(ballots_key(board, round))
            .key(used_key(board, round))
            .arg(round)
            .arg(status);
        for (tag, item, n) in ballots {
            inv.arg(tag).arg(item).arg(*n);
        }
        let mut conn = self.conn.clone();
        let created: i64 = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
        Ok(created == 1)
    }

    async fn set_round_status(
        &self,
        board: &BoardId,
        round: &str,
        status: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = conn
            .hset(rounds_key(board), round, status)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get_ballot(
        &self,
        board: &BoardId,
        round: &str,
        tag: &str,
        items: &[String],
    ) -> Result<StoredBallot, StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hget(rounds_key(board), round)
            .hget(used_key(board, round), tag);
        let fields: Vec<String> = items.iter().map(|i| format!("{tag}|{i}")).collect();
        if !fields.is_empty() {
            pipe.cmd("HMGET")
                .arg(ballots_key(board, round))
                .arg(&fields);
        }
        let mut conn = self.conn.clone();
        let mut replies: Vec<Value> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        let dots: Vec<Option<u32>> = match replies.len() {
            3 => redis::from_redis_value(replies.pop().unwrap_or(Value::Nil))
                .map_err(|e| corrupt(&e.to_string()))?,
            _ => Vec::new(),
        };
        let mut it = replies.into_iter();
        let status: Option<String> = redis::from_redis_value(it.next().unwrap_or(Value::Nil))
            .map_err(|e| corrupt(&e.to_string()))?;
        let used: Option<u32> = redis::from_redis_value(it.next().unwrap_or(Value::Nil))
            .map_err(|e| corrupt(&e.to_string()))?;
        Ok(StoredBallot {
            status,
            dots: items
                .iter()
                .zip(dots)
                .filter_map(|(i, n)| Some((i.clone(), n.filter(|n| *n > 0)?)))
                .collect(),
            used: used.unwrap_or(0),
        })
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
        let mut conn = self.conn.clone();
        let applied: i64 = self
            .ballot
            .key(rounds_key(board))
            .key(ballots_key(board, round))
            .key(used_key(board, round))
            .arg(round)
            .arg(tag)
            .arg(item)
            .arg(delta)
            .arg(used)
            .arg(on_item)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(applied == 1)
    }

    async fn round_ballots(
        &self,
        board: &BoardId,
        round: &str,
    ) -> Result<Vec<BallotEntry>, StoreError> {
        let mut conn = self.conn.clone();
        let all: Vec<(String, u32)> = conn
            .hgetall(ballots_key(board, round))
            .await
            .map_err(unavailable)?;
        Ok(all
            .into_iter()
            .filter_map(|(field, n)| {
                let (tag, item) = field.split_once('|')?;
                Some((tag.to_owned(), item.to_owned(), n))
            })
            .collect())
    }

    async fn round_voters(
        &self,
        board: &BoardId,
        rounds: &[String],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        if rounds.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for r in rounds {
            pipe.hexists(rounds_key(board), r).hlen(used_key(board, r));
        }
        let mut conn = self.conn.clone();
        let counts: Vec<(bool, u64)> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        Ok(counts
            .into_iter()
            .map(|(known, n)| known.then_some(n))
            .collect())
    }

    async fn erase_ballots(
        &self,
        board: &BoardId,
        tag: &str,
        rounds: &[String],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        for r in rounds {
            let _: i64 = self
                .erase_ballots
                .key(ballots_key(board, r))
                .key(used_key(board, r))
                .arg(tag)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
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
    fn keys_carry_the_board_as_hash_tag() {
        let k = DocKey::new(BoardId::parse("b1").unwrap(), DocName::Canvas);
        assert_eq!(log_key(&k), "tafel:{b1}:canvas:log");
        assert_eq!(snap_key(&k), "tafel:{b1}:canvas:snap");
        assert_eq!(presence_key(&k), "tafel:{b1}:canvas:aw");
        assert_eq!(state_key(&k.board), "tafel:board-state:{b1}");
        assert_eq!(rounds_key(&k.board), "tafel:{b1}:rounds");
        assert_eq!(ballots_key(&k.board, "r1"), "tafel:{b1}:round:r1:ballots");
        assert_eq!(used_key(&k.board, "r1"), "tafel:{b1}:round:r1:used");
        assert_eq!(legacy_log_key(&k), "tafel:{b1/canvas}:log");
    }

    #[test]
    fn cluster_urls_name_every_node() {
        assert_eq!(
            cluster_nodes("h1:1,h2:2").unwrap(),
            vec!["redis://h1:1", "redis://h2:2"]
        );
        assert_eq!(
            cluster_nodes(":pw@h1:1,h2:2/").unwrap(),
            vec!["redis://:pw@h1:1", "redis://:pw@h2:2"]
        );
        assert!(cluster_nodes("").is_err());
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("redis://:pw@host:6379/0"), "redis://***@host:6379/0");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }
}
