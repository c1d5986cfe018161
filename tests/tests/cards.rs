//! A participant's own card commands against a real server: moving a card between sections
//! (`POST /api/boards/{id}/cards/{card}/move`) is decided on the template's rules for both
//! sections, the locks and who made the card, and every refusal is a JSON error that names its
//! code; an allowed move reaches every connected replica with the card's id, text, labels and
//! server fields intact, and its author can still edit it. Taking back one's own deletion
//! (`POST .../cards/{card}/restore`, `.../rows/{row}/restore`) writes the card or gap row back as
//! it was, for its author only.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tafel_protocol::Role;
use tafel_tests::api::{call, control, create_board, token};
use tafel_tests::client::YClient;
use tafel_tests::procs::Tafel;

const T: Duration = Duration::from_secs(5);

async fn connect(t: &Tafel, board: &str, doc: &str, tok: &str) -> YClient {
    YClient::connect_synced(&t.ws_url(board, doc, tok)).await
}

async fn move_card(t: &Tafel, board: &str, tok: &str, card: &str, to: &str) -> (u16, Value) {
    call(
        t,
        Method::POST,
        &format!("/api/boards/{board}/cards/{card}/move"),
        tok,
        Some(json!({ "to": to })),
    )
    .await
}

async fn restore(t: &Tafel, board: &str, tok: &str, card: &str) -> (u16, Value) {
    call(
        t,
        Method::POST,
        &format!("/api/boards/{board}/cards/{card}/restore"),
        tok,
        None,
    )
    .await
}

async fn restore_row(t: &Tafel, board: &str, tok: &str, row: &str) -> (u16, Value) {
    call(
        t,
        Method::POST,
        &format!("/api/boards/{board}/rows/{row}/restore"),
        tok,
        None,
    )
    .await
}

/// Asserts a refusal: the status, the contract's `error` code, and the rule's code at the start
/// of `message` (the same `<code>: <reason>` a WebSocket refusal carries).
fn assert_refused(answer: &(u16, Value), status: u16, error: &str, rule: &str) {
    let (s, body) = answer;
    assert_eq!(*s, status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(rule),
        "the message names {rule:?}: {body}"
    );
}

/// Waits until the card, stamped by the server, is in the client's replica.
async fn stamped(c: &YClient, card: &str) -> Value {
    assert!(
        tafel_tests::eventually(T, || c.items("cards")[card]["owner"].is_string()).await,
        "card {card} arrives stamped"
    );
    c.items("cards")[card].clone()
}

