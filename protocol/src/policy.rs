//! The board schema's fixed vocabulary (server-only fields, kinds of agreement, pillars, steps)
//! and the facilitator's session state the rules depend on. The rules themselves are applied
//! struct by struct in `judge`.

use std::collections::BTreeSet;
use std::sync::Arc;

/// Fields of a card or row that only the server writes.
pub const SERVER_FIELDS: [&str; 6] = [
    "owner",
    "author",
    "createdAt",
    "hidden",
    "votes",
    "mergedInto",
];
pub const TYPES: [&str; 3] = ["curatief", "preventief", "versterkend"];
pub const PIJLERS: [&str; 3] = ["gezondheid", "bekwaamheid", "motivatie"];
pub const STEPS: [&str; 7] = ["1", "2", "3A", "3B", "4", "5", "6"];

/// The facilitator's session state that the rules depend on, and what the canvas rules read
/// from another document of the board.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionPolicy {
    pub board_locked: bool,
    pub locked_docs: BTreeSet<String>,
    pub locked_sections: BTreeSet<String>,
    pub private_writing: bool,
    /// The row ids of the board's `gap` document as this node last stored them (a card's
    /// `gapRow` must name one); `None` while the gap document has not been loaded here.
    pub gap_rows: Option<Arc<BTreeSet<String>>>,
}
