//! The domain's and the settings' enums as command-line values: clap checks a value, lists
//! the choices in `--help`, the completions and the man pages, and hands the command the
//! typed value, all from the enum's own names (`ALL`, `as_str`), so no list is written twice.

use clap::builder::PossibleValue;
use clap::ValueEnum;

use crate::config::QueueType;
use crate::domain::{Channel, DeadLetterReason, Priority, Status};

/// Each value is the name as the command shows it; clap matches it ignoring case where
/// the flag says `ignore_case`.
macro_rules! value_enum {
    ($($name:ty => $shown:expr),+ $(,)?) => {$(
        impl ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                <$name>::ALL
            }
            fn to_possible_value(&self) -> Option<PossibleValue> {
                let shown: fn($name) -> &'static str = $shown;
                Some(PossibleValue::new(shown(*self)))
            }
        }
    )+};
}

value_enum! {
    // Lower case, as the queues and the DLQs are named.
    Channel => Channel::lower,
    Priority => Priority::lower,
    // Upper case, as the API and the list show it.
    Status => Status::as_str,
    DeadLetterReason => DeadLetterReason::as_str,
    QueueType => QueueType::as_str,
}

/// A flag's number, checked as its setting's would be: the error names what was wrong, what
/// is accepted (`accepted` opens the parenthesis) and the setting.
pub(super) fn number<T>(value: &str, min: T, accepted: &str, setting: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd,
{
    match value.trim().parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("\"{value}\" is not {accepted}; as {setting})")),
    }
}

/// `serve --host`.
pub(super) fn address(value: &str) -> Result<std::net::IpAddr, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("\"{value}\" is not an IP address (e.g. 0.0.0.0 or 127.0.0.1; as API_HOST)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_reads_back_as_its_variant_ignoring_case() {
        for &c in Channel::ALL {
            assert_eq!(<Channel as ValueEnum>::from_str(&c.lower().to_uppercase(), true), Ok(c));
        }
        assert_eq!(<Status as ValueEnum>::from_str("failed", true), Ok(Status::Failed));
        assert_eq!(
            <DeadLetterReason as ValueEnum>::from_str("not_found", false),
            Ok(DeadLetterReason::NotFound)
        );
        assert_eq!(
            <QueueType as ValueEnum>::from_str("quorum", false),
            Ok(QueueType::Quorum)
        );
        assert!(<Priority as ValueEnum>::from_str("urgent", true).is_err());
        assert_eq!(
            number("0", 1u16, "x (1 or more", "S"),
            Err("\"0\" is not x (1 or more; as S)".into())
        );
        assert_eq!(number(" 7", 1u16, "x (1 or more", "S"), Ok(7));
        assert!(address("localhost").unwrap_err().contains("API_HOST"));
    }
}
