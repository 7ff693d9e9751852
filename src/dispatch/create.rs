//! Accepting notifications: persist first (that is what a 202 promises), then publish with a
//! confirm and mark QUEUED. A broker outage leaves them ACCEPTED for the scanner, never FAILED.

use std::collections::HashMap;

use uuid::Uuid;

use crate::app::App;
use crate::broker::WorkMessage;
use crate::domain::{NewNotification, Notification, NotificationRequest, Status};
use crate::store::StoreError;

pub const MAX_BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct BatchCreated {
    pub batch_id: Uuid,
    pub notifications: Vec<Notification>,
    pub warning: Option<String>,
}

pub async fn create_one(
    app: &App,
    request: &NotificationRequest,
    request_id: Option<&str>,
) -> Result<Notification, CreateError> {
    let new = request
        .validate(request_id, app.settings.default_max_retries)
        .map_err(|e| CreateError::Invalid(e.to_string()))?;
    let (mut stored, created) = app.writes.insert_notification(new).await?;
    enqueue(app, std::slice::from_mut(&mut stored), &[created]).await;
    Ok(stored)
}

/// All-or-nothing validation: the first invalid item rejects the batch, naming its index.
pub async fn create_batch(
    app: &App,
    requests: &[NotificationRequest],
    request_id: Option<&str>,
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
            r.validate(request_id, app.settings.default_max_retries)
                .map_err(|e| CreateError::Invalid(format!("notifications[{i}].{e}")))
        })
        .collect::<Result<_, _>>()?;
    reject_repeated_keys(&items)?;
    let (batch_id, stored) = app.store.insert_batch(Uuid::now_v7(), &items).await?;
    let (mut notifications, created): (Vec<Notification>, Vec<bool>) = stored.into_iter().unzip();
    let unpublished = enqueue(app, &mut notifications, &created).await;
    let warning = (unpublished > 0).then(|| {
        format!("{unpublished} of {} notifications could not be enqueued now; they are stored and the scanner will enqueue them", requests.len())
    });
    Ok(BatchCreated {
        batch_id,
        notifications,
        warning,
    })
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

/// Publishes the due ones among the freshly stored notifications (`created`: those this
/// request made, not found by their idempotency key) and marks the confirmed ones QUEUED
/// (in `stored` too). Returns how many stay ACCEPTED for the scanner.
async fn enqueue(app: &App, stored: &mut [Notification], created: &[bool]) -> usize {
    let now = chrono::Utc::now();
    let due: Vec<usize> = (0..stored.len())
        .filter(|&i| created[i] && stored[i].scheduled_at.is_none_or(|at| at <= now))
        .collect();
    if due.is_empty() {
        return 0;
    }
    let messages: Vec<WorkMessage> = due.iter().map(|&i| WorkMessage::from(&stored[i])).collect();
    let published = app.broker.publish_work(&messages).await;
    let confirmed: Vec<usize> = published.confirmed.iter().map(|&k| due[k]).collect();
    if let Some(e) = &published.error {
        tracing::warn!(error = %e, unpublished = due.len() - confirmed.len(), "enqueue failed; left ACCEPTED for the scanner");
    }
    let ids: Vec<Uuid> = confirmed.iter().map(|&i| stored[i].id).collect();
    // A single create shares its commit with concurrent ones; a batch is one statement.
    let marked = match ids.as_slice() {
        [one] => app.writes.mark_queued(*one).await,
        many => app.store.mark_queued(many).await,
    };
    match marked {
        Ok(()) => confirmed.iter().for_each(|&i| stored[i].status = Status::Queued),
        // The messages are on the broker and the worker accepts ACCEPTED rows: nothing is lost.
        Err(e) => tracing::warn!(error = %e, "could not mark notifications QUEUED"),
    }
    due.len() - confirmed.len()
}
