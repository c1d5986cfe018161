//! The facilitator's session commands as typed values, and `apply(state, command, now)`, which
//! decides each command that only changes the board's server-side state; the rules of rounds,
//! ballots and drafts. All pure: no IO, no clock, no store — the caller persists the state and
//! mirrors it into `control`. Commands that also change documents (reveals, rounds over canvas
//! cards, moderation) are answered `Applied::WithDocuments` and carried out by the handlers,
//! which run the server's own Yjs edits (`domain::edits`) through the document actors.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use tafel_protocol::policy::{PIJLERS, STEPS, TYPES};
use tafel_protocol::template::Template;
use tafel_protocol::{DocName, Role};

use super::state::{AuditEntry, AuthorMode, BoardState, Draft, Participant, Round};
use super::Refusal;

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    Step {
        step: String,
    },
    Phase {
        phase: String,
    },
    Timer {
        op: String,
        #[serde(default)]
        seconds: Option<u64>,
    },
    Lock {
        scope: String,
        #[serde(default)]
        target: Option<String>,
        locked: bool,
    },
    Presentation {
        on: bool,
        #[serde(default)]
        focus: Option<Value>,
    },
    AuthorMode {
        mode: AuthorMode,
    },
    PrivateWriting {
        on: bool,
    },
    RevealDrafts,
    OpenRound {
        title: String,
        /// Canvas card ids (the older form of `items`).
        #[serde(default)]
        cards: Vec<String>,
        /// What is votable: `canvas/<card id>` or `gap/<row id>`.
        #[serde(default)]
        items: Vec<String>,
        budget: u32,
        #[serde(default)]
        max_per_card: Option<u32>,
    },
    CloseRound {
        round: String,
    },
    RevealRound {
        round: String,
    },
    /// Turns the `top` items of a revealed round into priorities 1, 2, …
    Prioritize {
        round: String,
        top: u32,
    },
    Hide {
        #[serde(default)]
        card: Option<String>,
        #[serde(default)]
        row: Option<String>,
    },
    Restore {
        #[serde(default)]
        card: Option<String>,
        #[serde(default)]
        row: Option<String>,
    },
    Merge {
        #[serde(default)]
        card: Option<String>,
        #[serde(default)]
        row: Option<String>,
        into: String,
    },
}

/// What `apply` decided.
#[derive(Debug, PartialEq)]
pub enum Applied {
    /// The state changed (and was audited); nothing else to do but persist and mirror.
    Done,
    /// The author setting changed: every card's and row's `author` must be rewritten.
    AuthorMode(AuthorMode),
    /// The command changes documents too: the caller carries it out.
    WithDocuments,
}

fn bad(msg: impl Into<String>) -> Refusal {
    Refusal::bad(msg)
}

/// Appends an audit entry (the facilitator's log; the `sub` never leaves it).
pub fn audit(st: &mut BoardState, who: &Participant, action: &str, detail: Value, now_ms: u64) {
    st.audit.push(AuditEntry {
        at: now_ms / 1000,
        sub: who.sub.clone(),
        name: who.name.clone(),
        role: who.role,
        action: action.to_owned(),
        detail,
    });
}

