//! `latchkey setup` and `latchkey user …` against moto, then the functions'
//! handlers built from the environment `setup` printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../shared/tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{latchkey, ok};
use latchkey::Config;
use latchkey::deploy::{Aws, HttpFunction};
use latchkey::http::{LoginState, login};
use serde_json::json;

async fn log_in(state: &LoginState, email: &str, password: &str) -> u16 {
    log_in_answer(state, email, password).await.0
}

/// The status and body of a login.
async fn log_in_answer(state: &LoginState, email: &str, password: &str) -> (u16, serde_json::Value) {
    let body = json!({"email": email, "password": password}).to_string();
    let event = json!({
        "version": "2.0", "routeKey": "POST /login", "rawPath": "/login", "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "a",
            "http": {"method": "POST", "path": "/login", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
            "requestId": "r", "routeKey": "POST /login", "stage": "$default", "time": "", "timeEpoch": 0},
        "body": body, "isBase64Encoded": false
    });
    let answer = login(state, lambda_http::request::from_str(&event.to_string()).unwrap()).await;
    let body = serde_json::from_slice(answer.body()).unwrap_or_default();
    (answer.status().as_u16(), body)
}

#[tokio::test]
async fn setup_then_user_admin_then_the_handlers_use_the_printed_environment() {
    let Some(kms) = support::moto_kms().await else {
        return;
    };
    let table = support::unique_name("setup");
    let prefix = support::unique_name("lk");
    let base = vec![("LATCHKEY_TABLE_NAME".to_owned(), table.clone())];

    let printed = ok(&latchkey(&["setup", "--alias-prefix", &prefix], &base, None));
    let mut env: Vec<(String, String)> = printed
        .lines()
        .map(|line| {
            let (key, value) = line.strip_prefix("export ").expect(line).split_once('=').unwrap();
            (key.to_owned(), value.to_owned())
        })
        .collect();
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["LATCHKEY_TABLE_NAME", "LATCHKEY_KMS_KEY_ID", "LATCHKEY_REFRESH_MAC_KEY_ID"]);
    let targets = async |kms: &aws_sdk_kms::Client| {
        let mut ids = Vec::new();
        for kind in ["signing", "refresh"] {
            let described = kms.describe_key().key_id(format!("alias/{prefix}-{kind}")).send().await.unwrap();
            ids.push(described.key_metadata().unwrap().key_id().to_owned());
        }
        ids
    };
    let targets_before = targets(&kms).await;
    let again = latchkey(&["setup", "--alias-prefix", &prefix], &base, None);
    assert_eq!(ok(&again), printed, "setup is idempotent");
    // Idempotent in effect, not only in what it prints: the aliases unmoved, nothing created.
    assert_eq!(targets(&kms).await, targets_before);
    let progress = String::from_utf8_lossy(&again.stderr);
    assert!(progress.contains("exists") && !progress.contains("created"), "{progress}");

    let added = ok(&latchkey(
        &["user", "add", "--email", "Ops@Example.com", "--role", "admin", "--password-stdin"],
        &env,
        Some("s3cret-passw0rd\n"),
    ));
    assert!(added.contains("created ops@example.com"), "{added}");
    let duplicate =
        latchkey(&["user", "add", "--email", "ops@example.com", "--password-stdin"], &env, Some("another-passw0rd\n"));
    assert!(!duplicate.status.success());
    let weak = latchkey(&["user", "add", "--email", "weak@example.com", "--password-stdin"], &env, Some("short\n"));
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 8 characters"));
    let listed = ok(&latchkey(&["user", "list"], &env, None));
    assert!(listed.contains("ops@example.com") && listed.contains("admin") && !listed.contains("weak@"), "{listed}");

    // The last-admin rule is the same code in the CLI as in the admin API.
    let boss = &["user", "add", "--email", "boss@example.com", "--role", "Admin", "--password-stdin"];
    ok(&latchkey(boss, &env, Some("boss-passw0rd!\n")));
    for refused in [
        latchkey(&["user", "set-role", "--email", "boss@example.com", "--role", "member"], &env, None),
        latchkey(&["user", "disable", "--email", "boss@example.com"], &env, None),
        latchkey(&["user", "delete", "--email", "boss@example.com"], &env, None),
    ] {
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("last active administrator"), "{refused:?}");
    }
    let second = &["user", "add", "--email", "second@example.com", "--role", "Admin", "--password-stdin"];
    ok(&latchkey(second, &env, Some("second-passw0rd!\n")));
    let deleted = ok(&latchkey(&["user", "delete", "--email", "boss@example.com"], &env, None));
    assert!(deleted.contains("deleted boss@example.com"), "{deleted}");
    assert!(!ok(&latchkey(&["user", "list"], &env, None)).contains("boss@"));

    // A user item from before the users index: listed only after reindex.
    let dynamodb = support::moto_dynamodb().await.unwrap();
    let legacy = [
        ("pk", "USER#legacy@example.com"),
        ("gsi1sk", "USER"),
        ("userId", "legacy-id"),
        ("email", "legacy@example.com"),
        ("role", "member"),
    ];
    let mut put = dynamodb.put_item().table_name(&table);
    for (name, value) in legacy {
        put = put.item(name, aws_sdk_dynamodb::types::AttributeValue::S(value.to_owned()));
    }
    for name in ["passwordChangedAt", "createdAt"] {
        put = put.item(name, aws_sdk_dynamodb::types::AttributeValue::N("0".to_owned()));
    }
    put.send().await.unwrap();
    assert!(!ok(&latchkey(&["user", "list"], &env, None)).contains("legacy@"));
    let reindexed = ok(&latchkey(&["user", "reindex"], &env, None));
    assert!(reindexed.contains("1 added"), "{reindexed}");
    assert!(ok(&latchkey(&["user", "list", "--prefix", "leg"], &env, None)).contains("legacy@example.com\tlegacy-id"));
    assert!(ok(&latchkey(&["user", "reindex"], &env, None)).contains("0 added"), "idempotent");

    let config = Config::from_lookup(|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())).unwrap();
    let login_state = LoginState::deployed(&config, &Aws::from_env().await).await.unwrap();
    assert_eq!(log_in(&login_state, "ops@example.com", "s3cret-passw0rd").await, 200);
    let sessions = ok(&latchkey(&["sessions", "list", "--email", "ops@example.com"], &env, None));
    assert_eq!(sessions.lines().count(), 1, "{sessions}");

    let revoked = ok(&latchkey(&["sessions", "revoke", "--email", "ops@example.com", "--all"], &env, None));
    assert!(revoked.contains("1 session(s) revoked"), "{revoked}");
    ok(&latchkey(&["user", "disable", "--email", "ops@example.com"], &env, None));
    assert_eq!(log_in(&login_state, "ops@example.com", "s3cret-passw0rd").await, 401);
    ok(&latchkey(&["user", "enable", "--email", "ops@example.com"], &env, None));
    ok(&latchkey(
        &["user", "set-password", "--email", "ops@example.com", "--password-stdin"],
        &env,
        Some("new-passw0rd!\n"),
    ));
    assert_eq!(log_in(&login_state, "ops@example.com", "s3cret-passw0rd").await, 401);
    assert_eq!(log_in(&login_state, "ops@example.com", "new-passw0rd!").await, 200);

    // `token verify` explains a token of delegated signing as the authorizer would:
    // its period key read from the table, the vouch checked against the KMS key.
    let mut delegated_env = env.clone();
    delegated_env.push(("LATCHKEY_SIGNING".to_owned(), "delegated".to_owned()));
    let delegated =
        Config::from_lookup(|name| delegated_env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())).unwrap();
    let delegated = LoginState::deployed(&delegated, &Aws::from_env().await).await.unwrap();
    let (status, answer) = log_in_answer(&delegated, "ops@example.com", "new-passw0rd!").await;
    assert_eq!(status, 200, "{answer}");
    let token = answer["accessToken"].as_str().unwrap().to_owned();
    let verified = latchkey(&["token", "verify", &token], &env, None);
    let said = String::from_utf8_lossy(&verified.stderr).into_owned();
    assert!(verified.status.success() && said.contains("its vouch from the table checked"), "{said}");
    let refused = latchkey(&["token", "verify", &format!("{token}x")], &env, None);
    assert!(!refused.status.success());

    // An operator's reset of a second factor (a lost phone), on the same table.
    let account = latchkey::http::AccountState::deployed(&config, &Aws::from_env().await).await.unwrap();
    let ops = account.recovery.accounts().existing("ops@example.com").await.unwrap();
    let enrolment = account.mfa.begin(&ops).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let password = latchkey::password::Password::new("new-passw0rd!").unwrap();
    account.mfa.confirm(&ops.id, &ops.email, &password, &support::totp_code(&enrolment.secret, now)).await.unwrap();
    let reset = ok(&latchkey(&["user", "reset-mfa", "--email", "ops@example.com"], &env, None));
    assert_eq!(reset.trim(), "second factor removed");
    let ops = account.recovery.accounts().existing("ops@example.com").await.unwrap();
    assert!(!ops.totp.enabled());
    let again = ok(&latchkey(&["user", "reset-mfa", "--email", "ops@example.com"], &env, None));
    assert_eq!(again.trim(), "no second factor to remove");

    // `latchkey dev --aws` serves the same table and keys over HTTP.
    let mut dev = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["dev", "--aws", "--port", "0"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(dev.stdout.take().unwrap());
    let mut first_line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first_line).unwrap();
    // Keep draining the banner: a closed pipe would end the server at its next line.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let base = first_line.trim().strip_prefix("latchkey dev listening on ").expect(&first_line).to_owned();
    let address = base.trim_start_matches("http://").to_owned();
    let body = json!({"email": "ops@example.com", "password": "new-passw0rd!"}).to_string();
    let status = tokio::task::spawn_blocking(move || post(&address, "/login", &body)).await.unwrap();
    let _ = dev.kill();
    let _ = dev.wait();
    assert_eq!(status, 200, "latchkey dev --aws login");

    env.push(("LATCHKEY_ACCESS_TOKEN_TTL_SECONDS".to_owned(), "5".to_owned()));
    let bad = latchkey(&["user", "list"], &env, None);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("LATCHKEY_ACCESS_TOKEN_TTL_SECONDS"));
}

/// A minimal HTTP/1.1 POST over a plain socket; returns the status code.
fn post(address: &str, path: &str, body: &str) -> u16 {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["dev", "--help"],
        vec!["setup", "--help"],
        vec!["user", "add", "--help"],
        vec!["user", "set-password", "--help"],
        vec!["user", "reset-mfa", "--help"],
        vec!["sessions", "revoke", "--help"],
        vec!["token", "verify", "--help"],
    ] {
        let output = latchkey(&args, &[], None);
        assert!(output.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("Usage:"), "{args:?}");
    }
    let output = latchkey(&["sessions", "revoke"], &[], None);
    assert!(!output.status.success());
}
