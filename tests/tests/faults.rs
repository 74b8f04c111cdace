//! Fault injection: every store call and every signature of login, refresh (plain,
//! grace replay, concurrent tabs), logout and logout-everywhere is failed in turn,
//! the n-th for every n, through the real handlers. The invariants: never a 200
//! without the rotation persisted; never a session revoked because of our own
//! failure (the client's retry, even after the grace window, succeeds); never a
//! panic; every failure a 500 with nothing secret in the body or the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use lambda_http::{Body, Response};
use latchkey::Config;
use latchkey::clock::ManualClock;
use latchkey::http::{login, logout, refresh};
use latchkey::password::Password;
use latchkey::services::Services;
use latchkey::session::SessionPolicy;
use latchkey::signing::LocalSigner;
use latchkey::store::{MemoryStore, SessionStore};
use latchkey::token::SessionId;
use latchkey_tests::counting::CountingStore;
use latchkey_tests::events::{post_json as post, response_json as body_json};
use latchkey_tests::faults::FaultySigner;
use latchkey_tests::support::{START, capture_logs, log_lines};
use latchkey_tests::{DEMO_EMAIL, DEMO_PASSWORD, components};
use serde_json::json;

/// More calls than any request makes: the loops below stop at the first n that
/// no call reaches, and fail if they never get there.
const MAX_CALLS: u32 = 12;

struct Rig {
    services: Services,
    store: Arc<CountingStore<MemoryStore>>,
    signer: Arc<FaultySigner<LocalSigner>>,
    clock: Arc<ManualClock>,
    grace_secs: u64,
}

impl Rig {
    async fn new() -> Self {
        let store = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
        let signer = Arc::new(FaultySigner::new(LocalSigner::generate().unwrap()));
        let clock = Arc::new(ManualClock::new(START));
        let config = Config::default();
        let components = components(store.clone(), signer.clone(), clock.clone());
        let services = Services::assemble(&config, components).unwrap();
        services.accounts().create(DEMO_EMAIL, &Password::new(DEMO_PASSWORD).unwrap(), "member").await.unwrap();
        let grace_secs = SessionPolicy::from_config(&config).grace_secs;
        Self { services, store, signer, clock, grace_secs }
    }

    async fn login(&self) -> Response<Body> {
        let body = json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD});
        login(&self.services.login, post("/login", &[], body)).await
    }

    /// A successful login's refresh token and session id.
    async fn session(&self) -> (String, SessionId) {
        let response = self.login().await;
        assert_eq!(response.status(), 200);
        let token = body_json(&response)["refreshToken"].as_str().unwrap().to_owned();
        let id = self.services.refresh.sessions.identify(&token).unwrap().session_id;
        (token, id)
    }

    async fn refresh(&self, token: &str) -> Response<Body> {
        refresh(&self.services.refresh, post("/refresh-token", &[], json!({"refreshToken": token}))).await
    }

    async fn logout(&self, token: &str, all_sessions: bool) -> Response<Body> {
        let body = json!({"refreshToken": token, "allSessions": all_sessions});
        logout(&self.services.logout, post("/logout", &[], body)).await
    }

    async fn generation(&self, id: &SessionId) -> u64 {
        self.store.get_session(id).await.unwrap().unwrap().generation
    }

    async fn revoked(&self, id: &SessionId) -> Option<String> {
        self.store.get_session(id).await.unwrap().unwrap().revoke_reason
    }
}

/// A failed request: a 500 `server_error`, no token in the body, no cookie set.
fn assert_clean_failure(response: &Response<Body>, what: &str) {
    assert_eq!(response.status(), 500, "{what}");
    let body = body_json(response);
    assert_eq!(body["error"], "server_error", "{what}");
    let text = body.to_string();
    assert!(!text.contains("lk1.") && !text.contains("eyJhbGci") && !text.contains("injected"), "{what}: {text}");
    assert!(response.headers().get("set-cookie").is_none(), "{what}: a failure sets no cookie");
}

