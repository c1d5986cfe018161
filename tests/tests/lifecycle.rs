//! The server's life around the documents: probes and metrics, the document registry's idle
//! unloading, the generated-and-kept JWT secret, and board deletion erasing everything.

use std::time::Duration;

use tafel_protocol::Role;
use tafel_server::store::{RedbStore, RedisStore};
use tafel_tests::api::{create_board, facilitator, http, token, ws_status};
use tafel_tests::client::YClient;
use tafel_tests::procs::{Redis, Tafel};

const SECS5: Duration = Duration::from_secs(5);

use tafel_tests::api::metrics;

/// The value of one series in Prometheus text (first line that starts with `name`).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {name} in:\n{text}"))
}

/// /healthz and /readyz answer 200; /metrics has every promised series and they move: updates
/// in and out, store writes, refused updates, connections and loaded documents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics() {
    let t = Tafel::start_embedded();
    for p in ["/healthz", "/readyz"] {
        let r = http()
            .get(format!("{}{p}", t.http()))
            .send()
            .await
            .expect("probe");
        assert_eq!(r.status(), 200, "{p}");
    }
    let board = create_board(&t).await;
    let a = YClient::connect_synced(&t.ws_url(
        &board,
        "control",
        &token(Role::Facilitator, &board, "f"),
    ))
    .await;
    let b = YClient::connect_synced(&t.ws_url(&board, "control", &token(Role::Union, &board, "u")))
        .await;
    let o =
        YClient::connect_synced(&t.ws_url(&board, "control", &token(Role::Observer, &board, "o")))
            .await;
    a.push_text("t", "meten is weten");
    assert!(b.wait_text("t", "meten", SECS5).await);
    o.push_text("t", "nee");
    o.assert_refused(0, "read-only", SECS5).await;
    let m = metrics(&t).await;
    assert_eq!(metric(&m, "tafel_connections"), 3.0);
    // control (in use), and canvas and gap (seeded at creation, not yet unloaded).
    assert_eq!(metric(&m, "tafel_documents_loaded"), 3.0);
    assert!(metric(&m, "tafel_updates_in_total") >= 1.0);
    assert!(
        metric(&m, "tafel_updates_out_total") >= 2.0,
        "forwarded to b and o"
    );
    assert!(metric(&m, "tafel_bytes_in_total") > 0.0);
    assert!(metric(&m, "tafel_bytes_out_total") > 0.0);
    assert!(metric(&m, "tafel_store_write_seconds_count") >= 1.0);
    assert_eq!(metric(&m, "tafel_refused_updates_total"), 1.0);
    assert_eq!(metric(&m, "tafel_store_errors_total"), 0.0);
    assert_eq!(metric(&m, "tafel_slow_clients_closed_total"), 0.0);
}

/// A document is unloaded after its last connection leaves and the idle delay passes, and is
/// loaded again from the store on the next connection, with everything in it. Concurrent first
/// connections after that share one load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_documents_are_unloaded_and_reloaded_once() {
    let t = Tafel::start_embedded_with(&[("TAFEL_IDLE_EVICT_SECS", "1")]);
    let board = create_board(&t).await;
    let url = t.ws_url(&board, "party-union", &token(Role::Union, &board, "u"));
    {
        let a = YClient::connect_synced(&url).await;
        a.push_text("t", "blijft bewaard");
        let b = YClient::connect_synced(&url).await;
        assert!(b.wait_text("t", "blijft", SECS5).await);
        a.close();
        b.close();
    }
    let mut unloaded = false;
    for _ in 0..100 {
        if metric(&metrics(&t).await, "tafel_documents_loaded") == 0.0 {
            unloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(unloaded, "document still loaded after the idle delay");
    let loads_before = t
        .log()
        .matches(&format!("document loaded doc={board}/party-union"))
        .count();
    let joins = (0..10).map(|_| YClient::connect_synced(&url));
    let clients = futures_util::future::join_all(joins).await;
    for c in &clients {
        assert_eq!(c.text("t"), "blijft bewaard");
    }
    let loads_after = t
        .log()
        .matches(&format!("document loaded doc={board}/party-union"))
        .count();
    assert_eq!(
        loads_after - loads_before,
        1,
        "ten concurrent joins must share one load"
    );
}

/// Without a configured secret, serve generates one, keeps it in the store and prints a working
/// sign-in link; after a restart the same token still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_secret_is_kept() {
    let mut t = Tafel::start_embedded_with(&[("TAFEL_JWT_SECRET", "")]);
    let link_token = |log: &str| -> String {
        let line = log
            .lines()
            .find(|l| l.starts_with("Facilitator sign-in"))
            .expect("sign-in line")
            .to_owned();
        line.split("#token=")
            .nth(1)
            .expect("token in link")
            .trim()
            .to_owned()
    };
    let signin = link_token(&t.log());
    let r = http()
        .get(format!("{}/api/boards", t.http()))
        .bearer_auth(&signin)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200, "the printed sign-in token must work");
    // The test secret is not the generated one.
    let r = http()
        .get(format!("{}/api/boards", t.http()))
        .bearer_auth(facilitator())
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 401);
    t.restart();
    let r = http()
        .get(format!("{}/api/boards", t.http()))
        .bearer_auth(&signin)
        .send()
        .await
        .expect("req");
    assert_eq!(
        r.status(),
        200,
        "the generated secret must survive a restart"
    );
}

