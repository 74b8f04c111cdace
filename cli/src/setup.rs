//! `latchkey setup`: the table and the two KMS keys, idempotently, then the
//! environment the functions need as `export KEY=VALUE` lines.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use clap::Args;
use latchkey::Config;
use latchkey::account::{Accounts, DEFAULT_ROLE};
use latchkey::deploy::Aws;
use latchkey::password::{Password, PasswordHasher};
use latchkey::session::{SessionManager, SessionPolicy};
use latchkey::store::{DynamoStore, SessionStore, UserStore};
use latchkey::token::{RefreshKey, SessionId};
use latchkey::{Clock, SystemClock};

use crate::dev::{DEMO_EMAIL, DEMO_PASSWORD};

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Prefix of the KMS key aliases: alias/<prefix>-signing and alias/<prefix>-refresh.
    #[arg(long, default_value = "latchkey")]
    alias_prefix: String,
    /// Also add what the sample events in events/ expect: the demo user and the fixture
    /// session their refresh tokens name (for `cargo lambda invoke` and `latchkey invoke`).
    #[arg(long)]
    sample_data: bool,
}

/// The session the sample refresh and logout events name (`FIXTURE_SESSION_ID`).
const SAMPLE_SESSION_ID: &str = "c2Vzc2lvbi1maXh0dXJlMQ";

/// Creates what is missing; prints `export` lines on stdout (progress on stderr),
/// so `eval "$(latchkey setup)"` prepares a shell.
pub async fn run(args: SetupArgs) -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    if args.sample_data {
        refuse_sample_data_outside_an_emulator(&config, std::env::var_os("AWS_ENDPOINT_URL").is_some())?;
    }
    let aws = Aws::from_env().await;
    let created = DynamoStore::ensure_table(aws.dynamodb(), &config.table_name)
        .await
        .with_context(|| format!("table {}", config.table_name))?;
    eprintln!("latchkey: table {} {}", config.table_name, if created { "created" } else { "exists" });
    let signing = format!("alias/{}-signing", args.alias_prefix);
    ensure_key(aws.kms(), &signing, KeyUsageType::SignVerify, KeySpec::EccNistP256).await?;
    let refresh = format!("alias/{}-refresh", args.alias_prefix);
    ensure_key(aws.kms(), &refresh, KeyUsageType::GenerateVerifyMac, KeySpec::Hmac256).await?;
    if args.sample_data {
        add_sample_data(&config, &aws).await?;
    }
    println!("export LATCHKEY_TABLE_NAME={}", config.table_name);
    println!("export LATCHKEY_KMS_KEY_ID={signing}");
    println!("export LATCHKEY_REFRESH_MAC_KEY_ID={refresh}");
    Ok(ExitCode::SUCCESS)
}

/// The sample data's demo user has a password published in this repository: a
/// deployed login would accept it. Only an emulator (`AWS_ENDPOINT_URL`) or an
/// explicit test setting (`LATCHKEY_ALLOW_FIXTURE_KEYS=true`) may get it.
fn refuse_sample_data_outside_an_emulator(config: &Config, emulator: bool) -> anyhow::Result<()> {
    if emulator || config.allow_fixture_keys {
        return Ok(());
    }
    anyhow::bail!(
        "--sample-data creates {DEMO_EMAIL} with the password published in this repository, which a deployed \
         login would accept; it is for emulators only (set AWS_ENDPOINT_URL, e.g. to moto), or set \
         LATCHKEY_ALLOW_FIXTURE_KEYS=true if this account is a test account"
    )
}

async fn ensure_key(kms: &aws_sdk_kms::Client, alias: &str, usage: KeyUsageType, spec: KeySpec) -> anyhow::Result<()> {
    match kms.describe_key().key_id(alias).send().await {
        Ok(_) => {
            eprintln!("latchkey: key {alias} exists");
            return Ok(());
        }
        Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found_exception()) => {}
        Err(error) => return Err(aws_error(error)).context(format!("describing {alias}")),
    }
    let created = kms
        .create_key()
        .key_usage(usage)
        .key_spec(spec)
        .description(format!("Latchkey {alias}"))
        .send()
        .await
        .map_err(aws_error)
        .with_context(|| format!("creating the key for {alias}"))?;
    let key_id = created.key_metadata().map(|m| m.key_id().to_owned()).context("CreateKey returned no key id")?;
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(&key_id)
        .send()
        .await
        .map_err(aws_error)
        .with_context(|| format!("creating {alias}"))?;
    eprintln!("latchkey: key {alias} created ({key_id})");
    Ok(())
}

/// The demo user and the fixture session, each when missing. A fixture session that
/// a run already rotated or revoked stays so (the samples then answer 401): start
/// from a fresh table (restart moto) to reset it.
async fn add_sample_data(config: &Config, aws: &Aws) -> anyhow::Result<()> {
    let store = Arc::new(DynamoStore::new(aws.dynamodb().clone(), config.table_name.clone()));
    let policy = SessionPolicy::from_config(config);
    let user = match store.get_user_by_email(DEMO_EMAIL).await? {
        Some(user) => user,
        None => {
            let throwaway = RefreshKey::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
            let sessions = SessionManager::new(store.clone(), store.clone(), throwaway, policy, Arc::new(SystemClock));
            let accounts = Accounts::new(store.clone(), sessions, PasswordHasher::new(config.password)?)
                .with_admin_role(config.edge.admin_role.clone());
            accounts
                .create_with_id(
                    latchkey::deploy::SAMPLE_USER_ID,
                    DEMO_EMAIL,
                    &Password::new(DEMO_PASSWORD)?,
                    DEFAULT_ROLE,
                )
                .await?
        }
    };
    let id = SAMPLE_SESSION_ID.parse::<SessionId>().map_err(|e| anyhow::anyhow!("{e}"))?;
    let session = policy.new_session(id, &user, SystemClock.now(), Default::default());
    if store.get_session(&session.id).await?.is_none() {
        store.create_session(&session).await?;
    }
    eprintln!("latchkey: sample data: user {DEMO_EMAIL}, session {SAMPLE_SESSION_ID}");
    Ok(())
}

fn aws_error(error: impl std::error::Error) -> anyhow::Error {
    anyhow::anyhow!("{}", aws_sdk_kms::error::DisplayErrorContext(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_data_is_refused_against_a_real_account_unless_told_it_is_a_test() {
        let error = refuse_sample_data_outside_an_emulator(&Config::default(), false).unwrap_err();
        assert!(error.to_string().contains("AWS_ENDPOINT_URL"), "{error}");
        assert!(refuse_sample_data_outside_an_emulator(&Config::default(), true).is_ok());
        let test_account = Config { allow_fixture_keys: true, ..Config::default() };
        assert!(refuse_sample_data_outside_an_emulator(&test_account, false).is_ok());
    }
}
