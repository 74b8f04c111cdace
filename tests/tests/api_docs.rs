//! `docs/api.md` and `docs/openapi.yaml` name exactly the routes and error codes the
//! code has. (Each sample event's answer is checked against the OpenAPI statuses in
//! `events.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use latchkey::http::{ApiError, ROUTES};
use latchkey_tests::openapi;

#[test]
fn openapi_has_exactly_the_served_routes() {
    let spec = openapi();
    let mut documented = BTreeSet::new();
    for (path, operations) in spec["paths"].as_mapping().unwrap() {
        for (method, _) in operations.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if method != "parameters" {
                documented.insert(format!("{} {}", method.to_uppercase(), path.as_str().unwrap()));
            }
        }
    }
    let served: BTreeSet<String> = ROUTES.iter().map(|route| (*route).to_owned()).collect();
    assert_eq!(documented, served);
}

#[test]
fn openapi_error_codes_are_the_codes_of_api_error() {
    let spec = openapi();
    let codes: BTreeSet<&str> = spec["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    assert_eq!(codes, ApiError::CODES.into_iter().collect());
}

#[test]
fn api_md_names_every_route_and_error_code() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
    for route in ROUTES {
        assert!(text.contains(&format!("`{route}`")), "docs/api.md lacks {route}");
    }
    for code in ApiError::CODES {
        assert!(text.contains(&format!("`{code}`")), "docs/api.md lacks {code}");
    }
}
