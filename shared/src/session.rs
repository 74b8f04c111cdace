//! The session lifecycle: start at login, rotate on refresh (with the grace
//! window and reuse detection), and revoke, over any [`SessionStore`].
//!
//! The rules live here once; the stores only perform the conditional writes.

use std::fmt;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::store::{
    ClientInfo, MAX_SESSIONS_READ, RotateOutcome, Session, SessionStore, StoreError, User, UserStanding, UserStore,
};
use crate::token::{RefreshKey, RefreshToken, RefreshTokenError, SessionId};

/// Why a refresh token was refused. Precise, for logs; every variant is answered
/// with the same `invalid_grant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidGrant {
    /// Not a refresh token at all.
    #[error("malformed refresh token")]
    Malformed,
    /// Well-formed but its MAC does not verify (forged, or another key).
    #[error("refresh token MAC does not verify")]
    Forged,
    /// No such session (never existed, or removed by TTL).
    #[error("unknown session")]
    UnknownSession,
    /// The session was revoked (logout, reuse, password change, disabled user).
    #[error("session revoked")]
    Revoked,
    /// The session passed its idle or absolute expiry.
    #[error("session expired")]
    Expired,
    /// A rotated token was presented outside the grace window: the session is now revoked.
    #[error("refresh token reuse")]
    Reuse,
    /// The session's user no longer exists.
    #[error("user no longer exists")]
    UserMissing,
    /// The session's user is disabled.
    #[error("user disabled")]
    UserDisabled,
    /// The user's sessions were ended after this one was proven (password change,
    /// logout everywhere, revoke-all, disable): the user's session epoch moved on.
    #[error("user's sessions ended since login")]
    SessionsEnded,
}

impl InvalidGrant {
    /// A stable snake_case name, for logs and metric dimensions.
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Forged => "forged",
            Self::UnknownSession => "unknown_session",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Reuse => "reuse",
            Self::UserMissing => "user_missing",
            Self::UserDisabled => "user_disabled",
            Self::SessionsEnded => "sessions_ended",
        }
    }
}

/// A refresh that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The token is not (or no longer) good: `invalid_grant`.
    #[error("invalid grant: {0}")]
    Invalid(#[from] InvalidGrant),
    /// The store failed: a server error, not the client's fault.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a successful refresh came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshKind {
    /// This request rotated the session.
    Rotated,
    /// The immediate predecessor inside the grace window: the successor another
    /// request already made is handed out again, nothing is written.
    GraceReplay,
}

/// A successful refresh: who, which session, and the refresh token to hand back.
#[derive(Clone)]
pub struct Refreshed {
    /// The session's user as now stored (current role and email for the access token).
    pub user: UserStanding,
    /// The session after rotation.
    pub session: Session,
    /// The current refresh token of the session.
    pub refresh_token: String,
    /// Rotation or grace replay.
    pub kind: RefreshKind,
}

impl fmt::Debug for Refreshed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refreshed")
            .field("user", &self.user)
            .field("session", &self.session)
            .field("refresh_token", &"[redacted]")
            .field("kind", &self.kind)
            .finish()
    }
}

/// A refresh that passed every check and awaits its commit; see
/// [`SessionManager::prepare_refresh`].
pub struct PendingRefresh {
    token: RefreshToken,
    session: Session,
    user: UserStanding,
    kind: RefreshKind,
}

impl PendingRefresh {
    /// The session's user as now stored (for the access token).
    pub fn user(&self) -> &UserStanding {
        &self.user
    }

    /// The session being refreshed.
    pub fn session_id(&self) -> SessionId {
        self.session.id
    }

    /// The session being refreshed, as read.
    pub fn session(&self) -> &Session {
        &self.session
    }
}

impl fmt::Debug for PendingRefresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingRefresh")
            .field("session", &self.session)
            .field("user", &self.user)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A refresh token's session as read and judged, before its user is read; see
/// [`SessionManager::read_refresh`].
pub struct SessionRead {
    token: RefreshToken,
    session: Session,
    kind: RefreshKind,
}

impl SessionRead {
    /// The session as stored (its id, user id, email and role snapshot).
    pub fn session(&self) -> &Session {
        &self.session
    }
}

