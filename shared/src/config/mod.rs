//! Every `LATCHKEY_*` setting: defaults, allowed ranges and validation, read once at cold start.
//!
//! [`Config::from_env`] is called from each function's `main` (never per request);
//! tests build a [`Config`] directly or through [`Config::from_lookup`], so nothing
//! here ever needs `std::env::set_var`.

mod accounts;
mod edge;
mod mfa;
mod signing;

use std::time::Duration;

pub use accounts::{AccountConfig, DeliveryKind, SignupMode};
pub use edge::{
    ADMIN_PATHS, DEFAULT_ADMIN_ROLE, EdgeConfig, MFA_REQUIREMENT, RefreshDelivery, RouteRole, SessionCheckFailure,
    is_role, normal_path,
};
pub use mfa::{MfaConfig, MfaMode};
pub use signing::{SigningConfig, SigningMode};

use crate::password::PasswordParams;

const MINUTE: u64 = 60;
const DAY: u64 = 24 * 60 * MINUTE;

/// Names of every environment variable [`Config::from_lookup`] reads, in README order.
pub const VARIABLES: &[&str] = &[
    "LATCHKEY_ISSUER",
    "LATCHKEY_AUDIENCE",
    "LATCHKEY_ACCESS_TOKEN_TTL_SECONDS",
    "LATCHKEY_REFRESH_TOKEN_TTL_SECONDS",
    "LATCHKEY_SESSION_MAX_LIFETIME_SECONDS",
    "LATCHKEY_REFRESH_REUSE_GRACE_SECONDS",
    "LATCHKEY_CLOCK_SKEW_SECONDS",
    "LATCHKEY_TABLE_NAME",
    "LATCHKEY_KMS_KEY_ID",
    "LATCHKEY_KMS_VERIFY_KEY_IDS",
    "LATCHKEY_JWKS",
    "LATCHKEY_REFRESH_MAC_KEY_ID",
    "LATCHKEY_REFRESH_MAC_KEY",
    "LATCHKEY_ALLOW_FIXTURE_KEYS",
    "LATCHKEY_ARGON2_MEMORY_KIB",
    "LATCHKEY_ARGON2_ITERATIONS",
    "LATCHKEY_ARGON2_PARALLELISM",
    "LATCHKEY_LOGIN_MAX_FAILURES",
    "LATCHKEY_LOGIN_LOCKOUT_SECONDS",
    "LATCHKEY_ALLOWED_ORIGINS",
    "LATCHKEY_REFRESH_TOKEN_DELIVERY",
    "LATCHKEY_CSRF_HEADER",
    "LATCHKEY_COOKIE_PATH",
    "LATCHKEY_JWKS_MAX_AGE_SECONDS",
    "LATCHKEY_REQUIRED_ROLE",
    "LATCHKEY_ROUTE_ROLES",
    "LATCHKEY_ROUTE_MFA",
    "LATCHKEY_ADMIN_ROLE",
    "LATCHKEY_AUTHORIZER_SESSION_CHECK_SECONDS",
    "LATCHKEY_AUTHORIZER_SESSION_CHECK_FAILURE",
    "LATCHKEY_DELIVERY",
    "LATCHKEY_MAIL_FROM",
    "LATCHKEY_SES_TEMPLATE_PREFIX",
    "LATCHKEY_SNS_TOPIC_ARN",
    "LATCHKEY_LINK_BASE_URL",
    "LATCHKEY_RESET_TTL_SECONDS",
    "LATCHKEY_INVITE_TTL_SECONDS",
    "LATCHKEY_VERIFY_TTL_SECONDS",
    "LATCHKEY_MAIL_MAX_PER_EMAIL",
    "LATCHKEY_MAIL_MAX_PER_WINDOW",
    "LATCHKEY_MAIL_WINDOW_SECONDS",
    "LATCHKEY_SIGNUP",
    "LATCHKEY_SIGNUP_DOMAINS",
    "LATCHKEY_SIGNUP_ROLE",
    "LATCHKEY_ACCOUNT_RESPONSE_FLOOR_MS",
    "LATCHKEY_MFA",
    "LATCHKEY_MFA_ROLES",
    "LATCHKEY_MFA_ISSUER",
    "LATCHKEY_MFA_MAX_FAILURES",
    "LATCHKEY_MFA_WINDOW_SECONDS",
    "LATCHKEY_SIGNING",
    "LATCHKEY_SIGNING_KEY_PERIOD_SECONDS",
];

