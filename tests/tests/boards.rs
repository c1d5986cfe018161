//! Boards from templates and the rules the server enforces on every update, each tried by a
//! raw yrs client that ignores any UI: section permissions, "only your own", server-only
//! fields, values, locks, presentation mode, and employee anonymity in documents, awareness and
//! exports.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tafel_protocol::Role;
use tafel_tests::api::{call, control, create_board, named_token, token};
use tafel_tests::client::YClient;
use tafel_tests::procs::Tafel;

const T: Duration = Duration::from_secs(5);

/// One way of breaking a rule, tried on a fresh connection.
type Attempt = Box<dyn Fn(&YClient)>;

async fn connect(t: &Tafel, board: &str, doc: &str, tok: &str) -> YClient {
    YClient::connect_synced(&t.ws_url(board, doc, tok)).await
}

/// Waits until the card exists in `c` with the server's stamp (owner set).
async fn stamped(c: &YClient, id: &str) -> bool {
    tafel_tests::eventually(T, || c.items("cards")[id]["owner"].is_string()).await
}

/// A round trip through the server's copy of the document: the facilitator `fac` adds a card
/// and waits for the server's stamp on it. The server handles a document's updates in order, so
/// whatever it forwarded for any earlier update has reached `fac` by then: absence checks after
/// this need no sleep.
async fn round_trip(fac: &YClient, id: &str) {
    fac.add_card(id, "bouwstenen", "ijkpunt", json!({}));
    assert!(
        stamped(fac, id).await,
        "no stamp on the round-trip card {id}"
    );
}

/// The server's count of refused updates.
async fn refused_total(t: &Tafel) -> f64 {
    let body = reqwest::get(format!("{}/metrics", t.http()))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    body.lines()
        .find_map(|l| l.strip_prefix("tafel_refused_updates_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("tafel_refused_updates_total on /metrics")
}

async fn denied(c: &YClient, before: usize) -> Option<String> {
    if c.wait(T, |s| s.denied.len() > before).await {
        c.seen().denied.last().cloned()
    } else {
        None
    }
}

/// Templates are data: both built-ins are listed and served whole; a new board's canvas holds
/// the template's themes and meta, written by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_seeded_board() {
    let t = Tafel::start_embedded();
    let fac = token(Role::Facilitator, "*", "f");
    let (s, list) = call(&t, Method::GET, "/api/templates", &fac, None).await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"cao-di-organisatie") && ids.contains(&"cao-di-sector"));
    let (s, tpl) = call(&t, Method::GET, "/api/templates/cao-di-sector", &fac, None).await;
    assert_eq!(s, 200);
    let sections: Vec<&str> = tpl["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for want in [
        "opdracht",
        "ambitie-en-scope",
        "themas",
        "rollen",
        "proces",
        "bouwstenen",
        "monitoring",
    ] {
        assert!(sections.contains(&want), "missing section {want}");
    }
    assert!(tpl["staalkaart"].as_array().unwrap().len() >= 25);
    let board = create_board(&t).await;
    let c = connect(&t, &board, "canvas", &token(Role::Observer, &board, "o")).await;
    let themes = c.map_json("themes");
    assert!(themes.as_object().unwrap().len() >= 5, "{themes}");
    assert!(themes["zwaar-werk"]["name"].is_string());
    assert_eq!(c.map_json("meta")["template"], "cao-di-organisatie");
}

/// Happy path: a participant adds a card where the template allows it; the server stamps an
/// owner tag, the author (party mode by default) and the time, and everyone sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participant_adds_a_card_and_the_server_stamps_it() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let emp = connect(
        &t,
        &board,
        "canvas",
        &named_token(Role::Employer, &board, "werkgever-sub", "Erik Werkgever"),
    )
    .await;
    let obs = connect(&t, &board, "canvas", &token(Role::Observer, &board, "o1")).await;
    emp.add_card("k1", "bouwstenen", "Ontwikkelbudget van 500 euro", json!({"type": "versterkend", "pijlers": ["bekwaamheid"], "thema": "leren-opleiden-loopbaan"}));
    assert!(
        stamped(&obs, "k1").await,
        "observer never saw the stamped card"
    );
    let card = &obs.items("cards")["k1"];
    assert_eq!(card["text"], "Ontwikkelbudget van 500 euro");
    assert_eq!(card["author"], "Werkgever");
    assert!(card["createdAt"].is_number());
    // An HMAC, not the `sub` (a sub that is not hex, so a random tag cannot contain it).
    let owner = card["owner"].as_str().unwrap();
    assert!(
        owner.len() == 32 && owner.bytes().all(|b| b.is_ascii_hexdigit()),
        "{owner}"
    );
    assert!(!owner.contains("werkgever"));
    assert!(emp.seen().denied.is_empty());
}