/// Which call fails in one run: the n-th store call, or the n-th signature.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Store(u32),
    Sign(u32),
}

impl Fault {
    fn every() -> impl Iterator<Item = Fault> {
        (1..=MAX_CALLS).map(Fault::Store).chain((1..=2).map(Fault::Sign))
    }

    fn arm(self, rig: &Rig) {
        match self {
            Fault::Store(n) => rig.store.fail_nth(n),
            Fault::Sign(n) => rig.signer.fail_nth(n),
        }
    }

    /// Disarms a fault the request did not reach; whether it was reached.
    fn disarm(self, rig: &Rig) -> bool {
        match self {
            Fault::Store(_) => {
                let reached = rig.store.nth_failed();
                rig.store.fail_nth(0);
                reached
            }
            Fault::Sign(_) => {
                // The signer has no probe: a second arm of 0 clears it; reached is
                // judged by the response.
                rig.signer.fail_nth(0);
                true
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_failure_leaves_every_session_usable_and_says_nothing_secret() {
    let logs = capture_logs();
    let mut reached = std::collections::BTreeMap::<&str, u32>::new();
    for fault in Fault::every() {
        for scenario in ["login", "refresh", "grace replay", "concurrent refresh", "logout", "logout everywhere"] {
            let rig = Rig::new().await;
            let what = format!("{scenario}, {fault:?}");
            if run(&rig, scenario, fault, &what).await {
                *reached.entry(scenario).or_default() += 1;
            }
        }
    }
    // Each scenario met at least one failing store call and one failing signature
    // (or, for logout, store calls only): the loops did inject faults. Login fails
    // on 3 of its 4 store calls: forgetting the failed-attempt count is best effort
    // (`login_clearing_the_attempt_count_fails_softly`). Logout everywhere fails
    // on its first 3 (session, user standing, the epoch): once the epoch has moved,
    // marking the listed sessions revoked is best effort.
    for (scenario, least) in [
        ("login", 4),
        ("refresh", 4),
        ("grace replay", 3),
        ("concurrent refresh", 4),
        ("logout", 1),
        ("logout everywhere", 3),
    ] {
        assert!(reached.get(scenario).copied().unwrap_or(0) >= least, "{scenario}: {reached:?}");
    }
    let (text, lines) = log_lines(&logs);
    assert!(text.contains("injected"), "the failures' detail is logged");
    let server_errors: Vec<&serde_json::Value> =
        lines.iter().filter(|line| line["event"] == "request" && line["status"] == 500).collect();
    assert!(!server_errors.is_empty());
    assert!(server_errors.iter().all(|line| line["level"] == "ERROR"), "a 500 is logged at ERROR");
    for secret in [DEMO_PASSWORD, "lk1.", "eyJhbGci", "argon2id"] {
        assert!(!text.contains(secret), "the log holds {secret:?}");
    }
}

/// One scenario with one fault armed; returns whether the fault was reached.
async fn run(rig: &Rig, scenario: &str, fault: Fault, what: &str) -> bool {
    match scenario {
        "login" => {
            fault.arm(rig);
            let response = rig.login().await;
            let reached = fault.disarm(rig) && response.status() != 200;
            if reached {
                assert_clean_failure(&response, what);
            } else {
                assert_eq!(response.status(), 200, "{what}");
            }
            assert_eq!(rig.login().await.status(), 200, "{what}: a login after the failure works");
            reached
        }
        "refresh" => {
            let (token, id) = rig.session().await;
            fault.arm(rig);
            let response = rig.refresh(&token).await;
            let reached = fault.disarm(rig) && response.status() != 200;
            if !reached {
                assert_eq!(response.status(), 200, "{what}");
                assert_eq!(rig.generation(&id).await, 1, "{what}: a 200 means the rotation is stored");
                return false;
            }
            assert_clean_failure(&response, what);
            assert_eq!(rig.generation(&id).await, 0, "{what}: nothing rotated");
            assert_eq!(rig.revoked(&id).await, None, "{what}");
            // The client's only token is the one it sent; its retry, long after the
            // grace window, must not be taken for reuse.
            rig.clock.advance(rig.grace_secs * 10);
            let retry = rig.refresh(&token).await;
            assert_eq!(retry.status(), 200, "{what}: the retry is refused: {:?}", body_json(&retry));
            assert_eq!(rig.generation(&id).await, 1, "{what}");
            true
        }
        "grace replay" => {
            let (token, id) = rig.session().await;
            let first = rig.refresh(&token).await;
            let successor = body_json(&first)["refreshToken"].as_str().unwrap().to_owned();
            fault.arm(rig);
            let response = rig.refresh(&token).await;
            let reached = fault.disarm(rig) && response.status() != 200;
            if reached {
                assert_clean_failure(&response, what);
            } else {
                assert_eq!(body_json(&response)["refreshToken"].as_str(), Some(successor.as_str()), "{what}");
            }
            assert_eq!((rig.generation(&id).await, rig.revoked(&id).await), (1, None), "{what}");
            assert_eq!(rig.refresh(&successor).await.status(), 200, "{what}: the successor still works");
            reached
        }
        "concurrent refresh" => {
            let (token, id) = rig.session().await;
            fault.arm(rig);
            let tabs: Vec<_> = (0..4)
                .map(|_| {
                    let state = rig.services.refresh.clone();
                    let request = post("/refresh-token", &[], json!({"refreshToken": token}));
                    tokio::spawn(async move { refresh(&state, request).await })
                })
                .collect();
            let responses: Vec<_> =
                futures::future::join_all(tabs).await.into_iter().map(|joined| joined.unwrap()).collect();
            let reached = fault.disarm(rig) && responses.iter().any(|r| r.status() != 200);
            let mut successors = std::collections::BTreeSet::new();
            for response in &responses {
                if response.status() == 200 {
                    successors.insert(body_json(response)["refreshToken"].as_str().unwrap().to_owned());
                } else {
                    assert_clean_failure(response, what);
                }
            }
            assert!(successors.len() <= 1, "{what}: tabs got different successors");
            assert_eq!(rig.revoked(&id).await, None, "{what}");
            let generation = rig.generation(&id).await;
            assert_eq!(generation, u64::from(!successors.is_empty()), "{what}: a 200 means the rotation is stored");
            // Whatever each tab now holds works after the window: a tab that failed
            // retries its old token when nobody rotated, the successor otherwise.
            rig.clock.advance(rig.grace_secs * 10);
            let holding = successors.into_iter().next().unwrap_or(token);
            assert_eq!(rig.refresh(&holding).await.status(), 200, "{what}");
            reached
        }
        "logout" => {
            let (token, id) = rig.session().await;
            let (_, other) = rig.session().await;
            fault.arm(rig);
            let response = rig.logout(&token, false).await;
            let reached = fault.disarm(rig) && response.status() != 204;
            if reached {
                assert_clean_failure(&response, what);
                assert_eq!(rig.logout(&token, false).await.status(), 204, "{what}: the retry logs out");
            } else {
                assert_eq!(response.status(), 204, "{what}");
            }
            assert_eq!(rig.revoked(&id).await.as_deref(), Some("logout"), "{what}");
            assert_eq!(rig.revoked(&other).await, None, "{what}: another session untouched");
            reached
        }
        "logout everywhere" => {
            let (token, id) = rig.session().await;
            let (other_token, other) = rig.session().await;
            fault.arm(rig);
            let response = rig.logout(&token, true).await;
            let fired = fault.disarm(rig);
            let reached = fired && response.status() != 204;
            if reached {
                // Failed before the epoch moved: nothing ended, and the retry ends all.
                assert_clean_failure(&response, what);
                let retry = rig.logout(&token, true).await;
                assert_eq!(retry.status(), 204, "{what}: the retry is refused: {:?}", body_json(&retry));
            } else {
                assert_eq!(response.status(), 204, "{what}");
            }
            if !fired || reached {
                assert_eq!(rig.revoked(&id).await.as_deref(), Some("logout_all"), "{what}");
                assert_eq!(rig.revoked(&other).await.as_deref(), Some("logout_all"), "{what}");
            }
            // A failure after the epoch moved only leaves an item unmarked: every
            // session is ended all the same.
            assert_eq!(rig.refresh(&token).await.status(), 401, "{what}");
            assert_eq!(rig.refresh(&other_token).await.status(), 401, "{what}");
            reached
        }
        other => panic!("no scenario {other}"),
    }
}

/// An AWS endpoint that accepts connections and never answers (a hung dependency):
/// the functions' clients give up within their operation timeout instead of
/// holding the request until the function times out, and the failure is an
/// ordinary `StoreError::Unavailable`, a 500. The 30 s bound only detects a hang.
#[tokio::test]
async fn a_hung_aws_endpoint_fails_the_call_instead_of_hanging_the_function() {
    use latchkey::deploy::{Aws, SDK_OPERATION_TIMEOUT};
    use latchkey::store::{DynamoStore, StoreError};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://{address}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "faults"));
    let aws = Aws::load(loader).await;
    let store = DynamoStore::new(aws.dynamodb().clone(), "latchkey");
    let started = std::time::Instant::now();
    let outcome =
        tokio::time::timeout(std::time::Duration::from_secs(30), store.get_session(&SessionId::random().unwrap()))
            .await
            .expect("the call hung past 30 s: no SDK timeout");
    assert!(matches!(outcome, Err(StoreError::Unavailable(_))), "{outcome:?}");
    // Reported, not asserted on (no timed tests): how long the give-up took.
    eprintln!("gave up after {:?} (operation timeout {SDK_OPERATION_TIMEOUT:?})", started.elapsed());
    held.abort();
}

/// Reuse is the one signal of a stolen token: it is logged before the session is
/// revoked, so a revoke that fails (an outage) still leaves it in the log, and the
/// request is a 500, not a quiet refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_is_logged_before_the_revoke_even_when_the_revoke_fails() {
    let logs = capture_logs();
    let rig = Rig::new().await;
    let (spent, id) = rig.session().await;
    assert_eq!(rig.refresh(&spent).await.status(), 200);
    rig.clock.advance(rig.grace_secs);
    rig.store.fail("revoke_session");
    assert_clean_failure(&rig.refresh(&spent).await, "reuse with a failing revoke");
    let (_, lines) = log_lines(&logs);
    let reuse = lines
        .iter()
        .find(|line| line["event"] == "refresh_token_reuse" && line["session_id"] == id.to_string().as_str())
        .expect("no refresh_token_reuse event for the session");
    assert_eq!(reuse["level"], "WARN");
}

/// A DynamoDB client whose endpoint refuses every connection (a closed port).
fn unreachable_dynamodb() -> aws_sdk_dynamodb::Client {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .endpoint_url(format!("http://{closed}"))
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "faults"))
            .build(),
    )
}

