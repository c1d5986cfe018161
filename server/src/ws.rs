//! One WebSocket connection, one task: it reads the client's frames on readiness (into a
//! buffer on the stack, so an idle connection holds no read buffer), lets
//! `tafel_protocol::classify` decide and hands the result to the document; it writes what the
//! document queued on the connection's [`Link`] straight from the shared frames (a message
//! larger than [`FRAGMENT`] goes out as a first frame and continuation frames, each a slice of
//! the one shared `Bytes`, so a big document's first sync is never copied per connection); and
//! it keeps the connection alive (pings, and an empty awareness message when nothing was sent
//! for a while). The document or the connection itself closes it through the link, with a
//! close code and a reason. The framing is in [`crate::wsframe`].

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tafel_protocol::document::EMPTY_AWARENESS;
use tafel_protocol::wire::{decode_frame, encode_permission_denied};
use tafel_protocol::{classify, Access, Action, CloseCode, DocKey, Role};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use crate::auth::now_secs;
use crate::board::Board;
use crate::config::Config;
use crate::doc::{Close, ConnHandle, DocCmd, Link, Pushed};
use crate::domain::state::Participant;
use crate::metrics::Metrics;
use crate::registry::{DocHandle, JoinFailure, Registry};
use crate::wsframe::{
    header, CloseCode as WireClose, Control, Data, FrameError, Inbound, OpCode, Parser, MAX_HEADER,
};

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// How long a closing connection may take to send its close frame, and then to see the
/// client's close (or end of stream) before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Largest frame written: larger messages go out in fragments of this size, so a connection
/// never holds more than one fragment in flight and control frames (pings, the close) can go
/// between them.
pub const FRAGMENT: usize = 64 * 1024;
/// Small messages queued together go out in one vectored write: at most this many ...
const BATCH_MESSAGES: usize = 32;
/// ... and this many payload bytes (each message in it at most [`FRAGMENT`]).
const BATCH_BYTES: usize = 256 * 1024;
/// Bytes read per `read` call, into a buffer on the stack (never kept between reads).
const READ_CHUNK: usize = 16 * 1024;

/// The socket a connection runs on: hyper's upgraded HTTP/1.1 connection.
pub type UpgradedIo = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;

/// Everything a connection needs, decided before the upgrade.
pub struct WsSession {
    pub key: DocKey,
    pub board: Arc<Board>,
    pub who: Arc<Participant>,
    /// The token's role and expiry (the rest of the claims is not kept).
    pub role: Role,
    pub exp: u64,
    pub access: Access,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    /// Held for the life of the connection: the bound on simultaneous connections.
    pub permit: OwnedSemaphorePermit,
}

