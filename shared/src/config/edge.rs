//! Settings of the HTTP edge and the authorizer: CORS origins, refresh-token
//! delivery, CSRF header, cookie path, JWKS caching and role rules.

use super::{ConfigError, problem};

/// How the refresh token reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefreshDelivery {
    /// Only in the JSON body (`refreshToken`): native and server-side clients.
    Body,
    /// Only in the HttpOnly cookie: browser apps, the token never visible to script.
    Cookie,
    /// Both (the default): one deployment serves browsers and other clients.
    #[default]
    Both,
}

impl RefreshDelivery {
    /// Whether the JSON body carries the token.
    pub fn in_body(self) -> bool {
        matches!(self, Self::Body | Self::Both)
    }

    /// Whether the cookie carries the token.
    pub fn in_cookie(self) -> bool {
        matches!(self, Self::Cookie | Self::Both)
    }
}

/// What the authorizer does with a valid token when the session check cannot read
/// the store (an outage, throttling, its timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionCheckFailure {
    /// Refuse (401): revocation is never silently skipped (the default).
    #[default]
    Deny,
    /// Allow on the valid signature, with an error log line: availability over
    /// prompt revocation while the store is down.
    Allow,
}

/// Methods a route rule may name besides `*` (and `ANY`, read as `*`).
pub const RULE_METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// One role rule of the authorizer: requests matching `method` and `path` need `role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRole {
    /// HTTP method in upper case, or `*` for any.
    pub method: String,
    /// Path, exact, or a prefix when it ends in `*`; a literal path (no `{`, `}`,
    /// `?`, `#`, `%` or `//`), without a trailing `/` unless it is `/`.
    pub path: String,
    /// The role required (compared exactly, case kept).
    pub role: String,
}

impl RouteRole {
    /// Whether a request with `method` and `path` falls under this rule: the path as
    /// sent, or its normal form (percent-decoded, doubled slashes collapsed, no
    /// trailing slash). Either matching is enough, so spelling a path another way
    /// cannot slip past a rule.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let method_matches = self.method == "*" || self.method.eq_ignore_ascii_case(method);
        method_matches && (self.path_matches(path) || self.path_matches(&normal_path(path)))
    }

    fn path_matches(&self, path: &str) -> bool {
        match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == self.path,
        }
    }
}

/// Whether `role` is 1-64 characters of `A-Z a-z 0-9 _ - : . /` (the role charset).
pub fn is_role(role: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.' | b'/');
    !role.is_empty() && role.len() <= 64 && role.bytes().all(allowed)
}

/// `path` percent-decoded (invalid UTF-8 replaced), with runs of `/` collapsed and
/// no trailing `/` (unless it is `/`).
pub fn normal_path(path: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut normal = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        if !(c == '/' && normal.ends_with('/')) {
            normal.push(c);
        }
    }
    if normal.len() > 1 && normal.ends_with('/') {
        normal.pop();
    }
    normal
}

