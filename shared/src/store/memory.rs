//! The in-memory store for `latchkey dev` and fast tests: the same conditional
//! semantics as DynamoDB, each operation atomic under one mutex.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    ClientInfo, CredentialChange, CredentialStore, ListedUser, LoginAttemptStore, MAX_SESSIONS_READ, Membership,
    PasswordChange, RotateOutcome, SecretRecord, Session, SessionLookup, SessionStore, StandingChange, StandingOutcome,
    StoreError, TotpChange, TotpState, User, UserStanding, UserStore, UsersPage,
};
use crate::onetime::Purpose;
use crate::signing::{DelegatedKeyRecord, DelegatedKeyStore, KeyPeriod, SigningError};
use crate::token::SessionId;

/// Users and sessions in process memory; lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, User>,
    sessions: HashMap<SessionId, Session>,
    failures: HashMap<(String, u64), u32>,
    counters: HashMap<(String, u64), u32>,
    secrets: HashMap<(Purpose, String), SecretRecord>,
    /// The newest secret of each purpose, per user email (the user item's pointer).
    pointers: HashMap<(String, Purpose), String>,
    /// The recorded active administrators (`None`: no record yet).
    admins: Option<std::collections::BTreeSet<String>>,
    /// Delegated signing keys, one per period.
    signing_keys: HashMap<KeyPeriod, DelegatedKeyRecord>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change (every
        // operation mutates after all checks), so a poisoned lock is still sound.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update_user(&self, email: &str, change: impl FnOnce(&mut User)) -> Result<(), StoreError> {
        let mut state = self.lock();
        let user = state.users.get_mut(email).ok_or(StoreError::NotFound)?;
        change(user);
        Ok(())
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn get_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        Ok(self.lock().users.get(email).cloned())
    }

    async fn user_standing(&self, email: &str) -> Result<Option<UserStanding>, StoreError> {
        Ok(self.lock().users.get(email).map(UserStanding::from))
    }

    async fn get_user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        Ok(self.lock().users.values().find(|user| user.id == user_id).cloned())
    }

    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.users.contains_key(&user.email) {
            return Err(StoreError::DuplicateEmail);
        }
        state.users.insert(user.email.clone(), user.clone());
        Ok(())
    }

    async fn set_password(&self, email: &str, password_hash: &str, now: u64) -> Result<(), StoreError> {
        self.update_user(email, |user| {
            user.password_hash = password_hash.to_owned();
            user.password_changed_at = now;
            user.session_epoch = user.session_epoch.saturating_add(1);
        })
    }

    async fn end_sessions(&self, email: &str) -> Result<(), StoreError> {
        self.update_user(email, |user| user.session_epoch = user.session_epoch.saturating_add(1))
    }

    async fn upgrade_password_hash(&self, email: &str, current_hash: &str, new_hash: &str) -> Result<bool, StoreError> {
        let mut state = self.lock();
        match state.users.get_mut(email) {
            Some(user) if user.password_hash == current_hash => {
                user.password_hash = new_hash.to_owned();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn set_role(&self, email: &str, role: &str) -> Result<(), StoreError> {
        self.update_user(email, |user| user.role = role.to_owned())
    }

    async fn set_disabled(&self, email: &str, disabled: bool) -> Result<(), StoreError> {
        self.update_user(email, |user| user.disabled = disabled)
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let mut users: Vec<User> = self.lock().users.values().cloned().collect();
        users.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(users)
    }

    async fn users_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<UsersPage, StoreError> {
        let mut users: Vec<ListedUser> = self
            .lock()
            .users
            .values()
            .filter(|user| user.email.starts_with(prefix) && after.is_none_or(|after| user.email.as_str() > after))
            .map(ListedUser::from)
            .collect();
        users.sort_by(|a, b| a.email.cmp(&b.email));
        let more = users.len() > limit;
        users.truncate(limit);
        let last = if more { users.last().map(|user| user.email.clone()) } else { None };
        Ok(UsersPage { users, last })
    }

    async fn admin_set(&self) -> Result<Option<Vec<String>>, StoreError> {
        Ok(self.lock().admins.as_ref().map(|ids| ids.iter().cloned().collect()))
    }

    async fn init_admin_set(&self, ids: &[String]) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.admins.is_none() {
            state.admins = Some(ids.iter().cloned().collect());
        }
        Ok(())
    }

    async fn change_standing(
        &self,
        read: &User,
        change: &StandingChange,
        membership: Membership,
    ) -> Result<StandingOutcome, StoreError> {
        let mut state = self.lock();
        let as_read = state
            .users
            .get(&read.email)
            .is_some_and(|user| user.id == read.id && user.role == read.role && user.disabled == read.disabled);
        if !as_read {
            return Ok(StandingOutcome::Changed);
        }
        let admins = state.admins.get_or_insert_with(Default::default);
        match membership {
            Membership::Leave if admins.len() <= 1 && admins.contains(&read.id) => {
                return Ok(StandingOutcome::LastAdmin);
            }
            Membership::Leave => {
                admins.remove(&read.id);
            }
            Membership::Join => {
                admins.insert(read.id.clone());
            }
            Membership::Same => {}
        }
        match change {
            StandingChange::Delete => {
                state.users.remove(&read.email);
            }
            StandingChange::Update { role, disabled } => {
                if let Some(user) = state.users.get_mut(&read.email) {
                    if let Some(role) = role {
                        user.role.clone_from(role);
                    }
                    if let Some(disabled) = disabled {
                        user.disabled = *disabled;
                        if *disabled {
                            user.session_epoch = user.session_epoch.saturating_add(1);
                        }
                    }
                }
            }
        }
        Ok(StandingOutcome::Applied)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.sessions.contains_key(&session.id) {
            return Err(StoreError::Unavailable("session id collision".to_owned()));
        }
        state.sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn get_session(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.lock().sessions.get(session_id).cloned())
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
        let mut state = self.lock();
        let Some(session) = state.sessions.get_mut(session_id) else {
            return Ok(RotateOutcome::Conflict(None));
        };
        let next = generation.checked_add(1);
        match next {
            Some(next) if session.generation == generation && session.is_live(now) => {
                session.generation = next;
                session.rotated_at = now;
                session.idle_expires_at = now.saturating_add(idle_secs);
                session.role = Some(role.to_owned());
                if client.user_agent.is_some() {
                    session.client.user_agent.clone_from(&client.user_agent);
                }
                if client.ip.is_some() {
                    session.client.ip.clone_from(&client.ip);
                }
                Ok(RotateOutcome::Rotated(session.clone()))
            }
            _ => Ok(RotateOutcome::Conflict(Some(session.clone()))),
        }
    }

    async fn revoke_session(
        &self,
        session_id: &SessionId,
        now: u64,
        reason: &str,
    ) -> Result<Option<Session>, StoreError> {
        let mut state = self.lock();
        Ok(state.sessions.get_mut(session_id).map(|session| {
            if session.revoked_at.is_none() {
                session.revoked_at = Some(now);
                session.revoke_reason = Some(reason.to_owned());
            }
            session.clone()
        }))
    }

    async fn get_sessions(&self, session_ids: &[SessionId]) -> Result<Vec<Session>, StoreError> {
        if session_ids.len() > MAX_SESSIONS_READ {
            return Err(StoreError::Unavailable(format!("at most {MAX_SESSIONS_READ} sessions per read")));
        }
        let state = self.lock();
        Ok(session_ids.iter().filter_map(|id| state.sessions.get(id).cloned()).collect())
    }

    async fn end_other_sessions(
        &self,
        email: &str,
        epoch: u64,
        keep: &SessionId,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let user_ok = state.users.get(email).is_some_and(|user| user.session_epoch == epoch);
        let kept_ok =
            state.sessions.get(keep).is_some_and(|session| session.is_live(now) && session.user_epoch == epoch);
        if !(user_ok && kept_ok) {
            return Ok(false);
        }
        let next = epoch.saturating_add(1);
        if let Some(user) = state.users.get_mut(email) {
            user.session_epoch = next;
        }
        if let Some(session) = state.sessions.get_mut(keep) {
            session.user_epoch = next;
        }
        Ok(true)
    }

    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        // As the index: without client details.
        let mut sessions: Vec<Session> = self
            .lock()
            .sessions
            .values()
            .filter(|session| session.user_id == user_id)
            .map(|session| Session { client: ClientInfo::default(), ..session.clone() })
            .collect();
        sessions.sort_by_key(|session| (session.created_at, session.id));
        Ok(sessions)
    }
}

