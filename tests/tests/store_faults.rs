//! The store misbehaving, made deterministic with the `--test-hooks` store hooks
//! (`POST /api/test-hooks/store`): writes held (a store that hangs), writes failing (a store
//! that is gone), a compaction stopped in the middle — and a really full disk (a 16 MiB tmpfs).
//! Each on the embedded store and on Redis where the claim is about both.

use std::time::Duration;

use serde_json::json;
use tafel_protocol::Role;
use tafel_tests::api::{create_board, store_hooks, token, ws_status};
use tafel_tests::client::YClient;
use tafel_tests::eventually;
use tafel_tests::procs::{Redis, Tafel};

const T: Duration = Duration::from_secs(15);

/// Waits until the hooks report `field` (`held` or `paused`) at least 1.
async fn hooks_report(t: &Tafel, field: &str) -> bool {
    let deadline = tokio::time::Instant::now() + T;
    while tokio::time::Instant::now() < deadline {
        if store_hooks(t, json!({})).await[field].as_u64().unwrap_or(0) >= 1 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Waits until the store counts as healthy again (the probe pinged it).
async fn healthy_again(t: &Tafel) -> bool {
    let deadline = tokio::time::Instant::now() + T;
    while tokio::time::Instant::now() < deadline {
        if store_hooks(t, json!({})).await["healthy"] == json!(true) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn url(t: &Tafel, board: &str, sub: &str) -> String {
    t.ws_url(board, "party-employer", &token(Role::Employer, board, sub))
}

/// While A's edit waits for the store, a new client's sync step 1 is not answered; when that
/// write then fails, the new client never gets the edit (its answer comes from the store), A is
/// closed with 4503, and A's reconnect brings the edit to everyone once the store is back.
async fn no_sync_step2_with_unstored_state(t: Tafel) {
    let board = create_board(&t).await;
    let a = YClient::connect_synced(&url(&t, &board, "e1")).await;
    a.push_text("t", "opgeslagen;");
    let seen = YClient::connect_synced(&url(&t, &board, "e2")).await;
    assert!(seen.wait_text("t", "opgeslagen;", T).await);

    store_hooks(&t, json!({"hold_writes": true})).await;
    a.push_text("t", "ongeborgen;");
    assert!(hooks_report(&t, "held").await, "the write was never held");
    let late = YClient::connect(&url(&t, &board, "e3"))
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    {
        let s = late.seen();
        assert!(
            !s.synced,
            "a sync step 1 was answered while an accepted edit was not stored"
        );
    }
    assert!(!late.text("t").contains("ongeborgen"));
    assert!(!seen.text("t").contains("ongeborgen"), "forwarded unstored");

    store_hooks(&t, json!({"fail_writes": true, "hold_writes": false})).await;
    assert!(a.wait(T, |s| s.closed.is_some()).await, "A left open");
    assert_eq!(a.closed().map(|c| c.0), Some(4503), "A: {:?}", a.closed());
    // The late client is answered from the store (or closed): never with the unstored edit.
    assert!(
        late.wait(T, |s| s.synced || s.closed.is_some()).await,
        "the late client got neither an answer nor a close"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !late.text("t").contains("ongeborgen") && !seen.text("t").contains("ongeborgen"),
        "the edit whose write failed reached another client: late {:?}, seen {:?}",
        late.text("t"),
        seen.text("t")
    );

    // Positive control: once the store is back, A's reconnect (sync step 2) stores it and a
    // fresh client gets it.
    store_hooks(&t, json!({"fail_writes": false})).await;
    assert!(healthy_again(&t).await, "the store never became healthy");
    let again = YClient::connect_with_doc(&url(&t, &board, "e1"), a.doc.clone())
        .await
        .expect("reconnect");
    assert!(again.wait(T, |s| s.synced).await);
    let fresh = YClient::connect_synced(&url(&t, &board, "e4")).await;
    assert!(
        fresh.wait_text("t", "ongeborgen;", T).await,
        "the resent edit did not arrive: {:?}",
        fresh.text("t")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sync_step2_is_answered_with_unstored_state_embedded() {
    no_sync_step2_with_unstored_state(Tafel::start_hooked(None, &[])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sync_step2_is_answered_with_unstored_state_redis() {
    let redis = Redis::start();
    no_sync_step2_with_unstored_state(Tafel::start_hooked(Some(&redis.url()), &[])).await;
}

/// Store before forward on the embedded store, deterministically: while the write is held, the
/// edit reaches nobody, and a kill -9 then loses an edit nobody saw; once the write goes
/// through, the edit is forwarded and survives kill -9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_before_forward_embedded() {
    let mut t = Tafel::start_hooked(None, &[]);
    let board = create_board(&t).await;
    let a = YClient::connect_synced(&url(&t, &board, "e1")).await;
    let b = YClient::connect_synced(&url(&t, &board, "e2")).await;

    store_hooks(&t, json!({"hold_writes": true})).await;
    a.push_text("t", "nooit-opgeslagen;");
    assert!(hooks_report(&t, "held").await, "the write was never held");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        !b.text("t").contains("nooit"),
        "forwarded before the store acknowledged it"
    );
    t.restart(); // kill -9 with the write still held: nobody has seen the edit
    let c = YClient::connect_synced(&url(&t, &board, "e3")).await;
    assert!(
        !c.text("t").contains("nooit"),
        "an edit that was never stored came back"
    );
    drop((a, b, c));

    let a = YClient::connect_synced(&url(&t, &board, "e1")).await;
    let b = YClient::connect_synced(&url(&t, &board, "e2")).await;
    store_hooks(&t, json!({"hold_writes": true})).await;
    a.push_text("t", "opgeslagen;");
    assert!(hooks_report(&t, "held").await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!b.text("t").contains("opgeslagen"), "forwarded while held");
    store_hooks(&t, json!({"hold_writes": false})).await;
    assert!(
        b.wait_text("t", "opgeslagen;", T).await,
        "not forwarded after the store answered"
    );
    t.restart();
    let c = YClient::connect_synced(&url(&t, &board, "e3")).await;
    assert!(c.text("t").contains("opgeslagen;"), "seen, then lost");
}

/// When the embedded store fails, every connection of the document (two writers, the facilitator) is
/// closed with 4503, and new connections get 503 before the upgrade until the store answers;
/// then they are upgraded again and nothing stored is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_failure_closes_every_connection_with_4503() {
    let t = Tafel::start_hooked(None, &[]);
    let board = create_board(&t).await;
    let a = YClient::connect_synced(&url(&t, &board, "e1")).await;
    a.push_text("t", "voor;");
    let b = YClient::connect_synced(&url(&t, &board, "e2")).await;
    let obs_url = t.ws_url(
        &board,
        "party-employer",
        &token(Role::Facilitator, &board, "f1"),
    );
    let obs = YClient::connect_synced(&obs_url).await;
    assert!(b.wait_text("t", "voor;", T).await);

    store_hooks(&t, json!({"fail_writes": true})).await;
    a.push_text("t", "tijdens;");
    for (who, c) in [("writer", &a), ("other writer", &b), ("facilitator", &obs)] {
        assert!(
            c.wait(T, |s| s.closed.is_some()).await,
            "the {who} left open"
        );
        assert_eq!(
            c.closed().map(|c| c.0),
            Some(4503),
            "the {who}: {:?}",
            c.closed()
        );
    }
    assert_eq!(ws_status(&url(&t, &board, "e5")).await, 503, "a new one");
    assert_eq!(ws_status(&obs_url).await, 503, "a new facilitator");
    let ready = reqwest::get(format!("{}/readyz", t.http()))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503, "/readyz while writes fail");

    // Positive control: the store answers again, connections are upgraded, nothing is lost.
    store_hooks(&t, json!({"fail_writes": false})).await;
    assert!(healthy_again(&t).await);
    assert_eq!(ws_status(&url(&t, &board, "e5")).await, 101);
    let c = YClient::connect_synced(&url(&t, &board, "e6")).await;
    assert!(c.wait_text("t", "voor;", T).await);
    assert!(!c.text("t").contains("tijdens"), "a failed write applied");
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount -t tmpfs failed (the full-disk test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system under `dir` with a file until writing fails (ENOSPC).
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0x55u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

/// A really full disk under the embedded store (a 16 MiB tmpfs): the writing document's every
/// connection is closed with 4503 and nothing unstored is forwarded; a new connection is refused
/// (503 before the upgrade, or 4503 at its first write); once space is freed and the server
/// restarted, everything stored before is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_closes_every_connection_with_4503() {
    let fs = Tmpfs::mount("16m");
    let data = fs.dir.path().join("data");
    let mut t = Tafel::start_hooked_in(&data, &[]);
    let board = create_board(&t).await;
    let a = YClient::connect_synced(&url(&t, &board, "e1")).await;
    a.push_text("t", "voor-vol;");
    let b = YClient::connect_synced(&url(&t, &board, "e2")).await;
    assert!(b.wait_text("t", "voor-vol;", T).await);

    let filler = fill(fs.dir.path());
    // Edits large enough that redb must grow its file, until the write fails.
    let big = "x".repeat(256 * 1024);
    for i in 0..64 {
        if a.seen().closed.is_some() {
            break;
        }
        a.push_text("t", &format!("vol-{i}:{big};"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        a.wait(T, |s| s.closed.is_some()).await,
        "16 MiB of edits on a full disk were all accepted:\n{}",
        t.log()
    );
    assert_eq!(a.closed().map(|c| c.0), Some(4503), "A: {:?}", a.closed());
    assert!(b.wait(T, |s| s.closed.is_some()).await, "B left open");
    assert_eq!(b.closed().map(|c| c.0), Some(4503), "B: {:?}", b.closed());
    assert!(
        t.log()
            .contains("store failed; closing the document's connections"),
        "{}",
        t.log()
    );

    // A new connection: refused before the upgrade, or closed at its first write.
    match ws_status(&url(&t, &board, "e3")).await {
        503 => {}
        101 => {
            let c = YClient::connect(&url(&t, &board, "e3"))
                .await
                .expect("connect");
            c.push_text("t", &format!("nieuw:{big};"));
            assert!(c.wait(T, |s| s.closed.is_some()).await, "new one left open");
            assert_eq!(c.closed().map(|c| c.0), Some(4503));
        }
        s => panic!("a new connection on a full disk got {s}"),
    }

    // Space back and a restart: what was stored before is there.
    std::fs::remove_file(&filler).expect("remove filler");
    t.restart();
    let d = YClient::connect_synced(&url(&t, &board, "e4")).await;
    assert!(
        d.wait_text("t", "voor-vol;", T).await,
        "lost what was stored before the disk filled"
    );
    drop(t);
}

/// kill -9 with a compaction stopped in the middle (redb: snapshot written and log trimmed in an
/// uncommitted transaction; Redis: the MULTI/EXEC built, not sent): after a restart every edit
/// another client saw is there. First, as the positive control, a compaction completes with the
/// hook off (so the kill also meets a stored snapshot plus a log).
async fn kill9_mid_compaction(mut t: Tafel) {
    let board = create_board(&t).await;
    let a = YClient::connect_synced(&url(&t, &board, "e1")).await;
    let b = YClient::connect_synced(&url(&t, &board, "e2")).await;
    let compactions = t.log().matches("compacted").count();
    for i in 0..12 {
        a.push_text("t", &format!("vooraf-{i};"));
    }
    assert!(b.wait_text("t", "vooraf-11;", T).await);
    assert!(
        eventually(T, || t.log().matches("compacted").count() > compactions).await,
        "no compaction completed with the hook off:\n{}",
        t.log()
    );

    store_hooks(&t, json!({"pause_compaction": true})).await;
    let mut pushed = 0;
    while store_hooks(&t, json!({})).await["paused"]
        .as_u64()
        .unwrap_or(0)
        == 0
        && pushed < 40
    {
        a.push_text("t", &format!("tijdens-{pushed};"));
        pushed += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(hooks_report(&t, "paused").await, "no compaction started");
    let seen = b.text("t");
    assert!(seen.contains("tijdens-0;"), "b saw nothing: {seen:?}");
    t.restart(); // kill -9 mid-compaction
    let c = YClient::connect_synced(&url(&t, &board, "e3")).await;
    let text = c.text("t");
    for word in seen.split(';').filter(|w| !w.is_empty()) {
        assert!(
            text.contains(&format!("{word};")),
            "{word} was seen before the kill and lost: {text:?}"
        );
    }
    // And the document takes edits again after the restart.
    c.push_text("t", "daarna;");
    let d = YClient::connect_synced(&url(&t, &board, "e4")).await;
    assert!(d.wait_text("t", "daarna;", T).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_compaction_loses_nothing_embedded() {
    kill9_mid_compaction(Tafel::start_hooked(None, &[("TAFEL_COMPACT_UPDATES", "6")])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_compaction_loses_nothing_redis() {
    let redis = Redis::start();
    kill9_mid_compaction(Tafel::start_hooked(
        Some(&redis.url()),
        &[("TAFEL_COMPACT_UPDATES", "6")],
    ))
    .await;
}

/// Without `--test-hooks` the store hooks do not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_hooks_are_off_by_default() {
    let t = Tafel::start_embedded();
    let (status, _) = tafel_tests::api::call(
        &t,
        reqwest::Method::POST,
        "/api/test-hooks/store",
        &tafel_tests::api::facilitator(),
        Some(json!({"fail_writes": true})),
    )
    .await;
    assert!(
        status == 404 || status == 405,
        "without --test-hooks the store hook answered {status}"
    );
    let board = create_board(&t).await;
    assert_eq!(ws_status(&url(&t, &board, "e1")).await, 101);
}
