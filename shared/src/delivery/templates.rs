//! The built-in message texts (plain text and HTML) of each [`MessageKind`]. A
//! deployer replaces them with SES templates of their own (`LATCHKEY_SES_TEMPLATE_PREFIX`).

use super::{Message, MessageKind};

/// A message as mail: subject, plain-text and HTML bodies.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered").field("subject", &self.subject).finish_non_exhaustive()
    }
}

/// `message` in the built-in template of its kind.
pub fn render(message: &Message) -> Rendered {
    let link = message.link.as_deref().unwrap_or_default();
    let minutes = |at: Option<u64>, now: u64| at.map(|at| at.saturating_sub(now).div_ceil(60)).unwrap_or(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let lifetime = describe_minutes(minutes(message.expires_at, now));
    let (subject, lead, action, tail) = match message.kind {
        MessageKind::PasswordReset => (
            "Reset your password",
            "Someone asked to reset the password of this account. If it was you, choose a new password here:",
            "Choose a new password",
            format!(
                "The link works once, for {lifetime}. Using it signs you out everywhere. If you did not ask, ignore this mail: your password stays as it is."
            ),
        ),
        MessageKind::Invitation => (
            "You have been invited",
            "You have been given an account. Choose your password here to start using it:",
            "Choose your password",
            format!("The link works once, for {lifetime}."),
        ),
        MessageKind::VerifyEmail => (
            "Confirm your email address",
            "Confirm this address to finish creating your account:",
            "Confirm my address",
            format!("The link works once, for {lifetime}. If you did not sign up, ignore this mail."),
        ),
        MessageKind::SignupExisting => (
            "Someone tried to sign up with your address",
            "Someone tried to create an account with this address, which already has one. If it was you, sign in instead, or reset your password if you forgot it.",
            "",
            "If it was not you, nothing has changed and you need do nothing.".to_owned(),
        ),
    };
    let text = match message.link {
        Some(_) => format!("{lead}\n\n{link}\n\n{tail}\n"),
        None => format!("{lead}\n\n{tail}\n"),
    };
    let escape =
        |text: &str| text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let button = match message.link {
        Some(_) => format!("<p><a href=\"{}\">{}</a></p>", escape(link), escape(action)),
        None => String::new(),
    };
    let html =
        format!("<!doctype html><html><body><p>{}</p>{button}<p>{}</p></body></html>", escape(lead), escape(&tail));
    Rendered { subject: subject.to_owned(), text, html }
}

fn describe_minutes(minutes: u64) -> String {
    match minutes {
        0..=90 => format!("{minutes} minutes"),
        91..=2880 => format!("{} hours", minutes.div_ceil(60)),
        _ => format!("{} days", minutes.div_ceil(1440)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_renders_its_link_in_both_bodies_and_escapes_it_in_html() {
        for kind in MessageKind::ALL {
            let link =
                (kind != MessageKind::SignupExisting).then(|| "https://app.example.com/#action=x&token=abc".to_owned());
            let rendered =
                render(&Message { kind, to: "ada@example.com".into(), link: link.clone(), expires_at: None });
            assert!(!rendered.subject.is_empty());
            if let Some(link) = link {
                assert!(rendered.text.contains(&link), "{kind:?}");
                assert!(rendered.html.contains("#action=x&amp;token=abc"), "{kind:?}");
            } else {
                assert!(!rendered.html.contains("<a "), "{kind:?}");
            }
        }
        assert_eq!(describe_minutes(15), "15 minutes");
        assert_eq!(describe_minutes(10_080), "7 days");
    }
}
