//! The token response shared by login and refresh: a fresh access token, the
//! refresh token in the body and/or cookie, `Cache-Control: no-store`.

use http::StatusCode;
use lambda_http::{Body, Response};

use super::ApiError;
use super::edge::{json_response, set_refresh_cookie};
use crate::config::EdgeConfig;
use crate::store::{Session, User};
use crate::token::{AccessTokenIssuer, Subject};

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

    /// `200 {"accessToken", "refreshToken"?, "tokenType": "Bearer", "expiresIn"}` plus
    /// the refresh cookie when configured; the cookie lives as long as the session.
    pub async fn respond(
        &self,
        user: &User,
        session: &Session,
        refresh_token: &str,
        now: u64,
    ) -> Result<Response<Body>, ApiError> {
        let subject = Subject {
            user_id: user.id.clone(),
            email: user.email.clone(),
            role: user.role.clone(),
            session_id: session.id.to_string(),
        };
        let access =
            self.issuer.issue(&subject, now).await.map_err(|error| ApiError::Server(format!("signing: {error}")))?;
        let delivery = self.edge.refresh_delivery;
        let mut body = serde_json::json!({
            "accessToken": access.token,
            "tokenType": "Bearer",
            "expiresIn": access.expires_in,
        });
        if delivery.in_body() {
            body["refreshToken"] = serde_json::Value::String(refresh_token.to_owned());
        }
        let mut response = json_response(StatusCode::OK, &body);
        if delivery.in_cookie() {
            let max_age = session.expires_at().saturating_sub(now);
            set_refresh_cookie(response.headers_mut(), &self.edge, refresh_token, max_age);
        }
        Ok(response)
    }
}
