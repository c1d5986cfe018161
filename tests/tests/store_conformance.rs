//! One conformance suite for the `Store` trait, run against both implementations: the embedded
//! `RedbStore` (in a temp folder) and `RedisStore` (against a private `redis-server`). Every check
//! below is generated twice by `conformance!`, as `on_redb::<check>` and `on_redis::<check>`.
//!
//! Persistence across a restart and the behaviour while the backend is gone differ per store and
//! have their own tests at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tafel_protocol::{BoardId, DocKey, DocName, Party};
use tafel_server::store::{BoardMeta, RedbStore, RedisStore, Store, StoreError, StoredDoc};
use tafel_tests::procs::Redis;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The store under test, with the inherent `keys_mentioning` both concrete stores offer.
enum Under<'a> {
    Redb(&'a RedbStore),
    Redis(&'a RedisStore),
}

impl Under<'_> {
    fn store(&self) -> &dyn Store {
        match self {
            Under::Redb(s) => *s,
            Under::Redis(s) => *s,
        }
    }

    async fn keys_mentioning(&self, board: &str) -> Vec<String> {
        match self {
            Under::Redb(s) => s.keys_mentioning(board).await,
            Under::Redis(s) => s.keys_mentioning(board).await,
        }
        .expect("keys_mentioning")
    }
}

fn board(id: &str) -> BoardId {
    BoardId::parse(id).expect("valid board id")
}

fn key(b: &str, doc: DocName) -> DocKey {
    DocKey::new(board(b), doc)
}

fn meta(id: &str, title: &str, created_at: u64) -> BoardMeta {
    BoardMeta {
        id: board(id),
        title: title.to_owned(),
        template: "cao-di-organisatie".to_owned(),
        created_at,
    }
}

fn bytes(v: &[u8]) -> Bytes {
    Bytes::copy_from_slice(v)
}

/// A yrs document that records each edit as the v1 update it produced.
struct Recorder {
    doc: Doc,
    updates: Vec<Vec<u8>>,
}

impl Recorder {
    fn new(client_id: u64) -> Self {
        Recorder {
            doc: Doc::with_client_id(client_id),
            updates: Vec::new(),
        }
    }

    /// Inserts `s` at `index` of text `t` and records the diff as one update.
    fn insert(&mut self, index: u32, s: &str) -> Vec<u8> {
        let before = self.doc.transact().state_vector();
        let text = self.doc.get_or_insert_text("t");
        text.insert(&mut self.doc.transact_mut(), index, s);
        let u = self.doc.transact().encode_diff_v1(&before);
        self.updates.push(u.clone());
        u
    }

    fn text(&self) -> String {
        let t = self.doc.get_or_insert_text("t");
        t.get_string(&self.doc.transact())
    }

    fn full_state(&self) -> Vec<u8> {
        self.doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
    }
}

/// Applies a stored document (snapshot, then log) into a fresh yrs doc and returns text `t`.
fn replay(stored: &StoredDoc) -> String {
    let doc = Doc::new();
    let text = doc.get_or_insert_text("t");
    {
        let mut txn = doc.transact_mut();
        for raw in stored.snapshot.iter().chain(stored.log.iter()) {
            let u = Update::decode_v1(raw).expect("stored bytes are a valid v1 update");
            txn.apply_update(u).expect("stored update applies");
        }
    }
    let s = text.get_string(&doc.transact());
    s
}

async fn load(s: &dyn Store, k: &DocKey) -> StoredDoc {
    s.load(k).await.unwrap_or_else(|e| panic!("load {k}: {e}"))
}

async fn append(s: &dyn Store, k: &DocKey, updates: &[&[u8]]) {
    let updates: Vec<Bytes> = updates.iter().map(|u| bytes(u)).collect();
    s.append(k, &updates)
        .await
        .unwrap_or_else(|e| panic!("append to {k}: {e}"));
}

