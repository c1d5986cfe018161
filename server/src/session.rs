//! The facilitator's commands and the participants' secret inputs, all enforced here on the
//! server: step, phase, timer (server time is the truth), locks, presentation mode, the author
//! setting, private writing and its reveal, dot-voting rounds (ballots stay on the server until
//! the reveal writes totals), moderation (hide, restore, merge) and the audit log. After each
//! change the public part is mirrored into the `control` document.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{json, Value};
use tafel_protocol::policy::{PIJLERS, TYPES};
use tafel_protocol::{Claims, DocKey, DocName, ErrorCode, Role};
use yrs::types::text::TextPrelim;
use yrs::{Map, MapPrelim, Out, WriteTxn};

use crate::auth::now_secs;
use crate::board::{AuthorMode, Board, BoardState, Draft, Participant, Round};
use crate::domain::{self, any, Applied};
use crate::edge::{board_or_404, forbidden, parse_board, unavailable, AppError, AppState, Auth};
use crate::moderation::{self, Target};

/// Most unrevealed drafts a board keeps.
const MAX_DRAFTS: usize = 5000;

fn bad(msg: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::BadRequest, msg)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        Alphanumeric
            .sample_string(&mut rand::rng(), 10)
            .to_lowercase()
    )
}

async fn me(
    state: &AppState,
    claims: &Claims,
    id: &str,
) -> Result<(Arc<Board>, Participant), AppError> {
    let id = parse_board(id)?;
    if !claims.may_open_board(&id) {
        return Err(forbidden("this token is for another board"));
    }
    let board = board_or_404(state, &id).await?;
    let who = board
        .participant(&claims.sub, claims.role, &claims.name)
        .await;
    Ok((board, who))
}

/// Writes the public session state and the rounds (without ballots) into `control`.
pub async fn mirror(state: &AppState, board: &Arc<Board>) -> Result<(), AppError> {
    let (session, rounds) = {
        let st = board.lock();
        let rounds: Vec<(String, Value)> = st
            .rounds
            .values()
            .map(|r| (r.id.clone(), BoardState::round_json(r)))
            .collect();
        (st.session_json(now_ms()), rounds)
    };
    let edit = Box::new(move |txn: &mut yrs::TransactionMut| {
        let m = txn.get_or_insert_map("session");
        for (k, v) in session.as_object().into_iter().flatten() {
            m.insert(txn, k.as_str(), any(v.clone()));
        }
        let r = txn.get_or_insert_map("rounds");
        for (id, v) in rounds {
            r.insert(txn, id, any(v));
        }
        Value::Null
    });
    state
        .registry
        .server_edit(
            &DocKey::new(board.id().clone(), DocName::Control),
            board,
            edit,
        )
        .await
        .map(|_| ())
        .ok_or_else(unavailable)
}

/// Runs a server edit on the canvas.
async fn on_canvas(
    state: &AppState,
    board: &Arc<Board>,
    edit: crate::doc::ServerEdit,
) -> Result<Value, AppError> {
    state
        .registry
        .server_edit(
            &DocKey::new(board.id().clone(), DocName::Canvas),
            board,
            edit,
        )
        .await
        .ok_or_else(unavailable)
}

pub use crate::domain::Command;

/// `POST /api/boards/{id}/control`: one facilitator command.
pub async fn control(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
    body: Result<Json<Command>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let (board, who) = me(&state, &claims, &id).await?;
    if claims.role != Role::Facilitator {
        return Err(forbidden("only the facilitator runs the session"));
    }
    let Json(cmd) = body?;
    let answer = run(&state, &board, &who, cmd).await?;
    mirror(&state, &board).await?;
    Ok(Json(answer))
}

