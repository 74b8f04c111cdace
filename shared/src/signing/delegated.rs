//! Delegated signing: access tokens signed in the function by a key of the current
//! period, which the long-term key (in KMS) vouches for once per period. The
//! period's key is shared through the store (first writer wins, private half sealed)
//! and learnt by verifiers from it, vouch checked, at most one read per new key.
//!
//! docs/security.md ("Signing modes") has the design and what each compromise yields.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{KeySet, LocalSigner, PublicKey, SealingKey, Signer, SigningAlgorithm, SigningError, VerifyingKey};
use crate::config::Config;
use crate::encoding::{b64url, b64url_decode};
use crate::token::RefreshKey;

/// The first part of every delegated key's `kid`: `d1.<period seconds>.<period start>.<thumbprint>`.
pub const DELEGATED_KID_TAG: &str = "d1";
/// The header `typ` of a vouch: never `at+jwt`, so a vouch is no access token and
/// an access token no vouch.
pub const VOUCH_TYPE: &str = "latchkey-key+jwt";
/// The label whose MAC under the refresh key seals delegated private keys.
const SEAL_LABEL: &[u8] = b"latchkey delegated signing key seal v1";
/// A period whose record was missing is read again no sooner than this many seconds
/// later, so tokens naming made-up keys cannot turn into a read each.
const MISS_RETRY_SECS: u64 = 1;
/// Longest access-token lifetime any deployment issues (`LATCHKEY_ACCESS_TOKEN_TTL_SECONDS`).
const LONGEST_TOKEN_SECS: u64 = 3600;
/// After a failed attempt to make the next period's key ahead, an instance tries
/// again no sooner than this many seconds later, so a KMS or DynamoDB outage does
/// not put a failing call in front of every token of the half period.
const AHEAD_RETRY_SECS: u64 = 30;

/// One signing period: `[start, start + seconds)`, `start` a multiple of `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPeriod {
    /// Length in seconds.
    pub seconds: u64,
    /// First second, Unix time.
    pub start: u64,
}

impl KeyPeriod {
    /// The period of `seconds` that contains `now`.
    pub fn containing(seconds: u64, now: u64) -> Self {
        let seconds = seconds.max(1);
        Self { seconds, start: now - now % seconds }
    }

    /// The first second after the period.
    pub fn end(self) -> u64 {
        self.start.saturating_add(self.seconds)
    }

    /// The period after this one.
    pub fn next(self) -> Self {
        Self { start: self.end(), ..self }
    }

    /// The period before this one.
    pub fn previous(self) -> Self {
        Self { start: self.start.saturating_sub(self.seconds), ..self }
    }

    /// The `kid` of this period's key with `thumbprint` (RFC 7638).
    pub fn kid(self, thumbprint: &str) -> String {
        format!("{DELEGATED_KID_TAG}.{}.{}.{thumbprint}", self.seconds, self.start)
    }

    /// The period and thumbprint a delegated `kid` names; `None` for anything else
    /// (a KMS key's `kid`, a period length no configuration allows, a start off the grid).
    pub fn of_kid(kid: &str) -> Option<(Self, &str)> {
        let mut parts = kid.split('.');
        let (Some(DELEGATED_KID_TAG), Some(seconds), Some(start), Some(thumbprint), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let (seconds, start): (u64, u64) = (digits(seconds)?, digits(start)?);
        let plausible = (300..=3600).contains(&seconds)
            && 86_400 % seconds == 0
            && start % seconds == 0
            && thumbprint.len() == 43
            && crate::encoding::is_b64url(thumbprint);
        plausible.then_some((Self { seconds, start }, thumbprint))
    }

    /// Whether a token signed in this period could still be valid at `now`, or the
    /// period is the one after the current one (keys are made ahead): only then is a
    /// read for its key worth making.
    fn may_sign_valid_tokens(self, now: u64, leeway: u64) -> bool {
        self.start <= now.saturating_add(self.seconds).saturating_add(leeway)
            && self.end().saturating_add(LONGEST_TOKEN_SECS).saturating_add(leeway) > now
    }
}

fn digits(text: &str) -> Option<u64> {
    (!text.is_empty() && text.len() <= 12 && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok())?
}

/// A period's key as stored: the vouch (which carries the public half) and the
/// private half sealed under a key derived from the refresh key.
#[derive(Clone, PartialEq, Eq)]
pub struct DelegatedKeyRecord {
    /// The period the key signs in.
    pub period: KeyPeriod,
    /// The key's `kid` ([`KeyPeriod::kid`]).
    pub kid: String,
    /// A compact JWS by the long-term key (header `typ` [`VOUCH_TYPE`]) over the
    /// public key, its period and the longest token it may sign.
    pub vouch: String,
    /// The PKCS#8 private key, sealed (AES-256-GCM, the `kid` as associated data).
    /// `None` when read by a verifier, which is never given it.
    pub sealed_private: Option<String>,
    /// When the record was made, Unix seconds.
    pub created_at: u64,
}

impl fmt::Debug for DelegatedKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelegatedKeyRecord")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Where delegated keys are shared: one record per period, written once.
#[async_trait]
pub trait DelegatedKeyStore: Send + Sync {
    /// The record of `period` (a strongly consistent read); with its sealed private
    /// half only when `private` (signers), never otherwise (verifiers, the JWKS).
    async fn delegated_key(&self, period: KeyPeriod, private: bool)
    -> Result<Option<DelegatedKeyRecord>, SigningError>;

