//! The second factor over both stores: enrolment, the login's second step, replay,
//! recovery codes used once, the guessing limit, the `mfaToken`'s life, removal and
//! reset. Codes come from an RFC 6238 implementation of the test's own
//! ([`support::totp_code`]); time is a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;

use latchkey::Clock;
use latchkey::config::{MfaConfig, MfaMode};
use latchkey::mfa::{Enrolment, Mfa, MfaError, Proof};
use latchkey::password::{Password, PasswordParams};
use latchkey::store::{TotpChange, User};
use support::{Backend, totp_code};

fn mfa(b: &Backend, config: MfaConfig) -> Mfa {
    let accounts = b.accounts(PasswordParams::default());
    Mfa::over(accounts, b.credentials.clone(), b.attempts.clone(), config).unwrap()
}

async fn reread(b: &Backend, user: &User) -> User {
    b.users.get_user_by_email(&user.email).await.unwrap().unwrap()
}

fn code(b: &Backend, enrolment: &Enrolment) -> String {
    totp_code(&enrolment.secret, b.clock.now())
}

/// Every test user's password.
fn password() -> Password {
    Password::new("correct horse battery").unwrap()
}

/// A member with [`password`].
async fn member(b: &Backend, email: &str) -> User {
    b.accounts(PasswordParams::default()).create(email, &password(), "member").await.unwrap()
}

/// A user with a confirmed second factor: the user as stored, the enrolment and the recovery codes.
async fn enrolled(b: &Backend, mfa: &Mfa, email: &str) -> (User, Enrolment, Vec<String>) {
    let user = member(b, email).await;
    let enrolment = mfa.begin(&user).await.unwrap();
    let codes = mfa.confirm(&user.id, &user.email, &password(), &code(b, &enrolment)).await.unwrap();
    b.clock.advance(30);
    (reread(b, &user).await, enrolment, codes)
}

async fn enrolment_is_confirmed_by_a_code_and_gives_ten_recovery_codes(b: Backend) {
    let mfa = mfa(&b, MfaConfig::default());
    let user = member(&b, "ada@example.com").await;
    let enrolment = mfa.begin(&user).await.unwrap();
    assert_eq!(enrolment.secret.len(), 32, "160 bits in base32");
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/Latchkey:ada%40example.com?secret="));
    assert!(enrolment.otpauth_uri.contains(&format!("secret={}", enrolment.secret)));
    assert!(enrolment.qr_svg.starts_with("<?xml") && enrolment.qr_svg.contains("<svg"));
    let pending = reread(&b, &user).await;
    assert!(!pending.totp.enabled() && pending.totp.pending.is_some(), "not active until confirmed");
    assert!(mfa.challenge(&pending).await.unwrap().is_none(), "a pending enrolment asks for no code");

    let wrong = mfa.confirm(&user.id, &user.email, &password(), "000000").await;
    assert!(matches!(wrong, Err(MfaError::InvalidCode)), "{wrong:?}");
    let stolen_token_alone = Password::new("not the password").unwrap();
    let refused = mfa.confirm(&user.id, &user.email, &stolen_token_alone, &code(&b, &enrolment)).await;
    assert!(matches!(refused, Err(MfaError::InvalidCredentials)), "an access token alone enrols nothing: {refused:?}");
    assert!(!reread(&b, &user).await.totp.enabled());
    let codes = mfa.confirm(&user.id, &user.email, &password(), &code(&b, &enrolment)).await.unwrap();
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|code| code.len() == 11 && code.as_bytes()[5] == b'-'));
    let stored = reread(&b, &user).await;
    assert!(stored.totp.enabled() && stored.totp.pending.is_none());
    assert_eq!(stored.totp.recovery.len(), 10);
    assert!(matches!(mfa.begin(&stored).await, Err(MfaError::AlreadyEnabled)));
    // The table holds neither the secret nor a recovery code.
    let dump = b.dump().await.join("\n");
    assert!(!dump.contains(&enrolment.secret));
    for code in &codes {
        assert!(!dump.contains(code) && !dump.contains(&code.replace('-', "")));
    }
    if b.table.is_some() {
        assert!(dump.contains("totpSecret") || dump.len() > 100);
    }
}

