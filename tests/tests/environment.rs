//! Environment errors (issue 10, bug 7): missing credentials or region are one line saying what to
//! set, exit 2; an unreachable endpoint or a 5xx is one line, exit 75; no Rust debug structures.

use batchfan_tests::proxy::{S3Faults, start_s3_fault_proxy};
use batchfan_tests::{bin, moto, run};

/// `batchfan plan` with exactly `vars` (plus PATH and an empty HOME), nothing inherited.
fn plan_with(vars: &[(&str, &str)], input: &str) -> (Option<i32>, String) {
    let home = tempfile::tempdir().unwrap();
    let out = run(std::process::Command::new(bin("batchfan"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "2")
        .envs(vars.iter().copied())
        .args(["plan", "--input", input]));
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn one_clean_line(stderr: &str) {
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for debug in ["DispatchFailure", "ConnectorError", "{ ", "Some(", "source:"] {
        assert!(!stderr.contains(debug), "debug structure `{debug}` in: {stderr}");
    }
}

#[test]
fn missing_credentials_or_region_exit_2_saying_what_to_set() {
    let creds = [("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "y")];
    let (code, stderr) = plan_with(&[creds[0], creds[1], ("AWS_ENDPOINT_URL", "http://127.0.0.1:1")], "s3://bucket/p/");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no AWS region is set") && stderr.contains("AWS_REGION"), "{stderr}");
    one_clean_line(&stderr);
    let (code, stderr) =
        plan_with(&[("AWS_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", "http://127.0.0.1:1")], "s3://bucket/p/");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no AWS credentials were found") && stderr.contains("AWS_ACCESS_KEY_ID"), "{stderr}");
    one_clean_line(&stderr);
}

#[test]
fn an_unreachable_endpoint_exits_75_naming_it() {
    let vars = [
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "y"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
    ];
    let (code, stderr) = plan_with(&vars, "s3://bucket/p/");
    assert_eq!(code, Some(75));
    assert!(stderr.contains("Connection refused") && stderr.contains("(endpoint http://127.0.0.1:1)"), "{stderr}");
    one_clean_line(&stderr);
}

#[test]
fn a_5xx_on_a_bodiless_response_prints_its_status_name() {
    let moto = moto();
    let proxy = start_s3_fault_proxy(&moto.endpoint, S3Faults { error_percent: 100, seed: 1, ..Default::default() });
    let vars = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", proxy.endpoint.as_str()),
    ];
    // HeadBucket is the first request: a HEAD, whose error response has no body and no code.
    let (code, stderr) = plan_with(&vars, "s3://some-bucket/p/");
    assert_eq!(code, Some(75));
    assert!(
        stderr.contains("ServiceUnavailable (HTTP 503)") || stderr.contains("InternalError (HTTP 500)"),
        "{stderr}"
    );
    one_clean_line(&stderr);
}

// The parent's own retries show at RUST_LOG=debug (issue 10, bug 7), and not without it.
#[test]
fn the_parents_retries_show_at_rust_log_debug() {
    let moto = moto();
    let proxy = start_s3_fault_proxy(&moto.endpoint, S3Faults { error_percent: 100, seed: 2, ..Default::default() });
    let vars = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", proxy.endpoint.as_str()),
    ];
    let (_, quiet) = plan_with(&vars, "s3://some-bucket/p/");
    assert!(!quiet.to_lowercase().contains("retry"), "{quiet}");
    let debug = [&vars[..], &[("RUST_LOG", "debug")]].concat();
    let (code, loud) = plan_with(&debug, "s3://some-bucket/p/");
    assert_eq!(code, Some(75));
    assert!(loud.to_lowercase().contains("retry"), "{loud}");
}
