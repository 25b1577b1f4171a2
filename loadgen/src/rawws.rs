//! A minimal WebSocket client for the subscriber side of `loadgen ws --client raw`: the
//! HTTP upgrade, masked text frames out, unmasked frames in, pings answered. Incoming data
//! frames are not copied or UTF-8 checked: only their `"version":` is read, in place, so the
//! client's CPU per message stays close to the kernel's cost of a read.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a subscriber gets from its connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A data frame; the version it carries.
    Version(u32),
    /// Any other text message (keep-alives, acks, errors), whole.
    Other(String),
    /// The connection ended (close frame, EOF or error).
    Closed(String),
}

pub struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Where the unparsed bytes in `buf` start.
    start: usize,
    /// A fragmented message being put together.
    fragments: Vec<u8>,
    mask: [u8; 4],
}

/// A parsed frame header: FIN, opcode, header length, payload length.
#[derive(Debug, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: u8,
    pub header_len: usize,
    pub payload_len: usize,
}

/// The header of the frame at the start of `bytes`, or `None` when more bytes are needed.
/// Server frames must not be masked.
pub fn parse_header(bytes: &[u8]) -> io::Result<Option<Header>> {
    if bytes.len() < 2 {
        return Ok(None);
    }
    if bytes[1] & 0x80 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "masked frame from the server",
        ));
    }
    let (header_len, payload_len) = match bytes[1] & 0x7f {
        126 if bytes.len() < 4 => return Ok(None),
        126 => (4, u16::from_be_bytes([bytes[2], bytes[3]]) as usize),
        127 if bytes.len() < 10 => return Ok(None),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&bytes[2..10]);
            (10, u64::from_be_bytes(n) as usize)
        }
        n => (2, n as usize),
    };
    if payload_len > 64 << 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    Ok(Some(Header {
        fin: bytes[0] & 0x80 != 0,
        opcode: bytes[0] & 0x0f,
        header_len,
        payload_len,
    }))
}

/// A client frame (masked, as the protocol requires of clients).
pub fn encode(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Reads an HTTP response head: the bytes read (the head and whatever followed it) and where
/// the head ends.
pub async fn read_head(stream: &mut TcpStream) -> anyhow::Result<(Vec<u8>, usize)> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok((buf, at + 4));
        }
        if buf.len() > 16 * 1024 {
            anyhow::bail!("the response head has no end");
        }
        if stream.read_buf(&mut buf).await? == 0 {
            anyhow::bail!("the server closed before its response head ended");
        }
    }
}

impl RawWs {
    /// Opens `ws://{authority}{path}` offering `protocol`; fails unless the server switches
    /// protocols and announces it.
    pub async fn connect(authority: &str, path: &str, protocol: &str) -> anyhow::Result<RawWs> {
        let mut stream = TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        let mask: [u8; 4] = rand::random();
        // A fixed key and no check of the server's accept hash: they only protect against
        // proxies replaying a cached upgrade, and there is none on loopback.
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let (buf, end) = read_head(&mut stream).await?;
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 101") {
            anyhow::bail!(
                "the upgrade was refused: {}",
                head.lines().next().unwrap_or("")
            );
        }
        let announced = head
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-protocol:"))
            .map(str::trim);
        if announced != Some(protocol) {
            anyhow::bail!("the server announced the subprotocol {announced:?}, not {protocol}");
        }
        Ok(RawWs {
            stream,
            buf,
            start: end,
            fragments: Vec::new(),
            mask,
        })
    }

    pub async fn send_text(&mut self, text: &str) -> io::Result<()> {
        let frame = encode(0x1, text.as_bytes(), self.mask);
        self.stream.write_all(&frame).await
    }

    /// The next message, skipping (and answering) WebSocket pings.
    pub async fn recv(&mut self) -> Incoming {
        match self.next().await {
            Ok(m) => m,
            Err(e) => Incoming::Closed(e.to_string()),
        }
    }

    async fn next(&mut self) -> io::Result<Incoming> {
        loop {
            let Some(h) = parse_header(&self.buf[self.start..])? else {
                self.fill().await?;
                continue;
            };
            let total = h.header_len + h.payload_len;
            if self.buf.len() - self.start < total {
                self.fill().await?;
                continue;
            }
            let at = self.start + h.header_len;
            self.start += total;
            let payload = at..at + h.payload_len;
            match h.opcode {
                0x1 if h.fin => return Ok(text(&self.buf[payload])),
                0x0..=0x2 if !h.fin || !self.fragments.is_empty() => {
                    self.fragments.extend_from_slice(&self.buf[payload]);
                    if h.fin {
                        let whole = std::mem::take(&mut self.fragments);
                        return Ok(text(&whole));
                    }
                }
                0x8 => return Ok(Incoming::Closed(close_reason(&self.buf[payload]))),
                0x9 => {
                    let pong = encode(0xA, &self.buf[payload], self.mask);
                    self.stream.write_all(&pong).await?;
                }
                _ => {}
            }
        }
    }

    /// Reads more bytes, first dropping the parsed ones so the buffer stays small.
    async fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(4096);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF"));
        }
        Ok(())
    }
}

