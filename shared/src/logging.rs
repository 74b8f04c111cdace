//! Log set-up for the Lambda functions: JSON lines to stdout (CloudWatch), `RUST_LOG`
//! to filter, the AWS SDK held at `warn` so request internals never reach the log.

use tracing_subscriber::EnvFilter;

/// The filter used when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,aws_config=warn,aws_smithy_runtime=warn,aws_smithy_runtime_api=warn,aws_sdk_kms=warn,aws_sdk_dynamodb=warn,hyper=warn";

/// Installs the JSON subscriber once. Later calls do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}