/// Decrements the connection gauge however the connection ends.
struct Counted(Arc<Metrics>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

/// Runs one connection once hyper has handed over the upgraded socket.
pub async fn serve(on_upgrade: hyper::upgrade::OnUpgrade, session: WsSession) {
    match on_upgrade.await {
        Ok(upgraded) => serve_io(hyper_util::rt::TokioIo::new(upgraded), session).await,
        Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
    }
}

/// Runs one connection on an upgraded socket until it closes.
pub async fn serve_io<Io: AsyncRead + AsyncWrite + Unpin>(io: Io, session: WsSession) {
    let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
    session.metrics.connections.inc();
    let _counted = Counted(session.metrics.clone());
    let link = Link::new(
        session.config.outgoing_queue_bytes,
        session.config.outgoing_queue,
    );
    let conn = ConnHandle {
        id,
        who: session.who.clone(),
        can_write: session.access.can_write(),
        link: link.clone(),
    };
    let mut sock = Sock::new(io, session.config.max_message_bytes);
    tracing::debug!(conn = id, doc = %session.key, role = %session.role, "connected");

    // Boxed: the join's state is needed only while joining, not for the connection's life.
    let joined = Box::pin(
        session
            .registry
            .join(&session.key, &session.board, conn.clone()),
    )
    .await;
    let mut echo = None;
    match joined {
        Ok(doc) => echo = run(&mut sock, &session, &doc, &conn).await,
        Err(JoinFailure::Store(e)) => {
            tracing::warn!(conn = id, doc = %session.key, error = %e, "cannot open document");
            conn.kick(
                CloseCode::StoreUnavailable,
                "store unavailable; retry shortly",
            );
        }
        Err(JoinFailure::Closed) => {
            conn.kick(CloseCode::GoingAway, "board deleted or server stopping");
        }
    }
    conn.kick(CloseCode::Normal, "bye");
    let (code, reason) = match (echo, link.close()) {
        (Some(code), _) => (code, String::new()),
        (None, Some(c)) => (c.code.code(), c.reason),
        (None, None) => (CloseCode::Normal.code(), String::new()),
    };
    link.end();
    // Boxed, like the join: the close's timers are needed only at the end.
    Box::pin(sock.close(code, &reason)).await;
    drop(session.permit);
}

/// What the socket has for the connection's loop.
enum Event {
    Message(Inbound),
    Bad(FrameError),
    /// The client went away (end of stream or a read error).
    Ended,
    /// Writing failed.
    Lost,
    /// The link was closed (by the document or by this connection).
    Kicked,
}

/// The connection's loop: socket events, the keepalive and the token's expiry. Returns the
/// client's close code to echo when the client closed.
async fn run<Io: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut Sock<Io>,
    session: &WsSession,
    doc: &DocHandle,
    conn: &ConnHandle,
) -> Option<u16> {
    let mut rate = Rate::new(
        session.config.max_messages_per_sec,
        session.config.max_bytes_per_sec,
        session.config.max_message_bytes as u64,
    );
    let ping_every = session.config.ping_interval;
    let started = tokio::time::Instant::now();
    let expires_at = started + Duration::from_secs(session.exp.saturating_sub(now_secs()));
    let mut next_ping = started + ping_every;
    // One timer for the ping, the idle nudge and the expiry: the earliest of them.
    let due = |sock: &Sock<Io>, next_ping| {
        expires_at
            .min(next_ping)
            .min(tokio::time::Instant::from_std(sock.last_write + IDLE_NUDGE))
    };
    let timer = tokio::time::sleep_until(due(sock, next_ping));
    tokio::pin!(timer);
    let echo = loop {
        let event = tokio::select! {
            biased;
            // The document's actor is gone (it panicked): never stay connected to nothing.
            () = doc.tx.closed() => {
                conn.kick(CloseCode::InternalError, "document failed; reconnect to reload it");
                break None;
            }
            () = &mut timer => {
                let now = tokio::time::Instant::now();
                if now >= expires_at {
                    tracing::info!(conn = conn.id, role = %session.role, "token expired, closing");
                    conn.kick(CloseCode::TokenExpired, "token expired; sign in again");
                    break None;
                }
                if now >= next_ping {
                    if sock.last_read.elapsed() > ping_every * 3 {
                        if conn.kick(CloseCode::TooSlow, "no answer to keepalive pings") {
                            tracing::info!(conn = conn.id, "no answer to keepalive pings, closing");
                            session.metrics.slow_clients_closed.inc();
                        }
                        break None;
                    }
                    sock.control(Control::Ping, Bytes::new());
                    next_ping = now + ping_every;
                }
                // y-websocket closes a socket that received no message for 30 s (pings do not
                // count in a browser): a connection that was sent nothing for IDLE_NUDGE gets an
                // empty awareness message, which changes nothing on the client.
                if sock.last_write.elapsed() >= IDLE_NUDGE {
                    sock.nudge();
                }
                timer.as_mut().reset(due(sock, next_ping));
                continue;
            }
            event = poll_fn(|cx| sock.poll_event(cx, &conn.link)) => event,
        };
        match event {
            Event::Kicked | Event::Ended => break None,
            Event::Lost => {
                conn.kick(CloseCode::GoingAway, "connection lost");
                break None;
            }
            Event::Bad(FrameError::TooBig) => {
                let limit = session.config.max_message_bytes;
                tracing::info!(conn = conn.id, limit, "message too big, closing");
                conn.kick(
                    CloseCode::MessageTooBig,
                    format!("message larger than {limit} bytes"),
                );
                break None;
            }
            Event::Bad(FrameError::Protocol(what)) => {
                tracing::info!(conn = conn.id, what, "WebSocket protocol error, closing");
                conn.kick(CloseCode::ProtocolError, format!("protocol error: {what}"));
                break None;
            }
            Event::Message(Inbound::Close(code, _)) => {
                // Echoed unless it is one a close frame may not carry.
                let sendable = !matches!(
                    code,
                    WireClose::Status | WireClose::Abnormal | WireClose::Tls
                );
                let code = u16::from(code);
                break Some(if sendable && (1000..5000).contains(&code) {
                    code
                } else {
                    CloseCode::Normal.code()
                });
            }
            Event::Message(Inbound::Text) => {
                conn.kick(
                    CloseCode::PolicyViolation,
                    "binary frames only (y-websocket protocol)",
                );
                break None;
            }
            Event::Message(Inbound::Ping(_) | Inbound::Pong) => {}
            Event::Message(Inbound::Binary(bytes)) => {
                session.metrics.bytes_in.inc_by(bytes.len() as u64);
                if let Err(what) = rate.take(bytes.len() as u64, Instant::now()) {
                    tracing::info!(conn = conn.id, doc = %session.key, role = %session.role, what, "rate limit exceeded, closing");
                    conn.kick(
                        CloseCode::RateLimited,
                        format!("rate limit: too many {what} per second; slow down"),
                    );
                    break None;
                }
                let delivered = match command(&bytes, session, conn) {
                    Ok(Some(cmd)) => match doc.tx.try_send(cmd) {
                        Ok(()) => Ok(()),
                        // The mailbox is full: wait for it (boxed, a rare path).
                        Err(full) => Box::pin(deliver(sock, doc, conn, full)).await,
                    },
                    Ok(None) => Ok(()),
                    Err(close) => Err(close),
                };
                if let Err(close) = delivered {
                    tracing::info!(conn = conn.id, doc = %session.key, code = close.code.code(), reason = %close.reason, "closing connection");
                    conn.kick(close.code, close.reason);
                    break None;
                }
            }
        }
    };
    if let Err(mpsc::error::TrySendError::Full(leave)) =
        doc.tx.try_send(DocCmd::Leave { conn: conn.id })
    {
        let _ = Box::pin(doc.tx.send(leave)).await;
    }
    echo
}