fn text(payload: &[u8]) -> Incoming {
    match crate::ws::version_of(payload) {
        Some(v) => Incoming::Version(v),
        None => Incoming::Other(String::from_utf8_lossy(payload).into_owned()),
    }
}

fn close_reason(payload: &[u8]) -> String {
    if payload.len() < 2 {
        return "close without a code".into();
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    format!("close {code} {}", String::from_utf8_lossy(&payload[2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_each_length_form_are_parsed() {
        assert_eq!(
            parse_header(&[0x81, 118]).unwrap(),
            Some(Header {
                fin: true,
                opcode: 1,
                header_len: 2,
                payload_len: 118
            })
        );
        assert_eq!(
            parse_header(&[0x01, 126, 0x01, 0x00]).unwrap(),
            Some(Header {
                fin: false,
                opcode: 1,
                header_len: 4,
                payload_len: 256
            })
        );
        let mut long = vec![0x82, 127];
        long.extend_from_slice(&70_000u64.to_be_bytes());
        assert_eq!(parse_header(&long).unwrap().unwrap().payload_len, 70_000);
    }

    #[test]
    fn incomplete_headers_ask_for_more_and_masked_server_frames_are_refused() {
        assert_eq!(parse_header(&[0x81]).unwrap(), None);
        assert_eq!(parse_header(&[0x81, 126, 0]).unwrap(), None);
        assert_eq!(parse_header(&[0x81, 127, 0, 0]).unwrap(), None);
        assert!(parse_header(&[0x81, 0x80 | 5]).is_err());
    }

    #[test]
    fn client_frames_are_masked_and_unmask_to_the_payload() {
        let mask = [1, 2, 3, 4];
        let f = encode(0x1, b"hello", mask);
        assert_eq!(f[0], 0x81);
        assert_eq!(f[1], 0x80 | 5);
        assert_eq!(&f[2..6], &mask);
        let unmasked: Vec<u8> = f[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(unmasked, b"hello");
        let big = encode(0x1, &[b'x'; 300], mask);
        assert_eq!(&big[1..4], &[0x80 | 126, 0x01, 0x2c]);
        assert_eq!(big.len(), 4 + 4 + 300);
    }

    #[test]
    fn data_frames_yield_their_version_and_others_their_text() {
        assert_eq!(
            text(br#"{"type":"next","id":"1","payload":{"data":{"matchUpdated":{"version":9}}}}"#),
            Incoming::Version(9)
        );
        assert_eq!(
            text(br#"{"type":"ping"}"#),
            Incoming::Other(r#"{"type":"ping"}"#.into())
        );
        assert_eq!(close_reason(&[0x11, 0x5c, b'b', b'y']), "close 4444 by");
    }
}
