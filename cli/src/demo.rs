//! The demo single-page app of `latchkey dev --app-port`: `clients/browser`'s client
//! and demo page, served from their own origin (another port of `localhost`), so the
//! browser meets the API cross-origin but same-site, as a deployed app on a sibling
//! subdomain of the API does.

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, header};

/// The browser client, as apps import it.
pub const CLIENT: &str = include_str!("../../clients/browser/latchkey.js");
/// The demo page; `__LATCHKEY_API__` stands for the API's origin.
pub const PAGE: &str = include_str!("../../clients/browser/demo/index.html");

/// `GET /` (the page, told where the API is) and `GET /latchkey.js`.
pub fn router(api_origin: &str) -> Router {
    let page = PAGE.replace("__LATCHKEY_API__", api_origin);
    Router::new()
        .route("/", get(move || async move { with_type(page, "text/html; charset=utf-8") }))
        .route("/latchkey.js", get(|| async { with_type(CLIENT.to_owned(), "text/javascript; charset=utf-8") }))
        .fallback(|| async {
            (http::StatusCode::NOT_FOUND, with_type("Not Found".to_owned(), "text/plain; charset=utf-8"))
        })
}

fn with_type(body: String, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
