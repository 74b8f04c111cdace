//! Wiring for the deployed functions: AWS clients from the environment, and each
//! function's state built from [`Config`] once at cold start, with exactly the
//! AWS calls (and so the IAM permissions) that function needs.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, Request, Response};

use crate::account::{Accounts, LoginThrottle};
use crate::admin::Admin;
use crate::authorizer::{AuthorizerState, authorize};
use crate::clock::SystemClock;
use crate::config::{Config, ConfigError, DeliveryKind};
use crate::delivery::{Delivery, NoDelivery, SesDelivery, SnsDelivery};
use crate::http::{
    AccountState, AdminState, JwksState, LoginState, LogoutState, RefreshState, TokenResponder, account, admin, jwks,
    login, logout, refresh,
};
use crate::mfa::Mfa;
use crate::onetime::SecretKey;
use crate::password::{PasswordError, PasswordHasher};
use crate::recovery::Recovery;
use crate::revocation::SessionCheck;
use crate::session::{SessionManager, SessionPolicy};
use crate::signing::{
    DelegatedKeyStore, DelegatedKeys, DelegatedSigner, KeySet, KmsSigner, Signer, SigningError, derive_refresh_key,
};
use crate::store::{DynamoStore, SessionLookup};
use crate::token::{AccessTokenIssuer, RefreshKey, Verifier};

/// Why a function could not start. Start-up stops; nothing is served half-built.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A KMS key could not be read or used.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// The password hasher could not be built.
    #[error(transparent)]
    Password(#[from] PasswordError),
}

/// The `kid` (RFC 7638 thumbprint) of the ES256 key committed for tests and the
/// sample events (`tests/fixtures/signing-key.pem`). Its private half is public, so a
/// function refuses to trust it unless `LATCHKEY_ALLOW_FIXTURE_KEYS=true`.
pub const FIXTURE_SIGNING_KID: &str = "wQ-F1n5I4pXq64g-zTnz70lImDo_WnfGxlD5mvWQRWQ";

/// The user id of the sample events' demo user (`sub` of their access tokens).
pub const SAMPLE_USER_ID: &str = "user-demo";

/// The refresh-token MAC key committed for the sample events: public likewise.
pub const FIXTURE_REFRESH_MAC_KEY: [u8; 32] = *b"latchkey sample events only 2026";

/// Refuses a committed test key (`kid` or MAC key) unless the configuration
/// explicitly allows them: anyone could mint tokens with it.
fn refuse_fixture_key(config: &Config, is_fixture: bool, variable: &'static str) -> Result<(), StartupError> {
    if is_fixture && !config.allow_fixture_keys {
        return Err(crate::config::problem(
            variable,
            "holds the repository's public test key; use your own key (LATCHKEY_ALLOW_FIXTURE_KEYS=true only for local tests)",
        )
        .into());
    }
    Ok(())
}

