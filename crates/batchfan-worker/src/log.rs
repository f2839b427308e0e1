//! Worker logs through `tracing`: one line per event on stderr, text or JSON.

use tracing_subscriber::EnvFilter;

/// Installs the worker's subscriber unless the program installed its own: one line per event on
/// stderr, JSON when `BATCHFAN_LOG_FORMAT=json` (CloudWatch), filtered by `RUST_LOG` (default:
/// `info`, and `warn` for the AWS SDK). Events inside a chunk carry its run id, index and attempt.
/// The first line names the harness's version.
pub(crate) fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,aws_smithy_runtime=warn,aws_config=warn,aws_sdk_s3=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // The SDK's TRACE events dump request and response bodies: never printed.
    let no_secrets =
        tracing_subscriber::filter::filter_fn(|m| !batchfan::contract::secret_bearing_log(m.target(), m.level()));
    // An error means a subscriber is already installed: the program's own wins.
    let _ = if std::env::var(batchfan::contract::env::LOG_FORMAT).is_ok_and(|v| v.eq_ignore_ascii_case("json")) {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(no_secrets)
            .try_init()
    } else {
        builder.finish().with(no_secrets).try_init()
    };
    tracing::info!(version = crate::VERSION, "batchfan worker starting");
}
