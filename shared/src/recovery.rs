//! Getting into an account without the password: forgot password (a reset link),
//! reset with the link, and invitations (an operator's set-password link). The link
//! carries a one-time secret ([`crate::onetime`]); delivery goes through the
//! [`Delivery`] port.
//!
//! Nothing here tells a caller whether an email has an account: [`Recovery::forgot`]
//! reports what happened for logs only, and the HTTP edge answers every outcome alike,
//! at a fixed time.

use std::sync::Arc;
use std::time::Duration;

use crate::account::{AccountError, Accounts, DEFAULT_ROLE, check_new_password, check_role};
use crate::config::AccountConfig;
use crate::delivery::{Delivery, DeliveryError, Message, MessageKind};
use crate::encoding::{b64url, random_bytes};
use crate::onetime::{Purpose, SecretKey};
use crate::password::Password;
use crate::store::{
    CredentialChange, CredentialStore, LoginAttemptStore, SecretRecord, StoreError, User, normalize_email,
};

/// Builds the links in messages: `<base>#action=<action>&token=<secret>`. The secret
/// is in the fragment, which browsers never send to a server nor put in `Referer`
/// (RFC 3986 §3.5; the Fetch standard strips it from referrers), so it reaches no
/// access log on the way to the page that reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    base: String,
}

impl Links {
    /// Links under `base` (an absolute `http(s)` URL without a fragment).
    pub fn new(base: impl Into<String>) -> Self {
        Self { base: base.into() }
    }

    /// The link for `action` (`reset`, `invite`, `verify`) with `secret`.
    pub fn link(&self, action: &str, secret: &str) -> String {
        format!("{}#action={action}&token={secret}", self.base)
    }
}

/// What a forgot-password request came to. For logs and tests only: the client
/// gets the same answer for every variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForgotOutcome {
    /// A reset link was handed to delivery.
    Sent,
    /// The link was made but delivery failed (logged, counted, alarmed).
    DeliveryFailed(DeliveryError),
    /// No account has this email (or it is not an email at all).
    UnknownEmail,
    /// The account is disabled.
    Disabled,
    /// Too many messages to this email in the current window.
    Throttled,
}

impl ForgotOutcome {
    /// A stable snake_case name for the audit line.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::DeliveryFailed(_) => "delivery_failed",
            Self::UnknownEmail => "unknown_email",
            Self::Disabled => "user_disabled",
            Self::Throttled => "throttled",
        }
    }
}

/// Why a link was refused. Every variant gets the same answer (`invalid_link`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLink {
    /// Not 43 base64url characters: no store call was made.
    #[error("malformed")]
    Malformed,
    /// No such secret: forged, or already used (a used secret is deleted).
    #[error("unknown")]
    Unknown,
    /// Past its expiry (checked here: DynamoDB's TTL deletes late).
    #[error("expired")]
    Expired,
    /// Another request used it first, or a newer link superseded it.
    #[error("used or superseded")]
    Spent,
}

impl InvalidLink {
    /// A stable snake_case name for logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Spent => "spent",
        }
    }
}

/// An invitation made: the user, and whether its message went out.
#[derive(Debug)]
pub struct Invited {
    /// The user as stored (no usable password until the link is used).
    pub user: User,
    /// Whether this call created the user (`false`: a re-invitation).
    pub created: bool,
    /// The delivery's outcome.
    pub delivered: Result<(), DeliveryError>,
}

/// Forgot password, reset and invitations, over the accounts and their stores.
#[derive(Clone)]
pub struct Recovery {
    accounts: Accounts,
    credentials: Arc<dyn CredentialStore>,
    counters: Arc<dyn LoginAttemptStore>,
    key: SecretKey,
    delivery: Arc<dyn Delivery>,
    links: Links,
    settings: AccountConfig,
}

