//! The admin API's rules, shared with the operator CLI: who may act as an
//! administrator, users in pages behind a tamper-evident cursor, and each user and
//! session operation (through [`Accounts`], [`Recovery`] and [`SessionManager`], so
//! the last-admin rule and session endings are the same code whoever calls).

use aws_lc_rs::{constant_time, hmac};

use crate::account::{AccountError, Accounts};
use crate::encoding::{b64url, b64url_decode};
use crate::password::Password;
use crate::recovery::{Invited, Recovery};
use crate::session::{SessionManager, user_refusal};
use crate::store::{ListedUser, Session, StoreError, User, normalize_email};
use crate::token::{AccessClaims, RefreshKey, SessionId};

/// Users per page when the request names no limit.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Most users one page may hold.
pub const MAX_PAGE_SIZE: usize = 100;
/// Longest `emailPrefix` accepted, in bytes (an email is at most 254).
pub const MAX_PREFIX_BYTES: usize = 254;

/// The label whose MAC under the refresh key is the cursor key.
const CURSOR_LABEL: &[u8] = b"latchkey admin cursor key v1";
/// Bytes of the cursor's MAC kept (128 bits).
const CURSOR_MAC_BYTES: usize = 16;

/// Why an admin operation was not done.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The caller is not an active administrator with a live session.
    #[error("not an active administrator: {0}")]
    Refused(&'static str),
    /// No such user, or no such live session of that user.
    #[error("not found")]
    NotFound,
    /// A cursor that this deployment did not issue for this listing (or was altered).
    #[error("cursor is malformed or was altered")]
    BadCursor,
    /// A `limit` outside 1..=[`MAX_PAGE_SIZE`], or an over-long prefix.
    #[error("limit must be 1-100 and emailPrefix at most 254 bytes")]
    BadPage,
    /// The account rules refused it (email, role, password, last admin, conflict) or
    /// the store failed.
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            other => Self::Account(AccountError::Store(other)),
        }
    }
}

/// The administrator making a request, as verified: id, email and session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The administrator's user id.
    pub user_id: String,
    /// Their email.
    pub email: String,
    /// The session the request came from.
    pub session_id: SessionId,
}

/// One page of users and the cursor of the next (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    /// The users, email ascending.
    pub users: Vec<ListedUser>,
    /// Opaque, tamper-evident; valid only with the same `emailPrefix`.
    pub next_cursor: Option<String>,
}

/// A user an administrator created: by password, or by invitation (a mail with a link).
#[derive(Debug)]
pub struct Created {
    /// The new user.
    pub user: User,
    /// Whether it was an invitation (no password until the link is used).
    pub invited: bool,
}

/// The key listing cursors are signed with, derived from the refresh-token key.
#[derive(Clone)]
struct CursorKey(hmac::Key);

impl CursorKey {
    fn derive(refresh: &RefreshKey) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, &refresh.derive(CURSOR_LABEL)))
    }

    /// `<payload>.<mac>`, the payload binding the prefix to the last email shown.
    fn seal(&self, prefix: &str, last: &str) -> String {
        let payload = format!("{prefix}\n{last}");
        let tag = hmac::sign(&self.0, payload.as_bytes());
        format!("{}.{}", b64url(payload.as_bytes()), b64url(&tag.as_ref()[..CURSOR_MAC_BYTES]))
    }

    /// The last email of a cursor sealed for `prefix`; `None` for anything else.
    fn open(&self, prefix: &str, cursor: &str) -> Option<String> {
        let (payload, mac) = cursor.split_once('.')?;
        let payload = b64url_decode(payload)?;
        let mac = b64url_decode(mac)?;
        let expected = hmac::sign(&self.0, &payload);
        constant_time::verify_slices_are_equal(&expected.as_ref()[..CURSOR_MAC_BYTES], &mac).ok()?;
        let text = String::from_utf8(payload).ok()?;
        let (sealed_prefix, last) = text.split_once('\n')?;
        (sealed_prefix == prefix && !last.is_empty()).then(|| last.to_owned())
    }
}

/// The admin operations.
#[derive(Clone)]
pub struct Admin {
    recovery: Recovery,
    cursor: CursorKey,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("admin_role", &self.accounts().admin_role()).finish_non_exhaustive()
    }
}

impl Admin {
    /// The admin operations over `recovery` (its accounts, sessions and delivery),
    /// with cursors signed under a key derived from the refresh-token key.
    pub fn new(recovery: Recovery) -> Self {
        let cursor = CursorKey::derive(recovery.accounts().sessions().key());
        Self { recovery, cursor }
    }

    /// The same operations delivering invitations through `delivery`.
    pub fn with_delivery(self, delivery: std::sync::Arc<dyn crate::delivery::Delivery>) -> Self {
        Self { recovery: self.recovery.with_delivery(delivery), ..self }
    }

    /// The accounts.
    pub fn accounts(&self) -> &Accounts {
        self.recovery.accounts()
    }

    fn sessions(&self) -> &SessionManager {
        self.accounts().sessions()
    }

    /// Whether the verified access token `claims` (of session `session_id`) belongs to
    /// an active administrator now: the user and the session are read at once
    /// (strongly consistent), and the stored role, not the token's, decides, so a
    /// demotion takes effect on the next request.
    pub async fn authorize(&self, claims: &AccessClaims, session_id: SessionId) -> Result<Actor, AdminError> {
        let users = self.accounts().users();
        let (session, user) = tokio::join!(self.sessions().session(&session_id), users.user_standing(&claims.email));
        let (session, user) = (session?, user?);
        let now = self.sessions().clock().now();
        let Some(session) = session.filter(|s| s.user_id == claims.sub && s.is_live(now)) else {
            return Err(AdminError::Refused("session ended"));
        };
        if user_refusal(&session, user.as_ref()).is_some() {
            return Err(AdminError::Refused("user may no longer use the session"));
        }
        let Some(user) = user.filter(|user| user.role == self.accounts().admin_role()) else {
            return Err(AdminError::Refused("not the admin role"));
        };
        Ok(Actor { user_id: user.id, email: user.email, session_id })
    }

