//! Refresh tokens: `lk1.<session id>.<generation>.<MAC>`, opaque to clients,
//! MAC-checked before any storage call, and never stored.
//!
//! The MAC is HMAC-SHA256 under a 256-bit [`RefreshKey`] that is not in the
//! database, over the token's own prefix `lk1.<sid>.<gen>`. Because the successor
//! of generation `g` is simply the token for `g + 1`, it can be recomputed, which is
//! what lets the grace window hand two tabs the same successor without storing it.
//! `docs/storage.md` explains the trade-off against storing digests.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::hmac;

use crate::encoding::{b64url, b64url_decode, random_bytes};

/// Version tag at the front of every refresh token, so the key can be rotated later.
pub const VERSION_TAG: &str = "lk1";

/// The longest refresh token there is: `lk1.`, a 22-character session id, the
/// largest generation (20 digits) and a 43-character MAC, with their dots (91 bytes).
/// Anything longer is refused before it is parsed.
const MAX_REFRESH_TOKEN_BYTES: usize = VERSION_TAG.len() + 1 + 22 + 1 + 20 + 1 + 43;

/// Why a refresh token string was refused. Callers must answer every variant
/// identically (`invalid_grant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RefreshTokenError {
    /// Not of the form `lk1.<22 base64url>.<decimal>.<43 base64url>`.
    #[error("malformed refresh token")]
    Malformed,
    /// Well-formed, but the MAC does not verify: forged, or made with another key.
    #[error("refresh token MAC does not verify")]
    BadMac,
    /// The operating system's random source failed.
    #[error("random source failed")]
    Randomness,
}

/// A session id: 128 bits from the OS CSPRNG, shown as 22 base64url characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// A fresh random session id.
    pub fn random() -> Result<Self, RefreshTokenError> {
        random_bytes().map(Self).map_err(|_| RefreshTokenError::Randomness)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&b64url(self.0))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl FromStr for SessionId {
    type Err = RefreshTokenError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != 22 {
            return Err(RefreshTokenError::Malformed);
        }
        b64url_decode(text)
            .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
            .map(Self)
            .ok_or(RefreshTokenError::Malformed)
    }
}

/// What a refresh token names: a session and a position in its rotation chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshToken {
    /// The session.
    pub session_id: SessionId,
    /// The generation: 0 at login, +1 on every rotation.
    pub generation: u64,
}

impl RefreshToken {
    /// The token that replaces this one on rotation.
    pub fn successor(&self) -> Option<Self> {
        Some(Self { session_id: self.session_id, generation: self.generation.checked_add(1)? })
    }
}

/// The 256-bit secret refresh-token MACs are made with. Never stored in the
/// database and never printed (`Debug` shows `[redacted]`).
#[derive(Clone)]
pub struct RefreshKey(hmac::Key);

impl fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshKey([redacted])")
    }
}

impl RefreshKey {
    /// A random key from the OS CSPRNG (for `latchkey dev` and tests).
    pub fn generate() -> Result<Self, RefreshTokenError> {
        random_bytes::<32>().map(|bytes| Self::from_bytes(&bytes)).map_err(|_| RefreshTokenError::Randomness)
    }

    /// A key from 32 secret bytes (as derived from KMS `GenerateMac` at cold start).
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// The token string for `token`.
    pub fn mint(&self, token: &RefreshToken) -> String {
        let prefix = format!("{VERSION_TAG}.{}.{}", token.session_id, token.generation);
        let tag = hmac::sign(&self.0, prefix.as_bytes());
        format!("{prefix}.{}", b64url(tag))
    }

