//! Load generator for any y-websocket server: runs the scenarios S1–S6 of issue 9 against a URL,
//! counts deliveries, measures latency percentiles, the server's CPU and RSS (from
//! `/proc/<pid>`) and its own CPU, and appends one JSON line per scenario to a results file;
//! `loadgen report` turns such a file into the markdown table of `docs/benchmarks.md`.
//!
//! Clients behave like the npm `y-websocket` provider: they answer the server's sync step 1 and
//! re-send every awareness entry they receive with a newer clock (its `awareness.on('update')`
//! handler). They answer only the first sync step 1 of a connection (the server's): against a
//! relay, answering every peer's would make each join an N² storm.
//!
//! Edits carry a marker `~LG<seq>:<micros>~` in the text they insert, presence states a field
//! `"lg":"<seq>:<micros>"`; a receiver finds the markers in the frames it gets, so the same code
//! measures a relay (which forwards bytes) and a CRDT server (which may merge or re-encode).
//!
//! Tafel (`--tafel http://HOST:PORT`, secret in `TAFEL_JWT_SECRET`): each room is a board made
//! through the API, every client connects to its `canvas` with a token of its own (writers as
//! employers, readers as observers), and each writer edits a card of its own in `bouwstenen` —
//! the real update path with the judge, the store and the stamping. Elsewhere a room is the URL
//! plus `/<room>`.
//!
//! Several nodes (`--tafel http://A,http://B,...`, or `--url ws://A,ws://B` for plain servers):
//! the boards are made on the first, and clients are spread over all of them round robin, in the
//! order they connect, so the people of one board sit on different nodes (Tafel on one Redis).

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tafel_protocol::Role;
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Doc, Map, MapPrelim, ReadTxn, StateVector, Text, TextPrelim, Transact};

#[derive(Parser)]
#[command(about = "y-websocket load generator (issue 9 scenarios)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs scenarios against one server and appends JSON lines to --out.
    Run(RunArgs),
    /// Writes the markdown table for a results file (stdout).
    Report { results: std::path::PathBuf },
    /// Writes the table of S2 runs over one or several nodes (stdout): latency, deliveries and
    /// the CPU of every node and of Redis (the last pid of a run is its Redis).
    ReportNodes { results: std::path::PathBuf },
}

#[derive(Parser, Clone)]
struct RunArgs {
    /// The server's label in the table (e.g. "relay", "Tafel (Redis)").
    #[arg(long)]
    label: String,
    /// WebSocket base URL; a room is `<url>/<room>` (ignored with --tafel). Several, comma
    /// separated: clients are spread over them round robin.
    #[arg(long, value_delimiter = ',', default_value = "ws://127.0.0.1:1234")]
    url: Vec<String>,
    /// Tafel's HTTP base: rooms become boards, clients get tokens (TAFEL_JWT_SECRET). Several
    /// nodes, comma separated: boards are made on the first, clients spread round robin.
    #[arg(long, value_delimiter = ',')]
    tafel: Vec<String>,
    /// Server processes whose CPU and RSS are measured (summed), e.g. Tafel and its Redis.
    #[arg(long, value_delimiter = ',')]
    pid: Vec<u32>,
    /// Scenarios to run, e.g. S1,S3.
    #[arg(long, value_delimiter = ',', default_value = "S1,S2,S3,S4,S5,S6")]
    scenarios: Vec<String>,
    /// Scales every client count and document size (0.01 for a smoke run).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Seconds of measured load per scenario (per step in S5).
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// The server keeps no state (a relay): do not wait for its sync step 2; skip S4.
    #[arg(long)]
    stateless: bool,
    /// Results file (JSON lines, appended).
    #[arg(long, default_value = "bench-results.jsonl")]
    out: std::path::PathBuf,
}

// ---------------------------------------------------------------- clocks and /proc

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn micros() -> u64 {
    start().elapsed().as_micros() as u64
}