/// Decides one command on the board's state at time `now_ms` (ms since the epoch). On `Err` the
/// state is unchanged.
pub fn apply(
    st: &mut BoardState,
    template: &Template,
    who: &Participant,
    cmd: &Command,
    now_ms: u64,
) -> Result<Applied, Refusal> {
    match cmd {
        Command::Step { step } => {
            if !STEPS.contains(&step.as_str()) {
                return Err(bad(format!("step must be one of {STEPS:?}")));
            }
            audit(st, who, "step", json!({"step": step}), now_ms);
            st.step = step.clone();
        }
        Command::Phase { phase } => {
            if phase.chars().count() > 80 {
                return Err(bad("a phase name is at most 80 characters"));
            }
            audit(st, who, "phase", json!({"phase": phase}), now_ms);
            st.phase = phase.clone();
        }
        Command::Timer { op, seconds } => {
            let mut timer = st.timer.clone();
            match op.as_str() {
                "start" => {
                    let duration = match seconds {
                        Some(s) if (1..=86_400).contains(s) => s * 1000,
                        Some(_) => return Err(bad("seconds must be 1 to 86400")),
                        None if timer.status == "paused" => timer.remaining_ms.unwrap_or(0),
                        None => return Err(bad("start needs seconds")),
                    };
                    if seconds.is_some() {
                        timer.duration_ms = duration;
                    }
                    timer.status = "running".into();
                    timer.ends_at = Some(now_ms + duration);
                    timer.remaining_ms = None;
                }
                "pause" => {
                    let left = timer.ends_at.map_or(0, |e| e.saturating_sub(now_ms));
                    timer.status = "paused".into();
                    timer.remaining_ms = Some(left);
                    timer.ends_at = None;
                }
                "reset" => {
                    timer.status = "stopped".into();
                    timer.ends_at = None;
                    timer.remaining_ms = None;
                }
                _ => return Err(bad("op must be start, pause or reset")),
            }
            st.timer = timer;
            audit(
                st,
                who,
                "timer",
                json!({"op": op, "seconds": seconds}),
                now_ms,
            );
        }
        Command::Lock {
            scope,
            target,
            locked,
        } => {
            match (scope.as_str(), target) {
                ("board", _) => st.board_locked = *locked,
                ("doc", Some(d)) if DocName::parse(d).is_ok() => {
                    if *locked {
                        st.locked_docs.insert(d.clone());
                    } else {
                        st.locked_docs.remove(d);
                    }
                }
                ("section", Some(s)) if template.section(s).is_some() => {
                    if *locked {
                        st.locked_sections.insert(s.clone());
                    } else {
                        st.locked_sections.remove(s);
                    }
                }
                _ => return Err(bad(
                    "scope is board, doc (target: a document) or section (target: a section id)",
                )),
            }
            let action = if *locked { "lock" } else { "unlock" };
            audit(
                st,
                who,
                action,
                json!({"scope": scope, "target": target}),
                now_ms,
            );
        }
        Command::Presentation { on, focus } => {
            st.presentation = *on;
            st.focus = focus.clone().unwrap_or(Value::Null);
            audit(
                st,
                who,
                "presentation",
                json!({"on": on, "focus": focus}),
                now_ms,
            );
        }
        Command::AuthorMode { mode } => {
            st.author_mode = *mode;
            audit(st, who, "author-mode", json!({"mode": mode}), now_ms);
            return Ok(Applied::AuthorMode(*mode));
        }
        Command::PrivateWriting { on } => {
            st.private_writing = *on;
            audit(st, who, "private-writing", json!({"on": on}), now_ms);
        }
        Command::CloseRound { round } => {
            let Some(r) = st.rounds.get_mut(round) else {
                return Err(Refusal::not_found("no such round"));
            };
            r.status = "closed".into();
            audit(st, who, "round-close", json!({"round": round}), now_ms);
        }
        _ => return Ok(Applied::WithDocuments),
    }
    Ok(Applied::Done)
}

/// Most unrevealed drafts a board keeps.
pub const MAX_DRAFTS: usize = 5000;

/// The documents a round's items may come from.
const VOTABLE: [DocName; 2] = [DocName::Canvas, DocName::Gap];

/// One votable item as `doc/id` (`canvas/c1`, `gap/g1`): ballots and totals are keyed by it, as a
/// bare id can name a card and a gap row at once.
pub fn parse_item(item: &str) -> Result<(DocName, &str), Refusal> {
    let refuse = || {
        bad(format!(
            "an item is canvas/<card id> or gap/<row id>, not {item:?}"
        ))
    };
    let (doc, id) = item.split_once('/').ok_or_else(refuse)?;
    let doc = DocName::parse(doc).map_err(|_| refuse())?;
    if !VOTABLE.contains(&doc) || id.is_empty() || id.contains('/') {
        return Err(refuse());
    }
    Ok((doc, id))
}

