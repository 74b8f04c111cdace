//! What every HTTP function does at the edge: read a bounded JSON body, the
//! refresh cookie and its CSRF checks, CORS for allow-listed origins, token
//! responses, and one log line per request.

use std::time::Instant;

use cookie::{Cookie, SameSite};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::config::EdgeConfig;
use crate::store::ClientInfo;

/// Bodies longer than this are refused with 400 before parsing.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// Name of the refresh-token cookie under a cookie path other than `/`. The
/// `__Secure-` prefix makes browsers refuse it unless it is `Secure` and set over HTTPS.
pub const REFRESH_COOKIE: &str = "__Secure-latchkey-refresh";

/// Name of the refresh-token cookie when the cookie path is `/`: `__Host-` also
/// forbids a `Domain` attribute, so a sibling subdomain cannot plant one.
pub const HOST_REFRESH_COOKIE: &str = "__Host-latchkey-refresh";

/// The refresh cookie's name under `edge`'s cookie path: `__Host-` whenever the
/// path allows it (`/`), `__Secure-` otherwise.
pub fn refresh_cookie_name(edge: &EdgeConfig) -> &'static str {
    if edge.cookie_path == "/" { HOST_REFRESH_COOKIE } else { REFRESH_COOKIE }
}

/// A request carried two refresh cookies with different values (one may have
/// been planted for a parent domain by a sibling subdomain): refused, since
/// either choice could log the user in as someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmbiguousCookie;

/// Parses a JSON body into `T`: the content type must be JSON, the body at most
/// [`MAX_BODY_BYTES`], and every required field present. `None` for an empty body.
pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<Option<T>, ApiError> {
    let bytes: &[u8] = match request.body() {
        Body::Empty => return Ok(None),
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => return Err(ApiError::InvalidRequest("Unsupported body.")),
    };
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::InvalidRequest("Request body is larger than 8 KiB."));
    }
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::InvalidRequest("Content-Type must be application/json."));
    }
    // serde's derive also reads a struct from an array (`[]`): only an object is a body.
    let is_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let invalid = ApiError::InvalidRequest("Body must be a JSON object with the documented fields.");
    if !is_object {
        return Err(invalid);
    }
    serde_json::from_slice(bytes).map(Some).map_err(|_| invalid)
}

/// For `#[serde(default, deserialize_with = "present")]` on an `Option` field: absent
/// is `None`, present must be a `T` (`null` is refused, not read as absent).
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The refresh token from the refresh cookie, if the request carries one;
/// [`AmbiguousCookie`] if it carries several that differ.
pub fn refresh_cookie(request: &Request, edge: &EdgeConfig) -> Result<Option<String>, AmbiguousCookie> {
    let name = refresh_cookie_name(edge);
    let mut values = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|cookie| cookie.name() == name && !cookie.value().is_empty())
        .map(|cookie| cookie.value().to_owned());
    let first = values.next();
    match first {
        Some(first) if values.any(|other| other != first) => Err(AmbiguousCookie),
        first => Ok(first),
    }
}

/// Checks a request that authenticates with the refresh cookie: an `Origin`, when
/// present, must be allow-listed; `Sec-Fetch-Site: cross-site` is refused; and
/// the CSRF header must be present (a cross-site form or `<img>` cannot set it).
pub fn check_cookie_request(request: &Request, edge: &EdgeConfig) -> Result<(), ApiError> {
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|origin| edge.allowed_origins.iter().any(|allowed| allowed == origin));
        if !allowed {
            return Err(ApiError::Forbidden("Origin not allowed."));
        }
    }
    let cross_site =
        headers.get("sec-fetch-site").is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if cross_site {
        return Err(ApiError::Forbidden("Cross-site request refused."));
    }
    let has_csrf_header = headers.get(edge.csrf_header.as_str()).is_some_and(|value| !value.is_empty());
    if !has_csrf_header {
        return Err(ApiError::Forbidden("Missing CSRF header."));
    }
    Ok(())
}

/// `Set-Cookie` for a new refresh token: HttpOnly, Secure, SameSite=Strict,
/// scoped to the cookie path, living as long as the refresh token.
pub fn set_refresh_cookie(headers: &mut HeaderMap, edge: &EdgeConfig, token: &str, max_age_secs: u64) {
    let cookie = Cookie::build((refresh_cookie_name(edge), token))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .path(edge.cookie_path.clone())
        .max_age(cookie::time::Duration::seconds(i64::try_from(max_age_secs).unwrap_or(i64::MAX)));
    append_cookie(headers, &cookie.build());
}

/// `Set-Cookie` that deletes the refresh cookie.
pub fn clear_refresh_cookie(headers: &mut HeaderMap, edge: &EdgeConfig) {
    let cookie = Cookie::build((refresh_cookie_name(edge), ""))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .path(edge.cookie_path.clone())
        .max_age(cookie::time::Duration::ZERO);
    append_cookie(headers, &cookie.build());
}

