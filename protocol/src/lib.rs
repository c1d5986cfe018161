//! Tafel's protocol layer: everything about *what* is said on the wire and *who* may say it,
//! with no IO, no tokio and no axum. The server crate is only the host that moves these bytes.
//!
//! Layout:
//! - [`ids`]: board ids, document names and the `board/doc` key, with validation.
//! - [`roles`]: roles, parties and the contract's baseline permission matrix.
//! - [`claims`]: the JWT claims Tafel issues and accepts, and their semantic checks (time is passed in).
//! - [`wire`]: decoding incoming y-websocket frames (via `yrs::sync`) and encoding outgoing ones.
//! - [`connection`]: the per-connection decision: given a decoded message and the connection's
//!   access, what the server must do (answer, apply, relay, refuse).
//! - [`errors`]: error codes for HTTP bodies and auth messages, and WebSocket close codes.
//! - [`structs`]: reading a Yjs update struct by struct (yrs's public decoder), bounded.
//! - [`index`]: a document's ownership index: client ids, clock ranges, zones, creators.
//! - [`judge`]: the update judge: every struct and deletion against the schema and the rules,
//!   with typed refusal codes.
//! - [`rights`]: what a role may do with items section by section under the locks (the judge's
//!   rules, shared with the server's commands that act for a participant).
//! - [`document`]: one document's decisions as a sans-IO state machine (inputs in, effects out).
//! - [`stored`]: what store entries carry besides the update (writer, index).

pub mod anonymity;
pub mod claims;
pub mod connection;
pub mod document;
pub mod errors;
pub mod ids;
pub mod index;
pub mod judge;
pub mod policy;
pub mod rights;
pub mod roles;
pub mod stored;
pub mod structs;
pub mod template;
pub mod wire;

pub use claims::{BoardScope, Claims, ClaimsError};
pub use connection::{classify, Action};
pub use errors::{CloseCode, ErrorCode};
pub use ids::{BoardId, DocKey, DocName, IdError};
pub use roles::{baseline_access, Access, Party, Role};