/// A round's items from the command: `cards` (canvas ids) first, then `items`, each once, all
/// valid `doc/id` keys.
pub fn round_items(cards: &[String], items: &[String]) -> Result<Vec<String>, Refusal> {
    let mut keys: Vec<String> = Vec::new();
    let canvas = cards
        .iter()
        .map(|c| super::state::author_key(DocName::Canvas, c));
    for key in canvas.chain(items.iter().cloned()) {
        parse_item(&key)?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// The item a vote is for: `{"item": "gap/<id>"}`, or `{"card": id}` for a canvas card.
pub fn vote_item(card: Option<String>, item: Option<String>) -> Result<String, Refusal> {
    match (card, item) {
        (Some(c), None) => Ok(super::state::author_key(DocName::Canvas, &c)),
        (None, Some(i)) => {
            parse_item(&i)?;
            Ok(i)
        }
        _ => Err(bad("a vote names a card or an item")),
    }
}

/// The round's results, most dots first (ties in the round's order): `[{item, votes}]`.
pub fn ranking(round: &Round) -> Vec<Value> {
    let Some(totals) = &round.totals else {
        return Vec::new();
    };
    let mut ranked: Vec<(&String, u32)> = round
        .cards
        .iter()
        .map(|k| (k, totals.get(k).copied().unwrap_or(0)))
        .collect();
    ranked.sort_by_key(|r| std::cmp::Reverse(r.1));
    ranked
        .into_iter()
        .map(|(item, votes)| json!({"item": item, "votes": votes}))
        .collect()
}

/// A round as the facilitator opens it; `missing` are the named items the documents do not hold.
pub fn open_round(
    id: String,
    title: &str,
    cards: Vec<String>,
    budget: u32,
    max_per_card: Option<u32>,
    missing: &[String],
) -> Result<Round, Refusal> {
    if cards.is_empty() || cards.len() > 200 || !(1..=100).contains(&budget) {
        return Err(bad("a round needs 1 to 200 items and a budget of 1 to 100"));
    }
    if !missing.is_empty() {
        return Err(bad(format!(
            "these items are not on the canvas or the gap board: {}",
            json!(missing)
        )));
    }
    Ok(Round {
        id,
        title: title.chars().take(120).collect(),
        cards,
        budget,
        max_per_card: max_per_card.unwrap_or(budget).clamp(1, budget),
        status: "open".into(),
        ballots: BTreeMap::new(),
        totals: None,
        prioritized: Vec::new(),
    })
}

/// Ends a round: its totals over every stored ballot (`(participant tag, item, dots)`, every
/// item of the round, also those without a dot), and the round marked revealed. `None` when
/// there is no such round.
pub fn reveal_round(
    st: &mut BoardState,
    round: &str,
    ballots: &[(String, String, u32)],
) -> Option<BTreeMap<String, u32>> {
    let r = st.rounds.get_mut(round)?;
    let mut totals: BTreeMap<String, u32> = r.cards.iter().map(|c| (c.clone(), 0)).collect();
    for (_, item, n) in ballots {
        *totals.entry(item.clone()).or_default() += n;
    }
    r.status = "revealed".into();
    r.totals = Some(totals.clone());
    // The ballots live in the ballot store; what was left of them in the state (rounds stored
    // before that) was moved there before this reveal.
    r.ballots.clear();
    // Totals for items that are hidden go onto their held copies (held by the same key).
    for (item, n) in &totals {
        if let Some(h) = st.hidden.get_mut(item) {
            h.votes = Some(*n as f64);
        }
    }
    Some(totals)
}

/// What `prioritize` decided: each item of the round (`doc/id`) with its new `priority` (1 for
/// the most dots), or `None` for an item of the round that is not among the top (a card loses
/// its priority; gap rows, whose priority is also their order, follow the chosen ones).
pub type Priorities = Vec<(String, Option<u32>)>;

/// Turns the `top` items of a revealed round into priorities: the ranking's first `top` items
/// that have at least one dot become priorities 1, 2, …, kept on the round (`prioritized`);
/// choosing again replaces them. Held (hidden) items get theirs on the held copy. On `Err`
/// nothing changed.
pub fn prioritize(st: &mut BoardState, round: &str, top: u32) -> Result<Priorities, Refusal> {
    let r = st
        .rounds
        .get_mut(round)
        .ok_or_else(|| Refusal::not_found("no such round"))?;
    if r.status != "revealed" {
        return Err(bad("only a revealed round gives priorities"));
    }
    if top == 0 || top as usize > r.cards.len() {
        return Err(bad(format!(
            "top is 1 to the round's {} items",
            r.cards.len()
        )));
    }
    let chosen: Vec<String> = ranking(r)
        .iter()
        .filter(|e| e["votes"].as_u64().unwrap_or(0) > 0)
        .filter_map(|e| e["item"].as_str().map(str::to_owned))
        .take(top as usize)
        .collect();
    if chosen.is_empty() {
        return Err(bad("no item of this round has a dot"));
    }
    r.prioritized = chosen.clone();
    let out: Priorities = r
        .cards
        .iter()
        .map(|item| {
            let rank = chosen.iter().position(|c| c == item);
            (item.clone(), rank.map(|i| i as u32 + 1))
        })
        .collect();
    for (item, rank) in &out {
        if let Some(h) = st.hidden.get_mut(item) {
            match rank {
                Some(n) => h.fields.insert("priority".into(), json!(n)),
                None => h.fields.remove("priority"),
            };
        }
    }
    Ok(out)
}

/// Only participants vote; the facilitator and observers do not.
pub fn may_vote(role: Role) -> Result<(), Refusal> {
    match role {
        Role::Employer | Role::Union | Role::Employee => Ok(()),
        _ => Err(Refusal::forbidden("only participants vote")),
    }
}

/// The caller's ballot as they may see it: their dots and what is left of their budget.
/// `status` is the round's status in the ballot store (what votes are checked against).
pub fn ballot_json(round: &Round, status: &str, mine: &BTreeMap<String, u32>) -> Value {
    let used: u32 = mine.values().sum();
    json!({"round": round.id, "status": status, "budget": round.budget, "maxPerCard": round.max_per_card, "votes": mine, "left": round.budget.saturating_sub(used)})
}

/// A change to one participant's ballot: a dot more, or one taken back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BallotChange {
    Vote(String),
    Unvote(String),
}

/// What a ballot change the rules allow does to the stored ballot: `delta` dots (+1 or -1) on
/// `item`, decided on a participant who had `used` dots in the round and `on_item` on the item.
/// The store applies it only while the round is still open and those counts still hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BallotDelta {
    pub item: String,
    pub delta: i64,
    pub used: u32,
    pub on_item: u32,
}

