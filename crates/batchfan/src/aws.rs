//! The one AWS configuration of the process, from the standard aws-config chain.

use tokio::sync::OnceCell;

static CONFIG: OnceCell<aws_config::SdkConfig> = OnceCell::const_new();

/// The shared SDK configuration (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, credential
/// files, container and instance roles), loaded once.
pub async fn sdk_config() -> &'static aws_config::SdkConfig {
    CONFIG.get_or_init(|| aws_config::load_defaults(aws_config::BehaviorVersion::latest())).await
}
