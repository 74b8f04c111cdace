//! The admin API (`/admin/users...`), served by one function behind the
//! authorizer's admin rule. The handler checks again for itself: the access token,
//! then the caller's *stored* role and live session ([`Admin::authorize`]). Every
//! request, allowed or refused, writes one `admin_action` audit line naming the
//! actor, the target and the request id. The rules live in [`crate::admin`].

use http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::edge::{Outcome, empty_response, json_body, json_response, serve};
use super::logout::bearer_token;
use crate::account::AccountError;
use crate::admin::{Admin, AdminError};
use crate::config::EdgeConfig;
use crate::password::{Password, PasswordError};
use crate::store::{ListedUser, Session, StoreError, User};
use crate::token::{SessionId, Verifier};

/// What the admin function holds from cold start on.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The admin operations.
    pub admin: Admin,
    /// The second factor (an administrator's reset).
    pub mfa: crate::mfa::Mfa,
    /// The access token of every request.
    pub verifier: Verifier,
    /// CORS settings.
    pub edge: EdgeConfig,
}

/// One admin route: what it does, and the ids its path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRoute {
    /// `GET /admin/users`.
    ListUsers,
    /// `POST /admin/users`.
    CreateUser,
    /// `GET /admin/users/{id}`.
    GetUser(String),
    /// `PATCH /admin/users/{id}`.
    UpdateUser(String),
    /// `DELETE /admin/users/{id}`.
    DeleteUser(String),
    /// `GET /admin/users/{id}/sessions`.
    ListSessions(String),
    /// `DELETE /admin/users/{id}/sessions`.
    EndSessions(String),
    /// `DELETE /admin/users/{id}/sessions/{sessionId}`.
    EndSession(String, String),
    /// `DELETE /admin/users/{id}/mfa`.
    ResetMfa(String),
}

/// Every admin route, as `METHOD /path`.
pub const ADMIN_ROUTES: [&str; 9] = [
    "GET /admin/users",
    "POST /admin/users",
    "GET /admin/users/{id}",
    "PATCH /admin/users/{id}",
    "DELETE /admin/users/{id}",
    "GET /admin/users/{id}/sessions",
    "DELETE /admin/users/{id}/sessions",
    "DELETE /admin/users/{id}/sessions/{sessionId}",
    "DELETE /admin/users/{id}/mfa",
];

impl AdminRoute {
    /// The route of `method` on `path` (the path's segments from `admin/users` on,
    /// so a stage or base-path prefix does not matter). `Err` with the methods the
    /// path has when it exists with others, `Ok(None)` when no admin path matches.
    pub fn of(method: &Method, path: &str) -> Result<Option<Self>, &'static [Method]> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let Some(start) = segments.windows(2).position(|pair| pair == ["admin", "users"]) else { return Ok(None) };
        let rest = &segments[start + 2..];
        if rest.iter().any(|segment| segment.is_empty()) {
            return Ok(None);
        }
        let id = |i: usize| rest[i].to_owned();
        Ok(Some(match (rest.len(), rest.get(1).copied()) {
            (0, _) => match *method {
                Method::GET => Self::ListUsers,
                Method::POST => Self::CreateUser,
                _ => return Err(&[Method::GET, Method::POST]),
            },
            (1, _) => match *method {
                Method::GET => Self::GetUser(id(0)),
                Method::PATCH => Self::UpdateUser(id(0)),
                Method::DELETE => Self::DeleteUser(id(0)),
                _ => return Err(&[Method::GET, Method::PATCH, Method::DELETE]),
            },
            (2, Some("sessions")) => match *method {
                Method::GET => Self::ListSessions(id(0)),
                Method::DELETE => Self::EndSessions(id(0)),
                _ => return Err(&[Method::GET, Method::DELETE]),
            },
            (2, Some("mfa")) => match *method {
                Method::DELETE => Self::ResetMfa(id(0)),
                _ => return Err(&[Method::DELETE]),
            },
            (3, Some("sessions")) => match *method {
                Method::DELETE => Self::EndSession(id(0), id(2)),
                _ => return Err(&[Method::DELETE]),
            },
            _ => return Ok(None),
        }))
    }

    /// `METHOD /path` (with the path's placeholders).
    pub fn key(&self) -> &'static str {
        let index = match self {
            Self::ListUsers => 0,
            Self::CreateUser => 1,
            Self::GetUser(_) => 2,
            Self::UpdateUser(_) => 3,
            Self::DeleteUser(_) => 4,
            Self::ListSessions(_) => 5,
            Self::EndSessions(_) => 6,
            Self::EndSession(..) => 7,
            Self::ResetMfa(_) => 8,
        };
        ADMIN_ROUTES[index]
    }

    /// The audit line's `action`.
    pub fn action(&self) -> &'static str {
        match self {
            Self::ListUsers => "list_users",
            Self::CreateUser => "create_user",
            Self::GetUser(_) => "get_user",
            Self::UpdateUser(_) => "update_user",
            Self::DeleteUser(_) => "delete_user",
            Self::ListSessions(_) => "list_sessions",
            Self::EndSessions(_) => "end_sessions",
            Self::EndSession(..) => "end_session",
            Self::ResetMfa(_) => "reset_mfa",
        }
    }

    fn method(&self) -> Method {
        match self {
            Self::ListUsers | Self::GetUser(_) | Self::ListSessions(_) => Method::GET,
            Self::CreateUser => Method::POST,
            Self::UpdateUser(_) => Method::PATCH,
            Self::DeleteUser(_) | Self::EndSessions(_) | Self::EndSession(..) | Self::ResetMfa(_) => Method::DELETE,
        }
    }

    /// The user the route acts on, if it names one.
    fn target(&self) -> Option<&str> {
        match self {
            Self::ListUsers | Self::CreateUser => None,
            Self::GetUser(id)
            | Self::UpdateUser(id)
            | Self::DeleteUser(id)
            | Self::ListSessions(id)
            | Self::EndSessions(id)
            | Self::EndSession(id, _)
            | Self::ResetMfa(id) => Some(id),
        }
    }
}

