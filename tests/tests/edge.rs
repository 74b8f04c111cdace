//! The HTTP edge and the authorizer on embedded components (no AWS): request
//! limits, refresh-token delivery modes, cookie CSRF checks, CORS, role rules,
//! and no panic on any input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use latchkey::Config;
use latchkey::authorizer::authorize;
use latchkey::config::{EdgeConfig, RefreshDelivery, RouteRole};
use latchkey::http::{jwks, login, logout, refresh};
use latchkey::password::Password;
use latchkey::services::Services;
use latchkey_tests::events::{http_api, request_authorizer, token_authorizer, v2_authorizer};
use latchkey_tests::{DEMO_EMAIL, DEMO_PASSWORD, FIXTURE_ORIGIN};
use serde_json::{Value, json};

async fn services(edge: EdgeConfig) -> Services {
    services_with(Config { edge, ..Config::default() }).await
}

async fn services_with(config: Config) -> Services {
    let services = Services::embedded(&config, None).unwrap();
    services.accounts().create(DEMO_EMAIL, &Password::new(DEMO_PASSWORD).unwrap(), "member").await.unwrap();
    services
}

fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    cookies: &[&str],
    body: Option<&str>,
) -> lambda_http::Request {
    lambda_http::request::from_str(&http_api(method, path, headers, cookies, body).to_string()).unwrap()
}

fn body_json(response: &lambda_http::Response<lambda_http::Body>) -> Value {
    match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// The edge of a browser app on the fixture origin with this cookie path.
fn browser_edge(cookie_path: &str) -> EdgeConfig {
    EdgeConfig {
        allowed_origins: vec![FIXTURE_ORIGIN.to_owned()],
        cookie_path: cookie_path.into(),
        ..EdgeConfig::default()
    }
}

const JSON: [(&str, &str); 1] = [("content-type", "application/json")];

fn credentials() -> String {
    json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}).to_string()
}

/// A body of exactly `MAX_BODY_BYTES` is read; one byte more is refused unread.
#[tokio::test]
async fn a_body_of_8_kib_is_read_and_one_byte_more_is_400() {
    let s = services(EdgeConfig::default()).await;
    let wrong = json!({"email": DEMO_EMAIL, "password": "not the password"}).to_string();
    let padded = |len: usize| format!("{wrong}{}", " ".repeat(len - wrong.len()));
    let exact =
        login(&s.login, request("POST", "/login", &JSON, &[], Some(&padded(latchkey::http::MAX_BODY_BYTES)))).await;
    assert_eq!((exact.status().as_u16(), body_json(&exact)["error"].as_str()), (401, Some("invalid_credentials")));
    for extra in [1, 100] {
        let body = padded(latchkey::http::MAX_BODY_BYTES + extra);
        let over = login(&s.login, request("POST", "/login", &JSON, &[], Some(&body))).await;
        assert_eq!((over.status().as_u16(), body_json(&over)["error"].as_str()), (400, Some("invalid_request")));
    }
    // API Gateway hands a body over base64-encoded (binary) as readily as text.
    let mut binary = lambda_http::Request::new(lambda_http::Body::Binary(wrong.clone().into_bytes()));
    *binary.method_mut() = http::Method::POST;
    binary.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
    let answered = login(&s.login, binary).await;
    assert_eq!(
        (answered.status().as_u16(), body_json(&answered)["error"].as_str()),
        (401, Some("invalid_credentials"))
    );
}

#[tokio::test]
async fn malformed_requests_are_400_without_echoing_input() {
    let s = services(EdgeConfig::default()).await;
    let huge = json!({"email": DEMO_EMAIL, "password": "x".repeat(9 * 1024)}).to_string();
    type Case<'a> = (Vec<(&'a str, &'a str)>, Option<String>);
    let cases: Vec<Case> = vec![
        (JSON.to_vec(), Some(huge)),
        (vec![("content-type", "text/plain")], Some(credentials())),
        (vec![], Some(credentials())),
        (JSON.to_vec(), Some(json!({"email": DEMO_EMAIL}).to_string())),
        (JSON.to_vec(), Some("[1, 2, 3]".to_owned())),
        (JSON.to_vec(), Some("{\"email\": \"secret-marker\"".to_owned())),
        (JSON.to_vec(), None),
    ];
    for (headers, body) in cases {
        let response = login(&s.login, request("POST", "/login", &headers, &[], body.as_deref())).await;
        assert_eq!(response.status(), 400, "{headers:?} {body:?}");
        let error = body_json(&response);
        assert_eq!(error["error"], "invalid_request");
        assert!(!error.to_string().contains("secret-marker"));
    }
    let wrong_method = login(&s.login, request("GET", "/login", &[], &[], None)).await;
    assert_eq!(wrong_method.status(), 405);
}