/// The HTTP edge's and the authorizer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    /// Origins allowed by CORS and by the cookie CSRF check, exactly as browsers send
    /// them (`https://app.example.com`). `LATCHKEY_ALLOWED_ORIGINS`, comma-separated,
    /// default empty (no cross-origin browser access).
    pub allowed_origins: Vec<String>,
    /// `LATCHKEY_REFRESH_TOKEN_DELIVERY`: `body`, `cookie` or `both` (default).
    pub refresh_delivery: RefreshDelivery,
    /// Header a cookie-authenticated request must carry (any non-empty value): a
    /// cross-site form cannot set it. `LATCHKEY_CSRF_HEADER`, default `X-Latchkey-CSRF`.
    pub csrf_header: String,
    /// `Path` of the refresh cookie. `LATCHKEY_COOKIE_PATH`, default `/refresh-token`.
    /// Set it to a prefix shared by the refresh and logout routes (e.g. `/auth`) for
    /// cookie logout; otherwise browsers log out with the access token.
    pub cookie_path: String,
    /// `Cache-Control: max-age` of the JWKS. `LATCHKEY_JWKS_MAX_AGE_SECONDS`, default
    /// 300, 0–86400. Keep it below the overlap of a key rotation.
    pub jwks_max_age_secs: u64,
    /// Role every request needs, checked by the authorizer. `LATCHKEY_REQUIRED_ROLE`,
    /// default unset (any valid token passes).
    pub required_role: Option<String>,
    /// Route-to-role rules, `METHOD /path=role` comma-separated, a trailing `*` on the
    /// path matching any suffix and `*` as method any method, e.g.
    /// `GET /admin/*=admin,* /billing*=billing`. `LATCHKEY_ROUTE_ROLES`, default empty.
    pub route_roles: Vec<RouteRole>,
    /// How often the authorizer confirms, per session and warm instance, that an
    /// access token's session and user are still live (one store read; both answers
    /// cached in process). `LATCHKEY_AUTHORIZER_SESSION_CHECK_SECONDS`, default 30,
    /// 0-3600; 0 turns the check off (revocation then reaches the APIs only when the
    /// access token expires).
    pub session_check_secs: u64,
    /// `LATCHKEY_AUTHORIZER_SESSION_CHECK_FAILURE`: `deny` (default) or `allow`.
    pub session_check_failure: SessionCheckFailure,
    /// The role of administrators: the admin API (`/admin/*`) answers only its
    /// holders, and the authorizer enforces it on `/admin/*` beside `route_roles`.
    /// `LATCHKEY_ADMIN_ROLE`, default `Admin`; compared exactly, case kept.
    pub admin_role: String,
    /// Routes that need a second factor, `METHOD /path` comma-separated (the path
    /// syntax of `route_roles`), e.g. `* /admin/*,POST /payments*`: an access token
    /// whose `amr` has no `otp` or `mfa` is denied there (403). `LATCHKEY_ROUTE_MFA`,
    /// default empty.
    pub mfa_routes: Vec<RouteRole>,
}

/// The administrators' role when `LATCHKEY_ADMIN_ROLE` is unset.
pub const DEFAULT_ADMIN_ROLE: &str = "Admin";

/// The paths the admin role guards (the admin API's routes).
pub const ADMIN_PATHS: &str = "/admin/*";

impl EdgeConfig {
    /// Every role rule the authorizer enforces: `route_roles`, then the built-in
    /// `* /admin/*=<admin_role>`.
    pub fn role_rules(&self) -> impl Iterator<Item = RouteRole> + '_ {
        let admin = RouteRole { method: "*".to_owned(), path: ADMIN_PATHS.to_owned(), role: self.admin_role.clone() };
        self.route_roles.iter().cloned().chain(std::iter::once(admin))
    }

    /// The rules an access token with `role` and authentication methods `amr` breaks
    /// wherever they match: the role rules of other roles, and the second-factor
    /// routes when `amr` has no second factor.
    pub fn denied_rules<'a>(&'a self, role: &'a str, amr: &[String]) -> impl Iterator<Item = RouteRole> + 'a {
        let without_second_factor = !crate::token::has_second_factor(amr);
        self.role_rules()
            .filter(move |rule| rule.role != role)
            .chain(self.mfa_routes.iter().filter(move |_| without_second_factor).cloned())
    }
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            refresh_delivery: RefreshDelivery::Both,
            csrf_header: "X-Latchkey-CSRF".to_owned(),
            cookie_path: "/refresh-token".to_owned(),
            jwks_max_age_secs: 300,
            required_role: None,
            route_roles: Vec::new(),
            session_check_secs: 30,
            session_check_failure: SessionCheckFailure::Deny,
            admin_role: DEFAULT_ADMIN_ROLE.to_owned(),
            mfa_routes: Vec::new(),
        }
    }
}