fn ticks_per_sec() -> f64 {
    100.0 // USER_HZ on Linux
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / ticks_per_sec()
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Server CPU (summed over pids) and the generator's own, over a window; RSS sampled every
/// 100 ms for the peak.
struct Meter {
    pids: Vec<u32>,
    t0: Instant,
    /// CPU seconds of each pid at the start.
    cpu0: Vec<f64>,
    own0: f64,
    peak: Arc<AtomicU64>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Meter {
    fn start(pids: &[u32]) -> Meter {
        let peak = Arc::new(AtomicU64::new(0));
        let (p, ps) = (peak.clone(), pids.to_vec());
        let sampler = tokio::spawn(async move {
            loop {
                let rss: u64 = ps.iter().map(|&pid| rss_bytes(pid)).sum();
                p.fetch_max(rss, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Meter {
            pids: pids.to_vec(),
            t0: Instant::now(),
            cpu0: pids.iter().map(|p| cpu_secs(&p.to_string())).collect(),
            own0: cpu_secs("self"),
            peak,
            sampler,
        }
    }
    fn rss(&self) -> u64 {
        self.pids.iter().map(|&pid| rss_bytes(pid)).sum()
    }
    /// Server CPU (summed), own CPU, peak RSS, RSS now, and each pid's CPU; CPU in % of one core.
    fn stop(self) -> Metered {
        self.sampler.abort();
        let wall = self.t0.elapsed().as_secs_f64().max(1e-3);
        let by_pid: Vec<f64> = self
            .pids
            .iter()
            .zip(&self.cpu0)
            .map(|(p, c0)| (cpu_secs(&p.to_string()) - c0) / wall * 100.0)
            .collect();
        let own = (cpu_secs("self") - self.own0) / wall * 100.0;
        let now = self.rss();
        let peak = self.peak.load(Ordering::Relaxed).max(now);
        Metered(by_pid.iter().sum(), own, peak, now, by_pid)
    }
}

/// What a `Meter` measured: server CPU % (all pids), own CPU %, peak RSS, RSS now, CPU % per pid.
struct Metered(f64, f64, u64, u64, Vec<f64>);

// ---------------------------------------------------------------- rooms and URLs

/// Where clients connect: plain `<url>/<room>`, or Tafel boards with tokens; with several
/// URLs (nodes), each client on the next one.
struct Target {
    urls: Vec<String>,
    /// Tafel's HTTP bases (one per node) and the JWT secret.
    tafel: Option<(Vec<String>, String)>,
    boards: Mutex<HashMap<String, String>>,
    /// The next client's node (round robin).
    next: std::sync::atomic::AtomicUsize,
}

impl Target {
    fn new(a: &RunArgs) -> Target {
        let secret = std::env::var("TAFEL_JWT_SECRET").unwrap_or_default();
        let trim = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty())
                .collect()
        };
        let tafel = trim(&a.tafel);
        Target {
            urls: trim(&a.url),
            tafel: (!tafel.is_empty()).then_some((tafel, secret)),
            boards: Mutex::new(HashMap::new()),
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// How many nodes the clients are spread over.
    fn nodes(&self) -> usize {
        match &self.tafel {
            Some((https, _)) => https.len(),
            None => self.urls.len(),
        }
    }

    /// The node the next client connects to.
    fn pick<'a>(&self, of: &'a [String]) -> &'a str {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &of[i % of.len().max(1)]
    }

    /// Makes the room exist (a Tafel board, made on the first node); idempotent.
    async fn room(&self, room: &str) {
        let Some((https, secret)) = &self.tafel else {
            return;
        };
        let http = &https[0];
        if self.boards.lock().expect("lock").contains_key(room) {
            return;
        }
        let fac = tafel_tests::api::sign_with(
            secret,
            &tafel_tests::api::claims(Role::Facilitator, "*", "loadgen", 36_000),
        );
        let res = reqwest::Client::new()
            .post(format!("{http}/api/boards"))
            .bearer_auth(fac)
            .json(&json!({"title": room, "template": "cao-di-organisatie"}))
            .send()
            .await
            .expect("POST /api/boards");
        let v: Value = res.json().await.expect("board json");
        let id = v["id"].as_str().expect("board id").to_owned();
        self.boards
            .lock()
            .expect("lock")
            .insert(room.to_owned(), id);
    }

    /// The URL for client `who` in `room`; writers may write.
    fn client_url(&self, room: &str, who: &str, writer: bool) -> String {
        match &self.tafel {
            None => format!("{}/{room}", self.pick(&self.urls)),
            Some((https, secret)) => {
                let http = self.pick(https);
                let board = self.boards.lock().expect("lock")[room].clone();
                let role = if writer {
                    Role::Employer
                } else {
                    Role::Observer
                };
                let tok = tafel_tests::api::sign_with(
                    secret,
                    &tafel_tests::api::claims(role, &board, who, 36_000),
                );
                let ws = http.replacen("http", "ws", 1);
                format!("{ws}/ws/{board}/canvas?token={tok}")
            }
        }
    }
}

// ---------------------------------------------------------------- one client

/// What a client saw: edit and presence latencies (µs) and the markers it counted.
#[derive(Default)]
struct Rec {
    edit_lat: Vec<u32>,
    edits_seen: std::collections::HashSet<u64>,
    presence_lat: Vec<u32>,
    /// Highest presence clock seen per sender id.
    presence_max: HashMap<u64, u32>,
    synced_at: Option<Instant>,
    sync_bytes: usize,
    closed: Option<String>,
    frames: u64,
}

enum Out {
    Frame(Vec<u8>),
}

struct Client {
    rec: Arc<Mutex<Rec>>,
    out: mpsc::UnboundedSender<Out>,
    doc: Doc,
    card: String,
    seq_base: u64,
    presence_id: u64,
    presence_clock: u32,
}

fn frame(msg: Message) -> Vec<u8> {
    msg.encode_v1()
}

/// Finds `~LG<seq>:<micros>~` markers in a frame.
fn markers(bytes: &[u8], mut f: impl FnMut(u64, u64)) {
    let mut i = 0;
    while i + 3 < bytes.len() {
        if &bytes[i..i + 3] == b"~LG" {
            let mut j = i + 3;
            let num = |j: &mut usize| {
                let mut v = 0u64;
                while *j < bytes.len() && bytes[*j].is_ascii_digit() {
                    v = v * 10 + u64::from(bytes[*j] - b'0');
                    *j += 1;
                }
                v
            };
            let seq = num(&mut j);
            if j < bytes.len() && bytes[j] == b':' {
                j += 1;
                let t = num(&mut j);
                f(seq, t);
            }
            i = j;
        } else {
            i += 1;
        }
    }
}

/// Handles one incoming frame like the npm provider; returns frames to send back.
fn on_frame(
    bytes: &[u8],
    rec: &Mutex<Rec>,
    states: &mut HashMap<u64, (u32, Arc<str>)>,
    answered_step1: &mut bool,
    scan: bool,
    own_seq: u64,
) -> Vec<Vec<u8>> {
    let mut back = Vec::new();
    let now = micros();
    rec.lock().expect("rec").frames += 1;
    match (bytes.first(), bytes.get(1)) {
        (Some(0), Some(0)) if !*answered_step1 => {
            *answered_step1 = true;
            let empty = Doc::new()
                .transact()
                .encode_state_as_update_v1(&StateVector::default());
            back.push(frame(Message::Sync(SyncMessage::SyncStep2(empty))));
        }
        (Some(0), Some(0)) => {}
        (Some(0), Some(sub @ (1 | 2))) => {
            let mut r = rec.lock().expect("rec");
            if *sub == 1 && r.synced_at.is_none() {
                r.synced_at = Some(Instant::now());
                r.sync_bytes = bytes.len();
            }
            if scan {
                markers(bytes, |seq, t| {
                    // A server that echoes the sender's own edits (y-websocket does): not counted.
                    if seq >> 24 != own_seq >> 24 && r.edits_seen.insert(seq) {
                        r.edit_lat.push(now.saturating_sub(t) as u32);
                    }
                });
            }
        }
        (Some(1), _) => {
            let Ok(Message::Awareness(update)) = Message::decode_v1(bytes) else {
                return back;
            };
            let mut changed = AwarenessUpdate {
                clients: HashMap::new(),
            };
            let mut r = rec.lock().expect("rec");
            for (id, entry) in update.clients {
                let cur = states.get(&id.get()).map(|s| s.0);
                if cur.is_some_and(|c| c >= entry.clock) {
                    continue; // stale: the npm client ignores it (and does not re-send it)
                }
                if let Some(pos) = entry.json.find("\"lg\":\"") {
                    let v = &entry.json[pos + 6..];
                    if let Some(t) = v
                        .split_once(':')
                        .and_then(|(_, t)| t.split('"').next()?.parse::<u64>().ok())
                    {
                        r.presence_lat.push(now.saturating_sub(t) as u32);
                    }
                }
                let m = r.presence_max.entry(id.get()).or_insert(0);
                *m = (*m).max(entry.clock);
                states.insert(id.get(), (entry.clock, entry.json.clone()));
                changed.clients.insert(id, entry);
            }
            if !changed.clients.is_empty() {
                back.push(frame(Message::Awareness(changed)));
            }
        }
        _ => {}
    }
    back
}

impl Client {
    async fn connect(
        url: &str,
        card: Option<String>,
        seq_base: u64,
        presence_id: u64,
        scan: bool,
        stateless: bool,
    ) -> Option<Client> {
        let config = WebSocketConfig::default().max_message_size(Some(256 << 20));
        let mut attempt = 0;
        let ws = loop {
            match tokio_tungstenite::connect_async_with_config(url, Some(config), true).await {
                Ok((ws, _)) => break ws,
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    eprintln!("connect retry {attempt}: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    eprintln!("connect failed: {e}");
                    return None;
                }
            }
        };
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Out>();
        let rec = Arc::new(Mutex::new(Rec::default()));
        let doc = Doc::with_client_id(seq_base.max(1) & ((1 << 53) - 1));
        // Against a relay there is nobody to sync with but the peers (see the module doc).
        if !stateless {
            let step1 = frame(Message::Sync(
                SyncMessage::SyncStep1(StateVector::default()),
            ));
            let _ = out.send(Out::Frame(step1));
        }
        tokio::spawn(async move {
            while let Some(Out::Frame(f)) = out_rx.recv().await {
                if sink.feed(WsMessage::Binary(f.into())).await.is_err() {
                    break;
                }
                while let Ok(Out::Frame(f)) = out_rx.try_recv() {
                    if sink.feed(WsMessage::Binary(f.into())).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let (r, o) = (rec.clone(), out.clone());
        tokio::spawn(async move {
            let mut states = HashMap::new();
            let mut answered = stateless;
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(WsMessage::Binary(b)) => {
                        for f in on_frame(&b, &r, &mut states, &mut answered, scan, seq_base) {
                            let _ = o.send(Out::Frame(f));
                        }
                    }
                    Ok(WsMessage::Close(c)) => {
                        r.lock().expect("rec").closed = Some(
                            c.map(|c| format!("{} {}", c.code, c.reason))
                                .unwrap_or_default(),
                        );
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        r.lock().expect("rec").closed = Some(e.to_string());
                        break;
                    }
                }
            }
        });
        let card = card.unwrap_or_default();
        let c = Client {
            rec,
            out,
            doc,
            card,
            seq_base,
            presence_id,
            presence_clock: 0,
        };
        Some(c)
    }

    fn send(&self, f: Vec<u8>) {
        let _ = self.out.send(Out::Frame(f));
    }

    /// Creates the writer's card in `bouwstenen` (one update, as the schema asks).
    fn create_card(&self) {
        let cards = self.doc.get_or_insert_map("cards");
        let mut txn = self.doc.transact_mut();
        let card = cards.insert(
            &mut txn,
            self.card.as_str(),
            MapPrelim::from([("section".to_owned(), yrs::In::from("bouwstenen"))]),
        );
        card.insert(&mut txn, "text", TextPrelim::new(""));
        let u = txn.encode_update_v1();
        drop(txn);
        self.send(frame(Message::Sync(SyncMessage::Update(u))));
    }

    /// Appends `s` to the card's text (at `at` when given) and sends the update.
    fn edit(&self, s: &str, at: Option<u32>) {
        let cards = self.doc.get_or_insert_map("cards");
        let mut txn = self.doc.transact_mut();
        let Some(yrs::Out::YMap(card)) = cards.get(&txn, self.card.as_str()) else {
            return;
        };
        let Some(yrs::Out::YText(text)) = card.get(&txn, "text") else {
            return;
        };
        let len = text.len(&txn);
        text.insert(&mut txn, at.map_or(len, |a| a.min(len)), s);
        let u = txn.encode_update_v1();
        drop(txn);
        self.send(frame(Message::Sync(SyncMessage::Update(u))));
    }

    fn edit_marked(&self, n: u64) {
        self.edit(&format!("~LG{}:{}~", self.seq_base + n, micros()), None);
    }

    fn presence(&mut self) {
        self.presence_clock += 1;
        let json = format!(
            r##"{{"user":{{"name":"u{}","color":"#30bced"}},"lg":"{}:{}"}}"##,
            self.presence_id,
            self.presence_clock,
            micros()
        );
        let mut clients = HashMap::new();
        clients.insert(
            ClientID::new(self.presence_id),
            AwarenessUpdateEntry {
                clock: self.presence_clock,
                json: json.into(),
            },
        );
        self.send(frame(Message::Awareness(AwarenessUpdate { clients })));
    }

    fn synced(&self) -> bool {
        self.rec.lock().expect("rec").synced_at.is_some()
    }
}

/// Connects `n` clients to `room` with at most 256 handshakes at once; waits for each sync.
#[allow(clippy::too_many_arguments)]
async fn connect_many(
    t: &Arc<Target>,
    room: &str,
    n: usize,
    writer: bool,
    id_base: u64,
    stateless: bool,
    scan: bool,
    gate: &Arc<Semaphore>,
) -> Vec<Client> {
    t.room(room).await;
    let mut tasks = Vec::new();
    for i in 0..n {
        let (t, room, gate) = (t.clone(), room.to_owned(), gate.clone());
        let id = id_base + i as u64;
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            let url = t.client_url(&room, &format!("lg{id}"), writer);
            let card = writer.then(|| format!("lg{id}"));
            let c = Client::connect(&url, card, id << 24, id, scan, stateless).await?;
            if !stateless {
                let deadline = Instant::now() + Duration::from_secs(120);
                while !c.synced() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Some(c)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        if let Ok(Some(c)) = t.await {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------- figures

fn pct(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    f64::from(v[i]) / 1000.0
}

/// Latency percentiles (ms) of all clients' samples.
fn lat(samples: Vec<u32>) -> Value {
    let mut s = samples;
    json!({
        "n": s.len(),
        "p50": pct(&mut s, 0.5), "p90": pct(&mut s, 0.9),
        "p99": pct(&mut s, 0.99), "max": pct(&mut s, 1.0),
    })
}

fn edit_figures(clients: &[Client], expected: usize) -> (Value, f64) {
    let mut all = Vec::new();
    let mut seen = 0usize;
    for c in clients {
        let mut r = c.rec.lock().expect("rec");
        seen += r.edits_seen.len();
        all.append(&mut r.edit_lat);
    }
    let delivered = if expected == 0 {
        100.0
    } else {
        seen as f64 / expected as f64 * 100.0
    };
    (lat(all), delivered)
}

fn meter_json(m: Metered) -> Value {
    json!({"cpu": m.0, "own_cpu": m.1, "peak_rss": m.2, "rss": m.3, "cpu_by_pid": m.4})
}

fn n(scale: f64, full: usize) -> usize {
    ((full as f64 * scale).round() as usize).max(1)
}

/// Waits until every client has seen `want` edits (or `max` passes).
async fn settle(clients: &[Client], want: usize, max: Duration) {
    let deadline = Instant::now() + max;
    while Instant::now() < deadline {
        if clients
            .iter()
            .all(|c| c.rec.lock().expect("rec").edits_seen.len() >= want)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the clients received nothing for 300 ms (at most 30 s): the joins' traffic is
/// over before the measured load starts.
async fn quiet(groups: &[&[Client]]) {
    let total = || -> u64 {
        groups
            .iter()
            .flat_map(|g| g.iter())
            .map(|c| c.rec.lock().expect("rec").frames)
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = total();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = total();
        if now == last {
            return;
        }
        last = now;
    }
}

// ---------------------------------------------------------------- scenarios

struct Ctx {
    a: RunArgs,
    t: Arc<Target>,
    gate: Arc<Semaphore>,
    /// Distinguishes rooms of repeated runs on one server.
    tag: String,
}

impl Ctx {
    fn room(&self, name: &str) -> String {
        format!("{}-{name}", self.tag)
    }
}

/// S1: one writer, many observers, 10 edits/s.
async fn s1(c: &Ctx) -> Value {
    let obs_n = n(c.a.scale, 1500);
    let room = c.room("s1");
    let observers = connect_many(
        &c.t,
        &room,
        obs_n,
        false,
        1000,
        c.a.stateless,
        true,
        &c.gate,
    )
    .await;
    let writer = connect_many(&c.t, &room, 1, true, 1, c.a.stateless, true, &c.gate).await;
    let Some(w) = writer.first() else {
        return json!({"error": "writer did not connect"});
    };
    w.create_card();
    tokio::time::sleep(Duration::from_millis(500)).await;
    quiet(&[&observers, &writer]).await;
    let m = Meter::start(&c.a.pid);
    let edits = 10 * c.a.secs as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for i in 0..edits {
        tick.tick().await;
        w.edit_marked(i as u64);
    }
    settle(&observers, edits, Duration::from_secs(10)).await;
    let meter = m.stop();
    let (l, delivered) = edit_figures(&observers, edits * observers.len());
    json!({"observers": observers.len(), "edits": edits, "latency": l,
           "delivered": delivered, "meter": meter_json(meter)})
}

/// S2: boards × people, each person 1 edit/s and 1 presence update/s.
async fn s2(c: &Ctx) -> Value {
    let boards = n(c.a.scale, 50);
    let people = 20;
    let mut rooms = Vec::new();
    for b in 0..boards {
        let room = c.room(&format!("s2-{b}"));
        let cs = connect_many(
            &c.t,
            &room,
            people,
            true,
            10_000 + (b * people) as u64,
            c.a.stateless,
            true,
            &c.gate,
        )
        .await;
        for cl in &cs {
            cl.create_card();
        }
        rooms.push(cs);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let groups: Vec<&[Client]> = rooms.iter().map(|r| &r[..]).collect();
    quiet(&groups).await;
    let m = Meter::start(&c.a.pid);
    let secs = c.a.secs;
    // Spread the people over the second: one tick per 10 ms, each person once per 100 ticks.
    let mut all: Vec<&mut Client> = rooms.iter_mut().flatten().collect();
    let total = all.len();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for k in 0..(secs as usize * 100) {
        tick.tick().await;
        let second = (k / 100) as u64;
        for (i, cl) in all.iter_mut().enumerate() {
            if i * 100 / total.max(1) == k % 100 {
                cl.edit_marked(second);
                cl.presence();
            }
        }
    }
    let flat: Vec<&Client> = rooms.iter().flatten().collect();
    // Each person should see every other person's edits on their board.
    let want = (people - 1) * secs as usize;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && !flat
            .iter()
            .all(|c| c.rec.lock().expect("rec").edits_seen.len() >= want)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let meter = m.stop();
    let expected = flat.len() * want;
    let mut lats = Vec::new();
    let mut seen = 0;
    for cl in &flat {
        let mut r = cl.rec.lock().expect("rec");
        seen += r.edits_seen.len();
        lats.append(&mut r.edit_lat);
    }
    json!({"boards": boards, "people": people, "latency": lat(lats),
           "delivered": seen as f64 / expected.max(1) as f64 * 100.0, "meter": meter_json(meter)})
}

/// S3: idle connections on many docs; RSS per connection.
async fn s3(c: &Ctx) -> Value {
    let docs = n(c.a.scale, 1000);
    for d in 0..docs {
        c.t.room(&c.room(&format!("s3-{d}"))).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pids = &c.a.pid;
    let before: u64 = pids.iter().map(|&p| rss_bytes(p)).sum();
    let m = Meter::start(pids);
    let mut held = Vec::new();
    for d in 0..docs {
        let room = c.room(&format!("s3-{d}"));
        // Every tenth client of a document a writer (Tafel: employer), the rest observers.
        held.extend(
            connect_many(
                &c.t,
                &room,
                1,
                true,
                100_000 + d as u64 * 10,
                c.a.stateless,
                false,
                &c.gate,
            )
            .await,
        );
        held.extend(
            connect_many(
                &c.t,
                &room,
                9,
                false,
                100_001 + d as u64 * 10,
                c.a.stateless,
                false,
                &c.gate,
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_secs(c.a.secs.min(10))).await;
    let meter = m.stop();
    let open = held
        .iter()
        .filter(|h| h.rec.lock().expect("rec").closed.is_none())
        .count();
    let after = meter.3;
    json!({"docs": docs, "connections": held.len(), "open": open,
           "rss_before": before, "per_conn": (after.saturating_sub(before)) as f64 / held.len().max(1) as f64,
           "meter": meter_json(meter)})
}

/// S4: a big document (20 MB at scale 1, built by an editing trace), joined at once by 150.
async fn s4(c: &Ctx) -> Value {
    if c.a.stateless {
        return json!({"skipped": "stateless server"});
    }
    let target = n(c.a.scale, 20 << 20);
    let joiners = n(c.a.scale.sqrt(), 150);
    let room = c.room("s4");
    let writers = connect_many(&c.t, &room, 1, true, 7, false, false, &c.gate).await;
    let Some(w) = writers.first() else {
        return json!({"error": "writer did not connect"});
    };
    w.create_card();
    // An editing trace: words typed at moving positions, every so often a correction.
    let mut rng_state = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move |m: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state % m.max(1)
    };
    let mut size = 0usize;
    let mut cursor = 0u32;
    while size < target {
        // One update per burst of typing: a paragraph of ~1 KB at the cursor.
        let words: Vec<&str> = [
            "arbeid",
            "gezond",
            "werk ",
            "cao ",
            "duurzaam ",
            "inzetbaar ",
        ]
        .to_vec();
        let mut s = String::new();
        while s.len() < 1000 {
            s.push_str(words[rnd(words.len() as u64) as usize]);
        }
        w.edit(&s, Some(cursor));
        size += s.len() + 30;
        cursor = if rnd(4) == 0 {
            rnd(u64::from(cursor) + 1000) as u32
        } else {
            cursor + s.len() as u32
        };
        if size % (1 << 20) < 1030 {
            tokio::time::sleep(Duration::from_millis(200)).await; // let the server keep up
        }
    }
    // The server has it all when a fresh client's sync step 2 is as big as the writer's state.
    let state_len = w
        .doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default())
        .len();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let probe = connect_many(&c.t, &room, 1, false, 8, false, false, &c.gate).await;
        let got = probe
            .first()
            .map(|p| p.rec.lock().expect("rec").sync_bytes)
            .unwrap_or(0);
        if got + 64 >= state_len || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let m = Meter::start(&c.a.pid);
    let t0 = Instant::now();
    let gate = Arc::new(Semaphore::new(joiners));
    let js = connect_many(&c.t, &room, joiners, false, 200, false, false, &gate).await;
    let meter = m.stop();
    let mut times: Vec<u32> = js
        .iter()
        .filter_map(|j| {
            let r = j.rec.lock().expect("rec");
            (r.sync_bytes + 64 >= state_len)
                .then(|| r.synced_at.map(|s| s.duration_since(t0).as_micros() as u32))
                .flatten()
        })
        .collect();
    let full = times.len();
    json!({"state_bytes": state_len, "joiners": joiners, "complete": full,
           "sync_p50_s": pct(&mut times, 0.5) / 1000.0, "sync_max_s": pct(&mut times, 1.0) / 1000.0,
           "meter": meter_json(meter)})
}

/// S5: one writer, 5 observers; the rate doubles each step while p99 ≤ 50 ms.
async fn s5(c: &Ctx) -> Value {
    let room = c.room("s5");
    let observers = connect_many(&c.t, &room, 5, false, 300, c.a.stateless, true, &c.gate).await;
    let writers = connect_many(&c.t, &room, 1, true, 2, c.a.stateless, true, &c.gate).await;
    let Some(w) = writers.first() else {
        return json!({"error": "writer did not connect"});
    };
    w.create_card();
    tokio::time::sleep(Duration::from_millis(500)).await;
    quiet(&[&observers, &writers]).await;
    let mut steps = Vec::new();
    let mut best = 0u64;
    let mut seq = 0u64;
    let step_secs = c.a.secs.clamp(1, 5);
    let mut rate = 500u64;
    let mut retried = false;
    while rate <= 128_000 {
        let m = Meter::start(&c.a.pid);
        for o in &observers {
            let mut r = o.rec.lock().expect("rec");
            r.edit_lat.clear();
            r.edits_seen.clear();
        }
        let per_ms = rate as f64 / 1000.0;
        let t0 = Instant::now();
        let mut sent = 0u64;
        let total = rate * step_secs;
        while sent < total {
            let due = ((t0.elapsed().as_secs_f64() * 1000.0 * per_ms) as u64).min(total);
            while sent < due {
                w.edit_marked(seq);
                seq += 1;
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let send_secs = t0.elapsed().as_secs_f64();
        settle(&observers, total as usize, Duration::from_secs(5)).await;
        let meter = m.stop();
        let (l, delivered) = edit_figures(&observers, total as usize * observers.len());
        let p90 = l["p90"].as_f64().unwrap_or(f64::NAN);
        let p99 = l["p99"].as_f64().unwrap_or(f64::NAN);
        // The generator could not send at this rate: stop (it is the bound, not the server).
        let achieved = total as f64 / send_secs;
        let held = delivered >= 99.999 && p99 <= 50.0 && achieved >= rate as f64 * 0.9;
        eprintln!("  S5 {rate}/s: achieved {achieved:.0}/s, delivered {delivered:.3} %, p90 {p90:.2} ms, p99 {p99:.2} ms, server CPU {:.0} %", meter.0);
        steps.push(json!({"rate": rate, "achieved": achieved, "latency": l, "delivered": delivered,
                          "held": held, "stall": p99 > 3.0 * p90.max(1.0), "meter": meter_json(meter)}));
        if !held {
            // One retry per step: a lone spike from other work on the machine is not the bound.
            if retried {
                break;
            }
            retried = true;
            continue;
        }
        retried = false;
        best = rate;
        rate = rate * 3 / 2;
    }
    json!({"best": best, "steps": steps})
}

/// S6: N users' presence at 1 Hz in one room, npm-like clients (they re-send what they get).
async fn s6(c: &Ctx) -> Value {
    let users = n(c.a.scale, 500);
    let room = c.room("s6");
    let mut cs = connect_many(
        &c.t,
        &room,
        users,
        true,
        50_000,
        c.a.stateless,
        false,
        &c.gate,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    quiet(&[&cs]).await;
    let m = Meter::start(&c.a.pid);
    let secs = c.a.secs as usize;
    let total = cs.len();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for k in 0..secs * 100 {
        tick.tick().await;
        for (i, cl) in cs.iter_mut().enumerate() {
            if i * 100 / total.max(1) == k % 100 {
                cl.presence();
            }
        }
    }
    // Delivered: each receiver's highest clock per sender, against what each sender sent.
    let sent: HashMap<u64, u32> = cs
        .iter()
        .map(|c| (c.presence_id, c.presence_clock))
        .collect();
    let expected: u64 =
        sent.values().map(|&v| u64::from(v)).sum::<u64>() * (total as u64 - 1).max(1);
    let count = |cs: &[Client]| -> u64 {
        cs.iter()
            .map(|c| {
                let r = c.rec.lock().expect("rec");
                sent.iter()
                    .filter(|(id, _)| **id != c.presence_id)
                    .map(|(id, &s)| u64::from(r.presence_max.get(id).copied().unwrap_or(0).min(s)))
                    .sum::<u64>()
            })
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&cs) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let meter = m.stop();
    let got = count(&cs);
    let mut lats = Vec::new();
    for cl in &cs {
        lats.append(&mut cl.rec.lock().expect("rec").presence_lat);
    }
    json!({"users": total, "delivered": got as f64 / expected.max(1) as f64 * 100.0,
           "latency": lat(lats), "meter": meter_json(meter)})
}

async fn run(a: RunArgs) {
    start();
    let ctx = Ctx {
        t: Arc::new(Target::new(&a)),
        gate: Arc::new(Semaphore::new(256)),
        tag: format!("lg{}", std::process::id()),
        a: a.clone(),
    };
    for s in &a.scenarios {
        eprintln!("{}: {s} …", a.label);
        let t0 = Instant::now();
        let v = match s.as_str() {
            "S1" => s1(&ctx).await,
            "S2" => s2(&ctx).await,
            "S3" => s3(&ctx).await,
            "S4" => s4(&ctx).await,
            "S5" => s5(&ctx).await,
            "S6" => s6(&ctx).await,
            other => json!({"error": format!("unknown scenario {other}")}),
        };
        let line = json!({"label": a.label, "scenario": s, "scale": a.scale, "nodes": ctx.t.nodes(),
                          "pids": a.pid, "secs": a.secs, "took_s": t0.elapsed().as_secs_f64(), "result": v});
        eprintln!("{line}");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&a.out)
            .expect("results file");
        writeln!(f, "{line}").expect("write results");
        // Let the server drop the scenario's connections before the next one.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

// ---------------------------------------------------------------- report

fn mb(b: f64) -> String {
    format!("{:.0} MB", b / 1e6)
}

/// One cell of the table and the number ratios are taken of.
fn cell(scenario: &str, r: &Value) -> (String, Option<f64>) {
    let f = |p: &str| r.pointer(p).and_then(Value::as_f64).unwrap_or(f64::NAN);
    if r.get("skipped").is_some() {
        return ("—".into(), None);
    }
    if let Some(e) = r.get("error") {
        return (format!("error: {e}"), None);
    }
    match scenario {
        "S1" => (
            format!(
                "{:.1} ms / {} / {:.1} %",
                f("/latency/p99"),
                mb(f("/meter/peak_rss")),
                f("/delivered")
            ),
            Some(f("/latency/p99")),
        ),
        "S2" => (
            format!(
                "{:.1} ms / {:.0} % / {:.1} %",
                f("/latency/p99"),
                f("/meter/cpu"),
                f("/delivered")
            ),
            Some(f("/meter/cpu")),
        ),
        "S3" => (
            format!("{:.1} KB", f("/per_conn") / 1e3),
            Some(f("/per_conn")),
        ),
        "S4" => (
            format!("{:.1} s / {}", f("/sync_p50_s"), mb(f("/meter/peak_rss"))),
            Some(f("/sync_p50_s")),
        ),
        "S5" => (format!("{:.0}/s", f("/best")), Some(f("/best"))),
        "S6" => (
            format!(
                "{:.1} % / {:.0} ms / {:.0} %",
                f("/delivered"),
                f("/latency/p99"),
                f("/meter/cpu")
            ),
            Some(f("/meter/cpu")),
        ),
        _ => ("?".into(), None),
    }
}

const TITLES: [(&str, &str); 6] = [
    (
        "S1",
        "S1 1 writer → 1,500 observers, 10 edits/s: p99 / peak RSS / delivered",
    ),
    (
        "S2",
        "S2 50 boards × 20 people, 1 edit/s + 1 cursor/s: edit p99 / server CPU / delivered",
    ),
    (
        "S3",
        "S3 10,000 idle connections on 1,000 docs: RSS per connection",
    ),
    (
        "S4",
        "S4 150 clients join a 20 MB document at once: sync p50 / peak RSS",
    ),
    (
        "S5",
        "S5 1 doc × 5 observers: most updates/s with p99 ≤ 50 ms",
    ),
    (
        "S6",
        "S6 500 users' presence at 1 Hz in one room: delivered / p99 / server CPU",
    ),
];

fn report(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).expect("results file");
    let mut labels: Vec<String> = Vec::new();
    let mut by: HashMap<(String, String), Value> = HashMap::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<Value>(l) else {
            continue;
        };
        let label = v["label"].as_str().unwrap_or("?").to_owned();
        if !labels.contains(&label) {
            labels.push(label.clone());
        }
        by.insert(
            (label, v["scenario"].as_str().unwrap_or("?").to_owned()),
            v["result"].clone(),
        );
    }
    let base = labels.iter().find(|l| l.contains("relay")).cloned();
    let scales: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["scale"].to_string())
        .collect();
    println!(
        "Scale {}: every client count and the S4 document are the titles' × scale (S4's joiners \
         × √scale).",
        scales.into_iter().collect::<Vec<_>>().join(", ")
    );
    println!();
    println!("| scenario | {} |", labels.join(" | "));
    println!("| --- |{}", " --- |".repeat(labels.len()));
    for (s, title) in TITLES {
        if !labels
            .iter()
            .any(|l| by.contains_key(&(l.clone(), s.to_owned())))
        {
            continue;
        }
        let base_v = base
            .as_ref()
            .and_then(|b| by.get(&(b.clone(), s.to_owned())))
            .and_then(|r| cell(s, r).1);
        let cells: Vec<String> = labels
            .iter()
            .map(|l| match by.get(&(l.clone(), s.to_owned())) {
                None => "not run".into(),
                Some(r) => {
                    let (txt, v) = cell(s, r);
                    match (v, base_v, Some(l) != base.as_ref()) {
                        (Some(v), Some(b), true) if b > 0.0 && v.is_finite() => {
                            format!("{txt} ({:.2}×)", v / b)
                        }
                        _ => txt,
                    }
                }
            })
            .collect();
        println!("| {title} | {} |", cells.join(" | "));
    }
    println!();
    println!("Ratios (×) are against the relay's figure of the same run: S1 p99, S2 CPU, S3 bytes, S5 rate, S6 CPU.");
    println!();
    println!("Generator CPU (% of one core) per scenario: ");
    for l in &labels {
        let parts: Vec<String> = TITLES
            .iter()
            .filter_map(|(s, _)| {
                let r = by.get(&(l.clone(), s.to_string()))?;
                let own = r
                    .pointer("/meter/own_cpu")
                    .and_then(Value::as_f64)
                    .or_else(|| {
                        r.pointer("/steps")?
                            .as_array()?
                            .last()?
                            .pointer("/meter/own_cpu")?
                            .as_f64()
                    })?;
                Some(format!("{s} {own:.0} %"))
            })
            .collect();
        println!("- {l}: {}", parts.join(", "));
    }
}

fn report_nodes(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).expect("results file");
    println!("| setup | nodes | edit p50 | edit p99 | delivered | CPU, all nodes + Redis | CPU per node | Redis CPU |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["scenario"] == "S2")
    {
        let r = &v["result"];
        let f = |p: &str| r.pointer(p).and_then(Value::as_f64).unwrap_or(f64::NAN);
        let by_pid: Vec<f64> = r
            .pointer("/meter/cpu_by_pid")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        let (nodes_cpu, redis_cpu) = match by_pid.split_last() {
            Some((redis, nodes)) => (
                nodes
                    .iter()
                    .map(|c| format!("{c:.0} %"))
                    .collect::<Vec<_>>()
                    .join(" + "),
                format!("{redis:.0} %"),
            ),
            None => ("?".into(), "?".into()),
        };
        println!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:.2} % | {:.0} % | {} | {} |",
            v["label"].as_str().unwrap_or("?"),
            v["nodes"].as_u64().unwrap_or(1),
            f("/latency/p50"),
            f("/latency/p99"),
            f("/delivered"),
            f("/meter/cpu"),
            nodes_cpu,
            redis_cpu
        );
    }
}

#[tokio::main]
async fn main() {
    match Cli::parse().cmd {
        Cmd::Run(a) => run(a).await,
        Cmd::Report { results } => report(&results),
        Cmd::ReportNodes { results } => report_nodes(&results),
    }
}