#[tokio::test]
async fn cookie_delivery_keeps_the_refresh_token_out_of_the_body_and_body_delivery_sets_no_cookie() {
    for (delivery, in_body, in_cookie) in [
        (RefreshDelivery::Cookie, false, true),
        (RefreshDelivery::Body, true, false),
        (RefreshDelivery::Both, true, true),
    ] {
        let s = services(EdgeConfig { refresh_delivery: delivery, ..EdgeConfig::default() }).await;
        let response = login(&s.login, request("POST", "/login", &JSON, &[], Some(&credentials()))).await;
        assert_eq!(response.status(), 200);
        assert_eq!(body_json(&response).get("refreshToken").is_some(), in_body, "{delivery:?}");
        assert_eq!(response.headers().contains_key("set-cookie"), in_cookie, "{delivery:?}");
    }
}

#[tokio::test]
async fn cookie_refresh_requires_allowed_origin_same_site_and_the_csrf_header() {
    let edge = EdgeConfig { allowed_origins: vec![FIXTURE_ORIGIN.to_owned()], ..EdgeConfig::default() };
    let s = services(edge).await;
    let issued = login(&s.login, request("POST", "/login", &JSON, &[], Some(&credentials()))).await;
    let token = body_json(&issued)["refreshToken"].as_str().unwrap().to_owned();
    let cookie = format!("__Secure-latchkey-refresh={token}");
    let refused = [
        vec![("origin", "https://evil.example"), ("x-latchkey-csrf", "1")],
        vec![("origin", FIXTURE_ORIGIN), ("x-latchkey-csrf", "1"), ("sec-fetch-site", "cross-site")],
        vec![("origin", FIXTURE_ORIGIN)],
        vec![("origin", FIXTURE_ORIGIN), ("x-latchkey-csrf", "")],
    ];
    for headers in refused {
        let response = refresh(&s.refresh, request("POST", "/refresh-token", &headers, &[&cookie], None)).await;
        assert_eq!(response.status(), 403, "{headers:?}");
        // An allowed origin may read its refusal; any other origin gets no CORS header.
        let expected = (headers[0].1 == FIXTURE_ORIGIN).then_some(FIXTURE_ORIGIN);
        let acao = response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap());
        assert_eq!(acao, expected, "{headers:?}");
    }
    let ok = refresh(
        &s.refresh,
        request("POST", "/refresh-token", &[("origin", FIXTURE_ORIGIN), ("x-latchkey-csrf", "1")], &[&cookie], None),
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["access-control-allow-origin"], FIXTURE_ORIGIN);
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");
    // A token that arrived in the HttpOnly cookie leaves only in the cookie, even
    // with the default `both`: script on the page never sees it.
    let body = body_json(&ok);
    assert!(body["accessToken"].is_string());
    assert_eq!(body.get("refreshToken"), None, "the cookie's secret came back in the body: {body}");
    let set = cookie::Cookie::parse(ok.headers()["set-cookie"].to_str().unwrap().to_owned()).unwrap();
    assert!(set.value().starts_with("lk1.") && set.value() != token, "the rotated token is in the cookie");
    // A body refresh (a native client) still gets its token in the body.
    let from_body = json!({"refreshToken": set.value()}).to_string();
    let native = refresh(&s.refresh, request("POST", "/refresh-token", &JSON, &[], Some(&from_body))).await;
    assert!(body_json(&native)["refreshToken"].as_str().is_some_and(|t| t.starts_with("lk1.")));
}

