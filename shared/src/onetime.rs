//! One-time secrets in links (password reset, invitation, email verification):
//! 32 random bytes shown once, stored only as a keyed hash.
//!
//! The hash key is derived from the refresh-token key (HMAC over a fixed label), so
//! it costs no KMS call and is never in the table: a table dump holds hashes that
//! cannot be turned back into secrets nor checked offline without the key.

use aws_lc_rs::hmac;

use crate::encoding::{b64url, b64url_decode, random_bytes};
use crate::token::RefreshKey;

/// Characters of a secret as it appears in a link (32 bytes, base64url).
pub const SECRET_CHARS: usize = 43;

/// What a secret lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Set the password (a reset, or an invitation's first password); also verifies
    /// the email, since only its owner received the link.
    Password,
    /// Confirm the email address of a sign-up.
    Verify,
    /// Finish a login with a second factor: the `mfaToken` of a right password.
    Mfa,
}

impl Purpose {
    /// The stable name used in item keys, logs and links.
    pub fn code(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Verify => "verify",
            Self::Mfa => "mfa",
        }
    }
}

/// A newly made secret: the text for the link, and the hash to store.
pub struct IssuedSecret {
    /// The secret itself: goes into the link, never into storage or logs.
    pub secret: String,
    /// Its keyed hash: the storage key.
    pub hash: String,
}

impl std::fmt::Debug for IssuedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSecret").field("secret", &"[redacted]").field("hash", &self.hash).finish()
    }
}

/// The key one-time secrets are hashed under.
#[derive(Clone)]
pub struct SecretKey(hmac::Key);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// The label whose MAC under the refresh key is the secret key. Changing it changes the key.
const LABEL: &[u8] = b"latchkey one-time secret key v1";

impl SecretKey {
    /// The key derived from the refresh-token key (one HMAC, no AWS call).
    pub fn derive(refresh: &RefreshKey) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, &refresh.derive(LABEL)))
    }

    /// A fresh secret for `purpose` (256 bits from the OS CSPRNG) and its hash.
    pub fn issue(&self, purpose: Purpose) -> Result<IssuedSecret, getrandom::Error> {
        let secret = b64url(random_bytes::<32>()?);
        let hash = self.hash_of(purpose, secret.as_bytes());
        Ok(IssuedSecret { secret, hash })
    }

    /// The hash a presented secret would be stored under; `None` when it cannot be a
    /// secret at all (not 43 base64url characters), so no store call is made for it.
    pub fn hash(&self, purpose: Purpose, presented: &str) -> Option<String> {
        let canonical = presented.len() == SECRET_CHARS && b64url_decode(presented).is_some_and(|b| b.len() == 32);
        canonical.then(|| self.hash_of(purpose, presented.as_bytes()))
    }

    fn hash_of(&self, purpose: Purpose, secret: &[u8]) -> String {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(purpose.code().as_bytes());
        context.update(&[0]);
        context.update(secret);
        b64url(context.sign())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_hashes_to_its_stored_hash_for_its_purpose_only() {
        let key = SecretKey::derive(&RefreshKey::generate().unwrap());
        let issued = key.issue(Purpose::Password).unwrap();
        assert_eq!(issued.secret.len(), SECRET_CHARS);
        assert_eq!(key.hash(Purpose::Password, &issued.secret).as_deref(), Some(issued.hash.as_str()));
        assert_ne!(key.hash(Purpose::Verify, &issued.secret), Some(issued.hash.clone()));
        assert_ne!(issued.hash, issued.secret, "the stored form is not the secret");
        let other = SecretKey::derive(&RefreshKey::generate().unwrap());
        assert_ne!(other.hash(Purpose::Password, &issued.secret), Some(issued.hash.clone()));
        assert!(!format!("{issued:?}").contains(&issued.secret));
    }

    #[test]
    fn what_cannot_be_a_secret_has_no_hash() {
        let key = SecretKey::derive(&RefreshKey::generate().unwrap());
        let good = key.issue(Purpose::Verify).unwrap().secret;
        for bad in
            [String::new(), good[1..].to_owned(), format!("{good}A"), format!("{}=", &good[..42]), "!".repeat(43)]
        {
            assert_eq!(key.hash(Purpose::Verify, &bad), None, "{bad}");
        }
    }

    #[test]
    fn the_derived_key_differs_from_the_refresh_key_and_is_stable() {
        let refresh = RefreshKey::from_bytes(&[7; 32]);
        let (a, b) = (SecretKey::derive(&refresh), SecretKey::derive(&refresh));
        let secret = "A".repeat(42) + "A";
        assert_eq!(a.hash(Purpose::Password, &secret), b.hash(Purpose::Password, &secret));
    }
}
