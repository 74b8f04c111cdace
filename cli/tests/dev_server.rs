//! `latchkey dev` as a newcomer meets it: the binary started on an ephemeral
//! port, driven over real HTTP, and its printed curl sequence run as printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../shared/tests/support/totp.rs"]
mod totp;

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
    // In scripts/test's delegated pass the server signs with a period key, which the
    // CLI checks as the JWKS lists it, bounded by its period.
    let delegated = std::env::var("LATCHKEY_SIGNING").is_ok_and(|mode| mode == "delegated");
    let kid = printed["header"]["kid"].as_str().unwrap().to_owned();
    assert_eq!(kid.starts_with("d1."), delegated, "{kid}");
    let said = String::from_utf8_lossy(&verified.stderr);
    assert_eq!(said.contains("signed by a period key"), delegated, "{said}");
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

/// The admin API through `latchkey dev` (behind the real authorizer), and the user
/// sessions routes: each rule of the admin API with the request that breaks it.
#[tokio::test]
async fn admin_api_and_session_routes_keep_their_rules_over_http() {
    let dev = start(&["--user", "root@example.com:root passphrase 1:Admin"], &[]);
    let http = Http::new();
    let url = |path: &str| format!("{}{path}", dev.base);
    let login = |email: &'static str, password: &'static str| {
        let http = &http;
        let url = url("/login");
        async move {
            let (status, tokens) =
                http.call("POST", &url, &[], Some(json!({"email": email, "password": password}))).await;
            assert_eq!(status, 200, "{email}: {tokens}");
            format!("Bearer {}", tokens["accessToken"].as_str().unwrap())
        }
    };
    let root = login("root@example.com", "root passphrase 1").await;
    let member = login("demo@example.com", "correct horse battery staple").await;
    let call = |method: &'static str, path: String, bearer: &str, body: Option<Value>| {
        let (http, url, bearer) = (&http, url(&path), bearer.to_owned());
        async move { http.call(method, &url, &[("authorization", &bearer)], body).await }
    };

    // Role: a member is denied by the authorizer before the function runs.
    assert_eq!(call("GET", "/admin/users".into(), &member, None).await.0, 403);
    assert_eq!(http.call("GET", &url("/admin/users"), &[], None).await.0, 401);

    // Pages with a tamper-evident cursor.
    for n in 0..3 {
        let body = json!({"email": format!("page{n}@example.com"), "password": "a long passphrase"});
        let (status, created) = call("POST", "/admin/users".into(), &root, Some(body)).await;
        assert_eq!((status, created["invited"].as_bool()), (201, Some(false)), "{created}");
    }
    let (status, first) = call("GET", "/admin/users?limit=2&emailPrefix=page".into(), &root, None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["users"].as_array().unwrap().len(), 2);
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let (_, second) = call("GET", format!("/admin/users?limit=2&emailPrefix=page&cursor={cursor}"), &root, None).await;
    assert_eq!(second["users"][0]["email"], "page2@example.com");
    assert_eq!(second["nextCursor"], Value::Null);
    let mut altered = cursor.clone().into_bytes();
    altered[1] = if altered[1] == b'x' { b'y' } else { b'x' };
    let altered = String::from_utf8(altered).unwrap();
    let (status, refused) = call("GET", format!("/admin/users?emailPrefix=page&cursor={altered}"), &root, None).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_cursor")));
    let (status, _) = call("GET", format!("/admin/users?emailPrefix=pag&cursor={cursor}"), &root, None).await;
    assert_eq!(status, 400, "a cursor is bound to its prefix");

    // Bad input: 400 with a code, never a partial write.
    for body in [
        json!({"email": "x@example.com", "password": "a long passphrase", "admin": true}),
        json!({"email": "not an email", "password": "a long passphrase"}),
        json!({"email": "x@example.com", "role": "Bad Role"}),
        json!({"email": "x@example.com", "password": "short"}),
    ] {
        let (status, answer) = call("POST", "/admin/users".into(), &root, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    let (_, none) = call("GET", "/admin/users?emailPrefix=x%40".into(), &root, None).await;
    assert_eq!(none["users"].as_array().unwrap().len(), 0, "a refused create wrote nothing");
    assert_eq!(call("GET", "/admin/users?limit=0".into(), &root, None).await.0, 400);

    // The last admin cannot be demoted, disabled or deleted.
    let (_, listed) = call("GET", "/admin/users?emailPrefix=root".into(), &root, None).await;
    let root_id = listed["users"][0]["id"].as_str().unwrap().to_owned();
    for (method, body) in
        [("PATCH", Some(json!({"role": "member"}))), ("PATCH", Some(json!({"disabled": true}))), ("DELETE", None)]
    {
        let (status, answer) = call(method, format!("/admin/users/{root_id}"), &root, body).await;
        assert_eq!((status, answer["error"].as_str()), (409, Some("last_admin")), "{method}");
    }
    let (status, unknown) = call("PATCH", format!("/admin/users/{root_id}"), &root, Some(json!({"rol": "x"}))).await;
    assert_eq!(status, 400, "unknown field: {unknown}");

    // A member's sessions, seen and ended by an admin; IDOR on the user routes.
    let (_, demo) = call("GET", "/admin/users?emailPrefix=demo".into(), &root, None).await;
    let demo_id = demo["users"][0]["id"].as_str().unwrap().to_owned();
    let (status, sessions) = call("GET", format!("/admin/users/{demo_id}/sessions"), &root, None).await;
    assert_eq!(status, 200, "{sessions}");
    let demo_session = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    let (status, mine) = call("GET", "/sessions".into(), &root, None).await;
    assert_eq!(status, 200, "{mine}");
    let root_session = mine["sessions"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(mine["sessions"][0]["current"], true);
    // Another user's session through the user route: the same 404 as an unknown id.
    assert_eq!(call("DELETE", format!("/sessions/{demo_session}"), &root, None).await.0, 404);
    assert_eq!(call("DELETE", format!("/sessions/{root_session}"), &member, None).await.0, 404);
    assert_eq!(call("DELETE", "/sessions/not-a-session".into(), &member, None).await.0, 404);
    assert_eq!(call("GET", "/me".into(), &member, None).await.0, 200, "nothing of the member's ended");
    // Through the admin route, under the wrong user: 404.
    assert_eq!(call("DELETE", format!("/admin/users/{root_id}/sessions/{demo_session}"), &root, None).await.0, 404);
    assert_eq!(call("DELETE", format!("/admin/users/{demo_id}/sessions/{demo_session}"), &root, None).await.0, 204);
    let (_, after) = call("GET", format!("/admin/users/{demo_id}/sessions"), &root, None).await;
    assert!(after["sessions"].as_array().unwrap().iter().all(|s| s["id"] != demo_session.as_str()));

    // Promote the member, then the old admin may step down; the demoted one is refused
    // at once (stored role), even with a token that still says Admin.
    let (status, promoted) =
        call("PATCH", format!("/admin/users/{demo_id}"), &root, Some(json!({"role": "Admin"}))).await;
    assert_eq!((status, promoted["role"].as_str()), (200, Some("Admin")));
    let (status, _) = call("PATCH", format!("/admin/users/{root_id}"), &root, Some(json!({"role": "member"}))).await;
    assert_eq!(status, 200);
    let (status, answer) = call("GET", "/admin/users".into(), &root, None).await;
    assert_eq!((status, answer["error"].as_str()), (403, Some("forbidden")), "{answer}");
    // Deleting frees the email.
    let fresh = login("demo@example.com", "correct horse battery staple").await;
    assert_eq!(call("DELETE", format!("/admin/users/{root_id}"), &fresh, None).await.0, 204);
    assert_eq!(call("GET", format!("/admin/users/{root_id}"), &fresh, None).await.0, 404);
    let again = json!({"email": "root@example.com", "password": "a new passphrase"});
    assert_eq!(call("POST", "/admin/users".into(), &fresh, Some(again)).await.0, 201, "the email is free");
    let (status, _) = http
        .call("POST", &url("/login"), &[], Some(json!({"email": "root@example.com", "password": "root passphrase 1"})))
        .await;
    assert_eq!(status, 401, "the deleted account's password is gone with it");
}

/// `latchkey api`: the operator CLI over HTTP, through the admin API of a running
/// `latchkey dev`, signed in as an administrator; a member is refused.
#[test]
fn the_operator_cli_manages_users_over_http_as_an_administrator() {
    let dev = start(&["--user", "root@example.com:root passphrase 1:Admin"], &[]);
    let as_root = |args: &[&str], stdin: &str| {
        let mut all = vec!["api", "--url", dev.base.as_str(), "--email", "root@example.com", "--password-stdin"];
        all.extend_from_slice(args);
        common::latchkey(&all, &[], Some(&format!("root passphrase 1\n{stdin}")))
    };
    let created =
        common::ok(&as_root(&["create", "ops@example.com", "--role", "ops", "--with-password"], "ops passphrase 1\n"));
    assert!(created.starts_with("created ops@example.com\t"), "{created}");
    let listed = common::ok(&as_root(&["users"], ""));
    let emails: Vec<&str> = listed.lines().map(|line| line.split('\t').next().unwrap()).collect();
    assert_eq!(emails, ["demo@example.com", "ops@example.com", "root@example.com"], "{listed}");
    let ops_id = listed.lines().find(|l| l.starts_with("ops@")).unwrap().split('\t').nth(1).unwrap().to_owned();
    assert!(common::ok(&as_root(&["disable", &ops_id], "")).ends_with("\tdisabled\n"));
    let root_id = listed.lines().find(|l| l.starts_with("root@")).unwrap().split('\t').nth(1).unwrap().to_owned();
    let refused = as_root(&["set-role", &root_id, "member"], "");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("409 last_admin"), "{refused:?}");
    let member = common::latchkey(
        &["api", "--url", &dev.base, "--email", "demo@example.com", "--password-stdin", "users"],
        &[],
        Some("correct horse battery staple\n"),
    );
    assert!(!member.status.success());
    assert!(String::from_utf8_lossy(&member.stderr).contains("403"), "{member:?}");
    common::ok(&as_root(&["delete", &ops_id], ""));
    assert!(!common::ok(&as_root(&["users", "--prefix", "ops"], "")).contains("ops@"));
}

/// The whole second factor over HTTP: enrol and confirm, the two-step login with a
/// code computed independently, `amr` through refresh and in the authorizer's
/// context, a route that requires it (403, then a step-up), replay, recovery codes,
/// removal, and an administrator's reset.
#[tokio::test]
async fn the_second_factor_works_end_to_end_over_http() {
    let dev = start(&["--user", "root@example.com:root passphrase 1:Admin"], &[("LATCHKEY_ROUTE_MFA", "GET /me")]);
    let http = Http::new();
    let url = |path: &str| format!("{}{path}", dev.base);
    let demo = json!({"email": "demo@example.com", "password": "correct horse battery staple"});
    let bearer = |tokens: &Value| format!("Bearer {}", tokens["accessToken"].as_str().unwrap());
    let claims = |tokens: &Value| {
        let payload = tokens["accessToken"].as_str().unwrap().split('.').nth(1).unwrap().to_owned();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    };
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();

    // A password-only session: amr pwd, denied on the route that needs a second factor.
    let (status, tokens) = http.call("POST", &url("/login"), &[], Some(demo.clone())).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims(&tokens)["amr"], json!(["pwd"]));
    let signed_in = bearer(&tokens);
    assert_eq!(http.call("GET", &url("/me"), &[("authorization", &signed_in)], None).await.0, 403);

    // A token whose session has ended changes no second factor (the function checks
    // the session itself, whatever an authorizer's cache says).
    let (_, ended) = http.call("POST", &url("/login"), &[], Some(demo.clone())).await;
    let ended = bearer(&ended);
    assert_eq!(http.call("POST", &url("/logout"), &[("authorization", &ended)], None).await.0, 204);
    let (status, refused) = http.call("POST", &url("/mfa/totp"), &[("authorization", &ended)], None).await;
    assert_eq!((status, refused["error"].as_str()), (401, Some("invalid_token")), "{refused}");

    // Enrol: the secret, its URI and QR code; confirmation with an independent code.
    let (status, enrolment) = http.call("POST", &url("/mfa/totp"), &[("authorization", &signed_in)], None).await;
    assert_eq!(status, 200, "{enrolment}");
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    assert!(enrolment["otpauthUri"].as_str().unwrap().contains(&secret));
    assert!(enrolment["qrSvg"].as_str().unwrap().contains("<svg"));
    let wrong = json!({"password": "correct horse battery staple", "code": "000000"});
    let (status, refused) =
        http.call("POST", &url("/mfa/totp/confirm"), &[("authorization", &signed_in)], Some(wrong)).await;
    assert_eq!((status, refused["error"].as_str()), (401, Some("invalid_code")));
    // One instant for the confirmation and the replay below, so a step boundary
    // between them cannot turn the replay into a fresh code.
    let confirmed_at = now();
    let code = json!({"password": "correct horse battery staple", "code": totp::totp_code(&secret, confirmed_at)});
    let (status, confirmed) =
        http.call("POST", &url("/mfa/totp/confirm"), &[("authorization", &signed_in)], Some(code)).await;
    assert_eq!(status, 200, "{confirmed}");
    let recovery: Vec<String> =
        confirmed["recoveryCodes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(recovery.len(), 10);

    // Two steps: the password gives an mfaToken and no tokens; the token is no access token.
    let (status, challenge) = http.call("POST", &url("/login"), &[], Some(demo.clone())).await;
    assert_eq!(status, 200, "{challenge}");
    assert_eq!((challenge["mfaRequired"].as_bool(), challenge.get("accessToken")), (Some(true), None));
    let mfa_token = challenge["mfaToken"].as_str().unwrap().to_owned();
    let as_bearer = format!("Bearer {mfa_token}");
    assert_eq!(http.call("GET", &url("/me"), &[("authorization", &as_bearer)], None).await.0, 401);
    assert_eq!(http.call("GET", &url("/sessions"), &[("authorization", &as_bearer)], None).await.0, 401);
    // The code confirmed above was of this step: a replay is refused, the next step's is not.
    let replay = json!({"mfaToken": mfa_token, "code": totp::totp_code(&secret, confirmed_at)});
    let (status, refused) = http.call("POST", &url("/login/mfa"), &[], Some(replay)).await;
    assert_eq!((status, refused["error"].as_str()), (401, Some("invalid_code")), "{refused}");
    let next = json!({"mfaToken": mfa_token, "code": totp::totp_code(&secret, confirmed_at + 30)});
    let (status, tokens) = http.call("POST", &url("/login/mfa"), &[], Some(next.clone())).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims(&tokens)["amr"], json!(["pwd", "otp"]));
    let (status, me) = http.call("GET", &url("/me"), &[("authorization", &bearer(&tokens))], None).await;
    assert_eq!((status, me["amr"].as_str()), (200, Some("pwd otp")), "{me}");
    let (_, used) = http.call("POST", &url("/login/mfa"), &[], Some(next)).await;
    assert_eq!(used["error"], "invalid_mfa_token", "single use");
    // amr survives the refresh.
    let refresh = json!({"refreshToken": tokens["refreshToken"]});
    let (status, refreshed) = http.call("POST", &url("/refresh-token"), &[], Some(refresh)).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(claims(&refreshed)["amr"], json!(["pwd", "otp"]));

    // A recovery code signs in once, with mfa in amr.
    let (_, challenge) = http.call("POST", &url("/login"), &[], Some(demo.clone())).await;
    let body = json!({"mfaToken": challenge["mfaToken"], "recoveryCode": recovery[0].to_uppercase()});
    let (status, tokens) = http.call("POST", &url("/login/mfa"), &[], Some(body)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims(&tokens)["amr"], json!(["pwd", "mfa"]));
    assert_eq!(http.call("GET", &url("/me"), &[("authorization", &bearer(&tokens))], None).await.0, 200);
    let (_, challenge) = http.call("POST", &url("/login"), &[], Some(demo.clone())).await;
    let body = json!({"mfaToken": challenge["mfaToken"], "recoveryCode": recovery[0]});
    assert_eq!(http.call("POST", &url("/login/mfa"), &[], Some(body)).await.1["error"], "invalid_code");

    // Removal needs the password and a code; then an administrator can reset a re-enrolment.
    let signed_in = bearer(&tokens);
    let body = json!({"password": "wrong password", "recoveryCode": recovery[1]});
    let (status, _) = http.call("DELETE", &url("/mfa/totp"), &[("authorization", &signed_in)], Some(body)).await;
    assert_eq!(status, 401);
    let body = json!({"password": "correct horse battery staple", "recoveryCode": recovery[1]});
    let (status, removed) = http.call("DELETE", &url("/mfa/totp"), &[("authorization", &signed_in)], Some(body)).await;
    assert_eq!(status, 204, "{removed}");
    let (_, tokens) = http.call("POST", &url("/login"), &[], Some(demo.clone())).await;
    assert_eq!(claims(&tokens)["amr"], json!(["pwd"]), "the password alone again");
    let (_, enrolment) = http.call("POST", &url("/mfa/totp"), &[("authorization", &bearer(&tokens))], None).await;
    let code = json!({"password": "correct horse battery staple", "code": totp::totp_code(enrolment["secret"].as_str().unwrap(), now())});
    let (status, _) =
        http.call("POST", &url("/mfa/totp/confirm"), &[("authorization", &bearer(&tokens))], Some(code)).await;
    assert_eq!(status, 200);
    let (_, root) = http
        .call("POST", &url("/login"), &[], Some(json!({"email": "root@example.com", "password": "root passphrase 1"})))
        .await;
    let demo_id = claims(&tokens)["sub"].as_str().unwrap().to_owned();
    let reset = url(&format!("/admin/users/{demo_id}/mfa"));
    let (status, shown) =
        http.call("GET", &url(&format!("/admin/users/{demo_id}")), &[("authorization", &bearer(&root))], None).await;
    assert_eq!((status, shown["mfaEnabled"].as_bool()), (200, Some(true)), "{shown}");
    assert_eq!(http.call("DELETE", &reset, &[("authorization", &bearer(&root))], None).await.0, 204);
    assert_eq!(
        http.call("DELETE", &reset, &[("authorization", &bearer(&root))], None).await.1["error"],
        "mfa_not_enabled"
    );
    let (_, tokens) = http.call("POST", &url("/login"), &[], Some(demo)).await;
    assert!(tokens["accessToken"].is_string(), "reset: the password alone again: {tokens}");

    // The operator CLI signs in an administrator with a second factor: a code is needed.
    let (_, enrolment) = http.call("POST", &url("/mfa/totp"), &[("authorization", &bearer(&root))], None).await;
    let code =
        json!({"password": "root passphrase 1", "code": totp::totp_code(enrolment["secret"].as_str().unwrap(), now())});
    let (_, confirmed) =
        http.call("POST", &url("/mfa/totp/confirm"), &[("authorization", &bearer(&root))], Some(code)).await;
    let recovery = confirmed["recoveryCodes"][0].as_str().unwrap().to_owned();
    let operator = |extra: &[&str]| {
        let mut args = vec!["api", "--url", dev.base.as_str(), "--email", "root@example.com", "--password-stdin"];
        args.extend_from_slice(extra);
        common::latchkey(&args, &[], Some("root passphrase 1\n"))
    };
    let refused = operator(&["users"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("pass --code"), "{refused:?}");
    let listed = common::ok(&operator(&["--code", &recovery, "users"]));
    assert!(listed.contains("demo@example.com"), "{listed}");
    let again = operator(&["--code", &recovery, "reset-mfa", &demo_id]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("invalid_code"), "a recovery code works once: {again:?}");
}
