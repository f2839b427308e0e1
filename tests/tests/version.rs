//! `--version` of both binaries names the version and the commit, the worker logs it when it
//! starts, and the completion marker records it (issue 19).

use batchfan_tests::{command, files, run, write_dataset};

/// `NAME VERSION (commit C)` → (VERSION, C), checking the shape.
fn version_of(name: &str) -> (String, String) {
    let out = run(command(name, None).arg("--version"));
    assert_eq!(out.status.code(), Some(0), "{name} --version");
    let line = String::from_utf8(out.stdout).unwrap();
    let rest = line.trim().strip_prefix(&format!("{name} ")).unwrap_or_else(|| panic!("{line:?}"));
    let (version, commit) = rest.split_once(" (commit ").unwrap_or_else(|| panic!("{line:?}"));
    let commit = commit.strip_suffix(')').unwrap_or_else(|| panic!("{line:?}"));
    assert_eq!(version, env!("CARGO_PKG_VERSION"), "{line:?}");
    assert!(commit == "unknown" || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())), "{line:?}");
    (version.to_string(), commit.to_string())
}

#[test]
fn both_binaries_print_version_and_commit_and_the_marker_records_the_workers() {
    let cli = version_of("batchfan");
    let worker = version_of("batchfan-worker");
    assert_eq!(cli, worker, "built from one tree");

    let input = tempfile::tempdir().unwrap();
    write_dataset(input.path(), 41);
    let output = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let out = run(command("batchfan", None)
        .args(["run", "--local", "--children", "2", "--input"])
        .arg(input.path())
        .arg("--output")
        .arg(output.path())
        .arg("--log-dir")
        .arg(logs.path())
        .arg("--")
        .arg(batchfan_tests::bin("batchfan-worker"))
        .arg("wordcount"));
    assert_eq!(out.status.code(), Some(0));
    let expected = format!("{} (commit {})", worker.0, worker.1);
    let markers: Vec<_> = files(output.path()).into_iter().filter(|(k, _)| k.contains("/done/")).collect();
    assert_eq!(markers.len(), 2, "{markers:?}");
    for (key, path) in markers {
        let marker: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(marker["worker_version"], expected, "{key}");
    }
    // Each child's log starts with the version.
    for (key, path) in files(logs.path()) {
        let log = std::fs::read_to_string(path).unwrap();
        let first = log.lines().next().unwrap_or_default();
        assert!(first.contains("batchfan worker starting") && first.contains(&expected), "{key}: {first}");
    }
}
