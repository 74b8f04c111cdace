//! Signing access tokens: the [`Signer`] trait, its AWS KMS and local
//! implementations, public keys as JWKs, and the [`KeySet`] verifiers use.

mod delegated;
mod der;
mod jwk;
mod keyset;
mod kms;
mod local;
mod seal;

use std::sync::Arc;

use async_trait::async_trait;

pub use delegated::{
    DELEGATED_KID_TAG, DelegatedKey, DelegatedKeyRecord, DelegatedKeyStore, DelegatedKeys, DelegatedSigner, KeyPeriod,
    VOUCH_TYPE, check_vouch, listed_period_key,
};
pub use der::ecdsa_der_to_jose;
pub use jwk::{Jwk, JwkError, MIN_RSA_BITS, PublicKey};
pub use keyset::{KeySet, VerifyingKey};
pub use kms::{KmsSigner, derive_refresh_key, kms_public_key};
pub use local::LocalSigner;
pub use seal::SealingKey;

/// The JWS algorithms Latchkey signs with. One algorithm per key, fixed by the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// ECDSA on P-256 with SHA-256; signatures are 64 bytes `r || s`. The default.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, for RSA keys of 3072 bits or more.
    Rs256,
}

impl SigningAlgorithm {
    /// The JOSE `alg` name, exactly as it appears in a token header.
    pub fn jose_name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    /// The same algorithm as `jsonwebtoken` names it.
    pub fn jwt_algorithm(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

/// Why a signature could not be made or a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// A KMS call failed; `operation` names it (`Sign`, `GetPublicKey`).
    #[error("KMS {operation} failed: {message}")]
    Kms {
        /// The KMS API operation.
        operation: &'static str,
        /// The SDK's description of the failure (never key material).
        message: String,
    },
    /// The key is not one Latchkey can sign or verify with.
    #[error("unusable key: {0}")]
    UnusableKey(#[from] JwkError),
    /// KMS returned a signature that is not valid DER for the key's curve.
    #[error("malformed signature from the signer")]
    MalformedSignature,
    /// The local key could not be generated, read or used.
    #[error("local key: {0}")]
    LocalKey(String),
    /// A delegated key could not be read, written or used (store failure, or a
    /// stored key that is not vouched for).
    #[error("delegated key: {0}")]
    KeyStore(String),
}

/// Signs JWS signing inputs (`base64url(header) "." base64url(claims)`).
///
/// Implementations return the signature in JOSE form (for ES256: 64 bytes `r||s`)
/// and know their public key, whose RFC 7638 thumbprint is the `kid`.
#[async_trait]
pub trait Signer: Send + Sync {
    /// The public half of the signing key, with its `kid` and algorithm.
    fn public_key(&self) -> &PublicKey;

    /// Signs `signing_input` and returns the JOSE signature bytes.
    async fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SigningError>;

    /// The signer of a token issued at `now` when it is not this one: the current
    /// period's key of a [`DelegatedSigner`]. `None` (the default): sign with this.
    async fn signer_at(&self, _now: u64) -> Result<Option<Arc<dyn Signer>>, SigningError> {
        Ok(None)
    }
}
