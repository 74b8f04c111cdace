//! Outbound messages (password reset, invitation, email verification, "someone tried
//! to sign up"): the [`Delivery`] port and its implementations, chosen by
//! `LATCHKEY_DELIVERY`: Amazon SES ([`SesDelivery`]), the deployer's own sender via an
//! SNS topic ([`SnsDelivery`]), and the terminal of `latchkey dev` ([`TerminalDelivery`]).
//!
//! A message carries a link with a one-time secret. Implementations must never log
//! it; [`Message`]'s `Debug` leaves it out.

mod ses;
mod sns;
mod templates;
mod terminal;

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

pub use ses::SesDelivery;
pub use sns::{SnsDelivery, SnsPayload};
pub use templates::{Rendered, render};
pub use terminal::TerminalDelivery;

/// What a message is for. Each kind has its own built-in template and SES template name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A link to set a new password (forgot password).
    PasswordReset,
    /// A link to set a first password (an operator's invitation).
    Invitation,
    /// A link to confirm the address of a new account (sign-up).
    VerifyEmail,
    /// Someone tried to sign up with an address that already has an account: no link.
    SignupExisting,
}

impl MessageKind {
    /// A stable snake_case name: the SNS payload's `kind`, log and metric dimensions,
    /// and the suffix of an SES template name.
    pub fn code(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::Invitation => "invitation",
            Self::VerifyEmail => "verify_email",
            Self::SignupExisting => "signup_existing",
        }
    }

    /// Every kind.
    pub const ALL: [Self; 4] = [Self::PasswordReset, Self::Invitation, Self::VerifyEmail, Self::SignupExisting];
}

/// One message to one address.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// What it is for.
    pub kind: MessageKind,
    /// The recipient (a normalised email).
    pub to: String,
    /// The link with the one-time secret, for the kinds that have one.
    pub link: Option<String>,
    /// When the link stops working (Unix seconds), for the kinds that have one.
    pub expires_at: Option<u64>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("kind", &self.kind)
            .field("to", &self.to)
            .field("link", &self.link.as_ref().map(|_| "[redacted]"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a message could not be handed over. Never shown to the client that caused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// No delivery is configured (`LATCHKEY_DELIVERY=none`).
    #[error("no delivery configured")]
    NotConfigured,
    /// The service refused or could not be reached; the detail never holds the link.
    #[error("{service} failed: {detail}")]
    Failed {
        /// `ses` or `sns`.
        service: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// It did not finish in the time the request had left.
    #[error("timed out")]
    TimedOut,
    /// The stack's mail limit for this window is spent (`LATCHKEY_MAIL_MAX_PER_WINDOW`).
    #[error("the stack's mail limit for this window is reached")]
    WindowLimit,
}

/// Hands messages over for delivery.
#[async_trait]
pub trait Delivery: Send + Sync {
    /// Sends (or hands over) one message.
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError>;

    /// A name for logs and `latchkey dev`'s banner (`ses`, `sns`, `terminal`, `none`).
    fn name(&self) -> &'static str;
}

/// `LATCHKEY_DELIVERY=none`: every message fails with [`DeliveryError::NotConfigured`]
/// (the flows still answer as usual, and log `mail_failed`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDelivery;

#[async_trait]
impl Delivery for NoDelivery {
    async fn deliver(&self, _: &Message) -> Result<(), DeliveryError> {
        Err(DeliveryError::NotConfigured)
    }

    fn name(&self) -> &'static str {
        "none"
    }
}

/// Keeps every message in memory, for tests and the local tools that read links back.
#[derive(Debug, Default, Clone)]
pub struct Outbox {
    sent: Arc<Mutex<Vec<Message>>>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message so far, oldest first.
    pub fn sent(&self) -> Vec<Message> {
        self.sent.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The newest message to `to`, if any.
    pub fn last_to(&self, to: &str) -> Option<Message> {
        self.sent().into_iter().rev().find(|message| message.to == to)
    }
}

#[async_trait]
impl Delivery for Outbox {
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        self.sent.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(message.clone());
        Ok(())
    }

    fn name(&self) -> &'static str {
        "outbox"
    }
}

/// The one-time secret in a link: the value of its `token` fragment parameter.
pub fn secret_of(link: &str) -> Option<&str> {
    let (_, fragment) = link.split_once('#')?;
    fragment.split('&').find_map(|pair| pair.strip_prefix("token="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_link() {
        let message = Message {
            kind: MessageKind::PasswordReset,
            to: "ada@example.com".into(),
            link: Some("https://app.example.com/#action=reset&token=SECRET".into()),
            expires_at: Some(1),
        };
        let shown = format!("{message:?}");
        assert!(!shown.contains("SECRET") && shown.contains("[redacted]") && shown.contains("ada@example.com"));
        assert_eq!(secret_of(message.link.as_deref().unwrap()), Some("SECRET"));
    }
}
