//! Hidden means gone: moderation takes a card or row out of every participant's replica. The
//! tests read the raw encoded state of the participants' Y.Docs (not a UI, not a JSON view), and
//! a fresh participant's sync after a restart; the facilitator still sees the held items over
//! HTTP, and `restore` brings them back under the same id, still their creator's.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tafel_protocol::Role;
use tafel_tests::api::{call, control, create_board, token};
use tafel_tests::client::YClient;
use tafel_tests::procs::{Redis, Tafel};

const T: Duration = Duration::from_secs(5);

async fn connect(t: &Tafel, board: &str, doc: &str, tok: &str) -> YClient {
    YClient::connect_synced(&t.ws_url(board, doc, tok)).await
}

/// How often `needle` occurs in `hay`.
fn count(hay: &[u8], needle: &str) -> usize {
    hay.windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

/// A long text no other content contains.
fn marker(tag: &str) -> String {
    let mut s = format!("GEHEIM-{tag}-");
    while s.len() < 1400 {
        s.push_str("de nachtdienst in hal 3 is onveilig, zegt de ploegleider; ");
    }
    s.push_str(&format!("EINDE-{tag}"));
    s
}

async fn hidden_list(t: &Tafel, board: &str, tok: &str) -> (u16, Value) {
    call(
        t,
        Method::GET,
        &format!("/api/boards/{board}/hidden"),
        tok,
        None,
    )
    .await
}

/// A hidden card's text is in no participant's replica — neither one that was connected when it
/// was hidden, nor a fresh one, nor one that syncs after a restart — and is in the facilitator's
/// hidden listing and export only. Restore brings it back under the same id with its owner tag,
/// author and votes, and it is still its creator's to edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_card_leaves_every_replica_and_comes_back_on_restore() {
    hidden_card(Tafel::start_embedded()).await;
}

/// The same on the Redis store (the held copy is in the board record there too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_card_leaves_every_replica_on_redis() {
    let redis = Redis::start();
    hidden_card(Tafel::start_redis(&redis)).await;
}

