//! The HTTP functions: `POST /login`, `POST /refresh-token`, `POST /logout`,
//! `GET /.well-known/jwks.json`, the account routes (`/password`, `/signup`,
//! `/email/verify`, `/sessions`) and the admin API (`/admin/users...`), as plain async handlers over `lambda_http` requests, so the
//! Lambda binaries, `latchkey dev` and tests all run the same code.

mod account;
mod admin;
mod echo;
mod edge;
mod error;
mod jwks;
mod login;
mod logout;
mod refresh;
mod tokens;

pub use account::{AccountRoute, AccountState, account};
pub use admin::{ADMIN_ROUTES, AdminRoute, AdminState, admin};
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
/// `POST /password` (change, signed in).
pub const CHANGE_PASSWORD_ROUTE: &str = "POST /password";
/// `POST /password/forgot`.
pub const FORGOT_PASSWORD_ROUTE: &str = "POST /password/forgot";
/// `POST /password/reset`.
pub const RESET_PASSWORD_ROUTE: &str = "POST /password/reset";
/// `POST /signup`.
pub const SIGNUP_ROUTE: &str = "POST /signup";
/// `POST /email/verify`.
pub const VERIFY_EMAIL_ROUTE: &str = "POST /email/verify";
/// `GET /sessions` (the signed-in user's sessions).
pub const SESSIONS_ROUTE: &str = "GET /sessions";
/// `DELETE /sessions/{id}`.
pub const END_SESSION_ROUTE: &str = "DELETE /sessions/{id}";
/// `POST /login/mfa` (a login's second step).
pub const LOGIN_MFA_ROUTE: &str = "POST /login/mfa";
/// `POST /login/mfa/setup` (enrolment during a login, for users who must enrol).
pub const LOGIN_MFA_SETUP_ROUTE: &str = "POST /login/mfa/setup";
/// `POST /mfa/totp` (start an enrolment, signed in).
pub const MFA_BEGIN_ROUTE: &str = "POST /mfa/totp";
/// `POST /mfa/totp/confirm`.
pub const MFA_CONFIRM_ROUTE: &str = "POST /mfa/totp/confirm";
/// `DELETE /mfa/totp`.
pub const MFA_REMOVE_ROUTE: &str = "DELETE /mfa/totp";
/// Every route the HTTP functions serve, as `METHOD /path`.
pub const ROUTES: [&str; 25] = [
    LOGIN_ROUTE,
    REFRESH_ROUTE,
    LOGOUT_ROUTE,
    JWKS_ROUTE,
    CHANGE_PASSWORD_ROUTE,
    FORGOT_PASSWORD_ROUTE,
    RESET_PASSWORD_ROUTE,
    SIGNUP_ROUTE,
    VERIFY_EMAIL_ROUTE,
    SESSIONS_ROUTE,
    END_SESSION_ROUTE,
    ADMIN_ROUTES[0],
    ADMIN_ROUTES[1],
    ADMIN_ROUTES[2],
    ADMIN_ROUTES[3],
    ADMIN_ROUTES[4],
    ADMIN_ROUTES[5],
    ADMIN_ROUTES[6],
    ADMIN_ROUTES[7],
    ADMIN_ROUTES[8],
    LOGIN_MFA_ROUTE,
    LOGIN_MFA_SETUP_ROUTE,
    MFA_BEGIN_ROUTE,
    MFA_CONFIRM_ROUTE,
    MFA_REMOVE_ROUTE,
];

/// The JSON of an enrolment: `{"secret", "otpauthUri", "qrSvg"}`.
pub(crate) fn enrolment_body(enrolment: &crate::mfa::Enrolment) -> serde_json::Value {
    serde_json::json!({
        "secret": enrolment.secret,
        "otpauthUri": enrolment.otpauth_uri,
        "qrSvg": enrolment.qr_svg,
    })
}