/// Handles every admin route (and its CORS preflight), by method and path.
pub async fn admin(state: &AdminState, request: Request) -> Response<Body> {
    let route = if request.method() == Method::OPTIONS {
        AdminRoute::of(&Method::GET, request.uri().path()).unwrap_or(Some(AdminRoute::ListUsers))
    } else {
        match AdminRoute::of(request.method(), request.uri().path()) {
            Ok(route) => route,
            Err(allowed) => {
                let mut response = ApiError::MethodNotAllowed.into_response();
                let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ") + ", OPTIONS";
                if let Ok(value) = http::HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(http::header::ALLOW, value);
                }
                return response;
            }
        }
    };
    let Some(route) = route else { return ApiError::NotFound.into_response() };
    serve(route.key(), route.method(), &state.edge, request, |request| async move {
        act(state, &route, &request).await.unwrap_or_else(Outcome::from)
    })
    .await
}

/// Verifies the caller, runs the route, and writes the audit line either way.
async fn act(state: &AdminState, route: &AdminRoute, request: &Request) -> Result<Outcome, ApiError> {
    let request_id = request.lambda_context_ref().map(|c| c.request_id.clone()).unwrap_or_default();
    let request_id = match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => {
            context.request_id.clone().unwrap_or(request_id)
        }
        Some(lambda_http::request::RequestContext::ApiGatewayV1(context)) => {
            context.request_id.clone().unwrap_or(request_id)
        }
        _ => request_id,
    };
    let target = route.target().unwrap_or_default().to_owned();
    let audit = |actor: &str, outcome: &str, target: &str| {
        tracing::info!(
            event = "admin_action",
            action = route.action(),
            actor_id = actor,
            target_id = target,
            request_id = %request_id,
            outcome,
        );
    };
    let token = bearer_token(request).ok_or_else(|| ApiError::InvalidToken("no bearer token".to_owned()))?;
    let now = state.admin.accounts().sessions().clock().now();
    let claims = match state.verifier.verify_live(token, now).await {
        Ok(claims) => claims,
        Err(error) => {
            audit("", "invalid_token", &target);
            return Err(ApiError::InvalidToken(error.to_string()));
        }
    };
    let session_id: SessionId =
        claims.sid.parse().map_err(|_| ApiError::InvalidToken("sid is not a session id".to_owned()))?;
    let actor = match state.admin.authorize(&claims, session_id).await {
        Ok(actor) => actor,
        Err(AdminError::Refused(why)) => {
            audit(&claims.sub, "refused", &target);
            return Err(forbidden(why));
        }
        Err(other) => return Err(admin_error(other)),
    };
    let result = run(state, route, request).await;
    let (outcome, target) = match &result {
        Ok((_, Some(created))) => ("ok", created.as_str()),
        Ok(_) => ("ok", target.as_str()),
        Err(error) => (error.code(), target.as_str()),
    };
    audit(&actor.user_id, outcome, target);
    result.map(|(response, _)| Outcome::ok(response, Some(actor.user_id)))
}

