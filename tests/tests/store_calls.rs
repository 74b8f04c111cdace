//! What each request asks of the store, counted by a wrapper around the memory store
//! (docs/storage.md, "Store calls per request"), and what a store outage does to
//! each handler: a 500 `server_error`, never a 401 or a 200.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use latchkey::Config;
use latchkey::authorizer::authorize;
use latchkey::clock::SystemClock;
use latchkey::http::{login, logout, refresh};
use latchkey::password::Password;
use latchkey::services::Services;
use latchkey::signing::LocalSigner;
use latchkey::store::MemoryStore;
use latchkey_tests::counting::CountingStore;
use latchkey_tests::events::{post_json as post, response_json as body_json, v2_authorizer};
use latchkey_tests::{DEMO_EMAIL, DEMO_PASSWORD, components};
use serde_json::json;

async fn counted() -> (Services, Arc<CountingStore<MemoryStore>>) {
    let store = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
    let components = components(store.clone(), Arc::new(LocalSigner::generate().unwrap()), Arc::new(SystemClock));
    let services = Services::assemble(&Config::default(), components).unwrap();
    services.accounts().create(DEMO_EMAIL, &Password::new(DEMO_PASSWORD).unwrap(), "member").await.unwrap();
    store.take_calls();
    (services, store)
}

fn calls(pairs: &[(&'static str, u32)]) -> BTreeMap<&'static str, u32> {
    pairs.iter().copied().collect()
}

#[tokio::test]
async fn each_request_makes_the_documented_store_calls() {
    let (s, store) = counted().await;
    let credentials = json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD});

    let issued = login(&s.login, post("/login", &[], credentials)).await;
    assert_eq!(issued.status(), 200);
    assert_eq!(
        store.take_calls(),
        calls(&[("record_failure", 1), ("get_user_by_email", 1), ("clear_failures", 1), ("create_session", 1)])
    );
    let tokens = body_json(&issued);

    let wrong = login(&s.login, post("/login", &[], json!({"email": DEMO_EMAIL, "password": "wrong"}))).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(store.take_calls(), calls(&[("record_failure", 1), ("get_user_by_email", 1)]));

    let rotated =
        refresh(&s.refresh, post("/refresh-token", &[], json!({"refreshToken": tokens["refreshToken"]}))).await;
    assert_eq!(rotated.status(), 200);
    assert_eq!(
        store.take_calls(),
        calls(&[("get_session", 1), ("user_standing", 1), ("rotate_session", 1)]),
        "read the session and the user, sign, then commit the rotation"
    );
    let next = body_json(&rotated);

    let forged = json!({"refreshToken": "lk1.c2Vzc2lvbi1maXh0dXJlMQ.0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"});
    assert_eq!(refresh(&s.refresh, post("/refresh-token", &[], forged)).await.status(), 401);
    assert_eq!(store.take_calls(), calls(&[]), "a forged token costs no store call");

    let event = v2_authorizer(&format!("Bearer {}", next["accessToken"].as_str().unwrap()));
    assert_eq!(authorize(&s.authorizer, event.clone()).await.unwrap()["isAuthorized"], true);
    assert_eq!(store.take_calls(), calls(&[("session_and_user", 1)]), "the session check: one read");
    assert_eq!(authorize(&s.authorizer, event).await.unwrap()["isAuthorized"], true);
    assert_eq!(store.take_calls(), calls(&[]), "inside the check interval the answer is cached");
    let forged = v2_authorizer("Bearer eyJhbGciOiJFUzI1NiJ9.e30.AAAA");
    assert!(authorize(&s.authorizer, forged).await.is_err());
    assert_eq!(store.take_calls(), calls(&[]), "a token that fails verification costs no read");

    let bearer = format!("Bearer {}", next["accessToken"].as_str().unwrap());
    let out = logout(&s.logout, post("/logout", &[("authorization", &bearer)], json!({}))).await;
    assert_eq!(out.status(), 204);
    assert_eq!(store.take_calls(), calls(&[("revoke_session", 1)]));

    let again = login(&s.login, post("/login", &[], json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}))).await;
    let bearer = format!("Bearer {}", body_json(&again)["accessToken"].as_str().unwrap());
    store.take_calls();
    let everywhere =
        logout(&s.logout, post("/logout", &[("authorization", &bearer)], json!({"allSessions": true}))).await;
    assert_eq!(everywhere.status(), 204);
    // The token's session must be live and its user must still allow it; the
    // user's epoch moves on, then the user's sessions are listed and each one still
    // live is revoked (one here).
    assert_eq!(
        store.take_calls(),
        calls(&[
            ("get_session", 1),
            ("user_standing", 1),
            ("end_sessions", 1),
            ("list_user_sessions", 1),
            ("revoke_session", 1)
        ])
    );
}

#[tokio::test]
async fn a_store_outage_is_a_500_server_error_from_every_handler() {
    let (s, store) = counted().await;
    let issued = login(&s.login, post("/login", &[], json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}))).await;
    let tokens = body_json(&issued);
    let bearer = format!("Bearer {}", tokens["accessToken"].as_str().unwrap());
    store.fail("*");
    let responses = [
        login(&s.login, post("/login", &[], json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}))).await,
        login(&s.login, post("/login", &[], json!({"email": DEMO_EMAIL, "password": "wrong"}))).await,
        refresh(&s.refresh, post("/refresh-token", &[], json!({"refreshToken": tokens["refreshToken"]}))).await,
        logout(&s.logout, post("/logout", &[("authorization", &bearer)], json!({}))).await,
        logout(&s.logout, post("/logout", &[], json!({"refreshToken": tokens["refreshToken"]}))).await,
    ];
    for response in responses {
        assert_eq!(response.status(), 500);
        assert_eq!(body_json(&response)["error"], "server_error");
        let text = format!("{:?}", response.body());
        assert!(!text.contains("injected outage"), "internal detail reached the client: {text}");
    }
}
