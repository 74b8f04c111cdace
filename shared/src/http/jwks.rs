//! `GET /.well-known/jwks.json`: the public keys verifiers must accept.

use http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};

use super::edge::{Outcome, serve};
use crate::config::EdgeConfig;
use crate::signing::KeySet;

/// What the JWKS function holds from cold start on.
#[derive(Debug, Clone)]
pub struct JwksState {
    /// The published keys (signing key plus keys still accepted during rotation).
    pub keys: KeySet,
    /// CORS settings and the cache lifetime.
    pub edge: EdgeConfig,
}

/// Handles `GET /.well-known/jwks.json`: the JWKS with `Cache-Control: public, max-age=N`.
pub async fn jwks(state: &JwksState, request: Request) -> Response<Body> {
    serve(super::JWKS_ROUTE, Method::GET, &state.edge, request, |_| async move {
        let mut response = Response::new(Body::Text(state.keys.to_jwks_json().to_string()));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"));
        let cache = format!("public, max-age={}", state.edge.jwks_max_age_secs);
        if let Ok(value) = HeaderValue::from_str(&cache) {
            headers.insert(header::CACHE_CONTROL, value);
        }
        Outcome::ok(response, None)
    })
    .await
}
