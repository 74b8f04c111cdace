//! The second factor: TOTP enrolment with recovery codes, the second step of a
//! login, removal and an administrator's reset, each one conditional write through
//! the [`CredentialStore`].
//!
//! - TOTP is RFC 6238 with the parameters every authenticator app accepts (SHA-1,
//!   6 digits, 30 s steps, ±1 step of drift), computed by the `totp-rs` crate; the
//!   QR code by the `qrcode` crate.
//! - The secret is sealed with AES-256-GCM under a key derived from the refresh-token
//!   key (itself derived by KMS `GenerateMac` at cold start, never stored), with the
//!   user id as associated data: a table dump holds ciphertext that opens for no one
//!   without KMS, and a sealed secret copied to another user does not open.
//! - Recovery codes (10 × 50 random bits) are stored only as keyed hashes.
//! - Replay: a code's time step is recorded with a condition that it is later than
//!   the last one accepted; a recovery code is removed on condition that it is still
//!   there. Of concurrent uses, exactly one succeeds.
//! - Guessing: every code presented for a user is counted before it is checked
//!   (`MFA#<user id>` in fixed windows); past the limit even the right code is refused.

use std::sync::Arc;

use aws_lc_rs::hmac;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::account::{AccountError, Accounts, Authentication};
use crate::config::MfaConfig;
use crate::encoding::{b64url, random_bytes};
use crate::onetime::{Purpose, SecretKey};
use crate::password::Password;
use crate::signing::{SealingKey, SigningError};
use crate::store::{CredentialChange, CredentialStore, LoginAttemptStore, SecretRecord, StoreError, TotpChange, User};
use crate::token::{AMR_MFA, AMR_OTP, AMR_PASSWORD, RefreshKey};

/// How many recovery codes an enrolment gets.
pub const RECOVERY_CODES: usize = 10;

/// Bytes of a TOTP secret: 160 bits, RFC 4226's recommendation.
pub const SECRET_BYTES: usize = 20;

/// Digits of a code.
pub const DIGITS: usize = 6;

/// Seconds of a time step.
pub const STEP_SECS: u64 = 30;

/// The alphabet of recovery codes (RFC 4648 base32, lower case): 5 bits a character.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Characters of a recovery code, without its `-`: 50 bits.
const RECOVERY_CHARS: usize = 10;

/// The label whose MAC under the refresh key is the sealing key; changing it changes the key.
const SEAL_LABEL: &[u8] = b"latchkey totp secret seal v1";
/// The label of the recovery-code hash key.
const RECOVERY_LABEL: &[u8] = b"latchkey recovery code hash v1";

/// The keys of the second factor: the TOTP secrets' sealing key and the recovery
/// codes' hash key, both derived from the refresh-token key (no AWS call).
#[derive(Clone)]
pub struct TotpKey {
    seal: SealingKey,
    recovery: hmac::Key,
}

impl std::fmt::Debug for TotpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpKey([redacted])")
    }
}

impl TotpKey {
    /// The keys derived from `refresh`.
    pub fn derive(refresh: &RefreshKey) -> Result<Self, SigningError> {
        let seal = SealingKey::derive(refresh, SEAL_LABEL)
            .ok_or_else(|| SigningError::LocalKey("totp sealing key".to_owned()))?;
        Ok(Self { seal, recovery: hmac::Key::new(hmac::HMAC_SHA256, &refresh.derive(RECOVERY_LABEL)) })
    }

    /// `secret` sealed for `user_id`: base64url of a random 96-bit nonce, the
    /// ciphertext and the tag.
    pub fn seal(&self, user_id: &str, secret: &[u8]) -> Result<String, StoreError> {
        self.seal.seal(&aad(user_id), secret).ok_or_else(|| StoreError::Unavailable("seal".to_owned()))
    }

    /// The secret `sealed` holds, if it was sealed by this key for `user_id`.
    pub fn open(&self, user_id: &str, sealed: &str) -> Option<Vec<u8>> {
        self.seal.open(&aad(user_id), sealed)
    }