/// Hands a command the document's full mailbox did not take; meanwhile the socket goes on
/// writing (nothing more is read until the command is taken).
async fn deliver<Io: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut Sock<Io>,
    doc: &DocHandle,
    conn: &ConnHandle,
    refused: mpsc::error::TrySendError<DocCmd>,
) -> Result<(), Close> {
    let gone = || Close {
        code: CloseCode::InternalError,
        reason: "document reloaded; reconnect".into(),
    };
    let cmd = match refused {
        mpsc::error::TrySendError::Closed(_) => return Err(gone()),
        mpsc::error::TrySendError::Full(cmd) => cmd,
    };
    tokio::select! {
        sent = doc.tx.send(cmd) => sent.map_err(|_| gone()),
        // Only returns when the link closes or the socket fails; the loop then sees it again.
        () = poll_fn(|cx| sock.poll_writes(cx, &conn.link)) => Ok(()),
    }
}

/// A message being written: its frames are slices of `msg`, headers made as they go.
struct Writing {
    head: [u8; MAX_HEADER],
    head_len: u8,
    head_pos: u8,
    opcode: OpCode,
    msg: Bytes,
    /// Bytes of `msg` written.
    pos: usize,
    /// Where the current frame ends in `msg`.
    frame_end: usize,
}

impl Writing {
    fn new(opcode: OpCode, msg: Bytes) -> Writing {
        let mut w = Writing {
            head: [0; MAX_HEADER],
            head_len: 0,
            head_pos: 0,
            opcode,
            msg,
            pos: 0,
            frame_end: 0,
        };
        w.next_frame();
        w
    }

    fn next_frame(&mut self) {
        let end = (self.pos + FRAGMENT).min(self.msg.len());
        let opcode = if self.pos == 0 {
            self.opcode
        } else {
            OpCode::Data(Data::Continue)
        };
        self.head_len = header(
            &mut self.head,
            end == self.msg.len(),
            opcode,
            end - self.pos,
        ) as u8;
        self.head_pos = 0;
        self.frame_end = end;
    }

    /// Between two frames: a control frame may go now.
    fn at_boundary(&self) -> bool {
        self.head_pos == 0
    }

    /// Writes the current frame. `Ready(Ok(true))` when the whole message is written,
    /// `Ready(Ok(false))` at the end of a fragment with more to come.
    fn poll_write<Io: AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<bool>> {
        loop {
            let head = &self.head[self.head_pos as usize..self.head_len as usize];
            let body = &self.msg[self.pos..self.frame_end];
            if head.is_empty() && body.is_empty() {
                if self.frame_end == self.msg.len() {
                    return Poll::Ready(Ok(true));
                }
                self.next_frame();
                return Poll::Ready(Ok(false));
            }
            let n = if head.is_empty() {
                ready!(Pin::new(&mut *io).poll_write(cx, body))?
            } else {
                let bufs = [IoSlice::new(head), IoSlice::new(body)];
                ready!(Pin::new(&mut *io).poll_write_vectored(cx, &bufs))?
            };
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            let h = n.min(head.len());
            self.head_pos += h as u8;
            self.pos += n - h;
        }
    }
}

