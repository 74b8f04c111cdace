//! User accounts: creation, login authentication, password changes, roles and
//! disabling, each keeping the user's sessions consistent with the change.

use std::sync::Arc;

use crate::config::Config;
use crate::encoding::{b64url, random_bytes};
use crate::password::{Password, PasswordError, PasswordHasher, Verification};
use crate::session::SessionManager;
use crate::store::{
    CredentialStore, InvalidEmail, LoginAttemptStore, Membership, PasswordChange, Session, StandingChange,
    StandingOutcome, StoreError, User, UserStore, normalize_email,
};
use crate::token::{RefreshToken, SessionId};

/// Fewest characters a new password may have (NIST SP 800-63B); the most is
/// [`crate::password::MAX_PASSWORD_BYTES`] bytes.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Role given to users created without one.
pub const DEFAULT_ROLE: &str = "member";

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The email cannot be a login name.
    #[error(transparent)]
    InvalidEmail(#[from] InvalidEmail),
    /// The new password is shorter than [`MIN_PASSWORD_CHARS`].
    #[error("password must have at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    /// A role must be 1-64 characters of `A-Z a-z 0-9 _ - : . /`.
    #[error("role must be 1-64 characters of A-Z a-z 0-9 _ - : . /")]
    InvalidRole,
    /// Hashing failed, or a stored hash is corrupt.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The store failed, or the user does not exist / already exists.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The change would leave no active administrator (demoting, disabling or deleting
    /// the last one).
    #[error("the last active administrator cannot be demoted, disabled or deleted")]
    LastAdmin,
    /// The user changed between the read and the write (a concurrent change): nothing
    /// was written; read again and retry.
    #[error("the user changed meanwhile; nothing was written")]
    Conflict,
}

/// The failed-login limit: at most `max_failures` per email in each fixed window.
#[derive(Clone)]
pub struct LoginThrottle {
    attempts: Arc<dyn LoginAttemptStore>,
    max_failures: u32,
    window_secs: u64,
}

impl LoginThrottle {
    /// The limit `config` sets over `attempts`; `None` when it is off (`LATCHKEY_LOGIN_MAX_FAILURES=0`).
    pub fn from_config(attempts: Arc<dyn LoginAttemptStore>, config: &Config) -> Option<Self> {
        (config.login_max_failures > 0).then(|| Self {
            attempts,
            max_failures: config.login_max_failures,
            window_secs: config.login_lockout.as_secs().max(1),
        })
    }
}

/// What a login attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication<T = User> {
    /// Right password, enabled user (or what [`Accounts::login_then`] made of it).
    Success(T),
    /// Unknown email, wrong password, no password yet (an invitation not accepted),
    /// an expired sign-up or a disabled user (indistinguishable).
    Failure,
    /// Right password, but the email of this sign-up is not verified yet.
    Unverified,
    /// Too many failures for this email in the current window; no password was checked.
    Throttled {
        /// Seconds until the window ends.
        retry_after_secs: u64,
    },
}

/// Account operations over a [`UserStore`] and a [`SessionManager`].
#[derive(Clone)]
pub struct Accounts {
    users: Arc<dyn UserStore>,
    sessions: SessionManager,
    hasher: PasswordHasher,
    throttle: Option<LoginThrottle>,
    credentials: Option<Arc<dyn CredentialStore>>,
    admin_role: String,
}

/// A password changed in a session that continues: the user and session as now
/// stored, and the session's new refresh token.
pub struct PasswordChanged {
    /// The user, with the new epoch.
    pub user: User,
    /// The continuing session, rotated and in the new epoch.
    pub session: Session,
    /// Its refresh token.
    pub refresh_token: String,
}

impl std::fmt::Debug for PasswordChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChanged")
            .field("user", &self.user)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("sessions", &self.sessions)
            .field("hasher", &self.hasher)
            .field("throttled", &self.throttle.is_some())
            .finish_non_exhaustive()
    }
}

