//! Sealing small secrets for storage: AES-256-GCM under a key derived from the
//! refresh-token key (itself derived by KMS at cold start and never stored).

use std::sync::Arc;

use aws_lc_rs::aead;

use crate::encoding::{b64url, b64url_decode, random_bytes};
use crate::token::RefreshKey;

/// An AES-256-GCM key for one kind of secret, derived as HMAC(refresh key, label):
/// a table dump without the refresh key opens nothing, and no AWS call is made.
#[derive(Clone)]
pub struct SealingKey(Arc<aead::LessSafeKey>);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey([redacted])")
    }
}

impl SealingKey {
    /// The key derived from `refresh` for `label` (a different label, a different key).
    pub fn derive(refresh: &RefreshKey, label: &[u8]) -> Option<Self> {
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, &refresh.derive(label)).ok()?;
        Some(Self(Arc::new(aead::LessSafeKey::new(unbound))))
    }

    /// `plain` sealed and bound to `context` (authenticated, not stored): base64url
    /// of a random 96-bit nonce, the ciphertext and the tag. `None` only when the
    /// OS has no randomness.
    pub fn seal(&self, context: &[u8], plain: &[u8]) -> Option<String> {
        let nonce = random_bytes::<{ aead::NONCE_LEN }>().ok()?;
        let mut sealed = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(context.to_vec()),
                &mut sealed,
            )
            .ok()?;
        Some(b64url([nonce.as_slice(), &sealed].concat()))
    }

    /// What `sealed` holds, if this key sealed it for `context`.
    pub fn open(&self, context: &[u8], sealed: &str) -> Option<Vec<u8>> {
        let bytes = b64url_decode(sealed)?;
        let (nonce, ciphertext) = bytes.split_at_checked(aead::NONCE_LEN)?;
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plain = self.0.open_in_place(nonce, aead::Aad::from(context.to_vec()), &mut in_out).ok()?;
        Some(plain.to_vec())
    }
}
