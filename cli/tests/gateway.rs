//! `latchkey gateway` and `latchkey invoke` on what `sam build` made: the real
//! bootstraps in `.aws-sam/build`, each under the gateway's Lambda Runtime API,
//! behind template.yaml's HTTP API as SAM's translator renders it, storage and keys
//! on moto. `scripts/test` runs `sam build` before these tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../shared/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{Http, latchkey, latchkey_command, ok};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `.aws-sam/build`, or `None` (skip) outside CI when `sam build` has not run.
fn built() -> Option<PathBuf> {
    let dir = root().join(".aws-sam/build");
    if dir.join("LoginFunction/bootstrap").is_file() {
        return Some(dir);
    }
    if support::in_ci() {
        panic!("{} has no built functions: scripts/test runs `sam build` first", dir.display());
    }
    support::skipped("no .aws-sam/build; run scripts/test (it runs sam build)");
    None
}

/// A fresh table and keys on moto for one test, made by `latchkey setup`, and the
/// variables it printed.
async fn fresh_stack(sample_data: bool) -> Option<Vec<(String, String)>> {
    support::moto_kms().await?;
    let name = support::unique_name("gw");
    let mut args = vec!["setup", "--alias-prefix", name.as_str()];
    if sample_data {
        args.push("--sample-data");
    }
    let output = latchkey(&args, &[("LATCHKEY_TABLE_NAME".into(), name.clone())], None);
    let printed = ok(&output);
    Some(
        printed
            .lines()
            .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

fn add_user(env: &[(String, String)], email: &str, password: &str, role: &str) {
    ok(&latchkey(&["user", "add", "--email", email, "--role", role, "--password-stdin"], env, Some(password)));
}

/// A running `latchkey gateway`; killed when dropped.
struct Gateway {
    child: Child,
    base: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_gateway(args: &[&str], env: &[(String, String)]) -> Gateway {
    let mut child = latchkey_command()
        .current_dir(root())
        .args(["gateway", "--port", "0"])
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = common::Lines::new(child.stdout.take().unwrap(), std::time::Duration::from_secs(120));
    let first = lines.next_line();
    let base = first.strip_prefix("latchkey gateway listening on ").expect(&first).to_owned();
    Gateway { child, base }
}

/// template.yaml with `edit` applied, translated by SAM's translator with these
/// parameters, written where `--translated` can read it.
fn translated(edit: impl Fn(String) -> String, parameters: &[&str]) -> PathBuf {
    let source = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let dir = std::env::temp_dir().join(support::unique_name("gateway-template"));
    std::fs::create_dir_all(&dir).unwrap();
    let template = dir.join("template.yaml");
    let edited = edit(source.clone());
    assert_ne!(edited, source, "the edit changed nothing");
    std::fs::write(&template, edited).unwrap();
    let output = Command::new(root().join("scripts/sam-translate")).arg(&template).args(parameters).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let path = dir.join("translated.json");
    std::fs::write(&path, output.stdout).unwrap();
    path
}

struct Api {
    http: Http,
    base: String,
}

impl Api {
    fn new(base: &str) -> Self {
        Self { http: Http::new(), base: base.to_owned() }
    }

    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> (u16, Value) {
        self.http.call(method, &format!("{}{path}", self.base), headers, body).await
    }

    async fn login(&self, email: &str, password: &str) -> Value {
        let (status, body) =
            self.call("POST", "/login", &[], Some(json!({"email": email, "password": password}))).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn get(&self, path: &str, access: &str) -> (u16, Value) {
        self.call("GET", path, &[("authorization", &format!("Bearer {access}"))], None).await
    }
}

#[tokio::test]
async fn built_functions_serve_login_me_refresh_logout_through_the_gateway() {
    let Some(functions) = built() else { return };
    let Some(env) = fresh_stack(false).await else { return };
    add_user(&env, "ada@example.com", "a long enough passphrase", "member");
    let gateway = start_gateway(&["--functions", functions.to_str().unwrap()], &env);
    let http = Api::new(&gateway.base);

    let tokens = http.login("ada@example.com", "a long enough passphrase").await;
    let access = tokens["accessToken"].as_str().unwrap();
    let refresh = tokens["refreshToken"].as_str().unwrap();

    // No Authorization header: 401 from the gateway itself.
    assert_eq!(http.call("GET", "/me", &[], None).await.0, 401);
    assert_eq!(http.get("/me", "not.a.jwt").await.0, 401);
    let (status, me) = http.get("/me", access).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["role"], "member");
    assert!(me["userId"].as_str().is_some_and(|id| !id.is_empty()), "{me}");

    let (status, rotated) = http.call("POST", "/refresh-token", &[], Some(json!({"refreshToken": refresh}))).await;
    assert_eq!(status, 200, "{rotated}");
    let next_refresh = rotated["refreshToken"].as_str().unwrap();
    assert_ne!(next_refresh, refresh);
    let next_access = rotated["accessToken"].as_str().unwrap();
    assert_eq!(http.get("/me", next_access).await.0, 200);

    let bearer = format!("Bearer {next_access}");
    let (status, _) = http.call("POST", "/logout", &[("authorization", &bearer)], None).await;
    assert_eq!(status, 204);
    let (status, body) = http.call("POST", "/refresh-token", &[], Some(json!({"refreshToken": next_refresh}))).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_grant")), "the session outlived its logout");

    assert_eq!(http.call("GET", "/.well-known/jwks.json", &[], None).await.0, 200);
    assert_eq!(http.call("GET", "/nowhere", &[], None).await.0, 404);
    assert_eq!(http.call("DELETE", "/login", &[], None).await.0, 404, "only POST /login is a route");
}

/// `Signing=delegated` through the built functions: tokens are signed by the
/// period's key (its `kid` names the period), which the authorizer, the account and
/// logout functions learn from the table; the JWKS publishes it beside the KMS key;
/// the table holds the key's item with the private half sealed.
#[tokio::test]
async fn built_functions_sign_with_delegated_keys_through_the_gateway() {
    let Some(functions) = built() else { return };
    let Some(env) = fresh_stack(false).await else { return };
    add_user(&env, "ada@example.com", "a long enough passphrase", "member");
    let gateway =
        start_gateway(&["--functions", functions.to_str().unwrap(), "--parameter", "Signing=delegated"], &env);
    let api = Api::new(&gateway.base);
    let kid = |token: &str| {
        use base64::Engine as _;
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
        serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_owned()
    };

    let tokens = api.login("ada@example.com", "a long enough passphrase").await;
    let access = tokens["accessToken"].as_str().unwrap();
    assert!(kid(access).starts_with("d1.3600."), "a period key signed it: {}", kid(access));
    assert_eq!(api.get("/me", access).await.0, 200, "the authorizer learnt the key");
    let (status, sessions) = api.get("/sessions", access).await;
    assert_eq!(status, 200, "the account function learnt it too: {sessions}");
    let refresh = json!({"refreshToken": tokens["refreshToken"]});
    let (status, rotated) = api.call("POST", "/refresh-token", &[], Some(refresh)).await;
    assert_eq!(status, 200, "{rotated}");
    let next = rotated["accessToken"].as_str().unwrap();
    assert_eq!(kid(next), kid(access), "the refresh function shares the login function's key");
    assert_eq!(api.get("/me", next).await.0, 200);

    let (status, jwks) = api.call("GET", "/.well-known/jwks.json", &[], None).await;
    assert_eq!(status, 200);
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&kid(next).as_str()), "{jwks}");
    assert!(kids.iter().any(|k| !k.starts_with("d1.")), "the KMS key is published too: {jwks}");
    assert!(kids.len() <= 4, "a handful of keys: {jwks}");

    // A token naming this period with a key nobody vouched for: refused.
    let forged = {
        use base64::Engine as _;
        let real = kid(next);
        let (period, _) = real.rsplit_once('.').unwrap();
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": format!("{period}.{}", "A".repeat(43))});
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string());
        let claims = next.split('.').nth(1).unwrap();
        format!("{header}.{claims}.{}", "A".repeat(86))
    };
    assert_eq!(api.get("/me", &forged).await.0, 401);

    let table = env.iter().find(|(k, _)| k == "LATCHKEY_TABLE_NAME").map(|(_, v)| v.clone()).unwrap();
    let dynamodb = support::moto_dynamodb().await.unwrap();
    let items = dynamodb.scan().table_name(&table).send().await.unwrap();
    let keys: Vec<_> = items
        .items()
        .iter()
        .filter(|item| item.get("pk").and_then(|pk| pk.as_s().ok()).is_some_and(|pk| pk.starts_with("SIGNKEY#3600#")))
        .collect();
    assert!((1..=2).contains(&keys.len()), "this period's key (and the next one's past its middle)");
    assert!(keys[0].contains_key("sealedKey") && keys[0].contains_key("vouch"));

    let bearer = format!("Bearer {next}");
    assert_eq!(api.call("POST", "/logout", &[("authorization", &bearer)], None).await.0, 204);
}

