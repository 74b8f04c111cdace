//! `POST /logout`: revoke the session named by a refresh token or an access
//! token, every session of that user, or every one but it (`others`); idempotent.

use http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use super::ApiError;
use super::edge::{Outcome, clear_refresh_cookie, empty_response, json_body, serve};
use super::refresh::presented_refresh_token;
use crate::config::EdgeConfig;
use crate::session::{InvalidGrant, SessionManager};
use crate::token::{SessionId, Verifier};

/// What the logout function holds from cold start on.
#[derive(Debug, Clone)]
pub struct LogoutState {
    /// Sessions and the refresh-token key.
    pub sessions: SessionManager,
    /// Access-token verification, for logout with a bearer token.
    pub verifier: Verifier,
    /// CORS, cookie and CSRF settings.
    pub edge: EdgeConfig,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LogoutBody {
    /// A string when present (`null` is refused, as docs/openapi.yaml says).
    #[serde(default, deserialize_with = "super::edge::present")]
    refresh_token: Option<String>,
    #[serde(default)]
    all_sessions: bool,
    /// End every session but the caller's (the caller stays signed in).
    #[serde(default)]
    others: bool,
}

/// Handles `POST /logout` (and its CORS preflight): 204 and a cleared cookie,
/// also when the session was already gone.
pub async fn logout(state: &LogoutState, request: Request) -> Response<Body> {
    serve(super::LOGOUT_ROUTE, Method::POST, &state.edge, request, |request| async move {
        attempt(state, &request).await.unwrap_or_else(Outcome::from)
    })
    .await
}

async fn attempt(state: &LogoutState, request: &Request) -> Result<Outcome, ApiError> {
    let body: LogoutBody = json_body(request)?.unwrap_or_default();
    if body.all_sessions && body.others {
        return Err(ApiError::InvalidRequest("allSessions and others cannot both be true."));
    }
    let needs_live = body.all_sessions || body.others;
    let server = |error: crate::store::StoreError| ApiError::Server(format!("logout: {error}"));
    let (session_id, usable) = match presented_refresh_token(request, &state.edge, body.refresh_token)? {
        Some((token, _)) => {
            let named = state.sessions.identify(&token).map_err(grant_error)?;
            // Ending every session takes a usable token, not an old spent one.
            let usable = match needs_live {
                true => state.sessions.current_session(&named).await.map_err(server)?,
                false => None,
            };
            (named.session_id, usable)
        }
        None => {
            let token = bearer_token(request).ok_or_else(|| {
                ApiError::InvalidToken("no refresh token (body or cookie) and no bearer token".to_owned())
            })?;
            let now = state.sessions.clock().now();
            let claims = state
                .verifier
                .verify_live(token, now)
                .await
                .map_err(|error| ApiError::InvalidToken(error.to_string()))?;
            let session_id: SessionId =
                claims.sid.parse().map_err(|_| ApiError::InvalidToken("sid is not a session id".to_owned()))?;
            // An access token outlives its session's revocation by up to its
            // lifetime; it may end its own session, but all of them only while live.
            let usable = match needs_live {
                true => state.sessions.session(&session_id).await.map_err(server)?.filter(|s| s.is_live(now)),
                false => None,
            };
            (session_id, usable)
        }
    };
    if body.others {
        let session = usable.ok_or_else(|| ApiError::InvalidGrant("others needs a live session".to_owned()))?;
        let user_id = session.user_id.clone();
        state
            .sessions
            .end_others(&session)
            .await
            .map_err(server)?
            .ok_or_else(|| ApiError::InvalidGrant("others needs a session its user still allows".to_owned()))?;
        // The caller's own session continues: its cookie stays.
        return Ok(Outcome::ok(empty_response(StatusCode::NO_CONTENT), Some(user_id)));
    }
    let user_id = if body.all_sessions {
        let session = usable.ok_or_else(|| ApiError::InvalidGrant("allSessions needs a live session".to_owned()))?;
        // A session ended only by its user's epoch (one the index missed when the
        // user's sessions were ended) is no credential for ending the others.
        if !state.sessions.user_allows(&session).await.map_err(server)? {
            return Err(ApiError::InvalidGrant("allSessions needs a session its user still allows".to_owned()));
        }
        state
            .sessions
            .revoke_all(&session.user_id, &session.email, "logout_all", Some(&session.id))
            .await
            .map_err(server)?;
        Some(session.user_id)
    } else {
        state.sessions.revoke(&session_id, "logout").await.map_err(server)?.map(|session| session.user_id)
    };
    let mut response = empty_response(StatusCode::NO_CONTENT);
    clear_refresh_cookie(response.headers_mut(), &state.edge);
    Ok(Outcome::ok(response, user_id))
}

fn grant_error(grant: InvalidGrant) -> ApiError {
    ApiError::InvalidGrant(grant.to_string())
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub(crate) fn bearer_token(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}
