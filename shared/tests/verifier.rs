//! The access-token verifier against crafted and tampered tokens: every refusal
//! the Foundation issue lists, one named test each, plus the leeway edges.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::Config;
use latchkey::signing::{KeySet, LocalSigner, Signer};
use latchkey::token::{AccessTokenIssuer, Subject, TokenError, Verifier};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;
const LEEWAY: u64 = 30;

struct Fixture {
    signer: LocalSigner,
    verifier: Verifier,
}

fn fixture() -> Fixture {
    let signer = LocalSigner::generate().unwrap();
    let keys = KeySet::new([signer.public_key().clone()]).unwrap();
    Fixture { verifier: Verifier::new(keys, &Config::default()), signer }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Fixture {
    fn kid(&self) -> String {
        self.signer.public_key().kid.clone()
    }

    fn header(&self) -> Value {
        json!({"alg": "ES256", "typ": "at+jwt", "kid": self.kid()})
    }

    fn claims(&self) -> Value {
        json!({
            "iss": "latchkey", "aud": "latchkey-api", "sub": "user-1", "email": "a@example.com",
            "role": "member", "sid": "session-1", "jti": "jti-1",
            "iat": NOW, "nbf": NOW, "exp": NOW + 900,
        })
    }

    /// A token with exactly this header and these claims, validly signed by the trusted key.
    async fn sign(&self, header: &Value, claims: &Value) -> String {
        sign_with(&self.signer, header, claims).await
    }

    async fn valid(&self) -> String {
        self.sign(&self.header(), &self.claims()).await
    }

    fn verify(&self, token: &str) -> Result<latchkey::token::AccessClaims, TokenError> {
        self.verifier.verify(token, NOW)
    }

    async fn with_header(&self, change: impl FnOnce(&mut Value)) -> Result<latchkey::token::AccessClaims, TokenError> {
        let mut header = self.header();
        change(&mut header);
        self.verify(&self.sign(&header, &self.claims()).await)
    }

    async fn with_claims(&self, change: impl FnOnce(&mut Value)) -> Result<latchkey::token::AccessClaims, TokenError> {
        let mut claims = self.claims();
        change(&mut claims);
        self.verify(&self.sign(&self.header(), &claims).await)
    }
}

async fn sign_with(signer: &dyn Signer, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = signer.sign(input.as_bytes()).await.unwrap();
    format!("{input}.{}", b64(signature))
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

#[tokio::test]
async fn valid_token_is_accepted_with_its_claims() {
    let f = fixture();
    let claims = f.verify(&f.valid().await).unwrap();
    assert_eq!(claims.sub, "user-1");
    assert_eq!(claims.sid, "session-1");
    assert_eq!(claims.role, "member");
    assert_eq!(claims.exp, NOW + 900);
}

#[tokio::test]
async fn issued_token_round_trips_through_the_verifier() {
    let f = fixture();
    let signer: Arc<dyn Signer> = Arc::new(LocalSigner::from_pem(&f.signer.to_pkcs8_pem().unwrap()).unwrap());
    let issuer = AccessTokenIssuer::new(signer, &Config::default());
    let subject = Subject {
        user_id: "u-42".into(),
        email: "ada@example.com".into(),
        role: "admin".into(),
        session_id: "s-9".into(),
        amr: vec!["pwd".to_owned()],
    };
    let issued = issuer.issue(&subject, NOW).await.unwrap();
    assert_eq!(issued.expires_in, 900);
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments(&issued.token)[0].as_bytes()).unwrap()).unwrap();
    assert_eq!(header, f.header());
    let claims = f.verify(&issued.token).unwrap();
    assert_eq!(claims, issued.claims);
    assert_eq!((claims.iss.as_str(), claims.aud.as_str()), ("latchkey", "latchkey-api"));
    assert_eq!((claims.iat, claims.nbf, claims.exp), (NOW, NOW, NOW + 900));
    assert_eq!(claims.jti.len(), 22);
    assert!(!format!("{issued:?}").contains(&issued.token));
}

