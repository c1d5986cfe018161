//! The session's HTTP handlers: the facilitator's commands (decided by `domain::commands`,
//! carried out with `domain::edits` through `ops`), the audit log, and the participants' secret
//! inputs — private drafts and dot-voting ballots, which stay on the server until a reveal.
//! After each change the public part is mirrored into the `control` document.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{json, Value};
use tafel_protocol::{DocName, ErrorCode, Role};

use crate::auth::now_secs;
use crate::board::Board;
use crate::domain::commands::{self, Applied, BallotChange, Command, NewDraft, MAX_DRAFTS};
use crate::domain::edits::{self, Published};
use crate::domain::state::{author_key, Author, AuthorMode, Participant};
use crate::domain::Refusal;
use crate::edge::{AppError, AppState, FacilitatorOf, ForBoard};
use crate::moderation::{self, Target};
use crate::ops::{self, now_ms};

fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        Alphanumeric
            .sample_string(&mut rand::rng(), 10)
            .to_lowercase()
    )
}

/// `POST /api/boards/{id}/control`: one facilitator command.
pub async fn control(
    State(state): State<AppState>,
    FacilitatorOf(at): FacilitatorOf,
    body: Result<Json<Command>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let Json(cmd) = body?;
    let who = at.who().await;
    let step_before = at.board.lock().step.clone();
    let answer = run(&state, &at.board, &who, cmd).await?;
    ops::mirror(&state, &at.board).await?;
    // History: an automatic snapshot at every step change.
    let step = at.board.lock().step.clone();
    if step != step_before {
        let title = at
            .board
            .template
            .steps
            .iter()
            .find(|s| s.id == step)
            .map(|s| s.title.clone())
            .unwrap_or_default();
        ops::snapshot(&state, &at.board, &format!("Stap {step}: {title}"), true).await?;
    }
    Ok(Json(answer))
}

async fn run(
    state: &AppState,
    board: &Arc<Board>,
    who: &Participant,
    cmd: Command,
) -> Result<Value, AppError> {
    let now = now_ms();
    if let Command::CloseRound { round } = &cmd {
        // Votes stop in the ballot store first, then the state says so.
        if let Some(r) = board.round(round).await? {
            board.set_round_status(&r, "closed").await?;
        }
    }
    let applied = board
        .update(|st| commands::apply(st, &board.template, who, &cmd, now))
        .await??;
    match applied {
        Applied::Done => return Ok(json!({"ok": true})),
        Applied::AuthorMode(mode) => {
            rewrite_authors(state, board, mode).await?;
            return Ok(json!({"ok": true}));
        }
        Applied::WithDocuments => {}
    }
    match cmd {
        // Decided by `commands::apply` above.
        Command::Step { .. }
        | Command::Phase { .. }
        | Command::Timer { .. }
        | Command::Lock { .. }
        | Command::Presentation { .. }
        | Command::AuthorMode { .. }
        | Command::PrivateWriting { .. }
        | Command::CloseRound { .. } => {}
        Command::RevealDrafts => return reveal_drafts(state, board, who).await,
        Command::OpenRound {
            title,
            cards,
            items,
            budget,
            max_per_card,
        } => {
            let keys = commands::round_items(&cards, &items)?;
            let mut missing = Vec::new();
            for (doc, root) in [(DocName::Canvas, "cards"), (DocName::Gap, "rows")] {
                let prefix = format!("{}/", doc.as_str());
                let wanted: Vec<String> = keys
                    .iter()
                    .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
                    .collect();
                if wanted.is_empty() {
                    continue;
                }
                let absent = ops::edit(state, board, doc, move |txn| {
                    json!(edits::missing_items(txn, root, &wanted))
                })
                .await?;
                let absent: Vec<String> = serde_json::from_value(absent).unwrap_or_default();
                missing.extend(absent.into_iter().map(|id| format!("{prefix}{id}")));
            }
            let id = new_id("r");
            let round =
                commands::open_round(id.clone(), &title, keys, budget, max_per_card, &missing)?;
            board
                .update(|st| {
                    board.audit(
                        st,
                        who,
                        "round-open",
                        json!({"round": id, "cards": round.cards, "budget": budget}),
                    );
                    st.rounds.insert(id.clone(), round.clone());
                })
                .await?;
            // Its record in the ballot store, where votes are checked (a vote that comes first,
            // on any node, creates it the same way from the stored state).
            board.ensure_round(&round).await?;
            return Ok(json!({"ok": true, "round": id}));
        }
        Command::RevealRound { round } => return reveal_round(state, board, who, &round).await,
        Command::Prioritize { round, top } => {
            return prioritize(state, board, who, &round, top).await
        }
        Command::Hide { card, row } => {
            moderation::hide(state, board, who, &Target::from_fields(card, row)?, None).await?
        }
        Command::Restore { card, row } => {
            moderation::restore(state, board, who, &Target::from_fields(card, row)?).await?
        }
        Command::Merge { card, row, into } => {
            let t = Target::from_fields(card, row)?;
            moderation::hide(state, board, who, &t, Some(&into)).await?
        }
    }
    Ok(json!({"ok": true}))
}