fn append_cookie(headers: &mut HeaderMap, cookie: &Cookie<'_>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(header::SET_COOKIE, value);
    }
}

/// A JSON response with `Cache-Control: no-store` (every token response must not be cached).
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An empty response with this status.
pub fn empty_response(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Adds CORS headers when the request's `Origin` is allow-listed. Another origin
/// gets none: its value is never echoed.
pub fn apply_cors(request: &Request, edge: &EdgeConfig, response: &mut Response<Body>) {
    let Some(origin) = allowed_origin(request, edge) else {
        return;
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
}

/// The answer to a CORS preflight: 204 with the allowed methods and headers for an
/// allow-listed origin, 403 for any other.
pub fn preflight(request: &Request, edge: &EdgeConfig) -> Response<Body> {
    if allowed_origin(request, edge).is_none() {
        return ApiError::Forbidden("Origin not allowed.").into_response();
    }
    let mut response = empty_response(StatusCode::NO_CONTENT);
    apply_cors(request, edge, &mut response);
    let allow_headers = format!("Content-Type, Authorization, {}", edge.csrf_header);
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PATCH, DELETE, OPTIONS"));
    if let Ok(value) = HeaderValue::from_str(&allow_headers) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
    }
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

fn allowed_origin(request: &Request, edge: &EdgeConfig) -> Option<HeaderValue> {
    let origin = request.headers().get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    edge.allowed_origins.iter().any(|allowed| allowed == text).then(|| origin.clone())
}

/// Where the request came from, as API Gateway saw it: the `User-Agent` header and
/// the request context's source IP (HTTP API `http.sourceIp`, REST API
/// `identity.sourceIp`), cleaned by [`ClientInfo::new`].
pub fn client_of(request: &Request) -> ClientInfo {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let ip = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
        _ => None,
    };
    let agent = request.headers().get(header::USER_AGENT).and_then(|value| value.to_str().ok());
    ClientInfo::new(agent, ip.as_deref())
}

/// What a handler found, for the request log line: who (when known) and the result.
#[derive(Debug)]
pub struct Outcome {
    /// The response to send.
    pub response: Response<Body>,
    /// The user the request acted for, when known.
    pub user_id: Option<String>,
    /// Log-only detail of a failure (never a secret).
    pub detail: Option<String>,
}

impl Outcome {
    /// A success for `user_id`.
    pub fn ok(response: Response<Body>, user_id: Option<String>) -> Self {
        Self { response, user_id, detail: None }
    }
}

impl From<ApiError> for Outcome {
    fn from(error: ApiError) -> Self {
        Self { detail: Some(error.log_detail().to_owned()), response: error.into_response(), user_id: None }
    }
}

/// Runs the common request path around a route's handler: answers CORS preflights,
/// refuses methods other than `method`, applies CORS to the answer, and writes one
/// JSON log line (route, status, outcome, latency, user id). Never logs headers,
/// bodies, cookies or tokens.
pub async fn serve<F, Fut>(
    route: &'static str,
    method: Method,
    edge: &EdgeConfig,
    request: Request,
    handler: F,
) -> Response<Body>
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let started = Instant::now();
    let origin_request = strip_to_origin(&request);
    let outcome = if request.method() == Method::OPTIONS {
        Outcome::ok(preflight(&request, edge), None)
    } else if request.method() != method {
        let mut refused = Outcome::from(ApiError::MethodNotAllowed);
        // The route's own method: `GET, OPTIONS` on the JWKS, `POST, OPTIONS` elsewhere.
        if let Ok(allow) = HeaderValue::from_str(&format!("{method}, OPTIONS")) {
            refused.response.headers_mut().insert(header::ALLOW, allow);
        }
        refused
    } else {
        handler(request).await
    };
    let mut response = outcome.response;
    apply_cors(&origin_request, edge, &mut response);
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let user_id = outcome.user_id.as_deref().unwrap_or("");
    match outcome.detail {
        None => tracing::info!(event = "request", route, status, latency_ms, user_id, outcome = "ok"),
        Some(detail) if status >= 500 => {
            tracing::error!(event = "request", route, status, latency_ms, user_id, outcome = %detail)
        }
        Some(detail) => {
            tracing::warn!(event = "request", route, status, latency_ms, user_id, outcome = %detail)
        }
    }
    response
}

/// A copy of the request holding only its `Origin` header, kept for CORS after the
/// handler has consumed the request.
fn strip_to_origin(request: &Request) -> Request {
    let mut copy = Request::new(Body::Empty);
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        copy.headers_mut().insert(header::ORIGIN, origin.clone());
    }
    copy
}
