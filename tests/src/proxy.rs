//! Fault-injecting HTTP proxies in front of moto.
//!
//! - [`start_fault_proxy`]: answers some AWS Batch requests with HTTP 429 (TooManyRequestsException)
//!   and can drop the response of the first SubmitJob after moto has processed it, as a timed-out
//!   connection would.
//! - [`start_s3_fault_proxy`]: answers some S3 requests with 500 InternalError or 503 SlowDown
//!   and cuts some GetObject responses mid-body, as a reset connection would.

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

/// Sends one request to the upstream server and reads its whole response (it closes the
/// connection after answering).
fn forward(upstream: &str, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(request)?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    Ok(response)
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
    let response = forward(upstream, &request)?;
    if path.starts_with("/v1/submitjob") {
        stats.submits_forwarded.fetch_add(1, Ordering::SeqCst);
        if !dropped_once.swap(true, Ordering::SeqCst) {
            stats.dropped.fetch_add(1, Ordering::SeqCst);
            return conn.shutdown(std::net::Shutdown::Both); // moto made the job; the caller never hears
        }
    }
    conn.write_all(&response)
}

/// What the S3 fault proxy does.
#[derive(Debug, Clone, Copy, Default)]
pub struct S3Faults {
    /// Percent of S3 requests answered 500 InternalError or 503 SlowDown (alternately).
    pub error_percent: u64,
    /// Percent of GetObject responses cut at half their body.
    pub cut_percent: u64,
    /// Percent of ListObjectsV2 responses cut at half their body.
    pub cut_listings_percent: u64,
    /// ListObjectsV2 requests lose their `start-after` (a server that ignores it, as S3
    /// directory buckets do).
    pub drop_start_after: bool,
    /// Inject only into GETs of input objects (keys outside `_batchfan/`), so planning and
    /// manifests go through and the children meet the faults.
    pub data_gets_only: bool,
    /// Seed of the proxy's random choices.
    pub seed: u64,
    /// GETs whose path contains this are always answered 503 SlowDown (a deterministic fault,
    /// e.g. `manifest.jsonl` for a manifest that cannot be read back).
    pub fail_gets_of: Option<&'static str>,
}

/// Counters of what the S3 fault proxy did.
#[derive(Debug, Default)]
pub struct S3Stats {
    /// Requests seen.
    pub requests: AtomicU64,
    /// Requests answered 500 or 503.
    pub errors: AtomicU64,
    /// Responses cut mid-body.
    pub cuts: AtomicU64,
}

/// A running S3 fault proxy.
pub struct S3FaultProxy {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// What it did.
    pub stats: Arc<S3Stats>,
}

/// Starts an S3 fault proxy to `upstream` (`http://127.0.0.1:PORT`), injecting `faults`.
pub fn start_s3_fault_proxy(upstream: &str, faults: S3Faults) -> S3FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = upstream.trim_start_matches("http://").to_string();
    let stats = Arc::new(S3Stats::default());
    let rng = Arc::new(std::sync::Mutex::new(crate::Rng::new(faults.seed.max(1))));
    let shared = stats.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (upstream, stats, rng) = (upstream.clone(), shared.clone(), rng.clone());
            std::thread::spawn(move || {
                let _ = handle_s3(conn, &upstream, &stats, &rng, faults);
            });
        }
    });
    S3FaultProxy { endpoint, stats }
}

fn handle_s3(
    mut conn: TcpStream,
    upstream: &str,
    stats: &S3Stats,
    rng: &std::sync::Mutex<crate::Rng>,
    faults: S3Faults,
) -> std::io::Result<()> {
    let (path, request) = read_request(&mut conn)?;
    let n = stats.requests.fetch_add(1, Ordering::SeqCst);
    // Path-style requests: GetObject is `GET /bucket/key`, a listing `GET /bucket?list-type=2`.
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let object_get = request.starts_with(b"GET ")
        && !query.contains("list-type")
        && !query.contains("uploads")
        && path.split('?').next().unwrap_or("").matches('/').count() >= 2;
    let data = !path.contains("/_batchfan/");
    let eligible = !faults.data_gets_only || (object_get && data);
    let cuttable = object_get && (!faults.data_gets_only || data);
    let (error_roll, cut_roll) = {
        let mut rng = rng.lock().unwrap_or_else(|p| p.into_inner());
        (rng.below(100), rng.below(100))
    };
    let targeted = request.starts_with(b"GET ") && faults.fail_gets_of.is_some_and(|p| path.contains(p));
    if targeted || (eligible && error_roll < faults.error_percent) {
        stats.errors.fetch_add(1, Ordering::SeqCst);
        let (status, code) = if n.is_multiple_of(2) {
            ("503 Slow Down", "SlowDown")
        } else {
            ("500 Internal Server Error", "InternalError")
        };
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message><RequestId>fault{n}</RequestId></Error>"
        );
        // HEAD responses carry no body.
        let body = if request.starts_with(b"HEAD ") { String::new() } else { body };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return conn.write_all(response.as_bytes());
    }
    let request = if faults.drop_start_after && query.contains("list-type") {
        drop_query_param(&request, "start-after")
    } else {
        request
    };
    let response = forward(upstream, &request)?;
    let header_end = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    let body_len = response.len() - header_end;
    let ok = response.starts_with(b"HTTP/1.1 20") || response.starts_with(b"HTTP/1.0 20");
    let listing = request.starts_with(b"GET ") && query.contains("list-type");
    let cut = (cuttable && cut_roll < faults.cut_percent) || (listing && cut_roll < faults.cut_listings_percent);
    if cut && ok && body_len >= 2 {
        stats.cuts.fetch_add(1, Ordering::SeqCst);
        conn.write_all(&response[..header_end + body_len / 2])?;
        conn.flush()?;
        return conn.shutdown(std::net::Shutdown::Both);
    }
    conn.write_all(&response)
}

/// A server answering every request `200 OK` with `body` (XML, or JSON): an S3-compatible
/// server with a fault of its own, or a container's metadata endpoint. HTTP/1.0 requests get
/// the connection closed after the answer. Returns its endpoint, `http://127.0.0.1:PORT`.
pub fn start_fixed_answer(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind fixed-answer server");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                while let Ok((_, request)) = read_request(&mut conn) {
                    let type_ = if body.starts_with('{') { "application/json" } else { "application/xml" };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {type_}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let one_shot =
                        request.split(|&b| b == b'\r').next().is_some_and(|line| line.ends_with(b"HTTP/1.0"));
                    if conn.write_all(response.as_bytes()).is_err() || one_shot {
                        break;
                    }
                }
            });
        }
    });
    endpoint
}

/// `request` with the query parameter `name` taken out of its request line.
fn drop_query_param(request: &[u8], name: &str) -> Vec<u8> {
    let line_end = request.windows(2).position(|w| w == b"\r\n").unwrap_or(request.len());
    let line = String::from_utf8_lossy(&request[..line_end]).into_owned();
    let mut parts = line.splitn(3, ' ');
    let (method, target, version) =
        (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let target = match target.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query.split('&').filter(|p| p.split('=').next() != Some(name)).collect();
            format!("{path}?{}", kept.join("&"))
        }
        None => target.to_string(),
    };
    let mut out = format!("{method} {target} {version}").into_bytes();
    out.extend_from_slice(&request[line_end..]);
    out
}
