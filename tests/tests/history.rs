//! History: named and automatic snapshots, listed, opened read-only, compared with the present
//! in words and restored as a new state through the server's edit path; each role sees a
//! snapshot only as it may see the board now; deleting the board erases its snapshots.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tafel_protocol::Role;
use tafel_tests::api::{call, control, create_board, facilitator, token};
use tafel_tests::client::YClient;
use tafel_tests::procs::Tafel;

const T: Duration = Duration::from_secs(10);

async fn connect(t: &Tafel, board: &str, doc: &str, tok: &str) -> YClient {
    YClient::connect_synced(&t.ws_url(board, doc, tok)).await
}

/// Adds a gap row with several text fields in one update.
fn add_row(c: &YClient, id: &str, priority: i64, texts: &[(&str, &str)]) {
    c.edit(|doc| {
        use yrs::{Map, Transact};
        let rows = doc.get_or_insert_map("rows");
        let mut txn = doc.transact_mut();
        let row = rows.insert(
            &mut txn,
            id,
            yrs::MapPrelim::from_iter([("priority".to_owned(), yrs::In::Any(priority.into()))]),
        );
        for (field, text) in texts {
            row.insert(&mut txn, *field, yrs::TextPrelim::new(*text));
        }
    });
}

async fn snapshots(t: &Tafel, board: &str, tok: &str) -> (u16, Value) {
    call(
        t,
        Method::GET,
        &format!("/api/boards/{board}/snapshots"),
        tok,
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_list_open_compare_restore() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let fac = token(Role::Facilitator, &board, "fac-1");
    let wg_tok = token(Role::Employer, &board, "wg-1");
    let f = connect(&t, &board, "canvas", &fac).await;
    f.add_card("k1", "themas", "Nachtdiensten", json!({}));
    f.add_card("k2", "bouwstenen", "Ontwikkelbudget", json!({}));
    f.add_card("h1", "themas", "VERBORGEN-LATER", json!({}));
    let g = connect(&t, &board, "gap", &fac).await;
    add_row(&g, "r1", 1, &[("onderwerp", "Werkdruk"), ("huidig", "")]);
    for id in ["k1", "k2", "h1"] {
        assert!(tafel_tests::eventually(T, || f.items("cards")[id]["owner"].is_string()).await);
    }
    assert!(tafel_tests::eventually(T, || g.items("rows")["r1"]["owner"].is_string()).await);

    // Hostile: only the facilitator takes one; an invite token and other boards are refused.
    let path = format!("/api/boards/{board}/snapshots");
    let body = Some(json!({"name": "Na stap 3"}));
    for tok in [
        wg_tok.clone(),
        token(Role::Observer, &board, "o"),
        token(Role::Facilitator, "otherboard1", "f"),
    ] {
        let (s, _) = call(&t, Method::POST, &path, &tok, body.clone()).await;
        assert_eq!(s, 403);
    }
    let (s, inv) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/invites"),
        &facilitator(),
        Some(json!({"role": "union"})),
    )
    .await;
    assert_eq!(s, 200);
    let invite = inv["token"].as_str().unwrap().to_owned();
    let (s, _) = call(&t, Method::POST, &path, &invite, body.clone()).await;
    assert_eq!(s, 403);
    let (s, _) = snapshots(&t, &board, &invite).await;
    assert_eq!(s, 403);
    let (s, _) = call(&t, Method::POST, &path, &fac, Some(json!({"name": "  "}))).await;
    assert_eq!(s, 400);
    // Positive control.
    let (s, made) = call(&t, Method::POST, &path, &fac, body).await;
    assert_eq!(s, 201, "{made}");
    let snap = made["id"].as_str().unwrap().to_owned();
    assert!(made["bytes"].as_u64().unwrap() > 0);

    // Automatic: a step change takes one.
    let (s, _) = control(&t, &board, json!({"action": "step", "step": "4"})).await;
    assert_eq!(s, 200);
    let (s, list) = snapshots(&t, &board, &wg_tok).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Na stap 3", "Stap 4: Bouwstenen en gap-analyse"],
        "{list}"
    );
    assert_eq!(list[1]["auto"], true);
    let (_, _) = control(&t, &board, json!({"action": "step", "step": "4"})).await;
    let (_, list) = snapshots(&t, &board, &wg_tok).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "the same step again is no change"
    );

    // Change the board after the snapshot: k1 removed, k2 edited, k3 added, row edited, h1 hidden.
    f.remove_item("cards", "k1");
    f.append_item_text("cards", "k2", "text", " voor iedereen");
    f.add_card("k3", "themas", "Werkdruk", json!({}));
    g.append_item_text("rows", "r1", "huidig", "hoog");
    assert!(tafel_tests::eventually(T, || f.items("cards")["k3"]["owner"].is_string()).await);
    let (s, _) = control(&t, &board, json!({"action": "hide", "card": "h1"})).await;
    assert_eq!(s, 200);

    // Opened read-only: a participant sees the snapshot without owner tags and without the
    // card that is hidden now; the facilitator sees owner tags.
    let open = format!("/api/boards/{board}/snapshots/{snap}");
    let (s, v) = call(&t, Method::GET, &open, &wg_tok, None).await;
    assert_eq!(s, 200, "{v}");
    let cards = &v["documents"]["canvas"]["cards"];
    assert_eq!(cards["k1"]["text"], "Nachtdiensten");
    assert_eq!(cards["k2"]["text"], "Ontwikkelbudget");
    assert!(cards.get("h1").is_none(), "hidden now: not shown");
    assert!(!v.to_string().contains("VERBORGEN-LATER"));
    assert!(cards["k1"].get("owner").is_none());
    let (_, v) = call(&t, Method::GET, &open, &fac, None).await;
    assert!(v["documents"]["canvas"]["cards"]["k1"]["owner"].is_string());
    let (s, _) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/snapshots/nope"),
        &fac,
        None,
    )
    .await;
    assert_eq!(s, 404);

    // Compared with the present, in words.
    let (s, cmp) = call(&t, Method::GET, &format!("{open}/compare"), &wg_tok, None).await;
    assert_eq!(s, 200, "{cmp}");
    let texts: Vec<&str> = cmp["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    for want in [
        "Thema's: verwijderd: “Nachtdiensten”",
        "Thema's: toegevoegd: “Werkdruk”",
        "Bouwstenen: “Ontwikkelbudget voor iedereen”: tekst gewijzigd (was “Ontwikkelbudget”)",
        "Gap-analyse: “Werkdruk”: huidige situatie gewijzigd",
    ] {
        assert!(texts.contains(&want), "{want:?} not in {texts:?}");
    }
    assert!(!cmp.to_string().contains("VERBORGEN-LATER"));
    assert_eq!(
        (cmp["added"].as_u64(), cmp["removed"].as_u64()),
        (Some(1), Some(1))
    );

    // Restore: facilitator only.
    let restore = format!("{open}/restore");
    for tok in [wg_tok.clone(), invite.clone()] {
        let (s, _) = call(&t, Method::POST, &restore, &tok, None).await;
        assert_eq!(s, 403);
    }
    let (s, r) = call(&t, Method::POST, &restore, &fac, None).await;
    assert_eq!(s, 200, "{r}");
    // A connected participant receives the restored state live.
    let w = connect(&t, &board, "canvas", &wg_tok).await;
    assert!(
        tafel_tests::eventually(T, || {
            let c = f.items("cards");
            c["k1"]["text"] == "Nachtdiensten"
                && c["k2"]["text"] == "Ontwikkelbudget"
                && c.get("k3").is_none()
        })
        .await,
        "restored on the facilitator's replica: {}",
        f.items("cards")
    );
    assert!(tafel_tests::eventually(T, || w.items("cards")["k1"]["text"] == "Nachtdiensten").await);
    assert!(
        tafel_tests::eventually(T, || g.items("rows")["r1"]["huidig"] == "").await,
        "{}",
        g.items("rows")
    );
    assert!(
        f.items("cards").get("h1").is_none(),
        "the hidden card stays hidden"
    );
    // The restore kept history: an automatic snapshot of the state before it, which still
    // holds k3, and nothing left to compare with the restored snapshot.
    let (_, list) = snapshots(&t, &board, &fac).await;
    let before = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == r["before"])
        .expect("before")
        .clone();
    assert_eq!(before["auto"], true);
    let (_, v) = call(
        &t,
        Method::GET,
        &format!(
            "/api/boards/{board}/snapshots/{}",
            before["id"].as_str().unwrap()
        ),
        &fac,
        None,
    )
    .await;
    assert_eq!(v["documents"]["canvas"]["cards"]["k3"]["text"], "Werkdruk");
    let (_, cmp) = call(&t, Method::GET, &format!("{open}/compare"), &fac, None).await;
    assert_eq!(cmp["changes"], json!([]), "{cmp}");
    // Restored items are the board's content again: a participant still edits what they may.
    w.add_card("w1", "bouwstenen", "nieuw na herstel", json!({}));
    assert!(tafel_tests::eventually(T, || w.items("cards")["w1"]["owner"].is_string()).await);

    // The audit log records the snapshot and the restore.
    let (_, audit) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/audit"),
        &fac,
        None,
    )
    .await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"snapshot") && actions.contains(&"snapshot-restore"),
        "{actions:?}"
    );
}

