//! Public keys as JWKs: parsing KMS's SubjectPublicKeyInfo, RFC 7638 thumbprints
//! (our `kid`), and the strict JWK reader behind configured JWKS documents.

use der::Decode;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters, EllipticCurveKeyType,
    KeyAlgorithm, PublicKeyUse, RSAKeyParameters, RSAKeyType, ThumbprintHash,
};
use serde::Deserialize;
use spki::ObjectIdentifier;
use spki::SubjectPublicKeyInfoRef;

use super::SigningAlgorithm;
use crate::encoding::{b64url, b64url_decode};

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 3072;

/// Why a public key is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    /// The DER or JSON could not be parsed.
    #[error("malformed key: {0}")]
    Malformed(&'static str),
    /// A key type or curve other than P-256 EC and RSA.
    #[error("unsupported key type or curve")]
    Unsupported,
    /// An RSA modulus under [`MIN_RSA_BITS`].
    #[error("RSA key of {0} bits is under the 3072-bit minimum")]
    RsaTooSmall(usize),
    /// A JWKS entry whose `kid` is not the RFC 7638 thumbprint of its key.
    #[error("kid {given:?} is not the key's thumbprint {expected:?}")]
    KidMismatch {
        /// The `kid` in the document.
        given: String,
        /// The thumbprint of the key material.
        expected: String,
    },
    /// A JWKS entry whose `alg` or `use` contradicts its key.
    #[error("JWK alg/use does not fit the key")]
    WrongUse,
    /// `jsonwebtoken` could not take the key (thumbprint or decoding key).
    #[error("key refused by jsonwebtoken: {0}")]
    Library(String),
}

/// The material of a public key, in JWK terms (base64url big-endian integers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jwk {
    /// A P-256 key: affine coordinates, 32 bytes each.
    Ec {
        /// `x` coordinate, base64url.
        x: String,
        /// `y` coordinate, base64url.
        y: String,
    },
    /// An RSA key.
    Rsa {
        /// Modulus, base64url, no leading zero bytes.
        n: String,
        /// Public exponent, base64url.
        e: String,
    },
}

/// A verification key as published: key material, algorithm and `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// RFC 7638 SHA-256 thumbprint of the key, base64url: the token header's `kid`.
    pub kid: String,
    /// The one algorithm this key signs with.
    pub algorithm: SigningAlgorithm,
    /// The key material.
    pub jwk: Jwk,
}

