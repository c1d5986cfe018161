//! WebSocket framing (RFC 6455), server side, no extensions: a parser that is fed whatever
//! bytes one read returned and keeps only a partial header and the message being assembled
//! (never a read buffer of its own), and the headers for frames written straight from a shared
//! `Bytes` (large messages as a first frame and continuation frames, each a slice of it).
//!
//! Why not tungstenite here: it allocates its read buffer when the socket is made and keeps
//! the largest capacity it ever reached, and it copies every outgoing payload into the
//! connection's write buffer; an idle connection then costs its read buffer, and a 20 MB first
//! sync costs 20 MB per joiner. See docs/benchmarks.md ("Socket layer").

/// Largest header of a frame the server writes (unmasked: 2 + 8 bytes of length).
pub const MAX_HEADER: usize = 10;
/// Largest control frame payload.
const MAX_CONTROL: usize = 125;
/// Most bytes reserved up front for a message whose length a header announced; beyond it the
/// message grows as its bytes arrive (a header alone must not make the server allocate much).
const MAX_RESERVE: usize = 64 * 1024;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Writes the header of an unmasked frame into `buf`; returns its length.
pub fn header(buf: &mut [u8; MAX_HEADER], fin: bool, opcode: u8, len: usize) -> usize {
    buf[0] = if fin { 0x80 } else { 0 } | (opcode & 0x0F);
    if len < 126 {
        buf[1] = len as u8;
        2
    } else if len <= u16::MAX as usize {
        buf[1] = 126;
        buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        buf[1] = 127;
        buf[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// A complete message (or control frame) from the client.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    Binary(Vec<u8>),
    /// A text message began (not part of the y-websocket protocol; its bytes are skipped).
    Text,
    Ping(Vec<u8>),
    Pong,
    /// The client closes: its code (1005 when it gave none) and reason.
    Close(u16, String),
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
    opcode: u8,
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
    head: [u8; 14],
    head_len: usize,
    frame: Option<Frame>,
    /// The data message being assembled (opcode, bytes) across continuation frames.
    message: Option<(u8, Vec<u8>)>,
    /// A control frame's payload (up to 125 bytes).
    control: Vec<u8>,
}

impl Parser {
    pub fn new(max_message: usize) -> Parser {
        Parser {
            max_message,
            head: [0; 14],
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
                OP_CLOSE | OP_PING | OP_PONG => Some(&mut self.control),
                _ => match &mut self.message {
                    Some((OP_BINARY, data)) => Some(data),
                    _ => None, // a text message: skipped
                },
            };
            if let Some(sink) = sink {
                let start = sink.len();
                sink.extend_from_slice(chunk);
                for (i, b) in sink[start..].iter_mut().enumerate() {
                    *b ^= mask[((phase + i as u64) % 4) as usize];
                }
            }
            if self.frame.as_ref().is_some_and(|f| f.remaining == 0) {
                self.end_frame(out)?;
            }
        }
        Ok(())
    }

    /// Takes header bytes from `input` (as many as the header needs); returns how many.
    fn read_header(&mut self, input: &[u8]) -> Result<usize, FrameError> {
        let mut used = 0;
        let mut need = 2;
        loop {
            if self.head_len >= 2 {
                need =
                    2 + match self.head[1] & 0x7F {
                        126 => 2,
                        127 => 8,
                        _ => 0,
                    } + if self.head[1] & 0x80 != 0 { 4 } else { 0 };
            }
            if self.head_len >= need {
                break;
            }
            if used == input.len() {
                return Ok(used);
            }
            let take = (need - self.head_len).min(input.len() - used);
            self.head[self.head_len..self.head_len + take]
                .copy_from_slice(&input[used..used + take]);
            self.head_len += take;
            used += take;
        }
        let h = &self.head;
        let fin = h[0] & 0x80 != 0;
        if h[0] & 0x70 != 0 {
            return Err(FrameError::Protocol("reserved bits set"));
        }
        let opcode = h[0] & 0x0F;
        if h[1] & 0x80 == 0 {
            return Err(FrameError::Protocol("unmasked frame from a client"));
        }
        let (len, at) = match h[1] & 0x7F {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&h[2..10]);
                (u64::from_be_bytes(b), 10)
            }
            n => (u64::from(n), 2),
        };
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&h[at..at + 4]);
        self.head_len = 0;
        match opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin {
                    return Err(FrameError::Protocol("fragmented control frame"));
                }
                if len > MAX_CONTROL as u64 {
                    return Err(FrameError::Protocol("control frame too long"));
                }
                self.control = Vec::with_capacity(len as usize);
            }
            OP_TEXT | OP_BINARY => {
                if self.message.is_some() {
                    return Err(FrameError::Protocol("new message inside a fragmented one"));
                }
                if len > self.max_message as u64 {
                    return Err(FrameError::TooBig);
                }
                let data = if opcode == OP_BINARY {
                    Vec::with_capacity((len as usize).min(MAX_RESERVE))
                } else {
                    Vec::new()
                };
                self.message = Some((opcode, data));
            }
            OP_CONTINUATION => match &self.message {
                None => return Err(FrameError::Protocol("continuation without a message")),
                Some((_, data)) if data.len() as u64 + len > self.max_message as u64 => {
                    return Err(FrameError::TooBig)
                }
                Some(_) => {}
            },
            _ => return Err(FrameError::Protocol("unknown opcode")),
        }
        self.frame = Some(Frame {
            opcode,
            fin,
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
            OP_PING => out(Inbound::Ping(std::mem::take(&mut self.control))),
            OP_PONG => {
                self.control = Vec::new();
                out(Inbound::Pong)
            }
            OP_CLOSE => {
                let c = std::mem::take(&mut self.control);
                match c.len() {
                    0 => out(Inbound::Close(1005, String::new())),
                    1 => return Err(FrameError::Protocol("close frame of one byte")),
                    _ => out(Inbound::Close(
                        u16::from_be_bytes([c[0], c[1]]),
                        String::from_utf8_lossy(&c[2..]).into_owned(),
                    )),
                }
            }
            _ if frame.fin => match self.message.take() {
                Some((OP_BINARY, data)) => out(Inbound::Binary(data)),
                Some(_) => out(Inbound::Text),
                None => {}
            },
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut head = [0u8; MAX_HEADER];
        let n = header(&mut head, fin, opcode, payload.len());
        let mut f = head[..n].to_vec();
        f[1] |= 0x80;
        f.extend_from_slice(&mask);
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
                Inbound::Close(1000, "ok".into()),
                Inbound::Close(1005, String::new())
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
