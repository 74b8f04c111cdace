//! `latchkey token decode|verify`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use latchkey::deploy::Aws;
use latchkey::signing::KeySet;
use latchkey::token::Verifier;
use latchkey::token::dangerous::decode_unverified;
use latchkey::{Clock, Config, SystemClock};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a token's header and claims WITHOUT verifying it.
    Decode {
        /// The access token (compact JWS).
        jwt: String,
    },
    /// Verify a token against the configured keys (LATCHKEY_JWKS, or
    /// LATCHKEY_KMS_KEY_ID and LATCHKEY_KMS_VERIFY_KEY_IDS via KMS) and say exactly why it fails.
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
            let aws = Aws::from_env().await;
            let keys = KeySet::from_config(&config, aws.kms()).await.context("cannot load verification keys")?;
            match Verifier::new(keys, &config).verify(jwt.trim(), SystemClock.now()) {
                Ok(claims) => {
                    println!("{}", serde_json::to_string_pretty(&claims)?);
                    eprintln!("latchkey: valid");
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
