//! `latchkey dev` as a newcomer meets it: the binary started on an ephemeral
//! port, driven over real HTTP, and its printed curl sequence run as printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Child, Command, Stdio};

use common::Http;
use serde_json::{Value, json};

/// A running `latchkey dev`; killed when dropped.
struct Dev {
    child: Child,
    base: String,
    banner: Vec<String>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str], env: &[(&str, &str)]) -> Dev {
    let mut command = common::latchkey_command();
    command.args(["dev", "--port", "0"]).args(args).stdout(Stdio::piped()).stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let lines = common::Lines::new(child.stdout.take().unwrap(), std::time::Duration::from_secs(60));
    let first = lines.next_line();
    let base = first.strip_prefix("latchkey dev listening on ").expect(&first).to_owned();
    let mut banner = vec![first];
    // The banner ends with a blank line: after the curl sequence when there is a
    // demo user, else after the user lines.
    loop {
        let line = lines.next_line();
        let done = line.is_empty()
            && (banner.iter().any(|l| l == "Try it:") || !banner.iter().any(|l| l.contains("demo user:")));
        banner.push(line);
        if done {
            break;
        }
    }
    Dev { child, base, banner }
}

#[tokio::test]
async fn dev_server_runs_login_me_refresh_replay_logout_over_http() {
    let dev = start(&[], &[]);
    let http = Http::new();
    let url = |path: &str| format!("{}{path}", dev.base);
    let credentials = json!({"email": "demo@example.com", "password": "correct horse battery staple"});

    let (status, tokens) = http.call("POST", &url("/login"), &[], Some(credentials)).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["accessToken"].as_str().unwrap().to_owned();
    let first = tokens["refreshToken"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");

    let (status, me) = http.call("GET", &url("/me"), &[("authorization", &bearer)], None).await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], "demo@example.com");
    assert_eq!(me["role"], "member");
    assert_eq!(http.call("GET", &url("/me"), &[], None).await.0, 401);
    assert_eq!(http.call("GET", &url("/me"), &[("authorization", "Bearer x.y.z")], None).await.0, 401);

    let (status, rotated) = http.call("POST", &url("/refresh-token"), &[], Some(json!({"refreshToken": first}))).await;
    assert_eq!(status, 200);
    let second = rotated["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second, first);

    // Outside the grace window (set to 0 below), a replay revokes the session.
    drop(dev);
    let dev = start(&[], &[("LATCHKEY_REFRESH_REUSE_GRACE_SECONDS", "0")]);
    let url = |path: &str| format!("{}{path}", dev.base);
    let (_, tokens) = http
        .call(
            "POST",
            &url("/login"),
            &[],
            Some(json!({"email": "demo@example.com", "password": "correct horse battery staple"})),
        )
        .await;
    let first = tokens["refreshToken"].as_str().unwrap().to_owned();
    let (_, rotated) = http.call("POST", &url("/refresh-token"), &[], Some(json!({"refreshToken": first}))).await;
    let second = rotated["refreshToken"].as_str().unwrap().to_owned();
    let (status, refused) = http.call("POST", &url("/refresh-token"), &[], Some(json!({"refreshToken": first}))).await;
    assert_eq!((status, refused["error"].as_str()), (401, Some("invalid_grant")));
    assert_eq!(http.call("POST", &url("/refresh-token"), &[], Some(json!({"refreshToken": second}))).await.0, 401);

    // Logout on live sessions: by bearer it ends that session only; with allSessions
    // it ends every other one too.
    let demo = json!({"email": "demo@example.com", "password": "correct horse battery staple"});
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let (status, tokens) = http.call("POST", &url("/login"), &[], Some(demo.clone())).await;
        assert_eq!(status, 200);
        sessions.push(tokens);
    }
    let refresh_of = |tokens: &Value| json!({"refreshToken": tokens["refreshToken"].as_str().unwrap()});
    let bearer_of = |tokens: &Value| format!("Bearer {}", tokens["accessToken"].as_str().unwrap());
    let bearer = bearer_of(&sessions[0]);
    assert_eq!(http.call("POST", &url("/logout"), &[("authorization", &bearer)], None).await.0, 204);
    assert_eq!(http.call("POST", &url("/logout"), &[("authorization", &bearer)], None).await.0, 204, "idempotent");
    assert_eq!(http.call("POST", &url("/refresh-token"), &[], Some(refresh_of(&sessions[0]))).await.0, 401);
    let (status, live) = http.call("POST", &url("/refresh-token"), &[], Some(refresh_of(&sessions[1]))).await;
    assert_eq!(status, 200, "logging out one session ended another");
    let everywhere = http
        .call("POST", &url("/logout"), &[("authorization", &bearer_of(&live))], Some(json!({"allSessions": true})))
        .await;
    assert_eq!(everywhere.0, 204);
    assert_eq!(http.call("POST", &url("/refresh-token"), &[], Some(refresh_of(&live))).await.0, 401);
    assert_eq!(http.call("POST", &url("/refresh-token"), &[], Some(refresh_of(&sessions[2]))).await.0, 401);
    let (status, jwks) = http.call("GET", &url("/.well-known/jwks.json"), &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
}

#[tokio::test]
async fn me_honours_route_roles_and_extra_users() {
    let dev =
        start(&["--user", "boss@example.com:boss-password-1:admin"], &[("LATCHKEY_ROUTE_ROLES", "GET /me=admin")]);
    let http = Http::new();
    let url = |path: &str| format!("{}{path}", dev.base);
    for (email, password, expected) in
        [("demo@example.com", "correct horse battery staple", 403), ("boss@example.com", "boss-password-1", 200)]
    {
        let (_, tokens) =
            http.call("POST", &url("/login"), &[], Some(json!({"email": email, "password": password}))).await;
        let bearer = format!("Bearer {}", tokens["accessToken"].as_str().unwrap());
        assert_eq!(http.call("GET", &url("/me"), &[("authorization", &bearer)], None).await.0, expected, "{email}");
    }
    assert!(dev.banner.iter().any(|line| line.contains("boss@example.com (role admin)")));
    assert!(!dev.banner.iter().any(|line| line.contains("boss-password-1")), "a --user password was echoed");
}

