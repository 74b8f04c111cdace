//! Access-token verification: Latchkey's strict gates in front of `jsonwebtoken`.
//!
//! Checks happen cheapest first, and everything that can be refused without
//! cryptography is: size, shape, header members (allow-list, no repeats, `typ`),
//! `kid` naming a known key with its one `alg`, signature length. Then
//! `jsonwebtoken::decode` does the JWS work: the signature (aws-lc-rs) and the
//! registered claims (`iss` and `aud` as the one configured value each; `exp`,
//! `nbf`, `iss`, `aud`, `sub` present), with the `DecodingKey` and `Validation`
//! built once when the verifier is. Last, what the library leaves out: the time
//! claims against the caller's clock (the library reads the process clock, which
//! tests cannot move), and non-empty identity claims. docs/security.md has the table.

use std::sync::Arc;

use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;
use serde_json::{Map, Value};

use super::{AccessClaims, TOKEN_TYPE};
use crate::config::Config;
use crate::encoding::{b64url_decode, is_b64url};
use crate::signing::{DelegatedKeys, KeySet, SigningAlgorithm};

/// Tokens longer than this many bytes are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Header members a token may carry; anything else (`crit`, `jwk`, `jku`, `x5u`,
/// `x5c`, `cty`, ...) is refused.
const ALLOWED_HEADER_MEMBERS: [&str; 3] = ["alg", "typ", "kid"];

/// The registered claims `jsonwebtoken` must find before it validates them
/// (`iat` is checked here: the library has no rule for it).
const REQUIRED_SPEC_CLAIMS: [&str; 5] = ["exp", "nbf", "iss", "aud", "sub"];

/// Why a token was refused. The variants are precise, for logs; callers must
/// show nothing but "invalid token".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("token longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    /// Not three non-empty base64url (unpadded) segments.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header is not a JSON object of exactly `alg`, `typ` and `kid` strings.
    #[error("bad header: {0}")]
    BadHeader(&'static str),
    /// The header carries a `crit` member.
    #[error("crit header present")]
    CriticalHeader,
    /// The header carries a member that names or embeds a key (`jwk`, `jku`, `x5u`, `x5c`, ...).
    #[error("header member {0:?} is not allowed")]
    ForbiddenHeader(String),
    /// `typ` is not `at+jwt`.
    #[error("typ is not at+jwt")]
    WrongType,
    /// No accepted key has this `kid`.
    #[error("unknown kid")]
    UnknownKey,
    /// `alg` is not the one algorithm of the key named by `kid` (this covers `none`
    /// in any case and HMAC algorithms).
    #[error("alg {0:?} does not match the key")]
    AlgorithmMismatch(String),
    /// The signature segment has the wrong length for the algorithm (for ES256, a
    /// DER-encoded signature instead of 64 bytes `r||s`).
    #[error("signature has the wrong length for the algorithm")]
    SignatureLength,
    /// The signature does not verify under the key.
    #[error("signature does not verify")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` is not the configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is absent or empty.
    #[error("missing claim {0}")]
    MissingClaim(String),
    /// The claims are not valid JSON or a claim has the wrong type.
    #[error("malformed claims: {0}")]
    MalformedClaims(String),
    /// `exp` is in the past, beyond the leeway.
    #[error("expired")]
    Expired,
    /// `nbf` is in the future, beyond the leeway.
    #[error("not yet valid")]
    NotYetValid,
    /// `iat` is in the future, beyond the leeway.
    #[error("issued in the future")]
    IssuedInFuture,
    /// Signed by a delegated key outside the key's period, or longer-lived than
    /// its vouch allows.
    #[error("outside the delegated key's period")]
    OutsideKeyPeriod,
    /// A delegated key could not be learnt (the store failed); refused, fail closed.
    #[error("delegated key unavailable: {0}")]
    KeyUnavailable(String),
}

/// Verifies access tokens against a [`KeySet`], issuer, audience and leeway, and,
/// with delegated signing, the delegated keys it learns. [`Verifier::verify`] makes
/// no network call; [`Verifier::verify_live`] makes one store read per new
/// delegated key.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeySet,
    delegated: Option<Arc<DelegatedKeys>>,
    /// The header segment Latchkey's issuer writes for each key, with its `(alg,
    /// kid)`: a token whose header is byte-for-byte one of these skips Latchkey's
    /// header parse (each entry passed [`check_header`] when the verifier was built).
    known_headers: Vec<(String, (String, String))>,
    /// `jsonwebtoken`'s rules for ES256 and RS256 keys, built once.
    es256: Validation,
    rs256: Validation,
    leeway: u64,
}

