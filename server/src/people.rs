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
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tafel_protocol::index::Owner;
use tafel_protocol::{BoardId, Claims, ErrorCode, Role};

use crate::auth::{now_secs, parse_ttl};
use crate::board::{AuditEntry, Board, Participant};
use crate::edge::board_or_404;
use crate::edge::{existing_board, parse_board, require_facilitator, AppError, AppState, Auth};

/// The longest an invite may live.
pub const MAX_INVITE_TTL: Duration = Duration::from_secs(30 * 86400);
/// How long after its expiry a personal token kept on a device still renews through `/join`.
pub const REJOIN_GRACE_SECS: u64 = 7 * 86400;
/// The most seats one invite may have.
pub const MAX_SEATS: u32 = 10_000;
/// A renewed personal token lives this long when its own lifetime is unknown.
const DEFAULT_LIFETIME: u64 = 8 * 3600;

/// An invite link: it invites a role, not a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invite {
    pub id: String,
    pub role: Role,
    pub created_at: u64,
    pub expires_at: u64,
    /// The most joins it allows (None: no limit).
    #[serde(default)]
    pub seats: Option<u32>,
    /// How many people joined through it.
    #[serde(default)]
    pub joined: u32,
    /// When the facilitator revoked it (no more joins from then on).
    #[serde(default)]
    pub revoked_at: Option<u64>,
}

impl Invite {
    fn json(&self, now: u64) -> Value {
        json!({
            "id": self.id,
            "role": self.role,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "expired": self.expires_at <= now,
            "seats": self.seats,
            "joined": self.joined,
            "revoked": self.revoked_at.is_some(),
            "revoked_at": self.revoked_at,
        })
    }
}

/// A participant as the facilitator's list shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub role: Role,
    /// An employee's pseudonym; for other roles the name they chose.
    pub display: String,
    pub first_seen: u64,
    /// The invite they joined through, if any.
    #[serde(default)]
    pub invite: Option<String>,
}

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

/// Refuses a personal token whose participant the facilitator removed from `board`.
pub fn refuse_removed(board: &Board, claims: &Claims) -> Result<(), AppError> {
    if board.is_removed(&claims.sub) {
        return Err(AppError::new(
            ErrorCode::Removed,
            "the facilitator removed you from this board",
        ));
    }
    Ok(())
}

/// Notes a participant for the facilitator's list (once; later calls update the display).
pub async fn note(board: &Board, who: &Participant, invite: Option<&str>) {
    let changed = {
        let mut st = board.lock();
        match st.participants.get_mut(&who.sub) {
            Some(m) if m.display == who.display && m.role == who.role => false,
            Some(m) => {
                m.display = who.display.clone();
                m.role = who.role;
                true
            }
            None => {
                st.participants.insert(
                    who.sub.clone(),
                    Member {
                        role: who.role,
                        display: who.display.clone(),
                        first_seen: now_secs(),
                        invite: invite.map(str::to_owned),
                    },
                );
                true
            }
        }
    };
    if changed {
        if let Err(e) = board.persist().await {
            tracing::warn!(board = %board.id(), error = %e, "cannot store the participant list yet");
        }
    }
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
    Auth(claims): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<CreateInvite>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let id = parse_board(&id)?;
    require_facilitator(&claims, Some(&id))?;
    let Json(body) = body?;
    existing_board(&state, &id).await?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| bad("role must be facilitator, employer, union, employee or observer"))?;
    let ttl = parse_ttl(body.ttl.as_deref().unwrap_or("8h")).map_err(bad)?;
    if ttl > MAX_INVITE_TTL {
        return Err(bad("an invite lives at most 30 days (ttl 30d)"));
    }
    if body.seats.is_some_and(|s| s == 0 || s > MAX_SEATS) {
        return Err(bad(format!("seats is 1 to {MAX_SEATS}")));
    }
    let board = board_or_404(&state, &id).await?;
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
    let by = board
        .participant(&claims.sub, claims.role, &claims.name)
        .await;
    let stored = invite.clone();
    board
        .update(|st| {
            let detail = json!({"invite": stored.id, "role": role, "expires_at": stored.expires_at, "seats": stored.seats});
            st.invites.insert(stored.id.clone(), stored);
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
pub async fn invites(
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let board = facilitators_board(&state, &claims, &id).await?;
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
    State(state): State<AppState>,
    Auth(claims): Auth,
    Path((id, invite)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let board = facilitators_board(&state, &claims, &id).await?;
    let by = board
        .participant(&claims.sub, claims.role, &claims.name)
        .await;
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
    Auth(claims): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let board = facilitators_board(&state, &claims, &id).await?;
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
    Auth(claims): Auth,
    Path((id, participant)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let board = facilitators_board(&state, &claims, &id).await?;
    let by = board
        .participant(&claims.sub, claims.role, &claims.name)
        .await;
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
    if sub == claims.sub {
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
    // The rounds' public counts (`voters`) no longer include them.
    crate::session::mirror(&state, &board).await?;
    state
        .registry
        .remove_participant(board.id(), &Owner::Participant(participant.clone().into()))
        .await;
    Ok(Json(
        json!({"ok": true, "id": participant, "display": member.display}),
    ))
}

/// Erases what a removed participant put in that only they could see: their unrevealed drafts
/// and their ballots (revealed totals stay as they were published).
fn erase_inputs(st: &mut crate::board::BoardState, sub: &str) {
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
    for round in st.rounds.values_mut() {
        round.ballots.remove(sub);
    }
}

async fn facilitators_board(
    state: &AppState,
    claims: &Claims,
    id: &str,
) -> Result<Arc<Board>, AppError> {
    let id = parse_board(id)?;
    require_facilitator(claims, Some(&id))?;
    board_or_404(state, &id).await
}

#[derive(Deserialize)]
pub struct JoinBody {
    name: String,
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
            note(&board, &me, None).await;
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
                board.update(|st| st.audit.push(entry)).await?;
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
    note(board, &me, Some(inv)).await;
    let entry = audit_as_participant(
        board,
        &me,
        "join",
        json!({"invite": inv, "joined": joined, "seats": seats}),
    );
    board.update(|st| st.audit.push(entry)).await?;
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
