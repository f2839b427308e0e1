//! Every AWS Batch number batchfan checks, in one place.
//!
//! Values from the AWS Batch documentation and service quotas (2026). Requests are checked
//! against these before anything is sent: an emulator (moto) accepts what AWS would reject.

use crate::error::{Error, Result};

/// Fewest children of an array job (one chunk runs as a plain job).
pub const MIN_ARRAY_SIZE: usize = 2;
/// Most children of one array job.
pub const MAX_ARRAY_SIZE: usize = 10_000;
/// Most entries in `dependsOn`.
pub const MAX_DEPENDS_ON: usize = 20;
/// `retryStrategy.attempts` range.
pub const ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=10;
/// Most `evaluateOnExit` rules.
pub const MAX_EVALUATE_ON_EXIT: usize = 5;
/// Longest `onExitCode` / `onReason` / `onStatusReason` glob.
pub const MAX_EVALUATE_GLOB_CHARS: usize = 512;
/// Least `timeout.attemptDurationSeconds`.
pub const MIN_ATTEMPT_DURATION_SECONDS: u64 = 60;
/// Largest SubmitJob request payload in bytes.
pub const MAX_SUBMIT_PAYLOAD_BYTES: usize = 30 * 1024;
/// Largest job definition in bytes.
pub const MAX_JOB_DEFINITION_BYTES: usize = 24 * 1024;
/// Longest `containerOverrides` (characters, as serialized).
pub const MAX_CONTAINER_OVERRIDES_CHARS: usize = 8_192;
/// Most job ids per DescribeJobs call.
pub const MAX_DESCRIBE_JOBS_IDS: usize = 100;
/// SubmitJob calls per second per account.
pub const SUBMIT_JOB_RATE_PER_SECOND: u32 = 50;
/// Job and job definition name length range.
pub const NAME_LEN: std::ops::RangeInclusive<usize> = 1..=128;
/// `schedulingPriorityOverride` range.
pub const PRIORITY: std::ops::RangeInclusive<i32> = 0..=9999;
/// Container stop timeout range in seconds (SIGTERM to SIGKILL).
pub const STOP_TIMEOUT_SECONDS: std::ops::RangeInclusive<u32> = 2..=120;

/// Checks that a plan's chunk count fits one array job (or one plain job).
pub fn check_chunk_count(chunks: usize, limit: usize) -> Result<()> {
    if chunks > limit { Err(Error::TooManyChunks { chunks, limit }) } else { Ok(()) }
}

/// Checks a count option that must be at least 1 (and at most `max`, when given).
pub fn check_positive(field: &str, value: u64, max: Option<u64>) -> Result<()> {
    if value == 0 {
        return Err(Error::option(field, value, format!("must be at least 1{}", max_text(max))));
    }
    if let Some(max) = max.filter(|max| value > *max) {
        return Err(Error::option(field, value, format!("must be between 1 and {max}")));
    }
    Ok(())
}

fn max_text(max: Option<u64>) -> String {
    max.map(|m| format!(" and at most {m}")).unwrap_or_default()
}

/// Most byte ranges `--split-bytes` may cut objects into, as `--children` is capped at a million
/// chunks: a plan holds about 160 bytes per item while it is made (1.6 million ranges of a
/// 155 MiB input split at 100 bytes took 254 MB; `--split-bytes 1` was killed for its memory).
pub const MAX_SPLIT_RANGES: usize = 1_000_000;

/// Fargate vCPU values and the memory (MiB) each allows.
pub const FARGATE_RESOURCES: &[(f64, &[u32])] = &[
    (0.25, &[512, 1024, 2048]),
    (0.5, &[1024, 2048, 3072, 4096]),
    (1.0, &[2048, 3072, 4096, 5120, 6144, 7168, 8192]),
    (2.0, &STEPS_2),
    (4.0, &STEPS_4),
    (8.0, &STEPS_8),
    (16.0, &STEPS_16),
];
const STEPS_2: [u32; 13] = steps::<13>(4096, 1024);
const STEPS_4: [u32; 23] = steps::<23>(8192, 1024);
const STEPS_8: [u32; 12] = steps::<12>(16384, 4096);
const STEPS_16: [u32; 12] = steps::<12>(32768, 8192);

