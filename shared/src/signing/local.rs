//! An in-process ES256 key for `latchkey dev` and fast tests; never for production.
//!
//! aws-lc-rs makes and reads the key (`jsonwebtoken` has no key generation);
//! `jsonwebtoken::crypto::sign` signs with it.

use std::fmt;

use async_trait::async_trait;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::{Algorithm, EncodingKey};

use super::{PublicKey, Signer, SigningError};

/// An ES256 key held in memory: generated at start-up or read from a PEM file.
pub struct LocalSigner {
    key_pair: EcdsaKeyPair,
    encoding: EncodingKey,
    public: PublicKey,
}

impl fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSigner").field("kid", &self.public.kid).finish_non_exhaustive()
    }
}

impl LocalSigner {
    /// A fresh random P-256 key.
    pub fn generate() -> Result<Self, SigningError> {
        let key_pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| SigningError::LocalKey("key generation failed".to_owned()))?;
        Self::from_key_pair(key_pair)
    }

    /// Reads a P-256 private key from PEM: PKCS#8 (`PRIVATE KEY`, as written by
    /// [`LocalSigner::to_pkcs8_pem`] or `openssl genpkey`) or SEC1 (`EC PRIVATE KEY`).
    pub fn from_pem(pem_text: &str) -> Result<Self, SigningError> {
        let block = pem::parse(pem_text).map_err(|_| SigningError::LocalKey("not a PEM document".to_owned()))?;
        let alg = &ECDSA_P256_SHA256_FIXED_SIGNING;
        let key_pair = match block.tag() {
            "PRIVATE KEY" => EcdsaKeyPair::from_pkcs8(alg, block.contents()),
            "EC PRIVATE KEY" => EcdsaKeyPair::from_private_key_der(alg, block.contents()),
            other => {
                return Err(SigningError::LocalKey(format!("PEM block {other:?} is not a private key")));
            }
        }
        .map_err(|_| SigningError::LocalKey("not a P-256 private key".to_owned()))?;
        Self::from_key_pair(key_pair)
    }

    /// The private key as PKCS#8 PEM, so `latchkey dev` can keep a key across restarts.
    pub fn to_pkcs8_pem(&self) -> Result<String, SigningError> {
        let document =
            self.key_pair.to_pkcs8v1().map_err(|_| SigningError::LocalKey("PKCS#8 export failed".to_owned()))?;
        Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", document.as_ref())))
    }

    /// Reads a PKCS#8 (DER) P-256 private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, SigningError> {
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| SigningError::LocalKey("not a P-256 private key".to_owned()))?;
        Self::from_key_pair(key_pair)
    }

    /// The private key as PKCS#8 DER.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, SigningError> {
        let document =
            self.key_pair.to_pkcs8v1().map_err(|_| SigningError::LocalKey("PKCS#8 export failed".to_owned()))?;
        Ok(document.as_ref().to_vec())
    }

    /// The same key published under `kid` instead of its thumbprint (a delegated
    /// key's `kid` carries its period before the thumbprint).
    pub(crate) fn renamed(mut self, kid: String) -> Self {
        self.public.kid = kid;
        self
    }

    fn from_key_pair(key_pair: EcdsaKeyPair) -> Result<Self, SigningError> {
        let public = PublicKey::from_ec_point(key_pair.public_key().as_ref())?;
        let pkcs8 = key_pair.to_pkcs8v1().map_err(|_| SigningError::LocalKey("PKCS#8 export failed".to_owned()))?;
        let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
        Ok(Self { key_pair, encoding, public })
    }
}

#[async_trait]
impl Signer for LocalSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    async fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SigningError> {
        jsonwebtoken::crypto::sign(signing_input, &self.encoding, Algorithm::ES256)
            .ok()
            .and_then(|signature| crate::encoding::b64url_decode(&signature))
            .ok_or_else(|| SigningError::LocalKey("signing failed".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pem_round_trip_keeps_the_kid_and_signs_64_bytes() {
        let signer = LocalSigner::generate().unwrap();
        let pem_text = signer.to_pkcs8_pem().unwrap();
        assert!(pem_text.starts_with("-----BEGIN PRIVATE KEY-----"));
        let reloaded = LocalSigner::from_pem(&pem_text).unwrap();
        assert_eq!(reloaded.public_key(), signer.public_key());
        assert_eq!(reloaded.sign(b"input").await.unwrap().len(), 64);
    }

    #[test]
    fn two_generated_keys_differ() {
        let a = LocalSigner::generate().unwrap();
        let b = LocalSigner::generate().unwrap();
        assert_ne!(a.public_key().kid, b.public_key().kid);
    }

    #[test]
    fn non_key_pem_is_refused() {
        let certificate = pem::encode(&pem::Pem::new("CERTIFICATE", vec![1, 2, 3]));
        assert!(LocalSigner::from_pem(&certificate).is_err());
        assert!(LocalSigner::from_pem("not pem").is_err());
    }
}