/// Limit of one AWS call, retries included. The SDK sets none of its own, so a
/// call could hang until the function timed out. With it, a refresh's rotation
/// write (its last call) is answered, or has failed, within 3 s of being sent,
/// well inside the default 10 s grace window in which the client's retry of the
/// same token gets the successor.
pub const SDK_OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
/// Limit of one attempt of an AWS call (the SDK retries within the operation limit).
pub const SDK_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Limit of opening a connection to an AWS endpoint.
pub const SDK_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The AWS configuration, loaded once from the environment (region, credentials
/// and, for tests and emulators, `AWS_ENDPOINT_URL`), and its clients, each built
/// the first time it is asked for: a function builds only the clients it uses.
#[derive(Debug, Clone)]
pub struct Aws {
    shared: aws_config::SdkConfig,
    dynamodb: std::sync::OnceLock<aws_sdk_dynamodb::Client>,
    kms: std::sync::OnceLock<aws_sdk_kms::Client>,
    ses: std::sync::OnceLock<aws_sdk_sesv2::Client>,
    sns: std::sync::OnceLock<aws_sdk_sns::Client>,
}

impl Aws {
    /// Clients configured from the process environment, with the `SDK_*_TIMEOUT` limits.
    pub async fn from_env() -> Self {
        Self::load(aws_config::defaults(aws_config::BehaviorVersion::latest())).await
    }

    /// Clients from `loader` (tests point it at a stand-in endpoint), with the
    /// `SDK_*_TIMEOUT` limits.
    pub async fn load(loader: aws_config::ConfigLoader) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(SDK_CONNECT_TIMEOUT)
            .operation_attempt_timeout(SDK_ATTEMPT_TIMEOUT)
            .operation_timeout(SDK_OPERATION_TIMEOUT)
            .build();
        let shared = loader.timeout_config(timeouts).load().await;
        Self {
            shared,
            dynamodb: std::sync::OnceLock::new(),
            kms: std::sync::OnceLock::new(),
            ses: std::sync::OnceLock::new(),
            sns: std::sync::OnceLock::new(),
        }
    }

    /// The DynamoDB client (built on first use).
    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        self.dynamodb.get_or_init(|| aws_sdk_dynamodb::Client::new(&self.shared))
    }

    /// The KMS client (built on first use).
    pub fn kms(&self) -> &aws_sdk_kms::Client {
        self.kms.get_or_init(|| aws_sdk_kms::Client::new(&self.shared))
    }

    /// The SES (API v2) client (built on first use).
    pub fn ses(&self) -> &aws_sdk_sesv2::Client {
        self.ses.get_or_init(|| aws_sdk_sesv2::Client::new(&self.shared))
    }

    /// The SNS client (built on first use).
    pub fn sns(&self) -> &aws_sdk_sns::Client {
        self.sns.get_or_init(|| aws_sdk_sns::Client::new(&self.shared))
    }
}

/// The delivery `LATCHKEY_DELIVERY` names (no client is built for `none`). The
/// terminal is never one of them: configuration refuses it, since a function's
/// output is its log.
pub fn delivery(config: &Config, aws: &Aws) -> Result<Arc<dyn Delivery>, StartupError> {
    let accounts = &config.accounts;
    Ok(match accounts.delivery {
        DeliveryKind::None => Arc::new(NoDelivery),
        DeliveryKind::Ses => {
            let from = accounts.mail_from.clone().ok_or_else(|| {
                crate::config::problem("LATCHKEY_MAIL_FROM", "must be set with LATCHKEY_DELIVERY=ses")
            })?;
            Arc::new(SesDelivery::new(aws.ses().clone(), from, accounts.ses_template_prefix.clone()))
        }
        DeliveryKind::Sns => {
            let topic = accounts.sns_topic_arn.clone().ok_or_else(|| {
                crate::config::problem("LATCHKEY_SNS_TOPIC_ARN", "must be set with LATCHKEY_DELIVERY=sns")
            })?;
            Arc::new(SnsDelivery::new(aws.sns().clone(), topic))
        }
    })
}

/// Sessions on DynamoDB with the refresh key derived from KMS (`GenerateMac`), or
/// given directly by `LATCHKEY_REFRESH_MAC_KEY` (local runs and sample events).
pub async fn session_manager(config: &Config, aws: &Aws) -> Result<SessionManager, StartupError> {
    Ok(sessions_with(config, aws, refresh_key(config, aws).await?))
}

/// The refresh-token MAC key: derived by KMS `GenerateMac`, or `LATCHKEY_REFRESH_MAC_KEY`.
async fn refresh_key(config: &Config, aws: &Aws) -> Result<RefreshKey, StartupError> {
    Ok(match &config.refresh_mac_key {
        Some(key) => {
            refuse_fixture_key(config, *key.bytes() == FIXTURE_REFRESH_MAC_KEY, "LATCHKEY_REFRESH_MAC_KEY")?;
            RefreshKey::from_bytes(key.bytes())
        }
        None => derive_refresh_key(aws.kms(), config.require_refresh_mac_key_id()?).await?,
    })
}

fn sessions_with(config: &Config, aws: &Aws, key: RefreshKey) -> SessionManager {
    let store = dynamo_store(config, aws);
    SessionManager::new(store.clone(), store, key, SessionPolicy::from_config(config), Arc::new(SystemClock))
}

fn dynamo_store(config: &Config, aws: &Aws) -> Arc<DynamoStore> {
    Arc::new(DynamoStore::new(aws.dynamodb().clone(), config.table_name.clone()))
}