/// The session routes and the admin API through the bootstraps `sam build` made,
/// behind the translated template's two authorizers, on moto's DynamoDB.
#[tokio::test]
async fn built_functions_serve_the_session_routes_and_the_admin_api_through_the_gateway() {
    let Some(functions) = built() else { return };
    let Some(env) = fresh_stack(false).await else { return };
    add_user(&env, "ada@example.com", "a long enough passphrase", "member");
    add_user(&env, "root@example.com", "the root passphrase", "Admin");
    let gateway = start_gateway(&["--functions", functions.to_str().unwrap()], &env);
    let api = Api::new(&gateway.base);
    let bearer = |tokens: &Value| format!("Bearer {}", tokens["accessToken"].as_str().unwrap());

    // Where ada is signed in, from two devices; one ends the other.
    let laptop = api.login("ada@example.com", "a long enough passphrase").await;
    let phone = api.login("ada@example.com", "a long enough passphrase").await;
    let (status, listed) = api.call("GET", "/sessions", &[("authorization", &bearer(&laptop))], None).await;
    assert_eq!(status, 200, "{listed}");
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{listed}");
    assert!(sessions.iter().all(|s| s["ip"].as_str() == Some("127.0.0.1")), "the source IP the gateway saw: {listed}");
    let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    let path = format!("/sessions/{other}");
    assert_eq!(api.call("DELETE", &path, &[("authorization", &bearer(&laptop))], None).await.0, 204);
    assert_eq!(api.call("DELETE", &path, &[("authorization", &bearer(&laptop))], None).await.0, 404, "once");
    let refresh = |tokens: &Value| json!({"refreshToken": tokens["refreshToken"]});
    assert_eq!(api.call("POST", "/refresh-token", &[], Some(refresh(&phone))).await.0, 401, "the phone is signed out");
    assert_eq!(api.call("GET", "/sessions", &[], None).await.0, 401, "the authorizer guards the route");

    // The admin API: a member is denied by the admin authorizer; an admin lists, pages,
    // disables and is kept from locking everyone out.
    assert_eq!(api.call("GET", "/admin/users", &[("authorization", &bearer(&laptop))], None).await.0, 403);
    let root = api.login("root@example.com", "the root passphrase").await;
    let admin = [("authorization", bearer(&root))];
    let admin: Vec<(&str, &str)> = admin.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page) = api.call("GET", "/admin/users?limit=1", &admin, None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["users"][0]["email"], "ada@example.com");
    let cursor = page["nextCursor"].as_str().unwrap().to_owned();
    let (_, next) = api.call("GET", &format!("/admin/users?limit=1&cursor={cursor}"), &admin, None).await;
    assert_eq!(next["users"][0]["email"], "root@example.com");
    let ada = page["users"][0]["id"].as_str().unwrap().to_owned();
    let root_id = next["users"][0]["id"].as_str().unwrap().to_owned();
    let (status, sessions) = api.call("GET", &format!("/admin/users/{ada}/sessions"), &admin, None).await;
    assert_eq!((status, sessions["sessions"].as_array().map(Vec::len)), (200, Some(1)), "{sessions}");
    let disable = json!({"disabled": true});
    let (status, disabled) = api.call("PATCH", &format!("/admin/users/{ada}"), &admin, Some(disable)).await;
    assert_eq!((status, disabled["disabled"].as_bool()), (200, Some(true)), "{disabled}");
    assert_eq!(api.call("POST", "/refresh-token", &[], Some(refresh(&laptop))).await.0, 401, "disabled: signed out");
    let demote = json!({"role": "member"});
    let (status, refused) = api.call("PATCH", &format!("/admin/users/{root_id}"), &admin, Some(demote)).await;
    assert_eq!((status, refused["error"].as_str()), (409, Some("last_admin")));
    let invite = json!({"email": "new@example.com", "role": "Admin"});
    let (status, invited) = api.call("POST", "/admin/users", &admin, Some(invite)).await;
    assert_eq!((status, invited["invited"].as_bool()), (201, Some(true)), "{invited}");
    let (status, _) = api.call("DELETE", &format!("/admin/users/{ada}"), &admin, None).await;
    assert_eq!(status, 204);
    assert_eq!(api.call("GET", &format!("/admin/users/{ada}"), &admin, None).await.0, 404);
}

