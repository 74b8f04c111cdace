//! Passwords: argon2id hashing in PHC strings, verification at a constant cost
//! whether or not the user exists, and "needs rehash" when parameters were raised.

use std::fmt;
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Longest password accepted, in bytes of UTF-8. Longer input is refused before
/// any hashing, so a megabyte "password" cannot buy a megabyte of argon2 work.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// argon2id cost parameters. The default is OWASP's minimum recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory cost in KiB (`m`). Default 19456 (19 MiB).
    pub memory_kib: u32,
    /// Number of passes (`t`). Default 2.
    pub iterations: u32,
    /// Degree of parallelism (`p`). Default 1.
    pub parallelism: u32,
}

impl Default for PasswordParams {
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

/// A plaintext password. Its `Debug` prints `[redacted]`; it is never logged.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps `text` exactly as given (no trimming, truncation or case folding);
    /// refuses more than [`MAX_PASSWORD_BYTES`].
    pub fn new(text: impl Into<String>) -> Result<Self, PasswordError> {
        let text = text.into();
        if text.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(text))
    }

    /// Number of Unicode scalar values, for length policies.
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }

    /// The password's bytes, for the hasher.
    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// What checking a password against a stored hash found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password matches. `needs_rehash`: the stored hash is weaker than the
    /// configured parameters and should be replaced with [`PasswordHasher::hash`].
    Valid {
        /// Whether the stored hash should be upgraded.
        needs_rehash: bool,
    },
    /// Wrong password, or no such user.
    Invalid,
}

/// Failures other than a wrong password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("password longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// The stored hash is not an argon2 PHC string.
    #[error("stored password hash is malformed")]
    MalformedHash,
    /// argon2 itself failed (bad parameters, out of memory).
    #[error("argon2 failed: {0}")]
    Argon2(String),
    /// The blocking hashing task did not complete.
    #[error("password task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// PHC string of the dummy verified when a user does not exist, for
/// [`PasswordParams::default`]. Only its cost matters: verifying any password
/// against it runs the full argon2id computation and then fails.
const DEFAULT_DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bGF0Y2hrZXktZHVtbXk$z7QjZQPp5Q3mB0m1cHxYkq5bV6r0e8JQbOqf3s2Xw5c";

/// Hashes and verifies passwords with argon2id; the work runs on tokio's blocking pool.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    argon2: Argon2<'static>,
    params: PasswordParams,
    dummy_hash: String,
    verifications: std::sync::atomic::AtomicU64,
    /// How long the latest verification at the configured cost took (the dummy's,
    /// or a current hash's): what a verification of a weaker hash is padded to.
    reference: std::sync::Mutex<Option<std::time::Duration>>,
    paddings: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher").field("params", &self.inner.params).finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher for `params`. For non-default parameters this computes the
    /// unknown-user dummy hash once, so it costs one hash at cold start.
    pub fn new(params: PasswordParams) -> Result<Self, PasswordError> {
        let argon2 = argon2_for(params)?;
        let dummy_hash = if params == PasswordParams::default() {
            DEFAULT_DUMMY_HASH.to_owned()
        } else {
            let throwaway = crate::encoding::b64url(
                crate::encoding::random_bytes::<32>().map_err(|e| PasswordError::Argon2(e.to_string()))?,
            );
            hash_with(&argon2, throwaway.as_bytes())?
        };
        let verifications = std::sync::atomic::AtomicU64::new(0);
        let (reference, paddings) = (std::sync::Mutex::new(None), std::sync::atomic::AtomicU64::new(0));
        Ok(Self { inner: Arc::new(Inner { argon2, params, dummy_hash, verifications, reference, paddings }) })
    }

    /// How many argon2 verifications this hasher has run, the unknown-user dummy
    /// included: the proof that an unknown email costs the same work as a known one.
    pub fn verifications(&self) -> u64 {
        self.inner.verifications.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many verifications of a hash weaker than the configured parameters were
    /// padded to the configured cost.
    pub fn paddings(&self) -> u64 {
        self.inner.paddings.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The parameters new hashes are made with.
    pub fn params(&self) -> PasswordParams {
        self.inner.params
    }

    /// Hashes `password` with a fresh random salt into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, PasswordError> {
        let inner = Arc::clone(&self.inner);
        let password = password.clone();
        tokio::task::spawn_blocking(move || hash_with(&inner.argon2, password.as_bytes())).await?
    }

    /// Checks `password` against `stored`. With `stored = None` (no such user) a
    /// dummy hash of the same cost is verified instead and the answer is
    /// [`Verification::Invalid`], so the response time does not reveal which
    /// accounts exist.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> Result<Verification, PasswordError> {
        let inner = Arc::clone(&self.inner);
        let password = password.clone();
        let stored = stored.map(str::to_owned);
        tokio::task::spawn_blocking(move || inner.verify_blocking(&password, stored.as_deref())).await?
    }
}

