//! Fault injection: the "fail the n-th call" countdown, and a signer that sits
//! between the code and a real signer and fails the n-th signature, to play a KMS
//! outage or throttling at a chosen step.

use std::sync::Mutex;

use async_trait::async_trait;
use latchkey::signing::{PublicKey, Signer, SigningError};

/// A countdown to the one call that fails; disarmed until [`NthCall::arm`].
#[derive(Debug, Default)]
pub struct NthCall(Mutex<Option<u32>>);

impl NthCall {
    /// The `n`-th call from now (1-based) fails, once; 0 disarms.
    pub fn arm(&self, n: u32) {
        *self.0.lock().unwrap() = n.checked_sub(1);
    }

    /// Counts one call and says whether it is the one that fails.
    pub fn fails_now(&self) -> bool {
        let mut left = self.0.lock().unwrap();
        let fail = *left == Some(0);
        *left = left.and_then(|calls| calls.checked_sub(1));
        fail
    }

    /// Whether no armed call is pending: the armed one has failed (or none was armed).
    pub fn fired(&self) -> bool {
        self.0.lock().unwrap().is_none()
    }
}

/// Signs with `inner`, except the call armed by [`FaultySigner::fail_nth`].
pub struct FaultySigner<S> {
    inner: S,
    nth: NthCall,
}

impl<S> FaultySigner<S> {
    /// Wraps `inner`; nothing fails until [`FaultySigner::fail_nth`].
    pub fn new(inner: S) -> Self {
        Self { inner, nth: NthCall::default() }
    }

    /// The `n`-th signature from now (1-based) fails, once.
    pub fn fail_nth(&self, n: u32) {
        self.nth.arm(n);
    }
}

#[async_trait]
impl<S: Signer> Signer for FaultySigner<S> {
    fn public_key(&self) -> &PublicKey {
        self.inner.public_key()
    }

    async fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SigningError> {
        if self.nth.fails_now() {
            return Err(SigningError::Kms { operation: "Sign", message: "injected throttling".to_owned() });
        }
        self.inner.sign(signing_input).await
    }
}