#[async_trait]
impl SessionLookup for MemoryStore {
    async fn session_and_user(
        &self,
        session_id: &SessionId,
        email: &str,
    ) -> Result<(Option<Session>, Option<UserStanding>), StoreError> {
        let state = self.lock();
        Ok((state.sessions.get(session_id).cloned(), state.users.get(email).map(UserStanding::from)))
    }
}

#[async_trait]
impl LoginAttemptStore for MemoryStore {
    async fn failures(&self, email: &str, window: u64) -> Result<u32, StoreError> {
        Ok(self.lock().failures.get(&(email.to_owned(), window)).copied().unwrap_or(0))
    }

    async fn record_failure(&self, email: &str, window: u64, _expires_at: u64) -> Result<u32, StoreError> {
        let mut state = self.lock();
        let count = state.failures.entry((email.to_owned(), window)).or_insert(0);
        *count = count.saturating_add(1);
        Ok(*count)
    }

    async fn bump(&self, name: &str, window: u64, _expires_at: u64) -> Result<u32, StoreError> {
        let mut state = self.lock();
        let count = state.counters.entry((name.to_owned(), window)).or_insert(0);
        *count = count.saturating_add(1);
        Ok(*count)
    }

    async fn clear_failures(&self, email: &str, window: u64) -> Result<(), StoreError> {
        self.lock().failures.remove(&(email.to_owned(), window));
        Ok(())
    }