/// Variables a deployment must set: the functions that touch storage or keys
/// refuse to start without them (everything else has a default).
pub const REQUIRED_IN_DEPLOYMENT: [&str; 3] =
    ["LATCHKEY_TABLE_NAME", "LATCHKEY_KMS_KEY_ID", "LATCHKEY_REFRESH_MAC_KEY_ID"];

/// Latchkey's settings. Every field documents its variable, default and range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `iss` of issued access tokens, and the only issuer verifiers accept.
    /// `LATCHKEY_ISSUER`, default `latchkey`; 1–256 visible ASCII characters.
    pub issuer: String,
    /// `aud` of issued access tokens, and the only audience verifiers accept.
    /// `LATCHKEY_AUDIENCE`, default `latchkey-api`; 1–256 visible ASCII characters.
    pub audience: String,
    /// Access-token lifetime. `LATCHKEY_ACCESS_TOKEN_TTL_SECONDS`, default 900 (15 min), 60–3600.
    pub access_token_ttl: Duration,
    /// Refresh-token idle lifetime: a session unused for this long ends; each
    /// rotation extends it. `LATCHKEY_REFRESH_TOKEN_TTL_SECONDS`, default 2592000
    /// (30 days), 86400–7776000 (1–90 days).
    pub refresh_token_ttl: Duration,
    /// Absolute session lifetime, fixed at login; rotation never extends a session
    /// past it. `LATCHKEY_SESSION_MAX_LIFETIME_SECONDS`, default 7776000 (90 days),
    /// from the refresh-token lifetime up to 31536000 (365 days).
    pub session_max_lifetime: Duration,
    /// How long after a rotation the immediate predecessor is still accepted (and
    /// answered with the same successor). `LATCHKEY_REFRESH_REUSE_GRACE_SECONDS`,
    /// default 10, 0–60.
    pub refresh_reuse_grace: Duration,
    /// Clock-skew leeway for `exp`, `nbf` and `iat`. `LATCHKEY_CLOCK_SKEW_SECONDS`,
    /// default 30, 0–120.
    pub clock_skew: Duration,
    /// DynamoDB table holding users and sessions. `LATCHKEY_TABLE_NAME`, default
    /// `latchkey`; 3–255 characters of `A-Z a-z 0-9 _ - .`.
    pub table_name: String,
    /// KMS key (id, ARN, alias name or alias ARN) that signs access tokens.
    /// `LATCHKEY_KMS_KEY_ID`, no default: required by the functions that sign.
    pub kms_key_id: Option<String>,
    /// Further KMS keys whose tokens verifiers accept and the JWKS publishes, for
    /// key rotation. `LATCHKEY_KMS_VERIFY_KEY_IDS`, comma-separated, default empty.
    pub kms_verify_key_ids: Vec<String>,
    /// A JWKS document (JSON) that verifiers use instead of asking KMS, so the
    /// authorizer makes no AWS call at all. `LATCHKEY_JWKS`, default unset.
    pub jwks: Option<String>,
    /// KMS `HMAC_256` key from which the refresh-token MAC key is derived at cold
    /// start (`GenerateMac` over a fixed label). `LATCHKEY_REFRESH_MAC_KEY_ID`, no
    /// default: required by the functions that mint or check refresh tokens.
    pub refresh_mac_key_id: Option<String>,
    /// The refresh-token MAC key itself, for local runs (`cargo lambda watch`, `latchkey
    /// gateway`) and the sample events: 32 bytes, base64url. It takes the place of the
    /// KMS key, so it is never set in a deployment. `LATCHKEY_REFRESH_MAC_KEY`, default
    /// unset; setting it together with `LATCHKEY_REFRESH_MAC_KEY_ID` is an error.
    pub refresh_mac_key: Option<MacKeyBytes>,
    /// Whether the functions may start with the repository's committed test keys
    /// (the fixture signing key's `kid` in the verification keys, the fixture refresh
    /// MAC key): they are public, so by default the functions refuse to start with
    /// them. `events/local.env` sets it for local runs of the sample events.
    /// `LATCHKEY_ALLOW_FIXTURE_KEYS`, `true` or `false` (default).
    pub allow_fixture_keys: bool,
    /// argon2id cost for new hashes; stored hashes weaker than this are upgraded at
    /// the next login. `LATCHKEY_ARGON2_MEMORY_KIB` (default 19456, 19456–1048576),
    /// `LATCHKEY_ARGON2_ITERATIONS` (default 2, 2–20), `LATCHKEY_ARGON2_PARALLELISM`
    /// (default 1, 1–16).
    pub password: PasswordParams,
    /// Failed logins allowed per email within one lockout window; one more is
    /// answered `429 too_many_attempts` until the window ends. 0 turns the limit off.
    /// `LATCHKEY_LOGIN_MAX_FAILURES`, default 10, 0–1000.
    pub login_max_failures: u32,
    /// Length of the fixed window failed logins are counted in.
    /// `LATCHKEY_LOGIN_LOCKOUT_SECONDS`, default 900 (15 min), 60–86400.
    pub login_lockout: Duration,
    /// HTTP edge and authorizer settings (CORS, cookie, CSRF, JWKS caching, roles).
    pub edge: EdgeConfig,
    /// The account flows' settings (delivery, links, lifetimes, sign-up).
    pub accounts: AccountConfig,
    /// The second factor's settings (mode, roles that must enrol, issuer, limit).
    pub mfa: MfaConfig,
    /// How access tokens are signed (KMS per token, or delegated keys) and the
    /// delegated keys' period.
    pub signing: SigningConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "latchkey".to_owned(),
            audience: "latchkey-api".to_owned(),
            access_token_ttl: Duration::from_secs(15 * MINUTE),
            refresh_token_ttl: Duration::from_secs(30 * DAY),
            session_max_lifetime: Duration::from_secs(90 * DAY),
            refresh_reuse_grace: Duration::from_secs(10),
            clock_skew: Duration::from_secs(30),
            table_name: "latchkey".to_owned(),
            kms_key_id: None,
            kms_verify_key_ids: Vec::new(),
            jwks: None,
            refresh_mac_key_id: None,
            refresh_mac_key: None,
            allow_fixture_keys: false,
            password: PasswordParams::default(),
            login_max_failures: 10,
            login_lockout: Duration::from_secs(15 * MINUTE),
            edge: EdgeConfig::default(),
            accounts: AccountConfig::default(),
            mfa: MfaConfig::default(),
            signing: SigningConfig::default(),
        }
    }
}

