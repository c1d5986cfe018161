//! The shared log (two real `tafel` processes on one `redis-server`) misbehaving, made
//! deterministic with the `--test-hooks` store hooks (`POST /api/test-hooks/store`): a node whose
//! follower is held, so it falls behind the log (`hold_follow`), and a log that moved under every
//! append, as if another node always appended first (`force_moved`).

use std::time::{Duration, Instant};

use serde_json::json;
use tafel_protocol::Role;
use tafel_tests::api::{call, create_board, facilitator, store_hooks, token};
use tafel_tests::client::YClient;
use tafel_tests::procs::{Redis, Tafel};

/// Generous: this machine is small and loaded.
const T: Duration = Duration::from_secs(20);
/// How long to keep looking for something that must not arrive.
const QUIET: Duration = Duration::from_millis(1500);
/// How often one batch may find the log moved before the document gives up (`doc::MAX_MOVES`).
const MAX_MOVES: f64 = 20.0;

fn url(t: &Tafel, board: &str, sub: &str) -> String {
    t.ws_url(board, "party-employer", &token(Role::Employer, board, sub))
}

/// Waits until a follower of `t` waits on `hold_follow`.
async fn follower_held(t: &Tafel) -> bool {
    let deadline = tokio::time::Instant::now() + T;
    while tokio::time::Instant::now() < deadline {
        if store_hooks(t, json!({})).await["follows_held"]
            .as_u64()
            .unwrap_or(0)
            >= 1
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A counter from `t`'s `/metrics` (0 when it is not there yet).
async fn counter(t: &Tafel, name: &str) -> f64 {
    tafel_tests::api::metrics(t)
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// The board's JSON export as node `t` answers it.
async fn export(t: &Tafel, board: &str) -> String {
    let (status, body) = call(
        t,
        reqwest::Method::GET,
        &format!("/api/boards/{board}/export?format=json"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(status, 200, "export: {body}");
    body.to_string()
}

/// A node whose follower is behind the log answers a sync step 1 (and an export) only after
/// reading the log up to its tip: with node B's follower held, an edit made through node A is
/// in the sync step 2 of a client that joins on B, and in B's export, though B's connected
/// client has not been sent it. Positive control: while held, A's edit really does not reach
/// the client connected to B; once released, it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_the_log_answers_a_sync_step_1_from_the_logs_tip() {
    let redis = Redis::start();
    let na = Tafel::start_hooked(Some(&redis.url()), &[]);
    let nb = Tafel::start_hooked(Some(&redis.url()), &[]);
    let board = create_board(&na).await;
    let a = YClient::connect_synced(&url(&na, &board, "e1")).await;
    // Sees A's edits once they are stored (a node forwards nothing before).
    let a_seen = YClient::connect_synced(&url(&na, &board, "e2")).await;
    let b = YClient::connect_synced(&url(&nb, &board, "e3")).await;
    a.push_text("t", "vooraf;");
    assert!(b.wait_text("t", "vooraf;", T).await, "B never followed A");

    // Positive control: held, B's follower delivers nothing; released, it does.
    store_hooks(&nb, json!({"hold_follow": true})).await;
    a.push_text("t", "een;");
    assert!(
        a_seen.wait_text("t", "een;", T).await,
        "A's edit not stored"
    );
    assert!(follower_held(&nb).await, "B's follower was never held");
    tokio::time::sleep(QUIET).await;
    assert!(
        !b.text("t").contains("een;"),
        "B followed while its follower was held: {:?}",
        b.text("t")
    );
    store_hooks(&nb, json!({"hold_follow": false})).await;
    assert!(
        b.wait_text("t", "een;", T).await,
        "not followed once released"
    );

    // The claim: held again, A's next edit is in the log and not followed on B; a client that
    // joins B gets it in its sync step 2 all the same.
    store_hooks(&nb, json!({"hold_follow": true})).await;
    a.push_text("t", "twee;");
    assert!(
        a_seen.wait_text("t", "twee;", T).await,
        "A's edit not stored"
    );
    assert!(follower_held(&nb).await, "B's follower was never held");
    tokio::time::sleep(QUIET).await;
    assert!(!b.text("t").contains("twee;"), "B followed while held");
    let fresh = YClient::connect_synced(&url(&nb, &board, "e4")).await;
    let text = fresh.text("t");
    assert!(
        text.contains("een;") && text.contains("twee;"),
        "B answered a sync step 1 without reading the log to its tip: {text:?}"
    );
    // And an export (still held): the same.
    a.push_text("t", "drie;");
    assert!(
        a_seen.wait_text("t", "drie;", T).await,
        "A's edit not stored"
    );
    tokio::time::sleep(QUIET).await;
    assert!(!b.text("t").contains("drie;"), "B followed while held");
    let exported = export(&nb, &board).await;
    assert!(
        exported.contains("drie;"),
        "B exported without reading the log to its tip: {exported}"
    );

    // Released: B follows on from the tip it caught up to, nothing twice, nothing lost.
    store_hooks(&nb, json!({"hold_follow": false})).await;
    a.push_text("t", "vier;");
    for c in [&b, &fresh] {
        assert!(c.wait_text("t", "vier;", T).await, "not followed after");
    }
    assert_eq!(b.text("t"), a.text("t"));
    assert_eq!(fresh.text("t"), a.text("t"));
}

/// A log that moves under every append (`force_moved`) makes a node give up the batch after
/// `MAX_MOVES` (20) tries again, each on what is stored: the edit's sender and the document's
/// other connection on that node are closed with 4503 within a bound, neither they nor a client
/// on the other node are sent the edit, and the node counted exactly 20 moves
/// (`tafel_log_moved_total`). Positive control: with the hook cleared, the same edit (the
/// sender's reconnect sends it again) is stored and forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_keeps_moving_closes_the_sender_with_4503() {
    let redis = Redis::start();
    let na = Tafel::start_hooked(Some(&redis.url()), &[]);
    let nb = Tafel::start_hooked(Some(&redis.url()), &[]);
    let board = create_board(&na).await;
    let a = YClient::connect_synced(&url(&na, &board, "e1")).await;
    let near = YClient::connect_synced(&url(&na, &board, "e2")).await;
    let far = YClient::connect_synced(&url(&nb, &board, "e3")).await;
    a.push_text("t", "vooraf;");
    for c in [&near, &far] {
        assert!(c.wait_text("t", "vooraf;", T).await);
    }
    let moved = counter(&na, "tafel_log_moved_total").await;

    store_hooks(&na, json!({"force_moved": true})).await;
    let sent = Instant::now();
    a.push_text("t", "nooit;");
    for (who, c) in [("sender", &a), ("other client", &near)] {
        assert!(
            c.wait(T, |s| s.closed.is_some()).await,
            "the {who} was not closed within {T:?}: the moved log retried without bound"
        );
        assert_eq!(c.closed().map(|c| c.0), Some(4503), "the {who}");
    }
    eprintln!("closed with 4503 after {:?}", sent.elapsed());
    tokio::time::sleep(QUIET).await;
    assert!(!near.text("t").contains("nooit;"), "forwarded unstored");
    assert!(!far.text("t").contains("nooit;"), "forwarded unstored");
    assert_eq!(
        counter(&na, "tafel_log_moved_total").await - moved,
        MAX_MOVES,
        "moves retried"
    );

    // Positive control: cleared, the reconnecting sender's sync step 2 stores the same edit,
    // and it is forwarded on both nodes.
    store_hooks(&na, json!({"force_moved": false})).await;
    let again = YClient::connect_with_doc(&url(&na, &board, "e1"), a.doc.clone())
        .await
        .expect("reconnect");
    assert!(again.wait(T, |s| s.synced).await, "no sync after reconnect");
    assert!(
        far.wait_text("t", "nooit;", T).await,
        "not forwarded: {:?}",
        far.text("t")
    );
    let fresh = YClient::connect_synced(&url(&na, &board, "e4")).await;
    assert!(fresh.wait_text("t", "nooit;", T).await, "not stored");
    assert_eq!(again.closed(), None);
}
