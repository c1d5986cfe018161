//! Robustness against the real `tafel` binary: malformed and oversized frames, text frames, slow
//! consumers, silent peers (keepalive) and awareness spoofing. Each bad actor must lose only its
//! own connection, with the documented close code, while healthy clients keep syncing and the
//! server stays alive.

use std::time::{Duration, Instant};

use tafel_protocol::wire::encode_update;
use tafel_protocol::Role;
use tafel_tests::api;
use tafel_tests::client::YClient;
use tafel_tests::eventually;
use tafel_tests::procs::Tafel;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type RawWs = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const T: Duration = Duration::from_secs(10);

/// A board and a writer's URL on it: the employer's own workspace, where free-form content is
/// allowed (the canvas only takes cards of the board schema).
async fn canvas(t: &Tafel) -> String {
    let board = api::create_board(t).await;
    let tok = api::token(Role::Employer, &board, "sub");
    t.ws_url(&board, "party-employer", &tok)
}

async fn healthz(t: &Tafel) -> u16 {
    api::http()
        .get(format!("{}/healthz", t.http()))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn assert_healthy(t: &Tafel, when: &str) {
    assert_eq!(healthz(t).await, 200, "/healthz after {when}:\n{}", t.log());
}

/// The value of an un-labelled series in `/metrics`, if present.
async fn metric(t: &Tafel, name: &str) -> Option<f64> {
    metric_at(&t.http(), name).await
}

async fn metric_at(base: &str, name: &str) -> Option<f64> {
    let body = api::http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some(name))
            .then(|| parts.next().and_then(|v| v.parse().ok()))
            .flatten()
    })
}

/// Proves two clients still exchange edits in both directions.
async fn pair_syncs(a: &YClient, b: &YClient, tag: &str) {
    let from_a = format!("[a:{tag}]");
    let from_b = format!("[b:{tag}]");
    a.push_text("t", &from_a);
    assert!(
        b.wait_text("t", &from_a, T).await,
        "b did not get {from_a}: {:?}",
        b.text("t")
    );
    b.push_text("t", &from_b);
    assert!(
        a.wait_text("t", &from_b, T).await,
        "a did not get {from_b}: {:?}",
        a.text("t")
    );
    assert_eq!(a.closed(), None, "healthy client a was closed");
    assert_eq!(b.closed(), None, "healthy client b was closed");
}

/// Waits for the close frame of `c` and returns it.
async fn closed_with(c: &YClient, what: &str) -> (u16, String) {
    assert!(
        c.wait(T, |s| s.closed.is_some()).await,
        "{what}: the connection was not closed"
    );
    c.closed().expect("closed")
}

async fn raw_connect(url: &str) -> RawWs {
    tokio_tungstenite::connect_async(url)
        .await
        .expect("raw WebSocket connect")
        .0
}

/// The TCP state (as in /proc/net/tcp, e.g. "01" = ESTABLISHED) of the server's side of the
/// connection from the local `client_port` to the server's `server_port`; `None` when the kernel
/// no longer has it.
fn server_side_tcp_state(server_port: u16, client_port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let port = |addr: &str| {
            addr.rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
        };
        (f.len() > 3 && port(f[1]) == Some(server_port) && port(f[2]) == Some(client_port))
            .then(|| f[3].to_owned())
    })
}

fn local_port(ws: &RawWs) -> u16 {
    match ws.get_ref() {
        MaybeTlsStream::Plain(s) => s.local_addr().expect("local addr").port(),
        _ => panic!("plain TCP expected"),
    }
}

/// For a client that never polled its WebSocket: reads the raw TCP bytes (without answering
/// anything, so nothing is written to a socket the server may have closed) until the server
/// closes, and returns the close frame the server ended with, if any. The close frame is the
/// last thing a server sends, so it is found as the stream's suffix: an unmasked `0x88` frame
/// whose short length reaches exactly to the end.
async fn raw_close_frame(ws: &mut RawWs, timeout: Duration) -> Option<(u16, String)> {
    let MaybeTlsStream::Plain(tcp) = ws.get_mut() else {
        panic!("plain TCP expected")
    };
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(timeout, tcp.read_to_end(&mut buf)).await;
    let n = buf.len();
    (0..n.saturating_sub(3)).rev().take(130).find_map(|p| {
        let len = usize::from(buf[p + 1]);
        (buf[p] == 0x88 && (2..126).contains(&len) && p + 2 + len == n).then(|| {
            let code = u16::from_be_bytes([buf[p + 2], buf[p + 3]]);
            (code, String::from_utf8_lossy(&buf[p + 4..]).into_owned())
        })
    })
}

