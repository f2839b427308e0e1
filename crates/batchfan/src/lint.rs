//! `batchfan lint`: AWS security and cost practice for a job definition, as rules with an id, a
//! severity and a message that says the fix. `register` and `submit` run them too; any rule is
//! silenced by its id (`--allow RULE`). A secret's value is never part of a message.

use serde::Serialize;

use crate::batch::JobDefinitionSpec;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing (a cheaper option).
    Info,
    /// Against AWS practice; the job runs.
    Warning,
    /// Leaks a secret or fails at run time: `lint` exits 1, `register` and `submit` refuse.
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// Every rule: id, severity, what it checks.
pub const RULES: &[(&str, Severity, &str)] = &[
    ("plaintext-secret", Severity::Error, "a secret in plaintext `environment`"),
    ("image-not-pinned", Severity::Warning, "an image with `:latest` or no tag"),
    ("same-role", Severity::Warning, "one role as both execution and job role"),
    ("no-job-role", Severity::Warning, "no job role"),
    ("privileged", Severity::Error, "`privileged: true`"),
    ("writable-root", Severity::Warning, "`readonlyRootFilesystem` not set"),
    ("no-log-configuration", Severity::Warning, "no `logConfiguration`"),
    ("no-timeout", Severity::Warning, "no timeout"),
    ("no-retry-strategy", Severity::Warning, "no retry strategy"),
    ("spot-without-reclaim-retry", Severity::Warning, "Spot capacity without a `Host EC2*` retry rule"),
    (
        "fargate-no-execution-role",
        Severity::Error,
        "Fargate pulling from ECR, logging or reading secrets without an execution role",
    ),
    ("ec2-fractional-vcpu", Severity::Error, "EC2 vCPUs that are not whole"),
    ("arm64-not-used", Severity::Info, "x86_64 where ARM64 (Graviton) is cheaper"),
];

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule's id (what `--allow` takes).
    pub rule: &'static str,
    /// Its severity.
    pub severity: Severity,
    /// What is wrong and how to fix it (never a secret's value).
    pub message: String,
}

/// What the checks know beyond the definition.
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// Rule ids to skip.
    pub allow: Vec<String>,
    /// The jobs run on Spot capacity (EC2 Spot or Fargate Spot).
    pub spot: bool,
    /// The submit adds the `Host EC2*` retry rule itself (`--retry-on-spot`).
    pub retry_on_spot: bool,
}

/// Checks `allow` names known rules.
pub fn check_allow(allow: &[String]) -> crate::Result<()> {
    for a in allow {
        if !RULES.iter().any(|(id, _, _)| id == a) {
            let ids: Vec<&str> = RULES.iter().map(|(id, _, _)| *id).collect();
            return Err(crate::Error::option("--allow", a, format!("one of the lint rules: {}", ids.join(", "))));
        }
    }
    Ok(())
}

fn severity(rule: &str) -> Severity {
    RULES.iter().find(|(id, _, _)| *id == rule).map_or(Severity::Warning, |r| r.1)
}

const SECRET_NAME_PARTS: [&str; 8] =
    ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY", "CREDENTIAL"];

/// True when a value looks like an AWS access key id or a PEM private key.
fn secret_value(value: &str) -> Option<&'static str> {
    let v = value.trim();
    let key_id = v.len() == 20
        && (v.starts_with("AKIA") || v.starts_with("ASIA"))
        && v.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if key_id {
        return Some("looks like an AWS access key id");
    }
    if v.contains("PRIVATE KEY-----") {
        return Some("holds a private key");
    }
    None
}

