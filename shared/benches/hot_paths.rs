//! Benchmarks of the per-request work: verifying an access token (the
//! authorizer's whole job), issuing one with the local key, checking a refresh
//! token's MAC, the authorizer on a whole event, and the argon2id verification
//! that dominates login.
//! Run: `cargo bench -p latchkey --bench hot_paths`; figures in docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use latchkey::Config;
use latchkey::password::{Password, PasswordHasher, PasswordParams};
use latchkey::signing::{KeySet, LocalSigner, Signer};
use latchkey::token::{AccessTokenIssuer, RefreshKey, RefreshToken, SessionId, Subject, Verifier};

const NOW: u64 = 1_800_000_000;

fn subject() -> Subject {
    Subject {
        user_id: "0f8c7a2e-5b1d-4e8f-9a3c-2d6b7e1f0a9b".into(),
        email: "ada@example.com".into(),
        role: "member".into(),
        session_id: "q1w2e3r4t5y6u7i8o9p0aZ".into(),
        amr: vec!["pwd".to_owned()],
    }
}

fn tokens(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let signer = Arc::new(LocalSigner::generate().unwrap());
    let config = Config::default();
    let verifier = Verifier::new(KeySet::new([signer.public_key().clone()]).unwrap(), &config);
    let issuer = AccessTokenIssuer::new(signer, &config);

    c.bench_function("access_token_verify_garbage", |b| {
        b.iter(|| verifier.verify(black_box("eyJhbGciOiJub25lIn0.e30.x"), NOW).unwrap_err())
    });
    c.bench_function("access_token_issue_es256_local", |b| {
        b.to_async(&runtime).iter(|| async { issuer.issue(black_box(&subject()), NOW).await.unwrap() })
    });

    let key = RefreshKey::generate().unwrap();
    let refresh = key.mint(&RefreshToken { session_id: SessionId::random().unwrap(), generation: 12 });
    c.bench_function("refresh_token_verify_mac", |b| b.iter(|| key.verify(black_box(&refresh)).unwrap()));
}

/// The authorizer's per-request work beside the floor, in one criterion group so
/// the ratios come from one run: raw aws-lc-rs ES256 verification of the same
/// token (split off the signature, base64url-decode it, verify; with the key
/// parsed per call as `UnparsedPublicKey`/jsonwebtoken do, and parsed once), then
/// `Verifier::verify` (every check of docs/security.md), then the whole invocation
/// body from the event's bytes (parse, verify, build the answer; no session check).
fn floor(c: &mut Criterion) {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey, VerificationAlgorithm as _};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = Config::default();
    let services = latchkey::services::Services::embedded(&config, None).unwrap();
    let token = runtime.block_on(services.login.tokens.issuer().issue(&subject(), NOW + 1)).unwrap().token;
    let mut state = services.authorizer.clone();
    state.clock = Arc::new(latchkey::clock::ManualClock::new(NOW + 2));
    state.session_check = None;
    let verifier = state.verifier.clone();
    let public = services.login.tokens.issuer().signer().public_key().clone();
    let latchkey::signing::Jwk::Ec { x, y } = &public.jwk else { unreachable!("an ES256 key") };
    let decode = |text: &str| URL_SAFE_NO_PAD.decode(text).unwrap();
    let point = [&[0x04][..], &decode(x), &decode(y)].concat();
    let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).unwrap();
    let raw = |token: &str| {
        let (input, signature) = token.rsplit_once('.').unwrap();
        (input.as_bytes().to_vec(), decode(signature))
    };
    let event = authorizer_event(&token).to_string().into_bytes();
    if let Some(dir) = std::env::var_os("LATCHKEY_BENCH_PEERS_DIR") {
        write_peer_inputs(std::path::Path::new(&dir), &services, &config, &runtime);
    }

    let mut group = c.benchmark_group("verify");
    group.bench_function("floor_aws_lc_unparsed_key", |b| {
        b.iter(|| {
            let (input, signature) = raw(black_box(&token));
            ECDSA_P256_SHA256_FIXED.verify_sig(&point, &input, &signature).unwrap()
        })
    });
    group.bench_function("floor_aws_lc_parsed_key", |b| {
        b.iter(|| {
            let (input, signature) = raw(black_box(&token));
            parsed.verify_sig(&input, &signature).unwrap()
        })
    });
    group.bench_function("latchkey_verifier", |b| b.iter(|| verifier.verify(black_box(&token), NOW + 2).unwrap()));
    group.bench_function("authorizer_body_http_api_v2", |b| {
        b.to_async(&runtime).iter(|| async {
            let event: serde_json::Value = serde_json::from_slice(black_box(&event)).unwrap();
            let answer = latchkey::authorizer::authorize(&state, event).await.unwrap();
            assert_eq!(answer["isAuthorized"], true);
        })
    });
    group.finish();
}

