//! A store that sits between the code and a real store: it counts every call by
//! operation, and can be told to fail an operation, or the n-th call of any
//! ([`StoreError::Unavailable`]), to play an outage, and can add a fixed latency
//! to every call and record it on a [`Timeline`], to count AWS round trips.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use latchkey::onetime::Purpose;
use latchkey::signing::{DelegatedKeyRecord, DelegatedKeyStore, KeyPeriod, SigningError};
use latchkey::store::{
    ClientInfo, CredentialChange, CredentialStore, LoginAttemptStore, Membership, PasswordChange, RotateOutcome,
    SecretRecord, Session, SessionLookup, SessionStore, StandingChange, StandingOutcome, StoreError, TotpChange, User,
    UserStanding, UserStore, UsersPage,
};
use latchkey::token::SessionId;

use crate::faults::NthCall;
use crate::latency::Timeline;

/// Counts calls per operation and fails the operations named in `failing`.
pub struct CountingStore<S> {
    inner: Arc<S>,
    calls: Mutex<BTreeMap<&'static str, u32>>,
    failing: Mutex<BTreeSet<&'static str>>,
    nth: NthCall,
    timeline: Option<(Arc<Timeline>, std::time::Duration)>,
}

impl<S> CountingStore<S> {
    /// Wraps `inner`; nothing fails until [`CountingStore::fail`].
    pub fn new(inner: Arc<S>) -> Self {
        Self {
            inner,
            calls: Mutex::new(BTreeMap::new()),
            failing: Mutex::new(BTreeSet::new()),
            nth: NthCall::default(),
            timeline: None,
        }
    }

    /// The same store, each call taking `latency` more and recorded on `timeline`
    /// (a stand-in for a DynamoDB round trip).
    pub fn with_latency(self, timeline: Arc<Timeline>, latency: std::time::Duration) -> Self {
        Self { timeline: Some((timeline, latency)), ..self }
    }

    /// The `n`-th call from now (1-based, any operation) fails, once; the others pass.
    pub fn fail_nth(&self, n: u32) {
        self.nth.arm(n);
    }

    /// Whether the call armed by [`CountingStore::fail_nth`] has failed yet (false
    /// when the request made fewer calls).
    pub fn nth_failed(&self) -> bool {
        self.nth.fired()
    }

    /// From now on `operation` (a trait method's name, or `*` for all) fails.
    pub fn fail(&self, operation: &'static str) {
        self.failing.lock().unwrap().insert(operation);
    }

    /// Calls per operation since the last [`CountingStore::take_calls`].
    pub fn take_calls(&self) -> BTreeMap<&'static str, u32> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    async fn enter(&self, operation: &'static str) -> Result<(), StoreError> {
        *self.calls.lock().unwrap().entry(operation).or_default() += 1;
        if let Some((timeline, latency)) = &self.timeline {
            timeline.call(operation, *latency).await;
        }
        let nth = self.nth.fails_now();
        let failing = self.failing.lock().unwrap();
        if nth || failing.contains(operation) || failing.contains("*") {
            return Err(StoreError::Unavailable(format!("injected outage: {operation}")));
        }
        Ok(())
    }
}

#[async_trait]
impl<S: UserStore> UserStore for CountingStore<S> {
    async fn get_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.enter("get_user_by_email").await?;
        self.inner.get_user_by_email(email).await
    }

    async fn user_standing(&self, email: &str) -> Result<Option<UserStanding>, StoreError> {
        self.enter("user_standing").await?;
        self.inner.user_standing(email).await
    }

    async fn get_user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        self.enter("get_user_by_id").await?;
        self.inner.get_user_by_id(user_id).await
    }

    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        self.enter("create_user").await?;
        self.inner.create_user(user).await
    }

    async fn set_password(&self, email: &str, password_hash: &str, now: u64) -> Result<(), StoreError> {
        self.enter("set_password").await?;
        self.inner.set_password(email, password_hash, now).await
    }

    async fn end_sessions(&self, email: &str) -> Result<(), StoreError> {
        self.enter("end_sessions").await?;
        self.inner.end_sessions(email).await
    }

    async fn upgrade_password_hash(&self, email: &str, current_hash: &str, new_hash: &str) -> Result<bool, StoreError> {
        self.enter("upgrade_password_hash").await?;
        self.inner.upgrade_password_hash(email, current_hash, new_hash).await
    }

    async fn set_role(&self, email: &str, role: &str) -> Result<(), StoreError> {
        self.enter("set_role").await?;
        self.inner.set_role(email, role).await
    }

    async fn set_disabled(&self, email: &str, disabled: bool) -> Result<(), StoreError> {
        self.enter("set_disabled").await?;
        self.inner.set_disabled(email, disabled).await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.enter("list_users").await?;
        self.inner.list_users().await
    }

    async fn users_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<UsersPage, StoreError> {
        self.enter("users_page").await?;
        self.inner.users_page(prefix, after, limit).await
    }

    async fn admin_set(&self) -> Result<Option<Vec<String>>, StoreError> {
        self.enter("admin_set").await?;
        self.inner.admin_set().await
    }

    async fn init_admin_set(&self, ids: &[String]) -> Result<(), StoreError> {
        self.enter("init_admin_set").await?;
        self.inner.init_admin_set(ids).await
    }

    async fn change_standing(
        &self,
        read: &User,
        change: &StandingChange,
        membership: Membership,
    ) -> Result<StandingOutcome, StoreError> {
        self.enter("change_standing").await?;
        self.inner.change_standing(read, change, membership).await
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for CountingStore<S> {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.enter("create_session").await?;
        self.inner.create_session(session).await
    }

    async fn get_session(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.enter("get_session").await?;
        self.inner.get_session(session_id).await
    }

    async fn rotate_session(
        &self,
        session_id: &SessionId,
        generation: u64,
        now: u64,
        idle_secs: u64,
        role: &str,
        client: &ClientInfo,
    ) -> Result<RotateOutcome, StoreError> {
        self.enter("rotate_session").await?;
        self.inner.rotate_session(session_id, generation, now, idle_secs, role, client).await
    }

    async fn revoke_session(
        &self,
        session_id: &SessionId,
        now: u64,
        reason: &str,
    ) -> Result<Option<Session>, StoreError> {
        self.enter("revoke_session").await?;
        self.inner.revoke_session(session_id, now, reason).await
    }

    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        self.enter("list_user_sessions").await?;
        self.inner.list_user_sessions(user_id).await
    }

    async fn get_sessions(&self, session_ids: &[SessionId]) -> Result<Vec<Session>, StoreError> {
        self.enter("get_sessions").await?;
        self.inner.get_sessions(session_ids).await
    }

    async fn end_other_sessions(
        &self,
        email: &str,
        epoch: u64,
        keep: &SessionId,
        now: u64,
    ) -> Result<bool, StoreError> {
        self.enter("end_other_sessions").await?;
        self.inner.end_other_sessions(email, epoch, keep, now).await
    }
}

