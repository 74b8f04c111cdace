//! Login, refresh, logout, password change, forgot and reset, the session list, ending a
//! session, an admin's page of users and both steps of a login with a second factor, end to end with every AWS call (store and KMS
//! `Sign`) taking a fixed latency: prints each request's median latency, how many
//! calls it made and how many it waited for in turn (the depth).
//! Run: `cargo run --release -p latchkey-tests --example round_trips [latency_ms] [runs]
//! [sign_ms]` (default 10 ms, 30 runs, KMS `Sign` as long as a store call), in the
//! signing mode `LATCHKEY_SIGNING` names (`kms` when unset); figures in docs/performance.md. The depths are
//! asserted by `tests/tests/round_trips.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use latchkey_tests::latency::{SlowServices, Trace};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).map(|arg| arg.parse::<u64>().expect("a whole number"));
    let latency = Duration::from_millis(args.next().unwrap_or(10));
    let runs = args.next().unwrap_or(30) as usize;
    let sign_latency = Duration::from_millis(args.next().unwrap_or(latency.as_millis() as u64));
    let signing = latchkey_tests::signing_under_test();
    let rig = SlowServices::with_signing(latency, sign_latency, signing).await;
    let mut rows: Vec<(&str, Vec<Duration>, Option<Trace>)> = vec![
        ("login", vec![], None),
        ("refresh", vec![], None),
        ("logout", vec![], None),
        ("change password", vec![], None),
        ("forgot password", vec![], None),
        ("reset password", vec![], None),
        ("list sessions", vec![], None),
        ("end a session", vec![], None),
        ("admin: a page of users", vec![], None),
        ("login with a second factor: password step", vec![], None),
        ("login with a second factor: code step", vec![], None),
    ];
    let (admin, _) = rig.admin_login().await;
    let admin = admin["accessToken"].as_str().unwrap().to_owned();
    for _ in 0..runs {
        let started = Instant::now();
        let (tokens, trace) = rig.login().await;
        record(&mut rows[0], started, trace);
        let started = Instant::now();
        let (next, trace) = rig.refresh(tokens["refreshToken"].as_str().unwrap()).await;
        record(&mut rows[1], started, trace);
        let started = Instant::now();
        let (_, trace) = rig.logout(next["refreshToken"].as_str().unwrap()).await;
        record(&mut rows[2], started, trace);
        let (tokens, _) = rig.login().await;
        let started = Instant::now();
        let (_, trace) = rig.change_password(tokens["accessToken"].as_str().unwrap()).await;
        record(&mut rows[3], started, trace);
        let started = Instant::now();
        let (_, trace) = rig.forgot().await;
        record(&mut rows[4], started, trace);
        let started = Instant::now();
        let (_, trace) = rig.reset().await;
        record(&mut rows[5], started, trace);
        let (mine, _) = rig.login().await;
        let (other, _) = rig.login().await;
        let access = mine["accessToken"].as_str().unwrap();
        let started = Instant::now();
        let (listed, trace) = rig.sessions(access).await;
        record(&mut rows[6], started, trace);
        let other = other["accessToken"].as_str().unwrap();
        let (_, claims) = latchkey::token::dangerous::decode_unverified(other).unwrap();
        let started = Instant::now();
        let (_, trace) = rig.end_session(access, claims["sid"].as_str().unwrap()).await;
        record(&mut rows[7], started, trace);
        assert!(listed["sessions"].as_array().is_some_and(|s| s.len() >= 2));
        let started = Instant::now();
        let (_, trace) = rig.list_users(&admin).await;
        record(&mut rows[8], started, trace);
        let started = Instant::now();
        let (challenge, trace) = rig.mfa_password_step().await;
        record(&mut rows[9], started, trace);
        let started = Instant::now();
        let (_, trace) = rig.mfa_code_step(&challenge).await;
        record(&mut rows[10], started, trace);
        // So the next password change has no other live session to mark.
        rig.logout(mine["refreshToken"].as_str().unwrap()).await;
    }
    println!(
        "AWS latency {} ms per store call, {} ms per KMS Sign, {runs} runs each, signing {:?} (in-memory store, local key, no response floor)",
        latency.as_millis(),
        sign_latency.as_millis(),
        signing.mode,
    );
    println!("| Request | Median | AWS calls | Depth | Calls, in turn |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, mut times, trace) in rows {
        times.sort();
        let trace = trace.unwrap();
        let median = times[times.len() / 2];
        println!(
            "| {name} | {:.1} ms | {} | {} | {} |",
            median.as_secs_f64() * 1000.0,
            trace.count(),
            trace.depth(),
            trace.stages()
        );
    }
}

fn record(row: &mut (&str, Vec<Duration>, Option<Trace>), started: Instant, trace: Trace) {
    row.1.push(started.elapsed());
    if let Some(first) = &row.2 {
        assert_eq!(first.stages(), trace.stages(), "every run of {} makes the same calls", row.0);
    }
    row.2 = Some(trace);
}
