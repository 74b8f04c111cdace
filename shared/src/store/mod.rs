//! Storage of users and sessions: the domain types, the two store traits, and
//! their DynamoDB and in-memory implementations.
//!
//! Stores are pure with respect to time: every operation that depends on "now"
//! takes it as an argument, so the rotation rules are tested with a moved clock.
//! They enforce every rule with a conditional write, never read-then-write.

mod dynamodb;
mod memory;

use async_trait::async_trait;

use crate::onetime::Purpose;
use crate::token::SessionId;

pub use dynamodb::{
    DynamoStore, SESSION_ATTRIBUTES, SESSION_INDEX_READ, SESSION_LIST_ATTRIBUTES, SIGNING_KEY_ATTRIBUTES,
    SIGNING_KEY_PUBLIC_ATTRIBUTES, TTL_ATTRIBUTE, USER_INDEX, USER_INDEX_ATTRIBUTES, USER_STANDING_ATTRIBUTES,
    USERS_INDEX, USERS_INDEX_ATTRIBUTES,
};
pub use memory::MemoryStore;

/// Why a store operation failed. A failed *condition* is never an error here:
/// it is a domain outcome ([`RotateOutcome::Conflict`], [`StoreError::DuplicateEmail`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A user with this (normalised) email already exists.
    #[error("a user with this email already exists")]
    DuplicateEmail,
    /// The user or session addressed does not exist.
    #[error("not found")]
    NotFound,
    /// The store could not be reached or refused the request (throttling, outage,
    /// permissions): an infrastructure failure, answered with a 500.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An item in the table does not have the shape this code writes.
    #[error("corrupt item: {0}")]
    Corrupt(String),
}

/// An email address that is not acceptable as a login name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid email address")]
pub struct InvalidEmail;

/// The login key of a user: trimmed and lower-cased. Refuses what cannot be an
/// address (no `@`, whitespace or control characters inside, over 254 bytes).
pub fn normalize_email(raw: &str) -> Result<String, InvalidEmail> {
    let email = raw.trim().to_lowercase();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(InvalidEmail);
    };
    let bad_char = |c: char| c.is_whitespace() || c.is_control();
    if local.is_empty() || domain.is_empty() || email.len() > 254 || email.chars().any(bad_char) {
        return Err(InvalidEmail);
    }
    Ok(email)
}

/// A user account.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Stable opaque id (the access token's `sub`).
    pub id: String,
    /// Normalised email: the login key.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role passed to backends (`member`, `admin`, ...).
    pub role: String,
    /// A disabled user cannot log in or refresh.
    pub disabled: bool,
    /// When the password was last changed (Unix seconds; 0 if never since the
    /// account was created). For people; sessions are ended by `session_epoch`.
    pub password_changed_at: u64,
    /// Bumped by every change that ends all the user's sessions (password change,
    /// logout everywhere, revoke-all, disable). A session records the epoch of the
    /// user read that proved the login and is dead once they differ: no clock is
    /// compared, so a login racing a password change cannot outlive it.
    pub session_epoch: u64,
    /// When the account was created (Unix seconds).
    pub created_at: u64,
    /// Whether the email is known to reach the user: set by operators' accounts, a
    /// used reset or invitation link, or a used verification link. A sign-up cannot
    /// log in until it is. Items written before the field existed count as verified.
    pub email_verified: bool,
    /// An unverified sign-up ends at this time (Unix seconds); `None` for every other
    /// account. Past it the account is as if it did not exist.
    pub pending_expires_at: Option<u64>,
    /// The user's second factor (TOTP), as stored: sealed secrets and hashes only.
    pub totp: TotpState,
}

