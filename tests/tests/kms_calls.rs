//! KMS calls per refresh in each signing mode, counted at a proxy between the
//! deployed login and refresh functions' states and moto (tests/src/proxy.rs):
//! `kms` signs every token with KMS; `delegated` makes no KMS call per token, one
//! `Sign` per key period (the login here made the period's key). The figures for
//! 1,000 refreshes are in docs/performance.md (`cargo run -p latchkey-tests
//! --example kms_calls`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use latchkey::config::{SigningConfig, SigningMode};
use latchkey_tests::proxy::calls_of_refreshes;

const REFRESHES: u32 = 40;
const SIGN: &str = "trentservice.sign";

fn kms_calls(calls: &std::collections::BTreeMap<String, u32>) -> u32 {
    calls.iter().filter(|(target, _)| target.starts_with("trentservice.")).map(|(_, n)| n).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn kms_signs_every_refresh_and_delegated_signing_signs_once_a_period() {
    let Some((login, refreshes)) = calls_of_refreshes(SigningConfig::default(), REFRESHES).await else { return };
    assert_eq!(login.get(SIGN), Some(&1), "{login:?}");
    assert_eq!(refreshes.get(SIGN), Some(&REFRESHES), "{refreshes:?}");
    assert_eq!(kms_calls(&refreshes), REFRESHES, "nothing but Sign: {refreshes:?}");

    let delegated = SigningConfig { mode: SigningMode::Delegated, key_period: Duration::from_secs(3600) };
    let (login, refreshes) = calls_of_refreshes(delegated, REFRESHES).await.unwrap();
    // The login made the period's key: one Sign for its vouch (and, past the
    // middle of the period, one more for the next period's key).
    let signs = login.get(SIGN).copied().unwrap_or(0);
    assert!((1..=2).contains(&signs), "{login:?}");
    assert_eq!(kms_calls(&login), signs, "{login:?}");
    // The refresh function read the key the login made; at most one Sign more (the
    // next period's key, when no instance had made it yet), never one per token.
    assert!(kms_calls(&refreshes) <= 1, "{refreshes:?}");
    let reads = refreshes.get("dynamodb_20120810.getitem").copied().unwrap_or(0);
    assert!(reads <= 2 * REFRESHES + 3, "a key read at most once or twice per period: {refreshes:?}");
}
