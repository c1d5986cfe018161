//! Privacy end to end: erasure (a deleted board's text is in no byte of the embedded store's
//! file, and in no file of a Redis with an AOF), owner tags unlinkable across boards, and the
//! per-connection rate limit closing with 4529, and presence that leads neither to cards nor to a
//! name (aliases per connection, palette colours, `editing` only naming a card that exists).

use std::time::Duration;

use serde_json::json;
use tafel_protocol::Role;
use tafel_tests::api::{create_board, facilitator, http, token};
use tafel_tests::client::YClient;
use tafel_tests::procs::{Redis, Tafel};

const T: Duration = Duration::from_secs(10);

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every byte of every file under `dir`.
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.extend(b);
            }
        }
    }
    out
}

async fn delete(t: &Tafel, board: &str) -> u16 {
    http()
        .delete(format!("{}/api/boards/{board}", t.http()))
        .bearer_auth(facilitator())
        .send()
        .await
        .expect("delete")
        .status()
        .as_u16()
}

/// Writes a card with `marker` on a board and waits until a second reader has it (so it is
/// stored).
async fn card_with(t: &Tafel, board: &str, marker: &str) {
    let w = YClient::connect_synced(&t.ws_url(board, "canvas", &token(Role::Employer, board, "w")))
        .await;
    w.add_card("geheim", "bouwstenen", marker, json!({}));
    let r =
        YClient::connect_synced(&t.ws_url(board, "canvas", &token(Role::Union, board, "u"))).await;
    assert!(
        r.wait(T, |_| r.items("cards").to_string().contains(marker))
            .await,
        "the card did not arrive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_board_leaves_no_readable_byte_in_the_embedded_store() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let keep = create_board(&t).await;
    let marker = "VERTROUWELIJK-ontslagronde-afdeling-zeven-0f3c9";
    let kept = "BLIJFT-staan-op-het-andere-bord-77ad1";
    card_with(&t, &board, marker).await;
    card_with(&t, &keep, kept).await;
    // Positive control: the text is in the file before the delete.
    let file = t.data_dir().join("tafel.redb");
    assert!(
        contains(
            &std::fs::read(&file).expect("store file"),
            marker.as_bytes()
        ),
        "the marker should be in the store file before the delete"
    );
    assert_eq!(delete(&t, &board).await, 204);
    let bytes = std::fs::read(&file).expect("store file");
    assert!(
        !contains(&bytes, marker.as_bytes()),
        "the deleted board's text is still readable in the redb file"
    );
    assert!(
        contains(&bytes, kept.as_bytes()),
        "the other board must survive the compaction"
    );
    // And the other board still serves.
    let r =
        YClient::connect_synced(&t.ws_url(&keep, "canvas", &token(Role::Union, &keep, "u2"))).await;
    assert!(r.items("cards").to_string().contains(kept));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_board_leaves_no_key_and_no_aof_byte_in_redis() {
    let redis = Redis::start();
    let t = Tafel::start_redis(&redis);
    let board = create_board(&t).await;
    let marker = "VERTROUWELIJK-in-redis-reorganisatie-4b21e";
    card_with(&t, &board, marker).await;
    assert!(
        contains(&all_bytes(redis.dir()), marker.as_bytes()),
        "the marker should be in the AOF before the delete"
    );
    assert_eq!(delete(&t, &board).await, 204);
    // The rewrite runs in the background; the old AOF files go once it is done.
    let gone = tafel_tests::eventually(Duration::from_secs(15), || {
        !contains(&all_bytes(redis.dir()), marker.as_bytes())
    })
    .await;
    assert!(gone, "the deleted board's text is still in Redis's files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_tags_do_not_link_one_person_across_boards() {
    let t = Tafel::start_embedded();
    let mut tags = Vec::new();
    for _ in 0..2 {
        let board = create_board(&t).await;
        let w = YClient::connect_synced(&t.ws_url(
            &board,
            "canvas",
            &token(Role::Employee, &board, "dezelfde-persoon"),
        ))
        .await;
        w.add_card("zelfde-id", "themas", "x", json!({}));
        let f = YClient::connect_synced(&t.ws_url(
            &board,
            "canvas",
            &token(Role::Facilitator, &board, "f"),
        ))
        .await;
        assert!(
            f.wait(T, |_| f.items("cards")["zelfde-id"]["owner"].is_string())
                .await,
            "the card was not stamped"
        );
        tags.push(f.items("cards")["zelfde-id"]["owner"].clone());
        // The tag still works for its owner: the employee edits their own card in `themas`.
        w.append_item_text("cards", "zelfde-id", "text", " eigen");
        assert!(
            f.wait(T, |_| f.items("cards")["zelfde-id"]["text"] == "x eigen")
                .await,
            "the owner could not edit their own card"
        );
    }
    assert_ne!(
        tags[0], tags[1],
        "same sub and item id on two boards: same tag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_connection_is_closed_with_4529() {
    let t = Tafel::start_embedded_with(&[("TAFEL_MAX_MESSAGES_PER_SEC", "20")]);
    let board = create_board(&t).await;
    let url = t.ws_url(
        &board,
        "party-employer",
        &token(Role::Employer, &board, "w"),
    );
    // Positive control: a steady writer under the limit stays connected.
    let calm = YClient::connect_synced(&url).await;
    for i in 0..10 {
        calm.push_text("t", &format!("{i} "));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(calm.closed(), None, "a writer under the limit was closed");
    let flood = YClient::connect_synced(&url).await;
    for i in 0..200 {
        flood.push_text("t", &format!("{i}"));
    }
    assert!(
        flood.wait(T, |s| s.closed.is_some()).await,
        "the flood was not cut off"
    );
    let (code, reason) = flood.closed().expect("closed");
    assert_eq!(code, 4529, "{reason}");
    assert!(reason.contains("rate limit"), "{reason}");
    assert_eq!(calm.closed(), None);
}

/// The employee's presence entries as the employer sees them: (awareness key, state).
fn employee_entries(c: &YClient) -> Vec<(u64, serde_json::Value)> {
    c.seen()
        .awareness
        .iter()
        .filter_map(|(k, s)| Some((*k, serde_json::from_str::<serde_json::Value>(s).ok()?)))
        .filter(|(_, v)| v["user"]["role"] == "employee")
        .collect()
}

/// An employer cannot map an employee's card to their presence entry by the Yjs client id,
/// not within one connection and not across two; and presence carries nothing free: a name
/// put in `color` or `editing` never reaches the employer, while a palette colour and the id
/// of a card that exists do (the positive control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_employees_cards_do_not_lead_to_their_presence() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let url = |role, sub: &str| t.ws_url(&board, "canvas", &token(role, &board, sub));
    let boss = YClient::connect_synced(&url(Role::Employer, "baas")).await;
    let emp = YClient::connect_synced(&url(Role::Employee, "w1")).await;
    let x = emp.doc.client_id().get();
    emp.add_card(
        "kaart-w",
        "bouwstenen",
        "Meer regie over roosters",
        json!({}),
    );
    assert!(
        tafel_tests::eventually(T, || boss.items("cards").get("kaart-w").is_some()).await,
        "the employee's card never reached the employer"
    );
    let free = "Jan Jansen uit Delft";
    let leak = json!({
        "user": {"name": free, "color": free},
        "editing": free,
        "hand": true,
    });
    emp.set_awareness(x, &leak.to_string());
    assert!(
        tafel_tests::eventually(T, || !employee_entries(&boss).is_empty()).await,
        "the employee's presence never reached the employer"
    );
    // Every client id that wrote a struct in the employer's replica of the canvas.
    let writers: Vec<u64> = {
        use yrs::{ReadTxn, Transact};
        boss.doc
            .transact()
            .state_vector()
            .iter()
            .map(|(c, _)| c.get())
            .collect::<Vec<_>>()
    };
    let first = employee_entries(&boss);
    assert_eq!(first.len(), 1, "one entry for one employee: {first:?}");
    let (alias, state) = first[0].clone();
    assert_ne!(
        alias, x,
        "presence is keyed by the employee's own client id"
    );
    assert!(
        !writers.contains(&alias),
        "the presence key {alias} is a client id that wrote cards: {writers:?}"
    );
    assert_eq!(state["user"]["name"], "Medewerker 1");
    assert!(
        state["user"]["color"].is_null()
            || tafel_protocol::anonymity::PALETTE
                .contains(&state["user"]["color"].as_str().unwrap_or("")),
        "a colour outside the palette: {state}"
    );
    assert!(
        state.get("editing").is_none_or(|e| e.is_null()),
        "free `editing`: {state}"
    );
    let everything: String = boss.seen().awareness.values().cloned().collect();
    assert!(
        !everything.contains("Jan Jansen"),
        "the free text reached the employer: {everything}"
    );

    // Positive control: a palette colour and an existing card's id do arrive.
    let fine = json!({"user": {"color": "#26734d"}, "editing": "kaart-w"});
    emp.set_awareness(x, &fine.to_string());
    assert!(
        tafel_tests::eventually(T, || employee_entries(&boss)
            .iter()
            .any(|(_, s)| s["editing"] == "kaart-w" && s["user"]["color"] == "#26734d"))
        .await,
        "allowed presence did not arrive: {:?}",
        employee_entries(&boss)
    );

    // A second session of the same person with the same Y.Doc shows under another key.
    emp.close();
    assert!(
        tafel_tests::eventually(T, || employee_entries(&boss).is_empty()).await,
        "the first session's presence outlived it"
    );
    let again = YClient::connect_with_doc(&url(Role::Employee, "w1"), emp.doc.clone())
        .await
        .unwrap();
    assert!(again.wait(T, |s| s.synced).await);
    for _ in 0..2 {
        again.set_awareness(x, &fine.to_string());
    }
    assert!(
        tafel_tests::eventually(T, || !employee_entries(&boss).is_empty()).await,
        "the second session's presence never arrived"
    );
    let second = employee_entries(&boss);
    assert!(
        second.iter().all(|(k, _)| *k != alias && *k != x && !writers.contains(k)),
        "the second session's key links it to the first or to the cards: {second:?} (first {alias})"
    );
}
