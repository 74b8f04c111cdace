//! Log set-up for the Lambda functions: JSON lines to stdout (CloudWatch), `RUST_LOG`
//! to filter, and a ceiling on the crates that would log events, requests or
//! credentials, which no `RUST_LOG` can lift.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter used when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info";

/// Crates (target prefixes) whose verbose levels carry secrets, and the most they
/// may log whatever `RUST_LOG` says: `lambda_runtime` logs each raw event (a
/// login's password, a refresh token) at `trace`; the AWS SDK and the HTTP stack
/// log requests, headers and signing material at `debug`/`trace`.
pub const CEILINGS: [(&str, LevelFilter); 7] = [
    ("lambda_runtime", LevelFilter::INFO),
    ("lambda_http", LevelFilter::INFO),
    ("aws_", LevelFilter::WARN),
    ("hyper", LevelFilter::WARN),
    ("h2", LevelFilter::WARN),
    ("tower", LevelFilter::WARN),
    ("rustls", LevelFilter::WARN),
];

/// The [`CEILINGS`] as a filter: everything else passes to `RUST_LOG`'s judgement.
pub fn ceilings() -> Targets {
    Targets::new().with_default(LevelFilter::TRACE).with_targets(CEILINGS)
}

/// Installs the JSON log subscriber and the EMF metrics layer once; later calls do
/// nothing. `RUST_LOG` filters the log lines only: metrics count Latchkey's own
/// events whatever it says.
pub fn init() {
    use tracing_subscriber::Layer as _;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let effective = filter.to_string();
    let log = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        // The runtime's invocation span carries `requestId`: every line names its request.
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_filter(filter);
    let metrics =
        crate::metrics::MetricsLayer::from_env().with_filter(Targets::new().with_target("latchkey", LevelFilter::INFO));
    let installed = tracing_subscriber::registry().with(log).with(metrics).with(ceilings()).try_init();
    if installed.is_ok() {
        tracing::debug!(event = "log_filter", filter = %effective, "RUST_LOG applied under the secret-safe ceilings");
    }
}
