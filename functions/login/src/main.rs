//! The `POST /login` Lambda function. All behaviour lives in the `latchkey` crate
//! (`latchkey::http::login`); this binary only wires it to the Lambda runtime.

use latchkey::deploy::run_http;
use latchkey::http::LoginState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    run_http::<LoginState>().await
}