// ---------------------------------------------------------------------------------------------

/// Malformed binary frames (garbage bytes, an empty frame, a sync update whose payload is not a
/// Yjs update, an awareness state that is not JSON), each on its own connection, close only that
/// connection with 1007 and a reason; after each one two healthy clients still sync both ways
/// and `/healthz` answers 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_only_the_sender_with_1007() {
    let t = Tafel::start_embedded();
    let url = canvas(&t).await;
    let a = YClient::connect_synced(&url).await;
    let b = YClient::connect_synced(&url).await;
    pair_syncs(&a, &b, "start").await;

    type Misbehave = Box<dyn Fn(&YClient)>;
    let cases: Vec<(&str, Misbehave)> = vec![
        (
            "garbage bytes",
            Box::new(|c| c.send_raw(vec![0xff, 0xff, 0xff])),
        ),
        ("empty binary frame", Box::new(|c| c.send_raw(Vec::new()))),
        (
            "sync update with a garbage payload",
            Box::new(|c| c.send_raw(encode_update(vec![1, 2, 3, 4, 5, 250, 250]))),
        ),
        (
            "sync update with a truncated payload",
            Box::new(|c| c.send_raw(vec![0, 2, 10, 1, 2])),
        ),
        (
            "awareness state that is not JSON",
            Box::new(|c| c.set_awareness(4242, "{not json")),
        ),
    ];
    for (i, (what, misbehave)) in cases.iter().enumerate() {
        let bad = YClient::connect_synced(&url).await;
        misbehave(&bad);
        let (code, reason) = closed_with(&bad, what).await;
        assert_eq!(code, 1007, "{what}: close code (reason {reason:?})");
        assert!(!reason.is_empty(), "{what}: close reason is empty");
        eprintln!("{what}: closed {code} {reason:?}");
        pair_syncs(&a, &b, &format!("after {i}")).await;
        assert_healthy(&t, what).await;
    }
    // Nothing the bad clients sent reached the document or the others' presence.
    let late = YClient::connect_synced(&url).await;
    assert_eq!(late.text("t"), a.text("t"));
    assert!(!late.seen().awareness.contains_key(&4242));
}

/// A text frame is not part of the protocol: it closes that connection with 1008 and a reason,
/// and the document keeps serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_frame_closes_with_1008() {
    let t = Tafel::start_embedded();
    let url = canvas(&t).await;
    let a = YClient::connect_synced(&url).await;
    let b = YClient::connect_synced(&url).await;
    let bad = YClient::connect_synced(&url).await;
    bad.send_text_frame("hallo?");
    let (code, reason) = closed_with(&bad, "text frame").await;
    assert_eq!(code, 1008, "close code (reason {reason:?})");
    assert!(!reason.is_empty(), "close reason is empty");
    pair_syncs(&a, &b, "after text").await;
    assert_healthy(&t, "a text frame").await;
}

/// With `TAFEL_MAX_MESSAGE_BYTES=65536`, a ~100 KB update closes its connection with 1009 and is
/// not applied, while a ~30 KB update on another connection is accepted and reaches a second
/// client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_closes_with_1009() {
    let t = Tafel::start_embedded_with(&[("TAFEL_MAX_MESSAGE_BYTES", "65536")]);
    let url = canvas(&t).await;
    let observer = YClient::connect_synced(&url).await;

    let big = YClient::connect_synced(&url).await;
    big.push_text("t", &"B".repeat(100_000));
    let (code, reason) = closed_with(&big, "100 KB update").await;
    assert_eq!(code, 1009, "close code (reason {reason:?})");
    assert!(!reason.is_empty(), "close reason is empty");

    let ok = YClient::connect_synced(&url).await;
    ok.push_text("t", &"o".repeat(30_000));
    assert!(
        eventually(T, || observer.text("t").len() == 30_000).await,
        "the 30 KB update did not arrive (observer has {} chars)",
        observer.text("t").len()
    );
    assert!(
        !observer.text("t").contains('B'),
        "the oversized update was applied"
    );
    assert_eq!(ok.closed(), None);
    assert_eq!(observer.closed(), None);
    assert_healthy(&t, "an oversized message").await;
}

