//! Account operations (create, login, password change, disable) over both stores:
//! what each does to the user and to the user's sessions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;

use std::time::Duration;

use latchkey::Config;
use latchkey::account::{AccountError, Accounts, Authentication, LoginThrottle};
use latchkey::password::{Password, PasswordParams};
use latchkey::session::{InvalidGrant, RefreshError};
use latchkey::store::StoreError;
use support::Backend;

fn pw(text: &str) -> Password {
    Password::new(text).unwrap()
}

async fn create_ada(accounts: &Accounts) -> latchkey::store::User {
    accounts.create("ada@example.com", &pw("correct horse"), "member").await.unwrap()
}

async fn live_sessions(accounts: &Accounts, user_id: &str) -> usize {
    accounts.sessions().list_live(user_id).await.unwrap().len()
}

async fn logs_in(accounts: &Accounts, email: &str, password: &Password) -> bool {
    accounts.authenticate(email, password).await.unwrap().is_some()
}

async fn create_normalises_email_and_refuses_bad_input(b: Backend) {
    let accounts = b.accounts(PasswordParams::default());
    let ada = accounts.create(" Ada@Example.com ", &pw("long enough pw"), "admin").await.unwrap();
    assert_eq!(ada.email, "ada@example.com");
    assert_eq!(ada.role, "admin");
    assert_eq!(ada.id.len(), 22);
    assert!(ada.password_hash.starts_with("$argon2id$"));
    let duplicate = accounts.create("ADA@example.com", &pw("another password"), "member").await;
    assert!(matches!(duplicate, Err(AccountError::Store(StoreError::DuplicateEmail))), "{duplicate:?}");
    let weak = accounts.create("bob@example.com", &pw("short"), "member").await;
    assert!(matches!(weak, Err(AccountError::WeakPassword)));
    let role = accounts.create("bob@example.com", &pw("long enough pw"), "Admin Role").await;
    assert!(matches!(role, Err(AccountError::InvalidRole)));
    let email = accounts.create("not-an-email", &pw("long enough pw"), "member").await;
    assert!(matches!(email, Err(AccountError::InvalidEmail(_))));
    let seven = accounts.create("bob@example.com", &pw("1234567"), "member").await;
    assert!(matches!(seven, Err(AccountError::WeakPassword)), "7 characters are too few");
    accounts.create("bob@example.com", &pw("12345678"), "member").await.unwrap();
}

/// Roles are opaque and case-preserving, as users write them (`Admin`), within a
/// charset safe in logs, headers and policies, 1-64 characters.
async fn roles_keep_their_case_and_stay_within_a_safe_charset(b: Backend) {
    let accounts = b.accounts(PasswordParams::default());
    let longest = "R".repeat(64);
    for (n, role) in ["Admin", "billing/Reader", "team:ops.v2", "a_b-c", longest.as_str()].into_iter().enumerate() {
        let user = accounts.create(&format!("u{n}@example.com"), &pw("long enough pw"), role).await.unwrap();
        assert_eq!(user.role, role);
        let stored = accounts.existing(&user.email).await.unwrap();
        assert_eq!(stored.role, role, "the store kept the case");
    }
    accounts.set_role("u1@example.com", "Owner").await.unwrap();
    assert_eq!(accounts.existing("u1@example.com").await.unwrap().role, "Owner");
    let too_long = "R".repeat(65);
    for bad in ["", "Admin Role", "admin,ops", "role=x", "røle", "a\nb", too_long.as_str()] {
        let created = accounts.create("bad@example.com", &pw("long enough pw"), bad).await;
        assert!(matches!(created, Err(AccountError::InvalidRole)), "{bad:?}: {created:?}");
        assert!(matches!(accounts.set_role("u0@example.com", bad).await, Err(AccountError::InvalidRole)), "{bad:?}");
    }
}