fn forbidden(why: &'static str) -> ApiError {
    tracing::info!(event = "admin_refused", why);
    ApiError::NotAdmin
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    email: String,
    #[serde(default, deserialize_with = "super::edge::present")]
    role: Option<String>,
    #[serde(default, deserialize_with = "super::edge::present")]
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default, deserialize_with = "super::edge::present")]
    role: Option<String>,
    #[serde(default, deserialize_with = "super::edge::present")]
    disabled: Option<bool>,
}

/// The route's work: its response, and the id of a user it created (for the audit line).
async fn run(
    state: &AdminState,
    route: &AdminRoute,
    request: &Request,
) -> Result<(Response<Body>, Option<String>), ApiError> {
    let admin = &state.admin;
    let ok = |body: Value| (json_response(StatusCode::OK, &body), None);
    let done = || (empty_response(StatusCode::NO_CONTENT), None);
    Ok(match route {
        AdminRoute::ListUsers => {
            let limit = match query(request, "limit") {
                None => None,
                Some(raw) => Some(raw.parse::<usize>().map_err(|_| ApiError::InvalidRequest(PAGE))?),
            };
            let prefix = query(request, "emailPrefix");
            let cursor = query(request, "cursor");
            let page = admin.list_users(prefix.as_deref(), cursor.as_deref(), limit).await.map_err(admin_error)?;
            let users: Vec<Value> = page.users.iter().map(listed).collect();
            ok(json!({ "users": users, "nextCursor": page.next_cursor }))
        }
        AdminRoute::CreateUser => {
            let body: CreateBody = json_body(request)?
                .ok_or(ApiError::InvalidRequest("Body must be {\"email\", \"role\"?, \"password\"?}."))?;
            let password = body.password.map(Password::new).transpose().map_err(|_| too_long())?;
            let role = body.role.as_deref().unwrap_or(crate::account::DEFAULT_ROLE);
            let created = admin.create_user(&body.email, role, password.as_ref()).await.map_err(admin_error)?;
            let mut shown = user_json(&created.user);
            shown["invited"] = json!(created.invited);
            (json_response(StatusCode::CREATED, &shown), Some(created.user.id))
        }
        AdminRoute::GetUser(id) => ok(user_json(&admin.user(id).await.map_err(admin_error)?)),
        AdminRoute::UpdateUser(id) => {
            let body: UpdateBody =
                json_body(request)?.ok_or(ApiError::InvalidRequest("Body must be {\"role\"?, \"disabled\"?}."))?;
            if body.role.is_none() && body.disabled.is_none() {
                return Err(ApiError::InvalidRequest("Body must change role, disabled or both."));
            }
            if let Some(role) = &body.role {
                crate::account::check_role(role).map_err(|_| ApiError::InvalidRequest("Not a valid role."))?;
            }
            ok(user_json(&admin.update_user(id, body.role.as_deref(), body.disabled).await.map_err(admin_error)?))
        }
        AdminRoute::DeleteUser(id) => {
            admin.delete_user(id).await.map_err(admin_error)?;
            done()
        }
        AdminRoute::ListSessions(id) => {
            let sessions = admin.sessions_of(id).await.map_err(admin_error)?;
            ok(json!({ "sessions": sessions.iter().map(session_json).collect::<Vec<_>>() }))
        }
        AdminRoute::EndSessions(id) => {
            admin.end_sessions(id).await.map_err(admin_error)?;
            done()
        }
        AdminRoute::EndSession(id, session) => {
            admin.end_session(id, session).await.map_err(admin_error)?;
            done()
        }
        AdminRoute::ResetMfa(id) => {
            let user = admin.user(id).await.map_err(admin_error)?;
            if !state.mfa.reset(&user).await.map_err(super::login::mfa_error)? {
                return Err(ApiError::Conflict("mfa_not_enabled"));
            }
            done()
        }
    })
}

