//! The facilitator's session, enforced on the server and tried by clients that ignore the UI:
//! steps, phases and the timer; private writing and its reveal; secret dot voting with a
//! budget; moderation; the audit log; and who may write `control`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tafel_protocol::Role;
use tafel_tests::api::{call, control, create_board, named_token, now, token};
use tafel_tests::client::YClient;
use tafel_tests::procs::Tafel;

const T: Duration = Duration::from_secs(5);

async fn connect(t: &Tafel, board: &str, doc: &str, tok: &str) -> YClient {
    YClient::connect_synced(&t.ws_url(board, doc, tok)).await
}

/// Asserts that `needle` is in none of the board's six documents, read whole (as the
/// facilitator, who may open them all).
async fn in_no_document(t: &Tafel, board: &str, needle: &str) {
    for doc in [
        "canvas",
        "gap",
        "control",
        "party-employer",
        "party-union",
        "party-employee",
    ] {
        let c = connect(t, board, doc, &token(Role::Facilitator, board, "f-check")).await;
        let bytes = c.state_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle:?} is in the {doc} document"
        );
    }
}

async fn session(t: &Tafel, board: &str) -> Value {
    let c = connect(t, board, "control", &token(Role::Observer, board, "o")).await;
    c.map_json("session")
}

/// Steps, phases and the timer: only valid steps, only the facilitator, and the timer runs on
/// server time (endsAt = server now + duration), pauses with what is left, and resets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_phases_and_timer() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    assert_eq!(
        control(&t, &board, json!({"action": "step", "step": "3A"}))
            .await
            .0,
        200
    );
    assert_eq!(
        control(&t, &board, json!({"action": "step", "step": "7"}))
            .await
            .0,
        400
    );
    assert_eq!(
        control(
            &t,
            &board,
            json!({"action": "phase", "phase": "Privé schrijven"})
        )
        .await
        .0,
        200
    );
    let before = now() * 1000;
    assert_eq!(
        control(
            &t,
            &board,
            json!({"action": "timer", "op": "start", "seconds": 300})
        )
        .await
        .0,
        200
    );
    let s = session(&t, &board).await;
    assert_eq!(s["step"], "3A");
    assert_eq!(s["phase"], "Privé schrijven");
    assert_eq!(s["timer"]["status"], "running");
    let ends = s["timer"]["endsAt"].as_f64().unwrap() as u64;
    assert!(
        ends >= before + 299_000 && ends <= before + 302_000,
        "endsAt {ends} vs now {before}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    control(&t, &board, json!({"action": "timer", "op": "pause"})).await;
    let s = session(&t, &board).await;
    assert_eq!(s["timer"]["status"], "paused");
    let left = s["timer"]["remainingMs"].as_f64().unwrap();
    assert!(left < 299_500.0 && left > 290_000.0, "{left}");
    control(&t, &board, json!({"action": "timer", "op": "reset"})).await;
    assert_eq!(session(&t, &board).await["timer"]["status"], "stopped");
    // Participants do not run the session; a hand-written command is refused.
    let (s, _) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/control"),
        &token(Role::Employer, &board, "e"),
        Some(json!({"action": "step", "step": "6"})),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(session(&t, &board).await["step"], "3A");
    let (s, _) = control(&t, &board, json!({"action": "dance"})).await;
    assert_eq!(s, 400);
}

/// `control`: participants and observers may not write it at all; the facilitator may write
/// its own roots but not the server-managed `session` and `rounds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_writes() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let f = connect(
        &t,
        &board,
        "control",
        &token(Role::Facilitator, &board, "f"),
    )
    .await;
    f.set_map("session", "step", 6);
    f.assert_refused(0, "commands", T).await;
    let f = connect(
        &t,
        &board,
        "control",
        &token(Role::Facilitator, &board, "f"),
    )
    .await;
    f.set_map("rounds", "nep", 1);
    f.assert_refused(0, "commands", T).await;
    let f = connect(
        &t,
        &board,
        "control",
        &token(Role::Facilitator, &board, "f"),
    )
    .await;
    f.set_map("notities", "agenda", 1);
    let o = connect(&t, &board, "control", &token(Role::Observer, &board, "o")).await;
    assert!(tafel_tests::eventually(T, || o.map_json("notities").get("agenda").is_some()).await);
    assert!(f.seen().denied.is_empty());
    let e = connect(&t, &board, "control", &token(Role::Employer, &board, "e")).await;
    e.set_map("notities", "agenda", 2);
    e.assert_refused(0, "read-only", T).await;
}