async fn run(
    state: &AppState,
    board: &Arc<Board>,
    who: &Participant,
    cmd: Command,
) -> Result<Value, AppError> {
    let now = now_ms();
    let applied = board
        .update(|st| domain::apply(st, &board.template, who, &cmd, now))
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
        // Decided by `domain::apply` above.
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
            budget,
            max_per_card,
        } => {
            if cards.is_empty() || cards.len() > 200 || !(1..=100).contains(&budget) {
                return Err(bad("a round needs 1 to 200 cards and a budget of 1 to 100"));
            }
            let wanted = cards.clone();
            let missing = on_canvas(
                state,
                board,
                Box::new(move |txn| {
                    let existing = txn.get_or_insert_map("cards");
                    json!(wanted
                        .iter()
                        .filter(|c| existing.get(txn, c.as_str()).is_none())
                        .collect::<Vec<_>>())
                }),
            )
            .await?;
            if missing.as_array().is_some_and(|m| !m.is_empty()) {
                return Err(bad(format!("these cards are not on the canvas: {missing}")));
            }
            let id = new_id("r");
            let round = Round {
                id: id.clone(),
                title: title.chars().take(120).collect(),
                cards,
                budget,
                max_per_card: max_per_card.unwrap_or(budget).clamp(1, budget),
                status: "open".into(),
                ballots: BTreeMap::new(),
                totals: None,
            };
            board
                .update(|st| {
                    board.audit(
                        st,
                        who,
                        "round-open",
                        json!({"round": id, "cards": round.cards, "budget": budget}),
                    );
                    st.rounds.insert(id.clone(), round);
                })
                .await?;
            return Ok(json!({"ok": true, "round": id}));
        }
        Command::RevealRound { round } => return reveal_round(state, board, who, &round).await,
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
    for (doc, root) in [(DocName::Canvas, "cards"), (DocName::Gap, "rows")] {
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
        let edit = Box::new(move |txn: &mut yrs::TransactionMut| {
            let items = txn.get_or_insert_map(root);
            for (id, text) in &authors {
                if let Some(Out::YMap(item)) = items.get(txn, id) {
                    match text {
                        Some(t) => {
                            item.insert(txn, "author", t.as_str());
                        }
                        None => {
                            item.remove(txn, "author");
                        }
                    }
                }
            }
            Value::Null
        });
        state
            .registry
            .server_edit(&DocKey::new(board.id().clone(), doc), board, edit)
            .await
            .ok_or_else(unavailable)?;
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
    let prepared: Vec<(String, Draft, String, Option<String>)> = drafts
        .iter()
        .map(|d| {
            let (role, display) = match board.lock().authors.get(&d.id) {
                Some(a) => (a.role, a.display.clone()),
                None => (Role::Employee, "Medewerker".into()),
            };
            let id = new_id("c");
            let tag = board.owner_tag(&d.sub, &id);
            (
                id,
                d.clone(),
                tag,
                Participant::author_text(role, &display, mode),
            )
        })
        .collect();
    let published = prepared.len();
    let now = now_ms();
    let for_edit = prepared.clone();
    on_canvas(
        state,
        board,
        Box::new(move |txn| {
            let cards = txn.get_or_insert_map("cards");
            for (id, d, tag, author) in for_edit {
                let mut fields: Vec<(String, yrs::In)> = vec![
                    ("section".into(), yrs::In::Any(d.section.as_str().into())),
                    ("owner".into(), yrs::In::Any(tag.as_str().into())),
                    ("createdAt".into(), yrs::In::Any((now as f64).into())),
                    ("pijlers".into(), yrs::In::Any(any(json!(d.pijlers)))),
                ];
                if let Some(a) = author {
                    fields.push(("author".into(), yrs::In::Any(a.as_str().into())));
                }
                if let Some(th) = &d.thema {
                    fields.push(("thema".into(), yrs::In::Any(th.as_str().into())));
                }
                if let Some(k) = &d.kind {
                    fields.push(("type".into(), yrs::In::Any(k.as_str().into())));
                }
                let item = cards.insert(txn, id.as_str(), MapPrelim::from_iter(fields));
                item.insert(txn, "text", TextPrelim::new(d.text.as_str()));
            }
            Value::Null
        }),
    )
    .await?;
    let ids: Vec<String> = prepared.iter().map(|(id, ..)| id.clone()).collect();
    board
        .update(|st| {
            for (id, d, ..) in &prepared {
                if let Some(a) = st.authors.remove(&d.id) {
                    st.authors
                        .insert(crate::board::author_key(DocName::Canvas, id), a);
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
    let totals = board
        .update(|st| {
            let r = st.rounds.get_mut(round)?;
            let mut totals: BTreeMap<String, u32> =
                r.cards.iter().map(|c| (c.clone(), 0)).collect();
            for ballot in r.ballots.values() {
                for (card, n) in ballot {
                    *totals.entry(card.clone()).or_default() += n;
                }
            }
            r.status = "revealed".into();
            r.totals = Some(totals.clone());
            crate::moderation::held_votes(st, &totals);
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
    let for_cards = totals.clone();
    on_canvas(
        state,
        board,
        Box::new(move |txn| {
            let cards = txn.get_or_insert_map("cards");
            for (card, n) in &for_cards {
                if let Some(Out::YMap(item)) = cards.get(txn, card) {
                    item.insert(txn, "votes", *n as f64);
                }
            }
            Value::Null
        }),
    )
    .await?;
    Ok(json!({"ok": true, "totals": totals}))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/boards/{id}/audit`: the facilitator's log of moderation, locks, reveals and the
/// other session commands, as JSON or CSV.
pub async fn audit(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, AppError> {
    let (board, _) = me(&state, &claims, &id).await?;
    if claims.role != Role::Facilitator {
        return Err(forbidden("only the facilitator reads the audit log"));
    }
    let entries = board.lock().audit.clone();
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
        Some(_) => Err(bad("format must be json or csv")),
    }
}

#[derive(Deserialize)]
pub struct NewDraft {
    section: String,
    text: String,
    #[serde(default)]
    pijlers: Vec<String>,
    #[serde(default)]
    thema: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

fn own_drafts(board: &Board, sub: &str) -> Value {
    let st = board.lock();
    json!(st
        .drafts
        .iter()
        .filter(|d| d.sub == sub)
        .map(|d| json!({"id": d.id, "section": d.section, "text": d.text, "pijlers": d.pijlers, "thema": d.thema, "type": d.kind}))
        .collect::<Vec<_>>())
}

/// `GET /api/boards/{id}/drafts`: your own private drafts (nobody else's, ever).
pub async fn drafts(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let (board, who) = me(&state, &claims, &id).await?;
    Ok(Json(own_drafts(&board, &who.sub)))
}

/// `POST /api/boards/{id}/drafts`: a private card, published only when the facilitator reveals.
pub async fn add_draft(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
    body: Result<Json<NewDraft>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let (board, who) = me(&state, &claims, &id).await?;
    let Json(d) = body?;
    let section = board
        .template
        .section(&d.section)
        .ok_or_else(|| bad("unknown section"))?;
    if !section.add.contains(&who.role) {
        return Err(forbidden("this role may not add cards in that section"));
    }
    if d.text.trim().is_empty() || d.text.chars().count() > 2000 {
        return Err(bad("a draft is 1 to 2000 characters"));
    }
    if d.pijlers.iter().any(|p| !PIJLERS.contains(&p.as_str()))
        || d.kind.as_deref().is_some_and(|k| !TYPES.contains(&k))
        || d.thema
            .as_deref()
            .is_some_and(|th| !board.template.themes.iter().any(|t| t.id == th))
    {
        return Err(bad("unknown pijler, type or thema"));
    }
    let draft_id = new_id("d");
    let draft = Draft {
        id: draft_id.clone(),
        sub: who.sub.clone(),
        section: d.section,
        text: d.text,
        pijlers: d.pijlers,
        thema: d.thema,
        kind: d.kind,
        created_at: now_secs(),
    };
    let author = crate::board::Author {
        sub: who.sub.clone(),
        role: who.role,
        display: who.display.clone(),
    };
    let kept = board
        .update(|st| {
            if st.drafts.len() >= MAX_DRAFTS {
                return false;
            }
            st.authors.insert(draft_id.clone(), author);
            st.drafts.push(draft);
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
    Ok(Json(
        json!({"id": draft_id, "drafts": own_drafts(&board, &who.sub)}),
    ))
}

pub async fn remove_draft(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path((id, draft)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let (board, who) = me(&state, &claims, &id).await?;
    let removed = board
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
    Ok(Json(own_drafts(&board, &who.sub)))
}

fn ballot_json(round: &Round, sub: &str) -> Value {
    let mine = round.ballots.get(sub).cloned().unwrap_or_default();
    let used: u32 = mine.values().sum();
    json!({"round": round.id, "status": round.status, "budget": round.budget, "maxPerCard": round.max_per_card, "votes": mine, "left": round.budget.saturating_sub(used)})
}

fn may_vote(role: Role) -> Result<(), AppError> {
    match role {
        Role::Employer | Role::Union | Role::Employee => Ok(()),
        _ => Err(forbidden("only participants vote")),
    }
}

/// `GET .../rounds/{round}/ballot`: your own dots and what is left of your budget.
pub async fn ballot(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path((id, round)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let (board, who) = me(&state, &claims, &id).await?;
    let st = board.lock();
    let r = st
        .rounds
        .get(&round)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such round"))?;
    Ok(Json(ballot_json(r, &who.sub)))
}

#[derive(Deserialize)]
pub struct Vote {
    card: String,
}

/// `POST .../rounds/{round}/votes {"card"}`: one dot, within the budget and the per-card limit,
/// while the round is open.
pub async fn vote(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path((id, round)): Path<(String, String)>,
    body: Result<Json<Vote>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let (board, who) = me(&state, &claims, &id).await?;
    may_vote(who.role)?;
    let Json(v) = body?;
    change_ballot(&state, &board, &who, &round, |r, mine| {
        if !r.cards.contains(&v.card) {
            return Err(bad("that card is not in this round"));
        }
        let used: u32 = mine.values().sum();
        if used >= r.budget {
            return Err(AppError::new(
                ErrorCode::Forbidden,
                "no votes left in your budget",
            ));
        }
        let on_card = mine.entry(v.card.clone()).or_default();
        if *on_card >= r.max_per_card {
            return Err(AppError::new(
                ErrorCode::Forbidden,
                "you already gave this card its maximum",
            ));
        }
        *on_card += 1;
        Ok(())
    })
    .await
}

/// Changes the caller's ballot in an open round (the change says whether it is allowed), stores
/// it and answers with the ballot; the public round (voter count) is mirrored into `control`.
async fn change_ballot(
    state: &AppState,
    board: &Arc<Board>,
    who: &Participant,
    round: &str,
    change: impl FnOnce(&Round, &mut BTreeMap<String, u32>) -> Result<(), AppError>,
) -> Result<Json<Value>, AppError> {
    let result = board
        .update(|st| -> Result<Value, AppError> {
            let r = st
                .rounds
                .get_mut(round)
                .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such round"))?;
            if r.status != "open" {
                return Err(AppError::new(
                    ErrorCode::Forbidden,
                    "this round is not open",
                ));
            }
            let mut mine = r.ballots.get(&who.sub).cloned().unwrap_or_default();
            change(r, &mut mine)?;
            r.ballots.insert(who.sub.clone(), mine);
            Ok(ballot_json(r, &who.sub))
        })
        .await?;
    let answer = result?;
    mirror(state, board).await?;
    Ok(Json(answer))
}

/// `DELETE .../rounds/{round}/votes/{card}`: takes one of your dots back while the round is open.
pub async fn unvote(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path((id, round, card)): Path<(String, String, String)>,
) -> Result<Json<Value>, AppError> {
    let (board, who) = me(&state, &claims, &id).await?;
    may_vote(who.role)?;
    change_ballot(&state, &board, &who, &round, |_, mine| {
        match mine.get_mut(&card) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Ok(())
            }
            _ => Err(AppError::new(
                ErrorCode::NotFound,
                "no vote of yours on that card",
            )),
        }
    })
    .await
}
