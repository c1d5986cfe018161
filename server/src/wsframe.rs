//! WebSocket framing (RFC 6455), server side, no extensions, on tungstenite's wire format: a
//! parser that is fed whatever bytes one read returned and keeps only a partial header and the
//! message being assembled (never a read buffer of its own), and the headers for frames written
//! straight from a shared `Bytes` (large messages as a first frame and continuation frames,
//! each a slice of it).
//!
//! From tungstenite (`tungstenite::protocol::frame`): the frame header itself — parsing
//! ([`FrameHeader::parse`]: the FIN and reserved bits, the opcode, the length in its three
//! forms, the mask; unknown opcodes refused) and writing ([`FrameHeader::format`], the
//! shortest length form, into a stack array) — and the opcodes ([`OpCode`]) and close codes
//! ([`CloseCode`]).
//!
//! Ours, because tungstenite does not expose it without its buffers: keeping the partial
//! header (at most 14 bytes) between reads until `FrameHeader::parse` has all of it; the
//! server's rules on a parsed header (masked client frames, no reserved bits, control frames
//! final and at most 125 bytes, the message limit checked at the header before any payload);
//! unmasking the payload (tungstenite's mask module is private; a few lines); assembling a
//! message across continuation frames; and writing a message as slices of one shared `Bytes`.
//!
//! Why not tungstenite's `WebSocket`/`FrameSocket` here: it allocates its read buffer when the
//! socket is made and keeps the largest capacity it ever reached, and it copies every outgoing
//! payload into the connection's write buffer; an idle connection then costs its read buffer,
//! and a 20 MB first sync costs 20 MB per joiner. See docs/benchmarks.md ("Socket layer").

use std::io::Cursor;

use tungstenite::error::{Error as WsError, ProtocolError};
pub use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Largest header of a frame the server writes (unmasked: 2 + 8 bytes of length).
pub const MAX_HEADER: usize = 10;
/// Largest header of a frame a client writes (masked: 2 + 8 bytes of length + 4 of mask).
const MAX_CLIENT_HEADER: usize = 14;
/// Largest control frame payload.
const MAX_CONTROL: u64 = 125;
/// Most bytes reserved up front for a message whose length a header announced; beyond it the
/// message grows as its bytes arrive (a header alone must not make the server allocate much).
const MAX_RESERVE: usize = 64 * 1024;

/// Writes the header of an unmasked frame into `buf` (tungstenite's format); returns its
/// length.
pub fn header(buf: &mut [u8; MAX_HEADER], fin: bool, opcode: OpCode, len: usize) -> usize {
    let head = FrameHeader {
        is_final: fin,
        opcode,
        mask: None,
        ..FrameHeader::default()
    };
    let mut out: &mut [u8] = &mut buf[..];
    // An unmasked header is at most MAX_HEADER bytes, so writing into `buf` cannot run out.
    head.format(len as u64, &mut out)
        .expect("an unmasked header fits in MAX_HEADER bytes");
    MAX_HEADER - out.len()
}

/// A complete message (or control frame) from the client.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    Binary(Vec<u8>),
    /// A text message began (not part of the y-websocket protocol; its bytes are skipped).
    Text,
    Ping(Vec<u8>),
    Pong,
    /// The client closes: its code ([`CloseCode::Status`], 1005, when it gave none) and reason.
    Close(CloseCode, String),
}

/// Why the byte stream cannot be read on.
#[derive(Debug, PartialEq)]
pub enum FrameError {
    /// Not a valid client frame sequence (close 1002).
    Protocol(&'static str),
    /// A message larger than the limit (close 1009).
    TooBig,
}

/// The frame being read.
#[derive(Debug)]
struct Frame {
    opcode: OpCode,
    fin: bool,
    mask: [u8; 4],
    /// Payload bytes still to come.
    remaining: u64,
    /// Payload bytes read so far (the mask's phase).
    done: u64,
}

/// Reads client frames from the bytes it is fed.
#[derive(Debug)]
pub struct Parser {
    max_message: usize,
    /// The header read so far, until [`FrameHeader::parse`] has all of it.
    head: [u8; MAX_CLIENT_HEADER],
    head_len: usize,
    frame: Option<Frame>,
    /// The data message being assembled (text or binary, bytes) across continuation frames.
    message: Option<(Data, Vec<u8>)>,
    /// A control frame's payload (up to 125 bytes).
    control: Vec<u8>,
}

impl Parser {
    pub fn new(max_message: usize) -> Parser {
        Parser {
            max_message,
            head: [0; MAX_CLIENT_HEADER],
            head_len: 0,
            frame: None,
            message: None,
            control: Vec::new(),
        }
    }

