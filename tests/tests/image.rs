//! The worker image end to end: built FROM scratch by worker-image/build.sh (the Dockerfile's
//! `prebuilt` target, from the debug build the tests use), run by moto's AWS Batch in Docker mode
//! as the children of one array job, and by `docker run` (read-only, signals as PID 1).
//! Every test is skipped, with one line saying why, where no Docker engine answers.

use std::process::Command;
use std::time::Duration;

use batchfan_tests::{
    Moto, batch_queue, command, dataset_in_bucket, docker, download_prefix, eventually, files, manifest_for,
    merge_counts, part_bodies, reference_wordcount, run, start_moto, write_dataset,
};

const TAG: &str = "batchfan-worker:integration";

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Builds the image once per test binary.
fn image() {
    static BUILT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    assert!(*BUILT.get_or_init(|| batchfan_tests::build_worker_image(TAG)), "the image builds");
}

fn batchfan(moto: &Moto, home: &std::path::Path) -> Command {
    let mut cmd = command("batchfan", Some(moto));
    cmd.env("BATCHFAN_HOME", home).env("BATCHFAN_BATCH_RPS", "1000");
    cmd
}

/// `batchfan submit` of `s3://BUCKET/in/` to `s3://BUCKET/out/` on `queue` with `definition`,
/// plus `extra` (the moto credentials in the definitions are test values: allowed past the lint).
fn submit(
    moto: &Moto,
    home: &std::path::Path,
    queue: &str,
    definition: &str,
    bucket: &str,
    extra: &[&str],
) -> std::process::Output {
    run(batchfan(moto, home)
        .args(["submit", "--allow", "plaintext-secret", "--job-queue", queue, "--job-definition", definition])
        .args(["--input", &format!("s3://{bucket}/in/"), "--output", &format!("s3://{bucket}/out/")])
        .args(extra))
}