/// The second factor through the bootstraps `sam build` made, with the template's
/// `RouteMfa` and `MfaRoles` parameters: enrolment, the two-step login with a code
/// computed by the test's own RFC 6238, `amr` in the authorizer's context, a route
/// that requires it, an administrator who must enrol doing so during the login, and
/// a reset through the admin API.
#[tokio::test]
async fn built_functions_serve_the_second_factor_through_the_gateway() {
    let Some(functions) = built() else { return };
    let Some(env) = fresh_stack(false).await else { return };
    add_user(&env, "ada@example.com", "a long enough passphrase", "member");
    add_user(&env, "root@example.com", "the root passphrase", "Admin");
    let gateway = start_gateway(
        &[
            "--functions",
            functions.to_str().unwrap(),
            "--parameter",
            "RouteMfa=GET /me",
            "--parameter",
            "MfaRoles=Admin",
        ],
        &env,
    );
    let api = Api::new(&gateway.base);
    let bearer = |tokens: &Value| format!("Bearer {}", tokens["accessToken"].as_str().unwrap());
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let ada = json!({"email": "ada@example.com", "password": "a long enough passphrase"});

    // A password alone: the route that needs a second factor is denied; ada enrols.
    let tokens = api.login("ada@example.com", "a long enough passphrase").await;
    assert_eq!(api.get("/me", tokens["accessToken"].as_str().unwrap()).await.0, 403);
    let signed_in = [("authorization", bearer(&tokens))];
    let signed_in: Vec<(&str, &str)> = signed_in.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, enrolment) = api.call("POST", "/mfa/totp", &signed_in, None).await;
    assert_eq!(status, 200, "{enrolment}");
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let confirmed_at = now();
    let code = json!({"password": "a long enough passphrase", "code": support::totp_code(&secret, confirmed_at)});
    let (status, confirmed) = api.call("POST", "/mfa/totp/confirm", &signed_in, Some(code)).await;
    assert_eq!((status, confirmed["recoveryCodes"].as_array().map(Vec::len)), (200, Some(10)), "{confirmed}");

    // Two steps, then the route opens, with amr in the context.
    let (status, challenge) = api.call("POST", "/login", &[], Some(ada.clone())).await;
    assert_eq!((status, challenge["mfaRequired"].as_bool()), (200, Some(true)), "{challenge}");
    let replay = json!({"mfaToken": challenge["mfaToken"], "code": support::totp_code(&secret, confirmed_at)});
    let (status, refused) = api.call("POST", "/login/mfa", &[], Some(replay)).await;
    assert_eq!((status, refused["error"].as_str()), (401, Some("invalid_code")), "a replay: {refused}");
    let next = json!({"mfaToken": challenge["mfaToken"], "code": support::totp_code(&secret, confirmed_at + 30)});
    let (status, tokens) = api.call("POST", "/login/mfa", &[], Some(next)).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, me) = api.get("/me", tokens["accessToken"].as_str().unwrap()).await;
    assert_eq!((status, me["amr"].as_str()), (200, Some("pwd otp")), "{me}");
    let (status, refreshed) =
        api.call("POST", "/refresh-token", &[], Some(json!({"refreshToken": tokens["refreshToken"]}))).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(api.get("/me", refreshed["accessToken"].as_str().unwrap()).await.1["amr"], "pwd otp");

    // An administrator must enrol: the password gives an enrolment-only token.
    let root = json!({"email": "root@example.com", "password": "the root passphrase"});
    let (_, challenge) = api.call("POST", "/login", &[], Some(root)).await;
    assert_eq!(challenge["mfaEnrollmentRequired"], true, "{challenge}");
    assert_eq!(api.get("/admin/users", challenge["mfaToken"].as_str().unwrap()).await.0, 401);
    let setup = json!({"mfaToken": challenge["mfaToken"]});
    let (status, enrolment) = api.call("POST", "/login/mfa/setup", &[], Some(setup)).await;
    assert_eq!(status, 200, "{enrolment}");
    let code = support::totp_code(enrolment["secret"].as_str().unwrap(), now());
    let (status, root) =
        api.call("POST", "/login/mfa", &[], Some(json!({"mfaToken": challenge["mfaToken"], "code": code}))).await;
    assert_eq!((status, root["recoveryCodes"].as_array().map(Vec::len)), (200, Some(10)), "{root}");

    // The administrator resets ada's second factor: the password alone again.
    let admin = [("authorization", bearer(&root))];
    let admin: Vec<(&str, &str)> = admin.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, page) = api.call("GET", "/admin/users?emailPrefix=ada", &admin, None).await;
    let ada_id = page["users"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(api.call("DELETE", &format!("/admin/users/{ada_id}/mfa"), &admin, None).await.0, 204);
    let tokens = api.login("ada@example.com", "a long enough passphrase").await;
    assert!(tokens["accessToken"].is_string(), "{tokens}");
}