/// A user's TOTP second factor as stored on the user item: the secrets only sealed
/// (AES-256-GCM under a key derived from the KMS-held refresh key, see
/// [`crate::mfa`]), recovery codes only as keyed hashes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TotpState {
    /// The sealed active secret (`totpSecret`); `None` while not enrolled.
    pub secret: Option<String>,
    /// The sealed secret of an enrolment not yet confirmed (`totpPending`).
    pub pending: Option<String>,
    /// The last time step whose code was accepted (`totpStep`): a code of this step or
    /// an earlier one is never accepted again.
    pub last_step: u64,
    /// Keyed hashes of the unused recovery codes (`recoveryCodes`, a string set).
    pub recovery: Vec<String>,
    /// When the enrolment was confirmed (`mfaEnabledAt`, Unix seconds).
    pub enabled_at: Option<u64>,
}

impl TotpState {
    /// Whether a second factor is enrolled and confirmed.
    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }
}

impl std::fmt::Debug for TotpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpState")
            .field("enabled", &self.enabled())
            .field("pending", &self.pending.is_some())
            .field("last_step", &self.last_step)
            .field("recovery_codes_left", &self.recovery.len())
            .field("enabled_at", &self.enabled_at)
            .finish()
    }
}

/// A change to a user's second factor: see [`CredentialStore::update_totp`]. Each is
/// one conditional write on the user item.
#[derive(Clone, PartialEq, Eq)]
pub enum TotpChange {
    /// Starts (or restarts) an enrolment: sets the sealed pending secret, on condition
    /// that no second factor is enabled.
    Begin {
        /// The sealed new secret.
        pending: String,
    },
    /// Confirms the enrolment: the pending secret becomes the active one, with the
    /// step of the confirming code and the recovery-code hashes, on condition that
    /// the pending secret is still `pending` and none is enabled.
    Confirm {
        /// The sealed secret as read.
        pending: String,
        /// The confirming code's time step.
        step: u64,
        /// The recovery codes' hashes.
        recovery: Vec<String>,
        /// The time of the confirmation.
        now: u64,
    },
    /// Records an accepted code's step, on condition that it is later than the last
    /// accepted one (a replayed code fails the condition).
    Step {
        /// The accepted code's time step.
        step: u64,
    },
    /// Spends a recovery code, on condition that its hash is still in the set (of
    /// concurrent spends of one code, exactly one succeeds).
    Recovery {
        /// The code's keyed hash.
        hash: String,
    },
    /// Removes the second factor; with `secret`, only if the active secret is still it.
    Remove {
        /// The sealed active secret as read; `None`: whatever it is (an administrator's reset).
        secret: Option<String>,
    },
}

impl std::fmt::Debug for TotpChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Begin { .. } => "Begin",
            Self::Confirm { .. } => "Confirm",
            Self::Step { .. } => "Step",
            Self::Recovery { .. } => "Recovery",
            Self::Remove { .. } => "Remove",
        })
    }
}

impl User {
    /// Whether the user has a usable password (an invited user has none until the
    /// invitation's link is used).
    pub fn has_password(&self) -> bool {
        !self.password_hash.is_empty()
    }

    /// Whether this is an unverified sign-up whose time ran out at `now`.
    pub fn pending_expired(&self, now: u64) -> bool {
        self.pending_expires_at.is_some_and(|at| at <= now)
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"[redacted]")
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("password_changed_at", &self.password_changed_at)
            .field("session_epoch", &self.session_epoch)
            .field("created_at", &self.created_at)
            .field("email_verified", &self.email_verified)
            .field("pending_expires_at", &self.pending_expires_at)
            .field("totp", &self.totp)
            .finish()
    }
}

/// What decides whether a user may keep a session, and whom its next access token
/// names: the user without any secret (no password hash). What refresh, logout and
/// the authorizer's session check read (`docs/storage.md`, least privilege).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserStanding {
    /// The user id.
    pub id: String,
    /// Normalised email.
    pub email: String,
    /// Current role.
    pub role: String,
    /// Whether the user is disabled.
    pub disabled: bool,
    /// See [`User::session_epoch`].
    pub session_epoch: u64,
}

impl From<&User> for UserStanding {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.clone(),
            email: user.email.clone(),
            role: user.role.clone(),
            disabled: user.disabled,
            session_epoch: user.session_epoch,
        }
    }
}