/// Several small data messages written with one `writev`: each a single frame, its header made
/// when it joined the batch. Exists only while there is something to write (an idle
/// connection holds none), so one system call carries what piled up while the task waited.
struct Batch {
    heads: Vec<([u8; MAX_HEADER], u8)>,
    msgs: Vec<Bytes>,
    /// Bytes of the whole batch (headers and payloads) written.
    written: usize,
    total: usize,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            heads: Vec::with_capacity(BATCH_MESSAGES),
            msgs: Vec::with_capacity(BATCH_MESSAGES),
            written: 0,
            total: 0,
        }
    }

    /// Whether `msg` fits as one more frame.
    fn fits(&self, msg: &Bytes) -> bool {
        msg.len() <= FRAGMENT
            && self.msgs.len() < BATCH_MESSAGES
            && self.total + msg.len() <= BATCH_BYTES
    }

    fn push(&mut self, msg: Bytes) {
        let mut head = [0; MAX_HEADER];
        let n = header(&mut head, true, OpCode::Data(Data::Binary), msg.len());
        self.total += n + msg.len();
        self.heads.push((head, n as u8));
        self.msgs.push(msg);
    }

    /// Writes the rest of the batch; `Ready(Ok(()))` once all of it is written.
    fn poll_write<Io: AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        while self.written < self.total {
            let mut slices = [IoSlice::new(&[]); 2 * BATCH_MESSAGES];
            let mut used = 0;
            let mut skip = self.written;
            for ((head, n), msg) in self.heads.iter().zip(&self.msgs) {
                for part in [&head[..*n as usize], &msg[..]] {
                    if skip >= part.len() {
                        skip -= part.len();
                        continue;
                    }
                    slices[used] = IoSlice::new(&part[skip..]);
                    skip = 0;
                    used += 1;
                }
            }
            let n = ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..used]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(()))
    }
}

/// The socket and the connection's framing state: the parser, the messages it completed and
/// not yet handed out, the data message being written and a control frame waiting.
struct Sock<Io> {
    io: Io,
    parser: Parser,
    inbox: VecDeque<Inbound>,
    data: Option<Writing>,
    /// Small messages going out together, before `data`.
    batch: Option<Batch>,
    control: Option<Writing>,
    ended: bool,
    /// When the client was last heard from (any bytes), for the keepalive.
    last_read: Instant,
    /// When a data message was last written, for the idle nudge.
    last_write: Instant,
}

impl<Io: AsyncRead + AsyncWrite + Unpin> Sock<Io> {
    fn new(io: Io, max_message: usize) -> Sock<Io> {
        let now = Instant::now();
        Sock {
            io,
            parser: Parser::new(max_message),
            inbox: VecDeque::new(),
            data: None,
            batch: None,
            control: None,
            ended: false,
            last_read: now,
            last_write: now,
        }
    }

    /// Queues a control frame to go at the next frame boundary (unless one is being written).
    fn control(&mut self, opcode: Control, payload: Bytes) {
        if self.control.as_ref().is_none_or(Writing::at_boundary) {
            self.control = Some(Writing::new(OpCode::Control(opcode), payload));
        }
    }

    /// An empty awareness message, unless a message is being written.
    fn nudge(&mut self) {
        if self.data.is_none() && self.batch.is_none() {
            self.data = Some(Writing::new(
                OpCode::Data(Data::Binary),
                Bytes::from_static(EMPTY_AWARENESS),
            ));
            self.last_write = Instant::now();
        }
    }

