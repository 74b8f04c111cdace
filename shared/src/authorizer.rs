//! The API Gateway Lambda authorizer: REST API TOKEN and REQUEST authorizers,
//! HTTP API payload 1.0 (IAM policy) and 2.0 (simple response). Verification is
//! local; a bad, missing or malformed token is the `Unauthorized` error (401),
//! never a panic or another error (500).

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequest, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse, ApiGatewayV2CustomAuthorizerSimpleResponse,
    ApiGatewayV2CustomAuthorizerV2Request,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use http::HeaderMap;
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::config::EdgeConfig;
use crate::revocation::{Checked, SessionCheck};
use crate::token::{AccessClaims, Verifier};

/// The failure API Gateway turns into `401 Unauthorized`: the Lambda error whose
/// message is exactly `Unauthorized`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Unauthorized")]
pub struct Unauthorized;

impl From<Unauthorized> for lambda_runtime::Diagnostic {
    fn from(_: Unauthorized) -> Self {
        Self { error_type: "Unauthorized".to_owned(), error_message: "Unauthorized".to_owned() }
    }
}

/// What the authorizer holds from cold start on: keys, role rules, clock.
#[derive(Clone)]
pub struct AuthorizerState {
    /// Verifies access tokens with keys loaded at cold start.
    pub verifier: Verifier,
    /// `required_role`, `route_roles` and the admin role.
    pub edge: EdgeConfig,
    /// The time source for `exp`/`nbf`/`iat`.
    pub clock: Arc<dyn Clock>,
    /// Whether a verified token's session is still live (`None`: off,
    /// `LATCHKEY_AUTHORIZER_SESSION_CHECK_SECONDS=0`).
    pub session_check: Option<Arc<SessionCheck>>,
}

impl std::fmt::Debug for AuthorizerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizerState")
            .field("verifier", &self.verifier)
            .field("edge", &self.edge)
            .field("session_check", &self.session_check)
            .finish_non_exhaustive()
    }
}

/// The three event shapes API Gateway sends.
#[derive(Debug, Clone)]
pub enum AuthorizerEvent {
    /// REST API TOKEN authorizer.
    Token(ApiGatewayCustomAuthorizerRequest),
    /// REST API REQUEST authorizer, or HTTP API with payload format 1.0.
    Request(Box<ApiGatewayCustomAuthorizerRequestTypeRequest>),
    /// HTTP API with payload format 2.0 (answered with a simple response).
    HttpV2(Box<ApiGatewayV2CustomAuthorizerV2Request>),
}

impl AuthorizerEvent {
    /// Recognises the event by its `version` and `type`; anything else is `Unauthorized`.
    pub fn parse(event: Value) -> Result<Self, Unauthorized> {
        let version = event.get("version").and_then(Value::as_str).map(str::to_owned);
        let kind = event.get("type").and_then(Value::as_str).map(str::to_owned);
        match (version.as_deref(), kind.as_deref()) {
            (Some("2.0"), _) => serde_json::from_value(event).map(|e| Self::HttpV2(Box::new(e))),
            (_, Some("TOKEN")) => serde_json::from_value(event).map(Self::Token),
            (_, Some("REQUEST")) => serde_json::from_value(event).map(|e| Self::Request(Box::new(e))),
            _ => return Err(Unauthorized),
        }
        .map_err(|_| Unauthorized)
    }
}

/// Why a request was refused with 401, for the log line.
struct Refusal(String);