/// The KMS signing key (`GetPublicKey` once), never the fixture key unless allowed.
async fn kms_signer(config: &Config, aws: &Aws) -> Result<KmsSigner, StartupError> {
    let signer = KmsSigner::new(aws.kms().clone(), config.require_kms_key_id()?).await?;
    refuse_fixture_key(config, signer.public_key().kid == FIXTURE_SIGNING_KID, "LATCHKEY_KMS_KEY_ID")?;
    Ok(signer)
}

/// Access tokens signed by the KMS key (`GetPublicKey` once), in KMS mode; see
/// [`signing`] for the functions that also keep sessions.
pub async fn token_responder(config: &Config, aws: &Aws) -> Result<TokenResponder, StartupError> {
    if config.signing.is_delegated() {
        return Ok(signing(config, aws).await?.1);
    }
    let issuer = AccessTokenIssuer::new(Arc::new(kms_signer(config, aws).await?), config);
    Ok(TokenResponder::new(issuer, config.edge.clone()))
}

/// Sessions and access tokens, for the functions that sign: the refresh key and
/// the KMS key's public half fetched together. With `LATCHKEY_SIGNING=delegated`
/// the tokens are signed by the period's key (sealed under a key derived from the
/// refresh key), which the KMS key vouches for once per period.
pub async fn signing(config: &Config, aws: &Aws) -> Result<(SessionManager, TokenResponder), StartupError> {
    let (key, root) = tokio::try_join!(refresh_key(config, aws), kms_signer(config, aws))?;
    let signer = issuing_signer(config, Arc::new(root), dynamo_store(config, aws), &key)?;
    let tokens = TokenResponder::new(AccessTokenIssuer::new(signer, config), config.edge.clone());
    Ok((sessions_with(config, aws, key), tokens))
}

/// What signs access tokens in `config`'s mode: `root` itself (`kms`), or a
/// [`DelegatedSigner`] over it sharing its keys through `store` (`delegated`).
pub fn issuing_signer(
    config: &Config,
    root: Arc<dyn Signer>,
    store: Arc<dyn DelegatedKeyStore>,
    refresh_key: &RefreshKey,
) -> Result<Arc<dyn Signer>, SigningError> {
    Ok(match config.signing.is_delegated() {
        true => Arc::new(DelegatedSigner::new(root, store, refresh_key, config)?),
        false => root,
    })
}

/// A verifier on `keys`; with delegated signing it also learns the period keys
/// `keys` vouch for from `store`.
pub fn verifier_over(config: &Config, keys: KeySet, store: Arc<dyn DelegatedKeyStore>) -> Verifier {
    let verifier = Verifier::new(keys.clone(), config);
    match config.signing.is_delegated() {
        true => verifier.with_delegated(Arc::new(DelegatedKeys::new(keys, store, config))),
        false => verifier,
    }
}

/// A verifier on the configured JWKS, or on the KMS public keys (and the
/// delegated keys they vouch for, with delegated signing).
pub async fn verifier(config: &Config, aws: &Aws) -> Result<Verifier, StartupError> {
    Ok(verifier_over(config, key_set(config, aws).await?, dynamo_store(config, aws)))
}

/// The verification keys (JWKS, or KMS: the KMS client is built only then), never
/// the fixture key unless allowed.
pub async fn key_set(config: &Config, aws: &Aws) -> Result<KeySet, StartupError> {
    if let Some(jwks) = &config.jwks {
        return jwks_key_set(config, jwks);
    }
    let keys = KeySet::from_config(config, aws.kms()).await?;
    refuse_fixture_key(config, keys.get(FIXTURE_SIGNING_KID).is_some(), "LATCHKEY_KMS_VERIFY_KEY_IDS")?;
    Ok(keys)
}

/// The keys of `LATCHKEY_JWKS` (no AWS call), never the fixture key unless allowed.
fn jwks_key_set(config: &Config, jwks: &str) -> Result<KeySet, StartupError> {
    let keys = KeySet::from_jwks_json(jwks).map_err(SigningError::from)?;
    refuse_fixture_key(config, keys.get(FIXTURE_SIGNING_KID).is_some(), "LATCHKEY_JWKS")?;
    Ok(keys)
}