impl Accounts {
    /// Accounts over `users`, ending sessions through `sessions`, hashing with `hasher`.
    pub fn new(users: Arc<dyn UserStore>, sessions: SessionManager, hasher: PasswordHasher) -> Self {
        Self {
            users,
            sessions,
            hasher,
            throttle: None,
            credentials: None,
            admin_role: crate::config::DEFAULT_ADMIN_ROLE.to_owned(),
        }
    }

    /// The same accounts with `role` as the administrators' role (`LATCHKEY_ADMIN_ROLE`).
    pub fn with_admin_role(self, role: impl Into<String>) -> Self {
        Self { admin_role: role.into(), ..self }
    }

    /// The administrators' role.
    pub fn admin_role(&self) -> &str {
        &self.admin_role
    }

    /// Whether a user with `role` and `disabled` is an active administrator.
    pub fn is_active_admin(&self, role: &str, disabled: bool) -> bool {
        role == self.admin_role && !disabled
    }

    /// The same accounts with a failed-login limit on [`Accounts::login`].
    pub fn with_throttle(self, throttle: Option<LoginThrottle>) -> Self {
        Self { throttle, ..self }
    }

    /// The session manager.
    pub fn sessions(&self) -> &SessionManager {
        &self.sessions
    }

    /// The user store.
    pub fn users(&self) -> &Arc<dyn UserStore> {
        &self.users
    }

    /// Creates a user with a random id; the email is normalised and must be new.
    pub async fn create(&self, email: &str, password: &Password, role: &str) -> Result<User, AccountError> {
        let id = random_bytes::<16>().map_err(|e| StoreError::Unavailable(format!("randomness: {e}")))?;
        self.create_with_id(&b64url(id), email, password, role).await
    }

    /// Creates a user with the given id (the sample data's fixed `user-demo`, which
    /// the sample access tokens name); otherwise as [`Accounts::create`].
    pub async fn create_with_id(
        &self,
        id: &str,
        email: &str,
        password: &Password,
        role: &str,
    ) -> Result<User, AccountError> {
        let email = normalize_email(email)?;
        check_new_password(password)?;
        check_role(role)?;
        let password_hash = self.hasher.hash(password).await?;
        let now = self.sessions.clock().now();
        let user = User {
            id: id.to_owned(),
            email,
            password_hash,
            role: role.to_owned(),
            disabled: false,
            password_changed_at: 0,
            session_epoch: 0,
            created_at: now,
            // An operator made it and gave out the password: the address is theirs to vouch for.
            email_verified: true,
            pending_expires_at: None,
            totp: Default::default(),
        };
        self.create_user(&user).await?;
        tracing::info!(event = "user_created", user_id = %user.id, role = %user.role);
        Ok(user)
    }

    /// Checks an email and password for login. `Ok(None)` for an unknown email, a
    /// wrong password or a disabled user, all at the same cost (one argon2id
    /// verification). On success, a hash weaker than the configured parameters
    /// is replaced.
    pub async fn authenticate(&self, email: &str, password: &Password) -> Result<Option<User>, AccountError> {
        let user = match normalize_email(email) {
            Ok(email) => self.users.get_user_by_email(&email).await?,
            Err(InvalidEmail) => None,
        };
        Ok(match self.check_password(user, password).await? {
            Authentication::Success(user) => Some(user),
            _ => None,
        })
    }

