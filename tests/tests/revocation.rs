//! Revocation reaches the authorizer: after logout, reuse detection, a password
//! change, disable, or a user-level end of sessions whose per-session write was
//! missed, the next authorization past the session-check interval is denied;
//! inside the interval the cached answer is used with no store call. On the
//! memory store and on DynamoDB (moto), with a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use latchkey::authorizer::authorize;
use latchkey::clock::ManualClock;
use latchkey::config::{EdgeConfig, SessionCheckFailure};
use latchkey::http::{login, logout, refresh};
use latchkey::password::Password;
use latchkey::services::Services;
use latchkey::signing::{DelegatedKeyStore, LocalSigner};
use latchkey::store::{
    CredentialStore, DynamoStore, LoginAttemptStore, MemoryStore, SessionLookup, SessionStore, UserStore,
};
use latchkey::{Clock, Config};
use latchkey_tests::counting::CountingStore;
use latchkey_tests::events::{post_json as post, response_json as body, v2_authorizer};
use latchkey_tests::support::{self, START};
use latchkey_tests::{DEMO_EMAIL, DEMO_PASSWORD, components};
use serde_json::json;

const INTERVAL: u64 = 30;

trait Store:
    UserStore + SessionStore + LoginAttemptStore + SessionLookup + CredentialStore + DelegatedKeyStore + 'static
{
}
impl<S: UserStore + SessionStore + LoginAttemptStore + SessionLookup + CredentialStore + DelegatedKeyStore + 'static>
    Store for S
{
}

struct Rig<S> {
    services: Services,
    store: Arc<CountingStore<S>>,
    clock: Arc<ManualClock>,
}

async fn rig<S: Store>(inner: Arc<S>, on_failure: SessionCheckFailure) -> Rig<S> {
    let store = Arc::new(CountingStore::new(inner));
    let clock = Arc::new(ManualClock::new(START));
    let edge = EdgeConfig { session_check_secs: INTERVAL, session_check_failure: on_failure, ..EdgeConfig::default() };
    let components = components(store.clone(), Arc::new(LocalSigner::generate().unwrap()), clock.clone());
    let services = Services::assemble(&Config { edge, ..Config::default() }, components).unwrap();
    services.accounts().create(DEMO_EMAIL, &Password::new(DEMO_PASSWORD).unwrap(), "member").await.unwrap();
    Rig { services, store, clock }
}

/// Both backends: the memory store, and DynamoDB on moto (`None` outside CI
/// without moto: skipped, as every moto test).
async fn dynamo() -> Option<Arc<DynamoStore>> {
    let client = support::moto_dynamodb().await?;
    let table = support::unique_name("revocation");
    DynamoStore::ensure_table(&client, &table).await.unwrap();
    Some(Arc::new(DynamoStore::new(client, table)))
}

impl<S: Store> Rig<S> {
    /// A login's (access token, refresh token).
    async fn login(&self) -> (String, String) {
        self.login_with(DEMO_PASSWORD).await
    }

    async fn login_with(&self, password: &str) -> (String, String) {
        let credentials = json!({"email": DEMO_EMAIL, "password": password});
        let tokens = body(&login(&self.services.login, post("/login", &[], credentials)).await);
        (tokens["accessToken"].as_str().unwrap().to_owned(), tokens["refreshToken"].as_str().unwrap().to_owned())
    }

    async fn allowed(&self, access: &str) -> bool {
        let event = v2_authorizer(&format!("Bearer {access}"));
        matches!(authorize(&self.services.authorizer, event).await, Ok(answer) if answer["isAuthorized"] == true)
    }

    fn reads(&self) -> u32 {
        self.store.take_calls().get("session_and_user").copied().unwrap_or(0)
    }

    /// Allowed now (and the check read the store once, then caches); after
    /// `revoke`, still allowed from the cache inside the interval with no read,
    /// and denied after it with one read.
    async fn revocation_reaches_the_authorizer(&self, what: &str, access: &str, revoke: impl AsyncFnOnce()) {
        self.store.take_calls();
        let checked_at = self.clock.now();
        assert!(self.allowed(access).await, "{what}: allowed before");
        assert_eq!(self.reads(), 1, "{what}");
        revoke().await;
        self.store.take_calls();
        assert!(self.clock.now() < checked_at + INTERVAL - 1, "{what}: the revoke took too long on the clock");
        self.clock.set(checked_at + INTERVAL - 1);
        assert!(self.allowed(access).await, "{what}: the cached answer inside the interval");
        assert_eq!(self.reads(), 0, "{what}: no store call inside the interval");
        self.clock.advance(1);
        assert!(!self.allowed(access).await, "{what}: denied past the interval");
        assert_eq!(self.reads(), 1, "{what}");
        assert!(!self.allowed(access).await, "{what}: and stays denied");
        assert_eq!(self.reads(), 0, "{what}: the denial is cached too");
    }
}

