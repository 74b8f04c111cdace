//! Every file in `events/` goes through its real handler (storage on moto, keys
//! from `tests/fixtures/`) and must produce the outcome `events/manifest.json`
//! documents for it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use latchkey::http::{account, admin, jwks, login, logout, refresh};
use latchkey::store::{SessionStore, UserStore};
use latchkey::{Clock, SystemClock};
use latchkey_tests::{Env, FIXTURE_SESSION_ID, fixture_edge};
use serde_json::Value;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(events_dir().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn local_env_is_what_the_fixtures_generate_and_config_accepts_it() {
    let on_disk = std::fs::read_to_string(events_dir().join("local.env")).unwrap();
    assert_eq!(on_disk, latchkey_tests::local_env(), "run `cargo run -p latchkey-tests --example write_events`");
    let pairs: std::collections::HashMap<String, String> = on_disk
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect();
    let config = latchkey::Config::from_lookup(|name| pairs.get(name).cloned()).unwrap();
    assert_eq!(config.refresh_mac_key.unwrap().bytes(), &latchkey_tests::FIXTURE_REFRESH_KEY);
    assert!(config.jwks.is_some() && config.edge.allowed_origins == [latchkey_tests::FIXTURE_ORIGIN]);
    assert!(config.allow_fixture_keys, "local.env must say it uses the public test keys");
}

/// The committed test keys are public: a function configured with them refuses to
/// start, naming the variable, unless `LATCHKEY_ALLOW_FIXTURE_KEYS=true` says this is
/// a local test.
#[tokio::test]
async fn the_functions_refuse_the_public_fixture_keys_unless_told_it_is_a_test() {
    use latchkey::Config;
    use latchkey::authorizer::AuthorizerState;
    use latchkey::deploy::{FIXTURE_REFRESH_MAC_KEY, FIXTURE_SIGNING_KID, HttpFunction};
    use latchkey::http::{JwksState, RefreshState};
    use latchkey::signing::Signer;
    assert_eq!(latchkey_tests::fixture_signer().public_key().kid, FIXTURE_SIGNING_KID);
    let Some(env) = Env::new(fixture_edge()).await else { return };
    let jwks = latchkey::signing::KeySet::new([latchkey_tests::fixture_signer().public_key().clone()]).unwrap();
    let with = |allow: bool| Config {
        jwks: Some(jwks.to_jwks_json().to_string()),
        refresh_mac_key_id: None,
        refresh_mac_key: Some(latchkey::config::MacKeyBytes::new(FIXTURE_REFRESH_MAC_KEY)),
        allow_fixture_keys: allow,
        ..env.config.clone()
    };
    let refused = with(false);
    let variable = |error: latchkey::deploy::StartupError| match error {
        latchkey::deploy::StartupError::Config(error) => error.variable,
        other => panic!("{other}"),
    };
    assert_eq!(variable(AuthorizerState::deployed(&refused, &env.aws).await.unwrap_err()), "LATCHKEY_JWKS");
    assert_eq!(variable(JwksState::deployed(&refused, &env.aws).await.unwrap_err()), "LATCHKEY_JWKS");
    assert_eq!(variable(RefreshState::deployed(&refused, &env.aws).await.unwrap_err()), "LATCHKEY_REFRESH_MAC_KEY");
    let allowed = with(true);
    assert!(AuthorizerState::deployed(&allowed, &env.aws).await.is_ok());
    assert!(JwksState::deployed(&allowed, &env.aws).await.is_ok());
    assert!(RefreshState::deployed(&allowed, &env.aws).await.is_ok());
    // The project's own keys (KMS on moto) start without the setting.
    assert!(RefreshState::deployed(&env.config, &env.aws).await.is_ok());
}

#[test]
fn every_event_file_is_in_the_manifest_and_the_readme() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json") && name != "manifest.json")
        .collect();
    let listed: BTreeSet<String> = manifest().iter().map(|entry| entry["file"].as_str().unwrap().to_owned()).collect();
    assert_eq!(on_disk, listed);
    let readme = std::fs::read_to_string(events_dir().join("README.md")).unwrap();
    for file in &listed {
        assert!(readme.contains(&format!("`{file}`")), "events/README.md lacks {file}");
    }
    for function in ["login", "refresh", "logout", "account", "jwks", "authorizer"] {
        assert!(manifest().iter().any(|e| e["function"] == function), "no sample for {function}");
    }
}

/// A second session of the demo user ("session-fixture2").
const OTHER_SESSION_ID: &str = "c2Vzc2lvbi1maXh0dXJlMg";

