//! One identity per person, and who is in and out decided live: an invite token (claim `inv`)
//! only joins; every join through it is a new person (own pseudonym, drafts, vote budget); a
//! personal token — also one that expired recently — keeps its `sub`; seats cap joins; the
//! facilitator lists and revokes invites, lists and removes participants (403 everywhere, open
//! sockets closed with 4403); invite ttl is bounded at 30 days.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tafel_protocol::{Claims, Role};
use tafel_server::auth::Keys;
use tafel_tests::api::{call, claims, create_board, facilitator, now, sign_with, token, ws_status};
use tafel_tests::client::YClient;
use tafel_tests::procs::{Redis, Tafel, TEST_SECRET};

const SECS10: Duration = Duration::from_secs(10);

/// The verified claims of a token the server signed.
fn claims_of(token: &str) -> Claims {
    Keys::new(TEST_SECRET)
        .verify(token, now())
        .expect("a valid token from the server")
}

async fn invite(t: &Tafel, board: &str, body: Value) -> (u16, Value) {
    call(
        t,
        Method::POST,
        &format!("/api/boards/{board}/invites"),
        &facilitator(),
        Some(body),
    )
    .await
}

/// An invite token for `role`, checked to be one.
async fn invite_token(t: &Tafel, board: &str, body: Value) -> (String, String) {
    let (s, v) = invite(t, board, body).await;
    assert_eq!(s, 200, "{v}");
    let tok = v["token"].as_str().expect("token").to_owned();
    assert_eq!(claims_of(&tok).inv.as_deref(), v["id"].as_str());
    (tok, v["id"].as_str().expect("id").to_owned())
}

async fn join(t: &Tafel, board: &str, tok: &str, name: &str) -> (u16, Value) {
    call(
        t,
        Method::POST,
        &format!("/api/boards/{board}/join"),
        tok,
        Some(json!({"name": name})),
    )
    .await
}

/// Joins and returns the personal token and the display.
async fn join_ok(t: &Tafel, board: &str, tok: &str, name: &str) -> (String, String) {
    let (s, v) = join(t, board, tok, name).await;
    assert_eq!(s, 200, "join: {v}");
    let personal = v["token"].as_str().expect("token").to_owned();
    assert!(
        claims_of(&personal).inv.is_none(),
        "join answers a personal token"
    );
    (personal, v["display"].as_str().expect("display").to_owned())
}

async fn get(t: &Tafel, path: &str, tok: &str) -> (u16, Value) {
    call(t, Method::GET, path, tok, None).await
}

