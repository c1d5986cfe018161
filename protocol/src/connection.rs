//! The per-connection decision. Given one decoded message and what the connection may do with
//! its document, say what the server must do. The host (server crate) carries it out; nothing
//! here touches a socket or the document.

use yrs::sync::{AwarenessUpdate, Message, SyncMessage};
use yrs::StateVector;

use crate::roles::Access;
use crate::wire::{update_is_empty, WireError};

/// What the server does with one incoming message.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Sync step 1: answer this connection with sync step 2, the diff against `StateVector`.
    AnswerSyncStep1(StateVector),
    /// Sync step 2 or update from a writer: validate, apply, store, then forward to the others.
    Apply(Vec<u8>),
    /// An awareness update: apply to the document's awareness and relay to the others.
    Awareness(AwarenessUpdate),
    /// Awareness query: answer this connection with every current awareness state.
    AnswerAwarenessQuery,
    /// An update from a read-only connection: ignored when it adds nothing to the document,
    /// refused (`Deny`) when it would change it.
    CheckReadOnly(Vec<u8>),
    /// Refuse with the y-protocols auth message "permission denied" and this reason; nothing is
    /// applied, stored or forwarded.
    Deny(String),
    /// Nothing to do (auth messages from clients, unknown custom tags, empty updates of readers).
    Ignore,
}

/// Decides what to do with `msg`. `access` must be at least `Read` (a connection without access
/// never gets this far). An error means the connection sent something undecodable and is closed.
pub fn classify(access: Access, msg: Message) -> Result<Action, WireError> {
    Ok(match msg {
        Message::Sync(SyncMessage::SyncStep1(sv)) => Action::AnswerSyncStep1(sv),
        Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u)) => {
            if access.can_write() {
                Action::Apply(u)
            } else if update_is_empty(&u)? {
                Action::Ignore
            } else {
                // The npm client answers sync step 1 with its whole state (deletions included)
                // and replays its offline copy: only the document can tell whether that adds
                // anything. If it does, it is refused.
                Action::CheckReadOnly(u)
            }
        }
        Message::Awareness(update) => Action::Awareness(update),
        Message::AwarenessQuery => Action::AnswerAwarenessQuery,
        Message::Auth(_) | Message::Custom(..) => Action::Ignore,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, ReadTxn, Text, Transact};

    fn nonempty() -> Vec<u8> {
        let doc = Doc::new();
        doc.get_or_insert_text("t")
            .push(&mut doc.transact_mut(), "x");
        let update = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        update
    }

    #[test]
    fn readers_nonempty_updates_go_to_the_document_check() {
        let m = Message::Sync(SyncMessage::Update(nonempty()));
        assert!(matches!(
            classify(Access::Read, m),
            Ok(Action::CheckReadOnly(_))
        ));
    }

    #[test]
    fn readers_may_send_empty_sync_step2() {
        let empty = Doc::new()
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let m = Message::Sync(SyncMessage::SyncStep2(empty));
        assert_eq!(classify(Access::Read, m), Ok(Action::Ignore));
    }

    #[test]
    fn writers_apply() {
        let u = nonempty();
        let m = Message::Sync(SyncMessage::Update(u.clone()));
        assert_eq!(classify(Access::Write, m), Ok(Action::Apply(u)));
    }

    #[test]
    fn garbage_update_from_a_reader_is_an_error() {
        let m = Message::Sync(SyncMessage::Update(vec![0xff, 0xff, 0xff]));
        assert!(classify(Access::Read, m).is_err());
    }

    #[test]
    fn step1_is_answered() {
        let sv = StateVector::default();
        let m = Message::Sync(SyncMessage::SyncStep1(sv.clone()));
        assert_eq!(classify(Access::Read, m), Ok(Action::AnswerSyncStep1(sv)));
    }
}