    /// The keyed hash a recovery code of `user_id` is stored as; `None` when
    /// `presented` cannot be a recovery code (no store call is made for it).
    pub fn recovery_hash(&self, user_id: &str, presented: &str) -> Option<String> {
        let code: String =
            presented.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_lowercase()).collect();
        let valid = code.len() == RECOVERY_CHARS && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b));
        valid.then(|| {
            let mut context = hmac::Context::with_key(&self.recovery);
            context.update(user_id.as_bytes());
            context.update(&[0]);
            context.update(code.as_bytes());
            b64url(context.sign())
        })
    }
}

fn aad(user_id: &str) -> Vec<u8> {
    [b"totp\0".as_slice(), user_id.as_bytes()].concat()
}

/// Fresh recovery codes (`xxxxx-xxxxx`, 50 bits each from the OS CSPRNG).
fn recovery_codes() -> Result<Vec<String>, StoreError> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = random_bytes::<RECOVERY_CHARS>().map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let chars: String = bytes.iter().map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)])).collect();
            Ok(format!("{}-{}", &chars[..5], &chars[5..]))
        })
        .collect()
}

/// The RFC 6238 generator for `secret`, labelled for `account` at `issuer`.
pub fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, StoreError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(Secret::new(secret.into()))
        .with_issuer(Some(issuer))
        .with_account_name(account.replace(':', ""))
        .build()
        .map_err(|error| StoreError::Unavailable(format!("totp: {error}")))
}

/// What a user needs to add the second factor to an authenticator app. Shown once.
#[derive(Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// The secret, base32 without padding (for typing it in).
    pub secret: String,
    /// The `otpauth://totp/...` URI.
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment([redacted])")
    }
}

/// The second factor a user presents.
#[derive(Clone, PartialEq, Eq)]
pub enum Proof {
    /// A code from the authenticator app.
    Code(String),
    /// One of the recovery codes.
    RecoveryCode(String),
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Code(_) => "Code([redacted])",
            Self::RecoveryCode(_) => "RecoveryCode([redacted])",
        })
    }
}

/// What a right password of a user with (or due for) a second factor gets instead of tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The `mfaToken`: single-use, for this user and this login, valid 5 minutes.
    pub token: String,
    /// Whether the user must enrol first (`POST /login/mfa/setup`).
    pub enrol: bool,
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenge").field("token", &"[redacted]").field("enrol", &self.enrol).finish()
    }
}

/// A login's second step passed: the user as read and how they signed in.
#[derive(Clone)]
pub struct Passed {
    /// The user.
    pub user: User,
    /// The session's authentication methods: `pwd otp` or `pwd mfa` (a recovery code).
    pub amr: &'static [&'static str],
    /// The recovery codes of an enrolment the step confirmed (shown once).
    pub recovery_codes: Option<Vec<String>>,
    /// The guessing window the attempt was counted in, for [`Mfa::settle`].
    window: u64,
}

impl std::fmt::Debug for Passed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passed").field("user", &self.user).field("amr", &self.amr).finish_non_exhaustive()
    }
}

/// Why a second-factor operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// `LATCHKEY_MFA=off`.
    #[error("the second factor is off")]
    Off,
    /// The `mfaToken` is malformed, unknown, expired, used or superseded.
    #[error("invalid mfa token")]
    InvalidToken,
    /// The code is wrong, replayed or from outside the drift window, or the
    /// recovery code is not (or no longer) one of the user's.
    #[error("invalid code")]
    InvalidCode,
    /// The password is wrong (removal needs it).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many codes for this user in the window.
    #[error("too many codes")]
    Throttled {
        /// Seconds until the window ends.
        retry_after_secs: u64,
    },
    /// A second factor is enabled already (remove it first).
    #[error("a second factor is enabled already")]
    AlreadyEnabled,
    /// No enrolment is waiting for confirmation.
    #[error("no enrolment to confirm")]
    NotPending,
    /// No second factor is enabled.
    #[error("no second factor is enabled")]
    NotEnabled,
    /// The user changed meanwhile: nothing was written.
    #[error("the user changed meanwhile")]
    Conflict,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The password check failed for another reason than a wrong password.
    #[error(transparent)]
    Account(#[from] AccountError),
}

