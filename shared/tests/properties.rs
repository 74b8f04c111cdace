//! Property tests (proptest) of the parsers and matchers that meet untrusted
//! input: the refresh-token parser, the refresh cookie, the CSRF origin check and
//! the authorizer's route rules. Each property holds for every generated case, not
//! for a hand-picked few; mutation testing (docs/testing.md) checks the rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::{HeaderValue, header};
use lambda_http::{Body, Request};
use latchkey::config::{EdgeConfig, RouteRole, normal_path};
use latchkey::http::{check_cookie_request, refresh_cookie, refresh_cookie_name};
use latchkey::token::{RefreshKey, RefreshToken, SessionId};
use proptest::prelude::*;

fn key() -> RefreshKey {
    RefreshKey::from_bytes(&[7; 32])
}

fn session_id(bytes: [u8; 16]) -> SessionId {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes).parse().unwrap()
}

fn request_with(name: header::HeaderName, values: &[String]) -> Request {
    let mut request = Request::new(Body::Empty);
    for value in values {
        request.headers_mut().append(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    request
}

/// Header-safe text: visible ASCII and spaces, as a browser could send.
fn header_text() -> impl Strategy<Value = String> {
    "[ -~]{0,80}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Any string, and any string shaped like a token, is parsed without a panic,
    /// and whatever verifies is exactly what the key mints for it (one spelling).
    #[test]
    fn the_refresh_token_parser_accepts_only_what_it_minted(
        text in prop_oneof!["\\PC{0,120}", "lk1\\.[A-Za-z0-9_-]{22}\\.[0-9]{1,20}\\.[A-Za-z0-9_-]{43}"],
    ) {
        if let Ok(token) = key().verify(&text) {
            prop_assert_eq!(key().mint(&token), text);
        }
    }

    /// Every token round-trips, and changing any one character of it is refused.
    #[test]
    fn a_minted_token_round_trips_and_no_one_character_change_verifies(
        bytes in any::<[u8; 16]>(),
        generation in any::<u64>(),
        position in any::<prop::sample::Index>(),
        replacement in "[A-Za-z0-9_.=-]",
    ) {
        let token = RefreshToken { session_id: session_id(bytes), generation };
        let minted = key().mint(&token);
        prop_assert!(minted.len() <= 91, "{} bytes", minted.len());
        prop_assert_eq!(key().verify(&minted).unwrap(), token);
        let at = position.index(minted.len());
        let mut changed = minted.clone();
        changed.replace_range(at..=at, &replacement);
        prop_assume!(changed != minted);
        prop_assert!(key().verify(&changed).is_err(), "{} verified", changed);
    }

    /// Among any other cookies, in any header lines, the refresh cookie is found;
    /// two different values are ambiguous, never a silent choice of either.
    #[test]
    fn the_refresh_cookie_is_found_among_others_and_two_values_are_ambiguous(
        others in prop::collection::vec(("[a-z]{1,8}", "[A-Za-z0-9]{0,12}"), 0..6),
        value in "[A-Za-z0-9._-]{1,40}",
        planted in proptest::option::of("[A-Za-z0-9._-]{1,40}"),
        split_lines in any::<bool>(),
        first in any::<bool>(),
    ) {
        let edge = EdgeConfig::default();
        let name = refresh_cookie_name(&edge);
        let mut pairs: Vec<String> = others.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let ours = format!("{name}={value}");
        if first { pairs.insert(0, ours) } else { pairs.push(ours) }
        if let Some(planted) = &planted {
            pairs.insert(0, format!("{name}={planted}"));
        }
        let lines = if split_lines { pairs.clone() } else { vec![pairs.join("; ")] };
        let found = refresh_cookie(&request_with(header::COOKIE, &lines), &edge);
        match planted {
            Some(planted) if planted != value => prop_assert!(found.is_err()),
            _ => prop_assert_eq!(found, Ok(Some(value))),
        }
    }

    /// Arbitrary cookie headers never panic the parser.
    #[test]
    fn any_cookie_header_parses_without_a_panic(lines in prop::collection::vec(header_text(), 0..4)) {
        let _ = refresh_cookie(&request_with(header::COOKIE, &lines), &EdgeConfig::default());
    }

    /// The CSRF origin check passes an `Origin` only when it is byte-for-byte an
    /// allow-listed one: no prefix, suffix, case or port variation slips through.
    #[test]
    fn only_an_exactly_allow_listed_origin_passes_the_cookie_check(
        origin in "https?://[a-zA-Z0-9.-]{1,20}(:[0-9]{1,5})?",
        suffix in "[a-zA-Z0-9./:-]{0,6}",
    ) {
        let allowed = "https://app.example.com".to_owned();
        let edge = EdgeConfig { allowed_origins: vec![allowed.clone()], ..EdgeConfig::default() };
        for candidate in [origin.clone(), format!("{allowed}{suffix}"), allowed.to_uppercase()] {
            let mut request = request_with(header::ORIGIN, std::slice::from_ref(&candidate));
            request.headers_mut().insert("x-latchkey-csrf", HeaderValue::from_static("1"));
            let passed = check_cookie_request(&request, &edge).is_ok();
            prop_assert_eq!(passed, candidate == allowed, "{}", candidate);
        }
    }

    /// A path's normal form is stable, and any way of spelling a path (doubled
    /// slashes, a trailing slash, percent-encoding) meets the rules its plain form meets.
    #[test]
    fn every_spelling_of_a_path_meets_the_rules_of_its_plain_form(
        segments in prop::collection::vec("[a-z0-9]{1,6}", 0..5),
        doubled in any::<prop::sample::Index>(),
        encoded in any::<prop::sample::Index>(),
        trailing in any::<bool>(),
        method in prop::sample::select(vec!["GET", "POST", "DELETE"]),
    ) {
        let plain = format!("/{}", segments.join("/"));
        prop_assert_eq!(normal_path(&normal_path(&plain)), normal_path(&plain));
        let mut spelled = plain.clone();
        let slash = doubled.index(spelled.len());
        if spelled.as_bytes()[slash] == b'/' { spelled.insert(slash, '/'); }
        let at = encoded.index(spelled.len());
        let c = spelled.as_bytes()[at];
        if c.is_ascii_alphanumeric() {
            spelled.replace_range(at..=at, &format!("%{c:02X}"));
        }
        if trailing && !spelled.ends_with('/') { spelled.push('/'); }
        prop_assert_eq!(normal_path(&spelled), normal_path(&plain));
        let rules = [
            RouteRole { method: "*".into(), path: plain.clone(), role: "r".into() },
            RouteRole { method: method.into(), path: format!("{plain}*"), role: "r".into() },
        ];
        for rule in &rules {
            if rule.matches(method, &plain) {
                prop_assert!(rule.matches(method, &spelled), "{} missed {}", rule.path, spelled);
            }
        }
        prop_assert!(rules[0].matches(method, &plain));
    }
}