    /// Writes `record` unless its period has one already; `false` when another
    /// writer was first (then its record is the period's key).
    async fn put_delegated_key(&self, record: &DelegatedKeyRecord) -> Result<bool, SigningError>;
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VouchHeader {
    alg: String,
    typ: String,
    kid: String,
}

/// What the long-term key signs for each period's key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VouchClaims {
    iss: String,
    kid: String,
    jwk: serde_json::Value,
    nbf: u64,
    exp: u64,
    max_token_seconds: u64,
    iat: u64,
}

/// A delegated key a verifier accepts, checked against its vouch.
#[derive(Debug, Clone)]
pub struct DelegatedKey {
    /// The public half.
    pub key: VerifyingKey,
    /// The period it signs in.
    pub period: KeyPeriod,
    /// The longest token (`exp - iat`) it may sign.
    pub max_token_seconds: u64,
}

impl DelegatedKey {
    /// Whether a token issued at `iat` and expiring at `exp` is one this key may have
    /// signed: issued inside its period (with `leeway` for clocks) and no longer-lived
    /// than the vouch allows. A leaked key so mints nothing valid past its period.
    pub fn allows(&self, iat: u64, exp: u64, leeway: u64) -> bool {
        iat.saturating_add(leeway) >= self.period.start
            && iat < self.period.end().saturating_add(leeway)
            && exp.saturating_sub(iat) <= self.max_token_seconds
    }
}

/// Checks `vouch` for `kid`: signed by one of `roots` (long-term keys only: a
/// delegated key never vouches), for this issuer, naming this `kid`, its period and
/// a key whose thumbprint the `kid` carries. `None` for anything else.
pub fn check_vouch(roots: &KeySet, issuer: &str, kid: &str, vouch: &str) -> Option<DelegatedKey> {
    let (period, _) = KeyPeriod::of_kid(kid)?;
    let (signing_input, signature) = vouch.rsplit_once('.')?;
    let (header, claims) = signing_input.split_once('.')?;
    let header: VouchHeader = serde_json::from_slice(&b64url_decode(header)?).ok()?;
    if KeyPeriod::of_kid(&header.kid).is_some() {
        return None;
    }
    let root = roots.get(&header.kid)?;
    if header.typ != VOUCH_TYPE || header.alg != root.public.algorithm.jose_name() {
        return None;
    }
    if !root.verify_signature(signing_input.as_bytes(), &b64url_decode(signature)?) {
        return None;
    }
    let claims: VouchClaims = serde_json::from_slice(&b64url_decode(claims)?).ok()?;
    let names_this_key = claims.iss == issuer
        && claims.kid == kid
        && claims.nbf == period.start
        && claims.exp == period.end()
        && claims.jwk.get("kid").and_then(|v| v.as_str()) == Some(kid);
    if !names_this_key {
        return None;
    }
    // The JWK's kid is `kid` (checked above), so the key is bound to its period.
    listed_period_key(&claims.jwk, claims.max_token_seconds)
}

/// A period key as a JWK lists it (Latchkey's JWKS, or a vouch): ES256, under a
/// period `kid` that carries its thumbprint, bound to that period and to tokens no
/// longer-lived than `max_token_seconds`. `None` for anything else. Only a vouch
/// makes it trusted; without one it is what a third-party verifier reading the
/// JWKS sees.
pub fn listed_period_key(jwk: &serde_json::Value, max_token_seconds: u64) -> Option<DelegatedKey> {
    let kid = jwk.get("kid")?.as_str()?;
    let (period, thumbprint) = KeyPeriod::of_kid(kid)?;
    // Read as a long-term key's JWK would be (its kid its thumbprint), then named
    // by the period's kid.
    let mut as_long_term = jwk.clone();
    as_long_term["kid"] = serde_json::Value::String(thumbprint.to_owned());
    let mut public = PublicKey::from_jwk_json(&as_long_term).ok()?;
    if public.algorithm != SigningAlgorithm::Es256 {
        return None;
    }
    public.kid = kid.to_owned();
    Some(DelegatedKey { key: VerifyingKey::new(public).ok()?, period, max_token_seconds })
}

/// The vouch of `public` for `period`, signed by `root`.
async fn vouch_for(
    root: &dyn Signer,
    issuer: &str,
    public: &PublicKey,
    period: KeyPeriod,
    max_token_seconds: u64,
    now: u64,
) -> Result<String, SigningError> {
    let header = VouchHeader {
        alg: root.public_key().algorithm.jose_name().to_owned(),
        typ: VOUCH_TYPE.to_owned(),
        kid: root.public_key().kid.clone(),
    };
    let claims = VouchClaims {
        iss: issuer.to_owned(),
        kid: public.kid.clone(),
        jwk: public.to_jwk_json(),
        nbf: period.start,
        exp: period.end(),
        max_token_seconds,
        iat: now,
    };
    let mut vouch = format!("{}.{}", b64url_json(&header), b64url_json(&claims));
    let signature = root.sign(vouch.as_bytes()).await?;
    vouch.push('.');
    vouch.push_str(&b64url(signature));
    Ok(vouch)
}

/// base64url of the JSON of `value` (the vouch's parts cannot fail to serialise).
fn b64url_json<T: Serialize>(value: &T) -> String {
    b64url(serde_json::to_vec(value).unwrap_or_default())
}

/// Signs with the current period's key, making it (one KMS `Sign` for the vouch)
/// when no instance has yet, and the next period's from the middle of this one on,
/// so verifiers can see a key before any token it signs.
pub struct DelegatedSigner {
    root: Arc<dyn Signer>,
    roots: KeySet,
    store: Arc<dyn DelegatedKeyStore>,
    seal: SealingKey,
    issuer: String,
    period_seconds: u64,
    max_token_seconds: u64,
    /// Each period's key, or `None` for a period this instance signs with the
    /// long-term key (its stored key is one it cannot use).
    keys: Mutex<Vec<(KeyPeriod, Option<Arc<LocalSigner>>)>>,
    loading: tokio::sync::Mutex<()>,
    /// When making the next period's key ahead last failed, and for which period.
    ahead_failed: Mutex<Option<(KeyPeriod, u64)>>,
}

impl fmt::Debug for DelegatedSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelegatedSigner")
            .field("root", &self.root.public_key().kid)
            .field("period_seconds", &self.period_seconds)
            .finish_non_exhaustive()
    }
}

