//! Shared helpers for batchfan's integration tests: a moto server per test binary, the built
//! binaries, a deterministic dataset and a reference word count.

pub mod inventory;
pub mod proxy;
pub mod store_suite;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

/// A moto server started for this test binary; it exits when the test process does.
pub struct Moto {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    _child: Mutex<Child>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The moto server of this test binary (started on first use, on a free port).
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| start_moto(&[]))
}

/// Starts a moto server with extra environment variables for the server process.
pub fn start_moto(env: &[(&str, &str)]) -> Moto {
    let root = workspace_root();
    let python = std::env::var_os("BATCHFAN_MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv-moto/bin/python"));
    assert!(
        python.exists(),
        "moto is not installed at {}: run `bash scripts/test.sh` (it creates the venv)",
        python.display()
    );
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
    let mut child = Command::new(&python)
        .arg(root.join("tests/moto_server.py"))
        .arg(port.to_string())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(match std::env::var_os("BATCHFAN_MOTO_LOG") {
            // Debugging aid: moto's own log, appended to this file.
            Some(path) => {
                std::fs::OpenOptions::new().create(true).append(true).open(path).map_or(Stdio::null(), Stdio::from)
            }
            None => Stdio::null(),
        })
        .spawn()
        .expect("start moto");
    let stdout = child.stdout.take().expect("moto stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("moto ready line");
    assert_eq!(line.trim(), "ready", "moto did not start");
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not listen on {endpoint}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Moto { endpoint, _child: Mutex::new(child) }
}

impl Moto {
    /// The environment a process needs to reach this server through the standard AWS chain.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// An S3 client for this server.
    pub async fn s3(&self) -> Client {
        let creds = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "tests");
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build();
        Client::from_conf(config)
    }

    /// POSTs JSON to moto's own API (`/moto-api/...`), e.g. the state manager.
    pub fn moto_api(&self, path: &str, body: &str) {
        use std::io::{Read, Write};
        let addr = self.endpoint.trim_start_matches("http://");
        let mut conn = std::net::TcpStream::connect(addr).expect("connect to moto");
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(request.as_bytes()).expect("send to moto");
        let mut response = String::new();
        conn.read_to_string(&mut response).expect("moto response");
        assert!(response.starts_with("HTTP/1.1 2") || response.starts_with("HTTP/1.0 2"), "{path}: {response}");
    }

    /// The AWS configuration of a caller that talks to this server: explicit region, endpoint
    /// and static credentials, as a pipeline working in a second account builds its own.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        let creds = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "tests");
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(creds))
            .build()
    }

    /// An SQS client for this server.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config())
    }

    /// Creates a queue (`visibility` seconds; with `dead_letter`, a dead-letter queue named
    /// `NAME-dlq` after that many receives) and returns its URL and its dead-letter queue's.
    pub async fn queue(&self, name: &str, visibility: u32, dead_letter: Option<u32>) -> (String, Option<String>) {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let sqs = self.sqs();
        let fifo = name.ends_with(".fifo");
        let create = |name: String| {
            let mut c = sqs.create_queue().queue_name(name).attributes(A::VisibilityTimeout, visibility.to_string());
            if fifo {
                c = c.attributes(A::FifoQueue, "true");
            }
            c
        };
        let dlq = match dead_letter {
            Some(max) => {
                let dlq_name = if fifo { name.replace(".fifo", "-dlq.fifo") } else { format!("{name}-dlq") };
                let url = create(dlq_name).send().await.expect("create dlq").queue_url().expect("url").to_string();
                let arn = sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(A::QueueArn)
                    .send()
                    .await
                    .expect("dlq arn")
                    .attributes()
                    .and_then(|a| a.get(&A::QueueArn).cloned())
                    .expect("arn");
                Some((url, arn, max))
            }
            None => None,
        };
        let mut request = create(name.to_string());
        if let Some((_, arn, max)) = &dlq {
            let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max}).to_string();
            request = request.attributes(A::RedrivePolicy, policy);
        }
        let url = request.send().await.expect("create queue").queue_url().expect("url").to_string();
        (url, dlq.map(|(u, _, _)| u))
    }

    /// A queue's visible, in-flight and delayed message counts.
    pub async fn queue_counts(&self, url: &str) -> (u64, u64, u64) {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::All)
            .send()
            .await
            .expect("queue attributes");
        let get = |name: A| out.attributes().and_then(|a| a.get(&name)).and_then(|v| v.parse().ok()).unwrap_or(0);
        (
            get(A::ApproximateNumberOfMessages),
            get(A::ApproximateNumberOfMessagesNotVisible),
            get(A::ApproximateNumberOfMessagesDelayed),
        )
    }

    /// A batchfan client for this server.
    pub fn client(&self) -> batchfan::Client {
        batchfan::Client::new(&self.sdk_config())
    }
}