#[tokio::test]
async fn two_refresh_cookies_that_differ_are_refused_and_a_root_path_cookie_is_host_prefixed() {
    let edge = EdgeConfig { allowed_origins: vec![FIXTURE_ORIGIN.to_owned()], ..EdgeConfig::default() };
    let s = services(edge).await;
    s.accounts().create("mallory@example.com", &Password::new("mallory-password").unwrap(), "member").await.unwrap();
    let victim = login(&s.login, request("POST", "/login", &JSON, &[], Some(&credentials()))).await;
    let victim = format!("__Secure-latchkey-refresh={}", body_json(&victim)["refreshToken"].as_str().unwrap());
    let mallory = json!({"email": "mallory@example.com", "password": "mallory-password"}).to_string();
    let mallory = login(&s.login, request("POST", "/login", &JSON, &[], Some(&mallory))).await;
    let planted = format!("__Secure-latchkey-refresh={}", body_json(&mallory)["refreshToken"].as_str().unwrap());
    let browser = [("origin", FIXTURE_ORIGIN), ("x-latchkey-csrf", "1")];
    for cookies in [[planted.as_str(), victim.as_str()], [victim.as_str(), planted.as_str()]] {
        let response = refresh(&s.refresh, request("POST", "/refresh-token", &browser, &cookies, None)).await;
        assert_eq!(
            (response.status().as_u16(), body_json(&response)["error"].as_str()),
            (400, Some("invalid_request"))
        );
    }
    let twice = refresh(&s.refresh, request("POST", "/refresh-token", &browser, &[&victim, &victim], None)).await;
    assert_eq!(twice.status(), 200, "the same cookie twice is not ambiguous");

    let s = services(browser_edge("/")).await;
    let issued = login(&s.login, request("POST", "/login", &JSON, &[], Some(&credentials()))).await;
    let set = cookie::Cookie::parse(issued.headers()["set-cookie"].to_str().unwrap().to_owned()).unwrap();
    assert_eq!(
        (set.name(), set.path(), set.domain(), set.secure()),
        ("__Host-latchkey-refresh", Some("/"), None, Some(true))
    );
    let host = format!("__Host-latchkey-refresh={}", set.value());
    let secure = format!("__Secure-latchkey-refresh={}", set.value());
    assert_eq!(refresh(&s.refresh, request("POST", "/refresh-token", &browser, &[&host], None)).await.status(), 200);
    let other_name = refresh(&s.refresh, request("POST", "/refresh-token", &browser, &[&secure], None)).await;
    assert_eq!(other_name.status(), 401, "under path / only the __Host- cookie counts: no refresh token");
}

#[tokio::test]
async fn logging_out_everywhere_with_the_access_token_of_an_ended_session_is_refused() {
    let s = services(EdgeConfig::default()).await;
    let first = login(&s.login, request("POST", "/login", &JSON, &[], Some(&credentials()))).await;
    let bearer = format!("Bearer {}", body_json(&first)["accessToken"].as_str().unwrap());
    let other = login(&s.login, request("POST", "/login", &JSON, &[], Some(&credentials()))).await;
    let other_token = json!({"refreshToken": body_json(&other)["refreshToken"]}).to_string();
    let with_bearer = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let own = logout(&s.logout, request("POST", "/logout", &with_bearer, &[], Some("{}"))).await;
    assert_eq!(own.status(), 204);
    let everywhere = json!({"allSessions": true}).to_string();
    let refused = logout(&s.logout, request("POST", "/logout", &with_bearer, &[], Some(&everywhere))).await;
    assert_eq!(refused.status(), 401, "the access token outlives its session, not its powers");
    let still = refresh(&s.refresh, request("POST", "/refresh-token", &JSON, &[], Some(&other_token))).await;
    assert_eq!(still.status(), 200, "the other session must survive");
}

#[tokio::test]
async fn cors_answers_allowed_origins_only_and_never_echoes_another() {
    let edge = EdgeConfig { allowed_origins: vec![FIXTURE_ORIGIN.to_owned()], ..EdgeConfig::default() };
    let s = services(edge).await;
    let preflight = |origin: &'static str| request("OPTIONS", "/login", &[("origin", origin)], &[], None);
    let allowed = login(&s.login, preflight(FIXTURE_ORIGIN)).await;
    assert_eq!(allowed.status(), 204);
    assert_eq!(allowed.headers()["access-control-allow-origin"], FIXTURE_ORIGIN);
    assert!(allowed.headers()["access-control-allow-headers"].to_str().unwrap().contains("X-Latchkey-CSRF"));
    let denied = login(&s.login, preflight("https://evil.example")).await;
    assert_eq!(denied.status(), 403);
    assert!(!denied.headers().contains_key("access-control-allow-origin"));
    let mut headers = JSON.to_vec();
    headers.push(("origin", "https://evil.example"));
    let response = login(&s.login, request("POST", "/login", &headers, &[], Some(&credentials()))).await;
    assert_eq!(response.status(), 200, "a token in the body needs no origin check");
    let echoed = response.headers().values().any(|value| value.to_str().unwrap_or("").contains("evil.example"));
    assert!(!echoed);
}

