//! The `refresh_token_reuse` security event, captured from the real tracing
//! output. One test in its own binary: a global subscriber, and no parallel test
//! that could disturb tracing's per-callsite interest cache.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use latchkey::session::{InvalidGrant, RefreshError};
use support::{Backend, POLICY};

#[tokio::test]
async fn reuse_writes_one_structured_event_without_the_token() {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let logs = logs.clone();
        move || Capture(logs.clone())
    };
    tracing::subscriber::set_global_default(tracing_subscriber::fmt().json().with_writer(writer).finish()).unwrap();

    check_reuse_event(Backend::memory(), &logs).await;
    if let Some(backend) = Backend::dynamodb().await {
        check_reuse_event(backend, &logs).await;
    }
}

async fn check_reuse_event(b: Backend, logs: &Mutex<Vec<u8>>) {
    logs.lock().unwrap().clear();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let logs = logs.clone();
        move || Capture(logs.clone())
    };
    let subscriber = tracing_subscriber::fmt().json().with_writer(writer).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sessions = b.manager(POLICY);
    let user = b.user("ada@example.com").await;
    let started = sessions.start(&user).await.unwrap();
    let newest = sessions.refresh(&started.refresh_token).await.unwrap().refresh_token;
    b.clock.advance(POLICY.grace_secs);
    assert!(matches!(sessions.refresh(&started.refresh_token).await, Err(RefreshError::Invalid(InvalidGrant::Reuse))));

    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|event: &serde_json::Value| event["fields"]["event"] == "refresh_token_reuse")
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(events[0]["level"], "WARN");
    assert_eq!(events[0]["fields"]["user_id"], user.id.as_str());
    assert_eq!(events[0]["fields"]["session_id"], started.session.id.to_string().as_str());
    for secret in [&started.refresh_token, &newest] {
        assert!(!text.contains(secret.as_str()), "a refresh token reached the log");
        let mac = secret.rsplit('.').next().unwrap();
        assert!(!text.contains(mac), "a refresh-token MAC reached the log");
    }
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
