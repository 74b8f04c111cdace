//! The one client-facing error type of the HTTP functions: stable codes, fixed
//! messages, and internal detail that goes to the log only.

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};

/// Everything an HTTP handler can answer with besides success. The detail
/// strings are for logs; clients see only [`ApiError::code`] and a fixed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400 `invalid_request`: malformed JSON, wrong content type, missing fields,
    /// body over 8 KiB. The message says which, without echoing input.
    InvalidRequest(&'static str),
    /// 403 `invalid_request`: a cookie-carrying request from a disallowed origin,
    /// cross-site, or without the CSRF header.
    Forbidden(&'static str),
    /// 401 `invalid_credentials`: unknown email, wrong password or disabled account.
    InvalidCredentials,
    /// 401 `invalid_grant`: any refresh-token failure; the detail is for logs.
    InvalidGrant(String),
    /// 401 `invalid_token`: an access token failed verification; the detail is for logs.
    InvalidToken(String),
    /// 429 `too_many_attempts`: too many failed logins for this account; retry later.
    TooManyAttempts {
        /// Seconds until a login may be tried again (`Retry-After`).
        retry_after_secs: u64,
    },
    /// 405 `invalid_request`: the route exists but not with this method.
    MethodNotAllowed,
    /// 400 `weak_password`: a new password the policy refuses; the message says why.
    WeakPassword(&'static str),
    /// 400 `invalid_link`: a reset, invitation or verification link that is
    /// malformed, unknown, expired, used or superseded (one answer for all; the
    /// detail is for logs).
    InvalidLink(&'static str),
    /// 403 `email_unverified`: the right password for a sign-up whose email is not
    /// verified yet.
    EmailUnverified,
    /// 403 `signup_disabled`: `LATCHKEY_SIGNUP=off`.
    SignupOff,
    /// 404 `not_found`: no such route in this function, or no such resource.
    NotFound,
    /// 403 `forbidden`: a valid access token whose user is not an active
    /// administrator (the admin API).
    NotAdmin,
    /// 409 with a code of its own: `last_admin` (the change would leave no active
    /// administrator), `email_taken` (a user has this email), `conflict` (the user
    /// changed meanwhile; nothing was written).
    Conflict(&'static str),
    /// 400 `invalid_cursor`: a listing cursor that was not issued for this listing or
    /// was altered.
    InvalidCursor,
    /// 401 `invalid_mfa_token`: the `mfaToken` of a login's second step is malformed,
    /// unknown, expired, used or superseded: sign in again.
    InvalidMfaToken,
    /// 401 `invalid_code`: the code is wrong, replayed or too far from now, or the
    /// recovery code is not (or no longer) the user's.
    InvalidCode,
    /// 500 `server_error`: storage or KMS failed; the detail is for logs.
    Server(String),
}

impl ApiError {
    /// Every code [`ApiError::code`] can return.
    pub const CODES: [&'static str; 21] = [
        "invalid_request",
        "invalid_credentials",
        "invalid_grant",
        "invalid_token",
        "too_many_attempts",
        "server_error",
        "weak_password",
        "invalid_link",
        "email_unverified",
        "signup_disabled",
        "not_found",
        "forbidden",
        "last_admin",
        "email_taken",
        "conflict",
        "invalid_cursor",
        "invalid_mfa_token",
        "invalid_code",
        "mfa_enabled",
        "mfa_not_pending",
        "mfa_not_enabled",
    ];

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) | Self::WeakPassword(_) | Self::InvalidLink(_) | Self::InvalidCursor => {
                StatusCode::BAD_REQUEST
            }
            Self::Forbidden(_) | Self::EmailUnverified | Self::SignupOff | Self::NotAdmin => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::InvalidCredentials
            | Self::InvalidGrant(_)
            | Self::InvalidToken(_)
            | Self::InvalidMfaToken
            | Self::InvalidCode => StatusCode::UNAUTHORIZED,
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code of the JSON body's `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::Forbidden(_) | Self::MethodNotAllowed => "invalid_request",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::InvalidToken(_) => "invalid_token",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::Server(_) => "server_error",
            Self::WeakPassword(_) => "weak_password",
            Self::InvalidLink(_) => "invalid_link",
            Self::EmailUnverified => "email_unverified",
            Self::SignupOff => "signup_disabled",
            Self::NotFound => "not_found",
            Self::NotAdmin => "forbidden",
            Self::Conflict(code) => code,
            Self::InvalidCursor => "invalid_cursor",
            Self::InvalidMfaToken => "invalid_mfa_token",
            Self::InvalidCode => "invalid_code",
        }
    }

    /// The human-readable message sent to the client: fixed text, never input or internals.
    pub fn message(&self) -> &'static str {
        match self {
            Self::InvalidRequest(message) | Self::Forbidden(message) | Self::WeakPassword(message) => message,
            Self::InvalidLink(_) => "The link is invalid, expired or already used.",
            Self::EmailUnverified => "Confirm your email address first, with the link sent when you signed up.",
            Self::SignupOff => "Sign-up is off.",
            Self::NotFound => "Not Found",
            Self::NotAdmin => "This needs an active administrator.",
            Self::Conflict("last_admin") => "This would leave no active administrator.",
            Self::Conflict("email_taken") => "A user with this email already exists.",
            Self::Conflict("mfa_enabled") => "A second factor is enabled already. Remove it first.",
            Self::Conflict("mfa_not_pending") => "No enrolment is waiting for confirmation. Start one first.",
            Self::Conflict("mfa_not_enabled") => "No second factor is enabled.",
            Self::InvalidMfaToken => "The sign-in has expired or was already finished. Sign in again.",
            Self::InvalidCode => "The code is incorrect or was already used.",
            Self::Conflict(_) => "The user changed meanwhile. Read it again and retry.",
            Self::InvalidCursor => "The cursor is invalid for this listing.",
            Self::InvalidCredentials => "The email or password is incorrect.",
            Self::InvalidGrant(_) => "The refresh token is invalid, expired or revoked.",
            Self::InvalidToken(_) => "The access token is invalid.",
            Self::TooManyAttempts { .. } => "Too many failed attempts. Try again later.",
            Self::MethodNotAllowed => "Method not allowed.",
            Self::Server(_) => "Something went wrong. Try again.",
        }
    }

    /// What the log line says about the failure (never a secret).
    pub fn log_detail(&self) -> &str {
        match self {
            Self::InvalidGrant(detail) | Self::InvalidToken(detail) | Self::Server(detail) => detail,
            Self::InvalidLink(detail) => detail,
            other => other.message(),
        }
    }

    /// The JSON error response, with `WWW-Authenticate` on 401s and `Retry-After` on 429.
    pub fn into_response(self) -> Response<Body> {
        let body = serde_json::json!({ "error": self.code(), "message": self.message() }).to_string();
        let mut response = Response::new(Body::Text(body));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status() == StatusCode::UNAUTHORIZED {
            let challenge = format!("Bearer error=\"{}\"", self.code());
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        if let Self::TooManyAttempts { retry_after_secs } = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        if matches!(self, Self::MethodNotAllowed) {
            headers.insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(response: &Response<Body>) -> serde_json::Value {
        match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_error_has_a_stable_code_status_and_fixed_message() {
        let cases = [
            (ApiError::InvalidRequest("Body must be JSON."), 400, "invalid_request"),
            (ApiError::Forbidden("Origin not allowed."), 403, "invalid_request"),
            (ApiError::InvalidCredentials, 401, "invalid_credentials"),
            (ApiError::InvalidGrant("reuse".into()), 401, "invalid_grant"),
            (ApiError::InvalidToken("expired".into()), 401, "invalid_token"),
            (ApiError::TooManyAttempts { retry_after_secs: 60 }, 429, "too_many_attempts"),
            (ApiError::MethodNotAllowed, 405, "invalid_request"),
            (ApiError::Server("dynamodb: timeout".into()), 500, "server_error"),
            (ApiError::WeakPassword("Password must have at least 8 characters."), 400, "weak_password"),
            (ApiError::InvalidLink("spent"), 400, "invalid_link"),
            (ApiError::EmailUnverified, 403, "email_unverified"),
            (ApiError::SignupOff, 403, "signup_disabled"),
            (ApiError::NotFound, 404, "not_found"),
            (ApiError::NotAdmin, 403, "forbidden"),
            (ApiError::Conflict("last_admin"), 409, "last_admin"),
            (ApiError::Conflict("email_taken"), 409, "email_taken"),
            (ApiError::Conflict("conflict"), 409, "conflict"),
            (ApiError::InvalidCursor, 400, "invalid_cursor"),
            (ApiError::InvalidMfaToken, 401, "invalid_mfa_token"),
            (ApiError::InvalidCode, 401, "invalid_code"),
            (ApiError::Conflict("mfa_enabled"), 409, "mfa_enabled"),
            (ApiError::Conflict("mfa_not_pending"), 409, "mfa_not_pending"),
            (ApiError::Conflict("mfa_not_enabled"), 409, "mfa_not_enabled"),
        ];
        for (error, status, code) in cases {
            let detail = error.log_detail().to_owned();
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status);
            let body = body_of(&response);
            assert_eq!(body["error"], code);
            assert!(ApiError::CODES.contains(&code));
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
            if status == 500 || code == "invalid_grant" || code == "invalid_link" {
                assert!(!body.to_string().contains(&detail), "internal detail leaked: {body}");
            }
        }
    }

    #[test]
    fn unauthorized_responses_carry_a_bearer_challenge() {
        let response = ApiError::InvalidGrant("expired".into()).into_response();
        assert_eq!(response.headers()["www-authenticate"], "Bearer error=\"invalid_grant\"");
        let response = ApiError::TooManyAttempts { retry_after_secs: 42 }.into_response();
        assert_eq!(response.headers()["retry-after"], "42");
    }
}