impl fmt::Debug for SessionRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRead").field("session", &self.session).field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// A new session and its first refresh token.
#[derive(Clone)]
pub struct StartedSession {
    /// The session as stored.
    pub session: Session,
    /// Its generation-0 refresh token.
    pub refresh_token: String,
}

impl fmt::Debug for StartedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartedSession").field("session", &self.session).field("refresh_token", &"[redacted]").finish()
    }
}

/// Session lifetimes, from [`Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Idle lifetime: each rotation extends the session by this much.
    pub idle_secs: u64,
    /// Absolute lifetime from login.
    pub absolute_secs: u64,
    /// Grace window for the immediate predecessor.
    pub grace_secs: u64,
}

impl SessionPolicy {
    /// The lifetimes configured in `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            idle_secs: config.refresh_token_ttl.as_secs(),
            absolute_secs: config.session_max_lifetime.as_secs(),
            grace_secs: config.refresh_reuse_grace.as_secs(),
        }
    }

    /// A live session `id` of `user` begun at `now` from `client`, generation 0, with
    /// this policy's idle and absolute expiries, proven by a password alone (`amr`
    /// `["pwd"]`; a login with a second factor sets its own): what a login stores.
    pub fn new_session(&self, id: SessionId, user: &User, now: u64, client: ClientInfo) -> Session {
        Session {
            id,
            user_id: user.id.clone(),
            email: user.email.clone(),
            user_epoch: user.session_epoch,
            role: Some(user.role.clone()),
            generation: 0,
            created_at: now,
            rotated_at: now,
            idle_expires_at: now.saturating_add(self.idle_secs),
            absolute_expires_at: now.saturating_add(self.absolute_secs),
            revoked_at: None,
            revoke_reason: None,
            client,
            amr: vec![crate::token::AMR_PASSWORD.to_owned()],
        }
    }
}

/// Why the user as stored may no longer use `session`, and the revoke reason;
/// `None` if it may. The one rule refresh and the authorizer's session check share:
/// the user must exist with the session's user id, be enabled, and still be in the
/// session epoch the login was proven in.
pub fn user_refusal(session: &Session, user: Option<&UserStanding>) -> Option<(InvalidGrant, &'static str)> {
    match user {
        None => Some((InvalidGrant::UserMissing, "user_deleted")),
        Some(user) if user.id != session.user_id => Some((InvalidGrant::UserMissing, "user_deleted")),
        Some(user) if user.disabled => Some((InvalidGrant::UserDisabled, "user_disabled")),
        Some(user) if user.session_epoch != session.user_epoch => Some((InvalidGrant::SessionsEnded, "sessions_ended")),
        Some(_) => None,
    }
}