    /// The password check of [`Accounts::authenticate`] on a user already read. An
    /// unknown email, and a user without a password (an invitation not accepted
    /// yet), cost one verification of the dummy hash; an expired sign-up is as if
    /// unknown; a right password on an unverified sign-up is
    /// [`Authentication::Unverified`].
    async fn check_password(&self, user: Option<User>, password: &Password) -> Result<Authentication, AccountError> {
        let now = self.sessions.clock().now();
        let user = user.filter(|user| !user.pending_expired(now));
        let stored = user.as_ref().filter(|user| user.has_password()).map(|user| user.password_hash.as_str());
        let verification = self.hasher.verify(password, stored).await?;
        let (user, needs_rehash) = match (user, verification) {
            (None, _) => {
                tracing::info!(event = "login_failed", reason = "unknown_email");
                return Ok(Authentication::Failure);
            }
            (Some(user), _) if !user.has_password() => {
                tracing::info!(event = "login_failed", user_id = %user.id, reason = "no_password");
                return Ok(Authentication::Failure);
            }
            (Some(user), Verification::Invalid) => {
                tracing::info!(event = "login_failed", user_id = %user.id, reason = "wrong_password");
                return Ok(Authentication::Failure);
            }
            (Some(user), Verification::Valid { .. }) if user.disabled => {
                tracing::info!(event = "login_failed", user_id = %user.id, reason = "user_disabled");
                return Ok(Authentication::Failure);
            }
            (Some(user), Verification::Valid { .. }) if !user.email_verified => {
                tracing::info!(event = "login_failed", user_id = %user.id, reason = "email_unverified");
                return Ok(Authentication::Unverified);
            }
            (Some(user), Verification::Valid { needs_rehash }) => (user, needs_rehash),
        };
        tracing::info!(event = "login_succeeded", user_id = %user.id);
        if needs_rehash {
            let stronger = self.hasher.hash(password).await?;
            match self.users.upgrade_password_hash(&user.email, &user.password_hash, &stronger).await {
                Ok(upgraded) => {
                    tracing::info!(event = "password_rehash", user_id = %user.id, upgraded)
                }
                // The login itself succeeded; the upgrade is retried at the next one.
                Err(error) => {
                    tracing::warn!(event = "password_rehash_failed", user_id = %user.id, %error)
                }
            }
        }
        Ok(Authentication::Success(user))
    }

    /// A login attempt: [`Accounts::authenticate`] behind the failed-login limit.
    /// [`Accounts::login_then`] with nothing more to do on success.
    pub async fn login(&self, email: &str, password: &Password) -> Result<Authentication, AccountError> {
        self.login_then(email, password, |user| async move { user }).await
    }

    /// A login attempt that, on success, runs `finish` on the user (the login
    /// function starts the session and signs the access token there).
    ///
    /// Each attempt is counted *before* the password is checked (one atomic add), so
    /// a burst of concurrent guesses cannot all slip under the limit; an attempt past
    /// it is refused without checking. A success forgets the window's count. Failures
    /// are counted per normalised email, known or not, so the limit does not reveal
    /// which accounts exist; a string that is no email at all is not counted (it can
    /// never log in) but still costs one dummy verification.
    ///
    /// Two AWS round trips on the way to the answer: the count is added while the
    /// user is read, and the count is forgotten while `finish` runs. Forgetting it
    /// is best effort: a failure is logged, and the login stands.
    pub async fn login_then<T, F, Fut>(
        &self,
        email: &str,
        password: &Password,
        finish: F,
    ) -> Result<Authentication<T>, AccountError>
    where
        F: FnOnce(User) -> Fut,
        Fut: Future<Output = T>,
    {
        let (Some(throttle), Ok(key)) = (&self.throttle, normalize_email(email)) else {
            let user = match normalize_email(email) {
                Ok(email) => self.users.get_user_by_email(&email).await?,
                Err(InvalidEmail) => None,
            };
            return Ok(match self.check_password(user, password).await? {
                Authentication::Success(user) => Authentication::Success(finish(user).await),
                Authentication::Failure => Authentication::Failure,
                Authentication::Unverified => Authentication::Unverified,
                Authentication::Throttled { retry_after_secs } => Authentication::Throttled { retry_after_secs },
            });
        };
        let now = self.sessions.clock().now();
        let window = now / throttle.window_secs;
        let window_end = (window + 1) * throttle.window_secs;
        let (attempts, user) = tokio::join!(
            throttle.attempts.record_failure(&key, window, window_end),
            self.users.get_user_by_email(&key)
        );
        let attempts = attempts?;
        if attempts > throttle.max_failures {
            tracing::warn!(event = "login_throttled", attempts, "failed-login limit reached");
            return Ok(Authentication::Throttled { retry_after_secs: window_end.saturating_sub(now) });
        }
        let user = match self.check_password(user?, password).await? {
            Authentication::Success(user) => user,
            Authentication::Failure => return Ok(Authentication::Failure),
            Authentication::Unverified => return Ok(Authentication::Unverified),
            Authentication::Throttled { retry_after_secs } => {
                return Ok(Authentication::Throttled { retry_after_secs });
            }
        };
        let user_id = user.id.clone();
        let (cleared, finished) = tokio::join!(throttle.attempts.clear_failures(&key, window), finish(user));
        if let Err(error) = cleared {
            tracing::warn!(event = "login_failures_not_cleared", user_id = %user_id, %error);
        }
        Ok(Authentication::Success(finished))
    }

