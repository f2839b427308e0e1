//! The `aws batch register-job-definition --cli-input-json` shape and its limit checks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::limits;

/// A name/value pair (`environment`, `parameters`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValue {
    /// Name.
    pub name: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

/// A secret: `name` and `valueFrom` (a Secrets Manager or SSM parameter ARN).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretSpec {
    /// Environment variable name.
    pub name: String,
    /// ARN of the secret.
    pub value_from: String,
}

/// `resourceRequirements` entry: `type` VCPU, MEMORY or GPU.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRequirementSpec {
    /// `VCPU`, `MEMORY` (MiB) or `GPU`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The amount, as text (`"0.25"`, `"2048"`).
    pub value: String,
}

/// `logConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogConfigurationSpec {
    /// e.g. `awslogs`.
    pub log_driver: String,
    /// Driver options.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Secrets for the driver.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_options: Vec<SecretSpec>,
}

/// `linuxParameters` (the fields that apply to Fargate and EC2 alike).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinuxParametersSpec {
    /// Run an init process (reaps zombies, forwards signals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_process_enabled: Option<bool>,
    /// `/dev/shm` size in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_memory_size: Option<i32>,
    /// Swap in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_swap: Option<i32>,
    /// Swappiness 0-100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<i32>,
}

/// `ephemeralStorage` (Fargate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EphemeralStorageSpec {
    /// Size in GiB (21-200).
    #[serde(rename = "sizeInGiB")]
    pub size_in_gib: i32,
}

/// `runtimePlatform` (Fargate).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimePlatformSpec {
    /// e.g. `LINUX`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system_family: Option<String>,
    /// `X86_64` or `ARM64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_architecture: Option<String>,
}

/// `networkConfiguration` (Fargate).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkConfigurationSpec {
    /// `ENABLED` or `DISABLED`.
    pub assign_public_ip: String,
}

/// `fargatePlatformConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FargatePlatformSpec {
    /// e.g. `LATEST` or `1.4.0`.
    pub platform_version: String,
}

/// `containerProperties`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSpec {
    /// The image (pin a tag or digest; `:latest` is a moving target).
    pub image: String,
    /// The command (the worker program and its arguments).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// VCPU, MEMORY, GPU.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_requirements: Vec<ResourceRequirementSpec>,
    /// Environment variables (never credentials: use `secrets`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValue>,
    /// Secrets exposed as environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretSpec>,
    /// Role the agent uses (pull image, write logs, read secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// Role the code uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_role_arn: Option<String>,
    /// Log driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfigurationSpec>,
    /// Read-only root filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    /// Linux parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<LinuxParametersSpec>,
    /// Fargate ephemeral storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorageSpec>,
    /// Fargate runtime platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<RuntimePlatformSpec>,
    /// Fargate networking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<NetworkConfigurationSpec>,
    /// Fargate platform version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fargate_platform_configuration: Option<FargatePlatformSpec>,
    /// User to run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Privileged mode (EC2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Volumes: host paths (EC2) or EFS file systems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeSpec>,
    /// Where volumes are mounted in the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<MountPointSpec>,
    /// Resource limits (EC2 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<UlimitSpec>,
}

/// One `volumes` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeSpec {
    /// The name mount points refer to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A path on the host (EC2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostSpec>,
    /// An EFS file system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efs_volume_configuration: Option<EfsVolumeSpec>,
}

/// `volumes[].host`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostSpec {
    /// The path on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_path: Option<String>,
}

/// `volumes[].efsVolumeConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EfsVolumeSpec {
    /// The file system.
    pub file_system_id: String,
    /// The directory to mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    /// `ENABLED` or `DISABLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit_encryption: Option<String>,
    /// The port for encrypted traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit_encryption_port: Option<i32>,
    /// Access point and IAM authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_config: Option<EfsAuthorizationSpec>,
}

/// `efsVolumeConfiguration.authorizationConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EfsAuthorizationSpec {
    /// The access point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_point_id: Option<String>,
    /// `ENABLED` or `DISABLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<String>,
}