impl Inner {
    /// Verifies, then evens out the time: an unknown user costs one verification at
    /// the configured cost (the dummy), and so does a user whose hash predates raised
    /// parameters, whose cheaper verification is padded (by sleeping) to the latest
    /// configured-cost one. Otherwise the response time would tell which accounts
    /// exist and have not logged in since the parameters were raised.
    fn verify_blocking(&self, password: &Password, stored: Option<&str>) -> Result<Verification, PasswordError> {
        let started = std::time::Instant::now();
        let parsed = stored.map(PasswordHash::new);
        let Some(Ok(hash)) = parsed else {
            // Unknown user or a corrupt record: spend the same time anyway.
            let _ = self.check(password, &self.dummy_hash);
            self.set_reference(started.elapsed());
            return match parsed {
                None => Ok(Verification::Invalid),
                Some(_) => Err(PasswordError::MalformedHash),
            };
        };
        let valid = self.argon2_verify(password, &hash);
        let weaker = is_weaker(&hash, self.params);
        if weaker {
            self.pad(started);
        } else {
            self.set_reference(started.elapsed());
        }
        Ok(if valid { Verification::Valid { needs_rehash: weaker } } else { Verification::Invalid })
    }

    fn set_reference(&self, took: std::time::Duration) {
        *self.reference.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(took);
    }

    /// Brings a verification begun at `started` up to the configured cost: sleeps
    /// out the rest of the reference time, or (before any reference exists) runs
    /// the dummy verification, which also sets one.
    fn pad(&self, started: std::time::Instant) {
        self.paddings.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reference = *self.reference.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match reference {
            Some(reference) => std::thread::sleep(padding(reference, started.elapsed())),
            None => {
                let dummy_started = std::time::Instant::now();
                let _ = self.check(&Password(String::new()), &self.dummy_hash);
                self.set_reference(dummy_started.elapsed());
            }
        }
    }

    fn check(&self, password: &Password, phc: &str) -> bool {
        PasswordHash::new(phc).map(|hash| self.argon2_verify(password, &hash)).unwrap_or(false)
    }

    /// One argon2 verification with the cost recorded in `hash`, counted.
    fn argon2_verify(&self, password: &Password, hash: &PasswordHash<'_>) -> bool {
        self.verifications.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.argon2.verify_password(password.as_bytes(), hash).is_ok()
    }
}