/// A session: one login, carrying a chain of refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Session id (the refresh token's `sid`, the access token's `sid`).
    pub id: SessionId,
    /// Owner's user id.
    pub user_id: String,
    /// Owner's normalised email, to read the user with one `GetItem` on refresh.
    pub email: String,
    /// The owner's [`User::session_epoch`] when the login was proven; the session
    /// is dead once the user's epoch has moved on.
    pub user_epoch: u64,
    /// The owner's role when last read: at login, then at each rotation. Refresh
    /// signs the next access token with it while it reads the user, and keeps that
    /// token only if the user as read still has this role. `None` for sessions
    /// stored before the field existed.
    pub role: Option<String>,
    /// Generation of the current refresh token: 0 at login, +1 per rotation.
    pub generation: u64,
    /// Login time (Unix seconds).
    pub created_at: u64,
    /// Time of the last rotation (login time before any).
    pub rotated_at: u64,
    /// The session ends at this time unless rotated (last rotation + idle lifetime).
    pub idle_expires_at: u64,
    /// The session ends at this time whatever happens (login + absolute lifetime).
    pub absolute_expires_at: u64,
    /// When it was revoked; `None` while live.
    pub revoked_at: Option<u64>,
    /// Why it was revoked (`logout`, `reuse`, `password_changed`, `user_disabled`, ...).
    pub revoke_reason: Option<String>,
    /// The device it was last used from: written at login and at each rotation,
    /// shown to its user by `GET /sessions`.
    pub client: ClientInfo,
    /// How the login that began it was proven (RFC 8176 `amr` values, e.g. `pwd`,
    /// `otp`): every access token of the session carries it. Sessions stored before
    /// the field existed read as `["pwd"]`.
    pub amr: Vec<String>,
}

/// Longest user agent kept with a session, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// Where a session was last used from, as API Gateway saw the request: shown to
/// the user in their session list, never used for a decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The `User-Agent` header: control characters dropped, at most
    /// [`MAX_USER_AGENT_CHARS`] characters.
    pub user_agent: Option<String>,
    /// The source IP of the request context (`requestContext.http.sourceIp` or
    /// `requestContext.identity.sourceIp`), when it parses as an address.
    pub ip: Option<String>,
}

impl ClientInfo {
    /// Client details from raw request values, cleaned: a user agent without control
    /// characters and cut to [`MAX_USER_AGENT_CHARS`], an IP only if it is one.
    pub fn new(user_agent: Option<&str>, ip: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(|raw| raw.chars().filter(|c| !c.is_control()).take(MAX_USER_AGENT_CHARS).collect::<String>())
            .map(|agent| agent.trim().to_owned())
            .filter(|agent| !agent.is_empty());
        let ip = ip.and_then(|raw| raw.trim().parse::<std::net::IpAddr>().ok()).map(|ip| ip.to_string());
        Self { user_agent, ip }
    }
}

impl Session {
    /// When the session ends if nothing else happens: the earlier of its idle and
    /// absolute expiry. Also the item's DynamoDB TTL.
    pub fn expires_at(&self) -> u64 {
        self.idle_expires_at.min(self.absolute_expires_at)
    }

    /// Whether the session is usable at `now`: not revoked, and both expiries in the future.
    pub fn is_live(&self, now: u64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at()
    }
}

/// What a conditional rotation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// This call moved the session from the expected generation to the next; the
    /// session as it now is.
    Rotated(Session),
    /// The condition failed: the session is not at the expected generation, is
    /// revoked or has expired. Carries the item as it was (`None`: no such session).
    Conflict(Option<Session>),
}

/// One page of users in email order, as the `users` index holds them (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsersPage {
    /// The users, email ascending.
    pub users: Vec<ListedUser>,
    /// The last email of the page when more may follow (the next page starts after it).
    pub last: Option<String>,
}

