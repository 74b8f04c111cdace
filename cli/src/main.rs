//! `latchkey`: the command line for Latchkey.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use latchkey::signing::KeySet;
use latchkey::token::Verifier;
use latchkey::token::dangerous::decode_unverified;
use latchkey::{Clock, Config, SystemClock};

/// JWT authentication with rotating refresh tokens, for AWS Lambda.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a token's header and claims WITHOUT verifying it.
    Decode {
        /// The access token (compact JWS).
        jwt: String,
    },
    /// Verify a token against the configured keys (LATCHKEY_JWKS, or
    /// LATCHKEY_KMS_KEY_ID and LATCHKEY_KMS_VERIFY_KEY_IDS via KMS) and say why it fails.
    Verify {
        /// The access token (compact JWS).
        jwt: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("latchkey: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Token(TokenCommand::Decode { jwt }) => {
            let (header, claims) = decode_unverified(jwt.trim()).context("cannot decode token")?;
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"header": header, "claims": claims}))?);
            eprintln!("latchkey: decoded only; the signature and claims were NOT verified");
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::Verify { jwt }) => {
            let config = Config::from_env()?;
            let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let keys = KeySet::from_config(&config, &aws_sdk_kms::Client::new(&aws))
                .await
                .context("cannot load verification keys")?;
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
