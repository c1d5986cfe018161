//! Big documents on join (issue 9, S4): the first sync of a document of several MB is encoded
//! once and sent from that one buffer as a fragmented WebSocket message (a first frame of
//! 64 KiB and continuation frames, each a slice of it). The npm `y-websocket` client and a
//! tungstenite client both reassemble it, and many joiners at once do not cost the server a
//! copy of the state each.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tafel_protocol::Role;
use tafel_tests::api::{create_board, token};
use tafel_tests::client::YClient;
use tafel_tests::node;
use tafel_tests::procs::Tafel;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

/// The big document: about 6 MB of text in eight updates, the marker last.
const CHUNKS: usize = 8;
const CHUNK: usize = 768 * 1024;
const MARKER: &str = "~einde-van-het-grote-document~";
const DOC: &str = "party-employer";
const T: Duration = Duration::from_secs(60);

/// A board whose employer workspace holds the big document; returns it with a writer's URL
/// and the text's length once the server has all of it.
async fn big_board(t: &Tafel) -> (String, String, usize) {
    let board = create_board(t).await;
    let url = t.ws_url(&board, DOC, &token(Role::Employer, &board, "schrijver"));
    let writer = YClient::connect_synced(&url).await;
    for i in 0..CHUNKS {
        let line = format!("alinea {i}: ");
        let mut s = line.repeat(CHUNK / line.len());
        s.truncate(CHUNK);
        writer.push_text("t", &s);
    }
    writer.push_text("t", MARKER);
    let len = writer.text("t").len();
    let probe = YClient::connect(&url).await.expect("connect");
    assert!(
        probe.wait_text("t", MARKER, T).await,
        "the server never had the whole big document"
    );
    assert_eq!(probe.text("t").len(), len);
    (board, url, len)
}

/// The frames (FIN bit, opcode, payload length) of the server's messages on a raw socket,
/// read until `payload` bytes of data frames came and the last data frame had FIN, or the
/// time is up.
async fn raw_frames(url: &str, payload: usize) -> Vec<(bool, u8, usize)> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("raw WebSocket connect");
    // Sync step 1 with an empty state vector: the server answers with the whole state.
    ws.send(Message::Binary(vec![0, 0, 1, 0].into()))
        .await
        .expect("send sync step 1");
    let MaybeTlsStream::Plain(tcp) = ws.get_mut() else {
        panic!("plain TCP expected")
    };
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    let mut at = 0;
    let mut data = 0;
    let mut last_fin = false;
    let deadline = Instant::now() + T;
    while (data < payload || !last_fin) && Instant::now() < deadline {
        let mut chunk = vec![0u8; 256 * 1024];
        let n = match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => break,
        };
        buf.extend_from_slice(&chunk[..n]);
        // Server frames are unmasked: 2 bytes, then 2 or 8 bytes of length.
        while buf.len() >= at + 2 {
            let (fin, op, len7) = (buf[at] & 0x80 != 0, buf[at] & 0x0F, buf[at + 1] & 0x7F);
            let (len, head) = match len7 {
                126 if buf.len() >= at + 4 => (
                    usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]])),
                    4,
                ),
                127 if buf.len() >= at + 10 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&buf[at + 2..at + 10]);
                    (u64::from_be_bytes(b) as usize, 10)
                }
                126 | 127 => break,
                n => (usize::from(n), 2),
            };
            if buf.len() < at + head + len {
                break;
            }
            frames.push((fin, op, len));
            if op < 8 {
                data += len;
                last_fin = fin;
            }
            at += head + len;
        }
    }
    frames
}

/// A document of about 6 MB reaches a tungstenite client and the npm `y-websocket` client
/// whole; on the wire its first sync is a binary frame of 64 KiB without FIN, then
/// continuation frames of at most 64 KiB, the last with FIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_document_reaches_the_npm_client_and_a_tungstenite_client_whole() {
    let t = Tafel::start_embedded();
    let (board, url, len) = big_board(&t).await;

    let frames = raw_frames(&url, len).await;
    let first = frames
        .iter()
        .position(|f| f.1 == 2 && f.2 >= 64 * 1024)
        .unwrap_or_else(|| panic!("no big binary frame: {frames:?}"));
    let message: Vec<_> = frames[first..]
        .iter()
        .filter(|f| f.1 < 8)
        .scan(false, |done, f| {
            let take = !*done;
            *done |= f.0;
            take.then_some(*f)
        })
        .collect();
    assert_eq!(
        message[0],
        (false, 2, 64 * 1024),
        "the first sync starts as a fragment"
    );
    assert!(
        message[1..].iter().all(|f| f.1 == 0 && f.2 <= 64 * 1024),
        "continuation frames of at most 64 KiB: {message:?}"
    );
    assert!(
        message.last().is_some_and(|f| f.0),
        "the last frame has FIN"
    );
    let total: usize = message.iter().map(|f| f.2).sum();
    assert!(
        total >= len,
        "the fragments carry {total} bytes, less than the {len} of the text"
    );

    let tungstenite = YClient::connect(&url).await.expect("connect");
    assert!(
        tungstenite.wait_text("t", MARKER, T).await,
        "the tungstenite client did not get the whole document"
    );
    assert_eq!(tungstenite.text("t").len(), len);

    let tok = token(Role::Employer, &board, "npm-lezer");
    let base = t.ws_base(&board);
    let (ok, out) = node::run(
        "read-big",
        &[
            "--base",
            &base,
            "--doc",
            DOC,
            "--token",
            &tok,
            "--text",
            MARKER,
            "--timeout-ms",
            "60000",
        ],
    )
    .await;
    assert!(ok, "read-big failed: {out}\nserver log:\n{}", t.log());
    assert_eq!(out["length"].as_u64(), Some(len as u64), "{out}");
    eprintln!("npm client synced {len} bytes in {} ms", out["syncedMs"]);
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

/// Twenty clients joining a 6 MB document at once grow the server's peak RSS (`VmHWM`, reset
/// through `/proc/<pid>/clear_refs` just before) by less than five copies of the state, where
/// one copy per joiner (each connection's write buffer holding the whole first sync, as with
/// tungstenite's write path) is twenty; all twenty get the whole document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_joiners_of_a_big_document_share_one_copy_of_its_state() {
    const JOINERS: usize = 20;
    let t = Tafel::start_embedded();
    let pid = t.pid().expect("pid");
    let (_, url, len) = big_board(&t).await;
    // The probe in `big_board` made the server encode the state (kept for the next joiners).
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak RSS");
    let before = proc_kib(pid, "VmRSS");
    assert!(
        proc_kib(pid, "VmHWM") <= before + 1024,
        "the peak RSS was not reset"
    );
    let joiners = futures_util::future::join_all(
        (0..JOINERS).map(|_| async { YClient::connect(&url).await.expect("connect") }),
    )
    .await;
    for (i, j) in joiners.iter().enumerate() {
        assert!(
            j.wait_text("t", MARKER, T).await,
            "joiner {i} did not get the whole document"
        );
        assert_eq!(j.text("t").len(), len, "joiner {i}");
    }
    let growth = proc_kib(pid, "VmHWM").saturating_sub(before);
    let state_kib = (len / 1024) as u64;
    eprintln!(
        "{JOINERS} joiners of {state_kib} KiB: the server's peak RSS grew by {growth} KiB \
         ({:.1} copies of the state)",
        growth as f64 / state_kib as f64
    );
    assert!(
        growth < 5 * state_kib,
        "{JOINERS} joiners grew the server by {growth} KiB: more than five copies of the \
         {state_kib} KiB state"
    );
}
