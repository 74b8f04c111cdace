//! The account routes, served by one function: `POST /password` (change, with the
//! access token), `POST /password/forgot`, `POST /password/reset`, `POST /signup`,
//! `POST /email/verify`, and the signed-in user's sessions (`GET /sessions`,
//! `DELETE /sessions/{id}`), and the signed-in user's second factor (`POST /mfa/totp`,
//! `POST /mfa/totp/confirm`, `DELETE /mfa/totp`). The rules live in
//! [`crate::account`], [`crate::recovery`], [`crate::signup`] and [`crate::mfa`];
//! this module reads requests and shapes answers.

use std::time::Duration;

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use super::edge::{Outcome, empty_response, json_body, json_response, serve};
use super::login::mfa_error;
use super::logout::bearer_token;
use super::tokens::subject_of;
use super::{ApiError, TokenResponder};
use crate::account::{AccountError, Authentication, PasswordChanged};
use crate::config::EdgeConfig;
use crate::mfa::{Mfa, Proof};
use crate::password::{Password, PasswordError};
use crate::recovery::{InvalidLink, Recovery};
use crate::signup::SignupRefused;
use crate::store::{StoreError, UserStanding};
use crate::token::{SessionId, Verifier};

/// What the account function holds from cold start on.
#[derive(Debug, Clone)]
pub struct AccountState {
    /// Accounts, links, delivery.
    pub recovery: Recovery,
    /// Fresh tokens after a password change.
    pub tokens: TokenResponder,
    /// The access token of a password change.
    pub verifier: Verifier,
    /// The second factor.
    pub mfa: Mfa,
    /// CORS, cookie and CSRF settings.
    pub edge: EdgeConfig,
}

/// One of the account routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRoute {
    /// `POST /password`.
    ChangePassword,
    /// `POST /password/forgot`.
    Forgot,
    /// `POST /password/reset`.
    Reset,
    /// `POST /signup`.
    Signup,
    /// `POST /email/verify`.
    VerifyEmail,
    /// `GET /sessions`.
    Sessions,
    /// `DELETE /sessions/{id}`.
    EndSession,
    /// `POST /mfa/totp`.
    MfaBegin,
    /// `POST /mfa/totp/confirm`.
    MfaConfirm,
    /// `DELETE /mfa/totp`.
    MfaRemove,
}

impl AccountRoute {
    /// Every account route.
    pub const ALL: [Self; 10] = [
        Self::ChangePassword,
        Self::Forgot,
        Self::Reset,
        Self::Signup,
        Self::VerifyEmail,
        Self::Sessions,
        Self::EndSession,
        Self::MfaConfirm,
        Self::MfaBegin,
        Self::MfaRemove,
    ];

    /// `METHOD /path`.
    pub fn key(self) -> &'static str {
        match self {
            Self::ChangePassword => super::CHANGE_PASSWORD_ROUTE,
            Self::Forgot => super::FORGOT_PASSWORD_ROUTE,
            Self::Reset => super::RESET_PASSWORD_ROUTE,
            Self::Signup => super::SIGNUP_ROUTE,
            Self::VerifyEmail => super::VERIFY_EMAIL_ROUTE,
            Self::Sessions => super::SESSIONS_ROUTE,
            Self::EndSession => super::END_SESSION_ROUTE,
            Self::MfaBegin => super::MFA_BEGIN_ROUTE,
            Self::MfaConfirm => super::MFA_CONFIRM_ROUTE,
            Self::MfaRemove => super::MFA_REMOVE_ROUTE,
        }
    }

    /// The route's method.
    pub fn method(self) -> Method {
        match self {
            Self::Sessions => Method::GET,
            Self::EndSession | Self::MfaRemove => Method::DELETE,
            _ => Method::POST,
        }
    }

    /// The route of a request: [`AccountRoute::of_path`], with `DELETE /mfa/totp`
    /// told from `POST /mfa/totp` by the method.
    pub fn of_request(method: &Method, path: &str) -> Option<Self> {
        match Self::of_path(path)? {
            Self::MfaBegin if method == Method::DELETE => Some(Self::MfaRemove),
            route => Some(route),
        }
    }

    /// The route a request path names: its last segments, so a stage or base-path
    /// prefix (`/api/password/reset` on a REST API stage) does not matter.
    pub fn of_path(path: &str) -> Option<Self> {
        let path = path.trim_end_matches('/');
        if path.rsplit_once('/').is_some_and(|(parent, id)| parent.ends_with("/sessions") && !id.is_empty()) {
            return Some(Self::EndSession);
        }
        Self::ALL.into_iter().filter(|route| *route != Self::EndSession).find(|route| {
            let own = route.key().split_once(' ').map(|(_, path)| path).unwrap_or_default();
            path.ends_with(own)
        })
    }
}