async fn a_code_is_accepted_once_and_a_replay_is_refused(b: Backend) {
    let mfa = mfa(&b, MfaConfig::default());
    let (user, enrolment, _) = enrolled(&b, &mfa, "ada@example.com").await;
    let challenge = mfa.challenge(&user).await.unwrap().unwrap();
    assert!(!challenge.enrol);
    let now_code = code(&b, &enrolment);
    let passed = mfa.complete(&challenge.token, &Proof::Code(now_code.clone())).await.unwrap();
    assert_eq!(passed.amr, ["pwd", "otp"]);
    assert_eq!(passed.user.id, user.id);
    // The same code again, with a fresh token: refused (its step is recorded).
    let again = mfa.challenge(&reread(&b, &user).await).await.unwrap().unwrap();
    let replay = mfa.complete(&again.token, &Proof::Code(now_code)).await;
    assert!(matches!(replay, Err(MfaError::InvalidCode)), "{replay:?}");
    // So is the previous step's code, inside the drift window.
    let earlier = totp_code(&enrolment.secret, b.clock.now() - 30);
    assert!(matches!(mfa.complete(&again.token, &Proof::Code(earlier)).await, Err(MfaError::InvalidCode)));
    b.clock.advance(30);
    mfa.complete(&again.token, &Proof::Code(code(&b, &enrolment))).await.unwrap();
}

async fn one_step_of_drift_either_way_and_no_more(b: Backend) {
    let mfa = mfa(&b, MfaConfig::default());
    let (user, enrolment, _) = enrolled(&b, &mfa, "ada@example.com").await;
    let now = b.clock.now();
    for (offset, accepted) in [(-60i64, false), (90, false), (30, true)] {
        let challenge = mfa.challenge(&reread(&b, &user).await).await.unwrap().unwrap();
        let presented = totp_code(&enrolment.secret, now.saturating_add_signed(offset));
        let outcome = mfa.complete(&challenge.token, &Proof::Code(presented)).await;
        assert_eq!(outcome.is_ok(), accepted, "offset {offset}: {outcome:?}");
    }
}

async fn concurrent_uses_of_one_code_or_recovery_code_succeed_once(b: Backend) {
    let mfa = mfa(&b, MfaConfig::default());
    // At the store: five concurrent writes of one step, five spends of one recovery
    // code's hash: one of each succeeds.
    let (bob, _, _) = enrolled(&b, &mfa, "bob@example.com").await;
    let step = b.clock.now() / 30;
    let step = TotpChange::Step { step };
    let writes = (0..5).map(|_| b.credentials.update_totp(&bob.email, &bob.id, &step));
    let won = futures::future::join_all(writes).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1);
    let spend = TotpChange::Recovery { hash: bob.totp.recovery[0].clone() };
    let spends = (0..5).map(|_| b.credentials.update_totp(&bob.email, &bob.id, &spend));
    let won = futures::future::join_all(spends).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1);
    assert_eq!(reread(&b, &bob).await.totp.recovery.len(), 9);
    // Through the second step: three concurrent uses of one recovery code, one sign-in.
    let (ada, _, codes) = enrolled(&b, &mfa, "ada@example.com").await;
    let challenge = mfa.challenge(&ada).await.unwrap().unwrap();
    let proof = Proof::RecoveryCode(codes[0].clone());
    let attempts = (0..3).map(|_| mfa.complete(&challenge.token, &proof));
    let outcomes = futures::future::join_all(attempts).await;
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 1, "{outcomes:?}");
    assert_eq!(reread(&b, &ada).await.totp.recovery.len(), 9);
}

