//! `latchkey user …` and `latchkey sessions …`: administration of the configured
//! DynamoDB table through the same account, admin and session code the functions
//! use (the last-admin rule included).

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use latchkey::Config;
use latchkey::account::{Accounts, DEFAULT_ROLE};
use latchkey::admin::{Admin, MAX_PAGE_SIZE};
use latchkey::delivery::{Delivery, TerminalDelivery};
use latchkey::deploy::{Aws, delivery, session_manager};
use latchkey::mfa::Mfa;
use latchkey::onetime::SecretKey;
use latchkey::password::{Password, PasswordHasher};
use latchkey::recovery::Recovery;
use latchkey::store::DynamoStore;
use latchkey::token::SessionId;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. Prompts for the password (without echo) unless --password-stdin.
    Add {
        /// Email address (the login name; trimmed and lower-cased).
        #[arg(long)]
        email: String,
        /// Role passed to backends in the access token.
        #[arg(long, default_value = DEFAULT_ROLE)]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Invite a user: an account with no password yet, and a mail with a link to set
    /// one (LATCHKEY_DELIVERY; valid LATCHKEY_INVITE_TTL_SECONDS). Again for a user
    /// who has not set one: a new link, and the old one stops working.
    Invite {
        /// Email address of the new user.
        email: String,
        /// Role passed to backends in the access token.
        #[arg(long)]
        role: Option<String>,
        /// Print the link here instead of mailing it (hand it over yourself).
        #[arg(long)]
        print_link: bool,
    },
    /// Set a new password; every session of the user is revoked.
    SetPassword {
        /// The user's email.
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role (it reaches access tokens at the next refresh).
    SetRole {
        /// The user's email.
        #[arg(long)]
        email: String,
        /// The new role.
        #[arg(long)]
        role: String,
    },
    /// Disable a user: no login, no refresh; every session is revoked.
    Disable {
        /// The user's email.
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The user's email.
        #[arg(long)]
        email: String,
    },
    /// List users in email order, a page at a time from the `users` index (the admin
    /// API's listing).
    List {
        /// Only emails starting with this.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Delete a user: every session ends and the email is free. Refused for the last
    /// active administrator.
    Delete {
        /// The user's email.
        #[arg(long)]
        email: String,
    },
    /// Put users written before the admin API into its `users` index (a table scan;
    /// run once after upgrading; safe to repeat).
    Reindex,
    /// Remove a user's second factor (a lost device): they sign in with the password
    /// alone, or enrol again at their next login if their role must.
    ResetMfa {
        /// The user's email.
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List a user's live sessions.
    List {
        /// The user's email.
        #[arg(long)]
        email: String,
    },
    /// Revoke one session (--session) or every session of a user (--email E --all).
    Revoke {
        /// The session id.
        #[arg(long, conflicts_with_all = ["email", "all"], required_unless_present = "email", allow_hyphen_values = true)]
        session: Option<String>,
        /// The user's email (with --all).
        #[arg(long, requires = "all")]
        email: Option<String>,
        /// Revoke every session of --email.
        #[arg(long, requires = "email")]
        all: bool,
    },
}

async fn accounts() -> anyhow::Result<Accounts> {
    let config = Config::from_env()?;
    let aws = Aws::from_env().await;
    let users = Arc::new(DynamoStore::new(aws.dynamodb().clone(), config.table_name.clone()));
    let sessions = session_manager(&config, &aws).await?;
    Ok(Accounts::new(users, sessions, PasswordHasher::new(config.password)?)
        .with_admin_role(config.edge.admin_role.clone()))
}

/// The account flows on the configured table, delivering as configured (or on the
/// terminal with `print`).
async fn recovery(print: bool) -> anyhow::Result<Recovery> {
    let config = Config::from_env()?;
    let aws = Aws::from_env().await;
    let store = Arc::new(DynamoStore::new(aws.dynamodb().clone(), config.table_name.clone()));
    let sessions = session_manager(&config, &aws).await?;
    let key = SecretKey::derive(sessions.key());
    let accounts = Accounts::new(store.clone(), sessions, PasswordHasher::new(config.password)?)
        .with_admin_role(config.edge.admin_role.clone());
    let delivery: Arc<dyn Delivery> = if print { Arc::new(TerminalDelivery) } else { delivery(&config, &aws)? };
    Ok(Recovery::new(accounts, store.clone(), store, key, delivery, config.accounts))
}

pub async fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Invite { email, role, print_link } => {
            let invited = recovery(print_link).await?.invite(&email, role.as_deref()).await?;
            let what = if invited.created { "invited" } else { "invited again (the earlier link no longer works)" };
            println!("{what} {} ({}) role {}", invited.user.email, invited.user.id, invited.user.role);
            if let Err(error) = invited.delivered {
                bail!("the invitation was made but its mail was not sent ({error}); run invite again, or --print-link");
            }
        }
        UserCommand::Add { email, role, password_stdin } => {
            let password = read_password(password_stdin, true)?;
            let user = accounts().await?.create(&email, &password, &role).await?;
            println!("created {} ({}) role {}", user.email, user.id, user.role);
        }
        UserCommand::SetPassword { email, password_stdin } => {
            let password = read_password(password_stdin, true)?;
            let revoked = accounts().await?.set_password(&email, &password).await?;
            println!("password set; {revoked} session(s) revoked");
        }
        UserCommand::SetRole { email, role } => {
            accounts().await?.set_role(&email, &role).await?;
            println!("role set to {role}");
        }
        UserCommand::Disable { email } => {
            let revoked = accounts().await?.set_disabled(&email, true).await?;
            println!("disabled; {revoked} session(s) revoked");
        }
        UserCommand::Enable { email } => {
            accounts().await?.set_disabled(&email, false).await?;
            println!("enabled");
        }
        UserCommand::List { prefix } => {
            let admin = Admin::new(recovery(true).await?);
            let mut cursor = None;
            loop {
                let page = admin.list_users(prefix.as_deref(), cursor.as_deref(), Some(MAX_PAGE_SIZE)).await?;
                for user in &page.users {
                    let state = if user.disabled { "disabled" } else { "active" };
                    println!("{}\t{}\t{}\t{state}", user.email, user.id, user.role);
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        UserCommand::Delete { email } => {
            let accounts = accounts().await?;
            let user = accounts.existing(&email).await?;
            let ended = accounts.delete_user(&user).await?;
            println!("deleted {} ({}); {ended} session(s) ended", user.email, user.id);
        }
        UserCommand::Reindex => {
            let config = Config::from_env()?;
            let aws = Aws::from_env().await;
            let store = DynamoStore::new(aws.dynamodb().clone(), config.table_name.clone());
            let (seen, added) = store.reindex_users().await?;
            println!("{seen} user(s); {added} added to the users index");
        }
        UserCommand::ResetMfa { email } => {
            let config = Config::from_env()?;
            let aws = Aws::from_env().await;
            let store = Arc::new(DynamoStore::new(aws.dynamodb().clone(), config.table_name.clone()));
            let accounts = accounts().await?;
            let user = accounts.existing(&email).await?;
            let mfa = Mfa::over(accounts, store.clone(), store, config.mfa)?;
            let reset = mfa.reset(&user).await?;
            println!("{}", if reset { "second factor removed" } else { "no second factor to remove" });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn sessions(command: SessionsCommand) -> anyhow::Result<ExitCode> {
    let accounts = accounts().await?;
    match command {
        SessionsCommand::List { email } => {
            let user = accounts.existing(&email).await?;
            let now = accounts.sessions().clock().now();
            for session in accounts.sessions().user_sessions(&user.id, &user.email).await? {
                println!(
                    "{}\tgeneration {}\tstarted {}s ago\tends in {}s\t{}\t{}",
                    session.id,
                    session.generation,
                    now.saturating_sub(session.created_at),
                    session.expires_at().saturating_sub(now),
                    session.client.ip.as_deref().unwrap_or("-"),
                    session.client.user_agent.as_deref().unwrap_or("-"),
                );
            }
        }
        SessionsCommand::Revoke { session: Some(session), .. } => {
            let id: SessionId = session.parse().ok().context("not a session id")?;
            if accounts.sessions().revoke(&id, "admin").await?.is_none() {
                bail!("no session {session}");
            }
            println!("revoked {session}");
        }
        SessionsCommand::Revoke { email: Some(email), .. } => {
            let user = accounts.existing(&email).await?;
            let revoked = accounts.sessions().revoke_all(&user.id, &user.email, "admin", None).await?;
            println!("{revoked} session(s) revoked");
        }
        SessionsCommand::Revoke { .. } => bail!("give --session S, or --email E --all"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A password from stdin's first line, or typed twice at a prompt without echo.
fn read_password(from_stdin: bool, confirm: bool) -> anyhow::Result<Password> {
    Ok(Password::new(read_password_text(from_stdin, confirm)?)?)
}

/// The text of [`read_password`]: the next line of stdin, or typed at a prompt
/// without echo (twice with `confirm`).
pub(crate) fn read_password_text(from_stdin: bool, confirm: bool) -> anyhow::Result<String> {
    Ok(if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(&line).to_owned()
    } else {
        let first = rpassword::prompt_password("Password: ")?;
        if confirm && rpassword::prompt_password("Again: ")? != first {
            bail!("the passwords differ");
        }
        first
    })
}
