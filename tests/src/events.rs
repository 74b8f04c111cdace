//! The sample events of `events/`: how each is built, which function takes it and
//! what it must produce. `cargo run -p latchkey-tests --example write_events`
//! rewrites the files, the manifest and the table in `events/README.md`.

use serde_json::{Value, json};

use crate::{
    DEMO_EMAIL, DEMO_PASSWORD, FIXTURE_ISSUED_AT, FIXTURE_ORIGIN, FIXTURE_VALID_UNTIL, fixture_access_token,
    fixture_refresh_token,
};

const ACCOUNT: &str = "123456789012";
const API_ID: &str = "abcdef1234";
const METHOD_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/GET/orders";
/// A link token of the right shape that no store holds.
const FORGED_LINK: &str = "Zm9yZ2VkLWxpbmstbm8tc3RvcmUtaGFzLWlzc3VlZCE";
const ROUTE_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/$default/GET/orders";

/// One sample event and its documented outcome.
pub struct SampleEvent {
    /// File name in `events/`.
    pub file: &'static str,
    /// `login`, `refresh`, `logout`, `account`, `admin`, `jwks` or `authorizer`.
    pub function: &'static str,
    /// HTTP status for the HTTP functions; `allow`, `deny` or `unauthorized` for the authorizer.
    pub expect: Value,
    /// One line for `events/README.md`.
    pub description: &'static str,
    /// The event itself.
    pub event: Value,
}

