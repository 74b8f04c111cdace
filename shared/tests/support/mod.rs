//! Test support: clients for the moto server that `scripts/test` starts, and the
//! `Backend` fixture and `contract!` macro that run one suite against both stores.
#![allow(dead_code, unused_macros, clippy::panic)]

/// Runs each named `async fn(Backend)` as two tests: `memory::name` and `dynamodb::name`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::memory()).await;
                }
            )*
        }

        mod dynamodb {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(backend) = super::Backend::dynamodb().await {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
}

use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_config::BehaviorVersion;

use latchkey::Clock;
use latchkey::account::Accounts;
use latchkey::clock::ManualClock;
use latchkey::config::AccountConfig;
use latchkey::delivery::Outbox;
use latchkey::onetime::SecretKey;
use latchkey::password::{PasswordHasher, PasswordParams};
use latchkey::recovery::Recovery;
use latchkey::session::{SessionManager, SessionPolicy};
use latchkey::store::{
    CredentialStore, DynamoStore, LoginAttemptStore, MemoryStore, SessionStore, User, UserStore, normalize_email,
};
use latchkey::token::{RefreshKey, RefreshToken, SessionId};

/// A KMS client pointed at moto, or `None` (test skipped with a message) when
/// `AWS_ENDPOINT_URL` is unset outside CI. Under `CI=true` a missing moto is a
/// failure, never a silent skip.
pub async fn moto_kms() -> Option<aws_sdk_kms::Client> {
    moto_config().await.map(|config| aws_sdk_kms::Client::new(&config))
}

/// Whether this is a CI run, where a test that lacks what it needs fails instead of
/// skipping: `CI` set to anything but empty, `false` or `0` (any case).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| !matches!(ci.trim().to_ascii_lowercase().as_str(), "" | "false" | "0"))
}

/// Says a test skipped: on stderr, and as a line in the file `LATCHKEY_TEST_SKIPS`
/// names (scripts/test sets it and counts the lines in its summary, since cargo
/// shows a skipped test as `ok`).
pub fn skipped(why: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    eprintln!("SKIPPED {test}: {why}");
    if let Some(path) = std::env::var_os("LATCHKEY_TEST_SKIPS") {
        use std::io::Write as _;
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
        if let Ok(mut file) = file {
            let _ = writeln!(file, "{test}: {why}");
        }
    }
}

/// The SDK configuration for moto (for clients of other services); same rules as [`moto_kms`].
pub async fn moto_config() -> Option<aws_config::SdkConfig> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        if in_ci() {
            panic!("AWS_ENDPOINT_URL is unset: this test needs moto, and CI=true forbids skipping (run scripts/test)");
        }
        skipped("AWS_ENDPOINT_URL is unset; run scripts/test to start moto");
        return None;
    }
    Some(aws_config::defaults(BehaviorVersion::latest()).load().await)
}

/// A new KMS key on moto; callers take its id or ARN from the metadata.
pub async fn create_kms_key(
    kms: &aws_sdk_kms::Client,
    usage: aws_sdk_kms::types::KeyUsageType,
    spec: aws_sdk_kms::types::KeySpec,
) -> aws_sdk_kms::types::KeyMetadata {
    let created = kms.create_key().key_usage(usage).key_spec(spec).send().await.unwrap();
    created.key_metadata().unwrap().clone()
}

/// A DynamoDB client pointed at moto; same rules as [`moto_kms`].
pub async fn moto_dynamodb() -> Option<aws_sdk_dynamodb::Client> {
    moto_config().await.map(|config| aws_sdk_dynamodb::Client::new(&config))
}

/// A table name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub const START: u64 = 1_800_000_000;
pub const DAY: u64 = 86_400;
pub const POLICY: SessionPolicy = SessionPolicy { idle_secs: 30 * DAY, absolute_secs: 90 * DAY, grace_secs: 10 };

/// Both stores behind one fixture, a manual clock and a fresh refresh key.
pub struct Backend {
    pub users: Arc<dyn UserStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub attempts: Arc<dyn LoginAttemptStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub signing_keys: Arc<dyn latchkey::signing::DelegatedKeyStore>,
    pub clock: Arc<ManualClock>,
    pub key: RefreshKey,
    /// The DynamoDB table, to scan (`None` on the memory store).
    pub table: Option<(aws_sdk_dynamodb::Client, String)>,
}

