//! Real processes for tests: `tafel serve` and `redis-server`, each with its own temp folder, so
//! tests run in parallel and can kill and restart what they started.
//!
//! `tafel serve` starts with `--listen 127.0.0.1:0` and the harness reads the address it bound
//! from its `Tafel listens on http://ADDR` line, so no port is ever picked twice; a restart binds
//! the same port again (clients reconnect to the same URL). `redis-server` cannot bind port 0 and
//! report it, so its port is picked by binding and releasing, and a start that finds the port
//! taken is retried on a new one.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The secret every test server signs with.
pub const TEST_SECRET: &str = "tafel-test-secret";

/// A port that was free a moment ago. Only for `redis-server`, which cannot report a port-0 bind;
/// [`Redis::start`] retries on another port when it lost the race.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// The `tafel` binary: `$TAFEL_BIN`, or `target/debug/tafel` under `$CARGO_TARGET_DIR` or the
/// workspace. A `TAFEL_BIN` changes what is tested, so it is said out loud (once per test binary)
/// and must name an existing file.
pub fn tafel_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TAFEL_BIN") {
        let bin = PathBuf::from(&p);
        assert!(bin.is_file(), "TAFEL_BIN={p} is not a file");
        static SAID: std::sync::Once = std::sync::Once::new();
        // Written to stderr directly: the test harness captures `eprintln!`, not this.
        SAID.call_once(|| {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "tafel-tests: testing TAFEL_BIN={p}, not the workspace build"
            );
        });
        return bin;
    }
    if std::env::var("TAFEL_TEST_BUILD").is_ok_and(|v| v == "1") {
        build_once();
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

/// `TAFEL_TEST_BUILD=1`: builds the server once per test binary before the first start, so a
/// tool that changes the source and runs the tests (cargo-mutants) tests the changed binary.
fn build_once() {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "tafel-server", "--bin", "tafel"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "TAFEL_TEST_BUILD: cargo build failed");
    });
}

/// Whether a Redis answers `PING` with `+PONG` on `port`.
fn redis_pings(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
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
        // The port was free when picked; another process may take it before redis binds it.
        for attempt in 1.. {
            match r.try_spawn() {
                Ok(()) => break,
                Err(why) if attempt < 5 => {
                    eprintln!(
                        "redis-server on port {} failed ({why}); another port",
                        r.port
                    );
                    r.port = free_port();
                }
                Err(why) => panic!("redis-server did not start: {why}"),
            }
        }
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
        if let Err(why) = self.try_spawn() {
            panic!(
                "redis-server did not start again on port {}: {why}",
                self.port
            );
        }
    }

    /// Starts redis-server on `self.port`; fails when it exits (e.g. the port is taken) or does
    /// not answer within 10 s.
    fn try_spawn(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("redis.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut child = Command::new("redis-server")
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
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("exited ({status}): {}", log.trim_end()));
            }
            // Ready is "answers PING", which only our own child can do on this port while alive.
            if redis_pings(self.port) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                kill_hard(&mut child);
                return Err("no answer to PING within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

/// A private three-master Redis Cluster: three `redis-server --cluster-enabled yes` in temp
/// folders, joined with `redis-cli --cluster create`.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    dirs: Vec<TempDir>,
    children: Vec<Child>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let mut c = RedisCluster {
            ports: Vec::new(),
            dirs: Vec::new(),
            children: Vec::new(),
        };
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                ])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be on the PATH");
            c.ports.push(port);
            c.dirs.push(dir);
            c.children.push(child);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !c.ports.iter().all(|p| redis_pings(*p)) {
            assert!(
                Instant::now() < deadline,
                "cluster nodes did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let nodes: Vec<String> = c.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli must be on the PATH");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        // Wait until every node sees the cluster as ok.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = c.ports.iter().all(|p| {
                Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "cluster", "info"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
                    .unwrap_or(false)
            });
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster never became ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// Runs `redis-cli -c -p P1 ARGS...` and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-c", "-p", &self.ports[0].to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            kill_hard(c);
        }
        let _ = &self.dirs;
    }
}

/// A running `tafel serve`.
pub struct Tafel {
    /// The port it bound (read from its log); 0 before the first start.
    pub port: u16,
    pub store: String,
    dir: TempDir,
    extra_env: Vec<(String, String)>,
    /// Extra arguments after `serve` (e.g. `--test-hooks`).
    args: Vec<String>,
    child: Option<Child>,
}

