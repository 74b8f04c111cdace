//! `latchkey dev`: the real handlers behind a local HTTP server, on embedded
//! components (memory store, local ES256 key) or on DynamoDB and KMS.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::any;
use clap::Args;
use http::{HeaderValue, StatusCode, header};
use lambda_http::Body;
use latchkey::Config;
use latchkey::config::RefreshDelivery;
use latchkey::deploy::Aws;
use latchkey::http::{ApiError, MAX_BODY_BYTES, account, jwks, login, logout, refresh};
use latchkey::password::Password;
use latchkey::services::Services;
use latchkey::signing::LocalSigner;
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The demo user of `latchkey dev` and of the sample events (`tests/src/lib.rs`,
/// `DEMO_EMAIL`), whose password is public like the samples.
pub const DEMO_EMAIL: &str = "demo@example.com";
/// The demo user's password (`DEMO_PASSWORD` of the samples).
pub const DEMO_PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Port on 127.0.0.1 to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Add a user, as email:password or email:password:role. Repeatable.
    #[arg(long = "user", value_name = "EMAIL:PASSWORD[:ROLE]")]
    users: Vec<String>,
    /// Use DynamoDB and KMS as configured (LATCHKEY_TABLE_NAME, LATCHKEY_KMS_KEY_ID,
    /// LATCHKEY_REFRESH_MAC_KEY_ID; AWS_ENDPOINT_URL for an emulator) instead of the
    /// in-memory store and a local key. No demo user is created then.
    #[arg(long)]
    aws: bool,
    /// Sign with this PKCS#8 PEM key instead of a fresh one (tokens survive restarts).
    #[arg(long, value_name = "PEM", conflicts_with = "aws")]
    key_file: Option<PathBuf>,
    /// Also serve the demo single-page app (clients/browser) on http://localhost:PORT
    /// (0 picks a free one): another origin of the same site as the API, which it
    /// calls at http://localhost:<port> with the refresh cookie. Adds that origin to
    /// LATCHKEY_ALLOWED_ORIGINS and makes `cookie` the refresh-token delivery unless
    /// LATCHKEY_REFRESH_TOKEN_DELIVERY says otherwise.
    #[arg(long, value_name = "PORT")]
    app_port: Option<u16>,
}

pub async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .finish()
        .with(latchkey::logging::ceilings())
        .try_init();
    let mut config = Config::from_env()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await.context("binding the port")?;
    let api_port = listener.local_addr()?.port();
    let app = match args.app_port {
        Some(port) => {
            let app_listener =
                tokio::net::TcpListener::bind(("127.0.0.1", port)).await.context("binding --app-port")?;
            let app_origin = format!("http://localhost:{}", app_listener.local_addr()?.port());
            config.edge.allowed_origins.push(app_origin.clone());
            if std::env::var_os("LATCHKEY_REFRESH_TOKEN_DELIVERY").is_none() {
                config.edge.refresh_delivery = RefreshDelivery::Cookie;
            }
            Some((app_listener, app_origin))
        }
        None => None,
    };
    // Links in messages point at the demo app (which reads them), else at this API's
    // root page; messages are printed on the terminal (below).
    if config.accounts.link_base_url.is_none() {
        let base = match &app {
            Some((_, origin)) => format!("{origin}/"),
            None => format!("http://localhost:{api_port}/"),
        };
        config.accounts.link_base_url = Some(base);
    }
    let services = if args.aws {
        let mut services = Services::deployed(&config, &Aws::from_env().await).await?;
        if config.accounts.delivery == latchkey::config::DeliveryKind::None {
            services.account.recovery =
                services.account.recovery.with_delivery(Arc::new(latchkey::delivery::TerminalDelivery));
            services.admin.admin = services.admin.admin.with_delivery(Arc::new(latchkey::delivery::TerminalDelivery));
        }
        services
    } else {
        let signer = match &args.key_file {
            Some(path) => Some(LocalSigner::from_pem(&std::fs::read_to_string(path).context("reading --key-file")?)?),
            None => None,
        };
        Services::embedded(&config, signer)?
    };
    let mut users = Vec::new();
    if !args.aws {
        users.push((DEMO_EMAIL.to_owned(), DEMO_PASSWORD.to_owned(), "member".to_owned()));
    }
    for spec in &args.users {
        users.push(parse_user(spec)?);
    }
    for (email, password, role) in &users {
        services
            .accounts()
            .create(email, &Password::new(password.clone())?, role)
            .await
            .with_context(|| format!("adding {email}"))?;
    }

    let base = format!("http://{}", listener.local_addr()?);
    print_banner(&base, &services, args.aws, &users);
    let landing = Landing {
        curl: users
            .iter()
            .find(|(email, _, _)| email == DEMO_EMAIL && !args.aws)
            .map(|(email, password, _)| curl_sequence(&base, email, password))
            .unwrap_or_default(),
        app: app.as_ref().map(|(_, origin)| origin.clone()),
    };
    if let Some((app_listener, app_origin)) = app {
        let api_origin = format!("http://localhost:{api_port}");
        println!("demo app on {app_origin} (API at {api_origin}, refresh cookie delivery)");
        let app_port = app_listener.local_addr()?.port();
        let demo = crate::loopback::only_loopback_hosts(crate::demo::router(&api_origin), app_port);
        tokio::spawn(async move { axum::serve(app_listener, demo).await });
    }
    let api = crate::loopback::only_loopback_hosts(router(Arc::new(services), landing), api_port);
    axum::serve(listener, api)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}