impl DelegatedSigner {
    /// A signer whose keys `root` vouches for, shared through `store`, sealed under
    /// a key derived from `refresh`, with the period and token lifetime of `config`.
    pub fn new(
        root: Arc<dyn Signer>,
        store: Arc<dyn DelegatedKeyStore>,
        refresh: &RefreshKey,
        config: &Config,
    ) -> Result<Self, SigningError> {
        let seal = SealingKey::derive(refresh, SEAL_LABEL)
            .ok_or_else(|| SigningError::LocalKey("delegated sealing key".to_owned()))?;
        Ok(Self {
            roots: KeySet::new([root.public_key().clone()])?,
            root,
            store,
            seal,
            issuer: config.issuer.clone(),
            period_seconds: config.signing.key_period.as_secs(),
            max_token_seconds: config.access_token_ttl.as_secs(),
            keys: Mutex::new(Vec::new()),
            loading: tokio::sync::Mutex::new(()),
            ahead_failed: Mutex::new(None),
        })
    }

    fn ahead_failed_lately(&self, ahead: KeyPeriod, now: u64) -> bool {
        let failed = self.ahead_failed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failed.is_some_and(|(period, at)| period == ahead && now < at.saturating_add(AHEAD_RETRY_SECS))
    }

    fn cached(&self, period: KeyPeriod) -> Option<Option<Arc<LocalSigner>>> {
        let keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.iter().find(|(held, _)| *held == period).map(|(_, key)| key.clone())
    }