/// Every way to move a card one may not: into a section the role may not add to, a card of
/// someone else where only authors may edit, out of or into a locked section, under a board
/// lock, as an observer, an unknown card and an unknown section. Each is refused with a JSON
/// error naming the rule, and the card stays where it was, for everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_the_rules_forbid_are_refused_with_a_clear_error() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let w1_tok = token(Role::Employee, &board, "w1");
    let w2_tok = token(Role::Employee, &board, "w2");
    let emp_tok = token(Role::Employer, &board, "e1");
    let obs_tok = token(Role::Observer, &board, "o1");
    let w1 = connect(&t, &board, "canvas", &w1_tok).await;
    w1.add_card("mijn", "themas", "Nachtdiensten na je 55e", json!({}));
    let emp = connect(&t, &board, "canvas", &emp_tok).await;
    emp.add_card("werkgever", "analyse", "Verzuimcijfers", json!({}));
    stamped(&w1, "mijn").await;
    stamped(&w1, "werkgever").await;

    // Employees may not add to `analyse`.
    let a = move_card(&t, &board, &w1_tok, "mijn", "analyse").await;
    assert_refused(&a, 403, "permission-denied", "role-not-allowed");
    // Nor edit (so move) a card in `analyse`.
    let a = move_card(&t, &board, &w1_tok, "werkgever", "bouwstenen").await;
    assert_refused(&a, 403, "permission-denied", "role-not-allowed");
    // In `themas` only the author edits: another employee may not move it.
    let a = move_card(&t, &board, &w2_tok, "mijn", "bouwstenen").await;
    assert_refused(&a, 403, "permission-denied", "not-your-item");
    // A locked target, then a locked source.
    let (s, r) = control(
        &t,
        &board,
        json!({"action": "lock", "scope": "section", "target": "bouwstenen", "locked": true}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let a = move_card(&t, &board, &w1_tok, "mijn", "bouwstenen").await;
    assert_refused(&a, 403, "permission-denied", "section-locked");
    control(
        &t,
        &board,
        json!({"action": "lock", "scope": "section", "target": "bouwstenen", "locked": false}),
    )
    .await;
    control(
        &t,
        &board,
        json!({"action": "lock", "scope": "section", "target": "themas", "locked": true}),
    )
    .await;
    let a = move_card(&t, &board, &w1_tok, "mijn", "bouwstenen").await;
    assert_refused(&a, 403, "permission-denied", "section-locked");
    control(
        &t,
        &board,
        json!({"action": "lock", "scope": "section", "target": "themas", "locked": false}),
    )
    .await;
    // The whole board locked.
    control(
        &t,
        &board,
        json!({"action": "lock", "scope": "board", "locked": true}),
    )
    .await;
    let a = move_card(&t, &board, &w1_tok, "mijn", "bouwstenen").await;
    assert_refused(&a, 403, "permission-denied", "board-locked");
    control(
        &t,
        &board,
        json!({"action": "lock", "scope": "board", "locked": false}),
    )
    .await;
    // Observers write nothing.
    let a = move_card(&t, &board, &obs_tok, "mijn", "bouwstenen").await;
    assert_refused(&a, 403, "permission-denied", "read-only");
    // Unknown card, unknown section, no body.
    let a = move_card(&t, &board, &w1_tok, "nergens", "bouwstenen").await;
    assert_refused(&a, 404, "not-found", "no such card");
    let a = move_card(&t, &board, &w1_tok, "mijn", "kelder").await;
    assert_refused(&a, 400, "bad-request", "invalid-value");
    let (s, body) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/cards/mijn/move"),
        &w1_tok,
        Some(json!({"naar": "bouwstenen"})),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"], "bad-request");

    // Nothing moved, on any replica.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for c in [&w1, &emp] {
        let cards = c.items("cards");
        assert_eq!(cards["mijn"]["section"], "themas");
        assert_eq!(cards["werkgever"]["section"], "analyse");
    }
}

