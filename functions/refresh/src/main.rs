//! The `POST /refresh-token` Lambda function. All behaviour lives in the `latchkey` crate
//! (`latchkey::http::refresh`); this binary only wires it to the Lambda runtime.

use latchkey::deploy::run_http;
use latchkey::http::RefreshState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    run_http::<RefreshState>().await
}
