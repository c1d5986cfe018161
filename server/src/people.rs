//! Who is in and who is out: invites (a link that invites a role, with an expiry, an optional
//! number of seats, a join count and revocation), joining (an invite token answers a personal
//! token with a fresh `sub`; a personal token, also one that expired recently, keeps its `sub`),
//! and the facilitator's live list of participants with removal (every endpoint refuses the
//! removed `sub`, their open connections close with 4403).
//!
//! Everything lives in the board's server-side state (`BoardState::invites`, `participants`,
//! `removed`) and is written to the audit log. The audit log and these lists are the
//! facilitator's only; they name a participant by their board tag (`Board::participant_tag`),
//! never by their `sub`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{json, Value};
use tafel_protocol::index::Owner;
use tafel_protocol::{BoardId, Claims, ErrorCode, Role};

use crate::auth::{now_secs, parse_ttl};
use crate::board::Board;
use crate::domain::commands::erase_inputs;
use crate::domain::state::{AuditEntry, Invite, Participant};
use crate::edge::{board_or_404, parse_board, refuse_removed, AppError, AppState, FacilitatorOf};
use crate::ops;

/// The longest an invite may live.
pub const MAX_INVITE_TTL: Duration = Duration::from_secs(30 * 86400);
/// How long after its expiry a personal token kept on a device still renews through `/join`.
pub const REJOIN_GRACE_SECS: u64 = 7 * 86400;
/// The most seats one invite may have.
pub const MAX_SEATS: u32 = 10_000;
/// A renewed personal token lives this long when its own lifetime is unknown.
const DEFAULT_LIFETIME: u64 = 8 * 3600;

fn new_id(prefix: &str, len: usize) -> String {
    format!(
        "{prefix}{}",
        Alphanumeric
            .sample_string(&mut rand::rng(), len)
            .to_lowercase()
    )
}

fn bad(msg: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::BadRequest, msg)
}

/// An audit entry about a participant, naming them by their board tag, never their `sub`.
fn audit_as_participant(
    board: &Board,
    who: &Participant,
    action: &str,
    detail: Value,
) -> AuditEntry {
    let tag = board.participant_tag(&who.sub);
    tracing::info!(board = %board.id(), participant = %tag, role = %who.role, action, "audit");
    AuditEntry {
        at: now_secs(),
        sub: tag,
        name: who.display.clone(),
        role: who.role,
        action: action.to_owned(),
        detail,
    }
}

#[derive(Deserialize)]
pub struct CreateInvite {
    role: String,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    seats: Option<u32>,
}

/// `POST /api/boards/{id}/invites`: an invite token (claim `inv`) and its link.
pub async fn invite(
    State(state): State<AppState>,
    FacilitatorOf(at): FacilitatorOf,
    headers: HeaderMap,
    body: Result<Json<CreateInvite>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let Json(body) = body?;
    let (board, id) = (at.board.clone(), at.board.id().clone());
    let role = Role::parse(&body.role)
        .ok_or_else(|| bad("role must be facilitator, employer, union, employee or observer"))?;
    let ttl = parse_ttl(body.ttl.as_deref().unwrap_or("8h")).map_err(bad)?;
    if ttl > MAX_INVITE_TTL {
        return Err(bad("an invite lives at most 30 days (ttl 30d)"));
    }
    if body.seats.is_some_and(|s| s == 0 || s > MAX_SEATS) {
        return Err(bad(format!("seats is 1 to {MAX_SEATS}")));
    }
    let now = now_secs();
    let invite = Invite {
        id: new_id("i", 12),
        role,
        created_at: now,
        expires_at: now + ttl.as_secs(),
        seats: body.seats,
        joined: 0,
        revoked_at: None,
    };
    let by = at.who().await;
    let stored = invite.clone();
    board
        .update(|st| {
            let detail = json!({"invite": stored.id, "role": role, "expires_at": stored.expires_at, "seats": stored.seats});
            st.invites.insert(stored.id.clone(), stored.clone());
            board.audit(st, &by, "invite", detail);
        })
        .await?;
    let token = state.keys.sign(&Claims {
        sub: format!("inv-{}", invite.id),
        name: body.name.unwrap_or_default(),
        role,
        board: id.as_str().to_owned(),
        exp: invite.expires_at,
        iat: Some(now),
        nbf: None,
        inv: Some(invite.id.clone()),
    });
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    let url = format!("{scheme}://{host}/?board={id}#token={token}");
    Ok(Json(json!({
        "token": token, "url": url, "role": role, "expires_in": ttl.as_secs(),
        "id": invite.id, "expires_at": invite.expires_at, "seats": invite.seats,
    })))
}