impl Verifier {
    /// A verifier accepting `keys`, with the issuer, audience and clock-skew leeway of `config`.
    pub fn new(keys: KeySet, config: &Config) -> Self {
        let known_headers = keys
            .iter()
            .filter_map(|key| {
                let segment = super::access::header_segment(&key.public);
                check_header(&segment).ok().map(|parsed| (segment, parsed))
            })
            .collect();
        let validation = |algorithm: SigningAlgorithm| {
            let mut validation = Validation::new(algorithm.jwt_algorithm());
            validation.set_issuer(&[&config.issuer]);
            validation.set_audience(&[&config.audience]);
            validation.required_spec_claims = REQUIRED_SPEC_CLAIMS.iter().map(|&claim| claim.to_owned()).collect();
            // Time claims are checked against the caller's clock below.
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.leeway = 0;
            validation
        };
        Self {
            keys,
            delegated: None,
            known_headers,
            es256: validation(SigningAlgorithm::Es256),
            rs256: validation(SigningAlgorithm::Rs256),
            leeway: config.clock_skew.as_secs(),
        }
    }

    /// The same verifier also accepting the delegated keys `delegated` learns.
    pub fn with_delegated(mut self, delegated: Arc<DelegatedKeys>) -> Self {
        self.delegated = Some(delegated);
        self
    }

    /// The accepted long-term keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The delegated keys, with delegated signing.
    pub fn delegated(&self) -> Option<&Arc<DelegatedKeys>> {
        self.delegated.as_ref()
    }

    /// [`Verifier::verify`], and when the token names a delegated key not yet known,
    /// one store read to learn it (vouch checked), then the verification. A store
    /// failure refuses the token.
    pub async fn verify_live(&self, token: &str, now: u64) -> Result<AccessClaims, TokenError> {
        match self.verify(token, now) {
            Err(TokenError::UnknownKey) => {}
            other => return other,
        }
        let Some(delegated) = &self.delegated else { return Err(TokenError::UnknownKey) };
        let (_, kid) = check_header(token.split('.').next().unwrap_or_default())?;
        match delegated.learn(&kid, now, self.leeway).await {
            Ok(Some(_)) => self.verify(token, now),
            Ok(None) => Err(TokenError::UnknownKey),
            Err(error) => Err(TokenError::KeyUnavailable(error.to_string())),
        }
    }

    /// Verifies `token` at time `now` (Unix seconds) and returns its claims.
    ///
    /// Latchkey's gates (shape, header, key, signature length), then
    /// `jsonwebtoken::decode` on the key's `DecodingKey` with the prepared
    /// `Validation` (signature, then the claims parsed into [`AccessClaims`]: every
    /// field required, time claims whole numbers, `iss` and `aud` exact), then the
    /// time claims against `now` with the leeway and the identity claims non-empty.
    pub fn verify(&self, token: &str, now: u64) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        let mut segments = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (segments.next(), segments.next(), segments.next(), segments.next())
        else {
            return Err(TokenError::Malformed("not three segments"));
        };
        if signature.is_empty() {
            return Err(TokenError::Malformed("empty signature"));
        }
        if ![header, claims, signature].iter().all(|segment| is_b64url(segment)) {
            return Err(TokenError::Malformed("segment is not unpadded base64url"));
        }

        let known = self.known_headers.iter().find(|(segment, _)| segment == header);
        let parsed;
        let (alg, kid) = match known {
            Some((_, (alg, kid))) => (alg, kid),
            None => {
                parsed = check_header(header)?;
                (&parsed.0, &parsed.1)
            }
        };
        let delegated = match self.keys.get(kid) {
            Some(_) => None,
            None => Some(self.delegated.as_ref().and_then(|keys| keys.known(kid)).ok_or(TokenError::UnknownKey)?),
        };
        let key = match &delegated {
            Some(delegated) => &delegated.key,
            None => self.keys.get(kid).ok_or(TokenError::UnknownKey)?,
        };
        let algorithm = key.public.algorithm;
        if alg != algorithm.jose_name() {
            return Err(TokenError::AlgorithmMismatch(alg.clone()));
        }
        // n unpadded base64url characters carry floor(6n / 8) bytes.
        let signature_bytes = signature.len() * 6 / 8;
        let length_fits = match algorithm {
            SigningAlgorithm::Es256 => signature_bytes == 64,
            SigningAlgorithm::Rs256 => signature_bytes * 8 >= crate::signing::MIN_RSA_BITS,
        };
        if !length_fits {
            return Err(TokenError::SignatureLength);
        }