async fn hidden_card(mut t: Tafel) {
    let board = create_board(&t).await;
    let fac = token(Role::Facilitator, &board, "fac-1");
    let emp_tok = token(Role::Employer, &board, "e1");
    let w1_tok = token(Role::Employee, &board, "w1");
    let secret = marker("kaart");
    let w1 = connect(&t, &board, "canvas", &w1_tok).await;
    w1.add_card("geheim", "themas", &secret, json!({"type": "preventief"}));
    w1.add_card("ander", "themas", "een andere kaart", json!({}));
    let emp = connect(&t, &board, "canvas", &emp_tok).await;
    assert!(
        tafel_tests::eventually(T, || emp.items("cards")["geheim"]["owner"].is_string()).await,
        "the card reaches the employer, stamped"
    );
    assert_eq!(count(&emp.state_bytes(), &secret), 1);
    let before = emp.items("cards")["geheim"].clone();

    // Votes on it first, so there is a total to keep.
    let (s, r) = control(
        &t,
        &board,
        json!({"action": "open-round", "title": "r", "cards": ["geheim", "ander"], "budget": 3}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let round = r["round"].as_str().expect("a round id").to_owned();
    for _ in 0..2 {
        let (s, b) = call(
            &t,
            Method::POST,
            &format!("/api/boards/{board}/rounds/{round}/votes"),
            &emp_tok,
            Some(json!({"card": "geheim"})),
        )
        .await;
        assert_eq!(s, 200, "{b}");
    }
    control(
        &t,
        &board,
        json!({"action": "reveal-round", "round": round}),
    )
    .await;
    assert!(tafel_tests::eventually(T, || emp.items("cards")["geheim"]["votes"] == 2).await);
    let before_votes = emp.items("cards")["geheim"].clone();

    let (s, v) = control(&t, &board, json!({"action": "hide", "card": "geheim"})).await;
    assert_eq!(s, 200, "{v}");
    // The connected employer's replica drops it: not in its map, not in its bytes.
    assert!(
        tafel_tests::eventually(T, || emp.items("cards").get("geheim").is_none()).await,
        "the hidden card left the employer's replica"
    );
    assert!(tafel_tests::eventually(T, || count(&emp.state_bytes(), &secret) == 0).await);
    assert_eq!(count(&emp.state_bytes(), "GEHEIM-kaart"), 0);
    assert!(emp.items("cards").get("ander").is_some());
    // So does its author's own replica, and a fresh one.
    assert!(tafel_tests::eventually(T, || count(&w1.state_bytes(), &secret) == 0).await);
    let fresh = connect(&t, &board, "canvas", &token(Role::Employer, &board, "e2")).await;
    assert_eq!(count(&fresh.state_bytes(), "GEHEIM-kaart"), 0);
    assert!(fresh.items("cards").get("geheim").is_none());
    drop(fresh);

    // Held for the facilitator only.
    let (s, list) = hidden_list(&t, &board, &fac).await;
    assert_eq!(s, 200);
    let held = &list.as_array().expect("a list")[0];
    assert_eq!(held["doc"], "canvas");
    assert_eq!(held["id"], "geheim");
    assert_eq!(held["texts"]["text"], secret);
    assert_eq!(held["fields"]["section"], "themas");
    assert_eq!(held["owner"], before["owner"]);
    assert_eq!(held["votes"], 2.0);
    for who in [&emp_tok, &w1_tok, &token(Role::Observer, &board, "o")] {
        assert_eq!(hidden_list(&t, &board, who).await.0, 403);
        let (s, _) = call(
            &t,
            Method::POST,
            &format!("/api/boards/{board}/control"),
            who,
            Some(json!({"action": "restore", "card": "geheim"})),
        )
        .await;
        assert_eq!(s, 403, "a participant cannot restore");
    }
    let export = |tok: String| {
        let t = &t;
        let board = board.clone();
        async move {
            call(
                t,
                Method::GET,
                &format!("/api/boards/{board}/export"),
                &tok,
                None,
            )
            .await
            .1
        }
    };
    assert!(!export(emp_tok.clone())
        .await
        .to_string()
        .contains("GEHEIM-kaart"));
    let fac_export = export(fac.clone()).await;
    assert_eq!(fac_export["hidden"][0]["texts"]["text"], secret);

    // After a hard restart the replayed document still has none of it, and the held copy is
    // still there.
    drop(emp);
    drop(w1);
    t.restart();
    let emp = connect(&t, &board, "canvas", &emp_tok).await;
    assert_eq!(
        count(&emp.state_bytes(), "GEHEIM-kaart"),
        0,
        "a fresh employer's sync after a restart holds the hidden text"
    );
    assert!(emp.items("cards").get("geheim").is_none());
    assert_eq!(hidden_list(&t, &board, &fac).await.1[0]["id"], "geheim");

    // Restore: same id, owner, author and votes, in the employer's replica.
    let (s, v) = control(&t, &board, json!({"action": "restore", "card": "geheim"})).await;
    assert_eq!(s, 200, "{v}");
    assert!(
        tafel_tests::eventually(T, || emp.items("cards")["geheim"]["text"] == secret).await,
        "restored into the employer's replica"
    );
    let back = emp.items("cards")["geheim"].clone();
    for field in ["owner", "author", "votes", "section", "type", "createdAt"] {
        assert_eq!(
            back[field], before_votes[field],
            "{field} after restore: {back}"
        );
    }
    assert!(back.get("hidden").is_none() && back.get("mergedInto").is_none());
    assert_eq!(count(&emp.state_bytes(), "GEHEIM-kaart"), 1);
    assert_eq!(hidden_list(&t, &board, &fac).await.1, json!([]));
    assert_eq!(
        control(&t, &board, json!({"action": "restore", "card": "geheim"}))
            .await
            .0,
        404,
        "nothing left to restore"
    );

    // Still its creator's: the author may edit it (an `edit_own_only` section), another
    // employee may not.
    let w1 = connect(&t, &board, "canvas", &w1_tok).await;
    w1.append_item_text("cards", "geheim", "text", " (aangevuld)");
    assert!(
        tafel_tests::eventually(T, || emp.items("cards")["geheim"]["text"]
            .as_str()
            .is_some_and(|s| s.ends_with("(aangevuld)")))
        .await,
        "the creator edits the restored card: {:?}",
        w1.seen().denied
    );
    let w2 = connect(&t, &board, "canvas", &token(Role::Employee, &board, "w2")).await;
    w2.append_item_text("cards", "geheim", "text", " van een ander");
    assert!(w2.wait(T, |s| !s.denied.is_empty()).await);
    assert!(w2.seen().denied[0].starts_with("not-your-item"));

    let (_, log) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/audit"),
        &fac,
        None,
    )
    .await;
    let actions: Vec<&str> = log
        .as_array()
        .expect("the audit log")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"hide") && actions.contains(&"restore"));
}