/// Retries `f` every 100 ms until it returns `Ok` or `timeout` passes; returns the last result.
async fn retry<T, F, Fut>(timeout: Duration, mut f: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let r = f().await;
        if r.is_ok() || Instant::now() >= deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The suite: each check takes the store under test.
// ---------------------------------------------------------------------------------------------

async fn empty_load_of_unknown_doc(u: &Under<'_>) {
    let s = u.store();
    s.ping().await.expect("ping");
    for name in DocName::ALL {
        let got = load(s, &key("nobody-here", name)).await;
        assert_eq!(
            got,
            StoredDoc::default(),
            "{name} of an unknown board loads empty"
        );
    }
    assert_eq!(s.get_board(&board("nobody-here")).await.expect("get"), None);
    assert!(s.list_boards().await.expect("list").is_empty());
}

async fn append_then_load_in_order(u: &Under<'_>) {
    let s = u.store();
    let k = key("b1", DocName::Canvas);
    let mut rec = Recorder::new(1);
    for i in 0..10u32 {
        let upd = rec.insert(i, &format!("{}", i % 10));
        append(s, &k, &[&upd]).await;
    }
    let got = load(s, &k).await;
    assert_eq!(got.snapshot, None, "no snapshot before any compaction");
    assert_eq!(
        got.log, rec.updates,
        "log holds the appended updates, in append order"
    );
    assert_eq!(replay(&got), rec.text());
    assert_eq!(replay(&got), "0123456789");
    // Other documents of the same board and the same doc of other boards are untouched.
    assert_eq!(
        load(s, &key("b1", DocName::Gap)).await,
        StoredDoc::default()
    );
    assert_eq!(
        load(s, &key("b2", DocName::Canvas)).await,
        StoredDoc::default()
    );
}

async fn append_many_in_one_call(u: &Under<'_>) {
    let s = u.store();
    let k = key("b1", DocName::Party(Party::Union));
    // An empty call is a no-op that succeeds.
    s.append(&k, &[]).await.expect("empty append");
    assert_eq!(load(s, &k).await, StoredDoc::default());

    let mut rec = Recorder::new(2);
    let first = rec.insert(0, "a");
    append(s, &k, &[&first]).await;
    let batch: Vec<Vec<u8>> = (1..=7u32).map(|i| rec.insert(i, "x")).collect();
    let batch_refs: Vec<&[u8]> = batch.iter().map(|b| b.as_slice()).collect();
    append(s, &k, &batch_refs).await;
    let got = load(s, &k).await;
    assert_eq!(got.log.len(), 8, "one single append plus a 7-update call");
    assert_eq!(got.log[0], first);
    assert_eq!(
        &got.log[1..],
        batch.as_slice(),
        "every update of one call, in order"
    );
    assert_eq!(replay(&got), "axxxxxxx");
}

async fn compact_replaces_snapshot_and_drops_covered(u: &Under<'_>) {
    let s = u.store();
    let k = key("b1", DocName::Gap);
    let mut rec = Recorder::new(3);
    let words = ["Hallo", " ", "tafel", ", ", "wij", " ", "onderhandelen"];
    let mut at = 0u32;
    for w in words {
        let upd = rec.insert(at, w);
        at += w.chars().count() as u32;
        append(s, &k, &[&upd]).await;
    }
    let before = load(s, &k).await;
    let text_before = replay(&before);
    assert_eq!(text_before, "Hallo tafel, wij onderhandelen");

    // The server's compaction: snapshot of the current state, covering the first 4 entries
    // (the log still holds more, as if they arrived while the snapshot was being made).
    let snap1 = {
        let d = Doc::new();
        let mut txn = d.transact_mut();
        for upd in &rec.updates[..4] {
            txn.apply_update(Update::decode_v1(upd).expect("decode"))
                .expect("apply");
        }
        drop(txn);
        let s = d
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        s
    };
    s.compact(&k, snap1.clone(), 4).await.expect("compact");
    let after = load(s, &k).await;
    assert_eq!(
        after.snapshot.as_deref(),
        Some(snap1.as_slice()),
        "snapshot replaced"
    );
    assert_eq!(
        after.log,
        rec.updates[4..].to_vec(),
        "exactly the first 4 entries dropped"
    );
    assert_eq!(
        replay(&after),
        text_before,
        "snapshot + rest of log = same text"
    );

    // Appends after a compaction go after the remaining entries.
    let late = rec.insert(at, "!");
    append(s, &k, &[&late]).await;
    let after = load(s, &k).await;
    assert_eq!(after.log.len(), 4);
    assert_eq!(after.log.last(), Some(&late));
    assert_eq!(replay(&after), "Hallo tafel, wij onderhandelen!");

    // A second compaction replaces the snapshot again and may cover the whole log.
    let snap2 = rec.full_state();
    s.compact(&k, snap2.clone(), 4)
        .await
        .expect("second compact");
    let after = load(s, &k).await;
    assert_eq!(
        after.snapshot.as_deref(),
        Some(snap2.as_slice()),
        "second snapshot replaces the first"
    );
    assert!(after.log.is_empty(), "covering the whole log empties it");
    assert_eq!(replay(&after), rec.text());

    // An entry appended later stays after a compaction that covers 0 entries.
    let later = rec.insert(0, ">");
    append(s, &k, &[&later]).await;
    s.compact(&k, snap2.clone(), 0)
        .await
        .expect("compact covering nothing");
    let after = load(s, &k).await;
    assert_eq!(after.log, vec![later], "covered = 0 drops nothing");
    assert_eq!(replay(&after), ">Hallo tafel, wij onderhandelen!");
}

async fn compaction_of_one_doc_leaves_others(u: &Under<'_>) {
    let s = u.store();
    let a = key("b1", DocName::Canvas);
    let b = key("b1", DocName::Control);
    let mut ra = Recorder::new(4);
    let mut rb = Recorder::new(5);
    for i in 0..3u32 {
        let ua = ra.insert(i, "a");
        let ub = rb.insert(i, "b");
        append(s, &a, &[&ua]).await;
        append(s, &b, &[&ub]).await;
    }
    s.compact(&a, ra.full_state(), 3).await.expect("compact a");
    assert!(load(s, &a).await.log.is_empty());
    let got_b = load(s, &b).await;
    assert_eq!(got_b.snapshot, None);
    assert_eq!(
        got_b.log, rb.updates,
        "another document's log is not touched"
    );
}

async fn board_metas_put_get_list(u: &Under<'_>) {
    let s = u.store();
    let m1 = meta("alpha", "Eerste bord", 1_700_000_000);
    let m2 = meta("beta_2", "Tweede bord — ü", 1_700_000_100);
    s.put_board(&m1).await.expect("put 1");
    s.put_board(&m2).await.expect("put 2");
    assert_eq!(s.get_board(&m1.id).await.expect("get"), Some(m1.clone()));
    assert_eq!(s.get_board(&m2.id).await.expect("get"), Some(m2.clone()));
    assert_eq!(s.get_board(&board("gamma")).await.expect("get"), None);
    let mut all = s.list_boards().await.expect("list");
    all.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(all, vec![m1.clone(), m2.clone()]);

    // Putting again overwrites.
    let m1b = meta("alpha", "Hernoemd", 1_700_000_000);
    s.put_board(&m1b).await.expect("put again");
    assert_eq!(s.get_board(&m1.id).await.expect("get"), Some(m1b.clone()));
    assert_eq!(
        s.list_boards().await.expect("list").len(),
        2,
        "no duplicate on overwrite"
    );
}

async fn delete_board_erases_everything(u: &Under<'_>) {
    let s = u.store();
    let gone = "del-me";
    let kept = "keep-me";
    for b in [gone, kept] {
        s.put_board(&meta(b, b, 1)).await.expect("put");
        for (i, name) in DocName::ALL.into_iter().enumerate() {
            let k = key(b, name);
            let mut rec = Recorder::new(10 + i as u64);
            let u1 = rec.insert(0, "one");
            let u2 = rec.insert(3, "two");
            let u3 = rec.insert(6, "three");
            append(s, &k, &[&u1, &u2]).await;
            s.compact(&k, rec.full_state(), 1).await.expect("compact");
            append(s, &k, &[&u3]).await;
            let got = load(s, &k).await;
            assert!(
                got.snapshot.is_some() && got.log.len() == 2,
                "{k} has snapshot and log"
            );
        }
    }
    assert!(
        !u.keys_mentioning(gone).await.is_empty(),
        "precondition: keys exist"
    );

    assert!(
        s.delete_board(&board(gone)).await.expect("delete"),
        "delete reports it existed"
    );
    assert_eq!(
        u.keys_mentioning(gone).await,
        Vec::<String>::new(),
        "no key of the board remains"
    );
    assert_eq!(s.get_board(&board(gone)).await.expect("get"), None);
    for name in DocName::ALL {
        assert_eq!(
            load(s, &key(gone, name)).await,
            StoredDoc::default(),
            "{name} erased"
        );
    }
    let listed: Vec<BoardId> = s
        .list_boards()
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, vec![board(kept)]);

    // The other board is untouched.
    assert!(s.get_board(&board(kept)).await.expect("get").is_some());
    for name in DocName::ALL {
        let got = load(s, &key(kept, name)).await;
        assert!(got.snapshot.is_some(), "{kept}/{name} snapshot kept");
        assert_eq!(got.log.len(), 2, "{kept}/{name} log kept");
        assert_eq!(replay(&got), "onetwothree");
    }

    // Deleting again, or a board that never existed, reports false.
    assert!(!s.delete_board(&board(gone)).await.expect("delete again"));
    assert!(!s
        .delete_board(&board("never-was"))
        .await
        .expect("delete unknown"));

    // A board with documents but no record (e.g. a crash between the steps of a delete) is
    // still erased by a delete, which reports false.
    let orphan = key("orphan", DocName::Canvas);
    append(s, &orphan, &[&Recorder::new(99).insert(0, "x")]).await;
    assert!(!s
        .delete_board(&board("orphan"))
        .await
        .expect("delete orphan"));
    assert_eq!(load(s, &orphan).await, StoredDoc::default());
    assert!(u.keys_mentioning("orphan").await.is_empty());
}

