//! `POST /refresh-token`: rotate the refresh token, issue a fresh access token.

use http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use super::edge::{Outcome, check_cookie_request, clear_refresh_cookie, client_of, json_body, refresh_cookie, serve};
use super::tokens::{snapshot_subject, subject_of};
use super::{ApiError, TokenResponder};
use crate::config::EdgeConfig;
use crate::session::{RefreshError, SessionManager};

/// What the refresh function holds from cold start on.
#[derive(Debug, Clone)]
pub struct RefreshState {
    /// Sessions and the refresh-token key.
    pub sessions: SessionManager,
    /// Access tokens and the token response.
    pub tokens: TokenResponder,
    /// CORS, cookie and CSRF settings.
    pub edge: EdgeConfig,
}

/// A body, when sent, must carry the token (a cookie client sends no body).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshBody {
    refresh_token: String,
}

/// Where a refresh token came from; a cookie brings CSRF checks and cookie clearing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Body,
    Cookie,
}

/// The refresh token of a request: the body's `refreshToken`, else the cookie
/// (after the CSRF checks). `None` when there is neither.
pub(super) fn presented_refresh_token(
    request: &Request,
    edge: &EdgeConfig,
    from_body: Option<String>,
) -> Result<Option<(String, Source)>, ApiError> {
    if let Some(token) = from_body {
        return Ok(Some((token, Source::Body)));
    }
    let cookie = refresh_cookie(request, edge)
        .map_err(|_| ApiError::InvalidRequest("More than one refresh cookie; clear cookies and log in again."))?;
    match cookie {
        Some(token) => {
            check_cookie_request(request, edge)?;
            Ok(Some((token, Source::Cookie)))
        }
        None => Ok(None),
    }
}

/// Handles `POST /refresh-token` (and its CORS preflight). Every refusal, and a
/// request with no refresh token at all, is the same 401 `invalid_grant`; a body
/// without `refreshToken` is a 400; a store outage is a 500.
pub async fn refresh(state: &RefreshState, request: Request) -> Response<Body> {
    serve(super::REFRESH_ROUTE, Method::POST, &state.edge, request, |request| async move {
        attempt(state, &request).await.unwrap_or_else(Outcome::from)
    })
    .await
}

/// Read the session, then read the user while signing, then commit (the
/// rotation): three AWS round trips, and a signing failure leaves the presented
/// token usable, so the client's retry is no reuse.
async fn attempt(state: &RefreshState, request: &Request) -> Result<Outcome, ApiError> {
    let body: Option<RefreshBody> = json_body(request)?;
    let (token, source) = presented_refresh_token(request, &state.edge, body.map(|body| body.refresh_token))?
        .ok_or_else(|| ApiError::InvalidGrant("no refresh token in the body or cookie".to_owned()))?;
    let refused = |error: RefreshError| match error {
        RefreshError::Invalid(grant) => {
            tracing::info!(event = "refresh_refused", reason = grant.code());
            let mut outcome = Outcome::from(ApiError::InvalidGrant(grant.to_string()));
            if source == Source::Cookie {
                clear_refresh_cookie(outcome.response.headers_mut(), &state.edge);
            }
            Ok(outcome)
        }
        RefreshError::Store(error) => Err(ApiError::Server(format!("refresh: {error}"))),
    };
    let read = match state.sessions.read_refresh(&token).await {
        Ok(read) => read,
        Err(error) => return refused(error),
    };
    // The access token is signed for the session's role snapshot while the user is
    // read, and kept only if the user as read is still that subject.
    let now = state.sessions.clock().now();
    let guess = snapshot_subject(read.session());
    let (checked, signed) = tokio::join!(state.sessions.check_refresh(read), async {
        match &guess {
            Some(subject) => Some(state.tokens.issue(subject, now).await),
            None => None,
        }
    });
    let pending = match checked {
        Ok(pending) => pending,
        Err(error) => return refused(error),
    };
    let subject = subject_of(pending.user(), pending.session());
    let access = match (guess, signed) {
        (Some(guess), Some(signed)) if guess == subject => signed?,
        _ => state.tokens.issue(&subject, now).await?,
    };
    let refreshed = match state.sessions.commit_refresh(pending, &client_of(request)).await {
        Ok(refreshed) => refreshed,
        Err(error) => return refused(error),
    };
    let response =
        state.tokens.respond(&access, &refreshed.session, &refreshed.refresh_token, now, source == Source::Cookie);
    Ok(Outcome::ok(response, Some(refreshed.user.id)))
}
