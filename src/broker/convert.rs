//! `convert-queues`: moves a deployment's queues from one type to the other without losing a
//! message that is waiting or dead-lettered.
//!
//! Work queues have different names per type (`sms` against `sms.high|normal|low`), so their
//! messages are moved across and the old queues deleted. A dead-letter queue keeps its name
//! (`dlq.<channel>`), and RabbitMQ cannot change a queue's type: its letters are moved into a
//! holding queue (`dlq.<channel>.converting`, bound to the dead-letter exchange meanwhile so
//! new letters land there too), the old queue is deleted and declared anew, and the letters
//! move back. Every move publishes a copy with a confirm before it acks the original, so a
//! crash leaves at worst a duplicate (which replay refuses to send twice), never a gap; a
//! rerun finishes what a crashed one started.

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeleteOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel as AmqpChannel, Connection};
use serde::Serialize;

use super::{passive_depth, BrokerError, Endpoints, QueueType, Topology};
use crate::domain::{Channel, Priority};

/// What one conversion did (or, with `dry_run`, would do), queue by queue.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConvertReport {
    pub to: QueueType,
    pub dry_run: bool,
    pub steps: Vec<ConvertStep>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConvertStep {
    pub queue: String,
    pub action: &'static str,
    pub messages: u32,
}

impl ConvertReport {
    pub fn messages_moved(&self) -> u64 {
        self.steps.iter().map(|s| u64::from(s.messages)).sum()
    }
}

pub async fn convert(endpoints: &Endpoints, target: &Topology, dry_run: bool) -> Result<ConvertReport, BrokerError> {
    let (connection, _node) = endpoints.connect(&target.connection_name("convert-queues")).await?;
    let result = Converter {
        connection: &connection,
        target,
        source: target.with_queue_type(target.queue_type().other()),
        dry_run,
        report: ConvertReport {
            to: target.queue_type(),
            dry_run,
            steps: Vec::new(),
        },
    }
    .run()
    .await;
    let _ = connection.close(200, "done").await;
    result
}

struct Converter<'a> {
    connection: &'a Connection,
    target: &'a Topology,
    source: Topology,
    dry_run: bool,
    report: ConvertReport,
}