async fn ballots_change_one_dot_at_a_time(u: &Under<'_>) {
    let s = u.store();
    let b = board("stem");
    let other = board("ander");
    s.put_board(&meta("stem", "stem", 1)).await.expect("put");
    let items = vec!["canvas/a".to_owned(), "gap/a".to_owned()];
    let legacy = vec![("t1".to_owned(), "canvas/a".to_owned(), 2)];
    assert!(s
        .put_round(&b, "r1", "open", &legacy)
        .await
        .expect("put round"));
    assert!(
        !s.put_round(&b, "r1", "closed", &[]).await.expect("again"),
        "a round's record is created once"
    );
    assert!(s.put_round(&other, "r1", "open", &[]).await.expect("other"));
    let got = s.get_ballot(&b, "r1", "t1", &items).await.expect("get");
    assert_eq!(got.status.as_deref(), Some("open"));
    assert_eq!(got.used, 2);
    assert_eq!(got.dots.get("canvas/a"), Some(&2));
    assert_eq!(got.dots.get("gap/a"), None);
    // A dot decided on the stored counts is applied ...
    assert!(s
        .change_ballot_if(&b, "r1", "t1", "gap/a", 1, 2, 0)
        .await
        .expect("vote"));
    // ... one decided on stale counts is not, and changes nothing.
    assert!(!s
        .change_ballot_if(&b, "r1", "t1", "canvas/a", 1, 2, 2)
        .await
        .expect("stale vote"));
    assert!(!s
        .change_ballot_if(&b, "r1", "t1", "canvas/a", 1, 3, 1)
        .await
        .expect("stale item"));
    let got = s.get_ballot(&b, "r1", "t1", &items).await.expect("get");
    assert_eq!((got.used, got.dots.len()), (3, 2), "{got:?}");
    // Another participant; taking a dot back down to none removes their counter.
    assert!(s
        .change_ballot_if(&b, "r1", "t2", "gap/a", 1, 0, 0)
        .await
        .expect("t2"));
    assert_eq!(
        s.round_voters(&b, &["r1".into(), "nope".into()])
            .await
            .expect("voters"),
        vec![Some(2), None]
    );
    assert!(s
        .change_ballot_if(&b, "r1", "t2", "gap/a", -1, 1, 1)
        .await
        .expect("unvote"));
    assert_eq!(
        s.round_voters(&b, &["r1".into()]).await.expect("voters"),
        vec![Some(1)]
    );
    // Closed: nothing is applied, whatever it was decided on.
    s.set_round_status(&b, "r1", "closed").await.expect("close");
    assert!(!s
        .change_ballot_if(&b, "r1", "t1", "gap/a", 1, 3, 1)
        .await
        .expect("closed"));
    let mut all = s.round_ballots(&b, "r1").await.expect("all");
    all.sort();
    assert_eq!(
        all,
        vec![
            ("t1".to_owned(), "canvas/a".to_owned(), 2),
            ("t1".to_owned(), "gap/a".to_owned(), 1)
        ]
    );
    // Erasing a participant takes their dots only; deleting the board takes the rest.
    s.change_ballot_if(&other, "r1", "t1", "gap/a", 1, 0, 0)
        .await
        .expect("other board");
    s.erase_ballots(&b, "t1", &["r1".into()])
        .await
        .expect("erase");
    assert_eq!(s.round_ballots(&b, "r1").await.expect("all"), vec![]);
    assert_eq!(
        s.round_voters(&b, &["r1".into()]).await.expect("voters"),
        vec![Some(0)]
    );
    assert!(s
        .change_ballot_if(&b, "r1", "t3", "gap/a", 1, 0, 0)
        .await
        .is_ok_and(|applied| !applied));
    s.set_round_status(&b, "r1", "open").await.expect("reopen");
    assert!(s
        .change_ballot_if(&b, "r1", "t3", "gap/a", 1, 0, 0)
        .await
        .expect("t3"));
    assert!(!u.keys_mentioning("stem").await.is_empty());
    assert!(s.delete_board(&b).await.expect("delete"));
    assert_eq!(u.keys_mentioning("stem").await, Vec::<String>::new());
    let gone = s.get_ballot(&b, "r1", "t3", &items).await.expect("get");
    assert_eq!(gone, Default::default(), "no record left");
    assert_eq!(
        s.round_ballots(&other, "r1").await.expect("other").len(),
        1,
        "the other board's ballots stay"
    );
}

