//! Real processes for tests: `tafel serve` and `redis-server`, each on a free port with its own
//! temp folder, so tests run in parallel and can kill and restart what they started.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The secret every test server signs with.
pub const TEST_SECRET: &str = "tafel-test-secret";

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// The `tafel` binary: `$TAFEL_BIN`, or the workspace's `target/debug/tafel`.
pub fn tafel_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TAFEL_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/tafel");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p tafel-server` first (scripts/test does)",
        bin.display()
    );
    bin
}

fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn kill_hard(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A private `redis-server` with append-only persistence (fsync always), so a kill and restart
/// keeps what it acknowledged.
pub struct Redis {
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut r = Redis {
            port: free_port(),
            dir,
            child: None,
        };
        r.spawn();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The folder redis-server keeps its files (the AOF) in.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("redis.log")).expect("log file");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be on the PATH (apt-get install redis-server)");
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(10)),
            "redis-server did not start"
        );
    }

    /// SIGKILL, like a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_hard(&mut c);
        }
    }

    /// Starts again on the same port and folder.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGSTOP: Redis hangs (accepts nothing, answers nothing) until [`Redis::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `tafel serve`.
pub struct Tafel {
    pub port: u16,
    pub store: String,
    dir: TempDir,
    extra_env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Tafel {
    /// Starts on the embedded store in a fresh temp folder.
    pub fn start_embedded() -> Tafel {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = format!("file:{}", dir.path().join("data").display());
        Tafel::start_in(dir, store, &[])
    }

    pub fn start_redis(redis: &Redis) -> Tafel {
        Tafel::start_in(tempfile::tempdir().expect("temp dir"), redis.url(), &[])
    }

    /// Starts with a store URL and extra environment (e.g. `TAFEL_MAX_MESSAGE_BYTES`).
    pub fn start_with(store: &str, env: &[(&str, &str)]) -> Tafel {
        Tafel::start_in(
            tempfile::tempdir().expect("temp dir"),
            store.to_owned(),
            env,
        )
    }

    /// Starts on the embedded store with extra environment.
    pub fn start_embedded_with(env: &[(&str, &str)]) -> Tafel {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = format!("file:{}", dir.path().join("data").display());
        Tafel::start_in(dir, store, env)
    }

    fn start_in(dir: TempDir, store: String, env: &[(&str, &str)]) -> Tafel {
        let mut t = Tafel {
            port: free_port(),
            store,
            dir,
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        t.spawn();
        t
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("tafel.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let mut cmd = Command::new(tafel_bin());
        cmd.arg("serve")
            .env("TAFEL_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("TAFEL_STORE", &self.store)
            .env("TAFEL_JWT_SECRET", TEST_SECRET)
            .env("TAFEL_LOG", "info,tafel_server=debug")
            .env_remove("TAFEL_JWT_PUBLIC_KEY")
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn tafel"));
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("tafel exited at start ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("tafel did not start listening:\n{}", self.log());
    }

    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The base a `WebsocketProvider` gets: `ws://.../ws/{board}`.
    pub fn ws_base(&self, board: &str) -> String {
        format!("ws://127.0.0.1:{}/ws/{board}", self.port)
    }

    pub fn ws_url(&self, board: &str, doc: &str, token: &str) -> String {
        format!("{}/{doc}?token={token}", self.ws_base(board))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL: no chance to store anything more.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_hard(&mut c);
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("tafel is running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                kill_hard(&mut c);
                panic!("tafel did not stop within 20 s of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts again on the same port, store and folder.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for Tafel {
    fn drop(&mut self) {
        self.kill9();
    }
}
