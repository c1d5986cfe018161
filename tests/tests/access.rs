//! Access: token checks before the upgrade, expiry mid-session, and the baseline role matrix
//! enforced on the bytes (observer, party and control rules), with clients that ignore any UI.

use std::time::Duration;

use serde_json::json;
use tafel_protocol::Role;
use tafel_tests::api::{claims, create_board, facilitator, http, sign_with, token, ws_status};
use tafel_tests::client::YClient;
use tafel_tests::procs::{Tafel, TEST_SECRET};

const SECS5: Duration = Duration::from_secs(5);

/// Missing, malformed, wrongly signed and expired tokens get 401; a token for another board
/// gets 403; an unknown board or document gets 404; a good token upgrades (101).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_statuses_before_upgrade() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let other = create_board(&t).await;
    let base = format!("ws://127.0.0.1:{}/ws/{board}/canvas", t.port);
    let good = token(Role::Employer, &board, "e1");
    assert_eq!(ws_status(&format!("{base}?token={good}")).await, 101);
    assert_eq!(ws_status(&base).await, 401, "missing token");
    assert_eq!(
        ws_status(&format!("{base}?token=")).await,
        401,
        "empty token"
    );
    assert_eq!(
        ws_status(&format!("{base}?token=not.a.jwt")).await,
        401,
        "malformed"
    );
    let wrong = sign_with(
        "another-secret",
        &claims(Role::Employer, &board, "e1", 3600),
    );
    assert_eq!(
        ws_status(&format!("{base}?token={wrong}")).await,
        401,
        "wrong signature"
    );
    let expired = sign_with(TEST_SECRET, &claims(Role::Employer, &board, "e1", -10));
    assert_eq!(
        ws_status(&format!("{base}?token={expired}")).await,
        401,
        "expired"
    );
    let no_exp = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "e1", "name": "n", "role": "employer", "board": board}),
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .expect("sign");
    assert_eq!(
        ws_status(&format!("{base}?token={no_exp}")).await,
        401,
        "no exp"
    );
    let bad_role = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "e1", "name": "n", "role": "admin", "board": board, "exp": tafel_tests::api::now() + 60}),
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .expect("sign");
    assert_eq!(
        ws_status(&format!("{base}?token={bad_role}")).await,
        401,
        "unknown role"
    );
    let wildcard_employer = token(Role::Employer, "*", "e1");
    assert_eq!(
        ws_status(&format!("{base}?token={wildcard_employer}")).await,
        401,
        "* for non-facilitator"
    );

    let other_board = token(Role::Employer, &other, "e1");
    assert_eq!(
        ws_status(&format!("{base}?token={other_board}")).await,
        403,
        "other board"
    );
    let unknown_board = token(Role::Facilitator, "*", "f");
    assert_eq!(
        ws_status(&t.ws_url("nosuchboard", "canvas", &unknown_board)).await,
        404
    );
    assert_eq!(
        ws_status(&t.ws_url(&board, "nosuchdoc", &unknown_board)).await,
        404
    );
}

/// A token that expires mid-session closes its connection with 4401, not before it expires.
/// (5 s of validity: enough for the upgrade and first sync on a busy 2-core machine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_token_closes_connection() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let c = claims(Role::Employer, &board, "e1", 5);
    let expires = std::time::UNIX_EPOCH + Duration::from_secs(c.exp);
    let short = sign_with(TEST_SECRET, &c);
    let c = YClient::connect_synced(&t.ws_url(&board, "canvas", &short)).await;
    assert!(c.closed().is_none());
    assert!(
        c.wait(Duration::from_secs(15), |s| s.closed.is_some())
            .await,
        "not closed on expiry"
    );
    let closed_at = std::time::SystemTime::now();
    assert_eq!(c.closed().map(|c| c.0), Some(4401));
    // `exp` has whole seconds: closing in the second before it is still "at expiry".
    assert!(
        closed_at + Duration::from_secs(1) >= expires,
        "closed before the token expired"
    );
}

