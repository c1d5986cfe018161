//! Nothing lost: restarts, kill -9 right after an edit was seen, SIGTERM, compaction, and Redis
//! going away mid-session.

use std::time::Duration;

use tafel_protocol::Role;
use tafel_tests::api::{create_board, http, token, ws_status};
use tafel_tests::client::YClient;
use tafel_tests::procs::{Redis, Tafel};

const SECS10: Duration = Duration::from_secs(10);

async fn restart_keeps_edits(mut t: Tafel) {
    let board = create_board(&t).await;
    let tok = token(Role::Employer, &board, "e1");
    let url = t.ws_url(&board, "party-employer", &tok);
    {
        let a = YClient::connect_synced(&url).await;
        for i in 0..50 {
            a.push_text("t", &format!("regel {i};"));
        }
        a.set_map("m", "prioriteit", 3);
        let b = YClient::connect_synced(&url).await;
        assert!(b.wait_text("t", "regel 49;", SECS10).await);
    }
    let status = t.terminate();
    assert!(status.success(), "SIGTERM must exit 0, got {status}");
    t.restart();
    let c = YClient::connect_synced(&url).await;
    let text = c.text("t");
    for i in 0..50 {
        assert!(text.contains(&format!("regel {i};")), "lost regel {i}");
    }
}

/// A graceful stop (SIGTERM, exit 0) and start on the same embedded store keeps every edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_every_edit_embedded() {
    restart_keeps_edits(Tafel::start_embedded()).await;
}

/// The same on Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_every_edit_redis() {
    let redis = Redis::start();
    restart_keeps_edits(Tafel::start_redis(&redis)).await;
}

async fn kill9_after_seen(mut t: Tafel) {
    let board = create_board(&t).await;
    let url_a = t.ws_url(
        &board,
        "party-employer",
        &token(Role::Employer, &board, "e1"),
    );
    let url_b = t.ws_url(
        &board,
        "party-employer",
        &token(Role::Employer, &board, "u1"),
    );
    for round in 0..5 {
        let a = YClient::connect_synced(&url_a).await;
        let b = YClient::connect_synced(&url_b).await;
        let word = format!("gezien-{round}");
        a.push_text("t", &word);
        assert!(b.wait_text("t", &word, SECS10).await, "b never saw {word}");
        // B has the edit: kill at once, without any chance to store more.
        t.kill9();
        t.restart();
        let c = YClient::connect_synced(&url_b).await;
        assert!(
            c.text("t").contains(&word),
            "edit {word} seen by b was lost by kill -9"
        );
    }
}

/// kill -9 right after a second client received an edit: after restart the edit is there
/// (embedded store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_keeps_seen_edit_embedded() {
    kill9_after_seen(Tafel::start_embedded()).await;
}

/// The same on Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_keeps_seen_edit_redis() {
    let redis = Redis::start();
    kill9_after_seen(Tafel::start_redis(&redis)).await;
}

/// With a low compaction threshold the log is compacted many times while editing; everything
/// survives a kill -9 and reload (snapshot + rest of log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_loses_nothing() {
    let redis = Redis::start();
    for mut t in [
        Tafel::start_embedded_with(&[("TAFEL_COMPACT_UPDATES", "7")]),
        Tafel::start_with(&redis.url(), &[("TAFEL_COMPACT_UPDATES", "7")]),
    ] {
        let board = create_board(&t).await;
        let url = t.ws_url(
            &board,
            "party-employer",
            &token(Role::Employer, &board, "e1"),
        );
        let a = YClient::connect_synced(&url).await;
        for i in 0..100 {
            a.push_text("t", &format!("{i},"));
        }
        let b = YClient::connect_synced(&url).await;
        assert!(b.wait_text("t", "99,", SECS10).await);
        t.kill9();
        t.restart();
        let c = YClient::connect_synced(&url).await;
        let text = c.text("t");
        for i in 0..100 {
            assert!(
                text.contains(&format!("{i},")),
                "lost {i} after compaction: {text}"
            );
        }
        assert!(t.log().contains("compacted"), "no compaction happened");
    }
}