    /// The key of `period`: held, else read from the store (one read), else made.
    /// `None`: this instance cannot use the period's stored key (vouched by another
    /// long-term key, as in the middle of a KMS key rotation, for shorter tokens than
    /// it issues, or sealed under another refresh-MAC key): it signs with the
    /// long-term key for that period, as `kms` mode does, rather than fail.
    async fn key_for(&self, period: KeyPeriod, now: u64) -> Result<Option<Arc<LocalSigner>>, SigningError> {
        if let Some(key) = self.cached(period) {
            return Ok(key);
        }
        // One instance's concurrent requests wait for one load instead of each making one.
        let _loading = self.loading.lock().await;
        if let Some(key) = self.cached(period) {
            return Ok(key);
        }
        let key = match self.store.delegated_key(period, true).await? {
            Some(record) => self.open(&record, period),
            None => {
                let (record, made) = self.make(period, now).await?;
                if self.store.put_delegated_key(&record).await? {
                    tracing::info!(event = "delegated_key_made", kid = %record.kid);
                    Some(made)
                } else {
                    let winner = self.store.delegated_key(period, true).await?;
                    let winner =
                        winner.ok_or_else(|| SigningError::KeyStore("the period's key vanished".to_owned()))?;
                    self.open(&winner, period)
                }
            }
        };
        let key = key.map(Arc::new);
        let mut keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.retain(|(held, _)| held.start >= period.previous().start);
        keys.push((period, key.clone()));
        Ok(key)
    }

    async fn make(&self, period: KeyPeriod, now: u64) -> Result<(DelegatedKeyRecord, LocalSigner), SigningError> {
        let generated = LocalSigner::generate()?;
        let kid = period.kid(&generated.public_key().kid);
        let key = generated.renamed(kid.clone());
        let vouch =
            vouch_for(self.root.as_ref(), &self.issuer, key.public_key(), period, self.max_token_seconds, now).await?;
        let sealed = self
            .seal
            .seal(kid.as_bytes(), &key.to_pkcs8_der()?)
            .ok_or_else(|| SigningError::LocalKey("sealing failed".to_owned()))?;
        Ok((DelegatedKeyRecord { period, kid, vouch, sealed_private: Some(sealed), created_at: now }, key))
    }

    /// The key the stored record of `period` holds, if this instance can sign with
    /// it: vouched by its own long-term key for this period, for tokens at least as
    /// long-lived as it issues, and opening under its sealing key. Otherwise `None`
    /// (logged): a record planted by anything that cannot sign with the long-term key
    /// is never used.
    fn open(&self, record: &DelegatedKeyRecord, period: KeyPeriod) -> Option<LocalSigner> {
        let unusable = |why: &str| {
            tracing::warn!(event = "delegated_key_unusable", kid = %record.kid, why);
            None
        };
        let Some(vouched) = check_vouch(&self.roots, &self.issuer, &record.kid, &record.vouch) else {
            return unusable("its vouch does not verify under this signing key");
        };
        if vouched.period != period {
            return unusable("stored for another period");
        }
        if vouched.max_token_seconds < self.max_token_seconds {
            return unusable("vouched for shorter tokens than this instance issues");
        }
        let Some(der) =
            record.sealed_private.as_deref().and_then(|sealed| self.seal.open(record.kid.as_bytes(), sealed))
        else {
            return unusable("its private half does not open");
        };
        match LocalSigner::from_pkcs8_der(&der) {
            Ok(key) if vouched.key.public.jwk == key.public_key().jwk => Some(key.renamed(record.kid.clone())),
            _ => unusable("its private half is not the vouched key"),
        }
    }
}