/// Makes a job queue on a moto server (Batch without Docker unless `docker`).
pub fn batch_queue(moto: &Moto, queue: &str, docker: bool) {
    let root = workspace_root();
    let mut cmd = Command::new(root.join(".venv-moto/bin/python"));
    cmd.arg(root.join("tests/moto_batch.py")).arg(&moto.endpoint).arg(queue);
    if docker {
        cmd.arg("--docker");
    }
    let out = cmd.output().expect("run moto_batch.py");
    assert!(out.status.success(), "batch setup failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A Batch client for a moto server.
pub async fn batch_client(endpoint: &str) -> aws_sdk_batch::Client {
    let creds = aws_sdk_batch::config::Credentials::new("testing", "testing", None, None, "tests");
    let config = aws_sdk_batch::config::Builder::new()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_batch::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .build();
    aws_sdk_batch::Client::from_conf(config)
}

/// A built workspace binary (`cargo build --workspace --bins` must have run; scripts/test.sh does).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A command for a workspace binary, with the moto environment when given.
pub fn command(name: &str, moto: Option<&Moto>) -> Command {
    let mut cmd = Command::new(bin(name));
    if let Some(moto) = moto {
        cmd.envs(moto.env());
    }
    cmd.env_remove("AWS_BATCH_JOB_ARRAY_INDEX").env_remove("AWS_BATCH_JOB_ID").env_remove("BATCHFAN_MANIFEST");
    cmd
}

/// Runs a command and returns its output, printing it for failed assertions.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run command");
    eprintln!(
        "$ {:?}\nexit {:?}\nstdout:\n{}\nstderr:\n{}",
        cmd,
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A tiny deterministic random generator (xorshift), so datasets are the same on every run.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next value below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Writes the test dataset: small files in two folders, CRLF endings, no final newline,
/// an empty file, invalid UTF-8, one very long record and one file big enough to split.
pub fn write_dataset(dir: &Path, seed: u64) {
    const WORDS: [&str; 12] = ["alpha", "beta", "gamma", "Alpha", "delta", "x", "y", "zeta", "é", "the", "of", "a"];
    let mut rng = Rng::new(seed);
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    let text = |lines: u64, rng: &mut Rng| {
        let mut s = String::new();
        for _ in 0..lines {
            for _ in 0..rng.below(9) {
                s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
                s.push(if rng.below(5) == 0 { '\t' } else { ' ' });
            }
            s.push('\n');
        }
        s
    };
    for i in 0..12u64 {
        let mut body = text(1 + rng.below(60), &mut rng);
        if i % 4 == 1 {
            body = body.replace('\n', "\r\n");
        }
        if i % 5 == 2 {
            body.pop();
        }
        let folder = if i % 3 == 0 { dir.join("sub") } else { dir.to_path_buf() };
        std::fs::write(folder.join(format!("f{i:02}.txt")), body).expect("write");
    }
    std::fs::write(dir.join("empty.txt"), b"").expect("write");
    std::fs::write(dir.join("bytes.txt"), b"caf\xe9 na\xefve\n\xff\xfe caf\xe9\n").expect("write");
    let long: String = (0..3000).map(|i| WORDS[i % WORDS.len()]).collect::<Vec<_>>().join(" ");
    let mut big = text(2000, &mut rng);
    big.insert_str(big.len() / 3, &format!("{long}\n"));
    std::fs::write(dir.join("big.txt"), big).expect("write");
}

/// Every file under `dir` as (relative key, path).
pub fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let key = path.strip_prefix(root).expect("prefix").to_string_lossy().replace('\\', "/");
                out.push((key, path));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The word count of every file under `dir`, computed directly.
pub fn reference_wordcount(dir: &Path) -> BTreeMap<Vec<u8>, u64> {
    let mut counts = BTreeMap::new();
    for (_, path) in files(dir) {
        let bytes = std::fs::read(path).expect("read");
        for word in bytes.split(u8::is_ascii_whitespace).filter(|w| !w.is_empty()) {
            *counts.entry(word.to_vec()).or_insert(0) += 1;
        }
    }
    counts
}

/// Sums `word<TAB>count` outputs.
pub fn merge_counts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> BTreeMap<Vec<u8>, u64> {
    let mut counts = BTreeMap::new();
    for part in parts {
        for line in part.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let tab = line.iter().rposition(|b| *b == b'\t').expect("tab");
            let n: u64 = std::str::from_utf8(&line[tab + 1..]).expect("utf8").parse().expect("count");
            *counts.entry(line[..tab].to_vec()).or_insert(0) += n;
        }
    }
    counts
}

/// Uploads every file under `dir` to `s3://bucket/prefix` (prefix empty or ending with `/`).
pub async fn upload_dir(s3: &Client, bucket: &str, prefix: &str, dir: &Path) {
    for (key, path) in files(dir) {
        let body = ByteStream::from(std::fs::read(path).expect("read"));
        s3.put_object().bucket(bucket).key(format!("{prefix}{key}")).body(body).send().await.expect("put");
    }
}

/// Writes the test dataset (seeded) to a new temp folder, creates `bucket` and uploads the
/// dataset under `prefix`; returns the folder, which holds the reference copy.
pub async fn dataset_in_bucket(s3: &Client, bucket: &str, prefix: &str, seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write_dataset(dir.path(), seed);
    create_bucket(s3, bucket).await;
    upload_dir(s3, bucket, prefix, dir.path()).await;
    dir
}

/// The bodies of the chunk outputs (`part-*`) among downloaded objects under `prefix`.
pub fn part_bodies<'a>(objects: &'a BTreeMap<String, Vec<u8>>, prefix: &str) -> Vec<&'a [u8]> {
    let parts = format!("{prefix}part-");
    objects.iter().filter(|(k, _)| k.starts_with(&parts)).map(|(_, v)| v.as_slice()).collect()
}

