//! `latchkey api …`: the operator CLI over HTTP, for administrators without AWS
//! credentials. It calls the deployed admin API (`/admin/users...`) with an
//! administrator's access token, so the authorizer's admin role and the admin
//! function's own checks apply, and every action is audited with the operator's id.

use std::process::ExitCode;

use anyhow::{Context, bail};
use axum::body::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::admin::read_password_text;

/// Where the API is and who calls it.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Base URL of the API (the stack's `ApiUrl` output), e.g. https://abc.execute-api.eu-west-1.amazonaws.com
    #[arg(long, env = "LATCHKEY_API_URL")]
    url: String,
    /// Sign in as this administrator (the password is prompted for, or read with
    /// --password-stdin). Without it, the access token in LATCHKEY_ACCESS_TOKEN is used.
    #[arg(long)]
    email: Option<String>,
    /// Read the administrator's password from the first line of standard input.
    #[arg(long, requires = "email")]
    password_stdin: bool,
    /// The code from the administrator's authenticator app (or a recovery code), for an
    /// account with two-factor sign-in.
    #[arg(long, requires = "email", env = "LATCHKEY_MFA_CODE")]
    code: Option<String>,
    #[command(subcommand)]
    command: ApiCommand,
}

#[derive(Debug, Subcommand)]
enum ApiCommand {
    /// List users in email order (every page).
    Users {
        /// Only emails starting with this.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Show one user.
    User {
        /// The user id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Create a user: with --password-stdin the new user's password is the second
    /// line of standard input; without it, an invitation is mailed.
    Create {
        /// The new user's email.
        email: String,
        /// Their role.
        #[arg(long)]
        role: Option<String>,
        /// Give a password (stdin) instead of inviting.
        #[arg(long)]
        with_password: bool,
    },
    /// Change a user's role.
    SetRole {
        /// The user id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// The new role.
        role: String,
    },
    /// Disable a user (every session ends).
    Disable {
        /// The user id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The user id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Delete a user (every session ends; the email is free).
    Delete {
        /// The user id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// List a user's live sessions.
    Sessions {
        /// The user id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Remove a user's second factor (a lost device).
    ResetMfa {
        /// The user id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// End one session of a user, or every one with --all.
    EndSessions {
        /// The user id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// The session id.
        #[arg(long, conflicts_with = "all", required_unless_present = "all", allow_hyphen_values = true)]
        session: Option<String>,
        /// Every session of the user.
        #[arg(long)]
        all: bool,
    },
}

type HttpsClient =
    Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>;

struct Remote {
    client: HttpsClient,
    base: String,
    token: String,
}

impl Remote {
    /// One request: the status and the JSON body (`Null` when empty).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let response = self.client.request(request.body(Full::new(bytes))?).await.context("calling the API")?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// [`Remote::call`], failing with the API's error code and message unless 2xx.
    async fn expect(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let (status, answer) = self.call(method, path, body).await?;
        if !(200..300).contains(&status) {
            let code = answer["error"].as_str().unwrap_or("error");
            let message = answer["message"].as_str().unwrap_or("");
            bail!("{method} {path}: {status} {code} {message}");
        }
        Ok(answer)
    }
}

fn client() -> anyhow::Result<HttpsClient> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .context("loading the system's root certificates")?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// A path segment as sent: ids are base64url, but a typo must not change the path.
fn segment(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn user_line(user: &Value) -> String {
    let state = if user["disabled"] == true { "disabled" } else { "active" };
    let text = |name: &str| user[name].as_str().unwrap_or_default().to_owned();
    format!("{}\t{}\t{}\t{state}", text("email"), text("id"), text("role"))
}

pub async fn run(args: ApiArgs) -> anyhow::Result<ExitCode> {
    let base = args.url.trim_end_matches('/').to_owned();
    let client = client()?;
    let token = match &args.email {
        Some(email) => {
            let password = read_password_text(args.password_stdin, false)?;
            let login = Remote { client: client.clone(), base: base.clone(), token: String::new() };
            let body = json!({"email": email, "password": password});
            let (status, answer) = login.call("POST", "/login", Some(body)).await?;
            if status != 200 {
                bail!("sign-in refused: {status} {}", answer["error"].as_str().unwrap_or("error"));
            }
            let answer = if answer["mfaRequired"] == true {
                let Some(code) = &args.code else {
                    bail!("this account signs in with a second factor: pass --code (or LATCHKEY_MFA_CODE)");
                };
                // Six digits are an app's code; anything else is taken for a recovery code.
                let proof =
                    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) { "code" } else { "recoveryCode" };
                let body = json!({"mfaToken": answer["mfaToken"], proof: code});
                let (status, answer) = login.call("POST", "/login/mfa", Some(body)).await?;
                if status != 200 {
                    bail!("second step refused: {status} {}", answer["error"].as_str().unwrap_or("error"));
                }
                answer
            } else {
                answer
            };
            answer["accessToken"].as_str().context("no access token in the login answer")?.to_owned()
        }
        None => std::env::var("LATCHKEY_ACCESS_TOKEN")
            .ok()
            .filter(|token| !token.trim().is_empty())
            .context("give --email, or an administrator's access token in LATCHKEY_ACCESS_TOKEN")?,
    };
    let remote = Remote { client, base, token };
    match args.command {
        ApiCommand::Users { prefix } => {
            let mut cursor: Option<String> = None;
            loop {
                let mut query = vec!["limit=100".to_owned()];
                if let Some(prefix) = &prefix {
                    query.push(format!("emailPrefix={}", segment(prefix)));
                }
                if let Some(cursor) = &cursor {
                    query.push(format!("cursor={}", segment(cursor)));
                }
                let page = remote.expect("GET", &format!("/admin/users?{}", query.join("&")), None).await?;
                for user in page["users"].as_array().into_iter().flatten() {
                    println!("{}", user_line(user));
                }
                match page["nextCursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
        }
        ApiCommand::User { id } => {
            let user = remote.expect("GET", &format!("/admin/users/{}", segment(&id)), None).await?;
            println!("{}", serde_json::to_string_pretty(&user)?);
        }
        ApiCommand::Create { email, role, with_password } => {
            let mut body = json!({ "email": email });
            if let Some(role) = role {
                body["role"] = json!(role);
            }
            if with_password {
                body["password"] = json!(read_password_text(true, false)?);
            }
            let user = remote.expect("POST", "/admin/users", Some(body)).await?;
            let how = if user["invited"] == true { "invited" } else { "created" };
            println!("{how} {}", user_line(&user));
        }
        ApiCommand::SetRole { id, role } => {
            let user =
                remote.expect("PATCH", &format!("/admin/users/{}", segment(&id)), Some(json!({"role": role}))).await?;
            println!("{}", user_line(&user));
        }
        ApiCommand::Disable { id } => {
            let body = Some(json!({"disabled": true}));
            println!("{}", user_line(&remote.expect("PATCH", &format!("/admin/users/{}", segment(&id)), body).await?));
        }
        ApiCommand::Enable { id } => {
            let body = Some(json!({"disabled": false}));
            println!("{}", user_line(&remote.expect("PATCH", &format!("/admin/users/{}", segment(&id)), body).await?));
        }
        ApiCommand::Delete { id } => {
            remote.expect("DELETE", &format!("/admin/users/{}", segment(&id)), None).await?;
            println!("deleted {id}");
        }
        ApiCommand::Sessions { id } => {
            let listed = remote.expect("GET", &format!("/admin/users/{}/sessions", segment(&id)), None).await?;
            for session in listed["sessions"].as_array().into_iter().flatten() {
                let text = |name: &str| session[name].as_str().unwrap_or("-").to_owned();
                println!("{}\tlast used {}\t{}\t{}", text("id"), session["lastUsedAt"], text("ip"), text("userAgent"));
            }
        }
        ApiCommand::ResetMfa { id } => {
            remote.expect("DELETE", &format!("/admin/users/{}/mfa", segment(&id)), None).await?;
            println!("second factor removed");
        }
        ApiCommand::EndSessions { id, session, all } => {
            let path = match (&session, all) {
                (Some(session), _) => format!("/admin/users/{}/sessions/{}", segment(&id), segment(session)),
                (None, _) => format!("/admin/users/{}/sessions", segment(&id)),
            };
            remote.expect("DELETE", &path, None).await?;
            println!("ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}
