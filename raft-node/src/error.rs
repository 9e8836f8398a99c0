//! The crate's one error type; variants are named for what the caller can do.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory was created for another cluster: refuse to start.
    #[error("data dir belongs to cluster {found:?}, not {expected:?}")]
    ClusterMismatch { found: String, expected: String },
    /// The data directory belongs to another node of the cluster (started with the wrong `--id`, or with
    /// another node's data dir): refuse to start. Each node's log holds its own vote and acknowledgements.
    #[error(
        "data dir belongs to node {found}, not node {expected}: start node {found} on it, or give node \
         {expected} its own data dir"
    )]
    NodeMismatch { found: u64, expected: u64 },
    /// The state machine has applied less than the log has compacted: the entries in between are gone
    /// (its state was lost or restored from an older backup), so replaying the log would apply onto stale
    /// state. Refuse to start.
    #[error(
        "the state machine's applied index {applied} is behind the raft log, whose first index is \
         {first_index} (entries {from}..={to} were compacted away): the state was lost or restored from \
         an older backup. Restore a state at least as new, or wipe the whole data dir and add the node \
         back under a new id",
        from = applied.saturating_add(1),
        to = first_index.saturating_sub(1)
    )]
    StateBehindLog { applied: u64, first_index: u64 },
    /// The log ends (on open) or would end (from `LogStore::persist`, which then persists nothing) before
    /// the commit index: on open the log was truncated or lost, refuse to start.
    #[error("raft log ends at {last_index} but the hard state says {commit} is committed")]
    CommitBeyondLog { commit: u64, last_index: u64 },
    /// Stored bytes do not decode.
    #[error("corruption at {at}: {detail}")]
    Corruption { at: String, detail: String },
    /// RocksDB or the file system failed; nothing of the failed call was persisted.
    #[error("storage: {0}")]
    Storage(String),
    /// A snapshot older than the log's first index was offered; nothing was persisted. Ignore the snapshot.
    #[error("snapshot at index {index} is older than the log, which starts at {first_index}")]
    SnapshotOutOfDate { index: u64, first_index: u64 },
    /// Appended entries would leave a hole or rewrite compacted entries (a caller bug); nothing was
    /// persisted. `index` had to lie in `[lowest, highest]`.
    #[error("entry {index} would break the log's continuity: expected an index in [{lowest}, {highest}]")]
    NotContiguous {
        index: u64,
        lowest: u64,
        highest: u64,
    },
    /// Compaction was asked to drop entries the log does not have yet; nothing was compacted.
    #[error("cannot compact up to {compact_index}: the log ends at {last_index}")]
    CompactBeyondLog { compact_index: u64, last_index: u64 },
    /// The request itself is malformed (too large, bad encoding); nothing was proposed.
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// The command is larger than one Raft entry may be (`size` > `limit` bytes); nothing was proposed.
    #[error("command of {size} bytes exceeds the entry limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// raft-rs refused an operation (e.g. a conf change while another is pending).
    #[error("raft: {0}")]
    Raft(String),
    /// The state machine failed to apply a committed entry: the node stops rather than diverge. The state
    /// machine's own error is kept (callers may downcast it to act on its kind, e.g. a full disk).
    #[error("state machine: {0}")]
    StateMachine(Box<dyn std::error::Error + Send + Sync>),
    /// This node is not the leader; retry at `leader_hint` if known. Nothing was proposed.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<u64> },
    /// The proposal definitely did not commit (its log slot went to another entry); safe to retry.
    #[error("proposal dropped; it was not applied")]
    Dropped,
    /// The proposal's fate is not known here, or it was applied but its result is lost (it reached this
    /// node inside a snapshot): it may or may not have taken effect. Never retry it automatically.
    #[error("outcome unknown: the proposal may or may not have been applied")]
    OutcomeUnknown,
    /// Too many requests queued or in flight; retry later. Nothing was proposed.
    #[error("overloaded")]
    Overloaded,
    /// No answer within the deadline. For a proposal the outcome is unknown: it may still commit.
    #[error("timed out; outcome unknown")]
    Timeout,
    /// The node is stopping. For a proposal already in flight the outcome is unknown.
    #[error("shutting down")]
    ShuttingDown,
    /// The node's disk is below its configured reserve: the proposal was refused before it reached raft
    /// (not applied). Retry once space is freed.
    #[error("the disk is below its free-space reserve; nothing was proposed")]
    NoSpace,
    /// The node loop is not running (stopped or failed): the request never reached it, nothing was proposed.
    #[error("the node is stopped")]
    Stopped,
    /// A membership change refused before it was proposed (invalid, or a guard rail): nothing changed.
    #[error(transparent)]
    Membership(#[from] crate::membership::Refusal),
    /// The proposal committed, but its entry could not be applied (it does not decode, or Raft refuses
    /// the conf change it carries): every replica recorded it as a no-op. Nothing changed.
    #[error("the committed entry could not be applied and was recorded as a no-op: {0}")]
    Unappliable(String),
}