/// The findings for `spec`, errors first.
pub fn lint(spec: &JobDefinitionSpec, options: &LintOptions) -> Vec<Finding> {
    let c = &spec.container_properties;
    let mut out: Vec<Finding> = Vec::new();
    let mut add = |rule: &'static str, message: String| {
        out.push(Finding { rule, severity: severity(rule), message });
    };
    for kv in &c.environment {
        let upper = kv.name.to_ascii_uppercase();
        let by_name = SECRET_NAME_PARTS.iter().find(|p| upper.contains(*p));
        let why = match (by_name, secret_value(&kv.value)) {
            (_, Some(why)) => format!("its value {why}"),
            (Some(part), None) if !kv.value.is_empty() => format!("its name says {part}"),
            _ => continue,
        };
        add(
            "plaintext-secret",
            format!(
                "environment variable `{}` is plaintext and {why} (value not shown): anyone who can describe the job definition or the job reads it; move it to `secrets` with `valueFrom` a Secrets Manager or SSM parameter ARN, and let the execution role read that secret",
                kv.name
            ),
        );
    }
    let image = c.image.as_str();
    let last = image.rsplit('/').next().unwrap_or(image);
    if !image.contains("@sha256:") && (!last.contains(':') || last.ends_with(":latest")) {
        add(
            "image-not-pinned",
            format!(
                "image `{image}` is {}: a moving target, each child may run different code; pin a version tag, or better a digest (`IMAGE@sha256:...`)",
                if last.contains(':') { "`:latest`" } else { "untagged (that is `:latest`)" }
            ),
        );
    }
    match (&c.execution_role_arn, &c.job_role_arn) {
        (Some(e), Some(j)) if e == j => add(
            "same-role",
            format!(
                "`{e}` is both the execution role (image pull, logs, secrets: the agent's) and the job role (your code's AWS access): give each its own role so the code cannot read every secret; `batchfan iam-policy` prints both policies"
            ),
        ),
        _ => {}
    }
    if c.job_role_arn.is_none() {
        add(
            "no-job-role",
            "no `jobRoleArn`: the code gets no AWS credentials of its own (or the instance's, on EC2, shared by every job there); give it a job role allowed only its input and output prefixes".into(),
        );
    }
    if c.privileged == Some(true) {
        add(
            "privileged",
            "`privileged: true` gives the container root on its host: remove it (use `linuxParameters` devices or capabilities for what the job needs); Fargate refuses it".into(),
        );
    }
    if c.readonly_root_filesystem != Some(true) {
        add(
            "writable-root",
            "`readonlyRootFilesystem` is not true: set it, and write only to a mounted volume or the spool folder (BATCHFAN_SPOOL_DIR on a volume)".into(),
        );
    }
    if c.log_configuration.is_none() {
        add(
            "no-log-configuration",
            "no `logConfiguration`: logs go to the default group `/aws/batch/job` with its retention (never expires); set `{\"logDriver\": \"awslogs\", \"options\": {\"awslogs-group\": \"...\"}}` with a group that has a retention".into(),
        );
    }
    if spec.timeout.is_none() {
        add(
            "no-timeout",
            "no `timeout`: a hung child runs (and bills) until someone cancels it; set `\"timeout\": {\"attemptDurationSeconds\": N}` (or `submit --timeout`)".into(),
        );
    }
    let rules = spec.retry_strategy.as_ref().map(|r| r.evaluate_on_exit.as_slice()).unwrap_or_default();
    if spec.retry_strategy.is_none() {
        add(
            "no-retry-strategy",
            "no `retryStrategy`: one Spot reclaim or host failure fails the child; set `\"retryStrategy\": {\"attempts\": 3}` with `evaluateOnExit` rules (or `submit --attempts 3 --retry-on-spot`)".into(),
        );
    }
    let reclaim_rule = rules.iter().any(|r| {
        r.action.eq_ignore_ascii_case("RETRY")
            && r.on_status_reason.as_deref().is_some_and(|s| s.starts_with("Host EC2") || s == "*")
    });
    if options.spot && !options.retry_on_spot && !reclaim_rule {
        add(
            "spot-without-reclaim-retry",
            "the jobs run on Spot and no `evaluateOnExit` rule retries a reclaim: add `{\"action\": \"RETRY\", \"onStatusReason\": \"Host EC2*\"}` (or `submit --retry-on-spot`)".into(),
        );
    }
    let fargate = spec.is_fargate();
    if fargate && c.execution_role_arn.is_none() {
        let mut needs = Vec::new();
        if image.contains(".dkr.ecr.") {
            needs.push("pulls its image from ECR");
        }
        if c.log_configuration.as_ref().is_some_and(|l| l.log_driver == "awslogs") {
            needs.push("logs through awslogs");
        }
        if !c.secrets.is_empty() {
            needs.push("reads secrets");
        }
        if !needs.is_empty() {
            add(
                "fargate-no-execution-role",
                format!(
                    "a Fargate job that {} needs `executionRoleArn` (a role with AmazonECSTaskExecutionRolePolicy, and read access to the secrets): without it the task never starts",
                    needs.join(", ")
                ),
            );
        }
    }
    let vcpu = c.resource_requirements.iter().find(|r| r.kind.eq_ignore_ascii_case("VCPU"));
    if !fargate
        && let Some(v) = vcpu
        && v.value.parse::<f64>().is_ok_and(|x| x.fract() != 0.0)
    {
        add(
            "ec2-fractional-vcpu",
            format!(
                "VCPU {} on EC2: EC2 jobs take whole vCPUs (fractions are Fargate only); use a whole number, or `platformCapabilities: [\"FARGATE\"]`",
                v.value
            ),
        );
    }
    let arm = c
        .runtime_platform
        .as_ref()
        .and_then(|p| p.cpu_architecture.as_deref())
        .is_some_and(|a| a.eq_ignore_ascii_case("ARM64"));
    if fargate && !arm {
        add(
            "arm64-not-used",
            "x86_64 on Fargate: ARM64 (Graviton) costs about 20% less per vCPU and GB-hour; if the image has an arm64 build, set `runtimePlatform.cpuArchitecture` to ARM64 (`batchfan estimate --arch arm64` shows the difference)".into(),
        );
    }
    out.retain(|f| !options.allow.iter().any(|a| a == f.rule));
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

