//! A SIGTERM in a worker's first milliseconds (Spot, scale-in, a local run stopped at once) is
//! handled like any other: the worker drains and exits with its own code and a log line, never
//! killed by signal 15 before its handler exists (issue 14, item 13: 7 of 32 early signals were).
//! Every batchfan parent (the local runner, the worker pool) starts its workers with SIGTERM
//! blocked, which survives exec; the worker unblocks it once its handler is installed. The test
//! starts the worker the same way and signals it from the first microsecond on.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use batchfan_tests::{command, manifest_for};

#[test]
fn a_sigterm_in_a_workers_first_milliseconds_starts_a_drain_not_a_death() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.txt"), b"one line\n").unwrap();
    let manifest = manifest_for(&input, &output, 100);
    let mut fatal = Vec::new();
    // Delays from 0 to 4.65 ms after spawn: the worker's start-up (loader, runtime, logging)
    // lies in this window on a debug build.
    for step in 0..32u64 {
        let delay = Duration::from_micros(step * 150);
        let mut worker = command("batchfan-worker", None);
        // SAFETY: between fork and exec, only async-signal-safe calls on a set of our own.
        unsafe {
            worker.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                Ok(())
            })
        };
        let child = worker
            .args(["exec", "--", "sleep", "5"])
            .env("BATCHFAN_MANIFEST", &manifest)
            .env("AWS_BATCH_JOB_ARRAY_INDEX", "0")
            .env("BATCHFAN_STOP_TIMEOUT", "0.2")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        // SAFETY: kill(2) of our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.signal().is_some() {
            fatal.push(format!("{delay:?}: killed by signal {:?}, stderr {stderr:?}", out.status.signal()));
            continue;
        }
        assert_eq!(out.status.code(), Some(143), "{delay:?}: {stderr}");
        assert!(stderr.contains("SIGTERM"), "{delay:?}: the drain is logged: {stderr}");
    }
    assert!(fatal.is_empty(), "early SIGTERMs killed the worker:\n{}", fatal.join("\n"));
    assert!(!has_part(&output), "nothing committed");
}

fn has_part(output: &Path) -> bool {
    std::fs::read_dir(output)
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().contains("a.txt")))
        .unwrap_or(false)
}