async fn snapshots_put_list_get_delete(u: &Under<'_>) {
    let s = u.store();
    let (a, b) = (board("hist-a"), board("hist-b"));
    for x in [&a, &b] {
        s.put_board(&meta(x.as_str(), "h", 1))
            .await
            .expect("put board");
    }
    assert!(s.list_snapshots(&a).await.expect("list").is_empty());
    assert_eq!(s.get_snapshot(&a, "s1").await.expect("get"), None);
    let big = vec![7u8; 300_000];
    s.put_snapshot(&a, "s2", b"{\"n\":2}".to_vec(), big.clone())
        .await
        .expect("put s2");
    s.put_snapshot(&a, "s1", b"{\"n\":1}".to_vec(), b"one".to_vec())
        .await
        .expect("put s1");
    s.put_snapshot(&b, "s1", b"{\"n\":9}".to_vec(), b"other".to_vec())
        .await
        .expect("put b/s1");
    assert_eq!(
        s.list_snapshots(&a).await.expect("list"),
        vec![b"{\"n\":1}".to_vec(), b"{\"n\":2}".to_vec()],
        "in id order, only this board's"
    );
    assert_eq!(s.get_snapshot(&a, "s2").await.expect("get"), Some(big));
    assert_eq!(
        s.get_snapshot(&b, "s1").await.expect("get"),
        Some(b"other".to_vec())
    );
    // A put with the same id replaces.
    s.put_snapshot(&a, "s1", b"{\"n\":3}".to_vec(), b"three".to_vec())
        .await
        .expect("replace");
    assert_eq!(s.list_snapshots(&a).await.expect("list").len(), 2);
    assert_eq!(
        s.get_snapshot(&a, "s1").await.expect("get"),
        Some(b"three".to_vec())
    );
    assert!(s.delete_snapshot(&a, "s1").await.expect("delete"));
    assert!(!s.delete_snapshot(&a, "s1").await.expect("delete again"));
    assert_eq!(s.get_snapshot(&a, "s1").await.expect("get"), None);
    assert_eq!(s.list_snapshots(&a).await.expect("list").len(), 1);
    // Deleting the board erases its snapshots, and only its own.
    assert!(s.delete_board(&a).await.expect("delete board"));
    assert!(s.list_snapshots(&a).await.expect("list").is_empty());
    assert_eq!(s.get_snapshot(&a, "s2").await.expect("get"), None);
    assert_eq!(u.keys_mentioning("hist-a").await, Vec::<String>::new());
    assert_eq!(s.list_snapshots(&b).await.expect("list").len(), 1);
}

