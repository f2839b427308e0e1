//! Sets `BATCHFAN_COMMIT` for `--version` and the completion marker: the `BATCHFAN_COMMIT`
//! variable when given (a Docker build has no .git), else `git rev-parse`, else `unknown`.
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=BATCHFAN_COMMIT");
    let given = std::env::var("BATCHFAN_COMMIT").ok().filter(|c| !c.is_empty() && c != "unknown");
    let commit = given.or_else(|| git(&["rev-parse", "--short=12", "HEAD"])).unwrap_or_else(|| "unknown".into());
    // A new commit runs this again: HEAD, and the branch it names.
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]).and_then(|r| git(&["rev-parse", "--git-path", &r])) {
        println!("cargo:rerun-if-changed={branch}");
    }
    println!("cargo:rustc-env=BATCHFAN_COMMIT={commit}");
}
