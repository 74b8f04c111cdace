//! Benchmarks of the per-request work: verifying an access token (the
//! authorizer's whole job), issuing one with the local key, checking a refresh
//! token's MAC, and the argon2id verification that dominates login.
//! Run: `cargo bench -p latchkey --bench hot_paths`; figures in docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

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
    }
}

fn tokens(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let signer = Arc::new(LocalSigner::generate().unwrap());
    let config = Config::default();
    let verifier = Verifier::new(KeySet::new([signer.public_key().clone()]).unwrap(), &config);
    let issuer = AccessTokenIssuer::new(signer, &config);
    let token = runtime.block_on(issuer.issue(&subject(), NOW)).unwrap().token;

    c.bench_function("access_token_verify_es256", |b| b.iter(|| verifier.verify(black_box(&token), NOW).unwrap()));
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

criterion_group!(benches, tokens, passwords);
criterion_main!(benches);