/// Merge: the source's text goes into the target, and the source leaves every replica (its own
/// fields with it), held and restorable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_moves_the_text_and_removes_the_source() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let fac = token(Role::Facilitator, &board, "fac-1");
    let u = connect(&t, &board, "canvas", &token(Role::Union, &board, "u1")).await;
    let text = marker("bron");
    let source_tag = "bron-uit-de-staalkaart-q7v";
    u.add_card("bron", "bouwstenen", &text, json!({"source": source_tag}));
    u.add_card("doel", "bouwstenen", "het doel", json!({}));
    let emp = connect(&t, &board, "canvas", &token(Role::Employer, &board, "e1")).await;
    assert!(tafel_tests::eventually(T, || emp.items("cards")["bron"]["owner"].is_string()).await);
    assert_eq!(count(&emp.state_bytes(), source_tag), 1);

    assert_eq!(
        control(
            &t,
            &board,
            json!({"action": "merge", "card": "bron", "into": "bron"})
        )
        .await
        .0,
        400
    );
    assert_eq!(
        control(
            &t,
            &board,
            json!({"action": "merge", "card": "bron", "into": "nope"})
        )
        .await
        .0,
        404
    );
    let (s, v) = control(
        &t,
        &board,
        json!({"action": "merge", "card": "bron", "into": "doel"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let want = format!("het doel\n{text}");
    assert!(tafel_tests::eventually(T, || emp.items("cards")["doel"]["text"] == want).await);
    assert!(emp.items("cards").get("bron").is_none());
    let bytes = emp.state_bytes();
    assert_eq!(
        count(&bytes, "GEHEIM-bron"),
        1,
        "the source's text once (in the target), not twice"
    );
    assert_eq!(
        count(&bytes, source_tag),
        0,
        "the source's own fields left the replica"
    );
    let fresh = connect(&t, &board, "canvas", &token(Role::Employee, &board, "w9")).await;
    assert_eq!(count(&fresh.state_bytes(), source_tag), 0);
    assert_eq!(count(&fresh.state_bytes(), "GEHEIM-bron"), 1);

    let list = hidden_list(&t, &board, &fac).await.1;
    assert_eq!(list[0]["id"], "bron");
    assert_eq!(list[0]["mergedInto"], "doel");
    assert_eq!(list[0]["texts"]["text"], text);

    let (s, v) = control(&t, &board, json!({"action": "restore", "card": "bron"})).await;
    assert_eq!(s, 200, "{v}");
    assert!(tafel_tests::eventually(T, || emp.items("cards")["bron"]["text"] == text).await);
    let back = emp.items("cards")["bron"].clone();
    assert_eq!(back["source"], source_tag);
    assert!(back["owner"].is_string() && back.get("mergedInto").is_none());
    assert_eq!(
        emp.items("cards")["doel"]["text"],
        want,
        "the merged text stays in the target"
    );
}

/// Gap rows likewise: hide takes a row out of every replica, held for the facilitator, and
/// restore brings it back with its texts and owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_gap_row_leaves_every_replica_and_comes_back() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let fac = token(Role::Facilitator, &board, "fac-1");
    let u = connect(&t, &board, "gap", &token(Role::Union, &board, "u1")).await;
    let secret = marker("rij");
    u.add_item(
        "rows",
        "rij1",
        json!({"partijen": ["OR"], "priority": 1}),
        "huidig",
        &secret,
    );
    let emp = connect(&t, &board, "gap", &token(Role::Employer, &board, "e1")).await;
    assert!(tafel_tests::eventually(T, || emp.items("rows")["rij1"]["owner"].is_string()).await);
    let before = emp.items("rows")["rij1"].clone();
    assert_eq!(count(&emp.state_bytes(), "GEHEIM-rij"), 1);

    let (s, v) = control(&t, &board, json!({"action": "hide", "row": "rij1"})).await;
    assert_eq!(s, 200, "{v}");
    assert!(tafel_tests::eventually(T, || emp.items("rows").get("rij1").is_none()).await);
    assert!(tafel_tests::eventually(T, || count(&emp.state_bytes(), "GEHEIM-rij") == 0).await);
    let fresh = connect(&t, &board, "gap", &token(Role::Employee, &board, "w1")).await;
    assert_eq!(count(&fresh.state_bytes(), "GEHEIM-rij"), 0);
    assert_eq!(
        hidden_list(&t, &board, &token(Role::Union, &board, "u1"))
            .await
            .0,
        403
    );
    let list = hidden_list(&t, &board, &fac).await.1;
    assert_eq!(list[0]["doc"], "gap");
    assert_eq!(list[0]["id"], "rij1");
    assert_eq!(list[0]["texts"]["huidig"], secret);
    assert_eq!(
        control(&t, &board, json!({"action": "hide", "card": "rij1"}))
            .await
            .0,
        404,
        "a row is not a card"
    );

    let (s, v) = control(&t, &board, json!({"action": "restore", "row": "rij1"})).await;
    assert_eq!(s, 200, "{v}");
    assert!(tafel_tests::eventually(T, || emp.items("rows")["rij1"]["huidig"] == secret).await);
    let back = emp.items("rows")["rij1"].clone();
    for field in ["owner", "author", "partijen", "priority", "createdAt"] {
        assert_eq!(back[field], before[field], "{field} after restore: {back}");
    }
}

/// Edits that reach a hidden card are lost, as the docs say: an offline participant's edit to a
/// card hidden meanwhile is accepted on reconnect (no refusal loop), lands in deleted content,
/// reaches no replica, and is not in what `restore` brings back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_that_reaches_a_hidden_card_is_lost() {
    use yrs::updates::decoder::Decode;
    use yrs::{GetString, Map, Text, Transact, Update};
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let w1_tok = token(Role::Employee, &board, "w1");
    let w1 = connect(&t, &board, "canvas", &w1_tok).await;
    w1.add_card("weg", "themas", "voor", json!({}));
    assert!(tafel_tests::eventually(T, || w1.items("cards")["weg"]["owner"].is_string()).await);
    // The same person's offline copy, edited while the card is hidden.
    let offline = yrs::Doc::new();
    offline
        .transact_mut()
        .apply_update(Update::decode_v1(&w1.state_bytes()).unwrap())
        .unwrap();
    drop(w1);
    {
        let cards = offline.get_or_insert_map("cards");
        let mut txn = offline.transact_mut();
        let Some(yrs::Out::YMap(card)) = cards.get(&txn, "weg") else {
            panic!("no card in the offline copy")
        };
        let Some(yrs::Out::YText(text)) = card.get(&txn, "text") else {
            panic!("no text")
        };
        let at = text.len(&txn);
        text.insert(&mut txn, at, " OFFLINE-BIJGESCHREVEN");
        assert!(text.get_string(&txn).ends_with("BIJGESCHREVEN"));
    }
    assert_eq!(
        control(&t, &board, json!({"action": "hide", "card": "weg"}))
            .await
            .0,
        200
    );
    let offline_client = offline.client_id();
    let back_online = YClient::connect_with_doc(&t.ws_url(&board, "canvas", &w1_tok), offline)
        .await
        .unwrap();
    assert!(back_online.wait(T, |s| s.synced).await);
    let emp = connect(&t, &board, "canvas", &token(Role::Employer, &board, "e1")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        back_online.seen().denied.is_empty(),
        "accepted: {:?}",
        back_online.seen().denied
    );
    // The server has the edit (its clock for that client moved) but no replica shows its text.
    let server_side = yrs::Doc::new();
    server_side
        .transact_mut()
        .apply_update(Update::decode_v1(&emp.state_bytes()).unwrap())
        .unwrap();
    assert!(
        yrs::ReadTxn::state_vector(&server_side.transact()).get(&offline_client) > 0,
        "the offline edit reached the server"
    );
    assert_eq!(count(&emp.state_bytes(), "OFFLINE-BIJGESCHREVEN"), 0);
    let fac = token(Role::Facilitator, &board, "fac-1");
    assert_eq!(
        hidden_list(&t, &board, &fac).await.1[0]["texts"]["text"],
        "voor"
    );
    assert_eq!(
        control(&t, &board, json!({"action": "restore", "card": "weg"}))
            .await
            .0,
        200
    );
    assert!(tafel_tests::eventually(T, || emp.items("cards")["weg"]["text"] == "voor").await);
}
