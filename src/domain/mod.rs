//! The pure core: notification states and their legal transitions (`transition.rs`), request validation,
//! retry backoff and delivery outcomes. Nothing here does I/O or touches tokio, sqlx, lapin
//! or reqwest, so every rule is unit-tested in place.

/// Declares an enum whose variants each have a name, written once: `ALL` (in declaration
/// order), `as_str` and `Display` come from it.
macro_rules! named_enum {
    (
        $(#[$m:meta])*
        $vis:vis enum $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }
    ) => {
        $(#[$m])*
        $vis enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use named_enum;

pub mod backoff;
pub mod notification;
pub mod outcome;
pub mod rate;
pub mod stuck;
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
