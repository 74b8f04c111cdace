//! Test support: clients for the moto server that `scripts/test` starts.
#![allow(dead_code, clippy::panic)]

use aws_config::BehaviorVersion;

/// A KMS client pointed at moto, or `None` (test skipped with a message) when
/// `AWS_ENDPOINT_URL` is unset outside CI. Under `CI=true` a missing moto is a
/// failure, never a silent skip.
pub async fn moto_kms() -> Option<aws_sdk_kms::Client> {
    moto_config()
        .await
        .map(|config| aws_sdk_kms::Client::new(&config))
}

async fn moto_config() -> Option<aws_config::SdkConfig> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!(
                "AWS_ENDPOINT_URL is unset: this test needs moto, and CI=true forbids skipping (run scripts/test)"
            );
        }
        eprintln!("SKIPPED: AWS_ENDPOINT_URL is unset; run scripts/test to start moto");
        return None;
    }
    Some(aws_config::defaults(BehaviorVersion::latest()).load().await)
}