impl HttpFunction for LoginState {
    /// The login function's state: DynamoDB, KMS signing, the refresh key, argon2id.
    /// The two cold-start KMS calls (`GenerateMac`, `GetPublicKey`) run together.
    async fn deployed(config: &Config, aws: &Aws) -> Result<Self, StartupError> {
        let (sessions, tokens) = signing(config, aws).await?;
        let users = Arc::new(DynamoStore::new(aws.dynamodb().clone(), config.table_name.clone()));
        let accounts = Accounts::new(users.clone(), sessions, PasswordHasher::new(config.password)?)
            .with_admin_role(config.edge.admin_role.clone())
            .with_throttle(LoginThrottle::from_config(users.clone(), config));
        let mfa = Mfa::over(accounts.clone(), users.clone(), users, config.mfa.clone())?;
        Ok(Self { accounts, mfa, tokens, edge: config.edge.clone() })
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        login(self, request).await
    }
}

impl HttpFunction for RefreshState {
    /// The refresh function's state: DynamoDB, KMS signing, the refresh key; the
    /// two cold-start KMS calls run together.
    async fn deployed(config: &Config, aws: &Aws) -> Result<Self, StartupError> {
        let (sessions, tokens) = signing(config, aws).await?;
        Ok(Self { sessions, tokens, edge: config.edge.clone() })
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        refresh(self, request).await
    }
}

impl HttpFunction for LogoutState {
    /// The logout function's state: DynamoDB, the refresh key, verification keys;
    /// the cold-start KMS calls run together.
    async fn deployed(config: &Config, aws: &Aws) -> Result<Self, StartupError> {
        let (sessions, verifier) = tokio::try_join!(session_manager(config, aws), verifier(config, aws))?;
        Ok(Self { sessions, verifier, edge: config.edge.clone() })
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        logout(self, request).await
    }
}

impl HttpFunction for AccountState {
    /// The account function's state: DynamoDB, KMS signing (a password change
    /// answers with fresh tokens), the refresh key (and the one-time secret key
    /// derived from it), verification keys, argon2id and the delivery. The
    /// cold-start KMS calls run together.
    async fn deployed(config: &Config, aws: &Aws) -> Result<Self, StartupError> {
        let ((sessions, tokens), verifier) = tokio::try_join!(signing(config, aws), verifier(config, aws))?;
        let store = Arc::new(DynamoStore::new(aws.dynamodb().clone(), config.table_name.clone()));
        let key = SecretKey::derive(sessions.key());
        let accounts = Accounts::new(store.clone(), sessions, PasswordHasher::new(config.password)?)
            .with_admin_role(config.edge.admin_role.clone())
            .with_throttle(LoginThrottle::from_config(store.clone(), config))
            .with_credentials(store.clone());
        let mfa = Mfa::over(accounts.clone(), store.clone(), store.clone(), config.mfa.clone())?;
        let recovery =
            Recovery::new(accounts, store.clone(), store, key, delivery(config, aws)?, config.accounts.clone());
        Ok(Self { recovery, tokens, verifier, mfa, edge: config.edge.clone() })
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        account(self, request).await
    }
}

impl HttpFunction for AdminState {
    /// The admin function's state: DynamoDB, the refresh key (and the cursor and
    /// one-time secret keys derived from it), verification keys, argon2id (users
    /// created with a password) and the delivery (invitations). No signing key: it
    /// issues no token. The cold-start KMS calls run together.
    async fn deployed(config: &Config, aws: &Aws) -> Result<Self, StartupError> {
        let (sessions, verifier) = tokio::try_join!(session_manager(config, aws), verifier(config, aws))?;
        let store = Arc::new(DynamoStore::new(aws.dynamodb().clone(), config.table_name.clone()));
        let key = SecretKey::derive(sessions.key());
        let accounts = Accounts::new(store.clone(), sessions, PasswordHasher::new(config.password)?)
            .with_admin_role(config.edge.admin_role.clone());
        let mfa = Mfa::over(accounts.clone(), store.clone(), store.clone(), config.mfa.clone())?;
        let recovery =
            Recovery::new(accounts, store.clone(), store, key, delivery(config, aws)?, config.accounts.clone());
        Ok(Self { admin: Admin::new(recovery), mfa, verifier, edge: config.edge.clone() })
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        admin(self, request).await
    }
}

