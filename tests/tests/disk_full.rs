//! A full disk is transient (exit 75: another host has room), and the message names the
//! location that is full. The disk is a real 64 KiB tmpfs, mounted in a user and mount namespace
//! (`unshare -rm`) around the process, so the test needs no privileges beyond user namespaces.

use std::path::Path;

use batchfan_tests::{command, files, run};

fn worker() -> String {
    batchfan_tests::bin("batchfan-worker").display().to_string()
}

/// Input whose word count output (about 240 KB) is larger than the tiny disk.
fn many_words(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let text: String = (0..20_000).map(|i| format!("unique-word-{i:06}\n")).collect();
    std::fs::write(dir.join("words.txt"), text).unwrap();
}

const MOUNT: &str = r#"mount -t tmpfs -o size=64k tmpfs "$FULL" || { echo "cannot mount a tmpfs in a user namespace" >&2; exit 99; }; shift; exec "$@""#;

fn logs_of(summary: &serde_json::Value) -> String {
    files(Path::new(summary["log_dir"].as_str().unwrap()))
        .into_iter()
        .map(|(_, p)| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

#[test]
fn a_full_spool_disk_exits_75_naming_the_spool_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, spool) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("spool"));
    many_words(&input);
    std::fs::create_dir_all(&spool).unwrap();
    // Each child runs in its own namespace with the spool folder on a 64 KiB disk.
    let out = run(command("batchfan", None)
        .env("BATCHFAN_SPOOL_DIR", &spool)
        .env("FULL", &spool)
        .args(["run", "--local", "--attempts", "1", "--format", "json", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--", "unshare", "-rm", "sh", "-c", MOUNT, "sh", "-", &worker(), "wordcount"]));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{summary}");
    assert_eq!(summary["failed"][0]["exit_code"], 75, "{summary}");
    let logs = logs_of(&summary);
    assert!(
        // The run's own spool folder under BATCHFAN_SPOOL_DIR (the parent removes it at the end).
        logs.contains(&format!("no space left on the device holding `{}/batchfan-spool-", spool.display()))
            && logs.contains("BATCHFAN_SPOOL_DIR moves it"),
        "{logs}"
    );
    assert!(!files(&output).iter().any(|(k, _)| k.starts_with("part-")), "nothing may be committed");
}

// Regression (issue 14, bug 12): an exec program that failed on a full spool disk exited 1 with
// only its own stderr; it is exit 75 naming the full spool folder, as the harness's own writes.
#[test]
fn an_exec_program_on_a_full_spool_disk_exits_75_naming_the_spool_folder() {
    // The input copied into the spool for {input}; the program's own {output} write (--stdin).
    let programs: [&[&str]; 2] = [
        &["--raw", "--", "sh", "-c", r#"cat "$1" > "$2""#, "sh", "{input}", "{output}"],
        &["--stdin", "--", "sh", "-c", r#"cat > "$1""#, "sh", "{output}"],
    ];
    for program in programs {
        let tmp = tempfile::tempdir().unwrap();
        let (input, output, spool) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("spool"));
        many_words(&input);
        std::fs::create_dir_all(&spool).unwrap();
        // Each input is about 360 KB, the spool disk 64 KiB.
        let out = run(command("batchfan", None)
            .env("BATCHFAN_SPOOL_DIR", &spool)
            .env("FULL", &spool)
            .args(["run", "--local", "--attempts", "1", "--format", "json", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .args(["--", "unshare", "-rm", "sh", "-c", MOUNT, "sh", "-", &worker(), "exec"])
            .args(program));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(1), "{summary}");
        assert_eq!(summary["failed"][0]["exit_code"], 75, "{program:?}: {summary}");
        let logs = logs_of(&summary);
        assert!(
            logs.contains(&format!("no space left on the device holding `{}/batchfan-spool-", spool.display()))
                && logs.contains("BATCHFAN_SPOOL_DIR moves it"),
            "{program:?}: {logs}"
        );
        assert!(!files(&output).iter().any(|(k, _)| !k.starts_with("_batchfan/")), "nothing may be committed");
    }
}

#[test]
fn a_full_output_disk_exits_75_naming_the_output_location() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    many_words(&input);
    std::fs::create_dir_all(&output).unwrap();
    // The whole run sees the output folder on a 64 KiB disk: the manifest fits, the part does not.
    let out = run(bare("unshare")
        .env("FULL", &output)
        .args(["-rm", "sh", "-c", MOUNT, "sh", "-"])
        .arg(batchfan_tests::bin("batchfan"))
        .args(["run", "--local", "--attempts", "1", "--format", "json", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--", &worker(), "wordcount"]));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{summary}");
    assert_eq!(summary["failed"][0]["exit_code"], 75, "{summary}");
    let logs = logs_of(&summary);
    assert!(logs.contains(&format!("no space left on the device holding `{}`", output.display())), "{logs}");
    assert!(!logs.contains(".spool`"), "the message must name the full location, not the spool file: {logs}");
}

fn bare(name: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(name);
    cmd.env_remove("AWS_BATCH_JOB_ARRAY_INDEX").env_remove("BATCHFAN_MANIFEST");
    cmd
}