fn parse_user(spec: &str) -> anyhow::Result<(String, String, String)> {
    let mut parts = spec.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(email), Some(password), role) if !email.is_empty() && !password.is_empty() => {
            Ok((email.to_owned(), password.to_owned(), role.unwrap_or("member").to_owned()))
        }
        // The value is not echoed: it holds a password.
        _ => bail!("--user takes email:password[:role]"),
    }
}

/// The address, backing and users; for the demo user (in-memory mode only) its
/// password and a curl sequence. Passwords given with `--user` are not echoed.
fn print_banner(base: &str, services: &Services, aws: bool, users: &[(String, String, String)]) {
    println!("latchkey dev listening on {base}");
    let store = if aws { "DynamoDB and KMS (as configured)" } else { "in-memory store, local ES256 key" };
    println!("  backing: {store}; kid {}", services.login.tokens.issuer().signer().public_key().kid);
    println!("  routes: {}", ROUTES_SHOWN.join(", "));
    println!("  messages (reset, invitation, sign-up links): printed here, one line each");
    for (email, _, role) in users.iter().filter(|(email, _, _)| email != DEMO_EMAIL) {
        println!("  user: {email} (role {role})");
    }
    let Some((email, password, role)) = users.iter().find(|(email, _, _)| email == DEMO_EMAIL) else {
        if aws {
            println!("  users: those in the table (add with `latchkey user add`)");
        } else if users.is_empty() {
            println!("  no users yet: add one with --user email:password[:role]");
        }
        println!();
        return;
    };
    println!("  demo user: {email} / {password} (role {role})");
    println!();
    println!("Try it:");
    for line in curl_sequence(base, email, password) {
        println!("{line}");
    }
    println!();
}

/// The shell lines that log the demo user in, call `/me`, refresh and log out.
fn curl_sequence(base: &str, email: &str, password: &str) -> Vec<String> {
    let credentials = json!({"email": email, "password": password}).to_string();
    vec![
        format!("TOKENS=$(curl -s -X POST {base}/login -H 'Content-Type: application/json' -d '{credentials}')"),
        "ACCESS=$(printf '%s' \"$TOKENS\" | sed -E 's/.*\"accessToken\":\"([^\"]+)\".*/\\1/')".to_owned(),
        "REFRESH=$(printf '%s' \"$TOKENS\" | sed -E 's/.*\"refreshToken\":\"([^\"]+)\".*/\\1/')".to_owned(),
        format!("curl -s {base}/me -H \"Authorization: Bearer $ACCESS\"; echo"),
        format!(
            "curl -s -X POST {base}/refresh-token -H 'Content-Type: application/json' -d \"{{\\\"refreshToken\\\":\\\"$REFRESH\\\"}}\"; echo"
        ),
        format!(
            "curl -s -o /dev/null -w '%{{http_code}}\\n' -X POST {base}/logout -H \"Authorization: Bearer $ACCESS\""
        ),
    ]
}

/// What `GET /` tells a person who opens the API in a browser: the routes, the
/// curl sequence (in-memory mode) and the demo app, when served.
#[derive(Debug, Clone, Default)]
pub struct Landing {
    /// The curl sequence for the demo user, when there is one.
    pub curl: Vec<String>,
    /// The demo app's address, with `--app-port`.
    pub app: Option<String>,
}