/// Section permissions: an employee may not add in `opdracht`, an observer nowhere; a refused
/// update is not applied, stored or forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn section_add_rules_hold() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let watcher = connect(&t, &board, "canvas", &token(Role::Facilitator, &board, "f")).await;
    let employee = connect(&t, &board, "canvas", &token(Role::Employee, &board, "w1")).await;
    employee.add_card("x1", "opdracht", "ik schrijf de opdracht", json!({}));
    let reason = denied(&employee, 0)
        .await
        .expect("employee in opdracht must be refused");
    assert!(reason.contains("opdracht"), "{reason}");
    // Allowed for the employee: the themas section.
    let employee2 = connect(&t, &board, "canvas", &token(Role::Employee, &board, "w1")).await;
    employee2.add_card("x2", "themas", "werkdruk in de nachtdienst", json!({}));
    assert!(stamped(&watcher, "x2").await);
    assert!(
        watcher.items("cards").get("x1").is_none(),
        "refused card was forwarded"
    );
    // Unknown section, and a card that is not a map.
    let employer = connect(&t, &board, "canvas", &token(Role::Employer, &board, "e1")).await;
    employer.add_card("x3", "bestaat-niet", "??", json!({}));
    assert!(denied(&employer, 0).await.is_some());
    round_trip(&watcher, "ijk").await;
    assert!(watcher.items("cards").get("x3").is_none());
}

/// "Only your own": in `themas` (edit own only) nobody edits or removes another's card; in
/// `bouwstenen` (co-edited) others may edit the text but still not remove it. The facilitator
/// may do all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_your_own_cards() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let fac = connect(&t, &board, "canvas", &token(Role::Facilitator, &board, "f")).await;
    let anna = connect(&t, &board, "canvas", &token(Role::Employer, &board, "anna")).await;
    anna.add_card("t1", "themas", "zwaar werk in de bouw", json!({}));
    anna.add_card("b1", "bouwstenen", "generatiepact", json!({}));
    assert!(stamped(&fac, "t1").await && stamped(&fac, "b1").await);
    // Another employer (other sub) tries to edit and remove Anna's themas card.
    let bert = connect(&t, &board, "canvas", &token(Role::Employer, &board, "bert")).await;
    bert.append_item_text("cards", "t1", "text", " (niet waar)");
    let r = denied(&bert, 0)
        .await
        .expect("editing another's themas card must be refused");
    assert!(r.contains("own"), "{r}");
    let bert = connect(&t, &board, "canvas", &token(Role::Employer, &board, "bert")).await;
    bert.remove_item("cards", "t1");
    assert!(
        denied(&bert, 0).await.is_some(),
        "removing another's card must be refused"
    );
    // Co-editing in bouwstenen: a union member edits Anna's text: allowed and forwarded.
    let uma = connect(&t, &board, "canvas", &token(Role::Union, &board, "uma")).await;
    uma.append_item_text("cards", "b1", "text", " 80-90-100");
    assert!(
        tafel_tests::eventually(T, || fac.items("cards")["b1"]["text"]
            == "generatiepact 80-90-100")
        .await
    );
    // ...but not remove it.
    let uma2 = connect(&t, &board, "canvas", &token(Role::Union, &board, "uma")).await;
    uma2.remove_item("cards", "b1");
    assert!(denied(&uma2, 0).await.is_some());
    // Anna herself edits and removes her own themas card.
    let anna2 = connect(&t, &board, "canvas", &token(Role::Employer, &board, "anna")).await;
    anna2.append_item_text("cards", "t1", "text", "!");
    assert!(
        tafel_tests::eventually(T, || fac.items("cards")["t1"]["text"]
            == "zwaar werk in de bouw!")
        .await
    );
    let anna3 = connect(&t, &board, "canvas", &token(Role::Employer, &board, "anna")).await;
    anna3.remove_item("cards", "t1");
    assert!(tafel_tests::eventually(T, || fac.items("cards").get("t1").is_none()).await);
    assert!(anna3.seen().denied.is_empty());
    // The facilitator removes anyone's card.
    fac.remove_item("cards", "b1");
    let check = connect(&t, &board, "canvas", &token(Role::Observer, &board, "o")).await;
    assert!(tafel_tests::eventually(T, || check.items("cards").get("b1").is_none()).await);
}

