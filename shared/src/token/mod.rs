//! Tokens: JWT access tokens (claims, issuing, strict verification) and the
//! opaque, MAC-protected refresh tokens.

mod access;
pub mod dangerous;
mod refresh;
mod verify;

pub use access::{AccessClaims, AccessTokenIssuer, IssuedAccessToken, Subject, TOKEN_TYPE, sign_jwt};
pub use refresh::{RefreshKey, RefreshToken, RefreshTokenError, SessionId};
pub use verify::{MAX_TOKEN_BYTES, TokenError, Verifier};
