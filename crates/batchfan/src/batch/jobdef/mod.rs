//! Job definitions: the `aws batch register-job-definition --cli-input-json` shape, checked,
//! registered only when it differs from the latest ACTIVE revision.

mod convert;
mod normalize;
mod register;
mod spec;

pub(crate) use self::convert::{sdk_environment, sdk_resources};
pub use self::register::Registered;
pub(crate) use self::register::describe_definition;
pub(crate) use self::register::register_job_definition;
pub(crate) use self::spec::resources;
pub use self::spec::{
    ContainerSpec, EphemeralStorageSpec, FargatePlatformSpec, JobDefinitionSpec, KeyValue, LinuxParametersSpec,
    LogConfigurationSpec, NetworkConfigurationSpec, ResourceRequirementSpec, RetryStrategySpec, RuleSpec,
    RuntimePlatformSpec, SecretSpec, ShortForm, TimeoutSpec,
};
