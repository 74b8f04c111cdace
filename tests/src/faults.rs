//! A signer that sits between the code and a real signer and fails the n-th
//! signature, to play a KMS outage or throttling at a chosen step.

use std::sync::Mutex;

use async_trait::async_trait;
use latchkey::signing::{PublicKey, Signer, SigningError};

/// Signs with `inner`, except the call armed by [`FaultySigner::fail_nth`].
pub struct FaultySigner<S> {
    inner: S,
    /// Calls left before the one that fails (`Some(0)`: the next call fails).
    fail_in: Mutex<Option<u32>>,
}

impl<S> FaultySigner<S> {
    /// Wraps `inner`; nothing fails until [`FaultySigner::fail_nth`].
    pub fn new(inner: S) -> Self {
        Self { inner, fail_in: Mutex::new(None) }
    }

    /// The `n`-th signature from now (1-based) fails, once.
    pub fn fail_nth(&self, n: u32) {
        *self.fail_in.lock().unwrap() = n.checked_sub(1);
    }
}

#[async_trait]
impl<S: Signer> Signer for FaultySigner<S> {
    fn public_key(&self) -> &PublicKey {
        self.inner.public_key()
    }

    async fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SigningError> {
        let fail = {
            let mut fail_in = self.fail_in.lock().unwrap();
            let fail = *fail_in == Some(0);
            *fail_in = fail_in.and_then(|left| left.checked_sub(1));
            fail
        };
        if fail {
            return Err(SigningError::Kms { operation: "Sign", message: "injected throttling".to_owned() });
        }
        self.inner.sign(signing_input).await
    }
}
