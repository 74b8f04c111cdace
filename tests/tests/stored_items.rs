//! The raw DynamoDB items the deployed functions write, read back with a table scan
//! on moto: the layout and `ttl` values docs/storage.md documents, and no token,
//! token MAC or password anywhere in the table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use latchkey::http::{LoginState, RefreshState, login, refresh};
use latchkey_tests::events::{post_json, response_json as body_json};
use latchkey_tests::{DEMO_EMAIL, DEMO_PASSWORD, Env, fixture_edge};
use serde_json::{Value, json};

fn post(path: &str, body: Value) -> lambda_http::Request {
    post_json(path, &[], body)
}

type Item = HashMap<String, AttributeValue>;

fn s<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).unwrap_or_else(|| panic!("no {name} in {item:?}")).as_s().unwrap()
}

fn n(item: &Item, name: &str) -> u64 {
    item.get(name).unwrap_or_else(|| panic!("no {name} in {item:?}")).as_n().unwrap().parse().unwrap()
}

fn names(item: &Item) -> Vec<&str> {
    let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn items_match_docs_storage_md_and_hold_no_secret() {
    let Some(env) = Env::new(fixture_edge()).await else { return };
    let login_state: LoginState = env.deployed().await;
    let refresh_state: RefreshState = env.deployed().await;

    let issued = login(&login_state, post("/login", json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}))).await;
    assert_eq!(issued.status(), 200);
    let first = body_json(&issued);
    let rotated = refresh(&refresh_state, post("/refresh-token", json!({"refreshToken": first["refreshToken"]}))).await;
    assert_eq!(rotated.status(), 200);
    let second = body_json(&rotated);
    let failed = login(&login_state, post("/login", json!({"email": "ghost@example.com", "password": "guess"}))).await;
    assert_eq!(failed.status(), 401);

    let scan = env.aws.dynamodb().scan().table_name(&env.config.table_name).consistent_read(true).send().await.unwrap();
    let items = scan.items();
    let dump = format!("{items:?}");
    let mut secrets = vec![DEMO_PASSWORD.to_owned()];
    for tokens in [&first, &second] {
        let refresh_token = tokens["refreshToken"].as_str().unwrap();
        secrets.push(refresh_token.to_owned());
        secrets.push(refresh_token.rsplit('.').next().unwrap().to_owned()); // its MAC
        let access = tokens["accessToken"].as_str().unwrap();
        secrets.push(access.to_owned());
        secrets.push(access.rsplit('.').next().unwrap().to_owned()); // its signature
    }
    for secret in &secrets {
        assert!(!dump.contains(secret.as_str()), "the table holds a secret ({} characters)", secret.len());
    }

    let by_prefix = |prefix: &str| -> Vec<&Item> { items.iter().filter(|i| s(i, "pk").starts_with(prefix)).collect() };
    let [user] = by_prefix("USER#")[..] else { panic!("one user item: {dump}") };
    assert_eq!(
        names(user),
        [
            "createdAt",
            "disabled",
            "email",
            "gsi1sk",
            "passwordChangedAt",
            "passwordHash",
            "pk",
            "role",
            "sessionEpoch",
            "userId"
        ]
    );
    assert_eq!(s(user, "pk"), "USER#demo@example.com");
    assert_eq!((s(user, "gsi1sk"), s(user, "email"), s(user, "role")), ("USER", DEMO_EMAIL, "member"));
    assert_eq!(s(user, "userId"), env.demo.id);
    assert!(s(user, "passwordHash").starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert_eq!(user["disabled"].as_bool().unwrap(), &false);
    assert_eq!(n(user, "sessionEpoch"), 0, "no password change or logout everywhere yet");

    let [session] = by_prefix("SESSION#")[..] else { panic!("one session item: {dump}") };
    let sid = s(session, "sessionId");
    assert_eq!(s(session, "pk"), format!("SESSION#{sid}"));
    assert_eq!(s(session, "gsi1sk"), format!("SESSION#{sid}"));
    assert_eq!((s(session, "userId"), s(session, "email")), (env.demo.id.as_str(), DEMO_EMAIL));
    assert_eq!(n(session, "userEpoch"), n(user, "sessionEpoch"), "bound to the epoch its login read");
    assert_eq!(n(session, "gen"), 1, "one rotation");
    assert!(!session.contains_key("revokedAt") && !session.contains_key("revokeReason"));
    assert_eq!(n(session, "idleExpiresAt"), n(session, "rotatedAt") + 2_592_000);
    assert_eq!(n(session, "absExpiresAt"), n(session, "createdAt") + 7_776_000);
    assert_eq!(n(session, "ttl"), n(session, "idleExpiresAt"), "after a rotation ttl is the idle expiry");
    assert!(n(session, "rotatedAt") >= n(session, "createdAt"));

    let [attempts] = by_prefix("ATTEMPTS#")[..] else { panic!("one attempts item: {dump}") };
    let pk = s(attempts, "pk");
    let window: u64 = pk.strip_prefix("ATTEMPTS#ghost@example.com#").expect(pk).parse().unwrap();
    assert_eq!(n(attempts, "failures"), 1);
    assert_eq!(n(attempts, "ttl"), (window + 1) * 900, "the end of the window");
    assert_eq!(items.len(), 3, "{dump}");
}

/// `ensure_table` (what `latchkey setup` runs) turns TTL on, on `ttl`, for a new
/// table, and a second run changes nothing and does not fail.
#[tokio::test]
async fn ensure_table_enables_ttl_on_a_new_table_and_is_idempotent() {
    use latchkey::store::{DynamoStore, TTL_ATTRIBUTE};
    let Some(client) = latchkey_tests::support::moto_dynamodb().await else { return };
    let table = latchkey_tests::support::unique_name("ttl");
    assert!(DynamoStore::ensure_table(&client, &table).await.unwrap(), "created");
    let ttl = client.describe_time_to_live().table_name(&table).send().await.unwrap();
    let description = ttl.time_to_live_description().unwrap();
    assert_eq!(description.attribute_name(), Some(TTL_ATTRIBUTE));
    assert!(matches!(
        description.time_to_live_status(),
        Some(aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled | aws_sdk_dynamodb::types::TimeToLiveStatus::Enabling)
    ));
    assert!(!DynamoStore::ensure_table(&client, &table).await.unwrap(), "already there");
}
