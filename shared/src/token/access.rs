//! Access-token claims and issuing: header `{alg, typ: "at+jwt", kid}`, signed by a [`Signer`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::encoding::{b64url, random_bytes};
use crate::signing::{Signer, SigningError};

/// The header `typ` of every access token (RFC 9068).
pub const TOKEN_TYPE: &str = "at+jwt";

/// `amr` value of a password (RFC 8176 `pwd`).
pub const AMR_PASSWORD: &str = "pwd";
/// `amr` value of a one-time password from an authenticator app (RFC 8176 `otp`).
pub const AMR_OTP: &str = "otp";
/// `amr` value beside `pwd` when the second factor was a recovery code: RFC 8176
/// `mfa` (more than one factor) without `otp`.
pub const AMR_MFA: &str = "mfa";

/// Whether `amr` shows a second factor besides the password (`otp` or `mfa`).
pub fn has_second_factor(amr: &[String]) -> bool {
    amr.iter().any(|method| method == AMR_OTP || method == AMR_MFA)
}

fn password_only() -> Vec<String> {
    vec![AMR_PASSWORD.to_owned()]
}

/// The claims of a Latchkey access token. Every field is required when verifying,
/// and the time claims must be whole numbers (a string or boolean `exp` is refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer, [`Config::issuer`].
    pub iss: String,
    /// Audience, [`Config::audience`].
    pub aud: String,
    /// Subject: the user id.
    pub sub: String,
    /// The user's email address at issue time.
    pub email: String,
    /// The user's role at issue time.
    pub role: String,
    /// Session id: the refresh-token chain this token was issued from.
    pub sid: String,
    /// How the session's login was proven (RFC 8176): `["pwd"]`, `["pwd", "otp"]`, or
    /// `["pwd", "mfa"]` (a recovery code). Tokens issued before the claim existed
    /// read as `["pwd"]`.
    #[serde(default = "password_only")]
    pub amr: Vec<String>,
    /// Unique token id, 128 random bits.
    pub jti: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Not before, Unix seconds (equal to `iat`).
    pub nbf: u64,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

/// Who an access token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The user id (`sub`).
    pub user_id: String,
    /// The user's email (`email`).
    pub email: String,
    /// The user's role (`role`).
    pub role: String,
    /// The session id (`sid`).
    pub session_id: String,
    /// The session's authentication methods (`amr`).
    pub amr: Vec<String>,
}

/// A freshly issued access token.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedAccessToken {
    /// The compact JWS.
    pub token: String,
    /// Seconds until `exp`, for the `expiresIn` response field.
    pub expires_in: u64,
    /// The claims inside `token`.
    pub claims: AccessClaims,
}

impl std::fmt::Debug for IssuedAccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedAccessToken")
            .field("token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("claims", &self.claims)
            .finish()
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// Issues access tokens with one [`Signer`] (KMS when deployed, local in `latchkey dev`).
#[derive(Clone)]
pub struct AccessTokenIssuer {
    signer: Arc<dyn Signer>,
    issuer: String,
    audience: String,
    lifetime_secs: u64,
}

impl std::fmt::Debug for AccessTokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenIssuer")
            .field("kid", &self.signer.public_key().kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("lifetime_secs", &self.lifetime_secs)
            .finish()
    }
}

impl AccessTokenIssuer {
    /// An issuer with the issuer, audience and lifetime of `config`.
    pub fn new(signer: Arc<dyn Signer>, config: &Config) -> Self {
        Self {
            signer,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            lifetime_secs: config.access_token_ttl.as_secs(),
        }
    }

    /// The signer, e.g. to publish its public key.
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    /// Issues a token for `subject`, valid from `now` for the configured lifetime.
    pub async fn issue(&self, subject: &Subject, now: u64) -> Result<IssuedAccessToken, SigningError> {
        let jti = random_bytes::<16>().map_err(|e| SigningError::LocalKey(format!("randomness: {e}")))?;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.user_id.clone(),
            email: subject.email.clone(),
            role: subject.role.clone(),
            sid: subject.session_id.clone(),
            amr: subject.amr.clone(),
            jti: b64url(jti),
            iat: now,
            nbf: now,
            exp: now + self.lifetime_secs,
        };
        // A delegated signer answers with its current period's key; any other signs itself.
        let delegated = self.signer.signer_at(now).await?;
        let token = sign_jwt(delegated.as_deref().unwrap_or(self.signer.as_ref()), &claims).await?;
        Ok(IssuedAccessToken { token, expires_in: self.lifetime_secs, claims })
    }
}

/// Signs `claims` as a compact JWS with an `at+jwt` header naming the signer's key.
/// [`AccessTokenIssuer::issue`] is the normal way in; this is for tools and
/// fixtures that need exact claims.
pub async fn sign_jwt<C: Serialize>(signer: &dyn Signer, claims: &C) -> Result<String, SigningError> {
    let mut jwt = format!("{}.{}", header_segment(signer.public_key()), b64url_json(claims));
    let signature = signer.sign(jwt.as_bytes()).await?;
    jwt.push('.');
    jwt.push_str(&b64url(signature));
    Ok(jwt)
}

/// The first segment of every token Latchkey signs with `public`: base64url of
/// `{"alg", "typ": "at+jwt", "kid"}`.
pub(crate) fn header_segment(public: &crate::signing::PublicKey) -> String {
    b64url_json(&Header { alg: public.algorithm.jose_name(), typ: TOKEN_TYPE, kid: &public.kid })
}

/// base64url of the JSON of `value`; the header and claims structs cannot fail to serialise.
fn b64url_json<T: Serialize + ?Sized>(value: &T) -> String {
    b64url(serde_json::to_vec(value).unwrap_or_default())
}