    /// Writes what is queued (the link's frames when `link` is given) until the socket would
    /// block or nothing is left. `Err` when writing failed.
    fn poll_write_queued(
        &mut self,
        cx: &mut Context<'_>,
        link: Option<&Link>,
    ) -> Poll<std::io::Result<()>> {
        let mut wrote = false;
        let result = loop {
            if self.control.is_some()
                && self.batch.is_none()
                && self.data.as_ref().is_none_or(Writing::at_boundary)
            {
                let Some(c) = &mut self.control else {
                    break Poll::Ready(Ok(()));
                };
                match c.poll_write(&mut self.io, cx) {
                    Poll::Ready(Ok(true)) => {
                        self.control = None;
                        wrote = true;
                        continue;
                    }
                    Poll::Ready(Ok(false)) => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break Poll::Pending,
                }
            }
            if let Some(b) = &mut self.batch {
                match b.poll_write(&mut self.io, cx) {
                    Poll::Ready(Ok(())) => {
                        self.batch = None;
                        self.last_write = Instant::now();
                        wrote = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break Poll::Pending,
                }
                continue;
            }
            if let Some(d) = &mut self.data {
                match d.poll_write(&mut self.io, cx) {
                    Poll::Ready(Ok(true)) => {
                        self.data = None;
                        self.last_write = Instant::now();
                        wrote = true;
                    }
                    Poll::Ready(Ok(false)) => wrote = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break Poll::Pending,
                }
                continue;
            }
            // Take what the link holds: small messages into one batch (one `writev`), a big
            // one (or one that does not fit any more) on its own after the batch.
            let Some(link) = link else {
                break Poll::Ready(Ok(()));
            };
            let Poll::Ready(Some(first)) = link.poll_next(cx) else {
                break Poll::Ready(Ok(()));
            };
            if first.len() > FRAGMENT {
                self.data = Some(Writing::new(OpCode::Data(Data::Binary), first));
                continue;
            }
            let Poll::Ready(Some(second)) = link.poll_next(cx) else {
                // A lone small message: no batch needed.
                self.data = Some(Writing::new(OpCode::Data(Data::Binary), first));
                continue;
            };
            let mut batch = Batch::new();
            batch.push(first);
            let mut next = Some(second);
            while let Some(frame) = next.take() {
                if !batch.fits(&frame) {
                    self.data = Some(Writing::new(OpCode::Data(Data::Binary), frame));
                    break;
                }
                batch.push(frame);
                if let Poll::Ready(Some(f)) = link.poll_next(cx) {
                    next = Some(f);
                }
            }
            self.batch = Some(batch);
        };
        if wrote {
            if let Poll::Ready(Err(e)) = Pin::new(&mut self.io).poll_flush(cx) {
                return Poll::Ready(Err(e));
            }
        }
        result
    }

    /// Writes, then reads: the next event for the connection's loop.
    fn poll_event(&mut self, cx: &mut Context<'_>, link: &Link) -> Poll<Event> {
        if link.poll_kicked(cx).is_ready() {
            return Poll::Ready(Event::Kicked);
        }
        if let Poll::Ready(Err(_)) = self.poll_write_queued(cx, Some(link)) {
            return Poll::Ready(Event::Lost);
        }
        loop {
            while let Some(m) = self.inbox.pop_front() {
                if self.inbox.is_empty() {
                    self.inbox = VecDeque::new();
                }
                match m {
                    Inbound::Ping(payload) => {
                        self.control(Control::Pong, Bytes::from(payload));
                        if let Poll::Ready(Err(_)) = self.poll_write_queued(cx, Some(link)) {
                            return Poll::Ready(Event::Lost);
                        }
                    }
                    Inbound::Pong => {}
                    m => return Poll::Ready(Event::Message(m)),
                }
            }
            if self.ended {
                return Poll::Ready(Event::Ended);
            }
            let mut buf = [0u8; READ_CHUNK];
            let mut rb = ReadBuf::new(&mut buf);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => self.ended = true,
                Poll::Ready(Ok(())) if rb.filled().is_empty() => self.ended = true,
                Poll::Ready(Ok(())) => {
                    self.last_read = Instant::now();
                    let inbox = &mut self.inbox;
                    if let Err(e) = self.parser.feed(rb.filled(), &mut |m| inbox.push_back(m)) {
                        return Poll::Ready(Event::Bad(e));
                    }
                }
            }
        }
    }