/// Creates a bucket.
pub async fn create_bucket(s3: &Client, bucket: &str) {
    s3.create_bucket().bucket(bucket).send().await.expect("create bucket");
}

/// All keys under a prefix, with their bodies.
pub async fn download_prefix(s3: &Client, bucket: &str, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let listed = s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.expect("list");
    for object in listed.contents() {
        let key = object.key().expect("key").to_string();
        let body = s3.get_object().bucket(bucket).key(&key).send().await.expect("get").body.collect().await;
        out.insert(key, body.expect("body").into_bytes().to_vec());
    }
    out
}

/// A compression format test data is written in.
#[derive(Debug, Clone, Copy)]
pub enum Compress {
    /// gzip
    Gzip,
    /// Zstandard
    Zstd,
    /// bzip2
    Bzip2,
    /// xz
    Xz,
}

/// Runs a future to its end on a runtime of its own thread (callable from async tests too).
fn on_own_runtime<T: Send>(future: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(future))
            .join()
            .expect("no panic")
    })
}

/// Compresses `data` (in memory, through the same crate the worker decodes with).
pub fn compress(data: &[u8], how: Compress) -> Vec<u8> {
    use tokio::io::AsyncWriteExt;
    on_own_runtime(async {
        match how {
            Compress::Gzip => {
                let mut e = async_compression::tokio::write::GzipEncoder::new(Vec::new());
                e.write_all(data).await.expect("gzip");
                e.shutdown().await.expect("gzip");
                e.into_inner()
            }
            Compress::Zstd => {
                let mut e = async_compression::tokio::write::ZstdEncoder::new(Vec::new());
                e.write_all(data).await.expect("zstd");
                e.shutdown().await.expect("zstd");
                e.into_inner()
            }
            Compress::Bzip2 => {
                let mut e = async_compression::tokio::write::BzEncoder::new(Vec::new());
                e.write_all(data).await.expect("bzip2");
                e.shutdown().await.expect("bzip2");
                e.into_inner()
            }
            Compress::Xz => {
                let mut e = async_compression::tokio::write::XzEncoder::new(Vec::new());
                e.write_all(data).await.expect("xz");
                e.shutdown().await.expect("xz");
                e.into_inner()
            }
        }
    })
}

/// Decompresses gzip or zstd data (by its magic bytes); other data comes back as it is.
pub fn decompress(data: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    on_own_runtime(async {
        let mut out = Vec::new();
        if data.starts_with(&[0x1f, 0x8b]) {
            let mut d = async_compression::tokio::bufread::GzipDecoder::new(data);
            d.multiple_members(true);
            d.read_to_end(&mut out).await.expect("gunzip");
        } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            async_compression::tokio::bufread::ZstdDecoder::new(data).read_to_end(&mut out).await.expect("unzstd");
        } else {
            out = data.to_vec();
        }
        out
    })
}

