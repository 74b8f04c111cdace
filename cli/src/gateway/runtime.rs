//! A Lambda Runtime API host: runs a function's real `bootstrap` as a child process
//! and hands it events through the same HTTP interface Lambda gives it, one
//! invocation at a time (one warm instance per function).
//!
//! The interface, from "Using the Lambda runtime API for custom runtimes"
//! (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html):
//! `GET /2018-06-01/runtime/invocation/next` answers the next event with the
//! `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`,
//! `Lambda-Runtime-Invoked-Function-Arn` and `Lambda-Runtime-Trace-Id` headers;
//! `POST .../invocation/{id}/response` and `.../invocation/{id}/error` end it;
//! `POST /2018-06-01/runtime/init/error` reports a failed start. The runtime finds
//! the API through `AWS_LAMBDA_RUNTIME_API` (here `http://127.0.0.1:PORT/<secret>`: a
//! random path prefix per instance, and random request ids, so no other local process
//! can take an event or answer one), and reads the other defined variables of
//! "Defined runtime environment variables"
//! (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, mpsc, oneshot, watch};

/// What the host needs to run one function. Its `Debug` names the environment's
/// variables but never shows their values (an env file may hold a key).
#[derive(Clone)]
pub struct FunctionSpec {
    /// The function's name (the template's logical id).
    pub name: String,
    /// The built `bootstrap` executable.
    pub bootstrap: PathBuf,
    /// The function's own environment (from the template, resolved).
    pub environment: BTreeMap<String, String>,
    /// The function timeout: an invocation still running then is killed.
    pub timeout: Duration,
    /// Memory size in MB, passed on as `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub memory_mb: u32,
}

impl std::fmt::Debug for FunctionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionSpec")
            .field("name", &self.name)
            .field("bootstrap", &self.bootstrap)
            .field("environment", &self.environment.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("memory_mb", &self.memory_mb)
            .finish()
    }
}

/// How an invocation ended. Its `Debug` shows a response's size, never its bytes
/// (they carry tokens).
#[derive(Clone, PartialEq)]
pub enum Outcome {
    /// The function posted a response: its bytes.
    Response(Vec<u8>),
    /// The function posted an error (`errorType`, `errorMessage`).
    Error {
        /// `errorType` of the posted error.
        error_type: String,
        /// `errorMessage` of the posted error.
        message: String,
    },
    /// The function did not answer within its timeout; the instance was stopped.
    Timeout,
    /// The process ended (or never started) without answering.
    Crashed(String),
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Response(bytes) => write!(f, "Response({} bytes)", bytes.len()),
            Self::Error { error_type, .. } => write!(f, "Error({error_type})"),
            Self::Timeout => f.write_str("Timeout"),
            Self::Crashed(why) => write!(f, "Crashed({why})"),
        }
    }
}

type Reply = oneshot::Sender<Outcome>;

/// State shared between the host and the Runtime API server of one instance.
struct Exchange {
    next: Mutex<mpsc::Receiver<(String, Vec<u8>)>>,
    waiting: std::sync::Mutex<HashMap<String, Reply>>,
    init_error: std::sync::Mutex<Option<String>>,
    deadline_ms: std::sync::Mutex<u64>,
    /// When the function first asked for an event: the end of its init.
    first_poll: watch::Sender<Option<Instant>>,
    function_arn: String,
}

struct Running {
    events: mpsc::Sender<(String, Vec<u8>)>,
    exchange: Arc<Exchange>,
    exited: watch::Receiver<Option<String>>,
    kill: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    spawned: Instant,
}