/// Server-only fields and values: a participant may not set owner, author, hidden or votes,
/// nor an unknown type, pijler or thema, nor write themes, meta or a new root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_fields_values_and_roots_are_guarded() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let tok = token(Role::Union, &board, "u1");
    let cases: Vec<(&str, Attempt)> = vec![
        (
            "votes",
            Box::new(|c: &YClient| c.add_card("v", "bouwstenen", "x", json!({"votes": 99}))),
        ),
        (
            "hidden",
            Box::new(|c: &YClient| c.add_card("h", "bouwstenen", "x", json!({"hidden": false}))),
        ),
        (
            "owner",
            Box::new(|c: &YClient| c.add_card("o", "bouwstenen", "x", json!({"owner": "abc"}))),
        ),
        (
            "author",
            Box::new(|c: &YClient| {
                c.add_card("a", "bouwstenen", "x", json!({"author": "Iemand anders"}))
            }),
        ),
        (
            "type",
            Box::new(|c: &YClient| c.add_card("ty", "bouwstenen", "x", json!({"type": "magisch"}))),
        ),
        (
            "pijlers",
            Box::new(|c: &YClient| {
                c.add_card("p", "bouwstenen", "x", json!({"pijlers": ["geluk"]}))
            }),
        ),
        (
            "thema",
            Box::new(|c: &YClient| {
                c.add_card("th", "bouwstenen", "x", json!({"thema": "onbekend"}))
            }),
        ),
        (
            "themes",
            Box::new(|c: &YClient| c.set_map("themes", "nieuw", 1)),
        ),
        (
            "meta",
            Box::new(|c: &YClient| c.set_map("meta", "title", 1)),
        ),
        ("t", Box::new(|c: &YClient| c.push_text("t", "vrije tekst"))),
    ];
    let fac = connect(&t, &board, "canvas", &token(Role::Facilitator, &board, "f")).await;
    for (what, attempt) in cases {
        let c = connect(&t, &board, "canvas", &tok).await;
        attempt(&c);
        let r = denied(&c, 0)
            .await
            .unwrap_or_else(|| panic!("{what} was not refused"));
        assert!(r.contains(what), "{what}: {r}");
    }
    round_trip(&fac, "ijk").await;
    let cards = fac.items("cards");
    let ids: Vec<&String> = cards.as_object().expect("cards map").keys().collect();
    assert_eq!(ids, ["ijk"], "a refused card reached the facilitator");
    // The facilitator may edit the board's themes.
    fac.set_map("themes", "nachtwerk", 1);
    let o = connect(&t, &board, "canvas", &token(Role::Observer, &board, "o")).await;
    assert!(o.map_json("themes").get("nachtwerk").is_some());
}

/// After a refusal, the refused edit is nowhere but in the refused client's own copy. Its Y.Doc
/// now holds clocks the server will never have, so its later edits are refused as
/// `missing-dependencies` (Yjs clocks are contiguous per client); resyncing with a fresh
/// document gets that client back in step with the server (without its refused edit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_client_gets_back_in_step() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let tok = token(Role::Employee, &board, "w1");
    let o = connect(&t, &board, "canvas", &token(Role::Observer, &board, "o")).await;
    let c = connect(&t, &board, "canvas", &tok).await;
    c.add_card("nee", "opdracht", "mag niet", json!({}));
    let first = denied(&c, 0).await.expect("refused");
    assert!(first.starts_with("role-not-allowed: "), "{first}");
    c.add_card("ja", "themas", "mag wel", json!({}));
    let second = denied(&c, 1).await.expect("refused too");
    assert!(second.starts_with("missing-dependencies: "), "{second}");
    assert!(o.items("cards").get("nee").is_none());
    assert!(o.items("cards").get("ja").is_none());
    assert!(
        c.items("cards").get("nee").is_some(),
        "the refused card is still on the client's screen"
    );
    let fresh = connect(&t, &board, "canvas", &tok).await;
    let cards = fresh.items("cards");
    assert!(
        cards.get("nee").is_none() && cards.get("ja").is_none(),
        "{cards}"
    );
    // The fresh document (a new client id) writes again, and edits its own card later.
    fresh.add_card("ja", "themas", "mag wel", json!({}));
    assert!(
        stamped(&o, "ja").await,
        "an allowed edit from a fresh document goes through"
    );
    fresh.append_item_text("cards", "ja", "text", " en meer");
    assert!(
        tafel_tests::eventually(T, || o.items("cards")["ja"]["text"] == "mag wel en meer").await
    );
}

