//! The deployer's own sender, as Cognito's custom sender trigger is: each message is
//! published as a documented JSON payload to an SNS topic the deployer subscribes
//! their sender to (a Lambda function, an SQS queue, an HTTPS endpoint).

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use serde::Serialize;

use super::{Delivery, DeliveryError, Message};

/// The JSON each published message carries (docs/api.md, "The deployer's own sender").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnsPayload<'a> {
    /// Always 1 for this shape.
    pub version: u32,
    /// `password_reset`, `invitation`, `verify_email` or `signup_existing`.
    pub kind: &'static str,
    /// The recipient.
    pub email: &'a str,
    /// The link with the one-time secret (absent for `signup_existing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<&'a str>,
    /// When the link stops working, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// Publishes each message to one SNS topic.
#[derive(Debug, Clone)]
pub struct SnsDelivery {
    client: Client,
    topic_arn: String,
}

impl SnsDelivery {
    /// Messages to the topic `topic_arn`.
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self { client, topic_arn: topic_arn.into() }
    }
}

#[async_trait]
impl Delivery for SnsDelivery {
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        let payload = SnsPayload {
            version: 1,
            kind: message.kind.code(),
            email: &message.to,
            link: message.link.as_deref(),
            expires_at: message.expires_at,
        };
        let body = serde_json::to_string(&payload)
            .map_err(|error| DeliveryError::Failed { service: "sns", detail: error.to_string() })?;
        // The kind as a message attribute lets subscribers filter without parsing.
        let kind = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(message.kind.code())
            .build()
            .map_err(|error| DeliveryError::Failed { service: "sns", detail: error.to_string() })?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(body)
            .message_attributes("kind", kind)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| DeliveryError::Failed { service: "sns", detail: DisplayErrorContext(&error).to_string() })
    }

    fn name(&self) -> &'static str {
        "sns"
    }
}