#[async_trait]
impl<S: SessionLookup> SessionLookup for CountingStore<S> {
    async fn session_and_user(
        &self,
        session_id: &SessionId,
        email: &str,
    ) -> Result<(Option<Session>, Option<UserStanding>), StoreError> {
        self.enter("session_and_user").await?;
        self.inner.session_and_user(session_id, email).await
    }
}

#[async_trait]
impl<S: LoginAttemptStore> LoginAttemptStore for CountingStore<S> {
    async fn failures(&self, email: &str, window: u64) -> Result<u32, StoreError> {
        self.enter("failures").await?;
        self.inner.failures(email, window).await
    }

    async fn record_failure(&self, email: &str, window: u64, expires_at: u64) -> Result<u32, StoreError> {
        self.enter("record_failure").await?;
        self.inner.record_failure(email, window, expires_at).await
    }

    async fn clear_failures(&self, email: &str, window: u64) -> Result<(), StoreError> {
        self.enter("clear_failures").await?;
        self.inner.clear_failures(email, window).await
    }

    async fn bump(&self, name: &str, window: u64, expires_at: u64) -> Result<u32, StoreError> {
        self.enter("bump").await?;
        self.inner.bump(name, window, expires_at).await
    }

    async fn forget(&self, name: &str, window: u64) -> Result<(), StoreError> {
        self.enter("forget").await?;
        self.inner.forget(name, window).await
    }
}

#[async_trait]
impl<S: CredentialStore> CredentialStore for CountingStore<S> {
    async fn create_signup(&self, user: &User, now: u64) -> Result<(), StoreError> {
        self.enter("create_signup").await?;
        self.inner.create_signup(user, now).await
    }

    async fn issue_secret(&self, record: &SecretRecord) -> Result<(), StoreError> {
        self.enter("issue_secret").await?;
        self.inner.issue_secret(record).await
    }

    async fn secret(&self, purpose: Purpose, hash: &str) -> Result<Option<SecretRecord>, StoreError> {
        self.enter("secret").await?;
        self.inner.secret(purpose, hash).await
    }

    async fn spend_secret(
        &self,
        record: &SecretRecord,
        now: u64,
        change: &CredentialChange,
    ) -> Result<bool, StoreError> {
        self.enter("spend_secret").await?;
        self.inner.spend_secret(record, now, change).await
    }

    async fn change_password_keeping_session(&self, change: &PasswordChange) -> Result<bool, StoreError> {
        self.enter("change_password_keeping_session").await?;
        self.inner.change_password_keeping_session(change).await
    }

    async fn update_totp(&self, email: &str, user_id: &str, change: &TotpChange) -> Result<bool, StoreError> {
        self.enter("update_totp").await?;
        self.inner.update_totp(email, user_id, change).await
    }
}

#[async_trait]
impl<S: DelegatedKeyStore> DelegatedKeyStore for CountingStore<S> {
    async fn delegated_key(
        &self,
        period: KeyPeriod,
        private: bool,
    ) -> Result<Option<DelegatedKeyRecord>, SigningError> {
        self.enter("delegated_key").await.map_err(|error| SigningError::KeyStore(error.to_string()))?;
        self.inner.delegated_key(period, private).await
    }

    async fn put_delegated_key(&self, record: &DelegatedKeyRecord) -> Result<bool, SigningError> {
        self.enter("put_delegated_key").await.map_err(|error| SigningError::KeyStore(error.to_string()))?;
        self.inner.put_delegated_key(record).await
    }
}
