//! API Gateway's HTTP API behaviour in front of the functions: route matching, the
//! Lambda authorizer (identity source, result cache, simple responses, errors),
//! payload format 2.0 events and responses, and the invoke-permission check.
//! Each rule names the AWS page it follows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use super::runtime::{Lambda, Outcome};
use super::template::{ACCOUNT, Authorizer, Deployment, Route};

/// The largest request body API Gateway passes to an integration: 10 MB, from
/// "Quotas for configuring and running an HTTP API"
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html).
const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

/// An authorizer's cached answers: (authorizer, identity source values) to the
/// answer and when it expires.
type AuthorizerCache = HashMap<(String, Vec<String>), (Instant, Value)>;

/// The gateway's state: the deployment, one warm instance per function, the
/// authorizer result cache.
pub struct Gateway {
    deployment: Deployment,
    functions: HashMap<String, Arc<Lambda>>,
    cache: Mutex<AuthorizerCache>,
}

/// Whether a route's authorizer let the request through, and with what context.
enum Authorization {
    Allowed(Value),
    Refused(Response),
}

impl Gateway {
    /// A gateway over `deployment` with these running functions (by logical id).
    pub fn new(deployment: Deployment, functions: HashMap<String, Arc<Lambda>>) -> Self {
        Self { deployment, functions, cache: Mutex::new(HashMap::new()) }
    }

    /// Answers one HTTP request the way the deployed HTTP API would.
    pub async fn handle(self: Arc<Self>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let Ok(body) = axum::body::to_bytes(body, MAX_PAYLOAD_BYTES).await else {
            return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
        };
        let path = parts.uri.path().to_owned();
        let Some((route, path_parameters)) = self.route(&parts.method, &path) else {
            return message(StatusCode::NOT_FOUND, "Not Found");
        };
        let mut event = request_event(&parts.method, &parts.uri, &parts.headers, &body, route, &path_parameters);

        if let Some(name) = &route.authorizer {
            let Some(authorizer) = self.deployment.api.authorizers.get(name) else {
                return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            };
            match self.authorize(authorizer, &event).await {
                Authorization::Allowed(context) => {
                    // The context reaches a payload 2.0 Lambda integration as
                    // requestContext.authorizer.lambda: what the service sends (and
                    // aws_lambda_events models); the event example of
                    // https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
                    // shows only the JWT authorizer's `jwt` key.
                    event["requestContext"]["authorizer"] = json!({ "lambda": context });
                }
                Authorization::Refused(response) => return response,
            }
        }

        let arn = self.deployment.route_arn(parts.method.as_str(), &path);
        match self.invoke(&route.function, &arn, &event).await {
            Ok(Outcome::Response(bytes)) => integration_response(&bytes),
            // A failed integration (an error, a timeout, no permission) is a 500:
            // "Troubleshooting issues with HTTP API Lambda integrations",
            // https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-lambda.html
            Ok(_) | Err(()) => message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        }
    }

    /// The most specific route for `method` and `path`: exact paths before path
    /// parameters before a greedy `{proxy+}`, and a method before `ANY`, as in
    /// "Routing API requests", https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html
    fn route(&self, method: &Method, path: &str) -> Option<(&Route, Map<String, Value>)> {
        self.deployment
            .api
            .routes
            .iter()
            .filter(|route| route.method == method.as_str() || route.method == "ANY")
            .filter_map(|route| {
                let parameters = match_path(&route.path, path)?;
                let rank = (specificity(&route.path), route.method != "ANY");
                Some((rank, route, parameters))
            })
            .max_by_key(|(rank, _, _)| *rank)
            .map(|(_, route, parameters)| (route, parameters))
    }

    /// The Lambda authorizer, as "Control access to HTTP APIs with AWS Lambda
    /// authorizers" describes it
    /// (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html).
    async fn authorize(&self, authorizer: &Authorizer, event: &Value) -> Authorization {
        // "If the client's request doesn't include the identity sources, API Gateway
        // doesn't invoke your Lambda authorizer, and the client receives a 401 error"
        // ("Identity sources", same page); empty counts as missing, as the API
        // reference's identitySource says ("present, not null and non-empty").
        let Some(identity) = identity(authorizer, event) else {
            return Authorization::Refused(message(StatusCode::UNAUTHORIZED, "Unauthorized"));
        };
        // "When caching is enabled for an authorizer, API Gateway uses the authorizer's
        // identity sources as the cache key": the same values answer every route of the
        // API that uses this authorizer ("Caching authorizer responses", same page).
        let key = (authorizer.name.clone(), identity.clone());
        let cached = self.cache.lock().await.get(&key).filter(|(until, _)| Instant::now() < *until).cloned();
        let answer = match cached {
            Some((_, answer)) => answer,
            None => {
                let authorizer_event = authorizer_event(event, &identity, &self.route_arn_of(event));
                let arn = self.deployment.authorizer_arn(&authorizer.name);
                let answer = match self.invoke(&authorizer.function, &arn, &authorizer_event).await {
                    Ok(Outcome::Response(bytes)) => serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
                    // The error "Unauthorized" → 401: documented (by example) for REST APIs in
                    // "Use API Gateway Lambda authorizers"
                    // (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html);
                    // for HTTP APIs it is what the service does, not a documented rule
                    // (docs/deploy.md, "What API Gateway documents").
                    Ok(Outcome::Error { message: text, .. }) if text == "Unauthorized" => {
                        return Authorization::Refused(message(StatusCode::UNAUTHORIZED, "Unauthorized"));
                    }
                    // Any other error, a timeout, or no permission to invoke: 500.
                    Ok(_) | Err(()) => {
                        return Authorization::Refused(message(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "Internal Server Error",
                        ));
                    }
                };
                if !authorizer.ttl.is_zero() {
                    self.cache.lock().await.insert(key, (Instant::now() + authorizer.ttl, answer.clone()));
                }
                answer
            }
        };
        authorization(authorizer, &answer)
    }

