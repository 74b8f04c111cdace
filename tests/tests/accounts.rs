//! The account routes through the account function's handler: what a client sees
//! of change, forgot and reset password, sign-up and email verification, and that
//! the answers which must not tell whether an email has an account do not, by body
//! or by time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use latchkey::Config;
use latchkey::config::{AccountConfig, SignupMode};
use latchkey::delivery::{MessageKind, Outbox, secret_of};
use latchkey::http::{account, login, refresh};
use latchkey::password::Password;
use latchkey::services::Services;
use latchkey_tests::events::{post_json as post, response_json as body};
use latchkey_tests::{DEMO_EMAIL, DEMO_PASSWORD};
use serde_json::{Value, json};

fn services(accounts: AccountConfig) -> (Services, Outbox) {
    let outbox = Outbox::new();
    let accounts = AccountConfig { link_base_url: Some("https://app.example.com/".to_owned()), ..accounts };
    let config = Config { accounts, ..Config::default() };
    let services = Services::embedded_with(&config, None, Arc::new(outbox.clone())).unwrap();
    (services, outbox)
}

async fn demo(services: &Services) {
    services.accounts().create(DEMO_EMAIL, &Password::new(DEMO_PASSWORD).unwrap(), "member").await.unwrap();
}

async fn log_in(services: &Services, password: &str) -> (u16, Value) {
    let response =
        login(&services.login, post("/login", &[], json!({"email": DEMO_EMAIL, "password": password}))).await;
    (response.status().as_u16(), body(&response))
}

fn link_secret(outbox: &Outbox, to: &str, kind: MessageKind) -> String {
    let message = outbox.last_to(to).unwrap();
    assert_eq!(message.kind, kind);
    secret_of(message.link.as_deref().unwrap()).unwrap().to_owned()
}

/// Known, unknown, disabled, throttled and malformed-but-email addresses: the same
/// status and body, each after exactly the response floor (tokio's paused clock:
/// the handler's own time, with no waiting).
#[tokio::test(start_paused = true)]
async fn forgot_answers_alike_at_the_floor_whatever_the_email() {
    let (services, outbox) = services(AccountConfig::default());
    demo(&services).await;
    services.accounts().create("off@example.com", &Password::new("long password").unwrap(), "member").await.unwrap();
    services.accounts().set_disabled("off@example.com", true).await.unwrap();
    let mut answers = Vec::new();
    for email in [DEMO_EMAIL, "nobody@example.com", "off@example.com", DEMO_EMAIL, DEMO_EMAIL, DEMO_EMAIL] {
        let started = tokio::time::Instant::now();
        let response = account(&services.account, post("/password/forgot", &[], json!({"email": email}))).await;
        assert_eq!(started.elapsed(), Duration::from_millis(1000), "{email}: LATCHKEY_ACCOUNT_RESPONSE_FLOOR_MS");
        answers.push((response.status().as_u16(), body(&response)));
    }
    assert_eq!(answers[0].0, 202);
    assert!(answers.iter().all(|answer| *answer == answers[0]), "{answers:?}");
    assert_eq!(outbox.sent().len(), 3, "the known email thrice, then throttled; nothing for the others");
}

#[tokio::test]
async fn a_reset_link_works_once_and_every_bad_link_gets_one_answer() {
    let (services, outbox) = services(AccountConfig { response_floor: Duration::ZERO, ..AccountConfig::default() });
    demo(&services).await;
    let (_, tokens) = log_in(&services, DEMO_PASSWORD).await;
    account(&services.account, post("/password/forgot", &[], json!({"email": DEMO_EMAIL}))).await;
    let secret = link_secret(&outbox, DEMO_EMAIL, MessageKind::PasswordReset);
    let reset = |token: &str, password: &str| {
        account(&services.account, post("/password/reset", &[], json!({"token": token, "newPassword": password})))
    };
    let weak = reset(&secret, "short").await;
    assert_eq!((weak.status().as_u16(), body(&weak)["error"].clone()), (400, json!("weak_password")));
    assert!(body(&weak)["message"].as_str().unwrap().contains("8 characters"), "a refused password says why");
    assert_eq!(reset(&secret, "a new password").await.status(), 204);
    let stale =
        refresh(&services.refresh, post("/refresh-token", &[], json!({"refreshToken": tokens["refreshToken"]})));
    assert_eq!(stale.await.status(), 401, "every session ended");
    assert_eq!(log_in(&services, "a new password").await.0, 200);
    let bad: Vec<Value> = [secret.as_str(), "", "x", &"A".repeat(43)]
        .into_iter()
        .map(|token| async move { body(&reset(token, "a newer password").await) })
        .collect::<futures::future::JoinAll<_>>()
        .await;
    assert!(bad.iter().all(|answer| answer["error"] == "invalid_link" && *answer == bad[0]), "{bad:?}");
}