/// An observer's update is not applied, stored or forwarded, and the observer gets
/// `permission-denied`; the observer still reads what writers write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_cannot_write() {
    let mut t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let writer = YClient::connect_synced(&t.ws_url(
        &board,
        "canvas",
        &token(Role::Facilitator, &board, "f1"),
    ))
    .await;
    let obs_url = t.ws_url(&board, "canvas", &token(Role::Observer, &board, "o1"));
    let obs = YClient::connect_synced(&obs_url).await;
    obs.push_text("t", "stiekem");
    obs.assert_refused(0, "read-only", SECS5).await;
    assert!(
        obs.seen()
            .denied
            .iter()
            .all(|r| r.starts_with("read-only: ")),
        "refused for another reason: {:?}",
        obs.seen().denied
    );
    writer.add_card("k1", "bouwstenen", "zichtbaar", serde_json::json!({}));
    assert!(
        obs.wait(SECS5, |_| obs
            .items("cards")
            .to_string()
            .contains("zichtbaar"))
            .await,
        "observer must still read"
    );
    assert!(
        !writer.text("t").contains("stiekem"),
        "observer's edit was forwarded"
    );
    // Not stored either: after a restart a fresh reader has no trace of it.
    t.restart();
    let fresh =
        YClient::connect_synced(&t.ws_url(&board, "canvas", &token(Role::Union, &board, "u2")))
            .await;
    assert_eq!(fresh.text("t"), "");
    assert!(fresh.items("cards").to_string().contains("zichtbaar"));
    let m = http()
        .get(format!("{}/metrics", t.http()))
        .send()
        .await
        .expect("metrics");
    assert!(m.status().is_success());
}

/// Parties: each opens only its own `party-*` document (others 403), the facilitator opens all
/// three, the observer none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn party_documents_per_role() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let parties = ["party-employer", "party-union", "party-employee"];
    let cases = [
        (Role::Employer, [101, 403, 403]),
        (Role::Union, [403, 101, 403]),
        (Role::Employee, [403, 403, 101]),
        (Role::Facilitator, [101, 101, 101]),
        (Role::Observer, [403, 403, 403]),
    ];
    for (role, want) in cases {
        let tok = token(role, &board, "p");
        for (doc, status) in parties.iter().zip(want) {
            assert_eq!(
                ws_status(&t.ws_url(&board, doc, &tok)).await,
                status,
                "{role} on {doc}"
            );
        }
    }
    // And the own workspace really syncs between two members of the party.
    let a = YClient::connect_synced(&t.ws_url(
        &board,
        "party-union",
        &token(Role::Union, &board, "u1"),
    ))
    .await;
    let b = YClient::connect_synced(&t.ws_url(
        &board,
        "party-union",
        &token(Role::Union, &board, "u2"),
    ))
    .await;
    a.push_text("t", "ons concept");
    assert!(b.wait_text("t", "ons concept", SECS5).await);
}

/// Only the facilitator writes `control`; participants and observers read it and are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_facilitator_writes_control() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let fac = YClient::connect_synced(&t.ws_url(
        &board,
        "control",
        &token(Role::Facilitator, &board, "f"),
    ))
    .await;
    let mut readers = Vec::new();
    for (i, role) in [Role::Employer, Role::Union, Role::Employee, Role::Observer]
        .into_iter()
        .enumerate()
    {
        readers.push(
            YClient::connect_synced(&t.ws_url(
                &board,
                "control",
                &token(role, &board, &format!("r{i}")),
            ))
            .await,
        );
    }
    fac.set_map("fase", "stap", 2);
    for r in &readers {
        assert!(
            tafel_tests::eventually(SECS5, || {
                let m = yrs::Doc::get_or_insert_map(&r.doc, "fase");
                yrs::Map::get(&m, &yrs::Transact::transact(&r.doc), "stap").is_some()
            })
            .await,
            "a participant must read control"
        );
        r.set_map("fase", "stap", 6);
        r.assert_refused(0, "read-only", SECS5).await;
    }
    let late =
        YClient::connect_synced(&t.ws_url(&board, "control", &token(Role::Observer, &board, "o9")))
            .await;
    let m = yrs::Doc::get_or_insert_map(&late.doc, "fase");
    let v = yrs::Map::get(&m, &yrs::Transact::transact(&late.doc), "stap");
    assert_eq!(
        v.map(|v| v.to_string(&yrs::Transact::transact(&late.doc))),
        Some("2".into())
    );
}

