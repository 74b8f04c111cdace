//! `GET /.well-known/jwks.json`: the public keys verifiers must accept.

use std::sync::Arc;

use http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};

use super::edge::{Outcome, serve};
use super::error::ApiError;
use crate::clock::Clock;
use crate::config::EdgeConfig;
use crate::signing::{DelegatedKeys, KeySet};

/// What the JWKS function holds from cold start on.
#[derive(Clone)]
pub struct JwksState {
    /// The long-term keys (signing key plus keys still accepted during rotation).
    pub keys: KeySet,
    /// With delegated signing, the period keys published beside them.
    pub delegated: Option<Arc<DelegatedKeys>>,
    /// CORS settings and the cache lifetime.
    pub edge: EdgeConfig,
    /// The time source (which periods' keys are published).
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for JwksState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksState")
            .field("keys", &self.keys)
            .field("delegated", &self.delegated)
            .field("edge", &self.edge)
            .finish_non_exhaustive()
    }
}

/// The keys to publish now: the long-term keys, and with delegated signing the
/// period keys (a store failure is a 500, never a JWKS without the current key).
async fn published(state: &JwksState) -> Result<KeySet, ApiError> {
    let Some(delegated) = &state.delegated else { return Ok(state.keys.clone()) };
    let period_keys = delegated.published(state.clock.now()).await.map_err(|e| ApiError::Server(e.to_string()))?;
    let long_term = state.keys.iter().map(|key| key.public.clone());
    KeySet::new(long_term.chain(period_keys)).map_err(|e| ApiError::Server(e.to_string()))
}

/// Handles `GET /.well-known/jwks.json`: the JWKS with `Cache-Control: public, max-age=N`.
pub async fn jwks(state: &JwksState, request: Request) -> Response<Body> {
    serve(super::JWKS_ROUTE, Method::GET, &state.edge, request, |_| async move {
        let keys = match published(state).await {
            Ok(keys) => keys,
            Err(error) => return Outcome::from(error),
        };
        let mut response = Response::new(Body::Text(keys.to_jwks_json().to_string()));
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