/// Every sample event, built with the fixture keys and the demo user.
pub async fn sample_events() -> Vec<SampleEvent> {
    let valid = fixture_access_token(FIXTURE_VALID_UNTIL).await;
    let expired = fixture_access_token(FIXTURE_ISSUED_AT + 900).await;
    let refresh_token = fixture_refresh_token();
    let credentials = json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}).to_string();
    let json_type = [("content-type", "application/json")];
    let cookie = format!("__Secure-latchkey-refresh={refresh_token}");
    let bearer = format!("Bearer {valid}");
    let expired_bearer = format!("Bearer {expired}");
    let tampered = format!("Bearer {}", tamper(&valid));
    let browser = |extra: &[(&'static str, &'static str)]| {
        let mut headers = vec![("origin", FIXTURE_ORIGIN), ("x-latchkey-csrf", "1")];
        headers.extend_from_slice(extra);
        headers
    };

    let sample =
        |file, function, expect: Value, description, event| SampleEvent { file, function, expect, description, event };
    vec![
        sample(
            "login-rest.json",
            "login",
            json!(200),
            "REST API (payload 1.0): demo user, right password.",
            rest("POST", "/login", &json_type, Some(&credentials)),
        ),
        sample(
            "login-http-api.json",
            "login",
            json!(200),
            "HTTP API (payload 2.0): demo user, right password.",
            http_api("POST", "/login", &json_type, &[], Some(&credentials)),
        ),
        sample(
            "login-function-url.json",
            "login",
            json!(200),
            "Lambda function URL: demo user, right password.",
            function_url("POST", "/login", &json_type, &[], Some(&credentials)),
        ),
        sample(
            "login-wrong-password-http-api.json",
            "login",
            json!(401),
            "Wrong password: 401 invalid_credentials.",
            http_api(
                "POST",
                "/login",
                &json_type,
                &[],
                Some(&json!({"email": DEMO_EMAIL, "password": "wrong password"}).to_string()),
            ),
        ),
        sample(
            "login-unknown-email-rest.json",
            "login",
            json!(401),
            "Unknown email: the same 401 invalid_credentials, after the same argon2 work.",
            rest(
                "POST",
                "/login",
                &json_type,
                Some(&json!({"email": "nobody@example.com", "password": DEMO_PASSWORD}).to_string()),
            ),
        ),
        sample(
            "login-malformed-json-http-api.json",
            "login",
            json!(400),
            "Body is not JSON: 400 invalid_request.",
            http_api("POST", "/login", &json_type, &[], Some("{\"email\": ")),
        ),
        sample(
            "login-wrong-content-type-rest.json",
            "login",
            json!(400),
            "Content-Type text/plain: 400 invalid_request.",
            rest("POST", "/login", &[("content-type", "text/plain")], Some(&credentials)),
        ),
        sample(
            "refresh-body-rest.json",
            "refresh",
            json!(200),
            "REST API: the fixture session's refresh token in the body.",
            rest("POST", "/refresh-token", &json_type, Some(&json!({"refreshToken": refresh_token}).to_string())),
        ),
        sample(
            "refresh-cookie-http-api.json",
            "refresh",
            json!(200),
            "HTTP API: the refresh cookie from the allowed origin with the CSRF header.",
            http_api("POST", "/refresh-token", &browser(&[]), &[&cookie], None),
        ),
        sample(
            "refresh-body-function-url.json",
            "refresh",
            json!(200),
            "Function URL: the refresh token in the body.",
            function_url(
                "POST",
                "/refresh-token",
                &json_type,
                &[],
                Some(&json!({"refreshToken": refresh_token}).to_string()),
            ),
        ),
        sample(
            "refresh-forged-http-api.json",
            "refresh",
            json!(401),
            "A refresh token with a forged MAC: 401 invalid_grant, no database call.",
            http_api(
                "POST",
                "/refresh-token",
                &json_type,
                &[],
                Some(&json!({"refreshToken": tamper(&refresh_token)}).to_string()),
            ),
        ),
        sample(
            "refresh-cookie-cross-site-http-api.json",
            "refresh",
            json!(403),
            "The cookie sent cross-site (Sec-Fetch-Site: cross-site): 403.",
            http_api("POST", "/refresh-token", &browser(&[("sec-fetch-site", "cross-site")]), &[&cookie], None),
        ),
        sample(
            "refresh-cookie-without-csrf-header-http-api.json",
            "refresh",
            json!(403),
            "The cookie without the X-Latchkey-CSRF header: 403.",
            http_api("POST", "/refresh-token", &[("origin", FIXTURE_ORIGIN)], &[&cookie], None),
        ),
        sample(
            "logout-refresh-token-rest.json",
            "logout",
            json!(204),
            "REST API: log out the session named by a refresh token.",
            rest("POST", "/logout", &json_type, Some(&json!({"refreshToken": refresh_token}).to_string())),
        ),
        sample(
            "logout-bearer-http-api.json",
            "logout",
            json!(204),
            "HTTP API: log out the session of an access token.",
            http_api("POST", "/logout", &[("authorization", &bearer)], &[], None),
        ),
        sample(
            "logout-all-sessions-function-url.json",
            "logout",
            json!(204),
            "Function URL: log out every session of the user.",
            function_url(
                "POST",
                "/logout",
                &json_type,
                &[],
                Some(&json!({"refreshToken": refresh_token, "allSessions": true}).to_string()),
            ),
        ),
        sample(
            "logout-expired-bearer-http-api.json",
            "logout",
            json!(401),
            "An expired access token: 401 invalid_token.",
            http_api("POST", "/logout", &[("authorization", &expired_bearer)], &[], None),
        ),
        sample(
            "password-change-http-api.json",
            "account",
            json!(200),
            "HTTP API: the demo user changes the password with the access token: fresh tokens, other sessions end.",
            http_api(
                "POST",
                "/password",
                &[("content-type", "application/json"), ("authorization", &bearer)],
                &[],
                Some(&json!({"currentPassword": DEMO_PASSWORD, "newPassword": "a brand new passphrase"}).to_string()),
            ),
        ),
        sample(
            "password-change-wrong-current-rest.json",
            "account",
            json!(401),
            "REST API: wrong current password: the login failure answer (401 invalid_credentials).",
            rest(
                "POST",
                "/password",
                &[("content-type", "application/json"), ("authorization", &bearer)],
                Some(
                    &json!({"currentPassword": "not the password", "newPassword": "a brand new passphrase"})
                        .to_string(),
                ),
            ),
        ),
        sample(
            "password-forgot-http-api.json",
            "account",
            json!(202),
            "HTTP API: forgot password for the demo user: 202 (a link is sent when delivery is set).",
            http_api("POST", "/password/forgot", &json_type, &[], Some(&json!({"email": DEMO_EMAIL}).to_string())),
        ),
        sample(
            "password-forgot-unknown-email-rest.json",
            "account",
            json!(202),
            "REST API: forgot password for an address with no account: the same 202.",
            rest("POST", "/password/forgot", &json_type, Some(&json!({"email": "nobody@example.com"}).to_string())),
        ),
        sample(
            "password-reset-forged-http-api.json",
            "account",
            json!(400),
            "HTTP API: reset with a link token that was never issued: 400 invalid_link.",
            http_api(
                "POST",
                "/password/reset",
                &json_type,
                &[],
                Some(&json!({"token": FORGED_LINK, "newPassword": "a brand new passphrase"}).to_string()),
            ),
        ),
        sample(
            "signup-off-function-url.json",
            "account",
            json!(403),
            "Lambda function URL: sign-up while LATCHKEY_SIGNUP is off: 403 signup_disabled.",
            function_url(
                "POST",
                "/signup",
                &json_type,
                &[],
                Some(&json!({"email": "new@example.com", "password": "a long enough passphrase"}).to_string()),
            ),
        ),
        sample(
            "email-verify-forged-rest.json",
            "account",
            json!(400),
            "REST API: verify with a link token that was never issued: 400 invalid_link.",
            rest("POST", "/email/verify", &json_type, Some(&json!({"token": FORGED_LINK}).to_string())),
        ),
        sample(
            "sessions-list-http-api.json",
            "account",
            json!(200),
            "HTTP API: the demo user's live sessions, with where each was last used.",
            http_api("GET", "/sessions", &[("authorization", &bearer)], &[], None),
        ),
        sample(
            "session-end-unknown-rest.json",
            "account",
            json!(404),
            "REST API: end a session that is not one of the caller's: 404, nothing written.",
            rest("DELETE", "/sessions/AAAAAAAAAAAAAAAAAAAAAA", &[("authorization", &bearer)], None),
        ),
        sample(
            "logout-others-http-api.json",
            "logout",
            json!(204),
            "HTTP API: end every session of the user but this one.",
            http_api(
                "POST",
                "/logout",
                &[("content-type", "application/json"), ("authorization", &bearer)],
                &[],
                Some(&json!({"others": true}).to_string()),
            ),
        ),
        sample(
            "admin-users-list-member-http-api.json",
            "admin",
            json!(403),
            "HTTP API: the admin user list with a member's token: 403 forbidden (the function checks the stored role).",
            http_api("GET", "/admin/users", &[("authorization", &bearer)], &[], None),
        ),
        sample(
            "admin-user-disable-expired-rest.json",
            "admin",
            json!(401),
            "REST API: disabling a user with an expired access token: 401 invalid_token.",
            rest(
                "PATCH",
                "/admin/users/user-demo",
                &[("content-type", "application/json"), ("authorization", &expired_bearer)],
                Some(&json!({"disabled": true}).to_string()),
            ),
        ),
        sample(
            "login-mfa-unknown-token-http-api.json",
            "login",
            json!(401),
            "HTTP API: a login's second step with an mfaToken no password step issued: 401 invalid_mfa_token.",
            http_api(
                "POST",
                "/login/mfa",
                &[("content-type", "application/json")],
                &[],
                Some(&json!({"mfaToken": FORGED_LINK, "code": "123456"}).to_string()),
            ),
        ),
        sample(
            "mfa-begin-http-api.json",
            "account",
            json!(200),
            "HTTP API: start enrolling the demo user's second factor: the secret, its otpauth URI and QR code.",
            http_api("POST", "/mfa/totp", &[("authorization", &bearer)], &[], None),
        ),
        sample(
            "mfa-remove-not-enabled-rest.json",
            "account",
            json!(409),
            "REST API: remove a second factor the demo user never confirmed: 409 mfa_not_enabled.",
            rest(
                "DELETE",
                "/mfa/totp",
                &[("content-type", "application/json"), ("authorization", &bearer)],
                Some(&json!({"password": DEMO_PASSWORD, "code": "123456"}).to_string()),
            ),
        ),
        sample(
            "admin-reset-mfa-member-http-api.json",
            "admin",
            json!(403),
            "HTTP API: an administrator's MFA reset with a member's token: 403 forbidden.",
            http_api("DELETE", "/admin/users/user-demo/mfa", &[("authorization", &bearer)], &[], None),
        ),
        sample(
            "jwks-http-api.json",
            "jwks",
            json!(200),
            "HTTP API: the JWKS.",
            http_api("GET", "/.well-known/jwks.json", &[], &[], None),
        ),
        sample(
            "jwks-rest.json",
            "jwks",
            json!(200),
            "REST API: the JWKS.",
            rest("GET", "/.well-known/jwks.json", &[], None),
        ),
        sample(
            "authorizer-token-valid.json",
            "authorizer",
            json!("allow"),
            "REST TOKEN authorizer, valid token: Allow for the whole stage.",
            token_authorizer(&bearer),
        ),
        sample(
            "authorizer-token-expired.json",
            "authorizer",
            json!("unauthorized"),
            "REST TOKEN authorizer, expired token: the error Unauthorized (401).",
            token_authorizer(&expired_bearer),
        ),
        sample(
            "authorizer-token-malformed.json",
            "authorizer",
            json!("unauthorized"),
            "REST TOKEN authorizer, not a JWT: Unauthorized.",
            token_authorizer("Bearer not.a.jwt"),
        ),
        sample(
            "authorizer-request-valid.json",
            "authorizer",
            json!("allow"),
            "REST REQUEST authorizer, valid token in Authorization.",
            request_authorizer(Some(&bearer), None),
        ),
        sample(
            "authorizer-request-missing-header.json",
            "authorizer",
            json!("unauthorized"),
            "REST REQUEST authorizer without Authorization: Unauthorized.",
            request_authorizer(None, None),
        ),
        sample(
            "authorizer-http-api-v1-valid.json",
            "authorizer",
            json!("allow"),
            "HTTP API authorizer, payload 1.0: IAM policy response.",
            request_authorizer(Some(&bearer), Some("1.0")),
        ),
        sample(
            "authorizer-http-api-v2-valid.json",
            "authorizer",
            json!("allow"),
            "HTTP API authorizer, payload 2.0: isAuthorized true with the context.",
            v2_authorizer(&bearer),
        ),
        sample(
            "authorizer-http-api-v2-tampered.json",
            "authorizer",
            json!("unauthorized"),
            "HTTP API authorizer, payload 2.0, tampered token: Unauthorized (401).",
            v2_authorizer(&tampered),
        ),
    ]
}