    /// Whether a message is half read (its buffer is in use).
    pub fn busy(&self) -> bool {
        self.frame.is_some() || self.message.is_some() || self.head_len > 0
    }

    /// Feeds the bytes one read returned; every complete message goes to `out`, in order.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut impl FnMut(Inbound),
    ) -> Result<(), FrameError> {
        while !input.is_empty() {
            let Some(frame) = &mut self.frame else {
                let used = self.read_header(input)?;
                input = &input[used..];
                if self.frame.as_ref().is_some_and(|f| f.remaining == 0) {
                    self.end_frame(out)?;
                }
                continue;
            };
            let take = (frame.remaining.min(input.len() as u64)) as usize;
            let (chunk, rest) = input.split_at(take);
            input = rest;
            let phase = frame.done;
            let mask = frame.mask;
            frame.remaining -= take as u64;
            frame.done += take as u64;
            let sink = match frame.opcode {
                OpCode::Control(_) => Some(&mut self.control),
                OpCode::Data(_) => match &mut self.message {
                    Some((Data::Binary, data)) => Some(data),
                    _ => None, // a text message: skipped
                },
            };
            if let Some(sink) = sink {
                let start = sink.len();
                sink.extend_from_slice(chunk);
                unmask(&mut sink[start..], mask, phase);
            }
            if self.frame.as_ref().is_some_and(|f| f.remaining == 0) {
                self.end_frame(out)?;
            }
        }
        Ok(())
    }

    /// Takes header bytes from `input` (as many as the header needs, parsed by tungstenite);
    /// returns how many.
    fn read_header(&mut self, input: &[u8]) -> Result<usize, FrameError> {
        let had = self.head_len;
        let take = (MAX_CLIENT_HEADER - had).min(input.len());
        self.head[had..had + take].copy_from_slice(&input[..take]);
        let mut cursor = Cursor::new(&self.head[..had + take]);
        let parsed = FrameHeader::parse(&mut cursor).map_err(|e| match e {
            WsError::Protocol(ProtocolError::InvalidOpcode(_)) => {
                FrameError::Protocol("unknown opcode")
            }
            _ => FrameError::Protocol("invalid frame header"),
        })?;
        let Some((head, len)) = parsed else {
            // Not all of the header yet (it is at most 14 bytes, so `input` ran out): keep it.
            self.head_len = had + take;
            return Ok(take);
        };
        // The header's bytes that came from this `input`; the rest of `input` is payload.
        let used = cursor.position() as usize - had;
        self.head_len = 0;
        if head.rsv1 || head.rsv2 || head.rsv3 {
            return Err(FrameError::Protocol("reserved bits set"));
        }
        let Some(mask) = head.mask else {
            return Err(FrameError::Protocol("unmasked frame from a client"));
        };
        match head.opcode {
            OpCode::Control(Control::Close | Control::Ping | Control::Pong) => {
                if !head.is_final {
                    return Err(FrameError::Protocol("fragmented control frame"));
                }
                if len > MAX_CONTROL {
                    return Err(FrameError::Protocol("control frame too long"));
                }
                self.control = Vec::with_capacity(len as usize);
            }
            OpCode::Data(kind @ (Data::Text | Data::Binary)) => {
                if self.message.is_some() {
                    return Err(FrameError::Protocol("new message inside a fragmented one"));
                }
                if len > self.max_message as u64 {
                    return Err(FrameError::TooBig);
                }
                let data = if kind == Data::Binary {
                    Vec::with_capacity((len as usize).min(MAX_RESERVE))
                } else {
                    Vec::new()
                };
                self.message = Some((kind, data));
            }
            OpCode::Data(Data::Continue) => match &self.message {
                None => return Err(FrameError::Protocol("continuation without a message")),
                Some((_, data)) if data.len() as u64 + len > self.max_message as u64 => {
                    return Err(FrameError::TooBig)
                }
                Some(_) => {}
            },
            // `FrameHeader::parse` refuses these already.
            OpCode::Data(Data::Reserved(_)) | OpCode::Control(Control::Reserved(_)) => {
                return Err(FrameError::Protocol("unknown opcode"))
            }
        }
        self.frame = Some(Frame {
            opcode: head.opcode,
            fin: head.is_final,
            mask,
            remaining: len,
            done: 0,
        });
        Ok(used)
    }