    /// Writes only (while a command waits for the document's mailbox); returns when the link
    /// closes or writing fails.
    fn poll_writes(&mut self, cx: &mut Context<'_>, link: &Link) -> Poll<()> {
        if link.poll_kicked(cx).is_ready() {
            return Poll::Ready(());
        }
        match self.poll_write_queued(cx, Some(link)) {
            Poll::Ready(Err(_)) => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }

    /// Finishes the frame being written (what is still queued is dropped), sends the close
    /// frame, ends the stream and waits a moment for the client's end, so that the close frame
    /// is not lost to a reset.
    async fn close(&mut self, code: u16, reason: &str) {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(truncate_reason(reason).as_bytes());
        let sent = tokio::time::timeout(CLOSE_GRACE, async {
            poll_fn(|cx| self.poll_finish_frame(cx)).await?;
            self.control = Some(Writing::new(
                OpCode::Control(Control::Close),
                Bytes::from(payload),
            ));
            poll_fn(|cx| self.poll_write_queued(cx, None)).await?;
            poll_fn(|cx| Pin::new(&mut self.io).poll_shutdown(cx)).await
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_GRACE, poll_fn(|cx| self.poll_drain(cx))).await;
    }

    /// Completes the frame (control or data) that is partly written, then forgets the rest.
    fn poll_finish_frame(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(c) = &mut self.control {
            if !c.at_boundary() {
                ready!(c.poll_write(&mut self.io, cx))?;
            }
        }
        self.control = None;
        if let Some(b) = &mut self.batch {
            if b.written > 0 {
                ready!(b.poll_write(&mut self.io, cx))?;
            }
        }
        self.batch = None;
        if let Some(d) = &mut self.data {
            if !d.at_boundary() {
                ready!(d.poll_write(&mut self.io, cx))?;
            }
        }
        self.data = None;
        Poll::Ready(Ok(()))
    }

    /// Reads and discards until the client ends its side.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.ended {
            return Poll::Ready(());
        }
        loop {
            let mut buf = [0u8; READ_CHUNK];
            let mut rb = ReadBuf::new(&mut buf);
            match ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb)) {
                Ok(()) if !rb.filled().is_empty() => {}
                _ => return Poll::Ready(()),
            }
        }
    }
}

/// How long a connection may be sent nothing before it gets an empty awareness message.
const IDLE_NUDGE: Duration = Duration::from_secs(15);

/// Two token buckets per connection: messages and bytes per second. A bucket holds a second's
/// worth twice over (bytes: at least one largest message), so bursts pass and only sustained
/// floods are cut off.
struct Rate {
    messages: f64,
    bytes: f64,
    per_sec: (f64, f64),
    cap: (f64, f64),
    last: Instant,
}

impl Rate {
    fn new(messages_per_sec: u32, bytes_per_sec: u64, max_message: u64) -> Rate {
        let cap = (
            2.0 * messages_per_sec as f64,
            (2 * bytes_per_sec).max(max_message) as f64,
        );
        Rate {
            messages: cap.0,
            bytes: cap.1,
            per_sec: (messages_per_sec as f64, bytes_per_sec as f64),
            cap,
            last: Instant::now(),
        }
    }

    /// Takes one message of `len` bytes; `Err` names what ran out.
    fn take(&mut self, len: u64, now: Instant) -> Result<(), &'static str> {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.messages = (self.messages + dt * self.per_sec.0).min(self.cap.0);
        self.bytes = (self.bytes + dt * self.per_sec.1).min(self.cap.1);
        if self.messages < 1.0 {
            return Err("messages");
        }
        if self.bytes < len as f64 {
            return Err("bytes");
        }
        self.messages -= 1.0;
        self.bytes -= len as f64;
        Ok(())
    }
}

/// Decodes one message and decides what the protocol asks: a command for the document (or
/// none). An `Err` closes the connection.
fn command(frame: &[u8], session: &WsSession, conn: &ConnHandle) -> Result<Option<DocCmd>, Close> {
    let malformed = |e: tafel_protocol::wire::WireError| Close {
        code: CloseCode::MalformedMessage,
        reason: format!("malformed message: {e}"),
    };
    let msg = decode_frame(frame).map_err(malformed)?;
    let action = classify(session.access, msg).map_err(malformed)?;
    let cmd = match action {
        Action::AnswerSyncStep1(sv) => DocCmd::SyncStep1 { conn: conn.id, sv },
        Action::Apply(update) => DocCmd::Apply {
            conn: conn.id,
            update,
        },
        Action::Awareness(update) => DocCmd::Awareness {
            conn: conn.id,
            update,
        },
        Action::AnswerAwarenessQuery => DocCmd::AwarenessQuery { conn: conn.id },
        Action::CheckReadOnly(update) => DocCmd::ReadOnly {
            conn: conn.id,
            update,
        },
        Action::Deny(reason) => {
            session.metrics.refused_updates.inc();
            tracing::info!(conn = conn.id, doc = %session.key, role = %session.role, %reason, "update refused");
            let frame = Bytes::from(encode_permission_denied(&reason));
            return match conn.link.push(frame) {
                Pushed::Full(_) => Err(Close {
                    code: CloseCode::TooSlow,
                    reason: "too slow: outgoing queue full".into(),
                }),
                Pushed::Queued | Pushed::Gone => Ok(None),
            };
        }
        Action::Ignore => return Ok(None),
    };
    Ok(Some(cmd))
}

