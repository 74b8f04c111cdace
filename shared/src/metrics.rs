//! CloudWatch metrics in Embedded Metric Format (EMF): a tracing layer that turns
//! the security events the code already logs (`login_failed`, `refresh_token_reuse`,
//! `authorize`, ...) into counter lines CloudWatch extracts from the log, with no
//! extra AWS call. No user or session identifier is ever a dimension.
//!
//! Format: "Specification: Embedded metric format",
//! https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

/// Default CloudWatch namespace (`LATCHKEY_METRICS_NAMESPACE`).
pub const DEFAULT_NAMESPACE: &str = "Latchkey";

/// Each counted event: the `event` field, the metric it counts, and which of its
/// fields (bounded values only) become dimensions beside `Function`.
pub const METRICS: [(&str, &str, &[&str]); 14] = [
    ("login_succeeded", "LoginSucceeded", &[]),
    ("login_failed", "LoginFailed", &["reason"]),
    ("login_throttled", "LoginThrottled", &[]),
    ("session_started", "SessionStarted", &[]),
    ("refresh_rotated", "RefreshRotated", &[]),
    ("refresh_grace_replay", "RefreshGraceReplayed", &[]),
    ("refresh_token_reuse", "RefreshReuseDetected", &[]),
    ("refresh_refused", "RefreshRefused", &["reason"]),
    ("session_revoked", "SessionRevoked", &["reason"]),
    ("sessions_ended", "SessionsEnded", &["reason"]),
    ("authorize", "Authorization", &["outcome", "session_check"]),
    ("session_check_failed", "SessionCheckFailed", &[]),
    ("signing_failed", "SigningFailed", &["throttled"]),
    ("cold_start", "ColdStart", &[]),
];

/// Where EMF lines go: stdout in a function (Lambda sends it to CloudWatch Logs).
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// The tracing layer that writes one EMF line per counted event.
pub struct MetricsLayer {
    namespace: String,
    function: String,
    sink: Sink,
}

impl fmt::Debug for MetricsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsLayer").field("namespace", &self.namespace).field("function", &self.function).finish()
    }
}

impl MetricsLayer {
    /// A layer writing to `sink` under `namespace`, with the `Function` dimension.
    pub fn new(namespace: impl Into<String>, function: impl Into<String>, sink: Sink) -> Self {
        Self { namespace: namespace.into(), function: function.into(), sink }
    }

    /// The layer a deployed function uses: `LATCHKEY_METRICS_NAMESPACE` (default
    /// `Latchkey`), the function's name from `AWS_LAMBDA_FUNCTION_NAME`, stdout.
    pub fn from_env() -> Self {
        let namespace = std::env::var("LATCHKEY_METRICS_NAMESPACE")
            .ok()
            .filter(|ns| !ns.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned());
        let stdout = Mutex::new(std::io::stdout());
        let sink: Sink = Arc::new(move |line: &str| {
            let mut out = stdout.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let _ = writeln!(out, "{line}");
        });
        Self::new(namespace, function, sink)
    }

    /// The EMF document for one occurrence of `metric` with these dimensions.
    fn line(&self, metric: &str, dimensions: &BTreeMap<String, String>, timestamp_ms: u128) -> Value {
        let mut keys = vec!["Function".to_owned()];
        keys.extend(dimensions.keys().cloned());
        let mut root = json!({
            "_aws": {
                "Timestamp": timestamp_ms as u64,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [keys],
                    "Metrics": [{"Name": metric, "Unit": "Count"}],
                }],
            },
            "Function": self.function,
            metric: 1,
        });
        for (key, value) in dimensions {
            root[key] = Value::String(value.clone());
        }
        root
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for MetricsLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(name) = fields.0.get("event") else { return };
        let Some((_, metric, dimension_fields)) = METRICS.iter().find(|(event, _, _)| event == name) else {
            return;
        };
        let dimensions: BTreeMap<String, String> = dimension_fields
            .iter()
            .map(|field| (dimension_name(field), fields.0.get(*field).cloned().unwrap_or_else(|| "none".to_owned())))
            .collect();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        (self.sink)(&self.line(metric, &dimensions, now).to_string());
    }
}

/// The dimension a field becomes: `reason` → `Reason`, `session_check` → `SessionCheck`.
pub fn dimension_name(field: &str) -> String {
    field
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// An event's fields as text.
#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}").trim_matches('"').to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimension_names_are_pascal_case() {
        assert_eq!(dimension_name("reason"), "Reason");
        assert_eq!(dimension_name("session_check"), "SessionCheck");
    }
}
