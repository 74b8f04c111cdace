//! AWS round trips made visible: a [`Timeline`] on which a latency-adding store
//! ([`crate::counting::CountingStore::with_latency`]) and signer ([`SlowSigner`])
//! record each call, so a test or benchmark can count the calls a request makes
//! and how many of them had to wait for another (the depth).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use latchkey::signing::{PublicKey, Signer, SigningError};

/// One recorded call: its name and the ticks at which it began and ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The operation (a store method's name, or `kms_sign`).
    pub name: &'static str,
    /// Tick when the call was sent.
    pub start: u64,
    /// Tick when its answer came back.
    pub end: u64,
}

/// The calls made since the last [`Timeline::take`], in the order they began.
#[derive(Debug, Default)]
pub struct Timeline {
    tick: AtomicU64,
    calls: Mutex<Vec<Call>>,
}

impl Timeline {
    /// Records one call named `name` that takes `latency` (a sleep, so calls made
    /// concurrently overlap and calls made one after another do not).
    pub async fn call(&self, name: &'static str, latency: Duration) {
        let start = self.tick.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(latency).await;
        let end = self.tick.fetch_add(1, Ordering::SeqCst);
        self.calls.lock().unwrap().push(Call { name, start, end });
    }

    /// The calls recorded so far, sorted by start, and forgets them.
    pub fn take(&self) -> Trace {
        let mut calls = std::mem::take(&mut *self.calls.lock().unwrap());
        calls.sort_by_key(|call| call.start);
        Trace(calls)
    }
}

/// The calls of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace(pub Vec<Call>);

impl Trace {
    /// How many calls.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// The longest chain of calls each sent after the previous one answered: the
    /// round trips a request waits for one after another.
    pub fn depth(&self) -> usize {
        self.chains().into_iter().max().unwrap_or(0)
    }

    /// The calls as stages: each stage lists the calls of one depth, `a+b` when
    /// they ran concurrently, stages joined by ` → `.
    pub fn stages(&self) -> String {
        let mut stages: Vec<Vec<&'static str>> = vec![Vec::new(); self.depth()];
        for (call, depth) in self.0.iter().zip(self.chains()) {
            stages[depth - 1].push(call.name);
        }
        stages.iter().map(|stage| stage.join("+")).collect::<Vec<_>>().join(" → ")
    }

    /// For each call, the longest chain ending with it (1 for a call that waited
    /// for none). Sorted by start, a call can follow only calls that ended before it began.
    fn chains(&self) -> Vec<usize> {
        let mut chains: Vec<usize> = Vec::with_capacity(self.0.len());
        for (index, call) in self.0.iter().enumerate() {
            let before = self.0[..index]
                .iter()
                .zip(&chains)
                .filter(|(earlier, _)| earlier.end < call.start)
                .map(|(_, chain)| *chain)
                .max()
                .unwrap_or(0);
            chains.push(before + 1);
        }
        chains
    }
}

/// Signs with `inner` after `latency` (a stand-in for a KMS `Sign` round trip),
/// recording the call on the timeline as `kms_sign`.
pub struct SlowSigner<S> {
    inner: S,
    timeline: std::sync::Arc<Timeline>,
    latency: Duration,
}

impl<S> SlowSigner<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, timeline: std::sync::Arc<Timeline>, latency: Duration) -> Self {
        Self { inner, timeline, latency }
    }
}

#[async_trait]
impl<S: Signer> Signer for SlowSigner<S> {
    fn public_key(&self) -> &PublicKey {
        self.inner.public_key()
    }

    async fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SigningError> {
        self.timeline.call("kms_sign", self.latency).await;
        self.inner.sign(signing_input).await
    }
}

/// The functions over the memory store and a local key, every store call and
/// signature taking a fixed latency and recorded on one timeline: what a request
/// waits for in AWS, without AWS.
/// The administrator [`SlowServices`] makes beside the demo user (same password).
pub const ADMIN_EMAIL: &str = "admin@example.com";

/// The user with a second factor [`SlowServices`] makes (the demo password).
pub const MFA_EMAIL: &str = "mfa@example.com";

pub struct SlowServices {
    /// The functions' states.
    pub services: latchkey::services::Services,
    /// Where their calls are recorded.
    pub timeline: std::sync::Arc<Timeline>,
    /// The messages the account routes sent (delivery itself is not timed).
    pub outbox: latchkey::delivery::Outbox,
    /// The functions' clock: the time when made, moved on only by [`SlowServices::mfa_login`].
    pub clock: std::sync::Arc<latchkey::clock::ManualClock>,
    /// The base32 TOTP secret of [`MFA_EMAIL`].
    pub mfa_secret: String,
}

impl SlowServices {
    /// Every call takes `latency`; the demo user exists; the timeline is empty; KMS signing.
    pub async fn new(latency: Duration) -> Self {
        Self::with_signing(latency, latency, latchkey::config::SigningConfig::default()).await
    }

