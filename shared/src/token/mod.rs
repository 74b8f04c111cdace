//! Tokens: JWT access tokens (claims, issuing, strict verification) and the
//! opaque, MAC-protected refresh tokens.

mod access;
pub mod dangerous;
mod refresh;
mod verify;

pub use access::{
    AMR_MFA, AMR_OTP, AMR_PASSWORD, AccessClaims, AccessTokenIssuer, IssuedAccessToken, Subject, TOKEN_TYPE,
    has_second_factor, sign_jwt,
};
pub use refresh::{RefreshKey, RefreshToken, RefreshTokenError, SessionId};
pub use verify::{MAX_TOKEN_BYTES, TokenError, Verifier};
