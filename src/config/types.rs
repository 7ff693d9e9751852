//! The kinds of things settings choose that an adapter below configuration acts on: they
//! live here, below both, so that `config` imports no adapter.

use std::str::FromStr;

crate::domain::named_enum! {
    /// `QUEUE_TYPE`: the topology `broker::Topology` declares.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
    #[serde(rename_all = "lowercase")]
    pub enum QueueType {
        Classic = "classic",
        Quorum = "quorum",
    }
}

impl QueueType {
    pub fn other(self) -> QueueType {
        match self {
            QueueType::Classic => QueueType::Quorum,
            QueueType::Quorum => QueueType::Classic,
        }
    }
}

impl FromStr for QueueType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "classic" => Ok(QueueType::Classic),
            "quorum" => Ok(QueueType::Quorum),
            other => Err(format!("\"{other}\" is not classic or quorum")),
        }
    }
}
