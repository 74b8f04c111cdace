//! An example backend behind the Latchkey authorizer (`GET /me` in template.yaml):
//! it answers with the context the authorizer passed on, as a protected API would
//! read it. All behaviour lives in `latchkey::http::echo_authorizer_context`.

use std::convert::Infallible;

use latchkey::http::echo_authorizer_context;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::logging::init();
    lambda_http::run(lambda_http::service_fn(|request| async move {
        Ok::<_, Infallible>(echo_authorizer_context(&request))
    }))
    .await
}
