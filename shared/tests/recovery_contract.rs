//! The account flows over both stores: forgot and reset password, invitations,
//! sign-up with a verified email, and a password change that keeps its session.
//! Each rule of the accounts issue has a case here; the HTTP answers are
//! `tests/tests/accounts.rs`'s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;

use latchkey::account::{AccountError, Authentication};
use latchkey::config::{AccountConfig, SignupMode};
use latchkey::delivery::{MessageKind, Outbox, secret_of};
use latchkey::password::Password;
use latchkey::recovery::{ForgotOutcome, InvalidLink};
use latchkey::session::{InvalidGrant, RefreshError};
use latchkey::signup::{SignedUp, SignupRefused};
use latchkey::store::StoreError;
use support::Backend;

fn pw(text: &str) -> Password {
    Password::new(text).unwrap()
}

fn open_signup() -> AccountConfig {
    AccountConfig { signup: SignupMode::Open, ..AccountConfig::default() }
}

/// The secret of the newest message to `to`, of `kind`.
fn secret_to(outbox: &Outbox, to: &str, kind: MessageKind) -> String {
    let message = outbox.last_to(to).unwrap_or_else(|| panic!("no message to {to}"));
    assert_eq!(message.kind, kind);
    let link = message.link.unwrap();
    assert!(link.starts_with("https://app.example.com/account#action="), "{link}");
    secret_of(&link).unwrap().to_owned()
}

async fn forgot_sends_one_link_that_sets_the_password_once_and_ends_every_session(b: Backend) {
    let outbox = Outbox::new();
    let recovery = b.recovery(&outbox, AccountConfig::default());
    let accounts = recovery.accounts();
    let ada = accounts.create("ada@example.com", &pw("old password"), "member").await.unwrap();
    let (one, two) = (accounts.sessions().start(&ada).await.unwrap(), accounts.sessions().start(&ada).await.unwrap());
    assert_eq!(recovery.forgot(" Ada@Example.com ").await.unwrap(), ForgotOutcome::Sent);
    let secret = secret_to(&outbox, "ada@example.com", MessageKind::PasswordReset);
    assert_eq!(secret.len(), 43, "256 bits from the OS RNG");
    let expires = outbox.last_to("ada@example.com").unwrap().expires_at.unwrap();
    assert_eq!(expires, support::START + 900, "LATCHKEY_RESET_TTL_SECONDS");
    assert_eq!(recovery.reset(&secret, &pw("new password")).await.unwrap(), Ok(ada.id.clone()));
    for started in [one, two] {
        let refused = accounts.sessions().refresh(&started.refresh_token).await;
        assert!(matches!(refused, Err(RefreshError::Invalid(InvalidGrant::SessionsEnded | InvalidGrant::Revoked))));
    }
    assert!(accounts.authenticate("ada@example.com", &pw("new password")).await.unwrap().is_some());
    assert!(accounts.authenticate("ada@example.com", &pw("old password")).await.unwrap().is_none());
    let again = recovery.reset(&secret, &pw("third password")).await.unwrap();
    assert_eq!(again, Err(InvalidLink::Unknown), "a used link is gone");
    // No secret, and not the password, is usable from a table dump.
    for value in b.dump().await {
        assert!(!value.contains(&secret) && !value.contains("new password"), "{value}");
    }
}

async fn a_newer_link_supersedes_an_older_one_and_links_expire_by_the_clock(b: Backend) {
    let outbox = Outbox::new();
    let recovery = b.recovery(&outbox, AccountConfig::default());
    recovery.accounts().create("ada@example.com", &pw("old password"), "member").await.unwrap();
    recovery.forgot("ada@example.com").await.unwrap();
    let older = secret_to(&outbox, "ada@example.com", MessageKind::PasswordReset);
    recovery.forgot("ada@example.com").await.unwrap();
    let newer = secret_to(&outbox, "ada@example.com", MessageKind::PasswordReset);
    assert_eq!(recovery.reset(&older, &pw("new password")).await.unwrap(), Err(InvalidLink::Spent));
    // DynamoDB's TTL deletes late (moto never): the expiry is checked in code.
    b.clock.advance(900);
    assert_eq!(recovery.reset(&newer, &pw("new password")).await.unwrap(), Err(InvalidLink::Expired));
    for malformed in ["", "short", &"!".repeat(43), &format!("{newer}A")] {
        assert_eq!(recovery.reset(malformed, &pw("new password")).await.unwrap(), Err(InvalidLink::Malformed));
    }
    let forged = "A".repeat(42) + "A";
    assert_eq!(recovery.reset(&forged, &pw("new password")).await.unwrap(), Err(InvalidLink::Unknown));
}

