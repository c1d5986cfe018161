//! Sync with real clients: the npm `y-websocket` provider and our Rust client, on both stores.
//! Free-form content (a text `t`) is written to a party workspace, which has no board schema.

use std::time::Duration;

use tafel_protocol::Role;
use tafel_tests::api::{create_board, token};
use tafel_tests::client::YClient;
use tafel_tests::node;
use tafel_tests::procs::{Redis, Tafel};

async fn node_scenario(
    t: &Tafel,
    board: &str,
    doc: &str,
    scenario: &str,
    extra: &[&str],
) -> serde_json::Value {
    node_scenario_as(t, board, doc, Role::Employer, scenario, extra).await
}

/// Runs a yws.mjs scenario whose clients hold tokens of `role`.
async fn node_scenario_as(
    t: &Tafel,
    board: &str,
    doc: &str,
    role: Role,
    scenario: &str,
    extra: &[&str],
) -> serde_json::Value {
    let tok = token(role, board, "npm-1");
    let tok2 = token(role, board, "npm-2");
    let base = t.ws_base(board);
    let mut args = vec![
        "--base", &base, "--doc", doc, "--token", &tok, "--token2", &tok2,
    ];
    args.extend_from_slice(extra);
    let (ok, json) = node::run(scenario, &args).await;
    assert!(ok, "{scenario} failed: {json}\nserver log:\n{}", t.log());
    json
}

/// Two npm y-websocket clients editing one text concurrently converge, and see each other's
/// awareness, through the embedded store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_y_websocket_clients_converge() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let out = node_scenario(&t, &board, "party-employer", "two-converge", &[]).await;
    let text = out["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("hello from A") && text.contains("hello from B"),
        "{out}"
    );
}

/// The same with Redis as the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_y_websocket_clients_converge_on_redis() {
    let redis = Redis::start();
    let t = Tafel::start_redis(&redis);
    let board = create_board(&t).await;
    node_scenario(&t, &board, "party-employer", "two-converge", &[]).await;
}

/// A client that joins after edits were made receives the full state (text and map).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_gets_full_state() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let out = node_scenario(
        &t,
        &board,
        "party-employer",
        "late-joiner",
        &["--text", "laat maar komen"],
    )
    .await;
    assert_eq!(out["k"], 42, "{out}");
    assert!(out["text"]
        .as_str()
        .unwrap_or_default()
        .contains("laat maar komen"));
}

/// 200 npm y-websocket clients on one document each write once and all converge to the same
/// text holding all 200 contributions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_converge() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let out = node_scenario(
        &t,
        &board,
        "party-employer",
        "many-converge",
        &["--clients", "200"],
    )
    .await;
    assert_eq!(out["clients"], 200, "{out}");
}

/// When a connection drops without saying goodbye, the server removes its awareness state and
/// tells the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_awareness_is_removed() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    node_scenario(&t, &board, "party-employer", "awareness-leave", &[]).await;
}

/// Our Rust client and the npm client interoperate: an edit written by the npm client is read
/// by the Rust client, and the other way round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_npm_clients_interoperate() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    node_scenario(
        &t,
        &board,
        "party-employer",
        "write",
        &["--text", "van node"],
    )
    .await;
    let tok = token(Role::Employer, &board, "emp-7");
    let c = YClient::connect_synced(&t.ws_url(&board, "party-employer", &tok)).await;
    assert!(c.wait_text("t", "van node", Duration::from_secs(5)).await);
    c.push_text("t", " en van rust");
    node_scenario(
        &t,
        &board,
        "party-employer",
        "read",
        &["--text", "van node en van rust"],
    )
    .await;
}

/// The npm y-websocket client in a read-only role (an observer on the canvas): it syncs and reads
/// what a writer wrote (its always-sent empty sync step 2 is not refused), its own edit is
/// answered with `permission-denied` and a read-only reason, and that edit reaches no one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_client_in_a_read_only_role() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let url = t.ws_url(&board, "control", &token(Role::Facilitator, &board, "f"));
    // `control` takes free-form roots from the facilitator (canvas takes only cards).
    let writer = YClient::connect_synced(&url).await;
    writer.push_text("t", "van de facilitator");
    let out = node_scenario_as(
        &t,
        &board,
        "control",
        Role::Observer,
        "read",
        &["--text", "van de facilitator"],
    )
    .await;
    assert!(
        out["text"]
            .as_str()
            .is_some_and(|s| s.contains("van de facilitator")),
        "{out}"
    );
    let out = node_scenario_as(
        &t,
        &board,
        "control",
        Role::Observer,
        "denied",
        &["--text", "stiekem van de waarnemer"],
    )
    .await;
    let reason = out["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("read-only"),
        "refused for {reason:?}: {out}"
    );
    let fresh = YClient::connect_synced(&url).await;
    assert_eq!(fresh.text("t"), "van de facilitator");
    assert_eq!(writer.text("t"), "van de facilitator");
    assert!(writer.seen().denied.is_empty());
}

/// Concurrent first connections to a document that is not loaded yet share one load: every
/// client, however early, ends with the stored state (none sees an empty document and stays so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_joins_see_stored_state() {
    let mut t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let tok = token(Role::Employer, &board, "e1");
    let url = t.ws_url(&board, "party-employer", &tok);
    {
        let c = YClient::connect_synced(&url).await;
        c.push_text("t", &"x".repeat(200_000));
        c.push_text("t", "EINDE");
        let check = YClient::connect_synced(&url).await;
        assert!(check.wait_text("t", "EINDE", Duration::from_secs(10)).await);
    }
    t.restart();
    let joins = (0..20).map(|_| YClient::connect_synced(&url));
    let clients = futures_util::future::join_all(joins).await;
    for c in &clients {
        // The first sync step 2 already holds the stored text: no waiting for later updates.
        assert!(
            c.text("t").ends_with("EINDE"),
            "a client synced without the stored state"
        );
    }
}

/// Real npm y-websocket clients, each alone on `control`, `gap` and a party workspace and sending
/// no awareness (as the web client does there), stay connected for 90 s, three times the
/// client's 30 s silence timeout: the server nudges a connection it sent nothing for 15 s. The
/// scenario also shows that a dropped socket is counted (the count is live).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_client_alone_is_not_reconnected() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let base = t.ws_base(&board);
    let tok = token(Role::Facilitator, &board, "alleen");
    let (ok, out) = node::run(
        "idle-alone",
        &[
            "--base",
            &base,
            "--doc",
            "control,gap,party-employer",
            "--token",
            &tok,
            "--seconds",
            "90",
            "--timeout-ms",
            "120000",
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out["closes"], 0, "{out}");
    assert_eq!(
        out["dropCounted"], true,
        "the close count is not live: {out}"
    );
}