/// Decides a ballot change on a round (`status`: its status in the ballot store) and the
/// participant's dots in it (`mine`, item → dots): within the budget and the per-item limit,
/// only while the round is open. On `Err` nothing may change.
pub fn decide_ballot(
    round: &Round,
    status: &str,
    mine: &BTreeMap<String, u32>,
    change: &BallotChange,
) -> Result<BallotDelta, Refusal> {
    if status != "open" {
        return Err(Refusal::forbidden("this round is not open"));
    }
    let used: u32 = mine.values().sum();
    match change {
        BallotChange::Vote(item) => {
            if !round.cards.contains(item) {
                return Err(bad("that item is not in this round"));
            }
            if used >= round.budget {
                return Err(Refusal::forbidden("no votes left in your budget"));
            }
            let on_item = mine.get(item).copied().unwrap_or(0);
            if on_item >= round.max_per_card {
                return Err(Refusal::forbidden("you already gave this item its maximum"));
            }
            Ok(BallotDelta {
                item: item.clone(),
                delta: 1,
                used,
                on_item,
            })
        }
        BallotChange::Unvote(item) => match mine.get(item).copied() {
            Some(n) if n > 0 => Ok(BallotDelta {
                item: item.clone(),
                delta: -1,
                used,
                on_item: n,
            }),
            _ => Err(Refusal::not_found("no vote of yours on that item")),
        },
    }
}

/// A participant's ballot after `d` (what the store holds once it applied it).
pub fn applied(mine: &BTreeMap<String, u32>, d: &BallotDelta) -> BTreeMap<String, u32> {
    let mut next = mine.clone();
    let n = (i64::from(d.on_item) + d.delta).max(0) as u32;
    if n == 0 {
        next.remove(&d.item);
    } else {
        next.insert(d.item.clone(), n);
    }
    next
}