#[tokio::test]
async fn alg_none_in_any_letter_case_is_refused() {
    let f = fixture();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let mut header = f.header();
        header["alg"] = json!(alg);
        let unsigned = format!("{}.{}.", b64(header.to_string()), b64(f.claims().to_string()));
        assert_eq!(f.verify(&unsigned), Err(TokenError::Malformed("empty signature")), "{alg}");
        let signed = f.sign(&header, &f.claims()).await;
        assert_eq!(f.verify(&signed), Err(TokenError::AlgorithmMismatch(alg.to_owned())), "{alg}");
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_as_secret_is_refused() {
    let f = fixture();
    let public = f.signer.public_key();
    let jwk_text = public.to_jwk_json().to_string();
    let latchkey::signing::Jwk::Ec { x, .. } = &public.jwk else { unreachable!() };
    for secret in [jwk_text.as_bytes(), x.as_bytes()] {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(f.kid());
        let token =
            jsonwebtoken::encode(&header, &f.claims(), &jsonwebtoken::EncodingKey::from_secret(secret)).unwrap();
        assert_eq!(f.verify(&token), Err(TokenError::AlgorithmMismatch("HS256".into())));
    }
}

#[tokio::test]
async fn valid_signature_from_another_key_is_refused() {
    let f = fixture();
    let stranger = LocalSigner::generate().unwrap();
    let claiming_trusted_kid = sign_with(&stranger, &f.header(), &f.claims()).await;
    assert_eq!(f.verify(&claiming_trusted_kid), Err(TokenError::BadSignature));
    let mut own_header = f.header();
    own_header["kid"] = json!(stranger.public_key().kid);
    let own_kid = sign_with(&stranger, &own_header, &f.claims()).await;
    assert_eq!(f.verify(&own_kid), Err(TokenError::UnknownKey));
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let f = fixture();
    assert_eq!(f.with_header(|h| h["kid"] = json!("some-other-key")).await, Err(TokenError::UnknownKey));
}

#[tokio::test]
async fn empty_kid_is_refused() {
    let f = fixture();
    assert_eq!(f.with_header(|h| h["kid"] = json!("")).await, Err(TokenError::UnknownKey));
}

#[tokio::test]
async fn path_like_kid_is_refused() {
    let f = fixture();
    for kid in ["../../../../dev/null", "/etc/passwd", "keys/../current", "https://evil.example/jwks.json"] {
        assert_eq!(f.with_header(|h| h["kid"] = json!(kid)).await, Err(TokenError::UnknownKey), "{kid}");
    }
}

#[tokio::test]
async fn missing_or_non_string_kid_is_refused() {
    let f = fixture();
    let missing = f.with_header(|h| drop(h.as_object_mut().unwrap().remove("kid"))).await;
    assert!(matches!(missing, Err(TokenError::BadHeader(_))), "{missing:?}");
    let number = f.with_header(|h| h["kid"] = json!(7)).await;
    assert!(matches!(number, Err(TokenError::BadHeader(_))), "{number:?}");
}

#[tokio::test]
async fn crit_header_is_refused() {
    let f = fixture();
    assert_eq!(f.with_header(|h| h["crit"] = json!(["exp"])).await, Err(TokenError::CriticalHeader));
}

#[tokio::test]
async fn a_repeated_header_member_is_refused_even_validly_signed() {
    let f = fixture();
    let kid = f.kid();
    for header in [
        format!(r#"{{"alg":"none","alg":"ES256","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"ES256","typ":"JWT","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"other","kid":"{kid}"}}"#),
    ] {
        let input = format!("{}.{}", b64(&header), b64(f.claims().to_string()));
        let signature = f.signer.sign(input.as_bytes()).await.unwrap();
        let outcome = f.verify(&format!("{input}.{}", b64(signature)));
        assert!(matches!(outcome, Err(TokenError::BadHeader(_))), "{header}: {outcome:?}");
    }
}

#[tokio::test]
async fn embedded_key_headers_are_refused() {
    let f = fixture();
    for member in ["jwk", "jku", "x5u", "x5c", "x5t", "cty"] {
        let outcome = f.with_header(|h| h[member] = json!("attacker-controlled")).await;
        assert_eq!(outcome, Err(TokenError::ForbiddenHeader(member.to_owned())));
    }
}

#[tokio::test]
async fn wrong_typ_is_refused() {
    let f = fixture();
    for typ in ["JWT", "AT+JWT", "application/jwt", ""] {
        assert_eq!(f.with_header(|h| h["typ"] = json!(typ)).await, Err(TokenError::WrongType), "{typ}");
    }
}

#[tokio::test]
async fn missing_typ_is_refused() {
    let f = fixture();
    let outcome = f.with_header(|h| drop(h.as_object_mut().unwrap().remove("typ"))).await;
    assert!(matches!(outcome, Err(TokenError::BadHeader(_))), "{outcome:?}");
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let f = fixture();
    assert_eq!(f.with_claims(|c| c["iss"] = json!("https://evil.example")).await, Err(TokenError::WrongIssuer));
}

#[tokio::test]
async fn missing_issuer_is_refused() {
    let f = fixture();
    let outcome = f.with_claims(|c| drop(c.as_object_mut().unwrap().remove("iss"))).await;
    assert_eq!(outcome, Err(TokenError::MissingClaim("iss".into())));
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let f = fixture();
    assert_eq!(f.with_claims(|c| c["aud"] = json!("another-api")).await, Err(TokenError::WrongAudience));
}

#[tokio::test]
async fn missing_audience_is_refused() {
    let f = fixture();
    let outcome = f.with_claims(|c| drop(c.as_object_mut().unwrap().remove("aud"))).await;
    assert_eq!(outcome, Err(TokenError::MissingClaim("aud".into())));
}

#[tokio::test]
async fn each_of_the_ten_required_claims_missing_is_refused_by_name() {
    let f = fixture();
    let claims = f.claims();
    let mut required: Vec<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
    required.sort_unstable();
    assert_eq!(required, ["aud", "email", "exp", "iat", "iss", "jti", "nbf", "role", "sid", "sub"]);
    for claim in required {
        let outcome = f.with_claims(|c| drop(c.as_object_mut().unwrap().remove(claim))).await;
        assert_eq!(outcome, Err(TokenError::MissingClaim(claim.into())), "{claim}");
    }
    for claim in ["sub", "sid", "jti", "email", "role"] {
        assert_eq!(
            f.with_claims(|c| c[claim] = json!("")).await,
            Err(TokenError::MissingClaim(claim.into())),
            "{claim}"
        );
    }
}

#[tokio::test]
async fn exp_past_the_leeway_is_refused() {
    let f = fixture();
    assert_eq!(f.with_claims(|c| c["exp"] = json!(NOW - LEEWAY)).await, Err(TokenError::Expired));
    assert_eq!(f.with_claims(|c| c["exp"] = json!(NOW - 3600)).await, Err(TokenError::Expired));
}

#[tokio::test]
async fn token_at_the_edge_of_the_leeway_is_accepted() {
    let f = fixture();
    assert!(f.with_claims(|c| c["exp"] = json!(NOW - LEEWAY + 1)).await.is_ok());
    assert!(f.with_claims(|c| c["nbf"] = json!(NOW + LEEWAY)).await.is_ok());
    assert!(f.with_claims(|c| c["iat"] = json!(NOW + LEEWAY)).await.is_ok());
}

#[tokio::test]
async fn nbf_in_the_future_is_refused() {
    let f = fixture();
    assert_eq!(f.with_claims(|c| c["nbf"] = json!(NOW + LEEWAY + 1)).await, Err(TokenError::NotYetValid));
}

#[tokio::test]
async fn iat_in_the_future_is_refused() {
    let f = fixture();
    assert_eq!(f.with_claims(|c| c["iat"] = json!(NOW + LEEWAY + 1)).await, Err(TokenError::IssuedInFuture));
}

#[tokio::test]
async fn string_exp_is_refused() {
    let f = fixture();
    let outcome = f.with_claims(|c| c["exp"] = json!((NOW + 900).to_string())).await;
    assert!(matches!(outcome, Err(TokenError::MalformedClaims(_) | TokenError::MissingClaim(_))), "{outcome:?}");
}

#[tokio::test]
async fn boolean_exp_is_refused() {
    let f = fixture();
    let outcome = f.with_claims(|c| c["exp"] = json!(true)).await;
    assert!(matches!(outcome, Err(TokenError::MalformedClaims(_) | TokenError::MissingClaim(_))), "{outcome:?}");
}

#[tokio::test]
async fn padded_segments_are_refused() {
    let f = fixture();
    let parts = segments(&f.valid().await);
    for index in 0..3 {
        let mut padded = parts.clone();
        padded[index].push('=');
        assert_eq!(
            f.verify(&padded.join(".")),
            Err(TokenError::Malformed("segment is not unpadded base64url")),
            "segment {index}"
        );
    }
}

#[tokio::test]
async fn non_base64url_segments_are_refused() {
    let f = fixture();
    let parts = segments(&f.valid().await);
    for bad in ["a+b", "a/b", "a b", "é"] {
        let mut changed = parts.clone();
        changed[1] = format!("{}{bad}", changed[1]);
        assert!(matches!(f.verify(&changed.join(".")), Err(TokenError::Malformed(_))), "{bad}");
    }
}

#[tokio::test]
async fn four_segments_are_refused() {
    let f = fixture();
    let token = format!("{}.{}", f.valid().await, "AAAA");
    assert_eq!(f.verify(&token), Err(TokenError::Malformed("not three segments")));
    assert_eq!(f.verify("a.b"), Err(TokenError::Malformed("not three segments")));
}

#[tokio::test]
async fn empty_signature_is_refused() {
    let f = fixture();
    let parts = segments(&f.valid().await);
    let token = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(f.verify(&token), Err(TokenError::Malformed("empty signature")));
}

#[tokio::test]
async fn es256_signature_in_der_form_is_refused() {
    let f = fixture();
    let parts = segments(&f.valid().await);
    let raw = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
    let der_int = |half: &[u8]| {
        let trimmed: Vec<u8> = half.iter().copied().skip_while(|b| *b == 0).collect();
        let mut body = if trimmed[0] & 0x80 != 0 { vec![0] } else { vec![] };
        body.extend(trimmed);
        [vec![0x02, body.len() as u8], body].concat()
    };
    let body = [der_int(&raw[..32]), der_int(&raw[32..])].concat();
    let der = [vec![0x30, body.len() as u8], body].concat();
    let token = format!("{}.{}.{}", parts[0], parts[1], b64(der));
    assert_eq!(f.verify(&token), Err(TokenError::SignatureLength));
}

#[tokio::test]
async fn a_token_of_8_kib_is_accepted_and_one_byte_more_refused_before_decoding() {
    let f = fixture();
    let padded = async |padding: usize| {
        let mut claims = f.claims();
        claims["padding"] = json!("x".repeat(padding));
        f.sign(&f.header(), &claims).await
    };
    // The longest padding whose token fits in 8 KiB, found by stepping down.
    let mut padding = 6200;
    while padded(padding).await.len() > 8 * 1024 {
        padding -= 1;
    }
    let fits = padded(padding).await;
    let over = padded(padding + 1).await;
    assert!(fits.len() <= 8 * 1024 && fits.len() > 8 * 1024 - 4, "{}", fits.len());
    assert!(over.len() > 8 * 1024);
    assert!(f.verify(&fits).is_ok(), "{} bytes: {:?}", fits.len(), f.verify(&fits));
    assert_eq!(f.verify(&over), Err(TokenError::TooLong), "{} bytes", over.len());
    // Refused before decoding: even garbage of that length is TooLong, not Malformed.
    assert_eq!(f.verify(&"!".repeat(8 * 1024 + 1)), Err(TokenError::TooLong));
}

#[tokio::test]
async fn non_string_alg_or_typ_is_refused() {
    let f = fixture();
    for (member, value) in [("alg", json!(256)), ("alg", json!(null)), ("typ", json!(true)), ("typ", json!(["at+jwt"]))]
    {
        let outcome = f.with_header(|h| h[member] = value.clone()).await;
        assert!(matches!(outcome, Err(TokenError::BadHeader(_))), "{member} = {value}: {outcome:?}");
    }
}

#[tokio::test]
async fn rs256_named_for_an_ec_key_is_refused() {
    let f = fixture();
    let outcome = f.with_header(|h| h["alg"] = json!("RS256")).await;
    assert_eq!(outcome, Err(TokenError::AlgorithmMismatch("RS256".into())));
    let outcome = f.with_header(|h| h["alg"] = json!("PS256")).await;
    assert_eq!(outcome, Err(TokenError::AlgorithmMismatch("PS256".into())));
}

#[tokio::test]
async fn tampered_claims_fail_the_signature() {
    let f = fixture();
    let parts = segments(&f.valid().await);
    let mut claims = f.claims();
    claims["role"] = json!("admin");
    let token = format!("{}.{}.{}", parts[0], b64(claims.to_string()), parts[2]);
    assert_eq!(f.verify(&token), Err(TokenError::BadSignature));
}

/// Thousands of byte-level mutations of a valid token: every one is refused (or is
/// the unchanged token) and none panics.
#[tokio::test]
async fn mutated_tokens_never_panic_and_never_pass() {
    let f = fixture();
    let valid = f.valid().await;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"AZaz09-_.=+/ \"{}";
    for _ in 0..20_000 {
        let mut bytes = valid.clone().into_bytes();
        for _ in 0..(next() % 3 + 1) {
            let at = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => bytes[at] = alphabet[(next() as usize) % alphabet.len()],
                1 => drop(bytes.remove(at)),
                _ => bytes.insert(at, alphabet[(next() as usize) % alphabet.len()]),
            }
        }
        let mutated = String::from_utf8(bytes).unwrap();
        if mutated != valid {
            assert!(f.verify(&mutated).is_err(), "accepted {mutated}");
        }
    }
}
