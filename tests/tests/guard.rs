//! Issue 20 against moto: `batchfan lint` as users run it (exit codes, JSON, a secret's value
//! never printed), `register` and `submit` refusing lint errors unless allowed, and every
//! command run at `RUST_LOG=trace` with known fake credentials, a session token and secret
//! values in the environment and in a job definition, none of which may appear in any output.

use std::path::Path;
use std::process::{Command, Output};

use batchfan_tests::{Moto, batch_queue, command, create_bucket, moto, run};

const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY9";
const SESSION_TOKEN: &str = "FQoGZXIvYXdzEFAKEsessionTOKENvalue0123456789";
const DB_PASSWORD: &str = "db-password-value-7f3a9c";
const API_TOKEN: &str = "api-token-value-5be21d";

fn batchfan(moto: &Moto, home: &Path) -> Command {
    let mut cmd = command("batchfan", Some(moto));
    cmd.env("BATCHFAN_HOME", home).env("BATCHFAN_BATCH_RPS", "1000");
    cmd
}

fn definition(path: &Path, name: &str, env: serde_json::Value) {
    let doc = serde_json::json!({
        "jobDefinitionName": name,
        "type": "container",
        "platformCapabilities": ["EC2"],
        "containerProperties": {
            "image": "batchfan-worker:0.1.0",
            "command": ["batchfan-worker", "wordcount"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
            "environment": env
        }
    });
    std::fs::write(path, doc.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn lint_exits_1_on_errors_never_prints_a_secret_and_register_and_submit_refuse_unless_allowed() {
    let moto = moto();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let file = home.join("secret.json");
    definition(&file, "leaky", serde_json::json!([{"name": "DB_PASSWORD", "value": DB_PASSWORD}]));
    let out = run(batchfan(moto, home).args(["lint"]).arg(&file));
    assert_eq!(out.status.code(), Some(1), "errors exit 1");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("error[plaintext-secret]") && text.contains("DB_PASSWORD"), "{text}");
    assert!(text.contains("warning[no-timeout]") && text.contains("warning[no-job-role]"), "{text}");
    let out = run(batchfan(moto, home).args(["lint", "--format", "json"]).arg(&file));
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], 1);
    assert_eq!(report["findings"][0]["rule"], "plaintext-secret");
    assert_eq!(report["findings"][0]["severity"], "error");
    // Only warnings: exit 0.
    let out = run(batchfan(moto, home).args(["lint", "--allow", "plaintext-secret"]).arg(&file));
    assert_eq!(out.status.code(), Some(0));
    let out = run(batchfan(moto, home).args(["lint", "--allow", "no-such-rule"]).arg(&file));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plaintext-secret"));

    // register refuses errors (exit 2, nothing registered) and takes --allow.
    let out = run(batchfan(moto, home).args(["register", "--cli-input-json"]).arg(&file));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[plaintext-secret]") && stderr.contains("--allow"), "{stderr}");
    let batch = batchfan_tests::batch_client(&moto.endpoint).await;
    let listed = batch.describe_job_definitions().job_definition_name("leaky").send().await.unwrap();
    assert!(listed.job_definitions().is_empty(), "nothing registered");
    let out =
        run(batchfan(moto, home).args(["register", "--allow", "plaintext-secret", "--cli-input-json"]).arg(&file));
    assert_eq!(out.status.code(), Some(0));
    // submit lints the definition it names, as registered.
    batch_queue(moto, "q-lint", false);
    create_bucket(&moto.s3().await, "lint").await;
    moto.s3()
        .await
        .put_object()
        .bucket("lint")
        .key("in/a.txt")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"a\n"))
        .send()
        .await
        .unwrap();
    let submit = |extra: &[&str]| {
        run(batchfan(moto, home)
            .args(["submit", "--job-queue", "q-lint", "--job-definition", "leaky", "--dry-run"])
            .args(["--input", "s3://lint/in/", "--output", "s3://lint/out/"])
            .args(extra))
    };
    let out = submit(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[plaintext-secret]"));
    assert_eq!(submit(&["--allow", "plaintext-secret"]).status.code(), Some(0));
    for out in [submit(&[]), submit(&["--allow", "plaintext-secret"])] {
        for text in [String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)] {
            assert!(!text.contains(DB_PASSWORD), "the secret value was printed: {text}");
        }
    }
}

