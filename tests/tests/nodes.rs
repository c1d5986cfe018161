//! Board state shared by many nodes on one Redis (issue 10, point 3): every node decides on the
//! stored state by compare-and-set, so pseudonyms are never given twice, and a facilitator's
//! lock or removal on one node holds on the others (their copy follows the store's change
//! feed). A dot is one atomic step on its own ballot records, not a rewrite of the state: the
//! budget holds across nodes (the last dot counts once when two nodes race for it), the state's
//! version does not move on a vote, and commands and votes racing on two nodes lose nothing.
//! Two real `tafel serve` processes on one real `redis-server`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tafel_protocol::Role;
use tafel_server::store::{RedisStore, Store};
use tafel_tests::api::{call, create_board, facilitator, token};
use tafel_tests::client::YClient;
use tafel_tests::procs::{Redis, Tafel};

const T: Duration = Duration::from_secs(10);

async fn connect(t: &Tafel, board: &str, doc: &str, tok: &str) -> YClient {
    YClient::connect_synced(&t.ws_url(board, doc, tok)).await
}

/// Waits until the card exists in `c` with the server's stamp (owner set).
async fn stamped(c: &YClient, id: &str) -> bool {
    tafel_tests::eventually(T, || c.items("cards")[id]["owner"].is_string()).await
}

async fn command(t: &Tafel, board: &str, cmd: Value) -> (u16, Value) {
    call(
        t,
        Method::POST,
        &format!("/api/boards/{board}/control"),
        &facilitator(),
        Some(cmd),
    )
    .await
}