/// Starts, rotates and revokes sessions.
#[derive(Clone)]
pub struct SessionManager {
    sessions: Arc<dyn SessionStore>,
    users: Arc<dyn UserStore>,
    key: RefreshKey,
    policy: SessionPolicy,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl SessionManager {
    /// A manager over the given stores, MAC key, lifetimes and clock.
    pub fn new(
        sessions: Arc<dyn SessionStore>,
        users: Arc<dyn UserStore>,
        key: RefreshKey,
        policy: SessionPolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { sessions, users, key, policy, clock }
    }

    /// The clock the manager reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Starts a session for `user` (at login): generation 0, idle expiry now +
    /// idle lifetime, absolute expiry now + absolute lifetime.
    /// [`SessionManager::open`] then [`SessionManager::save`].
    pub async fn start(&self, user: &User) -> Result<StartedSession, StoreError> {
        let started = self.open(user, ClientInfo::default())?;
        self.save(&started).await?;
        Ok(started)
    }

    /// A new session for `user` on `client` and its first refresh token, not yet
    /// stored: the login signs the access token for it while
    /// [`SessionManager::save`] writes it.
    pub fn open(&self, user: &User, client: ClientInfo) -> Result<StartedSession, StoreError> {
        self.open_with(user, client, &[crate::token::AMR_PASSWORD])
    }

    /// [`SessionManager::open`] for a login proven by the methods `amr` (RFC 8176).
    pub fn open_with(&self, user: &User, client: ClientInfo, amr: &[&str]) -> Result<StartedSession, StoreError> {
        let now = self.clock.now();
        let session_id = SessionId::random().map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut session = self.policy.new_session(session_id, user, now, client);
        session.amr = amr.iter().map(|method| (*method).to_owned()).collect();
        let refresh_token = self.key.mint(&RefreshToken { session_id, generation: 0 });
        Ok(StartedSession { session, refresh_token })
    }

    /// Stores a session made by [`SessionManager::open`] (one write).
    pub async fn save(&self, started: &StartedSession) -> Result<(), StoreError> {
        let session = &started.session;
        self.sessions.create_session(session).await?;
        tracing::info!(event = "session_started", user_id = %session.user_id, session_id = %session.id);
        Ok(())
    }

    /// Checks a refresh token's MAC (no storage call) and returns what it names.
    pub fn identify(&self, presented: &str) -> Result<RefreshToken, InvalidGrant> {
        self.key.verify(presented).map_err(|error| match error {
            RefreshTokenError::BadMac => InvalidGrant::Forged,
            RefreshTokenError::Malformed | RefreshTokenError::Randomness => InvalidGrant::Malformed,
        })
    }

    /// Checks a refresh and everything it depends on, writing nothing unless the
    /// token is refused: [`SessionManager::read_refresh`] then
    /// [`SessionManager::check_refresh`]. What can fail after this (signing the
    /// access token) happens before [`SessionManager::commit_refresh`], so a failure
    /// leaves the presented token as usable as it was, and the client's retry is not
    /// taken for reuse.
    pub async fn prepare_refresh(&self, presented: &str) -> Result<PendingRefresh, RefreshError> {
        let read = self.read_refresh(presented).await?;
        self.check_refresh(read).await
    }

    /// The first step of a refresh: the token's MAC, then its session (one
    /// strongly consistent read), judged. The session's role snapshot lets the
    /// caller sign the next access token while [`SessionManager::check_refresh`]
    /// reads the user.
    pub async fn read_refresh(&self, presented: &str) -> Result<SessionRead, RefreshError> {
        let token = self.identify(presented)?;
        let now = self.clock.now();
        let session = self.sessions.get_session(&token.session_id).await?.ok_or(InvalidGrant::UnknownSession)?;
        let kind = self.judge(&token, &session, now).await?;
        Ok(SessionRead { token, session, kind })
    }

    /// The second step: the session's user (one read), who must still be allowed
    /// the session.
    pub async fn check_refresh(&self, read: SessionRead) -> Result<PendingRefresh, RefreshError> {
        let SessionRead { token, session, kind } = read;
        let user = self.check_user(&session, self.clock.now()).await?;
        Ok(PendingRefresh { token, session, user, kind })
    }

    /// Completes a prepared refresh: the one conditional write that rotates the
    /// session (nothing for a grace replay), recording `client` as where it was last
    /// used. Losing the race to another request with the same token turns into a
    /// grace replay of that request's successor.
    pub async fn commit_refresh(
        &self,
        pending: PendingRefresh,
        client: &ClientInfo,
    ) -> Result<Refreshed, RefreshError> {
        let PendingRefresh { token, session, user, kind } = pending;
        // Read again: the signing in between took time, and the grace window of a
        // rotation runs from when it was written.
        let now = self.clock.now();
        let (session, kind) = match kind {
            RefreshKind::GraceReplay => (session, kind),
            RefreshKind::Rotated => {
                match self
                    .sessions
                    .rotate_session(&token.session_id, token.generation, now, self.policy.idle_secs, &user.role, client)
                    .await?
                {
                    RotateOutcome::Rotated(session) => {
                        tracing::info!(
                            event = "refresh_rotated",
                            user_id = %session.user_id,
                            session_id = %session.id,
                            generation = session.generation,
                        );
                        (session, RefreshKind::Rotated)
                    }
                    RotateOutcome::Conflict(None) => return Err(InvalidGrant::UnknownSession.into()),
                    RotateOutcome::Conflict(Some(current)) => match self.judge(&token, &current, now).await? {
                        RefreshKind::GraceReplay => (current, RefreshKind::GraceReplay),
                        // The condition failed on a session that looks current: it
                        // expired between the read and the write.
                        RefreshKind::Rotated => return Err(InvalidGrant::Expired.into()),
                    },
                }
            }
        };
        let refresh_token = self.key.mint(&RefreshToken { session_id: session.id, generation: session.generation });
        Ok(Refreshed { user, session, refresh_token, kind })
    }

    /// [`SessionManager::prepare_refresh`] then [`SessionManager::commit_refresh`],
    /// for callers with nothing fallible to do in between.
    pub async fn refresh(&self, presented: &str) -> Result<Refreshed, RefreshError> {
        let pending = self.prepare_refresh(presented).await?;
        self.commit_refresh(pending, &ClientInfo::default()).await
    }

    /// Decides what `token` may do with `session` as stored: rotate it (the current
    /// token), replay its successor (the immediate predecessor inside the grace
    /// window), or nothing. Any older token is reuse: logged first, then the session
    /// is revoked, so the signal survives a failed revoke.
    async fn judge(&self, token: &RefreshToken, session: &Session, now: u64) -> Result<RefreshKind, RefreshError> {
        if session.revoked_at.is_some() {
            return Err(InvalidGrant::Revoked.into());
        }
        if !session.is_live(now) {
            return Err(InvalidGrant::Expired.into());
        }
        if session.generation == token.generation {
            return Ok(RefreshKind::Rotated);
        }
        if self.is_graced_predecessor(token, session, now) {
            tracing::info!(
                event = "refresh_grace_replay",
                user_id = %session.user_id,
                session_id = %session.id,
                presented_generation = token.generation,
                current_generation = session.generation,
                "predecessor inside the grace window; its successor handed out again"
            );
            return Ok(RefreshKind::GraceReplay);
        }
        tracing::warn!(
            event = "refresh_token_reuse",
            user_id = %session.user_id,
            session_id = %session.id,
            presented_generation = token.generation,
            current_generation = session.generation,
            "rotated refresh token presented again; revoking the session"
        );
        self.revoke_logged(&session.id, now, "reuse").await?;
        Err(InvalidGrant::Reuse.into())
    }

    /// The session's user, if it may still use the session; otherwise the session
    /// is revoked and the reason returned. Reads the user's standing only.
    async fn check_user(&self, session: &Session, now: u64) -> Result<UserStanding, RefreshError> {
        let user = self.users.user_standing(&session.email).await?;
        match (user_refusal(session, user.as_ref()), user) {
            (None, Some(user)) => Ok(user),
            (Some((grant, reason)), _) => {
                self.revoke_logged(&session.id, now, reason).await?;
                Err(grant.into())
            }
            (None, None) => Err(InvalidGrant::UserMissing.into()),
        }
    }

    /// The session `token` names if it is live and `token` is its current refresh
    /// token, or the immediate predecessor inside the grace window: what a client
    /// holding a *usable* token may act on (an old, spent token gets `None`).
    pub async fn current_session(&self, token: &RefreshToken) -> Result<Option<Session>, StoreError> {
        let now = self.clock.now();
        let Some(session) = self.sessions.get_session(&token.session_id).await? else {
            return Ok(None);
        };
        let current = session.generation == token.generation || self.is_graced_predecessor(token, &session, now);
        Ok((session.is_live(now) && current).then_some(session))
    }

    /// Whether `token` is the immediate predecessor of the session's current token
    /// and the rotation that replaced it is still inside the grace window.
    fn is_graced_predecessor(&self, token: &RefreshToken, session: &Session, now: u64) -> bool {
        token.generation.checked_add(1) == Some(session.generation)
            && now < session.rotated_at.saturating_add(self.policy.grace_secs)
    }

    /// Whether `session`'s user still allows it ([`user_refusal`]): one read of the
    /// user's standing. A session the eventually consistent index missed when the
    /// user's sessions were ended is alive by its own item but not by this.
    pub async fn user_allows(&self, session: &Session) -> Result<bool, StoreError> {
        let user = self.users.user_standing(&session.email).await?;
        Ok(user_refusal(session, user.as_ref()).is_none())
    }

    /// The session with this id, live or not.
    pub async fn session(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.sessions.get_session(session_id).await
    }

    /// Revokes one session. Idempotent; returns the session as it now is, if it exists.
    pub async fn revoke(&self, session_id: &SessionId, reason: &str) -> Result<Option<Session>, StoreError> {
        self.revoke_logged(session_id, self.clock.now(), reason).await
    }

    /// Revokes one session and writes the `session_revoked` audit line (when it
    /// exists; an already revoked one keeps its first reason, as the line says).
    async fn revoke_logged(
        &self,
        session_id: &SessionId,
        now: u64,
        reason: &str,
    ) -> Result<Option<Session>, StoreError> {
        let revoked = self.sessions.revoke_session(session_id, now, reason).await?;
        if let Some(session) = &revoked {
            tracing::info!(
                event = "session_revoked",
                user_id = %session.user_id,
                session_id = %session_id,
                reason,
                first_reason = session.revoke_reason.as_deref().unwrap_or(reason),
            );
        }
        Ok(revoked)
    }

    /// Ends every session of the user: bumps the user's session epoch, which ends
    /// them all at once (refresh and the authorizer's session check compare it),
    /// even one the eventually consistent index does not list yet. Then, for the
    /// record and the session list, marks each live session it lists revoked, the
    /// `requester`'s own last ([`SessionManager::mark_all_revoked`], best effort).
    /// Idempotent; returns how many listed sessions were live.
    pub async fn revoke_all(
        &self,
        user_id: &str,
        email: &str,
        reason: &str,
        requester: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        self.users.end_sessions(email).await?;
        tracing::info!(event = "sessions_ended", user_id, reason);
        Ok(self.mark(user_id, reason, requester, false).await)
    }

    /// After the user's session epoch has moved on (which already ended the
    /// sessions), marks each live session the index lists revoked, except `spare`
    /// (the session a password change keeps). Best effort: once the epoch has moved,
    /// a failure here loses nothing but the mark, so it is logged
    /// (`sessions_not_marked`), not returned. Returns how many were marked.
    pub async fn mark_all_revoked(&self, user_id: &str, reason: &str, spare: Option<&SessionId>) -> usize {
        self.mark(user_id, reason, spare, true).await
    }

    /// Marks the user's live sessions revoked: `session` last, or (`spare`) not at all.
    async fn mark(&self, user_id: &str, reason: &str, session: Option<&SessionId>, spare: bool) -> usize {
        let now = self.clock.now();
        let listed = match self.sessions.list_user_sessions(user_id).await {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(event = "sessions_not_marked", user_id, %error, "sessions ended by epoch; not listed");
                return 0;
            }
        };
        let mut live: Vec<Session> = listed
            .into_iter()
            .filter(|listed| listed.is_live(now) && !(spare && Some(&listed.id) == session))
            .collect();
        live.sort_by_key(|listed| Some(&listed.id) == session);
        for listed in &live {
            if let Err(error) = self.revoke_logged(&listed.id, now, reason).await {
                tracing::warn!(
                    event = "sessions_not_marked",
                    user_id,
                    session_id = %listed.id,
                    %error,
                    "session ended by epoch; not marked revoked"
                );
            }
        }
        live.len()
    }

