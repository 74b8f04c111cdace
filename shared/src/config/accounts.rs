//! Settings of the account flows: delivery, links, lifetimes of one-time secrets,
//! message limits, sign-up and the response-time floor.

use std::time::Duration;

use super::{ConfigError, parse_in_range, problem};

/// How messages leave (`LATCHKEY_DELIVERY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryKind {
    /// None configured (the default): the flows answer as usual and log `mail_failed`.
    #[default]
    None,
    /// Amazon SES, from `LATCHKEY_MAIL_FROM`.
    Ses,
    /// The deployer's own sender, through the SNS topic `LATCHKEY_SNS_TOPIC_ARN`.
    Sns,
}

/// Whether anyone may create an account (`LATCHKEY_SIGNUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignupMode {
    /// Only operators (and invitations) create accounts (the default).
    #[default]
    Off,
    /// Anyone may sign up, with an email they verify (and a domain on the allow-list, if one is set).
    Open,
}

/// The account flows' settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// `LATCHKEY_DELIVERY`: `none` (default), `ses` or `sns`.
    pub delivery: DeliveryKind,
    /// The sender address of SES mail, an address of a verified SES identity.
    /// `LATCHKEY_MAIL_FROM`, required with `ses`.
    pub mail_from: Option<String>,
    /// SES templates replacing the built-in texts: `<prefix>-password_reset` and so on.
    /// `LATCHKEY_SES_TEMPLATE_PREFIX`, default unset (the built-in texts).
    pub ses_template_prefix: Option<String>,
    /// The topic the deployer's sender subscribes to. `LATCHKEY_SNS_TOPIC_ARN`,
    /// required with `sns`.
    pub sns_topic_arn: Option<String>,
    /// Where links point: the page that reads `#action=...&token=...`.
    /// `LATCHKEY_LINK_BASE_URL`, an absolute `https://` URL (or `http://localhost`)
    /// without a fragment; required when messages are delivered.
    pub link_base_url: Option<String>,
    /// Lifetime of a reset link. `LATCHKEY_RESET_TTL_SECONDS`, default 900, 300–86400.
    pub reset_ttl: Duration,
    /// Lifetime of an invitation link. `LATCHKEY_INVITE_TTL_SECONDS`, default 604800
    /// (7 days), 3600–2592000.
    pub invite_ttl: Duration,
    /// Lifetime of an email-verification link, and of an unverified sign-up.
    /// `LATCHKEY_VERIFY_TTL_SECONDS`, default 86400, 3600–604800.
    pub verify_ttl: Duration,
    /// Messages (reset links, "someone tried to sign up") per email per window.
    /// `LATCHKEY_MAIL_MAX_PER_EMAIL`, default 3, 1–100.
    pub mail_max_per_email: u32,
    /// Messages anyone may cause (all but invitations), across the stack, per window.
    /// `LATCHKEY_MAIL_MAX_PER_WINDOW`, default 1000, 1–1000000.
    pub mail_max_per_window: u32,
    /// The window of that limit. `LATCHKEY_MAIL_WINDOW_SECONDS`, default 3600, 60–86400.
    pub mail_window: Duration,
    /// `LATCHKEY_SIGNUP`: `off` (default) or `open`.
    pub signup: SignupMode,
    /// Email domains that may sign up; empty: any. `LATCHKEY_SIGNUP_DOMAINS`, comma-separated.
    pub signup_domains: Vec<String>,
    /// The role of signed-up users. `LATCHKEY_SIGNUP_ROLE`, default `member`.
    pub signup_role: String,
    /// Forgot-password and sign-up answer this long after the request arrived,
    /// whatever happened, so their time tells nothing.
    /// `LATCHKEY_ACCOUNT_RESPONSE_FLOOR_MS`, default 1000, 0–5000.
    pub response_floor: Duration,
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self {
            delivery: DeliveryKind::None,
            mail_from: None,
            ses_template_prefix: None,
            sns_topic_arn: None,
            link_base_url: None,
            reset_ttl: Duration::from_secs(900),
            invite_ttl: Duration::from_secs(7 * 24 * 3600),
            verify_ttl: Duration::from_secs(24 * 3600),
            mail_max_per_email: 3,
            mail_max_per_window: 1000,
            mail_window: Duration::from_secs(3600),
            signup: SignupMode::Off,
            signup_domains: Vec::new(),
            signup_role: crate::account::DEFAULT_ROLE.to_owned(),
            response_floor: Duration::from_millis(1000),
        }
    }
}

impl AccountConfig {
    /// How long a delivery may take inside a request: what the response floor leaves
    /// after the store work (a quarter of it, at least 250 ms), or 3 s without a floor.
    pub fn delivery_budget(&self) -> Duration {
        if self.response_floor.is_zero() {
            return Duration::from_secs(3);
        }
        (self.response_floor * 3 / 4).max(Duration::from_millis(250))
    }