/// Handles every account route (and its CORS preflight), by the request's path.
pub async fn account(state: &AccountState, request: Request) -> Response<Body> {
    let Some(route) = AccountRoute::of_request(request.method(), request.uri().path()) else {
        return ApiError::NotFound.into_response();
    };
    serve(route.key(), route.method(), &state.edge, request, |request| async move {
        let started = tokio::time::Instant::now();
        let outcome = match route {
            AccountRoute::ChangePassword => change_password(state, &request).await,
            AccountRoute::Forgot => forgot(state, &request, started).await,
            AccountRoute::Reset => reset(state, &request).await,
            AccountRoute::Signup => sign_up(state, &request, started).await,
            AccountRoute::VerifyEmail => verify_email(state, &request).await,
            AccountRoute::Sessions => list_sessions(state, &request).await,
            AccountRoute::EndSession => end_session(state, &request).await,
            AccountRoute::MfaBegin => mfa_begin(state, &request).await,
            AccountRoute::MfaConfirm => mfa_confirm(state, &request).await,
            AccountRoute::MfaRemove => mfa_remove(state, &request).await,
        };
        outcome.unwrap_or_else(Outcome::from)
    })
    .await
}

/// Waits until `floor` after `started`: the answers that must not tell whether an
/// email has an account leave at the same time whatever happened.
async fn at_floor(started: tokio::time::Instant, floor: Duration) {
    tokio::time::sleep_until(started + floor).await;
}

fn password(text: String) -> Result<Password, ApiError> {
    Password::new(text).map_err(|_| ApiError::WeakPassword("Password is longer than 1 KiB."))
}

fn account_error(error: AccountError) -> ApiError {
    match error {
        AccountError::WeakPassword => ApiError::WeakPassword("Password must have at least 8 characters."),
        AccountError::Password(PasswordError::TooLong) => ApiError::WeakPassword("Password is longer than 1 KiB."),
        AccountError::InvalidEmail(_) => ApiError::InvalidRequest("Not a valid email address."),
        AccountError::InvalidRole => ApiError::InvalidRequest("Not a valid role."),
        other => ApiError::Server(format!("account: {other}")),
    }
}