/// One `mountPoints` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MountPointSpec {
    /// Where in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    /// Read-only mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// The volume's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_volume: Option<String>,
}

/// One `ulimits` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UlimitSpec {
    /// E.g. `nofile`.
    pub name: String,
    /// Soft limit.
    pub soft_limit: i32,
    /// Hard limit.
    pub hard_limit: i32,
}

/// One `evaluateOnExit` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSpec {
    /// `RETRY` or `EXIT`.
    pub action: String,
    /// Exit code glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit_code: Option<String>,
    /// Container reason glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_reason: Option<String>,
    /// Job status reason glob (`Host EC2*` for Spot reclaim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_status_reason: Option<String>,
}

/// `retryStrategy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryStrategySpec {
    /// Attempts 1-10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// Up to 5 rules; without a matching rule a failed job is retried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evaluate_on_exit: Vec<RuleSpec>,
}

impl RetryStrategySpec {
    pub(crate) fn check(&self) -> Result<()> {
        if let Some(attempts) = self.attempts {
            limits::check_attempts(attempts.into())?;
        }
        let rules: Vec<limits::ExitRule<'_>> = self
            .evaluate_on_exit
            .iter()
            .map(|r| limits::ExitRule {
                action: &r.action,
                on_exit_code: r.on_exit_code.as_deref(),
                on_reason: r.on_reason.as_deref(),
                on_status_reason: r.on_status_reason.as_deref(),
            })
            .collect();
        limits::check_evaluate_on_exit(&rules)
    }
}

/// `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeoutSpec {
    /// Seconds per attempt, at least 60.
    pub attempt_duration_seconds: i32,
}

/// The input of `aws batch register-job-definition --cli-input-json` (container jobs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobDefinitionSpec {
    /// The name.
    pub job_definition_name: String,
    /// `container` (multinode, EKS and ECS-properties definitions are not supported).
    #[serde(rename = "type", default = "container_type")]
    pub job_type: String,
    /// Default parameter substitutions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// Scheduling priority (fair-share queues).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_priority: Option<i32>,
    /// The container.
    pub container_properties: ContainerSpec,
    /// Retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategySpec>,
    /// Propagate tags to the ECS tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<bool>,
    /// Per-attempt timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutSpec>,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// `EC2` or `FARGATE`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platform_capabilities: Vec<String>,
}

/// Drops what a `--generate-cli-skeleton` leaves unfilled, recursively: empty strings, arrays,
/// objects and nulls (the skeleton's `"KeyName": ""` placeholders among them), and zero legacy
/// `vcpus` / `memory`.
fn prune_empty(value: &mut serde_json::Value) {
    use serde_json::Value;
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    match value {
        Value::Object(map) => {
            for v in map.values_mut() {
                prune_empty(v);
            }
            map.retain(|k, v| !empty(v) && !((k == "vcpus" || k == "memory") && v.as_i64() == Some(0)));
        }
        Value::Array(items) => {
            for v in items.iter_mut() {
                prune_empty(v);
            }
            items.retain(|v| !empty(v));
        }
        _ => {}
    }
}

/// True when a skeleton section holds something a user wrote: a string other than an enum word
/// the skeleton fills in (`DISABLED`, `RETRY`, a log driver), or a number other than 0.
fn filled(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    // Lowercase enum values the skeleton cycles through (log drivers, FireLens types).
    const SKELETON_WORDS: [&str; 10] = [
        "awslogs",
        "fluentd",
        "gelf",
        "json-file",
        "journald",
        "logentries",
        "syslog",
        "splunk",
        "awsfirelens",
        "fluentbit",
    ];
    match value {
        Value::String(s) => {
            let enum_word = s.bytes().any(|b| b.is_ascii_uppercase())
                && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            !(s.is_empty() || enum_word || SKELETON_WORDS.contains(&s.as_str()))
        }
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(items) => items.iter().any(filled),
        Value::Object(map) => map.values().any(filled),
        Value::Bool(_) | Value::Null => false,
    }
}

