//! Queue names and their declaration, for both queue types.
//!
//! `classic`: one priority queue per channel (`<channel>`, `x-max-priority=3`), as the Go
//! service declared it. `quorum`: replicated queues, one per channel and priority
//! (`<channel>.high`, `<channel>.normal`, `<channel>.low`), because quorum queues have no
//! priorities on RabbitMQ 3.x and only two levels on 4.x; the worker consumes all three, each
//! with its own prefetch, so a LOW backlog never stands in front of a HIGH message. Work
//! queues dead-letter at least once (broker-side, for messages over the delivery limit) into
//! `dlq.<channel>`; dead-letter queues are never consumed, only read and acked by operators.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel as AmqpChannel, ExchangeKind};

use super::messages::long_string;
use super::BrokerError;
pub use crate::config::QueueType;
use crate::domain::{Channel, Priority};

/// How many times a quorum queue hands out one message before dead-lettering it. RabbitMQ 4
/// would otherwise apply 20 and drop the message; a dead-letter queue must never drop what
/// it holds however often operators inspect it, and -1 ("unlimited" on 4.x) means 0 on 3.x,
/// so DLQs get the largest limit both understand.
const DLQ_DELIVERY_LIMIT: i32 = i32::MAX;

/// Queue and exchange names, optionally prefixed so environments (and tests) can share a
/// broker, and the arguments the queues are declared with.
#[derive(Clone, Debug)]
pub struct Topology {
    prefix: String,
    queue_type: QueueType,
    delivery_limit: u32,
}

impl Topology {
    pub fn new(prefix: impl Into<String>, queue_type: QueueType, delivery_limit: u32) -> Self {
        Topology {
            prefix: prefix.into(),
            queue_type,
            delivery_limit,
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn queue_type(&self) -> QueueType {
        self.queue_type
    }

    /// The same names declared as the other queue type (for `convert-queues`).
    pub fn with_queue_type(&self, queue_type: QueueType) -> Topology {
        Topology {
            queue_type,
            ..self.clone()
        }
    }

    /// Where a work message of this channel and priority is published.
    pub fn work_queue(&self, channel: Channel, priority: Priority) -> String {
        match self.queue_type {
            QueueType::Classic => format!("{}{}", self.prefix, channel.lower()),
            QueueType::Quorum => format!("{}{}.{}", self.prefix, channel.lower(), priority.lower()),
        }
    }

    /// Every work queue of a channel, highest priority first.
    pub fn work_queues(&self, channel: Channel) -> Vec<String> {
        match self.queue_type {
            QueueType::Classic => vec![self.work_queue(channel, Priority::Normal)],
            QueueType::Quorum => Priority::ALL.iter().map(|p| self.work_queue(channel, *p)).collect(),
        }
    }

    /// Every work queue of a channel with the priorities whose messages it carries.
    pub fn work_queues_by_priority(&self, channel: Channel) -> Vec<(String, Vec<Priority>)> {
        match self.queue_type {
            QueueType::Classic => vec![(self.work_queue(channel, Priority::Normal), Priority::ALL.to_vec())],
            QueueType::Quorum => Priority::ALL
                .iter()
                .map(|p| (self.work_queue(channel, *p), vec![*p]))
                .collect(),
        }
    }

    pub fn dead_letter_queue(&self, channel: Channel) -> String {
        format!("{}dlq.{}", self.prefix, channel.lower())
    }

    /// Shown in the broker's connection list: the role, and the prefix when there is one.
    pub fn connection_name(&self, role: &str) -> String {
        if self.prefix.is_empty() {
            format!("dispatchctl-{role}")
        } else {
            format!("dispatchctl-{role} {}", self.prefix)
        }
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}dispatch.dlx", self.prefix)
    }

    fn work_queue_args(&self, channel: Channel) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            long_string(&self.dead_letter_exchange()),
        );
        args.insert("x-dead-letter-routing-key".into(), long_string(channel.lower()));
        match self.queue_type {
            QueueType::Classic => {
                // Said, not left to the vhost: RabbitMQ 4 vhosts may default to quorum.
                args.insert("x-queue-type".into(), long_string("classic"));
                args.insert("x-max-priority".into(), AMQPValue::LongInt(3));
            }
            QueueType::Quorum => {
                args.insert("x-queue-type".into(), long_string("quorum"));
                let limit = i32::try_from(self.delivery_limit).unwrap_or(i32::MAX);
                args.insert("x-delivery-limit".into(), AMQPValue::LongInt(limit));
                // At-most-once is the default: a message over the limit would be lost if the
                // DLQ were unavailable at that moment.
                args.insert("x-dead-letter-strategy".into(), long_string("at-least-once"));
                args.insert("x-overflow".into(), long_string("reject-publish"));
            }
        }
        args
    }

    fn dead_letter_queue_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        match self.queue_type {
            QueueType::Classic => {
                args.insert("x-queue-type".into(), long_string("classic"));
            }
            QueueType::Quorum => {
                args.insert("x-queue-type".into(), long_string("quorum"));
                args.insert("x-delivery-limit".into(), AMQPValue::LongInt(DLQ_DELIVERY_LIMIT));
            }
        }
        args
    }

    /// Declares the exchange and queues; idempotent, so every process does it at start-up.
    /// A queue that exists with other arguments (another QUEUE_TYPE) is a `QueueMismatch`.
    pub async fn declare(&self, ch: &AmqpChannel) -> Result<(), BrokerError> {
        for channel in Channel::ALL {
            self.declare_dead_letter_queue(ch, *channel).await?;
            for queue in self.work_queues(*channel) {
                declare_queue(ch, &queue, self.work_queue_args(*channel), self.queue_type).await?;
            }
        }
        Ok(())
    }

    /// The dead-letter exchange, `dlq.<channel>` and the binding between them.
    pub(crate) async fn declare_dead_letter_queue(
        &self,
        ch: &AmqpChannel,
        channel: Channel,
    ) -> Result<(), BrokerError> {
        let dlx = self.dead_letter_exchange();
        let durable_exchange = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.exchange_declare(&dlx, ExchangeKind::Direct, durable_exchange, FieldTable::default())
            .await?;
        let dlq = self.dead_letter_queue(channel);
        declare_queue(ch, &dlq, self.dead_letter_queue_args(), self.queue_type).await?;
        ch.queue_bind(
            &dlq,
            &dlx,
            channel.lower(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        Ok(())
    }

    /// Declares the queue that holds a DLQ's letters while `convert-queues` re-creates it.
    pub(crate) async fn declare_holding_queue(
        &self,
        ch: &AmqpChannel,
        channel: Channel,
    ) -> Result<String, BrokerError> {
        let name = format!("{}.converting", self.dead_letter_queue(channel));
        declare_queue(ch, &name, self.dead_letter_queue_args(), self.queue_type).await?;
        Ok(name)
    }
}

/// Durable queues only: RabbitMQ 4.3 refuses transient non-exclusive ones.
async fn declare_queue(
    ch: &AmqpChannel,
    queue: &str,
    args: FieldTable,
    queue_type: QueueType,
) -> Result<(), BrokerError> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    match ch.queue_declare(queue, durable, args).await {
        Ok(_) => Ok(()),
        Err(e) => Err(mismatch(&e, queue, queue_type).unwrap_or(BrokerError::Amqp(e))),
    }
}

