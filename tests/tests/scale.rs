//! `batchfan scale` end to end: evaluate, bad files, init + simulate with a plot, export loaded
//! into moto's Application Auto Scaling and CloudWatch, and `scale run` scaling the local worker
//! pool on moto's SQS out as the queue grows and back in after it drains.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batchfan_tests::{bin, command, dataset_in_bucket, moto, run};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn classic(dir: &Path) -> PathBuf {
    let path = dir.join("classic.json");
    std::fs::write(&path, batchfan_scale::init::CLASSIC_EXAMPLE).unwrap();
    path
}

#[test]
fn evaluate_names_the_policy_and_step_that_fired() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = classic(tmp.path());
    let out = run(command("batchfan", None).args(["scale", "evaluate", "--policy"]).arg(&policy).args([
        "--metric",
        "700",
        "--capacity",
        "4",
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let d = json(&out);
    assert_eq!((d["new_capacity"].as_u64(), d["adjustment"].as_i64()), (Some(9), Some(5)));
    assert_eq!((d["policy"].as_str(), d["step"].as_u64()), (Some("queue-depth-out"), Some(1)));
    let quiet = json(&run(command("batchfan", None).args(["scale", "evaluate", "--policy"]).arg(&policy).args([
        "--metric",
        "20",
        "--capacity",
        "4",
        "--format",
        "json",
    ])));
    assert_eq!(quiet["new_capacity"], 4);
    assert!(quiet["opinions"][0]["reason"].as_str().unwrap().contains("is OK"), "says why none fired");
    // --max clamps.
    let clamped = json(&run(command("batchfan", None).args(["scale", "evaluate", "--policy"]).arg(&policy).args([
        "--metric",
        "5000",
        "--capacity",
        "4",
        "--max",
        "8",
        "--format",
        "json",
    ])));
    assert_eq!(clamped["new_capacity"], 8);
}

#[test]
fn a_bad_scaling_file_exits_2_naming_policy_and_step() {
    let tmp = tempfile::tempdir().unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(batchfan_scale::init::CLASSIC_EXAMPLE).unwrap();
    doc["ScalingPolicy"]["StepScalingPolicyConfiguration"]["StepAdjustments"][1]["MetricIntervalLowerBound"] =
        serde_json::json!(400);
    let path = tmp.path().join("overlap.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    for args in [
        vec!["evaluate", "--metric", "1", "--capacity", "1"],
        vec!["export", "--resource-id", "service/c/s", "--queue-name", "q"],
    ] {
        let out = run(command("batchfan", None).arg("scale").arg(args[0]).arg("--policy").arg(&path).args(&args[1..]));
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("policy `queue-depth-out`, step 1: overlaps step 0"), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing printed but the error");
    }
}

#[test]
fn init_writes_a_policy_that_simulates_within_the_slo_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("recommended.json");
    let out = run(command("batchfan", None)
        .args(["scale", "init", "--service-time", "1", "--slo", "300", "--max", "100", "--output"])
        .arg(&policy));
    assert_eq!(out.status.code(), Some(0));
    let plot = tmp.path().join("burst.svg");
    let trace = workspace().join("crates/batchfan-scale/traces/burst.csv");
    let out = run(command("batchfan", None)
        .args(["scale", "simulate", "--policy"])
        .arg(&policy)
        .arg("--trace")
        .arg(&trace)
        .args(["--slo", "300", "--format", "json", "--plot"])
        .arg(&plot));
    assert_eq!(out.status.code(), Some(0));
    let result = json(&out);
    assert_eq!(result["totals"]["slo_violations"], 0);
    assert_eq!(result["totals"]["finished"], result["totals"]["messages"]);
    let ratio = result["totals"]["task_hours"].as_f64().unwrap() / result["oracle"]["task_hours"].as_f64().unwrap();
    assert!((1.0..1.5).contains(&ratio), "task-hours {ratio:.2}x the oracle's");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.contains("<svg") && svg.contains("capacity (workers)") && svg.contains("backlog"), "a plot");
    // Text output: a row per minute and the totals.
    let out =
        run(command("batchfan", None).args(["scale", "simulate", "--policy"]).arg(&policy).arg("--trace").arg(&trace));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("minute  capacity") && text.contains("task-hours"), "{text}");
    // An SLO too short for a worker's start-up is refused, naming the option.
    let out = run(command("batchfan", None).args(["scale", "init", "--service-time", "1", "--slo", "60"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--slo"));
}

#[test]
fn exported_documents_load_into_moto_application_auto_scaling_and_cloudwatch() {
    let moto = moto();
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("recommended.json");
    let out = run(command("batchfan", None)
        .args(["scale", "init", "--service-time", "2", "--slo", "600", "--min", "1", "--max", "40", "--output"])
        .arg(&policy));
    assert_eq!(out.status.code(), Some(0));
    for (name, file) in [("classic", classic(tmp.path())), ("recommended", policy)] {
        let out = run(command("batchfan", None).args(["scale", "export", "--policy"]).arg(&file).args([
            "--resource-id",
            &format!("service/cl-{name}/svc-{name}"),
            "--queue-name",
            "work",
        ]));
        assert_eq!(out.status.code(), Some(0));
        let docs = tmp.path().join(format!("{name}-export.json"));
        std::fs::write(&docs, &out.stdout).unwrap();
        let loaded = run(Command::new(workspace().join(".venv-moto/bin/python"))
            .arg(workspace().join("tests/moto_scale.py"))
            .arg(&moto.endpoint)
            .arg(&docs)
            .arg(format!("cl-{name}"))
            .arg(format!("svc-{name}")));
        assert!(loaded.status.success(), "moto accepted every document");
        let described = json(&loaded);
        let target = described["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["ResourceId"] == format!("service/cl-{name}/svc-{name}"))
            .cloned()
            .unwrap();
        assert!(target["MaxCapacity"].as_i64().unwrap() >= 40);
        let alarm =
            described["alarms"].as_array().unwrap().iter().find(|a| a["Dimensions"][0]["Value"] == "work").cloned();
        let actions = alarm.expect("an alarm on the queue")["AlarmActions"].clone();
        assert!(actions[0].as_str().unwrap().starts_with("arn:aws:autoscaling:"), "the policy's ARN: {actions}");
    }
}

// Issue 8: the controller against moto SQS scales the local pool out as the queue grows and back
// in after it drains, without losing or repeating a message.
#[tokio::test(flavor = "multi_thread")]
async fn scale_run_scales_the_local_pool_out_and_back_in_without_losing_a_message() {
    let moto = moto();
    let home = tempfile::tempdir().unwrap();
    dataset_in_bucket(&moto.s3().await, "scale-run", "in/", 41).await;
    let (queue, _) = moto.queue("scale-work", 30, Some(5)).await;
    let batchfan = || {
        let mut cmd = command("batchfan", Some(moto));
        cmd.env("BATCHFAN_HOME", home.path());
        cmd
    };
    let out = run(batchfan().args(["enqueue", "--queue-url", &queue, "--format", "json", "--children", "12"]).args([
        "--input",
        "s3://scale-run/in/",
        "--output",
        "s3://scale-run/out/",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let run_id = json(&out)["run_id"].as_str().unwrap().to_string();

    // KEDA-style: a worker per 2 counted messages, checked every second; zero after 3 idle seconds.
    let policy = home.path().join("keda.json");
    std::fs::write(
        &policy,
        r#"{"Policies": [{"Keda": {"name": "fast", "queueLength": 2, "pollingInterval": 1, "cooldownPeriod": 3}}]}"#,
    )
    .unwrap();
    let logs = home.path().join("pool");
    let decisions = home.path().join("decisions.jsonl");
    let mut controller = batchfan()
        .env("FAULT_SLEEP_MS", "1500")
        .args(["scale", "run", "--queue-url", &queue, "--policy"])
        .arg(&policy)
        .args(["--target", "local", "--min", "0", "--max", "3", "--interval", "1", "--format", "json", "--log-dir"])
        .arg(&logs)
        .arg("--")
        .arg(bin("fault_worker"))
        .stdout(std::fs::File::create(&decisions).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let read = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&decisions)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = read();
        let peak = seen.iter().filter_map(|d| d["new_capacity"].as_u64()).max().unwrap_or(0);
        let back_to_zero = seen.last().is_some_and(|d| d["new_capacity"] == 0 && d["capacity"].as_u64() > Some(0));
        if peak >= 2 && back_to_zero {
            break;
        }
        assert!(Instant::now() < deadline, "no scale-out then scale-in: {seen:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let seen = read();
    assert_eq!(seen.iter().filter_map(|d| d["new_capacity"].as_u64()).max(), Some(3), "out to --max as the queue grew");
    assert!(Command::new("kill").args(["-TERM", &controller.id().to_string()]).status().unwrap().success());
    let status = controller.wait().unwrap();
    let mut stderr = String::new();
    controller.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");

    let out = run(batchfan().args(["wait", &run_id, "--interval", "0.2", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0), "every chunk committed");
    assert_eq!(json(&out)["committed"], 12);
    let committed: usize = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default().matches("chunk committed").count())
        .sum();
    assert_eq!(committed, 12, "no chunk committed twice");
    assert_eq!(moto.queue_counts(&queue).await, (0, 0, 0), "no message left or lost");
}