    fn route_arn_of(&self, event: &Value) -> String {
        let method = event["requestContext"]["http"]["method"].as_str().unwrap_or_default();
        let path = event["rawPath"].as_str().unwrap_or_default();
        self.deployment.route_arn(method, path)
    }

    /// Invokes a function if the translated template lets API Gateway do so for
    /// `source_arn`; without a matching `AWS::Lambda::Permission` a deployed API
    /// cannot call it and answers 500 ("Grant API Gateway permission to invoke your
    /// Lambda function", https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html).
    async fn invoke(&self, function: &str, source_arn: &str, event: &Value) -> Result<Outcome, ()> {
        if !self.deployment.may_invoke(function, source_arn) {
            eprintln!(
                "latchkey gateway: no AWS::Lambda::Permission lets API Gateway invoke {function} for {source_arn}"
            );
            return Err(());
        }
        let Some(lambda) = self.functions.get(function) else {
            eprintln!("latchkey gateway: {function} has no built bootstrap");
            return Err(());
        };
        let outcome = lambda.invoke(event).await;
        match &outcome {
            Outcome::Timeout => eprintln!("latchkey gateway: {function} timed out"),
            Outcome::Crashed(why) => eprintln!("latchkey gateway: {function} stopped: {why}"),
            Outcome::Error { error_type, .. } => {
                eprintln!("latchkey gateway: {function} returned an error ({error_type})")
            }
            Outcome::Response(_) => {}
        }
        Ok(outcome)
    }
}

/// The identity source values, or `None` when one is missing or empty.
fn identity(authorizer: &Authorizer, event: &Value) -> Option<Vec<String>> {
    authorizer
        .identity_source
        .iter()
        .map(|source| {
            let value = if let Some(name) = source.strip_prefix("$request.header.") {
                event["headers"][name.to_lowercase()].as_str()
            } else if let Some(name) = source.strip_prefix("$request.querystring.") {
                event["queryStringParameters"][name].as_str()
            } else if source == "$context.routeKey" {
                // "To cache responses per route, add $context.routeKey to your
                // authorizer's identity sources" (same page, "Caching authorizer responses").
                event["routeKey"].as_str()
            } else {
                None
            };
            value.filter(|v| !v.is_empty()).map(str::to_owned)
        })
        .collect()
}

