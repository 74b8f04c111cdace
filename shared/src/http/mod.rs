//! The HTTP functions: `POST /login`, `POST /refresh-token`, `POST /logout` and
//! `GET /.well-known/jwks.json`, as plain async handlers over `lambda_http`
//! requests, so the Lambda binaries, `latchkey dev` and tests all run the same code.

mod echo;
mod edge;
mod error;
mod jwks;
mod login;
mod logout;
mod refresh;
mod tokens;

pub use echo::echo_authorizer_context;
pub use edge::{
    AmbiguousCookie, HOST_REFRESH_COOKIE, MAX_BODY_BYTES, Outcome, REFRESH_COOKIE, apply_cors, check_cookie_request,
    preflight, refresh_cookie, refresh_cookie_name,
};
pub use error::ApiError;
pub use jwks::{JwksState, jwks};
pub use login::{LoginState, login};
pub use logout::{LogoutState, logout};
pub use refresh::{RefreshState, refresh};
pub use tokens::TokenResponder;

/// `POST /login`.
pub const LOGIN_ROUTE: &str = "POST /login";
/// `POST /refresh-token`.
pub const REFRESH_ROUTE: &str = "POST /refresh-token";
/// `POST /logout`.
pub const LOGOUT_ROUTE: &str = "POST /logout";
/// `GET /.well-known/jwks.json`.
pub const JWKS_ROUTE: &str = "GET /.well-known/jwks.json";
/// Every route the HTTP functions serve, as `METHOD /path`.
pub const ROUTES: [&str; 4] = [LOGIN_ROUTE, REFRESH_ROUTE, LOGOUT_ROUTE, JWKS_ROUTE];
