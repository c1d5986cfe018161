//! Issue 10, end to end: several real `tafel` processes on one `redis-server` (and one test on a
//! real three-master Redis Cluster), real WebSockets. One ordered log per document in Redis that
//! every node follows; presence across nodes; the faults: a node killed with -9, Redis
//! restarted, a node cut off from Redis through a TCP proxy the test controls, a reconnect storm.

use std::time::{Duration, Instant};

use tafel_protocol::Role;
use tafel_tests::api::{create_board, http, token};
use tafel_tests::client::YClient;
use tafel_tests::procs::{Redis, Tafel};
use yrs::Doc;

/// Generous: this machine is small and loaded.
const T: Duration = Duration::from_secs(20);
/// How long to keep looking for something that must not arrive.
const QUIET: Duration = Duration::from_millis(1500);

fn nodes(store: &str, n: usize) -> Vec<Tafel> {
    (0..n).map(|_| Tafel::start_with(store, &[])).collect()
}

fn url(t: &Tafel, board: &str, sub: &str) -> String {
    t.ws_url(board, "party-employer", &token(Role::Employer, board, sub))
}

/// An edit written on node A reaches a client on node B (and one that joins B later), and the
/// other way round; node B's metrics count what it followed and its lag behind the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_on_one_node_reaches_a_client_on_another() {
    let redis = Redis::start();
    let ns = nodes(&redis.url(), 2);
    let board = create_board(&ns[0]).await;
    let a = YClient::connect_synced(&url(&ns[0], &board, "e1")).await;
    let b = YClient::connect_synced(&url(&ns[1], &board, "e2")).await;
    a.push_text("t", "van A;");
    assert!(b.wait_text("t", "van A;", T).await, "B never saw A's edit");
    b.push_text("t", "van B;");
    assert!(a.wait_text("t", "van B;", T).await, "A never saw B's edit");
    let late = YClient::connect_synced(&url(&ns[1], &board, "e3")).await;
    let text = late.text("t");
    assert!(text.contains("van A;") && text.contains("van B;"), "{text}");
    let metrics = http()
        .get(format!("{}/metrics", ns[1].http()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let followed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tafel_log_followed_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(followed >= 1.0, "node B followed nothing:\n{metrics}");
    assert!(metrics.contains("tafel_log_lag_seconds_count"), "{metrics}");
}

/// Two participants on two nodes write under the same Yjs client id at the same instant (A
/// eight characters, B sixteen, both from clock 0): the log takes exactly one claim, and every
/// node holds that same one. If A's came first, B's extra clocks are under a client id that is
/// now A's participant's, so B is refused; if B's came first, A's update holds nothing new.
/// Positive control: with two different client ids both are accepted on both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_for_one_client_id_accept_exactly_one() {
    let redis = Redis::start();
    let ns = nodes(&redis.url(), 2);
    let (mut a_won, mut b_won) = (0, 0);
    for round in 0..6u64 {
        let board = create_board(&ns[0]).await;
        let shared_id = 7_000 + round;
        let a =
            YClient::connect_with_doc(&url(&ns[0], &board, "e1"), Doc::with_client_id(shared_id))
                .await
                .expect("a");
        let b =
            YClient::connect_with_doc(&url(&ns[1], &board, "e2"), Doc::with_client_id(shared_id))
                .await
                .expect("b");
        assert!(a.wait(T, |s| s.synced).await && b.wait(T, |s| s.synced).await);
        a.push_text("t", "A-claim;");
        b.push_text("t", "B-claim, longer;");
        tokio::time::sleep(QUIET).await;
        let mut shown = Vec::new();
        for n in &ns {
            let c = YClient::connect_synced(&url(n, &board, "e3")).await;
            shown.push(c.text("t"));
        }
        assert_eq!(shown[0], shown[1], "round {round}: the nodes disagree");
        let text = &shown[0];
        let has_a = text.contains("A-claim;");
        let has_b = text.contains("B-claim, longer;");
        assert!(has_a ^ has_b, "round {round}: the nodes hold {text:?}");
        let b_refused = b.seen().denied.len();
        assert_eq!(a.seen().denied.len(), 0, "round {round}");
        if has_a {
            a_won += 1;
            assert_eq!(
                b_refused, 1,
                "round {round}: B's claim after A's was not refused"
            );
        } else {
            b_won += 1;
            assert_eq!(b_refused, 0, "round {round}");
        }
    }
    eprintln!("claims won: A {a_won}, B {b_won}");
    // Positive control: different client ids, both accepted, both seen on both nodes.
    let board = create_board(&ns[0]).await;
    let a = YClient::connect_synced(&url(&ns[0], &board, "e1")).await;
    let b = YClient::connect_synced(&url(&ns[1], &board, "e2")).await;
    a.push_text("t", "A-claim;");
    b.push_text("t", "B-claim;");
    for c in [&a, &b] {
        assert!(c.wait_text("t", "A-claim;", T).await && c.wait_text("t", "B-claim;", T).await);
    }
    assert_eq!(a.seen().denied.len() + b.seen().denied.len(), 0);
}

/// Presence crosses nodes: a state set on node A shows on node B, its removal too; when node A
/// dies (kill -9) its clients' presence is removed on B within a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_crosses_nodes_and_a_dead_nodes_presence_goes() {
    let redis = Redis::start();
    let mut ns = nodes(&redis.url(), 2);
    let board = create_board(&ns[0]).await;
    let a = YClient::connect_synced(&url(&ns[0], &board, "e1")).await;
    let b = YClient::connect_synced(&url(&ns[1], &board, "e2")).await;
    let a_id = a.doc.client_id().get();
    a.set_awareness(a_id, r#"{"user":{"name":"Anna"}}"#);
    assert!(
        b.wait(T, |s| s
            .awareness
            .get(&a_id)
            .is_some_and(|j| j.contains("Anna")))
            .await,
        "B never saw A's presence: {:?}",
        b.seen().awareness
    );
    // A late joiner on B gets it with its join frames.
    let late = YClient::connect_synced(&url(&ns[1], &board, "e3")).await;
    assert!(late.wait(T, |s| s.awareness.contains_key(&a_id)).await);
    // A leaves politely: gone on B.
    drop(a);
    assert!(
        b.wait(T, |s| !s.awareness.contains_key(&a_id)).await,
        "A's presence stayed on B after A left"
    );
    // A second client on A shows presence; then node A dies.
    let a2 = YClient::connect_synced(&url(&ns[0], &board, "e4")).await;
    let a2_id = a2.doc.client_id().get();
    a2.set_awareness(a2_id, r#"{"user":{"name":"Bram"}}"#);
    assert!(b.wait(T, |s| s.awareness.contains_key(&a2_id)).await);
    let killed = Instant::now();
    ns[0].kill9();
    assert!(
        b.wait(Duration::from_secs(10), |s| !s
            .awareness
            .contains_key(&a2_id))
            .await,
        "a dead node's presence stayed"
    );
    eprintln!(
        "a dead node's presence was removed after {:?}",
        killed.elapsed()
    );
    // Positive control: B's own presence survives on B's late joiner.
    let b_id = b.doc.client_id().get();
    b.set_awareness(b_id, r#"{"user":{"name":"Cas"}}"#);
    assert!(late.wait(T, |s| s.awareness.contains_key(&b_id)).await);
}
