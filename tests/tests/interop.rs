//! The standard verifiers teams put behind Latchkey accept its tokens unmodified,
//! in both signing modes: aws-jwt-verify and jose (Node, pinned in
//! scripts/peers-package*.json) and PyJWT (pinned in scripts/moto-requirements.txt),
//! each given the JWKS as `GET /.well-known/jwks.json` served it. The delegated
//! case crosses a key period: the JWKS is read in one period, and a token of the
//! next period's key verifies against that earlier read (the key was published
//! before it signed). Fails, never skips, in CI when Node or PyJWT is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use latchkey::Clock;
use latchkey::clock::{ManualClock, SystemClock};
use latchkey::config::{Config, SigningConfig, SigningMode};
use latchkey::services::Services;
use latchkey::signing::LocalSigner;
use latchkey::store::MemoryStore;
use latchkey::token::sign_jwt;
use latchkey_tests::support::{in_ci, skipped, subject};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// aws-jwt-verify and jose installed with `npm ci` from the pinned lock (once per
/// target directory); `None` when npm is missing.
fn node_modules() -> Option<PathBuf> {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-node");
    let modules = work.join("node_modules");
    let lock = std::fs::read(root().join("scripts/peers-package-lock.json")).unwrap();
    if std::fs::read(work.join("package-lock.json")).ok().as_ref() != Some(&lock) || !modules.exists() {
        std::fs::create_dir_all(&work).unwrap();
        std::fs::copy(root().join("scripts/peers-package.json"), work.join("package.json")).unwrap();
        std::fs::write(work.join("package-lock.json"), &lock).unwrap();
        let status =
            Command::new("npm").args(["ci", "--silent", "--no-audit", "--no-fund"]).current_dir(&work).status();
        if !status.is_ok_and(|status| status.success()) {
            return None;
        }
    }
    Some(modules)
}

fn run_json(command: &mut Command) -> Value {
    let output = command.output().unwrap();
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn aws_jwt_verify_jose_and_pyjwt_accept_tokens_of_both_modes_across_a_key_period() {
    let python = root().join(".venv/bin/python");
    let pyjwt = python.exists()
        && Command::new(&python).args(["-c", "import jwt"]).status().is_ok_and(|status| status.success());
    let modules = node_modules();
    let (Some(modules), true) = (modules, pyjwt) else {
        assert!(!in_ci(), "Node (npm) and PyJWT in .venv are required in CI");
        return skipped("needs npm and PyJWT in .venv (scripts/test installs both)");
    };

    // Five-minute periods. The first token is made in the second half of a period
    // that began 6 to 11 minutes ago, the second just after the next began, so
    // both are valid now for verifiers that read the real clock.
    let config = Config {
        signing: SigningConfig { mode: SigningMode::Delegated, key_period: Duration::from_secs(300) },
        ..Config::default()
    };
    let now = SystemClock.now();
    let boundary = (now - 60) / 300 * 300;
    let clock = Arc::new(ManualClock::new(boundary - 100));
    let components = latchkey_tests::components(
        Arc::new(MemoryStore::new()),
        Arc::new(LocalSigner::generate().unwrap()),
        clock.clone(),
    );
    let services = Services::assemble(&config, components).unwrap();
    let issuer = services.login.tokens.issuer();
    let earlier = issuer.issue(&subject(), clock.now()).await.unwrap();
    let request = latchkey_tests::events::http_api("GET", "/.well-known/jwks.json", &[], &[], None);
    let response =
        latchkey::http::jwks(&services.jwks, lambda_http::request::from_str(&request.to_string()).unwrap()).await;
    let jwks: Value = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("{other:?}"),
    };
    clock.set(boundary + 5);
    let later = issuer.issue(&subject(), clock.now()).await.unwrap();
    let kid = |token: &str| {
        use base64::Engine as _;
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
        serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_owned()
    };
    assert_ne!(kid(&earlier.token), kid(&later.token), "the second token is of the next period's key");
    let published: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(published.contains(&kid(&later.token).as_str()), "published before it signed: {jwks}");
    // A token as `kms` mode makes it: signed by the long-term key itself.
    let mut claims = earlier.claims.clone();
    (claims.iat, claims.nbf, claims.exp) = (now, now, now + 900);
    let kms = sign_jwt(issuer.signer().as_ref(), &claims).await.unwrap();
    let signature = later.token.rfind('.').unwrap() + 1;
    let flipped = if later.token.as_bytes()[signature] == b'A' { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &later.token[..signature], &later.token[signature + 1..]);

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("jwks.json"), jwks.to_string()).unwrap();
    std::fs::write(dir.join("params.json"), json!({"issuer": config.issuer, "audience": config.audience}).to_string())
        .unwrap();
    let tokens = json!({"delegated": earlier.token, "next_period": later.token, "kms": kms, "tampered": tampered});
    std::fs::write(dir.join("tokens.json"), tokens.to_string()).unwrap();

    let node = run_json(
        Command::new("node").arg(root().join("tests/interop/verify.mjs")).arg(&dir).env("PEERS_NODE_MODULES", &modules),
    );
    let python = run_json(Command::new(&python).arg(root().join("tests/interop/verify.py")).arg(&dir));
    std::fs::remove_dir_all(&dir).unwrap();
    for (library, results) in
        [("aws-jwt-verify", &node["aws-jwt-verify"]), ("jose", &node["jose"]), ("pyjwt", &python["pyjwt"])]
    {
        for name in ["delegated", "next_period", "kms"] {
            assert_eq!(results[name], "ok", "{library} refused the {name} token: {}", results[name]);
        }
        assert_ne!(results["tampered"], "ok", "{library} accepted a tampered token");
    }
}