/// Fails naming the command and the stream when any known secret appears.
fn assert_clean(what: &str, out: &Output, extra: &[String]) {
    let streams = [("stdout", String::from_utf8_lossy(&out.stdout)), ("stderr", String::from_utf8_lossy(&out.stderr))];
    for (stream, text) in
        streams.iter().map(|(s, t)| (*s, t.to_string())).chain(extra.iter().map(|t| ("log", t.clone())))
    {
        for secret in [SECRET_KEY, SESSION_TOKEN, DB_PASSWORD, API_TOKEN] {
            assert!(!text.contains(secret), "{what}: `{secret}` appears in {stream}:\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_command_prints_a_secret_even_at_trace() {
    let moto = moto();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let logs = home.join("logs");
    let data = home.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), b"alpha beta\n").unwrap();
    batch_queue(moto, "q-secrets", false);
    create_bucket(&moto.s3().await, "secrets").await;
    moto.s3()
        .await
        .put_object()
        .bucket("secrets")
        .key("in/a.txt")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"a b\n"))
        .send()
        .await
        .unwrap();
    let (queue_url, _) = moto.queue("secrets-queue", 30, None).await;
    let file = home.join("secret.json");
    definition(
        &file,
        "secretive",
        serde_json::json!([{"name": "DB_PASSWORD", "value": DB_PASSWORD}, {"name": "API_TOKEN", "value": API_TOKEN}]),
    );
    let traced = |args: &[&str]| {
        let mut cmd = batchfan(moto, home);
        cmd.env("RUST_LOG", "trace")
            .env("AWS_ACCESS_KEY_ID", "AKIAFAKEKEYID0000001")
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
            .env("DB_PASSWORD", DB_PASSWORD)
            .args(args);
        let out = cmd.output().expect("run batchfan");
        eprintln!("$ batchfan {args:?}: exit {:?}, {} bytes of stderr", out.status.code(), out.stderr.len());
        out
    };
    let s3_in = "s3://secrets/in/";
    let commands: Vec<Vec<String>> = vec![
        vec!["plan", "--input", s3_in],
        vec!["lint", file.to_str().unwrap()],
        vec!["register", "--cli-input-json", file.to_str().unwrap()],
        vec!["register", "--allow", "plaintext-secret", "--cli-input-json", file.to_str().unwrap()],
        vec!["submit", "--job-queue", "q-secrets", "--job-definition", "secretive", "--input", s3_in],
        vec!["submit", "--allow", "plaintext-secret", "--job-queue", "q-secrets", "--job-definition", "secretive"],
        vec!["submit", "--job-queue", "q-secrets", "--job-definition", "secretive", "--input", s3_in, "--dry-run"],
        vec!["enqueue", "--queue-url", &queue_url, "--input", s3_in, "--output", "s3://secrets/queued/", "--dry-run"],
        vec!["enqueue", "--queue-url", &queue_url, "--input", s3_in, "--output", "s3://secrets/queued/"],
        vec!["status", "s3://secrets/queued/"],
        vec!["status", "s3://secrets/out/", "--stuck-after", "0"],
        vec!["wait", "s3://secrets/out/", "--interval", "0.1", "--timeout", "5"],
        vec!["outputs", "s3://secrets/out/"],
        vec!["cancel", "s3://secrets/queued/"],
        vec!["submit", "--job-queue", "q-missing", "--job-definition", "secretive", "--input", s3_in],
    ]
    .into_iter()
    .map(|c| c.into_iter().map(str::to_string).collect())
    .collect();
    for mut args in commands {
        // Submits need an output; the full submit goes through to moto.
        if args[0] == "submit" {
            if !args.contains(&"--input".to_string()) {
                args.extend(["--input".into(), s3_in.into()]);
            }
            args.extend(["--output".into(), "s3://secrets/out/".into()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = traced(&refs);
        assert_clean(&args.join(" "), &out, &[]);
    }
    // A local run: the children inherit the environment, their logs are checked too.
    let out = traced(&[
        "run",
        "--local",
        "--input",
        data.to_str().unwrap(),
        "--output",
        home.join("out").to_str().unwrap(),
        "--log-dir",
        logs.to_str().unwrap(),
        "--",
        batchfan_tests::bin("batchfan-worker").to_str().unwrap(),
        "wordcount",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let mut log_texts = Vec::new();
    for entry in std::fs::read_dir(&logs).unwrap() {
        log_texts.push(std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    assert!(!log_texts.is_empty(), "child logs were written");
    assert_clean("run --local", &out, &log_texts);
    // A bad credential setup is one line without the values either.
    let out = traced(&["plan", "--input", "s3://no-such-bucket-secrets/"]);
    assert_clean("plan of a missing bucket", &out, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn estimate_prices_the_plan_with_alternatives_rounding_and_a_user_price_file() {
    let moto = moto();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let data = home.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..10 {
        std::fs::write(data.join(format!("f{i}.txt")), b"alpha\n").unwrap();
    }
    let estimate = |extra: &[&str]| {
        let out = run(batchfan(moto, home)
            .args(["estimate", "--input", data.to_str().unwrap(), "--max-items-per-chunk", "1", "--format", "json"])
            .args(["--vcpu", "0.3", "--memory", "600", "--seconds-per-chunk", "360"])
            .args(extra));
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let e = estimate(&[]);
    let chosen = &e["estimate"]["chosen"];
    // 10 chunks × 6 min = 1 task-hour; Fargate bills 0.5 vCPU / 1 GB for 0.3 / 600 MiB.
    assert_eq!((chosen["billed_vcpu"].as_f64(), chosen["billed_memory_mib"].as_u64()), (Some(0.5), Some(1024)));
    assert_eq!((chosen["capacity"].as_str(), chosen["arch"].as_str()), (Some("fargate"), Some("x86_64")));
    let cost = chosen["cost"].as_f64().unwrap();
    assert!((cost - (0.5 * 0.04048 + 0.004445)).abs() < 1e-9, "{e}");
    assert_eq!(e["estimate"]["alternatives"].as_array().map(Vec::len), Some(8));
    assert_eq!(e["price_table"]["region"], "us-east-1");
    // A user's price file overrides the table.
    let mut table = e["price_table"].clone();
    table["fargate"]["x86_64"]["vcpu_hour"] = serde_json::json!(2.0 * 0.04048);
    table["fargate"]["x86_64"]["gb_hour"] = serde_json::json!(2.0 * 0.004445);
    let file = home.join("prices.json");
    std::fs::write(&file, table.to_string()).unwrap();
    let doubled = estimate(&["--prices", file.to_str().unwrap()]);
    assert!((doubled["estimate"]["chosen"]["cost"].as_f64().unwrap() - 2.0 * cost).abs() < 1e-9);
    let arm = estimate(&["--arch", "arm64", "--capacity", "fargate-spot"]);
    assert!(arm["estimate"]["chosen"]["cost"].as_f64().unwrap() < cost * 0.3);
    // submit --dry-run --estimate prices the queue's capacity (an UNMANAGED queue: EC2).
    batch_queue(moto, "q-estimate", false);
    let out = run(batchfan(moto, home).args([
        "register",
        "--allow",
        "plaintext-secret",
        "--name",
        "est",
        "--image",
        "w:1",
        "--vcpu",
        "2",
        "--memory",
        "4096",
    ]));
    assert_eq!(out.status.code(), Some(0));
    create_bucket(&moto.s3().await, "estimate").await;
    for i in 0..4 {
        moto.s3()
            .await
            .put_object()
            .bucket("estimate")
            .key(format!("in/{i}.txt"))
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"a\n"))
            .send()
            .await
            .unwrap();
    }
    let out = run(batchfan(moto, home)
        .args(["submit", "--job-queue", "q-estimate", "--job-definition", "est", "--dry-run", "--estimate", "900"])
        .args(["--input", "s3://estimate/in/", "--output", "s3://estimate/out/", "--max-items-per-chunk", "1"]));
    assert_eq!(out.status.code(), Some(0));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let chosen = &plan["estimate"]["chosen"];
    assert_eq!(chosen["capacity"], "ec2", "{plan}");
    assert_eq!(plan["estimate"]["input"]["chunks"], 4);
    assert_eq!(chosen["billed_vcpu"], 2.0);
    // 4 × 15 min = 1 task-hour of half an m6i.xlarge.
    assert!((chosen["cost"].as_f64().unwrap() - 0.5 * 0.192).abs() < 1e-9, "{plan}");
    // A real submit prints it and its run report carries it.
    let out = run(batchfan(moto, home)
        .args(["submit", "--job-queue", "q-estimate", "--job-definition", "est", "--estimate", "900"])
        .args(["--input", "s3://estimate/in/", "--output", "s3://estimate/out/", "--max-items-per-chunk", "1"])
        .args(["--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("estimate: 4 chunks x 900 s on Ec2"));
    let run_id =
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["run_id"].as_str().unwrap().to_string();
    // moto without Docker finishes every child at once (and commits nothing): wait exits 1.
    let out = run(batchfan(moto, home).args(["wait", &run_id, "--interval", "0.1"]));
    assert_eq!(out.status.code(), Some(1));
    let stored =
        batchfan_tests::download_prefix(&moto.s3().await, "estimate", &format!("out/_batchfan/runs/{run_id}/")).await;
    let report: serde_json::Value =
        serde_json::from_slice(&stored[&format!("out/_batchfan/runs/{run_id}/report.json")]).unwrap();
    assert_eq!(report["estimate"]["chosen"]["capacity"], "ec2", "{report}");
    assert_eq!(report["estimate"]["input"]["seconds_per_chunk"], 900.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn estimate_sample_runs_the_median_chunk_and_prices_its_time_scaled_to_the_mean() {
    let moto = moto();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let data = home.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Five one-item chunks of 100, 200, 300, 400 and 1000 bytes: the median is f2 (300), the
    // mean 400.
    for (i, size) in [100, 200, 300, 400, 1000].into_iter().enumerate() {
        std::fs::write(data.join(format!("f{i}.txt")), "abcdefghi\n".repeat(size / 10)).unwrap();
    }
    let snapshot =
        || batchfan_tests::files(&data).into_iter().map(|(k, p)| (k, std::fs::read(p).unwrap())).collect::<Vec<_>>();
    let before = snapshot();
    let tmp = home.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let estimate = |program: &[&str]| {
        run(batchfan(moto, home)
            .env("TMPDIR", &tmp)
            .args(["estimate", "--input", data.to_str().unwrap(), "--max-items-per-chunk", "1", "--format", "json"])
            .args([
                "--vcpu",
                "1",
                "--memory",
                "2048",
                "--sample",
                "--",
                batchfan_tests::bin("batchfan-worker").to_str().unwrap(),
                "exec",
                "--",
            ])
            .args(program))
    };
    let out = estimate(&["sh", "-c", "sleep 1; cat"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sample = &e["sample"];
    assert_eq!(
        (sample["chunk"].as_u64(), sample["bytes"].as_u64(), sample["chunk_count"].as_u64()),
        (Some(2), Some(300), Some(5)),
        "{e}"
    );
    let seconds = sample["seconds"].as_f64().unwrap();
    assert!(seconds >= 1.0, "the chunk slept 1 s: {e}");
    let per_chunk = sample["seconds_per_chunk"].as_f64().unwrap();
    assert!((per_chunk - seconds * 400.0 / 300.0).abs() < 1e-9, "{e}");
    assert_eq!(e["estimate"]["input"]["seconds_per_chunk"].as_f64(), Some(per_chunk));
    assert_eq!(e["estimate"]["input"]["chunks"], 5);
    // The sample wrote nothing a user keeps: the input is as it was, the scratch output is
    // gone, and the run notes hold no run.
    assert_eq!(snapshot(), before);
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).into_iter().flatten())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sample-"))
        .collect();
    assert!(left.is_empty(), "scratch outputs left: {left:?}");
    let out = run(batchfan(moto, home).args(["runs", "--format", "json"]));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_array().map(Vec::len), Some(0));
    // A program that fails is named with its log; a sample without a program is refused.
    let out = estimate(&["false"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--sample") && err.contains("chunk 2") && err.contains(".log"), "{err}");
    let out = run(batchfan(moto, home).args([
        "estimate",
        "--input",
        data.to_str().unwrap(),
        "--vcpu",
        "1",
        "--memory",
        "2048",
        "--sample",
    ]));
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_policy_documents_load_into_moto_iam() {
    let moto = moto();
    let home = tempfile::tempdir().unwrap();
    let out = run(batchfan(moto, home.path()).args([
        "iam-policy",
        "--input",
        "s3://in-bkt/logs/",
        "--output",
        "s3://out-bkt/counts/",
        "--queue-url",
        "https://sqs.us-east-1.amazonaws.com/123456789012/work",
        "--dead-letter-queue",
        "https://sqs.us-east-1.amazonaws.com/123456789012/work-dlq",
        "--secrets",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
        "--image",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/worker:1.2",
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let docs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Workers send a message that can never succeed to the dead-letter queue: the job role may.
    let dead_letter = docs["job_role"]["policy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "DeadLetter")
        .cloned()
        .unwrap_or_default();
    assert_eq!(dead_letter["Resource"], serde_json::json!(["arn:aws:sqs:us-east-1:123456789012:work-dlq"]));
    assert_eq!(dead_letter["Action"], serde_json::json!(["sqs:GetQueueUrl", "sqs:SendMessage"]));
    // moto's IAM validates the documents as AWS does (syntax, actions, ARNs).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let script = r#"
import json, sys, boto3
endpoint, docs = sys.argv[1], json.loads(sys.argv[2])
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
for role in ("job_role", "execution_role"):
    name = "batchfan-" + role.replace("_", "-")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(docs[role]["trust"]))
    arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(docs[role]["policy"]))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    stored = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["Document"]
    assert stored == docs[role]["policy"], (stored, docs[role]["policy"])
print("loaded")
"#;
    let out = run(Command::new(root.join(".venv-moto/bin/python"))
        .args(["-c", script, &moto.endpoint])
        .arg(docs.to_string()));
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("loaded"));
    let out = run(batchfan(moto, home.path()).args(["iam-policy", "--input", "/tmp/x", "--output", "s3://b/o/"]));
    assert_eq!(out.status.code(), Some(2));
}
