//! `latchkey load`: a bounded load test of a running Latchkey (`latchkey dev` or
//! `latchkey gateway`) over real HTTP: authorizations per second through `GET /me`,
//! refreshes per second with each client rotating its own session, and a refresh
//! storm (many clients, one token) that must leave exactly one successor.
//! Prints Markdown rows; `scripts/bench-load` runs it and docs/performance.md holds
//! the figures. Never part of the tests: figures are measured, not asserted.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// `GET /me` with a bearer token (each client its own login): the authorizer on every request.
    Authorize,
    /// `POST /refresh-token`, each client rotating its own session in a loop.
    Refresh,
    /// One token refreshed by every client at once: exactly one successor must come back.
    Storm,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The base URL of `latchkey dev` or `latchkey gateway`.
    #[arg(long)]
    url: String,
    /// What to send.
    #[arg(long, value_enum)]
    workload: Workload,
    /// Concurrent clients; repeat for several rows (16, 64, 256).
    #[arg(long = "clients", default_values_t = [16, 64, 256])]
    clients: Vec<usize>,
    /// Seconds per row (authorize, refresh).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// The user to log in as.
    #[arg(long, default_value = "demo@example.com")]
    email: String,
    /// Their password.
    #[arg(long, default_value = "correct horse battery staple")]
    password: String,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One client's answer: status, JSON body, time taken.
async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value, Duration)> {
    let mut request = hyper::Request::builder().method(method).uri(url);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let started = Instant::now();
    let response = client.request(request.body(Full::new(bytes))?).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    let took = started.elapsed();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), took))
}

/// Logs in once: the access and refresh tokens.
async fn login(client: &HttpClient, args: &LoadArgs) -> anyhow::Result<(String, String)> {
    let body = json!({"email": args.email, "password": args.password});
    let (status, tokens, _) = send(client, "POST", &format!("{}/login", args.url), None, Some(&body)).await?;
    let text = |name: &str| tokens[name].as_str().map(str::to_owned);
    match (status, text("accessToken"), text("refreshToken")) {
        (200, Some(access), Some(refresh)) => Ok((access, refresh)),
        _ => bail!("login answered {status}: the delivery mode must put the refresh token in the body"),
    }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build_http();
    let args = Arc::new(args);
    match args.workload {
        Workload::Storm => {
            println!(
                "| Clients | 200 | Other | Distinct successors | Successor refreshes |\n| --- | --- | --- | --- | --- |"
            );
            for &clients in &args.clients {
                let (ok, other, successors, next) = storm(&client, &args, clients).await?;
                println!("| {clients} | {ok} | {other} | {successors} | {next} |");
                if successors != 1 || next != 200 {
                    bail!(
                        "{clients} clients on one token left {successors} successors (the next refresh answered {next})"
                    );
                }
            }
        }
        workload => {
            println!("| Clients | Requests/s | p50 | p99 | Errors |\n| --- | --- | --- | --- | --- |");
            for &clients in &args.clients {
                let (count, errors, mut times, elapsed) = steady(&client, &args, workload, clients).await?;
                times.sort();
                let at = |q: f64| times.get(((times.len() as f64 - 1.0) * q) as usize).copied().unwrap_or_default();
                let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
                let rate = count as f64 / elapsed.as_secs_f64();
                println!("| {clients} | {rate:.0} | {} | {} | {errors} |", ms(at(0.5)), ms(at(0.99)));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `clients` loops for `seconds`: requests answered, non-200 answers, latencies, wall time.
async fn steady(
    client: &HttpClient,
    args: &Arc<LoadArgs>,
    workload: Workload,
    clients: usize,
) -> anyhow::Result<(usize, usize, Vec<Duration>, Duration)> {
    // Log every client in first (argon2id each), outside the measured window.
    let mut sessions = Vec::with_capacity(clients);
    for _ in 0..clients {
        sessions.push(login(client, args).await.context("logging the clients in")?);
    }
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|(access, mut refresh)| {
            let (client, args) = (client.clone(), args.clone());
            tokio::spawn(async move {
                let (mut times, mut errors) = (Vec::new(), 0usize);
                while Instant::now() < deadline {
                    let answer = match workload {
                        Workload::Refresh => {
                            let body = json!({"refreshToken": refresh});
                            send(&client, "POST", &format!("{}/refresh-token", args.url), None, Some(&body)).await
                        }
                        _ => send(&client, "GET", &format!("{}/me", args.url), Some(&access), None).await,
                    };
                    match answer {
                        Ok((200, body, took)) => {
                            times.push(took);
                            if let Some(next) = body["refreshToken"].as_str() {
                                refresh = next.to_owned();
                            }
                        }
                        _ => errors += 1,
                    }
                }
                (times, errors)
            })
        })
        .collect();
    let (mut times, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (mut some, failed) = task.await?;
        times.append(&mut some);
        errors += failed;
    }
    Ok((times.len(), errors, times, started.elapsed()))
}

/// Every client sends the same fresh refresh token at once: (200s, others, distinct
/// successors among the 200s, the status of refreshing with that successor).
async fn storm(
    client: &HttpClient,
    args: &Arc<LoadArgs>,
    clients: usize,
) -> anyhow::Result<(usize, usize, usize, u16)> {
    let (_, token) = login(client, args).await?;
    let gate = Arc::new(tokio::sync::Barrier::new(clients));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, args, gate, token) = (client.clone(), args.clone(), gate.clone(), token.clone());
            tokio::spawn(async move {
                gate.wait().await;
                let body = json!({"refreshToken": token});
                send(&client, "POST", &format!("{}/refresh-token", args.url), None, Some(&body)).await
            })
        })
        .collect();
    let (mut ok, mut other, mut successors) = (0, 0, BTreeSet::new());
    for task in tasks {
        match task.await? {
            Ok((200, body, _)) => {
                ok += 1;
                successors.insert(body["refreshToken"].as_str().unwrap_or_default().to_owned());
            }
            _ => other += 1,
        }
    }
    let next = match successors.iter().next() {
        Some(successor) => {
            let body = json!({"refreshToken": successor});
            send(client, "POST", &format!("{}/refresh-token", args.url), None, Some(&body)).await?.0
        }
        None => 0,
    };
    Ok((ok, other, successors.len(), next))
}
