//! A minimal WebSocket client (RFC 6455) over a tokio `TcpStream`, for the
//! load generator's hot paths.
//!
//! A general client (tungstenite) costs several microseconds per frame:
//! an allocation per message, and waker bookkeeping on every poll. On a
//! 2-core machine that is CPU taken from the server under test. This one
//! reads whatever the socket has into one buffer with a single `read`,
//! and hands out every complete text frame in it as a borrowed slice: one
//! syscall per wake-up however many frames the server coalesced, no
//! allocation per frame. Frames it sends are masked as the RFC requires.
//! It answers pings, ignores pongs, and reports close frames as the end.
//!
//! The server never fragments its messages, so continuation frames are
//! not reassembled; a fragmented message is an error.

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::error::{LoadError, Result};

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Any 16 bytes, base64: the server only checks the key's form.
const HANDSHAKE_KEY: &str = "c3luYy1sb2FkZ2VuLWtleQ==";
const MASK: [u8; 4] = [0x5a, 0x1c, 0x93, 0xe7];

/// What one read delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// This many text frames.
    Frames(usize),
    /// The server closed the connection (close frame or end of stream).
    Closed,
}

/// A client WebSocket.
#[derive(Debug)]
pub struct RawSocket {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// Unparsed bytes are `buffer[start..end]`.
    start: usize,
    end: usize,
    closed: bool,
    out: Vec<u8>,
}