/// In a `--generate-cli-skeleton` document, drops what the skeleton put there and the user did
/// not fill: sections (objects, lists of objects) without a filled value, `true` flags (the
/// skeleton's placeholder for every flag) and zero numbers. Names what it dropped.
fn drop_placeholders(value: &mut serde_json::Value, path: &str, dropped: &mut Vec<String>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                let Some(v) = map.get_mut(&key) else { continue };
                let placeholder = match v {
                    Value::Object(_) => !filled(v),
                    Value::Array(items) if items.iter().any(Value::is_object) => {
                        items.retain(filled);
                        items.is_empty()
                    }
                    Value::Bool(true) => true,
                    Value::Number(n) => n.as_f64() == Some(0.0),
                    _ => false,
                };
                if placeholder {
                    map.remove(&key);
                    dropped.push(here);
                } else {
                    drop_placeholders(v, &here, dropped);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                drop_placeholders(v, &format!("{path}[{i}]"), dropped);
            }
        }
        _ => {}
    }
}

fn container_type() -> String {
    "container".into()
}

/// The short form: `--name --image --vcpu --memory [--fargate] [--job-role] [--execution-role]`.
#[derive(Debug, Clone, Default)]
pub struct ShortForm {
    /// Job definition name.
    pub name: String,
    /// Image.
    pub image: String,
    /// vCPUs (Fargate: 0.25, 0.5, 1, 2, 4, 8, 16).
    pub vcpu: f64,
    /// Memory in MiB.
    pub memory: u32,
    /// Fargate instead of EC2.
    pub fargate: bool,
    /// Job role ARN.
    pub job_role: Option<String>,
    /// Execution role ARN (required by Fargate).
    pub execution_role: Option<String>,
    /// The command (default: the image's entry point).
    pub command: Vec<String>,
}

impl ShortForm {
    /// The full job definition.
    pub fn to_spec(&self) -> JobDefinitionSpec {
        let vcpu = if self.vcpu.fract() == 0.0 { format!("{}", self.vcpu as u64) } else { format!("{}", self.vcpu) };
        JobDefinitionSpec {
            job_definition_name: self.name.clone(),
            job_type: container_type(),
            container_properties: ContainerSpec {
                image: self.image.clone(),
                command: self.command.clone(),
                resource_requirements: vec![
                    ResourceRequirementSpec { kind: "VCPU".into(), value: vcpu },
                    ResourceRequirementSpec { kind: "MEMORY".into(), value: self.memory.to_string() },
                ],
                job_role_arn: self.job_role.clone(),
                execution_role_arn: self.execution_role.clone(),
                network_configuration: self
                    .fargate
                    .then(|| NetworkConfigurationSpec { assign_public_ip: "DISABLED".into() }),
                ..Default::default()
            },
            platform_capabilities: if self.fargate { vec!["FARGATE".into()] } else { vec!["EC2".into()] },
            ..Default::default()
        }
    }
}

impl JobDefinitionSpec {
    /// Parses the `--cli-input-json` document.
    pub fn from_json(json: &str) -> Result<JobDefinitionSpec> {
        Ok(Self::from_pasted_json(json)?.0)
    }

