//! One node of a site, composed: the engine as the state machine of a raft-node [`raft_node::Group`]
//! (`replica`, `machine`), background GC (`gc`), the free-space guard (`disk`), the HTTP layer's backend over the replica (`http_backend`),
//! the data-dir layout (`layout`), the memory budget's split (`memory`), the open-file limit check (`open_files`), the systemd notify protocol (`systemd`), the federation worker's view of the replica (`sync_site`), and [`serve`], which runs all of it with the HTTP API until shutdown.

pub mod disk;
mod gc;
pub mod http_backend;
pub mod layout;
pub mod machine;
pub mod memory;
pub mod open_files;
pub mod replica;
mod serve;
mod sync_site;
pub mod systemd;

pub use http_backend::ReplicaBackend;
pub use layout::DataDir;
pub use replica::{Replica, ReplicaConfig};
pub use serve::{replica_config, serve, serve_with, Reload};