/// Authorizes one API Gateway event. Allowed: an IAM policy for the whole stage
/// (so API Gateway's result cache cannot wrongly deny another route of the same
/// token), with explicit `Deny` statements for routes whose role the user lacks,
/// or `isAuthorized: true` for payload 2.0; `principalId` is `sub`; the context is
/// `{userId, email, role, sessionId}`. A token that is valid but lacks the
/// required role is denied (403). Anything else is [`Unauthorized`] (401).
pub async fn authorize(state: &AuthorizerState, event: Value) -> Result<Value, Unauthorized> {
    let started = Instant::now();
    let mut session_check = "off";
    let outcome = decide(state, event, &mut session_check).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match &outcome {
        Ok((_, Some(user_id))) => {
            tracing::info!(event = "authorize", outcome = "allow", user_id = %user_id, session_check, latency_ms)
        }
        Ok((_, None)) => {
            tracing::info!(event = "authorize", outcome = "deny", reason = "role", session_check, latency_ms)
        }
        Err(Refusal(reason)) => {
            tracing::info!(event = "authorize", outcome = "unauthorized", reason = %reason, session_check, latency_ms)
        }
    }
    outcome.map(|(response, _)| response).map_err(|_| Unauthorized)
}

/// The response and, when allowed, the user id.
async fn decide(
    state: &AuthorizerState,
    event: Value,
    session_check: &mut &'static str,
) -> Result<(Value, Option<String>), Refusal> {
    let event = AuthorizerEvent::parse(event).map_err(|_| Refusal("unrecognised event".to_owned()))?;
    let now = state.clock.now();
    match event {
        AuthorizerEvent::Token(event) => {
            let claims =
                verified(state, event.authorization_token.as_deref().and_then(bearer), now, session_check).await?;
            let method_arn = event.method_arn.unwrap_or_default();
            policy_response(state, &claims, &method_arn)
        }
        AuthorizerEvent::Request(event) => {
            let claims = verified(state, header_bearer(&event.headers), now, session_check).await?;
            let method_arn = event.method_arn.clone().unwrap_or_default();
            policy_response(state, &claims, &method_arn)
        }
        AuthorizerEvent::HttpV2(event) => {
            let token = header_bearer(&event.headers)
                .or_else(|| event.identity_source.iter().flatten().find_map(|source| bearer(source)));
            let claims = verified(state, token, now, session_check).await?;
            let method = event.request_context.http.method.as_str().to_owned();
            let allowed =
                request_paths(&event).iter().all(|path| missing_role(&state.edge, &claims, &method, path).is_none());
            let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::<Value>::default();
            response.is_authorized = allowed;
            response.context = context(&claims);
            let user = allowed.then(|| claims.sub.clone());
            serde_json::to_value(response)
                .map(|value| (value, user))
                .map_err(|_| Refusal("response serialisation".to_owned()))
        }
    }
}

/// The claims of a token that verifies and (with the session check on) whose
/// session is still live. A token that fails verification costs no session read;
/// one naming a period key this instance has not seen costs at most one read of
/// that key (delegated signing, bounded per period in [`crate::signing::DelegatedKeys`]).
/// `session_check` says what the check did (`off`, `cached`, `read`, `failed`).
async fn verified(
    state: &AuthorizerState,
    token: Option<&str>,
    now: u64,
    session_check: &mut &'static str,
) -> Result<AccessClaims, Refusal> {
    let token = token.ok_or_else(|| Refusal("no bearer token".to_owned()))?;
    let claims = state.verifier.verify_live(token, now).await.map_err(|error| Refusal(error.to_string()))?;
    let Some(check) = &state.session_check else { return Ok(claims) };
    let checked = check.check(&claims, now).await;
    *session_check = match checked {
        Checked::Cached { .. } => "cached",
        Checked::Read { .. } => "read",
        Checked::Failed { .. } => "failed",
    };
    if !checked.live() {
        return Err(Refusal("session ended".to_owned()));
    }
    Ok(claims)
}