#[async_trait]
impl Signer for DelegatedSigner {
    /// The long-term key (the one that vouches).
    fn public_key(&self) -> &PublicKey {
        self.root.public_key()
    }

    /// Signs with the long-term key.
    async fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SigningError> {
        self.root.sign(signing_input).await
    }

    async fn signer_at(&self, now: u64) -> Result<Option<Arc<dyn Signer>>, SigningError> {
        let period = KeyPeriod::containing(self.period_seconds, now);
        let key = self.key_for(period, now).await?;
        let ahead = period.next();
        if now >= period.start + period.seconds / 2
            && self.cached(ahead).is_none()
            && !self.ahead_failed_lately(ahead, now)
        {
            // Failing to make the next key early is not this token's failure: a later
            // token tries again (after AHEAD_RETRY_SECS), the next period's first at the latest.
            if let Err(error) = self.key_for(ahead, now).await {
                tracing::warn!(event = "delegated_key_ahead_failed", error = %error);
                *self.ahead_failed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((ahead, now));
            }
        }
        Ok(key.map(|key| key as Arc<dyn Signer>))
    }
}

/// What verifiers know of delegated keys: learnt from the store on first sight of
/// a `kid`, after checking the vouch against the long-term keys they already hold.
pub struct DelegatedKeys {
    roots: KeySet,
    store: Arc<dyn DelegatedKeyStore>,
    issuer: String,
    period_seconds: u64,
    token_seconds: u64,
    leeway_seconds: u64,
    learnt: RwLock<HashMap<String, Arc<DelegatedKey>>>,
    /// Periods read and found without a key (or with another key): when, so a
    /// made-up `kid` costs at most one read per period per [`MISS_RETRY_SECS`].
    misses: Mutex<HashMap<KeyPeriod, u64>>,
}

impl fmt::Debug for DelegatedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let learnt = self.learnt.read().map(|keys| keys.len()).unwrap_or_default();
        f.debug_struct("DelegatedKeys").field("learnt", &learnt).finish_non_exhaustive()
    }
}

impl DelegatedKeys {
    /// Delegated keys vouched for by one of `roots` (the verifier's long-term keys).
    pub fn new(roots: KeySet, store: Arc<dyn DelegatedKeyStore>, config: &Config) -> Self {
        Self {
            roots,
            store,
            issuer: config.issuer.clone(),
            period_seconds: config.signing.key_period.as_secs(),
            token_seconds: config.access_token_ttl.as_secs(),
            leeway_seconds: config.clock_skew.as_secs(),
            learnt: RwLock::new(HashMap::new()),
            misses: Mutex::new(HashMap::new()),
        }
    }

    /// The key with this `kid`, if already learnt (no store call).
    pub fn known(&self, kid: &str) -> Option<Arc<DelegatedKey>> {
        self.learnt.read().ok()?.get(kid).cloned()
    }

    /// The key with this `kid`: known, or read from the store (one read) and
    /// checked. `Ok(None)` for a `kid` that names no vouched key, or a period no
    /// valid token can come from (no read made).
    pub async fn learn(&self, kid: &str, now: u64, leeway: u64) -> Result<Option<Arc<DelegatedKey>>, SigningError> {
        if let Some(key) = self.known(kid) {
            return Ok(Some(key));
        }
        let Some((period, _)) = KeyPeriod::of_kid(kid) else { return Ok(None) };
        // Only this deployment's period length, only periods a valid token can come
        // from, one key per period (a period whose key is known has no other), and a
        // period without a vouched key read at most once a second.
        let plausible = period.seconds == self.period_seconds && period.may_sign_valid_tokens(now, leeway);
        if !plausible || self.of_period(period).is_some() || self.missed_recently(period, now) {
            return Ok(None);
        }
        let record = self.store.delegated_key(period, false).await?;
        // The period's key is learnt whichever kid asked: a made-up kid cannot keep
        // the real one out.
        match record.and_then(|record| self.accept(&record, now)) {
            Some(key) => Ok((key.key.public.kid == kid).then_some(key)),
            None => {
                self.missed(period, now);
                Ok(None)
            }
        }
    }

    /// The learnt key of `period` (a period has one key).
    fn of_period(&self, period: KeyPeriod) -> Option<Arc<DelegatedKey>> {
        self.learnt.read().ok()?.values().find(|key| key.period == period).cloned()
    }

