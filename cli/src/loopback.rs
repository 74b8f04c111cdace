//! The local servers answer only requests addressed to them by a loopback name:
//! a page on another site that rebinds its own DNS name to 127.0.0.1 can make the
//! browser connect here, but its requests then carry that name in `Host`.

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use http::{StatusCode, header};

/// `router`, refusing with `421 Misdirected Request` any request whose `Host` is not
/// `127.0.0.1`, `localhost` or `[::1]` with `port` (or without a port).
pub fn only_loopback_hosts(router: Router, port: u16) -> Router {
    router.layer(middleware::from_fn(move |request: Request, next: Next| async move {
        let host = request.headers().get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("");
        if is_loopback_host(host, port) {
            next.run(request).await
        } else {
            let body =
                serde_json::json!({"message": "Misdirected Request: address this server as 127.0.0.1 or localhost"});
            let mut response = (StatusCode::MISDIRECTED_REQUEST, body.to_string()).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
            response
        }
    }))
}

/// Whether `host` (a `Host` header) names this machine's loopback on `port`.
pub fn is_loopback_host(host: &str, port: u16) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, given)) if !name.ends_with('[') && !given.ends_with(']') => {
            if given != port.to_string() {
                return false;
            }
            name
        }
        _ => host,
    };
    matches!(name.to_ascii_lowercase().as_str(), "127.0.0.1" | "localhost" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn only_loopback_names_on_this_port_are_this_server() {
        for host in ["127.0.0.1:3000", "localhost:3000", "LOCALHOST:3000", "[::1]:3000", "localhost", "127.0.0.1"] {
            assert!(is_loopback_host(host, 3000), "{host}");
        }
        for host in
            ["evil.example:3000", "evil.example", "127.0.0.1:3001", "localhost.evil.example:3000", "", "[::1]:80"]
        {
            assert!(!is_loopback_host(host, 3000), "{host}");
        }
    }
}