/// Two votes for the last dot of one budget, sent to two nodes at the same instant: exactly
/// one counts, every time. Without the ballot script's compare (the budget counter still what
/// the node decided on) both nodes decide on the same counter and both answer 200 (the
/// positive control: the first dot counts on either node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_dot_counts_once_across_two_nodes() {
    let redis = Redis::start();
    let a = Tafel::start_redis(&redis);
    let b = Tafel::start_redis(&redis);
    let board = create_board(&a).await;
    let f = connect(&a, &board, "canvas", &token(Role::Facilitator, &board, "f")).await;
    let cards: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    for id in &cards {
        f.add_card(id, "bouwstenen", &format!("voorstel {id}"), json!({}));
    }
    for id in &cards {
        assert!(stamped(&f, id).await, "card {id} stored");
    }
    for race in 0..10 {
        let (s, v) = command(
            &a,
            &board,
            json!({"action": "open-round", "title": format!("ronde {race}"), "cards": cards, "budget": 2, "max_per_card": 1}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let round = v["round"].as_str().expect("round").to_owned();
        let votes = format!("/api/boards/{board}/rounds/{round}/votes");
        let voter = token(Role::Employer, &board, &format!("stemmer-{race}"));
        // Both nodes know the board and the round before the race.
        let ballot = format!("/api/boards/{board}/rounds/{round}/ballot");
        assert_eq!(call(&b, Method::GET, &ballot, &voter, None).await.0, 200);
        let (s, v) = call(
            &b,
            Method::POST,
            &votes,
            &voter,
            Some(json!({"card": "c0"})),
        )
        .await;
        assert_eq!(s, 200, "the first dot counts on node b: {v}");
        let on_a = call(
            &a,
            Method::POST,
            &votes,
            &voter,
            Some(json!({"card": "c1"})),
        );
        let on_b = call(
            &b,
            Method::POST,
            &votes,
            &voter,
            Some(json!({"card": "c2"})),
        );
        let ((sa, va), (sb, vb)) = tokio::join!(on_a, on_b);
        let counted = [sa, sb].iter().filter(|s| **s == 200).count();
        assert_eq!(
            counted, 1,
            "race {race}: exactly one of the two last dots counts ({sa} {va}, {sb} {vb})"
        );
        let refused = if sa == 200 { &vb } else { &va };
        assert!(
            refused.to_string().contains("budget"),
            "race {race}: refused for the budget: {refused}"
        );
        for node in [&a, &b] {
            let (s, mine) = call(node, Method::GET, &ballot, &voter, None).await;
            assert_eq!(s, 200);
            let dots: u64 = mine["votes"]
                .as_object()
                .expect("votes")
                .values()
                .filter_map(Value::as_u64)
                .sum();
            assert_eq!(dots, 2, "race {race}: the ballot holds the budget: {mine}");
        }
    }
}

/// Employees joining on two nodes at once get distinct pseudonyms ("Medewerker N" once each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pseudonyms_are_unique_across_nodes() {
    let redis = Redis::start();
    let a = Tafel::start_redis(&redis);
    let b = Tafel::start_redis(&redis);
    let board = create_board(&a).await;
    // Both nodes have the board loaded before the joins.
    for node in [&a, &b] {
        let (s, _) = call(
            node,
            Method::GET,
            &format!("/api/boards/{board}"),
            &facilitator(),
            None,
        )
        .await;
        assert_eq!(s, 200);
    }
    let joins = (0..12).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        let tok = token(Role::Employee, &board, &format!("medewerker-{i}"));
        let board = board.clone();
        async move {
            call(
                node,
                Method::POST,
                &format!("/api/boards/{board}/join"),
                &tok,
                Some(json!({"name": format!("Naam {i}")})),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(joins).await;
    let mut displays: Vec<String> = answers
        .iter()
        .map(|(s, v)| {
            assert_eq!(*s, 200, "{v}");
            v["display"].as_str().expect("display").to_owned()
        })
        .collect();
    displays.sort();
    let before = displays.len();
    displays.dedup();
    assert_eq!(
        displays.len(),
        before,
        "a pseudonym was given twice: {displays:?}"
    );
    for n in 1..=12 {
        assert!(
            displays.contains(&format!("Medewerker {n}")),
            "{displays:?}"
        );
    }
}

/// A lock set on node a refuses an edit on node b, on a connection that was open before the
/// lock; unlocking on a lets it through again. A removal on node a closes the participant's
/// socket on node b with 4403, and another participant on b stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_and_removals_hold_on_every_node() {
    let redis = Redis::start();
    let a = Tafel::start_redis(&redis);
    let b = Tafel::start_redis(&redis);
    let board = create_board(&a).await;
    let e = connect(
        &b,
        &board,
        "canvas",
        &token(Role::Employer, &board, "werkgever"),
    )
    .await;
    e.add_card("voor", "bouwstenen", "voor het slot", json!({}));
    assert!(
        stamped(&e, "voor").await,
        "positive control: b accepts the edit"
    );

    let (s, v) = command(
        &a,
        &board,
        json!({"action": "lock", "scope": "section", "target": "bouwstenen", "locked": true}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // b hears of the lock through the change feed; keep trying until b refuses.
    let mut refused = None;
    for i in 0..50 {
        let before = e.seen().denied.len();
        e.add_card(
            &format!("slot{i}"),
            "bouwstenen",
            "tijdens het slot",
            json!({}),
        );
        if e.wait(Duration::from_millis(300), |s| s.denied.len() > before)
            .await
        {
            refused = e.seen().denied.last().cloned();
            break;
        }
    }
    let refused = refused.expect("node b never refused an edit under node a's lock");
    assert!(refused.contains("lock"), "{refused}");

    let (s, _) = command(
        &a,
        &board,
        json!({"action": "lock", "scope": "section", "target": "bouwstenen", "locked": false}),
    )
    .await;
    assert_eq!(s, 200);
    let e2 = {
        let mut accepted = None;
        for i in 0..30 {
            let c = connect(
                &b,
                &board,
                "canvas",
                &token(Role::Employer, &board, "werkgever"),
            )
            .await;
            let id = format!("na{i}");
            c.add_card(&id, "bouwstenen", "na het slot", json!({}));
            if c.wait(Duration::from_millis(500), |s| !s.denied.is_empty())
                .await
            {
                continue;
            }
            if stamped(&c, &id).await {
                accepted = Some(c);
                break;
            }
        }
        accepted.expect("node b never accepted an edit after node a's unlock")
    };
    drop(e2);

    // Removal: join two employees through node b, remove one on node a.
    let gone = token(Role::Employee, &board, "weg");
    let stays = token(Role::Employee, &board, "blijft");
    for tok in [&gone, &stays] {
        let (s, v) = call(
            &b,
            Method::POST,
            &format!("/api/boards/{board}/join"),
            tok,
            Some(json!({"name": "x"})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    let c_gone = connect(&b, &board, "canvas", &gone).await;
    let c_stays = connect(&b, &board, "canvas", &stays).await;
    let participants = format!("/api/boards/{board}/participants");
    let (s, list) = call(&a, Method::GET, &participants, &facilitator(), None).await;
    assert_eq!(s, 200);
    let pid = list
        .as_array()
        .and_then(|l| {
            l.iter()
                .filter(|p| p["role"] == "employee")
                .map(|p| p["id"].as_str().unwrap_or_default().to_owned())
                .next()
        })
        .expect("an employee listed");
    // Which of the two was listed first is the server's business: find out by removing it.
    let (s, v) = call(
        &a,
        Method::DELETE,
        &format!("{participants}/{pid}"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let closed = tafel_tests::eventually(T, || {
        c_gone.closed().is_some() || c_stays.closed().is_some()
    })
    .await;
    assert!(closed, "node a's removal closed no socket on node b");
    let (removed, other) = if c_gone.closed().is_some() {
        (&c_gone, &c_stays)
    } else {
        (&c_stays, &c_gone)
    };
    assert_eq!(removed.closed().map(|c| c.0), Some(4403));
    // The other participant is still in: an edit of theirs makes the round trip.
    other.add_card("blijft", "themas", "nog steeds hier", json!({}));
    assert!(
        stamped(other, "blijft").await,
        "the other participant stays"
    );
    assert!(other.closed().is_none());
}

/// The board state's version in Redis (how often it was stored).
async fn state_version(store: &RedisStore, board: &str) -> u64 {
    let id = tafel_protocol::BoardId::parse(board).expect("board id");
    store
        .get_board_state_versioned(&id)
        .await
        .expect("read the board state")
        .0
}

/// A vote is its own atomic step: the board state's version does not move when dots are cast
/// on either node (the positive control: a session command moves it by one). Session commands
/// on both nodes and votes on both nodes at the same time lose nothing: every command is in the
/// audit log, every dot in the ballots and the totals, and the public voter count and the
/// revealed totals reach the clients of both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_do_not_rewrite_the_board_state_and_race_commands_losslessly() {
    let redis = Redis::start();
    let a = Tafel::start_redis(&redis);
    let b = Tafel::start_redis(&redis);
    let store = RedisStore::open(&redis.url()).await.expect("open redis");
    let board = create_board(&a).await;
    let f = connect(&a, &board, "canvas", &token(Role::Facilitator, &board, "f")).await;
    let cards: Vec<String> = (0..4).map(|i| format!("k{i}")).collect();
    for id in &cards {
        f.add_card(id, "bouwstenen", &format!("voorstel {id}"), json!({}));
    }
    for id in &cards {
        assert!(stamped(&f, id).await, "card {id} stored");
    }
    let (s, v) = command(
        &a,
        &board,
        json!({"action": "open-round", "title": "ronde", "cards": cards, "budget": 40, "max_per_card": 10}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let round = v["round"].as_str().expect("round").to_owned();
    let votes = format!("/api/boards/{board}/rounds/{round}/votes");
    let ballot = format!("/api/boards/{board}/rounds/{round}/ballot");
    let voters: Vec<String> = (0..3)
        .map(|i| token(Role::Employee, &board, &format!("stemmer-{i}")))
        .collect();
    // Each voter is known on both nodes (their pseudonym is a state change) before counting.
    for v in &voters {
        for node in [&a, &b] {
            assert_eq!(call(node, Method::GET, &ballot, v, None).await.0, 200);
        }
    }
    let control_a = connect(&a, &board, "control", &token(Role::Observer, &board, "oa")).await;
    let control_b = connect(&b, &board, "control", &token(Role::Observer, &board, "ob")).await;

    let before = state_version(&store, &board).await;
    for (i, v) in voters.iter().enumerate() {
        let node = if i % 2 == 0 { &a } else { &b };
        let (s, body) = call(node, Method::POST, &votes, v, Some(json!({"card": "k0"}))).await;
        assert_eq!(s, 200, "{body}");
    }
    assert_eq!(
        state_version(&store, &board).await,
        before,
        "a vote does not store the board state"
    );
    // The public count of voters reaches the clients of both nodes.
    for c in [&control_a, &control_b] {
        assert!(
            tafel_tests::eventually(T, || c.map_json("rounds")[&round]["voters"] == 3).await,
            "voters on every node: {}",
            c.map_json("rounds")
        );
    }
    // Positive control: a session command stores the state once.
    let (s, _) = command(&a, &board, json!({"action": "phase", "phase": "controle"})).await;
    assert_eq!(s, 200);
    assert_eq!(state_version(&store, &board).await, before + 1);

    // Commands on both nodes and votes on both nodes, all at once.
    let commands = (0..12).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        let board = board.clone();
        async move {
            command(
                node,
                &board,
                json!({"action": "phase", "phase": format!("fase {i}")}),
            )
            .await
        }
    });
    let dots = (0..voters.len() * 9).map(|i| {
        let node = if i % 2 == 0 { &b } else { &a };
        let voter = &voters[i % voters.len()];
        let card = &cards[1 + i % 3];
        let votes = votes.clone();
        async move {
            call(
                node,
                Method::POST,
                &votes,
                voter,
                Some(json!({"card": card})),
            )
            .await
        }
    });
    let (commanded, voted) = tokio::join!(
        futures_util::future::join_all(commands),
        futures_util::future::join_all(dots)
    );
    for (s, v) in commanded.iter().chain(&voted) {
        assert_eq!(*s, 200, "{v}");
    }
    // Every command is in the audit log (on either node) ...
    for node in [&a, &b] {
        let (s, audit) = call(
            node,
            Method::GET,
            &format!("/api/boards/{board}/audit"),
            &facilitator(),
            None,
        )
        .await;
        assert_eq!(s, 200);
        let phases: Vec<String> = audit
            .as_array()
            .expect("audit entries")
            .iter()
            .filter(|e| e["action"] == "phase")
            .filter_map(|e| e["detail"]["phase"].as_str().map(str::to_owned))
            .collect();
        for i in 0..12 {
            assert!(
                phases.contains(&format!("fase {i}")),
                "command {i} lost: {phases:?}"
            );
        }
    }
    // ... and every dot in the ballots, read on either node.
    for v in &voters {
        for node in [&a, &b] {
            let (_, mine) = call(node, Method::GET, &ballot, v, None).await;
            let total: u64 = mine["votes"]
                .as_object()
                .expect("votes")
                .values()
                .filter_map(Value::as_u64)
                .sum();
            assert_eq!(total, 10, "one dot on k0 and nine racing dots: {mine}");
            assert_eq!(mine["left"], 30);
        }
    }
    let (s, v) = command(
        &b,
        &board,
        json!({"action": "reveal-round", "round": round}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["totals"]["canvas/k0"], 3);
    let counted: u64 = cards
        .iter()
        .map(|c| v["totals"][format!("canvas/{c}")].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(counted, 30, "every dot in the totals: {v}");
    for c in [&control_a, &control_b] {
        assert!(
            tafel_tests::eventually(T, || c.map_json("rounds")[&round]["totals"]["canvas/k0"]
                == 3)
            .await,
            "totals on every node: {}",
            c.map_json("rounds")
        );
    }
    // After the reveal no dot counts, on either node.
    for node in [&a, &b] {
        let (s, _) = call(
            node,
            Method::POST,
            &votes,
            &voters[0],
            Some(json!({"card": "k3"})),
        )
        .await;
        assert_eq!(s, 403);
    }
}

/// Many people opening the board at the same moment are noted in the facilitator's list in a
/// few state writes (group commit), not one write each — and none is lost: 40 observers connect
/// at once, all 40 are listed, and the state's version moved fewer than 40 times. The positive
/// control: one more observer alone moves it by exactly one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_at_once_are_noted_in_few_state_writes_and_none_is_lost() {
    let redis = Redis::start();
    let a = Tafel::start_redis(&redis);
    let store = RedisStore::open(&redis.url()).await.expect("open redis");
    let board = create_board(&a).await;
    let first = connect(
        &a,
        &board,
        "canvas",
        &token(Role::Observer, &board, "o-first"),
    )
    .await;
    let before = state_version(&store, &board).await;
    let joins = (0..40).map(|i| {
        let url = a.ws_url(
            &board,
            "canvas",
            &token(Role::Observer, &board, &format!("o{i}")),
        );
        async move { YClient::connect_synced(&url).await }
    });
    let clients = futures_util::future::join_all(joins).await;
    let after = state_version(&store, &board).await;
    let (s, list) = call(
        &a,
        Method::GET,
        &format!("/api/boards/{board}/participants"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(s, 200, "{list}");
    let observers = list
        .as_array()
        .expect("a list")
        .iter()
        .filter(|p| p["role"] == "observer")
        .count();
    assert_eq!(observers, 41, "every observer is listed: {list}");
    let writes = after - before;
    assert!(
        (1..40).contains(&writes),
        "40 joins at once took {writes} state writes"
    );
    let _late = connect(
        &a,
        &board,
        "canvas",
        &token(Role::Observer, &board, "o-late"),
    )
    .await;
    assert_eq!(
        state_version(&store, &board).await,
        after + 1,
        "one join alone is one write"
    );
    drop((first, clients));
}
