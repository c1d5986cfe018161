//! Identifiers: board ids, the fixed set of document names every board has, and the `board/doc`
//! key that names one document in the store. Parsing validates; a value of these types is valid.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::roles::Party;

/// Longest accepted board id. Ids appear in URLs and store keys, so they stay short.
pub const MAX_BOARD_ID_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("a board id must be 1 to {MAX_BOARD_ID_LEN} characters of a-z, A-Z, 0-9, '-' or '_'")]
    BadBoardId,
    #[error("unknown document {0:?}; a board has canvas, gap, control, party-employer, party-union and party-employee")]
    UnknownDoc(String),
}

/// A board id: 1 to 64 characters of `[A-Za-z0-9_-]`. Never `*` (that is a token scope, not an id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct BoardId(String);

impl BoardId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_BOARD_ID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(BoardId(s.to_owned()))
        } else {
            Err(IdError::BadBoardId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for BoardId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BoardId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for BoardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The documents of a board (see the contract's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocName {
    Canvas,
    Gap,
    Control,
    Party(Party),
}

impl DocName {
    /// Every document a board has, in a stable order.
    pub const ALL: [DocName; 6] = [
        DocName::Canvas,
        DocName::Gap,
        DocName::Control,
        DocName::Party(Party::Employer),
        DocName::Party(Party::Union),
        DocName::Party(Party::Employee),
    ];

    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s {
            "canvas" => Ok(DocName::Canvas),
            "gap" => Ok(DocName::Gap),
            "control" => Ok(DocName::Control),
            "party-employer" => Ok(DocName::Party(Party::Employer)),
            "party-union" => Ok(DocName::Party(Party::Union)),
            "party-employee" => Ok(DocName::Party(Party::Employee)),
            other => Err(IdError::UnknownDoc(other.chars().take(64).collect())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DocName::Canvas => "canvas",
            DocName::Gap => "gap",
            DocName::Control => "control",
            DocName::Party(Party::Employer) => "party-employer",
            DocName::Party(Party::Union) => "party-union",
            DocName::Party(Party::Employee) => "party-employee",
        }
    }
}

impl fmt::Display for DocName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One document of one board. Its text form `board/doc` is the key stores use (Redis wraps it in
/// a hash tag, `{board/doc}`, so every key of a document lands on one cluster slot).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocKey {
    pub board: BoardId,
    pub doc: DocName,
}

impl DocKey {
    pub fn new(board: BoardId, doc: DocName) -> Self {
        DocKey { board, doc }
    }
}

impl fmt::Display for DocKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.board, self.doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_ids_are_validated() {
        assert!(BoardId::parse("abc-DEF_123").is_ok());
        assert!(BoardId::parse("").is_err());
        assert!(BoardId::parse("*").is_err());
        assert!(BoardId::parse("a/b").is_err());
        assert!(BoardId::parse("{x}").is_err());
        assert!(BoardId::parse(&"a".repeat(65)).is_err());
        assert!(BoardId::parse(&"a".repeat(64)).is_ok());
    }

    /// The id is kept as given: shown, serialized and read back unchanged (stores key on it).
    #[test]
    fn board_ids_keep_their_text() {
        let id = BoardId::parse("k3v9-Metaal_1").unwrap();
        assert_eq!(id.as_str(), "k3v9-Metaal_1");
        assert_eq!(id.to_string(), "k3v9-Metaal_1");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"k3v9-Metaal_1\"");
        assert_eq!(serde_json::from_str::<BoardId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<BoardId>("\"a/b\"").is_err());
    }

    #[test]
    fn doc_names_round_trip() {
        for d in DocName::ALL {
            assert_eq!(DocName::parse(d.as_str()), Ok(d));
        }
        assert!(DocName::parse("party-observer").is_err());
        assert!(DocName::parse("").is_err());
    }

    #[test]
    fn doc_key_display() {
        let k = DocKey::new(BoardId::parse("b1").unwrap(), DocName::Gap);
        assert_eq!(k.to_string(), "b1/gap");
    }
}