/// Rewrites the `author` of every card and row whose creator the server knows.
async fn rewrite_authors(
    state: &AppState,
    board: &Arc<Board>,
    mode: AuthorMode,
) -> Result<(), AppError> {
    let all: Vec<(String, Option<String>)> = {
        let st = board.lock();
        st.authors
            .iter()
            .filter(|(key, _)| !st.drafts.iter().any(|d| &d.id == *key))
            .map(|(key, a)| {
                (
                    key.clone(),
                    Participant::author_text(a.role, &a.display, mode),
                )
            })
            .collect()
    };
    for doc in [DocName::Canvas, DocName::Gap] {
        // This document's records; bare ids are records from before they named their document,
        // all of them canvas cards or drafts.
        let prefix = format!("{}/", doc.as_str());
        let authors: Vec<(String, Option<String>)> = all
            .iter()
            .filter_map(|(key, text)| match key.strip_prefix(&prefix) {
                Some(id) => Some((id.to_owned(), text.clone())),
                None if doc == DocName::Canvas && !key.contains('/') => {
                    Some((key.clone(), text.clone()))
                }
                None => None,
            })
            .collect();
        let root = edits::items_root(doc);
        ops::edit(state, board, doc, move |txn| {
            edits::rewrite_authors(txn, root, &authors);
            Value::Null
        })
        .await?;
    }
    Ok(())
}

/// Publishes every draft as a canvas card under the board's author setting, then ends the
/// private-writing phase.
async fn reveal_drafts(
    state: &AppState,
    board: &Arc<Board>,
    who: &Participant,
) -> Result<Value, AppError> {
    let (drafts, mode) = {
        let st = board.lock();
        (st.drafts.clone(), st.author_mode)
    };
    let prepared: Vec<Published> = drafts
        .iter()
        .map(|d| {
            let (role, display) = match board.lock().authors.get(&d.id) {
                Some(a) => (a.role, a.display.clone()),
                None => (Role::Employee, "Medewerker".into()),
            };
            let id = new_id("c");
            let owner = board.owner_tag(&d.sub, &id);
            Published {
                id,
                draft: d.clone(),
                owner,
                author: Participant::author_text(role, &display, mode),
            }
        })
        .collect();
    let published = prepared.len();
    let now = now_ms();
    let for_edit = prepared.clone();
    ops::edit(state, board, DocName::Canvas, move |txn| {
        edits::publish(txn, &for_edit, now);
        Value::Null
    })
    .await?;
    let ids: Vec<String> = prepared.iter().map(|p| p.id.clone()).collect();
    board
        .update(|st| {
            for p in &prepared {
                if let Some(a) = st.authors.remove(&p.draft.id) {
                    st.authors.insert(author_key(DocName::Canvas, &p.id), a);
                }
            }
            st.drafts.clear();
            st.private_writing = false;
            board.audit(st, who, "reveal-drafts", json!({"cards": ids}));
        })
        .await?;
    Ok(json!({"ok": true, "published": published}))
}