/// Mail moto's SES accepted for `to`, oldest first, as (subject, HTML body).
async fn mail_to(to: &str) -> Vec<(String, String)> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let (status, data) = Http::new().call("GET", &format!("{endpoint}/moto-api/data.json"), &[], None).await;
    assert_eq!(status, 200, "moto's data.json");
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["destinations"]["ToAddresses"].as_array().is_some_and(|to_| to_.iter().any(|a| a == to)))
        .map(|m| {
            (m["subject"].as_str().unwrap_or_default().to_owned(), m["body"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

/// The one-time token in the newest mail to `to` (the link's `token=` fragment
/// parameter), after checking the link names `action` and the deployer's page.
async fn link_token(to: &str, action: &str) -> String {
    let mail = mail_to(to).await;
    let (_, body) = mail.last().unwrap_or_else(|| panic!("no mail to {to}"));
    let start = body.find("https://app.example.com/account#").unwrap_or_else(|| panic!("no link in {body}"));
    let link = &body[start..];
    let link = &link[..link.find('"').unwrap()];
    assert!(link.contains(&format!("action={action}&amp;token=")), "{link}");
    link.rsplit("token=").next().unwrap().to_owned()
}

/// The account routes through what `sam build` made, mail by SES (moto keeps what it
/// accepts, and the test reads the links back): forgot and reset end every session
/// and spend the link once; a password change keeps the caller's session and ends the
/// others; sign-up needs the mailed verification; an invitation from `latchkey user
/// invite` is accepted through the reset route.
#[tokio::test]
async fn built_account_function_resets_changes_signs_up_and_accepts_invitations_by_ses_mail() {
    let Some(functions) = built() else { return };
    let Some(env) = fresh_stack(false).await else { return };
    let domain = format!("{}.example.com", support::unique_name("mail"));
    let ses = aws_sdk_sesv2::Client::new(&support::moto_config().await.unwrap());
    ses.create_email_identity().email_identity(&domain).send().await.unwrap();
    let settings = [
        "Delivery=ses".to_owned(),
        format!("MailFrom=no-reply@{domain}"),
        format!("SesIdentity={domain}"),
        "LinkBaseUrl=https://app.example.com/account".to_owned(),
        "Signup=open".to_owned(),
        "AccountResponseFloorMs=300".to_owned(),
    ];
    let mut args = vec!["--functions".to_owned(), functions.to_str().unwrap().to_owned()];
    for setting in &settings {
        args.extend(["--parameter".to_owned(), setting.clone()]);
    }
    let gateway = start_gateway(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    let api = Api::new(&gateway.base);
    let ada = format!("ada@{domain}");
    add_user(&env, &ada, "a long enough passphrase", "member");

    // Forgot: the same answer for an account and for none; only the account gets mail.
    let first = api.login(&ada, "a long enough passphrase").await;
    let second = api.login(&ada, "a long enough passphrase").await;
    let known = api.call("POST", "/password/forgot", &[], Some(json!({"email": ada}))).await;
    let nobody = format!("nobody@{domain}");
    let unknown = api.call("POST", "/password/forgot", &[], Some(json!({"email": nobody}))).await;
    assert_eq!(known, unknown);
    assert_eq!(known.0, 202);
    assert!(mail_to(&nobody).await.is_empty(), "mail went to an address with no account");
    let token = link_token(&ada, "reset").await;
    let reset = json!({"token": token, "newPassword": "another long passphrase"});
    assert_eq!(api.call("POST", "/password/reset", &[], Some(reset.clone())).await.0, 204);
    let (status, body) = api.call("POST", "/password/reset", &[], Some(reset)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_link")), "the link worked twice");
    for tokens in [&first, &second] {
        let refresh = json!({"refreshToken": tokens["refreshToken"]});
        assert_eq!(api.call("POST", "/refresh-token", &[], Some(refresh)).await.0, 401, "a session outlived reset");
    }
    let (status, _) =
        api.call("POST", "/login", &[], Some(json!({"email": ada, "password": "a long enough passphrase"}))).await;
    assert_eq!(status, 401, "the old password still works");

    // Change: the caller continues with fresh tokens; the other session ends.
    let mine = api.login(&ada, "another long passphrase").await;
    let other = api.login(&ada, "another long passphrase").await;
    let bearer = format!("Bearer {}", mine["accessToken"].as_str().unwrap());
    let change = json!({"currentPassword": "another long passphrase", "newPassword": "a third long passphrase"});
    let (status, changed) = api.call("POST", "/password", &[("authorization", &bearer)], Some(change)).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(api.get("/me", changed["accessToken"].as_str().unwrap()).await.0, 200);
    let refresh = |tokens: &Value| json!({"refreshToken": tokens["refreshToken"]});
    assert_eq!(api.call("POST", "/refresh-token", &[], Some(refresh(&changed))).await.0, 200);
    assert_eq!(api.call("POST", "/refresh-token", &[], Some(refresh(&other))).await.0, 401);
    let wrong = json!({"currentPassword": "not it at all", "newPassword": "a fourth long passphrase"});
    let (status, body) = api.call("POST", "/password", &[("authorization", &bearer)], Some(wrong)).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_credentials")));

    // Sign-up: no login until the mailed link is used.
    let cy = format!("cy@{domain}");
    let signup = json!({"email": cy, "password": "cy's long passphrase"});
    assert_eq!(api.call("POST", "/signup", &[], Some(signup)).await.0, 202);
    let credentials = json!({"email": cy, "password": "cy's long passphrase"});
    let (status, body) = api.call("POST", "/login", &[], Some(credentials.clone())).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("email_unverified")), "{body}");
    let token = link_token(&cy, "verify").await;
    assert_eq!(api.call("POST", "/email/verify", &[], Some(json!({"token": token}))).await.0, 204);
    assert_eq!(api.call("POST", "/login", &[], Some(credentials)).await.0, 200);

    // Invitation: the CLI mails a link; until it is used the account has no password.
    let di = format!("di@{domain}");
    let mut cli_env = env.clone();
    cli_env.extend([
        ("LATCHKEY_DELIVERY".to_owned(), "ses".to_owned()),
        ("LATCHKEY_MAIL_FROM".to_owned(), format!("no-reply@{domain}")),
        ("LATCHKEY_LINK_BASE_URL".to_owned(), "https://app.example.com/account".to_owned()),
    ]);
    ok(&latchkey(&["user", "invite", &di, "--role", "admin"], &cli_env, None));
    let token = link_token(&di, "invite").await;
    let (status, body) =
        api.call("POST", "/login", &[], Some(json!({"email": di, "password": "anything at all"}))).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_credentials")));
    let accept = json!({"token": token, "newPassword": "di's own passphrase"});
    assert_eq!(api.call("POST", "/password/reset", &[], Some(accept)).await.0, 204);
    let tokens = api.login(&di, "di's own passphrase").await;
    let (status, me) = api.get("/me", tokens["accessToken"].as_str().unwrap()).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("admin")), "{me}");
    let subjects: Vec<String> = mail_to(&di).await.into_iter().map(|(subject, _)| subject).collect();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
}

/// Revocation reaches the API through what `sam build` made: with the session check
/// at 1 s (and so, by the template, the authorizer cache at 1 s), an access token of
/// a logged-out session still opens `/me` from the caches, and stops once they lapse.
#[tokio::test]
async fn a_logged_out_access_token_stops_opening_the_api_after_the_check_interval() {
    let Some(functions) = built() else { return };
    let Some(env) = fresh_stack(false).await else { return };
    add_user(&env, "ada@example.com", "a long enough passphrase", "member");
    let args = ["--functions", functions.to_str().unwrap(), "--parameter", "AuthorizerSessionCheckSeconds=1"];
    let gateway = start_gateway(&args, &env);
    let http = Api::new(&gateway.base);
    let tokens = http.login("ada@example.com", "a long enough passphrase").await;
    let access = tokens["accessToken"].as_str().unwrap();
    assert_eq!(http.get("/me", access).await.0, 200);
    let bearer = format!("Bearer {access}");
    assert_eq!(http.call("POST", "/logout", &[("authorization", &bearer)], None).await.0, 204);
    // Not a timing assertion: waiting out the 1 s interval (whole seconds) before asking again.
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let (status, body) = http.get("/me", access).await;
    assert_eq!(status, 401, "the logged-out token still opens the API: {body}");
}

#[tokio::test]
async fn without_the_authorizer_permission_every_authorized_request_is_a_500() {
    let Some(functions) = built() else { return };
    let Some(env) = fresh_stack(false).await else { return };
    add_user(&env, "bo@example.com", "a long enough passphrase", "member");
    let template = translated(|t| t.replace("            EnableFunctionDefaultPermissions: true\n", ""), &[]);
    let gateway =
        start_gateway(&["--translated", template.to_str().unwrap(), "--functions", functions.to_str().unwrap()], &env);
    let http = Api::new(&gateway.base);

    let tokens = http.login("bo@example.com", "a long enough passphrase").await;
    let access = tokens["accessToken"].as_str().unwrap();
    assert_eq!(http.get("/me", access).await.0, 500, "API Gateway cannot invoke the authorizer");
    assert_eq!(http.call("GET", "/me", &[], None).await.0, 401, "no identity source: 401 before any invocation");
}

/// HTTP API caches an authorizer's answer by the identity source alone, so with
/// route roles a cached allow for `/me` opens `/admin` too. The template turns the
/// cache off when `RouteRoles` is set; this shows both.
#[tokio::test]
async fn authorizer_caching_reuses_a_route_role_answer_unless_the_cache_is_off() {
    let Some(functions) = built() else { return };
    let Some(env) = fresh_stack(false).await else { return };
    add_user(&env, "cy@example.com", "a long enough passphrase", "member");
    let with_admin_route = |t: String| {
        t.replace(
            "            Path: /me\n            Auth:\n              Authorizer: LatchkeyAuthorizer\n",
            "            Path: /me\n            Auth:\n              Authorizer: LatchkeyAuthorizer\n        \
             Admin:\n          Type: HttpApi\n          Properties:\n            ApiId: !Ref HttpApi\n            \
             Method: GET\n            Path: /admin\n            Auth:\n              Authorizer: LatchkeyAuthorizer\n",
        )
    };
    let rule = "GET /admin=admin";

    // The template's own setting: RouteRoles set, so ReauthorizeEvery is 0.
    let safe = translated(with_admin_route, &[&format!("RouteRoles={rule}")]);
    let gateway = start_gateway(
        &[
            "--translated",
            safe.to_str().unwrap(),
            "--functions",
            functions.to_str().unwrap(),
            "--parameter",
            &format!("RouteRoles={rule}"),
        ],
        &env,
    );
    let http = Api::new(&gateway.base);
    let access =
        http.login("cy@example.com", "a long enough passphrase").await["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(http.get("/me", &access).await.0, 200);
    assert_eq!(http.get("/admin", &access).await.0, 403, "a member reached /admin with the cache off");
    drop(gateway);

    // The trap: the same rule given straight to the functions, cache at 300 s.
    let cached = translated(with_admin_route, &[]);
    let mut env_file = tempfile(&format!("LATCHKEY_ROUTE_ROLES={rule}\n"));
    let gateway = start_gateway(
        &[
            "--translated",
            cached.to_str().unwrap(),
            "--functions",
            functions.to_str().unwrap(),
            "--env-file",
            env_file.path().to_str().unwrap(),
        ],
        &env,
    );
    let http = Api::new(&gateway.base);
    assert_eq!(http.get("/admin", &access).await.0, 403, "uncached, the rule holds");
    assert_eq!(http.get("/me", &access).await.0, 403, "the cached deny for /admin answers /me too");
    let other =
        http.login("cy@example.com", "a long enough passphrase").await["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(http.get("/me", &other).await.0, 200);
    assert_eq!(http.get("/admin", &other).await.0, 200, "the cached allow for /me opened /admin");
    env_file.remove();
}

struct TempFile(PathBuf);

impl TempFile {
    fn path(&self) -> &Path {
        &self.0
    }

    fn remove(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tempfile(contents: &str) -> TempFile {
    let path = std::env::temp_dir().join(support::unique_name("gateway-env"));
    std::fs::write(&path, contents).unwrap();
    TempFile(path)
}

/// `latchkey invoke <function> --event events/<file>` on the built functions.
fn invoke(
    function: &str,
    file: &str,
    functions: &Path,
    env_file: &Path,
    env: &[(String, String)],
) -> std::process::Output {
    let event = root().join("events").join(file);
    latchkey(
        &[
            "invoke",
            function,
            "--event",
            event.to_str().unwrap(),
            "--template",
            root().join("template.yaml").to_str().unwrap(),
            "--functions",
            functions.to_str().unwrap(),
            "--env-file",
            env_file.to_str().unwrap(),
        ],
        env,
        None,
    )
}

/// events/local.env without what names moto's port, the table and the KMS key: a
/// run on its own table (from [`fresh_stack`]) supplies those.
fn local_env_for_a_fresh_stack() -> String {
    std::fs::read_to_string(root().join("events/local.env"))
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("AWS_") && !line.starts_with("LATCHKEY_TABLE_NAME="))
        .filter(|line| !line.starts_with("LATCHKEY_KMS_KEY_ID="))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// `RUST_LOG=trace` set on the deployed functions (the first thing one tries when
/// debugging) must not write what the events carry: `lambda_runtime` logs each raw
/// event at `trace`. Login, a cookie refresh and the authorizer run through the real
/// runtime loop of the built bootstraps; the log shows the trace filter was taken
/// (the `log_filter` debug line) and holds no password, token or hash.
#[tokio::test]
async fn rust_log_trace_writes_no_password_token_or_hash_from_the_built_functions() {
    let Some(functions) = built() else { return };
    let Some(env) = fresh_stack(true).await else { return };
    let env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k != "LATCHKEY_REFRESH_MAC_KEY_ID").collect();
    let mut env_file = tempfile(&format!("{}RUST_LOG=trace\n", local_env_for_a_fresh_stack()));
    let event = |file: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(root().join("events").join(file)).unwrap()).unwrap()
    };
    let login_body: Value = serde_json::from_str(event("login-http-api.json")["body"].as_str().unwrap()).unwrap();
    let password = login_body["password"].as_str().unwrap().to_owned();
    let cookie = event("refresh-cookie-http-api.json")["cookies"][0].as_str().unwrap().to_owned();
    let refresh_token = cookie.split_once('=').unwrap().1.to_owned();
    let bearer = event("authorizer-http-api-v2-valid.json")["headers"]["authorization"].as_str().unwrap().to_owned();
    let mut log = String::new();
    for (function, file) in [
        ("LoginFunction", "login-http-api.json"),
        ("RefreshFunction", "refresh-cookie-http-api.json"),
        ("AuthorizerFunction", "authorizer-http-api-v2-valid.json"),
    ] {
        let output = invoke(function, file, &functions, env_file.path(), &env);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let answer: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("{file}: {stdout}"));
        assert!(answer["statusCode"] == 200 || answer["isAuthorized"] == true, "{file}: {answer}");
        log.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    assert_eq!(log.matches("\"log_filter\"").count(), 3, "RUST_LOG=trace did not reach each function:\n{log}");
    // Each line written inside an invocation names its request (the runtime's span).
    assert!(log.contains("\"requestId\""), "no request id in the functions' log lines:\n{log}");
    let issued_refresh_prefix = "lk1.";
    for (what, secret) in [
        ("the password", password.as_str()),
        ("the refresh token", refresh_token.as_str()),
        ("the bearer token", bearer.trim_start_matches("Bearer ")),
        ("a refresh token", issued_refresh_prefix),
        ("a JWT", "eyJhbGci"),
        ("a password hash", "$argon2id$"),
    ] {
        assert!(!log.contains(secret), "{what} is in the trace log:\n{log}");
    }
    env_file.remove();
}

/// Every sample event in events/ through its built function with `latchkey invoke`
/// (a cold start each), under events/local.env's fixture keys, on a table that
/// `latchkey setup --sample-data` prepared: each gives the outcome the manifest
/// documents, as the in-process suite checks for the handlers.
#[tokio::test]
async fn every_sample_event_gives_its_documented_outcome_from_the_built_function() {
    let Some(functions) = built() else { return };
    let Some(env) = fresh_stack(true).await else { return };
    let mut env_file = tempfile(&local_env_for_a_fresh_stack());
    let env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k != "LATCHKEY_REFRESH_MAC_KEY_ID").collect();
    let manifest: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(root().join("events/manifest.json")).unwrap()).unwrap();
    let function_of = |name: &str| match name {
        "login" => "LoginFunction",
        "refresh" => "RefreshFunction",
        "logout" => "LogoutFunction",
        "jwks" => "JwksFunction",
        "account" => "AccountFunction",
        "admin" => "AdminFunction",
        "authorizer" => "AuthorizerFunction",
        other => panic!("unknown function {other}"),
    };
    let mut seen = std::collections::BTreeSet::new();
    for entry in &manifest {
        let file = entry["file"].as_str().unwrap();
        let function = entry["function"].as_str().unwrap();
        // Each refresh, logout and account sample spends the fixture session or
        // changes the demo user: a fresh one each.
        let env = if matches!(function, "refresh" | "logout" | "account") {
            fresh_stack(true).await.unwrap()
        } else {
            env.clone()
        };
        let env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k != "LATCHKEY_REFRESH_MAC_KEY_ID").collect();
        let output = invoke(function_of(function), file, &functions, env_file.path(), &env);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let answer: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|_| panic!("{file}: {stdout} {}", String::from_utf8_lossy(&output.stderr)));
        let outcome = if function == "authorizer" {
            match (answer["errorMessage"].as_str(), &answer["isAuthorized"], &answer["policyDocument"]) {
                (Some("Unauthorized"), _, _) => json!("unauthorized"),
                (_, Value::Bool(true), _) => json!("allow"),
                (_, Value::Bool(false), _) => json!("deny"),
                (_, _, policy) if policy["Statement"][0]["Effect"] == "Allow" => json!("allow"),
                (_, _, policy) if policy["Statement"][0]["Effect"] == "Deny" => json!("deny"),
                _ => panic!("{file}: {answer}"),
            }
        } else {
            answer["statusCode"].clone()
        };
        assert_eq!(outcome, entry["expect"], "{file}: {answer}");
        seen.insert(file.to_owned());
    }
    assert_eq!(seen.len(), manifest.len());
    assert!(manifest.len() >= 20, "the manifest lost its samples");
    env_file.remove();
}

