//! Optional sign-up (`LATCHKEY_SIGNUP=open`) with a verified email: the account
//! exists at once but cannot log in until the mailed link is used; unverified
//! accounts expire. Whether the email was taken is never told: its owner gets a
//! "someone tried to sign up with your address" mail instead.

use crate::account::{AccountError, check_new_password};
use crate::config::SignupMode;
use crate::delivery::{Message, MessageKind};
use crate::encoding::{b64url, random_bytes};
use crate::onetime::Purpose;
use crate::password::Password;
use crate::recovery::{InvalidLink, Recovery};
use crate::store::{CredentialChange, StoreError, User, normalize_email};

/// What a sign-up came to, for logs and tests; the client gets one answer for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedUp {
    /// A new, unverified account; the verification link was handed to delivery
    /// (`false`: delivery failed, logged).
    Created {
        /// Whether delivery accepted the message.
        delivered: bool,
    },
    /// The email has an account: its owner was told (unless throttled).
    Taken,
    /// Too many messages to this email in the window: nothing was sent.
    Throttled,
}

impl SignedUp {
    /// A stable snake_case name for the audit line.
    pub fn code(self) -> &'static str {
        match self {
            Self::Created { .. } => "created",
            Self::Taken => "taken",
            Self::Throttled => "throttled",
        }
    }
}

/// Why a sign-up was refused outright (these are told: they depend on the request
/// alone, never on whether the email has an account).
#[derive(Debug, thiserror::Error)]
pub enum SignupRefused {
    /// `LATCHKEY_SIGNUP=off`.
    #[error("sign-up is off")]
    Off,
    /// The email's domain is not in `LATCHKEY_SIGNUP_DOMAINS`.
    #[error("this email domain may not sign up")]
    Domain,
    /// A bad email or password, or an outage.
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl Recovery {
    /// Signs `email` up with `password`. The same work whichever way it goes (the
    /// password is hashed either way); the caller answers every [`SignedUp`] alike.
    pub async fn sign_up(&self, email: &str, password: &Password) -> Result<SignedUp, SignupRefused> {
        let settings = self.settings();
        if settings.signup == SignupMode::Off {
            return Err(SignupRefused::Off);
        }
        let email = normalize_email(email).map_err(AccountError::from)?;
        let domain = email.rsplit_once('@').map(|(_, domain)| domain).unwrap_or_default();
        if !settings.signup_domains.is_empty() && !settings.signup_domains.iter().any(|allowed| allowed == domain) {
            return Err(SignupRefused::Domain);
        }
        check_new_password(password)?;
        let (allowed, hashed) = tokio::join!(self.mail_allowed(&email), self.accounts().hasher().hash(password));
        let (allowed, password_hash) = (allowed.map_err(AccountError::from)?, hashed.map_err(AccountError::from)?);
        let now = self.accounts().sessions().clock().now();
        let id = random_bytes::<16>()
            .map_err(|e| AccountError::from(StoreError::Unavailable(format!("randomness: {e}"))))?;
        let user = User {
            id: b64url(id),
            email: email.clone(),
            password_hash,
            role: self.settings().signup_role.clone(),
            disabled: false,
            password_changed_at: 0,
            session_epoch: 0,
            created_at: now,
            email_verified: false,
            pending_expires_at: Some(now.saturating_add(settings.verify_ttl.as_secs())),
            totp: Default::default(),
        };
        let outcome = match self.credentials().create_signup(&user, now).await {
            Ok(()) if !allowed => SignedUp::Created { delivered: false },
            Ok(()) => SignedUp::Created { delivered: self.send_verification(&user).await?.is_ok() },
            Err(StoreError::DuplicateEmail) if !allowed => SignedUp::Throttled,
            Err(StoreError::DuplicateEmail) => {
                let message = Message { kind: MessageKind::SignupExisting, to: email, link: None, expires_at: None };
                // Failure is logged by `deliver`; the answer does not change.
                let _ = self.deliver(&message).await;
                SignedUp::Taken
            }
            Err(error) => return Err(AccountError::from(error).into()),
        };
        match outcome {
            SignedUp::Created { .. } => tracing::info!(event = "user_signed_up", user_id = %user.id),
            other => tracing::info!(event = "signup_not_created", outcome = other.code()),
        }
        Ok(outcome)
    }

    /// Confirms an email with a verification link's secret: single use, as a reset
    /// is. The account can log in from then on.
    pub async fn verify_email(&self, presented: &str) -> Result<Result<String, InvalidLink>, AccountError> {
        let record = match self.live_record(Purpose::Verify, presented).await? {
            Ok(record) => record,
            Err(refused) => return Ok(Err(self.refused("email_verify_refused", refused))),
        };
        let now = self.accounts().sessions().clock().now();
        if !self.credentials().spend_secret(&record, now, &CredentialChange::VerifyEmail).await? {
            return Ok(Err(self.refused("email_verify_refused", InvalidLink::Spent)));
        }
        tracing::info!(event = "email_verified", user_id = %record.user_id);
        Ok(Ok(record.user_id))
    }
}
