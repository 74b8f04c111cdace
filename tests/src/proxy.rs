//! A TCP proxy in front of the AWS endpoint (moto) that counts the AWS API calls
//! passing through it by their `X-Amz-Target` header (`TrentService.Sign`,
//! `DynamoDB_20120810.GetItem`, ...): what the code asks of AWS, counted where AWS
//! would see it, whatever the code believes it does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Calls seen, by `X-Amz-Target`.
#[derive(Debug, Default)]
pub struct Calls(Mutex<BTreeMap<String, u32>>);

impl Calls {
    /// Calls per target since the last take, emptied.
    pub fn take(&self) -> BTreeMap<String, u32> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    fn record(&self, target: &str) {
        *self.0.lock().unwrap().entry(target.to_owned()).or_default() += 1;
    }
}

/// Starts the proxy on a free loopback port, forwarding to `target`; returns its
/// URL (for `AWS_ENDPOINT_URL`) and the call counts. It runs until the runtime ends.
pub async fn start(target: SocketAddr) -> (String, Arc<Calls>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(Calls::default());
    let counting = calls.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let calls = counting.clone();
            tokio::spawn(async move {
                if let Ok(server) = TcpStream::connect(target).await {
                    relay(client, server, calls).await;
                }
            });
        }
    });
    (url, calls)
}

async fn relay(client: TcpStream, server: TcpStream, calls: Arc<Calls>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async move {
        let mut chunk = vec![0u8; 65536];
        let mut pending = String::new();
        while let Ok(n) = client_read.read(&mut chunk).await {
            if n == 0 || server_write.write_all(&chunk[..n]).await.is_err() {
                break;
            }
            pending.push_str(&String::from_utf8_lossy(&chunk[..n]).to_ascii_lowercase());
            count_targets(&mut pending, &calls);
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// Counts each complete `x-amz-target:` header line in `pending` and keeps only
/// what could be the start of one split across reads.
fn count_targets(pending: &mut String, calls: &Calls) {
    const HEADER: &str = "x-amz-target:";
    while let Some(start) = pending.find(HEADER) {
        let Some(end) = pending[start..].find("\r\n") else { break };
        calls.record(pending[start + HEADER.len()..start + end].trim());
        pending.drain(..start + end);
    }
    if !pending.contains(HEADER) && pending.len() > HEADER.len() {
        let keep = pending.len() - HEADER.len();
        let keep = (keep..pending.len()).find(|&i| pending.is_char_boundary(i)).unwrap_or(pending.len());
        pending.drain(..keep);
    }
}

/// The AWS calls of one login and of `refreshes` rotations of its refresh token,
/// counted at a proxy between the deployed login and refresh functions' states and
/// moto, with `signing` (cold start not counted: the states are built first).
pub async fn calls_of_refreshes(
    signing: latchkey::config::SigningConfig,
    refreshes: u32,
) -> Option<(BTreeMap<String, u32>, BTreeMap<String, u32>)> {
    use latchkey::deploy::{Aws, HttpFunction};
    use latchkey::http::{LoginState, RefreshState, login, refresh};

    let env = crate::Env::new(crate::fixture_edge()).await?;
    let env = crate::Env { config: latchkey::Config { signing, ..env.config.clone() }, ..env };
    let moto = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let address: SocketAddr = moto.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    let (url, calls) = start(address).await;
    let aws = Aws::load(aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(url)).await;
    let login_state = LoginState::deployed(&env.config, &aws).await.unwrap();
    let refresh_state = RefreshState::deployed(&env.config, &aws).await.unwrap();
    calls.take();

    let post = |path: &str, body: serde_json::Value| {
        let event = crate::events::http_api(
            "POST",
            path,
            &[("content-type", "application/json")],
            &[],
            Some(&body.to_string()),
        );
        lambda_http::request::from_str(&event.to_string()).unwrap()
    };
    let json = |response: lambda_http::Response<lambda_http::Body>| -> serde_json::Value {
        assert_eq!(response.status(), 200);
        match response.body() {
            lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("{other:?}"),
        }
    };
    let credentials = serde_json::json!({"email": crate::DEMO_EMAIL, "password": crate::DEMO_PASSWORD});
    let tokens = json(login(&login_state, post("/login", credentials)).await);
    let login_calls = calls.take();
    let mut token = tokens["refreshToken"].as_str().unwrap().to_owned();
    for _ in 0..refreshes {
        let rotated =
            json(refresh(&refresh_state, post("/refresh-token", serde_json::json!({"refreshToken": token}))).await);
        token = rotated["refreshToken"].as_str().unwrap().to_owned();
    }
    Some((login_calls, calls.take()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_counted_once_even_split_across_reads() {
        let calls = Calls::default();
        let mut pending = String::new();
        for chunk in ["post / http/1.1\r\nx-amz-tar", "get: trentservice.sign\r\n\r\n{}", "x-amz-target: a\r\n"] {
            pending.push_str(chunk);
            count_targets(&mut pending, &calls);
        }
        let counted = calls.take();
        assert_eq!(counted.get("trentservice.sign"), Some(&1));
        assert_eq!(counted.get("a"), Some(&1));
        assert_eq!(counted.len(), 2);
    }
}