/// `GET /api/boards/{id}/invites`: every invite of the board, oldest first.
pub async fn invites(FacilitatorOf(at): FacilitatorOf) -> Result<Json<Value>, AppError> {
    let board = at.board.clone();
    let now = now_secs();
    let st = board.lock();
    let mut list: Vec<&Invite> = st.invites.values().collect();
    list.sort_by_key(|i| (i.created_at, i.id.clone()));
    Ok(Json(json!(list
        .iter()
        .map(|i| i.json(now))
        .collect::<Vec<_>>())))
}

/// `DELETE /api/boards/{id}/invites/{invite}`: no more joins through it. People who joined
/// keep their own tokens (remove them one by one to take them out).
pub async fn revoke(
    FacilitatorOf(at): FacilitatorOf,
    Path((_, invite)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let board = at.board.clone();
    let by = at.who().await;
    let now = now_secs();
    let out = board
        .update(|st| {
            let inv = st.invites.get_mut(&invite)?;
            let fresh = inv.revoked_at.is_none();
            if fresh {
                inv.revoked_at = Some(now);
            }
            let out = inv.json(now);
            if fresh {
                let detail =
                    json!({"invite": invite, "role": out["role"], "joined": out["joined"]});
                board.audit(st, &by, "invite-revoke", detail);
            }
            Some(out)
        })
        .await?;
    out.map(Json)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "no such invite"))
}

/// `GET /api/boards/{id}/participants`: everyone who joined or connected, by their board tag,
/// with role, display (an employee's pseudonym), whether they are online (on this node) and
/// whether they were removed.
pub async fn participants(
    State(state): State<AppState>,
    FacilitatorOf(at): FacilitatorOf,
) -> Result<Json<Value>, AppError> {
    let board = at.board.clone();
    let online = state.registry.online(board.id()).await;
    let st = board.lock();
    let mut list: Vec<Value> = st
        .participants
        .iter()
        .map(|(sub, m)| {
            let tag = board.participant_tag(sub);
            json!({
                "online": online.contains(&Owner::Participant(tag.clone().into())),
                "id": tag,
                "role": m.role,
                "display": m.display,
                "first_seen": m.first_seen,
                "invite": m.invite,
                "removed": st.removed.contains(sub),
            })
        })
        .collect();
    list.sort_by_key(|v| {
        (
            v["first_seen"].as_u64(),
            v["id"].as_str().map(str::to_owned),
        )
    });
    Ok(Json(json!(list)))
}

/// `DELETE /api/boards/{id}/participants/{participant}`: the participant's token is refused on
/// every endpoint from now on and their open connections are closed with 4403.
pub async fn remove(
    State(state): State<AppState>,
    FacilitatorOf(at): FacilitatorOf,
    Path((_, participant)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let board = at.board.clone();
    let by = at.who().await;
    let found = {
        let st = board.lock();
        st.participants
            .iter()
            .find(|(sub, _)| board.participant_tag(sub) == participant)
            .map(|(sub, m)| (sub.clone(), m.clone()))
    };
    let Some((sub, member)) = found else {
        return Err(AppError::new(ErrorCode::NotFound, "no such participant"));
    };
    if sub == at.claims.sub {
        return Err(bad("you cannot remove yourself"));
    }
    if member.role == Role::Facilitator {
        return Err(bad("a facilitator cannot be removed"));
    }
    board
        .update(|st| {
            if st.removed.insert(sub.clone()) {
                let detail = json!({"participant": participant, "role": member.role, "display": member.display, "invite": member.invite});
                board.audit(st, &by, "remove", detail);
            }
            erase_inputs(st, &sub);
        })
        .await?;
    board.erase_ballots(&sub).await?;
    // The rounds' public counts (`voters`) no longer include them.
    ops::mirror(&state, &board).await?;
    state
        .registry
        .remove_participant(board.id(), &Owner::Participant(participant.clone().into()))
        .await;
    Ok(Json(
        json!({"ok": true, "id": participant, "display": member.display}),
    ))
}

#[derive(Deserialize)]
pub struct JoinBody {
    name: String,
}

/// `POST /api/signin` `{"name"}`: the facilitator's own name at sign-in. Takes a facilitator
/// token for every board (`board: "*"`, not an invite) and answers the same token with that
/// name (same `sub`, same expiry), so the audit log and presence show the facilitator's name,
/// not "Facilitator".
pub async fn signin(
    State(state): State<AppState>,
    crate::edge::Auth(claims): crate::edge::Auth,
    body: Result<Json<JoinBody>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    if claims.role != Role::Facilitator
        || claims.scope() != Ok(tafel_protocol::BoardScope::All)
        || claims.inv.is_some()
    {
        return Err(crate::edge::forbidden(
            "naming yourself here needs a facilitator token for board \"*\"",
        ));
    }
    let Json(body) = body?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(bad("a name is 1 to 60 characters"));
    }
    let token = state.keys.sign(&Claims {
        name: name.to_owned(),
        iat: Some(now_secs()),
        ..claims
    });
    Ok(Json(json!({"token": token, "name": name})))
}

