//! `kvs_raft::bench::Driver` for the systems kvs-raft is compared with. The kvs-raft driver itself is
//! `kvs_raft::bench::http`.
//!
//! Each maps the workload's ops onto what the system's users would write, one worker = one connection,
//! one request in flight per connection. Where the mapping is not one to one, the module docs say how.

pub mod etcd;
pub mod redis;

pub use self::etcd::EtcdDriver;
pub use self::redis::RedisDriver;