/// Flips one character of the last segment, keeping the shape valid.
fn tamper(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let index = chars.len() - 2;
    chars[index] = if chars[index] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

fn header_map(headers: &[(&str, &str)]) -> Value {
    headers.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>().into()
}

fn rest(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Value {
    let mut all = vec![("host", "abcdef1234.execute-api.us-east-1.amazonaws.com"), ("user-agent", "curl/8.5.0")];
    all.extend_from_slice(headers);
    let multi: serde_json::Map<String, Value> = all.iter().map(|(k, v)| ((*k).to_owned(), json!([v]))).collect();
    json!({
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": header_map(&all),
        "multiValueHeaders": multi,
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "resourceId": "r3s0urc3",
            "resourcePath": path,
            "httpMethod": method,
            "path": format!("/prod{path}"),
            "stage": "prod",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": "01/Jan/2026:00:00:00 +0000",
            "requestTimeEpoch": 1_767_225_600_000_u64,
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"}
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// Where a payload-2.0 request arrives: an HTTP API or a function URL.
struct Site<'a> {
    domain: &'a str,
    api_id: &'a str,
    route_key: &'a str,
}

fn v2_request(
    site: &Site<'_>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    cookies: &[&str],
    body: Option<&str>,
) -> Value {
    let Site { domain, api_id, route_key } = *site;
    let mut all = vec![("host", domain), ("user-agent", "Mozilla/5.0")];
    all.extend_from_slice(headers);
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "cookies": cookies,
        "headers": header_map(&all),
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": api_id,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0"},
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": route_key,
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1_767_225_600_000_u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// A JSON `POST` to `path` as API Gateway's HTTP API (payload 2.0) hands it to a
/// function: `Content-Type: application/json` and `headers`.
pub fn post_json(path: &str, headers: &[(&str, &str)], body: Value) -> lambda_http::Request {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let event = http_api("POST", path, &all, &[], Some(&body.to_string()));
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// An API Gateway (HTTP API) request with no body, as a handler receives it.
pub fn bare(method: &str, path: &str, headers: &[(&str, &str)]) -> lambda_http::Request {
    let event = http_api(method, path, headers, &[], None);
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// A handler's JSON body: `Null` for an empty body (a 204); a body that is not JSON
/// text fails the test.
pub fn response_json(response: &lambda_http::Response<lambda_http::Body>) -> Value {
    match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).expect("a JSON body"),
        lambda_http::Body::Empty => Value::Null,
        other => panic!("not a JSON body: {other:?}"),
    }
}

/// An HTTP API (payload 2.0) request event.
pub fn http_api(method: &str, path: &str, headers: &[(&str, &str)], cookies: &[&str], body: Option<&str>) -> Value {
    let route_key = format!("{method} {path}");
    v2_request(
        &Site { domain: "abcdef1234.execute-api.us-east-1.amazonaws.com", api_id: API_ID, route_key: &route_key },
        method,
        path,
        headers,
        cookies,
        body,
    )
}

fn function_url(method: &str, path: &str, headers: &[(&str, &str)], cookies: &[&str], body: Option<&str>) -> Value {
    let url_id = "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6";
    v2_request(
        &Site { domain: &format!("{url_id}.lambda-url.us-east-1.on.aws"), api_id: url_id, route_key: "$default" },
        method,
        path,
        headers,
        cookies,
        body,
    )
}

/// A REST API TOKEN authorizer event.
pub fn token_authorizer(authorization: &str) -> Value {
    json!({"type": "TOKEN", "authorizationToken": authorization, "methodArn": METHOD_ARN})
}

/// A REST API REQUEST authorizer event, or with `version` an HTTP API payload 1.0 one.
pub fn request_authorizer(authorization: Option<&str>, version: Option<&str>) -> Value {
    let headers: Vec<(&str, &str)> = authorization.map(|value| ("Authorization", value)).into_iter().collect();
    let mut event = json!({
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "resource": "/orders",
        "path": "/orders",
        "httpMethod": "GET",
        "headers": header_map(&headers),
        "multiValueHeaders": headers.iter().map(|(k, v)| ((*k).to_owned(), json!([v]))).collect::<serde_json::Map<_, _>>(),
        "queryStringParameters": {},
        "multiValueQueryStringParameters": {},
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {
            "path": "/prod/orders", "accountId": ACCOUNT, "resourceId": "r3s0urc3", "stage": "prod",
            "requestId": "6f3b9c2e-0d1a-4c8e-9b7f-000000000001", "resourcePath": "/orders", "httpMethod": "GET",
            "apiId": API_ID, "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"}
        }
    });
    if let Some(version) = version {
        event["version"] = json!(version);
        event["identitySource"] = json!(authorization);
    }
    event
}

/// An HTTP API payload 2.0 authorizer event.
pub fn v2_authorizer(authorization: &str) -> Value {
    let domain = "abcdef1234.execute-api.us-east-1.amazonaws.com";
    let mut event = v2_request(
        &Site { domain, api_id: API_ID, route_key: "GET /orders" },
        "GET",
        "/orders",
        &[("authorization", authorization)],
        &[],
        None,
    );
    let object = event.as_object_mut().expect("an object");
    object.insert("type".to_owned(), json!("REQUEST"));
    object.insert("routeArn".to_owned(), json!(ROUTE_ARN));
    object.insert("identitySource".to_owned(), json!([authorization]));
    object.insert("pathParameters".to_owned(), json!({}));
    object.insert("stageVariables".to_owned(), json!({}));
    object.insert("queryStringParameters".to_owned(), json!({}));
    object.remove("body");
    object.remove("isBase64Encoded");
    event
}
