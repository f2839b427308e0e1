//! Spot interruptions: SIGTERM at 20 random points of a multi-chunk run (some land in a drain
//! that finishes, some past the deadline, some before a handler starts or during a commit), then
//! a re-run of the chunks without a marker: the output equals a clean run's, byte for byte.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use batchfan_tests::{Rng, children_of, command, files, hold_output, write_dataset};

fn fault_worker() -> String {
    batchfan_tests::bin("fault_worker").display().to_string()
}

fn local_run(input: &Path, output: &Path, attempts: &str) -> Command {
    let mut cmd = command("batchfan", None);
    cmd.args([
        "run",
        "--local",
        "--attempts",
        attempts,
        "--parallel",
        "2",
        "--max-items-per-chunk",
        "1",
        "--format",
        "json",
    ])
    .arg("--input")
    .arg(input)
    .arg("--output")
    .arg(output)
    .args(["--", &fault_worker()]);
    cmd
}

/// The committed outputs (`part-*`) of an output folder, by key.
fn parts(output: &Path) -> BTreeMap<String, Vec<u8>> {
    files(output)
        .into_iter()
        .filter(|(k, _)| k.starts_with("part-"))
        .map(|(k, p)| (k, std::fs::read(p).unwrap()))
        .collect()
}

#[test]
fn sigterm_at_20_random_points_then_a_rerun_equals_a_clean_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, clean_out, out) = (tmp.path().join("in"), tmp.path().join("clean"), tmp.path().join("out"));
    write_dataset(&input, 77);
    let clean = local_run(&input, &clean_out, "1").output().unwrap();
    assert_eq!(clean.status.code(), Some(0));
    let clean_parts = parts(&clean_out);
    assert!(clean_parts.len() >= 6, "{}", clean_parts.len());

    // A fixed schedule: the same run on every machine.
    let mut rng = Rng::new(20_261_130);
    // Each chunk pauses 400 ms after its first item; a SIGTERM then drains for at most 150 ms,
    // so early signals abort the chunk (143) and late ones let it commit. Three attempts per
    // chunk leave children to signal until all 20 signals have landed.
    let mut parent = local_run(&input, &out, "3")
        .env("FAULT_SLEEP_MS", "400")
        .env("BATCHFAN_STOP_TIMEOUT", "0.15")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent < 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(rng.below(100)));
        let kids = children_of(parent.id());
        if kids.is_empty() {
            if parent.try_wait().unwrap().is_some() {
                break;
            }
            continue;
        }
        let pid = kids[rng.below(kids.len() as u64) as usize];
        if Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success() {
            sent += 1;
        }
    }
    let first = parent.wait_with_output().unwrap();
    // On a busy machine the run may end before all 20 land; the outputs must be exact anyway.
    assert!(sent >= 5, "only {sent} signals landed before the run ended");
    let summary: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let run_id = summary["run_id"].as_str().unwrap();
    let manifest = summary["manifest"].as_str().unwrap();
    let total = summary["counts"]["succeeded"].as_u64().unwrap() + summary["counts"]["failed"].as_u64().unwrap();
    assert_eq!(total as usize, clean_parts.len());
    eprintln!(
        "{sent} SIGTERMs: {} chunks committed, {} failed",
        summary["counts"]["succeeded"], summary["counts"]["failed"]
    );

    // The re-run: every chunk without a completion marker runs again, as an AWS Batch retry would,
    // while the run holds its output.
    hold_output(&out, run_id);
    let done = out.join(format!("_batchfan/runs/{run_id}/done"));
    for index in 0..total {
        if done.join(format!("{index:05}.json")).exists() {
            continue;
        }
        let status = Command::new(fault_worker())
            .env("BATCHFAN_MANIFEST", manifest)
            .env("AWS_BATCH_JOB_ARRAY_INDEX", index.to_string())
            .env("AWS_BATCH_JOB_ATTEMPT", "2")
            .env_remove("AWS_BATCH_JOB_ID")
            .status()
            .unwrap();
        assert!(status.success(), "re-run of chunk {index}");
    }
    assert_eq!(parts(&out), clean_parts, "the interrupted and re-run output differs from a clean run");
    let names: Vec<String> = files(&out).into_iter().map(|(k, _)| k).collect();
    assert_eq!(names.iter().filter(|k| k.contains("/done/")).count(), clean_parts.len());
    assert!(!names.iter().any(|k| k.contains(".batchfan-tmp-")), "{names:?}");
}