async fn authenticate_accepts_only_the_right_password_of_an_enabled_user(b: Backend) {
    let accounts = b.accounts(PasswordParams::default());
    let ada = create_ada(&accounts).await;
    let found = accounts.authenticate("ADA@example.com ", &pw("correct horse")).await.unwrap();
    assert_eq!(found.map(|u| u.id), Some(ada.id));
    assert!(!logs_in(&accounts, "ada@example.com", &pw("Correct horse")).await);
    assert!(!logs_in(&accounts, "nobody@example.com", &pw("correct horse")).await);
    assert!(!logs_in(&accounts, "no at sign", &pw("correct horse")).await);
    accounts.set_disabled("ada@example.com", true).await.unwrap();
    assert!(!logs_in(&accounts, "ada@example.com", &pw("correct horse")).await);
    accounts.set_disabled("ada@example.com", false).await.unwrap();
    assert!(logs_in(&accounts, "ada@example.com", &pw("correct horse")).await);
}

async fn login_upgrades_a_weak_hash_without_ending_sessions(b: Backend) {
    let weak = b.accounts(PasswordParams::default());
    let ada = weak.create("ada@example.com", &pw("correct horse"), "member").await.unwrap();
    let session = weak.sessions().start(&ada).await.unwrap();
    let stronger = b.accounts(PasswordParams { memory_kib: 19_456, iterations: 3, parallelism: 1 });
    assert!(logs_in(&stronger, "ada@example.com", &pw("correct horse")).await);
    let stored = b.users.get_user_by_email("ada@example.com").await.unwrap().unwrap();
    assert_ne!(stored.password_hash, ada.password_hash);
    assert!(stored.password_hash.contains("t=3"), "{}", stored.password_hash);
    assert_eq!(stored.password_changed_at, ada.password_changed_at);
    assert!(stronger.sessions().refresh(&session.refresh_token).await.is_ok());
}

async fn password_change_revokes_every_session_eagerly(b: Backend) {
    let accounts = b.accounts(PasswordParams::default());
    let ada = create_ada(&accounts).await;
    let tokens = [
        accounts.sessions().start(&ada).await.unwrap().refresh_token,
        accounts.sessions().start(&ada).await.unwrap().refresh_token,
    ];
    assert_eq!(accounts.set_password("ada@example.com", &pw("battery staple")).await.unwrap(), 2);
    assert_eq!(live_sessions(&accounts, &ada.id).await, 0);
    for token in &tokens {
        let outcome = accounts.sessions().refresh(token).await;
        assert!(matches!(outcome, Err(RefreshError::Invalid(InvalidGrant::Revoked))), "{outcome:?}");
    }
    assert!(!logs_in(&accounts, "ada@example.com", &pw("correct horse")).await);
    assert!(logs_in(&accounts, "ada@example.com", &pw("battery staple")).await);
    assert_eq!(accounts.set_password("ada@example.com", &pw("battery staple")).await.unwrap(), 0);
    let missing = accounts.set_password("nobody@example.com", &pw("battery staple")).await;
    assert!(matches!(missing, Err(AccountError::Store(StoreError::NotFound))));
}

async fn disabling_revokes_every_session_eagerly(b: Backend) {
    let accounts = b.accounts(PasswordParams::default());
    let ada = create_ada(&accounts).await;
    accounts.sessions().start(&ada).await.unwrap();
    assert_eq!(accounts.set_disabled("ada@example.com", true).await.unwrap(), 1);
    assert_eq!(accounts.set_disabled("ada@example.com", true).await.unwrap(), 0);
    assert_eq!(live_sessions(&accounts, &ada.id).await, 0);
    accounts.set_role("ada@example.com", "admin").await.unwrap();
    assert_eq!(b.users.get_user_by_email("ada@example.com").await.unwrap().unwrap().role, "admin");
}

fn throttled(b: &Backend, max_failures: u32) -> Accounts {
    let config =
        Config { login_max_failures: max_failures, login_lockout: Duration::from_secs(900), ..Config::default() };
    b.accounts(PasswordParams::default()).with_throttle(LoginThrottle::from_config(b.attempts.clone(), &config))
}

