//! The pure core: notification states and their legal transitions, request validation,
//! retry backoff and delivery outcomes. Nothing here does I/O or touches tokio, sqlx, lapin
//! or reqwest, so every rule is unit-tested in place.

pub mod backoff;
pub mod notification;
pub mod outcome;
pub mod rate;

pub use notification::{
    BatchStatus, Channel, NewNotification, Notification, NotificationRequest, Priority, Status, ValidationError,
};
pub use outcome::{DeadLetterReason, DeliveryResult, NextStep};