async fn a_recovery_code_signs_in_once(b: Backend) {
    let mfa = mfa(&b, MfaConfig::default());
    let (user, _, codes) = enrolled(&b, &mfa, "ada@example.com").await;
    let challenge = mfa.challenge(&user).await.unwrap().unwrap();
    let passed = mfa.complete(&challenge.token, &Proof::RecoveryCode(codes[3].to_uppercase())).await.unwrap();
    assert_eq!(passed.amr, ["pwd", "mfa"]);
    assert_eq!(reread(&b, &user).await.totp.recovery.len(), 9);
    let again = mfa.challenge(&reread(&b, &user).await).await.unwrap().unwrap();
    let reuse = mfa.complete(&again.token, &Proof::RecoveryCode(codes[3].clone())).await;
    assert!(matches!(reuse, Err(MfaError::InvalidCode)), "{reuse:?}");
    let other = mfa.complete(&again.token, &Proof::RecoveryCode(codes[4].clone())).await.unwrap();
    assert_eq!(other.amr, ["pwd", "mfa"]);
}

async fn wrong_codes_are_throttled_per_user_even_the_right_one(b: Backend) {
    let mfa = mfa(&b, MfaConfig::default());
    let (user, enrolment, _) = enrolled(&b, &mfa, "ada@example.com").await;
    let (bob, bob_enrolment, _) = enrolled(&b, &mfa, "bob@example.com").await;
    // Guesses are counted across tokens: a new token per guess does not reset them.
    for guess in 0..5 {
        let challenge = mfa.challenge(&reread(&b, &user).await).await.unwrap().unwrap();
        let wrong = mfa.complete(&challenge.token, &Proof::Code(format!("{guess:06}"))).await;
        assert!(matches!(wrong, Err(MfaError::InvalidCode)), "{wrong:?}");
    }
    let challenge = mfa.challenge(&reread(&b, &user).await).await.unwrap().unwrap();
    let right = mfa.complete(&challenge.token, &Proof::Code(code(&b, &enrolment))).await;
    let Err(MfaError::Throttled { retry_after_secs }) = right else { panic!("{right:?}") };
    assert!((1..=300).contains(&retry_after_secs));
    // Another user is not affected.
    let theirs = mfa.challenge(&bob).await.unwrap().unwrap();
    mfa.complete(&theirs.token, &Proof::Code(code(&b, &bob_enrolment))).await.unwrap();
    // The next window lets the right code through.
    b.clock.advance(retry_after_secs);
    let challenge = mfa.challenge(&reread(&b, &user).await).await.unwrap().unwrap();
    mfa.complete(&challenge.token, &Proof::Code(code(&b, &enrolment))).await.unwrap();
}

async fn the_mfa_token_is_single_use_short_lived_and_superseded(b: Backend) {
    let mfa = mfa(&b, MfaConfig::default());
    let (user, enrolment, _) = enrolled(&b, &mfa, "ada@example.com").await;
    let first = mfa.challenge(&user).await.unwrap().unwrap();
    let second = mfa.challenge(&user).await.unwrap().unwrap();
    let superseded = mfa.complete(&first.token, &Proof::Code(code(&b, &enrolment))).await;
    assert!(matches!(superseded, Err(MfaError::InvalidToken)), "a newer login's token replaces the older one");
    mfa.complete(&second.token, &Proof::Code(code(&b, &enrolment))).await.unwrap();
    b.clock.advance(30);
    let used = mfa.complete(&second.token, &Proof::Code(code(&b, &enrolment))).await;
    assert!(matches!(used, Err(MfaError::InvalidToken)), "single use: {used:?}");
    let third = mfa.challenge(&reread(&b, &user).await).await.unwrap().unwrap();
    b.clock.advance(300);
    let expired = mfa.complete(&third.token, &Proof::Code(code(&b, &enrolment))).await;
    assert!(matches!(expired, Err(MfaError::InvalidToken)), "five minutes: {expired:?}");
    for junk in ["", "not-a-token", &"A".repeat(43)] {
        assert!(matches!(mfa.complete(junk, &Proof::Code("123456".into())).await, Err(MfaError::InvalidToken)));
    }
}