    /// The lifetimes.
    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// The refresh token of `token`'s session and generation.
    pub fn mint(&self, token: &RefreshToken) -> String {
        self.key.mint(token)
    }

    /// The refresh-token key (account flows derive their secret key from it).
    pub fn key(&self) -> &RefreshKey {
        &self.key
    }

    /// The user's sessions that are live now, oldest first.
    pub async fn list_live(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        let now = self.clock.now();
        let mut sessions = self.sessions.list_user_sessions(user_id).await?;
        sessions.retain(|session| session.is_live(now));
        Ok(sessions)
    }

    /// The sessions user `user_id` (email `email`) can use now, with where each was
    /// last used, newest first: at most [`MAX_SESSIONS_READ`]. The index lists them
    /// while the user's standing is read (one round trip), then the live ones in the
    /// user's current epoch are read with their client details (a second, strongly
    /// consistent one). A disabled or missing user has none.
    pub async fn user_sessions(&self, user_id: &str, email: &str) -> Result<Vec<Session>, StoreError> {
        let (standing, listed) =
            tokio::join!(self.users.user_standing(email), self.sessions.list_user_sessions(user_id));
        let Some(standing) = standing?.filter(|user| user.id == user_id && !user.disabled) else {
            return Ok(Vec::new());
        };
        let now = self.clock.now();
        let usable = |session: &Session| {
            session.is_live(now) && session.user_id == user_id && session.user_epoch == standing.session_epoch
        };
        let mut listed: Vec<Session> = listed?.into_iter().filter(usable).collect();
        listed.sort_by_key(|session| std::cmp::Reverse((session.created_at, session.id)));
        listed.truncate(MAX_SESSIONS_READ);
        let ids: Vec<SessionId> = listed.iter().map(|session| session.id).collect();
        let mut sessions: Vec<Session> = self.sessions.get_sessions(&ids).await?.into_iter().filter(usable).collect();
        sessions.sort_by_key(|session| std::cmp::Reverse((session.created_at, session.id)));
        Ok(sessions)
    }

