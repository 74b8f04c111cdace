//! The signing-key rotation of docs/deploy.md, phase by phase, on moto: each phase's
//! settings are what the template's `SigningKeyArn` and `ExtraVerifyKeyArn`
//! parameters give the functions, and each phase's signer, authorizer and JWKS are
//! built exactly as the deployed functions build them at cold start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use latchkey::authorizer::AuthorizerState;
use latchkey::clock::{Clock, SystemClock};
use latchkey::config::{Config, EdgeConfig};
use latchkey::deploy::{token_responder, verifier};
use latchkey::signing::KeySet;
use latchkey::token::Subject;
use latchkey_tests::Env;

struct Phase {
    config: Config,
}

impl Phase {
    /// `LATCHKEY_KMS_KEY_ID` and `LATCHKEY_KMS_VERIFY_KEY_IDS` as the template sets
    /// them from `SigningKeyArn` (empty: the stack's key) and `ExtraVerifyKeyArn`.
    fn new(env: &Env, signing: &str, extra: Option<&str>) -> Self {
        let config = Config::from_lookup(|name| match name {
            "LATCHKEY_TABLE_NAME" => Some(env.config.table_name.clone()),
            "LATCHKEY_KMS_KEY_ID" => Some(signing.to_owned()),
            "LATCHKEY_KMS_VERIFY_KEY_IDS" => extra.map(str::to_owned),
            _ => None,
        })
        .unwrap();
        Self { config }
    }

    async fn issue(&self, env: &Env) -> String {
        let tokens = token_responder(&self.config, &env.aws).await.unwrap();
        let subject = Subject {
            user_id: env.demo.id.clone(),
            email: env.demo.email.clone(),
            role: "member".into(),
            session_id: "c2Vzc2lvbi1yb3RhdGlvbjE".into(),
            amr: vec!["pwd".to_owned()],
        };
        tokens.issuer().issue(&subject, SystemClock.now()).await.unwrap().token
    }

    async fn accepts(&self, env: &Env, token: &str) -> bool {
        let verifier = verifier(&self.config, &env.aws).await.unwrap();
        let authorizer = AuthorizerState::deployed(&self.config, &env.aws).await.unwrap();
        let by_authorizer = authorizer.verifier.verify(token, SystemClock.now()).is_ok();
        let by_logout = verifier.verify(token, SystemClock.now()).is_ok();
        assert_eq!(by_authorizer, by_logout, "the authorizer and logout disagree");
        by_authorizer
    }

    async fn published(&self, env: &Env) -> usize {
        KeySet::from_config(&self.config, env.aws.kms()).await.unwrap().len()
    }
}

async fn new_signing_key(env: &Env) -> String {
    let key =
        latchkey_tests::support::create_kms_key(env.aws.kms(), KeyUsageType::SignVerify, KeySpec::EccNistP256).await;
    key.arn().unwrap().to_owned()
}

#[tokio::test]
async fn rotation_keeps_old_tokens_through_the_overlap_and_refuses_them_after_retirement() {
    let Some(env) = Env::new(EdgeConfig::default()).await else { return };
    let old = new_signing_key(&env).await;
    let new = new_signing_key(&env).await;

    // Before: the stack's key signs and is the only one.
    let before = Phase::new(&env, &old, None);
    let old_token = before.issue(&env).await;
    assert!(before.accepts(&env, &old_token).await);
    assert_eq!(before.published(&env).await, 1);

    // Step 2, publish the new key: ExtraVerifyKeyArn=<new>, the old key still signs.
    let published = Phase::new(&env, &old, Some(&new));
    assert_eq!(published.published(&env).await, 2, "the JWKS publishes both keys");
    assert!(published.accepts(&env, &old_token).await);
    let still_old = published.issue(&env).await;
    assert!(before.accepts(&env, &still_old).await, "step 2 must not change the signing key");

    // Step 3, switch signing: SigningKeyArn=<new>, ExtraVerifyKeyArn=<old>.
    let switched = Phase::new(&env, &new, Some(&old));
    let new_token = switched.issue(&env).await;
    assert!(switched.accepts(&env, &old_token).await, "tokens of the old key verify through the overlap");
    assert!(switched.accepts(&env, &new_token).await);
    assert!(published.accepts(&env, &new_token).await, "instances still in step 2 accept the new key's tokens");
    assert!(!before.accepts(&env, &new_token).await, "skipping step 2 would refuse the new key's tokens");

    // Step 4, retire: SigningKeyArn=<new>, ExtraVerifyKeyArn empty.
    let retired = Phase::new(&env, &new, None);
    assert!(!retired.accepts(&env, &old_token).await, "the retired key's tokens are refused");
    assert!(retired.accepts(&env, &new_token).await);
    assert_eq!(retired.published(&env).await, 1);
}
