//! `latchkey`: run Latchkey locally, set up AWS resources, administer users and
//! sessions, inspect tokens.

mod admin;
mod demo;
mod dev;
mod gateway;
mod load;
mod loopback;
mod remote;
mod setup;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// JWT authentication with rotating refresh tokens, for AWS Lambda.
///
/// Every command reads the same LATCHKEY_* settings as the Lambda functions
/// (see the README), and the AWS ones (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL).
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the real handlers on 127.0.0.1 (in-memory store and a local key by default).
    Dev(dev::DevArgs),
    /// Serve template.yaml's HTTP API on 127.0.0.1 as API Gateway would, with the built functions.
    Gateway(gateway::GatewayArgs),
    /// Run one event through one built function under a local Lambda Runtime API.
    Invoke(gateway::InvokeArgs),
    /// Time each built function's cold start (spawn to its first request for an event).
    ColdStart(gateway::ColdStartArgs),
    /// Load-test a running `latchkey dev` or `latchkey gateway` (authorizations, refreshes, a refresh storm).
    Load(load::LoadArgs),
    /// Create the DynamoDB table and KMS keys (idempotent) and print the environment.
    Setup(setup::SetupArgs),
    /// Manage users in the configured table.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// List and revoke sessions in the configured table.
    #[command(subcommand)]
    Sessions(admin::SessionsCommand),
    /// Manage users over HTTP through a deployed admin API, as an administrator (no AWS
    /// credentials needed).
    Api(remote::ApiArgs),
    /// Decode or verify access tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Dev(args) => dev::run(args).await,
        Command::Gateway(args) => gateway::serve(args).await,
        Command::Invoke(args) => gateway::invoke(args).await,
        Command::ColdStart(args) => gateway::cold_start(args).await,
        Command::Load(args) => load::run(args).await,
        Command::Setup(args) => setup::run(args).await,
        Command::User(command) => admin::user(command).await,
        Command::Sessions(command) => admin::sessions(command).await,
        Command::Token(command) => token::run(command).await,
        Command::Api(args) => remote::run(args).await,
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("latchkey: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser as _;

    use super::Cli;

    /// User and session ids are base64url: one in 64 starts with `-`, and must still
    /// be read as the id, not as an unknown flag.
    #[test]
    fn ids_that_start_with_a_hyphen_are_ids() {
        for args in [
            &["latchkey", "api", "--url", "http://x", "set-role", "-F0aB", "Admin"][..],
            &["latchkey", "api", "--url", "http://x", "reset-mfa", "-F0aB"],
            &["latchkey", "api", "--url", "http://x", "end-sessions", "-F0aB", "--session", "-s1"],
            &["latchkey", "api", "--url", "http://x", "end-sessions", "-F0aB", "--all"],
            &["latchkey", "sessions", "revoke", "--session", "-s1"],
        ] {
            let parsed = format!("{:?}", Cli::try_parse_from(args).unwrap());
            assert!(parsed.contains("\"-F0aB\"") || parsed.contains("\"-s1\""), "{parsed}");
        }
        let both = format!(
            "{:?}",
            Cli::try_parse_from(["latchkey", "api", "--url", "u", "end-sessions", "-a", "--session", "-s1"]).unwrap()
        );
        assert!(both.contains("\"-a\"") && both.contains("\"-s1\""), "{both}");
    }
}