/// The local signer (`jsonwebtoken::crypto::sign`, which reads the PKCS#8 key on every
/// call) beside aws-lc-rs signing with the key parsed once: what using the library
/// for `latchkey dev`'s key costs per token.
fn signing(c: &mut Criterion) {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let signer = LocalSigner::generate().unwrap();
    let pem = signer.to_pkcs8_pem().unwrap();
    let pkcs8 = pem::parse(&pem).unwrap().into_contents();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).unwrap();
    let rng = SystemRandom::new();
    let input = b"eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsifQ.eyJzdWIiOiJ1In0";
    let mut group = c.benchmark_group("sign");
    group.bench_function("aws_lc_parsed_key", |b| b.iter(|| pair.sign(&rng, black_box(input)).unwrap()));
    group.bench_function("local_signer_jsonwebtoken", |b| {
        b.to_async(&runtime).iter(|| async { signer.sign(black_box(input)).await.unwrap() })
    });
    group.finish();
}

/// An HTTP API 2.0 REQUEST-authorizer event carrying `token`.
fn authorizer_event(token: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "2.0", "type": "REQUEST", "routeArn": "arn:aws:execute-api:us-east-1:1:api/$default/GET/orders",
        "identitySource": [format!("Bearer {token}")], "routeKey": "GET /orders", "rawPath": "/orders",
        "rawQueryString": "", "cookies": [], "headers": {"authorization": format!("Bearer {token}")},
        "requestContext": {"accountId": "1", "apiId": "api", "domainName": "d", "domainPrefix": "api",
            "http": {"method": "GET", "path": "/orders", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "b"},
            "requestId": "r", "routeKey": "GET /orders", "stage": "$default", "time": "", "timeEpoch": 0},
        "pathParameters": {}, "stageVariables": {}, "queryStringParameters": {}
    })
}

/// For `scripts/bench-peers`: a token valid now for 15 minutes, its JWKS and the
/// issuer and audience, so other libraries verify exactly what ours does.
#[allow(clippy::unwrap_used)]
fn write_peer_inputs(
    dir: &std::path::Path,
    services: &latchkey::services::Services,
    config: &Config,
    runtime: &tokio::runtime::Runtime,
) {
    use latchkey::Clock as _;
    let now = latchkey::SystemClock.now();
    let token = runtime.block_on(services.login.tokens.issuer().issue(&subject(), now)).unwrap().token;
    let public = services.login.tokens.issuer().signer().public_key().clone();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("token.jwt"), &token).unwrap();
    std::fs::write(dir.join("jwks.json"), KeySet::new([public]).unwrap().to_jwks_json().to_string()).unwrap();
    let params = serde_json::json!({"issuer": config.issuer, "audience": config.audience});
    std::fs::write(dir.join("params.json"), params.to_string()).unwrap();
    let keys = KeySet::from_jwks_json(&std::fs::read_to_string(dir.join("jwks.json")).unwrap()).unwrap();
    Verifier::new(keys, config).verify(&token, now).expect("the exported token verifies");
}

/// The authorizer's session check answered from its cache (the warm path between
/// two reads of a session), and how many store reads a run of them made.
fn session_check(c: &mut Criterion) {
    use latchkey::Clock as _;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let services = latchkey::services::Services::embedded(&Config::default(), None).unwrap();
    let password = Password::new("correct horse battery staple").unwrap();
    let user = runtime.block_on(services.accounts().create("ada@example.com", &password, "member")).unwrap();
    let started = runtime.block_on(services.accounts().sessions().start(&user)).unwrap();
    let now = latchkey::SystemClock.now();
    let mut subject = subject();
    (subject.user_id, subject.session_id) = (user.id.clone(), started.session.id.to_string());
    let token = runtime.block_on(services.login.tokens.issuer().issue(&subject, now)).unwrap().token;
    let claims = services.authorizer.verifier.verify(&token, now).unwrap();
    let check = services.authorizer.session_check.clone().unwrap();
    assert!(runtime.block_on(check.check(&claims, now)).live());
    c.bench_function("session_check_cached", |b| {
        b.to_async(&runtime).iter(|| async { assert!(check.check(black_box(&claims), now).await.live()) })
    });
    assert_eq!(check.reads(), 1, "every check after the first was answered from the cache");
}

fn passwords(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hasher = PasswordHasher::new(PasswordParams::default()).unwrap();
    let password = Password::new("correct horse battery staple").unwrap();
    let stored = runtime.block_on(hasher.hash(&password)).unwrap();
    let mut group = c.benchmark_group("password");
    group.sample_size(20);
    group.bench_function("verify_owasp_argon2id", |b| {
        b.to_async(&runtime).iter(|| async { hasher.verify(black_box(&password), Some(&stored)).await.unwrap() })
    });
    group.bench_function("verify_unknown_user_dummy", |b| {
        b.to_async(&runtime).iter(|| async { hasher.verify(black_box(&password), None).await.unwrap() })
    });
    group.finish();
}

criterion_group!(benches, floor, signing, tokens, session_check, passwords);
criterion_main!(benches);
