//! KMS and DynamoDB calls of 1,000 refreshes (and the login before them) in each
//! signing mode, counted at a proxy in front of moto: the figures of
//! docs/performance.md, "KMS calls per 1,000 refreshes". Needs moto
//! (`AWS_ENDPOINT_URL`). Usage: `cargo run -p latchkey-tests --example kms_calls [N]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use latchkey::config::{SigningConfig, SigningMode};

#[tokio::main]
async fn main() {
    let refreshes: u32 = std::env::args().nth(1).map_or(1000, |n| n.parse().unwrap());
    println!("| Mode | AWS calls of one login | AWS calls of {refreshes} refreshes |");
    println!("| --- | --- | --- |");
    for (name, signing) in [
        ("kms", SigningConfig::default()),
        ("delegated (3600 s)", SigningConfig { mode: SigningMode::Delegated, key_period: Duration::from_secs(3600) }),
    ] {
        let (login, calls) = latchkey_tests::proxy::calls_of_refreshes(signing, refreshes).await.expect("moto");
        let show = |calls: &std::collections::BTreeMap<String, u32>| {
            calls.iter().map(|(target, n)| format!("{target} {n}")).collect::<Vec<_>>().join(", ")
        };
        println!("| {name} | {} | {} |", show(&login), show(&calls));
    }
}
