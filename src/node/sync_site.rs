//! The running replica as the federation worker's [`Site`]: its engine (the change feed), whether it
//! leads, and proposals of the sync cursor through the log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Engine, Op};
use raft_node::Role;

use super::replica::Replica;
use crate::federation::Site;

/// How long a leadership check may wait on the node loop.
const STATUS_WITHIN: Duration = Duration::from_secs(1);

pub struct NodeSite(pub Arc<Replica>);

impl Site for NodeSite {
    fn engine(&self) -> &Engine {
        self.0.engine()
    }

    async fn is_leader(&self) -> bool {
        matches!(
            self.0.status(Instant::now() + STATUS_WITHIN).await,
            Ok(s) if s.role == Role::Leader
        )
    }

    async fn record_cursor(&self, index: u64, deadline: Instant) -> Result<(), String> {
        self.0
            .propose(&[Op::SyncCursor { index }], deadline)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