async fn login_is_throttled_per_email_after_too_many_failures(b: Backend) {
    let accounts = throttled(&b, 3);
    let ada = create_ada(&accounts).await;
    for _ in 0..3 {
        assert_eq!(accounts.login("ada@example.com", &pw("wrong password")).await.unwrap(), Authentication::Failure);
    }
    match accounts.login("ADA@example.com", &pw("correct horse")).await.unwrap() {
        Authentication::Throttled { retry_after_secs } => assert!((1..=900).contains(&retry_after_secs)),
        other => panic!("expected throttling, got {other:?}"),
    }
    for _ in 0..3 {
        assert_eq!(accounts.login("nobody@example.com", &pw("guess")).await.unwrap(), Authentication::Failure);
    }
    assert!(matches!(
        accounts.login("nobody@example.com", &pw("guess")).await.unwrap(),
        Authentication::Throttled { .. }
    ));
    let bob = accounts.create("bob@example.com", &pw("bob password"), "member").await.unwrap();
    assert_eq!(accounts.login("bob@example.com", &pw("bob password")).await.unwrap(), Authentication::Success(bob));
    b.clock.advance(900);
    assert_eq!(accounts.login("ada@example.com", &pw("correct horse")).await.unwrap(), Authentication::Success(ada));
}

async fn a_successful_login_forgets_earlier_failures(b: Backend) {
    let accounts = throttled(&b, 3);
    create_ada(&accounts).await;
    for round in 0..3 {
        for _ in 0..2 {
            assert_eq!(accounts.login("ada@example.com", &pw("wrong")).await.unwrap(), Authentication::Failure);
        }
        assert_eq!(b.attempts.failures("ada@example.com", WINDOW).await.unwrap(), 2, "round {round}");
        let outcome = accounts.login("ada@example.com", &pw("correct horse")).await.unwrap();
        assert!(matches!(outcome, Authentication::Success(_)), "round {round}: {outcome:?}");
        assert_eq!(b.attempts.failures("ada@example.com", WINDOW).await.unwrap(), 0, "round {round}");
    }
}

async fn concurrent_guesses_cannot_exceed_the_limit(b: Backend) {
    let accounts = throttled(&b, 3);
    create_ada(&accounts).await;
    let wrong = pw("wrong password");
    let outcomes = futures::future::join_all((0..12).map(|_| accounts.login("ada@example.com", &wrong))).await;
    let checked = outcomes.iter().filter(|o| matches!(o, Ok(Authentication::Failure))).count();
    let throttled = outcomes.iter().filter(|o| matches!(o, Ok(Authentication::Throttled { .. }))).count();
    assert_eq!((checked, throttled), (3, 9), "{outcomes:?}");
}

async fn a_string_that_is_no_email_is_refused_without_a_counter(b: Backend) {
    let accounts = throttled(&b, 3);
    let junk = "x".repeat(3000);
    for _ in 0..5 {
        assert_eq!(accounts.login(&junk, &pw("whatever")).await.unwrap(), Authentication::Failure);
    }
}

/// The fixed window the test clock is in: START (1_800_000_000 s) over 900 s windows.
const WINDOW: u64 = 2_000_000;

async fn the_last_active_admin_cannot_be_demoted_disabled_or_deleted(b: Backend) {
    let accounts = b.accounts(PasswordParams::default());
    let root = accounts.create("root@example.com", &pw("long enough pw"), "Admin").await.unwrap();
    let refusals = [
        accounts.set_role(&root.email, "member").await,
        accounts.set_disabled(&root.email, true).await.map(|_| ()),
        accounts.delete_user(&root).await.map(|_| ()),
    ];
    for refused in refusals {
        assert!(matches!(refused, Err(AccountError::LastAdmin)), "{refused:?}");
    }
    let stored = accounts.existing(&root.email).await.unwrap();
    assert_eq!((stored.role.as_str(), stored.disabled), ("Admin", false), "nothing was written");
    let second = accounts.create("second@example.com", &pw("long enough pw"), "Admin").await.unwrap();
    accounts.set_role(&root.email, "member").await.unwrap();
    let last = accounts.set_disabled(&second.email, true).await;
    assert!(matches!(last, Err(AccountError::LastAdmin)), "{last:?}");
    accounts.set_role(&root.email, "Admin").await.unwrap();
    accounts.set_disabled(&second.email, true).await.unwrap();
    let refused = accounts.delete_user(&accounts.existing(&root.email).await.unwrap()).await;
    assert!(matches!(refused, Err(AccountError::LastAdmin)), "a disabled admin is no active admin: {refused:?}");
    accounts.set_disabled(&second.email, false).await.unwrap();
    accounts.delete_user(&accounts.existing(&root.email).await.unwrap()).await.unwrap();
    assert!(accounts.users().get_user_by_email(&root.email).await.unwrap().is_none());
    accounts.create("root@example.com", &pw("long enough pw"), "member").await.unwrap();
    let other = accounts.users().get_user_by_email(&root.email).await.unwrap().unwrap();
    assert_ne!(other.id, root.id, "the email is free for a new account");
    let stale = accounts.set_role_of(&root, "member").await;
    assert!(matches!(stale, Err(AccountError::Conflict)), "a change to the user as read: {stale:?}");
}

