//! Delivery latency benchmark: N clients on one document, one writer editing at a steady rate;
//! prints p50 / p99 / max of the time from sending an edit to each other client receiving it,
//! for the embedded store and for Redis. A program that prints figures, not a timed test.
//!
//! Run: `cargo build --release -p tafel-server -p tafel-tests && target/release/bench-latency`
//! Options (environment): BENCH_CLIENTS (100), BENCH_EDITS (500), BENCH_RATE (50 edits/s),
//! TAFEL_BIN (default: the release binary next to this one).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tafel_protocol::wire::{encode_sync_step1, encode_update};
use tafel_protocol::Role;
use tafel_tests::api::{create_board, token};
use tafel_tests::procs::{Redis, Tafel};
use tokio_tungstenite::tungstenite::Message;
use yrs::{Doc, ReadTxn, StateVector, Text, Transact};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Arrival times of update frames (tag 0 = sync, subtag 2 = update), per receiving client.
type Arrivals = Arc<Mutex<Vec<Instant>>>;

async fn receiver(url: String, ready: tokio::sync::mpsc::Sender<()>) -> Arrivals {
    let (ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect");
    let (mut sink, mut stream) = ws.split();
    let arrivals: Arrivals = Arc::new(Mutex::new(Vec::new()));
    let out = arrivals.clone();
    sink.send(Message::Binary(
        encode_sync_step1(&StateVector::default()).into(),
    ))
    .await
    .expect("send");
    tokio::spawn(async move {
        let mut sink = sink;
        let mut announced = false;
        while let Some(Ok(msg)) = stream.next().await {
            if let Message::Binary(b) = msg {
                match (b.first(), b.get(1)) {
                    (Some(0), Some(2)) => out.lock().expect("lock").push(Instant::now()),
                    (Some(0), Some(0)) => {
                        // The server's sync step 1: answer with our (empty) state.
                        let empty = Doc::new()
                            .transact()
                            .encode_state_as_update_v1(&StateVector::default());
                        let _ = sink
                            .send(Message::Binary(
                                tafel_protocol::wire::encode_sync_step2(empty).into(),
                            ))
                            .await;
                    }
                    (Some(0), Some(1)) if !announced => {
                        announced = true;
                        let _ = ready.send(()).await;
                    }
                    _ => {}
                }
            }
        }
    });
    arrivals
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(label: &str, t: &Tafel, clients: usize, edits: usize, rate: usize) {
    let board = create_board(t).await;
    let tok = token(Role::Employer, &board, "bench");
    let url = t.ws_url(&board, "party-employer", &tok);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(clients);
    let mut receivers = Vec::new();
    for _ in 0..clients {
        receivers.push(receiver(url.clone(), ready_tx.clone()).await);
    }
    for _ in 0..clients {
        ready_rx.recv().await.expect("ready");
    }
    let (ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("writer");
    let (mut sink, mut stream) = ws.split();
    tokio::spawn(async move { while stream.next().await.is_some() {} });
    let doc = Doc::new();
    let text = doc.get_or_insert_text("t");
    let mut sent = Vec::with_capacity(edits);
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    for i in 0..edits {
        let due = start + gap * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let before = doc.transact().state_vector();
        text.push(&mut doc.transact_mut(), &format!("bewerking {i}; "));
        let update = doc.transact().encode_diff_v1(&before);
        sent.push(Instant::now());
        sink.send(Message::Binary(encode_update(update).into()))
            .await
            .expect("send");
    }
    // Wait until everyone has everything (or 30 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && receivers
            .iter()
            .any(|r| r.lock().expect("lock").len() < edits)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut latencies = Vec::with_capacity(clients * edits);
    let mut missing = 0;
    for r in &receivers {
        let got = r.lock().expect("lock");
        missing += edits.saturating_sub(got.len());
        for (k, at) in got.iter().enumerate().take(edits) {
            latencies.push(at.saturating_duration_since(sent[k]));
        }
    }
    latencies.sort();
    println!(
        "{label:<9} clients={clients} edits={edits} rate={rate}/s deliveries={} missing={missing} p50={:.2}ms p99={:.2}ms max={:.2}ms",
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
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
    let clients = env_num("BENCH_CLIENTS", 100);
    let edits = env_num("BENCH_EDITS", 500);
    let rate = env_num("BENCH_RATE", 50).max(1);
    let embedded = Tafel::start_embedded_with(&[("TAFEL_LOG", "warn")]);
    run("embedded", &embedded, clients, edits, rate).await;
    drop(embedded);
    let redis = Redis::start();
    let on_redis = Tafel::start_with(&redis.url(), &[("TAFEL_LOG", "warn")]);
    run("redis", &on_redis, clients, edits, rate).await;
}
