//! The y-websocket wire format, on top of `yrs::sync`: one y-protocols message per binary frame
//! (sync step 1, sync step 2, update, awareness, awareness query, auth). Decoding untrusted bytes
//! returns an error, never panics; encoding helpers produce the exact frames the server sends.

use yrs::sync::{Awareness, AwarenessUpdate, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ReadTxn, StateVector, Transact, Update};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("empty frame")]
    Empty,
    #[error("undecodable message: {0}")]
    Undecodable(String),
    #[error("awareness state of client {0} is not valid JSON")]
    AwarenessNotJson(u64),
    #[error("undecodable update: {0}")]
    BadUpdate(String),
}

/// Decodes one frame into the message it carries. The y-websocket client sends one message per
/// frame; bytes after the first message are ignored, as the reference server does.
pub fn decode_frame(frame: &[u8]) -> Result<Message, WireError> {
    if frame.is_empty() {
        return Err(WireError::Empty);
    }
    let msg = guarded(|| Message::decode_v1(frame))
        .ok_or_else(|| WireError::Undecodable("the decoder rejected the input".into()))?
        .map_err(|e| WireError::Undecodable(e.to_string()))?;
    if let Message::Awareness(update) = &msg {
        check_awareness_json(update)?;
    }
    Ok(msg)
}

/// Awareness states are relayed to browsers that `JSON.parse` them; a state that is not JSON
/// would break every other client, so it is refused here.
fn check_awareness_json(update: &AwarenessUpdate) -> Result<(), WireError> {
    for (id, entry) in &update.clients {
        if serde_json::from_str::<serde::de::IgnoredAny>(&entry.json).is_err() {
            return Err(WireError::AwarenessNotJson(id.get()));
        }
    }
    Ok(())
}

/// Decodes a v1 update, mapping yrs's error into ours.
pub fn decode_update(bytes: &[u8]) -> Result<Update, WireError> {
    guarded(|| Update::decode_v1(bytes))
        .ok_or_else(|| WireError::BadUpdate("the decoder rejected the input".into()))?
        .map_err(|e| WireError::BadUpdate(e.to_string()))
}

/// Runs a yrs decoder on untrusted bytes. yrs asserts on some impossible values (for example a
/// client id wider than 53 bits) instead of returning an error; such input is refused like any
/// other undecodable input rather than taking the caller down.
fn guarded<T>(decode: impl FnOnce() -> T + std::panic::UnwindSafe) -> Option<T> {
    std::panic::catch_unwind(decode).ok()
}

/// Whether an update carries nothing: no structs and no deletions. Read-only clients send such
/// updates as their sync step 2; they are harmless and are not refused.
pub fn update_is_empty(bytes: &[u8]) -> Result<bool, WireError> {
    let update = decode_update(bytes)?;
    Ok(update.is_empty())
}

pub fn encode_sync_step1(sv: &StateVector) -> Vec<u8> {
    Message::Sync(SyncMessage::SyncStep1(sv.clone())).encode_v1()
}

pub fn encode_sync_step2(update: Vec<u8>) -> Vec<u8> {
    Message::Sync(SyncMessage::SyncStep2(update)).encode_v1()
}

pub fn encode_update(update: Vec<u8>) -> Vec<u8> {
    Message::Sync(SyncMessage::Update(update)).encode_v1()
}

pub fn encode_awareness(update: AwarenessUpdate) -> Vec<u8> {
    Message::Awareness(update).encode_v1()
}

/// The y-protocols auth message "permission denied" with a reason for the person.
pub fn encode_permission_denied(reason: &str) -> Vec<u8> {
    Message::Auth(Some(reason.to_owned())).encode_v1()
}