/// The default limit is generous: a single 5 MB update is accepted, and a client joining later
/// receives all of it in its sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_limit_accepts_a_5_mb_update() {
    let t = Tafel::start_embedded();
    let url = canvas(&t).await;
    let writer = YClient::connect_synced(&url).await;
    let observer = YClient::connect_synced(&url).await;
    let started = Instant::now();
    writer.push_text("t", &"x".repeat(5_000_000));
    assert!(
        eventually(Duration::from_secs(60), || observer.text("t").len()
            == 5_000_000)
        .await,
        "the 5 MB update did not reach a connected client (closed: {:?})",
        writer.closed()
    );
    // Forwarded means stored: a client joining now gets it all in its sync step 2.
    let late = YClient::connect_synced(&url).await;
    eprintln!(
        "5 MB update forwarded and late-synced in {:?}",
        started.elapsed()
    );
    assert_eq!(writer.closed(), None, "the 5 MB update closed its sender");
    assert_eq!(
        late.text("t").len(),
        5_000_000,
        "the late joiner got all of it"
    );
    assert_healthy(&t, "a 5 MB update").await;
}

/// Waits (up to 5 s) until `tafel_slow_clients_closed_total` is at least `min`; returns it.
async fn slow_clients_closed(t: &Tafel, min: f64) -> f64 {
    let mut v = 0.0;
    for _ in 0..50 {
        v = metric(t, "tafel_slow_clients_closed_total")
            .await
            .unwrap_or(0.0);
        if v >= min {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    v
}

/// ~64 KB text updates pushed by the writer in the slow-consumer tests.
const CHUNK: usize = 64 * 1024;

fn push_chunks(writer: &YClient, n: usize) {
    for i in 0..n {
        let c = char::from(b'a' + (i % 26) as u8);
        writer.push_text("t", &c.to_string().repeat(CHUNK));
    }
}

/// Pushes `n` chunks in groups of 8, waiting after each group until `reader` has them, so the
/// server never has more than 8 of them in one batch (see
/// `burst_from_one_writer_does_not_disconnect_a_reading_client` for why that matters with a
/// 16-frame queue).
async fn push_chunks_paced(writer: &YClient, reader: &YClient, n: usize) {
    let mut sent = 0;
    while sent < n {
        let group = 8.min(n - sent);
        for i in sent..sent + group {
            let c = char::from(b'a' + (i % 26) as u8);
            writer.push_text("t", &c.to_string().repeat(CHUNK));
        }
        sent += group;
        let want = sent * CHUNK;
        let ok = eventually(Duration::from_secs(30), || {
            reader.closed().is_some() || reader.text("t").len() >= want
        })
        .await;
        assert!(
            ok && reader.closed().is_none(),
            "reader stalled or closed at {sent}: {:?}",
            reader.closed()
        );
    }
}

/// A client that never reads, with `TAFEL_OUTGOING_QUEUE=16`, is disconnected as too slow
/// (metric `tafel_slow_clients_closed_total` >= 1, "too slow" in the log) while a writer pushes
/// 300 updates of ~64 KB (in groups of 8) and a healthy reader receives every one of them; the
/// server stays
/// healthy, and the slow client, which starts reading as soon as the server has given up on it
/// (within the 2 s close grace), finds the close frame 4508 at the end of its stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_disconnected_without_hurting_others() {
    let t = Tafel::start_embedded_with(&[("TAFEL_OUTGOING_QUEUE", "16")]);
    let url = canvas(&t).await;
    let reader = YClient::connect_synced(&url).await;
    let writer = YClient::connect_synced(&url).await;
    let mut slow = raw_connect(&url).await;
    let base = t.http();
    let slow_close = tokio::spawn(async move {
        let kicked = eventually_async(Duration::from_secs(120), || async {
            metric_at(&base, "tafel_slow_clients_closed_total")
                .await
                .is_some_and(|v| v >= 1.0)
        })
        .await;
        assert!(kicked, "the slow client was never closed as too slow");
        raw_close_frame(&mut slow, Duration::from_secs(30)).await
    });

    const N: usize = 300;
    let started = Instant::now();
    push_chunks_paced(&writer, &reader, N).await;
    let got_all = eventually(Duration::from_secs(120), || {
        reader.closed().is_some() || reader.text("t").len() == N * CHUNK
    })
    .await;
    eprintln!(
        "reader has {} of {} bytes after {:?}; reader closed: {:?}",
        reader.text("t").len(),
        N * CHUNK,
        started.elapsed(),
        reader.closed()
    );
    assert_eq!(reader.closed(), None, "the healthy reader was disconnected");
    assert!(got_all, "the healthy reader did not get all {N} updates");
    assert_eq!(writer.closed(), None, "the writer was disconnected");
    assert_eq!(reader.text("t"), writer.text("t"));

    let closed = slow_clients_closed(&t, 1.0).await;
    assert!(closed >= 1.0, "tafel_slow_clients_closed_total = {closed}");
    assert!(
        t.log().contains("too slow"),
        "no \"too slow\" in the log:\n{}",
        t.log()
    );
    assert_healthy(&t, "a slow consumer").await;
    pair_syncs(&reader, &writer, "after slow").await;

    let close = slow_close.await.expect("the slow client's reader");
    eprintln!("slow client saw close {close:?}");
    assert_eq!(
        close.as_ref().map(|c| c.0),
        Some(4508),
        "close frame at the end of the slow client's stream: {close:?}"
    );
    assert!(
        close.is_some_and(|c| c.1.contains("too slow")),
        "the 4508 close carries the reason"
    );
}

/// Polls the async `f` every 20 ms until it is true or `timeout` passes.
async fn eventually_async<F: std::future::Future<Output = bool>>(
    timeout: Duration,
    mut f: impl FnMut() -> F,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The outgoing queue is bounded in bytes, not only in frames: with room for 1,024 frames but
/// 1 MiB, a client that never reads is closed as too slow long before 300 updates of 64 KiB
/// (19 MiB) pile up for it, while a healthy reader gets every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_cut_off_by_bytes_not_frames() {
    let t = Tafel::start_embedded_with(&[
        ("TAFEL_OUTGOING_QUEUE", "1024"),
        ("TAFEL_OUTGOING_QUEUE_BYTES", "1048576"),
    ]);
    let url = canvas(&t).await;
    let reader = YClient::connect_synced(&url).await;
    let writer = YClient::connect_synced(&url).await;
    let _slow = raw_connect(&url).await;
    const N: usize = 300;
    push_chunks_paced(&writer, &reader, N).await;
    assert!(
        eventually(Duration::from_secs(60), || reader.text("t").len()
            == N * CHUNK)
        .await,
        "the healthy reader did not get all {N} updates"
    );
    assert_eq!(reader.closed(), None, "the healthy reader was disconnected");
    let closed = slow_clients_closed(&t, 1.0).await;
    assert!(
        closed >= 1.0,
        "a client that never reads was not cut off by the byte bound: {closed}"
    );
    assert_healthy(&t, "a slow consumer (bytes)").await;
}

/// A client that never reads and is closed as too slow must not keep holding server resources:
/// within the close grace (5 s) plus a margin, the server side of its TCP connection is no longer
/// ESTABLISHED, although the client still does not read (its TCP receive window is full).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_socket_is_released_while_it_still_does_not_read() {
    let t = Tafel::start_embedded_with(&[("TAFEL_OUTGOING_QUEUE", "16")]);
    let url = canvas(&t).await;
    let writer = YClient::connect_synced(&url).await;
    let slow = raw_connect(&url).await;
    let slow_port = local_port(&slow);
    // The lookup finds the connection while it is open, so "no longer ESTABLISHED" below is
    // not just "not found".
    assert_eq!(
        server_side_tcp_state(t.port, slow_port).as_deref(),
        Some("01"),
        "the server side of the slow client's connection is not ESTABLISHED before the test"
    );
    push_chunks(&writer, 300);
    let closed = slow_clients_closed(&t, 1.0).await;
    assert!(closed >= 1.0, "tafel_slow_clients_closed_total = {closed}");
    let kicked_at = Instant::now();
    let released = eventually(Duration::from_secs(15), || {
        server_side_tcp_state(t.port, slow_port).is_none_or(|s| s != "01")
    })
    .await;
    let state = server_side_tcp_state(t.port, slow_port);
    let gauge = metric(&t, "tafel_connections").await;
    eprintln!(
        "{:?} after the kick: server-side TCP state {state:?}, tafel_connections {gauge:?}",
        kicked_at.elapsed()
    );
    assert!(
        released,
        "the server still holds the never-reading client's socket (TCP state {state:?}, \
         tafel_connections {gauge:?}) {:?} after closing it as too slow",
        kicked_at.elapsed()
    );
    drop(slow);
}