const fn steps<const N: usize>(first: u32, step: u32) -> [u32; N] {
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = first + step * i as u32;
        i += 1;
    }
    out
}

/// Checks an array size (2..=10,000).
pub fn check_array_size(size: usize) -> Result<()> {
    if !(MIN_ARRAY_SIZE..=MAX_ARRAY_SIZE).contains(&size) {
        return Err(Error::option(
            "arrayProperties.size",
            size,
            format!(
                "must be between {MIN_ARRAY_SIZE} and {MAX_ARRAY_SIZE} (one chunk runs as a plain job; more chunks need several arrays)"
            ),
        ));
    }
    Ok(())
}

/// Checks a job or job definition name: 1-128 letters, digits, hyphens, underscores; first
/// character a letter or digit.
pub fn check_name(field: &str, name: &str) -> Result<()> {
    let ok = NAME_LEN.contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(Error::option(
            field,
            format!("`{name}`"),
            "must be 1-128 letters, digits, hyphens or underscores, starting with a letter or digit",
        ));
    }
    Ok(())
}

/// Checks `retryStrategy.attempts` (1..=10).
pub fn check_attempts(attempts: i64) -> Result<()> {
    if attempts < i64::from(*ATTEMPTS.start()) || attempts > i64::from(*ATTEMPTS.end()) {
        return Err(Error::option("retryStrategy.attempts", attempts, "must be between 1 and 10"));
    }
    Ok(())
}

/// Checks `timeout.attemptDurationSeconds` (at least 60).
pub fn check_timeout(seconds: i64) -> Result<()> {
    if seconds < MIN_ATTEMPT_DURATION_SECONDS as i64 {
        return Err(Error::option(
            "timeout.attemptDurationSeconds",
            seconds,
            format!("must be at least {MIN_ATTEMPT_DURATION_SECONDS} seconds"),
        ));
    }
    Ok(())
}

/// Checks `schedulingPriorityOverride` (0..=9999).
pub fn check_priority(priority: i64) -> Result<()> {
    if priority < i64::from(*PRIORITY.start()) || priority > i64::from(*PRIORITY.end()) {
        return Err(Error::option("schedulingPriorityOverride", priority, "must be between 0 and 9999"));
    }
    Ok(())
}

/// Checks `dependsOn` (at most 20 entries).
pub fn check_depends_on(count: usize) -> Result<()> {
    if count > MAX_DEPENDS_ON {
        return Err(Error::option(
            "dependsOn",
            format!("{count} entries"),
            format!("at most {MAX_DEPENDS_ON} entries"),
        ));
    }
    Ok(())
}

/// One `evaluateOnExit` rule's fields.
#[derive(Debug, Clone, Copy)]
pub struct ExitRule<'a> {
    /// `action`: RETRY or EXIT.
    pub action: &'a str,
    /// `onExitCode` glob.
    pub on_exit_code: Option<&'a str>,
    /// `onReason` glob.
    pub on_reason: Option<&'a str>,
    /// `onStatusReason` glob.
    pub on_status_reason: Option<&'a str>,
}

