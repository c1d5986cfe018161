//! From workshop to advice: the export endpoint's formats (the advice report as Markdown and
//! printable HTML, the CSV tables) per role, and importing a facilitator's JSON export into
//! another server. Each test function stands alone (its own servers and board).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tafel_protocol::Role;
use tafel_tests::api::{call, call_text, control, create_board, facilitator, named_token, token};
use tafel_tests::client::YClient;
use tafel_tests::procs::Tafel;

const T: Duration = Duration::from_secs(10);

async fn connect(t: &Tafel, board: &str, doc: &str, tok: &str) -> YClient {
    YClient::connect_synced(&t.ws_url(board, doc, tok)).await
}

/// A GET with a token: status, content type, body text.
async fn get_text(t: &Tafel, path: &str, tok: &str) -> (u16, String, String) {
    call_text(t, Method::GET, path, tok).await
}

/// Joins through a fresh invite for `role`; answers the personal token.
async fn join(t: &Tafel, board: &str, role: &str, name: &str) -> String {
    let (s, inv) = call(
        t,
        Method::POST,
        &format!("/api/boards/{board}/invites"),
        &facilitator(),
        Some(json!({"role": role})),
    )
    .await;
    assert_eq!(s, 200, "{inv}");
    let invite = inv["token"].as_str().expect("invite token").to_owned();
    let (s, me) = call(
        t,
        Method::POST,
        &format!("/api/boards/{board}/join"),
        &invite,
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(s, 200, "{me}");
    me["token"].as_str().expect("token").to_owned()
}

/// A board with content from several roles: a doel and an aanbeveling by the facilitator, an
/// employee's round-table card (stap 3B), an employer's gap row, a bouwsteen, and a card the
/// facilitator hid. Answers the board id and the employee's personal token.
async fn workshop_board(t: &Tafel) -> (String, String) {
    let board = create_board(t).await;
    let fac = token(Role::Facilitator, &board, "fac-1");
    let emp = named_token(Role::Employee, &board, "emp-sanne", "Sanne de Vries");
    let wg = named_token(Role::Employer, &board, "wg-1", "Willem Werkgever");
    let f = connect(t, &board, "canvas", &fac).await;
    f.add_card(
        "d1",
        "doel",
        "Gezond en met plezier werken tot de AOW",
        json!({}),
    );
    f.add_card(
        "a1",
        "aanbevelingen",
        "Start in 2027 met een pilot DI-uren",
        json!({}),
    );
    f.add_card("h1", "themas", "GEHEIM-VERBORGEN kaart", json!({}));
    f.add_card(
        "m1",
        "monitoring",
        "Gebruik ontwikkelbudget per jaar",
        json!({"soort": "kwantitatief", "nulmeting": "12%", "streefwaarde": "40%",
               "meetmomenten": ["halverwege", "einde cao"], "verzamelt": "HR", "status": "op-koers",
               "metingen": [{"moment": "halverwege", "waarde": "25%"}]}),
    );
    let e = connect(t, &board, "canvas", &emp).await;
    e.add_card(
        "e1",
        "themas",
        "Nachtdiensten na je 55e zijn zwaar",
        json!({"stap": "3B", "pijlers": ["gezondheid"]}),
    );
    let w = connect(t, &board, "canvas", &wg).await;
    w.add_card(
        "b1",
        "bouwstenen",
        "Persoonlijk ontwikkelbudget",
        json!({"type": "versterkend"}),
    );
    let g = connect(t, &board, "gap", &wg).await;
    g.add_item(
        "rows",
        "r1",
        json!({"partijen": ["OR", "HR"], "priority": 1}),
        "onderwerp",
        "Werkdruk; roosters \"te laat\"",
    );
    for id in ["d1", "a1", "h1", "e1", "b1", "m1"] {
        assert!(
            tafel_tests::eventually(T, || f.items("cards")[id]["owner"].is_string()).await,
            "card {id} not stamped"
        );
    }
    assert!(tafel_tests::eventually(T, || g.items("rows")["r1"]["owner"].is_string()).await);
    let (s, _) = control(t, &board, json!({"action": "author-mode", "mode": "name"})).await;
    assert_eq!(s, 200);
    let (s, _) = control(t, &board, json!({"action": "hide", "card": "h1"})).await;
    assert_eq!(s, 200);
    (board, emp)
}

/// md, html and csv for every role: the five sections, the content the role may read, and
/// never a hidden item, an owner tag, an author or an employee's name or pseudonym.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_formats_per_role_show_only_what_the_role_may_see() {
    let t = Tafel::start_embedded();
    let (board, emp) = workshop_board(&t).await;
    let fac = token(Role::Facilitator, &board, "fac-1");
    let (_, _, json_fac) = get_text(&t, &format!("/api/boards/{board}/export"), &fac).await;
    let owners: Vec<String> = serde_json::from_str::<Value>(&json_fac).expect("json")["documents"]
        ["canvas"]["cards"]
        .as_object()
        .expect("cards")
        .values()
        .filter_map(|c| c["owner"].as_str().map(str::to_owned))
        .collect();
    assert!(owners.len() >= 5, "owner tags in the facilitator's export");
    let roles = [
        ("facilitator", fac.clone()),
        ("employer", token(Role::Employer, &board, "wg-2")),
        ("union", token(Role::Union, &board, "vb-1")),
        ("employee", emp.clone()),
        ("observer", token(Role::Observer, &board, "obs-1")),
    ];
    for (role, tok) in &roles {
        for (query, ctype) in [
            ("format=md", "text/markdown"),
            ("format=html", "text/html"),
            ("format=csv", "text/csv"),
            ("format=csv&table=gap", "text/csv"),
            ("format=csv&table=monitoring", "text/csv"),
        ] {
            let (s, ct, body) =
                get_text(&t, &format!("/api/boards/{board}/export?{query}"), tok).await;
            assert_eq!(s, 200, "{role} {query}: {body}");
            assert!(ct.starts_with(ctype), "{role} {query}: {ct}");
            for never in [
                "GEHEIM-VERBORGEN",
                "Sanne",
                "Medewerker 1",
                "Willem",
                "emp-sanne",
                "fac-1",
            ] {
                assert!(
                    !body.contains(never),
                    "{role} {query} shows {never:?}:\n{body}"
                );
            }
            for tag in &owners {
                assert!(
                    !body.contains(tag.as_str()),
                    "{role} {query} shows an owner tag"
                );
            }
            if query.starts_with("format=csv") {
                assert!(body.starts_with('\u{feff}'), "{role} {query}: no BOM");
            }
        }
        let (_, _, md) = get_text(&t, &format!("/api/boards/{board}/export?format=md"), tok).await;
        for want in [
            "## 1 Inleiding",
            "## 2 Samenvatting van de analyse",
            "## 3 Prioriteiten en bouwstenen",
            "## 4 Aanbevelingen",
            "## 5 Bijlagen",
            "Gezond en met plezier werken tot de AOW",
            "Start in 2027 met een pilot DI-uren",
            "Nachtdiensten na je 55e zijn zwaar",
            "Persoonlijk ontwikkelbudget",
            "Werkdruk; roosters \"te laat\"",
        ] {
            assert!(md.contains(want), "{role}: {want:?} missing in\n{md}");
        }
        let (_, _, html) =
            get_text(&t, &format!("/api/boards/{board}/export?format=html"), tok).await;
        assert!(html.contains("<h2>4 Aanbevelingen</h2>") && html.contains("size: A4"));
        assert!(!html.contains("<button") && !html.contains("<script"));
        let (_, _, gap) =
            get_text(&t, &format!("/api/boards/{board}/export?format=csv"), tok).await;
        let lines: Vec<&str> = gap.trim_end().split("\r\n").collect();
        assert_eq!(lines.len(), 2, "{role}: header and one onderwerp:\n{gap}");
        assert!(lines[1].starts_with("\"Werkdruk; roosters \"\"te laat\"\"\";"));
        assert!(lines[1].contains("\"OR, HR\""));
        let (_, _, mon) = get_text(
            &t,
            &format!("/api/boards/{board}/export?format=csv&table=monitoring"),
            tok,
        )
        .await;
        let mon_lines: Vec<&str> = mon.trim_end().split("\r\n").collect();
        assert_eq!(
            mon_lines.len(),
            3,
            "{role}: one row per indicator and moment:\n{mon}"
        );
        assert!(mon_lines[1].contains("\"Gebruik ontwikkelbudget per jaar\";\"kwantitatief\";\"12%\";\"40%\";\"halverwege\";\"HR\";\"\";\"op-koers\";\"25%\""), "{role}: {mon}");
        assert!(mon_lines[2].contains("\"einde cao\""), "{role}: {mon}");
    }
    // The facilitator's JSON still holds the hidden card (under "hidden"), the others' not.
    assert!(json_fac.contains("GEHEIM-VERBORGEN"));
    let (_, _, json_emp) = get_text(&t, &format!("/api/boards/{board}/export"), &emp).await;
    assert!(!json_emp.contains("GEHEIM-VERBORGEN"));
}