    /// A page of users in email order, those whose email starts with `prefix` (lower
    /// case, as emails are kept), after `cursor`: one index query, never a scan.
    pub async fn list_users(
        &self,
        prefix: Option<&str>,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<UserPage, AdminError> {
        let prefix = prefix.unwrap_or_default().trim().to_lowercase();
        let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) || prefix.len() > MAX_PREFIX_BYTES {
            return Err(AdminError::BadPage);
        }
        let after = match cursor {
            None => None,
            Some(cursor) => Some(self.cursor.open(&prefix, cursor).ok_or(AdminError::BadCursor)?),
        };
        let page = self.accounts().users().users_page(&prefix, after.as_deref(), limit).await?;
        let next_cursor = page.last.map(|last| self.cursor.seal(&prefix, &last));
        Ok(UserPage { users: page.users, next_cursor })
    }

    /// The user with this id.
    pub async fn user(&self, user_id: &str) -> Result<User, AdminError> {
        self.accounts().users().get_user_by_id(user_id).await?.ok_or(AdminError::NotFound)
    }

    /// Creates a user with `password`, or without one as an invitation (a mail with a
    /// link to set it, as `latchkey user invite` sends).
    pub async fn create_user(
        &self,
        email: &str,
        role: &str,
        password: Option<&Password>,
    ) -> Result<Created, AdminError> {
        match password {
            Some(password) => {
                let user = self.accounts().create(email, password, role).await?;
                Ok(Created { user, invited: false })
            }
            None => {
                let email = normalize_email(email).map_err(AccountError::from)?;
                if self.accounts().users().get_user_by_email(&email).await?.is_some() {
                    return Err(AccountError::Store(StoreError::DuplicateEmail).into());
                }
                let Invited { user, .. } = self.recovery.invite(&email, Some(role)).await?;
                Ok(Created { user, invited: true })
            }
        }
    }

    /// Sets the role and/or the disabled flag of user `user_id` (disabling ends every
    /// session), under the last-admin rule. Returns the user as now stored: one read,
    /// then the conditional writes, each on the user as the previous one left it.
    pub async fn update_user(
        &self,
        user_id: &str,
        role: Option<&str>,
        disabled: Option<bool>,
    ) -> Result<User, AdminError> {
        let mut user = self.user(user_id).await?;
        if let Some(role) = role {
            self.accounts().set_role_of(&user, role).await?;
            role.clone_into(&mut user.role);
        }
        if let Some(disabled) = disabled {
            self.accounts().set_disabled_of(&user, disabled).await?;
            user.disabled = disabled;
        }
        Ok(user)
    }

    /// Deletes user `user_id`, under the last-admin rule: every session ends and the
    /// email is free. Returns how many live sessions were marked ended.
    pub async fn delete_user(&self, user_id: &str) -> Result<usize, AdminError> {
        let user = self.user(user_id).await?;
        Ok(self.accounts().delete_user(&user).await?)
    }

    /// The live sessions of user `user_id`, newest first, with where each was last used.
    pub async fn sessions_of(&self, user_id: &str) -> Result<Vec<Session>, AdminError> {
        let user = self.user(user_id).await?;
        Ok(self.sessions().user_sessions(&user.id, &user.email).await?)
    }

    /// Ends session `session_id` of user `user_id`; [`AdminError::NotFound`] when it
    /// is not one of that user's live sessions (nothing written).
    pub async fn end_session(&self, user_id: &str, session_id: &str) -> Result<(), AdminError> {
        match self.sessions().end_session_of(user_id, None, session_id, "ended_by_admin").await? {
            true => Ok(()),
            false => Err(AdminError::NotFound),
        }
    }

    /// Ends every session of user `user_id` (the epoch moves on). Returns how many
    /// listed sessions were live.
    pub async fn end_sessions(&self, user_id: &str) -> Result<usize, AdminError> {
        let user = self.user(user_id).await?;
        Ok(self.sessions().revoke_all(&user.id, &user.email, "ended_by_admin", None).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_opens_only_unaltered_and_for_its_own_prefix() {
        let key = CursorKey::derive(&RefreshKey::generate().unwrap());
        let cursor = key.seal("ad", "ada@example.com");
        assert_eq!(key.open("ad", &cursor).as_deref(), Some("ada@example.com"));
        assert_eq!(key.open("", &cursor), None, "another prefix");
        let other = CursorKey::derive(&RefreshKey::generate().unwrap());
        assert_eq!(other.open("ad", &cursor), None, "another deployment's key");
        let (payload, mac) = cursor.split_once('.').unwrap();
        let forged = format!("{}.{mac}", b64url(b"ad\nzed@example.com"));
        assert_eq!(key.open("ad", &forged), None, "a payload changed under its MAC");
        let mut flipped = mac.to_owned().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = format!("{payload}.{}", String::from_utf8(flipped).unwrap());
        assert_eq!(key.open("ad", &flipped), None, "a MAC changed");
        for junk in ["", ".", "abc", "a.b.c", "%%%.%%%"] {
            assert_eq!(key.open("ad", junk), None, "{junk:?}");
        }
    }
}
