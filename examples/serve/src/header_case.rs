//! The header names of each HTTP/1.1 request as the client wrote them, read off the wire.
//!
//! hyper parses request heads into lower-case `http::HeaderMap`s and keeps the original
//! spelling only in a private extension (`HeaderCaseMap` is `pub(crate)` in hyper 1), while a
//! REST API's Lambda event names headers as the client did (portico's `HeaderCase`). So the
//! connection's bytes pass through `Sniffer` on their way to hyper: it parses each request head
//! again with `httparse` (hyper's own parser), keeps the names in a per-connection queue, and
//! skips bodies by their framing (`Content-Length`, chunked). The service takes the names of
//! each request in order (HTTP/1.1 answers requests in order). Anything it does not follow
//! (HTTP/2, an upgrade, a malformed or oversized head) turns it off for the connection; the
//! core checks that the names describe the request before using them, so a sniffer out of step
//! changes nothing but the case. No maintained crate exposes the spelling (hyper keeps it
//! private), hence this file.

use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use portico::HeaderCase;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest head followed (hyper's default maximum buffer is 400 KB; heads are far
/// smaller in practice).
const MAX_HEAD: usize = 64 * 1024;
/// At most this many headers per request are followed (hyper's default limit is 100).
const MAX_HEADERS: usize = 128;

/// The names of the requests read so far and not yet taken, shared by a connection's reader
/// and its service.
#[derive(Clone, Default)]
pub(crate) struct Heads(Arc<Mutex<VecDeque<HeaderCase>>>);

impl Heads {
    /// The next request's names, if they were read.
    pub(crate) fn take(&self) -> Option<HeaderCase> {
        self.0.lock().ok()?.pop_front()
    }

    fn push(&self, names: HeaderCase) {
        if let Ok(mut queue) = self.0.lock() {
            queue.push_back(names);
        }
    }
}

/// Where the reader is in the byte stream.
#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Reading a request head (bytes kept in `head`).
    Head,
    /// Skipping this many body bytes.
    Body(u64),
    /// A chunk-size line (its bytes kept in `head`).
    ChunkSize,
    /// Skipping this many bytes of chunk data, then its CRLF.
    ChunkData(u64),
    /// Trailer lines after the last chunk, up to an empty line (kept in `head`).
    Trailers,
    /// Not following this connection any more.
    Off,
}

/// A connection's stream that notes each request head's header names as hyper reads it.
pub(crate) struct Sniffer<S> {
    inner: S,
    tracker: Tracker,
}

impl<S> Sniffer<S> {
    /// Follows `inner`'s request heads when `on` (the gateway serves a REST API); otherwise
    /// passes the bytes through untouched (about 1,400 instructions a request saved: an HTTP
    /// API never reads the spelling).
    pub(crate) fn new(inner: S, heads: Heads, on: bool) -> Self {
        Sniffer {
            inner,
            tracker: Tracker {
                state: if on { State::Head } else { State::Off },
                head: Vec::new(),
                heads,
            },
        }
    }
}

/// Where a connection's reader is and what it has kept: the part of [`Sniffer`] that follows
/// the bytes.
struct Tracker {
    state: State,
    head: Vec<u8>,
    heads: Heads,
}

