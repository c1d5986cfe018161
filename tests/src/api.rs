//! Tokens and HTTP calls for tests.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use tafel_protocol::{Claims, Role};

use crate::procs::{Tafel, TEST_SECRET};

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs claims with `secret`.
pub fn sign_with(secret: &str, claims: &Claims) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

pub fn claims(role: Role, board: &str, sub: &str, ttl_secs: i64) -> Claims {
    Claims {
        sub: sub.to_owned(),
        name: format!("{sub} name"),
        role,
        board: board.to_owned(),
        exp: (now() as i64 + ttl_secs).max(0) as u64,
        iat: Some(now()),
        nbf: None,
        inv: None,
    }
}

/// A token for `role` on `board`, valid for an hour, signed with the test secret.
pub fn token(role: Role, board: &str, sub: &str) -> String {
    sign_with(TEST_SECRET, &claims(role, board, sub, 3600))
}

pub fn facilitator() -> String {
    token(Role::Facilitator, "*", "fac")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// Creates a board as the facilitator and returns its id.
pub async fn create_board(t: &Tafel) -> String {
    let res = http()
        .post(format!("{}/api/boards", t.http()))
        .bearer_auth(facilitator())
        .json(&json!({"title": "Testbord", "template": "cao-di-organisatie"}))
        .send()
        .await
        .expect("POST /api/boards");
    assert_eq!(res.status(), 201, "create board");
    let v: Value = res.json().await.expect("json");
    v["id"].as_str().expect("id").to_owned()
}

/// The HTTP status of a WebSocket upgrade attempt (101 when it upgrades).
pub async fn ws_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok((mut ws, resp)) => {
            let _ = ws.close(None).await;
            resp.status().as_u16()
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("upgrade to {url} failed without an HTTP answer: {e}"),
    }
}

/// Sends a JSON request with a bearer token; returns the status and the JSON body (Null when
/// the body is not JSON).
pub async fn call(
    t: &Tafel,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http()
        .request(method, format!("{}{path}", t.http()))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A request with a bearer token and no body: the status, the content type and the body as text
/// (for answers that are not JSON, or whose content type matters).
pub async fn call_text(
    t: &Tafel,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> (u16, String, String) {
    let res = http()
        .request(method, format!("{}{path}", t.http()))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, ctype, res.text().await.unwrap_or_default())
}

/// A facilitator command on a board (`POST /api/boards/{id}/control`).
pub async fn control(t: &Tafel, board: &str, cmd: Value) -> (u16, Value) {
    call(
        t,
        reqwest::Method::POST,
        &format!("/api/boards/{board}/control"),
        &token(Role::Facilitator, board, "fac-1"),
        Some(cmd),
    )
    .await
}

/// A token with a chosen display name.
pub fn named_token(role: Role, board: &str, sub: &str, name: &str) -> String {
    let mut c = claims(role, board, sub, 3600);
    c.name = name.to_owned();
    sign_with(TEST_SECRET, &c)
}

/// Sets the store hooks of a server started with `--test-hooks` (e.g. `{"hold_writes": true}`;
/// fields left out keep their value) and returns what they report: the settings, `held` writes,
/// `paused` compactions and `healthy`.
/// The text of `t`'s `/metrics`.
pub async fn metrics(t: &Tafel) -> String {
    http()
        .get(format!("{}/metrics", t.http()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

pub async fn store_hooks(t: &Tafel, change: Value) -> Value {
    let (status, body) = call(
        t,
        reqwest::Method::POST,
        "/api/test-hooks/store",
        &facilitator(),
        Some(change),
    )
    .await;
    assert_eq!(status, 200, "POST /api/test-hooks/store: {body}");
    body
}
