//! The `GET /.well-known/jwks.json` Lambda function. All behaviour lives in the `latchkey` crate
//! (`latchkey::http::jwks`); this binary only wires it to the Lambda runtime.

use latchkey::deploy::run_http;
use latchkey::http::JwksState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    run_http::<JwksState>().await
}