#[test]
fn printed_curl_sequence_works_as_printed() {
    let dev = start(&[], &[]);
    let start_at = dev.banner.iter().position(|line| line == "Try it:").expect("a curl sequence");
    let script: Vec<&str> =
        dev.banner[start_at + 1..].iter().map(String::as_str).take_while(|line| !line.is_empty()).collect();
    assert_eq!(script.len(), 6, "{script:?}");
    let output = Command::new("bash").args(["-euc", &script.join("\n")]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let me: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(me["email"], "demo@example.com");
    let refreshed: Value = serde_json::from_str(lines[1]).unwrap();
    assert!(refreshed["accessToken"].is_string() && refreshed["refreshToken"].is_string());
    assert_eq!(lines[2], "204");
}

#[test]
fn bad_user_flag_fails_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["dev", "--port", "0", "--user", ":s3cret-pw"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--user takes email:password[:role]"));
    assert!(!stderr.contains("s3cret-pw"), "the password was echoed");
}

#[test]
fn readme_shows_the_curl_sequence_dev_prints() {
    let dev = start(&[], &[]);
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start_at = dev.banner.iter().position(|line| line == "Try it:").unwrap();
    for line in dev.banner[start_at + 1..].iter().take_while(|line| !line.is_empty()) {
        let as_documented = line.replace(&dev.base, "http://127.0.0.1:3000");
        assert!(readme.contains(&as_documented), "README lacks: {as_documented}");
    }
}

#[tokio::test]
async fn token_decode_and_verify_explain_a_token() {
    let dev = start(&[], &[]);
    let http = Http::new();
    let credentials = json!({"email": "demo@example.com", "password": "correct horse battery staple"});
    let (_, tokens) = http.call("POST", &format!("{}/login", dev.base), &[], Some(credentials)).await;
    let token = tokens["accessToken"].as_str().unwrap().to_owned();
    let (_, jwks) = http.call("GET", &format!("{}/.well-known/jwks.json", dev.base), &[], None).await;
    let latchkey = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_latchkey")).args(args).env("LATCHKEY_JWKS", jwks.to_string()).output().unwrap()
    };

    let decoded = latchkey(&["token", "decode", &token]);
    assert!(decoded.status.success());
    let printed: Value = serde_json::from_slice(&decoded.stdout).unwrap();
    assert_eq!(printed["claims"]["email"], "demo@example.com");
    assert!(String::from_utf8_lossy(&decoded.stderr).contains("NOT verified"));

    let verified = latchkey(&["token", "verify", &token]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    let mut tampered = token.clone();
    tampered.push('x');
    let refused = latchkey(&["token", "verify", &tampered]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("invalid token:"));
}

#[test]
fn load_storm_leaves_one_successor_and_the_steady_rows_count_requests() {
    let dev = start(&[], &[]);
    let run = |workload: &str| {
        let args = ["load", "--url", dev.base.as_str(), "--workload", workload, "--clients", "4", "--seconds", "1"];
        common::ok(&common::latchkey(&args, &[], None))
    };
    let storm = run("storm");
    assert!(storm.lines().any(|line| line == "| 4 | 4 | 0 | 1 | 200 |"), "{storm}");
    for workload in ["authorize", "refresh"] {
        let printed = run(workload);
        let row = printed.lines().find(|line| line.starts_with("| 4 |")).expect(&printed);
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let rate: f64 = cells[2].parse().expect(row);
        assert!(rate > 0.0 && cells[5] == "0", "{workload}: {row}");
    }
}

/// A page on another site that rebinds its DNS name to 127.0.0.1 reaches the port,
/// but its requests name that site in `Host`: refused (421) before any handler, so
/// no password guess or token request gets through. Loopback names pass.
#[tokio::test]
async fn requests_addressed_to_another_host_are_refused() {
    let dev = start(&[], &[]);
    let http = Http::new();
    let port = dev.base.rsplit(':').next().unwrap();
    let credentials = json!({"email": "demo@example.com", "password": "correct horse battery staple"});
    let url = format!("{}/login", dev.base);
    let rebound = format!("rebound.example:{port}");
    let (status, body) = http.call("POST", &url, &[("host", &rebound)], Some(credentials.clone())).await;
    assert_eq!(status, 421, "{body}");
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        assert_eq!(http.call("POST", &url, &[("host", &host)], Some(credentials.clone())).await.0, 200, "{host}");
    }
}

/// `GET /` points a person somewhere useful: the routes and the curl sequence, as
/// JSON for tools and as a page for browsers.
#[tokio::test]
async fn the_root_lists_the_routes_and_the_curl_sequence() {
    let dev = start(&[], &[]);
    let http = Http::new();
    let (status, body) = http.call("GET", &format!("{}/", dev.base), &[], None).await;
    assert_eq!(status, 200);
    assert!(body["routes"].as_array().unwrap().iter().any(|r| r == "POST /login"), "{body}");
    let curl = body["try"].as_array().unwrap();
    assert!(curl[0].as_str().unwrap().contains(&format!("{}/login", dev.base)), "{body}");
    let printed: Vec<&String> = dev.banner.iter().filter(|line| line.contains("curl ")).collect();
    assert_eq!(printed.len(), curl.iter().filter(|line| line.as_str().unwrap().contains("curl ")).count());
}
