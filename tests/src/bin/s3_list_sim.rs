//! A simulated S3 listing for benchmarks (issue 21): ListObjectsV2 (prefix, delimiter,
//! start-after, continuation token, max-keys) and HeadBucket over a generated key space of N
//! keys, every request answered after an injected latency. moto cannot hold ten million objects;
//! this can, in no memory. A load target for benchmarks only: correctness tests run on moto.
//!
//! The same endpoint answers SQS's JSON protocol for an enqueue (`X-Amz-Target:
//! AmazonSQS.GetQueueAttributes` and `AmazonSQS.SendMessageBatch`, each after the latency; any
//! queue URL): messages are counted, not kept.
//!
//! `s3_list_sim --keys N [--shape flat|hive] [--latency-ms MS]` prints its endpoint
//! (`http://127.0.0.1:PORT`) on the first line of stdout, then serves until killed.
//! `GET /_stats` answers the number of list requests served so far; `GET /_sqs_stats` answers
//! `REQUESTS MESSAGES` of SendMessageBatch.
//!
//! Shapes (any bucket name): `flat` is `data/00000000` ... (N keys, one folder), `hive` is
//! `data/date=00000/part-00000.json` ... (1,000 keys a partition).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Clone, Copy)]
enum Shape {
    Flat,
    Hive,
}

struct Space {
    keys: u64,
    shape: Shape,
}

impl Space {
    /// Key `i`; keys sort in index order.
    fn key(&self, i: u64) -> String {
        match self.shape {
            Shape::Flat => format!("data/{i:08}"),
            Shape::Hive => format!("data/date={:05}/part-{:05}.json", i / 1000, i % 1000),
        }
    }

