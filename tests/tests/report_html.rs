//! The HTML report in a real browser: a local run with a failed chunk (whose input holds a key
//! with a `<script>` in it) writes report.html beside report.json; headless Chromium renders it,
//! its screenshot is not blank, its DOM holds the run's counts and the failed chunk's keys, and
//! the `<script>` in the key did not run. Where no Chromium can be found the test says so in one
//! line and returns.
//!
//! With BATCHFAN_REPORT_SCREENSHOT=PATH the screenshot is copied there
//! (scripts/report-screenshot.sh keeps docs/report.png).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batchfan_tests::{bin, command, run};

/// A key whose script, if it ran, would change the page's title and add an element.
const SCRIPT: &str =
    "<script>document.title='pwned';document.body.appendChild(document.createElement('blink')).id='pwned'</script>";

/// Chromium from `BATCHFAN_CHROMIUM`, else the first of Debian's names on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BATCHFAN_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Runs headless Chromium with `args` on `page`; returns its stdout (through a file: a DOM
/// larger than a pipe's buffer would block it). Killed (by its pid) after a generous 180 s,
/// which fails the test.
fn headless(browser: &Path, profile: &Path, args: &[&str], page: &Path) -> String {
    let stdout_path = profile.with_extension("stdout");
    let stderr_path = profile.with_extension("stderr");
    let mut child = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll chromium") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(status.success(), "chromium {args:?}: {stderr}");
    std::fs::read_to_string(&stdout_path).expect("chromium stdout")
}

/// Distinct colours, and the share of pixels that are not white, of a PNG.
fn pixels(png_path: &Path) -> (usize, f64, (u32, u32)) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png_path).expect("open png")));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("png size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let channels = info.color_type.samples();
    let data = &buf[..info.buffer_size()];
    let mut colours = std::collections::HashSet::new();
    let mut not_white = 0usize;
    let pixels: Vec<&[u8]> = data.chunks(channels).collect();
    for px in &pixels {
        let rgb = [px[0], px[channels.min(3) - 2], px[channels.min(3) - 1]];
        colours.insert(rgb);
        if rgb.iter().any(|c| *c < 245) {
            not_white += 1;
        }
    }
    (colours.len(), not_white as f64 / pixels.len().max(1) as f64, (info.width, info.height))
}

#[test]
fn the_report_of_a_run_with_failures_renders_in_chromium_and_escapes_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    // Keys sort `<script>...` first: chunk 0 holds it and `a.txt`, and fails.
    let script_key = format!("{SCRIPT}.txt");
    let script_path = input.join(&script_key);
    std::fs::create_dir_all(script_path.parent().unwrap()).unwrap();
    std::fs::write(&script_path, "x y\n").unwrap();
    for name in ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"] {
        std::fs::write(input.join(name), format!("{name} words\n")).unwrap();
    }
    let out = run(command("batchfan", None)
        .args(["run", "--local", "--max-items-per-chunk", "2", "--attempts", "2", "--format", "json", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .arg("--log-dir")
        .arg(tmp.path().join("logs"))
        .arg("--")
        .arg(bin("fault_worker"))
        .env("FAULT_FAIL_CHUNK", "0"));
    assert_eq!(out.status.code(), Some(1), "one chunk fails");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = summary["run_id"].as_str().unwrap().to_string();
    let beside = output.join(format!("_batchfan/runs/{run_id}/report.html"));
    let written = std::fs::read_to_string(&beside).expect("report.html beside report.json");
    assert!(output.join(format!("_batchfan/runs/{run_id}/report.json")).is_file());
    assert!(!written.contains("<script"), "no script element in the page");

    // `batchfan report RUN --html FILE` writes the same page wherever asked.
    let asked = tmp.path().join("asked/report.html");
    let out = run(command("batchfan", None).arg("report").arg(&output).arg("--html").arg(&asked));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 failed"));
    let page = std::fs::read_to_string(&asked).expect("--html wrote the page");
    assert!(page.contains("id=\"count-failed\">1<"), "the asked page has the counts");

    let Some(browser) = chromium() else {
        println!("skipped: no chromium on PATH (apt-get install chromium, or set BATCHFAN_CHROMIUM)");
        return;
    };
    let profile = tmp.path().join("chromium-profile");
    let dom = headless(&browser, &profile, &["--dump-dom", "--virtual-time-budget=2000"], &beside);
    assert!(dom.contains(&format!("<title>batchfan report {run_id}</title>")), "title unchanged: {dom:.400}");
    assert!(!dom.contains("pwned'") || dom.contains("&lt;script&gt;"), "the key shows as text");
    assert!(!dom.contains("id=\"pwned\""), "the key's script added no element");
    assert!(!dom.contains("<script"), "no script element in the DOM");
    assert!(dom.contains("&lt;script&gt;document.title='pwned'"), "the key is on the page as text");
    for (id, n) in [("count-ok", 2), ("count-failed", 1), ("count-pending", 0), ("count-total", 3)] {
        assert!(dom.contains(&format!("id=\"{id}\">{n}<")), "{id} = {n} in the DOM");
    }
    assert!(dom.contains("<code class=\"key\">a.txt</code>"), "the failed chunk's other key is listed");
    assert!(dom.contains("injected poison in chunk 0"), "the failure's reason");
    assert!(dom.contains(&format!("batchfan redrive {run_id}")));
    assert!(dom.contains(&format!("batchfan logs {run_id} --chunk 0")));
    assert!(dom.matches("<svg").count() >= 5, "timeline, running and three histograms drawn");

    let shot = tmp.path().join("report.png");
    let shot_arg = format!("--screenshot={}", shot.display());
    headless(&browser, &profile, &[&shot_arg, "--window-size=1400,2000", "--hide-scrollbars"], &beside);
    let (colours, inked, size) = pixels(&shot);
    assert_eq!(size, (1400, 2000), "the screenshot has the window's size");
    assert!(colours >= 16, "a blank screenshot has few colours: {colours}");
    assert!(inked > 0.02, "a blank screenshot is white: {:.1}% inked", inked * 100.0);
    if let Some(keep) = std::env::var_os("BATCHFAN_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, &keep).expect("copy the screenshot");
    }
}