/// With `TAFEL_PING_SECS=1`, a raw client that never reads (so never answers pings) is closed
/// within ~6 s (log says "keepalive", close code 4508); a normal client, whose reader answers
/// pings, is still connected after 5 s and still syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_closes_silent_peers_only() {
    let t = Tafel::start_embedded_with(&[("TAFEL_PING_SECS", "1")]);
    let url = canvas(&t).await;
    let a = YClient::connect_synced(&url).await;
    let b = YClient::connect_synced(&url).await;
    let before = metric(&t, "tafel_slow_clients_closed_total")
        .await
        .unwrap_or(0.0);
    let started = Instant::now();
    let mut silent = raw_connect(&url).await;
    let silent_port = local_port(&silent);
    assert_eq!(
        server_side_tcp_state(t.port, silent_port).as_deref(),
        Some("01"),
        "the server side of the silent client's connection is not ESTABLISHED at the start"
    );

    let noticed = eventually(Duration::from_secs(8), || t.log().contains("keepalive")).await;
    let took = started.elapsed();
    assert!(
        noticed,
        "the silent client was not closed within 8 s:\n{}",
        t.log()
    );
    eprintln!("silent client closed after {took:?}");
    assert!(
        took <= Duration::from_secs(7),
        "closing the silent client took {took:?}"
    );
    assert!(
        eventually(T, || server_side_tcp_state(t.port, silent_port)
            .is_none_or(|s| s != "01"))
        .await,
        "the server did not release the silent client's socket"
    );
    let close = raw_close_frame(&mut silent, Duration::from_secs(5)).await;
    eprintln!("silent client got close frame {close:?}");
    assert_eq!(
        close.map(|c| c.0),
        Some(4508),
        "close frame sent to the silent client"
    );
    let after = metric(&t, "tafel_slow_clients_closed_total")
        .await
        .unwrap_or(0.0);
    eprintln!("tafel_slow_clients_closed_total before {before}, after {after}");
    assert_eq!(
        after,
        before + 1.0,
        "tafel_slow_clients_closed_total must count exactly the one silent client"
    );

    // The answering clients survive well past three ping intervals.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(started.elapsed())).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(a.closed(), None, "a client answering pings was closed");
    assert_eq!(b.closed(), None, "a client answering pings was closed");
    pair_syncs(&a, &b, "after keepalive").await;
    assert_healthy(&t, "keepalive").await;
}