/// A refresh-token MAC key given directly (`LATCHKEY_REFRESH_MAC_KEY`). Its `Debug`
/// never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct MacKeyBytes([u8; 32]);

impl MacKeyBytes {
    /// The key from 32 bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn parse(raw: &str) -> Result<Self, ConfigError> {
        use base64::Engine as _;
        let name = "LATCHKEY_REFRESH_MAC_KEY";
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw.trim().trim_end_matches('='))
            .map_err(|_| problem(name, "is not base64url"))?;
        let bytes = <[u8; 32]>::try_from(decoded).map_err(|_| problem(name, "must be exactly 32 bytes"))?;
        Ok(Self(bytes))
    }
}

impl std::fmt::Debug for MacKeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKeyBytes([redacted])")
    }
}

/// A setting that is present but not acceptable. Start-up stops with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong with its value.
    pub problem: String,
}

impl Config {
    /// Reads every `LATCHKEY_*` variable from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (a variable name to its value, `None` when
    /// unset). An empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let defaults = Self::default();
        let seconds = |name: &'static str, default: Duration, min: u64, max: u64| match get(name) {
            None => Ok(default),
            Some(raw) => parse_in_range(name, &raw, min, max).map(Duration::from_secs),
        };
        let number = |name: &'static str, default: u32, min: u64, max: u64| match get(name) {
            None => Ok(default),
            Some(raw) => parse_in_range(name, &raw, min, max)
                .and_then(|n| u32::try_from(n).map_err(|_| problem(name, "out of range"))),
        };

        let refresh_token_ttl =
            seconds("LATCHKEY_REFRESH_TOKEN_TTL_SECONDS", defaults.refresh_token_ttl, DAY, 90 * DAY)?;
        let session_max_lifetime = seconds(
            "LATCHKEY_SESSION_MAX_LIFETIME_SECONDS",
            // The longest refresh lifetime (90 days) equals the default cap, so the
            // default always fits.
            defaults.session_max_lifetime,
            refresh_token_ttl.as_secs(),
            365 * DAY,
        )?;

        Self {
            issuer: identifier("LATCHKEY_ISSUER", get("LATCHKEY_ISSUER"), defaults.issuer)?,
            audience: identifier("LATCHKEY_AUDIENCE", get("LATCHKEY_AUDIENCE"), defaults.audience)?,
            access_token_ttl: seconds(
                "LATCHKEY_ACCESS_TOKEN_TTL_SECONDS",
                defaults.access_token_ttl,
                MINUTE,
                60 * MINUTE,
            )?,
            refresh_token_ttl,
            session_max_lifetime,
            refresh_reuse_grace: seconds("LATCHKEY_REFRESH_REUSE_GRACE_SECONDS", defaults.refresh_reuse_grace, 0, 60)?,
            clock_skew: seconds("LATCHKEY_CLOCK_SKEW_SECONDS", defaults.clock_skew, 0, 120)?,
            table_name: table_name(get("LATCHKEY_TABLE_NAME"), defaults.table_name)?,
            kms_key_id: get("LATCHKEY_KMS_KEY_ID").map(|id| id.trim().to_owned()),
            kms_verify_key_ids: get("LATCHKEY_KMS_VERIFY_KEY_IDS")
                .map(|ids| ids.split(',').map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
            jwks: get("LATCHKEY_JWKS"),
            refresh_mac_key_id: get("LATCHKEY_REFRESH_MAC_KEY_ID").map(|id| id.trim().to_owned()),
            refresh_mac_key: match (get("LATCHKEY_REFRESH_MAC_KEY"), get("LATCHKEY_REFRESH_MAC_KEY_ID")) {
                (None, _) => None,
                (Some(_), Some(_)) => {
                    return Err(problem("LATCHKEY_REFRESH_MAC_KEY", "set it or LATCHKEY_REFRESH_MAC_KEY_ID, not both"));
                }
                (Some(raw), None) => Some(MacKeyBytes::parse(&raw)?),
            },
            allow_fixture_keys: match get("LATCHKEY_ALLOW_FIXTURE_KEYS").as_deref().map(str::trim) {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err(problem("LATCHKEY_ALLOW_FIXTURE_KEYS", "must be true or false")),
            },
            password: PasswordParams {
                memory_kib: number("LATCHKEY_ARGON2_MEMORY_KIB", defaults.password.memory_kib, 19_456, 1_048_576)?,
                iterations: number("LATCHKEY_ARGON2_ITERATIONS", defaults.password.iterations, 2, 20)?,
                parallelism: number("LATCHKEY_ARGON2_PARALLELISM", defaults.password.parallelism, 1, 16)?,
            },
            login_max_failures: number("LATCHKEY_LOGIN_MAX_FAILURES", defaults.login_max_failures, 0, 1000)?,
            login_lockout: seconds("LATCHKEY_LOGIN_LOCKOUT_SECONDS", defaults.login_lockout, MINUTE, DAY)?,
            edge: EdgeConfig::from_lookup(&get)?,
            accounts: AccountConfig::from_lookup(&get)?,
            mfa: MfaConfig::from_lookup(&get)?,
            signing: SigningConfig::from_lookup(&get)?,
        }
        .with_roles_apart()
    }

    /// Refuses a sign-up role that is the administrators' role: anyone could make
    /// themselves an administrator by signing up.
    fn with_roles_apart(self) -> Result<Self, ConfigError> {
        if self.accounts.signup_role == self.edge.admin_role {
            return Err(problem(
                "LATCHKEY_SIGNUP_ROLE",
                "must not be LATCHKEY_ADMIN_ROLE: sign-ups would be administrators",
            ));
        }
        Ok(self)
    }

    /// The signing key id, or an error naming the variable that must be set.
    pub fn require_kms_key_id(&self) -> Result<&str, ConfigError> {
        self.kms_key_id
            .as_deref()
            .ok_or_else(|| problem("LATCHKEY_KMS_KEY_ID", "must be set to a KMS key id, ARN or alias"))
    }

    /// The refresh-token MAC key id, or an error naming the variable that must be set.
    pub fn require_refresh_mac_key_id(&self) -> Result<&str, ConfigError> {
        self.refresh_mac_key_id
            .as_deref()
            .ok_or_else(|| problem("LATCHKEY_REFRESH_MAC_KEY_ID", "must be set to a KMS HMAC_256 key id, ARN or alias"))
    }
}