    /// Reads the account settings through `get` (unset and empty values are `None`).
    pub(super) fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let seconds = |name: &'static str, default: Duration, min: u64, max: u64| match get(name) {
            None => Ok(default),
            Some(raw) => parse_in_range(name, &raw, min, max).map(Duration::from_secs),
        };
        let text = |name: &str| get(name).map(|value| value.trim().to_owned());
        let delivery = match text("LATCHKEY_DELIVERY").as_deref() {
            None | Some("none") => DeliveryKind::None,
            Some("ses") => DeliveryKind::Ses,
            Some("sns") => DeliveryKind::Sns,
            Some("terminal") => {
                return Err(problem(
                    "LATCHKEY_DELIVERY",
                    "terminal delivery prints secrets and is for `latchkey dev` only (which uses it by itself)",
                ));
            }
            Some(_) => return Err(problem("LATCHKEY_DELIVERY", "must be none, ses or sns")),
        };
        let config = Self {
            delivery,
            mail_from: text("LATCHKEY_MAIL_FROM"),
            ses_template_prefix: text("LATCHKEY_SES_TEMPLATE_PREFIX"),
            sns_topic_arn: text("LATCHKEY_SNS_TOPIC_ARN"),
            link_base_url: text("LATCHKEY_LINK_BASE_URL").map(link_base).transpose()?,
            reset_ttl: seconds("LATCHKEY_RESET_TTL_SECONDS", defaults.reset_ttl, 300, 86_400)?,
            invite_ttl: seconds("LATCHKEY_INVITE_TTL_SECONDS", defaults.invite_ttl, 3_600, 30 * 86_400)?,
            verify_ttl: seconds("LATCHKEY_VERIFY_TTL_SECONDS", defaults.verify_ttl, 3_600, 7 * 86_400)?,
            mail_max_per_email: match get("LATCHKEY_MAIL_MAX_PER_EMAIL") {
                None => defaults.mail_max_per_email,
                Some(raw) => parse_in_range("LATCHKEY_MAIL_MAX_PER_EMAIL", &raw, 1, 100)? as u32,
            },
            mail_max_per_window: match get("LATCHKEY_MAIL_MAX_PER_WINDOW") {
                None => defaults.mail_max_per_window,
                Some(raw) => parse_in_range("LATCHKEY_MAIL_MAX_PER_WINDOW", &raw, 1, 1_000_000)? as u32,
            },
            mail_window: seconds("LATCHKEY_MAIL_WINDOW_SECONDS", defaults.mail_window, 60, 86_400)?,
            signup: match text("LATCHKEY_SIGNUP").as_deref() {
                None | Some("off") => SignupMode::Off,
                Some("open") => SignupMode::Open,
                Some(_) => return Err(problem("LATCHKEY_SIGNUP", "must be off or open")),
            },
            signup_domains: text("LATCHKEY_SIGNUP_DOMAINS")
                .map(|raw| {
                    raw.split(',').map(|d| d.trim().to_lowercase()).filter(|d| !d.is_empty()).map(domain).collect()
                })
                .transpose()?
                .unwrap_or_default(),
            signup_role: match text("LATCHKEY_SIGNUP_ROLE") {
                None => defaults.signup_role,
                Some(role) => {
                    crate::account::check_role(&role)
                        .map_err(|_| problem("LATCHKEY_SIGNUP_ROLE", "must be 1-64 of A-Z a-z 0-9 _ - : . /"))?;
                    role
                }
            },
            response_floor: match get("LATCHKEY_ACCOUNT_RESPONSE_FLOOR_MS") {
                None => defaults.response_floor,
                Some(raw) => {
                    Duration::from_millis(parse_in_range("LATCHKEY_ACCOUNT_RESPONSE_FLOOR_MS", &raw, 0, 5_000)?)
                }
            },
        };
        match config.delivery {
            DeliveryKind::Ses if config.mail_from.is_none() => Err(problem(
                "LATCHKEY_MAIL_FROM",
                "must be set (a verified SES identity's address) with LATCHKEY_DELIVERY=ses",
            )),
            DeliveryKind::Sns if config.sns_topic_arn.is_none() => {
                Err(problem("LATCHKEY_SNS_TOPIC_ARN", "must be set with LATCHKEY_DELIVERY=sns"))
            }
            DeliveryKind::Ses | DeliveryKind::Sns if config.link_base_url.is_none() => Err(problem(
                "LATCHKEY_LINK_BASE_URL",
                "must be set (the page that reads the links) when messages are delivered",
            )),
            _ => Ok(config),
        }
    }
}

/// An absolute `https://` URL (or `http://localhost[:port]`) without a fragment.
fn link_base(raw: String) -> Result<String, ConfigError> {
    let name = "LATCHKEY_LINK_BASE_URL";
    let https = raw.starts_with("https://") && raw.len() > "https://".len();
    let local =
        raw.starts_with("http://localhost:") || raw.starts_with("http://localhost/") || raw == "http://localhost";
    if !(https || local) {
        return Err(problem(name, "must be an https:// URL (or http://localhost for local runs)"));
    }
    if raw.contains('#') || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(problem(name, "must have no fragment (#) and no spaces: the link's secret goes in the fragment"));
    }
    Ok(raw)
}

fn domain(raw: String) -> Result<String, ConfigError> {
    let fine = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
    if raw.is_empty() || raw.len() > 253 || !raw.bytes().all(fine) || !raw.contains('.') {
        return Err(problem("LATCHKEY_SIGNUP_DOMAINS", "must be comma-separated domains such as example.com"));
    }
    Ok(raw)
}