/// Checks `evaluateOnExit`: at most 5 rules; RETRY or EXIT; glob characters and lengths.
pub fn check_evaluate_on_exit(rules: &[ExitRule<'_>]) -> Result<()> {
    if rules.len() > MAX_EVALUATE_ON_EXIT {
        return Err(Error::option(
            "retryStrategy.evaluateOnExit",
            format!("{} rules", rules.len()),
            format!("at most {MAX_EVALUATE_ON_EXIT} rules"),
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        if !rule.action.eq_ignore_ascii_case("RETRY") && !rule.action.eq_ignore_ascii_case("EXIT") {
            return Err(Error::option(
                &format!("retryStrategy.evaluateOnExit[{i}].action"),
                rule.action,
                "RETRY or EXIT",
            ));
        }
        let text_ok = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == ':' || c.is_whitespace();
        let fields = [
            ("onExitCode", rule.on_exit_code, &(|c: char| c.is_ascii_digit()) as &dyn Fn(char) -> bool, "digits"),
            ("onReason", rule.on_reason, &text_ok as &dyn Fn(char) -> bool, "letters, digits, `.`, `:` and whitespace"),
            (
                "onStatusReason",
                rule.on_status_reason,
                &text_ok as &dyn Fn(char) -> bool,
                "letters, digits, `.`, `:` and whitespace",
            ),
        ];
        for (name, value, allowed, described) in fields {
            let Some(value) = value else { continue };
            let field = format!("retryStrategy.evaluateOnExit[{i}].{name}");
            if value.chars().count() > MAX_EVALUATE_GLOB_CHARS {
                return Err(Error::option(
                    &field,
                    format!("{} characters", value.chars().count()),
                    format!("at most {MAX_EVALUATE_GLOB_CHARS} characters"),
                ));
            }
            let body = value.strip_suffix('*').unwrap_or(value);
            if !body.chars().all(allowed) {
                return Err(Error::option(
                    &field,
                    format!("`{value}`"),
                    format!("{described}, optionally ending in `*`"),
                ));
            }
        }
    }
    Ok(())
}

/// Checks a Fargate vCPU and memory (MiB) pair against the allowed combinations.
pub fn check_fargate_resources(vcpu: f64, memory_mib: u32) -> Result<()> {
    let Some((_, memories)) = FARGATE_RESOURCES.iter().find(|(v, _)| (*v - vcpu).abs() < 1e-9) else {
        return Err(Error::option("VCPU", vcpu, "Fargate allows 0.25, 0.5, 1, 2, 4, 8 or 16 vCPU"));
    };
    if !memories.contains(&memory_mib) {
        let (lo, hi) = (memories[0], memories[memories.len() - 1]);
        let values: Vec<String> = memories.iter().map(u32::to_string).collect();
        return Err(Error::option(
            "MEMORY",
            format!("{memory_mib} MiB with {vcpu} vCPU"),
            format!(
                "one of the {} values Fargate allows with {vcpu} vCPU, {lo} to {hi} MiB: {}",
                memories.len(),
                values.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Checks the serialized `containerOverrides` length (8,192 characters).
pub fn check_container_overrides(json: &str) -> Result<()> {
    if json.chars().count() > MAX_CONTAINER_OVERRIDES_CHARS {
        return Err(Error::option(
            "containerOverrides",
            format!("{} characters", json.chars().count()),
            format!(
                "at most {MAX_CONTAINER_OVERRIDES_CHARS} characters: pass data through the manifest, not the environment"
            ),
        ));
    }
    Ok(())
}

/// Checks a request payload size (SubmitJob: 30 KiB; job definition: 24 KiB).
pub fn check_payload(field: &str, bytes: usize, max: usize) -> Result<()> {
    if bytes > max {
        return Err(Error::option(field, format!("{bytes} bytes"), format!("at most {max} bytes")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_count() {
        assert!(check_chunk_count(10_000, MAX_ARRAY_SIZE).is_ok());
        let err = check_chunk_count(10_001, MAX_ARRAY_SIZE).unwrap_err();
        assert!(err.to_string().contains("--max-items-per-chunk"), "{err}");
    }

    #[test]
    fn array_size() {
        assert!(check_array_size(1).is_err());
        assert!(check_array_size(2).is_ok());
        assert!(check_array_size(10_000).is_ok());
        let err = check_array_size(10_001).unwrap_err().to_string();
        assert!(err.contains("arrayProperties.size = 10001") && err.contains("between 2 and 10000"), "{err}");
    }

    #[test]
    fn names() {
        assert!(check_name("jobName", "a").is_ok());
        assert!(check_name("jobName", &"a".repeat(128)).is_ok());
        for bad in ["", "-a", "_a", "a b", "a.b", &"a".repeat(129)] {
            assert!(check_name("jobName", bad).unwrap_err().to_string().contains("jobName"), "{bad}");
        }
    }

    #[test]
    fn attempts() {
        assert!(check_attempts(0).is_err() && check_attempts(11).is_err());
        assert!(check_attempts(1).is_ok() && check_attempts(10).is_ok());
        assert!(check_attempts(11).unwrap_err().to_string().contains("retryStrategy.attempts = 11"));
    }

    #[test]
    fn timeout() {
        assert!(check_timeout(59).unwrap_err().to_string().contains("at least 60"));
        assert!(check_timeout(60).is_ok());
    }

    #[test]
    fn priority() {
        assert!(check_priority(-1).is_err() && check_priority(10_000).is_err());
        assert!(check_priority(0).is_ok() && check_priority(9999).is_ok());
    }

    #[test]
    fn depends_on() {
        assert!(check_depends_on(21).unwrap_err().to_string().contains("at most 20"));
        assert!(check_depends_on(20).is_ok());
    }

    #[test]
    fn evaluate_on_exit_rules() {
        let rule = |action, code, reason, status| ExitRule {
            action,
            on_exit_code: code,
            on_reason: reason,
            on_status_reason: status,
        };
        assert!(
            check_evaluate_on_exit(&[
                rule("RETRY", Some("75"), None, Some("Host EC2*")),
                rule("exit", None, Some("*"), None)
            ])
            .is_ok()
        );
        assert!(
            check_evaluate_on_exit(&vec![rule("EXIT", None, Some("*"), None); 6])
                .unwrap_err()
                .to_string()
                .contains("at most 5")
        );
        assert!(check_evaluate_on_exit(&[rule("MAYBE", None, None, None)]).is_err());
        assert!(
            check_evaluate_on_exit(&[rule("RETRY", Some("7a"), None, None)])
                .unwrap_err()
                .to_string()
                .contains("onExitCode")
        );
        assert!(
            check_evaluate_on_exit(&[rule("RETRY", None, Some("oops!"), None)])
                .unwrap_err()
                .to_string()
                .contains("onReason")
        );
        assert!(check_evaluate_on_exit(&[rule("RETRY", None, None, Some("a*b"))]).is_err());
        let long = "a".repeat(513);
        assert!(
            check_evaluate_on_exit(&[rule("RETRY", None, None, Some(&long))]).unwrap_err().to_string().contains("512")
        );
    }

    #[test]
    fn fargate_pairs() {
        assert!(check_fargate_resources(0.25, 512).is_ok());
        assert!(check_fargate_resources(0.25, 4096).is_err());
        assert!(check_fargate_resources(1.0, 8192).is_ok());
        assert!(check_fargate_resources(4.0, 30720).is_ok());
        assert!(check_fargate_resources(8.0, 20480).is_ok());
        assert!(check_fargate_resources(8.0, 17408).is_err());
        assert!(check_fargate_resources(16.0, 122_880).is_ok());
        assert!(check_fargate_resources(3.0, 8192).unwrap_err().to_string().contains("0.25, 0.5"));
    }

    #[test]
    fn container_overrides() {
        assert!(check_container_overrides(&"x".repeat(8192)).is_ok());
        assert!(check_container_overrides(&"x".repeat(8193)).unwrap_err().to_string().contains("8192"));
    }

    #[test]
    fn payload_sizes() {
        assert!(check_payload("SubmitJob", 30 * 1024 + 1, MAX_SUBMIT_PAYLOAD_BYTES).is_err());
        assert!(check_payload("SubmitJob", 30 * 1024, MAX_SUBMIT_PAYLOAD_BYTES).is_ok());
        assert!(check_payload("job definition", 24 * 1024 + 1, MAX_JOB_DEFINITION_BYTES).is_err());
    }

    #[test]
    fn positive() {
        assert!(check_positive("--children", 0, Some(10)).unwrap_err().to_string().contains("--children = 0"));
        assert!(check_positive("--children", 11, Some(10)).is_err());
        assert!(check_positive("--children", 10, Some(10)).is_ok());
    }
}
