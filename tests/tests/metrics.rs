//! CloudWatch metrics in Embedded Metric Format: each line is checked against the
//! EMF specification (the root `_aws` member, its `CloudWatchMetrics` directives, every
//! dimension and metric present at the root with the right type), and each counter
//! moves when its event happens. Its own test binary: one global subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use latchkey::Config;
use latchkey::authorizer::authorize;
use latchkey::clock::ManualClock;
use latchkey::http::{login, logout, refresh};
use latchkey::metrics::MetricsLayer;
use latchkey::password::Password;
use latchkey::services::Services;
use latchkey::signing::LocalSigner;
use latchkey::store::MemoryStore;
use latchkey_tests::events::{post_json, response_json as body, v2_authorizer};
use latchkey_tests::support::START;
use latchkey_tests::{DEMO_EMAIL, DEMO_PASSWORD, components};
use serde_json::{Value, json};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn post(path: &str, body: Value) -> lambda_http::Request {
    post_json(path, &[], body)
}

/// Checks one line against the EMF specification and returns (metric, dimensions).
fn parse_emf(line: &str) -> (String, BTreeMap<String, String>) {
    let root: Value = serde_json::from_str(line).unwrap();
    let aws = &root["_aws"];
    assert!(aws["Timestamp"].as_u64().is_some_and(|ms| ms > 1_600_000_000_000), "Timestamp in ms: {line}");
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives.len(), 1, "{line}");
    let directive = &directives[0];
    assert_eq!(directive["Namespace"], "Latchkey");
    let dimension_sets = directive["Dimensions"].as_array().unwrap();
    assert_eq!(dimension_sets.len(), 1);
    let keys = dimension_sets[0].as_array().unwrap();
    assert!(!keys.is_empty() && keys.len() <= 30, "{line}");
    let mut dimensions = BTreeMap::new();
    for key in keys {
        let key = key.as_str().unwrap();
        let value = root[key].as_str().unwrap_or_else(|| panic!("dimension {key} is not a string member: {line}"));
        dimensions.insert(key.to_owned(), value.to_owned());
    }
    for id in ["user_id", "session_id", "email", "UserId", "SessionId"] {
        assert!(!keys.iter().any(|k| k == id), "an identifier as a dimension: {line}");
    }
    let metrics = directive["Metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 1);
    let name = metrics[0]["Name"].as_str().unwrap().to_owned();
    assert_eq!(metrics[0]["Unit"], "Count");
    assert_eq!(root[&name], 1, "the metric's value at the root: {line}");
    dimensions.remove("Function").expect("every line has the Function dimension");
    (name, dimensions)
}

#[tokio::test]
async fn each_security_event_moves_its_emf_counter() {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = {
        let lines = lines.clone();
        Arc::new(move |line: &str| lines.lock().unwrap().push(line.to_owned()))
    };
    tracing_subscriber::registry()
        .with(
            MetricsLayer::new("Latchkey", "test-function", sink)
                .with_filter(Targets::new().with_target("latchkey", LevelFilter::INFO)),
        )
        .init();

    let clock = Arc::new(ManualClock::new(START));
    // In the suite's signing mode: with delegated signing the first login makes the key.
    let config = Config { signing: latchkey_tests::signing_under_test(), ..Config::default() };
    let services = Services::assemble(
        &config,
        components(Arc::new(MemoryStore::new()), Arc::new(LocalSigner::generate().unwrap()), clock.clone()),
    )
    .unwrap();
    services.accounts().create(DEMO_EMAIL, &Password::new(DEMO_PASSWORD).unwrap(), "member").await.unwrap();
    let sign_in = |password: &str| post("/login", json!({"email": DEMO_EMAIL, "password": password}));

    let tokens = body(&login(&services.login, sign_in(DEMO_PASSWORD)).await);
    login(&services.login, sign_in("a wrong password")).await;
    login(&services.login, post("/login", json!({"email": "nobody@example.com", "password": "whatever"}))).await;
    let spent = json!({"refreshToken": tokens["refreshToken"]});
    let rotated = body(&refresh(&services.refresh, post("/refresh-token", spent.clone())).await);
    refresh(&services.refresh, post("/refresh-token", spent.clone())).await;
    let bearer = format!("Bearer {}", rotated["accessToken"].as_str().unwrap());
    authorize(&services.authorizer, v2_authorizer(&bearer)).await.unwrap();
    authorize(&services.authorizer, v2_authorizer(&bearer)).await.unwrap();
    assert!(authorize(&services.authorizer, v2_authorizer("Bearer not.a.token")).await.is_err());
    clock.advance(60);
    refresh(&services.refresh, post("/refresh-token", spent)).await;
    let again = body(&login(&services.login, sign_in(DEMO_PASSWORD)).await);
    let everywhere = json!({"refreshToken": again["refreshToken"], "allSessions": true});
    assert_eq!(logout(&services.logout, post("/logout", everywhere)).await.status(), 204);

    let lines = lines.lock().unwrap().clone();
    let mut counts: BTreeMap<(String, Vec<(String, String)>), u32> = BTreeMap::new();
    for line in &lines {
        let (name, dimensions) = parse_emf(line);
        *counts.entry((name, dimensions.into_iter().collect())).or_default() += 1;
    }
    let count = |name: &str, dims: &[(&str, &str)]| {
        let key = (name.to_owned(), dims.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>());
        counts.get(&key).copied().unwrap_or(0)
    };
    assert_eq!(count("LoginSucceeded", &[]), 2, "{counts:?}");
    assert_eq!(count("LoginFailed", &[("Reason", "wrong_password")]), 1, "{counts:?}");
    assert_eq!(count("LoginFailed", &[("Reason", "unknown_email")]), 1);
    assert_eq!(count("SessionStarted", &[]), 2);
    assert_eq!(count("RefreshRotated", &[]), 1);
    assert_eq!(count("RefreshGraceReplayed", &[]), 1);
    assert_eq!(count("RefreshReuseDetected", &[]), 1);
    assert_eq!(count("RefreshRefused", &[("Reason", "reuse")]), 1);
    assert_eq!(count("SessionRevoked", &[("Reason", "reuse")]), 1);
    assert_eq!(count("SessionRevoked", &[("Reason", "logout_all")]), 1);
    assert_eq!(count("SessionsEnded", &[("Reason", "logout_all")]), 1);
    assert_eq!(count("Authorization", &[("Outcome", "allow"), ("SessionCheck", "read")]), 1, "{counts:?}");
    assert_eq!(count("Authorization", &[("Outcome", "allow"), ("SessionCheck", "cached")]), 1);
    assert_eq!(count("Authorization", &[("Outcome", "unauthorized"), ("SessionCheck", "off")]), 1);
    let made = u32::from(config.signing.is_delegated());
    assert_eq!(count("DelegatedKeyMade", &[]), made, "{counts:?}");
    let total: u32 = counts.values().sum();
    assert_eq!(total as usize, lines.len());
}
