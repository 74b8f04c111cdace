//! `POST /login`: email and password to an access token and a new session.

use http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use super::edge::{Outcome, client_of, json_body, serve};
use super::tokens::subject_of;
use super::{ApiError, TokenResponder};
use crate::account::{Accounts, Authentication};
use crate::config::EdgeConfig;
use crate::password::Password;
use crate::store::UserStanding;

/// What the login function holds from cold start on.
#[derive(Debug, Clone)]
pub struct LoginState {
    /// Users, passwords and sessions.
    pub accounts: Accounts,
    /// Access tokens and the token response.
    pub tokens: TokenResponder,
    /// CORS, cookie and CSRF settings.
    pub edge: EdgeConfig,
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

/// Handles `POST /login` (and its CORS preflight).
///
/// Unknown email, wrong password and disabled account all answer the same 401
/// `invalid_credentials` after the same argon2id work; past the failed-login limit,
/// 429 `too_many_attempts` with `Retry-After`.
pub async fn login(state: &LoginState, request: Request) -> Response<Body> {
    serve(super::LOGIN_ROUTE, Method::POST, &state.edge, request, |request| async move {
        attempt(state, &request).await.unwrap_or_else(Outcome::from)
    })
    .await
}

async fn attempt(state: &LoginState, request: &Request) -> Result<Outcome, ApiError> {
    let body: LoginBody =
        json_body(request)?.ok_or(ApiError::InvalidRequest("Body must be {\"email\", \"password\"}."))?;
    let password =
        Password::new(body.password).map_err(|_| ApiError::InvalidRequest("Password is longer than 1 KiB."))?;
    let sessions = state.accounts.sessions();
    let client = client_of(request);
    let attempt = state
        .accounts
        .login_then(&body.email, &password, |user| async move {
            // The session is written while its access token is signed.
            let started =
                sessions.open(&user, client).map_err(|error| ApiError::Server(format!("start session: {error}")))?;
            let now = started.session.created_at;
            let subject = subject_of(&UserStanding::from(&user), started.session.id);
            let (saved, access) = tokio::join!(sessions.save(&started), state.tokens.issue(&subject, now));
            saved.map_err(|error| ApiError::Server(format!("start session: {error}")))?;
            let response = state.tokens.respond(&access?, &started.session, &started.refresh_token, now, false);
            Ok(Outcome::ok(response, Some(user.id)))
        })
        .await
        .map_err(|error| ApiError::Server(format!("authenticate: {error}")))?;
    match attempt {
        Authentication::Success(outcome) => outcome,
        Authentication::Failure => Err(ApiError::InvalidCredentials),
        Authentication::Unverified => Err(ApiError::EmailUnverified),
        Authentication::Throttled { retry_after_secs } => Err(ApiError::TooManyAttempts { retry_after_secs }),
    }
}
