//! The end-to-end test harness: a moto-backed environment (DynamoDB table, KMS
//! keys, a demo user), the fixture keys the sample events in `events/` are made
//! with, and the builders of those events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod events;

#[path = "../../shared/tests/support/mod.rs"]
#[allow(missing_docs)]
pub mod support;

use std::sync::Arc;

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use latchkey::account::Accounts;
use latchkey::authorizer::AuthorizerState;
use latchkey::clock::{Clock, SystemClock};
use latchkey::config::{Config, EdgeConfig};
use latchkey::deploy::{Aws, HttpFunction};
use latchkey::password::{Password, PasswordHasher};
use latchkey::services::{Components, Services};
use latchkey::session::{SessionManager, SessionPolicy};
use latchkey::signing::{KeySet, LocalSigner, Signer};
use latchkey::store::{DynamoStore, Session, SessionStore, User};
use latchkey::token::{AccessClaims, RefreshKey, RefreshToken, SessionId, sign_jwt};

/// The ES256 key every sample access token is signed with. Test-only: it is public.
pub const FIXTURE_SIGNING_KEY: &str = include_str!("../fixtures/signing-key.pem");
/// The refresh-token MAC key of the sample refresh tokens. Test-only.
pub const FIXTURE_REFRESH_KEY: [u8; 32] = *b"latchkey sample events only 2026";
/// The session the sample refresh and logout events name.
pub const FIXTURE_SESSION_ID: &str = "c2Vzc2lvbi1maXh0dXJlMQ";
/// The demo user of the sample login events.
pub const DEMO_EMAIL: &str = "demo@example.com";
/// The demo user's password.
pub const DEMO_PASSWORD: &str = "correct horse battery staple";
/// The browser origin the cookie samples come from.
pub const FIXTURE_ORIGIN: &str = "https://app.example.com";
/// `iat` of the sample access tokens (2026-01-01T00:00:00Z).
pub const FIXTURE_ISSUED_AT: u64 = 1_767_225_600;
/// `exp` of the valid sample access tokens (2100-01-01), so the samples keep working.
pub const FIXTURE_VALID_UNTIL: u64 = 4_102_444_800;

/// The fixture signer.
pub fn fixture_signer() -> LocalSigner {
    LocalSigner::from_pem(FIXTURE_SIGNING_KEY).unwrap()
}

/// The fixture refresh key.
pub fn fixture_refresh_key() -> RefreshKey {
    RefreshKey::from_bytes(&FIXTURE_REFRESH_KEY)
}

/// The generation-0 refresh token of the fixture session.
pub fn fixture_refresh_token() -> String {
    fixture_refresh_key().mint(&RefreshToken { session_id: FIXTURE_SESSION_ID.parse().unwrap(), generation: 0 })
}

/// An access token for the fixture session signed by the fixture key, with the
/// default issuer and audience, issued at 2026-01-01 and expiring at `exp`.
pub async fn fixture_access_token(exp: u64) -> String {
    let defaults = Config::default();
    let claims = AccessClaims {
        iss: defaults.issuer,
        aud: defaults.audience,
        sub: "user-demo".into(),
        email: DEMO_EMAIL.into(),
        role: "member".into(),
        sid: FIXTURE_SESSION_ID.into(),
        jti: "sample-event-token".into(),
        iat: FIXTURE_ISSUED_AT,
        nbf: FIXTURE_ISSUED_AT,
        exp,
    };
    sign_jwt(&fixture_signer(), &claims).await.unwrap()
}

/// A moto-backed environment: a fresh table, a KMS signing key and HMAC key, and
/// the demo user. `None` (skip) only outside CI when moto is not running.
pub struct Env {
    /// The configuration the deployed functions would read.
    pub config: Config,
    /// Clients pointed at moto.
    pub aws: Aws,
    /// The demo user.
    pub demo: User,
}