    /// Sets a new password and revokes every session of the user (the refresh
    /// check also refuses sessions older than the change, should one be missed).
    /// Returns how many live sessions were revoked.
    pub async fn set_password(&self, email: &str, password: &Password) -> Result<usize, AccountError> {
        let user = self.existing(email).await?;
        check_new_password(password)?;
        let hash = self.hasher.hash(password).await?;
        self.users.set_password(&user.email, &hash, self.sessions.clock().now()).await?;
        tracing::info!(event = "password_changed", user_id = %user.id);
        Ok(self.sessions.revoke_all(&user.id, &user.email, "password_changed", None).await?)
    }

    /// Disables (revoking every session) or re-enables a user. Idempotent.
    /// Returns how many live sessions were revoked. Disabling the last active
    /// administrator is [`AccountError::LastAdmin`].
    pub async fn set_disabled(&self, email: &str, disabled: bool) -> Result<usize, AccountError> {
        let user = self.existing(email).await?;
        self.set_disabled_of(&user, disabled).await
    }

    /// [`Accounts::set_disabled`] on a user already read.
    pub async fn set_disabled_of(&self, user: &User, disabled: bool) -> Result<usize, AccountError> {
        if user.disabled != disabled {
            self.change_standing(user, StandingChange::Update { role: None, disabled: Some(disabled) }).await?;
        }
        if !disabled {
            tracing::info!(event = "user_enabled", user_id = %user.id);
            return Ok(0);
        }
        tracing::info!(event = "user_disabled", user_id = %user.id);
        Ok(self.sessions.revoke_all(&user.id, &user.email, "user_disabled", None).await?)
    }

    /// Sets a user's role; it reaches access tokens at the next refresh. Taking the
    /// admin role from the last active administrator is [`AccountError::LastAdmin`].
    pub async fn set_role(&self, email: &str, role: &str) -> Result<(), AccountError> {
        check_role(role)?;
        let user = self.existing(email).await?;
        self.set_role_of(&user, role).await
    }

    /// [`Accounts::set_role`] on a user already read.
    pub async fn set_role_of(&self, user: &User, role: &str) -> Result<(), AccountError> {
        check_role(role)?;
        if user.role != role {
            self.change_standing(user, StandingChange::Update { role: Some(role.to_owned()), disabled: None }).await?;
        }
        tracing::info!(event = "role_changed", user_id = %user.id, from = %user.role, to = role);
        Ok(())
    }

    /// Deletes a user: every session ends at once (its user is gone; the marks follow,
    /// best effort) and the email is free for a new account. Deleting the last active
    /// administrator is [`AccountError::LastAdmin`]. Returns how many live sessions
    /// were marked revoked.
    pub async fn delete_user(&self, user: &User) -> Result<usize, AccountError> {
        self.change_standing(user, StandingChange::Delete).await?;
        tracing::info!(event = "user_deleted", user_id = %user.id);
        Ok(self.sessions.mark_all_revoked(&user.id, "user_deleted", None).await)
    }

