//! Job definitions: the `aws batch register-job-definition --cli-input-json` shape, checked,
//! registered only when it differs from the latest ACTIVE revision.

use std::collections::BTreeMap;

use aws_sdk_batch::types as sdk;
use serde::{Deserialize, Serialize};

use super::call;
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

    pub(crate) fn to_sdk(&self) -> sdk::RetryStrategy {
        let rules = self
            .evaluate_on_exit
            .iter()
            .map(|r| {
                sdk::EvaluateOnExit::builder()
                    .action(sdk::RetryAction::from(r.action.to_ascii_uppercase().as_str()))
                    .set_on_exit_code(r.on_exit_code.clone())
                    .set_on_reason(r.on_reason.clone())
                    .set_on_status_reason(r.on_status_reason.clone())
                    .build()
            })
            .collect();
        sdk::RetryStrategy::builder().set_attempts(self.attempts).set_evaluate_on_exit(Some(rules)).build()
    }

    fn from_sdk(r: &sdk::RetryStrategy) -> RetryStrategySpec {
        RetryStrategySpec {
            attempts: r.attempts(),
            evaluate_on_exit: r
                .evaluate_on_exit()
                .iter()
                .map(|e| RuleSpec {
                    // moto returns actions lowercased; compare case-insensitively.
                    action: e.action().map(|a| a.as_str().to_ascii_uppercase()).unwrap_or_default(),
                    on_exit_code: e.on_exit_code().map(str::to_string),
                    on_reason: e.on_reason().map(str::to_string),
                    on_status_reason: e.on_status_reason().map(str::to_string),
                })
                .collect(),
        }
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
        serde_json::from_str(json).map_err(|e| {
            Error::option("--cli-input-json", "the document", format!("is not a register-job-definition input: {e}"))
        })
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

    /// The definition as AWS returns it, in a form comparable with [`JobDefinitionSpec::normalized`].
    fn from_sdk(d: &sdk::JobDefinition) -> JobDefinitionSpec {
        let c = d.container_properties();
        let secrets = |s: &[sdk::Secret]| {
            s.iter()
                .map(|s| SecretSpec {
                    name: s.name().unwrap_or_default().into(),
                    value_from: s.value_from().unwrap_or_default().into(),
                })
                .collect::<Vec<_>>()
        };
        let container = c.map(|c| ContainerSpec {
            image: c.image().unwrap_or_default().into(),
            command: c.command().to_vec(),
            resource_requirements: c
                .resource_requirements()
                .iter()
                .map(|r| ResourceRequirementSpec {
                    kind: r.r#type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                    value: r.value().unwrap_or_default().into(),
                })
                .collect(),
            environment: c
                .environment()
                .iter()
                .map(|kv| KeyValue {
                    name: kv.name().unwrap_or_default().into(),
                    value: kv.value().unwrap_or_default().into(),
                })
                .collect(),
            secrets: secrets(c.secrets()),
            execution_role_arn: c.execution_role_arn().map(str::to_string),
            job_role_arn: c.job_role_arn().map(str::to_string),
            log_configuration: c.log_configuration().map(|l| LogConfigurationSpec {
                log_driver: l.log_driver().map(|d| d.as_str().to_string()).unwrap_or_default(),
                options: l.options().map(|o| o.clone().into_iter().collect()).unwrap_or_default(),
                secret_options: secrets(l.secret_options()),
            }),
            readonly_root_filesystem: c.readonly_root_filesystem(),
            linux_parameters: c.linux_parameters().map(|l| LinuxParametersSpec {
                init_process_enabled: l.init_process_enabled(),
                shared_memory_size: l.shared_memory_size(),
                max_swap: l.max_swap(),
                swappiness: l.swappiness(),
            }),
            ephemeral_storage: c
                .ephemeral_storage()
                .and_then(|e| e.size_in_gib())
                .map(|size_in_gib| EphemeralStorageSpec { size_in_gib }),
            runtime_platform: c.runtime_platform().map(|r| RuntimePlatformSpec {
                operating_system_family: r.operating_system_family().map(str::to_string),
                cpu_architecture: r.cpu_architecture().map(str::to_string),
            }),
            network_configuration: c.network_configuration().map(|n| NetworkConfigurationSpec {
                assign_public_ip: n.assign_public_ip().map(|a| a.as_str().to_string()).unwrap_or_default(),
            }),
            fargate_platform_configuration: c
                .fargate_platform_configuration()
                .map(|f| FargatePlatformSpec { platform_version: f.platform_version().unwrap_or_default().into() }),
            user: c.user().map(str::to_string),
            privileged: c.privileged(),
        });
        JobDefinitionSpec {
            job_definition_name: d.job_definition_name().unwrap_or_default().into(),
            job_type: d.r#type().unwrap_or("container").into(),
            parameters: d.parameters().map(|p| p.clone().into_iter().collect()).unwrap_or_default(),
            scheduling_priority: d.scheduling_priority(),
            container_properties: container.unwrap_or_default(),
            retry_strategy: d.retry_strategy().map(RetryStrategySpec::from_sdk),
            propagate_tags: d.propagate_tags(),
            timeout: d
                .timeout()
                .and_then(|t| t.attempt_duration_seconds())
                .map(|attempt_duration_seconds| TimeoutSpec { attempt_duration_seconds }),
            tags: d.tags().map(|t| t.clone().into_iter().collect()).unwrap_or_default(),
            platform_capabilities: d.platform_capabilities().iter().map(|p| p.as_str().to_string()).collect(),
        }
    }

    /// A canonical form: lists sorted, defaults made explicit, case of enums unified, so a
    /// registered definition compares equal to the input that made it.
    pub fn normalized(&self) -> JobDefinitionSpec {
        let mut n = self.clone();
        let c = &mut n.container_properties;
        c.environment.sort();
        c.secrets.sort();
        c.resource_requirements.iter_mut().for_each(|r| {
            r.kind = r.kind.to_ascii_uppercase();
            if let Ok(v) = r.value.parse::<f64>() {
                r.value = format!("{v}");
            }
        });
        c.resource_requirements.sort();
        if c.readonly_root_filesystem == Some(false) {
            c.readonly_root_filesystem = None;
        }
        if c.privileged == Some(false) {
            c.privileged = None;
        }
        if c.linux_parameters == Some(LinuxParametersSpec::default()) {
            c.linux_parameters = None;
        }
        if let Some(l) = &mut c.log_configuration {
            l.secret_options.sort();
        }
        if let Some(r) = &mut n.retry_strategy {
            r.evaluate_on_exit.iter_mut().for_each(|e| e.action = e.action.to_ascii_uppercase());
            if r.attempts.is_none() && r.evaluate_on_exit.is_empty() {
                n.retry_strategy = None;
            }
        }
        if n.propagate_tags == Some(false) {
            n.propagate_tags = None;
        }
        if n.platform_capabilities.is_empty() {
            n.platform_capabilities = vec!["EC2".into()];
        }
        n.platform_capabilities.iter_mut().for_each(|p| *p = p.to_ascii_uppercase());
        n.platform_capabilities.sort();
        n
    }

    fn to_sdk_container(&self) -> sdk::ContainerProperties {
        let c = &self.container_properties;
        let secret = |s: &SecretSpec| sdk::Secret::builder().name(&s.name).value_from(&s.value_from).build();
        sdk::ContainerProperties::builder()
            .image(&c.image)
            .set_command((!c.command.is_empty()).then(|| c.command.clone()))
            .set_resource_requirements(Some(sdk_resources(&c.resource_requirements)))
            .set_environment(Some(sdk_environment(&c.environment)))
            .set_secrets(Some(c.secrets.iter().map(secret).collect()))
            .set_execution_role_arn(c.execution_role_arn.clone())
            .set_job_role_arn(c.job_role_arn.clone())
            .set_log_configuration(c.log_configuration.as_ref().map(|l| {
                sdk::LogConfiguration::builder()
                    .log_driver(sdk::LogDriver::from(l.log_driver.as_str()))
                    .set_options((!l.options.is_empty()).then(|| l.options.clone().into_iter().collect()))
                    .set_secret_options(Some(l.secret_options.iter().map(secret).collect()))
                    .build()
            }))
            .set_readonly_root_filesystem(c.readonly_root_filesystem)
            .set_linux_parameters(c.linux_parameters.as_ref().map(|l| {
                sdk::LinuxParameters::builder()
                    .set_init_process_enabled(l.init_process_enabled)
                    .set_shared_memory_size(l.shared_memory_size)
                    .set_max_swap(l.max_swap)
                    .set_swappiness(l.swappiness)
                    .build()
            }))
            .set_ephemeral_storage(
                c.ephemeral_storage.map(|e| sdk::EphemeralStorage::builder().size_in_gib(e.size_in_gib).build()),
            )
            .set_runtime_platform(c.runtime_platform.as_ref().map(|r| {
                sdk::RuntimePlatform::builder()
                    .set_operating_system_family(r.operating_system_family.clone())
                    .set_cpu_architecture(r.cpu_architecture.clone())
                    .build()
            }))
            .set_network_configuration(c.network_configuration.as_ref().map(|n| {
                sdk::NetworkConfiguration::builder()
                    .assign_public_ip(sdk::AssignPublicIp::from(n.assign_public_ip.as_str()))
                    .build()
            }))
            .set_fargate_platform_configuration(
                c.fargate_platform_configuration.as_ref().map(|f| {
                    sdk::FargatePlatformConfiguration::builder().platform_version(&f.platform_version).build()
                }),
            )
            .set_user(c.user.clone())
            .set_privileged(c.privileged)
            .build()
    }
}