/// Hostile: an invite token, a token for another board, a removed participant, no token, and
/// unknown formats and tables are refused; the positive control is the same person before the
/// removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refuses_invites_other_boards_and_removed_people() {
    let t = Tafel::start_embedded();
    let board = create_board(&t).await;
    let other = create_board(&t).await;
    let path = format!("/api/boards/{board}/export?format=md");
    let (s, inv) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/invites"),
        &facilitator(),
        Some(json!({"role": "employee"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, body) = get_text(&t, &path, inv["token"].as_str().unwrap()).await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("invite-token"));
    let (s, _, _) = get_text(&t, &path, &token(Role::Employer, &other, "x")).await;
    assert_eq!(s, 403);
    let (s, _, _) = get_text(&t, &path, "not-a-token").await;
    assert_eq!(s, 401);
    let me = join(&t, &board, "employee", "Kees").await;
    let (s, _, _) = get_text(&t, &path, &me).await;
    assert_eq!(s, 200, "positive control: the participant reads the report");
    let (_, list) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/participants"),
        &facilitator(),
        None,
    )
    .await;
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "employee")
        .and_then(|p| p["id"].as_str())
        .expect("the employee in the list")
        .to_owned();
    let (s, _) = call(
        &t,
        Method::DELETE,
        &format!("/api/boards/{board}/participants/{id}"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(s, 200);
    for q in ["md", "html", "csv", "json"] {
        let (s, _, body) =
            get_text(&t, &format!("/api/boards/{board}/export?format={q}"), &me).await;
        assert_eq!(s, 403, "{q}: {body}");
        assert!(body.contains("removed"));
    }
    let fac = facilitator();
    for q in ["format=pdf", "format=csv&table=votes", "format=MD"] {
        let (s, _, body) = get_text(&t, &format!("/api/boards/{board}/export?{q}"), &fac).await;
        assert_eq!(s, 400, "{q}: {body}");
        assert!(body.contains("bad-request"));
    }
}

/// A facilitator's JSON export imported into another server: the same canvas, themes and gap
/// rows, under new ids and a new board id, with no owner tags, authors, participants, invites
/// or audit entries of the old board; hidden items stay behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_round_trip_between_two_servers() {
    let a = Tafel::start_embedded();
    let b = Tafel::start_embedded();
    let (board, _) = workshop_board(&a).await;
    let (s, export) = call(
        &a,
        Method::GET,
        &format!("/api/boards/{board}/export"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(s, 200);
    // Hostile: only a facilitator for every board imports, and only a facilitator's export.
    let fac_of_board = token(Role::Facilitator, &board, "fac-1");
    for tok in [fac_of_board.clone(), token(Role::Employer, &board, "wg")] {
        let (s, _) = call(
            &b,
            Method::POST,
            "/api/boards/import",
            &tok,
            Some(export.clone()),
        )
        .await;
        assert_eq!(s, 403);
    }
    let (_, emp_export) = call(
        &a,
        Method::GET,
        &format!("/api/boards/{board}/export"),
        &token(Role::Employee, &board, "e9"),
        None,
    )
    .await;
    let (s, body) = call(
        &b,
        Method::POST,
        "/api/boards/import",
        &facilitator(),
        Some(emp_export),
    )
    .await;
    assert_eq!(s, 400, "an employee's export is not a whole board: {body}");
    let (s, body) = call(
        &b,
        Method::POST,
        "/api/boards/import",
        &facilitator(),
        Some(json!({"x": 1})),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    let (s, made) = call(
        &b,
        Method::POST,
        "/api/boards/import",
        &facilitator(),
        Some(export.clone()),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let new_id = made["id"].as_str().expect("id").to_owned();
    assert_ne!(new_id, board);
    let (s, copy) = call(
        &b,
        Method::GET,
        &format!("/api/boards/{new_id}/export"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(copy["board"]["title"], export["board"]["title"]);
    let content = |v: &Value, doc: &str, root: &str, text: &str| -> Vec<Value> {
        let mut out: Vec<Value> = v["documents"][doc][root]
            .as_object()
            .expect("items")
            .values()
            .map(|i| {
                let mut i = i.clone();
                let o = i.as_object_mut().unwrap();
                for k in ["owner", "author"] {
                    o.remove(k);
                }
                i
            })
            .collect();
        out.sort_by_key(|i| i[text].as_str().unwrap_or("").to_owned());
        out
    };
    assert_eq!(
        content(&copy, "canvas", "cards", "text"),
        content(&export, "canvas", "cards", "text"),
        "same cards"
    );
    assert_eq!(
        content(&copy, "gap", "rows", "onderwerp"),
        content(&export, "gap", "rows", "onderwerp")
    );
    assert_eq!(
        copy["documents"]["canvas"]["themes"],
        export["documents"]["canvas"]["themes"]
    );
    let old_ids: Vec<&String> = export["documents"]["canvas"]["cards"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    for id in copy["documents"]["canvas"]["cards"]
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(!old_ids.contains(&id), "card id {id} carried over");
    }
    for (_, c) in copy["documents"]["canvas"]["cards"].as_object().unwrap() {
        assert!(c.get("owner").is_none() && c.get("author").is_none(), "{c}");
    }
    let text = copy.to_string();
    for never in [
        "GEHEIM-VERBORGEN",
        "emp-sanne",
        "Sanne",
        "Willem",
        "wg-1",
        "fac-1",
    ] {
        assert!(!text.contains(never), "{never:?} carried over: {text}");
    }
    assert_eq!(copy["audit"], json!([]), "no audit log carried");
    assert_eq!(copy["hidden"], json!([]));
    let (_, people) = call(
        &b,
        Method::GET,
        &format!("/api/boards/{new_id}/participants"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(people, json!([]), "no participants carried");
    // The old board is untouched, and the report of the copy reads the same content.
    let (_, _, md) = get_text(
        &b,
        &format!("/api/boards/{new_id}/export?format=md"),
        &facilitator(),
    )
    .await;
    assert!(md.contains("Start in 2027 met een pilot DI-uren"));
    // The imported board is a normal board: a participant edits it.
    let wg = token(Role::Employer, &new_id, "wg-new");
    let c = connect(&b, &new_id, "canvas", &wg).await;
    c.add_card("n1", "bouwstenen", "nieuw", json!({}));
    assert!(tafel_tests::eventually(T, || c.items("cards")["n1"]["owner"].is_string()).await);
}

/// The next cao round: a new board from an earlier one, linked to an automatic snapshot of it,
/// with the agreements, the indicators, the themes and the gap rows, and none of its people.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_round_from_an_earlier_board() {
    let t = Tafel::start_embedded();
    let (board, emp) = workshop_board(&t).await;
    let path = format!("/api/boards/{board}/next-round");
    let body = Some(json!({"title": "Cao 2029"}));
    // Hostile: a participant, a facilitator of this board only (creating boards needs "*"),
    // an invite token.
    let (s, inv) = call(
        &t,
        Method::POST,
        &format!("/api/boards/{board}/invites"),
        &facilitator(),
        Some(json!({"role": "union"})),
    )
    .await;
    assert_eq!(s, 200);
    for tok in [
        emp.clone(),
        token(Role::Employer, &board, "wg-1"),
        token(Role::Facilitator, &board, "fac-1"),
        inv["token"].as_str().unwrap().to_owned(),
    ] {
        let (s, v) = call(&t, Method::POST, &path, &tok, body.clone()).await;
        assert_eq!(s, 403, "{v}");
    }
    let (s, _) = call(
        &t,
        Method::POST,
        &path,
        &facilitator(),
        Some(json!({"title": ""})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, made) = call(&t, Method::POST, &path, &facilitator(), body).await;
    assert_eq!(s, 201, "{made}");
    let new_id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(made["previous"]["board"], board);
    let snap = made["previous"]["snapshot"].as_str().unwrap().to_owned();
    let (_, list) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/snapshots"),
        &facilitator(),
        None,
    )
    .await;
    assert!(
        list.as_array().unwrap().iter().any(|s| s["id"] == snap),
        "linked snapshot exists: {list}"
    );
    let (_, copy) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{new_id}/export"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(copy["board"]["title"], "Cao 2029");
    assert_eq!(
        copy["documents"]["canvas"]["meta"]["previous"]["snapshot"],
        snap
    );
    let texts: Vec<&str> = copy["documents"]["canvas"]["cards"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    for want in [
        "Persoonlijk ontwikkelbudget",
        "Start in 2027 met een pilot DI-uren",
        "Gebruik ontwikkelbudget per jaar",
        "Gezond en met plezier werken tot de AOW",
    ] {
        assert!(texts.contains(&want), "{want:?} not carried: {texts:?}");
    }
    assert!(
        !texts.contains(&"Nachtdiensten na je 55e zijn zwaar"),
        "the old round's knelpunten stay behind"
    );
    let rows: Vec<&Value> = copy["documents"]["gap"]["rows"]
        .as_object()
        .unwrap()
        .values()
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["onderwerp"], "Werkdruk; roosters \"te laat\"");
    let text = copy.to_string();
    for never in ["GEHEIM-VERBORGEN", "Sanne", "Willem", "emp-sanne", "wg-1"] {
        assert!(!text.contains(never), "{never:?} carried over");
    }
    let (_, people) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{new_id}/participants"),
        &facilitator(),
        None,
    )
    .await;
    assert_eq!(people, json!([]));
    // The old board is as it was.
    let (_, old) = call(
        &t,
        Method::GET,
        &format!("/api/boards/{board}/export"),
        &facilitator(),
        None,
    )
    .await;
    assert!(old
        .to_string()
        .contains("Nachtdiensten na je 55e zijn zwaar"));
}