    /// 32 bytes derived from this key for another use (`label` names the use): the
    /// HMAC of `label` under it. Keys for different labels are independent.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut derived = [0u8; 32];
        derived.copy_from_slice(hmac::sign(&self.0, label).as_ref());
        derived
    }

    /// Parses `text` and checks its MAC in constant time. Needs no storage: a
    /// forged or garbled token is refused here, before any database call.
    pub fn verify(&self, text: &str) -> Result<RefreshToken, RefreshTokenError> {
        if text.len() > MAX_REFRESH_TOKEN_BYTES {
            return Err(RefreshTokenError::Malformed);
        }
        let (prefix, tag) = text.rsplit_once('.').ok_or(RefreshTokenError::Malformed)?;
        let mut parts = prefix.split('.');
        let (Some(VERSION_TAG), Some(session), Some(generation), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(RefreshTokenError::Malformed);
        };
        let session_id = session.parse()?;
        let canonical_number = generation == "0" || !generation.starts_with('0');
        if !canonical_number || !generation.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RefreshTokenError::Malformed);
        }
        let generation = generation.parse().map_err(|_| RefreshTokenError::Malformed)?;
        let tag = b64url_decode(tag).filter(|tag| tag.len() == 32).ok_or(RefreshTokenError::Malformed)?;
        hmac::verify(&self.0, prefix.as_bytes(), &tag).map_err(|_| RefreshTokenError::BadMac)?;
        Ok(RefreshToken { session_id, generation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(generation: u64) -> RefreshToken {
        RefreshToken { session_id: SessionId::random().unwrap(), generation }
    }

    #[test]
    fn minted_token_verifies_to_itself() {
        let key = RefreshKey::generate().unwrap();
        let original = token(41);
        let text = key.mint(&original);
        assert!(text.starts_with("lk1."), "{text}");
        assert_eq!(key.verify(&text).unwrap(), original);
    }

    #[test]
    fn the_longest_possible_token_verifies_and_one_byte_more_is_malformed() {
        let key = RefreshKey::generate().unwrap();
        let longest = key.mint(&token(u64::MAX));
        assert_eq!(longest.len(), MAX_REFRESH_TOKEN_BYTES);
        assert_eq!(key.verify(&longest).unwrap().generation, u64::MAX);
        assert_eq!(key.verify(&format!("{longest}A")), Err(RefreshTokenError::Malformed));
    }

    #[test]
    fn session_id_debug_shows_the_id() {
        let id = SessionId::random().unwrap();
        assert_eq!(format!("{id:?}"), format!("SessionId({id})"));
        assert_eq!(id.to_string().len(), 22);
    }

    #[test]
    fn successor_is_the_next_generation_of_the_same_session() {
        let original = token(7);
        let next = original.successor().unwrap();
        assert_eq!(next.session_id, original.session_id);
        assert_eq!(next.generation, 8);
        assert!(token(u64::MAX).successor().is_none());
    }

    #[test]
    fn token_from_another_key_fails_the_mac() {
        let text = RefreshKey::generate().unwrap().mint(&token(0));
        let other = RefreshKey::generate().unwrap();
        assert_eq!(other.verify(&text), Err(RefreshTokenError::BadMac));
    }

    #[test]
    fn changing_the_generation_breaks_the_mac() {
        let key = RefreshKey::generate().unwrap();
        let text = key.mint(&token(1));
        let forged = text.replacen(".1.", ".2.", 1);
        assert_eq!(key.verify(&forged), Err(RefreshTokenError::BadMac));
    }

    #[test]
    fn malformed_tokens_are_refused_before_the_mac() {
        let key = RefreshKey::generate().unwrap();
        let good = key.mint(&token(3));
        let (prefix, tag) = good.rsplit_once('.').unwrap();
        let sid = prefix.split('.').nth(1).unwrap();
        for bad in [
            String::new(),
            "lk1".to_owned(),
            good.replacen("lk1", "lk2", 1),
            format!("{good}="),
            format!("{good}.x"),
            format!("lk1.{sid}.03.{tag}"),
            format!("lk1.{sid}.+3.{tag}"),
            format!("lk1.{sid}.99999999999999999999.{tag}"),
            format!("lk1.{sid}A.3.{tag}"),
            format!("{prefix}.{}", &tag[1..]),
            "x".repeat(4096),
        ] {
            assert_eq!(key.verify(&bad), Err(RefreshTokenError::Malformed), "{bad}");
        }
    }

    #[test]
    fn session_id_round_trips_through_text() {
        let id = SessionId::random().unwrap();
        assert_eq!(id.to_string().len(), 22);
        assert_eq!(id.to_string().parse::<SessionId>().unwrap(), id);
        assert!("short".parse::<SessionId>().is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", RefreshKey::from_bytes(&[0xAB; 32]));
        assert_eq!(shown, "RefreshKey([redacted])");
    }
}