impl PublicKey {
    /// Builds the key from its material, computing the `kid` (`jsonwebtoken`'s RFC
    /// 7638 SHA-256 thumbprint).
    pub fn new(jwk: Jwk) -> Result<Self, JwkError> {
        let algorithm = match jwk {
            Jwk::Ec { .. } => SigningAlgorithm::Es256,
            Jwk::Rsa { .. } => SigningAlgorithm::Rs256,
        };
        let kid = library_jwk(&jwk, None, algorithm)
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|error| JwkError::Library(error.to_string()))?;
        Ok(Self { kid, algorithm, jwk })
    }

    /// Parses a DER SubjectPublicKeyInfo (what KMS `GetPublicKey` returns).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, JwkError> {
        let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| JwkError::Malformed("SubjectPublicKeyInfo"))?;
        let key_bytes = spki.subject_public_key.as_bytes().ok_or(JwkError::Malformed("public key bit string"))?;
        let jwk = if spki.algorithm.oid == ID_EC_PUBLIC_KEY {
            let curve = spki.algorithm.parameters_oid().map_err(|_| JwkError::Malformed("EC curve"))?;
            if curve != PRIME256V1 {
                return Err(JwkError::Unsupported);
            }
            ec_from_point(key_bytes)?
        } else if spki.algorithm.oid == RSA_ENCRYPTION {
            let rsa = pkcs1::RsaPublicKey::from_der(key_bytes).map_err(|_| JwkError::Malformed("RSA public key"))?;
            rsa_from_parts(rsa.modulus.as_bytes(), rsa.public_exponent.as_bytes())?
        } else {
            return Err(JwkError::Unsupported);
        };
        Self::new(jwk)
    }

    /// Parses an uncompressed P-256 point (`0x04 || x || y`).
    pub fn from_ec_point(point: &[u8]) -> Result<Self, JwkError> {
        Self::new(ec_from_point(point)?)
    }

    /// Reads one JWKS entry. Only `EC`/`P-256` and `RSA` (3072+ bits) keys are
    /// accepted; a `kid` must be present and equal the key's thumbprint; `alg` and
    /// `use`, when present, must be the key's algorithm and `sig`. Private members
    /// (`d`, `p`, ...) are refused: a JWKS is for public keys only.
    pub fn from_jwk_json(value: &serde_json::Value) -> Result<Self, JwkError> {
        let entry: JwkEntry = serde_json::from_value(value.clone()).map_err(|_| JwkError::Malformed("JWK members"))?;
        let jwk = match (entry.kty.as_str(), entry.crv.as_deref()) {
            ("EC", Some("P-256")) => {
                let (Some(x), Some(y)) = (entry.x.as_deref(), entry.y.as_deref()) else {
                    return Err(JwkError::Malformed("EC JWK needs x and y"));
                };
                let x = b64url_decode(x).ok_or(JwkError::Malformed("x"))?;
                let y = b64url_decode(y).ok_or(JwkError::Malformed("y"))?;
                ec_from_point(&[&[0x04][..], &x, &y].concat())?
            }
            ("RSA", None) => {
                let (Some(n), Some(e)) = (entry.n.as_deref(), entry.e.as_deref()) else {
                    return Err(JwkError::Malformed("RSA JWK needs n and e"));
                };
                let n = b64url_decode(n).ok_or(JwkError::Malformed("n"))?;
                let e = b64url_decode(e).ok_or(JwkError::Malformed("e"))?;
                rsa_from_parts(&n, &e)?
            }
            _ => return Err(JwkError::Unsupported),
        };
        let key = Self::new(jwk)?;
        if entry.kid != key.kid {
            return Err(JwkError::KidMismatch { given: entry.kid, expected: key.kid });
        }
        let alg_fits = entry.alg.as_deref().is_none_or(|alg| alg == key.algorithm.jose_name());
        let use_fits = entry.key_use.as_deref().is_none_or(|key_use| key_use == "sig");
        if !alg_fits || !use_fits {
            return Err(JwkError::WrongUse);
        }
        Ok(key)
    }

    /// The JWKS entry for this key: `kty`, curve or modulus, `kid`, `alg`, `use`
    /// (`jsonwebtoken`'s `Jwk`, serialised).
    pub fn to_jwk_json(&self) -> serde_json::Value {
        serde_json::to_value(library_jwk(&self.jwk, Some(&self.kid), self.algorithm)).unwrap_or_default()
    }

    /// The key as `jsonwebtoken` verifies with it, after aws-lc-rs has checked the
    /// material once (ES256: the uncompressed point is on P-256; RS256: a PKCS#1
    /// `RSAPublicKey` it accepts), so a bad key stops start-up instead of failing
    /// every verification.
    pub(crate) fn decoding_key(&self) -> Result<jsonwebtoken::DecodingKey, JwkError> {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
        let bytes = |text: &str| crate::encoding::b64url_decode(text).ok_or(JwkError::Malformed("key components"));
        let checked = match &self.jwk {
            Jwk::Ec { x, y } => {
                let point = [&[0x04][..], &bytes(x)?, &bytes(y)?].concat();
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            }
            Jwk::Rsa { n, e } => {
                let (n, e) = (bytes(n)?, bytes(e)?);
                let (modulus, public_exponent) = (pkcs1::UintRef::new(&n), pkcs1::UintRef::new(&e));
                let (Ok(modulus), Ok(public_exponent)) = (modulus, public_exponent) else {
                    return Err(JwkError::Malformed("key components"));
                };
                let key = pkcs1::RsaPublicKey { modulus, public_exponent };
                let der = der::Encode::to_der(&key).map_err(|_| JwkError::Malformed("key components"))?;
                ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
            }
        };
        checked.map_err(|_| JwkError::Malformed("key components"))?;
        jsonwebtoken::DecodingKey::from_jwk(&library_jwk(&self.jwk, None, self.algorithm))
            .map_err(|error| JwkError::Library(error.to_string()))
    }
}

/// The key as `jsonwebtoken`'s `Jwk`; with a `kid`, also `alg` and `use: sig`, as published.
fn library_jwk(jwk: &Jwk, kid: Option<&str>, algorithm: SigningAlgorithm) -> jsonwebtoken::jwk::Jwk {
    let common = match kid {
        Some(kid) => CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(match algorithm {
                SigningAlgorithm::Es256 => KeyAlgorithm::ES256,
                SigningAlgorithm::Rs256 => KeyAlgorithm::RS256,
            }),
            key_id: Some(kid.to_owned()),
            ..CommonParameters::default()
        },
        None => CommonParameters::default(),
    };
    let algorithm = match jwk {
        Jwk::Ec { x, y } => AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
            key_type: EllipticCurveKeyType::EC,
            curve: EllipticCurve::P256,
            x: x.clone(),
            y: y.clone(),
        }),
        Jwk::Rsa { n, e } => {
            AlgorithmParameters::RSA(RSAKeyParameters { key_type: RSAKeyType::RSA, n: n.clone(), e: e.clone() })
        }
    };
    jsonwebtoken::jwk::Jwk { common, algorithm }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwkEntry {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    kid: String,
    alg: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
}