impl Running {
    /// Waits for the process to exit and says why: its exit status, and the init
    /// error it reported, if any.
    async fn exit_reason(&self) -> String {
        let mut exited = self.exited.clone();
        let status = exited.wait_for(Option::is_some).await.map(|s| s.clone().unwrap_or_default()).unwrap_or_default();
        let init = lock(&self.exchange.init_error).clone();
        init.map_or(status.clone(), |init| format!("init error: {init} ({status})"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        self.server.abort();
    }
}

/// One function, started on its first invocation and kept warm after it; started
/// again after a crash or a timeout, as Lambda starts a new execution environment.
pub struct Lambda {
    spec: FunctionSpec,
    running: Mutex<Option<Running>>,
}

impl Lambda {
    /// A function that is not running yet.
    pub fn new(spec: FunctionSpec) -> Self {
        Self { spec, running: Mutex::new(None) }
    }

    /// Runs one event to its end. Invocations of one function queue behind each other.
    pub async fn invoke(&self, event: &Value) -> Outcome {
        let mut running = self.running.lock().await;
        let alive = running.as_ref().is_some_and(|r| r.exited.borrow().is_none());
        if !alive {
            *running = None;
            match self.start().await {
                Ok(started) => *running = Some(started),
                Err(error) => return Outcome::Crashed(error),
            }
        }
        let Some(instance) = running.as_mut() else {
            return Outcome::Crashed("the function did not start".into());
        };
        // Unguessable, as the path: another local process cannot answer in its place.
        let Some(id) = unguessable() else {
            return Outcome::Crashed("no randomness for a request id".into());
        };
        let (reply, answer) = oneshot::channel();
        lock(&instance.exchange.waiting).insert(id.clone(), reply);
        *lock(&instance.exchange.deadline_ms) = epoch_ms() + self.spec.timeout.as_millis() as u64;
        let payload = serde_json::to_vec(event).unwrap_or_default();
        if instance.events.send((id, payload)).await.is_err() {
            *running = None;
            return Outcome::Crashed("the function's runtime API is gone".into());
        }
        let outcome = tokio::select! {
            answer = answer => answer.unwrap_or_else(|_| Outcome::Crashed("no answer".into())),
            () = tokio::time::sleep(self.spec.timeout) => Outcome::Timeout,
            why = instance.exit_reason() => Outcome::Crashed(why),
        };
        if !matches!(outcome, Outcome::Response(_) | Outcome::Error { .. }) {
            *running = None;
        }
        outcome
    }

    async fn start(&self) -> Result<Running, String> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| e.to_string())?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let (events, next) = mpsc::channel(1);
        let exchange = Arc::new(Exchange {
            next: Mutex::new(next),
            waiting: std::sync::Mutex::new(HashMap::new()),
            init_error: std::sync::Mutex::new(None),
            deadline_ms: std::sync::Mutex::new(0),
            first_poll: watch::Sender::new(None),
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{}", self.spec.name),
        });
        // A secret path prefix per instance: the API is on a loopback port any local
        // process could find, and its next event may hold a password or a token.
        let secret = unguessable().ok_or("no randomness for the runtime API path")?;
        let app = Router::new().nest(&format!("/{secret}"), runtime_api(exchange.clone()));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let mut command = Command::new(&self.spec.bootstrap);
        command
            .env_clear()
            .envs(passed_through())
            .envs(&self.spec.environment)
            .envs(self.defined_variables())
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://{address}/{secret}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned = Instant::now();
        let mut child = command.spawn().map_err(|e| format!("starting {}: {e}", self.spec.bootstrap.display()))?;
        if let Some(out) = child.stdout.take() {
            forward_lines(self.spec.name.clone(), out);
        }
        if let Some(err) = child.stderr.take() {
            forward_lines(self.spec.name.clone(), err);
        }
        let (exited_tx, exited) = watch::channel(None);
        let (kill, killed) = oneshot::channel();
        tokio::spawn(supervise(child, killed, exited_tx));
        Ok(Running { events, exchange, exited, kill: Some(kill), server, spawned })
    }

    /// Starts a new instance and times its init: from spawning the process to its
    /// first `GET /runtime/invocation/next` (what Lambda's `Init Duration` covers,
    /// less the sandbox), then stops it without an event. An instance that exits or
    /// takes over 10 s first is an error.
    pub async fn cold_start(&self) -> Result<Duration, String> {
        let instance = self.start().await?;
        let mut polled = instance.exchange.first_poll.subscribe();
        tokio::select! {
            at = polled.wait_for(Option::is_some) => at.ok().and_then(|at| *at)
                .map(|at| at.duration_since(instance.spawned))
                .ok_or_else(|| "the runtime API is gone".to_owned()),
            why = instance.exit_reason() => Err(why),
            () = tokio::time::sleep(Duration::from_secs(10)) => Err("no request for an event within 10 s".into()),
        }
    }

    /// "Defined runtime environment variables" that lambda_runtime reads.
    fn defined_variables(&self) -> [(&'static str, String); 7] {
        let name = &self.spec.name;
        [
            ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", self.spec.memory_mb.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local".into()),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
            ("LAMBDA_TASK_ROOT", self.spec.bootstrap.parent().map(|p| p.display().to_string()).unwrap_or_default()),
        ]
    }
}

