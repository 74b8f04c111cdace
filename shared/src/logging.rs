//! Log set-up for the Lambda functions: JSON lines to stdout (CloudWatch), `RUST_LOG`
//! to filter, and a ceiling on the crates that would log events, requests or
//! credentials, which no `RUST_LOG` can lift.

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

/// The log filter `RUST_LOG` asks for: comma-separated `level` and `target=level`
/// directives (`info`, `latchkey=debug,warn`), read by `tracing-subscriber`'s
/// [`Targets`] (no regex in the functions); unset or unreadable (span and field
/// directives included), [`DEFAULT_FILTER`].
pub fn rust_log(value: Option<&str>) -> Targets {
    let default = || DEFAULT_FILTER.parse().unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
    match value.map(str::trim) {
        // Span and field directives (`[span{field}]=debug`) are EnvFilter's, not
        // understood here: such a value is unreadable rather than a target name.
        Some(text) if !text.is_empty() && !text.contains(['[', '{']) => text.parse().unwrap_or_else(|_| default()),
        _ => default(),
    }
}

/// Installs the JSON log subscriber and the EMF metrics layer once; later calls do
/// nothing. `RUST_LOG` filters the log lines only: metrics count Latchkey's own
/// events whatever it says.
pub fn init() {
    use tracing_subscriber::Layer as _;
    let filter = rust_log(std::env::var("RUST_LOG").ok().as_deref());
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

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn rust_log_reads_levels_and_targets_and_falls_back_to_info() {
        let enabled = |value: Option<&str>, target: &str, level: Level| rust_log(value).would_enable(target, &level);
        assert!(enabled(None, "latchkey", Level::INFO) && !enabled(None, "latchkey", Level::DEBUG));
        assert!(enabled(Some("trace"), "latchkey::session", Level::TRACE));
        assert!(enabled(Some("latchkey=debug,warn"), "latchkey::session", Level::DEBUG));
        assert!(!enabled(Some("latchkey=debug,warn"), "hyper", Level::INFO));
        assert!(enabled(Some("warn,latchkey=off"), "other", Level::WARN));
        assert!(!enabled(Some("warn,latchkey=off"), "latchkey", Level::ERROR));
        for unreadable in ["", "  ", "latchkey=loud", "[span{x}]=debug"] {
            assert!(enabled(Some(unreadable), "latchkey", Level::INFO), "{unreadable:?}");
            assert!(!enabled(Some(unreadable), "latchkey", Level::DEBUG), "{unreadable:?}");
        }
    }
}
