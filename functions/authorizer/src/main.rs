//! The API Gateway Lambda authorizer function. All behaviour lives in the
//! `latchkey` crate (`latchkey::authorizer::authorize`); this binary only wires it
//! to the Lambda runtime.

use latchkey::deploy::run_authorizer;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    run_authorizer().await
}