    /// The first index whose key is greater than `after` (or not smaller, with `inclusive`).
    fn first_after(&self, after: &str, inclusive: bool) -> u64 {
        let (mut lo, mut hi) = (0, self.keys);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let key = self.key(mid);
            let before = if inclusive { key.as_str() < after } else { key.as_str() <= after };
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

struct Request {
    prefix: String,
    delimiter: Option<String>,
    after: Option<String>,
    token: Option<String>,
    max_keys: u64,
}

fn list(space: &Space, r: &Request) -> String {
    // The continuation token is the last key (or common prefix) returned.
    let resume = r.token.as_deref().or(r.after.as_deref());
    let mut i = match resume {
        Some(after) => space.first_after(after, false).max(space.first_after(&r.prefix, true)),
        None => space.first_after(&r.prefix, true),
    };
    let (mut contents, mut prefixes, mut count, mut last) = (String::new(), String::new(), 0, None);
    while i < space.keys && count < r.max_keys {
        let key = space.key(i);
        if !key.starts_with(&r.prefix) {
            break;
        }
        let group = r
            .delimiter
            .as_deref()
            .and_then(|d| key[r.prefix.len()..].find(d).map(|at| key[..r.prefix.len() + at + d.len()].to_string()));
        match group {
            Some(group) => {
                prefixes.push_str(&format!("<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>", escape(&group)));
                // Past every key of the group.
                // The token resumes past every key of the group too.
                let past = format!("{group}\u{10FFFF}");
                i = space.first_after(&past, false);
                last = Some(past);
            }
            None => {
                contents.push_str(&format!(
                    "<Contents><Key>{}</Key><LastModified>2026-11-30T00:00:00.000Z</LastModified><ETag>\"{:032x}\"</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                    escape(&key),
                    i,
                    100 + i % 900
                ));
                i += 1;
                last = Some(key);
            }
        }
        count += 1;
    }
    let truncated = i < space.keys && space.key(i).starts_with(&r.prefix);
    let next = match (truncated, last) {
        (true, Some(last)) => format!("<NextContinuationToken>{}</NextContinuationToken>", escape(&last)),
        _ => String::new(),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>sim</Name><Prefix>{}</Prefix><KeyCount>{count}</KeyCount><MaxKeys>{}</MaxKeys><IsTruncated>{truncated}</IsTruncated>{next}{contents}{prefixes}</ListBucketResult>",
        escape(&r.prefix),
        r.max_keys
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Counters of what was served.
#[derive(Default)]
struct Served {
    lists: AtomicU64,
    sqs_requests: AtomicU64,
    messages: AtomicU64,
}

/// An SQS JSON-protocol answer (`AmazonSQS.OPERATION`, body as sent).
fn sqs(operation: &str, body: &[u8], served: &Served) -> (&'static str, String) {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    match operation {
        "GetQueueAttributes" => {
            let name = request["QueueUrl"].as_str().unwrap_or("").rsplit('/').next().unwrap_or("sim").to_string();
            let attributes = serde_json::json!({"Attributes": {
                "QueueArn": format!("arn:aws:sqs:us-east-1:123456789012:{name}"),
                "VisibilityTimeout": "30",
                "ApproximateNumberOfMessages": "0",
                "ApproximateNumberOfMessagesNotVisible": "0",
            }});
            ("200 OK", attributes.to_string())
        }
        "SendMessageBatch" => {
            let entries = request["Entries"].as_array().cloned().unwrap_or_default();
            served.sqs_requests.fetch_add(1, Ordering::Relaxed);
            served.messages.fetch_add(entries.len() as u64, Ordering::Relaxed);
            let n = served.messages.load(Ordering::Relaxed);
            let successful: Vec<serde_json::Value> = entries
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    serde_json::json!({"Id": e["Id"], "MessageId": format!("sim-{n}-{i}"),
                        "MD5OfMessageBody": "00000000000000000000000000000000"})
                })
                .collect();
            ("200 OK", serde_json::json!({"Successful": successful, "Failed": []}).to_string())
        }
        other => (
            "400 Bad Request",
            serde_json::json!({"__type": "com.amazonaws.sqs#UnsupportedOperation",
                "message": format!("s3_list_sim does not serve {other}")})
            .to_string(),
        ),
    }
}

fn serve(stream: TcpStream, space: Arc<Space>, latency: Duration, served: Arc<Served>) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        // Headers: the SQS operation and the body's length (GET and HEAD have no body).
        let (mut length, mut operation) = (0usize, None);
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" || header == "\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("x-amz-target") {
                    operation = value.strip_prefix("AmazonSQS.").map(str::to_string);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let (status, body, content_type) = if path == "/_stats" {
            ("200 OK", served.lists.load(Ordering::Relaxed).to_string(), "text/plain")
        } else if path == "/_sqs_stats" {
            let (r, m) = (served.sqs_requests.load(Ordering::Relaxed), served.messages.load(Ordering::Relaxed));
            ("200 OK", format!("{r} {m}"), "text/plain")
        } else if let Some(operation) = operation {
            std::thread::sleep(latency);
            let (status, body) = sqs(&operation, &body, &served);
            (status, body, "application/x-amz-json-1.0")
        } else if method == "HEAD" {
            ("200 OK", String::new(), "application/xml")
        } else {
            std::thread::sleep(latency);
            served.lists.fetch_add(1, Ordering::Relaxed);
            let mut request =
                Request { prefix: String::new(), delimiter: None, after: None, token: None, max_keys: 1000 };
            for pair in query.split('&') {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                let value = decode(value);
                match name {
                    "prefix" => request.prefix = value,
                    "delimiter" if !value.is_empty() => request.delimiter = Some(value),
                    "start-after" if !value.is_empty() => request.after = Some(value),
                    "continuation-token" if !value.is_empty() => request.token = Some(value),
                    "max-keys" => request.max_keys = value.parse().unwrap_or(1000).clamp(1, 1000),
                    _ => {}
                }
            }
            ("200 OK", list(&space, &request), "application/xml")
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amz-request-id: sim\r\n\r\n",
            body.len()
        );
        let written = writer
            .write_all(head.as_bytes())
            .and_then(|()| if method == "HEAD" { Ok(()) } else { writer.write_all(body.as_bytes()) });
        if written.is_err() {
            return;
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let Some(keys) = value("--keys").and_then(|v| v.parse::<u64>().ok()) else {
        eprintln!("usage: s3_list_sim --keys N [--shape flat|hive] [--latency-ms MS]");
        std::process::exit(2);
    };
    let shape = match value("--shape").as_deref() {
        None | Some("flat") => Shape::Flat,
        Some("hive") => Shape::Hive,
        Some(other) => {
            eprintln!("s3_list_sim: unknown --shape {other} (flat or hive)");
            std::process::exit(2);
        }
    };
    let latency = Duration::from_millis(value("--latency-ms").and_then(|v| v.parse().ok()).unwrap_or(30));
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("s3_list_sim: cannot listen: {e}");
            std::process::exit(1);
        }
    };
    let Ok(addr) = listener.local_addr() else { std::process::exit(1) };
    println!("http://{addr}");
    let _ = std::io::stdout().flush();
    let space = Arc::new(Space { keys, shape });
    let served = Arc::new(Served::default());
    for stream in listener.incoming().flatten() {
        let (space, served) = (space.clone(), served.clone());
        std::thread::spawn(move || serve(stream, space, latency, served));
    }
}
