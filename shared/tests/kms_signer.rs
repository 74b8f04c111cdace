//! `KmsSigner` and `KeySet::from_kms` against KMS on moto: thousands of ES256
//! signatures through the real DER-to-JOSE path, each checked by our own verifier.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use latchkey::signing::{JwkError, KeySet, KmsSigner, SigningAlgorithm, SigningError, derive_refresh_key};
use latchkey::token::{AccessTokenIssuer, RefreshToken, SessionId, Subject, TokenError, Verifier};
use latchkey::{Clock, Config, SystemClock};

async fn create_key(kms: &aws_sdk_kms::Client, spec: KeySpec) -> String {
    support::create_kms_key(kms, KeyUsageType::SignVerify, spec).await.key_id().to_owned()
}

fn subject(n: usize) -> Subject {
    Subject {
        user_id: format!("user-{n}"),
        email: format!("user{n}@example.com"),
        role: "member".into(),
        session_id: format!("session-{n}"),
        amr: vec!["pwd".to_owned()],
    }
}

async fn issuer_and_verifier(kms: &aws_sdk_kms::Client, key_id: &str) -> (AccessTokenIssuer, Verifier) {
    let config = Config { kms_key_id: Some(key_id.to_owned()), ..Config::default() };
    let signer = KmsSigner::new(kms.clone(), key_id).await.unwrap();
    let keys = KeySet::from_config(&config, kms).await.unwrap();
    (AccessTokenIssuer::new(Arc::new(signer), &config), Verifier::new(keys, &config))
}