async fn every_revocation_reaches_the_authorizer<S: Store>(inner: Arc<S>) {
    let r = rig(inner, SessionCheckFailure::Deny).await;
    let accounts = r.services.accounts().clone();

    let (access, refresh_token) = r.login().await;
    r.revocation_reaches_the_authorizer("logout", &access, async || {
        let out = logout(&r.services.logout, post("/logout", &[], json!({"refreshToken": refresh_token}))).await;
        assert_eq!(out.status(), 204);
    })
    .await;

    let (access, spent) = r.login().await;
    r.revocation_reaches_the_authorizer("reuse", &access, async || {
        let rotate = || post("/refresh-token", &[], json!({"refreshToken": spent}));
        assert_eq!(refresh(&r.services.refresh, rotate()).await.status(), 200);
        r.clock.advance(11);
        assert_eq!(refresh(&r.services.refresh, rotate()).await.status(), 401, "reuse after the 10 s grace");
    })
    .await;

    let (access, _) = r.login().await;
    r.revocation_reaches_the_authorizer("password change", &access, async || {
        accounts.set_password(DEMO_EMAIL, &Password::new("a brand new password").unwrap()).await.unwrap();
    })
    .await;
    let (access, _) = r.login_with("a brand new password").await;
    r.revocation_reaches_the_authorizer("disable", &access, async || {
        accounts.set_disabled(DEMO_EMAIL, true).await.unwrap();
    })
    .await;
    accounts.set_disabled(DEMO_EMAIL, false).await.unwrap();

    // A user-level end whose per-session revoke was missed (only the epoch moved,
    // as when the index had not listed the session yet) is caught as well.
    let (access, _) = r.login_with("a brand new password").await;
    r.revocation_reaches_the_authorizer("sessions ended, session item untouched", &access, async || {
        r.store.end_sessions(DEMO_EMAIL).await.unwrap();
    })
    .await;

    // A demoted (or promoted) user's token no longer matches the stored role: not
    // live, so the client refreshes into a token with the role as it now is.
    let (access, refresh_token) = r.login_with("a brand new password").await;
    r.revocation_reaches_the_authorizer("role change", &access, async || {
        accounts.set_role(DEMO_EMAIL, "Admin").await.unwrap();
    })
    .await;
    let refreshed =
        body(&refresh(&r.services.refresh, post("/refresh-token", &[], json!({"refreshToken": refresh_token}))).await);
    let access = refreshed["accessToken"].as_str().unwrap();
    assert!(r.allowed(access).await, "the refreshed token carries the new role and passes");
}

/// A session ended only by its user's epoch (the index missed it when the user's
/// sessions were ended, say at a password reset) cannot end the sessions its user
/// has made since: logging out everywhere needs a session its user still allows.
async fn an_epoch_ended_session_cannot_log_out_everywhere<S: Store>(inner: Arc<S>) {
    let r = rig(inner, SessionCheckFailure::Deny).await;
    let (_, stolen) = r.login().await;
    r.store.end_sessions(DEMO_EMAIL).await.unwrap();
    let (_, victim) = r.login().await;
    let everywhere =
        logout(&r.services.logout, post("/logout", &[], json!({"refreshToken": stolen, "allSessions": true})));
    assert_eq!(everywhere.await.status(), 401);
    let still = refresh(&r.services.refresh, post("/refresh-token", &[], json!({"refreshToken": victim}))).await;
    assert_eq!(still.status(), 200, "the session made since survives");
}

#[tokio::test]
async fn an_epoch_ended_session_cannot_log_out_everywhere_on_the_memory_store() {
    an_epoch_ended_session_cannot_log_out_everywhere(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn an_epoch_ended_session_cannot_log_out_everywhere_on_dynamodb() {
    let Some(store) = dynamo().await else { return };
    an_epoch_ended_session_cannot_log_out_everywhere(store).await;
}

#[tokio::test]
async fn every_revocation_reaches_the_authorizer_on_the_memory_store() {
    every_revocation_reaches_the_authorizer(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn every_revocation_reaches_the_authorizer_on_dynamodb() {
    let Some(store) = dynamo().await else { return };
    every_revocation_reaches_the_authorizer(store).await;
}

/// A store that cannot be read: `deny` (the default) refuses a valid token, `allow`
/// lets it through; neither hangs, and a token that fails verification never costs
/// a read.
#[tokio::test]
async fn a_failed_session_check_follows_its_setting() {
    for (setting, allowed) in [(SessionCheckFailure::Deny, false), (SessionCheckFailure::Allow, true)] {
        let r = rig(Arc::new(MemoryStore::new()), setting).await;
        let (access, _) = r.login().await;
        r.store.fail("session_and_user");
        assert_eq!(r.allowed(&access).await, allowed, "{setting:?}");
        let check = r.services.authorizer.session_check.as_ref().unwrap();
        assert_eq!(check.reads(), 1);
        assert!(!r.allowed("not.a.token").await);
        assert_eq!(check.reads(), 1, "no read for a token that fails verification");
        let calls: BTreeMap<_, _> = r.store.take_calls();
        assert_eq!(calls.get("session_and_user"), Some(&1), "{calls:?}");
    }
}