impl EdgeConfig {
    /// Reads the edge settings through `get` (unset and empty values are `None`).
    pub(super) fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            allowed_origins: list(get("LATCHKEY_ALLOWED_ORIGINS")).into_iter().map(origin).collect::<Result<_, _>>()?,
            refresh_delivery: match get("LATCHKEY_REFRESH_TOKEN_DELIVERY").as_deref().map(str::trim) {
                None => defaults.refresh_delivery,
                Some("body") => RefreshDelivery::Body,
                Some("cookie") => RefreshDelivery::Cookie,
                Some("both") => RefreshDelivery::Both,
                Some(_) => {
                    return Err(problem("LATCHKEY_REFRESH_TOKEN_DELIVERY", "must be body, cookie or both"));
                }
            },
            csrf_header: match get("LATCHKEY_CSRF_HEADER") {
                None => defaults.csrf_header,
                Some(name) if http::HeaderName::from_bytes(name.trim().as_bytes()).is_ok() => name.trim().to_owned(),
                Some(_) => {
                    return Err(problem("LATCHKEY_CSRF_HEADER", "is not a valid header name"));
                }
            },
            cookie_path: match get("LATCHKEY_COOKIE_PATH") {
                None => defaults.cookie_path,
                Some(path) if path.starts_with('/') && !path.contains([';', ' ', ',']) => path,
                Some(_) => {
                    return Err(problem("LATCHKEY_COOKIE_PATH", "must start with / and hold no ; , or space"));
                }
            },
            jwks_max_age_secs: match get("LATCHKEY_JWKS_MAX_AGE_SECONDS") {
                None => defaults.jwks_max_age_secs,
                Some(raw) => super::parse_in_range("LATCHKEY_JWKS_MAX_AGE_SECONDS", &raw, 0, 86_400)?,
            },
            required_role: get("LATCHKEY_REQUIRED_ROLE").map(|role| role.trim().to_owned()),
            route_roles: list(get("LATCHKEY_ROUTE_ROLES")).into_iter().map(route_role).collect::<Result<_, _>>()?,
            mfa_routes: list(get("LATCHKEY_ROUTE_MFA"))
                .into_iter()
                .map(|route| route_rule("LATCHKEY_ROUTE_MFA", format!("{route}={MFA_REQUIREMENT}")))
                .collect::<Result<_, _>>()?,
            admin_role: match get("LATCHKEY_ADMIN_ROLE").map(|role| role.trim().to_owned()) {
                None => defaults.admin_role.clone(),
                Some(role) if is_role(&role) => role,
                Some(_) => {
                    return Err(problem("LATCHKEY_ADMIN_ROLE", "must be 1-64 characters of A-Z a-z 0-9 _ - : . /"));
                }
            },
            session_check_secs: match get("LATCHKEY_AUTHORIZER_SESSION_CHECK_SECONDS") {
                None => defaults.session_check_secs,
                Some(raw) => super::parse_in_range("LATCHKEY_AUTHORIZER_SESSION_CHECK_SECONDS", &raw, 0, 3600)?,
            },
            session_check_failure: match get("LATCHKEY_AUTHORIZER_SESSION_CHECK_FAILURE").as_deref().map(str::trim) {
                None | Some("deny") => SessionCheckFailure::Deny,
                Some("allow") => SessionCheckFailure::Allow,
                Some(_) => return Err(problem("LATCHKEY_AUTHORIZER_SESSION_CHECK_FAILURE", "must be deny or allow")),
            },
        })
    }
}

