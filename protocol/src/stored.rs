//! What a document's store entries hold besides the Yjs bytes. A log entry carries its writer
//! (a participant tag or the server), a snapshot carries the ownership index as it was at that
//! state, so replaying snapshot + log rebuilds the index identically on any node.
//!
//! Layout: a 4-byte magic, a varint-free 4-byte little-endian header length, the header, then
//! the v1 update. Entries written before the index existed have no magic; they are read as a
//! bare update with no writer (their client ids are unowned until claimed).

use crate::index::Owner;

const ENTRY: &[u8; 4] = b"TFe1";
const SNAPSHOT: &[u8; 4] = b"TFs1";

fn wrap(magic: &[u8; 4], header: &[u8], update: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + header.len() + update.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(update);
    out
}

fn unwrap<'a>(magic: &[u8; 4], bytes: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
    let rest = bytes.strip_prefix(magic.as_slice())?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let header = rest.get(4..4 + len)?;
    Some((header, &rest[4 + len..]))
}

/// A log entry: the update and who wrote it.
pub fn encode_entry(writer: &Owner, update: &[u8]) -> Vec<u8> {
    let header = serde_json::to_vec(writer).unwrap_or_default();
    wrap(ENTRY, &header, update)
}

/// The writer (None for entries from before the index) and the update.
pub fn decode_entry(bytes: &[u8]) -> (Option<Owner>, &[u8]) {
    match unwrap(ENTRY, bytes) {
        Some((header, update)) => (serde_json::from_slice(header).ok(), update),
        None => (None, bytes),
    }
}

/// A snapshot: the full state and the index at that state.
pub fn encode_snapshot(index: &[u8], state: &[u8]) -> Vec<u8> {
    wrap(SNAPSHOT, index, state)
}

/// The stored index (None for snapshots from before the index) and the state.
pub fn decode_snapshot(bytes: &[u8]) -> (Option<&[u8]>, &[u8]) {
    match unwrap(SNAPSHOT, bytes) {
        Some((index, state)) => (Some(index), state),
        None => (None, bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_legacy_bytes_pass_through() {
        let w = Owner::Participant("abc".into());
        let e = encode_entry(&w, &[1, 2, 3]);
        assert_eq!(decode_entry(&e), (Some(w), &[1u8, 2, 3][..]));
        assert_eq!(decode_entry(&[0, 0]), (None, &[0u8, 0][..]));
        let s = encode_snapshot(b"{}", &[9]);
        assert_eq!(decode_snapshot(&s), (Some(&b"{}"[..]), &[9u8][..]));
        assert_eq!(decode_snapshot(&[0, 0]), (None, &[0u8, 0][..]));
        // A truncated header is read as legacy bytes, never a panic.
        assert_eq!(decode_entry(b"TFe1\xff\xff").0, None);
    }
}