/// A stand-in authorizer: a Python custom runtime speaking the Lambda Runtime API,
/// which fails in the way `behaviour` says.
const FAULTY_AUTHORIZER: &str = r#"#!/usr/bin/env python3
import json, os, sys, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
behaviour = os.environ["FAULT"]
if behaviour == "crash":
    sys.exit(3)
while True:
    with urllib.request.urlopen(api + "/invocation/next") as answer:
        request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
    if behaviour == "hang":
        time.sleep(3600)
    if behaviour == "error":
        path, body = "/error", {"errorType": "Boom", "errorMessage": "something broke"}
    else:
        path, body = "/response", {"allowed": "yes"}
    post = urllib.request.Request(api + "/invocation/" + request_id + path, data=json.dumps(body).encode(), method="POST")
    urllib.request.urlopen(post).read()
"#;

/// Any authorizer failure but the error `Unauthorized` is a 500: another error, a
/// crash, a timeout (the template's 5 s), or an answer in another shape.
#[tokio::test]
async fn an_authorizer_that_errs_crashes_hangs_or_answers_nonsense_is_a_500() {
    let Some(functions) = built() else { return };
    let Some(env) = fresh_stack(false).await else { return };
    add_user(&env, "di@example.com", "a long enough passphrase", "member");
    let dir = std::env::temp_dir().join(support::unique_name("faulty-functions"));
    for entry in std::fs::read_dir(&functions).unwrap() {
        let entry = entry.unwrap();
        if entry.path().join("bootstrap").is_file() && entry.file_name() != "AuthorizerFunction" {
            std::fs::create_dir_all(dir.join(entry.file_name())).unwrap();
            std::os::unix::fs::symlink(entry.path().join("bootstrap"), dir.join(entry.file_name()).join("bootstrap"))
                .unwrap();
        }
    }
    std::fs::create_dir_all(dir.join("AuthorizerFunction")).unwrap();
    let bootstrap = dir.join("AuthorizerFunction/bootstrap");
    std::fs::write(&bootstrap, FAULTY_AUTHORIZER).unwrap();
    std::fs::set_permissions(&bootstrap, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    for fault in ["error", "crash", "nonsense", "hang"] {
        let mut env_file = tempfile(&format!("FAULT={fault}\n"));
        let gateway = start_gateway(
            &["--functions", dir.to_str().unwrap(), "--env-file", env_file.path().to_str().unwrap()],
            &env,
        );
        let api = Api::new(&gateway.base);
        let access =
            api.login("di@example.com", "a long enough passphrase").await["accessToken"].as_str().unwrap().to_owned();
        assert_eq!(api.get("/me", &access).await.0, 500, "authorizer fault {fault}");
        assert_eq!(api.call("GET", "/me", &[], None).await.0, 401, "no token: never invoked ({fault})");
        env_file.remove();
    }
}

#[tokio::test]
async fn cold_start_times_every_built_function_to_its_first_request_for_an_event() {
    let Some(functions) = built() else { return };
    let Some(env) = fresh_stack(false).await else { return };
    let output = latchkey_command()
        .current_dir(root())
        .args(["cold-start", "--runs", "2", "--functions", functions.to_str().unwrap()])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let printed = ok(&output);
    for function in [
        "AccountFunction",
        "AuthorizerFunction",
        "EchoFunction",
        "JwksFunction",
        "LoginFunction",
        "LogoutFunction",
        "RefreshFunction",
    ] {
        let row = printed.lines().find(|line| line.starts_with(&format!("| {function} |"))).expect(&printed);
        let median: f64 = row.split('|').nth(2).unwrap().trim().trim_end_matches(" ms").parse().expect(row);
        assert!(median > 0.0 && median < 10_000.0, "{row}");
    }
    // A function that cannot start is an error, not a row.
    let broken = latchkey_command()
        .current_dir(root())
        .args(["cold-start", "--runs", "1", "--functions", functions.to_str().unwrap(), "LoginFunction"])
        .envs(env.iter().filter(|(k, _)| k != "LATCHKEY_KMS_KEY_ID").map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(!broken.status.success(), "{}", String::from_utf8_lossy(&broken.stdout));
}