/// What the authorizer's answer means. With simple responses the answer is
/// `{"isAuthorized": bool, "context": {...}}` ("Lambda function response for format
/// 2.0", same page as above); `false` is a 403, which AWS documents for REST APIs
/// (ACCESS_DENIED, https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html)
/// and HTTP APIs do. A response in another shape is a 500 ("Troubleshooting Lambda
/// authorizers", same page). An IAM policy answer must allow the route.
fn authorization(authorizer: &Authorizer, answer: &Value) -> Authorization {
    let forbidden = || Authorization::Refused(message(StatusCode::FORBIDDEN, "Forbidden"));
    if authorizer.simple_responses {
        return match answer["isAuthorized"] {
            Value::Bool(true) => Authorization::Allowed(answer["context"].clone()),
            Value::Bool(false) => forbidden(),
            _ => Authorization::Refused(message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")),
        };
    }
    let statements = answer["policyDocument"]["Statement"].as_array().map(Vec::as_slice).unwrap_or_default();
    let has = |effect: &str| statements.iter().any(|s| s["Effect"] == effect);
    if has("Allow") && !has("Deny") { Authorization::Allowed(answer["context"].clone()) } else { forbidden() }
}

/// Payload format 2.0 request event, "Working with AWS Lambda proxy integrations for
/// HTTP APIs" (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html):
/// lower-case header names, repeated headers joined with commas, cookies in
/// `cookies`, a non-text body base64-encoded.
fn request_event(
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &Bytes,
    route: &Route,
    path_parameters: &Map<String, Value>,
) -> Value {
    let mut joined: Map<String, Value> = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == header::COOKIE {
            cookies.extend(value.split(';').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()));
            continue;
        }
        join_value(&mut joined, name.as_str(), &value);
    }
    let query = uri.query().unwrap_or_default();
    let mut query_parameters: Map<String, Value> = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        join_value(&mut query_parameters, name, value);
    }
    let (body, encoded) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (Value::String(STANDARD.encode(body)), true),
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let route_key = format!("{} {}", route.method, route.path);
    let request_id = format!("local-{}", now.as_nanos());
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": uri.path(),
        "rawQueryString": query,
        "headers": joined,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method.as_str(),
                "path": uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get(header::USER_AGENT).and_then(|h| h.to_str().ok()).unwrap_or_default(),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": "",
            "timeEpoch": now.as_millis() as u64,
        },
        "isBase64Encoded": encoded,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query_parameters.is_empty() {
        event["queryStringParameters"] = Value::Object(query_parameters);
    }
    if !path_parameters.is_empty() {
        event["pathParameters"] = Value::Object(path_parameters.clone());
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

/// Adds `value` under `name`, after a comma when the name is already there: how
/// payload 2.0 carries a repeated header or query parameter.
fn join_value(map: &mut Map<String, Value>, name: &str, value: &str) {
    let entry = map.entry(name.to_owned()).or_insert_with(|| Value::String(String::new()));
    let merged = match entry.as_str() {
        Some("") | None => value.to_owned(),
        Some(previous) => format!("{previous},{value}"),
    };
    *entry = Value::String(merged);
}

/// The payload 2.0 authorizer event: the request's fields plus `type`, `routeArn`
/// and `identitySource` (same page as the authorizer rules).
fn authorizer_event(request: &Value, identity: &[String], route_arn: &str) -> Value {
    let mut event = request.clone();
    if let Some(fields) = event.as_object_mut() {
        fields.remove("body");
        fields.remove("isBase64Encoded");
        fields.insert("type".into(), json!("REQUEST"));
        fields.insert("routeArn".into(), json!(route_arn));
        fields.insert("identitySource".into(), json!(identity));
    }
    event
}

/// A payload 2.0 integration response. An object with `statusCode` is a full
/// response; anything else is the body of a 200 `application/json` response, as
/// API Gateway infers ("Lambda function response format", same page as the event).
fn integration_response(bytes: &[u8]) -> Response {
    let Ok(answer) = serde_json::from_slice::<Value>(bytes) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let Some(status) = answer["statusCode"].as_u64() else {
        let mut response = Response::new(Body::from(answer.to_string()));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return response;
    };
    let Ok(status) = StatusCode::from_u16(u16::try_from(status).unwrap_or(500)) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let body = match (&answer["body"], answer["isBase64Encoded"] == true) {
        (Value::String(text), true) => STANDARD.decode(text).unwrap_or_default(),
        (Value::String(text), false) => text.clone().into_bytes(),
        _ => Vec::new(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in answer["headers"].as_object().into_iter().flatten() {
        if let (Ok(name), Some(Ok(value))) =
            (HeaderName::from_bytes(name.as_bytes()), value.as_str().map(HeaderValue::from_str))
        {
            headers.insert(name, value);
        }
    }
    for (name, values) in answer["multiValueHeaders"].as_object().into_iter().flatten() {
        for value in values.as_array().into_iter().flatten().filter_map(Value::as_str) {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                headers.append(name, value);
            }
        }
    }
    for cookie in answer["cookies"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Matches an OpenAPI route path; returns the path parameters.
fn match_path(pattern: &str, path: &str) -> Option<Map<String, Value>> {
    let mut parameters = Map::new();
    let mut segments = path.trim_start_matches('/').split('/');
    let pattern_segments: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    for (index, want) in pattern_segments.iter().enumerate() {
        if let Some(name) = want.strip_prefix('{').and_then(|w| w.strip_suffix("+}")) {
            let rest: Vec<&str> = segments.by_ref().collect();
            if rest.is_empty() || index != pattern_segments.len() - 1 {
                return None;
            }
            parameters.insert(name.to_owned(), json!(rest.join("/")));
            return Some(parameters);
        }
        let got = segments.next()?;
        match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(name) if !got.is_empty() => {
                parameters.insert(name.to_owned(), json!(got));
            }
            Some(_) => return None,
            None if *want == got => {}
            None => return None,
        }
    }
    segments.next().is_none().then_some(parameters)
}

/// Exact segments rank above parameters, parameters above a greedy parameter.
fn specificity(pattern: &str) -> (usize, usize) {
    let greedy = pattern.contains("+}");
    let literal = pattern.split('/').filter(|s| !s.starts_with('{')).count();
    (usize::from(!greedy), literal)
}

/// API Gateway's own error body: `{"message": ...}`.
pub fn message(status: StatusCode, text: &str) -> Response {
    let mut response = Response::new(Body::from(json!({ "message": text }).to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::match_path;

    #[test]
    fn paths_match_literals_parameters_and_greedy_tails() {
        assert!(match_path("/me", "/me").is_some());
        assert!(match_path("/me", "/me/x").is_none());
        assert!(match_path("/me", "/you").is_none());
        assert_eq!(match_path("/items/{id}", "/items/7").unwrap()["id"], "7");
        assert!(match_path("/items/{id}", "/items/").is_none());
        assert_eq!(match_path("/{proxy+}", "/a/b/c").unwrap()["proxy"], "a/b/c");
        assert!(match_path("/api/{proxy+}", "/api").is_none());
    }
}
