//! Job definitions and their parts to and from the SDK's types.

use aws_sdk_batch::types as sdk;

use super::spec::*;

impl RetryStrategySpec {
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

    pub(super) fn from_sdk(r: &sdk::RetryStrategy) -> RetryStrategySpec {
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

impl JobDefinitionSpec {
    /// The definition as AWS returns it, in a form comparable with [`JobDefinitionSpec::normalized`].
    pub(crate) fn from_sdk(d: &sdk::JobDefinition) -> JobDefinitionSpec {
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
            volumes: c
                .volumes()
                .iter()
                .map(|v| VolumeSpec {
                    name: v.name().map(str::to_string),
                    host: v.host().map(|h| HostSpec { source_path: h.source_path().map(str::to_string) }),
                    efs_volume_configuration: v.efs_volume_configuration().map(|e| EfsVolumeSpec {
                        file_system_id: e.file_system_id().unwrap_or_default().to_string(),
                        root_directory: e.root_directory().map(str::to_string),
                        transit_encryption: e.transit_encryption().map(|t| t.as_str().to_string()),
                        transit_encryption_port: e.transit_encryption_port(),
                        authorization_config: e.authorization_config().map(|a| EfsAuthorizationSpec {
                            access_point_id: a.access_point_id().map(str::to_string),
                            iam: a.iam().map(|i| i.as_str().to_string()),
                        }),
                    }),
                })
                .collect(),
            mount_points: c
                .mount_points()
                .iter()
                .map(|m| MountPointSpec {
                    container_path: m.container_path().map(str::to_string),
                    read_only: m.read_only(),
                    source_volume: m.source_volume().map(str::to_string),
                })
                .collect(),
            ulimits: c
                .ulimits()
                .iter()
                .map(|u| UlimitSpec {
                    name: u.name().unwrap_or_default().to_string(),
                    soft_limit: u.soft_limit().unwrap_or_default(),
                    hard_limit: u.hard_limit().unwrap_or_default(),
                })
                .collect(),
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

    pub(crate) fn to_sdk_container(&self) -> sdk::ContainerProperties {
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
            .set_volumes((!c.volumes.is_empty()).then(|| c.volumes.iter().map(sdk_volume).collect()))
            .set_mount_points((!c.mount_points.is_empty()).then(|| {
                c.mount_points
                    .iter()
                    .map(|m| {
                        sdk::MountPoint::builder()
                            .set_container_path(m.container_path.clone())
                            .set_read_only(m.read_only)
                            .set_source_volume(m.source_volume.clone())
                            .build()
                    })
                    .collect()
            }))
            .set_ulimits((!c.ulimits.is_empty()).then(|| {
                c.ulimits
                    .iter()
                    .map(|u| {
                        sdk::Ulimit::builder().name(&u.name).soft_limit(u.soft_limit).hard_limit(u.hard_limit).build()
                    })
                    .collect()
            }))
            .build()
    }
}

/// A volume as the SDK takes it.
fn sdk_volume(v: &VolumeSpec) -> sdk::Volume {
    sdk::Volume::builder()
        .set_name(v.name.clone())
        .set_host(v.host.as_ref().map(|h| sdk::Host::builder().set_source_path(h.source_path.clone()).build()))
        .set_efs_volume_configuration(v.efs_volume_configuration.as_ref().map(|e| {
            sdk::EfsVolumeConfiguration::builder()
                .file_system_id(&e.file_system_id)
                .set_root_directory(e.root_directory.clone())
                .set_transit_encryption(e.transit_encryption.as_deref().map(sdk::EfsTransitEncryption::from))
                .set_transit_encryption_port(e.transit_encryption_port)
                .set_authorization_config(e.authorization_config.as_ref().map(|a| {
                    sdk::EfsAuthorizationConfig::builder()
                        .set_access_point_id(a.access_point_id.clone())
                        .set_iam(a.iam.as_deref().map(sdk::EfsAuthorizationConfigIam::from))
                        .build()
                }))
                .build()
        }))
        .build()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::jobdef::spec::tests::CLI_JSON;

    #[test]
    fn converts_to_the_sdk_shape() {
        let spec = JobDefinitionSpec::from_json(CLI_JSON).unwrap();
        let sdk = spec.to_sdk_container();
        assert_eq!(sdk.secrets().len(), 1);
        assert_eq!(sdk.runtime_platform().and_then(|r| r.cpu_architecture()), Some("ARM64"));
    }
}
