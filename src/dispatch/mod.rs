//! Use cases shared by the API, the worker, the scanner and the CLI: they combine the
//! domain rules with the adapters and own the order of steps that the invariants rely on.

pub mod backlog;
pub mod create;
pub mod deliver;
pub mod discard;
pub mod outbox;
pub mod prune;
pub mod replay;
pub mod scan;
