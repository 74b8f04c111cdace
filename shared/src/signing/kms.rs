//! Signing with an asymmetric AWS KMS key: the private key never leaves KMS.

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MacAlgorithmSpec, MessageType, SigningAlgorithmSpec};

use super::{PublicKey, Signer, SigningAlgorithm, SigningError, ecdsa_der_to_jose};
use crate::token::RefreshKey;

/// KMS accepts at most this many bytes with `MessageType::Raw`.
const KMS_RAW_MESSAGE_LIMIT: usize = 4096;

/// Signs with KMS `Sign` (`MessageType::Raw`). The public key is fetched once,
/// with `GetPublicKey`, when the signer is built.
#[derive(Debug, Clone)]
pub struct KmsSigner {
    client: Client,
    key_arn: String,
    public: PublicKey,
}

impl KmsSigner {
    /// Looks up `key_id` (id, ARN, alias name or alias ARN) once and returns a
    /// signer bound to the key it resolves to *now*: if the alias is later moved to a
    /// new key, this signer keeps signing with the key whose `kid` it advertises.
    pub async fn new(client: Client, key_id: &str) -> Result<Self, SigningError> {
        let (key_arn, public) = fetch_public_key(&client, key_id).await?;
        Ok(Self { client, key_arn, public })
    }
}

/// One KMS `GetPublicKey` call: the key's public half as a [`PublicKey`].
pub async fn kms_public_key(client: &Client, key_id: &str) -> Result<PublicKey, SigningError> {
    fetch_public_key(client, key_id).await.map(|(_, public)| public)
}

async fn fetch_public_key(client: &Client, key_id: &str) -> Result<(String, PublicKey), SigningError> {
    let output =
        client.get_public_key().key_id(key_id).send().await.map_err(|error| kms_error("GetPublicKey", &error))?;
    let der = output
        .public_key()
        .ok_or(SigningError::Kms { operation: "GetPublicKey", message: "response has no public key".to_owned() })?;
    let public = PublicKey::from_spki_der(der.as_ref())?;
    let key_arn = output.key_id().unwrap_or(key_id).to_owned();
    Ok((key_arn, public))
}

/// The message whose KMS MAC is the refresh-token key. Changing it changes the key.
const REFRESH_KEY_LABEL: &[u8] = b"latchkey refresh-token key v1";

/// Derives the refresh-token MAC key once per cold start: KMS `GenerateMac`
/// (`HMAC_SHA_256`) over a fixed label with the `HMAC_256` key `key_id`. The result
/// is deterministic, so every function instance derives the same key, while the KMS
/// key itself never leaves KMS and the derived key is never stored.
pub async fn derive_refresh_key(client: &Client, key_id: &str) -> Result<RefreshKey, SigningError> {
    let output = client
        .generate_mac()
        .key_id(key_id)
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .message(Blob::new(REFRESH_KEY_LABEL))
        .send()
        .await
        .map_err(|error| kms_error("GenerateMac", &error))?;
    let mac = output.mac().map(|mac| mac.as_ref()).unwrap_or_default();
    let bytes: [u8; 32] = mac.try_into().map_err(|_| SigningError::Kms {
        operation: "GenerateMac",
        message: format!("expected a 32-byte MAC, got {} bytes", mac.len()),
    })?;
    Ok(RefreshKey::from_bytes(&bytes))
}

fn kms_error(operation: &'static str, error: &(dyn std::error::Error + 'static)) -> SigningError {
    SigningError::Kms { operation, message: aws_sdk_kms::error::DisplayErrorContext(error).to_string() }
}

#[async_trait]
impl Signer for KmsSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    async fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SigningError> {
        if signing_input.len() > KMS_RAW_MESSAGE_LIMIT {
            return Err(SigningError::Kms {
                operation: "Sign",
                message: format!("signing input of {} bytes exceeds KMS's raw limit", signing_input.len()),
            });
        }
        let spec = match self.public.algorithm {
            SigningAlgorithm::Es256 => SigningAlgorithmSpec::EcdsaSha256,
            SigningAlgorithm::Rs256 => SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
        };
        let output = self
            .client
            .sign()
            .key_id(&self.key_arn)
            .message(Blob::new(signing_input))
            .message_type(MessageType::Raw)
            .signing_algorithm(spec)
            .send()
            .await
            .map_err(|error| kms_error("Sign", &error))?;
        let signature = output.signature().ok_or(SigningError::MalformedSignature)?.as_ref();
        match self.public.algorithm {
            SigningAlgorithm::Es256 => ecdsa_der_to_jose(signature, 32),
            SigningAlgorithm::Rs256 => Ok(signature.to_vec()),
        }
    }
}