/// Private writing: during the phase a participant's drafts are visible only to that
/// participant (not in any document, not to others over HTTP); direct canvas cards are
/// refused; the reveal publishes every draft into the canvas under the author setting, and the
/// author may then edit their revealed card.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_writing_and_reveal() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    assert_eq!(
        control(&t, &board, json!({"action": "private-writing", "on": true}))
            .await
            .0,
        200
    );
    let w_tok = named_token(Role::Employee, &board, "w-sub", "Wim Werknemer");
    let e_tok = token(Role::Employer, &board, "e-sub");
    let path = format!("/api/boards/{board}/drafts");
    let (s, v) = call(&t, Method::POST, &path, &w_tok, Some(json!({"section": "themas", "text": "geheime zorg over roosters", "type": "preventief"}))).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = call(
        &t,
        Method::POST,
        &path,
        &w_tok,
        Some(json!({"section": "opdracht", "text": "mag niet"})),
    )
    .await;
    assert_eq!(s, 403, "section rules hold for drafts too");
    let (s, _) = call(
        &t,
        Method::POST,
        &path,
        &e_tok,
        Some(json!({"section": "bouwstenen", "text": "werkgeversidee"})),
    )
    .await;
    assert_eq!(s, 200);
    let (status, mine) = call(&t, Method::GET, &path, &w_tok, None).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let (status, theirs) = call(&t, Method::GET, &path, &e_tok, None).await;
    assert_eq!(status, 200, "{theirs}");
    assert!(
        !theirs.to_string().contains("geheime zorg"),
        "another's draft leaked: {theirs}"
    );
    let (status, fac_view) = call(
        &t,
        Method::GET,
        &path,
        &token(Role::Facilitator, &board, "fac-1"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{fac_view}");
    assert!(!fac_view.to_string().contains("geheime zorg"));
    in_no_document(&t, &board, "geheime zorg").await;
    in_no_document(&t, &board, "werkgeversidee").await;
    let canvas = connect(&t, &board, "canvas", &e_tok).await;
    assert!(!canvas.items("cards").to_string().contains("geheime"));
    // Direct canvas cards are refused during private writing.
    canvas.add_card("direct", "bouwstenen", "voor iedereen", json!({}));
    canvas.assert_refused(0, "private writing", T).await;
    // Reveal.
    let (s, v) = control(&t, &board, json!({"action": "reveal-drafts"})).await;
    assert_eq!((s, v["published"].as_u64()), (200, Some(2)), "{v}");
    let o = connect(&t, &board, "canvas", &token(Role::Observer, &board, "o")).await;
    let cards = o.items("cards");
    let (id, card) = cards
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, c)| c["text"] == "geheime zorg over roosters")
        .expect("revealed card");
    assert_eq!(card["author"], "Medewerker");
    assert_eq!(card["type"], "preventief");
    assert!(!cards.to_string().contains("Wim"));
    assert_eq!(session(&t, &board).await["privateWriting"], false);
    let (status, left) = call(&t, Method::GET, &path, &w_tok, None).await;
    assert_eq!(status, 200, "{left}");
    assert_eq!(left, json!([]));
    // The author edits the revealed card (themas: own only); another employee may not.
    let w = connect(&t, &board, "canvas", &w_tok).await;
    w.append_item_text("cards", id, "text", "!");
    assert!(
        tafel_tests::eventually(T, || o.items("cards")[id]["text"]
            == "geheime zorg over roosters!")
        .await
    );
    let other = connect(
        &t,
        &board,
        "canvas",
        &token(Role::Employee, &board, "w-other"),
    )
    .await;
    other.append_item_text("cards", id, "text", "?");
    other.assert_refused(0, "your own", T).await;
    let (status, audit) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/audit"),
        &token(Role::Facilitator, &board, "f"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    assert!(audit.to_string().contains("reveal-drafts"));
}