/// Environment variables as the SDK takes them.
pub(crate) fn sdk_environment(env: &[KeyValue]) -> Vec<sdk::KeyValuePair> {
    env.iter().map(|kv| sdk::KeyValuePair::builder().name(&kv.name).value(&kv.value).build()).collect()
}

/// Resource requirements as the SDK takes them.
pub(crate) fn sdk_resources(reqs: &[ResourceRequirementSpec]) -> Vec<sdk::ResourceRequirement> {
    reqs.iter()
        .map(|r| {
            sdk::ResourceRequirement::builder()
                .r#type(sdk::ResourceType::from(r.kind.to_ascii_uppercase().as_str()))
                .value(&r.value)
                .build()
        })
        .collect()
}

/// Every ACTIVE revision of a job definition name (all pages).
pub(crate) async fn active_revisions(name: &str) -> Result<Vec<sdk::JobDefinition>> {
    let client = super::client().await;
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = call("DescribeJobDefinitions", || {
            client
                .describe_job_definitions()
                .job_definition_name(name)
                .status("ACTIVE")
                .set_next_token(token.clone())
                .send()
        })
        .await?;
        all.extend(page.job_definitions().iter().filter(|d| d.job_definition_name() == Some(name)).cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(all);
        }
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

/// What [`register_job_definition`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registered {
    /// Name.
    pub name: String,
    /// Revision in use.
    pub revision: i32,
    /// Its ARN.
    pub arn: String,
    /// True when the latest ACTIVE revision was identical and was reused.
    pub reused: bool,
}

