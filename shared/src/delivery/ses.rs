//! Amazon SES (API v2, `SendEmail`) from a verified sender identity: the built-in
//! templates as simple content, or the deployer's own SES templates.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::DisplayErrorContext;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message as SesMessage, Template};

use super::{Delivery, DeliveryError, Message, render};

/// Sends each message with one SES `SendEmail` from `from`.
#[derive(Debug, Clone)]
pub struct SesDelivery {
    client: Client,
    from: String,
    template_prefix: Option<String>,
}

impl SesDelivery {
    /// Mail from `from` (an address of a verified SES identity). With
    /// `template_prefix`, each message uses the SES template `<prefix>-<kind>`
    /// (`password_reset`, `invitation`, `verify_email`, `signup_existing`), given
    /// `{"link", "email", "expiresAt"}` as template data; without, the built-in texts.
    pub fn new(client: Client, from: impl Into<String>, template_prefix: Option<String>) -> Self {
        Self { client, from: from.into(), template_prefix }
    }

    fn content(&self, message: &Message) -> Result<EmailContent, DeliveryError> {
        let build = |error: aws_sdk_sesv2::error::BuildError| DeliveryError::Failed {
            service: "ses",
            detail: format!("request build: {error}"),
        };
        if let Some(prefix) = &self.template_prefix {
            let data = serde_json::json!({
                "link": message.link,
                "email": message.to,
                "expiresAt": message.expires_at,
            });
            let template = Template::builder()
                .template_name(format!("{prefix}-{}", message.kind.code()))
                .template_data(data.to_string())
                .build();
            return Ok(EmailContent::builder().template(template).build());
        }
        let rendered = render(message);
        let text = |data: &str| Content::builder().data(data).charset("UTF-8").build().map_err(build);
        let body = Body::builder().text(text(&rendered.text)?).html(text(&rendered.html)?).build();
        let simple = SesMessage::builder().subject(text(&rendered.subject)?).body(body).build();
        Ok(EmailContent::builder().simple(simple).build())
    }
}

#[async_trait]
impl Delivery for SesDelivery {
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&message.to).build())
            .content(self.content(message)?)
            .send()
            .await
            .map(|_| ())
            // The SDK's error text names the operation and the service's code; the
            // request (and so the link) is not in it.
            .map_err(|error| DeliveryError::Failed { service: "ses", detail: DisplayErrorContext(&error).to_string() })
    }

    fn name(&self) -> &'static str {
        "ses"
    }
}
