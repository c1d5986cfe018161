//! Privacy end to end: erasure (a deleted board's text is in no byte of the embedded store's
//! file, and in no file of a Redis with an AOF), owner tags unlinkable across boards, and the
//! per-connection rate limit closing with 4529.

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
