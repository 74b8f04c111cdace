//! Helpers shared by the CLI's integration tests: running the `latchkey` binary with
//! a clean `LATCHKEY_*` environment, and a small HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The `latchkey` binary without this process's `LATCHKEY_*` variables (a developer's
/// shell may have some): each test gives the settings it means.
pub fn latchkey_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    // The signing mode is the one setting kept: scripts/test runs these tests again
    // with LATCHKEY_SIGNING=delegated, and the servers they start must sign that way.
    let kept = |name: &str| matches!(name, "LATCHKEY_SIGNING" | "LATCHKEY_SIGNING_KEY_PERIOD_SECONDS");
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("LATCHKEY_") && !kept(name)) {
        command.env_remove(name);
    }
    command
}

/// `latchkey` run to its end with `env`, then `stdin` (closed after).
pub fn latchkey(args: &[&str], env: &[(String, String)], stdin: Option<&str>) -> Output {
    let mut child = latchkey_command()
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// The standard output of a command that must have succeeded.
pub fn ok(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A plain HTTP/1 client.
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Self {
        Self { client: Client::builder(TokioExecutor::new()).build_http() }
    }

    /// The status and the JSON body (`Null` when the body is not JSON).
    pub async fn call(&self, method: &str, url: &str, headers: &[(&str, &str)], body: Option<Value>) -> (u16, Value) {
        let mut request = hyper::Request::builder().method(method).uri(url);
        for (key, value) in headers {
            request = request.header(*key, *value);
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let response = self.client.request(request.body(Full::new(bytes)).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

/// A child's output, line by line, read on a thread so a child that hangs fails the
/// test after `timeout` instead of blocking it. The thread keeps draining the stream
/// after `lines` returns, so the child never blocks on a full pipe.
pub struct Lines {
    receiver: mpsc::Receiver<String>,
    deadline: Instant,
}

impl Lines {
    pub fn new(stream: impl Read + Send + 'static, timeout: Duration) -> Self {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        Self { receiver, deadline: Instant::now() + timeout }
    }

    /// The next line; panics when the stream ends or the time is up.
    pub fn next_line(&self) -> String {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.receiver.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the child printed nothing more within its time"),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the child's output ended"),
        }
    }
}
