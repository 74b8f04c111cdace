//! The admin API's Lambda function (`/admin/users...`). All behaviour lives in the
//! `latchkey` crate (`latchkey::http::admin`); this binary only wires it.

use latchkey::deploy::run_http;
use latchkey::http::AdminState;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    run_http::<AdminState>().await
}
