//! The whole product end to end through the real handlers, built exactly as the
//! deployed functions build them (DynamoDB and KMS on moto): login → authorize →
//! refresh → replay (refused, session revoked) → logout. The JSON log of the whole
//! flow is captured and searched for every secret the flow used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use lambda_http::{Body, Response};
use latchkey::authorizer::authorize;
use latchkey::http::{AccountState, LoginState, LogoutState, RefreshState, account, login, logout, refresh};
use latchkey_tests::events::{http_api, token_authorizer, v2_authorizer};
use latchkey_tests::{DEMO_EMAIL, DEMO_PASSWORD, Env, FIXTURE_ORIGIN, fixture_edge};
use serde_json::{Value, json};

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> lambda_http::Request {
    browser_request(method, path, headers, &[], body)
}

fn browser_request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    cookies: &[&str],
    body: Option<Value>,
) -> lambda_http::Request {
    let body = body.map(|b| b.to_string());
    let event = http_api(method, path, headers, cookies, body.as_deref());
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn body_json(response: &Response<Body>) -> Value {
    match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        Body::Empty => Value::Null,
        other => panic!("{other:?}"),
    }
}

const JSON: [(&str, &str); 1] = [("content-type", "application/json")];

#[tokio::test]
async fn login_authorize_refresh_replay_logout_through_the_deployed_handlers() {
    let logs = latchkey_tests::support::capture_logs();

    let Some(mut env) = Env::new(fixture_edge()).await else {
        return;
    };
    env.config.refresh_reuse_grace = Duration::ZERO;
    let login_state: LoginState = env.deployed().await;
    let refresh_state: RefreshState = env.deployed().await;
    let logout_state: LogoutState = env.deployed().await;
    let authorizer = env.deployed_authorizer().await;
    let mut secrets = vec![DEMO_PASSWORD.to_owned()];

    // Login: tokens in the body and the refresh cookie.
    let credentials = json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD});
    let response = login(&login_state, request("POST", "/login", &JSON, Some(credentials.clone()))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    let parsed = cookie::Cookie::parse(cookie.as_str()).unwrap();
    assert_eq!(parsed.name(), "__Secure-latchkey-refresh");
    assert_eq!(parsed.http_only(), Some(true), "{cookie}");
    assert_eq!(parsed.secure(), Some(true), "{cookie}");
    assert_eq!(parsed.same_site(), Some(cookie::SameSite::Strict), "{cookie}");
    assert_eq!(parsed.path(), Some("/refresh-token"), "{cookie}");
    assert_eq!(parsed.domain(), None, "a Domain attribute would widen the cookie: {cookie}");
    // Max-Age counts to the session's end: 30 days, maybe a second less when a
    // second boundary falls between the session write and the response.
    let max_age = parsed.max_age().unwrap().whole_seconds();
    assert!((2_591_998..=2_592_000).contains(&max_age), "Max-Age {max_age}");
    let tokens = body_json(&response);
    assert_eq!(tokens["tokenType"], "Bearer");
    assert_eq!(tokens["expiresIn"], 900);
    let access = tokens["accessToken"].as_str().unwrap().to_owned();
    let first_refresh = tokens["refreshToken"].as_str().unwrap().to_owned();
    assert!(cookie.contains(&first_refresh));
    secrets.extend([access.clone(), first_refresh.clone()]);

    // Authorize: REST TOKEN and HTTP API 2.0, both with the user's context.
    let bearer = format!("Bearer {access}");
    let policy = authorize(&authorizer, token_authorizer(&bearer)).await.unwrap();
    assert_eq!(policy["principalId"], env.demo.id.as_str());
    assert_eq!(policy["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(
        policy["policyDocument"]["Statement"][0]["Resource"][0],
        "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/*/*"
    );
    assert_eq!(policy["context"]["email"], DEMO_EMAIL);
    let simple = authorize(&authorizer, v2_authorizer(&bearer)).await.unwrap();
    assert_eq!(simple["isAuthorized"], true);
    assert_eq!(simple["context"]["userId"], env.demo.id.as_str());
    assert_eq!(simple["context"]["role"], "member");
    assert!(authorize(&authorizer, v2_authorizer("Bearer garbage")).await.is_err());

    // Refresh: a new pair; the old refresh token is now spent.
    let refreshed =
        refresh(&refresh_state, request("POST", "/refresh-token", &JSON, Some(json!({"refreshToken": first_refresh}))))
            .await;
    assert_eq!(refreshed.status(), 200);
    let rotated = body_json(&refreshed);
    let second_refresh = rotated["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    secrets.extend([second_refresh.clone(), rotated["accessToken"].as_str().unwrap().to_owned()]);

    // Replay of the spent token: refused, and the whole session is revoked.
    let replay =
        refresh(&refresh_state, request("POST", "/refresh-token", &JSON, Some(json!({"refreshToken": first_refresh}))))
            .await;
    assert_eq!(replay.status(), 401);
    assert_eq!(body_json(&replay)["error"], "invalid_grant");
    assert_eq!(replay.headers()["www-authenticate"], "Bearer error=\"invalid_grant\"");
    let newest = refresh(
        &refresh_state,
        request("POST", "/refresh-token", &JSON, Some(json!({"refreshToken": second_refresh}))),
    )
    .await;
    assert_eq!(newest.status(), 401, "reuse must revoke the newest token too");

    // Logout of a second session, by cookie from the allowed origin: 204, cookie
    // cleared, idempotent, and its refresh token is dead afterwards.
    let second = login(&login_state, request("POST", "/login", &JSON, Some(credentials))).await;
    let second_token = body_json(&second)["refreshToken"].as_str().unwrap().to_owned();
    secrets.push(second_token.clone());
    let cookie_header = format!("__Secure-latchkey-refresh={second_token}");
    let browser = [("origin", FIXTURE_ORIGIN), ("x-latchkey-csrf", "1"), ("cookie", cookie_header.as_str())];
    for _ in 0..2 {
        let out = logout(&logout_state, browser_request("POST", "/logout", &browser, &[&cookie_header], None)).await;
        assert_eq!(out.status(), 204, "{:?}", body_json(&out));
        assert_eq!(out.headers()["access-control-allow-origin"], FIXTURE_ORIGIN);
        assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    }
    let after =
        refresh(&refresh_state, request("POST", "/refresh-token", &JSON, Some(json!({"refreshToken": second_token}))))
            .await;
    assert_eq!(after.status(), 401);

    // The log: one line per request, the reuse event, and no secret anywhere.
    let (text, lines) = latchkey_tests::support::log_lines(&logs);
    let requests: Vec<&Value> = lines.iter().filter(|l| l["event"] == "request").collect();
    assert_eq!(requests.len(), 8, "{text}");
    assert!(requests.iter().all(|l| l["route"].is_string() && l["status"].is_number() && l["latency_ms"].is_number()));
    assert!(requests.iter().any(|l| l["route"] == "POST /login" && l["user_id"] == env.demo.id.as_str()));
    assert_eq!(lines.iter().filter(|l| l["event"] == "refresh_token_reuse").count(), 1);
    assert!(lines.iter().any(|l| l["event"] == "authorize" && l["outcome"] == "allow"));
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret reached the log");
        let tail = &secret[secret.len().saturating_sub(20)..];
        assert!(!text.contains(tail), "part of a secret reached the log");
    }
    assert!(!text.to_lowercase().contains("authorization"), "the Authorization header reached the log");
    assert!(!text.contains("argon2"), "a password hash reached the log");

    // The second factor: enrol, then both steps of a login, once with a recovery code.
    // None of its secrets (the TOTP secret, codes, recovery codes, mfaToken) is logged.
    let account_state: AccountState = env.deployed().await;
    let fresh = login(
        &login_state,
        request("POST", "/login", &JSON, Some(json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}))),
    )
    .await;
    let bearer = format!("Bearer {}", body_json(&fresh)["accessToken"].as_str().unwrap());
    let signed_in = [("authorization", bearer.as_str())];
    let enrolment = body_json(&account(&account_state, request("POST", "/mfa/totp", &signed_in, None)).await);
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let code = latchkey_tests::support::totp_code(&secret, now);
    let confirm = request(
        "POST",
        "/mfa/totp/confirm",
        &[signed_in[0], JSON[0]],
        Some(json!({"password": DEMO_PASSWORD, "code": code})),
    );
    let confirmed = body_json(&account(&account_state, confirm).await);
    let recovery: Vec<String> =
        confirmed["recoveryCodes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    let credentials = json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD});
    let challenge = body_json(&login(&login_state, request("POST", "/login", &JSON, Some(credentials))).await);
    let mfa_token = challenge["mfaToken"].as_str().unwrap().to_owned();
    let second = json!({"mfaToken": mfa_token, "recoveryCode": recovery[0]});
    let passed = login(&login_state, request("POST", "/login/mfa", &JSON, Some(second))).await;
    assert_eq!(passed.status(), 200, "{:?}", body_json(&passed));
    let (text, lines) = latchkey_tests::support::log_lines(&logs);
    assert!(lines.iter().any(|l| l["event"] == "mfa_passed" && l["method"] == "recovery_code"), "{text}");
    // (A six-digit code is too short to search a log full of numbers for.)
    for secret in [secret, mfa_token].into_iter().chain(recovery.iter().flat_map(|c| [c.clone(), c.replace('-', "")])) {
        assert!(!text.contains(secret.as_str()), "a second-factor secret reached the log");
    }
}
