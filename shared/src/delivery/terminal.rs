//! `latchkey dev`'s delivery: one line per message on standard output, with the link
//! a person can click. Never in a deployed function: `LATCHKEY_DELIVERY=terminal` stops
//! a function's start-up (it would print secrets to the function's log).

use async_trait::async_trait;

use super::{Delivery, DeliveryError, Message};

/// Prints each message as `mail to <address> (<kind>): <link>`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TerminalDelivery;

impl TerminalDelivery {
    /// The line printed for `message`.
    pub fn line(message: &Message) -> String {
        match &message.link {
            Some(link) => format!("mail to {} ({}): {link}", message.to, message.kind.code()),
            None => format!("mail to {} ({}): no link", message.to, message.kind.code()),
        }
    }
}

#[async_trait]
impl Delivery for TerminalDelivery {
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        println!("{}", Self::line(message));
        Ok(())
    }

    fn name(&self) -> &'static str {
        "terminal"
    }
}
