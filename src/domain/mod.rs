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
mod per_channel;
pub mod rate;
pub mod stuck;
pub mod trace;
pub mod transition;

pub use notification::{
    BatchStatus, Channel, NewNotification, Notification, NotificationRequest, Priority, Status, ValidationError,
};
pub use outcome::{DeadLetterReason, DeliveryResult, LostAttempt, NextStep, Outcome};
pub use per_channel::PerChannel;
pub use trace::TraceContext;
pub use transition::Transition;

/// `s` cut to at most `max` characters (not bytes), with an ellipsis when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Characters of a provider's response body kept with the attempt.
pub const RESPONSE_EXCERPT_CHARS: usize = 1024;

/// What is kept of a provider's response body: UTF-8 (lossy), at most
/// `RESPONSE_EXCERPT_CHARS` characters, and no control characters but newline and tab,
/// so that showing it in an operator's terminal cannot move the cursor, recolour the screen
/// or rewrite the title (a provider's body is text from outside).
pub fn response_excerpt(body: &[u8]) -> String {
    // Four bytes per character at most: no need to decode more than that.
    let head = &body[..body.len().min(RESPONSE_EXCERPT_CHARS * 4 + 4)];
    let text: String = String::from_utf8_lossy(head)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    let cut = body.len() > head.len();
    match (truncate_chars(&text, RESPONSE_EXCERPT_CHARS), cut) {
        (t, true) if !t.ends_with('…') => format!("{t}…"),
        (t, _) => t,
    }
}

/// `text` on one line, for a table cell: whitespace runs become one space.
pub fn one_line(text: &str, max: usize) -> String {
    truncate_chars(&text.split_whitespace().collect::<Vec<_>>().join(" "), max)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_response_excerpt_is_bounded_and_has_no_terminal_controls() {
        let body = br#"{"error":"invalid recipient"}"#;
        assert_eq!(super::response_excerpt(body), r#"{"error":"invalid recipient"}"#);
        let hostile = "ok\x1b]0;pwned\x07\x1b[2J\r\nline two\tend".as_bytes();
        assert_eq!(
            super::response_excerpt(hostile),
            "ok\u{fffd}]0;pwned\u{fffd}\u{fffd}[2J\u{fffd}\nline two\tend"
        );
        let long = "é".repeat(5000);
        let excerpt = super::response_excerpt(long.as_bytes());
        assert_eq!(excerpt.chars().count(), super::RESPONSE_EXCERPT_CHARS + 1);
        assert!(excerpt.ends_with('…'));
        assert_eq!(super::response_excerpt(&[0xff, b'a']), "\u{fffd}a");
        assert_eq!(super::one_line("{\n  \"a\": 1\n}", 8), "{ \"a\": 1…");
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(super::truncate_chars("şşşş", 2), "şş…");
        assert_eq!(super::truncate_chars("ab", 2), "ab");
    }
}