#[tokio::test]
async fn two_thousand_kms_es256_tokens_all_verify() {
    let Some(kms) = support::moto_kms().await else {
        return;
    };
    let key_id = create_key(&kms, KeySpec::EccNistP256).await;
    let (issuer, verifier) = issuer_and_verifier(&kms, &key_id).await;
    assert_eq!(issuer.signer().public_key().algorithm, SigningAlgorithm::Es256);
    let now = SystemClock.now();

    let tokens: Vec<String> = futures::stream::iter(0..2_000)
        .map(|n| {
            let issuer = issuer.clone();
            async move { issuer.issue(&subject(n), now).await.unwrap().token }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let mut short_halves = 0;
    for token in &tokens {
        let claims = verifier.verify(token, now).unwrap_or_else(|e| panic!("{e}: {token}"));
        assert!(claims.sub.starts_with("user-"));
        let signature = URL_SAFE_NO_PAD.decode(token.rsplit('.').next().unwrap()).unwrap();
        assert_eq!(signature.len(), 64);
        short_halves += usize::from(signature[0] == 0) + usize::from(signature[32] == 0);
    }
    // About 1 in 256 halves starts with a zero byte; 4000 halves without one would
    // mean the padding path was never exercised (odds about 1 in 6 million).
    assert!(short_halves > 0, "no short r or s in 2000 signatures");
}

#[tokio::test]
async fn kms_rsa_3072_key_signs_rs256_tokens() {
    let Some(kms) = support::moto_kms().await else {
        return;
    };
    let key_id = create_key(&kms, KeySpec::Rsa3072).await;
    let (issuer, verifier) = issuer_and_verifier(&kms, &key_id).await;
    assert_eq!(issuer.signer().public_key().algorithm, SigningAlgorithm::Rs256);
    let now = SystemClock.now();
    for n in 0..20 {
        let issued = issuer.issue(&subject(n), now).await.unwrap();
        assert_eq!(verifier.verify(&issued.token, now).unwrap(), issued.claims);
    }
}

#[tokio::test]
async fn kms_rsa_2048_key_is_refused() {
    let Some(kms) = support::moto_kms().await else {
        return;
    };
    let key_id = create_key(&kms, KeySpec::Rsa2048).await;
    let outcome = KmsSigner::new(kms.clone(), &key_id).await;
    assert!(matches!(outcome, Err(SigningError::UnusableKey(JwkError::RsaTooSmall(2048)))), "{outcome:?}");
}

#[tokio::test]
async fn signer_named_by_alias_signs_with_the_key_it_resolved() {
    let Some(kms) = support::moto_kms().await else {
        return;
    };
    let first = create_key(&kms, KeySpec::EccNistP256).await;
    let alias = format!("alias/latchkey-test-{}", &first[..8]);
    kms.create_alias().alias_name(&alias).target_key_id(&first).send().await.unwrap();
    let (issuer, verifier) = issuer_and_verifier(&kms, &alias).await;

    // Point the alias at a new key: the warm signer must keep signing with the key
    // whose kid it advertises, or its tokens would stop verifying.
    let second = create_key(&kms, KeySpec::EccNistP256).await;
    kms.update_alias().alias_name(&alias).target_key_id(&second).send().await.unwrap();
    // The move took effect: a signer started now resolves the alias to the new key.
    let (moved, _) = issuer_and_verifier(&kms, &alias).await;
    assert_ne!(moved.signer().public_key().kid, issuer.signer().public_key().kid, "UpdateAlias did not move the alias");
    let now = SystemClock.now();
    let issued = issuer.issue(&subject(1), now).await.unwrap();
    assert!(verifier.verify(&issued.token, now).is_ok());
    let header = jsonwebtoken::decode_header(&issued.token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(issuer.signer().public_key().kid.as_str()));
}

#[tokio::test]
async fn key_set_from_kms_accepts_both_keys_during_rotation() {
    let Some(kms) = support::moto_kms().await else {
        return;
    };
    let old = create_key(&kms, KeySpec::EccNistP256).await;
    let new = create_key(&kms, KeySpec::EccNistP256).await;
    let config = Config { kms_key_id: Some(new.clone()), kms_verify_key_ids: vec![old.clone()], ..Config::default() };
    let verifier = Verifier::new(KeySet::from_config(&config, &kms).await.unwrap(), &config);
    assert_eq!(verifier.keys().len(), 2);
    let now = SystemClock.now();
    for key_id in [&old, &new] {
        let signer = KmsSigner::new(kms.clone(), key_id).await.unwrap();
        let issued = AccessTokenIssuer::new(Arc::new(signer), &config).issue(&subject(0), now).await.unwrap();
        assert!(verifier.verify(&issued.token, now).is_ok());
    }
    let retired = create_key(&kms, KeySpec::EccNistP256).await;
    let signer = KmsSigner::new(kms.clone(), &retired).await.unwrap();
    let issued = AccessTokenIssuer::new(Arc::new(signer), &config).issue(&subject(0), now).await.unwrap();
    assert_eq!(verifier.verify(&issued.token, now), Err(TokenError::UnknownKey));
}

#[tokio::test]
async fn jwks_published_from_kms_keys_verifies_without_kms() {
    let Some(kms) = support::moto_kms().await else {
        return;
    };
    let key_id = create_key(&kms, KeySpec::EccNistP256).await;
    let (issuer, kms_verifier) = issuer_and_verifier(&kms, &key_id).await;
    let jwks = kms_verifier.keys().to_jwks_json().to_string();

    // A client that cannot reach anything: the JWKS path must not need it.
    let offline = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build(),
    );
    let config = Config { jwks: Some(jwks), ..Config::default() };
    let verifier = Verifier::new(KeySet::from_config(&config, &offline).await.unwrap(), &config);
    let now = SystemClock.now();
    let issued = issuer.issue(&subject(3), now).await.unwrap();
    assert_eq!(verifier.verify(&issued.token, now).unwrap(), issued.claims);
}

#[tokio::test]
async fn unknown_kms_key_is_an_error_not_a_panic() {
    let Some(kms) = support::moto_kms().await else {
        return;
    };
    let outcome = KmsSigner::new(kms, "alias/does-not-exist").await;
    assert!(matches!(outcome, Err(SigningError::Kms { operation: "GetPublicKey", .. })), "{outcome:?}");
}

#[tokio::test]
async fn refresh_key_derived_from_kms_is_stable_per_key_and_distinct_across_keys() {
    let Some(kms) = support::moto_kms().await else {
        return;
    };
    let create_hmac = || async {
        let created = kms
            .create_key()
            .key_usage(KeyUsageType::GenerateVerifyMac)
            .key_spec(KeySpec::Hmac256)
            .send()
            .await
            .unwrap();
        created.key_metadata().unwrap().key_id().to_owned()
    };
    let (first, second) = (create_hmac().await, create_hmac().await);
    let token = RefreshToken { session_id: SessionId::random().unwrap(), generation: 4 };
    let minted = derive_refresh_key(&kms, &first).await.unwrap().mint(&token);
    let again = derive_refresh_key(&kms, &first).await.unwrap();
    assert_eq!(again.verify(&minted).unwrap(), token, "another cold start derives the same key");
    let other = derive_refresh_key(&kms, &second).await.unwrap();
    assert!(other.verify(&minted).is_err());
    let signing_key = create_key(&kms, KeySpec::EccNistP256).await;
    assert!(derive_refresh_key(&kms, &signing_key).await.is_err());
}
