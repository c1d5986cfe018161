//! Document cost benchmark: memory per loaded document and server CPU per update, read from
//! the server process itself (`/proc/PID/status` VmRSS, `/proc/PID/stat` utime + stime). A
//! program that prints figures, not a timed test; it runs against any `tafel` binary, so the
//! same program compares two builds (issue 7: the shadow document against the struct judge).
//!
//! Memory: creates BENCH_DOCS boards, fills each canvas with BENCH_CARDS cards (section
//! `bouwstenen`, a Y.Text of BENCH_TEXT characters, one update per card, written by an
//! employer), restarts the server so nothing is loaded, then opens one observer connection per
//! canvas and reads the RSS before and after. A second step opens as many extra connections
//! to one canvas that is already loaded, which gives the cost of a connection alone; the
//! document's own cost is the difference.
//!
//! CPU: one employer card on a fresh board, BENCH_OBSERVERS observers on that canvas, then
//! the employer sends BENCH_UPDATES text edits into the card (each its own update message,
//! typing with an occasional backspace, at BENCH_RATE per second); the server's CPU time over
//! the run, until every edit has reached an observer, divided by the number of edits.
//!
//! Run: `cargo build --release -p tafel-server -p tafel-tests && target/release/bench-doc`
//! Options (environment): TAFEL_BIN (default: the release binary next to this one),
//! BENCH_PART (`all`, `memory` or `cpu`), BENCH_DOCS (200), BENCH_CARDS (50), BENCH_TEXT (200),
//! BENCH_UPDATES (5000), BENCH_RATE (250 edits/s), BENCH_OBSERVERS (20), BENCH_HOOK (a shell
//! command run just before and after the measured edits; see [`hook`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tafel_protocol::wire::{encode_sync_step1, encode_sync_step2, encode_update};
use tafel_protocol::Role;
use tafel_tests::api::{create_board, http, token};
use tafel_tests::client::YClient;
use tafel_tests::procs::Tafel;
use tokio_tungstenite::tungstenite::Message;
use yrs::{Doc, GetString, Map, ReadTxn, StateVector, Text, TextRef, Transact};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// VmRSS of a process, in KB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux unless told otherwise).
fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// utime + stime of a process, in ms.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): state is
    // field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    ticks as f64 * 1000.0 / clock_ticks() as f64
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `$BENCH_HOOK` (through `sh -c`, with `$1` = `start` or `end` and `$2` = the server's
/// pid) around the measured edits, e.g. `callgrind_control -z $2` / `-d $2` when TAFEL_BIN
/// runs the server under `valgrind --tool=callgrind`. Nothing when unset.
fn hook(at: &str, pid: u32) {
    if let Ok(cmd) = std::env::var("BENCH_HOOK") {
        let _ = std::process::Command::new("sh")
            .args(["-c", &cmd, "bench-hook", at, &pid.to_string()])
            .status();
    }
}

/// One sample of a Prometheus metric from `/metrics` (0 when absent).
async fn metric(t: &Tafel, name: &str) -> f64 {
    let body = match http().get(format!("{}/metrics", t.http())).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0.0)
}

/// A deterministic generator, so both servers get the same text and the same edits.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn letter(&mut self) -> char {
        const ALPHABET: &[u8] = b"aaabcdeeeeefghiijklmnnnoooprssttuvwz     ";
        ALPHABET[self.below(ALPHABET.len())] as char
    }

    fn text(&mut self, len: usize) -> String {
        (0..len).map(|_| self.letter()).collect()
    }
}

/// Whether every card in the client's `cards` has been stamped by the server.
fn stamped(c: &YClient, want: usize) -> bool {
    let items = c.items("cards");
    let Some(o) = items.as_object() else {
        return false;
    };
    o.len() >= want && o.values().all(|card| card.get("owner").is_some())
}