pub(crate) fn problem(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { variable, problem: problem.into() }
}

pub(crate) fn parse_in_range(name: &'static str, raw: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let value: u64 = raw.trim().parse().map_err(|_| problem(name, format!("{raw:?} is not a whole number")))?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(problem(name, format!("{value} is outside {min}..={max}")))
    }
}

fn identifier(name: &'static str, raw: Option<String>, default: String) -> Result<String, ConfigError> {
    let Some(value) = raw else {
        return Ok(default);
    };
    let value = value.trim().to_owned();
    if value.len() > 256 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(problem(name, "must be 1-256 visible ASCII characters"));
    }
    Ok(value)
}

fn table_name(raw: Option<String>, default: String) -> Result<String, ConfigError> {
    let Some(value) = raw else {
        return Ok(default);
    };
    let value = value.trim().to_owned();
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    if !(3..=255).contains(&value.len()) || !value.bytes().all(allowed) {
        return Err(problem("LATCHKEY_TABLE_NAME", "must be 3-255 characters of A-Z a-z 0-9 _ - ."));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn refresh_mac_key_is_32_base64url_bytes_never_shown_and_never_beside_a_kms_key() {
        let key = "bGF0Y2hrZXkgc2FtcGxlIGV2ZW50cyBvbmx5IDIwMjY";
        let config = config_from(&[("LATCHKEY_REFRESH_MAC_KEY", key)]).unwrap();
        assert_eq!(config.refresh_mac_key.as_ref().unwrap().bytes(), b"latchkey sample events only 2026");
        assert!(!format!("{config:?}").contains("sample"), "Debug shows the key");
        let short = config_from(&[("LATCHKEY_REFRESH_MAC_KEY", "c2hvcnQ")]).unwrap_err();
        assert_eq!((short.variable, short.problem.as_str()), ("LATCHKEY_REFRESH_MAC_KEY", "must be exactly 32 bytes"));
        assert_eq!(
            config_from(&[("LATCHKEY_REFRESH_MAC_KEY", "not base64!")]).unwrap_err().problem,
            "is not base64url"
        );
        let both = config_from(&[("LATCHKEY_REFRESH_MAC_KEY", key), ("LATCHKEY_REFRESH_MAC_KEY_ID", "alias/x")]);
        assert_eq!(both.unwrap_err().variable, "LATCHKEY_REFRESH_MAC_KEY");
    }

    fn config_from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn empty_environment_gives_documented_defaults() {
        let config = config_from(&[]).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.access_token_ttl, Duration::from_secs(900));
        assert_eq!(config.refresh_token_ttl, Duration::from_secs(30 * DAY));
        assert_eq!(config.session_max_lifetime, Duration::from_secs(90 * DAY));
        assert_eq!(config.clock_skew, Duration::from_secs(30));
        assert_eq!(config.refresh_reuse_grace, Duration::from_secs(10));
        assert_eq!(config.password, PasswordParams { memory_kib: 19_456, iterations: 2, parallelism: 1 });
        // The README's table, as literals: a changed default must change the docs too.
        assert_eq!((config.issuer.as_str(), config.audience.as_str()), ("latchkey", "latchkey-api"));
        assert_eq!(config.table_name, "latchkey");
        assert_eq!((config.login_max_failures, config.login_lockout), (10, Duration::from_secs(900)));
        assert_eq!(config.edge.cookie_path, "/refresh-token");
        assert_eq!(config.edge.jwks_max_age_secs, 300);
        assert_eq!(config.edge.csrf_header, "X-Latchkey-CSRF");
        assert!(config.edge.allowed_origins.is_empty() && config.edge.route_roles.is_empty());
        assert_eq!(config.edge.required_role, None);
        assert!(config.kms_key_id.is_none() && config.jwks.is_none() && config.refresh_mac_key.is_none());
    }

    #[test]
    fn a_sign_up_role_may_not_be_the_admin_role() {
        let read = |pairs: &[(&str, &str)]| {
            Config::from_lookup(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
        };
        let error = read(&[("LATCHKEY_SIGNUP_ROLE", "Admin")]).unwrap_err();
        assert_eq!(error.variable, "LATCHKEY_SIGNUP_ROLE");
        let error = read(&[("LATCHKEY_ADMIN_ROLE", "member")]).unwrap_err();
        assert_eq!(error.variable, "LATCHKEY_SIGNUP_ROLE");
        let config = read(&[("LATCHKEY_ADMIN_ROLE", "ops"), ("LATCHKEY_SIGNUP_ROLE", "Admin")]).unwrap();
        assert_eq!((config.edge.admin_role.as_str(), config.accounts.signup_role.as_str()), ("ops", "Admin"));
        assert!(read(&[("LATCHKEY_ADMIN_ROLE", "two words")]).is_err());
    }

    #[test]
    fn variables_lists_exactly_the_names_the_config_reads() {
        let asked = std::sync::Mutex::new(std::collections::BTreeSet::new());
        Config::from_lookup(|name| {
            asked.lock().unwrap().insert(name.to_owned());
            None
        })
        .unwrap();
        let asked = asked.into_inner().unwrap();
        let listed: std::collections::BTreeSet<String> = VARIABLES.iter().map(|v| (*v).to_owned()).collect();
        assert_eq!(asked, listed);
        assert_eq!(VARIABLES.len(), listed.len(), "a name is listed twice");
    }

    #[test]
    fn every_variable_is_read() {
        let config = config_from(&[
            ("LATCHKEY_ISSUER", "https://auth.example.com"),
            ("LATCHKEY_AUDIENCE", "orders-api"),
            ("LATCHKEY_ACCESS_TOKEN_TTL_SECONDS", "300"),
            ("LATCHKEY_REFRESH_TOKEN_TTL_SECONDS", "86400"),
            ("LATCHKEY_SESSION_MAX_LIFETIME_SECONDS", "172800"),
            ("LATCHKEY_REFRESH_REUSE_GRACE_SECONDS", "0"),
            ("LATCHKEY_CLOCK_SKEW_SECONDS", "120"),
            ("LATCHKEY_TABLE_NAME", "auth.prod"),
            ("LATCHKEY_KMS_KEY_ID", " alias/latchkey "),
            ("LATCHKEY_KMS_VERIFY_KEY_IDS", "alias/old, ,arn:aws:kms:eu-west-1:1:key/x"),
            ("LATCHKEY_JWKS", r#"{"keys":[]}"#),
            ("LATCHKEY_REFRESH_MAC_KEY_ID", "alias/latchkey-refresh"),
            ("LATCHKEY_ARGON2_MEMORY_KIB", "65536"),
            ("LATCHKEY_ARGON2_ITERATIONS", "3"),
            ("LATCHKEY_ARGON2_PARALLELISM", "2"),
            ("LATCHKEY_LOGIN_MAX_FAILURES", "0"),
            ("LATCHKEY_LOGIN_LOCKOUT_SECONDS", "60"),
        ])
        .unwrap();
        assert_eq!(config.issuer, "https://auth.example.com");
        assert_eq!(config.audience, "orders-api");
        assert_eq!(config.access_token_ttl, Duration::from_secs(300));
        assert_eq!(config.refresh_token_ttl, Duration::from_secs(86_400));
        assert_eq!(config.session_max_lifetime, Duration::from_secs(172_800));
        assert_eq!(config.refresh_reuse_grace, Duration::ZERO);
        assert_eq!(config.clock_skew, Duration::from_secs(120));
        assert_eq!(config.table_name, "auth.prod");
        assert_eq!(config.require_kms_key_id().unwrap(), "alias/latchkey");
        assert_eq!(config.kms_verify_key_ids, ["alias/old", "arn:aws:kms:eu-west-1:1:key/x"]);
        assert_eq!(config.jwks.as_deref(), Some(r#"{"keys":[]}"#));
        assert_eq!((config.login_max_failures, config.login_lockout), (0, Duration::from_secs(60)));
        assert_eq!(config.require_refresh_mac_key_id().unwrap(), "alias/latchkey-refresh");
        assert_eq!(config.password, PasswordParams { memory_kib: 65_536, iterations: 3, parallelism: 2 });
    }

    #[test]
    fn out_of_range_values_name_their_variable() {
        for (name, value) in [
            ("LATCHKEY_ACCESS_TOKEN_TTL_SECONDS", "59"),
            ("LATCHKEY_ACCESS_TOKEN_TTL_SECONDS", "3601"),
            ("LATCHKEY_REFRESH_TOKEN_TTL_SECONDS", "86399"),
            ("LATCHKEY_REFRESH_TOKEN_TTL_SECONDS", "7776001"),
            ("LATCHKEY_SESSION_MAX_LIFETIME_SECONDS", "31536001"),
            ("LATCHKEY_REFRESH_REUSE_GRACE_SECONDS", "61"),
            ("LATCHKEY_CLOCK_SKEW_SECONDS", "121"),
            ("LATCHKEY_CLOCK_SKEW_SECONDS", "-1"),
            ("LATCHKEY_CLOCK_SKEW_SECONDS", "thirty"),
            ("LATCHKEY_ARGON2_MEMORY_KIB", "19455"),
            ("LATCHKEY_ARGON2_ITERATIONS", "1"),
            ("LATCHKEY_ARGON2_PARALLELISM", "0"),
            ("LATCHKEY_LOGIN_MAX_FAILURES", "1001"),
            ("LATCHKEY_LOGIN_LOCKOUT_SECONDS", "59"),
            ("LATCHKEY_TABLE_NAME", "a b"),
            ("LATCHKEY_TABLE_NAME", "ab"),
            ("LATCHKEY_ISSUER", "has space"),
        ] {
            let error = config_from(&[(name, value)]).unwrap_err();
            assert_eq!(error.variable, name, "{name}={value}");
            assert!(error.to_string().contains(name), "{error}");
        }
    }

    #[test]
    fn session_lifetime_shorter_than_refresh_lifetime_is_refused() {
        let error = config_from(&[
            ("LATCHKEY_REFRESH_TOKEN_TTL_SECONDS", "2592000"),
            ("LATCHKEY_SESSION_MAX_LIFETIME_SECONDS", "86400"),
        ])
        .unwrap_err();
        assert_eq!(error.variable, "LATCHKEY_SESSION_MAX_LIFETIME_SECONDS");
    }

    #[test]
    fn session_cap_below_the_refresh_lifetime_is_refused_and_the_longest_fits_the_default() {
        let config = config_from(&[("LATCHKEY_REFRESH_TOKEN_TTL_SECONDS", "7776000")]).unwrap();
        assert_eq!(config.session_max_lifetime, Duration::from_secs(7_776_000));
        let short = config_from(&[
            ("LATCHKEY_REFRESH_TOKEN_TTL_SECONDS", "2592001"),
            ("LATCHKEY_SESSION_MAX_LIFETIME_SECONDS", "2592000"),
        ])
        .unwrap_err();
        assert_eq!(short.variable, "LATCHKEY_SESSION_MAX_LIFETIME_SECONDS");
        let equal = config_from(&[
            ("LATCHKEY_REFRESH_TOKEN_TTL_SECONDS", "2592000"),
            ("LATCHKEY_SESSION_MAX_LIFETIME_SECONDS", "2592000"),
        ]);
        assert_eq!(equal.unwrap().session_max_lifetime, Duration::from_secs(2_592_000));
    }

    #[test]
    fn missing_kms_key_is_reported_by_name() {
        let error = Config::default().require_kms_key_id().unwrap_err();
        assert_eq!(error.variable, "LATCHKEY_KMS_KEY_ID");
        let error = Config::default().require_refresh_mac_key_id().unwrap_err();
        assert_eq!(error.variable, "LATCHKEY_REFRESH_MAC_KEY_ID");
    }

    #[test]
    fn readme_documents_every_variable() {
        let readme = include_str!("../../../README.md");
        for name in VARIABLES {
            assert!(readme.contains(&format!("`{name}`")), "README lacks {name}");
        }
    }
}
