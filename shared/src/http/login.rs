//! `POST /login`: email and password to an access token and a new session; for a
//! user with a second factor, `POST /login/mfa` finishes the login with a code, and
//! `POST /login/mfa/setup` enrols a user who must have one and has not yet.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use super::edge::{Outcome, client_of, json_body, json_response, serve};
use super::tokens::subject_of;
use super::{ApiError, TokenResponder};
use crate::account::{Accounts, Authentication};
use crate::config::EdgeConfig;
use crate::mfa::{Challenge, Mfa, MfaError, Proof};
use crate::password::Password;
use crate::store::{User, UserStanding};

/// What the login function holds from cold start on.
#[derive(Debug, Clone)]
pub struct LoginState {
    /// Users, passwords and sessions.
    pub accounts: Accounts,
    /// The second factor.
    pub mfa: Mfa,
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

/// Handles `POST /login`, `POST /login/mfa` and `POST /login/mfa/setup` (and their
/// CORS preflights), by the request's path.
///
/// Unknown email, wrong password and disabled account all answer the same 401
/// `invalid_credentials` after the same argon2id work; past the failed-login limit,
/// 429 `too_many_attempts` with `Retry-After`. A right password of a user with a
/// second factor answers `200 {"mfaRequired": true, "mfaToken", ...}` and no tokens.
pub async fn login(state: &LoginState, request: Request) -> Response<Body> {
    let path = request.uri().path().trim_end_matches('/').to_owned();
    if path.ends_with("/login/mfa/setup") {
        return serve(super::LOGIN_MFA_SETUP_ROUTE, Method::POST, &state.edge, request, |request| async move {
            mfa_setup(state, &request).await.unwrap_or_else(Outcome::from)
        })
        .await;
    }
    if path.ends_with("/login/mfa") {
        return serve(super::LOGIN_MFA_ROUTE, Method::POST, &state.edge, request, |request| async move {
            second_step(state, &request).await.unwrap_or_else(Outcome::from)
        })
        .await;
    }
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
    let attempt = state
        .accounts
        .login_then(&body.email, &password, |user| async move {
            match state.mfa.challenge(&user).await.map_err(mfa_error)? {
                Some(challenge) => Ok(challenged(state, &challenge, user.id)),
                None => signed_in(state, request, user, &[crate::token::AMR_PASSWORD]).await,
            }
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

/// `200 {"mfaRequired": true, "mfaToken", "mfaEnrollmentRequired", "expiresIn"}`.
fn challenged(state: &LoginState, challenge: &Challenge, user_id: String) -> Outcome {
    let body = serde_json::json!({
        "mfaRequired": true,
        "mfaToken": challenge.token,
        "mfaEnrollmentRequired": challenge.enrol,
        "expiresIn": state.mfa.config().token_ttl.as_secs(),
    });
    Outcome::ok(json_response(StatusCode::OK, &body), Some(user_id))
}

/// The session and tokens of a proven login: the session is written while its
/// access token is signed.
async fn signed_in(state: &LoginState, request: &Request, user: User, amr: &[&str]) -> Result<Outcome, ApiError> {
    signed_in_with(state, request, user, amr, None).await
}

async fn signed_in_with(
    state: &LoginState,
    request: &Request,
    user: User,
    amr: &[&str],
    recovery_codes: Option<Vec<String>>,
) -> Result<Outcome, ApiError> {
    let sessions = state.accounts.sessions();
    let started = sessions
        .open_with(&user, client_of(request), amr)
        .map_err(|error| ApiError::Server(format!("start session: {error}")))?;
    let now = started.session.created_at;
    let subject = subject_of(&UserStanding::from(&user), &started.session);
    let (saved, access) = tokio::join!(sessions.save(&started), state.tokens.issue(&subject, now));
    saved.map_err(|error| ApiError::Server(format!("start session: {error}")))?;
    let mut response = state.tokens.respond(&access?, &started.session, &started.refresh_token, now, false);
    if let Some(codes) = recovery_codes {
        add_recovery_codes(&mut response, &codes);
    }
    Ok(Outcome::ok(response, Some(user.id)))
}

/// Adds `"recoveryCodes"` to a JSON token response (an enrolment the login confirmed).
fn add_recovery_codes(response: &mut Response<Body>, codes: &[String]) {
    let Body::Text(text) = response.body() else { return };
    let Ok(mut body) = serde_json::from_str::<serde_json::Value>(text) else { return };
    body["recoveryCodes"] = serde_json::json!(codes);
    *response.body_mut() = Body::Text(body.to_string());
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SecondStepBody {
    mfa_token: String,
    code: Option<String>,
    recovery_code: Option<String>,
}

/// `POST /login/mfa {"mfaToken", "code" | "recoveryCode"}`: the token response.
async fn second_step(state: &LoginState, request: &Request) -> Result<Outcome, ApiError> {
    let body: SecondStepBody = json_body(request)?.ok_or(ApiError::InvalidRequest(SECOND_STEP_SHAPE))?;
    let proof = match (body.code, body.recovery_code) {
        (Some(code), None) => Proof::Code(code),
        (None, Some(code)) => Proof::RecoveryCode(code),
        _ => return Err(ApiError::InvalidRequest(SECOND_STEP_SHAPE)),
    };
    let passed = state.mfa.complete(&body.mfa_token, &proof).await.map_err(mfa_error)?;
    let (outcome, ()) = tokio::join!(
        signed_in_with(state, request, passed.user.clone(), passed.amr, passed.recovery_codes.clone()),
        state.mfa.settle(&passed)
    );
    outcome
}

const SECOND_STEP_SHAPE: &str = "Body must be {\"mfaToken\", \"code\"} or {\"mfaToken\", \"recoveryCode\"}.";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SetupBody {
    mfa_token: String,
}

/// `POST /login/mfa/setup {"mfaToken"}`: enrolment material for a user who must
/// enrol; the login then finishes at `POST /login/mfa` with a code from the app.
async fn mfa_setup(state: &LoginState, request: &Request) -> Result<Outcome, ApiError> {
    let body: SetupBody = json_body(request)?.ok_or(ApiError::InvalidRequest("Body must be {\"mfaToken\"}."))?;
    let enrolment = state.mfa.setup(&body.mfa_token).await.map_err(mfa_error)?;
    Ok(Outcome::ok(json_response(StatusCode::OK, &super::enrolment_body(&enrolment)), None))
}

/// A second-factor refusal as the API answers it.
pub(crate) fn mfa_error(error: MfaError) -> ApiError {
    match error {
        MfaError::Off => ApiError::NotFound,
        MfaError::InvalidToken => ApiError::InvalidMfaToken,
        MfaError::InvalidCode => ApiError::InvalidCode,
        MfaError::InvalidCredentials => ApiError::InvalidCredentials,
        MfaError::Throttled { retry_after_secs } => ApiError::TooManyAttempts { retry_after_secs },
        MfaError::AlreadyEnabled => ApiError::Conflict("mfa_enabled"),
        MfaError::NotPending => ApiError::Conflict("mfa_not_pending"),
        MfaError::NotEnabled => ApiError::Conflict("mfa_not_enabled"),
        MfaError::Conflict => ApiError::Conflict("conflict"),
        other => ApiError::Server(format!("mfa: {other}")),
    }
}