    /// Store calls take `latency`, KMS `Sign` takes `sign_latency`, tokens are signed
    /// as `signing` says. With delegated signing the period's key is made before the
    /// timeline is emptied (it is once per period, not per request).
    pub async fn with_signing(
        latency: Duration,
        sign_latency: Duration,
        signing: latchkey::config::SigningConfig,
    ) -> Self {
        use std::sync::Arc;
        let timeline = Arc::new(Timeline::default());
        let memory = Arc::new(latchkey::store::MemoryStore::new());
        let store = Arc::new(crate::counting::CountingStore::new(memory).with_latency(timeline.clone(), latency));
        let local = latchkey::signing::LocalSigner::generate().unwrap();
        let signer = Arc::new(SlowSigner::new(local, timeline.clone(), sign_latency));
        let outbox = latchkey::delivery::Outbox::new();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let clock = Arc::new(latchkey::clock::ManualClock::new(now));
        let components = latchkey::services::Components {
            delivery: Arc::new(outbox.clone()),
            ..crate::components(store, signer, clock.clone())
        };
        // No response floor (the routes' own calls, not the wait that hides them), and
        // room for every run's reset mail.
        let accounts = latchkey::config::AccountConfig {
            response_floor: Duration::ZERO,
            mail_max_per_email: 100,
            link_base_url: Some("https://app.example.com/account".to_owned()),
            ..latchkey::config::AccountConfig::default()
        };
        let config = latchkey::Config { accounts, signing, ..latchkey::Config::default() };
        let services = latchkey::services::Services::assemble(&config, components).unwrap();
        let password = latchkey::password::Password::new(crate::DEMO_PASSWORD).unwrap();
        services.accounts().create(crate::DEMO_EMAIL, &password, "member").await.unwrap();
        services.accounts().create(ADMIN_EMAIL, &password, "Admin").await.unwrap();
        let user = services.accounts().create(MFA_EMAIL, &password, "member").await.unwrap();
        let mfa = &services.account.mfa;
        let mfa_secret = mfa.begin(&user).await.unwrap().secret;
        use latchkey::Clock as _;
        let code = crate::support::totp_code(&mfa_secret, clock.now());
        mfa.confirm(&user.id, &user.email, &password, &code).await.unwrap();
        if config.signing.is_delegated() {
            // The period's key made and learnt, and the next one made, before timing.
            let subject = latchkey::token::Subject {
                user_id: user.id.clone(),
                email: user.email.clone(),
                role: user.role.clone(),
                session_id: "c2Vzc2lvbi1maXh0dXJlMQ".to_owned(),
                amr: vec!["pwd".to_owned()],
            };
            let issuer = services.login.tokens.issuer();
            let (now, period) = (clock.now(), config.signing.key_period.as_secs());
            let token = issuer.issue(&subject, now).await.unwrap();
            services.authorizer.verifier.verify_live(&token.token, now).await.unwrap();
            issuer.issue(&subject, (now - now % period + period / 2).max(now)).await.unwrap();
        }
        timeline.take();
        Self { services, timeline, outbox, clock, mfa_secret }
    }

    /// The password step of a login of [`MFA_EMAIL`], 30 s (one code) after the last:
    /// the `mfaRequired` answer and its calls.
    pub async fn mfa_password_step(&self) -> (serde_json::Value, Trace) {
        self.clock.advance(30);
        let credentials = serde_json::json!({"email": MFA_EMAIL, "password": crate::DEMO_PASSWORD});
        let request = crate::events::post_json("/login", &[], credentials);
        self.answered(latchkey::http::login(&self.services.login, request).await)
    }

    /// The second step with `challenge`'s `mfaToken` and the current code: the token
    /// answer and its calls.
    pub async fn mfa_code_step(&self, challenge: &serde_json::Value) -> (serde_json::Value, Trace) {
        use latchkey::Clock as _;
        let code = crate::support::totp_code(&self.mfa_secret, self.clock.now());
        let body = serde_json::json!({"mfaToken": challenge["mfaToken"], "code": code});
        let request = crate::events::post_json("/login/mfa", &[], body);
        self.answered(latchkey::http::login(&self.services.login, request).await)
    }

    /// `POST /password/forgot` for the demo user.
    pub async fn forgot(&self) -> (serde_json::Value, Trace) {
        let body = serde_json::json!({"email": crate::DEMO_EMAIL});
        let request = crate::events::post_json("/password/forgot", &[], body);
        self.answered(latchkey::http::account(&self.services.account, request).await)
    }

