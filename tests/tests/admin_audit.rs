//! The admin API's audit trail: every request, allowed or refused, writes one
//! `admin_action` line naming the acting admin, the target and the request id, and
//! never a password or token. Its own test binary: the captured log holds only this.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use latchkey::Config;
use latchkey::clock::ManualClock;
use latchkey::http::{admin, login};
use latchkey::password::Password;
use latchkey::services::Services;
use latchkey::signing::LocalSigner;
use latchkey::store::MemoryStore;
use latchkey_tests::events::{http_api, post_json, response_json as body};
use latchkey_tests::support::{START, capture_logs, log_lines};
use latchkey_tests::{DEMO_EMAIL, DEMO_PASSWORD, components};
use serde_json::{Value, json};

fn request(method: &str, path: &str, bearer: &str, body: Option<Value>, request_id: &str) -> lambda_http::Request {
    let mut headers = vec![("authorization", bearer)];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let mut event = http_api(method, path, &headers, &[], body.map(|b| b.to_string()).as_deref());
    event["requestContext"]["requestId"] = json!(request_id);
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

#[tokio::test]
async fn every_admin_request_is_audited_with_actor_target_and_request_id() {
    let logs = capture_logs();
    let clock = Arc::new(ManualClock::new(START));
    let services = Services::assemble(
        &Config::default(),
        components(Arc::new(MemoryStore::new()), Arc::new(LocalSigner::generate().unwrap()), clock),
    )
    .unwrap();
    let accounts = services.accounts().clone();
    let password = Password::new(DEMO_PASSWORD).unwrap();
    let root = accounts.create("root@example.com", &password, "Admin").await.unwrap();
    let member = accounts.create(DEMO_EMAIL, &password, "member").await.unwrap();
    let bearer = |email: &str| {
        let services = &services;
        let credentials = json!({"email": email, "password": DEMO_PASSWORD});
        async move {
            let tokens = body(&login(&services.login, post_json("/login", &[], credentials)).await);
            format!("Bearer {}", tokens["accessToken"].as_str().unwrap())
        }
    };
    let (root_bearer, member_bearer) = (bearer("root@example.com").await, bearer(DEMO_EMAIL).await);

    let created = json!({"email": "new@example.com", "password": "the new user's passphrase"});
    let answer = admin(&services.admin, request("POST", "/admin/users", &root_bearer, Some(created), "req-1")).await;
    assert_eq!(answer.status(), 201);
    let new_id = body(&answer)["id"].as_str().unwrap().to_owned();
    let refused = request("GET", "/admin/users", &member_bearer, None, "req-2");
    assert_eq!(admin(&services.admin, refused).await.status(), 403);
    let demote =
        request("PATCH", &format!("/admin/users/{}", root.id), &root_bearer, Some(json!({"role": "x"})), "req-3");
    assert_eq!(admin(&services.admin, demote).await.status(), 409);
    let gone = request("DELETE", &format!("/admin/users/{new_id}"), &root_bearer, None, "req-4");
    assert_eq!(admin(&services.admin, gone).await.status(), 204);

    let (text, lines) = log_lines(&logs);
    let actions: Vec<(&str, &str, &str, &str, &str)> = lines
        .iter()
        .filter(|line| line["event"] == "admin_action")
        .map(|line| {
            let field = |name: &str| line[name].as_str().unwrap();
            (field("action"), field("actor_id"), field("target_id"), field("request_id"), field("outcome"))
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("create_user", root.id.as_str(), new_id.as_str(), "req-1", "ok"),
            ("list_users", member.id.as_str(), "", "req-2", "refused"),
            ("update_user", root.id.as_str(), root.id.as_str(), "req-3", "last_admin"),
            ("delete_user", root.id.as_str(), new_id.as_str(), "req-4", "ok"),
        ],
        "{text}"
    );
    assert_eq!(lines.iter().filter(|line| line["event"] == "user_deleted").count(), 1);
    assert_eq!(lines.iter().filter(|line| line["event"] == "last_admin_refused").count(), 1);
    let tokens = [root_bearer.trim_start_matches("Bearer "), member_bearer.trim_start_matches("Bearer ")];
    for secret in [DEMO_PASSWORD, "the new user's passphrase", "$argon2id$"].iter().chain(tokens.iter()) {
        assert!(!text.contains(secret), "the audit log holds a secret: {secret}");
    }
}