impl Backend {
    fn over<S>(store: Arc<S>) -> Self
    where
        S: UserStore
            + SessionStore
            + LoginAttemptStore
            + CredentialStore
            + latchkey::signing::DelegatedKeyStore
            + 'static,
    {
        Self {
            users: store.clone(),
            sessions: store.clone(),
            attempts: store.clone(),
            credentials: store.clone(),
            signing_keys: store,
            clock: Arc::new(ManualClock::new(START)),
            key: RefreshKey::generate().unwrap(),
            table: None,
        }
    }

    pub fn memory() -> Self {
        Self::over(Arc::new(MemoryStore::new()))
    }

    pub async fn dynamodb() -> Option<Self> {
        let client = moto_dynamodb().await?;
        let table = unique_name("contract");
        assert!(DynamoStore::ensure_table(&client, &table).await.unwrap());
        let backend = Self::over(Arc::new(DynamoStore::new(client.clone(), table.clone())));
        Some(Self { table: Some((client, table)), ..backend })
    }

    pub fn manager(&self, policy: SessionPolicy) -> SessionManager {
        SessionManager::new(self.sessions.clone(), self.users.clone(), self.key.clone(), policy, self.clock.clone())
    }

    pub async fn user(&self, email: &str) -> User {
        let user = User {
            id: format!("id-{email}"),
            email: normalize_email(email).unwrap(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
                .into(),
            role: "member".into(),
            disabled: false,
            password_changed_at: 0,
            session_epoch: 0,
            created_at: self.clock.now(),
            email_verified: true,
            pending_expires_at: None,
            totp: Default::default(),
        };
        self.users.create_user(&user).await.unwrap();
        user
    }

    /// Account operations over this backend, hashing with `params`.
    pub fn accounts(&self, params: PasswordParams) -> Accounts {
        Accounts::new(self.users.clone(), self.manager(POLICY), PasswordHasher::new(params).unwrap())
            .with_credentials(self.credentials.clone())
    }

    /// The account flows over this backend, delivering into `outbox`, with `settings`.
    pub fn recovery(&self, outbox: &Outbox, settings: AccountConfig) -> Recovery {
        let settings = AccountConfig { link_base_url: Some("https://app.example.com/account".to_owned()), ..settings };
        Recovery::new(
            self.accounts(PasswordParams::default()),
            self.credentials.clone(),
            self.attempts.clone(),
            SecretKey::derive(&self.key),
            std::sync::Arc::new(outbox.clone()),
            settings,
        )
    }

    /// Every attribute value of every item in the DynamoDB table, as text (empty on
    /// the memory store, which has no dump).
    pub async fn dump(&self) -> Vec<String> {
        let Some((client, table)) = &self.table else { return Vec::new() };
        let items = client.scan().table_name(table).send().await.unwrap();
        items.items().iter().flat_map(|item| item.values().map(|value| format!("{value:?}"))).collect()
    }

    pub fn token(&self, session_id: SessionId, generation: u64) -> String {
        self.key.mint(&RefreshToken { session_id, generation })
    }
}

/// Installs a global JSON log subscriber (events flattened, as the functions log)
/// writing into the returned buffer. Call once per test binary, from its only
/// logging test: tracing's per-callsite cache makes scoped subscribers racy
/// across parallel tests.
pub fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    // A process has one global subscriber: the first call installs it, every later
    // call (another test in the same binary) shares its buffer.
    static LOGS: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let logs = logs.clone();
            move || Capture(logs.clone())
        };
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt().json().flatten_event(true).with_writer(writer).finish(),
        )
        .unwrap();
        logs
    })
    .clone()
}

/// The captured log as text and as parsed JSON lines.
pub fn log_lines(logs: &Mutex<Vec<u8>>) -> (String, Vec<serde_json::Value>) {
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let lines = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    (text, lines)
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[path = "totp.rs"]
mod totp;
#[allow(unused_imports)]
pub use totp::totp_code;

/// Who a test's access tokens are for: a member with a password-only session.
pub fn subject() -> latchkey::token::Subject {
    latchkey::token::Subject {
        user_id: "user-1".into(),
        email: "ada@example.com".into(),
        role: "member".into(),
        session_id: "c2Vzc2lvbi1maXh0dXJlMQ".into(),
        amr: vec!["pwd".into()],
    }
}