/// A user as the `users` index lists it: everything an administrator sees, no hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedUser {
    /// The user id.
    pub id: String,
    /// Normalised email.
    pub email: String,
    /// Current role.
    pub role: String,
    /// Whether the user is disabled.
    pub disabled: bool,
    /// When the account was created (Unix seconds).
    pub created_at: u64,
    /// See [`User::email_verified`].
    pub email_verified: bool,
}

impl From<&User> for ListedUser {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.clone(),
            email: user.email.clone(),
            role: user.role.clone(),
            disabled: user.disabled,
            created_at: user.created_at,
            email_verified: user.email_verified,
        }
    }
}

/// A change of who a user is to the system: see [`UserStore::change_standing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StandingChange {
    /// Set the role and/or the disabled flag (`None`: unchanged). Disabling also moves
    /// the session epoch on, ending every session.
    Update {
        /// The new role.
        role: Option<String>,
        /// Disable or enable.
        disabled: Option<bool>,
    },
    /// Delete the user item: every session ends (its user is gone) and the email is free.
    Delete,
}

/// How a standing change moves the user in or out of the set of active administrators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// Not an active admin before or after, or one both before and after.
    Same,
    /// Becomes an active admin.
    Join,
    /// Stops being an active admin: refused if the user is the set's last member.
    Leave,
}

/// What [`UserStore::change_standing`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandingOutcome {
    /// The change and the admin set's move were written together.
    Applied,
    /// The user is no longer as read (or is gone): nothing was written.
    Changed,
    /// The user is the last active admin and would leave: nothing was written.
    LastAdmin,
}

/// Users, keyed by normalised email.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The user with this normalised email (strongly consistent read).
    async fn get_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;

    /// The standing of the user with this normalised email (strongly consistent
    /// read of the non-secret attributes only).
    async fn user_standing(&self, email: &str) -> Result<Option<UserStanding>, StoreError>;

    /// The user with this id.
    async fn get_user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError>;

    /// Stores a new user; refuses an existing email atomically ([`StoreError::DuplicateEmail`]).
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;

    /// Sets a new password hash and `password_changed_at = now`, and bumps
    /// `session_epoch` in the same write, which ends every session proven with
    /// the old hash.
    async fn set_password(&self, email: &str, password_hash: &str, now: u64) -> Result<(), StoreError>;

    /// Bumps `session_epoch`, ending every session the user has now (including
    /// ones an eventually consistent listing would miss).
    async fn end_sessions(&self, email: &str) -> Result<(), StoreError>;

    /// Replaces a hash with a stronger hash of the *same* password (after login),
    /// only if `current_hash` is still the stored one; sessions are unaffected.
    /// Returns whether the hash was replaced.
    async fn upgrade_password_hash(&self, email: &str, current_hash: &str, new_hash: &str) -> Result<bool, StoreError>;

    /// Sets the user's role.
    async fn set_role(&self, email: &str, role: &str) -> Result<(), StoreError>;

    /// Disables or re-enables the user.
    async fn set_disabled(&self, email: &str, disabled: bool) -> Result<(), StoreError>;

    /// Every user, ordered by email (administration only: a full scan).
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;

    /// Up to `limit` users whose email starts with `prefix`, after the email `after`,
    /// in email order: one `Query` of the `users` index, never a scan.
    async fn users_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<UsersPage, StoreError>;

    /// The ids of the active administrators as recorded; `None` when no record has
    /// been made yet (a table from before the record existed).
    async fn admin_set(&self) -> Result<Option<Vec<String>>, StoreError>;

    /// Records `ids` as the active administrators unless a record exists (the first
    /// writer wins; later changes go through [`UserStore::change_standing`]).
    async fn init_admin_set(&self, ids: &[String]) -> Result<(), StoreError>;

    /// Applies `change` to `read`'s user on condition that its id, role and disabled
    /// flag are still as read, and moves it in or out of the admin record as
    /// `membership` says, in one transaction. A `Leave` of the record's last member is
    /// [`StandingOutcome::LastAdmin`]; concurrent leaves of the last two cannot both
    /// succeed.
    async fn change_standing(
        &self,
        read: &User,
        change: &StandingChange,
        membership: Membership,
    ) -> Result<StandingOutcome, StoreError>;
}