/// Awareness presence belongs to the connection that announced it: B cannot remove (`null`) or
/// overwrite A's client id 111, even with a higher clock; observer C and a late joiner keep
/// seeing A's state; when A leaves, C sees 111 removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awareness_cannot_be_spoofed() {
    let t = Tafel::start_embedded();
    let board = api::create_board(&t).await;
    // Three participants of one party: presence ids belong to participants, so B is another
    // person than A (a second connection of A's own may take A's id over: a reconnect).
    let url_of = |sub: &str| {
        t.ws_url(
            &board,
            "party-employer",
            &api::token(Role::Employer, &board, sub),
        )
    };
    let url = url_of("c");
    let c = YClient::connect_synced(&url).await;
    let a = YClient::connect_synced(&url_of("a")).await;
    let b = YClient::connect_synced(&url_of("b")).await;

    let a_state = r#"{"user":{"name":"A"}}"#;
    a.set_awareness(111, a_state);
    assert!(
        c.wait(T, |s| s.awareness.get(&111).map(String::as_str)
            == Some(a_state))
            .await,
        "C did not see A's presence"
    );

    // B raises its clock on its own id, then tries to remove and to overwrite A's presence.
    for i in 0..5 {
        b.set_awareness(222, &format!(r#"{{"user":{{"name":"B{i}"}}}}"#));
    }
    b.set_awareness(111, "null");
    b.set_awareness(111, r#"{"user":{"name":"spoofed"}}"#);
    // A marker after the spoofs: once C sees it, the server has handled the spoofs.
    let marker = r#"{"user":{"name":"B-done"}}"#;
    b.set_awareness(222, marker);
    assert!(
        c.wait(T, |s| s.awareness.get(&222).map(String::as_str)
            == Some(marker))
            .await,
        "C did not see B's own presence"
    );
    assert_eq!(
        c.seen().awareness.get(&111).map(String::as_str),
        Some(a_state),
        "B changed A's presence as C sees it"
    );
    let late = YClient::connect_synced(&url).await;
    assert!(
        late.wait(T, |s| s.awareness.get(&222).map(String::as_str)
            == Some(marker))
            .await,
        "late joiner did not get the awareness states"
    );
    assert_eq!(
        late.seen().awareness.get(&111).map(String::as_str),
        Some(a_state),
        "B changed A's presence in the server's state"
    );
    assert_eq!(b.closed(), None);

    // A leaves: its presence is removed for everyone, B's stays.
    a.close();
    assert!(
        c.wait(T, |s| !s.awareness.contains_key(&111)).await,
        "C still sees A's presence after A left"
    );
    assert_eq!(
        c.seen().awareness.get(&222).map(String::as_str),
        Some(marker)
    );
}

/// A connection closed for not answering keepalive pings is counted in
/// `tafel_slow_clients_closed_total`, as that metric's help text ("... or pings went
/// unanswered") says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_closes_are_counted() {
    let t = Tafel::start_embedded_with(&[("TAFEL_PING_SECS", "1")]);
    let url = canvas(&t).await;
    let _silent = raw_connect(&url).await;
    assert!(
        eventually(Duration::from_secs(8), || t.log().contains("keepalive")).await,
        "the silent client was not closed"
    );
    let closed = slow_clients_closed(&t, 1.0).await;
    assert!(closed >= 1.0, "tafel_slow_clients_closed_total = {closed}");
}

/// Pushes `n` tiny text updates as fast as the client can send them.
fn burst(writer: &YClient, n: usize) {
    for i in 0..n {
        writer.push_text("t", &format!("{},", i % 10));
    }
}

/// A burst of 2000 tiny updates from one writer must not disconnect a client that reads as fast
/// as it can, even when the outgoing queue is configured as small as possible (16 asked, the
/// server keeps at least 128: twice the largest batch one flush can queue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_from_one_writer_does_not_disconnect_a_reading_client() {
    let t = Tafel::start_embedded_with(&[("TAFEL_OUTGOING_QUEUE", "16")]);
    let url = canvas(&t).await;
    let reader = YClient::connect_synced(&url).await;
    let writer = YClient::connect_synced(&url).await;
    burst(&writer, 2000);
    let done = eventually(Duration::from_secs(30), || {
        reader.closed().is_some() || reader.text("t").len() == 4000
    })
    .await;
    assert_eq!(
        reader.closed(),
        None,
        "a reading client was closed by a burst"
    );
    assert!(
        done,
        "the reader got {} of 4000 chars",
        reader.text("t").len()
    );
}