/// Ends a round and writes its totals into `control` and onto the cards.
async fn reveal_round(
    state: &AppState,
    board: &Arc<Board>,
    who: &Participant,
    round: &str,
) -> Result<Value, AppError> {
    let r = board
        .round(round)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such round"))?;
    // No dot is accepted from here on, on any node: the totals below are final.
    board.set_round_status(&r, "revealed").await?;
    let ballots = board.round_ballots(round).await?;
    let totals = board
        .update(|st| {
            let totals = commands::reveal_round(st, round, &ballots)?;
            board.audit(
                st,
                who,
                "round-reveal",
                json!({"round": round, "totals": totals}),
            );
            Some(totals)
        })
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such round"))?;
    let for_cards: std::collections::BTreeMap<String, u32> = totals
        .iter()
        .filter_map(|(k, n)| Some((k.strip_prefix("canvas/")?.to_owned(), *n)))
        .collect();
    ops::edit(state, board, DocName::Canvas, move |txn| {
        edits::write_votes(txn, &for_cards);
        Value::Null
    })
    .await?;
    Ok(json!({"ok": true, "totals": totals}))
}

/// Turns the top of a revealed round into priorities: decided on the state (and audited), then
/// written as `priority` on the cards and gap rows.
async fn prioritize(
    state: &AppState,
    board: &Arc<Board>,
    who: &Participant,
    round: &str,
    top: u32,
) -> Result<Value, AppError> {
    let priorities = board
        .update(|st| {
            let p = commands::prioritize(st, round, top)?;
            let chosen = &st.rounds[round].prioritized;
            let detail = json!({"round": round, "top": top, "items": chosen});
            board.audit(st, who, "prioritize", detail);
            Ok::<_, Refusal>(p)
        })
        .await??;
    let of = |prefix: &str| -> Vec<(String, Option<u32>)> {
        priorities
            .iter()
            .filter_map(|(k, n)| Some((k.strip_prefix(prefix)?.to_owned(), *n)))
            .collect()
    };
    let cards = of("canvas/");
    if !cards.is_empty() {
        ops::edit(state, board, DocName::Canvas, move |txn| {
            edits::write_priorities(txn, "cards", &cards);
            Value::Null
        })
        .await?;
    }
    // On the gap board the priority is also the rows' order: the chosen rows go first.
    let rows: Vec<(String, u32)> = of("gap/")
        .into_iter()
        .filter_map(|(id, n)| Some((id, n?)))
        .collect();
    if !rows.is_empty() {
        let next = priorities.iter().filter(|(_, n)| n.is_some()).count() as u32 + 1;
        ops::edit(state, board, DocName::Gap, move |txn| {
            edits::prioritize_rows(txn, &rows, next);
            Value::Null
        })
        .await?;
    }
    let mut ranked: Vec<(u32, &String)> = priorities
        .iter()
        .filter_map(|(k, n)| Some(((*n)?, k)))
        .collect();
    ranked.sort();
    let chosen: Vec<&String> = ranked.into_iter().map(|(_, k)| k).collect();
    Ok(json!({"ok": true, "priorities": chosen}))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/boards/{id}/audit`: the facilitator's log of moderation, locks, reveals and the
/// other session commands, as JSON or CSV.
pub async fn audit(
    FacilitatorOf(at): FacilitatorOf,
    Query(q): Query<AuditQuery>,
) -> Result<Response, AppError> {
    let entries = at.board.lock().audit.clone();
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(json!(entries)).into_response()),
        Some("csv") => {
            let mut csv = String::from("at,sub,name,role,action,detail\n");
            for e in &entries {
                let cells = [
                    e.at.to_string(),
                    e.sub.clone(),
                    e.name.clone(),
                    e.role.to_string(),
                    e.action.clone(),
                    e.detail.to_string(),
                ];
                let row: Vec<String> = cells
                    .iter()
                    .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
                    .collect();
                csv.push_str(&row.join(","));
                csv.push('\n');
            }
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
        }
        Some(_) => Err(Refusal::bad("format must be json or csv").into()),
    }
}

/// `GET /api/boards/{id}/drafts`: your own private drafts (nobody else's, ever).
pub async fn drafts(at: ForBoard) -> Json<Value> {
    let who = at.who().await;
    Json(commands::own_drafts(&at.board.lock(), &who.sub))
}

/// `POST /api/boards/{id}/drafts`: a private card, published only when the facilitator reveals.
pub async fn add_draft(
    State(state): State<AppState>,
    at: ForBoard,
    body: Result<Json<NewDraft>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let who = at.who().await;
    let Json(d) = body?;
    let draft_id = new_id("d");
    let draft = commands::new_draft(&at.board.template, &who, d, draft_id.clone(), now_secs())?;
    let author = Author {
        sub: who.sub.clone(),
        role: who.role,
        display: who.display.clone(),
    };
    let kept = at
        .board
        .update(|st| {
            if st.drafts.len() >= MAX_DRAFTS {
                return false;
            }
            st.authors.insert(draft_id.clone(), author.clone());
            st.drafts.push(draft.clone());
            true
        })
        .await?;
    if !kept {
        return Err(AppError::new(
            ErrorCode::Overloaded,
            format!(
                "this board already holds {MAX_DRAFTS} drafts; ask the facilitator to reveal them"
            ),
        ));
    }
    // The count of drafts handed in (`draftsIn`) is public: the facilitator's panel shows it live.
    ops::mirror(&state, &at.board).await?;
    let mine = commands::own_drafts(&at.board.lock(), &who.sub);
    Ok(Json(json!({"id": draft_id, "drafts": mine})))
}

/// `DELETE /api/boards/{id}/drafts/{draft}`: takes one of your own drafts back.
pub async fn remove_draft(
    State(state): State<AppState>,
    at: ForBoard,
    Path((_, draft)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let who = at.who().await;
    let removed = at
        .board
        .update(|st| {
            let before = st.drafts.len();
            st.drafts.retain(|d| !(d.id == draft && d.sub == who.sub));
            let removed = before != st.drafts.len();
            if removed {
                st.authors.remove(&draft);
            }
            removed
        })
        .await?;
    if !removed {
        return Err(AppError::new(ErrorCode::NotFound, "no such draft of yours"));
    }
    ops::mirror(&state, &at.board).await?;
    Ok(Json(commands::own_drafts(&at.board.lock(), &who.sub)))
}

/// `GET .../rounds/{round}/ballot`: your own dots and what is left of your budget.
pub async fn ballot(
    at: ForBoard,
    Path((_, round)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let who = at.who().await;
    let (r, stored) = at
        .board
        .ballot(&round, &who.sub)
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such round"))?;
    let status = stored.status.as_deref().unwrap_or(&r.status);
    Ok(Json(commands::ballot_json(&r, status, &stored.dots)))
}

#[derive(Deserialize)]
pub struct Vote {
    #[serde(default)]
    card: Option<String>,
    #[serde(default)]
    item: Option<String>,
}

/// `POST .../rounds/{round}/votes {"item": "gap/<id>"}` (or `{"card": id}` for a canvas card):
/// one dot, within the budget and the per-item limit, while the round is open.
pub async fn vote(
    State(state): State<AppState>,
    at: ForBoard,
    Path((_, round)): Path<(String, String)>,
    body: Result<Json<Vote>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    commands::may_vote(at.claims.role)?;
    let Json(v) = body?;
    let item = commands::vote_item(v.card, v.item)?;
    change_ballot(&state, &at, &round, BallotChange::Vote(item)).await
}

/// `DELETE .../rounds/{round}/votes/{item}`: takes one of your dots back while the round is open
/// (`{item}` a canvas card id, or `gap%2F<row id>`).
pub async fn unvote(
    State(state): State<AppState>,
    at: ForBoard,
    Path((_, round, card)): Path<(String, String, String)>,
) -> Result<Json<Value>, AppError> {
    commands::may_vote(at.claims.role)?;
    let item = match card.contains('/') {
        true => commands::vote_item(None, Some(card)),
        false => commands::vote_item(Some(card), None),
    }?;
    change_ballot(&state, &at, &round, BallotChange::Unvote(item)).await
}

/// Stores a ballot change the domain allowed (one atomic step in the ballot store; the board
/// state is not rewritten) and answers with the ballot; the public round (voter count) is
/// mirrored into `control`, which every node's clients follow.
async fn change_ballot(
    state: &AppState,
    at: &ForBoard,
    round: &str,
    change: BallotChange,
) -> Result<Json<Value>, AppError> {
    let who = at.who().await;
    let answer = at.board.change_ballot(round, &who.sub, &change).await??;
    ops::mirror(state, &at.board).await?;
    Ok(Json(answer))
}