async fn secret_keeps_first_candidate(u: &Under<'_>) {
    let s = u.store();
    assert_eq!(
        s.get_or_init_secret("first-secret").await.expect("init"),
        "first-secret"
    );
    assert_eq!(
        s.get_or_init_secret("second-secret").await.expect("again"),
        "first-secret"
    );
    assert_eq!(
        s.get_or_init_secret("first-secret").await.expect("again"),
        "first-secret"
    );
}

async fn concurrent_appends_all_land(s: Arc<dyn Store>) {
    // 50 tasks, each appending to its own document...
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let k = key(&format!("g{i}"), DocName::Canvas);
            let mut rec = Recorder::new(1000 + i);
            let upd = rec.insert(0, &format!("doc {i}"));
            s.append(&k, &[Bytes::from(upd.clone())])
                .await
                .map(|()| (k, upd))
        }));
    }
    // ...and 50 more all appending to one shared document at once.
    let shared = key("shared", DocName::Gap);
    let mut shared_tasks = Vec::new();
    for i in 0..50u64 {
        let s = s.clone();
        let shared = shared.clone();
        shared_tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::new(2000 + i);
            let upd = rec.insert(0, "s");
            s.append(&shared, &[Bytes::from(upd.clone())])
                .await
                .map(|()| upd)
        }));
    }
    let started = Instant::now();
    let mut written = Vec::new();
    for t in tasks {
        written.push(t.await.expect("task").expect("concurrent append succeeds"));
    }
    let mut shared_written = Vec::new();
    for t in shared_tasks {
        shared_written.push(t.await.expect("task").expect("concurrent append succeeds"));
    }
    eprintln!("100 concurrent appends took {:?}", started.elapsed());
    for (k, upd) in written {
        let got = load(&*s, &k).await;
        assert_eq!(got.log, vec![upd], "{k} holds its one update");
    }
    let mut got = load(&*s, &shared).await.log;
    got.sort();
    shared_written.sort();
    assert_eq!(
        got, shared_written,
        "all 50 appends to the shared doc landed, each once"
    );
    assert_eq!(
        replay(&StoredDoc {
            snapshot: None,
            log: got
        })
        .len(),
        50
    );
}