async fn landing(axum::Extension(landing): axum::Extension<Arc<Landing>>, headers: http::HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let routes = ROUTES_SHOWN;
    if !wants_html {
        return json_response(
            StatusCode::OK,
            &json!({"service": "latchkey dev", "routes": routes, "try": landing.curl, "demoApp": landing.app, "docs": "docs/api.md"}),
        );
    }
    let escape = |text: &str| text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut page = String::from("<!doctype html><meta charset=utf-8><title>latchkey dev</title><h1>latchkey dev</h1>");
    if let Some(app) = &landing.app {
        page.push_str(&format!("<p>The demo app: <a href=\"{0}\">{0}</a></p>", escape(app)));
    } else {
        page.push_str("<p>For a demo app in the browser, restart with <code>latchkey dev --app-port 8081</code>.</p>");
    }
    page.push_str("<h2>Routes</h2><ul>");
    for route in routes {
        page.push_str(&format!("<li><code>{}</code></li>", escape(route)));
    }
    page.push_str("</ul>");
    if !landing.curl.is_empty() {
        page.push_str("<h2>Try it</h2><pre>");
        page.push_str(&escape(&landing.curl.join("\n")));
        page.push_str("</pre>");
    }
    page.push_str("<p>The API's reference: <code>docs/api.md</code> and <code>docs/openapi.yaml</code>.</p>");
    let mut response = Response::new(AxumBody::from(page));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

/// The routes `GET /` lists.
const ROUTES_SHOWN: [&str; 16] = [
    "POST /login",
    "POST /login/mfa",
    "POST /login/mfa/setup",
    "POST /refresh-token",
    "POST /logout",
    "GET /.well-known/jwks.json",
    "POST /password",
    "POST /password/forgot",
    "POST /password/reset",
    "POST /signup",
    "POST /email/verify",
    "GET /sessions",
    "DELETE /sessions/{id}",
    "POST|DELETE /mfa/totp, POST /mfa/totp/confirm",
    "GET|POST /admin/users (and /{id}, /{id}/sessions; role LATCHKEY_ADMIN_ROLE)",
    "GET /me",
];

/// The routes of docs/api.md plus `GET /me` and `GET /`, with one log line per request.
pub fn router(services: Arc<Services>, front_page: Landing) -> Router {
    Router::new()
        .route("/", axum::routing::get(landing))
        .route("/login", any(login_route))
        .route("/login/mfa", any(login_route))
        .route("/login/mfa/setup", any(login_route))
        .route(
            "/refresh-token",
            any(
                |State(s): State<Arc<Services>>, r: Request| async move { lambda(r, |r| refresh(&s.refresh, r)).await },
            ),
        )
        .route(
            "/logout",
            any(|State(s): State<Arc<Services>>, r: Request| async move { lambda(r, |r| logout(&s.logout, r)).await }),
        )
        .route("/password", any(account_route))
        .route("/password/forgot", any(account_route))
        .route("/password/reset", any(account_route))
        .route("/signup", any(account_route))
        .route("/email/verify", any(account_route))
        .route("/sessions", any(account_route))
        .route("/sessions/{id}", any(account_route))
        .route("/mfa/totp", any(account_route))
        .route("/mfa/totp/confirm", any(account_route))
        .route("/admin/users", any(admin_route))
        .route("/admin/users/{id}", any(admin_route))
        .route("/admin/users/{id}/sessions", any(admin_route))
        .route("/admin/users/{id}/sessions/{session}", any(admin_route))
        .route("/admin/users/{id}/mfa", any(admin_route))
        .route(
            "/.well-known/jwks.json",
            any(|State(s): State<Arc<Services>>, r: Request| async move { lambda(r, |r| jwks(&s.jwks, r)).await }),
        )
        .route("/me", any(me))
        .fallback(|| async { gateway_error(StatusCode::NOT_FOUND, "Not Found") })
        .layer(axum::Extension(Arc::new(front_page)))
        .layer(middleware::from_fn(log_line))
        .with_state(services)
}

/// The login routes (the password, and a second factor's two routes), through the
/// login function's handler.
async fn login_route(State(s): State<Arc<Services>>, r: Request) -> Response {
    lambda(r, |r| login(&s.login, r)).await
}

/// The account routes, through the account function's handler. `POST /password`
/// sits behind the authorizer in the template; its handler verifies the access
/// token itself, so it is served directly here.
async fn account_route(State(s): State<Arc<Services>>, r: Request) -> Response {
    lambda(r, |r| account(&s.account, r)).await
}

/// The admin API, behind the real authorizer as the template puts it (its admin
/// rule on `/admin/*`): 401 or 403 from the authorizer as API Gateway answers, else
/// the admin function's handler, which checks the caller's stored role again.
async fn admin_route(State(s): State<Arc<Services>>, r: Request) -> Response {
    if r.method() != http::Method::OPTIONS {
        let authorization = r.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (method, path) = (r.method().as_str().to_owned(), r.uri().path().to_owned());
        if let Err(refused) = gate(&s, authorization, &method, &path).await {
            return from_lambda(refused);
        }
    }
    lambda(r, |r| latchkey::http::admin(&s.admin, r)).await
}

/// `METHOD /path STATUS Nms` on stderr; nothing else about the request.
async fn log_line(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = next.run(request).await;
    eprintln!("{method} {path} {} {}ms", response.status().as_u16(), started.elapsed().as_millis());
    response
}

/// Runs a `lambda_http` handler on an HTTP request, as API Gateway would.
async fn lambda<F, Fut>(request: Request, handler: F) -> Response
where
    F: FnOnce(lambda_http::Request) -> Fut,
    Fut: Future<Output = http::Response<Body>>,
{
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return from_lambda(ApiError::InvalidRequest("Request body is larger than 8 KiB.").into_response());
    };
    let body = match String::from_utf8(bytes.to_vec()) {
        Ok(text) if text.is_empty() => Body::Empty,
        Ok(text) => Body::Text(text),
        Err(error) => Body::Binary(error.into_bytes()),
    };
    from_lambda(handler(with_source_ip(http::Request::from_parts(parts, body))).await)
}