/// Writes a manifest of `input` for runs of workers started by hand (index by index), through a
/// `batchfan run --local` of `true`, and claims `output` for that run as a submitted run holds
/// it: its workers' commits are fenced by the claim, and a run that ended holds nothing.
pub fn manifest_for(input: &Path, output: &Path, max_items_per_chunk: u64) -> String {
    let out = run(command("batchfan", None)
        .args(["run", "--local", "--format", "json", "--max-items-per-chunk", &max_items_per_chunk.to_string()])
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(["--", "true"]));
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    hold_output(output, summary["run_id"].as_str().expect("run id"));
    summary["manifest"].as_str().expect("manifest").to_string()
}

/// Claims a local output folder for `run_id`, as `batchfan submit` leaves a run's claim.
pub fn hold_output(output: &Path, run_id: &str) {
    let claim = serde_json::json!({"batchfan_claim": 1, "run_id": run_id, "host": "tests", "created_unix_ms": 0});
    std::fs::create_dir_all(output.join("_batchfan")).expect("mkdir");
    std::fs::write(output.join("_batchfan/claim.json"), claim.to_string()).expect("write claim");
}

/// The fields of `/proc/PID/stat` after the command name: state, ppid, pgrp, ...
fn proc_stat(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.rsplit_once(')')?.1.split_whitespace().map(str::to_string).collect())
}

/// True while process `pid` runs (a zombie waiting for its reaper does not).
pub fn alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|f| f.first().map(String::as_str) != Some("Z"))
}

/// Processes (not zombies) whose command line contains `needle`.
pub fn processes_matching(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let me = std::process::id();
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && alive(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(needle))
        })
        .collect()
}

/// Polls `condition` every 20 ms until it holds or `within` passes; true when it held.
pub fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The running child processes of `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            proc_stat(pid)
                .is_some_and(|f| f.first().map(String::as_str) != Some("Z") && f.get(1) == Some(&parent.to_string()))
        })
        .collect()
}

/// Why no container can run here (no Docker engine answers), if none can.
pub fn docker_unavailable() -> Option<String> {
    match Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("`docker info` failed: {}", String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => Some(format!("no docker command: {e}")),
    }
}

/// True where a Docker engine answers; else says, in one line, that `test` is skipped.
pub fn docker(test: &str) -> bool {
    match docker_unavailable() {
        None => true,
        Some(why) => {
            eprintln!("skipped {test}: no Docker engine answers ({why})");
            false
        }
    }
}

/// Builds the worker image `tag` from the debug build the tests use (linked dynamically: its
/// libraries are copied in), through worker-image/build.sh and the same Dockerfile target as a
/// release image. Whether it built.
pub fn build_worker_image(tag: &str) -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../worker-image/build.sh");
    run(Command::new("bash").arg(script).args(["--debug", "--dynamic", "--no-build", "--tag", tag])).status.success()
}

/// Registers job definition `name` (EC2, 1 vCPU, 512 MiB) whose containers run the image `tag`
/// with `command`, reaching `moto` with its test credentials (allowed past the lint), plus `env`;
/// through `batchfan register --cli-input-json`, as a user would.
pub fn register_image_definition(
    moto: &Moto,
    home: &Path,
    name: &str,
    tag: &str,
    command_line: &[&str],
    env: &[(&str, &str)],
    timeout_seconds: u32,
) {
    let mut environment = vec![
        serde_json::json!({"name": "AWS_ENDPOINT_URL", "value": moto.endpoint}),
        serde_json::json!({"name": "AWS_ACCESS_KEY_ID", "value": "testing"}),
        serde_json::json!({"name": "AWS_SECRET_ACCESS_KEY", "value": "testing"}),
        serde_json::json!({"name": "AWS_REGION", "value": "us-east-1"}),
        serde_json::json!({"name": "AWS_EC2_METADATA_DISABLED", "value": "true"}),
    ];
    environment.extend(env.iter().map(|(k, v)| serde_json::json!({"name": k, "value": v})));
    let jobdef = serde_json::json!({
        "jobDefinitionName": name,
        "type": "container",
        "platformCapabilities": ["EC2"],
        "containerProperties": {
            "image": tag,
            "command": command_line,
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
            "environment": environment
        },
        "timeout": {"attemptDurationSeconds": timeout_seconds}
    });
    let file = home.join(format!("jobdef-{name}.json"));
    std::fs::write(&file, jobdef.to_string()).expect("write the job definition");
    let out = run(command("batchfan", Some(moto))
        .env("BATCHFAN_HOME", home)
        .args(["register", "--allow", "plaintext-secret", "--cli-input-json"])
        .arg(&file));
    assert_eq!(out.status.code(), Some(0), "register {name}: {}", String::from_utf8_lossy(&out.stderr));
}