async fn memory(docs: usize, cards: usize, text_len: usize) {
    let mut t =
        Tafel::start_embedded_with(&[("TAFEL_LOG", "warn"), ("TAFEL_IDLE_EVICT_SECS", "36000")]);
    let fill_start = Instant::now();
    let mut boards = Vec::with_capacity(docs + 1);
    for _ in 0..=docs {
        boards.push(create_board(&t).await);
    }
    // Fill the boards, a few at a time; each writer waits for the server's stamps on its cards.
    let mut k = 0;
    while k < boards.len() {
        let mut set = tokio::task::JoinSet::new();
        for (i, board) in boards.iter().enumerate().skip(k).take(8) {
            let url = t.ws_url(board, "canvas", &token(Role::Employer, board, "bench-e"));
            set.spawn(async move {
                let c = YClient::connect_synced(&url).await;
                let mut rng = Lcg(1 + i as u64);
                for j in 0..cards {
                    c.add_card(
                        &format!("b{j:03}"),
                        "bouwstenen",
                        &rng.text(text_len),
                        serde_json::json!({}),
                    );
                }
                let ok =
                    tafel_tests::eventually(Duration::from_secs(120), || stamped(&c, cards)).await;
                assert!(ok, "board {i}: the cards were not all stamped");
                assert!(c.seen().denied.is_empty(), "refused: {:?}", c.seen().denied);
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("fill task");
        }
        k += 8;
    }
    let fill_secs = fill_start.elapsed().as_secs_f64();

    // A fresh process: nothing loaded. One extra board is loaded first as a warm-up, so the
    // first load's one-time costs (store caches, lazy tables) are in the baseline.
    t.terminate();
    t.restart();
    let pid = t.pid().expect("pid");
    let warm_board = boards.pop().expect("warm-up board");
    let obs = |board: &str| t.ws_url(board, "canvas", &token(Role::Observer, board, "bench-o"));
    let warm = YClient::connect_synced(&obs(&warm_board)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded0 = metric(&t, "tafel_documents_loaded").await;
    let rss0 = rss_kb(pid);

    let mut readers = Vec::with_capacity(docs);
    for board in &boards {
        readers.push(YClient::connect_synced(&obs(board)).await);
    }
    for (i, r) in readers.iter().enumerate() {
        let n = r.items("cards").as_object().map(|o| o.len()).unwrap_or(0);
        assert_eq!(n, cards, "board {i} has {n} cards after the restart");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded1 = metric(&t, "tafel_documents_loaded").await;
    let rss1 = rss_kb(pid);

    // As many connections again, all to one canvas that is already loaded: a connection alone.
    let mut extra = Vec::with_capacity(docs);
    for _ in 0..docs {
        extra.push(YClient::connect_synced(&obs(&boards[0])).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss2 = rss_kb(pid);
    let loaded2 = metric(&t, "tafel_documents_loaded").await;

    let state_bytes = readers[0].state_bytes().len();
    let per_doc_and_conn = (rss1 as f64 - rss0 as f64) / docs as f64;
    let per_conn = (rss2 as f64 - rss1 as f64) / docs as f64;
    println!(
        "memory docs={docs} cards={cards} text={text_len} state={state_bytes}B/doc fill={fill_secs:.1}s \
         loaded={loaded0}->{loaded1}->{loaded2} rss_kb={rss0}->{rss1}->{rss2} \
         per_doc+conn={per_doc_and_conn:.1}KB per_conn={per_conn:.1}KB per_doc={:.1}KB load=[{}]",
        per_doc_and_conn - per_conn,
        loadavg()
    );
    drop(warm);
    drop(readers);
    drop(extra);
}

/// An observer that only counts update frames (tag 0, subtag 2); cheap, so the clients take
/// little of the cores the server runs on.
async fn counter(url: String) -> Arc<AtomicUsize> {
    let (ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect");
    let (mut sink, mut stream) = ws.split();
    let count = Arc::new(AtomicUsize::new(0));
    let out = count.clone();
    sink.send(Message::Binary(
        encode_sync_step1(&StateVector::default()).into(),
    ))
    .await
    .expect("send");
    tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            if let Message::Binary(b) = msg {
                match (b.first(), b.get(1)) {
                    (Some(0), Some(2)) => {
                        out.fetch_add(1, Ordering::Relaxed);
                    }
                    (Some(0), Some(0)) => {
                        let empty = Doc::new()
                            .transact()
                            .encode_state_as_update_v1(&StateVector::default());
                        let _ = sink
                            .send(Message::Binary(encode_sync_step2(empty).into()))
                            .await;
                    }
                    _ => {}
                }
            }
        }
    });
    count
}

fn card_text(c: &YClient, id: &str) -> Option<TextRef> {
    let cards = c.doc.get_or_insert_map("cards");
    let txn = c.doc.transact();
    match cards.get(&txn, id) {
        Some(yrs::Out::YMap(card)) => match card.get(&txn, "text") {
            Some(yrs::Out::YText(t)) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

fn text_of(c: &YClient, id: &str) -> String {
    card_text(c, id)
        .map(|t| t.get_string(&c.doc.transact()))
        .unwrap_or_default()
}

async fn cpu(updates: usize, rate: usize, observers: usize) {
    let t = Tafel::start_embedded_with(&[("TAFEL_LOG", "warn")]);
    let pid = t.pid().expect("pid");
    let board = create_board(&t).await;
    let writer = YClient::connect_synced(&t.ws_url(
        &board,
        "canvas",
        &token(Role::Employer, &board, "bench-e"),
    ))
    .await;
    writer.add_card("bench", "bouwstenen", "begin ", serde_json::json!({}));
    assert!(
        tafel_tests::eventually(Duration::from_secs(10), || stamped(&writer, 1)).await,
        "the card was not stamped"
    );
    let obs_url = t.ws_url(&board, "canvas", &token(Role::Observer, &board, "bench-o"));
    let checker = YClient::connect_synced(&obs_url).await;
    let mut counters = Vec::new();
    for _ in 1..observers.max(1) {
        counters.push(counter(obs_url.clone()).await);
    }
    let text = card_text(&writer, "bench").expect("the card's text");
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Idle: what the server spends with everyone connected and nothing happening.
    let idle_start = (Instant::now(), cpu_ms(pid));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_ms = cpu_ms(pid) - idle_start.1;
    let idle_secs = idle_start.0.elapsed().as_secs_f64();

    let in0 = metric(&t, "tafel_updates_in_total").await;
    let refused0 = metric(&t, "tafel_refused_updates_total").await;
    let mut rng = Lcg(7);
    let mut cursor = text.len(&writer.doc.transact());
    let gap = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let start = Instant::now();
    hook("start", pid);
    let cpu0 = cpu_ms(pid);
    for i in 0..updates {
        tokio::time::sleep_until((start + gap * i as u32).into()).await;
        let update = {
            let mut txn = writer.doc.transact_mut();
            let len = text.len(&txn);
            if i % 50 == 49 {
                // Click somewhere else in the text.
                cursor = rng.below(len as usize + 1) as u32;
            }
            if i % 8 == 7 && cursor > 0 {
                cursor -= 1;
                text.remove_range(&mut txn, cursor, 1);
            } else {
                let c = rng.letter().to_string();
                text.insert(&mut txn, cursor.min(len), &c);
                cursor = cursor.min(len) + 1;
            }
            txn.encode_update_v1()
        };
        writer.send_raw(encode_update(update));
    }
    let sent_secs = start.elapsed().as_secs_f64();
    let want = text.get_string(&writer.doc.transact());
    let arrived = tafel_tests::eventually(Duration::from_secs(120), || {
        text_of(&checker, "bench") == want
    })
    .await;
    let cpu1 = cpu_ms(pid);
    hook("end", pid);
    let total_secs = start.elapsed().as_secs_f64();
    let in1 = metric(&t, "tafel_updates_in_total").await;
    let refused1 = metric(&t, "tafel_refused_updates_total").await;
    let frames: Vec<usize> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let used = cpu1 - cpu0;
    println!(
        "cpu updates={updates} rate={rate}/s observers={observers} arrived={arrived} \
         accepted={} refused={} sent={sent_secs:.1}s total={total_secs:.1}s server_cpu={used:.0}ms \
         per_update={:.1}us idle={:.1}ms/s frames_min={} load=[{}]",
        in1 - in0,
        refused1 - refused0,
        used * 1000.0 / updates.max(1) as f64,
        idle_ms / idle_secs,
        frames.iter().min().copied().unwrap_or(0),
        loadavg()
    );
    assert!(arrived, "the checker did not receive every edit");
}

#[tokio::main]
async fn main() {
    if std::env::var("TAFEL_BIN").is_err() {
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.to_owned()))
        {
            std::env::set_var("TAFEL_BIN", dir.join("tafel"));
        }
    }
    let part = std::env::var("BENCH_PART").unwrap_or_else(|_| "all".into());
    println!(
        "bench-doc bin={} load=[{}]",
        tafel_tests::procs::tafel_bin().display(),
        loadavg()
    );
    if part == "all" || part == "memory" {
        memory(
            env_num("BENCH_DOCS", 200),
            env_num("BENCH_CARDS", 50),
            env_num("BENCH_TEXT", 200),
        )
        .await;
    }
    if part == "all" || part == "cpu" {
        cpu(
            env_num("BENCH_UPDATES", 5000),
            env_num("BENCH_RATE", 250),
            env_num("BENCH_OBSERVERS", 20),
        )
        .await;
    }
}
