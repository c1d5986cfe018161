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

/// Reconnects a client's document to another node: a new socket syncing the same `Doc`, so
/// what it holds and the server lacks is sent again (what y-websocket does on reconnect).
async fn reconnect(doc: &Doc, url: &str) -> YClient {
    let started = Instant::now();
    loop {
        if let Ok(c) = YClient::connect_with_doc(url, doc.clone()).await {
            if c.wait(Duration::from_secs(5), |s| s.synced || s.closed.is_some())
                .await
                && c.seen().synced
            {
                return c;
            }
        }
        assert!(started.elapsed() < T, "no sync after reconnecting to {url}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// kill -9 one of three nodes while clients on all three edit: the dead node's client
/// reconnects to another node, nothing any client was shown is lost, all converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_one_of_three_nodes_while_clients_edit() {
    let redis = Redis::start();
    let mut ns = nodes(&redis.url(), 3);
    let board = create_board(&ns[0]).await;
    let mut clients: Vec<YClient> = Vec::new();
    for (i, n) in ns.iter().enumerate() {
        clients.push(YClient::connect_synced(&url(n, &board, &format!("e{i}"))).await);
    }
    for round in 0..10 {
        for (i, c) in clients.iter().enumerate() {
            c.push_text("t", &format!("[{i}:{round}]"));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // Wait until client 0 was shown node 2's edits, then kill node 2.
    assert!(
        clients[0].wait_text("t", "[2:9]", T).await,
        "client 0 never saw client 2's last edit: {} (closed: {:?})\nlog of node 2:\n{}",
        clients[0].text("t"),
        clients.iter().map(|c| c.closed()).collect::<Vec<_>>(),
        ns[2].log()
    );
    let shown_before = clients[0].text("t");
    ns[2].kill9();
    // Client 2 keeps editing offline, then reconnects to node 0 (any node will do).
    for round in 10..15 {
        clients[2].push_text("t", &format!("[2:{round}]"));
    }
    let started = Instant::now();
    let dead = clients.pop().expect("client 2");
    let doc2 = dead.doc.clone();
    drop(dead);
    clients.push(reconnect(&doc2, &url(&ns[0], &board, "e2")).await);
    eprintln!(
        "client of the killed node back in sync on another node after {:?}",
        started.elapsed()
    );
    for round in 15..20 {
        for (i, c) in clients.iter().enumerate() {
            c.push_text("t", &format!("[{i}:{round}]"));
        }
    }
    // Rounds 10..15 only the dead node's client wrote (offline).
    let want: Vec<String> = (0..3)
        .flat_map(|i| {
            (0..20)
                .filter(move |r| i == 2 || !(10..15).contains(r))
                .map(move |r| format!("[{i}:{r}]"))
        })
        .collect();
    for (i, c) in clients.iter().enumerate() {
        let all = tafel_tests::eventually(T, || {
            let t = c.text("t");
            want.iter().all(|w| t.contains(w.as_str()))
        })
        .await;
        assert!(all, "client {i} misses edits: {}", c.text("t"));
    }
    let texts: Vec<String> = clients.iter().map(|c| c.text("t")).collect();
    assert!(
        texts.iter().all(|t| *t == texts[0]),
        "not converged: {texts:?}"
    );
    for piece in shown_before.split_inclusive(']') {
        assert!(
            texts[0].contains(piece),
            "lost {piece} that was shown before the kill"
        );
    }
    // A fresh client on each surviving node reads the same.
    for n in &ns[..2] {
        let fresh = YClient::connect_synced(&url(n, &board, "e9")).await;
        assert_eq!(fresh.text("t"), texts[0]);
    }
}

/// Redis restarted (kill -9, AOF with fsync always) under two nodes: each node notices by
/// itself (its clients are closed with 4503 rather than left on a stale copy), and after the
/// clients reconnect edits cross nodes again; nothing acknowledged before is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_the_nodes_recover_by_themselves() {
    let mut redis = Redis::start();
    let ns = nodes(&redis.url(), 2);
    let board = create_board(&ns[0]).await;
    let a = YClient::connect_synced(&url(&ns[0], &board, "e1")).await;
    let b = YClient::connect_synced(&url(&ns[1], &board, "e2")).await;
    a.push_text("t", "voor;");
    assert!(b.wait_text("t", "voor;", T).await);
    redis.restart();
    // Both nodes lose their followers and close their clients with 4503.
    for c in [&a, &b] {
        assert!(
            c.wait(T, |s| s.closed.is_some()).await,
            "a node kept its client on a copy it can no longer follow"
        );
        assert_eq!(c.closed().map(|c| c.0), Some(4503), "{:?}", c.closed());
    }
    let (da, db) = (a.doc.clone(), b.doc.clone());
    drop((a, b));
    let started = Instant::now();
    let a = reconnect(&da, &url(&ns[0], &board, "e1")).await;
    let b = reconnect(&db, &url(&ns[1], &board, "e2")).await;
    eprintln!("both back after {:?}", started.elapsed());
    a.push_text("t", "na-A;");
    b.push_text("t", "na-B;");
    for c in [&a, &b] {
        for w in ["voor;", "na-A;", "na-B;"] {
            assert!(c.wait_text("t", w, T).await, "missing {w}: {}", c.text("t"));
        }
    }
    for n in &ns {
        for path in ["/readyz", "/healthz"] {
            let status = http()
                .get(format!("{}{path}", n.http()))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            assert_eq!(status, 200, "{path} on {}", n.port);
        }
    }
}

/// One node cut off from Redis (through a proxy the test controls) stops accepting edits and
/// says so (4503, /readyz 503) rather than diverge; the other node goes on; healed, the cut-off
/// node serves again and its clients catch up with what happened meanwhile, and what they
/// wrote offline arrives everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_redis_stops_and_catches_up_when_healed() {
    let redis = Redis::start();
    let proxy = tafel_tests::proxy::Proxy::start(redis.port).await;
    let cut_node = Tafel::start_with(&format!("redis://127.0.0.1:{}", proxy.port), &[]);
    let other = Tafel::start_redis(&redis);
    let board = create_board(&other).await;
    let a = YClient::connect_synced(&url(&cut_node, &board, "e1")).await;
    let b = YClient::connect_synced(&url(&other, &board, "e2")).await;
    a.push_text("t", "samen;");
    assert!(b.wait_text("t", "samen;", T).await);
    proxy.cut();
    // A's node loses the log: its client is told with 4503.
    assert!(
        a.wait(T, |s| s.closed.is_some()).await,
        "the cut-off node kept its client"
    );
    assert_eq!(a.closed().map(|c| c.0), Some(4503), "{:?}", a.closed());
    let ready = http()
        .get(format!("{}/readyz", cut_node.http()))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert_eq!(ready, 503, "/readyz of the cut-off node");
    // Meanwhile: B edits on the other node, A edits offline; a reconnect to the cut-off node
    // is refused (4503), never served from a stale copy.
    b.push_text("t", "tijdens;");
    a.push_text("t", "offline;");
    let doc_a = a.doc.clone();
    drop(a);
    let retry = YClient::connect_with_doc(&url(&cut_node, &board, "e1"), Doc::new()).await;
    if let Ok(r) = retry {
        assert!(r.wait(T, |s| s.closed.is_some()).await);
        assert_eq!(r.closed().map(|c| c.0), Some(4503), "{:?}", r.closed());
        assert!(!r.text("t").contains("samen;"), "served while cut off");
    }
    assert!(!b.text("t").contains("offline;"));
    proxy.heal();
    let started = Instant::now();
    let a = reconnect(&doc_a, &url(&cut_node, &board, "e1")).await;
    eprintln!("the healed node served again after {:?}", started.elapsed());
    assert!(
        a.wait_text("t", "tijdens;", T).await,
        "A missed B's edit: {}",
        a.text("t")
    );
    assert!(
        b.wait_text("t", "offline;", T).await,
        "B missed A's offline edit"
    );
    a.push_text("t", "weer;");
    assert!(b.wait_text("t", "weer;", T).await);
}

/// A reconnect storm: 1,000 clients (over two nodes) connecting at once to a board with
/// content all get in sync with no errors; the time is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_of_a_thousand_clients() {
    let redis = Redis::start();
    let ns = nodes(&redis.url(), 2);
    let board = create_board(&ns[0]).await;
    let writer = YClient::connect_synced(&url(&ns[0], &board, "w")).await;
    for i in 0..50 {
        writer.push_text("t", &format!("regel {i};"));
    }
    let check = YClient::connect_synced(&url(&ns[1], &board, "c")).await;
    assert!(check.wait_text("t", "regel 49;", T).await);
    let urls: Vec<String> = (0..2)
        .map(|n| url(&ns[n], &board, &format!("s{n}")))
        .collect();
    let started = Instant::now();
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let u = urls[i % 2].clone();
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    if let Ok(c) = YClient::connect(&u).await {
                        if c.wait(Duration::from_secs(60), |s| s.synced).await {
                            return Ok::<_, String>(c);
                        }
                        if let Some(closed) = c.closed() {
                            return Err(format!("closed {closed:?}"));
                        }
                    }
                    if Instant::now() > deadline {
                        return Err("no connection".into());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        })
        .collect();
    let mut clients = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(c) => clients.push(c),
            Err(e) => errors.push(e),
        }
    }
    let synced = started.elapsed();
    assert!(
        errors.is_empty(),
        "{} errors, e.g. {:?}",
        errors.len(),
        errors.first()
    );
    for c in &clients {
        assert!(c.text("t").contains("regel 49;"));
    }
    // One more edit reaches all thousand, on both nodes.
    writer.push_text("t", "iedereen;");
    for c in &clients {
        assert!(c.wait_text("t", "iedereen;", T).await);
    }
    eprintln!(
        "reconnect storm: 1000 clients in sync after {synced:?}, an edit reached all after {:?}",
        started.elapsed()
    );
    for c in &clients {
        assert!(c.closed().is_none(), "{:?}", c.closed());
    }
}
