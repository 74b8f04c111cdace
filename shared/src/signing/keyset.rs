//! The keys a verifier accepts, selected by `kid`: from a JWKS document or from KMS at cold start.

use std::collections::HashMap;
use std::fmt;

use super::{JwkError, PublicKey, SigningError, kms_public_key};
use crate::config::Config;

/// One accepted key, checked once at load and held as `jsonwebtoken`'s `DecodingKey`.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The published key.
    pub public: PublicKey,
    decoding: jsonwebtoken::DecodingKey,
}

impl VerifyingKey {
    /// The key, its material checked once (see [`PublicKey`]'s `decoding_key`).
    pub fn new(public: PublicKey) -> Result<Self, JwkError> {
        let decoding = public.decoding_key()?;
        Ok(Self { public, decoding })
    }

    /// The key as `jsonwebtoken` verifies with it (what `Verifier::verify` hands `decode`).
    pub fn decoding_key(&self) -> &jsonwebtoken::DecodingKey {
        &self.decoding
    }

    /// Whether `signature` (JOSE form: `r||s` for ES256, the PKCS#1 v1.5 block for
    /// RS256) is this key's signature of `message` under its one algorithm, checked
    /// by `jsonwebtoken::crypto::verify`: the signature primitive `decode` runs
    /// (the same verifier factory of its `aws_lc_rs` provider, on this key).
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        let encoded = crate::encoding::b64url(signature);
        jsonwebtoken::crypto::verify(&encoded, message, &self.decoding, self.public.algorithm.jwt_algorithm())
            .unwrap_or(false)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.public.kid)
            .field("algorithm", &self.public.algorithm)
            .finish()
    }
}

/// Every key whose tokens are accepted, by `kid`. Several at once during rotation.
///
/// Keys come only from configuration or KMS; a key named inside a token (`jwk`,
/// `jku`, `x5u`, `x5c`) is never looked at.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyingKey>,
}

impl KeySet {
    /// A set of the given keys. Duplicates (same `kid`) collapse into one.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Result<Self, JwkError> {
        let keys = keys
            .into_iter()
            .map(|public| Ok((public.kid.clone(), VerifyingKey::new(public)?)))
            .collect::<Result<_, JwkError>>()?;
        Ok(Self { keys })
    }

    /// Reads a JWKS document (`{"keys": [...]}`). Every entry must be usable (see
    /// [`PublicKey::from_jwk_json`]): a bad entry fails the whole set, so a typo in
    /// configuration stops start-up instead of silently dropping a key. Period keys
    /// of delegated signing (`kid` `d1.…`, as Latchkey's own JWKS lists them) are
    /// left out: they are never long-term keys; verifiers learn them from the store,
    /// vouch checked, bound to their period.
    pub fn from_jwks_json(json: &str) -> Result<Self, JwkError> {
        #[derive(serde::Deserialize)]
        struct Jwks {
            keys: Vec<serde_json::Value>,
        }
        let jwks: Jwks = serde_json::from_str(json).map_err(|_| JwkError::Malformed("JWKS document"))?;
        let long_term = |entry: &&serde_json::Value| {
            let kid = entry.get("kid").and_then(serde_json::Value::as_str).unwrap_or_default();
            super::KeyPeriod::of_kid(kid).is_none()
        };
        let keys = jwks.keys.iter().filter(long_term).map(PublicKey::from_jwk_json).collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(JwkError::Malformed("JWKS has no keys"));
        }
        Self::new(keys)
    }

    /// One KMS `GetPublicKey` per key id, all sent together; meant for cold start.
    pub async fn from_kms(client: &aws_sdk_kms::Client, key_ids: &[String]) -> Result<Self, SigningError> {
        let keys = futures::future::try_join_all(key_ids.iter().map(|key_id| kms_public_key(client, key_id))).await?;
        Ok(Self::new(keys)?)
    }

    /// The verification keys `config` names: `LATCHKEY_JWKS` when set (no AWS call),
    /// otherwise `LATCHKEY_KMS_KEY_ID` plus `LATCHKEY_KMS_VERIFY_KEY_IDS` from KMS.
    /// Fails closed: no key at all is an error.
    pub async fn from_config(config: &Config, kms: &aws_sdk_kms::Client) -> Result<Self, SigningError> {
        if let Some(jwks) = &config.jwks {
            return Ok(Self::from_jwks_json(jwks)?);
        }
        let key_ids: Vec<String> = config.kms_key_id.iter().chain(&config.kms_verify_key_ids).cloned().collect();
        if key_ids.is_empty() {
            return Err(JwkError::Malformed("no LATCHKEY_JWKS and no LATCHKEY_KMS_KEY_ID").into());
        }
        Self::from_kms(kms, &key_ids).await
    }

    /// The key with this `kid`, if accepted.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// Every key, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.values()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no key (a verifier built on it refuses everything).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The set as a JWKS document, keys sorted by `kid` so the output is stable.
    pub fn to_jwks_json(&self) -> serde_json::Value {
        let mut keys: Vec<&VerifyingKey> = self.keys.values().collect();
        keys.sort_by(|a, b| a.public.kid.cmp(&b.public.kid));
        serde_json::json!({ "keys": keys.iter().map(|key| key.public.to_jwk_json()).collect::<Vec<_>>() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{LocalSigner, Signer};

    #[test]
    fn jwks_round_trip_keeps_every_key() {
        let a = LocalSigner::generate().unwrap();
        let b = LocalSigner::generate().unwrap();
        let set = KeySet::new([a.public_key().clone(), b.public_key().clone()]).unwrap();
        let json = set.to_jwks_json().to_string();
        let reread = KeySet::from_jwks_json(&json).unwrap();
        assert_eq!(reread.len(), 2);
        assert!(reread.get(&a.public_key().kid).is_some());
        assert!(reread.get(&b.public_key().kid).is_some());
        assert!(reread.get("other").is_none());
    }

    #[test]
    fn jwks_with_one_bad_entry_is_refused_whole() {
        let a = LocalSigner::generate().unwrap();
        let json =
            serde_json::json!({"keys": [a.public_key().to_jwk_json(), {"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]});
        assert!(KeySet::from_jwks_json(&json.to_string()).is_err());
        assert!(KeySet::from_jwks_json(r#"{"keys": []}"#).is_err());
        assert!(KeySet::from_jwks_json("not json").is_err());
    }

    #[test]
    fn period_keys_in_a_jwks_are_never_long_term_keys() {
        let long_term = LocalSigner::generate().unwrap();
        let period = LocalSigner::generate().unwrap();
        let mut entry = period.public_key().to_jwk_json();
        let kid = crate::signing::KeyPeriod { seconds: 3600, start: 7200 }.kid(&period.public_key().kid);
        entry["kid"] = serde_json::Value::String(kid.clone());
        let json = serde_json::json!({"keys": [long_term.public_key().to_jwk_json(), entry]});
        let set = KeySet::from_jwks_json(&json.to_string()).unwrap();
        assert_eq!(set.len(), 1, "only the long-term key");
        assert!(set.get(&kid).is_none() && set.get(&long_term.public_key().kid).is_some());
        let alone = serde_json::json!({"keys": [json["keys"][1].clone()]});
        assert!(KeySet::from_jwks_json(&alone.to_string()).is_err(), "no long-term key at all");
    }

    #[tokio::test]
    async fn config_without_any_key_fails_closed() {
        let kms = aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::Config::builder()
                .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
                .region(aws_sdk_kms::config::Region::new("us-east-1"))
                .build(),
        );
        assert!(KeySet::from_config(&Config::default(), &kms).await.is_err());
    }
}