/// Redis is killed mid-session and restarted: no edit is lost, /readyz says 503 while it is
/// down, and service resumes without restarting tafel. Edits made during the outage are not
/// accepted silently (the connection closes with 4503), and the client's offline edits reach
/// the store once it reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_loses_nothing_and_recovers() {
    let mut redis = Redis::start();
    let t = Tafel::start_redis(&redis);
    let board = create_board(&t).await;
    let url = t.ws_url(
        &board,
        "party-employer",
        &token(Role::Employer, &board, "e1"),
    );
    let a = YClient::connect_synced(&url).await;
    a.push_text("t", "voor de storing;");
    let b = YClient::connect_synced(&url).await;
    assert!(b.wait_text("t", "voor de storing;", SECS10).await);

    redis.kill();
    a.push_text("t", "tijdens de storing;");
    assert!(
        a.wait(SECS10, |s| s.closed.is_some()).await,
        "a write during the outage must close the connection"
    );
    assert_eq!(a.closed().map(|c| c.0), Some(4503));
    assert!(
        !b.text("t").contains("tijdens"),
        "an unstored edit was forwarded"
    );
    let ready = http()
        .get(format!("{}/readyz", t.http()))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);

    redis.restart();
    let ready_again = tafel_tests::eventually(Duration::from_secs(15), || {
        std::net::TcpStream::connect(("127.0.0.1", redis.port)).is_ok()
    })
    .await;
    assert!(ready_again);
    let mut ok = false;
    for _ in 0..100 {
        let r = http()
            .get(format!("{}/readyz", t.http()))
            .send()
            .await
            .expect("readyz");
        if r.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "readyz did not recover:\n{}", t.log());

    // A fresh document sees what was stored before the outage, not the refused edit.
    let fresh = YClient::connect_synced(&url).await;
    assert!(
        fresh.wait_text("t", "voor de storing;", SECS10).await,
        "a fresh client lost the edit made before the outage: {:?}",
        fresh.text("t")
    );
    assert!(
        !fresh.text("t").contains("tijdens"),
        "the edit refused during the outage was applied: {:?}",
        fresh.text("t")
    );
    drop(fresh);

    // Reconnect a's document (as the npm provider does): its sync step 2 carries the edit.
    let again = YClient::connect_with_doc(&url, a.doc.clone())
        .await
        .expect("reconnect");
    assert!(again.wait(SECS10, |s| s.synced).await);
    let c = YClient::connect_synced(&url).await;
    assert!(
        c.wait_text("t", "tijdens de storing;", SECS10).await,
        "offline edit lost: {}",
        c.text("t")
    );
    drop((again, c, a, b));

    // Both edits are in Redis, not only in tafel's memory: a new tafel process on the same
    // Redis serves them to a fresh Y.Doc. A Redis that lost everything fails here.
    drop(t);
    let t2 = Tafel::start_redis(&redis);
    let url2 = t2.ws_url(
        &board,
        "party-employer",
        &token(Role::Employer, &board, "e1"),
    );
    let d = YClient::connect_synced(&url2).await;
    let text = d.text("t");
    assert!(
        text.contains("voor de storing;") && text.contains("tijdens de storing;"),
        "after a restart on the same Redis a fresh client sees {text:?}"
    );
}

/// Store before forward, shown deterministically: while Redis hangs, an edit is not forwarded to
/// anyone; once Redis answers, it is stored and forwarded, and survives kill -9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_forwarded_before_it_is_stored() {
    let redis = Redis::start();
    let mut t = Tafel::start_redis(&redis);
    let board = create_board(&t).await;
    let url = t.ws_url(
        &board,
        "party-employer",
        &token(Role::Employer, &board, "e1"),
    );
    let a = YClient::connect_synced(&url).await;
    let b = YClient::connect_synced(&url).await;
    redis.pause();
    a.push_text("t", "wacht op opslag");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let early = b.text("t");
    redis.resume();
    assert!(
        !early.contains("wacht"),
        "forwarded before the store acknowledged it"
    );
    assert!(
        b.wait_text("t", "wacht op opslag", SECS10).await,
        "not forwarded after the store answered"
    );
    t.kill9();
    t.restart();
    let c = YClient::connect_synced(&url).await;
    assert!(c.text("t").contains("wacht op opslag"));
}

/// README: "503 when the store is down" before the upgrade, also for a document still loaded in
/// memory: the failed ping marks the store unhealthy and the upgrade is refused until a probe
/// succeeds (positive control: 101 again once Redis is back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connection_during_store_outage_gets_503() {
    let mut redis = Redis::start();
    let t = Tafel::start_redis(&redis);
    let board = create_board(&t).await;
    let url = t.ws_url(
        &board,
        "party-employer",
        &token(Role::Employer, &board, "e1"),
    );
    let _a = YClient::connect_synced(&url).await;
    redis.kill();
    let mut ready = 200;
    for _ in 0..100 {
        ready = http()
            .get(format!("{}/readyz", t.http()))
            .send()
            .await
            .expect("readyz")
            .status()
            .as_u16();
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 503, "/readyz while Redis is down");
    assert_eq!(
        ws_status(&url).await,
        503,
        "a new connection while Redis is down"
    );
    redis.restart();
    let mut status = 0;
    for _ in 0..150 {
        status = ws_status(&url).await;
        if status == 101 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        101,
        "still refused once Redis is back:\n{}",
        t.log()
    );
}