async fn two_people_one_invite(t: Tafel) {
    let board = create_board(&t).await;
    let (inv, _) = invite_token(&t, &board, json!({"role": "employee", "ttl": "8h"})).await;
    let (a, a_display) = join_ok(&t, &board, &inv, "Anna").await;
    let (b, b_display) = join_ok(&t, &board, &inv, "Bram").await;
    let (ca, cb) = (claims_of(&a), claims_of(&b));
    assert_ne!(ca.sub, cb.sub, "two people, two subs");
    assert_ne!(ca.sub, claims_of(&inv).sub, "a fresh sub, not the invite's");
    assert_eq!(ca.role, Role::Employee);
    assert_ne!(a_display, b_display, "two pseudonyms");
    assert!(a_display.starts_with("Medewerker ") && b_display.starts_with("Medewerker "));
    // Each sees their own pseudonym in the summary.
    let (s, me) = get(&t, &format!("/api/boards/{board}"), &b).await;
    assert_eq!(s, 200);
    assert_eq!(me["you"]["display"], b_display.as_str());

    // Drafts: each sees and deletes only their own.
    let drafts = format!("/api/boards/{board}/drafts");
    let (s, v) = call(
        &t,
        Method::POST,
        &drafts,
        &a,
        Some(json!({"section": "themas", "text": "Annas geheime notitie"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let draft = v["id"].as_str().expect("draft id").to_owned();
    let (s, mine) = get(&t, &drafts, &a).await;
    assert_eq!(s, 200);
    assert!(mine.to_string().contains("Annas geheime notitie"));
    let (s, theirs) = get(&t, &drafts, &b).await;
    assert_eq!(s, 200);
    assert!(
        !theirs.to_string().contains("Annas"),
        "B sees A's draft: {theirs}"
    );
    let (s, _) = call(&t, Method::DELETE, &format!("{drafts}/{draft}"), &b, None).await;
    assert_eq!(s, 404, "B may not delete A's draft");
    let (_, mine) = get(&t, &drafts, &a).await;
    assert!(
        mine.to_string().contains("Annas geheime notitie"),
        "still there"
    );

    // Votes: one budget each.
    let f = YClient::connect_synced(&t.ws_url(&board, "canvas", &facilitator())).await;
    for id in ["k1", "k2"] {
        f.add_card(id, "bouwstenen", &format!("voorstel {id}"), json!({}));
    }
    let o =
        YClient::connect_synced(&t.ws_url(&board, "canvas", &token(Role::Observer, &board, "o")))
            .await;
    assert!(
        tafel_tests::eventually(SECS10, || o
            .items("cards")
            .as_object()
            .is_some_and(|m| m.len() == 2))
        .await
    );
    let (s, v) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/control"),
        &facilitator(),
        Some(json!({"action": "open-round", "title": "Kies", "cards": ["k1", "k2"], "budget": 1})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let round = v["round"].as_str().expect("round").to_owned();
    let votes = format!("/api/boards/{board}/rounds/{round}/votes");
    let (s, _) = call(&t, Method::POST, &votes, &a, Some(json!({"card": "k1"}))).await;
    assert_eq!(s, 200, "A's first dot");
    let (s, _) = call(&t, Method::POST, &votes, &a, Some(json!({"card": "k2"}))).await;
    assert_eq!(s, 403, "A's budget of one is spent");
    let (s, ballot) = call(&t, Method::POST, &votes, &b, Some(json!({"card": "k2"}))).await;
    assert_eq!(s, 200, "B has a budget of their own: {ballot}");
    assert_eq!(ballot["votes"], json!({"canvas/k2": 1}));

    // Coming back with the personal token keeps the person (same sub, same pseudonym).
    let (a2, a2_display) = join_ok(&t, &board, &a, "Anna B.").await;
    assert_eq!(claims_of(&a2).sub, ca.sub);
    assert_eq!(a2_display, a_display);
    let (_, mine) = get(&t, &drafts, &a2).await;
    assert!(mine.to_string().contains("Annas geheime notitie"));
}

/// Two people through one employee invite: two subs, two pseudonyms, private drafts, separate
/// vote budgets; rejoining with the personal token keeps the person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_through_one_invite_are_two_identities_embedded() {
    two_people_one_invite(Tafel::start_embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_through_one_invite_are_two_identities_redis() {
    let redis = Redis::start();
    two_people_one_invite(Tafel::start_redis(&redis)).await;
}

/// A personal token that expired less than 7 days ago renews through `/join` with the same
/// `sub`; an older one, and an expired invite token, do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recently_expired_personal_token_rejoins_as_the_same_person() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let (inv, _) = invite_token(&t, &board, json!({"role": "employee"})).await;
    let (a, a_display) = join_ok(&t, &board, &inv, "Anna").await;
    let sub = claims_of(&a).sub;
    // The same sub, expired an hour ago: not accepted for anything but joining.
    let mut c = claims(Role::Employee, &board, &sub, -3600);
    c.iat = Some(now() - 3 * 3600);
    let expired = sign_with(TEST_SECRET, &c);
    let (s, _) = get(&t, &format!("/api/boards/{board}"), &expired).await;
    assert_eq!(s, 401, "expired is expired outside /join");
    let (renewed, display) = join_ok(&t, &board, &expired, "Anna").await;
    let rc = claims_of(&renewed);
    assert_eq!(rc.sub, sub);
    assert_eq!(display, a_display);
    assert!(rc.exp > now() + 3600, "renewed for its own lifetime");
    // Expired 8 days ago: refused.
    let old = sign_with(
        TEST_SECRET,
        &claims(Role::Employee, &board, &sub, -8 * 86400),
    );
    let (s, _) = join(&t, &board, &old, "Anna").await;
    assert_eq!(s, 401);
    // An expired invite token gets no grace.
    let mut ic = claims_of(&inv);
    ic.exp = now() - 60;
    let old_invite = sign_with(TEST_SECRET, &ic);
    let (s, _) = join(&t, &board, &old_invite, "Nina").await;
    assert_eq!(s, 401);
}

/// An invite token opens only joining, the board summary and the template list; everything
/// else refuses it with 403 `invite-token`. Personal tokens (from `/join` and minted like
/// `tafel token`) open them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_token_only_joins() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let (inv, _) = invite_token(&t, &board, json!({"role": "employee"})).await;
    let (s, v) = get(&t, &format!("/api/boards/{board}"), &inv).await;
    assert_eq!(s, 200, "summary: {v}");
    assert_eq!(v["you"]["invite"], true);
    assert_eq!(v["you"]["display"], Value::Null, "an invite names no one");
    let (s, _) = get(&t, "/api/templates", &inv).await;
    assert_eq!(s, 200);

    let export = format!("/api/boards/{board}/export?format=json");
    let drafts = format!("/api/boards/{board}/drafts");
    for path in [
        export.as_str(),
        drafts.as_str(),
        "/api/templates/cao-di-organisatie",
    ] {
        let (s, v) = get(&t, path, &inv).await;
        assert_eq!(s, 403, "{path}: {v}");
        assert_eq!(v["error"], "invite-token", "{path}");
    }
    let (s, _) = call(
        &t,
        Method::POST,
        &drafts,
        &inv,
        Some(json!({"section": "themas", "text": "x"})),
    )
    .await;
    assert_eq!(s, 403);
    for doc in ["canvas", "party-employee", "control"] {
        assert_eq!(ws_status(&t.ws_url(&board, doc, &inv)).await, 403, "{doc}");
    }

    // Positive controls: the personal token from joining, and a minted personal token.
    let (personal, _) = join_ok(&t, &board, &inv, "Els").await;
    let minted = token(Role::Employee, &board, "cli-1");
    for tok in [&personal, &minted] {
        assert_eq!(ws_status(&t.ws_url(&board, "canvas", tok)).await, 101);
        let (s, v) = get(&t, &export, tok).await;
        assert_eq!(s, 200, "{v}");
        assert!(v["documents"]["canvas"].is_object());
        let (s, _) = get(&t, "/api/templates/cao-di-organisatie", tok).await;
        assert_eq!(s, 200);
    }
}

/// A revoked invite refuses joins (and its summary); who joined before keeps their token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_invite_refuses_a_join() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let (inv, id) = invite_token(&t, &board, json!({"role": "union"})).await;
    let (before, _) = join_ok(&t, &board, &inv, "Vera").await;
    let (s, v) = call(
        &t,
        Method::DELETE,
        &format!("/api/boards/{board}/invites/{id}"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["revoked"], true);
    let (s, v) = join(&t, &board, &inv, "Wim").await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"], "invite-revoked");
    let (s, _) = get(&t, &format!("/api/boards/{board}"), &inv).await;
    assert_eq!(s, 403);
    let (s, _) = get(&t, &format!("/api/boards/{board}"), &before).await;
    assert_eq!(s, 200, "who joined before stays in");
    // An unknown invite.
    let (s, _) = call(
        &t,
        Method::DELETE,
        &format!("/api/boards/{board}/invites/nope"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // A second, unrevoked invite still works (positive control).
    let (inv2, _) = invite_token(&t, &board, json!({"role": "union"})).await;
    join_ok(&t, &board, &inv2, "Wim").await;
    let (s, list) = get(&t, &format!("/api/boards/{board}/invites"), &facilitator()).await;
    assert_eq!(s, 200);
    let list = list.as_array().expect("list").clone();
    assert_eq!(list.len(), 2);
    let first = list
        .iter()
        .find(|i| i["id"] == id.as_str())
        .expect("revoked one listed");
    assert_eq!(first["revoked"], true);
    assert_eq!(first["joined"], 1);
    assert_eq!(first["role"], "union");
    assert!(first["created_at"].as_u64().is_some() && first["expires_at"].as_u64().is_some());
    let (_, audit) = get(&t, &format!("/api/boards/{board}/audit"), &facilitator()).await;
    let actions: Vec<&str> = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in ["invite", "join", "invite-revoke"] {
        assert!(actions.contains(&a), "{a} audited: {actions:?}");
    }
}

/// Seats cap the joins per invite; the join count is listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_cap_joins() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    for bad in [json!(0), json!(10_001), json!(-1), json!("twee")] {
        let (s, _) = invite(&t, &board, json!({"role": "employee", "seats": bad})).await;
        assert_eq!(s, 400, "seats {bad}");
    }
    let (inv, id) = invite_token(&t, &board, json!({"role": "employee", "seats": 2})).await;
    join_ok(&t, &board, &inv, "Een").await;
    join_ok(&t, &board, &inv, "Twee").await;
    let (s, v) = join(&t, &board, &inv, "Drie").await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"], "invite-full");
    let (_, list) = get(&t, &format!("/api/boards/{board}/invites"), &facilitator()).await;
    let me = list
        .as_array()
        .and_then(|l| l.iter().find(|i| i["id"] == id.as_str()))
        .expect("listed")
        .clone();
    assert_eq!(me["seats"], 2);
    assert_eq!(me["joined"], 2);
    let (_, audit) = get(&t, &format!("/api/boards/{board}/audit"), &facilitator()).await;
    let joins = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter(|e| e["action"] == "join")
        .count();
    assert_eq!(joins, 2, "each join audited, the refused one not");
}

async fn removal(t: Tafel) {
    let board = create_board(&t).await;
    let (inv, _) = invite_token(&t, &board, json!({"role": "employee"})).await;
    let (gone, gone_display) = join_ok(&t, &board, &inv, "Gijs").await;
    let (stays, _) = join_ok(&t, &board, &inv, "Sara").await;
    let gone_sub = claims_of(&gone).sub;
    let c1 = YClient::connect_synced(&t.ws_url(&board, "canvas", &gone)).await;
    let c2 = YClient::connect_synced(&t.ws_url(&board, "party-employee", &gone)).await;
    let other = YClient::connect_synced(&t.ws_url(&board, "canvas", &stays)).await;

    let participants = format!("/api/boards/{board}/participants");
    let (s, list) = get(&t, &participants, &facilitator()).await;
    assert_eq!(s, 200);
    assert!(
        !list.to_string().contains(&gone_sub),
        "no raw sub in the list"
    );
    let entry = list
        .as_array()
        .and_then(|l| l.iter().find(|p| p["display"] == gone_display.as_str()))
        .expect("listed")
        .clone();
    assert_eq!(entry["role"], "employee");
    assert_eq!(entry["online"], true);
    assert_eq!(entry["removed"], false);
    let pid = entry["id"].as_str().expect("id").to_owned();

    let (s, v) = call(
        &t,
        Method::DELETE,
        &format!("{participants}/{pid}"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    for c in [&c1, &c2] {
        assert!(
            c.wait(SECS10, |s| s.closed.is_some()).await,
            "the removed participant's socket stays open"
        );
        assert_eq!(c.closed().map(|c| c.0), Some(4403));
    }
    // The other participant stays connected and keeps syncing.
    other.add_card("n1", "themas", "nog steeds hier", json!({}));
    let check = YClient::connect_synced(&t.ws_url(&board, "canvas", &stays)).await;
    assert!(
        tafel_tests::eventually(SECS10, || check.items("cards")["n1"].is_object()).await,
        "the other participant's edit arrives"
    );
    assert!(other.closed().is_none());

    // The token is refused everywhere from now on.
    for path in [
        format!("/api/boards/{board}"),
        format!("/api/boards/{board}/drafts"),
        format!("/api/boards/{board}/export?format=json"),
        "/api/templates".to_owned(),
    ] {
        let (s, v) = get(&t, &path, &gone).await;
        assert_eq!(s, 403, "{path}");
        assert_eq!(v["error"], "removed", "{path}");
    }
    let (s, _) = join(&t, &board, &gone, "Gijs").await;
    assert_eq!(s, 403, "no way back in with the personal token");
    for doc in ["canvas", "party-employee"] {
        assert_eq!(ws_status(&t.ws_url(&board, doc, &gone)).await, 403);
    }
    // Positive controls: the other participant still gets in.
    let (s, _) = get(&t, &format!("/api/boards/{board}"), &stays).await;
    assert_eq!(s, 200);
    assert_eq!(
        ws_status(&t.ws_url(&board, "party-employee", &stays)).await,
        101
    );

    let (_, list) = get(&t, &participants, &facilitator()).await;
    let entry = list
        .as_array()
        .and_then(|l| l.iter().find(|p| p["id"] == pid.as_str()))
        .expect("still listed")
        .clone();
    assert_eq!(entry["removed"], true);
    assert_eq!(entry["online"], false);
    let (_, audit) = get(&t, &format!("/api/boards/{board}/audit"), &facilitator()).await;
    assert!(audit
        .as_array()
        .expect("audit")
        .iter()
        .any(|e| e["action"] == "remove" && e["detail"]["participant"] == pid.as_str()));
    assert!(
        !audit.to_string().contains(&gone_sub),
        "no raw participant sub in the audit log"
    );
    // Unknown participant.
    let (s, _) = call(
        &t,
        Method::DELETE,
        &format!("{participants}/0000"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(s, 404);
}

/// A removed participant's open sockets close with 4403 at once, and their token is refused on
/// HTTP and WebSocket afterwards; everyone else stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_participant_is_closed_with_4403_and_refused_embedded() {
    removal(Tafel::start_embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_participant_is_closed_with_4403_and_refused_redis() {
    let redis = Redis::start();
    removal(Tafel::start_redis(&redis)).await;
}

/// Invite ttl: up to 30 days; longer, huge and overflowing values are a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_ttl_is_bounded_without_overflow() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    for ok in ["30d", "720h", "8h", "2592000"] {
        let (s, v) = invite(&t, &board, json!({"role": "employee", "ttl": ok})).await;
        assert_eq!(s, 200, "{ok}: {v}");
        assert!(v["expires_in"].as_u64().is_some_and(|e| e <= 30 * 86400));
    }
    for bad in [
        "31d",
        "721h",
        "2592001",
        "36500d",
        "99999999999999999999s",
        "999999999999999999d",
        "0s",
        "-1d",
    ] {
        let (s, v) = invite(&t, &board, json!({"role": "employee", "ttl": bad})).await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(v["error"], "bad-request");
    }
}

/// Listing and changing invites and participants is the facilitator's only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_and_participants_are_facilitator_only() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let (inv, id) = invite_token(&t, &board, json!({"role": "employee"})).await;
    let (emp, _) = join_ok(&t, &board, &inv, "Els").await;
    let observer = token(Role::Observer, &board, "obs");
    let invites = format!("/api/boards/{board}/invites");
    let participants = format!("/api/boards/{board}/participants");
    for tok in [&emp, &observer, &inv] {
        let (s, _) = get(&t, &invites, tok).await;
        assert_eq!(s, 403);
        let (s, _) = get(&t, &participants, tok).await;
        assert_eq!(s, 403);
        let (s, _) = call(&t, Method::DELETE, &format!("{invites}/{id}"), tok, None).await;
        assert_eq!(s, 403);
        let (s, _) = call(&t, Method::DELETE, &format!("{participants}/x"), tok, None).await;
        assert_eq!(s, 403);
    }
    // A facilitator of another board neither.
    let other = token(Role::Facilitator, "otherboard1", "f2");
    let (s, _) = get(&t, &participants, &other).await;
    assert_eq!(s, 403);
    // Positive control: the facilitator (all boards, and this board's).
    for tok in [facilitator(), token(Role::Facilitator, &board, "f1")] {
        let (s, v) = get(&t, &invites, &tok).await;
        assert_eq!(s, 200);
        assert_eq!(v.as_array().map(Vec::len), Some(1));
        let (s, v) = get(&t, &participants, &tok).await;
        assert_eq!(s, 200);
        assert!(v.to_string().contains("Medewerker"), "{v}");
    }
}

/// Removing a participant erases what only they could see: their unrevealed drafts are not
/// revealed with the others', and their ballot leaves the round (its public `voters` count
/// drops); the other participant's draft and ballot stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_participants_drafts_and_ballots_are_erased() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let (inv, _) = invite_token(&t, &board, json!({"role": "employee"})).await;
    let (gone, _) = join_ok(&t, &board, &inv, "Gijs").await;
    let (stays, _) = join_ok(&t, &board, &inv, "Sara").await;
    let fac = YClient::connect_synced(&t.ws_url(&board, "canvas", &facilitator())).await;
    fac.add_card("stem", "bouwstenen", "om op te stemmen", json!({}));
    assert!(
        fac.wait(SECS10, |_| fac.items("cards")["stem"]["owner"].is_string())
            .await
    );
    let control = format!("/api/boards/{board}/control");
    let (s, v) = call(
        &t,
        Method::POST,
        &control,
        &facilitator(),
        Some(json!({"action": "private-writing", "on": true})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    for (tok, text) in [
        (&gone, "WEG-concept-van-gijs"),
        (&stays, "BLIJFT-concept-van-sara"),
    ] {
        let (s, v) = call(
            &t,
            Method::POST,
            &format!("/api/boards/{board}/drafts"),
            tok,
            Some(json!({"section": "themas", "text": text})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, v) = call(
        &t,
        Method::POST,
        &control,
        &facilitator(),
        Some(json!({"action": "open-round", "title": "r", "cards": ["stem"], "budget": 3})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let round = v["round"].as_str().expect("round id").to_owned();
    for tok in [&gone, &stays] {
        let (s, v) = call(
            &t,
            Method::POST,
            &format!("/api/boards/{board}/rounds/{round}/votes"),
            tok,
            Some(json!({"card": "stem"})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    let voters = |exp: Value| exp["documents"]["control"]["rounds"][&round]["voters"].clone();
    let (_, exp) = get(
        &t,
        &format!("/api/boards/{board}/export?format=json"),
        &facilitator(),
    )
    .await;
    assert_eq!(voters(exp), 2, "both voted");

    let (_, list) = get(
        &t,
        &format!("/api/boards/{board}/participants"),
        &facilitator(),
    )
    .await;
    let pid = list
        .as_array()
        .and_then(|l| l.iter().find(|p| p["display"] == "Medewerker 1"))
        .and_then(|p| p["id"].as_str())
        .expect("listed")
        .to_owned();
    let (s, v) = call(
        &t,
        Method::DELETE,
        &format!("/api/boards/{board}/participants/{pid}"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, exp) = get(
        &t,
        &format!("/api/boards/{board}/export?format=json"),
        &facilitator(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        voters(exp),
        1,
        "the removed participant's ballot left the round"
    );
    let (s, v) = call(
        &t,
        Method::POST,
        &control,
        &facilitator(),
        Some(json!({"action": "reveal-drafts"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let check = YClient::connect_synced(&t.ws_url(&board, "canvas", &facilitator())).await;
    assert!(
        check
            .wait(SECS10, |_| check
                .items("cards")
                .to_string()
                .contains("BLIJFT-concept-van-sara"))
            .await,
        "the other participant's draft is revealed"
    );
    assert!(
        !check.items("cards").to_string().contains("WEG-concept"),
        "the removed participant's draft was revealed"
    );
}

/// The facilitator's own name at sign-in: `POST /api/signin` answers a facilitator's `*` token
/// with the same token under the given name (same sub, same expiry), and that name is what the
/// audit log shows. Hostile: a board-scoped facilitator token, a participant's token, an invite
/// token, an empty or too long name and a forged token are refused, and none of them gets a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_facilitator_names_themself_at_sign_in() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let signin = |tok: String, body: Value| {
        let t = &t;
        async move { call(t, Method::POST, "/api/signin", &tok, Some(body)).await }
    };
    let (inv, _) = invite_token(&t, &board, json!({"role": "employer"})).await;
    for (tok, why) in [
        (
            token(Role::Facilitator, &board, "fac-b"),
            "a facilitator token for one board",
        ),
        (token(Role::Employer, "*", "e"), "a participant"),
        (
            token(Role::Employer, &board, "e"),
            "a participant of the board",
        ),
        (inv, "an invite token"),
    ] {
        let (s, v) = signin(tok, json!({"name": "Fenna"})).await;
        // 401 where the token itself is not valid for its claims (a participant for "*").
        assert!(s == 403 || s == 401, "{why}: {s} {v}");
        assert!(v.get("token").is_none(), "{why}: {v}");
    }
    let forged = sign_with(
        "another-secret",
        &claims(Role::Facilitator, "*", "fac", 3600),
    );
    assert_eq!(signin(forged, json!({"name": "Fenna"})).await.0, 401);
    for name in ["", "   ", &"x".repeat(61)] {
        assert_eq!(
            signin(facilitator(), json!({"name": name})).await.0,
            400,
            "{name:?}"
        );
    }
    // Positive control: the facilitator's own token gets the name.
    let before = claims_of(&facilitator());
    let (s, v) = signin(facilitator(), json!({"name": "  Fenna Facilitator "})).await;
    assert_eq!(s, 200, "{v}");
    let named = v["token"].as_str().expect("token").to_owned();
    let after = claims_of(&named);
    assert_eq!(
        (
            after.name.as_str(),
            after.sub.as_str(),
            after.role,
            after.board.as_str()
        ),
        (
            "Fenna Facilitator",
            before.sub.as_str(),
            Role::Facilitator,
            "*"
        )
    );
    assert_eq!(after.exp, before.exp, "the same expiry");
    let (s, _) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/control"),
        &named,
        Some(json!({"action": "step", "step": "2"})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, audit) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/audit"),
        &named,
        None,
    )
    .await;
    assert!(
        audit
            .as_array()
            .expect("audit")
            .iter()
            .any(|e| e["action"] == "step" && e["name"] == "Fenna Facilitator"),
        "{audit}"
    );
}