/// The frames a server sends when a client joins: its state vector (sync step 1) and, when
/// anyone is present, the current awareness states.
pub fn encode_join_frames(awareness: &Awareness) -> Vec<Vec<u8>> {
    let sv = awareness.doc().transact().state_vector();
    let mut frames = vec![encode_sync_step1(&sv)];
    if let Ok(update) = awareness.update() {
        if !update.clients.is_empty() {
            frames.push(encode_awareness(update));
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use yrs::{Doc, GetString, Text};

    fn sample_update() -> Vec<u8> {
        let doc = Doc::new();
        let t = doc.get_or_insert_text("t");
        t.push(&mut doc.transact_mut(), "hallo tafel");
        let update = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        update
    }

    #[test]
    fn round_trips_sync_messages() {
        let u = sample_update();
        let m = decode_frame(&encode_update(u.clone())).unwrap();
        assert_eq!(m, Message::Sync(SyncMessage::Update(u.clone())));
        let m = decode_frame(&encode_sync_step2(u.clone())).unwrap();
        assert_eq!(m, Message::Sync(SyncMessage::SyncStep2(u)));
        let sv = StateVector::default();
        let m = decode_frame(&encode_sync_step1(&sv)).unwrap();
        assert_eq!(m, Message::Sync(SyncMessage::SyncStep1(sv)));
    }

    #[test]
    fn permission_denied_matches_y_protocols_auth() {
        // y-protocols/auth.js: messageAuth = 2, messagePermissionDenied = 0, then a varString.
        let f = encode_permission_denied("nope");
        assert_eq!(f, vec![2, 0, 4, b'n', b'o', b'p', b'e']);
    }

    /// An update that continues an existing client's clock (not starting at 0) is not empty.
    #[test]
    fn continuation_update_is_not_empty() {
        let doc = Doc::new();
        let t = doc.get_or_insert_text("t");
        t.push(&mut doc.transact_mut(), "eerste");
        let sv = doc.transact().state_vector();
        t.push(&mut doc.transact_mut(), "tweede");
        let diff = doc.transact().encode_diff_v1(&sv);
        assert!(!update_is_empty(&diff).unwrap());
    }

    #[test]
    fn empty_and_nonempty_updates() {
        let empty = Doc::new()
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        assert!(update_is_empty(&empty).unwrap());
        assert!(!update_is_empty(&sample_update()).unwrap());
    }

    #[test]
    fn applying_a_decoded_update_gives_the_text() {
        let doc = Doc::new();
        let t = doc.get_or_insert_text("t");
        let u = decode_update(&sample_update()).unwrap();
        doc.transact_mut().apply_update(u).unwrap();
        assert_eq!(t.get_string(&doc.transact()), "hallo tafel");
    }

    #[test]
    fn awareness_with_non_json_state_is_refused() {
        // tag 1, then a buffer: 1 client, id 7, clock 1, string "{oops"
        let inner = [1u8, 7, 1, 5, b'{', b'o', b'o', b'p', b's'];
        let mut frame = vec![1u8, inner.len() as u8];
        frame.extend_from_slice(&inner);
        assert_eq!(decode_frame(&frame), Err(WireError::AwarenessNotJson(7)));
    }

    #[test]
    fn empty_frame_is_an_error() {
        assert_eq!(decode_frame(&[]), Err(WireError::Empty));
    }

    /// A joining client gets the document's state vector, then the awareness states only when
    /// someone is present; the awareness frame carries each state as given.
    #[test]
    fn join_frames_are_sync_step1_then_present_awareness() {
        let doc = Doc::with_client_id(7);
        doc.get_or_insert_text("t")
            .push(&mut doc.transact_mut(), "hallo");
        let sv = doc.transact().state_vector();
        let mut awareness = Awareness::new(doc);
        let alone = encode_join_frames(&awareness);
        assert_eq!(alone.len(), 1, "nobody present: no awareness frame");
        assert_eq!(
            decode_frame(&alone[0]),
            Ok(Message::Sync(SyncMessage::SyncStep1(sv.clone())))
        );
        awareness.set_local_state_raw(r#"{"user":{"name":"A"}}"#);
        let frames = encode_join_frames(&awareness);
        assert_eq!(frames.len(), 2);
        assert_eq!(
            decode_frame(&frames[0]),
            Ok(Message::Sync(SyncMessage::SyncStep1(sv)))
        );
        let Ok(Message::Awareness(update)) = decode_frame(&frames[1]) else {
            panic!("second join frame is not awareness: {:?}", frames[1]);
        };
        let states: Vec<(u64, String)> = update
            .clients
            .iter()
            .map(|(id, e)| (id.get(), e.json.to_string()))
            .collect();
        assert_eq!(states, [(7, r#"{"user":{"name":"A"}}"#.to_owned())]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        /// Random bytes never panic the frame decoder, and every sync, awareness or auth message
        /// it accepts encodes back to a frame decoding to the same message (the decoder does not
        /// invent content). `Custom` messages are left out: the server ignores them, and yrs
        /// does not round-trip them (`[128, 1, 0]` decodes as `Custom(128, [])`, whose encoding
        /// does not decode).
        #[test]
        fn random_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(msg) = decode_frame(&bytes).map_err(|_| ()).and_then(|m| match m {
                Message::Custom(..) => Err(()),
                m => Ok(m),
            }) {
                let again = decode_frame(&msg.encode_v1());
                prop_assert_eq!(again, Ok(msg));
            }
        }

        /// Any payload wrapped as a sync update decodes back to exactly that payload: the
        /// decoder does not refuse valid frames (the positive control of the property above).
        #[test]
        fn any_update_frame_decodes_to_its_payload(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
            prop_assert_eq!(
                decode_frame(&encode_update(payload.clone())),
                Ok(Message::Sync(SyncMessage::Update(payload)))
            );
        }

        /// Random bytes never panic the update decoder, nor applying what decodes; an update that
        /// decodes and applies leaves a document whose state decodes again.
        #[test]
        fn random_updates_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(u) = decode_update(&bytes) {
                let doc = Doc::new();
                if doc.transact_mut().apply_update(u).is_ok() {
                    let state = doc.transact().encode_state_as_update_v1(&StateVector::default());
                    prop_assert!(decode_update(&state).is_ok());
                }
            }
        }

        /// A valid update frame cut short is an error, never a shorter message.
        #[test]
        fn cut_frames_are_errors(cut in 1usize..40) {
            let frame = encode_update(sample_update());
            let n = frame.len().saturating_sub(cut);
            prop_assert!(decode_frame(&frame[..n]).is_err());
        }

        /// Every truncation of a valid frame decodes or errors, and never panics.
        #[test]
        fn truncated_frames_never_panic(cut in 0usize..64, flip in any::<(usize, u8)>()) {
            let mut frame = encode_update(sample_update());
            let n = frame.len().saturating_sub(cut);
            frame.truncate(n);
            if !frame.is_empty() {
                let i = flip.0 % frame.len();
                frame[i] ^= flip.1;
            }
            if let Ok(Message::Sync(SyncMessage::Update(u) | SyncMessage::SyncStep2(u))) = decode_frame(&frame) {
                if let Ok(u) = decode_update(&u) {
                    let doc = Doc::new();
                    let _ = doc.transact_mut().apply_update(u);
                }
            }
        }
    }
}
