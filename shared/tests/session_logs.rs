//! The `refresh_token_reuse` security event and the `refresh_grace_replay` event,
//! captured from the real tracing output. One test in its own binary: a global subscriber, and no parallel test
//! that could disturb tracing's per-callsite interest cache.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Mutex;

use latchkey::session::{InvalidGrant, RefreshError};
use support::{Backend, POLICY};

#[tokio::test]
async fn reuse_writes_one_structured_event_without_the_token() {
    let logs = support::capture_logs();
    check_reuse_event(Backend::memory(), &logs).await;
    if let Some(backend) = Backend::dynamodb().await {
        check_reuse_event(backend, &logs).await;
    }
}

async fn check_reuse_event(b: Backend, logs: &Mutex<Vec<u8>>) {
    logs.lock().unwrap().clear();
    let sessions = b.manager(POLICY);
    let user = b.user("ada@example.com").await;
    let started = sessions.start(&user).await.unwrap();
    let newest = sessions.refresh(&started.refresh_token).await.unwrap().refresh_token;
    let replayed = sessions.refresh(&started.refresh_token).await.unwrap();
    assert_eq!(replayed.refresh_token, newest, "a grace replay inside the window");
    b.clock.advance(POLICY.grace_secs);
    assert!(matches!(sessions.refresh(&started.refresh_token).await, Err(RefreshError::Invalid(InvalidGrant::Reuse))));

    let (text, lines) = support::log_lines(logs);
    let events: Vec<&serde_json::Value> = lines.iter().filter(|line| line["event"] == "refresh_token_reuse").collect();
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(events[0]["level"], "WARN");
    assert_eq!(events[0]["user_id"], user.id.as_str());
    assert_eq!(events[0]["session_id"], started.session.id.to_string().as_str());
    let rotations: Vec<&serde_json::Value> = lines.iter().filter(|line| line["event"] == "refresh_rotated").collect();
    assert_eq!(rotations.len(), 1, "one rotation, then a replay and a reuse: {text}");
    assert_eq!((rotations[0]["generation"].as_u64(), rotations[0]["level"].as_str()), (Some(1), Some("INFO")));
    let replays: Vec<&serde_json::Value> =
        lines.iter().filter(|line| line["event"] == "refresh_grace_replay").collect();
    assert_eq!(replays.len(), 1, "{text}");
    assert_eq!((replays[0]["level"].as_str(), replays[0]["user_id"].as_str()), (Some("INFO"), Some(user.id.as_str())));
    assert_eq!(replays[0]["session_id"], started.session.id.to_string().as_str());
    assert_eq!(
        (replays[0]["presented_generation"].as_u64(), replays[0]["current_generation"].as_u64()),
        (Some(0), Some(1))
    );
    for secret in [&started.refresh_token, &newest] {
        assert!(!text.contains(secret.as_str()), "a refresh token reached the log");
        let mac = secret.rsplit('.').next().unwrap();
        assert!(!text.contains(mac), "a refresh-token MAC reached the log");
    }
}
