//! Discarding dead letters that must never be sent: the letters `replay` would select are
//! removed from their DLQ, each written to the export (flushed) before it goes, and the run
//! is kept in the audit trail. The notifications stay FAILED; only their letters go.

use std::io::Write;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::replay::{record_progress, Selection, MAX_LISTED};
use crate::broker::dlq::{DeadLetterView, DlqCursor};
use crate::broker::BrokerError;
use crate::dispatch::Backends;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DiscardError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Export(#[from] std::io::Error),
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DiscardSummary {
    pub discard_id: Uuid,
    pub dry_run: bool,
    pub discarded: u64,
    /// Letters not selected; they stay in the DLQ in their order.
    pub left: u64,
    pub interrupted: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub letters: Vec<DeadLetterView>,
    /// Letters the selection matched (with a dry run: that would be discarded).
    #[serde(skip)]
    pub selected: u64,
}

/// Discards the letters `sel` selects (with `dry_run`, lists them), stopping between two
/// letters when `cancel` fires.
pub async fn discard(
    backends: &Backends,
    sel: &Selection,
    dry_run: bool,
    mut export: Option<&mut dyn Write>,
    cancel: &CancellationToken,
) -> Result<DiscardSummary, DiscardError> {
    let mut summary = DiscardSummary {
        discard_id: Uuid::now_v7(),
        dry_run,
        ..Default::default()
    };
    let operator = crate::config::operator_identity();
    let selection = serde_json::to_value(sel)?;
    backends
        .store
        .audit_start(summary.discard_id, &operator, "discard", &selection, dry_run)
        .await?;
    'channels: for channel in sel.channels() {
        let mut cursor = DlqCursor::open(backends.broker.endpoints(), backends.broker.topology(), channel).await?;
        loop {
            if cancel.is_cancelled() {
                summary.interrupted = true;
                cursor.close().await;
                break 'channels;
            }
            let Some(fetched) = cursor.next().await? else {
                break;
            };
            if sel.limit.is_some_and(|l| summary.selected as usize >= l) || !sel.matches(&fetched.view) {
                summary.left += 1;
                continue;
            }
            summary.selected += 1;
            if dry_run {
                if summary.letters.len() < MAX_LISTED {
                    summary.letters.push(fetched.view);
                }
                continue;
            }
            if let Some(file) = export.as_mut() {
                // Written and flushed before the letter is removed: nothing is lost unexported.
                let line = serde_json::to_string(&fetched.view)?;
                writeln!(file, "{line}").and_then(|()| file.flush())?;
            }
            let view = fetched.view.clone();
            // Marked before the letter goes: a crash between leaves a marked row with its
            // letter still there (harmless), never a row whose letter the scanner would
            // take for lost and publish again.
            if let Some(id) = view.notification_id {
                backends.store.mark_letter_discarded(id).await?;
            }
            fetched.ack().await?;
            summary.discarded += 1;
            record_progress(backends, summary.discard_id, [summary.discarded, 0, 0], "discard").await;
            if summary.letters.len() < MAX_LISTED {
                summary.letters.push(view);
            }
        }
        cursor.close().await;
    }
    let count = if dry_run { summary.selected } else { summary.discarded };
    backends
        .store
        .audit_progress(summary.discard_id, count as i32, 0, 0, !summary.interrupted)
        .await?;
    Ok(summary)
}