/// Locks: a locked section, a locked document and a locked board each make participants' writes
/// fail; unlocking restores them. The facilitator keeps writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_refuse_participants_until_unlocked() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let tok = token(Role::Employer, &board, "e1");
    let attempts = [
        json!({"action": "lock", "scope": "section", "target": "bouwstenen", "locked": true}),
        json!({"action": "lock", "scope": "doc", "target": "canvas", "locked": true}),
        json!({"action": "lock", "scope": "board", "locked": true}),
    ];
    let undo = [
        json!({"action": "lock", "scope": "section", "target": "bouwstenen", "locked": false}),
        json!({"action": "lock", "scope": "doc", "target": "canvas", "locked": false}),
        json!({"action": "lock", "scope": "board", "locked": false}),
    ];
    for (i, (lock, unlock)) in attempts.iter().zip(undo.iter()).enumerate() {
        assert_eq!(control(&t, &board, lock.clone()).await.0, 200, "{lock}");
        let c = connect(&t, &board, "canvas", &tok).await;
        c.add_card(&format!("l{i}"), "bouwstenen", "tijdens slot", json!({}));
        let r = denied(&c, 0)
            .await
            .unwrap_or_else(|| panic!("not refused under {lock}"));
        assert!(r.contains("lock"), "{r}");
        let f = connect(&t, &board, "canvas", &token(Role::Facilitator, &board, "f")).await;
        f.add_card(&format!("f{i}"), "bouwstenen", "facilitator mag", json!({}));
        assert!(stamped(&f, &format!("f{i}")).await);
        assert!(
            f.seen().denied.is_empty(),
            "the facilitator is never locked out"
        );
        assert_eq!(control(&t, &board, unlock.clone()).await.0, 200);
        let c = connect(&t, &board, "canvas", &tok).await;
        c.add_card(&format!("ok{i}"), "bouwstenen", "na het slot", json!({}));
        assert!(
            stamped(&f, &format!("ok{i}")).await,
            "not allowed again after {unlock}"
        );
    }
    // The session state is visible in control, for observers too.
    control(
        &t,
        &board,
        json!({"action": "lock", "scope": "section", "target": "rollen", "locked": true}),
    )
    .await;
    let o = connect(&t, &board, "control", &token(Role::Observer, &board, "o")).await;
    let session = o.map_json("session");
    assert_eq!(session["locks"]["sections"], json!(["rollen"]));
    assert_eq!(session["presentation"]["on"], false);
}

/// Presentation mode only moves the screens: participants keep writing while the room screen
/// follows the facilitator (a raw client, no UI). The positive control: a section lock during
/// the presentation still refuses, so the accepted write is not a judge that accepts everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presentation_mode_locks_nobody() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let tok = token(Role::Employer, &board, "e1");
    let on = json!({"action": "presentation", "on": true, "focus": {"doc": "canvas", "section": "bouwstenen"}});
    assert_eq!(control(&t, &board, on).await.0, 200);
    let f = connect(&t, &board, "canvas", &token(Role::Facilitator, &board, "f")).await;
    let c = connect(&t, &board, "canvas", &tok).await;
    c.add_card("p1", "bouwstenen", "tijdens de presentatie", json!({}));
    assert!(
        stamped(&f, "p1").await,
        "a participant writes during the presentation"
    );
    assert!(c.seen().denied.is_empty(), "{:?}", c.seen().denied);
    let lock =
        json!({"action": "lock", "scope": "section", "target": "bouwstenen", "locked": true});
    assert_eq!(control(&t, &board, lock).await.0, 200);
    let c = connect(&t, &board, "canvas", &tok).await;
    c.add_card("p2", "bouwstenen", "onder slot", json!({}));
    let r = denied(&c, 0)
        .await
        .expect("a lock still refuses during the presentation");
    assert!(r.contains("section-locked"), "{r}");
    let o = connect(&t, &board, "control", &token(Role::Observer, &board, "o")).await;
    assert_eq!(o.map_json("session")["presentation"]["on"], true);
}