/// True when any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// The error `register` and `submit` return when the definition has lint errors.
pub fn refusal(findings: &[Finding]) -> crate::Error {
    let errors: Vec<String> = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("[{}] {}", f.rule, f.message))
        .collect();
    crate::Error::option(
        "job definition",
        "lint errors",
        format!("no lint errors: {}; fix them, or pass --allow RULE for each rule you accept", errors.join("; ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A definition every rule passes.
    fn clean() -> JobDefinitionSpec {
        JobDefinitionSpec::from_json(
            r#"{"jobDefinitionName": "wc", "platformCapabilities": ["FARGATE"],
            "containerProperties": {
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/w@sha256:0123",
                "resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "512"}],
                "environment": [{"name": "MODE", "value": "fast"}],
                "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"}],
                "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
                "jobRoleArn": "arn:aws:iam::123456789012:role/job",
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/batchfan"}},
                "readonlyRootFilesystem": true,
                "runtimePlatform": {"cpuArchitecture": "ARM64"}},
            "retryStrategy": {"attempts": 3, "evaluateOnExit": [{"action": "RETRY", "onStatusReason": "Host EC2*"}]},
            "timeout": {"attemptDurationSeconds": 600}}"#,
        )
        .unwrap()
    }

    fn rules(spec: &JobDefinitionSpec, options: &LintOptions) -> Vec<&'static str> {
        lint(spec, options).iter().map(|f| f.rule).collect()
    }

    fn only(spec: &JobDefinitionSpec, rule: &str) -> Finding {
        let found = lint(spec, &LintOptions::default());
        assert_eq!(found.iter().map(|f| f.rule).collect::<Vec<_>>(), vec![rule], "{found:?}");
        found[0].clone()
    }

    #[test]
    fn a_clean_definition_has_no_findings() {
        assert!(lint(&clean(), &LintOptions { spot: true, ..Default::default() }).is_empty());
    }

    #[test]
    fn plaintext_secret_by_name_and_by_value_never_shows_the_value() {
        for (name, value) in [
            ("DB_PASSWORD", "hunter2-value"),
            ("GITHUB_TOKEN", "ghp-value"),
            ("STRIPE_API_KEY", "sk-value"),
            ("HARMLESS", "AKIAABCDEFGHIJKLMNOP"),
            ("CERT", "-----BEGIN RSA PRIVATE KEY-----abc"),
        ] {
            let mut spec = clean();
            spec.container_properties
                .environment
                .push(crate::batch::KeyValue { name: name.into(), value: value.into() });
            let f = only(&spec, "plaintext-secret");
            assert_eq!(f.severity, Severity::Error);
            assert!(f.message.contains(name) && f.message.contains("secrets"), "{f:?}");
            assert!(!f.message.contains(value), "the value is never printed: {f:?}");
        }
    }

    #[test]
    fn image_not_pinned() {
        for image in ["worker", "worker:latest", "registry:5000/worker"] {
            let mut spec = clean();
            spec.container_properties.image = image.into();
            assert!(only(&spec, "image-not-pinned").message.contains("digest"));
        }
        let mut spec = clean();
        spec.container_properties.image = "registry:5000/worker:1.2".into();
        assert!(lint(&spec, &LintOptions::default()).is_empty());
    }

    #[test]
    fn same_role_and_no_job_role() {
        let mut spec = clean();
        spec.container_properties.job_role_arn = spec.container_properties.execution_role_arn.clone();
        assert!(only(&spec, "same-role").message.contains("own role"));
        let mut spec = clean();
        spec.container_properties.job_role_arn = None;
        only(&spec, "no-job-role");
    }

    #[test]
    fn privileged_and_writable_root() {
        let mut spec = clean();
        spec.container_properties.privileged = Some(true);
        assert_eq!(only(&spec, "privileged").severity, Severity::Error);
        let mut spec = clean();
        spec.container_properties.readonly_root_filesystem = None;
        only(&spec, "writable-root");
    }

    #[test]
    fn logs_timeout_and_retries() {
        let mut spec = clean();
        spec.container_properties.log_configuration = None;
        only(&spec, "no-log-configuration");
        let mut spec = clean();
        spec.timeout = None;
        only(&spec, "no-timeout");
        let mut spec = clean();
        spec.retry_strategy = None;
        only(&spec, "no-retry-strategy");
    }

    #[test]
    fn spot_without_reclaim_retry() {
        let mut spec = clean();
        spec.retry_strategy.as_mut().unwrap().evaluate_on_exit.clear();
        let spot = LintOptions { spot: true, ..Default::default() };
        assert_eq!(rules(&spec, &spot), vec!["spot-without-reclaim-retry"]);
        assert!(rules(&spec, &LintOptions::default()).is_empty(), "on-demand capacity needs no such rule");
        assert!(rules(&spec, &LintOptions { retry_on_spot: true, ..spot }).is_empty(), "--retry-on-spot adds it");
    }

    #[test]
    fn fargate_without_execution_role() {
        let mut spec = clean();
        spec.container_properties.execution_role_arn = None;
        let f = only(&spec, "fargate-no-execution-role");
        assert!(f.message.contains("ECR") && f.message.contains("awslogs") && f.message.contains("secrets"), "{f:?}");
    }

    #[test]
    fn ec2_fractional_vcpu() {
        let mut spec = clean();
        spec.platform_capabilities = vec!["EC2".into()];
        spec.container_properties.runtime_platform = None;
        let f = only(&spec, "ec2-fractional-vcpu");
        assert!(f.message.contains("0.25"), "{f:?}");
    }

    #[test]
    fn arm64_not_used_is_info_and_every_rule_can_be_allowed() {
        let mut spec = clean();
        spec.container_properties.runtime_platform = None;
        assert_eq!(only(&spec, "arm64-not-used").severity, Severity::Info);
        let messy = JobDefinitionSpec::from_json(
            r#"{"jobDefinitionName": "m", "platformCapabilities": ["FARGATE"], "containerProperties": {
                "image": "x.dkr.ecr.us-east-1.amazonaws.com/w", "privileged": true,
                "environment": [{"name": "TOKEN", "value": "t"}],
                "resourceRequirements": [{"type": "VCPU", "value": "0.5"}]}}"#,
        )
        .unwrap();
        let found = lint(&messy, &LintOptions { spot: true, ..Default::default() });
        assert!(has_errors(&found) && found[0].severity == Severity::Error, "errors first: {found:?}");
        let allow: Vec<String> = RULES.iter().map(|r| r.0.to_string()).collect();
        check_allow(&allow).unwrap();
        assert!(lint(&messy, &LintOptions { allow, spot: true, ..Default::default() }).is_empty());
        assert!(check_allow(&["no-such-rule".into()]).unwrap_err().to_string().contains("plaintext-secret"));
    }
}