impl Env {
    /// A new environment with `edge` settings.
    pub async fn new(edge: EdgeConfig) -> Option<Self> {
        support::moto_kms().await?;
        let aws = Aws::from_env().await;
        let table = support::unique_name("e2e");
        DynamoStore::ensure_table(&aws.dynamodb, &table).await.unwrap();
        let config = Config {
            table_name: table,
            kms_key_id: Some(create_kms_key(&aws, KeyUsageType::SignVerify, KeySpec::EccNistP256).await),
            refresh_mac_key_id: Some(create_kms_key(&aws, KeyUsageType::GenerateVerifyMac, KeySpec::Hmac256).await),
            edge,
            ..Config::default()
        };
        let store = Arc::new(DynamoStore::new(aws.dynamodb.clone(), config.table_name.clone()));
        let sessions = SessionManager::new(
            store.clone(),
            store.clone(),
            fixture_refresh_key(),
            SessionPolicy::from_config(&config),
            Arc::new(SystemClock),
        );
        let accounts = Accounts::new(store, sessions, PasswordHasher::new(config.password).unwrap());
        let demo = accounts.create(DEMO_EMAIL, &Password::new(DEMO_PASSWORD).unwrap(), "member").await.unwrap();
        Some(Self { config, aws, demo })
    }

    /// The store of this environment's table.
    pub fn store(&self) -> Arc<DynamoStore> {
        Arc::new(DynamoStore::new(self.aws.dynamodb.clone(), self.config.table_name.clone()))
    }

    /// A state built exactly as the deployed function builds it (KMS on moto).
    pub async fn deployed<F: HttpFunction>(&self) -> F {
        F::deployed(&self.config, &self.aws).await.unwrap()
    }

    /// The deployed authorizer's state.
    pub async fn deployed_authorizer(&self) -> AuthorizerState {
        AuthorizerState::deployed(&self.config, &self.aws).await.unwrap()
    }

    /// Starts the fixture session (the one the sample refresh tokens name) for the demo user.
    pub async fn seed_fixture_session(&self) {
        let now = SystemClock.now();
        let session = Session {
            id: FIXTURE_SESSION_ID.parse::<SessionId>().unwrap(),
            user_id: self.demo.id.clone(),
            email: self.demo.email.clone(),
            generation: 0,
            created_at: now,
            rotated_at: now,
            idle_expires_at: now + self.config.refresh_token_ttl.as_secs(),
            absolute_expires_at: now + self.config.session_max_lifetime.as_secs(),
            revoked_at: None,
            revoke_reason: None,
        };
        self.store().create_session(&session).await.unwrap();
    }

    /// The function states the sample events run against: storage on moto, keys
    /// from the fixtures.
    pub fn fixture_states(&self) -> Services {
        let store = self.store();
        let signer = fixture_signer();
        let components = Components {
            users: store.clone(),
            sessions: store.clone(),
            attempts: store,
            keys: KeySet::new([signer.public_key().clone()]).unwrap(),
            signer: Arc::new(signer),
            refresh_key: fixture_refresh_key(),
            clock: Arc::new(SystemClock),
        };
        Services::assemble(&self.config, components).unwrap()
    }
}

/// The edge settings of the samples: the fixture origin allowed.
pub fn fixture_edge() -> EdgeConfig {
    EdgeConfig { allowed_origins: vec![FIXTURE_ORIGIN.to_owned()], ..EdgeConfig::default() }
}

async fn create_kms_key(aws: &Aws, usage: KeyUsageType, spec: KeySpec) -> String {
    let created = aws.kms.create_key().key_usage(usage).key_spec(spec).send().await.unwrap();
    created.key_metadata().unwrap().key_id().to_owned()
}

/// `docs/openapi.yaml`, parsed.
pub fn openapi() -> serde_norway::Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// Whether `docs/openapi.yaml` documents `status` for `method` on `path`.
pub fn documents_status(method: &str, path: &str, status: u16) -> bool {
    let spec = openapi();
    spec["paths"][path][method.to_lowercase().as_str()]["responses"].get(status.to_string().as_str()).is_some()
}