/// The positive control: the author moves their card from `themas` to `bouwstenen`; every
/// connected replica (a colleague's, the facilitator's) sees it there under the same id with
/// the same text, labels, `owner`, `author`, `createdAt` and votes; the author's next edit of
/// the text is accepted and reaches the others. The facilitator moves anyone's card anywhere,
/// also into a locked section.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_move_reaches_everyone_and_the_card_stays_its_authors() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let w1_tok = token(Role::Employee, &board, "w1");
    let fac_tok = token(Role::Facilitator, &board, "fac-1");
    let w1 = connect(&t, &board, "canvas", &w1_tok).await;
    w1.add_card(
        "mijn",
        "themas",
        "Nachtdiensten na je 55e",
        json!({"type": "preventief", "pijlers": ["gezondheid"]}),
    );
    let colleague = connect(&t, &board, "canvas", &token(Role::Employee, &board, "w2")).await;
    let fac = connect(&t, &board, "canvas", &fac_tok).await;
    let before = stamped(&colleague, "mijn").await;
    stamped(&fac, "mijn").await;

    // Votes first, so there is a total to keep.
    let (s, r) = control(
        &t,
        &board,
        json!({"action": "open-round", "title": "r", "cards": ["mijn"], "budget": 2}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let round = r["round"].as_str().expect("a round id").to_owned();
    let (s, b) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/rounds/{round}/votes"),
        &token(Role::Employee, &board, "w2"),
        Some(json!({"card": "mijn"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    control(
        &t,
        &board,
        json!({"action": "reveal-round", "round": round}),
    )
    .await;
    assert!(tafel_tests::eventually(T, || colleague.items("cards")["mijn"]["votes"] == 1).await);
    assert_eq!(before["votes"], Value::Null, "no votes before the reveal");
    let before = colleague.items("cards")["mijn"].clone();

    let (s, body) = move_card(&t, &board, &w1_tok, "mijn", "bouwstenen").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["section"], "bouwstenen");
    assert_eq!(body["from"], "themas");
    assert_eq!(body["moved"], true);
    for c in [&w1, &colleague, &fac] {
        assert!(
            tafel_tests::eventually(T, || c.items("cards")["mijn"]["section"] == "bouwstenen")
                .await,
            "the move reaches every replica"
        );
    }
    let mut want = before.clone();
    want["section"] = json!("bouwstenen");
    assert_eq!(
        colleague.items("cards")["mijn"],
        want,
        "only the section changed: text, labels, owner, author, createdAt and votes are kept"
    );

    // Still the author's: their edit is accepted and reaches the colleague.
    let refusals = w1.seen().denied.len();
    w1.append_item_text("cards", "mijn", "text", " (ook in de ploegendienst)");
    assert!(
        colleague
            .wait(T, |_| colleague.items("cards")["mijn"]["text"]
                == "Nachtdiensten na je 55e (ook in de ploegendienst)")
            .await,
        "the author's edit after the move reaches the colleague"
    );
    assert_eq!(w1.seen().denied.len(), refusals, "no refusal");
    // In `bouwstenen` anyone may edit; back in `themas` only its author: the author may move it
    // back, the colleague may not.
    let (s, body) = move_card(&t, &board, &w1_tok, "mijn", "themas").await;
    assert_eq!(s, 200, "{body}");
    let a = move_card(
        &t,
        &board,
        &token(Role::Employee, &board, "w2"),
        "mijn",
        "bouwstenen",
    )
    .await;
    assert_refused(&a, 403, "permission-denied", "not-your-item");
    // The same section again changes nothing.
    let (s, body) = move_card(&t, &board, &w1_tok, "mijn", "themas").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["moved"], false);

    // The facilitator: any card, into a section only the facilitator adds to, even locked.
    control(
        &t,
        &board,
        json!({"action": "lock", "scope": "section", "target": "doel", "locked": true}),
    )
    .await;
    let (s, body) = move_card(&t, &board, &fac_tok, "mijn", "doel").await;
    assert_eq!(s, 200, "{body}");
    assert!(
        tafel_tests::eventually(T, || colleague.items("cards")["mijn"]["section"] == "doel").await
    );
}

/// Undo of a deletion: the author deletes their card with a plain Yjs deletion; the server
/// kept it, and `restore` writes it back under the same id, equal to what was deleted (text,
/// labels, owner, author, createdAt), on every replica; the author can edit it again. Another
/// participant may not restore it, a second restore finds nothing, and an id nobody deleted is
/// 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_author_restores_their_deleted_card_as_it_was() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let w1_tok = token(Role::Employee, &board, "w1");
    let w2_tok = token(Role::Employee, &board, "w2");
    let w1 = connect(&t, &board, "canvas", &w1_tok).await;
    w1.add_card(
        "weg",
        "bouwstenen",
        "Een leerbudget voor iedereen",
        json!({"type": "versterkend", "pijlers": ["bekwaamheid"]}),
    );
    let w2 = connect(&t, &board, "canvas", &w2_tok).await;
    let before = stamped(&w2, "weg").await;
    assert!(before["author"].is_string() && before["createdAt"].is_number());

    w1.remove_item("cards", "weg");
    assert!(
        tafel_tests::eventually(T, || w2.items("cards").get("weg").is_none()).await,
        "the deletion reaches the colleague"
    );
    // Not the colleague's to restore (bouwstenen lets anyone edit, but restoring is the
    // author's).
    let a = restore(&t, &board, &w2_tok, "weg").await;
    assert_refused(&a, 403, "permission-denied", "not-your-item");
    let a = restore(&t, &board, &w1_tok, "nooit-bestaan").await;
    assert_refused(&a, 404, "not-found", "no deleted card");
    // The author restores it: the same card, for everyone. (The trash is written just after
    // the deletion is accepted; wait for it.)
    let mut answer = (0, Value::Null);
    for _ in 0..50 {
        answer = restore(&t, &board, &w1_tok, "weg").await;
        if answer.0 != 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer.0, 200, "{}", answer.1);
    for c in [&w1, &w2] {
        assert!(
            tafel_tests::eventually(T, || c.items("cards").get("weg").is_some()).await,
            "the restored card reaches every replica"
        );
    }
    assert_eq!(
        w2.items("cards")["weg"],
        before,
        "the restored card equals the deleted one"
    );
    // Once only.
    let a = restore(&t, &board, &w1_tok, "weg").await;
    assert_refused(&a, 404, "not-found", "no deleted card");
    // Still the author's: their edit is accepted; and they may delete it again.
    let refusals = w1.seen().denied.len();
    w1.append_item_text("cards", "weg", "text", " vanaf dag één");
    assert!(
        w2.wait(T, |_| w2.items("cards")["weg"]["text"]
            == "Een leerbudget voor iedereen vanaf dag één")
            .await
    );
    assert_eq!(w1.seen().denied.len(), refusals, "no refusal");
    // A card the colleague deletes is not the author's deletion to undo: restoring it is the
    // colleague's only if it was theirs. (In bouwstenen only authors remove.)
    let refusals = w2.seen().denied.len();
    w2.remove_item("cards", "weg");
    w2.assert_refused(refusals, "not-your-item", T).await;
}

/// The same for a gap row: the employer who added it deletes it; the server kept it, and only
/// they restore it (a fellow employer, who may edit gap rows, gets 403), under the same id and
/// equal to what was deleted (texts, partijen, owner, author, createdAt), on every replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_deleter_restores_their_deleted_gap_row_as_it_was() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let e1_tok = token(Role::Employer, &board, "e1");
    let e2_tok = token(Role::Employer, &board, "e2");
    let e1 = connect(&t, &board, "gap", &e1_tok).await;
    e1.add_item(
        "rows",
        "rij",
        json!({"partijen": ["OR", "HR"]}),
        "onderwerp",
        "Ploegendienst na je 60e",
    );
    let e2 = connect(&t, &board, "gap", &e2_tok).await;
    assert!(
        tafel_tests::eventually(T, || e2.items("rows")["rij"]["owner"].is_string()).await,
        "the row arrives stamped"
    );
    let before = e2.items("rows")["rij"].clone();
    assert!(before["author"].is_string() && before["createdAt"].is_number());
    assert_eq!(before["onderwerp"], "Ploegendienst na je 60e");

    e1.remove_item("rows", "rij");
    assert!(
        tafel_tests::eventually(T, || e2.items("rows").get("rij").is_none()).await,
        "the deletion reaches the colleague"
    );
    // The trash is written just after the deletion is accepted: wait until the deleter's
    // restore finds it — but first, once it is there, the colleague is refused.
    let mut found = false;
    for _ in 0..50 {
        let a = restore_row(&t, &board, &e2_tok, "rij").await;
        if a.0 != 404 {
            assert_refused(&a, 403, "permission-denied", "not-your-item");
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(found, "the server kept the deleted row");
    let a = restore_row(&t, &board, &e1_tok, "nooit-bestaan").await;
    assert_refused(&a, 404, "not-found", "no deleted row");
    // A card's restore does not find a row of the same id.
    let a = restore(&t, &board, &e1_tok, "rij").await;
    assert_refused(&a, 404, "not-found", "no deleted card");
    assert!(e2.items("rows").get("rij").is_none(), "still deleted");

    let answer = restore_row(&t, &board, &e1_tok, "rij").await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    for c in [&e1, &e2] {
        assert!(
            tafel_tests::eventually(T, || c.items("rows").get("rij").is_some()).await,
            "the restored row reaches every replica"
        );
    }
    assert_eq!(
        e2.items("rows")["rij"],
        before,
        "the restored row equals the deleted one"
    );
    // Once only.
    let a = restore_row(&t, &board, &e1_tok, "rij").await;
    assert_refused(&a, 404, "not-found", "no deleted row");
    // Editable again: the deleter's edit reaches the colleague, unrefused.
    let refusals = e1.seen().denied.len();
    e1.append_item_text("rows", "rij", "onderwerp", " in de zorg");
    assert!(
        e2.wait(T, |_| e2.items("rows")["rij"]["onderwerp"]
            == "Ploegendienst na je 60e in de zorg")
            .await
    );
    assert_eq!(e1.seen().denied.len(), refusals, "no refusal");
}