/// A moto server whose Batch runs containers (host networking lets them reach moto on
/// 127.0.0.1), a queue, and the wordcount job definition on the image.
fn docker_batch(home: &std::path::Path) -> Moto {
    image();
    let moto = start_moto(&[("MOTO_DOCKER_NETWORK_MODE", "host")]);
    batch_queue(&moto, "q-docker", true);
    let env = [("BATCHFAN_LOG_FORMAT", "json")];
    batchfan_tests::register_image_definition(&moto, home, "wordcount-image", TAG, &["wordcount"], &env, 300);
    moto
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_image_runs_a_wordcount_array_on_moto_batch_in_docker_mode() {
    if !docker("the_worker_image_runs_a_wordcount_array_on_moto_batch_in_docker_mode") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let moto = docker_batch(home.path());
    let s3 = moto.s3().await;
    let data = dataset_in_bucket(&s3, "image-data", "in/", 21).await;
    let out = submit(
        &moto,
        home.path(),
        "q-docker",
        "wordcount-image",
        "image-data",
        &["--children", "3", "--split-bytes", "4KiB", "--wait", "--interval", "0.5"],
    );
    assert_eq!(out.status.code(), Some(0), "every child container succeeded");
    let objects = download_prefix(&s3, "image-data", "out/").await;
    let parts = part_bodies(&objects, "out/");
    assert!(parts.len() >= 2, "several children: {:?}", objects.keys());
    assert_eq!(objects.keys().filter(|k| k.contains("/done/")).count(), parts.len());
    assert_eq!(merge_counts(parts), reference_wordcount(data.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_child_whose_input_changed_fails_with_exit_3_and_redrive_reruns_only_its_chunk() {
    if !docker("a_child_whose_input_changed_fails_with_exit_3_and_redrive_reruns_only_its_chunk") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let moto = docker_batch(home.path());
    let batchfan = || batchfan(&moto, home.path());
    let s3 = moto.s3().await;
    let data = dataset_in_bucket(&s3, "image-redrive", "in/", 22).await;
    // Jobs move one status every 2 s until the input is edited, so no container reads it first.
    let slow = r#"{"model_name": "batch::job", "transition": {"progression": "time", "seconds": 2}}"#;
    moto.moto_api("/moto-api/state-manager/set-transition", slow);
    let out = submit(
        &moto,
        home.path(),
        "q-docker",
        "wordcount-image",
        "image-redrive",
        &["--max-items-per-chunk", "4", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = record["run_id"].as_str().unwrap().to_string();
    // Change one input before the containers start (moto takes over a second to start them).
    let original = std::fs::read(data.path().join("f01.txt")).unwrap();
    let put = |body: Vec<u8>| {
        s3.put_object()
            .bucket("image-redrive")
            .key("in/f01.txt")
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
    };
    put(b"edited after planning\n".to_vec()).await.unwrap();
    moto.moto_api("/moto-api/state-manager/unset-transition", r#"{"model_name": "batch::job"}"#);

    // Which chunk holds f01.txt: from the manifest, as a child would read it.
    let manifest = moto.client().open_manifest(record["manifest"].as_str().unwrap()).await.unwrap();
    let mut expected = None;
    for i in 0..manifest.header().chunk_count {
        if manifest.chunk(i).await.unwrap().iter().any(|item| item.key == "f01.txt") {
            expected = Some(i);
        }
    }
    let expected = expected.expect("f01.txt is planned");

    let out = run(batchfan().args(["wait", &run_id, "--interval", "0.5", "--format", "json"]));
    assert_eq!(out.status.code(), Some(1), "one child failed");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed = status["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["index"], expected);
    assert_eq!(failed[0]["exit_code"], 3, "exit 3: input changed since planning");

    // Same bytes, same ETag: the redrive of exactly that chunk succeeds, and the run is whole.
    put(original).await.unwrap();
    let out = run(batchfan().args(["redrive", &run_id, "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let redrive: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(redrive["chunks"], serde_json::json!([expected]));
    let out = run(batchfan().args(["wait", &run_id, "--interval", "0.5"]));
    assert_eq!(out.status.code(), Some(0), "after the redrive every chunk succeeded");
    let objects = download_prefix(&s3, "image-redrive", "out/").await;
    let parts = part_bodies(&objects, "out/");
    assert_eq!(parts.len() as u64, manifest.header().chunk_count);
    assert_eq!(merge_counts(parts), reference_wordcount(data.path()));
}

// Issue 20, `submit --max-concurrency` in Docker mode. moto 5.2.5 does not honour SEQUENTIAL:
// its Docker path reads `dependsOn[].jobId` of every dependency, and a SEQUENTIAL one has none,
// so every child of a lane array fails before its container starts (no attempt). This test
// shows what that leaves verifiable: lanes of one chunk (plain jobs over one-chunk views) run
// and commit; the chunks of the SEQUENTIAL lane are reported as never ran (0 attempts), and
// `redrive` runs exactly them under the cap, after which the run is whole. That a lane's
// children run one after another cannot be shown on moto (see the README).
#[tokio::test(flavor = "multi_thread")]
async fn a_capped_run_reports_its_never_ran_chunks_and_redrive_reruns_exactly_them_under_the_cap() {
    if !docker("a_capped_run_reports_its_never_ran_chunks_and_redrive_reruns_exactly_them_under_the_cap") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let moto = docker_batch(home.path());
    let batchfan = || batchfan(&moto, home.path());
    let s3 = moto.s3().await;
    let data = dataset_in_bucket(&s3, "image-lanes", "in/", 23).await;
    // 4 chunks over 3 lanes: [0, 3] (an array of 2, SEQUENTIAL), [1] and [2] (plain jobs).
    let out = submit(
        &moto,
        home.path(),
        "q-docker",
        "wordcount-image",
        "image-lanes",
        &["--children", "4", "--max-concurrency", "3", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["chunk_count"], 4);
    let run_id = record["run_id"].as_str().unwrap().to_string();
    let indices: Vec<_> = record["arrays"].as_array().unwrap().iter().map(|a| a["indices"].clone()).collect();
    assert_eq!(indices, vec![serde_json::json!([0, 3]), serde_json::json!([1]), serde_json::json!([2])]);

    let out = run(batchfan().args(["wait", &run_id, "--interval", "0.5", "--format", "json"]));
    assert_eq!(out.status.code(), Some(1), "the SEQUENTIAL lane failed on moto");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["committed"], 2, "the one-chunk lanes ran and committed: {status}");
    let failed = status["failed"].as_array().unwrap();
    let chunks: Vec<_> = failed.iter().map(|f| f["index"].as_u64().unwrap()).collect();
    assert_eq!(chunks, vec![0, 3], "{failed:?}");
    for f in failed {
        assert_eq!(f["attempts"], 0, "{f}");
        assert!(f["reason"].as_str().unwrap().starts_with("never ran: "), "{f}");
    }
    let out = run(batchfan().args(["wait", &run_id, "--interval", "0.5"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("never ran"), "the text table says so too: {text}");

    // Redrive: exactly chunks 0 and 3; a cap of 3 cannot bind on 2 chunks: one array of 2.
    let out = run(batchfan().args(["redrive", &run_id, "--format", "json"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let redrive: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(redrive["chunks"], serde_json::json!([0, 3]));
    let out = run(batchfan().args(["status", &run_id, "--format", "json"]));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let again: Vec<_> = status["arrays"].as_array().unwrap().iter().filter(|a| a["redrive"] == 1).collect();
    assert_eq!(again.len(), 1, "{status}");
    let children: u64 = again[0]["counts"].as_object().unwrap().values().filter_map(|v| v.as_u64()).sum();
    assert_eq!(children, 2, "one array of the 2 chunks: {status}");
    let out = run(batchfan().args(["wait", &run_id, "--interval", "0.5"]));
    assert_eq!(out.status.code(), Some(0), "after the redrive every chunk committed");
    let objects = download_prefix(&s3, "image-lanes", "out/").await;
    let parts = part_bodies(&objects, "out/");
    assert_eq!(parts.len(), 4);
    assert_eq!(merge_counts(parts), reference_wordcount(data.path()));
}

// Issue 6: a pipeline that builds its own SdkConfig (explicit region, endpoint, static
// credentials; no AWS_* variables) registers, submits to AWS Batch, waits and reads the outputs.
#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_pipeline_example_registers_submits_waits_and_reads_the_outputs() {
    if !docker("the_sdk_pipeline_example_registers_submits_waits_and_reads_the_outputs") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let moto = docker_batch(home.path());
    let s3 = moto.s3().await;
    let data = dataset_in_bucket(&s3, "image-sdk", "in/", 23).await;
    // Twice in a row on one output: the first run's wait finished it (report written, output
    // released), so the second (overwrite) is not refused (issue 15).
    for round in 0..2 {
        let mut cmd = command("sdk_pipeline", None);
        cmd.env_remove("AWS_ENDPOINT_URL")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PIPELINE_ACCESS_KEY_ID", "testing")
            .env("PIPELINE_SECRET_ACCESS_KEY", "testing")
            .args(["--region", "us-east-1", "--endpoint", &moto.endpoint, "--job-queue", "q-docker"])
            .arg("--job-definition")
            .arg(home.path().join("jobdef-wordcount-image.json"))
            .args(["--input", "s3://image-sdk/in/", "--output", "s3://image-sdk/out/", "--children", "3"]);
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(0), "round {round}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("job definition wordcount-image:") && stderr.contains("3 chunk outputs read"),
            "{stderr}"
        );
        // stdout is the concatenation of the chunk outputs: together, the reference count.
        assert_eq!(merge_counts([out.stdout.as_slice()]), reference_wordcount(data.path()), "round {round}");
    }
}

/// Lets the image's user (65534) write under `dir`: the test's folders belong to the test's user.
fn open_up(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| if p.is_dir() { 0o777 } else { 0o666 };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode(dir))).unwrap();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            open_up(&path);
        } else if !path.is_symlink() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode(&path))).unwrap();
        }
    }
}

/// `docker run` of chunk 0 of a local run's manifest: the input and output folders mounted at
/// their own paths, as the manifest names them.
fn docker_run_chunk(name: &str, manifest: &str, input: &std::path::Path, output: &std::path::Path) -> Command {
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--name", name, "--network", "none"])
        .arg("-v")
        .arg(format!("{0}:{0}:ro", input.display()))
        .arg("-v")
        .arg(format!("{0}:{0}", output.display()))
        .args(["-e", &format!("BATCHFAN_MANIFEST={manifest}"), "-e", "AWS_BATCH_JOB_ARRAY_INDEX=0"]);
    cmd
}

/// Removes the container `name` however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

// Issue 19: `readonlyRootFilesystem: true` with a tmpfs on /tmp (moto does not apply the flag,
// so `docker run --read-only` runs the child as Batch and ECS would).
#[test]
fn a_child_with_a_read_only_root_file_system_and_a_tmpfs_tmp_commits_its_chunk() {
    if !docker("a_child_with_a_read_only_root_file_system_and_a_tmpfs_tmp_commits_its_chunk") {
        return;
    }
    image();
    let input = tempfile::tempdir().unwrap();
    write_dataset(input.path(), 31);
    let output = tempfile::tempdir().unwrap();
    let manifest = manifest_for(input.path(), output.path(), 100_000);
    open_up(input.path());
    open_up(output.path());
    let name = format!("batchfan-image-ro-{}", std::process::id());
    let _container = Container(name.clone());
    let out = run(docker_run_chunk(&name, &manifest, input.path(), output.path()).args([
        "--read-only",
        "--tmpfs",
        "/tmp:rw,mode=1777",
        TAG,
        "wordcount",
    ]));
    assert_eq!(out.status.code(), Some(0), "the read-only child committed");
    // The container ran with a read-only root file system.
    let inspect = run(Command::new("docker").args(["inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", &name]));
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), "true");
    let committed = files(output.path());
    let part = committed.iter().find(|(k, _)| k == "part-00000").expect("part-00000 committed");
    assert!(committed.iter().any(|(k, _)| k.contains("_batchfan/runs/") && k.contains("/done/")), "{committed:?}");
    let body = std::fs::read(&part.1).unwrap();
    assert_eq!(merge_counts([body.as_slice()]), reference_wordcount(input.path()));
}

/// The bring-your-own-base example (examples/python-jq): the worker image's worker on a base
/// with python3 and jq, assembled from this machine's own (nothing can be pulled here).
const PYTHON_TAG: &str = "batchfan-python-jq:integration";

fn python_image() {
    static BUILT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *BUILT.get_or_init(|| {
        image();
        let root = repo_root();
        let base = "batchfan-python-jq-base:integration";
        // The debug worker is linked dynamically: the base gets its libraries too.
        let built = run(Command::new("bash")
            .arg(root.join("examples/python-jq/base.sh"))
            .args(["--tag", base, "--libs-of"])
            .arg(batchfan_tests::bin("batchfan-worker")));
        built.status.success()
            && run(Command::new("docker")
                .args(["build", "--quiet", "-t", PYTHON_TAG, "--build-arg"])
                .arg(format!("WORKER_IMAGE={TAG}"))
                .arg("--build-arg")
                .arg(format!("BASE={base}"))
                .arg(root.join("examples/python-jq")))
            .status
            .success()
    });
    assert!(ok, "the python-jq example image builds");
}

/// Zombie processes (state Z) in container `name`, from its own /proc (`docker top` lists only
/// the processes of the container's cgroup, which an exited process has left).
fn zombies(name: &str) -> Vec<String> {
    let scan = "import os\nfor p in filter(str.isdigit, os.listdir('/proc')):\n    try: s = open(f'/proc/{p}/stat').read()\n    except OSError: continue\n    if s.rsplit(')', 1)[1].split()[0] == 'Z': print(p, s.strip())";
    let out = run(Command::new("docker").args(["exec", name, "python3", "-c", scan]));
    assert!(out.status.success(), "docker exec: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

// Issue 19: the worker is the container's PID 1. A program exec runs gets the SIGTERM the
// container was sent (after the drain deadline, as exec documents), and an orphan it leaves
// behind is reaped (without the init it stays a zombie until the container ends).
#[test]
fn as_pid_1_the_worker_passes_sigterm_to_its_program_and_reaps_orphans() {
    if !docker("as_pid_1_the_worker_passes_sigterm_to_its_program_and_reaps_orphans") {
        return;
    }
    python_image();
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("a.txt"), "one line\n").unwrap();
    let output = tempfile::tempdir().unwrap();
    let manifest = manifest_for(input.path(), output.path(), 100);
    let signals = tempfile::tempdir().unwrap();
    open_up(input.path());
    open_up(output.path());
    open_up(signals.path());
    let log = signals.path().join("log");
    // The program: leaves an orphan that exits 0.2 s later, then sleeps until SIGTERM.
    let script = r#"
import os, signal, sys, time
log = open(sys.argv[1], "a", buffering=1)
def term(signum, frame):
    log.write("SIGTERM\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
if os.fork() == 0:
    if os.fork() == 0:
        time.sleep(0.2)
        log.write("orphan exits\n")
        os._exit(0)
    os._exit(0)
os.wait()
log.write("ready\n")
time.sleep(600)
"#;
    let name = format!("batchfan-image-pid1-{}", std::process::id());
    let _container = Container(name.clone());
    let started = run(docker_run_chunk(&name, &manifest, input.path(), output.path())
        .arg("-d")
        .arg("-v")
        .arg(format!("{0}:{0}", signals.path().display()))
        .args(["-e", "BATCHFAN_STOP_TIMEOUT=1", PYTHON_TAG, "exec", "--per-chunk", "--", "python3", "-c", script])
        .arg(&log));
    assert_eq!(started.status.code(), Some(0), "{}", String::from_utf8_lossy(&started.stderr));
    let logged = |line: &str| std::fs::read_to_string(&log).unwrap_or_default().lines().any(|l| l == line);
    assert!(eventually(Duration::from_secs(60), || logged("ready") && logged("orphan exits")), "the program started");
    assert!(
        eventually(Duration::from_secs(30), || zombies(&name).is_empty()),
        "the orphan is reaped: {:?}",
        zombies(&name)
    );
    let top = run(Command::new("docker").args(["top", &name, "-eo", "pid,args"]));
    assert!(String::from_utf8_lossy(&top.stdout).contains("python3 -c"), "the program still runs");

    assert!(run(Command::new("docker").args(["kill", "--signal", "TERM", &name])).status.success());
    let waited = run(Command::new("docker").args(["wait", &name]));
    assert_eq!(String::from_utf8_lossy(&waited.stdout).trim(), "143", "aborted at the drain deadline");
    let logs = run(Command::new("docker").args(["logs", &name]));
    assert!(logged("SIGTERM"), "the program got SIGTERM: {}", String::from_utf8_lossy(&logs.stderr));
}

/// Registers job definition `name` on `image` running `command` (moto reaches the container on
/// 127.0.0.1), with `case` in the environment so its containers can be told apart.
fn register_on(moto: &Moto, home: &std::path::Path, name: &str, image: &str, command: &[&str], case: &str) {
    let jobdef = serde_json::json!({
        "jobDefinitionName": name,
        "type": "container",
        "platformCapabilities": ["EC2"],
        "containerProperties": {
            "image": image,
            "command": command,
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
            "environment": [
                {"name": "AWS_ENDPOINT_URL", "value": moto.endpoint},
                {"name": "AWS_ACCESS_KEY_ID", "value": "testing"},
                {"name": "AWS_SECRET_ACCESS_KEY", "value": "testing"},
                {"name": "AWS_REGION", "value": "us-east-1"},
                {"name": "AWS_EC2_METADATA_DISABLED", "value": "true"},
                {"name": "BATCHFAN_TEST_CASE", "value": case}
            ]
        },
        "timeout": {"attemptDurationSeconds": 600}
    });
    let file = home.join(format!("{name}.json"));
    std::fs::write(&file, jobdef.to_string()).unwrap();
    // The moto credentials in the environment are test values: allowed past the lint.
    let out =
        run(batchfan(moto, home).args(["register", "--allow", "plaintext-secret", "--cli-input-json"]).arg(&file));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Running containers whose environment holds `BATCHFAN_TEST_CASE=case`, through the Docker API.
fn running_containers(case: &str) -> Vec<String> {
    let ids = run(Command::new("docker").args(["ps", "-q", "--no-trunc"]));
    String::from_utf8_lossy(&ids.stdout)
        .split_whitespace()
        .filter(|id| {
            let env = run(Command::new("docker").args(["inspect", "--format", "{{json .Config.Env}}", id]));
            String::from_utf8_lossy(&env.stdout).contains(&format!("\"BATCHFAN_TEST_CASE={case}\""))
        })
        .map(str::to_string)
        .collect()
}

// Issue 19: bring your own base image. An exec job on the python-jq example image runs python3
// and jq as AWS Batch children, one output per input.
#[tokio::test(flavor = "multi_thread")]
async fn an_exec_job_on_the_bring_your_own_base_image_runs_python_and_jq_as_batch_children() {
    if !docker("an_exec_job_on_the_bring_your_own_base_image_runs_python_and_jq_as_batch_children") {
        return;
    }
    python_image();
    let home = tempfile::tempdir().unwrap();
    let moto = start_moto(&[("MOTO_DOCKER_NETWORK_MODE", "host")]);
    batch_queue(&moto, "q-byo", true);
    let job = ["exec", "--suffix", ".json", "--", "python3", "/opt/job/job.py", "{input}", "{output}"];
    register_on(&moto, home.path(), "python-jq", PYTHON_TAG, &job, "byo");
    let s3 = moto.s3().await;
    let data = dataset_in_bucket(&s3, "image-byo", "in/", 24).await;
    let out = submit(
        &moto,
        home.path(),
        "q-byo",
        "python-jq",
        "image-byo",
        &["--children", "2", "--wait", "--interval", "0.5"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let objects = download_prefix(&s3, "image-byo", "out/").await;
    let inputs = files(data.path());
    assert!(inputs.len() >= 2);
    for (key, path) in inputs {
        let body =
            objects.get(&format!("out/{key}.json")).unwrap_or_else(|| panic!("out/{key}.json: {:?}", objects.keys()));
        let got: serde_json::Value = serde_json::from_slice(body).unwrap();
        let text = std::fs::read(path).unwrap();
        // As Python counts them: newline-ended lines, and a last line without one.
        let lines =
            text.iter().filter(|b| **b == b'\n').count() + usize::from(text.last().is_some_and(|b| *b != b'\n'));
        let words = text.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()).count();
        assert_eq!(got["lines"], lines, "{key}: {got}");
        assert_eq!(got["words"], words, "{key}: {got}");
        assert!(got["python"].as_str().is_some_and(|v| v.starts_with('3')), "{key}: {got}");
    }
}

// Issue 19: `batchfan cancel` on a running array stops its containers: none is left running,
// as the Docker API lists them.
#[tokio::test(flavor = "multi_thread")]
async fn cancel_of_a_long_running_array_leaves_none_of_its_containers_running() {
    if !docker("cancel_of_a_long_running_array_leaves_none_of_its_containers_running") {
        return;
    }
    python_image();
    let home = tempfile::tempdir().unwrap();
    let moto = start_moto(&[("MOTO_DOCKER_NETWORK_MODE", "host")]);
    batch_queue(&moto, "q-cancel", true);
    let case = format!("cancel-{}", std::process::id());
    let job = ["exec", "--per-chunk", "--", "python3", "-c", "import time; time.sleep(600)"];
    register_on(&moto, home.path(), "sleeper", PYTHON_TAG, &job, &case);
    let s3 = moto.s3().await;
    let _data = dataset_in_bucket(&s3, "image-cancel", "in/", 25).await;
    let out =
        submit(&moto, home.path(), "q-cancel", "sleeper", "image-cancel", &["--children", "2", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = record["run_id"].as_str().unwrap().to_string();
    assert!(
        eventually(Duration::from_secs(120), || running_containers(&case).len() == 2),
        "both children's containers run: {:?}",
        running_containers(&case)
    );
    // Issue 22, item 9: while its children run, the run holds its output: a second submit
    // (even with --overwrite) is refused naming it, and sends nothing.
    let jobs_before = list_jobs(&moto, "q-cancel").await;
    let second = submit(&moto, home.path(), "q-cancel", "sleeper", "image-cancel", &["--overwrite"]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("in use by run") && stderr.contains(&run_id), "{stderr}");
    assert_eq!(list_jobs(&moto, "q-cancel").await, jobs_before, "the refused submit sent nothing");
    let out = run(batchfan(&moto, home.path()).args(["cancel", &run_id]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let claim = download_prefix(&s3, "image-cancel", "out/_batchfan/claim").await;
    assert!(claim.is_empty(), "cancel released the claim: {:?}", claim.keys());
    let stopped = eventually(Duration::from_secs(120), || running_containers(&case).is_empty());
    let left = running_containers(&case);
    for id in &left {
        let _ = Command::new("docker").args(["rm", "-f", id]).output();
    }
    assert!(stopped, "no container of the run is left running: {left:?}");
}

/// Ids of every job of `queue`, whatever its status.
async fn list_jobs(moto: &batchfan_tests::Moto, queue: &str) -> std::collections::BTreeSet<String> {
    use aws_sdk_batch::types::JobStatus;
    let batch = batchfan_tests::batch_client(&moto.endpoint).await;
    let mut ids = std::collections::BTreeSet::new();
    for status in [
        JobStatus::Submitted,
        JobStatus::Pending,
        JobStatus::Runnable,
        JobStatus::Starting,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
    ] {
        let out = batch.list_jobs().job_queue(queue).job_status(status).send().await.unwrap();
        ids.extend(out.job_summary_list().iter().filter_map(|j| j.job_id().map(str::to_string)));
    }
    ids
}