// ---------------------------------------------------------------------------------------------
// The suite, generated for both stores.
// ---------------------------------------------------------------------------------------------

macro_rules! conformance {
    ($($(#[doc = $doc:expr])+ $name:ident),+ $(,)?) => {
        mod on_redb {
            use super::*;
            $(
                $(#[doc = $doc])+
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let store = RedbStore::open(dir.path()).await.expect("open redb");
                    super::$name(&Under::Redb(&store)).await;
                }
            )+
        }
        mod on_redis {
            use super::*;
            $(
                $(#[doc = $doc])+
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let redis = Redis::start();
                    let store = RedisStore::open(&redis.url()).await.expect("open redis");
                    super::$name(&Under::Redis(&store)).await;
                }
            )+
        }
    };
}

conformance! {
    /// Loading a document nobody wrote returns no snapshot and an empty log (not an error), and
    /// a fresh store has no boards.
    empty_load_of_unknown_doc,
    /// Updates appended one call at a time load back byte-for-byte in append order, and only
    /// in the document they were appended to.
    append_then_load_in_order,
    /// One append call with several updates stores all of them, in order, after what was there;
    /// an empty call is a harmless no-op.
    append_many_in_one_call,
    /// `compact(snapshot, covered)` replaces the snapshot and drops exactly the first `covered`
    /// log entries; later entries stay; snapshot + rest of the log replays (in a real yrs doc)
    /// to the same text as before the compaction; later appends land after the rest.
    compact_replaces_snapshot_and_drops_covered,
    /// Compacting one document does not touch another document's log.
    compaction_of_one_doc_leaves_others,
    /// Board records round-trip through put/get/list; an unknown board is `None`; a second put
    /// overwrites instead of duplicating.
    board_metas_put_get_list,
    /// `delete_board` removes the board record and every document's log and snapshot (no key
    /// mentioning the board is left), leaves other boards alone, and returns true only when the
    /// board existed; documents of a board without a record are erased too.
    delete_board_erases_everything,
    /// Ballots: a round's record is created once (with ballots moved from an older state); a
    /// dot is applied only while the round is open and the participant's counts are what it
    /// was decided on; voters and every dot count read back; erasing a participant takes only
    /// their dots and deleting the board every ballot record (no key mentions it), not another
    /// board's.
    ballots_change_one_dot_at_a_time,
    /// `get_or_init_secret` keeps the first candidate and returns it for every later, different
    /// candidate.
    secret_keeps_first_candidate,
    /// Snapshots (history) round-trip through put/list/get/delete per board, a put with the same
    /// id replaces, and deleting the board erases its snapshots (no key mentions it) but not
    /// another board's.
    snapshots_put_list_get_delete,
}

// ---------------------------------------------------------------------------------------------
// Concurrency.
// ---------------------------------------------------------------------------------------------

/// Group commit on redb: 50 concurrent appends from tokio tasks to 50 different documents, plus
/// 50 concurrent appends to one shared document, all succeed and every update is loadable
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_group_commit_concurrent_appends() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(RedbStore::open(dir.path()).await.expect("open redb"));
    concurrent_appends_all_land(store).await;
}

/// The same concurrency check on Redis (one multiplexed connection shared by all tasks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent_appends() {
    let redis = Redis::start();
    let store = Arc::new(RedisStore::open(&redis.url()).await.expect("open redis"));
    concurrent_appends_all_land(store).await;
}