    /// Stores a new user (refusing a taken email), counted among the administrators
    /// when it is one.
    pub(crate) async fn create_user(&self, user: &User) -> Result<(), AccountError> {
        let admin = self.is_active_admin(&user.role, user.disabled);
        if admin {
            self.ensure_admin_set().await?;
        }
        self.users.create_user(user).await?;
        if admin {
            let joined = StandingChange::Update { role: None, disabled: None };
            if self.users.change_standing(user, &joined, Membership::Join).await? != StandingOutcome::Applied {
                return Err(AccountError::Conflict);
            }
        }
        Ok(())
    }

    /// Writes `change` to `user` as read, moving it in or out of the record of active
    /// administrators in the same transaction; refuses the last one's leaving.
    async fn change_standing(&self, user: &User, change: StandingChange) -> Result<(), AccountError> {
        let was = self.is_active_admin(&user.role, user.disabled);
        let will = match &change {
            StandingChange::Delete => false,
            StandingChange::Update { role, disabled } => {
                self.is_active_admin(role.as_deref().unwrap_or(&user.role), disabled.unwrap_or(user.disabled))
            }
        };
        let membership = match (was, will) {
            (true, false) => Membership::Leave,
            (false, true) => Membership::Join,
            _ => Membership::Same,
        };
        if membership != Membership::Same {
            self.ensure_admin_set().await?;
        }
        match self.users.change_standing(user, &change, membership).await? {
            StandingOutcome::Applied => Ok(()),
            StandingOutcome::Changed => Err(AccountError::Conflict),
            StandingOutcome::LastAdmin => {
                tracing::warn!(event = "last_admin_refused", user_id = %user.id);
                Err(AccountError::LastAdmin)
            }
        }
    }

    /// Makes the record of active administrators if there is none yet (a table from
    /// before it existed): built once from the `users` index, first writer wins.
    pub async fn ensure_admin_set(&self) -> Result<(), StoreError> {
        if self.users.admin_set().await?.is_some() {
            return Ok(());
        }
        let (mut admins, mut after) = (Vec::new(), None);
        loop {
            let page = self.users.users_page("", after.as_deref(), 100).await?;
            admins.extend(
                page.users.iter().filter(|user| self.is_active_admin(&user.role, user.disabled)).map(|u| u.id.clone()),
            );
            match page.last {
                Some(last) => after = Some(last),
                None => break,
            }
        }
        self.users.init_admin_set(&admins).await
    }