    async fn forget(&self, name: &str, window: u64) -> Result<(), StoreError> {
        self.lock().counters.remove(&(name.to_owned(), window));
        Ok(())
    }
}

#[async_trait]
impl CredentialStore for MemoryStore {
    async fn create_signup(&self, user: &User, now: u64) -> Result<(), StoreError> {
        let mut state = self.lock();
        let replaceable = |existing: &User| !existing.email_verified && existing.pending_expired(now);
        if state.users.get(&user.email).is_some_and(|existing| !replaceable(existing)) {
            return Err(StoreError::DuplicateEmail);
        }
        state.users.insert(user.email.clone(), user.clone());
        Ok(())
    }

    async fn issue_secret(&self, record: &SecretRecord) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.users.get(&record.email).is_none_or(|user| user.id != record.user_id) {
            return Err(StoreError::NotFound);
        }
        state.secrets.insert((record.purpose, record.hash.clone()), record.clone());
        state.pointers.insert((record.email.clone(), record.purpose), record.hash.clone());
        Ok(())
    }

    async fn secret(&self, purpose: Purpose, hash: &str) -> Result<Option<SecretRecord>, StoreError> {
        Ok(self.lock().secrets.get(&(purpose, hash.to_owned())).cloned())
    }

    async fn spend_secret(
        &self,
        record: &SecretRecord,
        now: u64,
        change: &CredentialChange,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let key = (record.purpose, record.hash.clone());
        let live = state.secrets.get(&key).is_some_and(|stored| stored.expires_at > now);
        let pointed = state.pointers.get(&(record.email.clone(), record.purpose)) == Some(&record.hash);
        let owner = state.users.get(&record.email).is_some_and(|user| user.id == record.user_id);
        if !(live && pointed && owner) {
            return Ok(false);
        }
        let Some(user) = state.users.get_mut(&record.email) else { return Ok(false) };
        match change {
            CredentialChange::SetPassword { password_hash } => {
                user.password_hash = password_hash.clone();
                user.password_changed_at = now;
                user.session_epoch = user.session_epoch.saturating_add(1);
                user.email_verified = true;
                user.pending_expires_at = None;
            }
            CredentialChange::VerifyEmail => {
                user.email_verified = true;
                user.pending_expires_at = None;
            }
            CredentialChange::Totp(change) => {
                if !apply_totp(&mut user.totp, change) {
                    return Ok(false);
                }
            }
        }
        state.secrets.remove(&key);
        state.pointers.remove(&(record.email.clone(), record.purpose));
        Ok(true)
    }

    async fn change_password_keeping_session(&self, change: &PasswordChange) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let user_ok = state
            .users
            .get(&change.email)
            .is_some_and(|user| user.password_hash == change.current_hash && user.session_epoch == change.epoch);
        let session_ok = state
            .sessions
            .get(&change.session_id)
            .is_some_and(|session| session.generation == change.generation && session.is_live(change.now));
        if !(user_ok && session_ok) {
            return Ok(false);
        }
        let next_epoch = change.epoch.saturating_add(1);
        if let Some(user) = state.users.get_mut(&change.email) {
            user.password_hash = change.new_hash.clone();
            user.password_changed_at = change.now;
            user.session_epoch = next_epoch;
        }
        if let Some(session) = state.sessions.get_mut(&change.session_id) {
            session.user_epoch = next_epoch;
            session.generation = change.generation.saturating_add(1);
            session.rotated_at = change.now;
            session.idle_expires_at = change.now.saturating_add(change.idle_secs);
        }
        Ok(true)
    }

    async fn update_totp(&self, email: &str, user_id: &str, change: &TotpChange) -> Result<bool, StoreError> {
        let mut state = self.lock();
        Ok(match state.users.get_mut(email) {
            Some(user) if user.id == user_id => apply_totp(&mut user.totp, change),
            _ => false,
        })
    }
}

