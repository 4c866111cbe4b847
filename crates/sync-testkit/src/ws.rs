//! A WebSocket client written by hand over a `TcpStream` (RFC 6455): it
//! sends whatever bytes it is given (frames of any shape, fragments, frames
//! pipelined behind the upgrade request) and reads frames without answering
//! any, so it is also the client that stops answering pings.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// WebSocket opcodes (RFC 6455 section 5.2).
pub const OP_CONTINUATION: u8 = 0x0;
/// A text frame.
pub const OP_TEXT: u8 = 0x1;
/// A close frame.
pub const OP_CLOSE: u8 = 0x8;
/// A ping.
pub const OP_PING: u8 = 0x9;

/// A client frame (masked, as RFC 6455 requires of clients).
pub fn ws_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![u8::from(fin) << 7 | opcode];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// `text` as one message in frames of at most `fragment` bytes: a text
/// frame, then continuation frames, the last one final.
pub fn ws_fragments(text: &[u8], fragment: usize) -> Vec<u8> {
    let chunks: Vec<&[u8]> = text.chunks(fragment.max(1)).collect();
    chunks
        .iter()
        .enumerate()
        .flat_map(|(i, chunk)| {
            let opcode = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
            ws_frame(opcode, i + 1 == chunks.len(), chunk)
        })
        .collect()
}

/// What a [`RawWs`] read.
#[derive(Debug, PartialEq, Eq)]
pub enum RawEvent {
    /// A frame: its opcode and payload.
    Frame(u8, Vec<u8>),
    /// The stream ended (or was reset).
    Ended,
    /// Nothing within the wait.
    Silent,
}

/// A WebSocket client written by hand over a `TcpStream`: it sends the
/// bytes it is given (frames of any shape, or frames pipelined behind the
/// upgrade request) and reads frames without answering any, so it is the
/// client that stops answering pings.
pub struct RawWs {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    buffer: Vec<u8>,
}

impl RawWs {
    /// Sends the upgrade request for `target` (path and query) with
    /// `headers`, and right behind it `pipelined`; returns the status of
    /// the answer and the socket.
    pub async fn upgrade(
        addr: SocketAddr,
        target: &str,
        headers: &[(&str, String)],
        pipelined: &[u8],
    ) -> (u16, RawWs) {
        let stream = TcpStream::connect(addr).await.expect("a TCP connection");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let (reader, writer) = stream.into_split();
        let mut raw = RawWs {
            reader,
            writer,
            buffer: Vec::new(),
        };
        let mut request = format!(
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n"
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(pipelined);
        raw.writer
            .write_all(&bytes)
            .await
            .expect("the request is sent");
        let status = loop {
            if let Some(at) = raw.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw.buffer[..at]).into_owned();
                raw.buffer.drain(..at + 4);
                break head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .unwrap_or_else(|| panic!("not an HTTP answer: {head}"));
            }
            assert!(raw.fill().await > 0, "the server closed during the upgrade");
        };
        (status, raw)
    }

    /// Connects to `/ws` without credentials and says `hello` as `device`.
    pub async fn connect(addr: SocketAddr, device: &str) -> RawWs {
        let (status, mut raw) = Self::upgrade(addr, "/ws", &[], &[]).await;
        assert_eq!(status, 101);
        let hello = json!({"type": "hello", "deviceId": device}).to_string();
        raw.send(&ws_frame(OP_TEXT, true, hello.as_bytes()))
            .await
            .expect("hello is sent");
        match raw.next(Duration::from_secs(10)).await {
            RawEvent::Frame(OP_TEXT, text) => {
                let welcome: Value = serde_json::from_slice(&text).expect("JSON");
                assert_eq!(welcome["type"], "welcome", "{welcome}");
            }
            other => panic!("no welcome: {other:?}"),
        }
        raw
    }

    /// Writes `bytes` (whole frames, or anything else).
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await
    }

    /// Writes `bytes` while reading, and returns the first event read
    /// within `wait` (for a server that answers before it has read all).
    pub async fn send_and_read(&mut self, bytes: &[u8], wait: Duration) -> RawEvent {
        let RawWs {
            reader,
            writer,
            buffer,
        } = self;
        let mut reading = RawReader { reader, buffer };
        // A write the server stopped reading fails once it closes.
        let (_, event) = tokio::join!(writer.write_all(bytes), reading.next(wait));
        event
    }

    /// The next frame within `wait` (answering nothing).
    pub async fn next(&mut self, wait: Duration) -> RawEvent {
        RawReader {
            reader: &mut self.reader,
            buffer: &mut self.buffer,
        }
        .next(wait)
        .await
    }

    /// Reads what the socket has; 0 at its end.
    async fn fill(&mut self) -> usize {
        RawReader {
            reader: &mut self.reader,
            buffer: &mut self.buffer,
        }
        .fill()
        .await
    }
}

struct RawReader<'a> {
    reader: &'a mut OwnedReadHalf,
    buffer: &'a mut Vec<u8>,
}

impl RawReader<'_> {
    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        let read = self.reader.read(&mut chunk).await.unwrap_or(0);
        self.buffer.extend_from_slice(&chunk[..read]);
        read
    }

    async fn next(&mut self, wait: Duration) -> RawEvent {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some((opcode, header, len)) = parse_frame_header(self.buffer)
                && self.buffer.len() >= header + len
            {
                let payload = self.buffer[header..header + len].to_vec();
                self.buffer.drain(..header + len);
                return RawEvent::Frame(opcode, payload);
            }
            match tokio::time::timeout_at(deadline, self.fill()).await {
                Err(_) => return RawEvent::Silent,
                Ok(0) => return RawEvent::Ended,
                Ok(_) => {}
            }
        }
    }
}

/// The opcode, header length and payload length of the (unmasked, server)
/// frame at the start of `bytes`, once its header is complete.
fn parse_frame_header(bytes: &[u8]) -> Option<(u8, usize, usize)> {
    let (&first, &second) = (bytes.first()?, bytes.get(1)?);
    let (header, len) = match second & 0x7f {
        126 => (
            4,
            usize::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
        ),
        127 => {
            let len: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
            (10, usize::try_from(u64::from_be_bytes(len)).ok()?)
        }
        len => (2, usize::from(len)),
    };
    Some((first & 0x0f, header, len))
}

/// The close code of a close frame's payload.
pub fn close_code(payload: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]))
}
