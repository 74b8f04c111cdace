//! Reading a token without verifying it, for diagnostics (`latchkey token decode`).
//! Nothing read this way may be trusted or used to authorise anything.

use serde_json::Value;

use super::{MAX_TOKEN_BYTES, TokenError};
use crate::encoding::{b64url_decode, is_b64url};

/// The header and claims of `token` as JSON, **without checking the signature**
/// or any claim. Refuses the same shapes the verifier refuses before cryptography.
pub fn decode_unverified(token: &str) -> Result<(Value, Value), TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLong);
    }
    let segments: Vec<&str> = token.split('.').collect();
    let [header, claims, _signature] = segments.as_slice() else {
        return Err(TokenError::Malformed("not three segments"));
    };
    let json = |segment: &str, what: &'static str| {
        if !is_b64url(segment) {
            return Err(TokenError::Malformed("segment is not unpadded base64url"));
        }
        b64url_decode(segment)
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .filter(Value::is_object)
            .ok_or(TokenError::Malformed(what))
    };
    Ok((json(header, "header is not a JSON object")?, json(claims, "claims are not a JSON object")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_header_and_claims_of_any_signature() {
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln";
        let (header, claims) = decode_unverified(token).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(claims["sub"], "u");
    }

    #[test]
    fn refuses_what_is_not_a_jwt() {
        assert!(decode_unverified("abc").is_err());
        assert!(decode_unverified("a.b.c.d").is_err());
        assert!(decode_unverified("bm90IGpzb24.bm90IGpzb24.x").is_err());
    }
}
