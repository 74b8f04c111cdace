//! Settings of the second factor: whether it is offered or required, who must
//! enrol, the issuer name authenticator apps show, and the guessing limit.

use std::time::Duration;

use super::{ConfigError, edge::list, is_role, parse_in_range, problem};

/// Whether users sign in with a second factor (`LATCHKEY_MFA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MfaMode {
    /// No second factor: the `/mfa` routes answer 404 and logins take the password
    /// alone, even of users who enrolled.
    Off,
    /// Users may enrol (the default); those who did, and those whose role is in
    /// `LATCHKEY_MFA_ROLES`, sign in with a code.
    #[default]
    Optional,
    /// Every user signs in with a code, enrolling at the first login if not yet.
    Required,
}

/// The second factor's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaConfig {
    /// `LATCHKEY_MFA`: `off`, `optional` (default) or `required`.
    pub mode: MfaMode,
    /// Roles that must enrol (with `optional`): after the password, a user with one
    /// of them who has not enrolled gets a token that allows enrolment only.
    /// `LATCHKEY_MFA_ROLES`, comma-separated, default empty.
    pub roles: Vec<String>,
    /// The name authenticator apps show beside the account (`issuer` of the
    /// `otpauth://` URI). `LATCHKEY_MFA_ISSUER`, default `Latchkey`; no `:`.
    pub issuer: String,
    /// Wrong codes per user per window before every code is refused (429), the right
    /// one too. `LATCHKEY_MFA_MAX_FAILURES`, default 5, 1–100.
    pub max_failures: u32,
    /// That window. `LATCHKEY_MFA_WINDOW_SECONDS`, default 300, 60–3600.
    pub window: Duration,
    /// Lifetime of the `mfaToken` a right password gets. Fixed: 5 minutes.
    pub token_ttl: Duration,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            mode: MfaMode::Optional,
            roles: Vec::new(),
            issuer: "Latchkey".to_owned(),
            max_failures: 5,
            window: Duration::from_secs(300),
            token_ttl: Duration::from_secs(300),
        }
    }
}

impl MfaConfig {
    /// Whether a user with `role` must sign in with a second factor (enrolling first
    /// if need be).
    pub fn required_for(&self, role: &str) -> bool {
        match self.mode {
            MfaMode::Off => false,
            MfaMode::Required => true,
            MfaMode::Optional => self.roles.iter().any(|required| required == role),
        }
    }

    /// Reads the second factor's settings through `get` (unset and empty values are `None`).
    pub(super) fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let mode = match get("LATCHKEY_MFA").as_deref().map(str::trim) {
            None => defaults.mode,
            Some("off") => MfaMode::Off,
            Some("optional") => MfaMode::Optional,
            Some("required") => MfaMode::Required,
            Some(_) => return Err(problem("LATCHKEY_MFA", "must be off, optional or required")),
        };
        let roles = list(get("LATCHKEY_MFA_ROLES"));
        if let Some(bad) = roles.iter().find(|role| !is_role(role)) {
            return Err(problem("LATCHKEY_MFA_ROLES", format!("{bad:?} is not a role")));
        }
        let issuer = match get("LATCHKEY_MFA_ISSUER").map(|issuer| issuer.trim().to_owned()) {
            None => defaults.issuer,
            Some(issuer)
                if !issuer.contains(':') && issuer.chars().count() <= 64 && !issuer.chars().any(char::is_control) =>
            {
                issuer
            }
            Some(_) => {
                return Err(problem(
                    "LATCHKEY_MFA_ISSUER",
                    "must be at most 64 characters without : or control characters",
                ));
            }
        };
        Ok(Self {
            mode,
            roles,
            issuer,
            max_failures: match get("LATCHKEY_MFA_MAX_FAILURES") {
                None => defaults.max_failures,
                Some(raw) => u32::try_from(parse_in_range("LATCHKEY_MFA_MAX_FAILURES", &raw, 1, 100)?).unwrap_or(5),
            },
            window: match get("LATCHKEY_MFA_WINDOW_SECONDS") {
                None => defaults.window,
                Some(raw) => Duration::from_secs(parse_in_range("LATCHKEY_MFA_WINDOW_SECONDS", &raw, 60, 3600)?),
            },
            token_ttl: defaults.token_ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<MfaConfig, ConfigError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        MfaConfig::from_lookup(&|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn who_must_use_a_second_factor_follows_the_mode_and_roles() {
        let optional = read(&[("LATCHKEY_MFA_ROLES", "Admin, ops")]).unwrap();
        assert_eq!(optional.mode, MfaMode::Optional);
        assert!(optional.required_for("Admin") && optional.required_for("ops"));
        assert!(!optional.required_for("member") && !optional.required_for("admin"), "roles compare exactly");
        let required = read(&[("LATCHKEY_MFA", "required")]).unwrap();
        assert!(required.required_for("member"));
        let off = read(&[("LATCHKEY_MFA", "off"), ("LATCHKEY_MFA_ROLES", "Admin")]).unwrap();
        assert!(!off.required_for("Admin"));
    }

    #[test]
    fn bad_settings_name_their_variable() {
        for (name, value) in [
            ("LATCHKEY_MFA", "on"),
            ("LATCHKEY_MFA_ROLES", "Admin,bad role"),
            ("LATCHKEY_MFA_ISSUER", "Acme:Corp"),
            ("LATCHKEY_MFA_MAX_FAILURES", "0"),
            ("LATCHKEY_MFA_WINDOW_SECONDS", "10"),
        ] {
            let error = read(&[(name, value)]).unwrap_err();
            assert_eq!(error.variable, name);
        }
        assert_eq!(read(&[]).unwrap(), MfaConfig::default());
    }
}