impl Tafel {
    /// Starts with `--test-hooks` (the store hooks and the panic endpoint) on `store`, or on the
    /// embedded store in a fresh temp folder when `store` is `None`.
    pub fn start_hooked(store: Option<&str>, env: &[(&str, &str)]) -> Tafel {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store
            .map(str::to_owned)
            .unwrap_or_else(|| format!("file:{}", dir.path().join("data").display()));
        Tafel::start_full(dir, store, env, &["--test-hooks"])
    }

    /// Starts with `--test-hooks` on the embedded store in `folder` (e.g. on a small tmpfs).
    pub fn start_hooked_in(folder: &Path, env: &[(&str, &str)]) -> Tafel {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = format!("file:{}", folder.display());
        Tafel::start_full(dir, store, env, &["--test-hooks"])
    }

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
        Tafel::start_full(dir, store, env, &[])
    }

    fn start_full(dir: TempDir, store: String, env: &[(&str, &str)], args: &[&str]) -> Tafel {
        let mut t = Tafel {
            port: 0,
            store,
            dir,
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            args: args.iter().map(|a| a.to_string()).collect(),
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

    /// Starts `tafel serve` on `self.port` (0 on the first start: the kernel picks) and waits for
    /// the `Tafel listens on http://ADDR` line it prints once it is bound (and the sign-in line
    /// after it), while checking that the child is still alive.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        // Only lines after this offset belong to this start (a restart appends to the log).
        let from = log.metadata().map(|m| m.len() as usize).unwrap_or(0);
        let mut cmd = Command::new(tafel_bin());
        cmd.arg("serve")
            .args(&self.args)
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
        let mut child = cmd.spawn().expect("spawn tafel");
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("tafel exited at start ({status}):\n{}", self.log());
            }
            let log = self.log();
            let this_start = log.get(from..).unwrap_or("");
            // The sign-in line is printed last, just before serving: once it is there, every
            // start-up line is (tests read them).
            if let (Some(port), true) = (
                listening_port(this_start),
                this_start.contains("\nFacilitator sign-in"),
            ) {
                assert!(
                    self.port == 0 || self.port == port,
                    "tafel bound {port}, asked for {}",
                    self.port
                );
                self.port = port;
                self.child = Some(child);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        kill_hard(&mut child);
        panic!(
            "tafel did not report its address within 40 s:\n{}",
            self.log()
        );
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
        self.stop_with("-TERM")
    }

    /// SIGINT (Ctrl-C), then waits for the exit status.
    pub fn interrupt(&mut self) -> ExitStatus {
        self.stop_with("-INT")
    }

    fn stop_with(&mut self, signal: &str) -> ExitStatus {
        let mut c = self.child.take().expect("tafel is running");
        let _ = Command::new("kill")
            .args([signal, &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                kill_hard(&mut c);
                panic!(
                    "tafel did not stop within 20 s of {signal}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `tafel serve` with `env` on the embedded store, expecting it to refuse to start:
    /// returns its exit status and everything it printed. Panics if it serves instead.
    pub fn start_refused(env: &[(&str, &str)]) -> (ExitStatus, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(tafel_bin());
        cmd.arg("serve")
            .env("TAFEL_LISTEN", "127.0.0.1:0")
            .env(
                "TAFEL_STORE",
                format!("file:{}", dir.path().join("data").display()),
            )
            .env("TAFEL_JWT_SECRET", TEST_SECRET)
            .env_remove("TAFEL_JWT_PUBLIC_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn tafel");
        let deadline = Instant::now() + Duration::from_secs(40);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                kill_hard(&mut child);
                panic!("tafel started although it should have refused to");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("tafel output");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            listening_port(&text).is_none(),
            "tafel listened before it exited:\n{text}"
        );
        (out.status, text)
    }

    /// Starts again on the same port (so clients reconnect to the same URL), store and folder.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

/// The port in the first `Tafel listens on http://127.0.0.1:PORT` line of `log`.
pub fn listening_port(log: &str) -> Option<u16> {
    log.lines().find_map(|l| {
        l.strip_prefix("Tafel listens on http://")?
            .rsplit(':')
            .next()?
            .trim()
            .parse()
            .ok()
    })
}

impl Drop for Tafel {
    fn drop(&mut self) {
        self.kill9();
    }
}