    fn missed(&self, period: KeyPeriod, now: u64) {
        let mut misses = self.misses.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        misses.retain(|_, at| now < at.saturating_add(MISS_RETRY_SECS));
        misses.insert(period, now);
    }

    fn missed_recently(&self, period: KeyPeriod, now: u64) -> bool {
        let misses = self.misses.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        misses.get(&period).is_some_and(|at| now < at.saturating_add(MISS_RETRY_SECS))
    }

    /// Checks a record's vouch and remembers its key, forgetting keys whose
    /// tokens have all expired.
    fn accept(&self, record: &DelegatedKeyRecord, now: u64) -> Option<Arc<DelegatedKey>> {
        // Stored in its own period's slot: the vouched key's period is its kid's.
        let vouched = check_vouch(&self.roots, &self.issuer, &record.kid, &record.vouch);
        let Some(key) = vouched.filter(|key| key.period == record.period) else {
            tracing::warn!(event = "delegated_key_refused", kid = %record.kid);
            return None;
        };
        let key = Arc::new(key);
        if let Ok(mut learnt) = self.learnt.write() {
            learnt.retain(|_, held| held.period.end().saturating_add(LONGEST_TOKEN_SECS) > now);
            learnt.insert(record.kid.clone(), key.clone());
        }
        Some(key)
    }

    /// The keys to publish at `now`, those that exist and whose vouch verifies: the
    /// next period's (made ahead), the current one's, and each earlier one that can
    /// have signed a token still valid, the clock leeway included (one with the
    /// default 15-minute tokens and hourly keys: three keys in all). One store read
    /// per period not yet known.
    pub async fn published(&self, now: u64) -> Result<Vec<PublicKey>, SigningError> {
        let current = KeyPeriod::containing(self.period_seconds, now);
        let back = self.token_seconds.saturating_add(self.leeway_seconds).div_ceil(current.seconds).max(1);
        let mut periods = vec![current.next(), current];
        for _ in 0..back {
            let earliest = periods.last().copied().unwrap_or(current);
            periods.push(earliest.previous());
        }
        let reads = periods.iter().map(|&period| async move {
            let known = self.of_period(period).map(|key| key.key.public.clone());
            if known.is_some() || self.missed_recently(period, now) {
                return Ok::<_, SigningError>(known);
            }
            let record = self.store.delegated_key(period, false).await?;
            let key = record.and_then(|record| self.accept(&record, now));
            if key.is_none() {
                self.missed(period, now);
            }
            Ok(key.map(|key| key.key.public.clone()))
        });
        Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kid_names_its_period_and_nothing_else_parses() {
        let period = KeyPeriod::containing(3600, 7_201);
        assert_eq!(period, KeyPeriod { seconds: 3600, start: 7200 });
        let thumbprint = "wQ-F1n5I4pXq64g-zTnz70lImDo_WnfGxlD5mvWQRWQ";
        let kid = period.kid(thumbprint);
        assert_eq!(KeyPeriod::of_kid(&kid), Some((period, thumbprint)));
        for bad in [
            thumbprint.to_owned(),
            format!("d1.3600.7201.{thumbprint}"),
            format!("d1.700.7000.{thumbprint}"),
            format!("d1.3600.7200.{thumbprint}.x"),
            format!("d2.3600.7200.{thumbprint}"),
            format!("d1.3600.-7200.{thumbprint}"),
            "d1.3600.7200.short".to_owned(),
        ] {
            assert_eq!(KeyPeriod::of_kid(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_key_allows_only_tokens_issued_in_its_period_and_no_longer_lived() {
        let signer = LocalSigner::generate().unwrap();
        let period = KeyPeriod { seconds: 600, start: 6000 };
        let key = DelegatedKey {
            key: VerifyingKey::new(signer.public_key().clone()).unwrap(),
            period,
            max_token_seconds: 900,
        };
        assert!(key.allows(6000, 6900, 0));
        assert!(key.allows(6599, 7499, 0));
        assert!(!key.allows(6600, 7500, 0), "issued after the period");
        assert!(key.allows(6600, 7500, 30), "within the clock leeway");
        assert!(!key.allows(5999, 6899, 0), "issued before the period");
        assert!(!key.allows(6000, 6901, 0), "longer-lived than the vouch allows");
    }
}
