//! `latchkey token decode|verify`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use latchkey::deploy::Aws;
use latchkey::signing::{DelegatedKeys, KeyPeriod, KeySet, listed_period_key};
use latchkey::store::DynamoStore;
use latchkey::token::dangerous::decode_unverified;
use latchkey::token::{AccessClaims, Verifier};
use latchkey::{Clock, Config, SystemClock};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a token's header and claims WITHOUT verifying it.
    Decode {
        /// The access token (compact JWS).
        jwt: String,
    },
    /// Verify a token against the configured keys (LATCHKEY_JWKS, or
    /// LATCHKEY_KMS_KEY_ID and LATCHKEY_KMS_VERIFY_KEY_IDS via KMS, with period keys
    /// of delegated signing read from LATCHKEY_TABLE_NAME) and say exactly why it fails.
    Verify {
        /// The access token (compact JWS).
        jwt: String,
    },
}

pub async fn run(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Decode { jwt } => {
            let (header, claims) = decode_unverified(jwt.trim()).context("cannot decode token")?;
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"header": header, "claims": claims}))?);
            eprintln!("latchkey: decoded only; the signature and claims were NOT verified");
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Verify { jwt } => {
            let config = Config::from_env()?;
            let (jwt, now) = (jwt.trim(), SystemClock.now());
            let (verified, how) = match &config.jwks {
                Some(jwks) => (verify_with_jwks(&config, jwks, jwt, now)?, "against LATCHKEY_JWKS"),
                None => (verify_as_the_authorizer(&config, jwt, now).await?, "against the KMS keys"),
            };
            match verified {
                Ok((claims, period_key)) => {
                    println!("{}", serde_json::to_string_pretty(&claims)?);
                    match period_key {
                        Some(note) => eprintln!("latchkey: valid {how}, signed by a period key ({note})"),
                        None => eprintln!("latchkey: valid {how}"),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(reason) => {
                    eprintln!("latchkey: invalid token: {reason}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// A verification's claims and, for a token signed by a period key, how that key
/// was checked; or why the token is refused.
type Verified = Result<(AccessClaims, Option<&'static str>), String>;

/// As the authorizer verifies: the KMS keys, and a period key of delegated signing
/// learnt from the table with its vouch checked (whatever `LATCHKEY_SIGNING` says,
/// so any token Latchkey issued can be explained).
async fn verify_as_the_authorizer(config: &Config, jwt: &str, now: u64) -> anyhow::Result<Verified> {
    let aws = Aws::from_env().await;
    let keys = KeySet::from_config(config, aws.kms()).await.context("cannot load verification keys")?;
    let store = Arc::new(DynamoStore::new(aws.dynamodb().clone(), config.table_name.clone()));
    let delegated = Arc::new(DelegatedKeys::new(keys.clone(), store, config));
    let verifier = Verifier::new(keys, config).with_delegated(delegated);
    let period_key = period_kid(jwt).map(|_| "its vouch from the table checked");
    Ok(verifier.verify_live(jwt, now).await.map(|claims| (claims, period_key)).map_err(|e| e.to_string()))
}

/// Against a JWKS document, with no AWS call: its long-term keys, and a period key
/// as it lists it (as a third-party verifier reads Latchkey's JWKS: the vouch is in
/// the table, not the JWKS), bounded by the period its `kid` names.
fn verify_with_jwks(config: &Config, jwks: &str, jwt: &str, now: u64) -> anyhow::Result<Verified> {
    let Some(kid) = period_kid(jwt) else {
        let keys = KeySet::from_jwks_json(jwks).context("cannot read LATCHKEY_JWKS")?;
        return Ok(Verifier::new(keys, config)
            .verify(jwt, now)
            .map(|claims| (claims, None))
            .map_err(|e| e.to_string()));
    };
    let document: serde_json::Value = serde_json::from_str(jwks).context("cannot read LATCHKEY_JWKS")?;
    let listed = document["keys"].as_array().into_iter().flatten().find(|entry| entry["kid"] == kid.as_str());
    let Some(listed) = listed else { return Ok(Err(format!("period key {kid} is not in LATCHKEY_JWKS"))) };
    let Some(bound) = listed_period_key(listed, config.access_token_ttl.as_secs()) else {
        return Ok(Err(format!("LATCHKEY_JWKS lists {kid} as no usable period key")));
    };
    let claims = match Verifier::new(KeySet::new([bound.key.public.clone()])?, config).verify(jwt, now) {
        Ok(claims) => claims,
        Err(error) => return Ok(Err(error.to_string())),
    };
    if !bound.allows(claims.iat, claims.exp, config.clock_skew.as_secs()) {
        return Ok(Err(format!("not issued inside the period of {kid}, or longer-lived than its tokens")));
    }
    Ok(Ok((claims, Some("as LATCHKEY_JWKS lists it, bounded by its period; its vouch is not in a JWKS"))))
}

/// The token's `kid` when it names a period key of delegated signing.
fn period_kid(jwt: &str) -> Option<String> {
    let (header, _) = decode_unverified(jwt).ok()?;
    let kid = header["kid"].as_str()?;
    KeyPeriod::of_kid(kid).map(|_| kid.to_owned())
}