fn link_error(why: InvalidLink) -> ApiError {
    ApiError::InvalidLink(why.code())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeBody {
    current_password: String,
    new_password: String,
}

/// The verified access token of a signed-in route: its claims and session.
async fn signed_in(
    state: &AccountState,
    request: &Request,
) -> Result<(crate::token::AccessClaims, SessionId), ApiError> {
    let token = bearer_token(request).ok_or_else(|| ApiError::InvalidToken("no bearer token".to_owned()))?;
    let now = state.recovery.accounts().sessions().clock().now();
    let claims =
        state.verifier.verify_live(token, now).await.map_err(|error| ApiError::InvalidToken(error.to_string()))?;
    let session_id: SessionId =
        claims.sid.parse().map_err(|_| ApiError::InvalidToken("sid is not a session id".to_owned()))?;
    Ok((claims, session_id))
}

/// `GET /sessions`: the caller's live sessions, newest first, with where each was
/// last used; 401 when the caller's own session is not among them (ended).
async fn list_sessions(state: &AccountState, request: &Request) -> Result<Outcome, ApiError> {
    let (claims, current) = signed_in(state, request).await?;
    let sessions = state.recovery.accounts().sessions().user_sessions(&claims.sub, &claims.email).await?;
    if !sessions.iter().any(|session| session.id == current) {
        return Err(ApiError::InvalidToken("session ended".to_owned()));
    }
    let listed: Vec<serde_json::Value> = sessions
        .iter()
        .map(|session| {
            serde_json::json!({
                "id": session.id.to_string(),
                "createdAt": session.created_at,
                "lastUsedAt": session.rotated_at,
                "userAgent": session.client.user_agent,
                "ip": session.client.ip,
                "current": session.id == current,
            })
        })
        .collect();
    tracing::info!(event = "sessions_listed", user_id = %claims.sub, count = listed.len());
    Ok(Outcome::ok(json_response(StatusCode::OK, &serde_json::json!({ "sessions": listed })), Some(claims.sub)))
}

/// `DELETE /sessions/{id}`: 204 when it was one of the caller's live sessions (the
/// caller's own included: that is a logout); 404 for anything else, with no write.
async fn end_session(state: &AccountState, request: &Request) -> Result<Outcome, ApiError> {
    let (claims, current) = signed_in(state, request).await?;
    let target = request.uri().path().trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    let sessions = state.recovery.accounts().sessions();
    if !sessions.end_session_of(&claims.sub, Some(&current), target, "ended_by_user").await? {
        return Err(ApiError::NotFound);
    }
    Ok(Outcome::ok(empty_response(StatusCode::NO_CONTENT), Some(claims.sub)))
}

/// `POST /password`: the access token names the user and session; the current
/// password is checked as a login is (counted by its throttle); the user's other
/// sessions end and this one continues with fresh tokens.
async fn change_password(state: &AccountState, request: &Request) -> Result<Outcome, ApiError> {
    let (claims, session_id) = signed_in(state, request).await?;
    let accounts = state.recovery.accounts();
    let now = accounts.sessions().clock().now();
    let body: ChangeBody =
        json_body(request)?.ok_or(ApiError::InvalidRequest("Body must be {\"currentPassword\", \"newPassword\"}."))?;
    let (current, new) = (password(body.current_password)?, password(body.new_password)?);
    let changed = accounts.change_password(&claims.sub, &claims.email, session_id, &current, &new).await;
    let changed = match changed.map_err(account_error)? {
        Authentication::Success(Some(changed)) => changed,
        // The password was right but the session is no longer this user's live one.
        Authentication::Success(None) => return Err(ApiError::InvalidToken("session ended".to_owned())),
        Authentication::Failure | Authentication::Unverified => return Err(ApiError::InvalidCredentials),
        Authentication::Throttled { retry_after_secs } => return Err(ApiError::TooManyAttempts { retry_after_secs }),
    };
    let subject = subject_of(&UserStanding::from(&changed.user), &changed.session);
    let (access, ()) = tokio::join!(state.tokens.issue(&subject, now), accounts.mark_others_ended(&changed));
    let access = access?;
    let PasswordChanged { user, session, refresh_token } = changed;
    let response = state.tokens.respond(&access, &session, &refresh_token, now, false);
    Ok(Outcome::ok(response, Some(user.id)))
}

/// [`signed_in`], and the token's session still live for the same user in the user's
/// current epoch (the second factor is changed only from a session that stands,
/// whatever the authorizer's cache says): the claims and the user as stored.
async fn in_live_session(
    state: &AccountState,
    request: &Request,
) -> Result<(crate::token::AccessClaims, crate::store::User), ApiError> {
    let (claims, session_id) = signed_in(state, request).await?;
    let accounts = state.recovery.accounts();
    let (session, user) = tokio::join!(accounts.sessions().session(&session_id), accounts.existing(&claims.email));
    let user = user.map_err(|error| match error {
        AccountError::Store(StoreError::NotFound) => ApiError::InvalidToken("user gone".to_owned()),
        other => account_error(other),
    })?;
    let now = accounts.sessions().clock().now();
    let live = session?.is_some_and(|session| {
        session.is_live(now) && session.user_id == user.id && session.user_epoch == user.session_epoch
    });
    if user.id != claims.sub || user.disabled || !live {
        return Err(ApiError::InvalidToken("session ended".to_owned()));
    }
    Ok((claims, user))
}

/// `POST /mfa/totp`: a new secret for the signed-in user's authenticator app, not
/// active until confirmed; 409 `mfa_enabled` while one is.
async fn mfa_begin(state: &AccountState, request: &Request) -> Result<Outcome, ApiError> {
    let (claims, user) = in_live_session(state, request).await?;
    let enrolment = state.mfa.begin(&user).await.map_err(mfa_error)?;
    Ok(Outcome::ok(json_response(StatusCode::OK, &super::enrolment_body(&enrolment)), Some(claims.sub)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    password: String,
    code: String,
}

/// `POST /mfa/totp/confirm {"password", "code"}`: `{"recoveryCodes": [...]}`, shown once.
async fn mfa_confirm(state: &AccountState, request: &Request) -> Result<Outcome, ApiError> {
    let (claims, _) = in_live_session(state, request).await?;
    let body: ConfirmBody =
        json_body(request)?.ok_or(ApiError::InvalidRequest("Body must be {\"password\", \"code\"}."))?;
    let current = password(body.password)?;
    let codes = state.mfa.confirm(&claims.sub, &claims.email, &current, &body.code).await.map_err(mfa_error)?;
    let body = serde_json::json!({ "recoveryCodes": codes });
    Ok(Outcome::ok(json_response(StatusCode::OK, &body), Some(claims.sub)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RemoveBody {
    password: String,
    code: Option<String>,
    recovery_code: Option<String>,
}

const REMOVE_SHAPE: &str = "Body must be {\"password\", \"code\"} or {\"password\", \"recoveryCode\"}.";

/// `DELETE /mfa/totp {"password", "code" | "recoveryCode"}`: 204.
async fn mfa_remove(state: &AccountState, request: &Request) -> Result<Outcome, ApiError> {
    let (claims, _) = in_live_session(state, request).await?;
    let body: RemoveBody = json_body(request)?.ok_or(ApiError::InvalidRequest(REMOVE_SHAPE))?;
    let proof = match (body.code, body.recovery_code) {
        (Some(code), None) => Proof::Code(code),
        (None, Some(code)) => Proof::RecoveryCode(code),
        _ => return Err(ApiError::InvalidRequest(REMOVE_SHAPE)),
    };
    let current = password(body.password)?;
    state.mfa.remove(&claims.sub, &claims.email, &current, &proof).await.map_err(mfa_error)?;
    Ok(Outcome::ok(empty_response(StatusCode::NO_CONTENT), Some(claims.sub)))
}

#[derive(Deserialize)]
struct EmailBody {
    email: String,
}

/// `POST /password/forgot`: 202, the same body, at the same time, whatever the email.
async fn forgot(state: &AccountState, request: &Request, started: tokio::time::Instant) -> Result<Outcome, ApiError> {
    let body: EmailBody = json_body(request)?.ok_or(ApiError::InvalidRequest("Body must be {\"email\"}."))?;
    // The outcome is for the audit line `forgot` writes; every one is answered alike.
    state.recovery.forgot(&body.email).await.map_err(account_error)?;
    at_floor(started, state.recovery.settings().response_floor).await;
    let body = serde_json::json!({
        "message": "If this address has an account, a link to set a new password is on its way."
    });
    Ok(Outcome::ok(json_response(StatusCode::ACCEPTED, &body), None))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetBody {
    token: String,
    new_password: String,
}

/// `POST /password/reset`: 204, or 400 `invalid_link` for every bad link.
async fn reset(state: &AccountState, request: &Request) -> Result<Outcome, ApiError> {
    let body: ResetBody =
        json_body(request)?.ok_or(ApiError::InvalidRequest("Body must be {\"token\", \"newPassword\"}."))?;
    let new = password(body.new_password)?;
    match state.recovery.reset(&body.token, &new).await.map_err(account_error)? {
        Ok(user_id) => Ok(Outcome::ok(empty_response(StatusCode::NO_CONTENT), Some(user_id))),
        Err(why) => Err(link_error(why)),
    }
}

#[derive(Deserialize)]
struct SignupBody {
    email: String,
    password: String,
}

/// `POST /signup`: 202, the same body, at the same time, whether or not the email
/// was taken.
async fn sign_up(state: &AccountState, request: &Request, started: tokio::time::Instant) -> Result<Outcome, ApiError> {
    let body: SignupBody =
        json_body(request)?.ok_or(ApiError::InvalidRequest("Body must be {\"email\", \"password\"}."))?;
    let new = password(body.password)?;
    match state.recovery.sign_up(&body.email, &new).await {
        Ok(_) => {}
        Err(SignupRefused::Off) => return Err(ApiError::SignupOff),
        Err(SignupRefused::Domain) => return Err(ApiError::InvalidRequest("This email domain may not sign up.")),
        Err(SignupRefused::Account(error)) => return Err(account_error(error)),
    }
    at_floor(started, state.recovery.settings().response_floor).await;
    let body = serde_json::json!({"message": "Check your email to finish signing up."});
    Ok(Outcome::ok(json_response(StatusCode::ACCEPTED, &body), None))
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

/// `POST /email/verify`: 204, or 400 `invalid_link`.
async fn verify_email(state: &AccountState, request: &Request) -> Result<Outcome, ApiError> {
    let body: TokenBody = json_body(request)?.ok_or(ApiError::InvalidRequest("Body must be {\"token\"}."))?;
    match state.recovery.verify_email(&body.token).await.map_err(account_error)? {
        Ok(user_id) => Ok(Outcome::ok(empty_response(StatusCode::NO_CONTENT), Some(user_id))),
        Err(why) => Err(link_error(why)),
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::Server(format!("store: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::AccountRoute;

    #[test]
    fn routes_are_found_by_their_last_segments() {
        assert_eq!(AccountRoute::of_path("/password"), Some(AccountRoute::ChangePassword));
        assert_eq!(AccountRoute::of_path("/password/forgot"), Some(AccountRoute::Forgot));
        assert_eq!(AccountRoute::of_path("/api/password/reset"), Some(AccountRoute::Reset));
        assert_eq!(AccountRoute::of_path("/signup/"), Some(AccountRoute::Signup));
        assert_eq!(AccountRoute::of_path("/email/verify"), Some(AccountRoute::VerifyEmail));
        assert_eq!(AccountRoute::of_path("/api/password"), Some(AccountRoute::ChangePassword));
        assert_eq!(AccountRoute::of_path("/passwords"), None);
        assert_eq!(AccountRoute::of_path("/me"), None);
        assert_eq!(AccountRoute::of_path("/sessions"), Some(AccountRoute::Sessions));
        assert_eq!(AccountRoute::of_path("/api/sessions/abc"), Some(AccountRoute::EndSession));
        assert_eq!(AccountRoute::of_path("/sessions/"), Some(AccountRoute::Sessions));
        assert_eq!(AccountRoute::of_path("/mfa/totp"), Some(AccountRoute::MfaBegin));
        assert_eq!(AccountRoute::of_path("/api/mfa/totp/confirm"), Some(AccountRoute::MfaConfirm));
        let delete = http::Method::DELETE;
        assert_eq!(AccountRoute::of_request(&delete, "/mfa/totp"), Some(AccountRoute::MfaRemove));
    }
}
