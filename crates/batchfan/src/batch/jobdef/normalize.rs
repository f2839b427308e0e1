//! A canonical form of a job definition, so that a registered revision compares equal to the
//! input that made it, whatever defaults the service filled in.

use super::spec::*;

impl JobDefinitionSpec {
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
        if let Some(r) = &n.retry_strategy
            && r.attempts == Some(1)
            && r.evaluate_on_exit.is_empty()
        {
            n.retry_strategy = None; // one attempt is what no strategy means
        }
        if n.is_fargate() {
            // What AWS stores for a Fargate definition that leaves these out (moto fills the
            // platform version too): the registered revision carries them, the input does not.
            let c = &mut n.container_properties;
            c.fargate_platform_configuration
                .get_or_insert_with(|| FargatePlatformSpec { platform_version: "LATEST".into() });
            c.network_configuration
                .get_or_insert_with(|| NetworkConfigurationSpec { assign_public_ip: "DISABLED".into() });
            let platform = c.runtime_platform.get_or_insert_with(RuntimePlatformSpec::default);
            platform.operating_system_family.get_or_insert_with(|| "LINUX".into());
            platform.cpu_architecture.get_or_insert_with(|| "X86_64".into());
        }
        let c = &mut n.container_properties;
        if let Some(net) = &mut c.network_configuration {
            net.assign_public_ip = net.assign_public_ip.to_ascii_uppercase();
        }
        if let Some(platform) = &mut c.runtime_platform {
            platform.operating_system_family =
                platform.operating_system_family.as_ref().map(|v| v.to_ascii_uppercase());
            platform.cpu_architecture = platform.cpu_architecture.as_ref().map(|v| v.to_ascii_uppercase());
        }
        if let Some(f) = &mut c.fargate_platform_configuration {
            f.platform_version = f.platform_version.to_ascii_uppercase();
        }
        if let Some(l) = &mut c.log_configuration {
            l.log_driver = l.log_driver.to_ascii_lowercase();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::jobdef::spec::tests::CLI_JSON;

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

    // Regression (issue 6): a Fargate definition that omits fargatePlatformConfiguration (or the
    // network and runtime platform settings) registered a new revision every time, because the
    // stored revision carries the defaults the service filled in.
    #[test]
    fn service_defaults_compare_equal_to_their_absence() {
        let full = JobDefinitionSpec::from_json(CLI_JSON).unwrap();
        let mut stored = full.clone();
        let c = &mut stored.container_properties;
        c.fargate_platform_configuration = Some(FargatePlatformSpec { platform_version: "LATEST".into() });
        c.network_configuration = Some(NetworkConfigurationSpec { assign_public_ip: "DISABLED".into() });
        c.runtime_platform = Some(RuntimePlatformSpec {
            operating_system_family: Some("LINUX".into()),
            cpu_architecture: Some("X86_64".into()),
        });
        stored.retry_strategy = Some(RetryStrategySpec { attempts: Some(1), evaluate_on_exit: vec![] });
        type Omit = fn(&mut JobDefinitionSpec);
        let omit: [(&str, Omit); 5] = [
            ("fargatePlatformConfiguration", |s| s.container_properties.fargate_platform_configuration = None),
            ("networkConfiguration", |s| s.container_properties.network_configuration = None),
            ("runtimePlatform", |s| s.container_properties.runtime_platform = None),
            ("runtimePlatform.cpuArchitecture", |s| {
                s.container_properties.runtime_platform =
                    Some(RuntimePlatformSpec { operating_system_family: Some("LINUX".into()), cpu_architecture: None })
            }),
            ("retryStrategy", |s| s.retry_strategy = None),
        ];
        for (field, drop) in omit {
            let mut input = stored.clone();
            drop(&mut input);
            assert_eq!(input.normalized(), stored.normalized(), "omitting {field}");
        }
        // A real difference still differs.
        let mut public = stored.clone();
        public.container_properties.network_configuration =
            Some(NetworkConfigurationSpec { assign_public_ip: "ENABLED".into() });
        assert_ne!(public.normalized(), stored.normalized());
    }
}
