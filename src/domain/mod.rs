//! The pure core: notification states and their legal transitions (`transition.rs`), request validation,
//! retry backoff and delivery outcomes. Nothing here does I/O or touches tokio, sqlx, lapin
//! or reqwest, so every rule is unit-tested in place.

pub mod backoff;
pub mod notification;
pub mod outcome;
pub mod rate;
pub mod transition;

pub use notification::{
    BatchStatus, Channel, NewNotification, Notification, NotificationRequest, Priority, Status, ValidationError,
};
pub use outcome::{DeadLetterReason, DeliveryResult, LostAttempt, NextStep, Outcome};
pub use transition::Transition;

/// `s` cut to at most `max` characters (not bytes), with an ellipsis when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncation_respects_characters() {
        assert_eq!(super::truncate_chars("şşşş", 2), "şş…");
        assert_eq!(super::truncate_chars("ab", 2), "ab");
    }
}