/// Signed in: the current password proves it (wrong is 401, counted as a login
/// failure); the other sessions end, this one continues with fresh tokens.
#[tokio::test]
async fn changing_the_password_keeps_the_session_that_asked() {
    let (services, _) = services(AccountConfig::default());
    demo(&services).await;
    let (_, mine) = log_in(&services, DEMO_PASSWORD).await;
    let (_, other) = log_in(&services, DEMO_PASSWORD).await;
    let bearer = format!("Bearer {}", mine["accessToken"].as_str().unwrap());
    let change = |current: &str, new: &str| {
        let body = json!({"currentPassword": current, "newPassword": new});
        account(&services.account, post("/password", &[("authorization", &bearer)], body))
    };
    let wrong = change("not the password", "brand new password").await;
    assert_eq!((wrong.status().as_u16(), body(&wrong)["error"].clone()), (401, json!("invalid_credentials")));
    let changed = change(DEMO_PASSWORD, "brand new password").await;
    assert_eq!(changed.status(), 200);
    let fresh = body(&changed);
    assert!(fresh["accessToken"].is_string() && fresh["refreshToken"].is_string(), "{fresh}");
    let next = refresh(&services.refresh, post("/refresh-token", &[], json!({"refreshToken": fresh["refreshToken"]})));
    assert_eq!(next.await.status(), 200, "this session continues");
    let ended = refresh(&services.refresh, post("/refresh-token", &[], json!({"refreshToken": other["refreshToken"]})));
    assert_eq!(ended.await.status(), 401, "the other one ended");
    let no_token =
        account(&services.account, post("/password", &[], json!({"currentPassword": "x", "newPassword": "y"})));
    assert_eq!(no_token.await.status(), 401);
}

#[tokio::test(start_paused = true)]
async fn sign_up_answers_alike_and_logs_in_only_once_verified() {
    let (off, _) = services(AccountConfig::default());
    let refused =
        account(&off.account, post("/signup", &[], json!({"email": "eve@example.com", "password": "long password"})));
    let refused = refused.await;
    assert_eq!((refused.status().as_u16(), body(&refused)["error"].clone()), (403, json!("signup_disabled")));
    let (services, outbox) = services(AccountConfig { signup: SignupMode::Open, ..AccountConfig::default() });
    demo(&services).await;
    let sign_up = |email: &str| {
        account(&services.account, post("/signup", &[], json!({"email": email, "password": "long password"})))
    };
    let started = tokio::time::Instant::now();
    let new = sign_up("eve@example.com").await;
    assert_eq!(started.elapsed(), Duration::from_millis(1000));
    let started = tokio::time::Instant::now();
    let taken = sign_up(DEMO_EMAIL).await;
    assert_eq!(started.elapsed(), Duration::from_millis(1000));
    assert_eq!((new.status(), body(&new)), (taken.status(), body(&taken)), "taken or not: one answer");
    assert_eq!(outbox.last_to(DEMO_EMAIL).unwrap().kind, MessageKind::SignupExisting);
    let eve = json!({"email": "eve@example.com", "password": "long password"});
    let early = login(&services.login, post("/login", &[], eve.clone())).await;
    assert_eq!((early.status().as_u16(), body(&early)["error"].clone()), (403, json!("email_unverified")));
    let secret = link_secret(&outbox, "eve@example.com", MessageKind::VerifyEmail);
    let verified = account(&services.account, post("/email/verify", &[], json!({"token": secret}))).await;
    assert_eq!(verified.status(), 204);
    assert_eq!(login(&services.login, post("/login", &[], eve)).await.status(), 200);
}
