//! ECDSA signatures: KMS's DER `SEQUENCE { r, s }` to JOSE's fixed-width `r || s`.

use der::Decode;
use der::asn1::UintRef;

use super::SigningError;

#[derive(der::Sequence)]
struct EcdsaSignature<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// Converts a DER-encoded ECDSA signature into the JOSE form: `r` and `s` each
/// left-padded with zeros to `half_len` bytes (32 for P-256) and concatenated.
///
/// DER drops leading zero bytes, so about 1 signature in 128 has a 31-byte (or
/// shorter) half; without the padding such tokens fail verification at random.
pub fn ecdsa_der_to_jose(der: &[u8], half_len: usize) -> Result<Vec<u8>, SigningError> {
    let signature = EcdsaSignature::from_der(der).map_err(|_| SigningError::MalformedSignature)?;
    let mut jose = vec![0u8; 2 * half_len];
    for (half, slot) in [signature.r, signature.s].iter().zip(jose.chunks_exact_mut(half_len)) {
        let bytes = half.as_bytes();
        if bytes.len() > half_len || bytes.is_empty() {
            return Err(SigningError::MalformedSignature);
        }
        slot[half_len - bytes.len()..].copy_from_slice(bytes);
    }
    Ok(jose)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der_int(value: &[u8]) -> Vec<u8> {
        let mut body = value.to_vec();
        if body.first().is_some_and(|b| b & 0x80 != 0) {
            body.insert(0, 0);
        }
        let mut out = vec![0x02, body.len() as u8];
        out.extend(body);
        out
    }

    fn der_sig(r: &[u8], s: &[u8]) -> Vec<u8> {
        let mut body = der_int(r);
        body.extend(der_int(s));
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    }

    #[test]
    fn full_width_halves_with_sign_padding_convert() {
        let r = [0xF0; 32];
        let s = [0x11; 32];
        let jose = ecdsa_der_to_jose(&der_sig(&r, &s), 32).unwrap();
        assert_eq!(&jose[..32], &r);
        assert_eq!(&jose[32..], &s);
    }

    #[test]
    fn short_halves_are_left_padded() {
        let r = [0x01; 31];
        let s = [0x7F; 30];
        let jose = ecdsa_der_to_jose(&der_sig(&r, &s), 32).unwrap();
        assert_eq!(jose.len(), 64);
        assert_eq!(&jose[..1], &[0]);
        assert_eq!(&jose[1..32], &r);
        assert_eq!(&jose[32..34], &[0, 0]);
        assert_eq!(&jose[34..], &s);
    }

    #[test]
    fn oversized_half_is_refused() {
        let r = [0x01; 33];
        assert!(ecdsa_der_to_jose(&der_sig(&r, &[1; 32]), 32).is_err());
    }

    #[test]
    fn garbage_and_trailing_bytes_are_refused() {
        assert!(ecdsa_der_to_jose(b"", 32).is_err());
        assert!(ecdsa_der_to_jose(&[0x30, 0x02, 0x02, 0x00], 32).is_err());
        let mut trailing = der_sig(&[1; 32], &[2; 32]);
        trailing.push(0);
        assert!(ecdsa_der_to_jose(&trailing, 32).is_err());
    }
}
