//! The `POST /logout` Lambda function. All behaviour lives in the `latchkey` crate
//! (`latchkey::http::logout`); this binary only wires it to the Lambda runtime.

use latchkey::deploy::run_http;
use latchkey::http::LogoutState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    run_http::<LogoutState>().await
}