async fn removal_needs_the_password_and_a_code_and_an_admin_can_reset(b: Backend) {
    let mfa = mfa(&b, MfaConfig::default());
    let accounts = b.accounts(PasswordParams::default());
    let password = Password::new("correct horse battery").unwrap();
    let ada = accounts.create("ada@example.com", &password, "member").await.unwrap();
    let enrolment = mfa.begin(&ada).await.unwrap();
    mfa.confirm(&ada.id, &ada.email, &password, &code(&b, &enrolment)).await.unwrap();
    b.clock.advance(30);
    let wrong_password = Password::new("wrong horse battery").unwrap();
    let refused = mfa.remove(&ada.id, &ada.email, &wrong_password, &Proof::Code(code(&b, &enrolment))).await;
    assert!(matches!(refused, Err(MfaError::InvalidCredentials)), "{refused:?}");
    let refused = mfa.remove(&ada.id, &ada.email, &password, &Proof::Code("000000".into())).await;
    assert!(matches!(refused, Err(MfaError::InvalidCode)), "{refused:?}");
    assert!(reread(&b, &ada).await.totp.enabled());
    mfa.remove(&ada.id, &ada.email, &password, &Proof::Code(code(&b, &enrolment))).await.unwrap();
    let removed = reread(&b, &ada).await;
    assert!(!removed.totp.enabled() && removed.totp.recovery.is_empty());
    assert!(mfa.challenge(&removed).await.unwrap().is_none(), "the password alone again");
    // An administrator's reset removes it whatever it is.
    let again = mfa.begin(&removed).await.unwrap();
    mfa.confirm(&ada.id, &ada.email, &password, &code(&b, &again)).await.unwrap();
    assert!(mfa.reset(&reread(&b, &ada).await).await.unwrap());
    assert!(!reread(&b, &ada).await.totp.enabled());
    assert!(!mfa.reset(&reread(&b, &ada).await).await.unwrap(), "nothing left to reset");
}

async fn a_role_that_must_enrol_enrols_during_its_login(b: Backend) {
    let config = MfaConfig { roles: vec!["Admin".to_owned()], ..MfaConfig::default() };
    let mfa = mfa(&b, config);
    let member = b.user("bob@example.com").await;
    assert!(mfa.challenge(&member).await.unwrap().is_none());
    let mut admin = b.user("ada@example.com").await;
    admin.role = "Admin".to_owned();
    b.users.set_role(&admin.email, "Admin").await.unwrap();
    let challenge = mfa.challenge(&admin).await.unwrap().unwrap();
    assert!(challenge.enrol, "an enrolment-only token");
    let early = mfa.complete(&challenge.token, &Proof::Code("123456".into())).await;
    assert!(matches!(early, Err(MfaError::NotPending)), "{early:?}");
    let enrolment = mfa.setup(&challenge.token).await.unwrap();
    let passed = mfa.complete(&challenge.token, &Proof::Code(code(&b, &enrolment))).await.unwrap();
    assert_eq!(passed.amr, ["pwd", "otp"]);
    assert_eq!(passed.recovery_codes.as_ref().map(Vec::len), Some(10));
    let stored = reread(&b, &admin).await;
    assert!(stored.totp.enabled());
    let next = mfa.challenge(&stored).await.unwrap().unwrap();
    assert!(!next.enrol, "enrolled now: a normal second step");
    assert!(matches!(mfa.setup(&next.token).await, Err(MfaError::AlreadyEnabled)));
}