    /// `POST /password/reset` with the newest link sent to the demo user, setting the
    /// demo password again (so a run can repeat).
    pub async fn reset(&self) -> (serde_json::Value, Trace) {
        let message = self.outbox.last_to(crate::DEMO_EMAIL).expect("a reset link");
        let link = message.link.expect("a link");
        let token = latchkey::delivery::secret_of(&link).expect("a token");
        let body = serde_json::json!({"token": token, "newPassword": crate::DEMO_PASSWORD});
        let request = crate::events::post_json("/password/reset", &[], body);
        self.answered(latchkey::http::account(&self.services.account, request).await)
    }

    /// `POST /password` with `access_token`, from the demo password to itself.
    pub async fn change_password(&self, access_token: &str) -> (serde_json::Value, Trace) {
        let body = serde_json::json!({"currentPassword": crate::DEMO_PASSWORD, "newPassword": crate::DEMO_PASSWORD});
        let bearer = format!("Bearer {access_token}");
        let request = crate::events::post_json("/password", &[("authorization", &bearer)], body);
        self.answered(latchkey::http::account(&self.services.account, request).await)
    }

    /// `GET /sessions` with `access_token`.
    pub async fn sessions(&self, access_token: &str) -> (serde_json::Value, Trace) {
        let bearer = format!("Bearer {access_token}");
        let request = crate::events::bare("GET", "/sessions", &[("authorization", &bearer)]);
        self.answered(latchkey::http::account(&self.services.account, request).await)
    }

    /// `DELETE /sessions/{session_id}` with `access_token`.
    pub async fn end_session(&self, access_token: &str, session_id: &str) -> (serde_json::Value, Trace) {
        let bearer = format!("Bearer {access_token}");
        let request = crate::events::bare("DELETE", &format!("/sessions/{session_id}"), &[("authorization", &bearer)]);
        self.answered(latchkey::http::account(&self.services.account, request).await)
    }

    /// `POST /login` as the administrator ([`ADMIN_EMAIL`], the demo password).
    pub async fn admin_login(&self) -> (serde_json::Value, Trace) {
        let credentials = serde_json::json!({"email": ADMIN_EMAIL, "password": crate::DEMO_PASSWORD});
        let response =
            latchkey::http::login(&self.services.login, crate::events::post_json("/login", &[], credentials));
        self.answered(response.await)
    }

    /// `GET /admin/users?limit=100` with an administrator's `access_token`.
    pub async fn list_users(&self, access_token: &str) -> (serde_json::Value, Trace) {
        let bearer = format!("Bearer {access_token}");
        let event = crate::events::http_api("GET", "/admin/users", &[("authorization", &bearer)], &[], None);
        let mut event = event;
        event["rawQueryString"] = serde_json::json!("limit=100");
        event["queryStringParameters"] = serde_json::json!({"limit": "100"});
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        self.answered(latchkey::http::admin(&self.services.admin, request).await)
    }

    /// `POST /login` as the demo user: the response body and the calls it made.
    pub async fn login(&self) -> (serde_json::Value, Trace) {
        let credentials = serde_json::json!({"email": crate::DEMO_EMAIL, "password": crate::DEMO_PASSWORD});
        let response =
            latchkey::http::login(&self.services.login, crate::events::post_json("/login", &[], credentials));
        self.answered(response.await)
    }

    /// `POST /refresh-token` with `refresh_token` in the body.
    pub async fn refresh(&self, refresh_token: &str) -> (serde_json::Value, Trace) {
        let body = serde_json::json!({"refreshToken": refresh_token});
        let request = crate::events::post_json("/refresh-token", &[], body);
        self.answered(latchkey::http::refresh(&self.services.refresh, request).await)
    }

    /// `POST /logout` with `refresh_token` in the body.
    pub async fn logout(&self, refresh_token: &str) -> (serde_json::Value, Trace) {
        let body = serde_json::json!({"refreshToken": refresh_token});
        let request = crate::events::post_json("/logout", &[], body);
        self.answered(latchkey::http::logout(&self.services.logout, request).await)
    }

    fn answered(&self, response: lambda_http::Response<lambda_http::Body>) -> (serde_json::Value, Trace) {
        assert!(response.status().is_success(), "{}: {:?}", response.status(), response.body());
        (crate::events::response_json(&response), self.timeline.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &'static str, start: u64, end: u64) -> Call {
        Call { name, start, end }
    }

    #[test]
    fn depth_counts_calls_that_waited_for_each_other() {
        assert_eq!(Trace(vec![]).depth(), 0);
        let serial = Trace(vec![call("a", 0, 1), call("b", 2, 3), call("c", 4, 5)]);
        assert_eq!((serial.count(), serial.depth()), (3, 3));
        assert_eq!(serial.stages(), "a → b → c");
        let overlapped = Trace(vec![call("a", 0, 2), call("b", 1, 3), call("c", 4, 5)]);
        assert_eq!((overlapped.count(), overlapped.depth()), (3, 2));
        assert_eq!(overlapped.stages(), "a+b → c");
    }
}