async fn access_token(s: &Services) -> String {
    let response = login(&s.login, request("POST", "/login", &JSON, &[], Some(&credentials()))).await;
    format!("Bearer {}", body_json(&response)["accessToken"].as_str().unwrap())
}

#[tokio::test]
async fn required_role_denies_with_a_policy_or_is_authorized_false() {
    let s = services(EdgeConfig { required_role: Some("admin".into()), ..EdgeConfig::default() }).await;
    let bearer = access_token(&s).await;
    let policy = authorize(&s.authorizer, token_authorizer(&bearer)).await.unwrap();
    let statements = policy["policyDocument"]["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Effect"], "Deny");
    let simple = authorize(&s.authorizer, v2_authorizer(&bearer)).await.unwrap();
    assert_eq!(simple["isAuthorized"], false);
}

#[tokio::test]
async fn route_roles_add_explicit_denies_to_the_stage_wide_allow() {
    let rule = |method: &str, path: &str, role: &str| RouteRole {
        method: method.into(),
        path: path.into(),
        role: role.into(),
    };
    let edge = EdgeConfig {
        route_roles: vec![rule("GET", "/orders", "admin"), rule("*", "/public*", "member")],
        ..EdgeConfig::default()
    };
    let s = services(edge).await;
    let bearer = access_token(&s).await;
    let policy = authorize(&s.authorizer, token_authorizer(&bearer)).await.unwrap();
    let statements = policy["policyDocument"]["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 3, "{policy}");
    assert_eq!(statements[0]["Effect"], "Allow");
    assert_eq!(statements[1]["Effect"], "Deny");
    assert_eq!(statements[1]["Resource"][0], "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/GET/orders");
    // The built-in admin rule: a member is denied the admin API in the same policy.
    assert_eq!(
        (statements[2]["Effect"].as_str(), statements[2]["Resource"][0].as_str()),
        (Some("Deny"), Some("arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/*/admin/*"))
    );
    let simple = authorize(&s.authorizer, v2_authorizer(&bearer)).await.unwrap();
    assert_eq!(simple["isAuthorized"], false, "GET /orders needs admin");
    // REST REQUEST and HTTP API payload 1.0 events get the same cache-safe policy.
    for event in [request_authorizer(Some(&bearer), None), request_authorizer(Some(&bearer), Some("1.0"))] {
        let answer = authorize(&s.authorizer, event).await.unwrap();
        let statements = answer["policyDocument"]["Statement"].as_array().unwrap();
        let effects: Vec<&str> = statements.iter().map(|s| s["Effect"].as_str().unwrap()).collect();
        assert_eq!(effects, ["Allow", "Deny", "Deny"], "{answer}");
        assert_eq!(statements[0]["Resource"][0], "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/*/*");
        assert_eq!(
            statements[1]["Resource"][0],
            "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/GET/orders"
        );
    }
}

/// `LATCHKEY_ROUTE_MFA`: a token whose `amr` has no second factor is denied the route
/// (explicit `Deny` on REST and 1.0, `isAuthorized: false` on 2.0) and allowed
/// elsewhere; `otp` or `mfa` (a recovery code) opens it; the context carries `amr`.
#[tokio::test]
async fn a_route_that_needs_a_second_factor_denies_a_password_only_token() {
    let rule =
        RouteRole { method: "GET".into(), path: "/orders".into(), role: latchkey::config::MFA_REQUIREMENT.into() };
    let edge = EdgeConfig { mfa_routes: vec![rule], session_check_secs: 0, ..EdgeConfig::default() };
    let s = services(edge).await;
    let token = async |amr: &[&str]| {
        let subject = latchkey::token::Subject {
            user_id: "u1".into(),
            email: DEMO_EMAIL.into(),
            role: "member".into(),
            session_id: "c2Vzc2lvbi1zZWNvbmQxMjM".into(),
            amr: amr.iter().map(|m| (*m).to_owned()).collect(),
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        format!("Bearer {}", s.login.tokens.issue(&subject, now).await.unwrap().token)
    };
    let password_only = token(&["pwd"]).await;
    let simple = authorize(&s.authorizer, v2_authorizer(&password_only)).await.unwrap();
    assert_eq!(simple["isAuthorized"], false, "GET /orders needs a second factor");
    assert_eq!(simple["context"]["amr"], "pwd");
    let other_route = routed(&password_only, "$default", "/profile", "/profile");
    assert_eq!(authorize(&s.authorizer, other_route).await.unwrap()["isAuthorized"], true);
    let policy = authorize(&s.authorizer, token_authorizer(&password_only)).await.unwrap();
    let statements = policy["policyDocument"]["Statement"].as_array().unwrap();
    let denied: Vec<&str> =
        statements.iter().filter(|s| s["Effect"] == "Deny").map(|s| s["Resource"][0].as_str().unwrap()).collect();
    assert!(denied.contains(&"arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/GET/orders"), "{policy}");
    for amr in [&["pwd", "otp"][..], &["pwd", "mfa"]] {
        let stepped_up = token(amr).await;
        let simple = authorize(&s.authorizer, v2_authorizer(&stepped_up)).await.unwrap();
        assert_eq!(simple["isAuthorized"], true, "{amr:?}");
        assert_eq!(simple["context"]["amr"], amr.join(" "));
        let policy = authorize(&s.authorizer, token_authorizer(&stepped_up)).await.unwrap();
        let statements = policy["policyDocument"]["Statement"].as_array().unwrap();
        assert!(!statements.iter().any(|s| s["Resource"][0].as_str().unwrap().ends_with("/GET/orders")), "{policy}");
    }
}

/// A v2 authorizer event for `GET rawPath` in `stage`, with `route_path` in `routeArn`.
fn routed(bearer: &str, stage: &str, raw_path: &str, route_path: &str) -> serde_json::Value {
    let mut event = v2_authorizer(bearer);
    event["rawPath"] = json!(raw_path);
    event["requestContext"]["stage"] = json!(stage);
    event["requestContext"]["http"]["path"] = json!(raw_path);
    event["routeArn"] = json!(format!("arn:aws:execute-api:us-east-1:123456789012:abcdef1234/{stage}/GET{route_path}"));
    event
}

#[tokio::test]
async fn a_stage_prefix_in_raw_path_cannot_slip_past_a_route_role() {
    let rule = RouteRole { method: "GET".into(), path: "/orders".into(), role: "admin".into() };
    let s = services(EdgeConfig { route_roles: vec![rule], ..EdgeConfig::default() }).await;
    let bearer = access_token(&s).await;
    let verdict = async |event| authorize(&s.authorizer, event).await.unwrap()["isAuthorized"].clone();
    // Both guards see it.
    assert_eq!(verdict(routed(&bearer, "prod", "/prod/orders", "/orders")).await, false);
    // Only the stage stripping of rawPath sees it (a greedy route's ARN names another path).
    assert_eq!(verdict(routed(&bearer, "prod", "/prod/orders", "/{proxy+}")).await, false);
    // Only routeArn sees it (a base-path mapping prefix, not a stage, on rawPath).
    assert_eq!(verdict(routed(&bearer, "$default", "/v1/orders", "/orders")).await, false);
    // Neither: a route the rule does not name.
    assert_eq!(verdict(routed(&bearer, "prod", "/prod/other", "/other")).await, true);
}

#[tokio::test]
async fn logging_out_everywhere_needs_a_current_refresh_token() {
    let s = services(EdgeConfig { ..EdgeConfig::default() }).await;
    let first = login(&s.login, request("POST", "/login", &JSON, &[], Some(&credentials()))).await;
    let spent = body_json(&first)["refreshToken"].as_str().unwrap().to_owned();
    let other = login(&s.login, request("POST", "/login", &JSON, &[], Some(&credentials()))).await;
    let other_token = body_json(&other)["refreshToken"].as_str().unwrap().to_owned();
    let rotated = refresh(
        &s.refresh,
        request("POST", "/refresh-token", &JSON, &[], Some(&json!({"refreshToken": spent}).to_string())),
    )
    .await;
    assert_eq!(rotated.status(), 200);
    // With the default 10 s grace the spent token still counts; use one two rotations old.
    let current = body_json(&rotated)["refreshToken"].as_str().unwrap().to_owned();
    let newer = refresh(
        &s.refresh,
        request("POST", "/refresh-token", &JSON, &[], Some(&json!({"refreshToken": current}).to_string())),
    )
    .await;
    assert_eq!(newer.status(), 200);
    let everywhere = json!({"refreshToken": spent, "allSessions": true}).to_string();
    let refused = logout(&s.logout, request("POST", "/logout", &JSON, &[], Some(&everywhere))).await;
    assert_eq!(refused.status(), 401);
    let still = refresh(
        &s.refresh,
        request("POST", "/refresh-token", &JSON, &[], Some(&json!({"refreshToken": other_token}).to_string())),
    )
    .await;
    assert_eq!(still.status(), 200, "the other session must survive a spent token's logout-everywhere");
}

/// Deterministic junk: random bytes, JSON fragments and real shapes with wrong
/// types, through every handler and the authorizer. Nothing may panic, and the
/// authorizer must never allow.
#[tokio::test]
async fn no_input_panics_a_handler_or_the_authorizer() {
    let s = services(EdgeConfig::default()).await;
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let valid = access_token(&s).await;
    let fragments = ["{", "}", "\"", "null", "[]", "\"email\":", "1e999", "\\u0000", "é", "lk1.", "Bearer ", "."];
    for _ in 0..600 {
        let body: String = (0..next() % 12).map(|_| fragments[(next() as usize) % fragments.len()]).collect();
        let cookie = format!("__Secure-latchkey-refresh={body}");
        let req = || {
            request(
                "POST",
                "/x",
                &[("content-type", "application/json"), ("authorization", &body)],
                &[&cookie],
                Some(&body),
            )
        };
        let _ = login(&s.login, req()).await;
        let _ = refresh(&s.refresh, req()).await;
        let _ = logout(&s.logout, req()).await;
        let shapes = [
            json!({"type": "TOKEN", "authorizationToken": body, "methodArn": body}),
            json!({"type": "REQUEST", "headers": {"authorization": body}, "methodArn": 7}),
            json!({"version": "2.0", "type": "REQUEST", "headers": [body], "requestContext": {}}),
            json!({"version": body}),
            json!([body]),
            json!(null),
        ];
        for event in shapes {
            let outcome = authorize(&s.authorizer, event).await;
            assert!(outcome.is_err() || outcome.as_ref().is_ok_and(|v| v["isAuthorized"] == false), "{outcome:?}");
        }
        // A valid token with a junk ARN: the token alone must not buy an Allow.
        let arn_shapes = [
            json!({"type": "TOKEN", "authorizationToken": valid, "methodArn": body}),
            json!({"type": "REQUEST", "headers": {"authorization": valid}, "methodArn": body}),
            json!({"version": "1.0", "type": "REQUEST", "headers": {"authorization": valid}, "methodArn": body,
                   "requestContext": {"stage": body}}),
        ];
        for event in arn_shapes {
            let outcome = authorize(&s.authorizer, event).await;
            let allows = outcome.as_ref().is_ok_and(|answer| answer.to_string().contains("\"Allow\""));
            assert!(!allows, "a junk methodArn was allowed: {outcome:?}");
        }
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_with_the_routes_own_method_in_allow() {
    let s = services(EdgeConfig::default()).await;
    let on_jwks = jwks(&s.jwks, request("POST", "/.well-known/jwks.json", &[], &[], None)).await;
    assert_eq!(on_jwks.status(), 405);
    assert_eq!(on_jwks.headers()["allow"], "GET, OPTIONS");
    for response in [
        login(&s.login, request("GET", "/login", &[], &[], None)).await,
        refresh(&s.refresh, request("GET", "/refresh-token", &[], &[], None)).await,
        logout(&s.logout, request("PUT", "/logout", &[], &[], None)).await,
    ] {
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "POST, OPTIONS");
        assert_eq!(body_json(&response)["error"], "invalid_request");
    }
}

#[tokio::test]
async fn too_many_failures_answer_429_with_retry_after_through_the_handler() {
    let s = services_with(Config { login_max_failures: 3, ..Config::default() }).await;
    let wrong = json!({"email": DEMO_EMAIL, "password": "not the password"}).to_string();
    for _ in 0..3 {
        assert_eq!(login(&s.login, request("POST", "/login", &JSON, &[], Some(&wrong))).await.status(), 401);
    }
    for body in [wrong, credentials()] {
        let response = login(&s.login, request("POST", "/login", &JSON, &[], Some(&body))).await;
        assert_eq!(response.status(), 429, "even the right password waits for the window");
        assert_eq!(body_json(&response)["error"], "too_many_attempts");
        let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=900).contains(&retry), "Retry-After {retry}");
    }
}

#[tokio::test]
async fn a_password_over_1_kib_in_a_small_body_is_400_before_any_lookup() {
    let s = services(EdgeConfig::default()).await;
    let long = json!({"email": DEMO_EMAIL, "password": "p".repeat(1025)}).to_string();
    assert!(long.len() < 8 * 1024);
    let response = login(&s.login, request("POST", "/login", &JSON, &[], Some(&long))).await;
    assert_eq!(response.status(), 400);
    assert_eq!(body_json(&response)["error"], "invalid_request");
    let unknown = json!({"email": "nobody@example.com", "password": "p".repeat(1025)}).to_string();
    let same = login(&s.login, request("POST", "/login", &JSON, &[], Some(&unknown))).await;
    assert_eq!(same.status(), 400, "the answer must not depend on the email");
    let exact = json!({"email": DEMO_EMAIL, "password": "p".repeat(1024)}).to_string();
    assert_eq!(login(&s.login, request("POST", "/login", &JSON, &[], Some(&exact))).await.status(), 401);
}

#[tokio::test]
async fn the_jwks_is_served_as_a_jwk_set_cached_for_the_configured_time_with_every_key() {
    let s = services(EdgeConfig { jwks_max_age_secs: 60, ..EdgeConfig::default() }).await;
    let response = jwks(&s.jwks, request("GET", "/.well-known/jwks.json", &[], &[], None)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/jwk-set+json");
    assert_eq!(response.headers()["cache-control"], "public, max-age=60");
    assert_eq!(body_json(&response)["keys"].as_array().unwrap().len(), 1);
    // During a rotation both keys are published, each under its own kid.
    let old = latchkey::signing::LocalSigner::generate().unwrap();
    let new = latchkey::signing::LocalSigner::generate().unwrap();
    use latchkey::signing::Signer as _;
    let keys = latchkey::signing::KeySet::new([old.public_key().clone(), new.public_key().clone()]).unwrap();
    let state = latchkey::http::JwksState {
        keys,
        delegated: None,
        edge: EdgeConfig::default(),
        clock: std::sync::Arc::new(latchkey::clock::SystemClock),
    };
    let both = body_json(&jwks(&state, request("GET", "/.well-known/jwks.json", &[], &[], None)).await);
    let kids: std::collections::BTreeSet<&str> =
        both["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    let wanted: std::collections::BTreeSet<&str> =
        [old.public_key().kid.as_str(), new.public_key().kid.as_str()].into();
    assert_eq!(kids, wanted);
}

#[tokio::test]
async fn a_custom_cookie_path_reaches_set_cookie_and_cookie_logout_checks_csrf() {
    let s = services(browser_edge("/auth")).await;
    let issued = login(&s.login, request("POST", "/login", &JSON, &[], Some(&credentials()))).await;
    let set_cookie = issued.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert_eq!(cookie::Cookie::parse(set_cookie.as_str()).unwrap().path(), Some("/auth"), "{set_cookie}");
    let token = body_json(&issued)["refreshToken"].as_str().unwrap().to_owned();
    let cookie = format!("__Secure-latchkey-refresh={token}");
    let without_csrf =
        logout(&s.logout, request("POST", "/logout", &[("origin", FIXTURE_ORIGIN)], &[&cookie], None)).await;
    assert_eq!(without_csrf.status(), 403);
    let browser = [("origin", FIXTURE_ORIGIN), ("x-latchkey-csrf", "1")];
    let cross_origin = [("origin", "https://evil.example"), ("x-latchkey-csrf", "1")];
    assert_eq!(logout(&s.logout, request("POST", "/logout", &cross_origin, &[&cookie], None)).await.status(), 403);
    // The refused logouts left the session alive; the proper one ends it.
    let still = refresh(&s.refresh, request("POST", "/refresh-token", &browser, &[&cookie], None)).await;
    assert_eq!(still.status(), 200);
    let rotated = cookie::Cookie::parse(still.headers()["set-cookie"].to_str().unwrap().to_owned()).unwrap();
    let current = format!("__Secure-latchkey-refresh={}", rotated.value());
    let out = logout(&s.logout, request("POST", "/logout", &browser, &[&current], None)).await;
    assert_eq!(out.status(), 204);
    let cleared = cookie::Cookie::parse(out.headers()["set-cookie"].to_str().unwrap().to_owned()).unwrap();
    assert_eq!((cleared.value(), cleared.path()), ("", Some("/auth")));
    assert_eq!(cleared.max_age().map(|age| age.whole_seconds()), Some(0));
    let after = refresh(&s.refresh, request("POST", "/refresh-token", &browser, &[&current], None)).await;
    assert_eq!(after.status(), 401, "the cookie logout did not end the session");
}

#[tokio::test]
async fn a_failed_cookie_refresh_clears_the_cookie_and_a_body_refresh_leaves_cookies_alone() {
    let edge = EdgeConfig { allowed_origins: vec![FIXTURE_ORIGIN.to_owned()], ..EdgeConfig::default() };
    let s = services(edge).await;
    let browser = [("origin", FIXTURE_ORIGIN), ("x-latchkey-csrf", "1")];
    let forged = "__Secure-latchkey-refresh=lk1.c2Vzc2lvbi1maXh0dXJlMQ.0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let response = refresh(&s.refresh, request("POST", "/refresh-token", &browser, &[forged], None)).await;
    assert_eq!(response.status(), 401);
    let cleared = cookie::Cookie::parse(response.headers()["set-cookie"].to_str().unwrap().to_owned()).unwrap();
    assert_eq!(cleared.name(), "__Secure-latchkey-refresh");
    assert_eq!(cleared.max_age().map(|age| age.whole_seconds()), Some(0));
}

#[tokio::test]
async fn logout_with_a_forged_or_no_token_is_401_and_a_null_token_400() {
    let s = services(EdgeConfig::default()).await;
    let forged =
        json!({"refreshToken": "lk1.c2Vzc2lvbi1maXh0dXJlMQ.0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}).to_string();
    let response = logout(&s.logout, request("POST", "/logout", &JSON, &[], Some(&forged))).await;
    assert_eq!((response.status().as_u16(), body_json(&response)["error"].as_str()), (401, Some("invalid_grant")));
    let none = logout(&s.logout, request("POST", "/logout", &[], &[], None)).await;
    assert_eq!((none.status().as_u16(), body_json(&none)["error"].as_str()), (401, Some("invalid_token")));
    // docs/openapi.yaml: refreshToken is a string when present; null is not "absent".
    for body in [json!({"refreshToken": null}).to_string(), "[]".to_owned()] {
        let response = logout(&s.logout, request("POST", "/logout", &JSON, &[], Some(&body))).await;
        assert_eq!(
            (response.status().as_u16(), body_json(&response)["error"].as_str()),
            (400, Some("invalid_request"))
        );
    }
}

/// A refresh with no token anywhere is a 401 like any refused token; a body sent
/// without `refreshToken` (or with `null`) is malformed, a 400.
#[tokio::test]
async fn refresh_without_a_token_is_401_and_a_body_without_one_400() {
    let s = services(EdgeConfig::default()).await;
    let none = refresh(&s.refresh, request("POST", "/refresh-token", &[], &[], None)).await;
    assert_eq!((none.status().as_u16(), body_json(&none)["error"].as_str()), (401, Some("invalid_grant")));
    for body in ["{}", r#"{"refreshToken": null}"#] {
        let response = refresh(&s.refresh, request("POST", "/refresh-token", &JSON, &[], Some(body))).await;
        assert_eq!(response.status(), 400, "{body}");
    }
}
