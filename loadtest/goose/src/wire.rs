//! A lean HTTP/1.1 client for the flash-sale driver's visitors.
//!
//! The driver runs on the two cores it measures, so every microsecond it
//! spends per request is taken from the server. Under reqwest a request was
//! about 45 µs of the driver's CPU, two thirds of it in user space (the
//! request builder's header map and URL, hyper's connection task and the
//! channel to it, the pool's bookkeeping, zeroed buffers): as much as the
//! server spent answering. This client does what a browser's connection
//! does and nothing else: a keep-alive connection taken from an idle stack,
//! the request written in one `write`, the answer read on the caller's own
//! task and handed to the caller as a slice (no copy of the body).
//!
//! Scope: `http://` on loopback, answers with `Content-Length` or chunked
//! bodies, no pipelining, no redirects, no compression. A connection that
//! the server closed while idle (actix closes them after 5 s of keep-alive)
//! is noticed on its first read and the request is sent once more on a new
//! connection, as browsers and hyper do for an idle connection that failed
//! before any byte of the answer.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Idle connections older than this are not reused: the server's keep-alive
/// (actix's default is 5 s) may have closed them.
const IDLE_REUSE: Duration = Duration::from_secs(4);

/// Keep-alive connections to one server.
pub struct Wire {
    addr: SocketAddr,
    /// `Host` header value.
    host: String,
    idle: Mutex<Vec<Conn>>,
    max_idle: usize,
    timeout: Duration,
}

struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet consumed (the answer being parsed).
    buf: Vec<u8>,
    idle_since: Instant,
}

/// One request: method, path (with query), extra header lines (name,
/// value) and body. `Content-Length` is added when there is a body.
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'static str,
    /// Path and query, starting with `/`.
    pub path: &'a str,
    /// Extra headers.
    pub headers: &'a [(&'a str, &'a str)],
    /// Body bytes (empty for none).
    pub body: &'a [u8],
}

/// Why an exchange failed, and whether sending again is safe.
enum Failure {
    /// Nothing of the answer arrived on a reused connection: the server
    /// closed it while idle, so it never saw the request.
    Stale,
    /// Anything else (refused, reset mid-answer, malformed, timed out).
    Broken,
}

