//! The audit trail: one structured line per security event, with the user (and
//! session) it concerns and never a secret, as docs/operations.md lists them. Its
//! own test binary: the captured log holds only this scenario.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use latchkey::Config;
use latchkey::clock::ManualClock;
use latchkey::http::{login, logout, refresh};
use latchkey::password::Password;
use latchkey::services::Services;
use latchkey::signing::LocalSigner;
use latchkey::store::MemoryStore;
use latchkey_tests::events::{post_json, response_json as body};
use latchkey_tests::support::{START, capture_logs, log_lines};
use latchkey_tests::{DEMO_EMAIL, DEMO_PASSWORD, components};
use serde_json::{Value, json};

fn post(path: &str, body: Value) -> lambda_http::Request {
    post_json(path, &[], body)
}

#[tokio::test]
async fn every_security_event_writes_one_line_with_its_user_and_no_secret() {
    let logs = capture_logs();
    let clock = Arc::new(ManualClock::new(START));
    let store = Arc::new(MemoryStore::new());
    let services = Services::assemble(
        &Config::default(),
        components(store, Arc::new(LocalSigner::generate().unwrap()), clock.clone()),
    )
    .unwrap();
    let accounts = services.accounts().clone();
    let user = accounts.create(DEMO_EMAIL, &Password::new(DEMO_PASSWORD).unwrap(), "member").await.unwrap();
    let sign_in = |password: &str| post("/login", json!({"email": DEMO_EMAIL, "password": password}));

    let first = body(&login(&services.login, sign_in(DEMO_PASSWORD)).await);
    assert_eq!(login(&services.login, sign_in("wrong password")).await.status(), 401);
    let nobody = post("/login", json!({"email": "nobody@example.com", "password": "whatever it is"}));
    assert_eq!(login(&services.login, nobody).await.status(), 401);
    let spent = first["refreshToken"].as_str().unwrap().to_owned();
    let rotate = || post("/refresh-token", json!({"refreshToken": spent}));
    let rotated = body(&refresh(&services.refresh, rotate()).await);
    assert_eq!(refresh(&services.refresh, rotate()).await.status(), 200, "a grace replay");
    clock.advance(60);
    assert_eq!(refresh(&services.refresh, rotate()).await.status(), 401, "reuse");
    let second = body(&login(&services.login, sign_in(DEMO_PASSWORD)).await);
    let out = logout(&services.logout, post("/logout", json!({"refreshToken": second["refreshToken"]}))).await;
    assert_eq!(out.status(), 204);
    let third = body(&login(&services.login, sign_in(DEMO_PASSWORD)).await);
    let all = json!({"refreshToken": third["refreshToken"], "allSessions": true});
    assert_eq!(logout(&services.logout, post("/logout", all)).await.status(), 204);
    accounts.set_role(DEMO_EMAIL, "Owner").await.unwrap();
    accounts.set_password(DEMO_EMAIL, &Password::new("a brand new password").unwrap()).await.unwrap();
    accounts.set_disabled(DEMO_EMAIL, true).await.unwrap();
    accounts.set_disabled(DEMO_EMAIL, false).await.unwrap();

    let (text, lines) = log_lines(&logs);
    let events = |name: &str| -> Vec<&Value> { lines.iter().filter(|line| line["event"] == name).collect() };
    for (name, count) in [
        ("user_created", 1),
        ("login_succeeded", 3),
        ("session_started", 3),
        ("refresh_rotated", 1),
        ("refresh_grace_replay", 1),
        ("refresh_token_reuse", 1),
        ("role_changed", 1),
        ("password_changed", 1),
        ("user_disabled", 1),
        ("user_enabled", 1),
    ] {
        let found = events(name);
        assert_eq!(found.len(), count, "{name}: {text}");
        assert!(found.iter().all(|line| line["user_id"] == user.id.as_str()), "{name} without its user: {text}");
    }
    let failures = events("login_failed");
    let reasons: Vec<(&str, Option<&str>)> =
        failures.iter().map(|line| (line["reason"].as_str().unwrap(), line["user_id"].as_str())).collect();
    assert_eq!(reasons, [("wrong_password", Some(user.id.as_str())), ("unknown_email", None)]);
    let revoked: Vec<&str> = events("session_revoked").iter().map(|line| line["reason"].as_str().unwrap()).collect();
    assert_eq!(revoked, ["reuse", "logout", "logout_all"], "{text}");
    let ended: Vec<&str> = events("sessions_ended").iter().map(|line| line["reason"].as_str().unwrap()).collect();
    assert_eq!(ended, ["logout_all", "password_changed", "user_disabled"]);
    for line in events("session_started").iter().chain(&events("session_revoked")) {
        assert!(line["session_id"].as_str().is_some_and(|id| id.len() == 22), "{line}");
    }
    // One `request` line per HTTP request, its latency in milliseconds: a refresh or
    // logout on the memory store takes microseconds to milliseconds, never a second.
    let requests = events("request");
    assert_eq!(requests.len(), 10, "{text}");
    for line in &requests {
        let status = line["status"].as_u64().unwrap();
        let level = if status >= 400 { "WARN" } else { "INFO" };
        assert_eq!(line["level"], level, "a {status} is logged at {level}: {line}");
    }
    for line in requests.iter().filter(|line| line["route"] != "POST /login") {
        let ms = line["latency_ms"].as_f64().unwrap();
        assert!(ms > 1e-4 && ms < 1000.0, "latency_ms {ms} is not in milliseconds: {line}");
    }
    let refresh_tokens = [&first, &rotated, &second, &third].map(|t| t["refreshToken"].as_str().unwrap_or("lk1.none"));
    for secret in [DEMO_PASSWORD, "a brand new password", "$argon2id$", "eyJhbGci"].iter().chain(refresh_tokens.iter())
    {
        assert!(!text.contains(secret), "the audit log holds a secret: {secret}");
    }
}
