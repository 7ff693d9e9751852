//! The state machine, written once: every transition the program makes, the states it may
//! start from and the states it leads to. The store renders `from` into the WHERE (or CASE)
//! of each statement that makes the transition, so a statement and this table cannot
//! disagree; `store::every_statement_moves_exactly_the_rows_its_rule_allows` (tests/it)
//! runs each statement against a row in every state.

use super::Status;
use Status::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transition {
    /// The broker confirmed a work message (a create's, or the scanner's for a scheduled or
    /// never-published notification): ACCEPTED → QUEUED.
    Publish,
    /// The scanner put a due retry back on its queue: QUEUED → QUEUED, no longer due.
    Retry,
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
        Self::Retry,
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
            Self::Retry => &[Queued],
            Self::Claim | Self::Cancel => &[Accepted, Queued],
            Self::RecordOutcome => &[Sending],
            Self::DeadLetter | Self::Replay => &[Failed],
            Self::Prune => &[Sent, Canceled],
        }
    }

    /// The states it leads to (none for a deletion).
    pub fn to(self) -> &'static [Status] {
        match self {
            Self::Publish | Self::Retry | Self::Replay => &[Queued],
            Self::Claim => &[Sending],
            Self::RecordOutcome => &[Sent, Queued, Failed],
            Self::Cancel => &[Canceled],
            Self::DeadLetter => &[Failed],
            Self::Prune => &[],
        }
    }

    pub fn allows(self, status: Status) -> bool {
        self.from().contains(&status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_the_documented_life_of_a_notification() {
        // ACCEPTED → QUEUED → SENDING → SENT | FAILED, and CANCELED before SENDING.
        assert!(Transition::Claim.allows(Accepted) && Transition::Claim.allows(Queued));
        assert!(!Transition::Cancel.allows(Sending));
        for terminal in [Sent, Failed, Canceled] {
            assert!(terminal.is_terminal());
            for t in [
                Transition::Claim,
                Transition::Cancel,
                Transition::Publish,
                Transition::Retry,
            ] {
                assert!(!t.allows(terminal), "{t:?} from {terminal}");
            }
        }
        assert!(!Transition::Prune.allows(Failed), "FAILED rows are never pruned");
        for t in Transition::ALL {
            assert!(!t.from().is_empty(), "{t:?} starts somewhere");
        }
    }
}