/// Registers `spec`, unless the latest ACTIVE revision of that name is identical (then reuses it).
pub async fn register_job_definition(spec: &JobDefinitionSpec) -> Result<Registered> {
    spec.check()?;
    let client = super::client().await;
    let name = spec.job_definition_name.clone();
    let latest = active_revisions(&name).await?.into_iter().max_by_key(|d| d.revision().unwrap_or(0));
    if let Some(existing) = latest
        && JobDefinitionSpec::from_sdk(&existing).normalized() == spec.normalized()
    {
        return Ok(Registered {
            name,
            revision: existing.revision().unwrap_or(0),
            arn: existing.job_definition_arn().unwrap_or_default().to_string(),
            reused: true,
        });
    }
    let container = spec.to_sdk_container();
    let out = call("RegisterJobDefinition", || {
        client
            .register_job_definition()
            .job_definition_name(&name)
            .r#type(sdk::JobDefinitionType::Container)
            .set_parameters((!spec.parameters.is_empty()).then(|| spec.parameters.clone().into_iter().collect()))
            .set_scheduling_priority(spec.scheduling_priority)
            .container_properties(container.clone())
            .set_retry_strategy(spec.retry_strategy.as_ref().map(RetryStrategySpec::to_sdk))
            .set_propagate_tags(spec.propagate_tags)
            .set_timeout(
                spec.timeout
                    .map(|t| sdk::JobTimeout::builder().attempt_duration_seconds(t.attempt_duration_seconds).build()),
            )
            .set_tags((!spec.tags.is_empty()).then(|| spec.tags.clone().into_iter().collect()))
            .set_platform_capabilities(Some(
                spec.platform_capabilities
                    .iter()
                    .map(|p| sdk::PlatformCapability::from(p.to_ascii_uppercase().as_str()))
                    .collect(),
            ))
            .send()
    })
    .await?;
    Ok(Registered {
        name,
        revision: out.revision().unwrap_or(0),
        arn: out.job_definition_arn().unwrap_or_default().to_string(),
        reused: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLI_JSON: &str = r#"{
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
        let sdk = spec.to_sdk_container();
        assert_eq!(sdk.secrets().len(), 1);
        assert_eq!(sdk.runtime_platform().and_then(|r| r.cpu_architecture()), Some("ARM64"));
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
    fn normalization_ignores_order_and_defaults() {
        let a = JobDefinitionSpec::from_json(CLI_JSON).unwrap();
        let mut b = a.clone();
        b.container_properties.resource_requirements.reverse();
        b.retry_strategy.as_mut().unwrap().evaluate_on_exit[0].action = "retry".into();
        assert_eq!(a.normalized(), b.normalized());
        b.container_properties.image.push('x');
        assert_ne!(a.normalized(), b.normalized());
    }
}
