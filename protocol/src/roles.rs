//! Roles, parties and the contract's baseline permission matrix: which role may read or write
//! which document of a board. Section-level rules refine this later; nothing here looks inside a
//! document.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::DocName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Facilitator,
    Employer,
    Union,
    Employee,
    Observer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Facilitator,
        Role::Employer,
        Role::Union,
        Role::Employee,
        Role::Observer,
    ];

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Facilitator => "facilitator",
            Role::Employer => "employer",
            Role::Union => "union",
            Role::Employee => "employee",
            Role::Observer => "observer",
        }
    }

    /// The party a participant role belongs to; facilitator and observer belong to none.
    pub fn party(self) -> Option<Party> {
        match self {
            Role::Employer => Some(Party::Employer),
            Role::Union => Some(Party::Union),
            Role::Employee => Some(Party::Employee),
            Role::Facilitator | Role::Observer => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three parties that have their own `party-*` workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Party {
    Employer,
    Union,
    Employee,
}

/// What a role may do with a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// The document may not be opened at all (HTTP 403 before the upgrade).
    None,
    /// Sync and awareness, but no update is applied.
    Read,
    /// Updates are applied (the board schema may refine this per section).
    Write,
}

impl Access {
    pub fn can_read(self) -> bool {
        self >= Access::Read
    }
    pub fn can_write(self) -> bool {
        self == Access::Write
    }
}

/// The contract's baseline matrix.
pub fn baseline_access(role: Role, doc: DocName) -> Access {
    match (role, doc) {
        (Role::Facilitator, _) => Access::Write,
        (Role::Observer, DocName::Party(_)) => Access::None,
        (Role::Observer, _) => Access::Read,
        (_, DocName::Control) => Access::Read,
        (_, DocName::Canvas | DocName::Gap) => Access::Write,
        (r, DocName::Party(p)) => {
            if r.party() == Some(p) {
                Access::Write
            } else {
                Access::None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full matrix, written out as in the contract, so a change to one cell fails here.
    #[test]
    fn baseline_matrix_matches_contract() {
        use Access::*;
        let docs = DocName::ALL; // canvas gap control p-employer p-union p-employee
        let expected: [(Role, [Access; 6]); 5] = [
            (
                Role::Facilitator,
                [Write, Write, Write, Write, Write, Write],
            ),
            (Role::Employer, [Write, Write, Read, Write, None, None]),
            (Role::Union, [Write, Write, Read, None, Write, None]),
            (Role::Employee, [Write, Write, Read, None, None, Write]),
            (Role::Observer, [Read, Read, Read, None, None, None]),
        ];
        for (role, row) in expected {
            for (doc, want) in docs.iter().zip(row) {
                assert_eq!(baseline_access(role, *doc), want, "{role} on {doc}");
            }
        }
    }

    #[test]
    fn roles_parse() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
    }

    /// Logs and refusal reasons show roles by their contract names.
    #[test]
    fn roles_display_as_their_names() {
        let shown: Vec<String> = Role::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["facilitator", "employer", "union", "employee", "observer"]
        );
    }

    /// `None` is neither read nor write; `Read` reads only; `Write` does both.
    #[test]
    fn access_levels() {
        let levels = [Access::None, Access::Read, Access::Write];
        let reads: Vec<bool> = levels.iter().map(|a| a.can_read()).collect();
        let writes: Vec<bool> = levels.iter().map(|a| a.can_write()).collect();
        assert_eq!(reads, [false, true, true]);
        assert_eq!(writes, [false, false, true]);
    }
}
