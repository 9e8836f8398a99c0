//! The comparison harness of issue 15 (a dev-only crate; nothing that ships depends on it).
//!
//! * [`cluster`]: the servers under test as child processes on loopback — a kvs-raft site, etcd ×3 and
//!   Redis — each in its own temporary directory on free ports, stopped and cleaned up on drop. Shared
//!   with the chaos and soak runs, which stop, kill and restart single nodes.
//! * [`drivers`]: `kvs_raft::bench::Driver` for etcd (gRPC) and Redis (RESP): how each system executes
//!   the workload's operations, and where a mapping is not one to one.
//! * [`resources`]: per-process RSS and CPU time from `/proc`, sampled once a second while a run runs.
//! * [`compare`]: the `compare` subcommand — the workload shapes, one system after another, into a
//!   markdown table and an SVG plot.
//! * [`chaos`]: the `chaos` subcommand — the seed's test: the game workload open loop while a nemesis
//!   stops one replica at a time, then the check that every acknowledged write is present.
//! * [`soak`]: the `soak` subcommand — checkpoint churn with every node's RSS sampled each second, and
//!   Redis's RSS during an AOF rewrite for contrast.
//!
//! # The chaos run (`bench-harness chaos`)
//!
//! ```text
//! bench-harness chaos --kvs-raft BIN [--duration 15m] [--rate 1000] [--stop-every 30s] [--down 5s]
//!                     [--nemesis pod|kill] [--smoke] [--json FILE] [--out-md FILE]
//! ```
//!
//! A fresh kvs-raft site ×3 takes `--rate` game updates per second (one `/v1/txn` each — position put
//! and score incr —, 1 % checkpoints, no late reads, one player per update per second), open loop, no
//! warm-up, every request recorded with its latency from its *intended* send time. Every
//! `--stop-every` the nemesis ([`chaos::nemesis`]) stops one replica — even stops the leader, odd
//! stops the follower stopped least often — and starts it again `--down` after it exited, on the
//! same ports and data:
//!
//! * `--nemesis pod`: SIGTERM, SIGKILL after a 10 s grace ([`chaos::nemesis::POD_GRACE`]; Kubernetes'
//!   default is 30 s: a node hands over leadership and exits within a second or two, 10 s is ample);
//! * `--nemesis kill`: SIGKILL only.
//!
//! The report ([`chaos::report`]; markdown on stdout, `--json` for scripts): p50/p99/p999/max over all
//! requests; per stop the node, whether it was the leader, how it went (`graceful`,
//! `killed-after-grace`, `sigkill`), whether the old pid is gone, the restart's time to ready, the
//! **longest write gap** — the longest interval between consecutive successful write completions
//! (intended + latency) whose end lies between this stop and the next ([`chaos::gap`]) — the errors
//! of the requests intended in that window by label, and the Raft term before and after; the
//! **spurious elections**: term changes beyond one per leader stop, plus any before the first stop
//! (the terms are the highest any node reports in `GET /v1/cluster`).
//!
//! Then **every acknowledged write must be present** ([`chaos::verify`], where the reasoning is
//! spelled out): every player's position and score are read back linearizably (`/v1/batch` `get`
//! ops) and checked against what the recorded requests allow — the position must come from a write
//! that may be the player's last (an acknowledged write with no acknowledged write certainly after
//! it, or any failed one, which may have taken effect late; absent after a checkpoint), the score must
//! be absent exactly when the position is, and lie between the acknowledged increments no checkpoint
//! can separate from the visible update and every increment that may count. The check is sound (it
//! reports only real losses, given that the client never re-sends a write that may have been applied)
//! but cannot see a loss hidden behind a failed write that took effect. The command exits 1 when a
//! write is lost or a stop did not happen (the pid still there, a restart that failed).
//!
//! `--smoke` (CI): 60 s at 300 updates/s, a stop every 15 s (leader, follower, leader).
//!
//! # The memory soak (`bench-harness soak`)
//!
//! ```text
//! bench-harness soak --kvs-raft BIN [--duration 30m] [--rate 1000] [--players 100000]
//!                    [--checkpoints 0.2] [--redis-server BIN|none] [--smoke] [--json FILE]
//! ```
//!
//! Checkpoint churn (the game workload, 20 % of the writes checkpoints, 5 % late reads) on a fresh site
//! ×3 while every node's RSS is sampled each second ([`resources::RssSeries`]). Per node
//! ([`soak::stats`]): the least-squares RSS slope after the warm-up (5 min; smoke 10 s) in % of the
//! mean after the warm-up per 10 minutes (goal < 2 %), and the peak of the whole run against the
//! steady state, the median of the second half (goal ≤ 1.2×). Then Redis `appendfsync everysec`
//! loaded with the same players (position and score each), under the same workload, runs
//! `BGREWRITEAOF`; the server and its forked child are sampled every 10 ms: RSS before, peak parent +
//! child RSS (shared pages counted twice, as per-process accounting does) and PSS (each page once).
//! `--smoke` (CI): 45 s at 300 ops/s over 10,000 players, 6 s of Redis.

pub mod chaos;
pub mod cluster;
pub mod compare;
pub mod drivers;
pub mod resources;
pub mod soak;
