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

use std::sync::Arc;

use crate::broker::Broker;
use crate::store::Store;

/// What the operator use cases (`replay`, `discard`) work on: the rows and the queues. The
/// composition root (`app::App::backends`) builds it; no use case takes the whole `App`.
#[derive(Clone)]
pub struct Backends {
    pub store: Store,
    pub broker: Arc<Broker>,
}