async fn off_means_no_second_step_and_no_enrolment(b: Backend) {
    let on = mfa(&b, MfaConfig::default());
    let (user, _, _) = enrolled(&b, &on, "ada@example.com").await;
    let off = mfa(&b, MfaConfig { mode: MfaMode::Off, ..MfaConfig::default() });
    assert!(off.challenge(&user).await.unwrap().is_none());
    assert!(matches!(off.begin(&b.user("bob@example.com").await).await, Err(MfaError::Off)));
    let required = mfa(&b, MfaConfig { mode: MfaMode::Required, ..MfaConfig::default() });
    let bob = reread(&b, &b.user("cy@example.com").await).await;
    assert!(required.challenge(&bob).await.unwrap().unwrap().enrol);
}

async fn a_secret_sealed_under_a_replaced_key_fails_closed(b: Backend) {
    let (user, enrolment, codes) = enrolled(&b, &mfa(&b, MfaConfig::default()), "ada@example.com").await;
    // The refresh-MAC key replaced (the "log everyone out" runbook): the sealed secret
    // and the recovery-code hashes no longer open under the new key.
    let replaced = latchkey::session::SessionManager::new(
        b.sessions.clone(),
        b.users.clone(),
        latchkey::token::RefreshKey::generate().unwrap(),
        support::POLICY,
        b.clock.clone(),
    );
    let hasher = latchkey::password::PasswordHasher::new(PasswordParams::default()).unwrap();
    let accounts = latchkey::account::Accounts::new(b.users.clone(), replaced, hasher);
    let after = Mfa::over(accounts, b.credentials.clone(), b.attempts.clone(), MfaConfig::default()).unwrap();
    let challenge = after.challenge(&user).await.unwrap().unwrap();
    let code = after.complete(&challenge.token, &Proof::Code(code(&b, &enrolment))).await;
    assert!(matches!(code, Err(MfaError::InvalidCode)), "no code opens it, and no 500: {code:?}");
    let recovery = after.complete(&challenge.token, &Proof::RecoveryCode(codes[0].clone())).await;
    assert!(matches!(recovery, Err(MfaError::InvalidCode)), "{recovery:?}");
    assert!(after.reset(&reread(&b, &user).await).await.unwrap(), "an administrator's reset frees the user");
    assert!(after.challenge(&reread(&b, &user).await).await.unwrap().is_none());
}

async fn a_password_change_ends_a_pending_second_step(b: Backend) {
    let mfa = mfa(&b, MfaConfig::default());
    let (user, enrolment, _) = enrolled(&b, &mfa, "ada@example.com").await;
    let challenge = mfa.challenge(&user).await.unwrap().unwrap();
    b.clock.advance(1);
    let accounts = b.accounts(PasswordParams::default());
    accounts.set_password(&user.email, &Password::new("a brand new password").unwrap()).await.unwrap();
    let after = mfa.complete(&challenge.token, &Proof::Code(code(&b, &enrolment))).await;
    assert!(matches!(after, Err(MfaError::InvalidToken)), "the old password's login is over: {after:?}");
    let fresh = mfa.challenge(&reread(&b, &user).await).await.unwrap().unwrap();
    mfa.complete(&fresh.token, &Proof::Code(code(&b, &enrolment))).await.unwrap();
}

contract!(
    a_password_change_ends_a_pending_second_step,
    a_secret_sealed_under_a_replaced_key_fails_closed,
    enrolment_is_confirmed_by_a_code_and_gives_ten_recovery_codes,
    a_code_is_accepted_once_and_a_replay_is_refused,
    one_step_of_drift_either_way_and_no_more,
    concurrent_uses_of_one_code_or_recovery_code_succeed_once,
    a_recovery_code_signs_in_once,
    wrong_codes_are_throttled_per_user_even_the_right_one,
    the_mfa_token_is_single_use_short_lived_and_superseded,
    removal_needs_the_password_and_a_code_and_an_admin_can_reset,
    a_role_that_must_enrol_enrols_during_its_login,
    off_means_no_second_step_and_no_enrolment,
);
