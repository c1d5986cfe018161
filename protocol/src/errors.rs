//! Error codes shown to people and programs (HTTP bodies, auth messages) and the WebSocket close
//! codes Tafel uses. One list, so client, server and docs agree.

use std::fmt;

/// The `error` field of an HTTP error body, `{"error": code, "message": text}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    BadRequest,
    PermissionDenied,
    StoreUnavailable,
    /// Too many connections; try again shortly.
    Overloaded,
    Internal,
    /// 403: an invite token used for anything but joining (and the summary, template list).
    InviteToken,
    /// 403: the facilitator removed this participant from the board.
    Removed,
    /// 403: the invite was revoked by the facilitator.
    InviteRevoked,
    /// 403: every seat of the invite is taken.
    InviteFull,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not-found",
            ErrorCode::MethodNotAllowed => "method-not-allowed",
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::PermissionDenied => "permission-denied",
            ErrorCode::StoreUnavailable => "store-unavailable",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Internal => "internal",
            ErrorCode::InviteToken => "invite-token",
            ErrorCode::Removed => "removed",
            ErrorCode::InviteRevoked => "invite-revoked",
            ErrorCode::InviteFull => "invite-full",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden
            | ErrorCode::PermissionDenied
            | ErrorCode::InviteToken
            | ErrorCode::Removed
            | ErrorCode::InviteRevoked
            | ErrorCode::InviteFull => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::BadRequest => 400,
            ErrorCode::StoreUnavailable | ErrorCode::Overloaded => 503,
            ErrorCode::Internal => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// WebSocket close codes. 1xxx are the RFC 6455 ones; 4xxx are Tafel's own, following the
/// y-websocket convention: 44xx are permanent (the client stops reconnecting), 45xx are
/// transient (the client reconnects and resyncs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: a normal close (the client left).
    Normal,
    /// 1001: the server is shutting down; reconnect later.
    GoingAway,
    /// 1002: the bytes are not a valid WebSocket frame sequence.
    ProtocolError,
    /// 1007: a frame or update could not be decoded.
    MalformedMessage,
    /// 1008: a binary frame was expected (text frames are not part of the protocol).
    PolicyViolation,
    /// 1009: a message exceeded the configured size limit.
    MessageTooBig,
    /// 1011: an unexpected server error.
    InternalError,
    /// 4401: the connection's token expired.
    TokenExpired,
    /// 4403: the facilitator removed this participant from the board; final (the npm client
    /// does not reconnect after a 44xx close, and the token is refused from then on).
    Removed,
    /// 4508: the client did not read its messages fast enough (outgoing queue full) or did not
    /// answer keepalive pings; reconnecting resyncs it.
    TooSlow,
    /// 4503: the store is unavailable; nothing was accepted that was not stored. Reconnect later.
    StoreUnavailable,
    /// 4529: the connection sent more messages or bytes per second than allowed; the client
    /// reconnects after its backoff (45xx).
    RateLimited,
}

impl CloseCode {
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::MalformedMessage => 1007,
            CloseCode::PolicyViolation => 1008,
            CloseCode::MessageTooBig => 1009,
            CloseCode::InternalError => 1011,
            CloseCode::TokenExpired => 4401,
            CloseCode::Removed => 4403,
            CloseCode::TooSlow => 4508,
            CloseCode::StoreUnavailable => 4503,
            CloseCode::RateLimited => 4529,
        }
    }
}
