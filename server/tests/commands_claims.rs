//! The facilitator's session commands and the ballot rules (`server/src/domain/commands.rs`),
//! one claim a test: the cases the cargo-mutants run of that file found without a test
//! (docs/testing.md, "Mutation testing"). All pure: state in, decision out.

use serde_json::json;
use tafel_protocol::index::Owner;
use tafel_protocol::template::Template;
use tafel_protocol::Role;
use tafel_server::domain::commands::{apply, Applied, Command};
use tafel_server::domain::state::{BoardState, Participant};

fn template() -> Template {
    Template::from_json(include_str!("../templates/cao-di-organisatie.json"))
        .expect("the template parses")
}

fn fac() -> Participant {
    Participant {
        sub: "f".into(),
        role: Role::Facilitator,
        name: "Fien".into(),
        display: "Fien".into(),
        tag: Owner::Server,
    }
}

fn run(st: &mut BoardState, cmd: Command, now_ms: u64) -> Result<Applied, String> {
    apply(st, &template(), &fac(), &cmd, now_ms).map_err(|r| r.message)
}

#[test]
fn the_audit_log_records_each_command_in_seconds() {
    let mut st = BoardState::default();
    run(&mut st, Command::Step { step: "2".into() }, 12_345_678).expect("a step");
    let entry = st.audit.last().expect("audited");
    assert_eq!(entry.at, 12_345, "milliseconds are stored as seconds");
    assert_eq!(entry.action, "step");
    assert_eq!(entry.sub, "f");
}

#[test]
fn a_phase_is_set_and_audited_and_at_most_80_characters() {
    let mut st = BoardState::default();
    let name = "ë".repeat(80);
    assert_eq!(
        run(
            &mut st,
            Command::Phase {
                phase: name.clone()
            },
            1_000
        ),
        Ok(Applied::Done)
    );
    assert_eq!(st.phase, name, "80 characters (not bytes) are taken");
    assert_eq!(st.audit.last().map(|a| a.action.as_str()), Some("phase"));
    let before = st.clone();
    let e = run(
        &mut st,
        Command::Phase {
            phase: "x".repeat(81),
        },
        2_000,
    )
    .expect_err("81 characters are too long");
    assert!(e.contains("80"), "{e}");
    assert_eq!(st, before, "a refused phase changes nothing");
}

#[test]
fn presentation_mode_is_set_with_its_focus_and_audited() {
    let mut st = BoardState::default();
    let focus = json!({"doc": "canvas", "section": "themas"});
    assert_eq!(
        run(
            &mut st,
            Command::Presentation {
                on: true,
                focus: Some(focus.clone()),
            },
            1_000,
        ),
        Ok(Applied::Done)
    );
    assert!(st.presentation);
    assert_eq!(st.focus, focus);
    assert_eq!(
        st.audit.last().map(|a| a.action.as_str()),
        Some("presentation")
    );
    run(
        &mut st,
        Command::Presentation {
            on: false,
            focus: None,
        },
        2_000,
    )
    .expect("off again");
    assert!(!st.presentation);
    assert_eq!(
        st.focus,
        serde_json::Value::Null,
        "no focus when none is given"
    );
}

#[test]
fn private_writing_is_switched_and_audited() {
    let mut st = BoardState::default();
    assert_eq!(
        run(&mut st, Command::PrivateWriting { on: true }, 1_000),
        Ok(Applied::Done)
    );
    assert!(st.private_writing);
    assert_eq!(
        st.audit.last().map(|a| a.action.as_str()),
        Some("private-writing")
    );
    run(&mut st, Command::PrivateWriting { on: false }, 2_000).expect("off again");
    assert!(!st.private_writing);
}

fn timer(op: &str, seconds: Option<u64>) -> Command {
    Command::Timer {
        op: op.into(),
        seconds,
    }
}

#[test]
fn the_timer_runs_1_to_86400_seconds_resumes_after_a_pause_and_resets() {
    let mut st = BoardState::default();
    for bad in [0, 86_401] {
        let e = run(&mut st, timer("start", Some(bad)), 1_000).expect_err("out of range");
        assert!(e.contains("1 to 86400"), "{bad}: {e}");
    }
    let e = run(&mut st, timer("start", None), 1_000).expect_err("a stopped timer needs seconds");
    assert!(e.contains("needs seconds"), "{e}");
    assert_eq!(st.timer.status, BoardState::default().timer.status);
    run(&mut st, timer("start", Some(86_400)), 1_000).expect("a day is the longest");
    assert_eq!(st.timer.ends_at, Some(1_000 + 86_400_000));
    run(&mut st, timer("pause", None), 11_000).expect("pause");
    assert_eq!(st.timer.remaining_ms, Some(86_390_000));
    run(&mut st, timer("start", None), 20_000).expect("resume without seconds");
    assert_eq!(st.timer.status, "running");
    assert_eq!(st.timer.ends_at, Some(20_000 + 86_390_000));
    assert_eq!(st.timer.duration_ms, 86_400_000, "the duration is kept");
    run(&mut st, timer("reset", None), 30_000).expect("reset");
    assert_eq!(st.timer.status, "stopped");
    assert_eq!((st.timer.ends_at, st.timer.remaining_ms), (None, None));
    assert_eq!(st.audit.last().map(|a| a.action.as_str()), Some("timer"));
    assert!(run(&mut st, timer("stop", None), 40_000).is_err());
}

fn lock(scope: &str, target: Option<&str>, locked: bool) -> Command {
    Command::Lock {
        scope: scope.into(),
        target: target.map(String::from),
        locked,
    }
}