// ---------------------------------------------------------------------------------------------
// Persistence and outages.
// ---------------------------------------------------------------------------------------------

/// Writes the same data set into a store: a compacted document with a log, a board, a secret.
async fn write_fixture(s: &dyn Store) -> (DocKey, Recorder) {
    let k = key("persist", DocName::Canvas);
    let mut rec = Recorder::new(7);
    let u1 = rec.insert(0, "blijft ");
    let u2 = rec.insert(7, "bewaard");
    append(s, &k, &[&u1, &u2]).await;
    s.compact(&k, rec.full_state(), 2).await.expect("compact");
    let u3 = rec.insert(14, "!");
    append(s, &k, &[&u3]).await;
    s.put_board(&meta("persist", "Blijvend", 42))
        .await
        .expect("put board");
    assert_eq!(
        s.get_or_init_secret("kept-secret").await.expect("secret"),
        "kept-secret"
    );
    (k, rec)
}

async fn check_fixture(s: &dyn Store, k: &DocKey, rec: &Recorder) {
    let got = load(s, k).await;
    assert!(got.snapshot.is_some(), "snapshot survived");
    assert_eq!(
        got.log,
        rec.updates[2..].to_vec(),
        "log after the snapshot survived"
    );
    assert_eq!(replay(&got), "blijft bewaard!");
    assert_eq!(
        s.get_board(&board("persist")).await.expect("get board"),
        Some(meta("persist", "Blijvend", 42))
    );
    assert_eq!(
        s.get_or_init_secret("other").await.expect("secret"),
        "kept-secret"
    );
}