/// The second factor's rules over the account store.
#[derive(Clone)]
pub struct Mfa {
    accounts: Accounts,
    credentials: Arc<dyn CredentialStore>,
    attempts: Arc<dyn LoginAttemptStore>,
    secrets: SecretKey,
    key: TotpKey,
    config: MfaConfig,
}

impl std::fmt::Debug for Mfa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mfa").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Mfa {
    /// The second factor over `accounts` (users, password checks, clock), with its
    /// writes through `credentials` and codes counted in `attempts`; `mfaToken`s are
    /// hashed and secrets sealed under keys derived from the refresh key of
    /// `accounts`' sessions.
    pub fn over(
        accounts: Accounts,
        credentials: Arc<dyn CredentialStore>,
        attempts: Arc<dyn LoginAttemptStore>,
        config: MfaConfig,
    ) -> Result<Self, SigningError> {
        let refresh = accounts.sessions().key();
        let (secrets, key) = (SecretKey::derive(refresh), TotpKey::derive(refresh)?);
        Ok(Self { accounts, credentials, attempts, secrets, key, config })
    }

    /// The settings.
    pub fn config(&self) -> &MfaConfig {
        &self.config
    }

    fn now(&self) -> u64 {
        self.accounts.sessions().clock().now()
    }

    fn on(&self) -> Result<(), MfaError> {
        match self.config.mode {
            crate::config::MfaMode::Off => Err(MfaError::Off),
            _ => Ok(()),
        }
    }

    /// After a right password: `None` when `user` signs in with the password alone;
    /// otherwise a stored single-use `mfaToken` (one write), which supersedes any
    /// earlier one of the user.
    pub async fn challenge(&self, user: &User) -> Result<Option<Challenge>, MfaError> {
        if self.on().is_err() {
            return Ok(None);
        }
        let enrol = !user.totp.enabled() && self.config.required_for(&user.role);
        if !user.totp.enabled() && !enrol {
            return Ok(None);
        }
        let issued = self.secrets.issue(Purpose::Mfa).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let record = SecretRecord {
            purpose: Purpose::Mfa,
            hash: issued.hash.clone(),
            user_id: user.id.clone(),
            email: user.email.clone(),
            expires_at: self.now().saturating_add(self.config.token_ttl.as_secs()),
        };
        // Two password steps of one user at once (a double submit) write the same user
        // item in two transactions; DynamoDB may cancel one for the conflict. Once more.
        if let Err(StoreError::NotFound) = self.credentials.issue_secret(&record).await {
            self.credentials.issue_secret(&record).await?;
        }
        tracing::info!(event = "mfa_challenged", user_id = %user.id, enrol);
        Ok(Some(Challenge { token: issued.secret, enrol }))
    }

    /// Starts an enrolment of `user` (signed in, or holding an enrolment-only
    /// `mfaToken`): a new secret, sealed and stored as pending; a pending one is
    /// replaced. Refused while a second factor is enabled.
    pub async fn begin(&self, user: &User) -> Result<Enrolment, MfaError> {
        self.on()?;
        if user.totp.enabled() {
            return Err(MfaError::AlreadyEnabled);
        }
        let secret = random_bytes::<SECRET_BYTES>().map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let pending = self.key.seal(&user.id, &secret)?;
        if !self.credentials.update_totp(&user.email, &user.id, &TotpChange::Begin { pending }).await? {
            return Err(MfaError::AlreadyEnabled);
        }
        let generator = totp(&secret, &self.config.issuer, &user.email)?;
        let otpauth_uri = generator.to_url().map_err(|error| StoreError::Unavailable(format!("totp: {error}")))?;
        let qr_svg = qrcode::QrCode::new(otpauth_uri.as_bytes())
            .map_err(|error| StoreError::Unavailable(format!("qr: {error}")))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        tracing::info!(event = "mfa_enrolment_started", user_id = %user.id);
        Ok(Enrolment { secret: generator.secret().to_base32(), otpauth_uri, qr_svg })
    }

    /// Confirms the signed-in user's pending enrolment with the password (checked as
    /// a login is, behind its limit: an access token alone cannot put an attacker's
    /// authenticator on the account) and a code from the app: the second factor is
    /// enabled and the recovery codes returned (shown once).
    pub async fn confirm(
        &self,
        user_id: &str,
        email: &str,
        password: &Password,
        code: &str,
    ) -> Result<Vec<String>, MfaError> {
        self.on()?;
        let user = self.proven_user(user_id, email, password).await?;
        let codes = self
            .counted(&user, async {
                let (change, codes) = self.judge_enrolment(&user, &Proof::Code(code.to_owned()))?;
                if !self.credentials.update_totp(&user.email, &user.id, &change).await? {
                    return Err(MfaError::Conflict);
                }
                Ok(codes)
            })
            .await?;
        tracing::info!(event = "mfa_enabled", user_id = %user.id);
        Ok(codes)
    }

    /// Enrolment material for the holder of an enrolment-only `mfaToken` (a user who
    /// must enrol and has not): [`Mfa::begin`] for the token's user.
    pub async fn setup(&self, mfa_token: &str) -> Result<Enrolment, MfaError> {
        self.on()?;
        let record = self.live_token(mfa_token).await?;
        let user = self.token_user(&record).await?;
        if user.totp.enabled() || !self.config.required_for(&user.role) {
            return Err(MfaError::AlreadyEnabled);
        }
        self.begin(&user).await
    }

    /// The second step of a login: the `mfaToken` and a code or a recovery code. The
    /// code's step is recorded (or the recovery code spent, or a due enrolment
    /// confirmed) and the token spent in one transaction. Every attempt is counted
    /// for the user before the check.
    pub async fn complete(&self, mfa_token: &str, proof: &Proof) -> Result<Passed, MfaError> {
        self.on()?;
        let record = self.live_token(mfa_token).await?;
        let (window, user) = tokio::join!(self.count(&record.user_id), self.token_user(&record));
        let (window, user) = (window?, user?);
        let passed = async {
            let (change, amr, recovery_codes) = if user.totp.enabled() {
                let (change, amr) = self.judge(&user, proof)?;
                (change, amr, None)
            } else if self.config.required_for(&user.role) {
                let (change, codes) = self.judge_enrolment(&user, proof)?;
                (change, [AMR_PASSWORD, AMR_OTP].as_slice(), Some(codes))
            } else {
                return Err(MfaError::InvalidToken);
            };
            let now = self.now();
            // The code was right (judged above): a failed condition means the token was
            // spent by a concurrent step, or superseded by a later password step.
            if !self.credentials.spend_secret(&record, now, &CredentialChange::Totp(change)).await? {
                return Err(MfaError::InvalidToken);
            }
            Ok((amr, recovery_codes))
        };
        let (amr, recovery_codes) = passed.await.inspect_err(|error| {
            tracing::info!(event = "mfa_failed", user_id = %user.id, reason = reason(error));
        })?;
        let method = if amr.contains(&AMR_OTP) { "totp" } else { "recovery_code" };
        let left = user.totp.recovery.len().saturating_sub(usize::from(method == "recovery_code"));
        tracing::info!(event = "mfa_passed", user_id = %user.id, method, recovery_codes_left = left);
        if recovery_codes.is_some() {
            tracing::info!(event = "mfa_enabled", user_id = %user.id);
        }
        Ok(Passed { user, amr, recovery_codes, window })
    }

    /// After [`Mfa::complete`]: forgets the user's count of codes in the window (best
    /// effort), so the login function runs it beside the session's start.
    pub async fn settle(&self, passed: &Passed) {
        self.forget(&passed.user.id, passed.window).await;
    }

    /// Removes the signed-in user's second factor: the password (checked as a login
    /// is, behind its limit) and a current code or a recovery code.
    pub async fn remove(&self, user_id: &str, email: &str, password: &Password, proof: &Proof) -> Result<(), MfaError> {
        self.on()?;
        let user = self.proven_user(user_id, email, password).await?;
        let Some(secret) = user.totp.secret.clone() else { return Err(MfaError::NotEnabled) };
        self.counted(&user, async {
            self.judge(&user, proof)?;
            let removal = TotpChange::Remove { secret: Some(secret) };
            if !self.credentials.update_totp(&user.email, &user.id, &removal).await? {
                return Err(MfaError::Conflict);
            }
            Ok(())
        })
        .await?;
        tracing::info!(event = "mfa_removed", user_id = %user.id, by = "user");
        Ok(())
    }

    /// An administrator's (or operator's) reset: the user's second factor is removed
    /// whatever it is; they sign in with the password alone (or enrol again, if
    /// their role must). `Ok(false)` when there was none.
    pub async fn reset(&self, user: &User) -> Result<bool, MfaError> {
        if !user.totp.enabled() && user.totp.pending.is_none() {
            return Ok(false);
        }
        if !self.credentials.update_totp(&user.email, &user.id, &TotpChange::Remove { secret: None }).await? {
            return Err(MfaError::Conflict);
        }
        tracing::info!(event = "mfa_removed", user_id = %user.id, by = "admin");
        Ok(true)
    }

    /// The stored record of a presented `mfaToken`, if it is live.
    async fn live_token(&self, presented: &str) -> Result<SecretRecord, MfaError> {
        let hash = self.secrets.hash(Purpose::Mfa, presented).ok_or(MfaError::InvalidToken)?;
        match self.credentials.secret(Purpose::Mfa, &hash).await? {
            Some(record) if record.expires_at > self.now() => Ok(record),
            _ => {
                tracing::info!(event = "mfa_failed", reason = "invalid_token");
                Err(MfaError::InvalidToken)
            }
        }
    }

    /// The enabled user a token was issued to, if the password it was issued for is
    /// still theirs (a password changed or reset since ends the pending login).
    async fn token_user(&self, record: &SecretRecord) -> Result<User, MfaError> {
        let issued_at = record.expires_at.saturating_sub(self.config.token_ttl.as_secs());
        match self.accounts.users().get_user_by_email(&record.email).await? {
            Some(user) if user.id == record.user_id && !user.disabled && user.password_changed_at <= issued_at => {
                Ok(user)
            }
            _ => Err(MfaError::InvalidToken),
        }
    }

    /// The signed-in user `user_id`, proven again by the password (a login's check,
    /// behind the failed-login limit).
    async fn proven_user(&self, user_id: &str, email: &str, password: &Password) -> Result<User, MfaError> {
        match self.accounts.login(email, password).await? {
            Authentication::Success(user) if user.id == user_id => Ok(user),
            Authentication::Throttled { retry_after_secs } => Err(MfaError::Throttled { retry_after_secs }),
            _ => Err(MfaError::InvalidCredentials),
        }
    }

    /// Runs `check` for `user` behind the guessing limit: [`Mfa::count`] first, and
    /// on success [`Mfa::forget`].
    async fn counted<T>(&self, user: &User, check: impl Future<Output = Result<T, MfaError>>) -> Result<T, MfaError> {
        let window = self.count(&user.id).await?;
        let outcome = check.await?;
        self.forget(&user.id, window).await;
        Ok(outcome)
    }

    /// Counts one code for the user (one atomic add) before it is checked; past the
    /// limit, [`MfaError::Throttled`]. The window's number.
    async fn count(&self, user_id: &str) -> Result<u64, MfaError> {
        let window_secs = self.config.window.as_secs().max(1);
        let now = self.now();
        let window = now / window_secs;
        let window_end = (window + 1) * window_secs;
        let attempts = self.attempts.bump(&counter(user_id), window, window_end).await?;
        if attempts > self.config.max_failures {
            tracing::warn!(event = "mfa_throttled", user_id = %user_id, attempts);
            return Err(MfaError::Throttled { retry_after_secs: window_end.saturating_sub(now) });
        }
        Ok(window)
    }

    /// Forgets the user's count in `window` after a right code (best effort: a failure
    /// is logged, and the success stands).
    async fn forget(&self, user_id: &str, window: u64) {
        if let Err(error) = self.attempts.forget(&counter(user_id), window).await {
            tracing::warn!(event = "mfa_count_not_cleared", user_id = %user_id, %error);
        }
    }

    /// The write a proof against `user`'s enabled second factor makes, and the
    /// session's methods; [`MfaError::InvalidCode`] when it is wrong or replayed.
    fn judge(&self, user: &User, proof: &Proof) -> Result<(TotpChange, &'static [&'static str]), MfaError> {
        match proof {
            Proof::Code(code) => {
                let sealed = user.totp.secret.as_deref().ok_or(MfaError::NotEnabled)?;
                let step = self.check_code(user, sealed, code)?;
                if step <= user.totp.last_step {
                    return Err(MfaError::InvalidCode);
                }
                Ok((TotpChange::Step { step }, &[AMR_PASSWORD, AMR_OTP]))
            }
            Proof::RecoveryCode(code) => {
                let hash = self.key.recovery_hash(&user.id, code).ok_or(MfaError::InvalidCode)?;
                if !user.totp.recovery.contains(&hash) {
                    return Err(MfaError::InvalidCode);
                }
                Ok((TotpChange::Recovery { hash }, &[AMR_PASSWORD, AMR_MFA]))
            }
        }
    }

    /// The write confirming `user`'s pending enrolment with `proof` (a code), and the
    /// recovery codes it stores the hashes of.
    fn judge_enrolment(&self, user: &User, proof: &Proof) -> Result<(TotpChange, Vec<String>), MfaError> {
        if user.totp.enabled() {
            return Err(MfaError::AlreadyEnabled);
        }
        let pending = user.totp.pending.clone().ok_or(MfaError::NotPending)?;
        let Proof::Code(code) = proof else { return Err(MfaError::InvalidCode) };
        let step = self.check_code(user, &pending, code)?;
        let codes = recovery_codes()?;
        let recovery = codes.iter().filter_map(|code| self.key.recovery_hash(&user.id, code)).collect();
        Ok((TotpChange::Confirm { pending, step, recovery, now: self.now() }, codes))
    }

    /// The time step of `code` under the sealed secret (±1 step of drift).
    /// A secret that does not open (the refresh-MAC key was replaced since it was
    /// sealed, or the item was altered) fails closed: no code is accepted, an error
    /// is logged, and an administrator's reset lets the user enrol again.
    fn check_code(&self, user: &User, sealed: &str, code: &str) -> Result<u64, MfaError> {
        let Some(secret) = self.key.open(&user.id, sealed) else {
            tracing::error!(event = "mfa_secret_unreadable", user_id = %user.id);
            return Err(MfaError::InvalidCode);
        };
        let generator = totp(&secret, &self.config.issuer, &user.email)?;
        let code = code.trim();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MfaError::InvalidCode);
        }
        generator.check(code, self.now()).ok_or(MfaError::InvalidCode)
    }
}