/// A token for joining: an invite token, or a personal token (also one that expired less than
/// `REJOIN_GRACE_SECS` ago).
pub struct JoinAuth(pub Claims);

impl axum::extract::FromRequestParts<AppState> for JoinAuth {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, AppError> {
        let token = crate::edge::bearer(&parts.headers).ok_or_else(|| {
            AppError::new(
                ErrorCode::Unauthorized,
                "send a token as Authorization: Bearer TOKEN",
            )
        })?;
        Ok(JoinAuth(state.keys.verify_with_grace(
            token,
            now_secs(),
            REJOIN_GRACE_SECS,
        )?))
    }
}

/// `POST /api/boards/{id}/join`: with an invite token, a new person (a fresh `sub`: own
/// pseudonym, drafts and votes) and their personal token; with a personal token, the same
/// `sub` under the chosen name (renewed when it had expired recently).
pub async fn join(
    State(state): State<AppState>,
    JoinAuth(claims): JoinAuth,
    Path(id): Path<String>,
    body: Result<Json<JoinBody>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let id = parse_board(&id)?;
    if !claims.may_open_board(&id) {
        return Err(crate::edge::forbidden("this token is for another board"));
    }
    let Json(body) = body?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(bad("a name is 1 to 60 characters"));
    }
    let board = board_or_404(&state, &id).await?;
    let now = now_secs();
    match claims.inv.clone() {
        Some(inv) => join_invite(&state, &board, &id, claims, &inv, name, now).await,
        None => {
            refuse_removed(&board, &claims)?;
            let me = board.participant(&claims.sub, claims.role, name).await;
            ops::note(&board, &me, None).await;
            let renewed = claims.exp <= now;
            let exp = if renewed {
                let lifetime = claims
                    .iat
                    .map(|iat| claims.exp.saturating_sub(iat))
                    .filter(|l| *l > 0)
                    .unwrap_or(DEFAULT_LIFETIME)
                    .min(MAX_INVITE_TTL.as_secs());
                now + lifetime
            } else {
                claims.exp
            };
            if renewed {
                let entry = audit_as_participant(&board, &me, "rejoin", json!({}));
                board.update(|st| st.audit.push(entry.clone())).await?;
            }
            let token = state.keys.sign(&Claims {
                name: name.to_owned(),
                iat: Some(now),
                exp,
                ..claims
            });
            Ok(Json(json!({"token": token, "display": me.display})))
        }
    }
}

async fn join_invite(
    state: &AppState,
    board: &Arc<Board>,
    id: &BoardId,
    claims: Claims,
    inv: &str,
    name: &str,
    now: u64,
) -> Result<Json<Value>, AppError> {
    let sub = new_id("p-", 16);
    // Take a seat first (under the state lock, so two joins never take the last seat twice).
    let seat = board
        .update(|st| {
            let Some(invite) = st.invites.get_mut(inv) else {
                return Err(AppError::new(
                    ErrorCode::Forbidden,
                    "this invite is not known on this board",
                ));
            };
            if invite.role != claims.role {
                return Err(AppError::new(
                    ErrorCode::Forbidden,
                    "this invite is not known on this board",
                ));
            }
            if invite.revoked_at.is_some() {
                return Err(AppError::new(
                    ErrorCode::InviteRevoked,
                    "the facilitator revoked this invite; ask for a new link",
                ));
            }
            if invite.seats.is_some_and(|s| invite.joined >= s) {
                return Err(AppError::new(
                    ErrorCode::InviteFull,
                    "every seat of this invite is taken; ask the facilitator for a new link",
                ));
            }
            invite.joined += 1;
            Ok((invite.joined, invite.seats))
        })
        .await?;
    let (joined, seats) = seat?;
    let me = board.participant(&sub, claims.role, name).await;
    ops::note(board, &me, Some(inv)).await;
    let entry = audit_as_participant(
        board,
        &me,
        "join",
        json!({"invite": inv, "joined": joined, "seats": seats}),
    );
    board.update(|st| st.audit.push(entry.clone())).await?;
    let token = state.keys.sign(&Claims {
        sub,
        name: name.to_owned(),
        role: claims.role,
        board: id.as_str().to_owned(),
        exp: claims.exp,
        iat: Some(now),
        nbf: None,
        inv: None,
    });
    Ok(Json(json!({"token": token, "display": me.display})))
}