/// Sessions, keyed by session id, listable by user.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session (refuses an existing id).
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;

    /// The session with this id, live or not.
    async fn get_session(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError>;

    /// Atomically: if the session is at `generation`, not revoked, and both
    /// expiries are after `now`, set generation + 1, `rotated_at = now`,
    /// `idle_expires_at = now + idle_secs`, the role snapshot to `role` and the
    /// client details to `client` (those it has). Otherwise report the item as it was.
    async fn rotate_session(
        &self,
        session_id: &SessionId,
        generation: u64,
        now: u64,
        idle_secs: u64,
        role: &str,
        client: &ClientInfo,
    ) -> Result<RotateOutcome, StoreError>;

    /// Marks the session revoked at `now` for `reason`, unless it already is
    /// (the first revocation's time and reason are kept). Idempotent; a missing
    /// session is not an error. Returns the session as it now is, if it exists.
    async fn revoke_session(
        &self,
        session_id: &SessionId,
        now: u64,
        reason: &str,
    ) -> Result<Option<Session>, StoreError>;

    /// Every session of the user, live or not (revoked and expired ones remain
    /// until TTL removes them), from the eventually consistent `byUser` index: no
    /// client details (the index does not hold them).
    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<Session>, StoreError>;

    /// The sessions with these ids that exist, with their client details (strongly
    /// consistent; at most [`MAX_SESSIONS_READ`] ids, in any order).
    async fn get_sessions(&self, session_ids: &[SessionId]) -> Result<Vec<Session>, StoreError>;

    /// Ends every session of the user but `keep`, in one transaction: the user's
    /// session epoch moves from `epoch` to the next, and `keep` moves with it, on
    /// condition that the user is still at `epoch` and `keep` is live at `now`,
    /// unrevoked and in that epoch. `Ok(false)` when a condition failed: nothing changed.
    async fn end_other_sessions(&self, email: &str, epoch: u64, keep: &SessionId, now: u64)
    -> Result<bool, StoreError>;
}

/// Most session ids one [`SessionStore::get_sessions`] reads (one `BatchGetItem`).
pub const MAX_SESSIONS_READ: usize = 100;

/// The authorizer's read: a session and its user together, to tell whether an
/// access token's session is still live.
#[async_trait]
pub trait SessionLookup: Send + Sync {
    /// The session with this id and the user with this normalised email, read
    /// together (one strongly consistent request where the store allows).
    async fn session_and_user(
        &self,
        session_id: &SessionId,
        email: &str,
    ) -> Result<(Option<Session>, Option<UserStanding>), StoreError>;
}

/// A one-time secret as stored: its keyed hash (the item key), never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// What it is for.
    pub purpose: Purpose,
    /// The keyed hash of the secret.
    pub hash: String,
    /// Whose it is.
    pub user_id: String,
    /// The user's normalised email (the user item's key).
    pub email: String,
    /// When it stops working (Unix seconds), checked on every use.
    pub expires_at: u64,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("purpose", &self.purpose)
            .field("hash", &"[redacted]")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What spending a secret does to its user, in the same transaction.
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialChange {
    /// A reset or an invitation: the new hash, `passwordChangedAt`, the session epoch
    /// moved on (every session ends), the email verified, a pending expiry cleared.
    SetPassword {
        /// The new argon2id hash.
        password_hash: String,
    },
    /// A sign-up's link: the email verified, the pending expiry cleared.
    VerifyEmail,
    /// The second step of a login: the code's step recorded, a recovery code spent or
    /// an enrolment confirmed, with the same condition as [`CredentialStore::update_totp`].
    Totp(TotpChange),
}

impl std::fmt::Debug for CredentialChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SetPassword { .. } => f.write_str("SetPassword([redacted])"),
            Self::VerifyEmail => f.write_str("VerifyEmail"),
            Self::Totp(change) => write!(f, "Totp({change:?})"),
        }
    }
}