impl RawSocket {
    /// Connects to `url` (`ws://host:port/path`) and upgrades, with Nagle's
    /// algorithm off and a receive buffer of `buffer` bytes (it grows for
    /// a frame that does not fit); from the address `source` when given
    /// (one source address has about 28,000 ports towards one server).
    pub async fn connect(url: &str, buffer: usize, source: Option<IpAddr>) -> Result<RawSocket> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| LoadError::Invalid(format!("{url}: only ws:// URLs")))?;
        let (authority, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
        let stream = match source {
            None => TcpStream::connect(authority).await?,
            Some(source) => {
                let target = tokio::net::lookup_host(authority)
                    .await?
                    .find(|target| target.is_ipv4() == source.is_ipv4())
                    .ok_or_else(|| {
                        LoadError::Invalid(format!(
                            "{authority}: no address to reach from {source}"
                        ))
                    })?;
                let socket = if source.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                socket.bind(SocketAddr::new(source, 0))?;
                socket.connect(target).await?
            }
        };
        stream.set_nodelay(true)?;
        let mut socket = RawSocket {
            stream,
            buffer: vec![0; buffer.max(1024)],
            start: 0,
            end: 0,
            closed: false,
            out: Vec::with_capacity(256),
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {HANDSHAKE_KEY}\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        socket.stream.write_all(request.as_bytes()).await?;
        loop {
            if let Some(at) = find(&socket.buffer[..socket.end], b"\r\n\r\n") {
                let head = &socket.buffer[..at];
                if !head.starts_with(b"HTTP/1.1 101") {
                    let text = String::from_utf8_lossy(&socket.buffer[..socket.end]);
                    return Err(LoadError::Protocol(format!("upgrade refused: {text}")));
                }
                socket.start = at + 4;
                return Ok(socket);
            }
            if socket.fill().await? == 0 {
                return Err(LoadError::Protocol(
                    "the server closed the socket during the upgrade".into(),
                ));
            }
        }
    }

    /// Sends one text frame.
    pub async fn send_text(&mut self, text: &[u8]) -> Result<()> {
        self.out.clear();
        frame_into(&mut self.out, OP_TEXT, text);
        self.stream.write_all(&self.out).await?;
        Ok(())
    }

    /// Reads once (waiting until the socket has bytes) and calls `each`
    /// with every complete text frame now in the buffer.
    pub async fn read_batch(&mut self, mut each: impl FnMut(&[u8])) -> Result<Read> {
        if self.closed {
            return Ok(Read::Closed);
        }
        let mut count = 0;
        // Frames already buffered (after the handshake) come first.
        if (self.start == self.end || self.next_frame_len()?.is_none()) && self.fill().await? == 0 {
            self.closed = true;
            return Ok(Read::Closed);
        }
        while let Some(frame) = self.next_frame()? {
            match frame {
                Frame::Text(range) => {
                    each(&self.buffer[range]);
                    count += 1;
                }
                Frame::Ping(range) => {
                    let payload = self.buffer[range].to_vec();
                    self.out.clear();
                    frame_into(&mut self.out, OP_PONG, &payload);
                    self.stream.write_all(&self.out).await?;
                }
                Frame::Other => {}
                Frame::Close => {
                    self.closed = true;
                    return Ok(if count > 0 {
                        Read::Frames(count)
                    } else {
                        Read::Closed
                    });
                }
            }
        }
        Ok(Read::Frames(count))
    }

    /// The next text frame, copied (for the few frames of a set-up).
    pub async fn next_text(&mut self) -> Result<Vec<u8>> {
        loop {
            if let Some(frame) = self.next_frame()? {
                match frame {
                    Frame::Text(range) => return Ok(self.buffer[range].to_vec()),
                    Frame::Close => {
                        self.closed = true;
                        return Err(LoadError::Protocol("the server closed the socket".into()));
                    }
                    Frame::Ping(_) | Frame::Other => continue,
                }
            }
            if self.closed || self.fill().await? == 0 {
                self.closed = true;
                return Err(LoadError::Protocol("the server closed the socket".into()));
            }
        }
    }

    /// Sends a close frame (best effort) and drops the connection.
    pub async fn close(mut self) {
        self.out.clear();
        frame_into(&mut self.out, OP_CLOSE, &1000u16.to_be_bytes());
        let _ = self.stream.write_all(&self.out).await;
        let _ = self.stream.shutdown().await;
    }

    /// Reads what the socket has after the unparsed bytes; 0 at its end.
    async fn fill(&mut self) -> Result<usize> {
        if self.start > 0 && (self.start == self.end || self.end == self.buffer.len()) {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buffer.len() {
            let grown = self.buffer.len() * 2;
            self.buffer.resize(grown, 0);
        }
        let read = self.stream.read(&mut self.buffer[self.end..]).await?;
        self.end += read;
        Ok(read)
    }

    /// The length of the complete frame at the front of the buffer, if
    /// there is one: `(header length, payload length)`.
    fn next_frame_len(&self) -> Result<Option<(usize, usize)>> {
        let bytes = &self.buffer[self.start..self.end];
        if bytes.len() < 2 {
            return Ok(None);
        }
        if bytes[1] & 0x80 != 0 {
            return Err(LoadError::Protocol("the server sent a masked frame".into()));
        }
        let (header, payload) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (4, usize::from(u16::from_be_bytes([bytes[2], bytes[3]]))),
            127 if bytes.len() >= 10 => {
                let mut len = [0u8; 8];
                len.copy_from_slice(&bytes[2..10]);
                let len = usize::try_from(u64::from_be_bytes(len))
                    .map_err(|_| LoadError::Protocol("frame too large".into()))?;
                (10, len)
            }
            126 | 127 => return Ok(None),
            len => (2, usize::from(len)),
        };
        Ok((bytes.len() >= header + payload).then_some((header, payload)))
    }

    /// Takes the complete frame at the front of the buffer, if any.
    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let Some((header, payload)) = self.next_frame_len()? else {
            return Ok(None);
        };
        let first = self.buffer[self.start];
        let body = self.start + header..self.start + header + payload;
        self.start = body.end;
        if first & 0x80 == 0 || first & 0x0f == OP_CONTINUATION {
            return Err(LoadError::Protocol(
                "fragmented messages are not supported".into(),
            ));
        }
        Ok(Some(match first & 0x0f {
            OP_TEXT => Frame::Text(body),
            OP_PING => Frame::Ping(body),
            OP_CLOSE => Frame::Close,
            OP_BINARY | OP_PONG => Frame::Other,
            _ => Frame::Other,
        }))
    }
}

enum Frame {
    Text(std::ops::Range<usize>),
    Ping(std::ops::Range<usize>),
    Close,
    Other,
}

/// Appends a masked frame of `payload` to `out`.
fn frame_into(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
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
    out.extend(
        payload
            .iter()
            .enumerate()
            .map(|(index, byte)| byte ^ MASK[index % 4]),
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_masked_with_the_right_length_header() {
        let mut out = Vec::new();
        frame_into(&mut out, OP_TEXT, b"hi");
        assert_eq!(out[..2], [0x81, 0x82]);
        assert_eq!(out[2..6], MASK);
        assert_eq!(out[6] ^ MASK[0], b'h');
        assert_eq!(out[7] ^ MASK[1], b'i');
        let mut long = Vec::new();
        frame_into(&mut long, OP_TEXT, &[b'x'; 300]);
        assert_eq!(long[1], 0x80 | 126);
        assert_eq!(u16::from_be_bytes([long[2], long[3]]), 300);
        assert_eq!(long.len(), 4 + 4 + 300);
    }
}