/// redb: everything acknowledged is still there after the store is dropped and the same folder
/// is opened again (also proves the writer thread releases the database file on drop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_survives_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path()).await.expect("open redb");
    let (k, rec) = write_fixture(&store).await;
    drop(store);

    // The writer thread notices the dropped sender asynchronously; give it a moment if the
    // file is still locked, and say so.
    let started = Instant::now();
    let mut first_error = None;
    let store = loop {
        match RedbStore::open(dir.path()).await {
            Ok(s) => break s,
            Err(e) if started.elapsed() < Duration::from_secs(5) => {
                first_error.get_or_insert(e);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("reopening redb failed for 5 s: {e}"),
        }
    };
    if let Some(e) = first_error {
        eprintln!(
            "note: immediate reopen failed ({e}); succeeded after {:?}",
            started.elapsed()
        );
    }
    check_fixture(&store, &k, &rec).await;

    // And it keeps working: appends continue after the surviving entries.
    let mut rec = rec;
    let u4 = rec.insert(15, "?");
    append(&store, &k, &[&u4]).await;
    assert_eq!(replay(&load(&store, &k).await), "blijft bewaard!?");
}

/// redb: dropping a `RedbStore` releases its database file, so the same folder can be opened
/// again right away (what a restart inside one process, or a test, does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_reopens_immediately_after_drop() {
    let dir = tempfile::tempdir().expect("temp dir");
    for round in 0..5 {
        let store = RedbStore::open(dir.path())
            .await
            .unwrap_or_else(|e| panic!("open #{round} right after the previous drop: {e}"));
        append(&store, &key("b1", DocName::Canvas), &[b"x"]).await;
        drop(store);
    }
}

/// Redis: data acknowledged before a SIGKILL of redis-server (AOF, fsync always) is there after
/// it restarts; while it is down `ping` and `append` fail with `Unavailable` within a few seconds
/// instead of hanging; and the same `RedisStore` instance reconnects by itself afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_survives_restart_and_reconnects() {
    let mut redis = Redis::start();
    let store = RedisStore::open(&redis.url()).await.expect("open redis");
    let (k, rec) = write_fixture(&store).await;
    check_fixture(&store, &k, &rec).await;

    redis.kill();

    let started = Instant::now();
    let ping = tokio::time::timeout(Duration::from_secs(15), store.ping())
        .await
        .expect("ping hung for 15 s while Redis was down");
    let ping_took = started.elapsed();
    assert!(
        matches!(ping, Err(StoreError::Unavailable(_))),
        "ping while down: {ping:?}"
    );
    let started = Instant::now();
    let extra = Recorder::new(8).insert(0, "x");
    let appended =
        tokio::time::timeout(Duration::from_secs(15), store.append(&k, &[bytes(&extra)]))
            .await
            .expect("append hung for 15 s while Redis was down");
    let append_took = started.elapsed();
    assert!(
        matches!(appended, Err(StoreError::Unavailable(_))),
        "append while down: {appended:?}"
    );
    let load_down = tokio::time::timeout(Duration::from_secs(15), store.load(&k))
        .await
        .expect("load hung while Redis was down");
    assert!(
        matches!(load_down, Err(StoreError::Unavailable(_))),
        "load while down: {load_down:?}"
    );
    eprintln!("while down: ping failed after {ping_took:?}, append after {append_took:?}");
    assert!(
        ping_took < Duration::from_secs(8),
        "ping took {ping_took:?} to fail"
    );
    assert!(
        append_took < Duration::from_secs(8),
        "append took {append_took:?} to fail"
    );

    redis.restart();
    let started = Instant::now();
    retry(Duration::from_secs(10), || store.ping())
        .await
        .expect("the same RedisStore answers ping again within 10 s of the restart");
    eprintln!("reconnected {:?} after restart", started.elapsed());

    check_fixture(&store, &k, &rec).await;
    // The failed append left nothing behind, and appends work again on the same instance.
    let mut rec = rec;
    let u4 = rec.insert(15, "?");
    append(&store, &k, &[&u4]).await;
    let got = load(&store, &k).await;
    assert_eq!(
        got.log.len(),
        2,
        "the append refused while down was not stored"
    );
    assert_eq!(replay(&got), "blijft bewaard!?");
}