/// Close reasons are limited to 123 bytes by RFC 6455.
fn truncate_reason(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an idle connection keeps besides its task (see docs/benchmarks.md, "Socket layer"):
    /// the socket's framing state and its link hold no buffer, only a few words each.
    #[test]
    fn an_idle_connection_holds_no_buffer() {
        let sock = std::mem::size_of::<Sock<UpgradedIo>>();
        let link = std::mem::size_of::<Link>();
        eprintln!(
            "Sock {sock} B, Link {link} B, Writing {} B, Parser {} B",
            std::mem::size_of::<Writing>(),
            std::mem::size_of::<Parser>()
        );
        assert!(sock <= 512, "the socket state is {sock} bytes");
        assert!(link <= 160, "the link is {link} bytes");
        let l = Link::new(1 << 20, 16);
        assert!(matches!(l.push(Bytes::from_static(b"abc")), Pushed::Queued));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(matches!(l.poll_next(&mut cx), Poll::Ready(Some(_))));
        assert!(l.poll_next(&mut cx).is_pending(), "drained");
    }

    /// A socket that takes at most `per_write` bytes per call and counts the calls.
    struct Pipe {
        out: Vec<u8>,
        writes: usize,
        per_write: usize,
    }

    impl AsyncRead for Pipe {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for Pipe {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.per_write);
            self.out.extend_from_slice(&buf[..n]);
            self.writes += 1;
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let mut left = self.per_write;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(left);
                self.out.extend_from_slice(&b[..take]);
                left -= take;
                n += take;
            }
            self.writes += 1;
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn frame_bytes(fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut h = [0u8; MAX_HEADER];
        let n = header(&mut h, fin, op, payload.len());
        [&h[..n], payload].concat()
    }

    /// Messages that piled up go out in one `writev` (not one system call each), in order,
    /// framed exactly as one by one; a big message among them is fragmented after the batch;
    /// a socket that takes a few bytes at a time gets the same bytes.
    #[test]
    fn queued_messages_go_out_in_one_write_framed_as_one_by_one() {
        let small: Vec<Bytes> = (0..5u8)
            .map(|i| Bytes::from(vec![i; 10 + i as usize]))
            .collect();
        let big = Bytes::from(vec![9u8; FRAGMENT + 100]);
        let mut expected = Vec::new();
        for m in &small[..3] {
            expected.extend(frame_bytes(true, OpCode::Data(Data::Binary), m));
        }
        expected.extend(frame_bytes(
            false,
            OpCode::Data(Data::Binary),
            &big[..FRAGMENT],
        ));
        expected.extend(frame_bytes(
            true,
            OpCode::Data(Data::Continue),
            &big[FRAGMENT..],
        ));
        for m in &small[3..] {
            expected.extend(frame_bytes(true, OpCode::Data(Data::Binary), m));
        }
        for per_write in [usize::MAX, 7] {
            let link = Link::new(1 << 24, 64);
            for m in small[..3].iter().chain([&big]).chain(&small[3..]) {
                assert!(matches!(link.push(m.clone()), Pushed::Queued));
            }
            let pipe = Pipe {
                out: Vec::new(),
                writes: 0,
                per_write,
            };
            let mut sock = Sock::new(pipe, 1 << 20);
            let mut cx = Context::from_waker(std::task::Waker::noop());
            assert!(matches!(
                sock.poll_write_queued(&mut cx, Some(&link)),
                Poll::Ready(Ok(()))
            ));
            assert!(sock.batch.is_none() && sock.data.is_none(), "all written");
            assert_eq!(sock.io.out, expected, "per_write {per_write}");
            if per_write == usize::MAX {
                // 3 small in one, the big one's 2 fragments, the last 2 small in one.
                assert_eq!(sock.io.writes, 4, "system calls");
            }
        }
    }
}