impl HttpFunction for JwksState {
    /// The JWKS function's state: the published keys.
    async fn deployed(config: &Config, aws: &Aws) -> Result<Self, StartupError> {
        let verifier = verifier(config, aws).await?;
        Ok(Self {
            keys: verifier.keys().clone(),
            delegated: verifier.delegated().cloned(),
            edge: config.edge.clone(),
            clock: Arc::new(SystemClock),
        })
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        jwks(self, request).await
    }
}

impl AuthorizerState {
    /// The authorizer's state as its `main` builds it: with `LATCHKEY_JWKS` and the
    /// session check off it needs no AWS client, so it builds none (no AWS
    /// configuration is loaded at all); otherwise [`AuthorizerState::deployed`].
    pub async fn from_env(config: &Config) -> Result<Self, StartupError> {
        match &config.jwks {
            Some(jwks) if config.edge.session_check_secs == 0 && !config.signing.is_delegated() => {
                Ok(Self::on_system_clock(config, Verifier::new(jwks_key_set(config, jwks)?, config), None))
            }
            _ => Self::deployed(config, &Aws::from_env().await).await,
        }
    }

    /// The authorizer's state: verification keys (no AWS call at all with `LATCHKEY_JWKS`).
    pub async fn deployed(config: &Config, aws: &Aws) -> Result<Self, StartupError> {
        let check =
            session_check(config, || Arc::new(DynamoStore::new(aws.dynamodb().clone(), config.table_name.clone())));
        Ok(Self::on_system_clock(config, verifier(config, aws).await?, check))
    }

    fn on_system_clock(config: &Config, verifier: Verifier, session_check: Option<Arc<SessionCheck>>) -> Self {
        Self { verifier, edge: config.edge.clone(), clock: Arc::new(SystemClock), session_check }
    }
}

/// The authorizer's session check over the store `lookup` makes (called only when
/// the check is on), unless the configuration turns it off.
pub fn session_check(config: &Config, lookup: impl FnOnce() -> Arc<dyn SessionLookup>) -> Option<Arc<SessionCheck>> {
    let edge = &config.edge;
    (edge.session_check_secs > 0)
        .then(|| Arc::new(SessionCheck::new(lookup(), edge.session_check_secs, edge.session_check_failure)))
}

/// One HTTP Lambda function: its state, built at cold start, and its handler.
pub trait HttpFunction: Sized + Send + Sync {
    /// Builds the state from configuration, making the cold-start AWS calls.
    fn deployed(config: &Config, aws: &Aws) -> impl Future<Output = Result<Self, StartupError>> + Send;

    /// Answers one request.
    fn handle(&self, request: Request) -> impl Future<Output = Response<Body>> + Send;
}

/// The whole `main` of an HTTP function: logging, configuration, state, then
/// `lambda_http::run`. A start-up failure is logged (naming the bad variable) and
/// ends the process before any request is served.
pub async fn run_http<F: HttpFunction>() -> Result<(), lambda_http::Error> {
    crate::logging::init();
    tracing::info!(event = "cold_start");
    let state = started(async {
        let config = Config::from_env()?;
        F::deployed(&config, &Aws::from_env().await).await
    })
    .await?;
    lambda_http::run(lambda_http::service_fn(|request| async { Ok::<_, Infallible>(state.handle(request).await) }))
        .await
}

/// The whole `main` of the authorizer function.
pub async fn run_authorizer() -> Result<(), lambda_http::Error> {
    crate::logging::init();
    tracing::info!(event = "cold_start");
    let state = started(async { AuthorizerState::from_env(&Config::from_env()?).await }).await?;
    lambda_runtime::run(lambda_runtime::service_fn(|event: lambda_runtime::LambdaEvent<serde_json::Value>| {
        authorize(&state, event.payload)
    }))
    .await
}

async fn started<T>(building: impl Future<Output = Result<T, StartupError>>) -> Result<T, StartupError> {
    building.await.inspect_err(|error| tracing::error!(event = "startup_failed", error = %error))
}