impl Converter<'_> {
    async fn run(mut self) -> Result<ConvertReport, BrokerError> {
        let ch = self.connection.create_channel().await?;
        for channel in Channel::ALL {
            self.convert_dead_letter_queue(&ch, *channel).await?;
        }
        if !self.dry_run {
            // The DLQs are of the target type now, so the whole topology declares cleanly.
            self.target.declare(&ch).await?;
        }
        for channel in Channel::ALL {
            for queue in self.source.work_queues(*channel) {
                self.move_work_queue(*channel, &queue).await?;
            }
        }
        let _ = ch.close(200, "done").await;
        Ok(self.report)
    }

    fn step(&mut self, queue: &str, action: &'static str, messages: u32) {
        self.report.steps.push(ConvertStep {
            queue: queue.to_string(),
            action,
            messages,
        });
    }

    async fn convert_dead_letter_queue(&mut self, ch: &AmqpChannel, channel: Channel) -> Result<(), BrokerError> {
        let dlq = self.target.dead_letter_queue(channel);
        let holding = format!("{dlq}.converting");
        let dlx = self.target.dead_letter_exchange();
        let holding_depth = self.depth(&holding).await?;
        let dlq_depth = self.depth(&dlq).await?;
        let of_other_type = match dlq_depth {
            Some(_) => !self.is_of_target_type(channel).await?,
            None => false,
        };
        match dlq_depth {
            Some(depth) if !of_other_type && holding_depth.is_none() => {
                self.step(&dlq, "already of the target type", depth)
            }
            Some(depth) if of_other_type && self.dry_run => {
                self.step(&dlq, "would be re-created as the target type", depth)
            }
            Some(_) if of_other_type => {
                let holding = self.target.declare_holding_queue(ch, channel).await?;
                ch.queue_bind(
                    &holding,
                    &dlx,
                    channel.lower(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
                let moved = self.drain_and_delete(&dlq, |_| holding.clone()).await?;
                self.step(&dlq, "letters moved to the holding queue", moved);
            }
            _ => {}
        }
        if self.dry_run {
            if let Some(depth) = holding_depth {
                self.step(
                    &holding,
                    "would move back into the DLQ (left by an interrupted run)",
                    depth,
                );
            }
            return Ok(());
        }
        if self.depth(&holding).await?.is_some() {
            // Declares the DLQ anew (as the target type) and binds it, then empties the
            // holding queue into it; a rerun after a crash starts here. Unbound first, or a
            // new letter would be routed to both.
            self.target.declare_dead_letter_queue(ch, channel).await?;
            ch.queue_unbind(&holding, &dlx, channel.lower(), FieldTable::default())
                .await?;
            let moved = self.drain_and_delete(&holding, |_| dlq.clone()).await?;
            self.step(&dlq, "re-created as the target type; letters moved back", moved);
        }
        Ok(())
    }

    /// Whether `dlq.<channel>` takes the target type's arguments (a failed declare closes
    /// the channel it was made on, so the probe has one of its own).
    async fn is_of_target_type(&self, channel: Channel) -> Result<bool, BrokerError> {
        let probe = self.connection.create_channel().await?;
        let result = self.target.declare_dead_letter_queue(&probe, channel).await;
        let _ = probe.close(200, "probe").await;
        match result {
            Ok(()) => Ok(true),
            Err(BrokerError::QueueMismatch { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn move_work_queue(&mut self, channel: Channel, queue: &str) -> Result<(), BrokerError> {
        let Some(depth) = self.depth(queue).await? else {
            return Ok(());
        };
        if self.dry_run {
            self.step(
                queue,
                "would move to the target type's work queues and be deleted",
                depth,
            );
            return Ok(());
        }
        let target = self.target.clone();
        let moved = self
            .drain_and_delete(queue, |props| {
                let priority = props
                    .priority()
                    .and_then(Priority::from_amqp)
                    .or_else(|| priority_of_queue(queue))
                    .unwrap_or(Priority::Normal);
                target.work_queue(channel, priority)
            })
            .await?;
        self.step(queue, "messages moved to the target type's work queues; deleted", moved);
        Ok(())
    }

    /// Moves every message of `queue` to the queue `to` names, then deletes `queue` once it
    /// is empty (a message that arrives meanwhile is moved on the next round). Each move has
    /// a channel of its own: RabbitMQ 3.10 fails a channel that publishes to a queue which
    /// was deleted and declared again as another type since that channel last used it.
    async fn drain_and_delete(&self, queue: &str, to: impl Fn(&BasicProperties) -> String) -> Result<u32, BrokerError> {
        let ch = self.connection.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        let moved = self.drain_and_delete_on(&ch, queue, to).await;
        let _ = ch.close(200, "moved").await;
        moved
    }

    async fn drain_and_delete_on(
        &self,
        ch: &AmqpChannel,
        queue: &str,
        to: impl Fn(&BasicProperties) -> String,
    ) -> Result<u32, BrokerError> {
        let mut moved = 0u32;
        loop {
            while let Some(message) = ch.basic_get(queue, BasicGetOptions { no_ack: false }).await? {
                let d = message.delivery;
                let destination = to(&d.properties);
                let confirm = ch
                    .basic_publish(
                        "",
                        &destination,
                        BasicPublishOptions {
                            mandatory: true,
                            ..Default::default()
                        },
                        &d.data,
                        d.properties.clone(),
                    )
                    .await?
                    .await?;
                match confirm {
                    Confirmation::Ack(None) | Confirmation::NotRequested => {}
                    Confirmation::Ack(Some(_)) => {
                        return Err(BrokerError::Rejected(format!("{destination} does not exist")))
                    }
                    Confirmation::Nack(_) => {
                        return Err(BrokerError::Rejected(format!("{destination} refused a message")))
                    }
                }
                d.acker.ack(BasicAckOptions::default()).await?;
                moved += 1;
            }
            // A classic queue is deleted only if empty (a message that arrived since the last
            // get fails the delete, closing its channel, and is moved on the next round).
            // Quorum queues do not support if_empty; nothing routes to them once the
            // deployment's processes are stopped, as the procedure requires, and the holding
            // queue was unbound before it was drained.
            let if_empty = self.type_of(queue) == QueueType::Classic;
            let deleter = self.connection.create_channel().await?;
            let deleted = deleter
                .queue_delete(
                    queue,
                    QueueDeleteOptions {
                        if_empty,
                        ..Default::default()
                    },
                )
                .await;
            let _ = deleter.close(200, "deleted").await;
            match deleted {
                Ok(0) => return Ok(moved),
                Ok(lost) => {
                    return Err(BrokerError::Rejected(format!(
                        "{lost} messages reached {queue} from a process still running while it was being \
                         converted, and were deleted with it; stop every dispatchctl process before converting"
                    )))
                }
                Err(_) if if_empty => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The type a queue of this deployment has before the conversion: the holding queue is
    /// of the target type, everything else of the source type.
    fn type_of(&self, queue: &str) -> QueueType {
        if queue.ends_with(".converting") {
            self.target.queue_type()
        } else {
            self.source.queue_type()
        }
    }

    /// Messages in `queue`, or None when it does not exist (a passive declare on a channel of
    /// its own, since a miss closes the channel).
    async fn depth(&self, queue: &str) -> Result<Option<u32>, BrokerError> {
        let probe = self.connection.create_channel().await?;
        let depth = passive_depth(&probe, queue).await;
        let _ = probe.close(200, "probe").await;
        depth
    }
}

/// `sms.high` → HIGH: the priority of a quorum work queue, from its name.
fn priority_of_queue(queue: &str) -> Option<Priority> {
    queue.rsplit('.').next().and_then(|p| p.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quorum_work_queue_names_its_priority() {
        assert_eq!(priority_of_queue("staging.sms.high"), Some(Priority::High));
        assert_eq!(priority_of_queue("sms.low"), Some(Priority::Low));
        assert_eq!(priority_of_queue("sms"), None);
    }
}