/// A private card as a participant hands it in.
#[derive(Debug, Clone, Deserialize)]
pub struct NewDraft {
    pub section: String,
    pub text: String,
    #[serde(default)]
    pub pijlers: Vec<String>,
    #[serde(default)]
    pub thema: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// Checks a draft against the template and the author's role and makes it the draft `id`.
pub fn new_draft(
    template: &Template,
    who: &Participant,
    d: NewDraft,
    id: String,
    now_secs: u64,
) -> Result<Draft, Refusal> {
    let section = template
        .section(&d.section)
        .ok_or_else(|| bad("unknown section"))?;
    if !section.add.contains(&who.role) {
        return Err(Refusal::forbidden(
            "this role may not add cards in that section",
        ));
    }
    if d.text.trim().is_empty() || d.text.chars().count() > 2000 {
        return Err(bad("a draft is 1 to 2000 characters"));
    }
    if d.pijlers.iter().any(|p| !PIJLERS.contains(&p.as_str()))
        || d.kind.as_deref().is_some_and(|k| !TYPES.contains(&k))
        || d.thema
            .as_deref()
            .is_some_and(|th| !template.themes.iter().any(|t| t.id == th))
    {
        return Err(bad("unknown pijler, type or thema"));
    }
    Ok(Draft {
        id,
        sub: who.sub.clone(),
        section: d.section,
        text: d.text,
        pijlers: d.pijlers,
        thema: d.thema,
        kind: d.kind,
        created_at: now_secs,
    })
}

/// The caller's own drafts (nobody else's, ever).
pub fn own_drafts(st: &BoardState, sub: &str) -> Value {
    json!(st
        .drafts
        .iter()
        .filter(|d| d.sub == sub)
        .map(|d| json!({"id": d.id, "section": d.section, "text": d.text, "pijlers": d.pijlers, "thema": d.thema, "type": d.kind}))
        .collect::<Vec<_>>())
}

/// Erases what a removed participant put in that only they could see: their unrevealed drafts
/// and their ballots (revealed totals stay as they were published).
pub fn erase_inputs(st: &mut BoardState, sub: &str) {
    let drafts: Vec<String> = st
        .drafts
        .iter()
        .filter(|d| d.sub == sub)
        .map(|d| d.id.clone())
        .collect();
    st.drafts.retain(|d| d.sub != sub);
    for id in drafts {
        st.authors.remove(&id);
    }
    // Ballots kept in the state by older versions; the ballot store's are erased by the caller.
    for round in st.rounds.values_mut() {
        round.ballots.remove(sub);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tafel_protocol::Role;

    fn template() -> Template {
        Template::from_json(include_str!("../../templates/cao-di-organisatie.json")).unwrap()
    }

    fn fac() -> Participant {
        Participant {
            sub: "f".into(),
            role: Role::Facilitator,
            name: "Fien".into(),
            display: "Fien".into(),
            tag: tafel_protocol::index::Owner::Server,
        }
    }

    #[test]
    fn state_commands_are_decided_without_io() {
        let t = template();
        let mut st = BoardState::default();
        let step = Command::Step { step: "3A".into() };
        assert_eq!(
            apply(&mut st, &t, &fac(), &step, 1_000).ok(),
            Some(Applied::Done)
        );
        assert_eq!(st.step, "3A");
        assert_eq!(st.audit.len(), 1);
        let start = Command::Timer {
            op: "start".into(),
            seconds: Some(60),
        };
        apply(&mut st, &t, &fac(), &start, 10_000).unwrap();
        assert_eq!(st.timer.ends_at, Some(70_000));
        let pause = Command::Timer {
            op: "pause".into(),
            seconds: None,
        };
        apply(&mut st, &t, &fac(), &pause, 40_000).unwrap();
        assert_eq!(st.timer.remaining_ms, Some(30_000));
        // A refused command leaves the state as it was.
        let before = st.clone();
        let bad_lock = Command::Lock {
            scope: "section".into(),
            target: Some("nergens".into()),
            locked: true,
        };
        assert!(apply(&mut st, &t, &fac(), &bad_lock, 50_000).is_err());
        assert_eq!(st, before);
        let mode = Command::AuthorMode {
            mode: AuthorMode::Name,
        };
        assert_eq!(
            apply(&mut st, &t, &fac(), &mode, 60_000).ok(),
            Some(Applied::AuthorMode(AuthorMode::Name))
        );
        assert_eq!(
            apply(&mut st, &t, &fac(), &Command::RevealDrafts, 60_000).ok(),
            Some(Applied::WithDocuments)
        );
    }

    fn employee(sub: &str) -> Participant {
        Participant {
            sub: sub.into(),
            role: Role::Employee,
            name: "Eva".into(),
            display: "Medewerker 1".into(),
            tag: tafel_protocol::index::Owner::Server,
        }
    }

    /// The ballot store as these tests keep it: the round's `ballots` map (sub → item → dots),
    /// changed only by what `decide_ballot` allowed, as the stores do.
    fn change_ballot(
        st: &mut BoardState,
        round: &str,
        sub: &str,
        change: &BallotChange,
    ) -> Result<Value, Refusal> {
        let r = st
            .rounds
            .get_mut(round)
            .ok_or_else(|| Refusal::not_found("no such round"))?;
        let mine = r.ballots.get(sub).cloned().unwrap_or_default();
        let d = decide_ballot(r, &r.status.clone(), &mine, change)?;
        let next = applied(&mine, &d);
        r.ballots.insert(sub.to_owned(), next.clone());
        Ok(ballot_json(r, &r.status, &next))
    }

    /// The round's ballots as a store lists them: (participant, item, dots).
    fn stored(st: &BoardState, round: &str) -> Vec<(String, String, u32)> {
        st.rounds.get(round).map_or_else(Vec::new, |r| {
            r.ballots
                .iter()
                .flat_map(|(sub, b)| b.iter().map(|(i, n)| (sub.clone(), i.clone(), *n)))
                .collect()
        })
    }

    fn with_round(budget: u32, max: Option<u32>) -> BoardState {
        let mut st = BoardState::default();
        let r = open_round(
            "r1".into(),
            "Prioriteiten",
            vec!["a".into(), "b".into()],
            budget,
            max,
            &[],
        )
        .unwrap();
        st.rounds.insert("r1".into(), r);
        st
    }

    #[test]
    fn a_round_needs_cards_a_budget_and_cards_on_the_canvas() {
        let r = |cards: Vec<&str>, budget, missing: &[String]| {
            open_round(
                "r".into(),
                "t",
                cards.into_iter().map(String::from).collect(),
                budget,
                None,
                missing,
            )
        };
        assert!(r(vec!["a"], 3, &[]).is_ok());
        assert!(r(vec![], 3, &[]).is_err());
        assert!(r(vec!["a"], 0, &[]).is_err());
        assert!(r(vec!["a"], 101, &[]).is_err());
        assert!(r(vec!["a"], 100, &[]).is_ok());
        let many: Vec<&str> = (0..201).map(|_| "a").collect();
        assert!(r(many, 3, &[]).is_err());
        let e = r(vec!["a"], 3, &["a".into()]).unwrap_err();
        assert!(e.message.contains("not on the canvas"), "{e:?}");
        // The per-card limit is within 1..=budget; by default the budget.
        let capped = open_round("r".into(), "t", vec!["a".into()], 3, Some(9), &[]).unwrap();
        assert_eq!(capped.max_per_card, 3);
        let zero = open_round("r".into(), "t", vec!["a".into()], 3, Some(0), &[]).unwrap();
        assert_eq!(zero.max_per_card, 1);
        assert_eq!(r(vec!["a"], 4, &[]).unwrap().max_per_card, 4);
    }

    #[test]
    fn ballots_keep_the_budget_and_the_per_card_limit() {
        let mut st = with_round(3, Some(2));
        let vote = |st: &mut BoardState, sub: &str, card: &str| {
            change_ballot(st, "r1", sub, &BallotChange::Vote(card.into()))
        };
        assert_eq!(vote(&mut st, "e1", "a").unwrap()["left"], 2);
        assert_eq!(vote(&mut st, "e1", "a").unwrap()["left"], 1);
        // A third dot on one card is over the per-card limit; the ballot is unchanged.
        let e = vote(&mut st, "e1", "a").unwrap_err();
        assert_eq!(e.code, tafel_protocol::ErrorCode::Forbidden);
        assert_eq!(st.rounds["r1"].ballots["e1"]["a"], 2);
        assert_eq!(vote(&mut st, "e1", "b").unwrap()["left"], 0);
        // Over budget.
        assert!(vote(&mut st, "e1", "b").is_err());
        assert_eq!(st.rounds["r1"].ballots["e1"].values().sum::<u32>(), 3);
        // Another participant has a budget of their own.
        assert_eq!(vote(&mut st, "e2", "b").unwrap()["left"], 2);
        // A card outside the round.
        assert_eq!(
            vote(&mut st, "e2", "z").unwrap_err().code,
            tafel_protocol::ErrorCode::BadRequest
        );
        // Taking back: only your own dots.
        let un = |st: &mut BoardState, sub: &str, card: &str| {
            change_ballot(st, "r1", sub, &BallotChange::Unvote(card.into()))
        };
        assert_eq!(un(&mut st, "e1", "b").unwrap()["left"], 1);
        assert!(un(&mut st, "e1", "b").is_err());
        assert!(un(&mut st, "e3", "a").is_err());
        // Unknown round.
        assert_eq!(
            change_ballot(&mut st, "nope", "e1", &BallotChange::Vote("a".into()))
                .unwrap_err()
                .code,
            tafel_protocol::ErrorCode::NotFound
        );
    }

    #[test]
    fn nothing_changes_after_close_or_reveal_and_totals_add_up() {
        let mut st = with_round(3, None);
        change_ballot(&mut st, "r1", "e1", &BallotChange::Vote("a".into())).unwrap();
        change_ballot(&mut st, "r1", "e2", &BallotChange::Vote("a".into())).unwrap();
        change_ballot(&mut st, "r1", "e2", &BallotChange::Vote("b".into())).unwrap();
        let t = template();
        apply(
            &mut st,
            &t,
            &fac(),
            &Command::CloseRound { round: "r1".into() },
            1,
        )
        .unwrap();
        assert!(change_ballot(&mut st, "r1", "e1", &BallotChange::Vote("b".into())).is_err());
        assert!(change_ballot(&mut st, "r1", "e1", &BallotChange::Unvote("a".into())).is_err());
        let ballots = stored(&st, "r1");
        let totals = reveal_round(&mut st, "r1", &ballots).unwrap();
        assert_eq!(totals["a"], 2);
        assert_eq!(totals["b"], 1);
        assert_eq!(st.rounds["r1"].status, "revealed");
        assert!(change_ballot(&mut st, "r1", "e3", &BallotChange::Vote("a".into())).is_err());
        assert!(reveal_round(&mut st, "nope", &[]).is_none());
    }

    #[test]
    fn round_items_are_doc_and_id_cards_count_as_canvas() {
        let keys = round_items(
            &["c1".into()],
            &["gap/g1".into(), "canvas/c2".into(), "canvas/c1".into()],
        )
        .unwrap();
        assert_eq!(
            keys,
            ["canvas/c1", "gap/g1", "canvas/c2"],
            "each item once, cards first"
        );
        for bad_item in [
            "g1",
            "control/x",
            "employer/c1",
            "gap/",
            "gap/a/b",
            "nope/c1",
        ] {
            let e = round_items(&[], &[bad_item.into()]).unwrap_err();
            assert_eq!(e.code, tafel_protocol::ErrorCode::BadRequest, "{bad_item}");
        }
        assert!(
            round_items(&["a/b".into()], &[]).is_err(),
            "a card id has no slash"
        );
        assert_eq!(vote_item(Some("c1".into()), None).unwrap(), "canvas/c1");
        assert_eq!(vote_item(None, Some("gap/g1".into())).unwrap(), "gap/g1");
        assert!(vote_item(None, Some("g1".into())).is_err());
        assert!(vote_item(None, None).is_err());
        assert!(vote_item(Some("c1".into()), Some("gap/g1".into())).is_err());
    }

    #[test]
    fn a_card_and_a_gap_row_with_one_id_are_counted_apart_and_ranked() {
        let mut st = BoardState::default();
        let items = round_items(&[], &["canvas/x".into(), "gap/x".into(), "gap/y".into()]).unwrap();
        let r = open_round("r1".into(), "t", items, 5, None, &[]).unwrap();
        st.rounds.insert("r1".into(), r);
        let vote = |st: &mut BoardState, sub: &str, item: &str| {
            change_ballot(st, "r1", sub, &BallotChange::Vote(item.into()))
        };
        vote(&mut st, "e1", "gap/x").unwrap();
        vote(&mut st, "e1", "gap/x").unwrap();
        vote(&mut st, "e2", "gap/x").unwrap();
        vote(&mut st, "e2", "canvas/x").unwrap();
        // The bare id is not an item of the round.
        assert!(vote(&mut st, "e2", "x").is_err());
        assert!(vote(&mut st, "e2", "gap/z").is_err());
        let ballots = stored(&st, "r1");
        let totals = reveal_round(&mut st, "r1", &ballots).unwrap();
        assert_eq!(totals["gap/x"], 3);
        assert_eq!(totals["canvas/x"], 1);
        assert_eq!(totals["gap/y"], 0);
        let ranked = ranking(&st.rounds["r1"]);
        assert_eq!(
            ranked,
            vec![
                json!({"item": "gap/x", "votes": 3}),
                json!({"item": "canvas/x", "votes": 1}),
                json!({"item": "gap/y", "votes": 0}),
            ]
        );
        let public = BoardState::round_json(&st.rounds["r1"], 2);
        assert_eq!(
            public["cards"],
            json!(["x"]),
            "the canvas cards by their bare id"
        );
        assert_eq!(public["ranking"][0]["item"], "gap/x");
        // No ranking before the reveal.
        let open = open_round("r2".into(), "t", vec!["gap/x".into()], 1, None, &[]).unwrap();
        assert!(ranking(&open).is_empty());
    }

    #[test]
    fn the_top_of_a_revealed_round_becomes_priorities_and_the_rest_loses_them() {
        let mut st = BoardState::default();
        let items = round_items(&[], &["canvas/a".into(), "gap/b".into(), "gap/c".into()]).unwrap();
        st.rounds.insert(
            "r1".into(),
            open_round("r1".into(), "t", items, 5, None, &[]).unwrap(),
        );
        // The stored ballots (participant tag, item, dots): two dots on gap/b, one on canvas/a.
        let ballots = [
            ("t1".to_owned(), "gap/b".to_owned(), 2),
            ("t2".to_owned(), "canvas/a".to_owned(), 1),
        ];
        // Not before the reveal, and never for an unknown round.
        assert_eq!(
            prioritize(&mut st, "r1", 2).unwrap_err().code,
            tafel_protocol::ErrorCode::BadRequest
        );
        assert_eq!(
            prioritize(&mut st, "nope", 2).unwrap_err().code,
            tafel_protocol::ErrorCode::NotFound
        );
        st.hidden.insert("gap/c".into(), Default::default());
        reveal_round(&mut st, "r1", &ballots).unwrap();
        let before = st.clone();
        assert!(prioritize(&mut st, "r1", 0).is_err());
        assert!(prioritize(&mut st, "r1", 4).is_err());
        assert_eq!(st, before, "a refusal changes nothing");
        let p = prioritize(&mut st, "r1", 3).unwrap();
        assert_eq!(
            p,
            vec![
                ("canvas/a".to_owned(), Some(2)),
                ("gap/b".to_owned(), Some(1)),
                ("gap/c".to_owned(), None),
            ],
            "an item without a dot is no priority"
        );
        assert_eq!(st.rounds["r1"].prioritized, ["gap/b", "canvas/a"]);
        let p = prioritize(&mut st, "r1", 1).unwrap();
        assert_eq!(p[0], ("canvas/a".to_owned(), None));
        assert_eq!(
            BoardState::round_json(&st.rounds["r1"], 2)["priorities"],
            json!(["gap/b"])
        );
        assert!(!st.hidden["gap/c"].fields.contains_key("priority"));
    }

    #[test]
    fn a_round_stored_with_bare_card_ids_reads_as_canvas_items() {
        let old = json!({"id": "r1", "title": "t", "cards": ["a", "gap/g"], "budget": 3,
            "max_per_card": 3, "status": "open", "ballots": {"e1": {"a": 2}}, "totals": null});
        let mut st = BoardState::default();
        let r: Round = serde_json::from_value(old).unwrap();
        assert_eq!(r.cards, ["canvas/a", "gap/g"]);
        assert_eq!(r.ballots["e1"]["canvas/a"], 2);
        st.rounds.insert("r1".into(), r);
        let b = change_ballot(&mut st, "r1", "e1", &BallotChange::Vote("canvas/a".into())).unwrap();
        assert_eq!(b["votes"], json!({"canvas/a": 3}), "the old dots count on");
    }

    #[test]
    fn only_participants_vote() {
        assert!(may_vote(Role::Employee).is_ok());
        assert!(may_vote(Role::Employer).is_ok());
        assert!(may_vote(Role::Union).is_ok());
        assert!(may_vote(Role::Facilitator).is_err());
        assert!(may_vote(Role::Observer).is_err());
    }

    #[test]
    fn drafts_follow_the_template_and_the_role() {
        let t = template();
        let d = |section: &str, text: &str| NewDraft {
            section: section.into(),
            text: text.into(),
            pijlers: vec![],
            thema: None,
            kind: None,
        };
        let section = t
            .sections
            .iter()
            .find(|s| s.add.contains(&Role::Employee))
            .expect("a section employees add to")
            .id
            .clone();
        let ok = new_draft(
            &t,
            &employee("e1"),
            d(&section, "Meer thuiswerk"),
            "d1".into(),
            5,
        );
        assert_eq!(ok.unwrap().sub, "e1");
        assert!(new_draft(&t, &employee("e1"), d("nergens", "x"), "d".into(), 5).is_err());
        assert!(new_draft(&t, &employee("e1"), d(&section, "  "), "d".into(), 5).is_err());
        let long = "x".repeat(2001);
        assert!(new_draft(&t, &employee("e1"), d(&section, &long), "d".into(), 5).is_err());
        let mut labelled = d(&section, "x");
        labelled.pijlers = vec!["onbekend".into()];
        assert!(new_draft(&t, &employee("e1"), labelled, "d".into(), 5).is_err());
        let mut obs = employee("o");
        obs.role = Role::Observer;
        assert_eq!(
            new_draft(&t, &obs, d(&section, "x"), "d".into(), 5)
                .unwrap_err()
                .code,
            tafel_protocol::ErrorCode::Forbidden
        );
    }

    #[test]
    fn erasing_a_participant_takes_their_drafts_and_ballots_only() {
        let mut st = with_round(3, None);
        change_ballot(&mut st, "r1", "e1", &BallotChange::Vote("a".into())).unwrap();
        change_ballot(&mut st, "r1", "e2", &BallotChange::Vote("a".into())).unwrap();
        let t = template();
        let section = t.sections[0].id.clone();
        for (id, sub) in [("d1", "e1"), ("d2", "e2")] {
            st.drafts.push(Draft {
                id: id.into(),
                sub: sub.into(),
                section: section.clone(),
                text: "x".into(),
                pijlers: vec![],
                thema: None,
                kind: None,
                created_at: 0,
            });
        }
        erase_inputs(&mut st, "e1");
        assert_eq!(st.drafts.len(), 1);
        assert_eq!(st.drafts[0].sub, "e2");
        assert!(!st.rounds["r1"].ballots.contains_key("e1"));
        assert!(st.rounds["r1"].ballots.contains_key("e2"));
    }
}