fn ec_from_point(point: &[u8]) -> Result<Jwk, JwkError> {
    match point {
        [0x04, coordinates @ ..] if coordinates.len() == 64 => {
            Ok(Jwk::Ec { x: b64url(&coordinates[..32]), y: b64url(&coordinates[32..]) })
        }
        _ => Err(JwkError::Malformed("P-256 point must be 65 bytes, uncompressed")),
    }
}

fn rsa_from_parts(modulus: &[u8], exponent: &[u8]) -> Result<Jwk, JwkError> {
    let modulus = strip_leading_zeros(modulus);
    let exponent = strip_leading_zeros(exponent);
    if exponent.is_empty() || modulus.is_empty() {
        return Err(JwkError::Malformed("RSA modulus or exponent is zero"));
    }
    let bits = modulus.len() * 8 - modulus[0].leading_zeros() as usize;
    if bits < MIN_RSA_BITS {
        return Err(JwkError::RsaTooSmall(bits));
    }
    Ok(Jwk::Rsa { n: b64url(modulus), e: b64url(exponent) })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7638_example_thumbprint_matches() {
        // RFC 7638 section 3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let key = PublicKey::new(Jwk::Rsa { n: n.to_owned(), e: "AQAB".to_owned() }).unwrap();
        assert_eq!(key.kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn ec_thumbprint_matches_the_rfc_7517_example_keys_known_vector() {
        // The P-256 key of RFC 7517 appendix A.1; its RFC 7638 thumbprint as other
        // implementations compute it (jose's test suite, Python's hashlib).
        let key = PublicKey::new(Jwk::Ec {
            x: "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4".to_owned(),
            y: "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM".to_owned(),
        })
        .unwrap();
        assert_eq!(key.kid, "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s");
    }

    #[test]
    fn jwk_round_trips_through_jwks_json() {
        let point = [&[0x04][..], &[7u8; 32], &[9u8; 32]].concat();
        let key = PublicKey::from_ec_point(&point).unwrap();
        let json = key.to_jwk_json();
        assert_eq!(json["kty"], "EC");
        assert_eq!(json["alg"], "ES256");
        assert_eq!(json["use"], "sig");
        assert_eq!(PublicKey::from_jwk_json(&json).unwrap(), key);
    }

    #[test]
    fn jwk_with_wrong_kid_is_refused() {
        let point = [&[0x04][..], &[7u8; 32], &[9u8; 32]].concat();
        let mut json = PublicKey::from_ec_point(&point).unwrap().to_jwk_json();
        json["kid"] = json!("my-key");
        assert!(matches!(PublicKey::from_jwk_json(&json), Err(JwkError::KidMismatch { .. })));
    }

    #[test]
    fn jwk_with_private_member_or_other_alg_is_refused() {
        let point = [&[0x04][..], &[7u8; 32], &[9u8; 32]].concat();
        let json = PublicKey::from_ec_point(&point).unwrap().to_jwk_json();
        let mut private = json.clone();
        private["d"] = json!("AAAA");
        assert!(PublicKey::from_jwk_json(&private).is_err());
        let mut hs = json.clone();
        hs["alg"] = json!("HS256");
        assert_eq!(PublicKey::from_jwk_json(&hs), Err(JwkError::WrongUse));
        let mut enc = json;
        enc["use"] = json!("enc");
        assert_eq!(PublicKey::from_jwk_json(&enc), Err(JwkError::WrongUse));
    }

    #[test]
    fn small_rsa_key_is_refused() {
        let modulus = [0xC5u8; 256];
        assert_eq!(rsa_from_parts(&modulus, &[1, 0, 1]), Err(JwkError::RsaTooSmall(2048)));
        assert!(rsa_from_parts(&[0xC5u8; 384], &[1, 0, 1]).is_ok());
    }

    #[test]
    fn compressed_or_short_points_are_refused() {
        assert!(PublicKey::from_ec_point(&[0x02; 33]).is_err());
        assert!(PublicKey::from_ec_point(&[0x04; 64]).is_err());
    }
}
