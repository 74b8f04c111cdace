//! The token response shared by login and refresh: a fresh access token, the
//! refresh token in the body and/or cookie, `Cache-Control: no-store`.

use http::StatusCode;
use lambda_http::{Body, Response};

use super::ApiError;
use super::edge::{json_response, set_refresh_cookie};
use crate::config::EdgeConfig;
use crate::store::{Session, UserStanding};
use crate::token::{AccessTokenIssuer, IssuedAccessToken, Subject};

/// Whom an access token for `user` in `session` is for.
pub fn subject_of(user: &UserStanding, session: &Session) -> Subject {
    Subject {
        user_id: user.id.clone(),
        email: user.email.clone(),
        role: user.role.clone(),
        session_id: session.id.to_string(),
        amr: session.amr.clone(),
    }
}

/// Whom the session's next access token is for if its owner is unchanged since the
/// session's last read of the user (its role snapshot); `None` without a snapshot.
pub fn snapshot_subject(session: &Session) -> Option<Subject> {
    Some(Subject {
        user_id: session.user_id.clone(),
        email: session.email.clone(),
        role: session.role.clone()?,
        session_id: session.id.to_string(),
        amr: session.amr.clone(),
    })
}

/// Issues access tokens and shapes token responses.
#[derive(Debug, Clone)]
pub struct TokenResponder {
    issuer: AccessTokenIssuer,
    edge: EdgeConfig,
}

impl TokenResponder {
    /// A responder signing with `issuer` and delivering refresh tokens as `edge` says.
    pub fn new(issuer: AccessTokenIssuer, edge: EdgeConfig) -> Self {
        Self { issuer, edge }
    }

    /// The access token's issuer (for its public key).
    pub fn issuer(&self) -> &AccessTokenIssuer {
        &self.issuer
    }

    /// Signs an access token for `subject`: the fallible step of a token response,
    /// done before a refresh commits its rotation.
    pub async fn issue(&self, subject: &Subject, now: u64) -> Result<IssuedAccessToken, ApiError> {
        self.issuer.issue(subject, now).await.map_err(|error| {
            let throttled = error.to_string().contains("Throttling");
            tracing::error!(event = "signing_failed", throttled, "the access token could not be signed");
            ApiError::Server(format!("signing: {error}"))
        })
    }

    /// `200 {"accessToken", "refreshToken"?, "tokenType": "Bearer", "expiresIn"}` plus
    /// the refresh cookie when configured; the cookie lives as long as the session.
    /// A refresh token that arrived in the cookie (`from_cookie`) leaves only in the
    /// cookie: script must never read what `HttpOnly` hides.
    pub fn respond(
        &self,
        access: &IssuedAccessToken,
        session: &Session,
        refresh_token: &str,
        now: u64,
        from_cookie: bool,
    ) -> Response<Body> {
        let delivery = self.edge.refresh_delivery;
        let mut body = serde_json::json!({
            "accessToken": access.token,
            "tokenType": "Bearer",
            "expiresIn": access.expires_in,
        });
        if delivery.in_body() && !(from_cookie && delivery.in_cookie()) {
            body["refreshToken"] = serde_json::Value::String(refresh_token.to_owned());
        }
        let mut response = json_response(StatusCode::OK, &body);
        if delivery.in_cookie() {
            let max_age = session.expires_at().saturating_sub(now);
            set_refresh_cookie(response.headers_mut(), &self.edge, refresh_token, max_age);
        }
        response
    }
}
