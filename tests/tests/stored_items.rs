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
            "emailVerified",
            "gsi1sk",
            "passwordChangedAt",
            "passwordHash",
            "pk",
            "role",
            "sessionEpoch",
            "userId",
            "userList"
        ]
    );
    assert_eq!(s(user, "pk"), "USER#demo@example.com");
    assert_eq!((s(user, "gsi1sk"), s(user, "email"), s(user, "role")), ("USER", DEMO_EMAIL, "member"));
    assert_eq!(s(user, "userId"), env.demo.id);
    assert!(s(user, "passwordHash").starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert_eq!(user["disabled"].as_bool().unwrap(), &false);
    assert_eq!(user["emailVerified"].as_bool().unwrap(), &true, "operators' users count as verified");
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
    // With delegated signing, the period's key: public half, vouch, sealed private half.
    let signing = by_prefix("SIGNKEY#");
    if env.config.signing.is_delegated() {
        // The current period's, and the next one's when past the middle of this one.
        assert!((1..=2).contains(&signing.len()), "{dump}");
        for key in &signing {
            let names: std::collections::BTreeSet<&str> = key.keys().map(String::as_str).collect();
            assert_eq!(names.into_iter().collect::<Vec<_>>(), ["createdAt", "kid", "pk", "sealedKey", "ttl", "vouch"]);
            let period = env.config.signing.key_period.as_secs();
            assert!(s(key, "pk").starts_with(&format!("SIGNKEY#{period}#")), "{dump}");
            assert!(s(key, "kid").starts_with(&format!("d1.{period}.")));
            assert_eq!(s(key, "vouch").split('.').count(), 3, "a compact JWS");
        }
    } else {
        assert!(signing.is_empty(), "{dump}");
    }
    assert_eq!(items.len(), 3 + signing.len(), "{dump}");
}

