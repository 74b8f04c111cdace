//! How many AWS calls login, refresh and logout make, and how many of them wait
//! for one another (the depth): every store call and signature takes 10 ms on a
//! paused clock, so calls sent together overlap and calls sent in turn do not.
//! The latencies themselves are measured by `tests/examples/round_trips.rs`
//! (docs/performance.md), never here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use latchkey_tests::latency::SlowServices;

const LATENCY: Duration = Duration::from_millis(10);

#[tokio::test(start_paused = true)]
async fn login_is_two_round_trips_deep_refresh_three_logout_two() {
    let rig = SlowServices::new(LATENCY).await;

    let (tokens, login) = rig.login().await;
    assert_eq!(
        login.stages(),
        "record_failure+get_user_by_email → clear_failures+create_session+kms_sign",
        "the attempt count with the user read; then, after argon2, the rest at once"
    );
    assert_eq!((login.count(), login.depth()), (5, 2));

    let (next, refresh) = rig.refresh(tokens["refreshToken"].as_str().unwrap()).await;
    assert_eq!(
        refresh.stages(),
        "get_session → user_standing+kms_sign → rotate_session",
        "signing for the session's role snapshot while the user is read; the rotation last"
    );
    assert_eq!((refresh.count(), refresh.depth()), (4, 3));

    let (_, logout) = rig.logout(next["refreshToken"].as_str().unwrap()).await;
    assert_eq!(logout.depth(), logout.count(), "{}", logout.stages());
    assert!(logout.depth() <= 2, "{}", logout.stages());
}

/// With delegated signing the period's key signs in the function: login and refresh
/// make no KMS call (the key was made once, before these requests), and a protected
/// route verifying the token reads nothing once its key is learnt.
#[tokio::test(start_paused = true)]
async fn delegated_signing_takes_kms_off_login_and_refresh() {
    let delegated = latchkey::config::SigningConfig {
        mode: latchkey::config::SigningMode::Delegated,
        key_period: Duration::from_secs(3600),
    };
    let rig = SlowServices::with_signing(LATENCY, Duration::from_millis(15), delegated).await;
    let (tokens, login) = rig.login().await;
    assert_eq!(login.stages(), "record_failure+get_user_by_email → clear_failures+create_session");
    assert_eq!((login.count(), login.depth()), (4, 2));
    let (next, refresh) = rig.refresh(tokens["refreshToken"].as_str().unwrap()).await;
    assert_eq!(refresh.stages(), "get_session → user_standing → rotate_session");
    assert_eq!((refresh.count(), refresh.depth()), (3, 3));
    let (listed, sessions) = rig.sessions(next["accessToken"].as_str().unwrap()).await;
    assert!(listed["sessions"].is_array(), "{listed}");
    assert!(!sessions.stages().contains("delegated_key"), "the key was learnt before: {}", sessions.stages());
}

#[tokio::test(start_paused = true)]
async fn a_role_changed_since_the_snapshot_is_signed_again_after_the_user_read() {
    let rig = SlowServices::new(LATENCY).await;
    let (tokens, _) = rig.login().await;
    rig.services.accounts().set_role(latchkey_tests::DEMO_EMAIL, "Admin").await.unwrap();
    rig.timeline.take();

    let (next, refresh) = rig.refresh(tokens["refreshToken"].as_str().unwrap()).await;
    assert_eq!(refresh.stages(), "get_session → user_standing+kms_sign → kms_sign → rotate_session");
    let (_, claims) = latchkey::token::dangerous::decode_unverified(next["accessToken"].as_str().unwrap()).unwrap();
    assert_eq!(claims["role"], "Admin", "the token carries the role as read, not the snapshot");

    // The rotation stored the new snapshot: the next refresh is three deep again.
    let (_, again) = rig.refresh(next["refreshToken"].as_str().unwrap()).await;
    assert_eq!(again.depth(), 3, "{}", again.stages());
}

/// The account routes, on the same timeline. A password change signs the new access
/// token while the other sessions are listed for their marks (they ended already with
/// the epoch, in the write before); forgot-password counts the address while it reads
/// the user; reset lists and marks the sessions after the spending transaction.
#[tokio::test(start_paused = true)]
async fn account_routes_make_the_documented_calls_in_turn() {
    let rig = SlowServices::new(LATENCY).await;
    let (tokens, _) = rig.login().await;
    let (_, change) = rig.change_password(tokens["accessToken"].as_str().unwrap()).await;
    assert_eq!(
        change.stages(),
        "record_failure+get_user_by_email → clear_failures+get_session → change_password_keeping_session → \
         kms_sign+list_user_sessions"
    );
    assert_eq!((change.count(), change.depth()), (7, 4));
    let (_, forgot) = rig.forgot().await;
    assert_eq!(forgot.stages(), "bump+get_user_by_email → issue_secret → bump");
    let (_, reset) = rig.reset().await;
    assert_eq!(reset.stages(), "secret → spend_secret → list_user_sessions → revoke_session");
}

/// The session list reads the index while it reads the user, then the live sessions
/// with where each was used; ending one reads both sessions at once, then writes once.
/// An admin's user page checks the caller (session and user at once), then queries.
#[tokio::test(start_paused = true)]
async fn session_routes_and_the_admin_list_are_two_round_trips_deep() {
    let rig = SlowServices::new(LATENCY).await;
    let (first, _) = rig.login().await;
    let (second, _) = rig.login().await;
    let access = first["accessToken"].as_str().unwrap();
    let (listed, list) = rig.sessions(access).await;
    assert_eq!(list.stages(), "user_standing+list_user_sessions → get_sessions");
    assert_eq!((list.count(), list.depth()), (3, 2));
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    let (_, end) = rig.end_session(access, &other).await;
    assert_eq!(end.stages(), "get_session+get_session → revoke_session");
    assert_eq!((end.count(), end.depth()), (3, 2));
    drop(second);

    let (admin, _) = rig.admin_login().await;
    let (page, users) = rig.list_users(admin["accessToken"].as_str().unwrap()).await;
    assert_eq!(users.stages(), "get_session+user_standing → users_page");
    assert_eq!((users.count(), users.depth()), (3, 2));
    assert_eq!(page["users"].as_array().unwrap().len(), 3);
}

/// A login with a second factor: the password step counts the attempt while it reads
/// the user, then stores the `mfaToken` while it forgets the count (two deep, no
/// session, no signature); the code step reads the token, then counts the code while
/// it reads the user, spends the token and records the code's step in one
/// transaction, then starts the session while it signs and forgets the count (four deep).
#[tokio::test(start_paused = true)]
async fn a_login_with_a_second_factor_is_two_then_four_round_trips_deep() {
    let rig = SlowServices::new(LATENCY).await;
    let (challenge, password) = rig.mfa_password_step().await;
    assert_eq!(challenge["mfaRequired"], true, "{challenge}");
    assert_eq!(password.stages(), "record_failure+get_user_by_email → clear_failures+issue_secret");
    assert_eq!((password.count(), password.depth()), (4, 2));
    let (tokens, code) = rig.mfa_code_step(&challenge).await;
    assert!(tokens["accessToken"].is_string(), "{tokens}");
    assert_eq!(code.stages(), "secret → bump+get_user_by_email → spend_secret → create_session+kms_sign+forget");
    assert_eq!((code.count(), code.depth()), (7, 4));
}
