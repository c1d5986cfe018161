//! The `tafel` binary as an operator runs it: `tafel token`, `--templates`, the connection
//! bound, stopping on SIGTERM and SIGINT with clients connected, and a store holding an update
//! that cannot be decoded.

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde_json::{json, Value};
use tafel_protocol::{BoardId, DocKey, DocName, Role};
use tafel_server::store::{RedbStore, Store};
use tafel_tests::api::{call, create_board, facilitator, token, ws_status};
use tafel_tests::client::YClient;
use tafel_tests::procs::{tafel_bin, Redis, Tafel, TEST_SECRET};

const T: Duration = Duration::from_secs(10);

/// Runs `tafel token ARGS` with `secret` in `TAFEL_JWT_SECRET` (none when `None`); returns the
/// exit code, stdout and stderr.
fn tafel_token(secret: Option<&str>, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(tafel_bin());
    cmd.arg("token").args(args).env_remove("TAFEL_JWT_SECRET");
    if let Some(s) = secret {
        cmd.env("TAFEL_JWT_SECRET", s);
    }
    let out = cmd.output().expect("run tafel token");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tafel token` prints a token the server accepts with the role, board and name asked for; a
/// token minted with another secret is refused (401); `--board '*'` is refused for any role but
/// the facilitator, and a missing secret is refused, each with exit code 2 and a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tafel_token_mints_what_serve_accepts() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let (code, tok, err) = tafel_token(
        Some(TEST_SECRET),
        &[
            "--board", &board, "--role", "union", "--name", "Ute", "--ttl", "1h",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (s, me) = call(&t, Method::GET, &format!("/api/boards/{board}"), &tok, None).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["you"]["role"], "union", "{me}");
    assert_eq!(me["you"]["display"], "Ute", "{me}");
    let ws = t.ws_url(&board, "party-union", &tok);
    assert_eq!(ws_status(&ws).await, 101);
    assert_eq!(
        ws_status(&t.ws_url(&board, "party-employer", &tok)).await,
        403,
        "a union token opens no employer workspace"
    );

    let (code, wild, err) = tafel_token(
        Some(TEST_SECRET),
        &["--board", "*", "--role", "facilitator", "--name", "Fien"],
    );
    assert_eq!(code, Some(0), "{err}");
    let (s, list) = call(&t, Method::GET, "/api/boards", &wild, None).await;
    assert_eq!(s, 200, "{list}");
    assert!(list.to_string().contains(&board), "{list}");

    let (code, other, _) = tafel_token(
        Some("een-ander-geheim"),
        &["--board", &board, "--role", "union", "--name", "Ute"],
    );
    assert_eq!(code, Some(0));
    let (s, body) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}"),
        &other,
        None,
    )
    .await;
    assert_eq!(s, 401, "a token of another secret: {body}");

    let (code, out, err) = tafel_token(
        Some(TEST_SECRET),
        &["--board", "*", "--role", "employer", "--name", "E"],
    );
    assert_eq!(code, Some(2), "stdout {out:?}");
    assert!(
        out.is_empty() && err.contains("only for the facilitator"),
        "{err}"
    );
    let (code, out, err) =
        tafel_token(None, &["--board", &board, "--role", "union", "--name", "U"]);
    assert_eq!(code, Some(2), "stdout {out:?}");
    assert!(out.is_empty() && err.contains("no secret"), "{err}");
}

/// A copy of a built-in template, with `id` and `title` changed.
fn template_copy(id: &str, title: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../server/templates/cao-di-sector.json"
    );
    let mut tpl: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("built-in template"))
            .expect("template JSON");
    tpl["id"] = json!(id);
    tpl["title"] = json!(title);
    tpl
}

/// `--templates DIR` adds the folder's templates to the built-in ones: listed, served whole and
/// usable for a new board. A folder with an invalid template stops the start, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_folder_adds_templates_and_a_bad_one_stops_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tpl = template_copy("cao-di-proef", "Proeftemplate");
    std::fs::write(dir.path().join("cao-di-proef.json"), tpl.to_string()).expect("write");
    let folder = dir.path().to_str().expect("utf-8 path");
    let t = Tafel::start_embedded_with(&[("TAFEL_TEMPLATES", folder)]);
    let fac = facilitator();
    let (s, list) = call(&t, Method::GET, "/api/templates", &fac, None).await;
    assert_eq!(s, 200, "{list}");
    let ids: Vec<&str> = list
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    for id in ["cao-di-proef", "cao-di-sector", "cao-di-organisatie"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let (s, whole) = call(&t, Method::GET, "/api/templates/cao-di-proef", &fac, None).await;
    assert_eq!(s, 200, "{whole}");
    assert_eq!(whole["title"], "Proeftemplate");
    let (s, made) = call(
        &t,
        Method::POST,
        "/api/boards",
        &fac,
        Some(json!({"title": "Met proef", "template": "cao-di-proef"})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    drop(t);

    let bad_dir = tempfile::tempdir().expect("temp dir");
    let mut bad = template_copy("cao-di-kapot", "Kapot");
    bad["pijlers"].as_array_mut().expect("pijlers").truncate(2);
    std::fs::write(bad_dir.path().join("cao-di-kapot.json"), bad.to_string()).expect("write");
    let (status, out) = Tafel::start_refused(&[(
        "TAFEL_TEMPLATES",
        bad_dir.path().to_str().expect("utf-8 path"),
    )]);
    assert!(!status.success(), "{out}");
    assert!(
        out.contains("cao-di-kapot") && out.to_lowercase().contains("pijler"),
        "the refusal names the template and its fault:\n{out}"
    );
}

/// With `TAFEL_MAX_CONNECTIONS=2`, a third WebSocket is answered 503 before the upgrade; once one
/// of the two leaves, a new one is accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_answers_503() {
    let t = Tafel::start_embedded_with(&[("TAFEL_MAX_CONNECTIONS", "2")]);
    let board = create_board(&t).await;
    let url = t.ws_url(&board, "canvas", &token(Role::Employer, &board, "e"));
    let a = YClient::connect_synced(&url).await;
    let b = YClient::connect_synced(&url).await;
    assert_eq!(
        ws_status(&url).await,
        503,
        "a third connection over the bound"
    );
    let (s, _) = call(&t, Method::GET, "/api/templates", &facilitator(), None).await;
    assert_eq!(s, 200, "HTTP is not limited by the WebSocket bound");
    assert_eq!((a.closed(), b.closed()), (None, None));
    a.close();
    // The permit is returned once the server has finished with the connection.
    let mut status = 0;
    for _ in 0..100 {
        status = ws_status(&url).await;
        if status == 101 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 101, "a connection is accepted again once one left");
}

/// Stops on `signal` with two clients connected: both get close 1001, the process exits 0, and
/// every edit forwarded before the signal is there after a restart.
async fn stops_cleanly(t: &mut Tafel, stop: fn(&mut Tafel) -> std::process::ExitStatus) {
    let board = create_board(t).await;
    let url = t.ws_url(
        &board,
        "party-employer",
        &token(Role::Employer, &board, "e"),
    );
    let a = YClient::connect_synced(&url).await;
    let b = YClient::connect_synced(&url).await;
    for i in 0..20 {
        a.push_text("t", &format!("[{i}]"));
    }
    assert!(b.wait_text("t", "[19]", T).await, "{:?}", b.text("t"));
    let status = stop(t);
    assert!(status.success(), "exit status {status}:\n{}", t.log());
    for c in [&a, &b] {
        assert!(c.wait(T, |s| s.closed.is_some()).await);
        assert_eq!(c.closed().map(|c| c.0), Some(1001), "close on shutdown");
    }
    t.restart();
    let c = YClient::connect_synced(&url).await;
    let text = c.text("t");
    for i in 0..20 {
        assert!(text.contains(&format!("[{i}]")), "[{i}] lost: {text:?}");
    }
}

/// SIGTERM with live clients on the embedded store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_live_clients_closes_1001_and_keeps_edits() {
    let mut t = Tafel::start_embedded();
    stops_cleanly(&mut t, Tafel::terminate).await;
}

/// SIGINT (Ctrl-C) with live clients, on Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_with_live_clients_closes_1001_and_keeps_edits() {
    let redis = Redis::start();
    let mut t = Tafel::start_redis(&redis);
    stops_cleanly(&mut t, Tafel::interrupt).await;
}

/// A stored update that cannot be decoded (here: garbage appended to a document's log while
/// tafel was down) is skipped at load, loudly in the log; what can be read is served, and the
/// document takes new edits that survive a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_stored_update_is_skipped_at_load() {
    let mut t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let url = t.ws_url(
        &board,
        "party-employer",
        &token(Role::Employer, &board, "e"),
    );
    let a = YClient::connect_synced(&url).await;
    a.push_text("t", "leesbaar;");
    let b = YClient::connect_synced(&url).await;
    assert!(b.wait_text("t", "leesbaar;", T).await);
    drop((a, b));
    t.kill9();
    {
        let store = RedbStore::open(&t.data_dir()).await.expect("open store");
        let key = DocKey::new(
            BoardId::parse(&board).expect("board id"),
            DocName::parse("party-employer").expect("doc name"),
        );
        let before = store.load(&key).await.expect("load");
        assert!(!before.log.is_empty() || before.snapshot.is_some());
        store
            .append(&key, &[Bytes::from_static(&[0xff, 0xfe, 0xfd, 0x00, 0x42])])
            .await
            .expect("append garbage");
    }
    t.restart();
    let c = YClient::connect_synced(&url).await;
    assert_eq!(c.text("t"), "leesbaar;", "the readable part is served");
    assert!(
        t.log().contains("unreadable"),
        "the skipped update is logged:\n{}",
        t.log()
    );
    c.push_text("t", "nieuw;");
    let d = YClient::connect_synced(&url).await;
    assert!(d.wait_text("t", "nieuw;", T).await);
    drop((c, d));
    t.restart();
    let e = YClient::connect_synced(&url).await;
    assert_eq!(e.text("t"), "leesbaar;nieuw;");
    let (s, _) = call(&t, Method::GET, "/healthz", &facilitator(), None).await;
    assert_eq!(s, 200);
}