    /// The current frame is complete: hand out what it completed.
    fn end_frame(&mut self, out: &mut impl FnMut(Inbound)) -> Result<(), FrameError> {
        let Some(frame) = self.frame.take() else {
            return Ok(());
        };
        match frame.opcode {
            OpCode::Control(Control::Ping) => out(Inbound::Ping(std::mem::take(&mut self.control))),
            OpCode::Control(Control::Pong) => {
                self.control = Vec::new();
                out(Inbound::Pong)
            }
            OpCode::Control(Control::Close) => {
                let c = std::mem::take(&mut self.control);
                match c.len() {
                    0 => out(Inbound::Close(CloseCode::Status, String::new())),
                    1 => return Err(FrameError::Protocol("close frame of one byte")),
                    _ => out(Inbound::Close(
                        CloseCode::from(u16::from_be_bytes([c[0], c[1]])),
                        String::from_utf8_lossy(&c[2..]).into_owned(),
                    )),
                }
            }
            _ if frame.fin => match self.message.take() {
                Some((Data::Binary, data)) => out(Inbound::Binary(data)),
                Some(_) => out(Inbound::Text),
                None => {}
            },
            _ => {}
        }
        Ok(())
    }
}

/// Unmasks payload bytes in place; `phase` is how many bytes of the frame's payload came
/// before them (tungstenite's own `apply_mask` is not public).
fn unmask(bytes: &mut [u8], mask: [u8; 4], phase: u64) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b ^= mask[((phase + i as u64) % 4) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OP_CONTINUATION: OpCode = OpCode::Data(Data::Continue);
    const OP_TEXT: OpCode = OpCode::Data(Data::Text);
    const OP_BINARY: OpCode = OpCode::Data(Data::Binary);
    const OP_CLOSE: OpCode = OpCode::Control(Control::Close);
    const OP_PING: OpCode = OpCode::Control(Control::Ping);
    const OP_PONG: OpCode = OpCode::Control(Control::Pong);

    /// A masked client frame (its header written by tungstenite).
    fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let head = FrameHeader {
            is_final: fin,
            opcode,
            mask: Some(mask),
            ..FrameHeader::default()
        };
        let mut f = Vec::new();
        head.format(payload.len() as u64, &mut f)
            .expect("into a Vec");
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    fn parse_in_pieces(bytes: &[u8], piece: usize) -> Result<Vec<Inbound>, FrameError> {
        let mut p = Parser::new(1 << 20);
        let mut got = Vec::new();
        for chunk in bytes.chunks(piece) {
            p.feed(chunk, &mut |m| got.push(m))?;
        }
        assert!(!p.busy(), "the parser holds nothing after whole frames");
        Ok(got)
    }

    #[test]
    fn messages_split_at_any_byte_are_read_whole() {
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let mut bytes = client_frame(true, OP_BINARY, b"hello");
        bytes.extend(client_frame(true, OP_BINARY, &big));
        bytes.extend(client_frame(true, OP_PING, b"p"));
        bytes.extend(client_frame(true, OP_BINARY, &[]));
        for piece in [1, 2, 3, 7, 13, 4096, usize::MAX] {
            let got = parse_in_pieces(&bytes, piece.min(bytes.len())).expect("valid frames");
            assert_eq!(
                got,
                vec![
                    Inbound::Binary(b"hello".to_vec()),
                    Inbound::Binary(big.clone()),
                    Inbound::Ping(b"p".to_vec()),
                    Inbound::Binary(Vec::new()),
                ],
                "read in pieces of {piece}"
            );
        }
    }

    #[test]
    fn fragmented_messages_are_joined_with_control_frames_in_between() {
        let mut bytes = client_frame(false, OP_BINARY, b"ab");
        bytes.extend(client_frame(true, OP_PONG, b""));
        bytes.extend(client_frame(false, OP_CONTINUATION, b"cd"));
        bytes.extend(client_frame(true, OP_CONTINUATION, b"e"));
        let got = parse_in_pieces(&bytes, 3).expect("valid frames");
        assert_eq!(got, vec![Inbound::Pong, Inbound::Binary(b"abcde".to_vec())]);
    }

    #[test]
    fn close_text_and_bad_frames() {
        let mut close = client_frame(true, OP_CLOSE, &[0x03, 0xE8, b'o', b'k']);
        close.extend(client_frame(true, OP_CLOSE, b""));
        assert_eq!(
            parse_in_pieces(&close, 5),
            Ok(vec![
                Inbound::Close(CloseCode::Normal, "ok".into()),
                Inbound::Close(CloseCode::Status, String::new())
            ])
        );
        assert_eq!(
            parse_in_pieces(&client_frame(true, OP_TEXT, b"hi"), 1),
            Ok(vec![Inbound::Text])
        );
        let mut unmasked = client_frame(true, OP_BINARY, b"x");
        unmasked[1] &= 0x7F;
        let mut p = Parser::new(100);
        assert!(matches!(
            p.feed(&unmasked, &mut |_| {}),
            Err(FrameError::Protocol(_))
        ));
        let mut p = Parser::new(100);
        assert!(matches!(
            p.feed(&client_frame(true, OP_CONTINUATION, b"x"), &mut |_| {}),
            Err(FrameError::Protocol(_))
        ));
        let mut p = Parser::new(100);
        assert!(matches!(
            p.feed(&client_frame(false, OP_PING, b"x"), &mut |_| {}),
            Err(FrameError::Protocol(_))
        ));
        let mut reserved = client_frame(true, OP_BINARY, b"x");
        reserved[0] |= 0x40;
        assert_eq!(
            Parser::new(100).feed(&reserved, &mut |_| {}),
            Err(FrameError::Protocol("reserved bits set"))
        );
        let mut unknown = client_frame(true, OP_BINARY, b"x");
        unknown[0] = (unknown[0] & 0xF0) | 0x3;
        assert_eq!(
            Parser::new(100).feed(&unknown, &mut |_| {}),
            Err(FrameError::Protocol("unknown opcode"))
        );
        assert_eq!(
            parse_in_pieces(&client_frame(true, OP_CLOSE, &[0x03]), 1),
            Err(FrameError::Protocol("close frame of one byte"))
        );
    }

    #[test]
    fn a_message_over_the_limit_is_refused_at_its_header() {
        let mut p = Parser::new(100);
        // Only the header of a 1 MB frame: refused before any payload arrives.
        let frame = client_frame(true, OP_BINARY, &vec![0u8; 1 << 20]);
        assert_eq!(p.feed(&frame[..14], &mut |_| {}), Err(FrameError::TooBig));
        let mut p = Parser::new(100);
        let mut two = client_frame(false, OP_BINARY, &[0u8; 60]);
        two.extend(client_frame(true, OP_CONTINUATION, &[0u8; 60]));
        assert_eq!(p.feed(&two, &mut |_| {}), Err(FrameError::TooBig));
    }

    #[test]
    fn headers_use_the_shortest_length_form() {
        let mut h = [0u8; MAX_HEADER];
        assert_eq!(header(&mut h, true, OP_BINARY, 125), 2);
        assert_eq!(&h[..2], &[0x82, 125]);
        assert_eq!(header(&mut h, false, OP_BINARY, 126), 4);
        assert_eq!(&h[..4], &[0x02, 126, 0, 126]);
        assert_eq!(header(&mut h, true, OP_CONTINUATION, 70_000), 10);
        assert_eq!(&h[..2], &[0x80, 127]);
        assert_eq!(u64::from_be_bytes(h[2..10].try_into().expect("8")), 70_000);
    }
}
