//! The SNS port as the deployer's sender sees it: what `deploy::delivery` builds from
//! `LATCHKEY_DELIVERY=sns` publishes the documented payload (docs/accounts.md, "Your own
//! sender") to the topic on moto, read back from moto's record of the topic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{Read, Write};

use latchkey::config::{AccountConfig, Config, DeliveryKind};
use latchkey::delivery::{Message, MessageKind};
use latchkey::deploy::{Aws, delivery};
use serde_json::{Value, json};

/// `GET /moto-api/data.json` from the moto server `AWS_ENDPOINT_URL` names.
fn moto_data() -> Value {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "GET /moto-api/data.json HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn sns_delivery_publishes_the_documented_payload() {
    let Some(config) = support::moto_config().await else { return };
    let sns = aws_sdk_sns::Client::new(&config);
    let topic = sns.create_topic().name(support::unique_name("sender")).send().await.unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_owned();
    let settings = Config {
        accounts: AccountConfig {
            delivery: DeliveryKind::Sns,
            sns_topic_arn: Some(topic_arn.clone()),
            ..AccountConfig::default()
        },
        ..Config::default()
    };
    let port = delivery(&settings, &Aws::from_env().await).unwrap();
    assert_eq!(port.name(), "sns");
    let link = "https://app.example.com/account#action=reset&token=c2VjcmV0";
    let reset = Message {
        kind: MessageKind::PasswordReset,
        to: "ada@example.com".to_owned(),
        link: Some(link.to_owned()),
        expires_at: Some(1_800_000_900),
    };
    port.deliver(&reset).await.unwrap();
    let existing =
        Message { kind: MessageKind::SignupExisting, to: "bo@example.com".to_owned(), link: None, expires_at: None };
    port.deliver(&existing).await.unwrap();

    let data = moto_data();
    let topic =
        data["sns"]["Topic"].as_array().unwrap().iter().find(|t| t["arn"] == topic_arn.as_str()).unwrap().clone();
    let sent = topic["sent_notifications"].as_array().unwrap();
    assert_eq!(sent.len(), 2, "{sent:?}");
    let body = |n: usize| serde_json::from_str::<Value>(sent[n][1].as_str().unwrap()).unwrap();
    assert_eq!(
        body(0),
        json!({"version": 1, "kind": "password_reset", "email": "ada@example.com", "link": link, "expiresAt": 1_800_000_900u64})
    );
    assert_eq!(body(1), json!({"version": 1, "kind": "signup_existing", "email": "bo@example.com"}));
    assert_eq!(sent[0][3]["kind"], json!({"Type": "String", "Value": "password_reset"}), "the filterable attribute");
    assert_eq!(sent[1][3]["kind"]["Value"], "signup_existing");
}
