//! A fault-injecting HTTP proxy in front of moto: answers some AWS Batch requests with HTTP 429
//! (TooManyRequestsException) and can drop the response of the first SubmitJob after moto has
//! processed it, as a timed-out connection would.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters of what the proxy did.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Batch requests seen.
    pub batch_requests: AtomicU64,
    /// Requests answered 429.
    pub throttled: AtomicU64,
    /// SubmitJob requests forwarded to moto.
    pub submits_forwarded: AtomicU64,
    /// Responses dropped.
    pub dropped: AtomicU64,
}

/// A running proxy.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// What it did.
    pub stats: Arc<ProxyStats>,
}

/// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`). Every `throttle_every`-th Batch request
/// (counting from the first) is answered 429; with `drop_first_submit` the first SubmitJob's
/// response is dropped after moto handled it.
pub fn start_fault_proxy(upstream: &str, throttle_every: u64, drop_first_submit: bool) -> FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = upstream.trim_start_matches("http://").to_string();
    let stats = Arc::new(ProxyStats::default());
    let dropped_once = Arc::new(AtomicBool::new(!drop_first_submit));
    let shared = stats.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (upstream, stats, dropped_once) = (upstream.clone(), shared.clone(), dropped_once.clone());
            std::thread::spawn(move || {
                let _ = handle(conn, &upstream, &stats, &dropped_once, throttle_every);
            });
        }
    });
    FaultProxy { endpoint, stats }
}

fn read_request(conn: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let header_end = loop {
        let n = conn.read(&mut byte)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&byte[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.trim().to_string())
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = conn.read(&mut byte)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    Ok((path, buf))
}

fn handle(
    mut conn: TcpStream,
    upstream: &str,
    stats: &ProxyStats,
    dropped_once: &AtomicBool,
    throttle_every: u64,
) -> std::io::Result<()> {
    let (path, request) = read_request(&mut conn)?;
    let batch = path.starts_with("/v1/");
    if batch {
        let n = stats.batch_requests.fetch_add(1, Ordering::SeqCst);
        if throttle_every > 0 && n.is_multiple_of(throttle_every) {
            stats.throttled.fetch_add(1, Ordering::SeqCst);
            let body = r#"{"__type":"TooManyRequestsException","message":"Too Many Requests"}"#;
            let response = format!(
                "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nx-amzn-ErrorType: TooManyRequestsException\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            return conn.write_all(response.as_bytes());
        }
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&request)?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    if path.starts_with("/v1/submitjob") {
        stats.submits_forwarded.fetch_add(1, Ordering::SeqCst);
        if !dropped_once.swap(true, Ordering::SeqCst) {
            stats.dropped.fetch_add(1, Ordering::SeqCst);
            return conn.shutdown(std::net::Shutdown::Both); // moto made the job; the caller never hears
        }
    }
    conn.write_all(&response)
}