/// Gap analysis: rows with the four columns and partijen; employers and unions add and co-edit
/// rows, employees may not add them, values are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gap_rows_follow_the_gap_rules() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let e = connect(&t, &board, "gap", &token(Role::Employer, &board, "e1")).await;
    e.add_item(
        "rows",
        "r1",
        json!({"partijen": ["HR", "OR"], "pijlers": ["gezondheid"], "priority": 1}),
        "onderwerp",
        "Werkdruk",
    );
    let u = connect(&t, &board, "gap", &token(Role::Union, &board, "u1")).await;
    assert!(tafel_tests::eventually(T, || u.items("rows")["r1"]["owner"].is_string()).await);
    u.edit(|doc| {
        use yrs::{Map, Transact};
        let rows = doc.get_or_insert_map("rows");
        let mut txn = doc.transact_mut();
        if let Some(yrs::Out::YMap(row)) = rows.get(&txn, "r1") {
            row.insert(
                &mut txn,
                "gewenst",
                yrs::TextPrelim::new("Werkdruk onder controle"),
            );
        }
    });
    assert!(
        tafel_tests::eventually(T, || e.items("rows")["r1"]["gewenst"]
            == "Werkdruk onder controle")
        .await
    );
    let w = connect(&t, &board, "gap", &token(Role::Employee, &board, "w1")).await;
    w.add_item("rows", "r2", json!({}), "onderwerp", "Scholing");
    assert!(
        denied(&w, 0).await.is_some(),
        "employees do not add gap rows"
    );
    let e2 = connect(&t, &board, "gap", &token(Role::Employer, &board, "e1")).await;
    e2.add_item(
        "rows",
        "r3",
        json!({"partijen": "iedereen"}),
        "onderwerp",
        "x",
    );
    assert!(denied(&e2, 0).await.is_some(), "partijen must be a list");
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Anonymity: an employee's name and id never reach an employer — not in the canvas (in any
/// author setting), not in presence, not in the export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn employee_name_never_reaches_the_employer() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let secret_name = "Jantje Geheimnaam";
    let secret_sub = "sub-jantje-42";
    let emp_tok = named_token(Role::Employee, &board, secret_sub, secret_name);
    let employer_tok = named_token(Role::Employer, &board, "boss", "Baas Bert");
    let boss = connect(&t, &board, "canvas", &employer_tok).await;
    let w = connect(&t, &board, "canvas", &emp_tok).await;
    w.set_awareness(
        w.doc.client_id().get(),
        &json!({"user": {"name": secret_name, "color": "#aa3300", "id": secret_sub}, "note": secret_name}).to_string(),
    );
    w.add_card(
        "w1",
        "themas",
        "te veel nachtdiensten",
        json!({"type": "curatief"}),
    );
    assert!(stamped(&boss, "w1").await);
    assert!(
        boss.wait(T, |s| !s.awareness.is_empty()).await,
        "employer saw no presence"
    );
    for mode in ["name", "party", "anonymous"] {
        assert_eq!(
            control(&t, &board, json!({"action": "author-mode", "mode": mode}))
                .await
                .0,
            200
        );
        let fresh = connect(&t, &board, "canvas", &employer_tok).await;
        let card = fresh.items("cards")["w1"].clone();
        match mode {
            "name" => assert_eq!(card["author"], "Medewerker 1"),
            "party" => assert_eq!(card["author"], "Medewerker"),
            _ => assert!(card.get("author").is_none(), "{card}"),
        }
        let bytes = fresh.state_bytes();
        assert!(
            !contains(&bytes, secret_name) && !contains(&bytes, secret_sub),
            "{mode}: identity in the document"
        );
    }
    let presence = format!("{:?}", boss.seen().awareness);
    assert!(
        !presence.contains("Jantje") && !presence.contains(secret_sub),
        "{presence}"
    );
    assert!(presence.contains("Medewerker 1"), "{presence}");
    for doc in ["canvas", "gap", "control"] {
        let c = connect(&t, &board, doc, &employer_tok).await;
        let b = c.state_bytes();
        assert!(
            !contains(&b, secret_name) && !contains(&b, secret_sub),
            "identity in {doc}"
        );
    }
    let (s, export) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/export?format=json"),
        &employer_tok,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let text = export.to_string();
    assert!(
        !text.contains("Jantje") && !text.contains(secret_sub),
        "identity in the export"
    );
    // In name mode the employer's own name does show on their cards.
    control(&t, &board, json!({"action": "author-mode", "mode": "name"})).await;
    boss.add_card("b9", "bouwstenen", "seniorendagen", json!({}));
    let o = connect(&t, &board, "canvas", &token(Role::Observer, &board, "o")).await;
    assert!(tafel_tests::eventually(T, || o.items("cards")["b9"]["author"] == "Baas Bert").await);
}