    /// Ends session `target` (as text, from a path) if it is a live session of user
    /// `user_id`, and (when `caller` is given) the caller's own session is a live one
    /// of that user; `reason` is its revoke reason. Anything else (malformed, unknown,
    /// another user's, already ended) is `Ok(false)` and writes nothing, so the answer
    /// cannot tell another user's session from no session. Both sessions are read at
    /// once (one round trip), then the one write.
    pub async fn end_session_of(
        &self,
        user_id: &str,
        caller: Option<&SessionId>,
        target: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let Ok(target) = target.parse::<SessionId>() else { return Ok(false) };
        let now = self.clock.now();
        let owned = |session: &Option<Session>| {
            session.as_ref().is_some_and(|session| session.user_id == user_id && session.is_live(now))
        };
        let (found, caller_found) = tokio::join!(self.sessions.get_session(&target), async {
            match caller {
                Some(caller) => self.sessions.get_session(caller).await.map(|found| owned(&found)),
                None => Ok(true),
            }
        });
        if !owned(&found?) || !caller_found? {
            return Ok(false);
        }
        self.revoke_logged(&target, now, reason).await?;
        Ok(true)
    }

    /// Ends every session of `session`'s user but `session` itself, at once (the
    /// epoch moves and `session` moves with it, one transaction), then marks the
    /// others revoked for the record (best effort). `Ok(None)` when `session` is not
    /// one its user still allows, or it changed meanwhile; else how many were marked.
    pub async fn end_others(&self, session: &Session) -> Result<Option<usize>, StoreError> {
        let user = self.users.user_standing(&session.email).await?;
        if user_refusal(session, user.as_ref()).is_some() {
            return Ok(None);
        }
        let now = self.clock.now();
        if !self.sessions.end_other_sessions(&session.email, session.user_epoch, &session.id, now).await? {
            return Ok(None);
        }
        tracing::info!(event = "sessions_ended", user_id = %session.user_id, reason = "logout_others");
        Ok(Some(self.mark_all_revoked(&session.user_id, "logout_others", Some(&session.id)).await))
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::clock::ManualClock;

    /// A store that fails every call, to prove a refresh made none.
    struct Unreachable;

    fn down<T>() -> Result<T, StoreError> {
        Err(StoreError::Unavailable("unreachable store was called".to_owned()))
    }

    #[async_trait]
    impl SessionStore for Unreachable {
        async fn create_session(&self, _: &Session) -> Result<(), StoreError> {
            down()
        }
        async fn get_session(&self, _: &SessionId) -> Result<Option<Session>, StoreError> {
            down()
        }
        async fn rotate_session(
            &self,
            _: &SessionId,
            _: u64,
            _: u64,
            _: u64,
            _: &str,
            _: &ClientInfo,
        ) -> Result<RotateOutcome, StoreError> {
            down()
        }
        async fn revoke_session(&self, _: &SessionId, _: u64, _: &str) -> Result<Option<Session>, StoreError> {
            down()
        }
        async fn list_user_sessions(&self, _: &str) -> Result<Vec<Session>, StoreError> {
            down()
        }
        async fn get_sessions(&self, _: &[SessionId]) -> Result<Vec<Session>, StoreError> {
            down()
        }
        async fn end_other_sessions(&self, _: &str, _: u64, _: &SessionId, _: u64) -> Result<bool, StoreError> {
            down()
        }
    }

    #[async_trait]
    impl UserStore for Unreachable {
        async fn get_user_by_email(&self, _: &str) -> Result<Option<User>, StoreError> {
            down()
        }
        async fn user_standing(&self, _: &str) -> Result<Option<UserStanding>, StoreError> {
            down()
        }
        async fn get_user_by_id(&self, _: &str) -> Result<Option<User>, StoreError> {
            down()
        }
        async fn create_user(&self, _: &User) -> Result<(), StoreError> {
            down()
        }
        async fn set_password(&self, _: &str, _: &str, _: u64) -> Result<(), StoreError> {
            down()
        }
        async fn end_sessions(&self, _: &str) -> Result<(), StoreError> {
            down()
        }
        async fn upgrade_password_hash(&self, _: &str, _: &str, _: &str) -> Result<bool, StoreError> {
            down()
        }
        async fn set_role(&self, _: &str, _: &str) -> Result<(), StoreError> {
            down()
        }
        async fn set_disabled(&self, _: &str, _: bool) -> Result<(), StoreError> {
            down()
        }
        async fn list_users(&self) -> Result<Vec<User>, StoreError> {
            down()
        }
        async fn users_page(&self, _: &str, _: Option<&str>, _: usize) -> Result<crate::store::UsersPage, StoreError> {
            down()
        }
        async fn admin_set(&self) -> Result<Option<Vec<String>>, StoreError> {
            down()
        }
        async fn init_admin_set(&self, _: &[String]) -> Result<(), StoreError> {
            down()
        }
        async fn change_standing(
            &self,
            _: &User,
            _: &crate::store::StandingChange,
            _: crate::store::Membership,
        ) -> Result<crate::store::StandingOutcome, StoreError> {
            down()
        }
    }

    fn manager(key: RefreshKey) -> SessionManager {
        let store = Arc::new(Unreachable);
        let policy = SessionPolicy::from_config(&Config::default());
        SessionManager::new(store.clone(), store, key, policy, Arc::new(ManualClock::new(1_000)))
    }

    #[tokio::test]
    async fn forged_and_malformed_tokens_are_refused_without_a_store_call() {
        let sessions = manager(RefreshKey::generate().unwrap());
        let forged = RefreshKey::generate()
            .unwrap()
            .mint(&RefreshToken { session_id: SessionId::random().unwrap(), generation: 0 });
        for (token, expected) in [
            (forged.as_str(), InvalidGrant::Forged),
            ("lk1.not.a.token", InvalidGrant::Malformed),
            ("", InvalidGrant::Malformed),
        ] {
            match sessions.refresh(token).await {
                Err(RefreshError::Invalid(grant)) => assert_eq!(grant, expected),
                other => panic!("{token:?}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn genuine_token_reaches_the_store_and_an_outage_is_not_an_invalid_grant() {
        let key = RefreshKey::generate().unwrap();
        let genuine = key.mint(&RefreshToken { session_id: SessionId::random().unwrap(), generation: 3 });
        let outcome = manager(key).refresh(&genuine).await;
        assert!(matches!(outcome, Err(RefreshError::Store(StoreError::Unavailable(_)))), "{outcome:?}");
    }

    #[test]
    fn debug_output_never_shows_refresh_tokens() {
        let session = Session {
            id: SessionId::random().unwrap(),
            user_id: "u".into(),
            email: "e@example.com".into(),
            user_epoch: 0,
            role: None,
            generation: 0,
            created_at: 0,
            rotated_at: 0,
            idle_expires_at: 1,
            absolute_expires_at: 1,
            revoked_at: None,
            revoke_reason: None,
            client: ClientInfo::default(),
            amr: Vec::new(),
        };
        let started = StartedSession { session: session.clone(), refresh_token: "lk1.secret-token".into() };
        let shown = format!("{started:?}");
        assert!(!shown.contains("secret-token"), "{shown}");
        assert!(shown.contains(&session.id.to_string()) && shown.contains("[redacted]"), "{shown}");
        let user = User {
            id: "u".into(),
            email: "e@example.com".into(),
            password_hash: "$argon2id$hash".into(),
            role: "member".into(),
            disabled: false,
            password_changed_at: 0,
            session_epoch: 0,
            created_at: 0,
            email_verified: true,
            pending_expires_at: None,
            totp: Default::default(),
        };
        let refreshed = Refreshed {
            user: UserStanding::from(&user),
            session: session.clone(),
            refresh_token: "lk1.other-secret".into(),
            kind: RefreshKind::Rotated,
        };
        let shown = format!("{refreshed:?}");
        assert!(!shown.contains("other-secret") && !shown.contains("$argon2id$hash"), "{shown}");
        assert!(shown.contains(&session.id.to_string()) && shown.contains("Rotated"), "{shown}");
        let manager = manager(RefreshKey::generate().unwrap());
        let shown = format!("{manager:?}");
        assert!(shown.contains("SessionManager") && shown.contains("grace_secs"), "{shown}");
    }
}