    /// Reads what users paste as a definition, with notes on what was left out:
    /// `register-job-definition --cli-input-json` input, a filled-in `--generate-cli-skeleton`
    /// (its empty placeholders are dropped), or `describe-job-definitions` output (one
    /// definition, or the newest ACTIVE revision; read-only fields such as `revision` are
    /// ignored). Legacy `vcpus` / `memory` are refused with the `resourceRequirements` to write.
    pub fn from_pasted_json(json: &str) -> Result<(JobDefinitionSpec, Vec<String>)> {
        let bad = |reason: String| Error::option("--cli-input-json", "the document", reason);
        let mut value: serde_json::Value = serde_json::from_str(json).map_err(|e| bad(format!("is not JSON: {e}")))?;
        let mut notes = Vec::new();
        if let Some(list) = value.get("jobDefinitions").and_then(|v| v.as_array()).cloned() {
            let newest = list
                .iter()
                .filter(|d| d.get("status").and_then(|s| s.as_str()).is_none_or(|s| s == "ACTIVE"))
                .max_by_key(|d| d.get("revision").and_then(|r| r.as_i64()).unwrap_or(0))
                .cloned()
                .ok_or_else(|| bad("holds no ACTIVE job definition in `jobDefinitions`".into()))?;
            if list.len() > 1 {
                notes.push(format!(
                    "took the newest ACTIVE revision ({}) of the {} definitions in `jobDefinitions`",
                    newest.get("revision").and_then(|r| r.as_i64()).unwrap_or(0),
                    list.len()
                ));
            }
            value = newest;
        }
        prune_empty(&mut value);
        let skeleton_sections = ["nodeProperties", "eksProperties", "ecsProperties", "consumableResourceProperties"];
        if skeleton_sections.iter().any(|k| value.get(*k).is_some()) {
            let mut dropped = Vec::new();
            drop_placeholders(&mut value, "", &mut dropped);
            if !dropped.is_empty() {
                notes.push(format!(
                    "read as a --generate-cli-skeleton: dropped the unfilled placeholders {} (set them again if you meant them)",
                    dropped.join(", ")
                ));
            }
        }
        if let Some(map) = value.as_object_mut() {
            let read_only = ["jobDefinitionArn", "revision", "status", "containerOrchestrationType"];
            let dropped: Vec<&str> = read_only.into_iter().filter(|k| map.remove(*k).is_some()).collect();
            if !dropped.is_empty() {
                notes.push(format!("ignored read-only fields of describe output: {}", dropped.join(", ")));
            }
        }
        if let Some(container) = value.get("containerProperties") {
            for (legacy, kind) in [("vcpus", "VCPU"), ("memory", "MEMORY")] {
                if let Some(v) = container.get(legacy) {
                    return Err(Error::option(
                        &format!("containerProperties.{legacy}"),
                        v,
                        format!(
                            "the legacy form: write it in resourceRequirements instead, e.g. \"resourceRequirements\": [{{\"type\": \"{kind}\", \"value\": \"{v}\"}}]"
                        ),
                    ));
                }
            }
        }
        let spec =
            serde_json::from_value(value).map_err(|e| bad(format!("is not a register-job-definition input: {e}")))?;
        Ok((spec, notes))
    }

    /// True when the definition runs on Fargate.
    pub fn is_fargate(&self) -> bool {
        self.platform_capabilities.iter().any(|p| p.eq_ignore_ascii_case("FARGATE"))
    }

    /// Checks every limit: name, type, attempts, rules, timeout, Fargate resources, size.
    pub fn check(&self) -> Result<()> {
        limits::check_name("jobDefinitionName", &self.job_definition_name)?;
        if self.job_type != "container" {
            return Err(Error::option("type", &self.job_type, "only `container` job definitions are supported"));
        }
        if self.container_properties.image.trim().is_empty() {
            return Err(Error::option("containerProperties.image", "\"\"", "an image is required"));
        }
        for p in &self.platform_capabilities {
            if !p.eq_ignore_ascii_case("EC2") && !p.eq_ignore_ascii_case("FARGATE") {
                return Err(Error::option("platformCapabilities", p, "EC2 or FARGATE"));
            }
        }
        if let Some(retry) = &self.retry_strategy {
            retry.check()?;
        }
        if let Some(timeout) = self.timeout {
            limits::check_timeout(timeout.attempt_duration_seconds.into())?;
        }
        if let Some(priority) = self.scheduling_priority {
            limits::check_priority(priority.into())?;
        }
        let (vcpu, memory) = resources(&self.container_properties.resource_requirements)?;
        if self.is_fargate() {
            let vcpu =
                vcpu.ok_or_else(|| Error::option("resourceRequirements", "no VCPU", "Fargate needs VCPU and MEMORY"))?;
            let memory = memory
                .ok_or_else(|| Error::option("resourceRequirements", "no MEMORY", "Fargate needs VCPU and MEMORY"))?;
            limits::check_fargate_resources(vcpu, memory)?;
        }
        let size = serde_json::to_vec(self).map_or(0, |v| v.len());
        limits::check_payload("job definition", size, limits::MAX_JOB_DEFINITION_BYTES)
    }
}

