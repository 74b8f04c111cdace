//! What the authorizer logs per decision: the outcome, the user for an allow, the
//! reason for a refusal, and the latency in milliseconds. Its own test binary, so
//! the captured log holds only these decisions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use latchkey::Config;
use latchkey::authorizer::authorize;
use latchkey::config::EdgeConfig;
use latchkey::http::login;
use latchkey::password::Password;
use latchkey::services::Services;
use latchkey_tests::events::{http_api, token_authorizer};
use latchkey_tests::{DEMO_EMAIL, DEMO_PASSWORD};
use serde_json::{Value, json};

async fn bearer(services: &Services, email: &str, password: &str) -> String {
    let body = json!({"email": email, "password": password}).to_string();
    let event = http_api("POST", "/login", &[("content-type", "application/json")], &[], Some(&body));
    let response = login(&services.login, lambda_http::request::from_str(&event.to_string()).unwrap()).await;
    let tokens: Value = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("{other:?}"),
    };
    format!("Bearer {}", tokens["accessToken"].as_str().unwrap())
}

#[tokio::test]
async fn each_decision_is_logged_with_its_outcome_user_and_latency_in_ms() {
    let logs = latchkey_tests::support::capture_logs();
    let edge = EdgeConfig { required_role: Some("admin".into()), ..EdgeConfig::default() };
    let config = Config { edge, ..Config::default() };
    let services = Services::embedded(&config, None).unwrap();
    let demo = services.accounts().create(DEMO_EMAIL, &Password::new(DEMO_PASSWORD).unwrap(), "member").await.unwrap();
    let boss = services
        .accounts()
        .create("boss@example.com", &Password::new("boss-password-1").unwrap(), "admin")
        .await
        .unwrap();
    let member = bearer(&services, DEMO_EMAIL, DEMO_PASSWORD).await;
    let admin = bearer(&services, "boss@example.com", "boss-password-1").await;

    let allowed = authorize(&services.authorizer, token_authorizer(&admin)).await.unwrap();
    assert_eq!(allowed["policyDocument"]["Statement"][0]["Effect"], "Allow");
    let denied = authorize(&services.authorizer, token_authorizer(&member)).await.unwrap();
    assert_eq!(denied["policyDocument"]["Statement"][0]["Effect"], "Deny");
    assert!(authorize(&services.authorizer, token_authorizer("Bearer x.y.z")).await.is_err());

    let (_, lines) = latchkey_tests::support::log_lines(&logs);
    let decisions: Vec<&Value> = lines.iter().filter(|line| line["event"] == "authorize").collect();
    let outcomes: Vec<&str> = decisions.iter().map(|line| line["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["allow", "deny", "unauthorized"]);
    assert_eq!(decisions[0]["user_id"], boss.id.as_str());
    assert!(decisions[1].get("user_id").is_none(), "a deny names no user: {}", decisions[1]);
    assert_eq!(decisions[1]["reason"], "role");
    assert_ne!(demo.id, boss.id);
    // A signature check takes microseconds to milliseconds: the figure is in ms.
    let latency = decisions[0]["latency_ms"].as_f64().unwrap();
    assert!((0.001..1000.0).contains(&latency), "latency_ms {latency}");
    let state = format!("{:?}", services.authorizer);
    assert!(state.starts_with("AuthorizerState") && state.contains("verifier"), "{state}");
}
