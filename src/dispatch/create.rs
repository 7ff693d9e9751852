//! Accepting notifications: one durable step, the insert's commit, which stores a due
//! notification QUEUED together with its work row (that is all a 202 promises); the work
//! message is then handed to the background publisher (`outbox`). A broker outage leaves it
//! in the outbox for the scanner, never FAILED.

use std::collections::HashMap;

use uuid::Uuid;

use crate::broker::WorkMessage;
use crate::dispatch::backlog::{Backlog, BacklogFull};
use crate::dispatch::outbox::Publisher;
use crate::domain::{Channel, NewNotification, Notification, NotificationRequest, Status, TraceContext};
use crate::store::batched::BatchedWrites;
use crate::store::{Store, StoreError};

pub const MAX_BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Backlog(#[from] BacklogFull),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct BatchCreated {
    pub batch_id: Uuid,
    pub notifications: Vec<Notification>,
}

/// What accepting a notification uses: the database (group-committed for single creates),
/// the backlog's gate and the publisher that takes over once the row is committed.
#[derive(Clone)]
pub struct Intake {
    pub store: Store,
    pub writes: BatchedWrites,
    pub backlog: Backlog,
    pub publisher: Publisher,
    /// DEFAULT_MAX_RETRIES, for requests that do not say.
    pub default_max_retries: i32,
}

impl Intake {
    pub async fn create_one(
        &self,
        request: &NotificationRequest,
        request_id: Option<&str>,
        trace: Option<&TraceContext>,
    ) -> Result<Notification, CreateError> {
        let mut new = request
            .validate(request_id, self.default_max_retries)
            .map_err(|e| CreateError::Invalid(e.to_string()))?;
        new.trace = trace.cloned();
        self.hold_back(std::slice::from_ref(&new)).await?;
        let (stored, created) = self.writes.insert_notification(new).await?;
        self.hand_over(std::slice::from_ref(&stored), &[created]).await;
        Ok(stored)
    }

    /// All-or-nothing validation: the first invalid item rejects the batch, naming its index.
    pub async fn create_batch(
        &self,
        requests: &[NotificationRequest],
        request_id: Option<&str>,
        trace: Option<&TraceContext>,
    ) -> Result<BatchCreated, CreateError> {
        if requests.is_empty() || requests.len() > MAX_BATCH {
            return Err(CreateError::Invalid(format!(
                "notifications: {} items given; a batch holds 1 to {MAX_BATCH}",
                requests.len()
            )));
        }
        let items: Vec<NewNotification> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.validate(request_id, self.default_max_retries)
                    .map(|n| NewNotification {
                        trace: trace.cloned(),
                        ..n
                    })
                    .map_err(|e| CreateError::Invalid(format!("notifications[{i}].{e}")))
            })
            .collect::<Result<_, _>>()?;
        Self::reject_repeated_keys(&items)?;
        self.hold_back(&items).await?;
        let (batch_id, stored) = self.store.insert_batch(Uuid::now_v7(), &items).await?;
        let (notifications, created): (Vec<Notification>, Vec<bool>) = stored.into_iter().unzip();
        self.hand_over(&notifications, &created).await;
        Ok(BatchCreated {
            batch_id,
            notifications,
        })
    }

    /// Waits while the backlog of a channel that these notifications would join at once is
    /// full (`BACKLOG_LIMIT`); scheduled ones join no queue yet, so they are never held.
    async fn hold_back(&self, items: &[NewNotification]) -> Result<(), BacklogFull> {
        if !self.backlog.enabled() {
            return Ok(());
        }
        let now = chrono::Utc::now();
        let joining: Vec<(Channel, u32)> = Channel::ALL
            .iter()
            .map(|&channel| {
                let due = items
                    .iter()
                    .filter(|n| n.channel == channel && n.scheduled_at.is_none_or(|at| at <= now))
                    .count();
                (channel, u32::try_from(due).unwrap_or(u32::MAX))
            })
            .filter(|&(_, due)| due > 0)
            .collect();
        self.backlog.admit(&joining).await
    }

    /// Two items with one idempotency key would be one notification answered twice, and the
    /// batch's response and summary would disagree on its size; refusing the batch, naming both
    /// items, leaves the client to decide which one it meant. Keys are compared as stored
    /// (trimmed).
    fn reject_repeated_keys(items: &[NewNotification]) -> Result<(), CreateError> {
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let Some(key) = item.idempotency_key.as_deref() else {
                continue;
            };
            if let Some(earlier) = first.insert(key, i) {
                return Err(CreateError::Invalid(format!(
                    "notifications[{i}].idempotencyKey: \"{key}\" is also the key of notifications[{earlier}]; \
                 each item of a batch needs its own key"
                )));
            }
        }
        Ok(())
    }

    /// Hands the work messages of the notifications this request created (not those found by
    /// their idempotency key) and stored QUEUED to the publisher; the scheduled ones wait
    /// ACCEPTED for the scanner.
    async fn hand_over(&self, stored: &[Notification], created: &[bool]) {
        let messages: Vec<WorkMessage> = stored
            .iter()
            .zip(created)
            .filter(|(n, &created)| created && n.status == Status::Queued)
            .map(|(n, _)| WorkMessage::from(n))
            .collect();
        self.publisher.hand_over(messages).await;
    }
}