/// Exactly one of many concurrent uses of one link succeeds (the delete's condition).
async fn of_sixteen_concurrent_resets_with_one_link_exactly_one_succeeds(b: Backend) {
    let outbox = Outbox::new();
    let recovery = b.recovery(&outbox, AccountConfig::default());
    recovery.accounts().create("ada@example.com", &pw("old password"), "member").await.unwrap();
    recovery.forgot("ada@example.com").await.unwrap();
    let secret = secret_to(&outbox, "ada@example.com", MessageKind::PasswordReset);
    let attempts = (0..16).map(|n| {
        let (recovery, secret) = (recovery.clone(), secret.clone());
        tokio::spawn(async move { recovery.reset(&secret, &pw(&format!("new password {n}"))).await.unwrap() })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let won = outcomes.iter().filter(|outcome| matches!(outcome, Ok(Ok(_)))).count();
    assert_eq!(won, 1, "{outcomes:?}");
}

/// Unknown, disabled and throttled emails get no link, and say so only in logs.
async fn forgot_sends_nothing_for_unknown_disabled_or_throttled_emails(b: Backend) {
    let outbox = Outbox::new();
    let recovery = b.recovery(&outbox, AccountConfig::default());
    let accounts = recovery.accounts();
    accounts.create("ada@example.com", &pw("old password"), "member").await.unwrap();
    accounts.create("bob@example.com", &pw("old password"), "member").await.unwrap();
    accounts.set_disabled("bob@example.com", true).await.unwrap();
    assert_eq!(recovery.forgot("nobody@example.com").await.unwrap(), ForgotOutcome::UnknownEmail);
    assert_eq!(recovery.forgot("not an email").await.unwrap(), ForgotOutcome::UnknownEmail);
    assert_eq!(recovery.forgot("bob@example.com").await.unwrap(), ForgotOutcome::Disabled);
    assert!(outbox.sent().is_empty());
    for _ in 0..3 {
        assert_eq!(recovery.forgot("ada@example.com").await.unwrap(), ForgotOutcome::Sent);
    }
    assert_eq!(recovery.forgot("ada@example.com").await.unwrap(), ForgotOutcome::Throttled, "3 per hour");
    assert_eq!(outbox.sent().len(), 3);
    b.clock.advance(3600);
    assert_eq!(recovery.forgot("ada@example.com").await.unwrap(), ForgotOutcome::Sent, "the next window");
}

async fn an_invitation_has_no_password_until_its_link_sets_one(b: Backend) {
    let outbox = Outbox::new();
    let recovery = b.recovery(&outbox, AccountConfig::default());
    let accounts = recovery.accounts();
    let invited = recovery.invite("new@example.com", Some("Admin")).await.unwrap();
    assert!(invited.created && invited.delivered.is_ok());
    assert_eq!((invited.user.role.as_str(), invited.user.has_password()), ("Admin", false));
    let first = secret_to(&outbox, "new@example.com", MessageKind::Invitation);
    let expires = outbox.last_to("new@example.com").unwrap().expires_at.unwrap();
    assert_eq!(expires, support::START + 7 * 86_400, "LATCHKEY_INVITE_TTL_SECONDS");
    // Until then, login fails as a wrong password does (the same dummy-hash work).
    let before = accounts.hasher().verifications();
    assert_eq!(accounts.login("new@example.com", &pw("")).await.unwrap(), Authentication::Failure);
    assert_eq!(accounts.hasher().verifications(), before + 1, "one argon2id verification, as for a wrong password");
    let again = recovery.invite("new@example.com", None).await.unwrap();
    assert!(!again.created, "a re-invitation");
    let second = secret_to(&outbox, "new@example.com", MessageKind::Invitation);
    assert_eq!(recovery.reset(&first, &pw("chosen password")).await.unwrap(), Err(InvalidLink::Spent));
    assert!(recovery.reset(&second, &pw("chosen password")).await.unwrap().is_ok());
    let user = accounts.authenticate("new@example.com", &pw("chosen password")).await.unwrap().unwrap();
    assert!(user.email_verified);
    let taken = recovery.invite("new@example.com", None).await;
    assert!(matches!(taken, Err(AccountError::Store(StoreError::DuplicateEmail))), "{taken:?}");
}

async fn sign_up_needs_a_verified_email_and_never_says_the_address_is_taken(b: Backend) {
    let outbox = Outbox::new();
    let off = b.recovery(&outbox, AccountConfig::default());
    assert!(matches!(off.sign_up("eve@example.com", &pw("long password")).await, Err(SignupRefused::Off)));
    let recovery = b.recovery(&outbox, open_signup());
    let accounts = recovery.accounts();
    let created = recovery.sign_up("Eve@Example.com", &pw("long password")).await.unwrap();
    assert_eq!(created, SignedUp::Created { delivered: true });
    assert_eq!(accounts.login("eve@example.com", &pw("long password")).await.unwrap(), Authentication::Unverified);
    assert_eq!(accounts.login("eve@example.com", &pw("wrong password")).await.unwrap(), Authentication::Failure);
    let secret = secret_to(&outbox, "eve@example.com", MessageKind::VerifyEmail);
    // Taken: the same outcome to the caller; its owner hears of it.
    assert_eq!(recovery.sign_up("eve@example.com", &pw("another password")).await.unwrap(), SignedUp::Taken);
    let told = outbox.last_to("eve@example.com").unwrap();
    assert_eq!((told.kind, told.link), (MessageKind::SignupExisting, None));
    assert!(recovery.verify_email(&secret).await.unwrap().is_ok());
    assert_eq!(recovery.verify_email(&secret).await.unwrap(), Err(InvalidLink::Unknown), "single use");
    assert!(matches!(
        accounts.login("eve@example.com", &pw("long password")).await.unwrap(),
        Authentication::Success(_)
    ));
    let weak = recovery.sign_up("weak@example.com", &pw("short")).await;
    assert!(matches!(weak, Err(SignupRefused::Account(AccountError::WeakPassword))));
}

/// An unverified sign-up ends at its expiry: it cannot log in, and its address may
/// sign up again. A domain allow-list refuses other domains.
async fn an_unverified_sign_up_expires_and_domains_can_be_limited(b: Backend) {
    let outbox = Outbox::new();
    let settings = AccountConfig { signup_domains: vec!["example.com".to_owned()], ..open_signup() };
    let recovery = b.recovery(&outbox, settings);
    recovery.sign_up("sam@example.com", &pw("long password")).await.unwrap();
    let secret = secret_to(&outbox, "sam@example.com", MessageKind::VerifyEmail);
    b.clock.advance(86_400);
    let accounts = recovery.accounts();
    assert_eq!(accounts.login("sam@example.com", &pw("long password")).await.unwrap(), Authentication::Failure);
    assert_eq!(recovery.verify_email(&secret).await.unwrap(), Err(InvalidLink::Expired));
    let again = recovery.sign_up("sam@example.com", &pw("other password")).await.unwrap();
    assert_eq!(again, SignedUp::Created { delivered: true }, "the expired sign-up is replaced");
    let outside = recovery.sign_up("sam@elsewhere.org", &pw("long password")).await;
    assert!(matches!(outside, Err(SignupRefused::Domain)));
}

/// A password change ends every other session and keeps its own, rotated; a wrong
/// current password is a counted login failure.
async fn a_password_change_keeps_its_session_and_ends_the_others(b: Backend) {
    let outbox = Outbox::new();
    let recovery = b.recovery(&outbox, AccountConfig::default());
    let accounts = recovery.accounts();
    let ada = accounts.create("ada@example.com", &pw("old password"), "member").await.unwrap();
    let (mine, other) =
        (accounts.sessions().start(&ada).await.unwrap(), accounts.sessions().start(&ada).await.unwrap());
    let (nope, new) = (pw("nope nope"), pw("new password"));
    let wrong = accounts.change_password(&ada.id, &ada.email, mine.session.id, &nope, &new).await;
    assert!(matches!(wrong.unwrap(), Authentication::Failure));
    let changed = accounts
        .change_password(&ada.id, &ada.email, mine.session.id, &pw("old password"), &pw("new password"))
        .await
        .unwrap();
    let Authentication::Success(Some(changed)) = changed else { panic!("{changed:?}") };
    assert_eq!(changed.session.id, mine.session.id);
    assert!(accounts.sessions().refresh(&changed.refresh_token).await.is_ok(), "this session continues");
    let ended = accounts.sessions().refresh(&other.refresh_token).await;
    assert!(matches!(ended, Err(RefreshError::Invalid(_))), "{ended:?}");
    assert!(accounts.authenticate("ada@example.com", &pw("new password")).await.unwrap().is_some());
    // Another user's session cannot carry a change.
    let bob = accounts.create("bob@example.com", &pw("bob password"), "member").await.unwrap();
    let bobs = accounts.sessions().start(&bob).await.unwrap();
    let third = pw("third password");
    let crossed = accounts.change_password(&ada.id, &ada.email, bobs.session.id, &new, &third).await;
    assert!(matches!(crossed.unwrap(), Authentication::Success(None)));
}

/// The stack-wide limit per window: only mail about to go counts (unknown addresses
/// spend nothing), an operator's invitation is never held back, the answer is the
/// same, and a new window sends again.
async fn the_stack_wide_mail_limit_counts_only_mail_that_would_go(b: Backend) {
    let outbox = Outbox::new();
    let settings = AccountConfig { mail_max_per_window: 2, ..AccountConfig::default() };
    let recovery = b.recovery(&outbox, settings);
    for name in ["ada", "bo", "cy"] {
        recovery.accounts().create(&format!("{name}@example.com"), &pw("old password"), "member").await.unwrap();
    }
    for n in 0..5 {
        let unknown = recovery.forgot(&format!("nobody{n}@example.com")).await.unwrap();
        assert_eq!(unknown, ForgotOutcome::UnknownEmail);
    }
    assert_eq!(recovery.forgot("ada@example.com").await.unwrap(), ForgotOutcome::Sent);
    assert_eq!(recovery.forgot("bo@example.com").await.unwrap(), ForgotOutcome::Sent);
    let held = recovery.forgot("cy@example.com").await.unwrap();
    assert_eq!(held, ForgotOutcome::DeliveryFailed(latchkey::delivery::DeliveryError::WindowLimit));
    assert!(outbox.last_to("cy@example.com").is_none(), "mail beyond the window's limit went out");
    recovery.invite("di@example.com", None).await.unwrap().delivered.unwrap();
    b.clock.advance(3600);
    assert_eq!(recovery.forgot("cy@example.com").await.unwrap(), ForgotOutcome::Sent, "a new window");
}

contract!(
    the_stack_wide_mail_limit_counts_only_mail_that_would_go,
    forgot_sends_one_link_that_sets_the_password_once_and_ends_every_session,
    a_newer_link_supersedes_an_older_one_and_links_expire_by_the_clock,
    of_sixteen_concurrent_resets_with_one_link_exactly_one_succeeds,
    forgot_sends_nothing_for_unknown_disabled_or_throttled_emails,
    an_invitation_has_no_password_until_its_link_sets_one,
    sign_up_needs_a_verified_email_and_never_says_the_address_is_taken,
    an_unverified_sign_up_expires_and_domains_can_be_limited,
    a_password_change_keeps_its_session_and_ends_the_others,
);