/// The request context API Gateway would add, as far as the handlers read it: the
/// source IP (always loopback: the dev server listens nowhere else).
fn with_source_ip(request: lambda_http::Request) -> lambda_http::Request {
    use lambda_http::RequestExt;
    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
    use lambda_http::request::RequestContext;
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.http.source_ip = Some("127.0.0.1".to_owned());
    request.with_request_context(RequestContext::ApiGatewayV2(context))
}

fn from_lambda(response: http::Response<Body>) -> Response {
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Text(text) => AxumBody::from(text),
        Body::Binary(bytes) => AxumBody::from(bytes),
        _ => AxumBody::empty(),
    };
    Response::from_parts(parts, body)
}

/// `GET /me`: what an API behind the authorizer sees. Builds the HTTP API 2.0
/// authorizer event API Gateway would send, runs the real authorizer, and answers
/// like API Gateway: 401 without a token or for a bad one, 403 when denied, else the
/// authorizer's context.
async fn me(State(services): State<Arc<Services>>, request: Request) -> Response {
    // API Gateway answers CORS for the app's routes itself (the template's `Cors`);
    // here the edge's own rules stand in for it.
    let mut origin_only = lambda_http::Request::new(Body::Empty);
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        origin_only.headers_mut().insert(header::ORIGIN, origin.clone());
    }
    let edge = &services.authorizer.edge;
    if request.method() == http::Method::OPTIONS {
        return from_lambda(latchkey::http::preflight(&origin_only, edge));
    }
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let method = request.method().as_str().to_owned();
    let mut response = from_lambda(authorized_me(&services, authorization, method).await);
    let mut cors = http::Response::new(Body::Empty);
    latchkey::http::apply_cors(&origin_only, edge, &mut cors);
    response.headers_mut().extend(cors.headers().clone());
    response
}

async fn authorized_me(services: &Services, authorization: Option<String>, method: String) -> http::Response<Body> {
    match gate(services, authorization, &method, "/me").await {
        Ok(context) => lambda_json(StatusCode::OK, &context),
        Err(refused) => refused,
    }
}

/// Runs the authorizer on the HTTP API 2.0 event API Gateway would send for `method`
/// on `path`: the authorizer's context when it allows, else API Gateway's answer (401
/// without a token or for a bad one, 403 when denied).
async fn gate(
    services: &Services,
    authorization: Option<String>,
    method: &str,
    path: &str,
) -> Result<Value, http::Response<Body>> {
    let Some(authorization) = authorization else {
        return Err(lambda_json(StatusCode::UNAUTHORIZED, &json!({ "message": "Unauthorized" })));
    };
    let route = format!("{method} {path}");
    let event = json!({
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": format!("arn:aws:execute-api:local:000000000000:latchkey-dev/$default/{method}{path}"),
        "identitySource": [authorization],
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "cookies": [],
        "headers": {"authorization": authorization},
        "requestContext": {
            "accountId": "000000000000", "apiId": "latchkey-dev", "domainName": "127.0.0.1", "domainPrefix": "latchkey-dev",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": ""},
            "requestId": "latchkey-dev", "routeKey": route, "stage": "$default", "time": "", "timeEpoch": 0
        },
        "pathParameters": {},
        "stageVariables": {},
        "queryStringParameters": {}
    });
    match latchkey::authorizer::authorize(&services.authorizer, event).await {
        Ok(answer) if answer["isAuthorized"] == true => Ok(answer["context"].clone()),
        Ok(_) => Err(lambda_json(StatusCode::FORBIDDEN, &json!({ "message": "Forbidden" }))),
        Err(_) => Err(lambda_json(StatusCode::UNAUTHORIZED, &json!({ "message": "Unauthorized" }))),
    }
}

fn lambda_json(status: StatusCode, body: &Value) -> http::Response<Body> {
    let mut response = http::Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// API Gateway's own error shape: `{"message": ...}`.
fn gateway_error(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "message": message }))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(AxumBody::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
