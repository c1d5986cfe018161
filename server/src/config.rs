//! Command line and environment (clap), and the `Config` struct the server runs with. Every
//! bound the server enforces is a named field here, with its default.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Most updates one document actor stores and forwards as one batch; each connection's
/// outgoing queue holds at least two batches.
pub const MAX_BATCH: usize = 64;

#[derive(Debug, Parser)]
#[command(
    name = "tafel",
    version,
    about = "Tafel: the live, shared workshop board for DI agreements in the cao"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Print a signed token.
    Token(TokenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where HTTP and WebSocket are served.
    #[arg(long, env = "TAFEL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// file:PATH (embedded store in a folder), redis://HOST:PORT[/DB] or rediss://...
    #[arg(long, env = "TAFEL_STORE", default_value = "file:./tafel-data")]
    pub store: String,
    /// HS256 secret. When unset, one is generated, kept in the store and reused.
    #[arg(long, env = "TAFEL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Also accept tokens signed by an outside issuer (RS256, ES256 or EdDSA public key, PEM).
    #[arg(long, env = "TAFEL_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<String>,
    /// Log filter (tracing's EnvFilter syntax).
    #[arg(long, env = "TAFEL_LOG", default_value = "info")]
    pub log: String,
    /// Largest WebSocket message accepted, in bytes; larger ones close the connection with 1009.
    #[arg(long, env = "TAFEL_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Frames that may wait for one slow client before it is disconnected (close 4508); at least 128.
    #[arg(long, env = "TAFEL_OUTGOING_QUEUE", default_value_t = 1024)]
    pub outgoing_queue: usize,
    /// Bytes that may wait for one slow client before it is disconnected (close 4508); one
    /// frame always fits, however large (a big document's first sync).
    #[arg(long, env = "TAFEL_OUTGOING_QUEUE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub outgoing_queue_bytes: usize,
    /// Seconds a document stays in memory after its last connection leaves.
    #[arg(long, env = "TAFEL_IDLE_EVICT_SECS", default_value_t = 30)]
    pub idle_evict_secs: u64,
    /// Seconds between keepalive pings; a client silent for three intervals is closed.
    #[arg(long, env = "TAFEL_PING_SECS", default_value_t = 20)]
    pub ping_secs: u64,
    /// Compact a document's log into its snapshot after this many updates...
    #[arg(long, env = "TAFEL_COMPACT_UPDATES", default_value_t = 500)]
    pub compact_updates: u64,
    /// ...or after this many bytes of updates, whichever comes first.
    #[arg(long, env = "TAFEL_COMPACT_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub compact_bytes: u64,
    /// The built web client (index.html and assets), served at `/`.
    #[arg(long, env = "TAFEL_WEB_DIR", default_value = "web-client/dist")]
    pub web_dir: std::path::PathBuf,
    /// A folder of extra board templates (*.json), loaded and validated at start.
    #[arg(long, env = "TAFEL_TEMPLATES")]
    pub templates: Option<std::path::PathBuf>,
    /// Most simultaneous WebSocket connections; more are refused with 503.
    #[arg(long, env = "TAFEL_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Largest single Yjs update accepted, in bytes; larger ones are refused (`update-too-large`).
    #[arg(long, env = "TAFEL_MAX_UPDATE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_update_bytes: usize,
    /// Largest document (snapshot plus log), in bytes; updates beyond it are refused
    /// (`document-too-large`).
    #[arg(long, env = "TAFEL_MAX_DOC_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub max_doc_bytes: u64,
    /// Most levels of nested shared types in free-form content (party workspaces); deeper ones
    /// are refused (`too-deep`).
    #[arg(long, env = "TAFEL_MAX_DEPTH", default_value_t = 16)]
    pub max_depth: u16,
    /// Most WebSocket messages one connection may send per second (sustained; bursts of twice
    /// as many pass); more close it with 4529.
    #[arg(long, env = "TAFEL_MAX_MESSAGES_PER_SEC", default_value_t = 1000)]
    pub max_messages_per_sec: u32,
    /// Most bytes one connection may send per second (sustained; a burst of one largest message
    /// always passes); more close it with 4529.
    #[arg(long, env = "TAFEL_MAX_BYTES_PER_SEC", default_value_t = 8 * 1024 * 1024)]
    pub max_bytes_per_sec: u64,
    /// Test-only endpoints (e.g. making a document's actor panic). Never in production.
    #[arg(long, hide = true)]
    pub test_hooks: bool,
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    #[arg(long)]
    pub board: String,
    #[arg(long)]
    pub role: String,
    #[arg(long)]
    pub name: String,
    /// Participant id; a random one when unset.
    #[arg(long)]
    pub sub: Option<String>,
    #[arg(long, default_value = "8h")]
    pub ttl: String,
    #[arg(long, env = "TAFEL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
}

/// What `run` needs, with the bounds named.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: String,
    pub jwt_secret: Option<String>,
    pub jwt_public_key: Option<String>,
    pub max_message_bytes: usize,
    pub outgoing_queue: usize,
    pub outgoing_queue_bytes: usize,
    pub idle_evict: Duration,
    pub ping_interval: Duration,
    pub compact_updates: u64,
    pub compact_bytes: u64,
    pub max_connections: usize,
    pub templates: Option<std::path::PathBuf>,
    pub web_dir: Option<std::path::PathBuf>,
    /// Limits the update judge applies.
    pub limits: tafel_protocol::judge::Limits,
    /// Per-connection rates: messages and bytes per second.
    pub max_messages_per_sec: u32,
    pub max_bytes_per_sec: u64,
    pub test_hooks: bool,
}

impl From<&ServeArgs> for Config {
    fn from(a: &ServeArgs) -> Self {
        Config {
            store: a.store.clone(),
            jwt_secret: a.jwt_secret.clone().filter(|s| !s.is_empty()),
            jwt_public_key: a.jwt_public_key.clone().filter(|s| !s.is_empty()),
            max_message_bytes: a.max_message_bytes,
            outgoing_queue: a.outgoing_queue.max(2 * MAX_BATCH),
            outgoing_queue_bytes: a.outgoing_queue_bytes.max(64 * 1024),
            idle_evict: Duration::from_secs(a.idle_evict_secs),
            ping_interval: Duration::from_secs(a.ping_secs.max(1)),
            compact_updates: a.compact_updates.max(1),
            compact_bytes: a.compact_bytes.max(1),
            max_connections: a.max_connections.max(1),
            templates: a.templates.clone(),
            web_dir: Some(a.web_dir.clone()),
            limits: tafel_protocol::judge::Limits {
                max_update_bytes: a.max_update_bytes.max(1024),
                max_doc_bytes: a.max_doc_bytes.max(1024),
                max_depth: a.max_depth.clamp(1, 64),
            },
            max_messages_per_sec: a.max_messages_per_sec.max(1),
            max_bytes_per_sec: a.max_bytes_per_sec.max(1024),
            test_hooks: a.test_hooks,
        }
    }
}
