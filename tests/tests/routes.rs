//! Unknown paths and methods under `/api/` answer the contract's JSON error (404, 405), never
//! the web client's `index.html`, while the web client still answers its own paths.

use reqwest::Method;
use serde_json::Value;
use tafel_protocol::Role;
use tafel_tests::api::{call_text, create_board, facilitator, token};
use tafel_tests::procs::Tafel;

/// A server with a built web client (an `index.html` its fallback would serve).
fn with_web_client() -> (Tafel, tempfile::TempDir) {
    let web = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><title>Tafel</title>",
    )
    .expect("index.html");
    let dir = web.path().display().to_string();
    (Tafel::start_embedded_with(&[("TAFEL_WEB_DIR", &dir)]), web)
}

async fn raw(t: &Tafel, method: Method, path: &str, tok: &str) -> (u16, String, String) {
    call_text(t, method, path, tok).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_paths_and_methods_are_json_errors() {
    let (t, _web) = with_web_client();
    let board = create_board(&t).await;
    let fac = facilitator();
    // Positive control: the web client's fallback still serves index.html outside /api/.
    let (s, _, body) = raw(&t, Method::GET, "/some/client/route", &fac).await;
    assert_eq!(s, 200);
    assert!(body.contains("<title>Tafel</title>"), "web client: {body}");
    // And a known endpoint answers as before.
    let (s, _, _) = raw(&t, Method::GET, &format!("/api/boards/{board}"), &fac).await;
    assert_eq!(s, 200);

    let emp = token(Role::Employee, &board, "e1");
    for (method, path, tok, status, code) in [
        (Method::GET, "/api".to_owned(), &fac, 404, "not-found"),
        (
            Method::GET,
            "/api/nothing".to_owned(),
            &fac,
            404,
            "not-found",
        ),
        (
            Method::GET,
            format!("/api/boards/{board}/nope"),
            &fac,
            404,
            "not-found",
        ),
        (
            Method::GET,
            format!("/api/boards/{board}/a/b/c"),
            &emp,
            404,
            "not-found",
        ),
        (
            Method::POST,
            "/api/nothing".to_owned(),
            &emp,
            404,
            "not-found",
        ),
        (
            Method::PATCH,
            format!("/api/boards/{board}"),
            &fac,
            405,
            "method-not-allowed",
        ),
        (
            Method::PUT,
            "/api/boards".to_owned(),
            &fac,
            405,
            "method-not-allowed",
        ),
        (
            Method::DELETE,
            "/api/templates".to_owned(),
            &fac,
            405,
            "method-not-allowed",
        ),
    ] {
        let (s, ctype, body) = raw(&t, method.clone(), &path, tok).await;
        assert_eq!(s, status, "{method} {path}: {body}");
        assert!(
            ctype.starts_with("application/json"),
            "{method} {path}: {ctype}"
        );
        let v: Value = serde_json::from_str(&body).expect("JSON error body");
        assert_eq!(v["error"], code, "{method} {path}: {body}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}