const PAGE: &str = "limit must be a whole number from 1 to 100.";

fn too_long() -> ApiError {
    ApiError::WeakPassword("Password is longer than 1 KiB.")
}

/// A query parameter: from the event's parameters (API Gateway), else from the URI
/// (`latchkey dev`), percent-decoded.
fn query(request: &Request, name: &str) -> Option<String> {
    let parameters = request.query_string_parameters_ref();
    if let Some(value) = parameters.and_then(|p| p.first(name)) {
        return Some(value.to_owned());
    }
    let raw = request.uri().query()?;
    raw.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned())
}

fn listed(user: &ListedUser) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "disabled": user.disabled,
        "createdAt": user.created_at,
        "emailVerified": user.email_verified,
    })
}

fn user_json(user: &User) -> Value {
    let mut shown = listed(&ListedUser::from(user));
    shown["passwordSet"] = json!(user.has_password());
    shown["mfaEnabled"] = json!(user.totp.enabled());
    shown
}

fn session_json(session: &Session) -> Value {
    json!({
        "id": session.id.to_string(),
        "createdAt": session.created_at,
        "lastUsedAt": session.rotated_at,
        "userAgent": session.client.user_agent,
        "ip": session.client.ip,
    })
}

fn admin_error(error: AdminError) -> ApiError {
    match error {
        AdminError::Refused(why) => forbidden(why),
        AdminError::NotFound => ApiError::NotFound,
        AdminError::BadCursor => ApiError::InvalidCursor,
        AdminError::BadPage => ApiError::InvalidRequest(PAGE),
        AdminError::Account(error) => match error {
            AccountError::LastAdmin => ApiError::Conflict("last_admin"),
            AccountError::Conflict => ApiError::Conflict("conflict"),
            AccountError::Store(StoreError::DuplicateEmail) => ApiError::Conflict("email_taken"),
            AccountError::Store(StoreError::NotFound) => ApiError::NotFound,
            AccountError::WeakPassword => ApiError::WeakPassword("Password must have at least 8 characters."),
            AccountError::Password(PasswordError::TooLong) => too_long(),
            AccountError::InvalidEmail(_) => ApiError::InvalidRequest("Not a valid email address."),
            AccountError::InvalidRole => ApiError::InvalidRequest("Not a valid role."),
            other => ApiError::Server(format!("admin: {other}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_found_by_method_and_path() {
        let of = |method: Method, path: &str| AdminRoute::of(&method, path);
        assert_eq!(of(Method::GET, "/admin/users"), Ok(Some(AdminRoute::ListUsers)));
        assert_eq!(of(Method::POST, "/api/admin/users/"), Ok(Some(AdminRoute::CreateUser)));
        assert_eq!(of(Method::PATCH, "/admin/users/u1"), Ok(Some(AdminRoute::UpdateUser("u1".into()))));
        assert_eq!(of(Method::GET, "/admin/users/u1/sessions"), Ok(Some(AdminRoute::ListSessions("u1".into()))));
        assert_eq!(
            of(Method::DELETE, "/admin/users/u1/sessions/s1"),
            Ok(Some(AdminRoute::EndSession("u1".into(), "s1".into())))
        );
        assert_eq!(of(Method::PUT, "/admin/users/u1"), Err(&[Method::GET, Method::PATCH, Method::DELETE][..]));
        assert_eq!(of(Method::GET, "/admin/users/u1/other"), Ok(None));
        assert_eq!(of(Method::DELETE, "/admin/users/u1/mfa"), Ok(Some(AdminRoute::ResetMfa("u1".into()))));
        assert_eq!(of(Method::GET, "/admin/users/u1/mfa"), Err(&[Method::DELETE][..]));
        assert_eq!(of(Method::GET, "/admin/users//sessions"), Ok(None));
        assert_eq!(of(Method::GET, "/users"), Ok(None));
        for route in [AdminRoute::ListUsers, AdminRoute::EndSession("a".into(), "b".into())] {
            assert!(ADMIN_ROUTES.contains(&route.key()));
        }
    }
}