        let validation = match algorithm {
            SigningAlgorithm::Es256 => &self.es256,
            SigningAlgorithm::Rs256 => &self.rs256,
        };
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key.decoding_key(), validation)
            .map_err(|error| library_refusal(error.into_kind()))?
            .claims;
        self.check_claims(&claims, now)?;
        if delegated.is_some_and(|key| !key.allows(claims.iat, claims.exp, self.leeway)) {
            return Err(TokenError::OutsideKeyPeriod);
        }
        Ok(claims)
    }

    fn check_claims(&self, claims: &AccessClaims, now: u64) -> Result<(), TokenError> {
        // Latchkey never issues these empty; backends trust email and role as given.
        let identifying = [
            ("sub", &claims.sub),
            ("sid", &claims.sid),
            ("jti", &claims.jti),
            ("email", &claims.email),
            ("role", &claims.role),
        ];
        for (name, value) in identifying {
            if value.is_empty() {
                return Err(TokenError::MissingClaim(name.to_owned()));
            }
        }
        if now >= claims.exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now.saturating_add(self.leeway) {
            return Err(TokenError::NotYetValid);
        }
        if claims.iat > now.saturating_add(self.leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(())
    }
}

/// `jsonwebtoken`'s refusal as a [`TokenError`]. Its messages can quote claim
/// values (serde's), so only the kind is kept.
fn library_refusal(kind: ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
        ErrorKind::Json(error) => json_claims_error(&error),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenError::AlgorithmMismatch(String::new()),
        ErrorKind::Base64(_) => TokenError::Malformed("segment is not base64url"),
        ErrorKind::Utf8(_) => TokenError::MalformedClaims("claims are not UTF-8".to_owned()),
        other => TokenError::MalformedClaims(format!("refused by jsonwebtoken: {other:?}")),
    }
}

/// Parses and checks the header; returns `(alg, kid)`.
fn check_header(segment: &str) -> Result<(String, String), TokenError> {
    let bytes = b64url_decode(segment).ok_or(TokenError::Malformed("header is not base64url"))?;
    let DistinctMembers(header) = serde_json::from_slice(&bytes)
        .map_err(|_| TokenError::BadHeader("not a JSON object with distinct member names"))?;
    if header.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
    if let Some(extra) = header.keys().find(|name| !ALLOWED_HEADER_MEMBERS.contains(&name.as_str())) {
        return Err(TokenError::ForbiddenHeader(extra.clone()));
    }
    let text = |name: &'static str| match header.get(name) {
        Some(Value::String(value)) => Ok(value.clone()),
        Some(_) => Err(TokenError::BadHeader("alg, typ and kid must be strings")),
        None => Err(TokenError::BadHeader("alg, typ and kid are required")),
    };
    let (alg, typ, kid) = (text("alg")?, text("typ"), text("kid")?);
    if typ? != TOKEN_TYPE {
        return Err(TokenError::WrongType);
    }
    Ok((alg, kid))
}

/// A JSON object whose member names are all distinct. `serde_json::Map` keeps the
/// last of a repeated name, so `{"alg":"none","alg":"ES256"}` would read as ES256
/// while a first-wins reader saw `none`: a repeated header member is refused.
struct DistinctMembers(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for DistinctMembers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = DistinctMembers;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object with distinct member names")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut members = Map::new();
                while let Some((name, value)) = access.next_entry::<String, Value>()? {
                    if members.insert(name, value).is_some() {
                        return Err(serde::de::Error::custom("repeated member name"));
                    }
                }
                Ok(DistinctMembers(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// Names the missing claim when serde says one is missing; otherwise says only
/// where and what kind of error, since serde's message can quote claim values.
fn json_claims_error(error: &serde_json::Error) -> TokenError {
    let message = error.to_string();
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field.to_owned());
    match missing {
        Some(field) => TokenError::MissingClaim(field),
        None => TokenError::MalformedClaims(format!("{:?} error at column {}", error.classify(), error.column())),
    }
}