/// The account flows on DynamoDB: forgot and reset, a second (unspent) reset link,
/// an invitation, a sign-up and its verification, a change of password. The table
/// holds the documented items and no secret any of them handled: link secrets,
/// passwords, tokens.
#[tokio::test]
async fn account_flows_leave_the_documented_items_and_no_secret() {
    use latchkey::config::{AccountConfig, SignupMode};
    use latchkey::delivery::{MessageKind, Outbox, secret_of};
    use latchkey::http::account;
    use latchkey::services::{Components, Services};
    use std::sync::Arc;

    let Some(env) = Env::new(fixture_edge()).await else { return };
    let outbox = Outbox::new();
    let accounts = AccountConfig {
        link_base_url: Some("https://app.example.com/".to_owned()),
        response_floor: std::time::Duration::ZERO,
        signup: SignupMode::Open,
        ..AccountConfig::default()
    };
    let config = latchkey::Config { accounts, ..env.config.clone() };
    let components = Components {
        refresh_key: latchkey_tests::fixture_refresh_key(),
        delivery: Arc::new(outbox.clone()),
        ..latchkey_tests::components(
            env.store(),
            Arc::new(latchkey_tests::fixture_signer()),
            Arc::new(latchkey::clock::SystemClock),
        )
    };
    let services = Services::assemble(&config, components).unwrap();
    let call = |path: &'static str, headers: Vec<(&'static str, String)>, body: Value| {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        account(&services.account, post_json(path, &headers, body))
    };
    let secret = |to: &str, kind: MessageKind| {
        let message = outbox.last_to(to).unwrap();
        assert_eq!(message.kind, kind);
        secret_of(message.link.as_deref().unwrap()).unwrap().to_owned()
    };
    let mut secrets = vec![DEMO_PASSWORD.to_owned()];

    assert_eq!(call("/password/forgot", vec![], json!({"email": DEMO_EMAIL})).await.status(), 202);
    let spent = secret(DEMO_EMAIL, MessageKind::PasswordReset);
    let reset = call("/password/reset", vec![], json!({"token": spent, "newPassword": "the reset password"})).await;
    assert_eq!(reset.status(), 204);
    assert_eq!(call("/password/forgot", vec![], json!({"email": DEMO_EMAIL})).await.status(), 202);
    let pending = secret(DEMO_EMAIL, MessageKind::PasswordReset);
    let invited = services.account.recovery.invite("new@example.com", Some("Admin")).await.unwrap();
    assert!(invited.created && invited.delivered.is_ok());
    let invitation = secret("new@example.com", MessageKind::Invitation);
    let signup = json!({"email": "fresh@example.com", "password": "a signed-up password"});
    assert_eq!(call("/signup", vec![], signup).await.status(), 202);
    let verify = secret("fresh@example.com", MessageKind::VerifyEmail);
    let verified = call("/email/verify", vec![], json!({"token": verify})).await;
    assert_eq!(verified.status(), 204);
    let signup = json!({"email": "late@example.com", "password": "an unverified password"});
    assert_eq!(call("/signup", vec![], signup).await.status(), 202);
    let unverified = secret("late@example.com", MessageKind::VerifyEmail);
    let logged_in =
        login(&services.login, post("/login", json!({"email": DEMO_EMAIL, "password": "the reset password"}))).await;
    let tokens = body_json(&logged_in);
    let bearer = format!("Bearer {}", tokens["accessToken"].as_str().unwrap());
    let change = json!({"currentPassword": "the reset password", "newPassword": "the changed password"});
    let changed = call("/password", vec![("authorization", bearer)], change).await;
    assert_eq!(changed.status(), 200);
    let changed = body_json(&changed);
    for tokens in [&tokens, &changed] {
        secrets.push(tokens["accessToken"].as_str().unwrap().to_owned());
        let refresh_token = tokens["refreshToken"].as_str().unwrap();
        secrets.push(refresh_token.to_owned());
        secrets.push(refresh_token.rsplit('.').next().unwrap().to_owned());
    }
    secrets.extend(
        [
            &spent,
            &pending,
            &invitation,
            &verify,
            &unverified,
            "the reset password",
            "a signed-up password",
            "an unverified password",
            "the changed password",
        ]
        .map(|secret| secret.to_string()),
    );

    let scan = env.aws.dynamodb().scan().table_name(&env.config.table_name).consistent_read(true).send().await.unwrap();
    let items = scan.items();
    let dump = format!("{items:?}");
    for secret in &secrets {
        assert!(!dump.contains(secret.as_str()), "the table holds a secret ({} characters)", secret.len());
    }
    let item = |pk: &str| items.iter().find(|i| s(i, "pk") == pk).unwrap_or_else(|| panic!("no {pk}: {dump}"));
    let by_prefix = |prefix: &str| -> Vec<&Item> { items.iter().filter(|i| s(i, "pk").starts_with(prefix)).collect() };

    // One live secret per link not yet used: the second reset, the invitation, the
    // unverified sign-up. Used links are gone; each user points at its newest.
    let live = by_prefix("SECRET#");
    assert_eq!(live.len(), 3, "{dump}");
    for secret in &live {
        assert_eq!(names(secret), ["email", "expiresAt", "pk", "ttl", "userId"]);
        assert_eq!(n(secret, "ttl"), n(secret, "expiresAt") + 86_400, "TTL only tidies, a day late");
    }
    let demo = item("USER#demo@example.com");
    let reset_pk = format!("SECRET#password#{}", s(demo, "passwordSecret"));
    let reset_item = item(&reset_pk);
    assert_eq!(s(reset_item, "userId"), env.demo.id);
    assert!(n(reset_item, "expiresAt") <= n(demo, "passwordChangedAt") + 900 + 5, "LATCHKEY_RESET_TTL_SECONDS");
    assert_eq!(n(demo, "sessionEpoch"), 2, "a reset and a change each end the other sessions");

    let new = item("USER#new@example.com");
    assert_eq!(
        names(new),
        [
            "createdAt",
            "disabled",
            "email",
            "emailVerified",
            "gsi1sk",
            "passwordChangedAt",
            "passwordSecret",
            "pk",
            "role",
            "sessionEpoch",
            "userId",
            "userList"
        ],
        "an invited user has no password hash at all"
    );
    let invite_item = item(&format!("SECRET#password#{}", s(new, "passwordSecret")));
    assert_eq!(n(invite_item, "expiresAt"), n(new, "createdAt") + 604_800, "LATCHKEY_INVITE_TTL_SECONDS");

    let fresh = item("USER#fresh@example.com");
    assert_eq!(fresh["emailVerified"].as_bool().unwrap(), &true);
    assert!(
        !fresh.contains_key("verifySecret") && !fresh.contains_key("pendingExpiresAt") && !fresh.contains_key("ttl")
    );
    let late = item("USER#late@example.com");
    assert_eq!(late["emailVerified"].as_bool().unwrap(), &false);
    assert_eq!(n(late, "pendingExpiresAt"), n(late, "createdAt") + 86_400, "LATCHKEY_VERIFY_TTL_SECONDS");
    assert_eq!(n(late, "ttl"), n(late, "pendingExpiresAt") + 86_400);
    item(&format!("SECRET#verify#{}", s(late, "verifySecret")));

    let counters = by_prefix("COUNT#MAIL#demo@example.com#");
    let [counter] = counters[..] else { panic!("one mail counter for the demo user: {dump}") };
    assert_eq!(n(counter, "count"), 2, "two reset mails this window");
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
