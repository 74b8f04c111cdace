//! The functions' states over one set of components, for the places that
//! run them all in one process: `latchkey dev` (embedded components or AWS) and tests.

use std::sync::Arc;

use crate::account::{Accounts, LoginThrottle};
use crate::admin::Admin;
use crate::authorizer::AuthorizerState;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::delivery::{Delivery, TerminalDelivery};
use crate::deploy::{Aws, HttpFunction, StartupError, issuing_signer, session_check, verifier_over};
use crate::http::{AccountState, AdminState, JwksState, LoginState, LogoutState, RefreshState, TokenResponder};
use crate::mfa::Mfa;
use crate::onetime::SecretKey;
use crate::password::PasswordHasher;
use crate::recovery::Recovery;
use crate::session::{SessionManager, SessionPolicy};
use crate::signing::{DelegatedKeyStore, KeySet, LocalSigner, Signer, SigningError};
use crate::store::{CredentialStore, LoginAttemptStore, MemoryStore, SessionLookup, SessionStore, UserStore};
use crate::token::{AccessTokenIssuer, RefreshKey};

/// What the functions are built from.
pub struct Components {
    /// Where users live.
    pub users: Arc<dyn UserStore>,
    /// Where sessions live.
    pub sessions: Arc<dyn SessionStore>,
    /// Where failed logins are counted.
    pub attempts: Arc<dyn LoginAttemptStore>,
    /// What the authorizer's session check reads.
    pub lookup: Arc<dyn SessionLookup>,
    /// Sign-ups, one-time secrets and password changes.
    pub credentials: Arc<dyn CredentialStore>,
    /// How messages leave.
    pub delivery: Arc<dyn Delivery>,
    /// The long-term signing key (signs access tokens in `kms` mode, vouches for
    /// the period keys in `delegated` mode).
    pub signer: Arc<dyn Signer>,
    /// Where delegated period keys are shared (used in `delegated` mode).
    pub signing_keys: Arc<dyn DelegatedKeyStore>,
    /// The keys verifiers accept and the JWKS publishes.
    pub keys: KeySet,
    /// The refresh-token MAC key.
    pub refresh_key: RefreshKey,
    /// The time source.
    pub clock: Arc<dyn Clock>,
}

/// Every function's state.
#[derive(Debug, Clone)]
pub struct Services {
    /// `POST /login`.
    pub login: LoginState,
    /// `POST /refresh-token`.
    pub refresh: RefreshState,
    /// `POST /logout`.
    pub logout: LogoutState,
    /// `GET /.well-known/jwks.json`.
    pub jwks: JwksState,
    /// The authorizer.
    pub authorizer: AuthorizerState,
    /// The account routes.
    pub account: AccountState,
    /// The admin API.
    pub admin: AdminState,
}

impl Services {
    /// Builds every state over `components` with the settings of `config`.
    pub fn assemble(config: &Config, components: Components) -> Result<Self, StartupError> {
        let Components {
            users,
            sessions,
            attempts,
            lookup,
            credentials,
            delivery,
            signer,
            signing_keys,
            keys,
            refresh_key,
            clock,
        } = components;
        let signer = issuing_signer(config, signer, signing_keys.clone(), &refresh_key)?;
        let secret_key = SecretKey::derive(&refresh_key);
        let manager = SessionManager::new(
            sessions,
            users.clone(),
            refresh_key,
            SessionPolicy::from_config(config),
            clock.clone(),
        );
        let tokens = TokenResponder::new(AccessTokenIssuer::new(signer, config), config.edge.clone());
        let verifier = verifier_over(config, keys.clone(), signing_keys);
        let edge = config.edge.clone();
        let accounts = Accounts::new(users, manager.clone(), PasswordHasher::new(config.password)?)
            .with_admin_role(config.edge.admin_role.clone())
            .with_throttle(LoginThrottle::from_config(attempts.clone(), config))
            .with_credentials(credentials.clone());
        let mfa = Mfa::over(accounts.clone(), credentials.clone(), attempts.clone(), config.mfa.clone())?;
        let recovery =
            Recovery::new(accounts.clone(), credentials, attempts, secret_key, delivery, config.accounts.clone());
        Ok(Self {
            admin: AdminState {
                admin: Admin::new(recovery.clone()),
                mfa: mfa.clone(),
                verifier: verifier.clone(),
                edge: edge.clone(),
            },
            account: AccountState {
                recovery,
                tokens: tokens.clone(),
                verifier: verifier.clone(),
                mfa: mfa.clone(),
                edge: edge.clone(),
            },
            login: LoginState { accounts, mfa, tokens: tokens.clone(), edge: edge.clone() },
            refresh: RefreshState { sessions: manager.clone(), tokens, edge: edge.clone() },
            logout: LogoutState { sessions: manager, verifier: verifier.clone(), edge: edge.clone() },
            jwks: JwksState {
                keys,
                delegated: verifier.delegated().cloned(),
                edge: edge.clone(),
                clock: clock.clone(),
            },
            authorizer: AuthorizerState { verifier, edge, clock, session_check: session_check(config, || lookup) },
        })
    }

    /// Everything in process: the memory store, `signer` (a fresh key when `None`),
    /// a random refresh key, and messages printed on the terminal. Nothing survives
    /// the process.
    pub fn embedded(config: &Config, signer: Option<LocalSigner>) -> Result<Self, StartupError> {
        Self::embedded_with(config, signer, Arc::new(TerminalDelivery))
    }

    /// [`Services::embedded`] with messages going to `delivery`.
    pub fn embedded_with(
        config: &Config,
        signer: Option<LocalSigner>,
        delivery: Arc<dyn Delivery>,
    ) -> Result<Self, StartupError> {
        let signer = match signer {
            Some(signer) => signer,
            None => LocalSigner::generate()?,
        };
        let store = Arc::new(MemoryStore::new());
        let keys = KeySet::new([signer.public_key().clone()]).map_err(SigningError::from)?;
        let refresh_key =
            RefreshKey::generate().map_err(|error| SigningError::LocalKey(format!("refresh key: {error}")))?;
        Self::assemble(
            config,
            Components {
                users: store.clone(),
                sessions: store.clone(),
                attempts: store.clone(),
                lookup: store.clone(),
                credentials: store.clone(),
                signing_keys: store,
                delivery,
                signer: Arc::new(signer),
                keys,
                refresh_key,
                clock: Arc::new(SystemClock),
            },
        )
    }

    /// Each state built as its deployed function builds it (DynamoDB and KMS).
    pub async fn deployed(config: &Config, aws: &Aws) -> Result<Self, StartupError> {
        Ok(Self {
            login: LoginState::deployed(config, aws).await?,
            refresh: RefreshState::deployed(config, aws).await?,
            logout: LogoutState::deployed(config, aws).await?,
            jwks: JwksState::deployed(config, aws).await?,
            authorizer: AuthorizerState::deployed(config, aws).await?,
            account: AccountState::deployed(config, aws).await?,
            admin: AdminState::deployed(config, aws).await?,
        })
    }

    /// The account operations (for seeding users).
    pub fn accounts(&self) -> &Accounts {
        &self.login.accounts
    }
}