/// `(VCPU, MEMORY MiB)` from resource requirements.
pub(crate) fn resources(reqs: &[ResourceRequirementSpec]) -> Result<(Option<f64>, Option<u32>)> {
    let mut vcpu = None;
    let mut memory = None;
    for r in reqs {
        match r.kind.to_ascii_uppercase().as_str() {
            "VCPU" => {
                vcpu = Some(r.value.parse::<f64>().map_err(|_| Error::option("VCPU", &r.value, "a number of vCPUs"))?)
            }
            "MEMORY" => {
                memory = Some(
                    r.value.parse::<u32>().map_err(|_| Error::option("MEMORY", &r.value, "a whole number of MiB"))?,
                )
            }
            "GPU" => {}
            other => return Err(Error::option("resourceRequirements.type", other, "VCPU, MEMORY or GPU")),
        }
    }
    Ok((vcpu, memory))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) const CLI_JSON: &str = r#"{
        "jobDefinitionName": "wordcount",
        "type": "container",
        "platformCapabilities": ["FARGATE"],
        "containerProperties": {
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/batchfan-worker:0.1.0",
            "command": ["batchfan-worker", "wordcount"],
            "resourceRequirements": [{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "512"}],
            "environment": [{"name": "BATCHFAN_LOG_FORMAT", "value": "json"}],
            "secrets": [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/token"}],
            "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
            "jobRoleArn": "arn:aws:iam::123456789012:role/job",
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/batchfan"}},
            "readonlyRootFilesystem": true,
            "linuxParameters": {"initProcessEnabled": true},
            "ephemeralStorage": {"sizeInGiB": 30},
            "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64"},
            "networkConfiguration": {"assignPublicIp": "DISABLED"},
            "fargatePlatformConfiguration": {"platformVersion": "LATEST"}
        },
        "retryStrategy": {"attempts": 3, "evaluateOnExit": [{"action": "RETRY", "onStatusReason": "Host EC2*"}, {"action": "EXIT", "onReason": "*"}]},
        "timeout": {"attemptDurationSeconds": 3600},
        "tags": {"team": "data"},
        "propagateTags": true,
        "parameters": {"mode": "fast"}
    }"#;

    #[test]
    fn parses_the_cli_input_shape() {
        let spec = JobDefinitionSpec::from_json(CLI_JSON).unwrap();
        spec.check().unwrap();
        assert!(spec.is_fargate());
        assert_eq!(spec.container_properties.ephemeral_storage, Some(EphemeralStorageSpec { size_in_gib: 30 }));
        assert_eq!(spec.retry_strategy.as_ref().unwrap().evaluate_on_exit.len(), 2);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let err =
            JobDefinitionSpec::from_json(r#"{"jobDefinitionName":"x","containerProperties":{"image":"i","vcpu":1}}"#)
                .unwrap_err();
        assert!(err.to_string().contains("unknown field `vcpu`"), "{err}");
        let mut spec = JobDefinitionSpec::from_json(CLI_JSON).unwrap();
        spec.container_properties.resource_requirements[1].value = "4096".into();
        assert!(spec.check().unwrap_err().to_string().contains("4096 MiB with 0.25 vCPU"));
        let mut spec = JobDefinitionSpec::from_json(CLI_JSON).unwrap();
        spec.job_definition_name = "bad name".into();
        assert!(spec.check().unwrap_err().to_string().contains("jobDefinitionName"));
        let mut spec = JobDefinitionSpec::from_json(CLI_JSON).unwrap();
        spec.timeout = Some(TimeoutSpec { attempt_duration_seconds: 30 });
        assert!(spec.check().unwrap_err().to_string().contains("attemptDurationSeconds"));
    }

    #[test]
    fn pasted_describe_output_and_skeletons_are_read_with_notes() {
        let described = r#"{"jobDefinitions": [
            {"jobDefinitionName": "wc", "jobDefinitionArn": "arn:aws:batch:us-east-1:1:job-definition/wc:1",
             "revision": 1, "status": "INACTIVE", "type": "container",
             "containerProperties": {"image": "old"}},
            {"jobDefinitionName": "wc", "jobDefinitionArn": "arn:aws:batch:us-east-1:1:job-definition/wc:2",
             "revision": 2, "status": "ACTIVE", "type": "container", "containerOrchestrationType": "ECS",
             "parameters": {}, "tags": {}, "platformCapabilities": ["EC2"],
             "containerProperties": {"image": "new", "command": ["batchfan-worker"], "volumes": [],
                "environment": [], "mountPoints": [], "ulimits": [], "secrets": [],
                "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}]}}]}"#;
        let (spec, notes) = JobDefinitionSpec::from_pasted_json(described).unwrap();
        assert_eq!(spec.container_properties.image, "new");
        assert!(notes.iter().any(|n| n.contains("revision (2)")), "{notes:?}");
        assert!(
            notes.iter().any(|n| n.contains("jobDefinitionArn, revision, status, containerOrchestrationType")),
            "{notes:?}"
        );
        spec.check().unwrap();

        let skeleton = r#"{"jobDefinitionName": "wc", "type": "container", "parameters": {"KeyName": ""},
            "schedulingPriority": 0, "containerProperties": {"image": "img", "vcpus": 0, "memory": 0,
            "command": [""], "jobRoleArn": "", "volumes": [{"host": {"sourcePath": ""}, "name": ""}],
            "resourceRequirements": [{"value": "1", "type": "VCPU"}, {"value": "2048", "type": "MEMORY"}]},
            "tags": {"KeyName": ""}, "platformCapabilities": ["EC2"]}"#;
        let (spec, _) = JobDefinitionSpec::from_pasted_json(skeleton).unwrap();
        assert!(spec.container_properties.command.is_empty() && spec.container_properties.job_role_arn.is_none());
        assert!(spec.parameters.is_empty() && spec.tags.is_empty());

        let legacy = r#"{"jobDefinitionName": "wc", "containerProperties": {"image": "img", "vcpus": 2}}"#;
        let err = JobDefinitionSpec::from_pasted_json(legacy).unwrap_err().to_string();
        assert!(
            err.contains("containerProperties.vcpus") && err.contains(r#"{"type": "VCPU", "value": "2"}"#),
            "{err}"
        );
    }

    #[test]
    fn a_filled_in_cli_skeleton_registers_what_was_filled() {
        let mut doc: serde_json::Value =
            serde_json::from_str(include_str!("testdata/register-job-definition-skeleton.json")).unwrap();
        doc["jobDefinitionName"] = "from-skeleton".into();
        doc["type"] = "container".into();
        doc["platformCapabilities"] = serde_json::json!(["EC2"]);
        doc["containerProperties"]["image"] = "batchfan-worker:0.1.0".into();
        doc["containerProperties"]["command"] = serde_json::json!(["batchfan-worker", "wordcount"]);
        doc["containerProperties"]["resourceRequirements"] =
            serde_json::json!([{"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "4096"}]);
        doc["retryStrategy"]["attempts"] = 3.into();
        doc["containerProperties"]["privileged"] = false.into();
        let (spec, notes) = JobDefinitionSpec::from_pasted_json(&doc.to_string()).unwrap();
        spec.check().unwrap();
        let c = &spec.container_properties;
        assert_eq!((c.image.as_str(), c.command.len(), c.resource_requirements.len()), ("batchfan-worker:0.1.0", 2, 2));
        assert_eq!(c.privileged, Some(false), "a flag the user turned off is kept");
        assert!(c.readonly_root_filesystem.is_none() && c.linux_parameters.is_none() && c.volumes.is_empty());
        let retry = spec.retry_strategy.unwrap();
        assert_eq!((retry.attempts, retry.evaluate_on_exit.len()), (Some(3), 0));
        assert!(spec.timeout.is_none() && spec.scheduling_priority.is_none());
        assert!(notes.iter().any(|n| n.contains("containerProperties.readonlyRootFilesystem")), "{notes:?}");
    }
}