fn argon2_for(params: PasswordParams) -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
        .map_err(|e| PasswordError::Argon2(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// What is left of `reference` after `elapsed` (nothing if it is already spent).
fn padding(reference: std::time::Duration, elapsed: std::time::Duration) -> std::time::Duration {
    reference.saturating_sub(elapsed)
}

fn hash_with(argon2: &Argon2<'_>, password: &[u8]) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2.hash_password(password, &salt).map(|hash| hash.to_string()).map_err(|e| PasswordError::Argon2(e.to_string()))
}

/// Whether `hash` was made with a different algorithm or version, or with less
/// memory, fewer passes or less parallelism than `wanted`.
fn is_weaker(hash: &PasswordHash<'_>, wanted: PasswordParams) -> bool {
    if hash.algorithm != Algorithm::Argon2id.ident() || hash.version != Some(Version::V0x13.into()) {
        return true;
    }
    match Params::try_from(hash) {
        Ok(params) => {
            params.m_cost() < wanted.memory_kib
                || params.t_cost() < wanted.iterations
                || params.p_cost() < wanted.parallelism
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(PasswordParams::default()).unwrap()
    }

    fn password(text: &str) -> Password {
        Password::new(text).unwrap()
    }

    #[tokio::test]
    async fn right_password_verifies() {
        let hasher = hasher();
        let stored = hasher.hash(&password("correct horse battery staple")).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        let outcome = hasher.verify(&password("correct horse battery staple"), Some(&stored)).await.unwrap();
        assert_eq!(outcome, Verification::Valid { needs_rehash: false });
    }

    #[tokio::test]
    async fn wrong_password_is_invalid() {
        let hasher = hasher();
        let stored = hasher.hash(&password("correct horse battery staple")).await.unwrap();
        for wrong in ["Correct horse battery staple", "correct horse battery stapl", ""] {
            let outcome = hasher.verify(&password(wrong), Some(&stored)).await.unwrap();
            assert_eq!(outcome, Verification::Invalid, "{wrong:?}");
        }
    }

    #[tokio::test]
    async fn unknown_user_verifies_the_dummy_and_is_invalid() {
        let hasher = hasher();
        let stored = hasher.hash(&password("the real one")).await.unwrap();
        assert_eq!(hasher.verify(&password("anything"), None).await.unwrap(), Verification::Invalid);
        assert_eq!(hasher.verifications(), 1, "an unknown user must cost one argon2 verification");
        assert_eq!(hasher.verify(&password("anything"), Some(&stored)).await.unwrap(), Verification::Invalid);
        assert_eq!(hasher.verifications(), 2, "a known user costs exactly one as well");
        // The dummy is checked at the configured cost (default_dummy_hash_costs_the_same_as_a_real_hash).
        let dummy = PasswordHash::new(&hasher.inner.dummy_hash).unwrap();
        let real = PasswordHash::new(&stored).unwrap();
        assert_eq!(Params::try_from(&dummy).unwrap(), Params::try_from(&real).unwrap());
        // A corrupt record costs the dummy too, and is an error.
        assert!(hasher.verify(&password("anything"), Some("not a phc string")).await.is_err());
        assert_eq!(hasher.verifications(), 3);
    }

    #[test]
    fn default_dummy_hash_costs_the_same_as_a_real_hash() {
        let dummy = PasswordHash::new(DEFAULT_DUMMY_HASH).unwrap();
        assert!(!is_weaker(&dummy, PasswordParams::default()));
        let params = Params::try_from(&dummy).unwrap();
        assert_eq!(params.m_cost(), PasswordParams::default().memory_kib);
        assert_eq!(params.t_cost(), PasswordParams::default().iterations);
        assert_eq!(params.p_cost(), PasswordParams::default().parallelism);
    }

    #[test]
    fn raised_parameters_make_a_dummy_of_the_raised_cost() {
        let raised = PasswordParams { memory_kib: 19_456, iterations: 3, parallelism: 1 };
        let hasher = PasswordHasher::new(raised).unwrap();
        let dummy = PasswordHash::new(&hasher.inner.dummy_hash).unwrap();
        assert_eq!(Params::try_from(&dummy).unwrap().t_cost(), 3);
    }

    #[tokio::test]
    async fn hash_weaker_than_configured_needs_rehash() {
        let old = hasher();
        let stored = old.hash(&password("hunter2 but longer")).await.unwrap();
        let stronger =
            PasswordHasher::new(PasswordParams { memory_kib: 32_768, iterations: 2, parallelism: 1 }).unwrap();
        let outcome = stronger.verify(&password("hunter2 but longer"), Some(&stored)).await.unwrap();
        assert_eq!(outcome, Verification::Valid { needs_rehash: true });

        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(19_456, 2, 1, None).unwrap());
        let legacy = hash_with(&argon2i, b"hunter2 but longer").unwrap();
        let outcome = old.verify(&password("hunter2 but longer"), Some(&legacy)).await.unwrap();
        assert_eq!(outcome, Verification::Valid { needs_rehash: true });
    }

    /// After the parameters are raised, a user whose hash is older costs what an
    /// unknown user costs: the old, cheaper verification is padded to the latest
    /// configured-cost one (a lower bound that holds by construction, so this is
    /// not a timing test), and the first login rehashes (`Accounts::authenticate`).
    #[tokio::test]
    async fn an_old_cheaper_hash_is_padded_to_the_cost_of_an_unknown_user() {
        let old = hasher();
        let stored = old.hash(&password("hunter2 but longer")).await.unwrap();
        let raised = PasswordHasher::new(PasswordParams { memory_kib: 19_456, iterations: 4, parallelism: 1 }).unwrap();
        // Before any configured-cost verification, the padding is the dummy itself.
        let outcome = raised.verify(&password("hunter2 but longer"), Some(&stored)).await.unwrap();
        assert_eq!(outcome, Verification::Valid { needs_rehash: true });
        assert_eq!((raised.paddings(), raised.verifications()), (1, 2));
        assert_eq!(raised.verify(&password("nobody"), None).await.unwrap(), Verification::Invalid);
        let reference = raised.inner.reference.lock().unwrap().unwrap();
        let started = std::time::Instant::now();
        let wrong = raised.verify(&password("wrong guess"), Some(&stored)).await.unwrap();
        assert_eq!(wrong, Verification::Invalid, "a wrong password is padded too");
        assert!(started.elapsed() >= reference, "{:?} < {reference:?}", started.elapsed());
        assert_eq!((raised.paddings(), raised.verifications()), (2, 4));
        // A current hash is not padded.
        let current = raised.hash(&password("fresh")).await.unwrap();
        raised.verify(&password("fresh"), Some(&current)).await.unwrap();
        assert_eq!(raised.paddings(), 2);
    }

    #[test]
    fn padding_is_what_is_left_of_the_reference() {
        use std::time::Duration;
        assert_eq!(padding(Duration::from_millis(40), Duration::from_millis(15)), Duration::from_millis(25));
        assert_eq!(padding(Duration::from_millis(40), Duration::from_millis(55)), Duration::ZERO);
    }

    #[tokio::test]
    async fn unicode_password_of_128_characters_round_trips_exactly() {
        let hasher = hasher();
        let text: String = "Grüße🔑密码".chars().cycle().take(128).collect();
        assert_eq!(text.chars().count(), 128);
        let stored = hasher.hash(&password(&text)).await.unwrap();
        assert_eq!(
            hasher.verify(&password(&text), Some(&stored)).await.unwrap(),
            Verification::Valid { needs_rehash: false }
        );
        let truncated: String = text.chars().take(127).collect();
        let folded = text.to_lowercase();
        assert_ne!(folded, text);
        for near in [truncated, folded] {
            assert_eq!(hasher.verify(&password(&near), Some(&stored)).await.unwrap(), Verification::Invalid);
        }
    }

    #[test]
    fn password_over_1_kib_is_refused_before_hashing() {
        assert!(Password::new("x".repeat(MAX_PASSWORD_BYTES)).is_ok());
        assert!(matches!(Password::new("x".repeat(MAX_PASSWORD_BYTES + 1)), Err(PasswordError::TooLong)));
    }

    #[tokio::test]
    async fn malformed_stored_hash_is_an_error_not_a_match() {
        let outcome = hasher().verify(&password("pw"), Some("not-a-phc-string")).await;
        assert!(matches!(outcome, Err(PasswordError::MalformedHash)));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let shown = format!("{:?}", password("s3cret-value"));
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
