//! An RFC 6238 implementation of the tests' own, to compute codes independently of
//! the `totp-rs` crate the code under test uses.

/// An RFC 6238 code (SHA-1, 6 digits, 30 s) for the base32 `secret` at `time`,
/// computed here from RFC 4226 with aws-lc-rs's HMAC: independent of the `totp-rs`
/// crate the code under test uses.
pub fn totp_code(secret: &str, time: u64) -> String {
    use aws_lc_rs::hmac;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut key) = (0u32, 0u64, Vec::new());
    for c in secret.trim_end_matches('=').bytes() {
        let index = alphabet.iter().position(|a| *a == c.to_ascii_uppercase()).unwrap() as u64;
        value = (value << 5) | index;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            key.push((value >> bits) as u8);
            value &= (1 << bits) - 1;
        }
    }
    let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key), &(time / 30).to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[19] & 0x0f);
    let binary = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    format!("{:06}", binary % 1_000_000)
}