/// RabbitMQ's PRECONDITION_FAILED for a queue declared with other arguments, e.g.
/// "inequivalent arg 'x-queue-type' for queue 'dlq.sms' in vhost '/': received 'quorum' but
/// current is 'classic'", turned into what the operator should do.
fn mismatch(e: &lapin::Error, queue: &str, wanted: QueueType) -> Option<BrokerError> {
    let lapin::Error::ProtocolError(amqp) = e else {
        return None;
    };
    if !matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)) {
        return None;
    }
    let text = amqp.get_message().as_str();
    let argument = text
        .split('\'')
        .nth(1)
        .filter(|_| text.contains("inequivalent arg"))
        .unwrap_or("its arguments")
        .to_string();
    Some(BrokerError::QueueMismatch {
        queue: queue.to_string(),
        argument,
        broker_says: text.to_string(),
        wanted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_has_a_queue_per_priority_and_classic_one_per_channel() {
        let classic = Topology::new("p.", QueueType::Classic, 20);
        assert_eq!(classic.work_queue(Channel::Sms, Priority::High), "p.sms");
        assert_eq!(classic.work_queues(Channel::Sms), vec!["p.sms"]);
        let quorum = classic.with_queue_type(QueueType::Quorum);
        assert_eq!(quorum.work_queue(Channel::Sms, Priority::Low), "p.sms.low");
        assert_eq!(
            quorum.work_queues(Channel::Email),
            vec!["p.email.high", "p.email.normal", "p.email.low"]
        );
        assert_eq!(
            quorum.dead_letter_queue(Channel::Push),
            classic.dead_letter_queue(Channel::Push)
        );
    }

    #[test]
    fn queue_type_parses_case_insensitively_and_names_the_choices() {
        assert_eq!("Quorum".parse::<QueueType>(), Ok(QueueType::Quorum));
        assert_eq!(
            "mirrored".parse::<QueueType>().unwrap_err(),
            "\"mirrored\" is not classic or quorum"
        );
    }
}