async fn delete_erases(t: &mut Tafel) -> String {
    let board = create_board(t).await;
    let keep = create_board(t).await;
    for doc in [
        "canvas",
        "gap",
        "control",
        "party-employer",
        "party-union",
        "party-employee",
    ] {
        for b in [&board, &keep] {
            let c =
                YClient::connect_synced(&t.ws_url(b, doc, &token(Role::Facilitator, b, "f"))).await;
            // Content the schema allows in each document: a card, a row, or free-form text.
            match doc {
                "canvas" => c.add_card("k", "bouwstenen", "inhoud", serde_json::json!({})),
                "gap" => c.add_item("rows", "r", serde_json::json!({}), "onderwerp", "inhoud"),
                _ => c.push_text("t", "inhoud"),
            }
            let check =
                YClient::connect_synced(&t.ws_url(b, doc, &token(Role::Facilitator, b, "f2")))
                    .await;
            assert!(
                check
                    .wait(SECS5, |_| check.text("t").contains("inhoud")
                        || check.items("cards").to_string().contains("inhoud")
                        || check.items("rows").to_string().contains("inhoud"))
                    .await,
                "{doc}: content not seen"
            );
        }
    }
    let live =
        YClient::connect_synced(&t.ws_url(&board, "canvas", &token(Role::Employer, &board, "e")))
            .await;
    let r = http()
        .delete(format!("{}/api/boards/{board}", t.http()))
        .bearer_auth(token(Role::Employer, &board, "e"))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403, "only a facilitator deletes");
    let r = http()
        .delete(format!("{}/api/boards/{board}", t.http()))
        .bearer_auth(facilitator())
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 204);
    assert!(
        live.wait(SECS5, |s| s.closed.is_some()).await,
        "live connection not closed"
    );
    assert_eq!(
        live.closed().map(|c| c.0),
        Some(1001),
        "a deleted board's connections close with 1001"
    );
    let r = http()
        .get(format!("{}/api/boards/{board}", t.http()))
        .bearer_auth(facilitator())
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 404);
    assert_eq!(
        ws_status(&t.ws_url(&board, "canvas", &token(Role::Employer, &board, "e"))).await,
        404
    );
    let r = http()
        .delete(format!("{}/api/boards/{board}", t.http()))
        .bearer_auth(facilitator())
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 404);
    // The other board is untouched.
    let c =
        YClient::connect_synced(&t.ws_url(&keep, "party-union", &token(Role::Union, &keep, "u")))
            .await;
    assert_eq!(c.text("t"), "inhoud");
    board
}

/// DELETE erases the board and all six documents from the embedded store: no key of it remains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_erases_everything_embedded() {
    let mut t = Tafel::start_embedded();
    let board = delete_erases(&mut t).await;
    t.kill9();
    let store = RedbStore::open(&t.data_dir()).await.expect("open store");
    let left = store.keys_mentioning(&board).await.expect("keys");
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The same on Redis, checked with KEYS over the whole database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_erases_everything_redis() {
    let redis = Redis::start();
    let mut t = Tafel::start_redis(&redis);
    let board = delete_erases(&mut t).await;
    let store = RedisStore::open(&redis.url()).await.expect("open store");
    let left = store.keys_mentioning(&board).await.expect("keys");
    assert!(left.is_empty(), "left behind: {left:?}");
}
