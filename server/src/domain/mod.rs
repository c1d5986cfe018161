//! The board's domain, apart from HTTP and IO: its state as plain data (`state`), the
//! facilitator's commands and the participants' secret inputs decided by pure functions
//! (`commands`), and the server's own Yjs edits as functions on a transaction (`edits`). The
//! handlers in `session`, `moderation`, `people` and `boards` parse requests, call these, and
//! carry the results out through the store and the document actors (`ops`).

pub mod commands;
pub mod edits;
pub mod history;
pub mod report;
pub mod state;
pub mod transfer;

use tafel_protocol::ErrorCode;

/// Why the domain refused something: a contract error code and a message a person can read.
/// The HTTP edge turns it into the contract's JSON error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    pub fn bad(message: impl Into<String>) -> Refusal {
        Refusal::new(ErrorCode::BadRequest, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Refusal {
        Refusal::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Refusal {
        Refusal::new(ErrorCode::NotFound, message)
    }
}

/// A JSON value as a Yjs value (server edits write plain data with it).
pub fn any(v: serde_json::Value) -> yrs::Any {
    serde_json::from_value(v).unwrap_or(yrs::Any::Null)
}
