//! The example protected backend: what an API behind the authorizer sees.

use http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

/// Answers `200` with the authorizer context of the request (`userId`, `email`,
/// `role`, `sessionId`) under payload 2.0 (`lambda` field) or 1.0 (REST), or `401`
/// when there is none.
pub fn echo_authorizer_context(request: &Request) -> Response<Body> {
    let context = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.authorizer.as_ref().map(|a| json!(a.fields)),
        Some(RequestContext::ApiGatewayV1(context)) => Some(json!(context.authorizer.fields)),
        _ => None,
    };
    let (status, body) = match context.filter(|c| c.get("userId").is_some()) {
        Some(context) => (StatusCode::OK, context),
        None => (StatusCode::UNAUTHORIZED, json!({"message": "Unauthorized"})),
    };
    let mut response = Response::new(Body::Text(Value::to_string(&body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_body(event: Value) -> (u16, Value) {
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let response = echo_authorizer_context(&request);
        let Body::Text(text) = response.body() else { panic!("text body") };
        (response.status().as_u16(), serde_json::from_str(text).unwrap())
    }

    fn event(authorizer: Option<Value>) -> Value {
        let mut context = json!({
            "accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "a", "requestId": "r",
            "routeKey": "GET /me", "stage": "$default", "time": "", "timeEpoch": 0,
            "http": {"method": "GET", "path": "/me", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"}
        });
        if let Some(authorizer) = authorizer {
            context["authorizer"] = authorizer;
        }
        json!({"version": "2.0", "routeKey": "GET /me", "rawPath": "/me", "rawQueryString": "", "headers": {},
               "requestContext": context, "isBase64Encoded": false})
    }

    #[test]
    fn echoes_the_lambda_authorizer_context_of_an_http_api_request() {
        let context = json!({"userId": "u1", "email": "a@example.com", "role": "member", "sessionId": "s1"});
        let (status, body) = status_and_body(event(Some(json!({"lambda": context.clone()}))));
        assert_eq!((status, body), (200, context));
    }

    #[test]
    fn without_an_authorizer_context_it_refuses() {
        assert_eq!(status_and_body(event(None)).0, 401);
    }
}
