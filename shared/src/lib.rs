//! Latchkey: JWT access tokens signed in AWS KMS, rotating refresh tokens and the
//! pieces the Lambda functions and the `latchkey` CLI are built from.
//!
//! The crate is organised by concern:
//! - [`config`]: every `LATCHKEY_*` setting, read once at cold start;
//! - [`clock`]: the time source, injectable so expiry is testable without sleeping;
//! - [`token`]: access tokens (issue and verify) and refresh-token material;
//! - [`signing`]: the [`signing::Signer`] trait, its KMS and local implementations, and
//!   the [`signing::KeySet`] verifiers use;
//! - [`password`]: argon2id hashing with a constant-cost unknown-user path;
//! - [`store`]: users and sessions in DynamoDB or in memory, behind two traits;
//! - [`session`]: the session lifecycle: start, rotate (grace window, reuse detection), revoke;
//! - [`http`]: the login, refresh, logout and JWKS handlers and their edge (CORS, cookies, CSRF, errors);
//! - [`authorizer`]: the API Gateway Lambda authorizer (REST TOKEN/REQUEST, HTTP API 1.0/2.0);
//! - [`deploy`], [`logging`]: cold-start wiring of each Lambda function, and its JSON log lines;
//! - [`services`]: all five states over one set of components, for `latchkey dev` and tests;
//! - [`account`]: creation, login, password changes, roles and disabling, with their effect on sessions;
//! - [`admin`]: the admin API's rules (and the CLI's): who is an administrator, users in pages,
//!   user and session operations;
//! - [`recovery`], [`signup`], [`onetime`]: forgot and reset password, invitations, sign-up with a
//!   verified email, and the one-time secrets in their links;
//! - [`mfa`]: the second factor (TOTP with recovery codes): enrolment, the second step of a
//!   login, removal and reset;
//! - [`delivery`]: the outbound-message port (SES, an SNS topic, the terminal).
#![deny(missing_docs)]

pub mod account;
pub mod admin;
pub mod authorizer;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod deploy;
mod encoding;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod mfa;
pub mod onetime;
pub mod password;
pub mod recovery;
pub mod revocation;
pub mod services;
pub mod session;
pub mod signing;
pub mod signup;
pub mod store;
pub mod token;

pub use clock::{Clock, SystemClock};
pub use config::Config;
