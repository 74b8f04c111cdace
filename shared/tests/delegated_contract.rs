//! Delegated signing over both stores, on a manual clock: period keys roll over
//! with no failed verification and appear in the JWKS before they sign; instances
//! share one key per period (first writer wins); one long-term signature per period;
//! verifiers learn a key with one read and refuse what the long-term key did not
//! vouch for; a leaked period key mints nothing valid past its period; made-up
//! `kid`s cost at most one read per period per second; the table holds no usable
//! private key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use latchkey::Clock;
use latchkey::config::{Config, SigningConfig, SigningMode};
use latchkey::deploy::{issuing_signer, verifier_over};
use latchkey::signing::{
    DelegatedKeyRecord, DelegatedKeyStore, KeyPeriod, KeySet, LocalSigner, PublicKey, Signer, SigningError,
};
use latchkey::token::{AccessClaims, AccessTokenIssuer, TokenError, Verifier, sign_jwt};
use support::{Backend, START, subject};

/// Five-minute keys and fifteen-minute tokens: a token outlives three periods.
fn config() -> Config {
    Config {
        signing: SigningConfig { mode: SigningMode::Delegated, key_period: Duration::from_secs(300) },
        access_token_ttl: Duration::from_secs(900),
        ..Config::default()
    }
}

/// The long-term key, counting its signatures (the stand-in for KMS `Sign`).
struct Root {
    key: LocalSigner,
    signatures: AtomicU32,
}

impl Root {
    fn new() -> Arc<Self> {
        Arc::new(Self { key: LocalSigner::generate().unwrap(), signatures: AtomicU32::new(0) })
    }
}

#[async_trait]
impl Signer for Root {
    fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    async fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SigningError> {
        self.signatures.fetch_add(1, Ordering::SeqCst);
        self.key.sign(signing_input).await
    }
}

/// One function instance's issuer: a delegated signer over `b`'s store.
fn instance(b: &Backend, root: &Arc<Root>) -> AccessTokenIssuer {
    let signer = issuing_signer(&config(), root.clone(), b.signing_keys.clone(), &b.key).unwrap();
    AccessTokenIssuer::new(signer, &config())
}