/// Deleting a board deletes its snapshots: no key of it remains in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_board_erases_its_snapshots() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let fac = token(Role::Facilitator, &board, "fac-1");
    let f = connect(&t, &board, "canvas", &fac).await;
    f.add_card("k1", "themas", "UNIEKE-SNAPSHOT-TEKST", json!({}));
    assert!(tafel_tests::eventually(T, || f.items("cards")["k1"]["owner"].is_string()).await);
    let (s, _) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/snapshots"),
        &fac,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(s, 201);
    f.close();
    let needle = b"UNIEKE-SNAPSHOT-TEKST";
    let file = std::fs::read(t.data_dir().join("tafel.redb")).expect("store file");
    assert!(
        file.windows(needle.len()).any(|w| w == needle),
        "positive control: the text is in the store file before the delete"
    );
    let (s, _) = call(
        &t,
        Method::DELETE,
        &format!("/api/boards/{board}"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = snapshots(&t, &board, &facilitator()).await;
    assert_eq!(s, 404);
    let mut t = t;
    t.terminate();
    let file = std::fs::read(t.data_dir().join("tafel.redb")).expect("store file");
    assert!(
        !file.windows(needle.len()).any(|w| w == needle),
        "snapshot bytes left in the store file"
    );
}

/// The cost of one snapshot on a workshop-sized board (200 cards of ~100 characters, 40 gap
/// rows with five texts): its stored size against the raw text it holds, and the time the
/// facilitator waits for it. Printed for docs/api.md; bounded so a regression shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_cost_on_a_workshop_sized_board() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let fac = token(Role::Facilitator, &board, "fac-1");
    let f = connect(&t, &board, "canvas", &fac).await;
    let g = connect(&t, &board, "gap", &fac).await;
    let mut raw = 0usize;
    for i in 0..200 {
        let text = format!("Kaart {i:03}: {}", "nachtdiensten en roosters ".repeat(4));
        raw += text.len();
        f.add_card(
            &format!("c{i}"),
            "themas",
            &text,
            json!({"pijlers": ["gezondheid"]}),
        );
    }
    for i in 0..40 {
        let text = format!("Onderwerp {i:02}: {}", "werkdruk ".repeat(6));
        raw += text.len() * 5;
        let texts: Vec<(&str, &str)> = ["onderwerp", "huidig", "gewenst", "gap", "oplossingen"]
            .into_iter()
            .map(|f| (f, text.as_str()))
            .collect();
        add_row(&g, &format!("r{i}"), i, &texts);
    }
    assert!(
        tafel_tests::eventually(Duration::from_secs(30), || f.items("cards")["c199"]
            ["owner"]
            .is_string())
        .await
    );
    assert!(
        tafel_tests::eventually(Duration::from_secs(30), || g.items("rows")["r39"]
            ["oplossingen"]
            .as_str()
            .is_some_and(|s| !s.is_empty()))
        .await
    );
    let mut sizes = Vec::new();
    let mut times = Vec::new();
    for n in 0..5 {
        let started = std::time::Instant::now();
        let (s, made) = call(
            &t,
            Method::POST,
            &format!("/api/boards/{board}/snapshots"),
            &fac,
            Some(json!({"name": format!("meting {n}")})),
        )
        .await;
        times.push(started.elapsed());
        assert_eq!(s, 201);
        sizes.push(made["bytes"].as_u64().unwrap() as usize);
    }
    let bytes = sizes[0];
    times.sort();
    let median = times[2];
    eprintln!(
        "snapshot cost: {bytes} bytes stored for {raw} bytes of text (×{:.2}), median {:?} per snapshot over 5",
        bytes as f64 / raw as f64,
        median
    );
    assert!(
        sizes.iter().all(|s| *s == bytes),
        "unchanged board, same size: {sizes:?}"
    );
    assert!(bytes >= raw, "the states hold all text");
    assert!(bytes < raw * 4, "{bytes} bytes for {raw} bytes of text");
    assert!(median < Duration::from_secs(5), "{median:?}");
}