/// The name of a user's counter of codes.
fn counter(user_id: &str) -> String {
    format!("MFA#{user_id}")
}

/// A stable name for why a second step failed, for logs and metrics.
pub fn reason(error: &MfaError) -> &'static str {
    match error {
        MfaError::Off => "off",
        MfaError::InvalidToken => "invalid_token",
        MfaError::InvalidCode => "invalid_code",
        MfaError::InvalidCredentials => "invalid_credentials",
        MfaError::Throttled { .. } => "throttled",
        MfaError::AlreadyEnabled => "already_enabled",
        MfaError::NotPending => "not_pending",
        MfaError::NotEnabled => "not_enabled",
        MfaError::Conflict => "conflict",
        MfaError::Store(_) | MfaError::Account(_) => "server_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits there; the crate computes any length).
    #[test]
    fn the_totp_crate_meets_the_rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        let generator = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(8)
            .with_step_duration(30)
            .with_secret(Secret::new(secret.as_slice().into()))
            .build()
            .unwrap();
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(generator.generate(time).to_string(), code, "T = {time}");
        }
        // Six digits, as Latchkey uses: the last six of the same values.
        let six = totp(secret, "Latchkey", "ada@example.com").unwrap();
        assert_eq!(six.generate(59).to_string(), "287082");
        assert_eq!(six.check("287082", 59 + 30), Some(1), "one step of drift");
        assert_eq!(six.check("287082", 59 + 60), None, "two steps is too far");
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_and_key() {
        let refresh = RefreshKey::generate().unwrap();
        let key = TotpKey::derive(&refresh).unwrap();
        let sealed = key.seal("user-1", b"0123456789abcdefghij").unwrap();
        assert!(!sealed.contains("0123456789"));
        assert_eq!(key.open("user-1", &sealed).as_deref(), Some(b"0123456789abcdefghij".as_slice()));
        assert_eq!(key.open("user-2", &sealed), None, "bound to the user id");
        let other = TotpKey::derive(&RefreshKey::generate().unwrap()).unwrap();
        assert_eq!(other.open("user-1", &sealed), None, "another deployment's key");
        assert_ne!(key.seal("user-1", b"0123456789abcdefghij").unwrap(), sealed, "a fresh nonce each time");
        for junk in ["", "AAAA", &sealed[..sealed.len() - 2]] {
            assert_eq!(key.open("user-1", junk), None);
        }
    }

    #[test]
    fn recovery_codes_are_random_and_hash_however_they_are_typed() {
        let key = TotpKey::derive(&RefreshKey::generate().unwrap()).unwrap();
        let codes = recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(codes.iter().collect::<std::collections::BTreeSet<_>>().len(), RECOVERY_CODES);
        let code = &codes[0];
        let hash = key.recovery_hash("u", code).unwrap();
        assert_eq!(key.recovery_hash("u", &code.to_uppercase().replace('-', " ")).as_deref(), Some(hash.as_str()));
        assert_ne!(key.recovery_hash("v", code).as_deref(), Some(hash.as_str()), "bound to the user");
        for bad in ["", "abcde-fghi", "abcde-fghij1", "abcde-fgh1j", "00000-00000"] {
            assert_eq!(key.recovery_hash("u", bad), None, "{bad}");
        }
    }

    #[test]
    fn the_qr_code_carries_the_otpauth_uri() {
        let generator = totp(&[7; SECRET_BYTES], "Acme", "ada@example.com").unwrap();
        let uri = generator.to_url().unwrap();
        assert!(uri.starts_with("otpauth://totp/Acme:ada%40example.com?secret="), "{uri}");
        assert!(uri.contains("issuer=Acme"), "{uri}");
        let code = qrcode::QrCode::new(uri.as_bytes()).unwrap();
        let width = code.width();
        let colors = code.to_colors();
        let mut image = rqrr::PreparedImage::prepare_from_greyscale((width + 8) * 4, (width + 8) * 4, |x, y| {
            let (x, y) = ((x / 4).checked_sub(4), (y / 4).checked_sub(4));
            match (x, y) {
                (Some(x), Some(y)) if x < width && y < width && colors[y * width + x] == qrcode::Color::Dark => 0,
                _ => 255,
            }
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, decoded) = grids[0].decode().unwrap();
        assert_eq!(decoded, uri, "an independent decoder reads the URI back");
    }
}
