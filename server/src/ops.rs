//! Carrying the board's decisions out: runs the server's own Yjs edits (`domain::edits`) in a
//! board's document actors, and mirrors the board's public state into `control` after a
//! change. What every handler module (`boards`, `session`, `moderation`, `people`) shares, so
//! none of them imports another.

use std::sync::Arc;

use serde_json::Value;
use tafel_protocol::{DocKey, DocName};

use crate::auth::now_secs;
use crate::board::Board;
use crate::domain::edits;
use crate::domain::state::{BoardState, Member, Participant};
use crate::edge::{unavailable, AppError, AppState};

/// Milliseconds since the epoch: the server's clock for the domain's decisions.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs `f` as a server edit on one of the board's documents; answers what `f` returned.
pub async fn edit(
    state: &AppState,
    board: &Arc<Board>,
    doc: DocName,
    f: impl FnOnce(&mut yrs::TransactionMut) -> Value + Send + 'static,
) -> Result<Value, AppError> {
    state
        .registry
        .server_edit(&DocKey::new(board.id().clone(), doc), board, Box::new(f))
        .await
        .ok_or_else(unavailable)
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
    edit(state, board, DocName::Control, move |txn| {
        edits::mirror_session(txn, &session, &rounds);
        Value::Null
    })
    .await
    .map(|_| ())
}

/// Notes a participant for the facilitator's list (once; later calls update the display).
pub async fn note(board: &Board, who: &Participant, invite: Option<&str>) {
    let known = {
        let st = board.lock();
        st.participants
            .get(&who.sub)
            .is_some_and(|m| m.display == who.display && m.role == who.role)
    };
    if known {
        return;
    }
    let stored = board
        .update(|st| match st.participants.get_mut(&who.sub) {
            Some(m) => {
                m.display = who.display.clone();
                m.role = who.role;
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
            }
        })
        .await;
    if let Err(e) = stored {
        tracing::warn!(board = %board.id(), error = %e, "cannot store the participant list yet");
    }
}