impl std::fmt::Debug for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recovery")
            .field("delivery", &self.delivery.name())
            .field("links", &self.links)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Recovery {
    /// The flows over `accounts`, storing secrets in `credentials` under `key`,
    /// counting messages in `counters`, delivering through `delivery`.
    pub fn new(
        accounts: Accounts,
        credentials: Arc<dyn CredentialStore>,
        counters: Arc<dyn LoginAttemptStore>,
        key: SecretKey,
        delivery: Arc<dyn Delivery>,
        settings: AccountConfig,
    ) -> Self {
        let links = Links::new(settings.link_base_url.clone().unwrap_or_default());
        Self { accounts, credentials, counters, key, delivery, links, settings }
    }

    /// The same flows delivering through `delivery` (`latchkey dev --aws` prints).
    pub fn with_delivery(self, delivery: Arc<dyn Delivery>) -> Self {
        Self { delivery, ..self }
    }

    /// The account settings.
    pub fn settings(&self) -> &AccountConfig {
        &self.settings
    }

    /// The accounts.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The delivery.
    pub fn delivery(&self) -> &Arc<dyn Delivery> {
        &self.delivery
    }

    fn now(&self) -> u64 {
        self.accounts.sessions().clock().now()
    }

    /// Counts one message to `email` in the current window; whether it may be sent.
    /// Counted for any well-formed email, known or not, so the limit reveals nothing.
    pub(crate) async fn mail_allowed(&self, email: &str) -> Result<bool, StoreError> {
        let window_secs = self.settings.mail_window.as_secs().max(1);
        let now = self.now();
        let window = now / window_secs;
        let count = self.counters.bump(&format!("MAIL#{email}"), window, (window + 1) * window_secs).await?;
        Ok(count <= self.settings.mail_max_per_email)
    }

    /// A forgot-password request: a single-use reset link to the account's email,
    /// superseding any earlier one. The outcome is for logs; the caller must answer
    /// every outcome alike.
    pub async fn forgot(&self, email: &str) -> Result<ForgotOutcome, AccountError> {
        let Ok(email) = normalize_email(email) else {
            tracing::info!(event = "reset_requested", outcome = "unknown_email");
            return Ok(ForgotOutcome::UnknownEmail);
        };
        let (allowed, user) = tokio::join!(self.mail_allowed(&email), self.accounts.users().get_user_by_email(&email));
        let outcome = match (allowed?, user?) {
            (false, _) => ForgotOutcome::Throttled,
            (true, None) => ForgotOutcome::UnknownEmail,
            (true, Some(user)) if user.disabled => ForgotOutcome::Disabled,
            (true, Some(user)) if user.pending_expired(self.now()) => ForgotOutcome::UnknownEmail,
            (true, Some(user)) => {
                match self.send_link(&user, MessageKind::PasswordReset, self.settings.reset_ttl).await? {
                    Ok(()) => ForgotOutcome::Sent,
                    Err(error) => ForgotOutcome::DeliveryFailed(error),
                }
            }
        };
        tracing::info!(event = "reset_requested", outcome = outcome.code());
        Ok(outcome)
    }

    /// Makes a password link for `user` (stored as a hash, pointed at by the user, so
    /// it supersedes older ones) and hands it to delivery. The outer error is the
    /// store's (nothing was sent); the inner one the delivery's (the link exists but
    /// went nowhere: harmless, it expires).
    async fn send_link(
        &self,
        user: &User,
        kind: MessageKind,
        lifetime: Duration,
    ) -> Result<Result<(), DeliveryError>, AccountError> {
        let purpose = match kind {
            MessageKind::VerifyEmail => Purpose::Verify,
            _ => Purpose::Password,
        };
        let issued = self.key.issue(purpose).map_err(|e| StoreError::Unavailable(format!("randomness: {e}")))?;
        let expires_at = self.now().saturating_add(lifetime.as_secs());
        let record = SecretRecord {
            purpose,
            hash: issued.hash,
            user_id: user.id.clone(),
            email: user.email.clone(),
            expires_at,
        };
        self.credentials.issue_secret(&record).await?;
        let action = match kind {
            MessageKind::Invitation => "invite",
            MessageKind::VerifyEmail => "verify",
            _ => "reset",
        };
        let link = self.links.link(action, &issued.secret);
        Ok(self
            .deliver(&Message { kind, to: user.email.clone(), link: Some(link), expires_at: Some(expires_at) })
            .await)
    }

    /// Counts one message anyone may cause (all but an operator's invitation) against
    /// the stack's limit per window; whether it may go. Only messages about to be sent
    /// count, so a flood of unknown addresses cannot spend the limit of real resets.
    /// A counter that cannot be read lets the message go (the per-address limit held).
    async fn window_allows(&self, kind: MessageKind) -> bool {
        if kind == MessageKind::Invitation {
            return true;
        }
        let window_secs = self.settings.mail_window.as_secs().max(1);
        let window = self.now() / window_secs;
        match self.counters.bump("MAIL#*", window, (window + 1) * window_secs).await {
            Ok(count) => count <= self.settings.mail_max_per_window,
            Err(error) => {
                tracing::warn!(event = "mail_limit_unread", %error);
                true
            }
        }
    }

    /// Hands `message` to delivery, bounded by the request's time budget, and writes
    /// the audit line (`mail_sent` or `mail_failed`, never the link).
    pub(crate) async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        let send = async {
            if !self.window_allows(message.kind).await {
                return Err(DeliveryError::WindowLimit);
            }
            self.delivery.deliver(message).await
        };
        let outcome = match tokio::time::timeout(self.settings.delivery_budget(), send).await {
            Ok(outcome) => outcome,
            Err(_) => Err(DeliveryError::TimedOut),
        };
        match &outcome {
            Ok(()) => tracing::info!(event = "mail_sent", kind = message.kind.code(), via = self.delivery.name()),
            Err(error) => tracing::error!(
                event = "mail_failed",
                kind = message.kind.code(),
                via = self.delivery.name(),
                reason = failure_code(error),
                %error,
            ),
        }
        outcome
    }

    /// Sets a new password with a link's secret (a reset or an invitation). Exactly
    /// one of any number of concurrent uses succeeds: the secret is deleted in the
    /// same transaction that sets the password, on condition that it still exists,
    /// has not expired and is the user's newest. The user's session epoch moves on in
    /// that write (every session ends), the email counts as verified, and nobody is
    /// logged in. `Ok(Err(_))` is a refused link; `Err(_)` a refused password or an
    /// outage.
    pub async fn reset(
        &self,
        presented: &str,
        password: &Password,
    ) -> Result<Result<String, InvalidLink>, AccountError> {
        check_new_password(password)?;
        let record = match self.live_record(Purpose::Password, presented).await? {
            Ok(record) => record,
            Err(refused) => return Ok(Err(self.refused("password_reset_refused", refused))),
        };
        let password_hash = self.accounts.hasher().hash(password).await?;
        let change = CredentialChange::SetPassword { password_hash };
        if !self.credentials.spend_secret(&record, self.now(), &change).await? {
            return Ok(Err(self.refused("password_reset_refused", InvalidLink::Spent)));
        }
        tracing::info!(event = "password_reset", user_id = %record.user_id);
        self.accounts.sessions().mark_all_revoked(&record.user_id, "password_reset", None).await;
        Ok(Ok(record.user_id))
    }

    /// The stored record of a presented secret, if it exists and has not expired.
    pub(crate) async fn live_record(
        &self,
        purpose: Purpose,
        presented: &str,
    ) -> Result<Result<SecretRecord, InvalidLink>, StoreError> {
        let Some(hash) = self.key.hash(purpose, presented) else {
            return Ok(Err(InvalidLink::Malformed));
        };
        Ok(match self.credentials.secret(purpose, &hash).await? {
            None => Err(InvalidLink::Unknown),
            Some(record) if record.expires_at <= self.now() => Err(InvalidLink::Expired),
            Some(record) => Ok(record),
        })
    }

    pub(crate) fn refused(&self, event: &'static str, why: InvalidLink) -> InvalidLink {
        tracing::info!(event, reason = why.code());
        why
    }

    /// Invites `email` with `role` (`None`: the default role): creates a user with no
    /// usable password (login fails for it as for a wrong password, at the same
    /// cost) and sends a set-password link valid for the invitation lifetime.
    /// Inviting again a user who has not set a password yet sends a new link, which
    /// supersedes the old one; a user who has one is [`StoreError::DuplicateEmail`].
    pub async fn invite(&self, email: &str, role: Option<&str>) -> Result<Invited, AccountError> {
        let email = normalize_email(email)?;
        let role = role.unwrap_or(DEFAULT_ROLE);
        check_role(role)?;
        let (user, created) = match self.accounts.users().get_user_by_email(&email).await? {
            Some(user) if user.has_password() => return Err(StoreError::DuplicateEmail.into()),
            Some(user) => (user, false),
            None => {
                let id = random_bytes::<16>().map_err(|e| StoreError::Unavailable(format!("randomness: {e}")))?;
                let user = User {
                    id: b64url(id),
                    email: email.clone(),
                    password_hash: String::new(),
                    role: role.to_owned(),
                    disabled: false,
                    password_changed_at: 0,
                    session_epoch: 0,
                    created_at: self.now(),
                    email_verified: false,
                    pending_expires_at: None,
                    totp: Default::default(),
                };
                self.accounts.create_user(&user).await?;
                (user, true)
            }
        };
        let delivered = self.send_link(&user, MessageKind::Invitation, self.settings.invite_ttl).await?;
        tracing::info!(event = "user_invited", user_id = %user.id, created, delivered = delivered.is_ok());
        Ok(Invited { user, created, delivered })
    }

    /// Sends a "verify your email" link to a new sign-up (used by [`crate::signup`]).
    pub(crate) async fn send_verification(&self, user: &User) -> Result<Result<(), DeliveryError>, AccountError> {
        self.send_link(user, MessageKind::VerifyEmail, self.settings.verify_ttl).await
    }

    /// The credential store.
    pub(crate) fn credentials(&self) -> &Arc<dyn CredentialStore> {
        &self.credentials
    }
}

/// A bounded name for the `reason` of `mail_failed` (a metric dimension).
pub fn failure_code(error: &DeliveryError) -> &'static str {
    match error {
        DeliveryError::NotConfigured => "not_configured",
        DeliveryError::Failed { .. } => "service",
        DeliveryError::TimedOut => "timeout",
        DeliveryError::WindowLimit => "window_limit",
    }
}