/// `DynamoStore::ensure_table` names the call that failed: an unreachable endpoint
/// fails the first one, `DescribeTable`, and nothing is attempted after it.
#[tokio::test]
async fn ensure_table_stops_at_the_first_failed_call() {
    use latchkey::store::{DynamoStore, StoreError};
    match DynamoStore::ensure_table(&unreachable_dynamodb(), "latchkey").await {
        Err(StoreError::Unavailable(message)) => assert!(message.starts_with("DescribeTable"), "{message}"),
        other => panic!("{other:?}"),
    }
}

/// An outage is never mistaken for a failed condition: a revoke that could not be
/// written is an error (not "no such session", which logout answers with 204), a
/// sign-up is not a duplicate, an update not a missing user, a rehash not a lost race,
/// a link spent or a password changed during an outage is not a failed condition (which
/// the account routes answer as a bad link or an ended session).
#[tokio::test]
async fn every_dynamodb_write_reports_an_outage_as_unavailable() {
    use latchkey::onetime::Purpose;
    use latchkey::store::{
        CredentialChange, CredentialStore, DynamoStore, LoginAttemptStore, PasswordChange, SecretRecord, StoreError,
        User, UserStore,
    };
    let store = DynamoStore::new(unreachable_dynamodb(), "latchkey");
    let id = SessionId::random().unwrap();
    let user = User {
        id: "u".into(),
        email: "ada@example.com".into(),
        password_hash: "$argon2id$x".into(),
        role: "member".into(),
        disabled: false,
        password_changed_at: 0,
        session_epoch: 0,
        created_at: 0,
        email_verified: true,
        pending_expires_at: None,
        totp: Default::default(),
    };
    let outage = |what: &str, result: Result<(), StoreError>| {
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{what}: {result:?}");
    };
    outage("create_user", store.create_user(&user).await);
    outage("set_role", store.set_role("ada@example.com", "admin").await);
    outage("set_password", store.set_password("ada@example.com", "$argon2id$y", 1).await);
    outage("end_sessions", store.end_sessions("ada@example.com").await);
    outage("upgrade_password_hash", store.upgrade_password_hash("ada@example.com", "a", "b").await.map(|_| ()));
    outage("revoke_session", store.revoke_session(&id, 1, "logout").await.map(|_| ()));
    outage("rotate_session", store.rotate_session(&id, 0, 1, 60, "member", &Default::default()).await.map(|_| ()));
    outage("get_sessions", store.get_sessions(&[id]).await.map(|_| ()));
    outage("end_other_sessions", store.end_other_sessions("ada@example.com", 0, &id, 1).await.map(|_| ()));
    outage("record_failure", store.record_failure("ada@example.com", 1, 2).await.map(|_| ()));
    outage("bump", store.bump("MAIL#ada@example.com", 1, 2).await.map(|_| ()));
    outage("create_signup", store.create_signup(&user, 1).await);
    let record = SecretRecord {
        purpose: Purpose::Password,
        hash: "h".into(),
        user_id: "u".into(),
        email: "ada@example.com".into(),
        expires_at: 9,
    };
    outage("issue_secret", store.issue_secret(&record).await);
    outage("secret", store.secret(Purpose::Password, "h").await.map(|_| ()));
    let set = CredentialChange::SetPassword { password_hash: "$argon2id$z".into() };
    outage("spend_secret", store.spend_secret(&record, 1, &set).await.map(|_| ()));
    outage("spend_secret verify", store.spend_secret(&record, 1, &CredentialChange::VerifyEmail).await.map(|_| ()));
    let change = PasswordChange {
        email: "ada@example.com".into(),
        current_hash: "a".into(),
        new_hash: "b".into(),
        epoch: 0,
        session_id: id,
        generation: 0,
        now: 1,
        idle_secs: 60,
    };
    outage("change_password_keeping_session", store.change_password_keeping_session(&change).await.map(|_| ()));
}

#[tokio::test]
async fn login_clearing_the_attempt_count_fails_softly() {
    let logs = capture_logs();
    let rig = Rig::new().await;
    let wrong = json!({"email": DEMO_EMAIL, "password": "not the password"});
    assert_eq!(login(&rig.services.login, post("/login", &[], wrong)).await.status(), 401);
    rig.store.fail("clear_failures");
    let response = rig.login().await;
    assert_eq!(response.status(), 200, "the password was right and the session is stored");
    let token = body_json(&response)["refreshToken"].as_str().unwrap().to_owned();
    assert_eq!(rig.refresh(&token).await.status(), 200, "the session it answered with is real");
    let (_, lines) = log_lines(&logs);
    assert!(lines.iter().any(|line| line["event"] == "login_failures_not_cleared"), "the lost clear is logged");
}
