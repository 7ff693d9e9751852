//! How the domain's types are read from and written to PostgreSQL. The domain names no sqlx
//! (its first line says so, and `layers::` checks the crate's own imports), so the encodings
//! live here, beside the statements that use them.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgRow, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, FromRow, Postgres, Row, Type};

use crate::domain::{BatchStatus, Channel, DeadLetterReason, Notification, Priority, Status};

/// Types stored in a text column.
macro_rules! text_type {
    ($($name:ty),+) => {$(
        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }
    )+};
}

/// Text columns holding a named enum's upper-case name (`SMS`, `QUEUED`, …).
macro_rules! text_enum {
    ($($name:ty),+) => {$(
        text_type!($name);

        impl PgHasArrayType for $name {
            fn array_type_info() -> PgTypeInfo {
                <&str as PgHasArrayType>::array_type_info()
            }
        }

        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<Postgres>>::decode(value)?;
                <$name>::ALL.iter().copied().find(|v| v.as_str() == text).ok_or_else(|| {
                    format!("\"{text}\" is not a {} this version knows", stringify!($name)).into()
                })
            }
        }
    )+};
}

text_enum!(Channel, Priority, Status, BatchStatus);

text_type!(DeadLetterReason);

/// `failure_reason` is free text (an operator's UPDATE, another version); what this version
/// does not know reads as the domain says (`DeadLetterReason::from_stored`).
impl<'r> Decode<'r, Postgres> for DeadLetterReason {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(DeadLetterReason::from_stored(<&str as Decode<Postgres>>::decode(
            value,
        )?))
    }
}

/// A column that some statements do not select (`last_error`, the trace columns): absent
/// reads as `None`.
fn optional<'r, T>(row: &'r PgRow, column: &str) -> Result<Option<T>, sqlx::Error>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    match row.try_get::<Option<T>, _>(column) {
        Err(sqlx::Error::ColumnNotFound(_)) => Ok(None),
        read => read,
    }
}

impl FromRow<'_, PgRow> for Notification {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Notification {
            id: row.try_get("id")?,
            correlation_id: row.try_get("correlation_id")?,
            idempotency_key: row.try_get("idempotency_key")?,
            batch_id: row.try_get("batch_id")?,
            channel: row.try_get("channel")?,
            priority: row.try_get("priority")?,
            recipient: row.try_get("recipient")?,
            content: row.try_get("content")?,
            status: row.try_get("status")?,
            provider_message_id: row.try_get("provider_message_id")?,
            attempt_count: row.try_get("attempt_count")?,
            max_retries: row.try_get("max_retries")?,
            scheduled_at: row.try_get("scheduled_at")?,
            next_retry_at: row.try_get("next_retry_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            last_error: optional(row, "last_error")?,
            failure_reason: optional(row, "failure_reason")?,
            traceparent: optional(row, "traceparent")?,
            tracestate: optional(row, "tracestate")?,
            trace_last_span: optional(row, "trace_last_span")?,
        })
    }
}
