//! The state machine, written once: every transition the program makes, the states it may
//! start from and the states it leads to. The store renders `from` into the WHERE (or CASE)
//! of each statement that makes the transition, so a statement and this table cannot
//! disagree; `store::every_statement_moves_exactly_the_rows_its_rule_allows` (tests/it)
//! runs each statement against a row in every state.

use super::Status;
use Status::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transition {
    /// The broker confirmed the work message of a notification scheduled for later (or, from
    /// a version before the outbox, of any new one): ACCEPTED → QUEUED.
    Publish,
    /// The broker confirmed the first work message of a due notification, which was QUEUED
    /// from its first commit: QUEUED stays QUEUED, and its work row is stamped published.
    Enqueue,
    /// The scanner put a due retry back on its queue: QUEUED → QUEUED, no longer due.
    Retry,
    /// The scanner published again the work message of a notification whose message its
    /// queue no longer holds (the broker lost it after confirming it): QUEUED → QUEUED.
    Requeue,
    /// A worker's claim, once due: ACCEPTED | QUEUED → SENDING under a lease.
    Claim,
    /// An attempt recorded by its lease's holder, or by the scanner once the lease expired.
    RecordOutcome,
    /// A cancel request: only before a worker claimed it.
    Cancel,
    /// The dead letter of a final failure was confirmed (by the worker or the scanner's sweep).
    DeadLetter,
    /// An operator replayed a final failure.
    Replay,
    /// Retention deletes finished rows. Never FAILED ones: their dead letter may still wait
    /// in `dlq.<channel>` (ARCHITECTURE.md, Retention).
    Prune,
}

impl Transition {
    pub const ALL: &'static [Transition] = &[
        Self::Publish,
        Self::Enqueue,
        Self::Retry,
        Self::Requeue,
        Self::Claim,
        Self::RecordOutcome,
        Self::Cancel,
        Self::DeadLetter,
        Self::Replay,
        Self::Prune,
    ];

    /// The states a notification may be in for this transition to apply to it.
    pub fn from(self) -> &'static [Status] {
        match self {
            Self::Publish => &[Accepted],
            Self::Enqueue | Self::Retry | Self::Requeue => &[Queued],
            Self::Claim | Self::Cancel => &[Accepted, Queued],
            Self::RecordOutcome => &[Sending],
            Self::DeadLetter | Self::Replay => &[Failed],
            Self::Prune => &[Sent, Canceled],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_leaves_a_final_state_but_by_replay_or_prune() {
        for t in Transition::ALL {
            let from_final = t.from().iter().any(|s| s.is_terminal());
            let allowed = matches!(t, Transition::DeadLetter | Transition::Replay | Transition::Prune);
            assert_eq!(from_final, allowed, "{t:?}");
        }
        assert!(
            !Transition::Prune.from().contains(&Failed),
            "FAILED rows are never pruned"
        );
    }
}
