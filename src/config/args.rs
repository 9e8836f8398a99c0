//! `kvs-raft serve` flags, turned into a [`super::ServeConfig`] by [`super::ServeConfig::from_args`].

use std::path::PathBuf;

use clap::Args;

use super::{ClusterState, SyncMode};

/// `kvs-raft serve` flags. None has a clap default or a clap `env`: defaults, the config file and
/// `KVS_RAFT_*` variables are layered under them by [`super::ServeConfig::from_args`]. The
/// `[default: …]` of each flag's help is added from [`super::defaults`] (see `cli::command`).
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML config file; unknown keys are refused. [env: KVS_RAFT_CONFIG]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// This node's id: ≥ 1, unique in the cluster, never reused.
    #[arg(long, value_name = "ID")]
    pub id: Option<u64>,
    /// Cluster name, checked on every peer connection and stored in the data dir; 1-64 of [A-Za-z0-9._-].
    #[arg(long, value_name = "NAME")]
    pub cluster_id: Option<String>,
    /// Data directory (Raft log and state machine).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Client API listen address (an IP, not a host name).
    #[arg(long, value_name = "IP:PORT")]
    pub listen_client: Option<String>,
    /// Peer (Raft) listen address (an IP, not a host name).
    #[arg(long, value_name = "IP:PORT")]
    pub listen_peer: Option<String>,
    /// Members of a new cluster and their peer addresses, e.g. 1=10.0.0.1:7380,2=10.0.0.2:7380,3=10.0.0.3:7380;
    /// must include --id. Ignored on restart (the data dir holds the membership). Exclusive with --join.
    /// [default: this node alone]
    #[arg(long, value_name = "ID=HOST:PORT,...")]
    pub initial_cluster: Option<String>,
    /// Client URL of a running member, for a node added with `members add`; asked for the members on every
    /// start (on a restart a failure is only a warning). Exclusive with --initial-cluster.
    #[arg(long, value_name = "URL")]
    pub join: Option<String>,
    /// With --initial-cluster on an empty data dir: `new` founds the cluster; `existing` refuses to start,
    /// since the cluster already runs and an empty data dir means this member's state (its votes) was
    /// lost: remove it and add the machine back under a new id with --join. Set `existing` once the site
    /// has started (as etcd's --initial-cluster-state). A data dir that holds a log ignores it.
    #[arg(long, value_name = "STATE")]
    pub initial_cluster_state: Option<ClusterState>,
    /// Client address other nodes and clients use to reach this node. Required when --listen-client is
    /// 0.0.0.0 or [::]. [default: --listen-client]
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise_client: Option<String>,
    /// Peer address other nodes use to reach this node. Required when --listen-peer is 0.0.0.0 or [::] and
    /// --initial-cluster does not name it. [default: this node's --initial-cluster entry, else --listen-peer]
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise_peer: Option<String>,
    /// How long old versions stay readable (units us, ms, s, m, h).
    #[arg(long, value_name = "DURATION")]
    pub retention: Option<String>,
    /// When the state machine's (engine's) writes reach the disk; the Raft log is fsynced before every
    /// acknowledgement either way. `batch` (the default) leaves them to the OS and fsyncs before the log
    /// is compacted past them and at shutdown; `always` also fsyncs every applied batch (one more fsync
    /// on the write path, less log to replay after a power loss).
    #[arg(long, value_name = "MODE")]
    pub engine_sync: Option<SyncMode>,
    /// What the node's caches and buffers may hold in memory (the engine's block cache and memtables, the
    /// Raft log's); RSS settles near it plus about 20 MiB (units B, KiB, MiB, GiB; at least 16MiB).
    #[arg(long, value_name = "SIZE")]
    pub memory_budget: Option<String>,
    /// TiKV placement driver endpoints for upward federation; none = federation off.
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT]")]
    pub pd: Option<String>,
    /// This site's name in the central store; 1-64 of [A-Za-z0-9._-]. [default: --cluster-id]
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// CA certificate(s) (PEM) of the central PD and TiKV: with --pd-cert and --pd-key turns on mutual
    /// TLS towards them (https). See docs/federation.md.
    #[arg(long, value_name = "PATH")]
    pub pd_cacert: Option<PathBuf>,
    /// Client certificate chain (PEM) this node presents to PD and TiKV.
    #[arg(long, value_name = "PATH")]
    pub pd_cert: Option<PathBuf>,
    /// Private key (PEM) of --pd-cert.
    #[arg(long, value_name = "PATH")]
    pub pd_key: Option<PathBuf>,
    /// File holding the peer port's shared secret (≥ 16 bytes; trailing whitespace ignored). Required when
    /// --listen-peer is not a loopback address. Alternatively the secret itself in env KVS_RAFT_PEER_SECRET.
    #[arg(long, value_name = "PATH")]
    pub peer_secret_file: Option<PathBuf>,
    /// File of client API tokens, one `NAME ROLE sha256:HEX` per line (make them with `kvs-raft token
    /// create`); turns bearer-token auth on. Reloaded on SIGHUP. Every node of a site uses the same file.
    /// Required when the client address (listen or advertised) is not loopback, unless
    /// --insecure-no-auth. See docs/security.md.
    #[arg(long, value_name = "PATH")]
    pub auth_token_file: Option<PathBuf>,
    /// Serve the client API without authentication on a non-loopback address (logged as a warning on
    /// every start).
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// With auth on, whether /metrics needs a token: `open` (as etcd and Prometheus exporters) or `read`
    /// (a token of any role).
    #[arg(long, value_name = "ACCESS")]
    pub metrics_auth: Option<String>,
    /// With --join and auth on: a file holding a client token (role read or more) to ask the running
    /// member for the cluster's members. Trailing whitespace is ignored.
    #[arg(long, value_name = "PATH")]
    pub join_token_file: Option<PathBuf>,
    /// TLS certificate chain (PEM) of the client port; with --client-key turns on https. It must name the
    /// host of --advertise-client (DNS or IP subject alternative name). See docs/tls.md.
    #[arg(long, value_name = "PATH")]
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(long, value_name = "PATH")]
    pub client_key: Option<PathBuf>,
    /// CA certificate(s) (PEM): clients must present a certificate signed by one (mutual TLS). Also
    /// trusted for the other nodes' client ports unless --trusted-ca-file is set.
    #[arg(long, value_name = "PATH")]
    pub client_ca: Option<PathBuf>,
    /// CA certificate(s) (PEM) trusted for the other nodes' client-port certificates, when forwarding to
    /// the leader and for --join https://. [default: --client-ca]
    #[arg(long, value_name = "PATH")]
    pub trusted_ca_file: Option<PathBuf>,
    /// TLS certificate chain (PEM) of the peer port: mutual TLS between nodes. It must name
    /// `node-<id>` (DNS subject alternative name). Needs --peer-key and --peer-ca.
    #[arg(long, value_name = "PATH")]
    pub peer_cert: Option<PathBuf>,
    /// Private key (PEM) of --peer-cert.
    #[arg(long, value_name = "PATH")]
    pub peer_key: Option<PathBuf>,
    /// CA certificate(s) (PEM) every peer's certificate must be signed by.
    #[arg(long, value_name = "PATH")]
    pub peer_ca: Option<PathBuf>,
    /// Run the peer port without TLS and without a secret although it is reachable from other hosts
    /// (anyone who reaches it can join the Raft group). Warned about on every start.
    #[arg(long)]
    pub insecure_peer_no_auth: bool,
}