#[test]
fn locks_take_the_board_a_real_document_or_a_real_section_and_come_off_again() {
    let mut st = BoardState::default();
    run(&mut st, lock("board", None, true), 1_000).expect("the board");
    assert!(st.board_locked);
    assert_eq!(st.audit.last().map(|a| a.action.as_str()), Some("lock"));
    run(&mut st, lock("board", None, false), 1_000).expect("the board again");
    assert!(!st.board_locked);
    assert_eq!(st.audit.last().map(|a| a.action.as_str()), Some("unlock"));
    run(&mut st, lock("doc", Some("canvas"), true), 1_000).expect("a document");
    run(&mut st, lock("section", Some("themas"), true), 1_000).expect("a section");
    assert!(st.locked_docs.contains("canvas"));
    assert!(st.locked_sections.contains("themas"));
    let before = st.clone();
    for (scope, target) in [
        ("doc", Some("nergens")),
        ("doc", None),
        ("section", Some("nergens")),
        ("section", None),
        ("alles", None),
    ] {
        assert!(
            run(&mut st, lock(scope, target, true), 1_000).is_err(),
            "{scope} {target:?}"
        );
    }
    assert_eq!(st, before, "refused locks change nothing");
    run(&mut st, lock("doc", Some("canvas"), false), 1_000).expect("off");
    run(&mut st, lock("section", Some("themas"), false), 1_000).expect("off");
    assert!(st.locked_docs.is_empty() && st.locked_sections.is_empty());
}

#[test]
fn a_round_takes_up_to_200_items() {
    use tafel_server::domain::commands::open_round;
    let items = |n: usize| (0..n).map(|i| format!("canvas/c{i}")).collect::<Vec<_>>();
    let r = open_round("r".into(), "t", items(200), 3, None, &[]).expect("200 items");
    assert_eq!(r.cards.len(), 200);
    let e = open_round("r".into(), "t", items(201), 3, None, &[]).expect_err("201 items");
    assert!(e.message.contains("1 to 200"), "{e:?}");
}

#[test]
fn a_draft_takes_a_thema_of_the_template_and_no_other() {
    use tafel_server::domain::commands::{new_draft, NewDraft};
    let t = template();
    let employee = Participant {
        sub: "e1".into(),
        role: Role::Employee,
        name: "Eva".into(),
        display: "Medewerker 1".into(),
        tag: Owner::Server,
    };
    let draft = |thema: Option<&str>, kind: Option<&str>| NewDraft {
        section: "themas".into(),
        text: "Minder piekbelasting".into(),
        pijlers: vec!["gezondheid".into()],
        thema: thema.map(String::from),
        kind: kind.map(String::from),
    };
    let ok = new_draft(
        &t,
        &employee,
        draft(Some("werkdruk"), Some("preventief")),
        "d1".into(),
        5,
    )
    .expect("a thema and a type of the template");
    assert_eq!(ok.thema.as_deref(), Some("werkdruk"));
    assert!(new_draft(&t, &employee, draft(None, None), "d2".into(), 5).is_ok());
    // At most 2000 characters (not bytes).
    let sized = |n: usize| NewDraft {
        text: "é".repeat(n),
        ..draft(None, None)
    };
    assert!(new_draft(&t, &employee, sized(2000), "d4".into(), 5).is_ok());
    assert!(new_draft(&t, &employee, sized(2001), "d5".into(), 5).is_err());
    for (thema, kind) in [(Some("verzonnen"), None), (None, Some("magisch"))] {
        let e = new_draft(&t, &employee, draft(thema, kind), "d3".into(), 5)
            .expect_err("not of the template");
        assert!(e.message.contains("thema"), "{e:?}");
    }
}

fn draft_of(id: &str, sub: &str) -> tafel_server::domain::state::Draft {
    tafel_server::domain::state::Draft {
        id: id.into(),
        sub: sub.into(),
        section: "themas".into(),
        text: format!("tekst van {sub}"),
        pijlers: vec![],
        thema: None,
        kind: None,
        created_at: 0,
    }
}

#[test]
fn a_participant_sees_their_own_drafts_and_nobody_elses() {
    use tafel_server::domain::commands::own_drafts;
    let mut st = BoardState::default();
    st.drafts.push(draft_of("d1", "e1"));
    st.drafts.push(draft_of("d2", "e2"));
    let mine = own_drafts(&st, "e1");
    assert_eq!(
        mine,
        json!([{"id": "d1", "section": "themas", "text": "tekst van e1", "pijlers": [],
            "thema": null, "type": null}])
    );
    assert_eq!(own_drafts(&st, "e3"), json!([]));
}

#[test]
fn erasing_a_participant_takes_the_author_records_of_their_drafts_only() {
    use tafel_server::domain::commands::erase_inputs;
    use tafel_server::domain::state::Author;
    let mut st = BoardState::default();
    for (id, sub) in [("d1", "e1"), ("d2", "e2")] {
        st.drafts.push(draft_of(id, sub));
        st.authors.insert(
            id.into(),
            Author {
                sub: sub.into(),
                role: Role::Employee,
                display: sub.into(),
            },
        );
    }
    erase_inputs(&mut st, "e1");
    assert_eq!(st.drafts, vec![draft_of("d2", "e2")]);
    assert!(
        !st.authors.contains_key("d1"),
        "the erased draft's author is gone"
    );
    assert!(st.authors.contains_key("d2"), "the other author stays");
}