/// HTTP API: tokens and roles on the board endpoints, and the JSON error body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_access_and_errors() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let api = |p: &str| format!("{}{p}", t.http());
    // No token → 401 with the JSON error body.
    let r = http().get(api("/api/templates")).send().await.expect("req");
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    // Templates for any valid token.
    let emp = token(Role::Employer, &board, "e1");
    let r = http()
        .get(api("/api/templates"))
        .bearer_auth(&emp)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let list: serde_json::Value = r.json().await.expect("json");
    assert!(list
        .as_array()
        .is_some_and(|l| l.iter().any(|t| t["id"] == "cao-di-organisatie")));
    // Creating a board: only a facilitator with board "*".
    let body = json!({"title": "x", "template": "cao-di-sector"});
    let r = http()
        .post(api("/api/boards"))
        .bearer_auth(&emp)
        .json(&body)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    let scoped_fac = token(Role::Facilitator, &board, "f");
    let r = http()
        .post(api("/api/boards"))
        .bearer_auth(&scoped_fac)
        .json(&body)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    let r = http()
        .post(api("/api/boards"))
        .bearer_auth(facilitator())
        .json(&json!({"title": "x", "template": "nope"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    let r = http()
        .post(api("/api/boards"))
        .bearer_auth(facilitator())
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.expect("json");
    assert_eq!(b["error"], "bad-request");
    // Summary for a token of that board; 403 for another board's token; 404 unknown.
    let r = http()
        .get(api(&format!("/api/boards/{board}")))
        .bearer_auth(&emp)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let other = token(Role::Employer, "elders", "e1");
    let r = http()
        .get(api(&format!("/api/boards/{board}")))
        .bearer_auth(&other)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    let r = http()
        .get(api("/api/boards/onbekend"))
        .bearer_auth(facilitator())
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 404);
    // Listing and invites: facilitator only.
    let r = http()
        .get(api("/api/boards"))
        .bearer_auth(&emp)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    let r = http()
        .get(api("/api/boards"))
        .bearer_auth(facilitator())
        .send()
        .await
        .expect("req");
    let boards: serde_json::Value = r.json().await.expect("json");
    assert!(boards
        .as_array()
        .is_some_and(|b| b.iter().any(|x| x["id"] == board.as_str())));
    let r = http()
        .post(api(&format!("/api/boards/{board}/invites")))
        .bearer_auth(&emp)
        .json(&json!({"role": "union"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 403);
    let r = http()
        .post(api(&format!("/api/boards/{board}/invites")))
        .bearer_auth(facilitator())
        .json(&json!({"role": "wizard"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    let r = http()
        .post(api(&format!("/api/boards/{board}/invites")))
        .bearer_auth(facilitator())
        .json(&json!({"role": "union", "ttl": "2h"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let inv: serde_json::Value = r.json().await.expect("json");
    let invite_token = inv["token"].as_str().expect("token").to_owned();
    assert!(inv["url"]
        .as_str()
        .is_some_and(|u| u.contains(&invite_token)));
    // An invite token only joins (tests/tests/identity.rs); the personal token it answers
    // opens the board as a union member: own party yes, employer's no.
    assert_eq!(
        ws_status(&t.ws_url(&board, "party-union", &invite_token)).await,
        403
    );
    let r = http()
        .post(api(&format!("/api/boards/{board}/join")))
        .bearer_auth(&invite_token)
        .json(&json!({"name": "Vera"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let joined: serde_json::Value = r.json().await.expect("json");
    let personal = joined["token"].as_str().expect("token").to_owned();
    assert_eq!(
        ws_status(&t.ws_url(&board, "party-union", &personal)).await,
        101
    );
    assert_eq!(
        ws_status(&t.ws_url(&board, "party-employer", &personal)).await,
        403
    );
}

/// Export shows only what the role may read: no other party's workspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_follows_the_role() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let emp = token(Role::Employer, &board, "e1");
    let w = YClient::connect_synced(&t.ws_url(&board, "party-employer", &emp)).await;
    w.push_text("t", "geheim werkgeversconcept");
    let fac = token(Role::Facilitator, &board, "f1");
    let canvas = YClient::connect_synced(&t.ws_url(&board, "canvas", &fac)).await;
    canvas.add_card("k1", "bouwstenen", "gedeeld", serde_json::json!({}));
    let check = YClient::connect_synced(&t.ws_url(&board, "canvas", &emp)).await;
    assert!(
        check
            .wait(SECS5, |_| check
                .items("cards")
                .to_string()
                .contains("gedeeld"))
            .await
    );
    let export = |tok: String| {
        let url = format!("{}/api/boards/{board}/export?format=json", t.http());
        async move {
            let r = http().get(url).bearer_auth(tok).send().await.expect("req");
            assert_eq!(r.status(), 200);
            r.text().await.expect("body")
        }
    };
    let as_employer = export(emp.clone()).await;
    assert!(as_employer.contains("geheim werkgeversconcept") && as_employer.contains("gedeeld"));
    let as_union = export(token(Role::Union, &board, "u1")).await;
    assert!(as_union.contains("gedeeld"));
    assert!(
        !as_union.contains("geheim"),
        "union export leaks the employer's workspace"
    );
    let parsed: serde_json::Value = serde_json::from_str(&as_union).expect("json");
    assert!(parsed["documents"].get("party-employer").is_none());
    assert!(parsed["documents"].get("party-union").is_some());
    let as_observer = export(token(Role::Observer, &board, "o1")).await;
    assert!(!as_observer.contains("geheim"));
}

/// Tokens from an outside issuer signed with Ed25519 are accepted when its public key is
/// configured; with another key they are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_issuer_public_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("issuer.pem");
    let public = dir.path().join("issuer.pub.pem");
    let ok = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key)
        .status()
        .expect("openssl");
    assert!(ok.success());
    let ok = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .status()
        .expect("openssl");
    assert!(ok.success());
    let public_str = public.display().to_string();
    let data = tempfile::tempdir().expect("tmp");
    let store = format!("file:{}", data.path().display());
    let t = Tafel::start_with(&store, &[("TAFEL_JWT_PUBLIC_KEY", &public_str)]);
    let board = create_board(&t).await;
    let pem = std::fs::read(&key).expect("key");
    let enc = jsonwebtoken::EncodingKey::from_ed_pem(&pem).expect("ed key");
    let outside = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims(Role::Employee, &board, "ext-1", 600),
        &enc,
    )
    .expect("sign");
    assert_eq!(ws_status(&t.ws_url(&board, "canvas", &outside)).await, 101);
    // HS256 tokens keep working next to it.
    assert_eq!(
        ws_status(&t.ws_url(&board, "canvas", &token(Role::Employee, &board, "e"))).await,
        101
    );
    // A token claiming EdDSA but signed by another key is refused.
    let other = dir.path().join("other.pem");
    std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&other)
        .status()
        .expect("openssl");
    let enc2 =
        jsonwebtoken::EncodingKey::from_ed_pem(&std::fs::read(&other).expect("key")).expect("key");
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims(Role::Employee, &board, "ext-1", 600),
        &enc2,
    )
    .expect("sign");
    assert_eq!(ws_status(&t.ws_url(&board, "canvas", &forged)).await, 401);
}

/// RS256 and ES256 outside issuers work as well: a token signed with the configured key opens
/// the board, one signed with another key of the same kind is refused (401), and an algorithm
/// that is neither HS256 nor the key's (HS384 here) is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_issuer_rsa_and_ec_keys() {
    let dir = tempfile::tempdir().expect("tmp");
    let genkey = |name: &str, args: &[&str]| -> (std::path::PathBuf, std::path::PathBuf) {
        let key = dir.path().join(format!("{name}.pem"));
        let public = dir.path().join(format!("{name}.pub.pem"));
        let ok = std::process::Command::new("openssl")
            .arg("genpkey")
            .args(args)
            .arg("-out")
            .arg(&key)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(ok.success());
        let ok = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public)
            .status()
            .expect("openssl");
        assert!(ok.success());
        (key, public)
    };
    let rsa = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
    let ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    for (kind, args, alg) in [
        ("rsa", &rsa[..], jsonwebtoken::Algorithm::RS256),
        ("ec", &ec[..], jsonwebtoken::Algorithm::ES256),
    ] {
        let (key, public) = genkey(kind, args);
        let (other, _) = genkey(&format!("{kind}-other"), args);
        let encoding = |path: &std::path::Path| {
            let pem = std::fs::read(path).expect("key");
            match kind {
                "rsa" => jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("rsa key"),
                _ => jsonwebtoken::EncodingKey::from_ec_pem(&pem).expect("ec key"),
            }
        };
        let data = tempfile::tempdir().expect("tmp");
        let store = format!("file:{}", data.path().display());
        let public_str = public.display().to_string();
        let t = Tafel::start_with(&store, &[("TAFEL_JWT_PUBLIC_KEY", &public_str)]);
        let board = create_board(&t).await;
        let sign = |enc: &jsonwebtoken::EncodingKey, alg| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(alg),
                &claims(Role::Union, &board, "ext-2", 600),
                enc,
            )
            .expect("sign")
        };
        let good = sign(&encoding(&key), alg);
        assert_eq!(
            ws_status(&t.ws_url(&board, "canvas", &good)).await,
            101,
            "{kind}"
        );
        let forged = sign(&encoding(&other), alg);
        assert_eq!(
            ws_status(&t.ws_url(&board, "canvas", &forged)).await,
            401,
            "{kind} other key"
        );
        let mismatched = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS384),
            &claims(Role::Union, &board, "ext-2", 600),
            &jsonwebtoken::EncodingKey::from_secret(b"guess"),
        )
        .expect("sign");
        assert_eq!(
            ws_status(&t.ws_url(&board, "canvas", &mismatched)).await,
            401,
            "{kind}: HS384 is not accepted"
        );
    }
}