impl Tracker {
    /// Follows `bytes`, the next ones read from the client.
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                State::Off => return,
                State::Head => {
                    let start = self.head.len();
                    self.head.extend_from_slice(bytes);
                    match self.parse_head() {
                        Some(used) => {
                            // What followed the head is the body or the next request.
                            let consumed = used - start;
                            bytes = &bytes[consumed.min(bytes.len())..];
                            self.head.clear();
                        }
                        None => {
                            if self.head.len() > MAX_HEAD {
                                self.off();
                            }
                            return;
                        }
                    }
                }
                State::Body(left) => {
                    let n = left.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.state = if left == n {
                        State::Head
                    } else {
                        State::Body(left - n)
                    };
                }
                State::ChunkData(left) => {
                    let n = left.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.state = if left == n {
                        // The data's CRLF is read as an empty size line.
                        State::ChunkSize
                    } else {
                        State::ChunkData(left - n)
                    };
                }
                State::ChunkSize | State::Trailers => {
                    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                        self.head.extend_from_slice(bytes);
                        if self.head.len() > MAX_HEAD {
                            self.off();
                        }
                        return;
                    };
                    self.head.extend_from_slice(&bytes[..end]);
                    bytes = &bytes[end + 1..];
                    let line = std::mem::take(&mut self.head);
                    self.line(trim_cr(&line));
                }
            }
        }
    }

    /// A chunk-size or trailer line.
    fn line(&mut self, line: &[u8]) {
        if self.state == State::Trailers {
            if line.is_empty() {
                self.state = State::Head;
            }
            return;
        }
        // The CRLF that ends a chunk's data.
        if line.is_empty() {
            return;
        }
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
        self.state = match size {
            Some(0) => State::Trailers,
            Some(n) => State::ChunkData(n),
            None => State::Off,
        };
    }

    /// Parses the head in `self.head`: when complete, notes its names, sets the body's state
    /// and answers how many bytes it took.
    fn parse_head(&mut self) -> Option<usize> {
        // Blank lines before a request line are allowed (RFC 9112, section 2.2).
        let skipped = self
            .head
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        // Left uninitialised for httparse to fill: initialising 128 headers (4 KB) cost more
        // than parsing a small head.
        let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut []);
        let used = match request.parse_with_uninit_headers(&self.head[skipped..], &mut storage) {
            Ok(httparse::Status::Complete(used)) => used + skipped,
            Ok(httparse::Status::Partial) => return None,
            Err(_) => {
                self.off();
                return None;
            }
        };
        let mut names = Vec::with_capacity(request.headers.len());
        let mut length = None;
        let mut chunked = false;
        let mut upgrade = request.method == Some("CONNECT");
        for header in request.headers.iter() {
            names.push(header.name.to_owned());
            if header.name.eq_ignore_ascii_case("content-length") {
                length = std::str::from_utf8(header.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok());
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = header
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"));
            } else if header.name.eq_ignore_ascii_case("upgrade") {
                upgrade = true;
            }
        }
        self.heads.push(HeaderCase::new(names));
        self.state = if upgrade {
            State::Off
        } else if chunked {
            State::ChunkSize
        } else {
            match length {
                Some(0) | None => State::Head,
                Some(n) => State::Body(n),
            }
        };
        Some(used)
    }

    fn off(&mut self) {
        self.state = State::Off;
        self.head = Vec::new();
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniffer<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            if this.tracker.state != State::Off {
                // The tracker is a field apart from the stream, so the new bytes are followed
                // where they were read, without a copy.
                this.tracker.feed(&buf.filled()[before..]);
            }
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniffer<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(heads: &Heads) -> Vec<Vec<String>> {
        std::iter::from_fn(|| heads.take())
            .map(|h| h.names().to_vec())
            .collect()
    }

    fn sniff(chunks: &[&[u8]]) -> (Vec<Vec<String>>, State) {
        let heads = Heads::default();
        let mut sniffer = Sniffer::new((), heads.clone(), true);
        for chunk in chunks {
            sniffer.tracker.feed(chunk);
        }
        (names(&heads), sniffer.tracker.state)
    }

    #[test]
    fn follows_pipelined_requests_with_bodies_in_any_split() {
        let wire: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-One: 1\r\n\r\nhelloGET /b HTTP/1.1\r\nHOST: x\r\nx-Two: 2\r\n\r\nPOST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nTrailer-A: t\r\n\r\nGET /d HTTP/1.1\r\nUser-Agent: u\r\n\r\n";
        let expected = vec![
            vec!["Host", "Content-Length", "X-One"],
            vec!["HOST", "x-Two"],
            vec!["Host", "Transfer-Encoding"],
            vec!["User-Agent"],
        ];
        for split in 1..wire.len() {
            let (got, state) = sniff(&[&wire[..split], &wire[split..]]);
            assert_eq!(got, expected, "split at {split}");
            assert_eq!(state, State::Head, "split at {split}");
        }
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(sniff(&bytes).0, expected);
    }

    #[test]
    fn a_sniffer_made_off_notes_nothing() {
        let heads = Heads::default();
        let mut sniffer = Sniffer::new((), heads.clone(), false);
        sniffer.tracker.feed(b"GET /a HTTP/1.1\r\nX-One: 1\r\n\r\n");
        assert!(names(&heads).is_empty());
        assert_eq!(sniffer.tracker.state, State::Off);
    }

    #[test]
    fn stops_following_what_it_cannot() {
        // HTTP/2's preface, an upgrade, garbage: off, after noting what it could.
        let (got, state) = sniff(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]);
        assert!(got.is_empty());
        assert_eq!(state, State::Off);
        let (got, state) = sniff(&[b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"]);
        assert_eq!(got, vec![vec!["Upgrade".to_owned()]]);
        assert_eq!(state, State::Off);
        let (_, state) = sniff(&[b"\x16\x03\x01 not http"]);
        assert_eq!(state, State::Off);
        let (_, state) = sniff(&[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]);
        assert_eq!(state, State::Off);
    }
}