/// The caller's AWS settings (region, credentials, `AWS_ENDPOINT_URL` for moto) and
/// `PATH`/`HOME`, as Lambda gives a function its role's credentials and region.
fn passed_through() -> Vec<(String, String)> {
    std::env::vars().filter(|(name, _)| name.starts_with("AWS_") || name == "PATH" || name == "HOME").collect()
}

async fn supervise(mut child: Child, killed: oneshot::Receiver<()>, exited: watch::Sender<Option<String>>) {
    let status = tokio::select! {
        status = child.wait() => status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
        _ = killed => {
            let _ = child.kill().await;
            "stopped".to_owned()
        }
    };
    let _ = exited.send(Some(status));
}

/// Copies a child's output to stderr, each line prefixed with the function's name.
fn forward_lines(name: String, stream: impl AsyncRead + Unpin + Send + 'static) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{name}] {line}");
        }
    });
}

fn runtime_api(exchange: Arc<Exchange>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(invocation_response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(invocation_error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(exchange)
}

async fn next_invocation(State(exchange): State<Arc<Exchange>>) -> Response {
    exchange.first_poll.send_if_modified(|first| {
        let unset = first.is_none();
        first.get_or_insert_with(Instant::now);
        unset
    });
    let Some((id, payload)) = exchange.next.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let deadline = *lock(&exchange.deadline_ms);
    for (name, value) in [
        ("lambda-runtime-aws-request-id", id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", exchange.function_arn.clone()),
        ("lambda-runtime-trace-id", format!("Root=1-00000000-{};Sampled=0", id.get(..24).unwrap_or(&id))),
        ("content-type", "application/json".to_owned()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (StatusCode::OK, headers, payload).into_response()
}

async fn invocation_response(State(exchange): State<Arc<Exchange>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    answer(&exchange, &id, Outcome::Response(body.to_vec()))
}

async fn invocation_error(State(exchange): State<Arc<Exchange>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let error: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |key: &str| error[key].as_str().unwrap_or_default().to_owned();
    answer(&exchange, &id, Outcome::Error { error_type: text("errorType"), message: text("errorMessage") })
}

async fn init_error(State(exchange): State<Arc<Exchange>>, body: Bytes) -> StatusCode {
    let error: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let message = error["errorMessage"].as_str().unwrap_or("unknown").to_owned();
    *lock(&exchange.init_error) = Some(message);
    StatusCode::ACCEPTED
}

fn answer(exchange: &Exchange, id: &str, outcome: Outcome) -> StatusCode {
    match lock(&exchange.waiting).remove(id) {
        Some(reply) => {
            let _ = reply.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// 128 random bits as hex, from the OS.
fn unguessable() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime API lives under a random path: the bare Lambda paths, which any
    /// local process could guess, answer 404; the function's own address works.
    #[tokio::test]
    async fn the_runtime_api_is_reachable_only_under_its_secret_prefix() {
        let dir = std::env::temp_dir().join(format!("latchkey-runtime-{}", unguessable().unwrap()));
        std::fs::create_dir_all(&dir).unwrap();
        let seen = dir.join("api");
        let bootstrap = dir.join("bootstrap");
        std::fs::write(
            &bootstrap,
            format!("#!/bin/sh\nprintf '%s' \"$AWS_LAMBDA_RUNTIME_API\" > {}\nsleep 30\n", seen.display()),
        )
        .unwrap();
        std::fs::set_permissions(&bootstrap, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let lambda = Lambda::new(FunctionSpec {
            name: "Probe".into(),
            bootstrap,
            environment: BTreeMap::new(),
            timeout: Duration::from_secs(5),
            memory_mb: 128,
        });
        let _running = lambda.start().await.unwrap();
        let mut api = String::new();
        for _ in 0..100 {
            api = std::fs::read_to_string(&seen).unwrap_or_default();
            if !api.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (origin, secret) = api.rsplit_once('/').unwrap();
        assert!(origin.starts_with("http://127.0.0.1:"), "{api}");
        assert!(secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()), "{api}");
        let status = |url: String| async move {
            let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<axum::body::Bytes>>();
            client.get(url.parse().unwrap()).await.unwrap().status().as_u16()
        };
        assert_eq!(status(format!("{origin}/2018-06-01/runtime/init/error")).await, 404);
        assert_eq!(status(format!("{origin}/2018-06-01/runtime/invocation/next")).await, 404);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