/// A snapshot holds the whole board: the monitoring plan's indicator cards with their measured
/// values, and the three party workspaces — each party sees only its own in an opened snapshot
/// and a comparison, the facilitator all three; a restore writes them all back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_hold_monitoring_and_party_workspaces() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let fac = token(Role::Facilitator, &board, "fac-1");
    let wg = token(Role::Employer, &board, "wg-1");
    let vb = token(Role::Union, &board, "vb-1");
    let f = connect(&t, &board, "canvas", &fac).await;
    f.add_card("a1", "bouwstenen", "Ontwikkelbudget", json!({}));
    f.add_card(
        "i1",
        "monitoring",
        "Gebruik ontwikkelbudget",
        json!({"afspraak": "a1", "soort": "kwantitatief", "nulmeting": "12%",
               "streefwaarde": "40%", "meetmomenten": ["halverwege", "einde cao"],
               "status": "loopt", "metingen": [{"moment": "halverwege", "waarde": "25%"}]}),
    );
    let u = connect(&t, &board, "party-union", &vb).await;
    u.add_card("u1", "themas", "VAKBOND-NOTITIE", json!({}));
    let e = connect(&t, &board, "party-employer", &wg).await;
    e.add_card("e1", "themas", "WERKGEVER-NOTITIE", json!({}));
    assert!(tafel_tests::eventually(T, || f.items("cards")["i1"]["owner"].is_string()).await);
    // Both party notes are on the server before the snapshot: the facilitator's replicas of
    // the workspaces have them (forwarded means stored).
    let fu = connect(&t, &board, "party-union", &fac).await;
    let fe = connect(&t, &board, "party-employer", &fac).await;
    assert!(tafel_tests::eventually(T, || fu.items("cards").get("u1").is_some()).await);
    assert!(tafel_tests::eventually(T, || fe.items("cards").get("e1").is_some()).await);
    let path = format!("/api/boards/{board}/snapshots");
    let (s, made) = call(
        &t,
        Method::POST,
        &path,
        &fac,
        Some(json!({"name": "Na stap 6"})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let open = format!("{path}/{}", made["id"].as_str().unwrap());

    // Opened: the union sees its own workspace and the monitoring plan, not the employer's
    // workspace; the employer the reverse; the facilitator all three.
    let (s, v) = call(&t, Method::GET, &open, &vb, None).await;
    assert_eq!(s, 200, "{v}");
    let docs = v["documents"].as_object().unwrap();
    assert_eq!(
        v["documents"]["party-union"]["cards"]["u1"]["text"],
        "VAKBOND-NOTITIE"
    );
    assert!(!docs.contains_key("party-employer") && !docs.contains_key("party-employee"));
    assert!(!v.to_string().contains("WERKGEVER-NOTITIE"));
    assert!(
        v["documents"]["canvas"]["themes"]
            .as_object()
            .is_some_and(|t| !t.is_empty()),
        "the board's themes then: {v}"
    );
    let i1 = &v["documents"]["canvas"]["cards"]["i1"];
    assert_eq!(
        i1["metingen"],
        json!([{"moment": "halverwege", "waarde": "25%"}])
    );
    assert_eq!(i1["streefwaarde"], "40%");
    let (_, v) = call(&t, Method::GET, &open, &wg, None).await;
    assert!(!v.to_string().contains("VAKBOND-NOTITIE"), "{v}");
    assert_eq!(
        v["documents"]["party-employer"]["cards"]["e1"]["text"],
        "WERKGEVER-NOTITIE"
    );
    let (_, v) = call(
        &t,
        Method::GET,
        &open,
        &token(Role::Observer, &board, "o"),
        None,
    )
    .await;
    assert!(
        v["documents"].get("party-union").is_none() && v["documents"]["canvas"].is_object(),
        "an observer has no workspace: {v}"
    );
    let (_, v) = call(&t, Method::GET, &open, &fac, None).await;
    for doc in [
        "canvas",
        "gap",
        "party-employer",
        "party-union",
        "party-employee",
    ] {
        assert!(v["documents"].get(doc).is_some(), "{doc} in {v}");
    }

    // Changed after the snapshot: a measured value, the status, and both party notes removed.
    f.set_item_field(
        "cards",
        "i1",
        "metingen",
        json!([{"moment": "halverwege", "waarde": "25%"}, {"moment": "einde cao", "waarde": "38%"}]),
    );
    f.set_item_field("cards", "i1", "status", json!("op-koers"));
    // The facilitator adds a theme of the board's own (the canvas's `themes`).
    f.edit(|doc| {
        use yrs::{Map, Transact};
        let themes = doc.get_or_insert_map("themes");
        let mut txn = doc.transact_mut();
        let v: yrs::Any =
            serde_json::from_value(json!({"name": "Werkdruk", "description": ""})).unwrap();
        themes.insert(&mut txn, "werkdruk-nieuw", v);
    });
    u.remove_item("cards", "u1");
    e.remove_item("cards", "e1");
    assert!(tafel_tests::eventually(T, || fu.items("cards").get("u1").is_none()).await);
    assert!(tafel_tests::eventually(T, || fe.items("cards").get("e1").is_none()).await);
    let wants = [
        "Monitoring en evaluatie: “Gebruik ontwikkelbudget”: status, gemeten waarden gewijzigd",
        "Werkruimte vakbond: verwijderd: “VAKBOND-NOTITIE”",
        "Thema's van het bord: toegevoegd: “Werkdruk”",
    ];
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let (_, cmp) = call(&t, Method::GET, &format!("{open}/compare"), &vb, None).await;
        let texts: Vec<&str> = cmp["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["text"].as_str().unwrap())
            .collect();
        if wants.iter().all(|w| texts.contains(w)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{wants:?} not in {texts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Hostile: the employer's comparison does not tell what the union's workspace held.
    let (_, cmp) = call(&t, Method::GET, &format!("{open}/compare"), &wg, None).await;
    assert!(!cmp.to_string().contains("VAKBOND-NOTITIE"), "{cmp}");
    assert!(cmp.to_string().contains("WERKGEVER-NOTITIE"), "{cmp}");

    // Restore brings the measured values and both workspaces back, live.
    let (s, r) = call(&t, Method::POST, &format!("{open}/restore"), &fac, None).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["counts"]["party-union"]["recreated"], 1, "{r}");
    assert!(
        tafel_tests::eventually(T, || u.items("cards")["u1"]["text"] == "VAKBOND-NOTITIE").await
    );
    assert!(
        tafel_tests::eventually(T, || e.items("cards")["e1"]["text"] == "WERKGEVER-NOTITIE").await
    );
    assert!(
        tafel_tests::eventually(T, || f.items("cards")["i1"]["status"] == "loopt").await,
        "{}",
        f.items("cards")
    );
    assert_eq!(
        f.items("cards")["i1"]["metingen"],
        json!([{"moment": "halverwege", "waarde": "25%"}])
    );
    assert!(
        tafel_tests::eventually(T, || f.map_json("themes").get("werkdruk-nieuw").is_none()).await,
        "the theme added since is gone again: {}",
        f.map_json("themes")
    );
    let (_, cmp) = call(&t, Method::GET, &format!("{open}/compare"), &fac, None).await;
    assert_eq!(cmp["changes"], json!([]), "nothing left to compare: {cmp}");
}