#[tokio::test]
async fn every_event_produces_its_documented_outcome() {
    let mut outcomes = BTreeSet::new();
    for entry in manifest() {
        let file = entry["file"].as_str().unwrap();
        let function = entry["function"].as_str().unwrap();
        let text = std::fs::read_to_string(events_dir().join(file)).unwrap();
        let Some(env) = Env::new(fixture_edge()).await else {
            return;
        };
        env.seed_fixture_session().await;
        // Another session of the demo user: only logout of all sessions may end it.
        env.seed_session(OTHER_SESSION_ID).await;
        let states = env.fixture_states();
        let outcome = if function == "authorizer" {
            let event: Value = serde_json::from_str(&text).unwrap();
            match latchkey::authorizer::authorize(&states.authorizer, event).await {
                Err(_) => Value::from("unauthorized"),
                Ok(response) if allows(&response) => Value::from("allow"),
                Ok(_) => Value::from("deny"),
            }
        } else {
            let request = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            let response = match function {
                "login" => login(&states.login, request).await,
                "refresh" => refresh(&states.refresh, request).await,
                "logout" => logout(&states.logout, request).await,
                "jwks" => jwks(&states.jwks, request).await,
                "account" => account(&states.account, request).await,
                "admin" => admin(&states.admin, request).await,
                other => panic!("{file}: unknown function {other}"),
            };
            let listing = entry["path"] == "/sessions";
            if listing {
                // The session list names the fixture session as the caller's own.
                let body: Value = match response.body() {
                    lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
                    other => panic!("{file}: {other:?}"),
                };
                let sessions = body["sessions"].as_array().unwrap();
                assert!(sessions.iter().any(|s| s["current"] == true), "{file}: {body}");
            } else if entry["path"] == "/mfa/totp" && response.status() == 200 {
                // An enrolment: a secret, its URI and its QR code, not tokens.
                let body: Value = match response.body() {
                    lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
                    other => panic!("{file}: {other:?}"),
                };
                let uri = body["otpauthUri"].as_str().unwrap();
                assert!(uri.contains(body["secret"].as_str().unwrap()) && uri.contains("demo%40example.com"), "{body}");
            } else if response.status() == 200 && function != "jwks" {
                // Every other 200 but the JWKS carries fresh tokens of the demo user.
                let body: Value = match response.body() {
                    lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
                    other => panic!("{file}: {other:?}"),
                };
                let token = body["accessToken"].as_str().unwrap();
                let claims = states.authorizer.verifier.verify_live(token, SystemClock.now()).await.unwrap();
                assert_eq!(claims.email, "demo@example.com", "{file}");
            }
            let (method, path) = (&entry["method"], &entry["path"]);
            let documented = latchkey_tests::documents_status(
                method.as_str().unwrap(),
                path.as_str().unwrap(),
                response.status().as_u16(),
            );
            assert!(documented, "{file}: status {} is not in docs/openapi.yaml", response.status());
            Value::from(response.status().as_u16())
        };
        assert_eq!(outcome, entry["expect"], "{file}");
        if function == "logout" && outcome == 204 {
            let revoked = |id: &'static str| {
                let store = env.store();
                async move { store.get_session(&id.parse().unwrap()).await.unwrap().unwrap().revoked_at.is_some() }
            };
            let others = text.contains("\\\"others\\\"");
            assert_eq!(revoked(FIXTURE_SESSION_ID).await, !others, "{file}: the caller's session");
            let everywhere = text.contains("allSessions") || others;
            assert_eq!(revoked(OTHER_SESSION_ID).await, everywhere, "{file}: the other session");
        }
        if file.starts_with("password-change") && outcome == 200 {
            // A session lives while it records its owner's current epoch.
            let store = env.store();
            let epoch = store.get_user_by_email("demo@example.com").await.unwrap().unwrap().session_epoch;
            let live = |id: &'static str| {
                let store = env.store();
                async move {
                    let session = store.get_session(&id.parse().unwrap()).await.unwrap().unwrap();
                    session.revoked_at.is_none() && session.user_epoch == epoch
                }
            };
            assert!(live(FIXTURE_SESSION_ID).await, "{file}: the calling session must continue");
            assert!(!live(OTHER_SESSION_ID).await, "{file}: the other session outlived the password change");
        }
        outcomes.insert(format!("{function}:{outcome}"));
    }
    // Every kind of answer is exercised, so a manifest that lost its failure cases fails here.
    for wanted in [
        "login:200",
        "login:401",
        "login:400",
        "refresh:200",
        "refresh:401",
        "refresh:403",
        "logout:204",
        "logout:401",
        "account:200",
        "account:202",
        "account:400",
        "account:401",
        "account:403",
        "jwks:200",
        "authorizer:\"allow\"",
        "authorizer:\"unauthorized\"",
    ] {
        assert!(outcomes.contains(wanted), "no sample answers {wanted}: {outcomes:?}");
    }
}

/// Whether an authorizer response lets the request through.
fn allows(response: &Value) -> bool {
    if let Some(authorized) = response.get("isAuthorized") {
        return authorized == true;
    }
    let statements = response["policyDocument"]["Statement"].as_array().cloned().unwrap_or_default();
    let effect_of = |effect: &str| statements.iter().any(|s| s["Effect"] == effect);
    effect_of("Allow")
        && !statements
            .iter()
            .any(|s| s["Effect"] == "Deny" && s["Resource"][0].as_str().is_some_and(|r| r.ends_with("/*/*")))
}