/// A password change that keeps its own session: see
/// [`CredentialStore::change_password_keeping_session`].
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordChange {
    /// The user's normalised email.
    pub email: String,
    /// The hash the change was proven against; the write requires it unchanged.
    pub current_hash: String,
    /// The new hash.
    pub new_hash: String,
    /// The user's session epoch as read; the write requires it unchanged and sets it + 1.
    pub epoch: u64,
    /// The session that continues.
    pub session_id: SessionId,
    /// Its generation as read; it rotates to the next.
    pub generation: u64,
    /// The time of the change.
    pub now: u64,
    /// The session's idle lifetime (the rotation extends it).
    pub idle_secs: u64,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChange")
            .field("email", &self.email)
            .field("epoch", &self.epoch)
            .field("session_id", &self.session_id)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// The account flows' conditional writes: sign-ups, one-time secrets, password
/// changes. Each is one transaction, so no request sees half of one.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Stores a new sign-up; refuses an email that has an account
    /// ([`StoreError::DuplicateEmail`]) unless that account is an unverified sign-up
    /// whose time ran out before `now`, which it replaces.
    async fn create_signup(&self, user: &User, now: u64) -> Result<(), StoreError>;

    /// Stores `record` and points its user at it for its purpose, in one transaction:
    /// an older secret of the purpose stops working at once. [`StoreError::NotFound`]
    /// when the user does not exist.
    async fn issue_secret(&self, record: &SecretRecord) -> Result<(), StoreError>;

    /// The stored record of this purpose and hash (strongly consistent), expired or not.
    async fn secret(&self, purpose: Purpose, hash: &str) -> Result<Option<SecretRecord>, StoreError>;

    /// Spends a secret: deletes it on condition that it exists and has not expired at
    /// `now`, while its user still points at it, and applies `change` to the user in
    /// the same transaction. `Ok(false)` when a condition failed (used, superseded,
    /// expired): of concurrent callers, exactly one gets `Ok(true)`.
    async fn spend_secret(
        &self,
        record: &SecretRecord,
        now: u64,
        change: &CredentialChange,
    ) -> Result<bool, StoreError>;

    /// A password change that ends every other session and keeps one: sets the new
    /// hash and the epoch + 1 on the user (if the hash and epoch are as read), and in
    /// the same transaction moves the continuing session to the new epoch and rotates
    /// it (if it is at the generation read, live and unrevoked). `Ok(false)` when a
    /// condition failed: nothing changed.
    async fn change_password_keeping_session(&self, change: &PasswordChange) -> Result<bool, StoreError>;

    /// Applies `change` to the second factor of the user with this email, on
    /// condition that the user still has id `user_id` and the change's own condition
    /// holds. `Ok(false)` when a condition failed: nothing changed.
    async fn update_totp(&self, email: &str, user_id: &str, change: &TotpChange) -> Result<bool, StoreError>;
}

/// Counters in fixed time windows: failed logins per email, messages per email.
#[async_trait]
pub trait LoginAttemptStore: Send + Sync {
    /// Adds one to the counter `name` in window number `window` atomically and
    /// returns the new count; the counter may be deleted by TTL after `expires_at`.
    async fn bump(&self, name: &str, window: u64, expires_at: u64) -> Result<u32, StoreError>;

    /// Failures recorded for `email` in window number `window` (0 when none).
    async fn failures(&self, email: &str, window: u64) -> Result<u32, StoreError>;

    /// Adds one failure for `email` in `window` atomically and returns the new count.
    /// The counter may be deleted by TTL after `expires_at`.
    async fn record_failure(&self, email: &str, window: u64, expires_at: u64) -> Result<u32, StoreError>;

    /// Forgets the failures of `email` in `window` (after a successful login).
    async fn clear_failures(&self, email: &str, window: u64) -> Result<(), StoreError>;

    /// Forgets the counter `name` in window number `window` (of [`LoginAttemptStore::bump`]).
    async fn forget(&self, name: &str, window: u64) -> Result<(), StoreError>;
}