/// Drafts handed in are counted live in `control/session` (`draftsIn`): a number only — the
/// control document holds neither the drafts' texts nor who wrote them — that follows each new
/// and taken-back draft and drops to 0 on the reveal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_in_are_counted_live_without_names() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    control(&t, &board, json!({"action": "private-writing", "on": true})).await;
    let o = connect(&t, &board, "control", &token(Role::Observer, &board, "o")).await;
    let count = || o.map_json("session")["draftsIn"].as_u64();
    assert_eq!(count(), Some(0));
    let path = format!("/api/boards/{board}/drafts");
    let w_tok = named_token(Role::Employee, &board, "w-sub", "Wim Werknemer");
    let (s, first) = call(
        &t,
        Method::POST,
        &path,
        &w_tok,
        Some(json!({"section": "themas", "text": "geheime zorg"})),
    )
    .await;
    assert_eq!(s, 200, "{first}");
    assert!(tafel_tests::eventually(T, || count() == Some(1)).await);
    let e_tok = named_token(Role::Employer, &board, "e-sub", "Erik Werkgever");
    let (s, _) = call(
        &t,
        Method::POST,
        &path,
        &e_tok,
        Some(json!({"section": "bouwstenen", "text": "idee"})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(tafel_tests::eventually(T, || count() == Some(2)).await);
    let control_doc = o.map_json("session").to_string() + &o.items("rounds").to_string();
    for secret in ["Wim", "Erik", "geheime", "w-sub", "e-sub"] {
        assert!(
            !control_doc.contains(secret),
            "{secret} in control: {control_doc}"
        );
    }
    let id = first["id"].as_str().expect("draft id");
    let (s, _) = call(&t, Method::DELETE, &format!("{path}/{id}"), &w_tok, None).await;
    assert_eq!(s, 200);
    assert!(
        tafel_tests::eventually(T, || count() == Some(1)).await,
        "a draft taken back"
    );
    let (s, _) = control(&t, &board, json!({"action": "reveal-drafts"})).await;
    assert_eq!(s, 200);
    assert!(
        tafel_tests::eventually(T, || count() == Some(0)).await,
        "revealed"
    );
}

/// `GET /mine` names the caller's own cards and rows as the server knows them from the owner
/// tags — a revealed draft included, which no device made — and nobody else's: another
/// employee, the observer and the facilitator get none of the author's, and a token for another
/// board is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mine_names_only_your_own_items_revealed_drafts_included() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    control(&t, &board, json!({"action": "private-writing", "on": true})).await;
    let w_tok = named_token(Role::Employee, &board, "w-sub", "Wim");
    let (s, v) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/drafts"),
        &w_tok,
        Some(json!({"section": "themas", "text": "mijn zorg"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = control(&t, &board, json!({"action": "reveal-drafts"})).await;
    assert_eq!(s, 200);
    let o = connect(&t, &board, "canvas", &token(Role::Observer, &board, "o")).await;
    assert!(
        tafel_tests::eventually(T, || o.items("cards").to_string().contains("mijn zorg")).await
    );
    let revealed = o
        .items("cards")
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, c)| c["text"] == "mijn zorg")
        .map(|(id, _)| id.clone())
        .expect("revealed");
    let e_tok = token(Role::Employer, &board, "e-sub");
    let e = connect(&t, &board, "canvas", &e_tok).await;
    e.add_card("e1", "bouwstenen", "van de werkgever", json!({}));
    assert!(tafel_tests::eventually(T, || o.items("cards")["e1"]["owner"].is_string()).await);
    let mine = |tok: String| {
        let t = &t;
        let path = format!("/api/boards/{board}/mine");
        async move { call(t, Method::GET, &path, &tok, None).await }
    };
    let (s, w) = mine(w_tok).await;
    assert_eq!(s, 200, "{w}");
    assert_eq!(
        w["canvas"],
        json!([revealed]),
        "the author's revealed draft: {w}"
    );
    let (_, e_mine) = mine(e_tok).await;
    assert_eq!(e_mine["canvas"], json!(["e1"]), "{e_mine}");
    for (tok, who) in [
        (token(Role::Employee, &board, "w-other"), "another employee"),
        (token(Role::Observer, &board, "o"), "the observer"),
        (token(Role::Facilitator, &board, "f"), "the facilitator"),
    ] {
        let (s, v) = mine(tok).await;
        assert_eq!(s, 200, "{who}: {v}");
        assert_eq!(v, json!({"canvas": [], "gap": []}), "{who} owns nothing");
    }
    let other = create_board(&t).await;
    let (s, _) = mine(token(Role::Employee, &other, "w-sub")).await;
    assert_eq!(s, 403, "a token for another board");
}

/// Dot voting: the budget and the per-card limit hold on the server, ballots are secret until
/// the reveal (not in any document, only your own over HTTP), and the reveal writes totals into
/// `control` and onto the cards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_voting_is_secret_and_budgeted() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let f = connect(&t, &board, "canvas", &token(Role::Facilitator, &board, "f")).await;
    for id in ["a", "b", "c"] {
        f.add_card(id, "bouwstenen", &format!("voorstel {id}"), json!({}));
    }
    let o = connect(&t, &board, "canvas", &token(Role::Observer, &board, "o")).await;
    assert!(
        tafel_tests::eventually(T, || o
            .items("cards")
            .as_object()
            .is_some_and(|m| m.len() == 3))
        .await
    );
    let (s, v) = control(&t, &board, json!({"action": "open-round", "title": "Prioriteit", "cards": ["a", "b", "c"], "budget": 2, "max_per_card": 1})).await;
    assert_eq!(s, 200, "{v}");
    let round = v["round"].as_str().unwrap().to_owned();
    let (s, _) = control(
        &t,
        &board,
        json!({"action": "open-round", "title": "x", "cards": ["zz"], "budget": 1}),
    )
    .await;
    assert_eq!(s, 400, "rounds only over existing cards");
    let votes = format!("/api/boards/{board}/rounds/{round}/votes");
    let e = token(Role::Employer, &board, "stemmer-werkgever");
    let u = token(Role::Union, &board, "stemmer-vakbond");
    let w = token(Role::Employee, &board, "stemmer-medewerker");
    assert_eq!(
        call(&t, Method::POST, &votes, &e, Some(json!({"card": "a"})))
            .await
            .0,
        200
    );
    assert_eq!(
        call(&t, Method::POST, &votes, &e, Some(json!({"card": "a"})))
            .await
            .0,
        403,
        "voting twice on one card"
    );
    assert_eq!(
        call(&t, Method::POST, &votes, &e, Some(json!({"card": "b"})))
            .await
            .0,
        200
    );
    assert_eq!(
        call(&t, Method::POST, &votes, &e, Some(json!({"card": "c"})))
            .await
            .0,
        403,
        "over budget"
    );
    assert_eq!(
        call(&t, Method::POST, &votes, &e, Some(json!({"card": "zz"})))
            .await
            .0,
        400
    );
    assert_eq!(
        call(&t, Method::POST, &votes, &u, Some(json!({"card": "a"})))
            .await
            .0,
        200
    );
    assert_eq!(
        call(&t, Method::POST, &votes, &w, Some(json!({"card": "c"})))
            .await
            .0,
        200
    );
    assert_eq!(
        call(
            &t,
            Method::POST,
            &votes,
            &token(Role::Observer, &board, "o"),
            Some(json!({"card": "c"}))
        )
        .await
        .0,
        403
    );
    // Take one back and give it elsewhere: still within budget.
    assert_eq!(
        call(&t, Method::DELETE, &format!("{votes}/b"), &e, None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&t, Method::POST, &votes, &e, Some(json!({"card": "c"})))
            .await
            .0,
        200
    );
    let ballot = format!("/api/boards/{board}/rounds/{round}/ballot");
    let (status, mine) = call(&t, Method::GET, &ballot, &e, None).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(
        mine["votes"],
        json!({"canvas/a": 1, "canvas/c": 1}),
        "the items you have dots on (a dot taken back leaves none on b)"
    );
    assert_eq!(mine["left"], 0);
    let (status, union_view) = call(&t, Method::GET, &ballot, &u, None).await;
    assert_eq!(status, 200, "{union_view}");
    assert_eq!(
        union_view["votes"],
        json!({"canvas/a": 1}),
        "a ballot shows only your own dots"
    );
    // Before the reveal no totals anywhere a participant can read.
    let ctl = connect(&t, &board, "control", &u).await;
    let rounds = ctl.map_json("rounds");
    assert!(rounds[&round]["totals"].is_null(), "{rounds}");
    assert!(!rounds.to_string().contains("stemmer") && !rounds.to_string().contains("ballots"));
    let canvas = connect(&t, &board, "canvas", &u).await;
    assert!(canvas.items("cards")["a"].get("votes").is_none());
    for voter in ["stemmer-werkgever", "stemmer-vakbond", "stemmer-medewerker"] {
        in_no_document(&t, &board, voter).await;
    }
    let (s, v) = control(
        &t,
        &board,
        json!({"action": "reveal-round", "round": round}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        v["totals"],
        json!({"canvas/a": 2, "canvas/b": 0, "canvas/c": 2})
    );
    assert!(tafel_tests::eventually(T, || o.items("cards")["a"]["votes"] == 2).await);
    let rounds = connect(&t, &board, "control", &u).await.map_json("rounds");
    assert_eq!(rounds[&round]["totals"]["canvas/c"], 2);
    assert_eq!(rounds[&round]["status"], "revealed");
    assert_eq!(
        call(&t, Method::POST, &votes, &w, Some(json!({"card": "a"})))
            .await
            .0,
        403,
        "closed after the reveal"
    );
    let (s, body) = call(&t, Method::DELETE, &format!("{votes}/a"), &e, None).await;
    assert_eq!(s, 403, "taking a dot back after the reveal: {body}");
    let (s, body) = call(&t, Method::GET, &ballot, &e, None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["votes"],
        json!({"canvas/a": 1, "canvas/c": 1}),
        "the ballot is unchanged after refused calls"
    );
}

/// A round over cards of any section and gap rows: items are `doc/id`, so a card and a gap row
/// with the same id are counted apart; a vote for an item outside the round, or a gap row named
/// as a card, is refused; the reveal publishes a ranked list in `control`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_over_any_section_and_gap_rows_rank_by_document_and_item() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let fac = token(Role::Facilitator, &board, "f");
    let f = connect(&t, &board, "canvas", &fac).await;
    f.add_card("same", "themas", "thema met de id van een rij", json!({}));
    f.add_card("knel", "opdracht", "de opdracht", json!({}));
    let g = connect(&t, &board, "gap", &fac).await;
    g.add_item("rows", "same", json!({"priority": 1}), "onderwerp", "rij 1");
    g.add_item("rows", "rij2", json!({"priority": 2}), "onderwerp", "rij 2");
    let o = connect(&t, &board, "canvas", &token(Role::Observer, &board, "o")).await;
    let og = connect(&t, &board, "gap", &token(Role::Observer, &board, "o")).await;
    assert!(
        tafel_tests::eventually(T, || o
            .items("cards")
            .as_object()
            .is_some_and(|m| m.len() == 2))
        .await
    );
    assert!(
        tafel_tests::eventually(T, || og
            .items("rows")
            .as_object()
            .is_some_and(|m| m.len() == 2))
        .await
    );
    // Hostile: a gap row's id given as a card (the canvas has no such card), an unknown document.
    let (s, v) = control(
        &t,
        &board,
        json!({"action": "open-round", "title": "x", "cards": ["rij2"], "budget": 1}),
    )
    .await;
    assert_eq!(s, 400, "a gap row is not a card: {v}");
    let (s, v) = control(
        &t,
        &board,
        json!({"action": "open-round", "title": "x", "items": ["control/session"], "budget": 1}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = control(
        &t,
        &board,
        json!({"action": "open-round", "title": "x", "items": ["gap/knel"], "budget": 1}),
    )
    .await;
    assert_eq!(s, 400, "a card is not a gap row: {v}");
    let (s, v) = control(
        &t,
        &board,
        json!({"action": "open-round", "title": "Prioriteit", "cards": ["knel"], "items": ["canvas/same", "gap/same", "gap/rij2"], "budget": 3}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let round = v["round"].as_str().unwrap().to_owned();
    let votes = format!("/api/boards/{board}/rounds/{round}/votes");
    let e = token(Role::Employer, &board, "e");
    let w = token(Role::Employee, &board, "w");
    let vote = |tok: &str, body: Value| {
        let (t, votes, tok) = (&t, votes.clone(), tok.to_owned());
        async move { call(t, Method::POST, &votes, &tok, Some(body)).await }
    };
    for (tok, body) in [
        (&e, json!({"item": "gap/same"})),
        (&e, json!({"item": "gap/same"})),
        (&e, json!({"card": "same"})),
        (&w, json!({"item": "gap/same"})),
        (&w, json!({"item": "gap/rij2"})),
    ] {
        let (s, v) = vote(tok, body.clone()).await;
        assert_eq!(s, 200, "{body}: {v}");
    }
    // Hostile: an item not in the round, a bare or malformed item, a row named as a card.
    for body in [
        json!({"item": "gap/nope"}),
        json!({"item": "same"}),
        json!({"item": "party-employer/same"}),
        json!({"card": "rij2"}),
        json!({"card": "same", "item": "gap/same"}),
    ] {
        let (s, v) = vote(&w, body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
    }
    let ballot = format!("/api/boards/{board}/rounds/{round}/ballot");
    let (_, mine) = call(&t, Method::GET, &ballot, &e, None).await;
    assert_eq!(mine["votes"], json!({"gap/same": 2, "canvas/same": 1}));
    // Taking a gap row's dot back by its item in the path.
    let (s, v) = call(&t, Method::DELETE, &format!("{votes}/gap%2Fsame"), &e, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["votes"]["gap/same"], 1);
    let (s, v) = control(
        &t,
        &board,
        json!({"action": "reveal-round", "round": round}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["totals"],
        json!({"canvas/knel": 0, "canvas/same": 1, "gap/same": 2, "gap/rij2": 1})
    );
    let ctl = connect(&t, &board, "control", &w).await;
    let r = &ctl.map_json("rounds")[&round];
    assert_eq!(
        r["ranking"],
        json!([
            {"item": "gap/same", "votes": 2},
            {"item": "canvas/same", "votes": 1},
            {"item": "gap/rij2", "votes": 1},
            {"item": "canvas/knel", "votes": 0},
        ]),
        "most dots first, ties in the round's order: {r}"
    );
    assert_eq!(r["cards"], json!(["knel", "same"]));
    // The canvas card carries its own total, not the gap row's.
    assert!(tafel_tests::eventually(T, || o.items("cards")["same"]["votes"] == 1).await);
}

/// "Top N → priorities": only the facilitator turns the top of a revealed round into priorities
/// (a participant's command is refused and changes nothing); the top items with a dot get
/// `priority` 1, 2, … on their card or gap row, the round's other items lose theirs, and
/// `control/rounds` keeps the list. A bouwsteen links to the gap row it answers only by a row id
/// of this board. The advice report shows the priorities, the ranked results with bars and, in
/// the gap analysis, the bouwstenen per row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_facilitator_turns_the_top_of_a_round_into_priorities_and_bouwstenen_answer_gap_rows() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let fac = token(Role::Facilitator, &board, "f");
    let f = connect(&t, &board, "canvas", &fac).await;
    f.add_card("b1", "bouwstenen", "Ontwikkelbudget", json!({}));
    let g = connect(&t, &board, "gap", &fac).await;
    g.add_item(
        "rows",
        "g1",
        json!({"priority": 7}),
        "onderwerp",
        "Scholing",
    );
    g.add_item("rows", "g2", json!({}), "onderwerp", "Werkdruk");
    let og = connect(&t, &board, "gap", &token(Role::Observer, &board, "o")).await;
    let oc = connect(&t, &board, "canvas", &token(Role::Observer, &board, "o")).await;
    assert!(
        tafel_tests::eventually(T, || og
            .items("rows")
            .as_object()
            .is_some_and(|m| m.len() == 2)
            && oc.items("cards").get("b1").is_some())
        .await
    );
    let (s, v) = control(
        &t,
        &board,
        json!({"action": "open-round", "title": "Wat eerst?", "items": ["canvas/b1", "gap/g1", "gap/g2"], "budget": 3}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let round = v["round"].as_str().unwrap().to_owned();
    let votes = format!("/api/boards/{board}/rounds/{round}/votes");
    let e = token(Role::Employer, &board, "e");
    let w = token(Role::Employee, &board, "w");
    for (tok, item) in [
        (&w, "gap/g2"),
        (&w, "gap/g2"),
        (&w, "canvas/b1"),
        (&e, "gap/g2"),
    ] {
        let (s, v) = call(&t, Method::POST, &votes, tok, Some(json!({"item": item}))).await;
        assert_eq!(s, 200, "{item}: {v}");
    }
    let top2 = json!({"action": "prioritize", "round": round, "top": 2});
    let (s, v) = control(&t, &board, top2.clone()).await;
    assert_eq!(s, 400, "not before the reveal: {v}");
    let (s, v) = control(
        &t,
        &board,
        json!({"action": "reveal-round", "round": round}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Hostile: participants send the facilitator's command with their own tokens.
    let path = format!("/api/boards/{board}/control");
    for tok in [&w, &e, &token(Role::Observer, &board, "o")] {
        let (s, v) = call(&t, Method::POST, &path, tok, Some(top2.clone())).await;
        assert_eq!(s, 403, "{v}");
    }
    let (_, export) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/export?format=json"),
        &fac,
        None,
    )
    .await;
    let rows = &export["documents"]["gap"]["rows"];
    assert!(rows["g2"].get("priority").is_none(), "{rows}");
    assert_eq!(rows["g1"]["priority"], 7, "{rows}");
    assert_eq!(
        export["documents"]["control"]["rounds"][&round]["priorities"],
        json!([])
    );
    for bad_top in [0, 4] {
        let (s, v) = control(
            &t,
            &board,
            json!({"action": "prioritize", "round": round, "top": bad_top}),
        )
        .await;
        assert_eq!(s, 400, "top {bad_top}: {v}");
    }
    let (s, v) = control(
        &t,
        &board,
        json!({"action": "prioritize", "round": "nope", "top": 1}),
    )
    .await;
    assert_eq!(s, 404, "{v}");
    // Positive control: the facilitator's top 2.
    let (s, v) = control(&t, &board, top2).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["priorities"], json!(["gap/g2", "canvas/b1"]));
    assert!(
        tafel_tests::eventually(T, || og.items("rows")["g2"]["priority"] == 1
            && og.items("rows")["g1"]["priority"] == 3
            && oc.items("cards")["b1"]["priority"] == 2)
        .await,
        "rows {} cards {}",
        og.items("rows"),
        oc.items("cards")
    );
    let ctl = connect(&t, &board, "control", &w).await;
    assert_eq!(
        ctl.map_json("rounds")[&round]["priorities"],
        json!(["gap/g2", "canvas/b1"])
    );
    // A bouwsteen answers a gap row: only a row of this board.
    let hostile = connect(&t, &board, "canvas", &e).await;
    hostile.set_item_field("cards", "b1", "gapRow", json!("elders"));
    hostile.assert_refused(0, "gap", T).await;
    let ec = connect(&t, &board, "canvas", &e).await;
    ec.set_item_field("cards", "b1", "gapRow", json!("g1"));
    assert!(tafel_tests::eventually(T, || oc.items("cards")["b1"]["gapRow"] == "g1").await);
    assert!(ec.seen().denied.is_empty(), "{:?}", ec.seen().denied);
    let (s, _, md) = tafel_tests::api::call_text(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/export?format=md"),
        &fac,
    )
    .await;
    assert_eq!(s, 200);
    for want in [
        "Uit de stemronde “Wat eerst?”:\n\n- Prioriteit 1: Werkdruk (gap-analyse), 3 stemmen\n- Prioriteit 2: Ontwikkelbudget, 1 stem\n",
        "| Scholing |  |  |  |  |  | Ontwikkelbudget |",
        "#### Wat eerst?\n\n1. Werkdruk (gap-analyse) `████████████████████` 3\n2. Ontwikkelbudget `███████` 1\n3. Scholing (gap-analyse) `·` 0\n",
    ] {
        assert!(md.contains(want), "missing {want:?} in\n{md}");
    }
}

/// Moderation: hide, restore and merge are the facilitator's, are audited (who, what, when),
/// and the log can be exported as JSON and CSV by the facilitator only. Hidden cards leave the
/// document, so they are in no other role's export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_and_audit() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let e = connect(&t, &board, "canvas", &token(Role::Employer, &board, "e1")).await;
    e.add_card("m1", "bouwstenen", "dubbel idee", json!({}));
    e.add_card("m2", "bouwstenen", "idee", json!({}));
    let o = connect(&t, &board, "canvas", &token(Role::Observer, &board, "o")).await;
    assert!(tafel_tests::eventually(T, || o.items("cards")["m2"]["owner"].is_string()).await);
    assert_eq!(
        control(&t, &board, json!({"action": "hide", "card": "m1"}))
            .await
            .0,
        200
    );
    // A hidden card leaves the document (tests/moderation.rs reads the bytes).
    assert!(tafel_tests::eventually(T, || o.items("cards").get("m1").is_none()).await);
    let (status, export) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/export"),
        &token(Role::Employer, &board, "e1"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{export}");
    assert!(
        !export.to_string().contains("dubbel idee"),
        "hidden card in a participant's export"
    );
    assert_eq!(
        control(&t, &board, json!({"action": "restore", "card": "m1"}))
            .await
            .0,
        200
    );
    assert!(tafel_tests::eventually(T, || o.items("cards")["m1"]["text"] == "dubbel idee").await);
    assert_eq!(
        control(
            &t,
            &board,
            json!({"action": "merge", "card": "m1", "into": "m2"})
        )
        .await
        .0,
        200
    );
    assert!(
        tafel_tests::eventually(T, || o.items("cards")["m2"]["text"] == "idee\ndubbel idee").await
    );
    assert!(
        o.items("cards").get("m1").is_none(),
        "a merged card leaves the document"
    );
    assert_eq!(
        control(&t, &board, json!({"action": "hide", "card": "nope"}))
            .await
            .0,
        404
    );
    // A participant cannot moderate, neither by command nor by writing `hidden`.
    let (s, _) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/control"),
        &token(Role::Employer, &board, "e1"),
        Some(json!({"action": "hide", "card": "m2"})),
    )
    .await;
    assert_eq!(s, 403);
    let e2 = connect(&t, &board, "canvas", &token(Role::Employer, &board, "e1")).await;
    e2.set_item_field("cards", "m2", "hidden", json!(true));
    e2.assert_refused(0, "hidden", T).await;
    control(
        &t,
        &board,
        json!({"action": "lock", "scope": "section", "target": "rollen", "locked": true}),
    )
    .await;
    let fac = token(Role::Facilitator, &board, "fac-1");
    let (s, log) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/audit"),
        &fac,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in ["hide", "restore", "merge", "lock"] {
        assert!(actions.contains(&want), "{want} not audited: {actions:?}");
    }
    let entry = &log.as_array().unwrap()[0];
    assert_eq!(entry["sub"], "fac-1");
    assert!(entry["at"].as_u64().unwrap() >= now() - 60);
    let csv = tafel_tests::api::http()
        .get(format!("{}/api/boards/{board}/audit?format=csv", t.http()))
        .bearer_auth(&fac)
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let body = csv.text().await.unwrap();
    assert!(body.starts_with("at,sub,name,role,action,detail") && body.contains("\"merge\""));
    let (s, _) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/audit"),
        &token(Role::Employer, &board, "e1"),
        None,
    )
    .await;
    assert_eq!(s, 403);
}

/// Session state survives a restart: it is kept in the store, not only in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_state_survives_restart() {
    let mut t = Tafel::start_embedded();
    let board = create_board(&t).await;
    control(&t, &board, json!({"action": "step", "step": "4"})).await;
    control(
        &t,
        &board,
        json!({"action": "lock", "scope": "section", "target": "bouwstenen", "locked": true}),
    )
    .await;
    call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/drafts"),
        &token(Role::Union, &board, "u1"),
        Some(json!({"section": "bouwstenen", "text": "na herstart"})),
    )
    .await;
    t.restart();
    assert_eq!(session(&t, &board).await["step"], "4");
    let f = connect(&t, &board, "canvas", &token(Role::Facilitator, &board, "f")).await;
    drop(f);
    let e = connect(&t, &board, "canvas", &token(Role::Employer, &board, "e1")).await;
    e.add_card("x", "bouwstenen", "slot geldt nog", json!({}));
    e.assert_refused(0, "locked", T).await;
    let (status, drafts) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/drafts"),
        &token(Role::Union, &board, "u1"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{drafts}");
    assert_eq!(drafts.as_array().map(Vec::len), Some(1));
}
