//! A minimal graphql-sse subscriber (distinct connections mode) for `loadgen ws --protocol sse`:
//! one `POST /graphql` with `Accept: text/event-stream` on its own connection, the chunked body
//! de-chunked and split into events in place, the version read from each `next` event's data
//! without parsing the JSON, as the WebSocket subscribers do.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::rawws::Incoming;

pub struct RawSse {
    stream: TcpStream,
    /// Raw bytes read and not yet de-chunked.
    raw: Vec<u8>,
    /// The de-chunked body not yet split into events.
    body: Vec<u8>,
    /// Bytes left in the current chunk, when the body is chunked.
    chunk_left: usize,
    chunked: bool,
}

impl RawSse {
    /// Opens the stream: sends the subscription and reads the response head.
    pub async fn connect(authority: &str, body: &str) -> anyhow::Result<RawSse> {
        let mut stream = TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "POST /graphql HTTP/1.1\r\nHost: {authority}\r\nAccept: text/event-stream\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let (mut raw, end) = crate::rawws::read_head(&mut stream).await?;
        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 200") {
            anyhow::bail!(
                "the stream was refused: {}",
                head.lines().next().unwrap_or("")
            );
        }
        if !head.contains("content-type: text/event-stream") {
            anyhow::bail!("the answer is not an event stream: {head}");
        }
        let chunked = head.contains("transfer-encoding: chunked");
        raw.drain(..end);
        Ok(RawSse {
            stream,
            raw,
            body: Vec::new(),
            chunk_left: 0,
            chunked,
        })
    }

    /// The next event: a `next` event's version, another event's text, or the end.
    pub async fn recv(&mut self) -> Incoming {
        match self.next().await {
            Ok(m) => m,
            Err(e) => Incoming::Closed(e.to_string()),
        }
    }

    async fn next(&mut self) -> io::Result<Incoming> {
        loop {
            if let Some(event) = self.take_event() {
                if let Some(incoming) = parse_event(&event) {
                    return Ok(incoming);
                }
                continue;
            }
            self.fill().await?;
        }
    }

    /// One whole event (up to its blank line) from the de-chunked body, if there is one.
    fn take_event(&mut self) -> Option<Vec<u8>> {
        let at = self.body.windows(2).position(|w| w == b"\n\n")?;
        let event = self.body[..at].to_vec();
        self.body.drain(..at + 2);
        Some(event)
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.stream.read_buf(&mut self.raw).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF"));
        }
        if !self.chunked {
            self.body.append(&mut self.raw);
            return Ok(());
        }
        dechunk(&mut self.raw, &mut self.body, &mut self.chunk_left)
    }
}

/// Moves whole or partial chunk data from `raw` to `body`, leaving an unfinished size line in
/// `raw`. `left` carries the bytes still owed by the current chunk across calls.
fn dechunk(raw: &mut Vec<u8>, body: &mut Vec<u8>, left: &mut usize) -> io::Result<()> {
    let mut at = 0;
    loop {
        if *left > 0 {
            let take = (*left).min(raw.len() - at);
            body.extend_from_slice(&raw[at..at + take]);
            at += take;
            *left -= take;
            if *left > 0 {
                break;
            }
            // The chunk's closing CRLF is consumed with the next size line.
        }
        let rest = &raw[at..];
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let line = std::str::from_utf8(&rest[..line_end]).unwrap_or("");
        if line.is_empty() {
            // The CRLF after a chunk's data.
            at += 2;
            continue;
        }
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended"));
        }
        at += line_end + 2;
        *left = size;
    }
    raw.drain(..at);
    Ok(())
}

/// A `next` event's version; `complete` as the end; other events (and comments, the
/// heartbeats) as `None` to skip.
fn parse_event(event: &[u8]) -> Option<Incoming> {
    let text = std::str::from_utf8(event).ok()?;
    let mut kind = "";
    let mut data = "";
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            kind = v.trim();
        } else if let Some(v) = line.strip_prefix("data:") {
            data = v.trim_start();
        }
    }
    match kind {
        "next" => Some(match crate::ws::version_of(data.as_bytes()) {
            Some(v) => Incoming::Version(v),
            None => Incoming::Other(data.to_string()),
        }),
        "complete" => Some(Incoming::Closed("complete".into())),
        "" => None,
        other => Some(Incoming::Other(format!("event {other}: {data}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_anywhere_join_into_the_body() {
        let wire = b"1a\r\nevent: next\ndata: {\"a\":1}\n\r\n4\r\n\n:\n\n\r\n";
        for split in 1..wire.len() {
            let (mut raw, mut body, mut left) = (Vec::new(), Vec::new(), 0);
            raw.extend_from_slice(&wire[..split]);
            dechunk(&mut raw, &mut body, &mut left).unwrap();
            raw.extend_from_slice(&wire[split..]);
            dechunk(&mut raw, &mut body, &mut left).unwrap();
            assert_eq!(
                body,
                b"event: next\ndata: {\"a\":1}\n\n:\n\n".to_vec(),
                "split at {split}"
            );
        }
    }

    #[test]
    fn next_events_carry_their_version_and_comments_are_skipped() {
        assert_eq!(
            parse_event(b"event: next\nid: 7\ndata: {\"data\":{\"m\":{\"version\":7}}}"),
            Some(Incoming::Version(7))
        );
        assert_eq!(parse_event(b":"), None);
        assert_eq!(
            parse_event(b"event: complete\ndata:"),
            Some(Incoming::Closed("complete".into()))
        );
    }
}