    /// The password hasher.
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Changes the password of the signed-in user `user_id` (email `email`, from the
    /// verified access token) in session `session_id`. The current password is
    /// checked as a login is: counted by the failed-login limit first, at the same
    /// cost whatever the outcome. Every other session of the user ends (the epoch
    /// moves on) and this one continues, rotated, in the same transaction: its new
    /// refresh token is returned. `Success(None)`: the password was right but the
    /// session is not this user's live session any more, or a concurrent change won.
    pub async fn change_password(
        &self,
        user_id: &str,
        email: &str,
        session_id: SessionId,
        current: &Password,
        new: &Password,
    ) -> Result<Authentication<Option<PasswordChanged>>, AccountError> {
        check_new_password(new)?;
        let outcome = self
            .login_then(email, current, |user| async move {
                self.keep_session_and_change(user, user_id, session_id, new).await
            })
            .await?;
        Ok(match outcome {
            Authentication::Success(changed) => Authentication::Success(changed?),
            Authentication::Failure => Authentication::Failure,
            Authentication::Unverified => Authentication::Unverified,
            Authentication::Throttled { retry_after_secs } => Authentication::Throttled { retry_after_secs },
        })
    }

    async fn keep_session_and_change(
        &self,
        user: User,
        user_id: &str,
        session_id: SessionId,
        new: &Password,
    ) -> Result<Option<PasswordChanged>, AccountError> {
        let Some(credentials) = &self.credentials else {
            return Err(StoreError::Unavailable("no credential store".to_owned()).into());
        };
        let now = self.sessions.clock().now();
        let Some(session) = self.sessions.session(&session_id).await? else { return Ok(None) };
        let ours = user.id == user_id && session.user_id == user.id && session.user_epoch == user.session_epoch;
        if !ours || !session.is_live(now) {
            return Ok(None);
        }
        let new_hash = self.hasher.hash(new).await?;
        let change = PasswordChange {
            email: user.email.clone(),
            current_hash: user.password_hash.clone(),
            new_hash: new_hash.clone(),
            epoch: user.session_epoch,
            session_id,
            generation: session.generation,
            now,
            idle_secs: self.sessions.policy().idle_secs,
        };
        if !credentials.change_password_keeping_session(&change).await? {
            return Ok(None);
        }
        let next_epoch = user.session_epoch.saturating_add(1);
        let user = User { password_hash: new_hash, password_changed_at: now, session_epoch: next_epoch, ..user };
        let session = Session {
            user_epoch: next_epoch,
            generation: session.generation.saturating_add(1),
            rotated_at: now,
            idle_expires_at: now.saturating_add(change.idle_secs),
            ..session
        };
        tracing::info!(event = "password_changed", user_id = %user.id, session_id = %session.id);
        tracing::info!(event = "sessions_ended", user_id = %user.id, reason = "password_changed");
        let refresh_token =
            self.sessions.mint(&RefreshToken { session_id: session.id, generation: session.generation });
        Ok(Some(PasswordChanged { user, session, refresh_token }))
    }

    /// After [`Accounts::change_password`]: marks the user's other sessions revoked
    /// (they ended already with the epoch; the mark is what listings show). Best
    /// effort, so the caller runs it beside the signing of the new access token
    /// instead of before it.
    pub async fn mark_others_ended(&self, changed: &PasswordChanged) {
        self.sessions.mark_all_revoked(&changed.user.id, "password_changed", Some(&changed.session.id)).await;
    }

    /// The same accounts with `credentials` for [`Accounts::change_password`].
    pub fn with_credentials(self, credentials: Arc<dyn CredentialStore>) -> Self {
        Self { credentials: Some(credentials), ..self }
    }

    /// The user with this email, or [`StoreError::NotFound`].
    pub async fn existing(&self, email: &str) -> Result<User, AccountError> {
        let email = normalize_email(email)?;
        self.users.get_user_by_email(&email).await?.ok_or(AccountError::Store(StoreError::NotFound))
    }
}

/// The one password policy (sign-up, reset, change, `latchkey user add`): at least
/// [`MIN_PASSWORD_CHARS`] characters; at most 1 KiB is [`Password::new`]'s.
pub fn check_new_password(password: &Password) -> Result<(), AccountError> {
    if password.char_count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::WeakPassword);
    }
    Ok(())
}

/// Roles are opaque and case-preserving (`Admin` stays `Admin`; route rules compare
/// them exactly), limited to a charset that is safe in logs, headers and policies.
pub fn check_role(role: &str) -> Result<(), AccountError> {
    if !crate::config::is_role(role) {
        return Err(AccountError::InvalidRole);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::password::PasswordParams;
    use crate::session::SessionPolicy;
    use crate::store::MemoryStore;
    use crate::token::RefreshKey;

    #[test]
    fn debug_shows_the_settings_and_no_store_contents() {
        let store = Arc::new(MemoryStore::new());
        let policy = SessionPolicy::from_config(&Config::default());
        let sessions = SessionManager::new(
            store.clone(),
            store.clone(),
            RefreshKey::generate().unwrap(),
            policy,
            Arc::new(ManualClock::new(0)),
        );
        let accounts = Accounts::new(store.clone(), sessions, PasswordHasher::new(PasswordParams::default()).unwrap());
        let shown = format!("{accounts:?}");
        assert!(shown.starts_with("Accounts") && shown.contains("throttled: false"), "{shown}");
        let throttled = accounts.with_throttle(LoginThrottle::from_config(store, &Config::default()));
        assert!(format!("{throttled:?}").contains("throttled: true"));
    }
}