/// Applies `change` to `totp` if its condition holds (as the DynamoDB store's
/// condition expressions say); whether it did.
fn apply_totp(totp: &mut TotpState, change: &TotpChange) -> bool {
    match change {
        TotpChange::Begin { pending } if !totp.enabled() => totp.pending = Some(pending.clone()),
        TotpChange::Confirm { pending, step, recovery, now }
            if !totp.enabled() && totp.pending.as_ref() == Some(pending) =>
        {
            *totp = TotpState {
                secret: Some(pending.clone()),
                pending: None,
                last_step: *step,
                recovery: recovery.clone(),
                enabled_at: Some(*now),
            };
        }
        TotpChange::Step { step } if totp.enabled() && totp.last_step < *step => totp.last_step = *step,
        TotpChange::Recovery { hash } if totp.enabled() && totp.recovery.contains(hash) => {
            totp.recovery.retain(|kept| kept != hash);
        }
        TotpChange::Remove { secret } if secret.is_none() || *secret == totp.secret => *totp = TotpState::default(),
        _ => return false,
    }
    true
}

#[async_trait]
impl DelegatedKeyStore for MemoryStore {
    async fn delegated_key(
        &self,
        period: KeyPeriod,
        private: bool,
    ) -> Result<Option<DelegatedKeyRecord>, SigningError> {
        let record = self.lock().signing_keys.get(&period).cloned();
        Ok(record.map(|record| DelegatedKeyRecord {
            sealed_private: if private { record.sealed_private } else { None },
            ..record
        }))
    }

    async fn put_delegated_key(&self, record: &DelegatedKeyRecord) -> Result<bool, SigningError> {
        let mut state = self.lock();
        if state.signing_keys.contains_key(&record.period) {
            return Ok(false);
        }
        state.signing_keys.insert(record.period, record.clone());
        Ok(true)
    }
}