async fn two_admins_demoting_each_other_at_once_leave_one(b: Backend) {
    let accounts = b.accounts(PasswordParams::default());
    let one = accounts.create("one@example.com", &pw("long enough pw"), "Admin").await.unwrap();
    let two = accounts.create("two@example.com", &pw("long enough pw"), "Admin").await.unwrap();
    let (a, b2) = tokio::join!(accounts.set_role_of(&one, "member"), accounts.set_disabled_of(&two, true));
    let refused = [a.is_err(), b2.is_err()];
    assert_eq!(refused.iter().filter(|r| **r).count(), 1, "{a:?} {b2:?}");
    let admins = accounts.users().admin_set().await.unwrap().unwrap();
    assert_eq!(admins.len(), 1, "{admins:?}");
}

async fn a_table_without_the_admin_record_builds_it_from_the_users(b: Backend) {
    let accounts = b.accounts(PasswordParams::default());
    // Written as an older version did: no admin record.
    let old = b.user("old@example.com").await;
    accounts.users().set_role(&old.email, "Admin").await.unwrap();
    assert_eq!(accounts.users().admin_set().await.unwrap(), None);
    let refused = accounts.set_role(&old.email, "member").await;
    assert!(matches!(refused, Err(AccountError::LastAdmin)), "{refused:?}");
    assert_eq!(accounts.users().admin_set().await.unwrap(), Some(vec![old.id.clone()]));
}

async fn users_are_listed_in_pages_by_email_prefix(b: Backend) {
    let accounts = b.accounts(PasswordParams::default());
    for email in ["a2@example.com", "a0@example.com", "b0@example.com", "a1@example.com", "a3@example.com"] {
        b.user(email).await;
    }
    let users = accounts.users();
    let first = users.users_page("a", None, 2).await.unwrap();
    let emails = |page: &latchkey::store::UsersPage| page.users.iter().map(|u| u.email.clone()).collect::<Vec<_>>();
    assert_eq!(emails(&first), ["a0@example.com", "a1@example.com"]);
    assert_eq!(first.last.as_deref(), Some("a1@example.com"));
    let second = users.users_page("a", first.last.as_deref(), 2).await.unwrap();
    assert_eq!(emails(&second), ["a2@example.com", "a3@example.com"]);
    assert_eq!(second.last, None, "no page after the last");
    let all = users.users_page("", None, 10).await.unwrap();
    assert_eq!(all.users.len(), 5);
    assert_eq!(all.users[4].email, "b0@example.com");
    assert!(all.users.iter().all(|u| !u.id.is_empty() && u.role == "member" && !u.disabled));
}

contract!(
    the_last_active_admin_cannot_be_demoted_disabled_or_deleted,
    two_admins_demoting_each_other_at_once_leave_one,
    a_table_without_the_admin_record_builds_it_from_the_users,
    users_are_listed_in_pages_by_email_prefix,
    create_normalises_email_and_refuses_bad_input,
    roles_keep_their_case_and_stay_within_a_safe_charset,
    authenticate_accepts_only_the_right_password_of_an_enabled_user,
    login_upgrades_a_weak_hash_without_ending_sessions,
    password_change_revokes_every_session_eagerly,
    disabling_revokes_every_session_eagerly,
    login_is_throttled_per_email_after_too_many_failures,
    a_successful_login_forgets_earlier_failures,
    concurrent_guesses_cannot_exceed_the_limit,
    a_string_that_is_no_email_is_refused_without_a_counter,
);
