//! The authorizer's session check: whether an access token's session, and its
//! user, are still live, so logout, reuse detection, a password change or a
//! disabled user reach the APIs within seconds rather than at the token's expiry.
//!
//! One store read per session per interval per warm instance; both answers are
//! cached in process, in a bounded map. Only verified tokens are checked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::SessionCheckFailure;
use crate::session::user_refusal;
use crate::store::{SessionLookup, StoreError};
use crate::token::{AccessClaims, SessionId};

/// Most sessions remembered per warm instance; past it, stale entries go first,
/// then everything (the next request of each session reads again).
pub const CACHE_CAPACITY: usize = 10_000;

/// Longest the check waits for the store before treating the read as failed,
/// well inside the authorizer's 5 s timeout.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// What the check found for one token, for the log line and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Answered from the cache, no store call.
    Cached {
        /// Whether the session is live.
        live: bool,
    },
    /// Read from the store just now.
    Read {
        /// Whether the session is live.
        live: bool,
    },
    /// The read failed or timed out; `live` is what the failure setting decides.
    Failed {
        /// The answer the failure setting gives.
        live: bool,
    },
}

impl Checked {
    /// Whether the token may pass.
    pub fn live(self) -> bool {
        match self {
            Self::Cached { live } | Self::Read { live } | Self::Failed { live } => live,
        }
    }
}

/// What one read found: whether the session (and its user) is live, and the
/// user's role as stored, which each token is compared with (so a token signed
/// before a role change is refused while its refreshed successor, same session,
/// passes from the same cached read).
#[derive(Clone)]
struct Entry {
    checked_at: u64,
    live: bool,
    role: Option<String>,
}

impl Entry {
    fn allows(&self, claims: &AccessClaims) -> bool {
        self.live && self.role.as_deref() == Some(claims.role.as_str())
    }
}

/// The check, built once at cold start; shared by every invocation of a warm instance.
pub struct SessionCheck {
    lookup: Arc<dyn SessionLookup>,
    interval_secs: u64,
    on_failure: SessionCheckFailure,
    cache: Mutex<HashMap<String, Entry>>,
    reads: AtomicU64,
}

impl std::fmt::Debug for SessionCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCheck")
            .field("interval_secs", &self.interval_secs)
            .field("on_failure", &self.on_failure)
            .finish_non_exhaustive()
    }
}

impl SessionCheck {
    /// A check reading `lookup` at most every `interval_secs` per session.
    pub fn new(lookup: Arc<dyn SessionLookup>, interval_secs: u64, on_failure: SessionCheckFailure) -> Self {
        Self { lookup, interval_secs, on_failure, cache: Mutex::new(HashMap::new()), reads: AtomicU64::new(0) }
    }

    /// How many store reads the check has made (for tests and benchmarks).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Whether the session of `claims` (already verified) is live at `now`.
    pub async fn check(&self, claims: &AccessClaims, now: u64) -> Checked {
        if let Some(entry) = self.cached(&claims.sid, now) {
            return Checked::Cached { live: entry.allows(claims) };
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let read = tokio::time::timeout(LOOKUP_TIMEOUT, self.read(claims, now)).await;
        match read {
            Ok(Ok(entry)) => {
                let live = entry.allows(claims);
                self.remember(&claims.sid, entry);
                Checked::Read { live }
            }
            Ok(Err(error)) => self.failed(&error.to_string()),
            Err(_) => self.failed("timed out"),
        }
    }

    fn failed(&self, why: &str) -> Checked {
        let live = self.on_failure == SessionCheckFailure::Allow;
        tracing::error!(event = "session_check_failed", error = %why, allowed = live, "session check could not read the store");
        Checked::Failed { live }
    }

    async fn read(&self, claims: &AccessClaims, now: u64) -> Result<Entry, StoreError> {
        let Ok(session_id) = claims.sid.parse::<SessionId>() else {
            return Ok(Entry { checked_at: now, live: false, role: None });
        };
        let (session, user) = self.lookup.session_and_user(&session_id, &claims.email).await?;
        let live = session.is_some_and(|session| {
            session.is_live(now) && session.user_id == claims.sub && user_refusal(&session, user.as_ref()).is_none()
        });
        // A role changed since the token was signed makes the token "not live" too
        // (Entry::allows): the client refreshes into a token with the role as it now is.
        Ok(Entry { checked_at: now, live, role: user.map(|user| user.role) })
    }

    fn cached(&self, sid: &str, now: u64) -> Option<Entry> {
        let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.get(sid).cloned().filter(|entry| now < entry.checked_at.saturating_add(self.interval_secs))
    }

    fn remember(&self, sid: &str, entry: Entry) {
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= CACHE_CAPACITY && !cache.contains_key(sid) {
            let fresh_after = entry.checked_at.saturating_sub(self.interval_secs);
            cache.retain(|_, old| old.checked_at > fresh_after);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(sid.to_owned(), entry);
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::store::{Session, UserStanding};

    /// A store that never answers.
    struct Hanging;

    #[async_trait]
    impl SessionLookup for Hanging {
        async fn session_and_user(
            &self,
            _: &SessionId,
            _: &str,
        ) -> Result<(Option<Session>, Option<UserStanding>), StoreError> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok((None, None))
        }
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "latchkey".into(),
            aud: "latchkey-api".into(),
            sub: "u".into(),
            email: "ada@example.com".into(),
            role: "member".into(),
            sid: SessionId::random().unwrap().to_string(),
            amr: vec!["pwd".to_owned()],
            jti: "j".into(),
            iat: 0,
            nbf: 0,
            exp: 900,
        }
    }

    /// A store that never answers is a failure after `LOOKUP_TIMEOUT` (on tokio's
    /// paused clock: exactly then, no waiting), answered as the setting says, and not
    /// cached: the next request reads again.
    #[tokio::test(start_paused = true)]
    async fn a_store_that_never_answers_fails_the_check_at_the_lookup_timeout() {
        for (setting, live) in [(SessionCheckFailure::Deny, false), (SessionCheckFailure::Allow, true)] {
            let check = SessionCheck::new(Arc::new(Hanging), 30, setting);
            let claims = claims();
            let started = tokio::time::Instant::now();
            assert_eq!(check.check(&claims, 100).await, Checked::Failed { live });
            assert_eq!(started.elapsed(), LOOKUP_TIMEOUT);
            check.check(&claims, 100).await;
            assert_eq!(check.reads(), 2, "a failure is not cached");
        }
    }
}