/// One slow connection closed as too slow counts once in `tafel_slow_clients_closed_total`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slow_client_is_counted_once() {
    let t = Tafel::start_embedded_with(&[("TAFEL_OUTGOING_QUEUE", "16")]);
    let url = canvas(&t).await;
    let writer = YClient::connect_synced(&url).await;
    let _slow = raw_connect(&url).await;
    // Big enough frames that the kernel's socket buffers cannot absorb them all (the queue
    // holds at least 128 frames): 1000 × 8 KB.
    let chunk = "x".repeat(8192);
    for _ in 0..1000 {
        writer.push_text("t", &chunk);
    }
    let closed = slow_clients_closed(&t, 1.0).await;
    assert!(
        t.log().contains("too slow"),
        "the slow client was not closed"
    );
    // Let every queued batch be handled before reading the final value.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let closed = metric(&t, "tafel_slow_clients_closed_total")
        .await
        .unwrap_or(closed);
    assert_eq!(closed, 1.0, "one slow client, counted {closed} times");
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Floods a paused reader (a raw client that never reads) with `n` presence frames of 64 KiB
/// from a writer (in groups of 8, each group waited for by a healthy reader); presence replaces
/// its state, so the document does not grow and the server's RSS growth is the queues'. Returns
/// (the server's peak RSS growth in KiB: `VmHWM` at the end minus `VmRSS` before the flood, the
/// paused reader's close frame).
async fn flood_paused_reader(
    env: &[(&str, &str)],
    n: usize,
    paused: bool,
) -> (u64, Option<(u16, String)>) {
    let t = Tafel::start_embedded_with(env);
    let pid = t.pid().expect("pid");
    let url = canvas(&t).await;
    let reader = YClient::connect_synced(&url).await;
    let writer = YClient::connect_synced(&url).await;
    let id = writer.doc.client_id().get();
    let mut slow = if paused {
        Some(raw_connect(&url).await)
    } else {
        None
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = proc_kib(pid, "VmRSS");
    let pad = "x".repeat(CHUNK);
    for i in 0..n {
        writer.set_awareness(id, &format!(r#"{{"n":{i},"pad":"{pad}"}}"#));
        if i % 8 == 7 || i + 1 == n {
            let want = format!(r#"{{"n":{i},"#);
            assert!(
                reader
                    .wait(Duration::from_secs(30), |s| s
                        .awareness
                        .get(&id)
                        .is_some_and(|j| j.starts_with(&want)))
                    .await,
                "the healthy reader did not get presence frame {i}"
            );
        }
    }
    let growth = proc_kib(pid, "VmHWM").saturating_sub(before);
    let close = match slow.as_mut() {
        Some(ws) => {
            let kicked = slow_clients_closed(&t, 1.0).await;
            eprintln!("slow clients closed: {kicked}");
            raw_close_frame(ws, Duration::from_secs(10)).await
        }
        None => None,
    };
    assert_eq!(reader.closed(), None, "the healthy reader was disconnected");
    assert_healthy(&t, "a flood").await;
    (growth, close)
}

/// Issue 9.4: a paused reader flooded with 600 presence frames of 64 KiB (37.5 MiB) under a 2 MiB byte
/// bound (and room for 100,000 frames) is closed with 4508, and the server's peak RSS grows no
/// more than in the same run without the paused reader plus the bound and a margin (8 MiB).
/// Positive control: with the byte bound lifted to 1 GiB the same paused reader is not closed
/// and the server's peak RSS grows by more than that margin (the frames pile up for it), so the
/// comparison can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooded_paused_reader_is_closed_and_rss_stays_within_the_byte_bound() {
    const N: usize = 600;
    const MARGIN_KIB: u64 = 8 * 1024;
    let bounded = [
        ("TAFEL_OUTGOING_QUEUE", "100000"),
        ("TAFEL_OUTGOING_QUEUE_BYTES", "2097152"),
    ];
    let unbounded = [
        ("TAFEL_OUTGOING_QUEUE", "100000"),
        ("TAFEL_OUTGOING_QUEUE_BYTES", "1073741824"),
    ];
    let (baseline, _) = flood_paused_reader(&bounded, N, false).await;
    let (flooded, close) = flood_paused_reader(&bounded, N, true).await;
    let (piled, open) = flood_paused_reader(&unbounded, N, true).await;
    eprintln!(
        "peak RSS growth: {baseline} KiB without a paused reader, {flooded} KiB with one under \
         a 2 MiB bound (close {close:?}), {piled} KiB with the bound lifted (close {open:?})"
    );
    assert_eq!(
        close.as_ref().map(|c| c.0),
        Some(4508),
        "the flooded paused reader was not closed with 4508: {close:?}"
    );
    assert!(
        flooded <= baseline + 2048 + MARGIN_KIB,
        "the server grew by {flooded} KiB with a paused reader, {baseline} KiB without one"
    );
    assert_eq!(open, None, "control: without the bound it stays open");
    assert!(
        piled > baseline + 2048 + MARGIN_KIB,
        "control: with the bound lifted the frames should pile up ({piled} KiB against \
         {baseline} KiB)"
    );
}
