//! The account routes' Lambda function (`POST /password`, `/password/forgot`,
//! `/password/reset`, `/signup`, `/email/verify`). All behaviour lives in the
//! `latchkey` crate (`latchkey::http::account`); this binary only wires it.

use latchkey::deploy::run_http;
use latchkey::http::AccountState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    run_http::<AccountState>().await
}
