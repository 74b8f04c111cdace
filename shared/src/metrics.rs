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
pub const METRICS: [(&str, &str, &[&str]); 38] = [
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
    ("delegated_key_made", "DelegatedKeyMade", &[]),
    ("delegated_key_refused", "DelegatedKeyRefused", &[]),
    ("delegated_key_unusable", "DelegatedKeyUnusable", &[]),
    ("signing_failed", "SigningFailed", &["throttled"]),
    ("cold_start", "ColdStart", &[]),
    ("reset_requested", "PasswordResetRequested", &["outcome"]),
    ("password_reset", "PasswordReset", &[]),
    ("password_reset_refused", "PasswordResetRefused", &["reason"]),
    ("password_changed", "PasswordChanged", &[]),
    ("user_invited", "UserInvited", &[]),
    ("user_signed_up", "UserSignedUp", &[]),
    ("signup_not_created", "SignupNotCreated", &["outcome"]),
    ("email_verified", "EmailVerified", &[]),
    ("email_verify_refused", "EmailVerifyRefused", &["reason"]),
    ("mail_sent", "MailSent", &["kind"]),
    ("mail_failed", "MailFailed", &["reason"]),
    ("admin_action", "AdminAction", &["action", "outcome"]),
    ("user_deleted", "UserDeleted", &[]),
    ("last_admin_refused", "LastAdminRefused", &[]),
    ("mfa_enrolment_started", "MfaEnrolmentStarted", &[]),
    ("mfa_enabled", "MfaEnabled", &[]),
    ("mfa_challenged", "MfaChallenged", &["enrol"]),
    ("mfa_passed", "MfaPassed", &["method"]),
    ("mfa_failed", "MfaFailed", &["reason"]),
    ("mfa_throttled", "MfaThrottled", &[]),
    ("mfa_removed", "MfaRemoved", &["by"]),
];

/// Where EMF lines go: stdout in a function (Lambda sends it to CloudWatch Logs).
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// The tracing layer that writes one EMF line per counted event.
pub struct MetricsLayer {
    namespace: String,
    function: String,
    /// Fixed dimensions added to every metric (`LATCHKEY_METRICS_DIMENSIONS`).
    fixed: Vec<(String, String)>,
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
        Self { namespace: namespace.into(), function: function.into(), fixed: Vec::new(), sink }
    }

    /// The same layer with fixed dimensions on every metric (e.g. `Stage=prod`).
    pub fn with_dimensions(self, fixed: Vec<(String, String)>) -> Self {
        Self { fixed, ..self }
    }

    /// The layer a deployed function uses: `LATCHKEY_METRICS_NAMESPACE` (default
    /// `Latchkey`), the function's name from `AWS_LAMBDA_FUNCTION_NAME`, stdout.
    pub fn from_env() -> Self {
        let namespace = std::env::var("LATCHKEY_METRICS_NAMESPACE")
            .ok()
            .filter(|ns| !ns.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned());
        let fixed = std::env::var("LATCHKEY_METRICS_DIMENSIONS").ok().map(|raw| fixed_dimensions(&raw));
        let stdout = Mutex::new(std::io::stdout());
        let sink: Sink = Arc::new(move |line: &str| {
            let mut out = stdout.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let _ = writeln!(out, "{line}");
        });
        let layer = Self::new(namespace, function, sink);
        match fixed {
            Some(Ok(fixed)) => layer.with_dimensions(fixed),
            // Metrics cannot stop a function from starting: it runs without them and says why.
            Some(Err(why)) => {
                eprintln!("{{\"level\":\"WARN\",\"event\":\"metrics_dimensions_ignored\",\"why\":\"{why}\"}}");
                layer
            }
            None => layer,
        }
    }

    /// The EMF document for one occurrence of `metric` with these dimensions.
    fn line(&self, metric: &str, dimensions: &BTreeMap<String, String>, timestamp_ms: u128) -> Value {
        let mut keys = vec!["Function".to_owned()];
        keys.extend(self.fixed.iter().map(|(name, _)| name.clone()));
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
        for (key, value) in self.fixed.iter().map(|(k, v)| (k, v)).chain(dimensions) {
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

/// `Name=Value,Name=Value` (at most 5, names of `A-Z a-z 0-9 _`, values non-empty,
/// none of the names the metrics use themselves) as fixed dimensions.
pub fn fixed_dimensions(raw: &str) -> Result<Vec<(String, String)>, &'static str> {
    let reserved: Vec<String> = std::iter::once("Function".to_owned())
        .chain(METRICS.iter().flat_map(|(_, _, fields)| fields.iter().map(|field| dimension_name(field))))
        .collect();
    let mut fixed = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').ok_or("each entry is Name=Value")?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') || value.is_empty() {
            return Err("names are A-Z a-z 0-9 _, values non-empty");
        }
        if reserved.iter().any(|taken| taken == name) || fixed.iter().any(|(taken, _): &(String, String)| taken == name)
        {
            return Err("a name is used twice or by the metrics themselves");
        }
        fixed.push((name.to_owned(), value.to_owned()));
    }
    if fixed.len() > 5 {
        return Err("at most 5 fixed dimensions");
    }
    Ok(fixed)
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
    fn fixed_dimensions_are_read_and_checked() {
        assert_eq!(
            fixed_dimensions("Stage=prod, Service = auth").unwrap(),
            [("Stage".to_owned(), "prod".to_owned()), ("Service".to_owned(), "auth".to_owned())]
        );
        assert_eq!(fixed_dimensions("").unwrap(), []);
        for bad in ["Stage", "Stage=", "Sta ge=x", "Function=x", "Reason=x", "A=1,A=2", "A=1,B=1,C=1,D=1,E=1,F=1"] {
            assert!(fixed_dimensions(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_line_carries_the_fixed_dimensions_in_its_dimension_set_and_at_the_root() {
        let layer = MetricsLayer::new("Latchkey", "login", Arc::new(|_: &str| {}))
            .with_dimensions(vec![("Stage".to_owned(), "prod".to_owned())]);
        let reason = BTreeMap::from([("Reason".to_owned(), "wrong_password".to_owned())]);
        let line = layer.line("LoginFailed", &reason, 1_800_000_000_000);
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function", "Stage", "Reason"]]));
        assert_eq!(
            (line["Stage"].as_str(), line["Reason"].as_str(), &line["LoginFailed"]),
            (Some("prod"), Some("wrong_password"), &json!(1))
        );
    }

    #[test]
    fn dimension_names_are_pascal_case() {
        assert_eq!(dimension_name("reason"), "Reason");
        assert_eq!(dimension_name("session_check"), "SessionCheck");
    }
}
