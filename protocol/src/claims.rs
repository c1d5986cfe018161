//! The JWT claims of a Tafel token and their meaning, independent of how they were signed.
//! Signature checking lives in the server; here are the rules that only need the claims and the
//! current time (passed in, so tests need no clock).

use serde::{Deserialize, Serialize};

use crate::ids::{BoardId, DocName};
use crate::roles::{baseline_access, Access, Role};

/// The claims as they travel in the token (see the contract's table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Participant id.
    pub sub: String,
    /// Display name.
    pub name: String,
    pub role: Role,
    /// A board id, or `*` for every board (facilitator only).
    pub board: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Set on invite tokens only: the invite's id. An invite token invites a role, not a
    /// person: it opens only joining (which answers a personal token with a fresh `sub`), the
    /// board summary and the template list. Tokens without it are personal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inv: Option<String>,
}

/// Which boards a token opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardScope {
    All,
    One(BoardId),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's board claim is not a valid board id")]
    BadBoard,
    #[error("only a facilitator token may use board \"*\"")]
    WildcardNotAllowed,
    #[error("the token's sub claim is empty")]
    EmptySub,
}

impl Claims {
    /// Whether this is an invite token (see `inv`).
    pub fn is_invite(&self) -> bool {
        self.inv.is_some()
    }

    /// Checks what the signature cannot: times against `now` (seconds since the epoch) and the
    /// board scope. Returns the scope the token grants.
    pub fn check(&self, now: u64) -> Result<BoardScope, ClaimsError> {
        if self.exp <= now {
            return Err(ClaimsError::Expired);
        }
        if self.nbf.is_some_and(|nbf| nbf > now) {
            return Err(ClaimsError::NotYetValid);
        }
        if self.sub.is_empty() {
            return Err(ClaimsError::EmptySub);
        }
        self.scope()
    }

    pub fn scope(&self) -> Result<BoardScope, ClaimsError> {
        if self.board == "*" {
            if self.role == Role::Facilitator {
                Ok(BoardScope::All)
            } else {
                Err(ClaimsError::WildcardNotAllowed)
            }
        } else {
            BoardId::parse(&self.board)
                .map(BoardScope::One)
                .map_err(|_| ClaimsError::BadBoard)
        }
    }

    /// Whether this token may open `board` at all.
    pub fn may_open_board(&self, board: &BoardId) -> bool {
        match self.scope() {
            Ok(BoardScope::All) => true,
            Ok(BoardScope::One(b)) => &b == board,
            Err(_) => false,
        }
    }

    /// The access this token has to one document of `board` (None when the board is not its own).
    pub fn access(&self, board: &BoardId, doc: DocName) -> Access {
        if self.may_open_board(board) {
            baseline_access(self.role, doc)
        } else {
            Access::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(role: Role, board: &str) -> Claims {
        Claims {
            sub: "p1".into(),
            name: "Ans".into(),
            role,
            board: board.into(),
            exp: 1000,
            iat: None,
            nbf: None,
            inv: None,
        }
    }

    #[test]
    fn expiry_and_not_before_use_the_given_time() {
        let mut c = claims(Role::Employer, "b1");
        assert!(c.check(999).is_ok());
        assert_eq!(c.check(1000), Err(ClaimsError::Expired));
        c.nbf = Some(500);
        assert_eq!(c.check(499), Err(ClaimsError::NotYetValid));
        assert!(c.check(500).is_ok());
    }

    #[test]
    fn wildcard_board_is_for_facilitators_only() {
        assert_eq!(claims(Role::Facilitator, "*").check(0), Ok(BoardScope::All));
        for r in [Role::Employer, Role::Union, Role::Employee, Role::Observer] {
            assert_eq!(
                claims(r, "*").check(0),
                Err(ClaimsError::WildcardNotAllowed)
            );
        }
    }

    #[test]
    fn other_board_gives_no_access() {
        let c = claims(Role::Employer, "b1");
        let b1 = BoardId::parse("b1").unwrap();
        let b2 = BoardId::parse("b2").unwrap();
        assert_eq!(c.access(&b1, DocName::Canvas), Access::Write);
        assert_eq!(c.access(&b2, DocName::Canvas), Access::None);
    }

    #[test]
    fn invite_claim_is_optional_and_omitted_when_absent() {
        let json = r#"{"sub":"a","name":"b","role":"employee","board":"x","exp":5}"#;
        let c: Claims = serde_json::from_str(json).unwrap();
        assert!(!c.is_invite());
        assert!(!serde_json::to_string(&c).unwrap().contains("inv"));
        let json = r#"{"sub":"a","name":"b","role":"employee","board":"x","exp":5,"inv":"i1"}"#;
        let c: Claims = serde_json::from_str(json).unwrap();
        assert_eq!(c.inv.as_deref(), Some("i1"));
        assert!(c.is_invite());
    }

    #[test]
    fn unknown_role_does_not_deserialize() {
        let json = r#"{"sub":"a","name":"b","role":"admin","board":"x","exp":5}"#;
        assert!(serde_json::from_str::<Claims>(json).is_err());
    }
}