/// Joining with a chosen name: the answer is a token carrying that name (same sub, role and
/// board); employees are still shown by their pseudonym. A staalkaart example placed on the
/// canvas keeps its `source`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_with_a_name_and_place_a_staalkaart_example() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let (s, invite) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/invites"),
        &token(Role::Facilitator, "*", "f"),
        Some(json!({"role": "employee"})),
    )
    .await;
    assert_eq!(s, 200);
    let invite_token = invite["token"].as_str().unwrap().to_owned();
    let (s, joined) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/join"),
        &invite_token,
        Some(json!({"name": "Fatima"})),
    )
    .await;
    assert_eq!(s, 200, "{joined}");
    assert_eq!(joined["display"], "Medewerker 1");
    let (s, _) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/join"),
        &invite_token,
        Some(json!({"name": ""})),
    )
    .await;
    assert_eq!(s, 400);
    let named = joined["token"].as_str().unwrap().to_owned();
    let (status, me) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}"),
        &named,
        None,
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["you"]["role"], "employee");
    assert_eq!(me["you"]["display"], "Medewerker 1");
    let c = connect(&t, &board, "canvas", &named).await;
    let (status, tpl) = call(
        &t,
        Method::GET,
        "/api/templates/cao-di-organisatie",
        &named,
        None,
    )
    .await;
    assert_eq!(status, 200, "{tpl}");
    let example = &tpl["staalkaart"][0];
    c.add_card("s1", "bouwstenen", example["title"].as_str().unwrap(), json!({"source": example["id"], "type": example["type"], "pijlers": example["pijlers"], "thema": example["thema"]}));
    let o = connect(&t, &board, "canvas", &token(Role::Observer, &board, "o")).await;
    assert!(stamped(&o, "s1").await);
    assert_eq!(o.items("cards")["s1"]["source"], example["id"]);
    assert!(!o.state_bytes().windows(6).any(|w| w == b"Fatima"));
}

/// Reconnecting clients resend what the server already has (their sync step 2 carries every
/// deletion they know): that is not a write. An observer reconnecting, and a participant
/// reconnecting while the board is locked, are not refused; new content from them still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_with_known_content_is_not_a_write() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let f = connect(&t, &board, "canvas", &token(Role::Facilitator, &board, "f")).await;
    f.add_card("a", "bouwstenen", "blijft", json!({}));
    f.add_card("b", "bouwstenen", "gaat weg", json!({}));
    assert!(stamped(&f, "b").await);
    f.remove_item("cards", "b");
    let obs_url = t.ws_url(&board, "canvas", &token(Role::Observer, &board, "o"));
    let o = YClient::connect_synced(&obs_url).await;
    assert!(tafel_tests::eventually(T, || o.items("cards").get("b").is_none()).await);
    // Refusals are counted before they are sent, and a connection's messages are handled in
    // order: when the refusal of the later card arrives, a refusal of the resent state would
    // already be counted.
    let refused_before = refused_total(&t).await;
    let again = YClient::connect_with_doc(&obs_url, o.doc.clone())
        .await
        .unwrap();
    assert!(again.wait(T, |s| s.synced).await);
    let emp_url = t.ws_url(&board, "canvas", &token(Role::Employer, &board, "e"));
    let e = YClient::connect_synced(&emp_url).await;
    control(
        &t,
        &board,
        json!({"action": "lock", "scope": "board", "locked": true}),
    )
    .await;
    let e2 = YClient::connect_with_doc(&emp_url, e.doc.clone())
        .await
        .unwrap();
    assert!(e2.wait(T, |s| s.synced).await);
    // Content the server does not have is still refused, from both; those two are the only
    // refusals since the reconnects.
    again.add_card("o1", "bouwstenen", "stiekem", json!({}));
    assert!(denied(&again, 0).await.is_some());
    e2.add_card("e1", "bouwstenen", "tijdens slot", json!({}));
    assert!(denied(&e2, 0).await.is_some());
    assert_eq!(again.seen().denied.len(), 1, "{:?}", again.seen().denied);
    assert_eq!(e2.seen().denied.len(), 1, "{:?}", e2.seen().denied);
    assert_eq!(
        refused_total(&t).await - refused_before,
        2.0,
        "a resent known state was refused"
    );
}