impl Wire {
    /// A client for `base` (`http://host:port`, loopback only; the caller
    /// checks that), keeping at most `max_idle` idle connections.
    pub fn new(base: &str, max_idle: usize, timeout: Duration) -> Result<Wire> {
        let authority = base
            .strip_prefix("http://")
            .context("the lean client speaks plain http:// only")?
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit())) {
            authority.clone()
        } else {
            format!("{authority}:80")
        };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&with_port)
            .with_context(|| format!("resolve {with_port}"))?
            .next()
            .with_context(|| format!("{with_port} has no address"))?;
        Ok(Wire { addr, host: authority, idle: Mutex::new(Vec::new()), max_idle, timeout })
    }

    /// Sends `req` and hands the answer's status and body to `read`; a
    /// transport error or timeout is status 0 with an empty body.
    pub async fn send<T>(&self, req: &Request<'_>, read: impl FnOnce(u16, &[u8]) -> T) -> T {
        let bytes = self.encode(req);
        let deadline = tokio::time::Instant::now() + self.timeout;
        // A stale idle connection is retried on the next one (or a new one);
        // a request is never sent twice on connections that answered.
        for _ in 0..3 {
            let (mut conn, reused) = match self.take() {
                Some(conn) => (conn, true),
                None => match tokio::time::timeout_at(deadline, TcpStream::connect(self.addr)).await {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
                        (Conn { stream, buf: Vec::with_capacity(2048), idle_since: Instant::now() }, false)
                    }
                    _ => return read(0, &[]),
                },
            };
            match tokio::time::timeout_at(deadline, conn.exchange(&bytes)).await {
                Ok(Ok((status, body, keep))) => {
                    let out = read(status, &conn.buf[body]);
                    if keep {
                        conn.buf.clear();
                        self.put(conn);
                    }
                    return out;
                }
                Ok(Err(Failure::Stale)) if reused => continue,
                _ => return read(0, &[]),
            }
        }
        read(0, &[])
    }

    fn encode(&self, req: &Request<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + req.path.len() + req.body.len() + req.headers.len() * 300);
        for part in [req.method, " ", req.path, " HTTP/1.1\r\nhost: ", &self.host, "\r\n"] {
            out.extend_from_slice(part.as_bytes());
        }
        for (name, value) in req.headers {
            for part in [*name, ": ", *value, "\r\n"] {
                out.extend_from_slice(part.as_bytes());
            }
        }
        if !req.body.is_empty() || req.method == "POST" {
            out.extend_from_slice(format!("content-length: {}\r\n", req.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(req.body);
        out
    }

    /// The most recently used idle connection, if it is young enough.
    fn take(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let conn = idle.pop()?;
        if conn.idle_since.elapsed() < IDLE_REUSE {
            return Some(conn);
        }
        // The rest are older still (the stack is in order of use).
        idle.clear();
        None
    }

    fn put(&self, mut conn: Conn) {
        conn.idle_since = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }
}

impl Conn {
    /// Writes the request and reads one answer into `buf`: its status, the
    /// body's range in `buf` and whether the connection may be reused.
    async fn exchange(&mut self, request: &[u8]) -> Result<(u16, std::ops::Range<usize>, bool), Failure> {
        if self.stream.write_all(request).await.is_err() {
            return Err(Failure::Stale);
        }
        // The head.
        let (status, head_len, length, chunked, keep) = loop {
            if self.fill().await? == 0 {
                return Err(if self.buf.is_empty() { Failure::Stale } else { Failure::Broken });
            }
            let mut headers = [httparse::EMPTY_HEADER; 24];
            let mut res = httparse::Response::new(&mut headers);
            match res.parse(&self.buf) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let status = res.code.unwrap_or(0);
                    let (mut length, mut chunked, mut keep) = (None, false, true);
                    for h in res.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            length = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = h.value.eq_ignore_ascii_case(b"chunked");
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            keep = !h.value.eq_ignore_ascii_case(b"close");
                        }
                    }
                    break (status, head_len, length, chunked, keep);
                }
                Ok(httparse::Status::Partial) => continue,
                Err(_) => return Err(Failure::Broken),
            }
        };
        if chunked {
            let body = self.dechunk(head_len).await?;
            return Ok((status, body, keep));
        }
        let Some(length) = length else {
            // No length and not chunked: the body runs to the close.
            while self.fill().await? > 0 {}
            return Ok((status, head_len..self.buf.len(), false));
        };
        while self.buf.len() < head_len + length {
            if self.fill().await? == 0 {
                return Err(Failure::Broken);
            }
        }
        Ok((status, head_len..head_len + length, keep))
    }

    /// Reads more bytes into `buf`; 0 at the end of the stream.
    async fn fill(&mut self) -> Result<usize, Failure> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4096);
        }
        match self.stream.read_buf(&mut self.buf).await {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && self.buf.is_empty() => Err(Failure::Stale),
            Err(_) => Err(Failure::Broken),
        }
    }

    /// Decodes a chunked body that starts at `start`, in place: the data of
    /// the chunks is moved together behind the head; returns its range.
    async fn dechunk(&mut self, start: usize) -> Result<std::ops::Range<usize>, Failure> {
        let mut out = start; // end of the decoded data
        let mut at = start; // next chunk-size line
        loop {
            let line_end = loop {
                if let Some(i) = self.buf[at..].windows(2).position(|w| w == b"\r\n") {
                    break at + i;
                }
                if self.fill().await? == 0 {
                    return Err(Failure::Broken);
                }
            };
            let size_text = std::str::from_utf8(&self.buf[at..line_end]).map_err(|_| Failure::Broken)?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| Failure::Broken)?;
            let data = line_end + 2;
            // The data, its CRLF; after the last chunk, the (empty) trailer's CRLF.
            while self.buf.len() < data + size + 2 {
                if self.fill().await? == 0 {
                    return Err(Failure::Broken);
                }
            }
            if size == 0 {
                return Ok(start..out);
            }
            self.buf.copy_within(data..data + size, out);
            out += size;
            at = data + size + 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::net::TcpListener;

    /// Reads one request (head and `content-length` body) from `stream`;
    /// false at the end of the stream.
    async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    buf.drain(..end + 4 + length);
                    return true;
                }
            }
            let mut chunk = [0u8; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// A server that answers each connection's first request with a sized
    /// body and its second with a chunked one, then closes the connection
    /// as a keep-alive timeout would; returns its base URL and the number
    /// of connections it accepted.
    async fn server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    if !read_request(&mut stream, &mut buf).await {
                        return;
                    }
                    let sized = "HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nhello";
                    let _ = stream.write_all(sized.as_bytes()).await;
                    if !read_request(&mut stream, &mut buf).await {
                        return;
                    }
                    let chunked =
                        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\n\r\n";
                    let _ = stream.write_all(chunked.as_bytes()).await;
                });
            }
        });
        (base, accepted)
    }

    #[tokio::test]
    async fn sized_and_chunked_answers_on_one_connection_then_a_new_one_after_the_server_closed_it() {
        let (base, accepted) = server().await;
        let wire = Wire::new(&base, 8, Duration::from_secs(5)).expect("client");
        let headers = [("authorization", "Bearer x")];
        let req = Request { method: "POST", path: "/api/v1/sales/s/queue", headers: &headers, body: b"{}" };
        let got = |status: u16, body: &[u8]| (status, String::from_utf8_lossy(body).into_owned());
        assert_eq!(wire.send(&req, got).await, (201, "hello".to_owned()));
        assert_eq!(wire.send(&req, got).await, (200, "hello".to_owned()));
        // The server closed that connection after its second answer: the
        // third request meets a stale connection and is sent on a new one.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(wire.send(&req, got).await, (201, "hello".to_owned()));
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_status_zero() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        drop(listener);
        let wire = Wire::new(&base, 8, Duration::from_secs(5)).expect("client");
        let req = Request { method: "GET", path: "/", headers: &[], body: b"" };
        assert_eq!(wire.send(&req, |status, body| (status, body.len())).await, (0, 0));
    }
}
