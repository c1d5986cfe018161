//! Carrying the board's decisions out: runs the server's own Yjs edits (`domain::edits`) in a
//! board's document actors, mirrors the board's public state into `control` after a change,
//! and takes snapshots of the board's content (history). What every handler module (`boards`,
//! `session`, `moderation`, `people`, `history`) shares, so none of them imports another.

use std::sync::{Arc, Mutex};

use rand::distr::{Alphanumeric, SampleString};
use serde_json::Value;
use tafel_protocol::{DocKey, DocName};

use crate::auth::now_secs;
use crate::board::Board;
use crate::domain::state::{BoardState, Member, Participant};
use crate::domain::{edits, history};
use crate::edge::{unavailable, AppError, AppState};
use crate::store::Store;

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
    let voters = board.voters().await?;
    let (session, rounds) = {
        let st = board.lock();
        let rounds: Vec<(String, Value)> = st
            .rounds
            .values()
            .map(|r| {
                let n = voters.get(&r.id).copied().unwrap_or(0);
                (r.id.clone(), BoardState::round_json(r, n))
            })
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

/// Notes a participant for the facilitator's list (once; later calls update the display),
/// grouped with the notes of everyone joining at the same time (`Board::note_member`).
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
    board
        .note_member(
            &who.sub,
            Member {
                role: who.role,
                display: who.display.clone(),
                first_seen: now_secs(),
                invite: invite.map(str::to_owned),
            },
        )
        .await;
}

/// Takes a snapshot of the board's content now (history); answers its list entry.
pub async fn snapshot(
    state: &AppState,
    board: &Arc<Board>,
    name: &str,
    auto: bool,
) -> Result<history::SnapshotMeta, AppError> {
    let mut docs = Vec::new();
    for doc in history::DOCS {
        docs.push((doc, state_now(state, board, doc).await?));
    }
    let data = history::encode(&docs);
    let at = now_ms();
    let meta = history::SnapshotMeta {
        id: format!(
            "s{at:013}{}",
            Alphanumeric
                .sample_string(&mut rand::rng(), 6)
                .to_lowercase()
        ),
        name: name.to_owned(),
        at,
        auto,
        step: board.lock().step.clone(),
        bytes: data.len(),
    };
    let record = serde_json::to_vec(&meta).unwrap_or_default();
    state
        .store
        .put_snapshot(board.id(), &meta.id, record, data)
        .await?;
    tracing::info!(board = %board.id(), snapshot = %meta.id, bytes = meta.bytes, auto, "snapshot taken");
    Ok(meta)
}

/// The document's full state now, read by a server edit that changes nothing (so nothing is
/// stored or sent).
pub async fn state_now(
    state: &AppState,
    board: &Arc<Board>,
    doc: DocName,
) -> Result<Vec<u8>, AppError> {
    let out: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sink = out.clone();
    edit(state, board, doc, move |txn| {
        *sink.lock().unwrap_or_else(|p| p.into_inner()) = history::state_of(txn);
        Value::Null
    })
    .await?;
    let bytes = std::mem::take(&mut *out.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(bytes)
}