/// A verifier (the authorizer's) that knows only the long-term key.
fn verifier(b: &Backend, root: &Root) -> Verifier {
    verifier_over(&config(), KeySet::new([root.public_key().clone()]).unwrap(), b.signing_keys.clone())
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(&b64(header)).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn b64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

async fn published_kids(verifier: &Verifier, now: u64) -> BTreeSet<String> {
    let keys = verifier.delegated().unwrap().published(now).await.unwrap();
    keys.into_iter().map(|key| key.kid).collect()
}

async fn tokens_roll_over_every_period_boundary_without_a_failed_verification(b: Backend) {
    let root = Root::new();
    let (a, c) = (instance(&b, &root), instance(&b, &root));
    let authorizer = verifier(&b, &root);
    let jwks = verifier(&b, &root);
    let mut issued: Vec<(String, u64)> = Vec::new();
    let mut ever_published = BTreeSet::new();
    let mut kids = BTreeMap::new();
    // Four periods and a bit, a request every 7 s from each of two instances.
    while b.clock.now() < START + 4 * 300 + 60 {
        let now = b.clock.now();
        for issuer in [&a, &c] {
            let token = issuer.issue(&subject(), now).await.unwrap();
            let kid = kid_of(&token.token);
            assert!(
                KeyPeriod::containing(300, now).start == START || ever_published.contains(&kid),
                "{kid} signed at {now} before any JWKS published it"
            );
            assert!(published_kids(&jwks, now).await.contains(&kid), "the JWKS has the key it signed with");
            kids.entry(KeyPeriod::containing(300, now)).or_insert_with(BTreeSet::new).insert(kid);
            issued.push((token.token, token.claims.exp));
        }
        // Every token a verifier still accepts (unexpired, or within the clock
        // leeway past `exp`) verifies, and the JWKS still has its key: the ones from
        // earlier periods too, signed just before a boundary.
        let published = published_kids(&jwks, now).await;
        let leeway = config().clock_skew.as_secs();
        for (token, exp) in &issued {
            if now < *exp + leeway {
                let verified = authorizer.verify_live(token, now).await;
                assert!(verified.is_ok(), "at {now}: {verified:?}");
                assert!(published.contains(&kid_of(token)), "at {now} the JWKS lacks the key of a valid token");
            }
        }
        ever_published.extend(published);
        b.clock.advance(7);
    }
    assert_eq!(kids.len(), 5, "five periods");
    assert!(kids.values().all(|kids| kids.len() == 1), "both instances sign with the one key of a period: {kids:?}");
    let published = published_kids(&jwks, b.clock.now()).await.len();
    assert!(published <= 6, "{published} keys: previous four (15 min + 30 s of leeway), current, next");
    // One long-term signature per period (each key's vouch, made once by the first
    // instance to need it), not one per token.
    let signatures = root.signatures.load(Ordering::SeqCst);
    assert_eq!(signatures, 5, "{signatures} signatures for {} tokens", issued.len());
}

async fn instances_starting_together_share_one_key(b: Backend) {
    let root = Root::new();
    let instances: Vec<AccessTokenIssuer> = (0..8).map(|_| instance(&b, &root)).collect();
    let now = b.clock.now() + 1;
    let who = subject();
    let tokens = futures::future::join_all(instances.iter().map(|issuer| issuer.issue(&who, now))).await;
    let kids: BTreeSet<String> = tokens.into_iter().map(|token| kid_of(&token.unwrap().token)).collect();
    assert_eq!(kids.len(), 1, "{kids:?}");
    let stored = b.signing_keys.delegated_key(KeyPeriod::containing(300, now), true).await.unwrap().unwrap();
    assert!(kids.contains(&stored.kid));
}

async fn a_verifier_learns_a_key_with_one_read_and_refuses_made_up_kids_cheaply(b: Backend) {
    let root = Root::new();
    let store = CountingKeys::over(b.signing_keys.clone());
    let issuer = AccessTokenIssuer::new(
        issuing_signer(&config(), root.clone(), b.signing_keys.clone(), &b.key).unwrap(),
        &config(),
    );
    let authorizer = verifier_over(&config(), KeySet::new([root.public_key().clone()]).unwrap(), store.clone());
    let now = b.clock.now();
    let token = issuer.issue(&subject(), now).await.unwrap().token;
    for _ in 0..20 {
        authorizer.verify_live(&token, now).await.unwrap();
    }
    assert_eq!(store.reads(), 1, "one read for the new key, none after");

    // A kid of a plausible period with another thumbprint: at most one read per
    // period per second, however many tokens name one.
    let period = KeyPeriod::containing(300, now).next();
    let forged = LocalSigner::generate().unwrap();
    for n in 0..50 {
        let kid = period.kid(&format!("{:0>43}", n));
        let token = token_with_kid(&forged, &kid, now).await;
        assert_eq!(authorizer.verify_live(&token, now).await, Err(TokenError::UnknownKey));
    }
    assert_eq!(store.reads(), 2, "one read for the whole flood");
    // Another period length than the deployment's: no read.
    let other_length = KeyPeriod::containing(600, now).kid(&"B".repeat(43));
    assert_eq!(
        authorizer.verify_live(&token_with_kid(&forged, &other_length, now).await, now).await,
        Err(TokenError::UnknownKey)
    );
    assert_eq!(store.reads(), 2);
    // A period no valid token can come from: no read at all.
    let old = KeyPeriod::containing(300, now - 3 * 3600);
    let token = token_with_kid(&forged, &old.kid(&"A".repeat(43)), now).await;
    assert_eq!(authorizer.verify_live(&token, now).await, Err(TokenError::UnknownKey));
    assert_eq!(store.reads(), 2);
    // A store failure refuses (fail closed) rather than accepting anything.
    let fresh = verifier_over(&config(), KeySet::new([root.public_key().clone()]).unwrap(), store.clone());
    store.fail();
    let refused = fresh.verify_live(&token_again(&issuer, now).await, now).await;
    assert!(matches!(refused, Err(TokenError::KeyUnavailable(_))), "{refused:?}");
}

/// Counts reads of the key store, and fails them all once told to.
struct CountingKeys {
    inner: Arc<dyn DelegatedKeyStore>,
    reads: AtomicU32,
    failing: std::sync::atomic::AtomicBool,
}

impl CountingKeys {
    fn over(inner: Arc<dyn DelegatedKeyStore>) -> Arc<Self> {
        Arc::new(Self { inner, reads: AtomicU32::new(0), failing: false.into() })
    }

    fn reads(&self) -> u32 {
        self.reads.load(Ordering::SeqCst)
    }

    fn fail(&self) {
        self.failing.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl DelegatedKeyStore for CountingKeys {
    async fn delegated_key(
        &self,
        period: KeyPeriod,
        private: bool,
    ) -> Result<Option<DelegatedKeyRecord>, SigningError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(SigningError::KeyStore("injected outage".into()));
        }
        self.inner.delegated_key(period, private).await
    }

    async fn put_delegated_key(&self, record: &DelegatedKeyRecord) -> Result<bool, SigningError> {
        self.inner.put_delegated_key(record).await
    }
}

async fn token_again(issuer: &AccessTokenIssuer, now: u64) -> String {
    issuer.issue(&subject(), now).await.unwrap().token
}

/// A token with the default claims, signed by `key` under the header `kid`.
async fn token_with_kid(key: &LocalSigner, kid: &str, now: u64) -> String {
    claims_token(key, kid, now, now + 900).await
}

async fn claims_token(key: &LocalSigner, kid: &str, iat: u64, exp: u64) -> String {
    let defaults = Config::default();
    let claims = AccessClaims {
        iss: defaults.issuer,
        aud: defaults.audience,
        sub: "user-1".into(),
        email: "ada@example.com".into(),
        role: "Admin".into(),
        sid: "c2Vzc2lvbi1maXh0dXJlMQ".into(),
        amr: vec!["pwd".into()],
        jti: format!("jti-{iat}-{exp}"),
        iat,
        nbf: iat,
        exp,
    };
    // sign_jwt names the signer's own kid; rename it by re-signing the header.
    let token = sign_jwt(key, &claims).await.unwrap();
    let (_, rest) = token.split_once('.').unwrap();
    let (payload, _) = rest.split_once('.').unwrap();
    let header = serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
    let input = format!("{}.{payload}", b64url(&serde_json::to_vec(&header).unwrap()));
    let signature = key.sign(input.as_bytes()).await.unwrap();
    format!("{input}.{}", b64url(&signature))
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn a_key_the_long_term_key_did_not_vouch_for_is_refused_everywhere(b: Backend) {
    let root = Root::new();
    let now = b.clock.now();
    let period = KeyPeriod::containing(300, now);
    // Someone who can write the table but not sign with the long-term key plants a
    // record vouched by a key of their own.
    let impostor = Root::new();
    let planted = instance(&b, &impostor);
    let token = planted.issue(&subject(), now).await.unwrap().token;
    let authorizer = verifier(&b, &root);
    assert_eq!(authorizer.verify_live(&token, now).await, Err(TokenError::UnknownKey));
    assert!(published_kids(&authorizer, now).await.is_empty(), "never published");
    // A signer does not use it either: it signs that period with the long-term key.
    let fallback = instance(&b, &root).issue(&subject(), now).await.unwrap().token;
    assert_eq!(kid_of(&fallback), root.public_key().kid, "signed by the long-term key itself");
    assert!(authorizer.verify_live(&fallback, now).await.is_ok());

    // A period key cannot vouch for another: only long-term keys are roots.
    let next = period.next();
    let genuine = instance(&b, &root);
    let later = next.start + 1;
    let issued = genuine.issue(&subject(), later).await.unwrap().token;
    assert!(authorizer.verify_live(&issued, later).await.is_ok());
    let stored = b.signing_keys.delegated_key(next, false).await.unwrap().unwrap();
    assert_ne!(stored.vouch.split('.').next(), None);
    let header: serde_json::Value = serde_json::from_slice(&b64(stored.vouch.split('.').next().unwrap())).unwrap();
    assert_eq!(header["kid"], root.public_key().kid.as_str(), "vouched by the long-term key");
    assert_eq!(header["typ"], "latchkey-key+jwt");
    // A vouch is no access token.
    assert_eq!(authorizer.verify_live(&stored.vouch, later).await, Err(TokenError::WrongType));

    // Ending every period key at once: verifiers that no longer trust the old
    // long-term key (rotated, then retired) refuse every token its keys signed.
    let rotated = verifier(&b, &Root::new());
    assert_eq!(rotated.verify_live(&issued, later).await, Err(TokenError::UnknownKey));
}

async fn a_leaked_period_key_mints_nothing_valid_past_its_period(b: Backend) {
    let root = Root::new();
    let now = b.clock.now();
    let signer = issuing_signer(&config(), root.clone(), b.signing_keys.clone(), &b.key).unwrap();
    let issued = AccessTokenIssuer::new(signer.clone(), &config()).issue(&subject(), now).await.unwrap().token;
    let kid = kid_of(&issued);
    // The period key as a compromised instance holds it.
    let stored = b.signing_keys.delegated_key(KeyPeriod::containing(300, now), true).await.unwrap().unwrap();
    let leaked = open_leaked(&b, &stored);
    let authorizer = verifier(&b, &root);
    let period = KeyPeriod::containing(300, now);
    let good = claims_token(&leaked, &kid, now, now + 900).await;
    assert!(authorizer.verify_live(&good, now).await.is_ok(), "the leaked key signs like the real one");
    // Issued after its period (here 2 hours on), or living longer than 15 minutes: refused.
    let later = period.end() + 2 * 3600;
    let after = claims_token(&leaked, &kid, period.end() + 60, period.end() + 960).await;
    assert_eq!(authorizer.verify_live(&after, period.end() + 61).await, Err(TokenError::OutsideKeyPeriod));
    let long = claims_token(&leaked, &kid, now, later).await;
    assert_eq!(authorizer.verify_live(&long, now).await, Err(TokenError::OutsideKeyPeriod));
}

/// The private half of `record`, opened as an instance with the refresh key does.
fn open_leaked(b: &Backend, record: &DelegatedKeyRecord) -> LocalSigner {
    let seal = latchkey::signing::SealingKey::derive(&b.key, b"latchkey delegated signing key seal v1").unwrap();
    let der = seal.open(record.kid.as_bytes(), record.sealed_private.as_deref().unwrap()).unwrap();
    LocalSigner::from_pkcs8_der(&der).unwrap()
}

async fn the_table_holds_no_usable_private_key_and_verifiers_never_read_it(b: Backend) {
    let root = Root::new();
    let now = b.clock.now();
    instance(&b, &root).issue(&subject(), now).await.unwrap();
    let period = KeyPeriod::containing(300, now);
    let public = b.signing_keys.delegated_key(period, false).await.unwrap().unwrap();
    assert_eq!(public.sealed_private, None, "a verifier's read carries no private half");
    let private = b.signing_keys.delegated_key(period, true).await.unwrap().unwrap();
    let leaked = open_leaked(&b, &private);
    let der = leaked.to_pkcs8_der().unwrap();
    let pem = leaked.to_pkcs8_pem().unwrap();
    let dump = b.dump().await.join("\n");
    assert!(!dump.contains(&b64url(&der)) && !dump.contains(pem.lines().nth(1).unwrap()));
    // Another deployment's refresh key (or none) opens nothing.
    let other = latchkey::token::RefreshKey::generate().unwrap();
    let seal = latchkey::signing::SealingKey::derive(&other, b"latchkey delegated signing key seal v1").unwrap();
    assert!(seal.open(private.kid.as_bytes(), private.sealed_private.as_deref().unwrap()).is_none());
    if b.table.is_some() {
        assert!(dump.contains(private.sealed_private.as_deref().unwrap()), "the sealed half is what is stored");
    }
}

/// Made-up kids for the next period, sent before and across the boundary, do not
/// keep the real key out: the first read learns the period's key whatever kid asked,
/// and then no other kid of that period costs a read.
async fn made_up_kids_cannot_keep_the_real_key_out(b: Backend) {
    let root = Root::new();
    let issuer = instance(&b, &root);
    let authorizer = verifier(&b, &root);
    let start = b.clock.now();
    let next = KeyPeriod::containing(300, start).next();
    let forged = LocalSigner::generate().unwrap();
    let made_up = token_with_kid(&forged, &next.kid(&"C".repeat(43)), start).await;
    // Past the middle: the real next key exists; the attacker's kid is read first.
    b.clock.set(start + 200);
    issuer.issue(&subject(), b.clock.now()).await.unwrap();
    assert_eq!(authorizer.verify_live(&made_up, b.clock.now()).await, Err(TokenError::UnknownKey));
    b.clock.set(next.start);
    assert_eq!(authorizer.verify_live(&made_up, next.start).await, Err(TokenError::UnknownKey));
    let real = issuer.issue(&subject(), next.start).await.unwrap().token;
    assert!(authorizer.verify_live(&real, next.start).await.is_ok(), "the real key was learnt all the same");
}

/// The middle of a KMS key rotation: the period's key was vouched for by the old
/// long-term key. A signer on the new key signs that period with the new key itself
/// (no outage); the next period gets a key the new one vouches for. Raising the
/// token lifetime mid-period does the same (the stored key's vouch caps tokens shorter).
async fn a_rotated_long_term_key_or_a_longer_lifetime_signs_without_an_outage(b: Backend) {
    let (old, new) = (Root::new(), Root::new());
    let now = b.clock.now();
    let before = instance(&b, &old).issue(&subject(), now).await.unwrap().token;
    let both = verifier_over(
        &config(),
        KeySet::new([old.public_key().clone(), new.public_key().clone()]).unwrap(),
        b.signing_keys.clone(),
    );
    let during = instance(&b, &new).issue(&subject(), now + 1).await.unwrap().token;
    assert_eq!(kid_of(&during), new.public_key().kid, "the new long-term key signs this period");
    for token in [&before, &during] {
        assert!(both.verify_live(token, now + 1).await.is_ok());
    }
    let next = KeyPeriod::containing(300, now).next();
    let after = instance(&b, &new).issue(&subject(), next.start).await.unwrap().token;
    assert!(kid_of(&after).starts_with("d1.300."), "a new period key");
    assert!(both.verify_live(&after, next.start).await.is_ok());
    let vouch = b.signing_keys.delegated_key(next, false).await.unwrap().unwrap().vouch;
    let header: serde_json::Value = serde_json::from_slice(&b64(vouch.split('.').next().unwrap())).unwrap();
    assert_eq!(header["kid"], new.public_key().kid.as_str());

    let longer = Config { access_token_ttl: Duration::from_secs(1800), ..config() };
    let signer = issuing_signer(&longer, new.clone(), b.signing_keys.clone(), &b.key).unwrap();
    let long = AccessTokenIssuer::new(signer, &longer).issue(&subject(), next.start + 1).await.unwrap().token;
    assert_eq!(kid_of(&long), new.public_key().kid, "a 30-minute token is not signed by a 15-minute key");
}

/// A store outage in the second half of a period: tokens still issue with the
/// current key, and the next key is attempted once per retry window, not per token.
async fn a_failing_ahead_attempt_is_not_repeated_for_every_token(b: Backend) {
    let root = Root::new();
    let store = CountingKeys::over(b.signing_keys.clone());
    let issuer =
        AccessTokenIssuer::new(issuing_signer(&config(), root.clone(), store.clone(), &b.key).unwrap(), &config());
    let start = KeyPeriod::containing(300, b.clock.now()).start;
    let current = kid_of(&token_again(&issuer, start + 10).await);
    store.fail();
    let reads = store.reads();
    for _ in 0..20 {
        assert_eq!(kid_of(&token_again(&issuer, start + 160).await), current, "the current key still signs");
    }
    assert_eq!(store.reads(), reads + 1, "one attempt at the next key, not one per token");
    token_again(&issuer, start + 189).await;
    assert_eq!(store.reads(), reads + 1, "none within 30 s of the failure");
    token_again(&issuer, start + 190).await;
    assert_eq!(store.reads(), reads + 2, "then one more");
}

contract!(
    a_failing_ahead_attempt_is_not_repeated_for_every_token,
    made_up_kids_cannot_keep_the_real_key_out,
    a_rotated_long_term_key_or_a_longer_lifetime_signs_without_an_outage,
    tokens_roll_over_every_period_boundary_without_a_failed_verification,
    instances_starting_together_share_one_key,
    a_verifier_learns_a_key_with_one_read_and_refuses_made_up_kids_cheaply,
    a_key_the_long_term_key_did_not_vouch_for_is_refused_everywhere,
    a_leaked_period_key_mints_nothing_valid_past_its_period,
    the_table_holds_no_usable_private_key_and_verifiers_never_read_it,
);