pub(super) fn list(raw: Option<String>) -> Vec<String> {
    raw.map(|raw| raw.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// An allowed origin: `https://host[:port]`, or plain `http://` only for
/// `localhost[:port]` (local development; browsers treat it as a secure context,
/// so `Secure` cookies work there). No path, no wildcard.
fn origin(raw: String) -> Result<String, ConfigError> {
    let trimmed = raw.trim_end_matches('/');
    let local_http = trimmed.strip_prefix("http://localhost").is_some_and(|port| {
        port.is_empty()
            || port.strip_prefix(':').is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    let valid = (trimmed.starts_with("https://") || local_http)
        && !trimmed.contains('*')
        && trimmed.splitn(4, '/').count() == 3;
    if !valid {
        return Err(problem(
            "LATCHKEY_ALLOWED_ORIGINS",
            format!(
                "{raw:?} is not an origin like https://app.example.com (no path, no wildcard; plain http only for http://localhost:PORT)"
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

/// One `METHOD /path=role` rule. A rule that could never match (API Gateway's
/// `{proxy+}` syntax, a query, an unknown method) is an error naming it, not a
/// rule silently enforcing nothing.
fn route_role(raw: String) -> Result<RouteRole, ConfigError> {
    route_rule("LATCHKEY_ROUTE_ROLES", raw)
}

/// The requirement a `LATCHKEY_ROUTE_MFA` rule carries in its `role` field: not a
/// role (the role charset has no space), a second factor in `amr`.
pub const MFA_REQUIREMENT: &str = "second factor";

fn route_rule(variable: &'static str, raw: String) -> Result<RouteRole, ConfigError> {
    let bad = |why: &str| problem(variable, format!("{raw:?} is not METHOD /path=role: {why}"));
    let (route, role) = raw.rsplit_once('=').ok_or_else(|| bad("no ="))?;
    let (method, path) = route.trim().split_once(' ').ok_or_else(|| bad("no space between method and path"))?;
    let (method, path, role) = (method.trim().to_ascii_uppercase(), path.trim(), role.trim());
    let method = match method.as_str() {
        "*" | "ANY" => "*".to_owned(),
        known if RULE_METHODS.contains(&known) => method,
        _ => return Err(bad("the method must be *, ANY or one of GET POST PUT PATCH DELETE HEAD OPTIONS")),
    };
    if !path.starts_with('/') {
        return Err(bad("the path must start with /"));
    }
    if path.contains(['{', '}', '?', '#', '%', ' ', '=']) || path.contains("//") {
        return Err(bad("the path must be literal: no {proxy+}, query, %-escape or //; end it in * for a prefix"));
    }
    if path.trim_end_matches('*').contains('*') {
        return Err(bad("* may only end the path"));
    }
    if role.is_empty() {
        return Err(bad("no role"));
    }
    let path = match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed,
        _ => path,
    };
    Ok(RouteRole { method, path: path.to_owned(), role: role.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<EdgeConfig, ConfigError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        EdgeConfig::from_lookup(&|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_are_documented_values() {
        assert_eq!(read(&[]).unwrap(), EdgeConfig::default());
        assert_eq!(EdgeConfig::default().csrf_header, "X-Latchkey-CSRF");
        assert_eq!(EdgeConfig::default().refresh_delivery, RefreshDelivery::Both);
        assert_eq!(EdgeConfig::default().session_check_secs, 30);
        assert_eq!(EdgeConfig::default().session_check_failure, SessionCheckFailure::Deny);
    }

    #[test]
    fn every_edge_variable_is_read() {
        let edge = read(&[
            ("LATCHKEY_ALLOWED_ORIGINS", "https://app.example.com/, http://localhost:5173, http://localhost"),
            ("LATCHKEY_REFRESH_TOKEN_DELIVERY", "cookie"),
            ("LATCHKEY_CSRF_HEADER", "X-Requested-With"),
            ("LATCHKEY_COOKIE_PATH", "/auth"),
            ("LATCHKEY_JWKS_MAX_AGE_SECONDS", "60"),
            ("LATCHKEY_REQUIRED_ROLE", "member"),
            ("LATCHKEY_ROUTE_ROLES", "GET /admin/*=admin, * /billing=billing"),
            ("LATCHKEY_AUTHORIZER_SESSION_CHECK_SECONDS", "0"),
            ("LATCHKEY_AUTHORIZER_SESSION_CHECK_FAILURE", "allow"),
        ])
        .unwrap();
        assert_eq!(edge.allowed_origins, ["https://app.example.com", "http://localhost:5173", "http://localhost"]);
        assert_eq!(edge.refresh_delivery, RefreshDelivery::Cookie);
        assert_eq!(edge.csrf_header, "X-Requested-With");
        assert_eq!(edge.cookie_path, "/auth");
        assert_eq!(edge.jwks_max_age_secs, 60);
        assert_eq!(edge.required_role.as_deref(), Some("member"));
        assert_eq!(edge.route_roles.len(), 2);
        assert_eq!((edge.session_check_secs, edge.session_check_failure), (0, SessionCheckFailure::Allow));
        assert!(edge.route_roles[0].matches("GET", "/admin/users"));
        assert!(!edge.route_roles[0].matches("POST", "/admin/users"));
        assert!(edge.route_roles[1].matches("DELETE", "/billing"));
        assert!(!edge.route_roles[1].matches("DELETE", "/billing/x"));
    }

    #[test]
    fn route_rules_read_any_as_every_method_and_match_every_spelling_of_a_path() {
        let edge = read(&[("LATCHKEY_ROUTE_ROLES", "any /admin*=Admin, delete /orders/=ops")]).unwrap();
        let [admin, orders] = [&edge.route_roles[0], &edge.route_roles[1]];
        assert_eq!((admin.method.as_str(), admin.path.as_str(), admin.role.as_str()), ("*", "/admin*", "Admin"));
        assert_eq!((orders.method.as_str(), orders.path.as_str()), ("DELETE", "/orders"));
        for spelling in ["/admin", "/admin/", "/admin/users", "//admin/users", "/%61dmin/users", "/adm%69n"] {
            assert!(admin.matches("PATCH", spelling), "{spelling}");
        }
        for spelling in ["/orders", "/orders/", "//orders", "/%6Frders", "/orders//"] {
            assert!(orders.matches("delete", spelling), "{spelling}");
        }
        for other in ["/orders/7", "/order", "/ordersx", "/"] {
            assert!(!orders.matches("DELETE", other), "{other}");
        }
        assert!(!orders.matches("GET", "/orders"));
        assert_eq!(normal_path("/"), "/");
        assert_eq!(normal_path("//"), "/");
        assert_eq!(normal_path("/a%2Fb/"), "/a/b");
    }

    #[test]
    fn bad_edge_values_name_their_variable() {
        for (name, value) in [
            ("LATCHKEY_ALLOWED_ORIGINS", "*"),
            ("LATCHKEY_ALLOWED_ORIGINS", "https://app.example.com/path"),
            ("LATCHKEY_ALLOWED_ORIGINS", "app.example.com"),
            ("LATCHKEY_ALLOWED_ORIGINS", "http://app.example.com"),
            ("LATCHKEY_ALLOWED_ORIGINS", "http://127.0.0.1:5173"),
            ("LATCHKEY_ALLOWED_ORIGINS", "http://localhost.evil.example"),
            ("LATCHKEY_ALLOWED_ORIGINS", "http://localhost:"),
            ("LATCHKEY_ALLOWED_ORIGINS", "http://localhost:80x"),
            ("LATCHKEY_REFRESH_TOKEN_DELIVERY", "header"),
            ("LATCHKEY_CSRF_HEADER", "bad header"),
            ("LATCHKEY_COOKIE_PATH", "refresh"),
            ("LATCHKEY_JWKS_MAX_AGE_SECONDS", "86401"),
            ("LATCHKEY_AUTHORIZER_SESSION_CHECK_SECONDS", "3601"),
            ("LATCHKEY_AUTHORIZER_SESSION_CHECK_FAILURE", "open"),
            ("LATCHKEY_ROUTE_ROLES", "/admin=admin"),
            ("LATCHKEY_ROUTE_ROLES", "GET /admin"),
            ("LATCHKEY_ROUTE_ROLES", "ANY /admin/{proxy+}=admin"),
            ("LATCHKEY_ROUTE_ROLES", "GET /admin?x=1=admin"),
            ("LATCHKEY_ROUTE_ROLES", "GET /a%64min=admin"),
            ("LATCHKEY_ROUTE_ROLES", "GET //admin=admin"),
            ("LATCHKEY_ROUTE_ROLES", "GET /*/users=admin"),
            ("LATCHKEY_ROUTE_ROLES", "FETCH /admin=admin"),
            ("LATCHKEY_ROUTE_ROLES", "GET admin=admin"),
            ("LATCHKEY_ROUTE_ROLES", "GET /admin="),
        ] {
            let error = read(&[(name, value)]).unwrap_err();
            assert_eq!(error.variable, name, "{name}={value}");
        }
    }
}
