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

/// `scale simulate --format json` of `policy` on `trace` with `args`, after checking that the
/// documents `scale export` writes for it simulate to the same capacity minute by minute.
fn simulate_installed(policy: &Path, trace: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let simulate = |policy: &Path| {
        let out = run(command("batchfan", None)
            .args(["scale", "simulate", "--policy"])
            .arg(policy)
            .arg("--trace")
            .arg(trace)
            .args(["--format", "json"])
            .args(args));
        (out.status.code(), json(&out))
    };
    let (code, result) = simulate(policy);
    let out = run(command("batchfan", None).args(["scale", "export", "--policy"]).arg(policy).args([
        "--resource-id",
        "service/cluster/workers",
        "--queue-name",
        "work",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let exported = policy.with_extension("exported.json");
    std::fs::write(&exported, &out.stdout).unwrap();
    let (again_code, again) = simulate(&exported);
    let capacities = |r: &serde_json::Value| {
        r["minutes"].as_array().unwrap().iter().map(|m| m["capacity"].clone()).collect::<Vec<_>>()
    };
    assert_eq!(capacities(&result), capacities(&again), "the installed documents simulate differently");
    assert_eq!((code, &result["totals"]), (again_code, &again["totals"]));
    (code, result)
}

/// The texts of an SVG's `<text>` elements.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| t.split_once('>').and_then(|(_, rest)| rest.split_once("</text>")))
        .map(|(text, _)| text.trim().to_string())
        .collect()
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
    let (code, result) = simulate_installed(&policy, &trace, &["--slo", "300", "--plot", plot.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(result["totals"]["slo_violations"], 0);
    assert_eq!(result["totals"]["finished"], result["totals"]["messages"]);
    assert_eq!(result["totals"]["still_waiting"], 0);
    let ratio = result["totals"]["task_hours"].as_f64().unwrap() / result["oracle"]["task_hours"].as_f64().unwrap();
    assert!((1.0..1.5).contains(&ratio), "task-hours {ratio:.2}x the oracle's");
    // The plot: four panels, asked-for and ready told apart, the SLO drawn, integer axes.
    let svg = std::fs::read_to_string(&plot).unwrap();
    let texts = svg_texts(&svg);
    for caption in [
        "messages arriving per minute",
        "backlog",
        "workers",
        "oldest waiting message&apos;s age",
        "asked for (peak 58)",
        "ready",
        "SLO 300 s (0 over)",
    ] {
        assert!(texts.iter().any(|t| t == caption), "`{caption}` in the plot: {texts:?}");
    }
    assert!(svg.contains("<polygon"), "ready workers are a filled area under the asked-for line");
    let decimals: Vec<&String> = texts.iter().filter(|t| t.parse::<f64>().is_ok() && t.contains('.')).collect();
    assert!(decimals.is_empty(), "axis labels are integers: {decimals:?}");
    // Text output: a row per minute and the totals.
    let out =
        run(command("batchfan", None).args(["scale", "simulate", "--policy"]).arg(&policy).arg("--trace").arg(&trace));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("minute  capacity") && text.contains("task-hours"), "{text}");
    assert!(text.contains("messages: 27398 in the trace: 27398 finished"), "{text}");
    // An SLO too short for a worker's start-up is refused, naming the option.
    let out = run(command("batchfan", None).args(["scale", "init", "--service-time", "1", "--slo", "60"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--slo"));
}

// Issue 17: `scale init --min 0` stranded small backlogs; `simulate` hid them ("0 of 5 messages
// finished, worst message age 0 s, 0 messages waited longer") and exited 0.
#[test]
fn no_message_is_stranded_by_init_and_none_is_hidden_by_simulate() {
    let tmp = tempfile::tempdir().unwrap();
    let five = tmp.path().join("five.csv");
    std::fs::write(&five, "seconds,messages\n0,5\n").unwrap();
    let policy = tmp.path().join("min0.json");
    let out = run(command("batchfan", None)
        .args(["scale", "init", "--service-time", "1", "--slo", "300", "--min", "0", "--max", "20", "--output"])
        .arg(&policy));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a message visible for 120 s gets a worker asked for"));
    let (code, result) = simulate_installed(&policy, &five, &["--slo", "300"]);
    assert_eq!(code, Some(0), "every message within the SLO");
    assert_eq!(
        (result["totals"]["finished"].as_u64(), result["totals"]["slo_violations"].as_u64()),
        (Some(5), Some(0))
    );

    // Target tracking on backlog per task cannot scale out from no task: it strands them.
    let stranding = tmp.path().join("stranding.json");
    std::fs::write(
        &stranding,
        r#"{"ScalableTarget": {"ServiceNamespace": "ecs", "ResourceId": "service/c/s", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 0, "MaxCapacity": 10},
            "ScalingPolicy": {"PolicyName": "backlog", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 100}}}"#,
    )
    .unwrap();
    let (code, result) = simulate_installed(&stranding, &five, &["--slo", "300"]);
    assert_eq!(code, Some(1), "--slo fails the run when a message waited longer");
    let totals = &result["totals"];
    assert_eq!((totals["finished"].as_u64(), totals["still_waiting"].as_u64()), (Some(0), Some(5)));
    assert_eq!(totals["slo_violations"], 5);
    assert!(totals["worst_message_age_s"].as_f64().unwrap() >= 6.0 * 3600.0, "{totals}");
    let out = run(command("batchfan", None)
        .args(["scale", "simulate", "--policy"])
        .arg(&stranding)
        .arg("--trace")
        .arg(&five)
        .args(["--slo", "300"]));
    assert_eq!(out.status.code(), Some(1));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("messages: 5 in the trace: 0 finished, 5 STILL WAITING when the simulation ended"),
        "{stdout}"
    );
    assert!(stdout.contains("SLO 300 s: 5 messages waited longer"), "{stdout}");
    assert!(stderr.contains("5 of 5 messages waited longer than the SLO of 300 s (5 never started)"), "{stderr}");
    // Without --slo there is nothing to fail, and the summary still tells.
    let out = run(command("batchfan", None)
        .args(["scale", "simulate", "--policy"])
        .arg(&stranding)
        .arg("--trace")
        .arg(&five));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 STILL WAITING"));
    // The plot shows them.
    let plot = tmp.path().join("stranded.svg");
    let out = run(command("batchfan", None)
        .args(["scale", "simulate", "--policy"])
        .arg(&stranding)
        .arg("--trace")
        .arg(&five)
        .args(["--slo", "300", "--plot"])
        .arg(&plot));
    assert_eq!(out.status.code(), Some(1));
    let texts = svg_texts(&std::fs::read_to_string(&plot).unwrap());
    assert!(texts.iter().any(|t| t.starts_with("5 messages never started: oldest waited")), "{texts:?}");
}

// Issue 17: `evaluate` answered for an AWS/ECS CPUUtilization policy as for backlog per task.
#[test]
fn a_metric_batchfan_cannot_compute_is_refused_by_name_or_fed_from_a_trace_column() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("cpu.json");
    std::fs::write(
        &policy,
        r#"{"ScalableTarget": {"ServiceNamespace": "ecs", "ResourceId": "service/c/s", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 50},
            "ScalingPolicy": {"PolicyName": "cpu", "PolicyType": "TargetTrackingScaling",
              "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 60, "ScaleInCooldown": 60,
                "CustomizedMetricSpecification": {"MetricName": "CPUUtilization", "Namespace": "AWS/ECS", "Statistic": "Average"}}}}"#,
    )
    .unwrap();
    let out = run(command("batchfan", None).args(["scale", "evaluate", "--policy"]).arg(&policy).args([
        "--metric",
        "700",
        "--capacity",
        "4",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("policy `cpu`: metric AWS/ECS CPUUtilization") && stderr.contains("--metric-value"),
        "{stderr}"
    );
    let out = run(command("batchfan", None).args(["scale", "evaluate", "--policy"]).arg(&policy).args([
        "--metric-value",
        "CPUUtilization=90",
        "--capacity",
        "4",
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["new_capacity"], 6, "4 x 90 / 60");

    let plain = tmp.path().join("plain.csv");
    std::fs::write(&plain, "seconds,messages\n0,5\n").unwrap();
    let out =
        run(command("batchfan", None).args(["scale", "simulate", "--policy"]).arg(&policy).arg("--trace").arg(&plain));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AWS/ECS CPUUtilization") && stderr.contains("--metric-column"), "{stderr}");
    let out = run(command("batchfan", None)
        .args(["scale", "simulate", "--policy"])
        .arg(&policy)
        .arg("--trace")
        .arg(&plain)
        .args(["--metric-column", "cpu"]));
    assert_eq!(out.status.code(), Some(2), "a column the trace does not have");
    assert!(String::from_utf8_lossy(&out.stderr).contains("names none"));
    let with_cpu = tmp.path().join("cpu.csv");
    std::fs::write(&with_cpu, "seconds,messages,cpu\n0,5,90\n600,0,20\n2400,0,\n").unwrap();
    let (code, result) = simulate_installed(&policy, &with_cpu, &["--metric-column", "cpu"]);
    assert_eq!(code, Some(0));
    assert!(result["totals"]["peak_capacity"].as_u64().unwrap() > 1, "90% CPU scales out");
    assert_eq!(result["minutes"].as_array().unwrap().last().unwrap()["capacity"], 1, "20% scales back in");
}

#[test]
fn scale_run_refuses_a_metric_it_cannot_read_by_name_before_touching_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("age.json");
    std::fs::write(
        &policy,
        r#"{"ScalableTarget": {"ServiceNamespace": "ecs", "ResourceId": "service/c/s", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 0, "MaxCapacity": 5},
            "ScalingPolicy": {"PolicyName": "old", "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity",
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}},
            "Alarm": {"AlarmName": "age", "Namespace": "AWS/SQS", "MetricName": "ApproximateAgeOfOldestMessage", "Statistic": "Maximum",
                "Period": 60, "EvaluationPeriods": 1, "Threshold": 120, "ComparisonOperator": "GreaterThanThreshold"}}"#,
    )
    .unwrap();
    let out = run(command("batchfan", None)
        .args(["scale", "run", "--queue-url", "http://127.0.0.1:9/000000000000/nowhere", "--policy"])
        .arg(&policy)
        .args(["--target", "print"]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("policy `old`: metric AWS/SQS ApproximateAgeOfOldestMessage")
            && stderr.contains("GetQueueAttributes"),
        "{stderr}"
    );
}

// Issue 17: the first line says what is polled and when the first decision comes; then one line
// per decision with the alarm's datapoints, its state, the step that fired and the capacity.
#[tokio::test(flavor = "multi_thread")]
async fn scale_run_says_what_it_polls_then_prints_a_line_per_decision() {
    let moto = moto();
    let tmp = tempfile::tempdir().unwrap();
    let (queue, _) = moto.queue("scale-print", 30, None).await;
    for i in 0..3 {
        moto.sqs().send_message().queue_url(&queue).message_body(format!("m{i}")).send().await.unwrap();
    }
    let policy = tmp.path().join("min0.json");
    let out = run(command("batchfan", None)
        .args(["scale", "init", "--service-time", "1", "--slo", "300", "--min", "0", "--max", "5", "--output"])
        .arg(&policy));
    assert_eq!(out.status.code(), Some(0));
    let out = run(command("batchfan", Some(moto))
        .args(["scale", "run", "--queue-url", &queue, "--policy"])
        .arg(&policy)
        .args(["--target", "print", "--interval", "5", "--duration", "75"]));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].contains("polling") && lines[0].contains("every 5 s"), "{stdout}");
    assert!(lines[0].contains("first decision in about 60 s"), "{stdout}");
    assert!(lines[0].contains("`queue-proportional` on alarm `queue-backlog`"), "{stdout}");
    let decision =
        lines.iter().find(|l| l.contains("capacity 0 -> 1")).unwrap_or_else(|| panic!("a scale-out: {stdout}"));
    assert!(decision.contains("alarm `queue-backlog` ALARM on [3], step 1 (set 1) fired: asks for 1"), "{decision}");
    assert!(!stdout.contains(" { ") && !stdout.contains("Some("), "no Rust debug structures: {stdout}");
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
    // Issue 17: pool events as sentences, not `Exited { slot: 2, code: Some(0), .. }`.
    assert!(stderr.contains("pool: worker 0 started (pid "), "{stderr}");
    assert!(!stderr.contains(" { ") && !stderr.contains("Some("), "no Rust debug structures: {stderr}");

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
