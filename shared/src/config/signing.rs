//! Settings of how access tokens are signed: by KMS per token, or by a short-lived
//! key the KMS key vouches for (docs/security.md, "Signing modes").

use std::time::Duration;

use super::{ConfigError, parse_in_range, problem};

/// How access tokens are signed (`LATCHKEY_SIGNING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningMode {
    /// Every token is signed by KMS `Sign` (the default): no private key ever
    /// exists outside KMS.
    #[default]
    Kms,
    /// Tokens are signed in the function by a key of the current period, which
    /// the KMS key vouches for once per period; no KMS call per token.
    Delegated,
}

/// The signing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningConfig {
    /// `LATCHKEY_SIGNING`: `kms` (default) or `delegated`.
    pub mode: SigningMode,
    /// Length of a delegated key's signing period; a key signs only inside its
    /// period. `LATCHKEY_SIGNING_KEY_PERIOD_SECONDS`, default 3600, 300–3600, and a
    /// divisor of 86400 so periods line up across instances and days.
    pub key_period: Duration,
}

impl Default for SigningConfig {
    fn default() -> Self {
        Self { mode: SigningMode::Kms, key_period: Duration::from_secs(3600) }
    }
}

impl SigningConfig {
    /// Whether access tokens are signed by delegated keys.
    pub fn is_delegated(&self) -> bool {
        self.mode == SigningMode::Delegated
    }

    /// Reads the signing settings through `get` (unset and empty values are `None`).
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let mode = match get("LATCHKEY_SIGNING").as_deref().map(str::trim) {
            None | Some("kms") => SigningMode::Kms,
            Some("delegated") => SigningMode::Delegated,
            Some(_) => return Err(problem("LATCHKEY_SIGNING", "must be kms or delegated")),
        };
        let name = "LATCHKEY_SIGNING_KEY_PERIOD_SECONDS";
        let key_period = match get(name) {
            None => defaults.key_period,
            Some(raw) => {
                let seconds = parse_in_range(name, &raw, 300, 3600)?;
                if 86_400 % seconds != 0 {
                    return Err(problem(name, "must divide a day (e.g. 300, 600, 900, 1800, 3600)"));
                }
                Duration::from_secs(seconds)
            }
        };
        Ok(Self { mode, key_period })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<SigningConfig, ConfigError> {
        SigningConfig::from_lookup(&|name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn kms_is_the_default_and_delegated_is_chosen_by_name() {
        assert_eq!(read(&[]).unwrap(), SigningConfig::default());
        assert!(!read(&[("LATCHKEY_SIGNING", "kms")]).unwrap().is_delegated());
        let delegated = read(&[("LATCHKEY_SIGNING", "delegated"), ("LATCHKEY_SIGNING_KEY_PERIOD_SECONDS", "900")]);
        assert_eq!(
            delegated.unwrap(),
            SigningConfig { mode: SigningMode::Delegated, key_period: Duration::from_secs(900) }
        );
        assert!(read(&[("LATCHKEY_SIGNING", "local")]).is_err());
    }

    #[test]
    fn a_period_must_be_five_minutes_to_an_hour_and_divide_a_day() {
        for bad in ["299", "3601", "700", "abc"] {
            assert!(read(&[("LATCHKEY_SIGNING_KEY_PERIOD_SECONDS", bad)]).is_err(), "{bad}");
        }
        assert!(read(&[("LATCHKEY_SIGNING_KEY_PERIOD_SECONDS", "300")]).is_ok());
    }
}