fn policy_response(
    state: &AuthorizerState,
    claims: &AccessClaims,
    method_arn: &str,
) -> Result<(Value, Option<String>), Refusal> {
    let stage_arn = stage_arn(method_arn).ok_or(Refusal("methodArn is not an execute-api ARN".to_owned()))?;
    let lacks_required_role = state.edge.required_role.as_ref().is_some_and(|role| role != &claims.role);
    let statements = if lacks_required_role {
        vec![statement(IamPolicyEffect::Deny, format!("{stage_arn}/*/*"))]
    } else {
        let mut statements = vec![statement(IamPolicyEffect::Allow, format!("{stage_arn}/*/*"))];
        for rule in state.edge.denied_rules(&claims.role, &claims.amr) {
            let path = rule.path.trim_start_matches('/');
            statements.push(statement(IamPolicyEffect::Deny, format!("{stage_arn}/{}/{path}", rule.method)));
        }
        statements
    };
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_owned());
    policy.statement = statements;
    let mut response = ApiGatewayCustomAuthorizerResponse::<Value>::default();
    response.principal_id = Some(claims.sub.clone());
    response.policy_document = policy;
    response.context = context(claims);
    serde_json::to_value(response)
        .map(|value| (value, (!lacks_required_role).then(|| claims.sub.clone())))
        .map_err(|_| Refusal("response serialisation".to_owned()))
}

fn statement(effect: IamPolicyEffect, resource: String) -> IamPolicyStatement {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = effect;
    statement.resource = vec![resource];
    statement
}

/// The rule a request breaks, if any: the required role, a route's role, or a
/// route's second factor.
fn missing_role(edge: &EdgeConfig, claims: &AccessClaims, method: &str, path: &str) -> Option<String> {
    if let Some(required) = &edge.required_role
        && required != &claims.role
    {
        return Some(required.clone());
    }
    edge.denied_rules(&claims.role, &claims.amr).find(|rule| rule.matches(method, path)).map(|rule| rule.role)
}

/// Every form the request path of a payload 2.0 event may take, for role rules:
/// `rawPath`, `rawPath` without a `/<stage>` prefix (API Gateway keeps a named stage
/// in `rawPath`), and the path in `routeArn`. A rule is enforced if any form matches,
/// so a stage or base-path prefix cannot be used to slip past it.
fn request_paths(event: &ApiGatewayV2CustomAuthorizerV2Request) -> Vec<String> {
    let raw = event.raw_path.clone().unwrap_or_default();
    let mut paths = vec![raw.clone()];
    if let Some(stage) = event.request_context.stage.as_deref().filter(|stage| *stage != "$default")
        && let Some(rest) = raw.strip_prefix(&format!("/{stage}"))
    {
        paths.push(if rest.is_empty() { "/".to_owned() } else { rest.to_owned() });
    }
    if let Some(arn) = &event.route_arn {
        // arn:…:api-id/stage/METHOD/path…
        if let Some(path) = arn.splitn(4, '/').nth(3) {
            paths.push(format!("/{path}"));
        }
    }
    paths
}

/// `arn:aws:execute-api:region:account:api-id/stage` from a method ARN.
fn stage_arn(method_arn: &str) -> Option<String> {
    let mut parts = method_arn.split('/');
    let (api, stage) = (parts.next()?, parts.next()?);
    let well_formed = api.starts_with("arn:") && api.contains(":execute-api:") && !stage.is_empty();
    well_formed.then(|| format!("{api}/{stage}"))
}

fn context(claims: &AccessClaims) -> Value {
    json!({
        "userId": claims.sub,
        "email": claims.email,
        "role": claims.role,
        "sessionId": claims.sid,
        "amr": claims.amr.join(" "),
    })
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

fn header_bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(http::header::AUTHORIZATION)?.to_str().ok().and_then(bearer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_arn_keeps_api_and_stage_only() {
        assert_eq!(
            stage_arn("arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/orders/7").as_deref(),
            Some("arn:aws:execute-api:eu-west-1:123456789012:abc123/prod")
        );
        assert_eq!(stage_arn("arn:aws:s3:::bucket/key"), None);
        assert_eq!(stage_arn(""), None);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn unauthorized_is_the_exact_lambda_error_api_gateway_expects() {
        let diagnostic = lambda_runtime::Diagnostic::from(Unauthorized);
        assert_eq!(diagnostic.error_message, "Unauthorized");
    }
}
