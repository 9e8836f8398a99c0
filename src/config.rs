//! `kvs-raft serve` configuration (SPEC §4): one validated, typed [`ServeConfig`], built from layered
//! sources before anything touches the disk or the network (no directory is created, no socket bound; the
//! only I/O is reading the config file and the peer secret file).
//!
//! ## Sources and precedence
//! Lowest to highest: **built-in defaults < TOML file < environment < flags**.
//!
//! * Every setting is a TOML key (`retention = "5s"`); the file is named by `--config PATH` or
//!   `KVS_RAFT_CONFIG` (the flag wins). Unknown keys are refused.
//! * Every setting's environment variable is `KVS_RAFT_` + its key in upper case (`KVS_RAFT_RETENTION`).
//!   An empty variable counts as unset. Variables are read by this module (not by clap), so
//!   [`ServeConfig::from_sources`] can be driven with an explicit map in tests.
//! * The settings operators use on the command line also have a flag: `--` + the key with `-` for `_`.
//!   Limits and Raft tuning are file/env only.
//! * Two pairs are one choice each, decided by the highest layer that sets either member; setting both
//!   members in that same layer is an error: `initial_cluster` / `join` (how a new node finds its cluster)
//!   and `peer_secret` / `peer_secret_file`. So `--join` on the command line overrides an
//!   `initial_cluster` in the file. The secret itself (`KVS_RAFT_PEER_SECRET`) is environment only: it is
//!   never a flag (visible in `ps`) nor a file key.
//!
//! A value that is overridden by a higher layer is not validated.
//!
//! Client auth: `auth_token_file` is read and parsed here (a malformed file is a configuration error
//! naming its line); its permissions are checked by [`ServeConfig::from_args`] (real files only). A client
//! address (listen or advertised) that is not loopback needs it, or `insecure_no_auth`.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use raft_node::Timing;

use crate::http::auth::{MetricsAccess, Tokens};
use crate::http::Limits;
pub use crate::tls::ClientTlsFiles;

mod args;
mod defaults;
mod file;
#[cfg(test)]
mod tests;
mod values;

pub use args::ServeArgs;

/// `--initial-cluster` as `serve` reads it (`ID=HOST:PORT,...`); `snapshot restore` takes the same.
pub fn parse_initial_cluster(s: &str) -> Result<BTreeMap<u64, String>, String> {
    values::initial_cluster(s)
}

/// A cluster id as `serve --cluster-id` accepts it.
pub fn parse_cluster_id(s: &str) -> Result<String, String> {
    values::name(s)
}
pub use defaults::{default_of, defaults};

/// A duration in the configuration's syntax (`500ms`, `5s`, `2m`, `1h`, `250us`), for the other
/// subcommands' flags; the reason it is refused otherwise.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    values::duration(s)
}
use values::{
    boolean, duration_in, host_port, host_port_list, initial_cluster, int_in, is_loopback_host,
    join_url, listen_addr, name, same_address, size_in,
};

/// When the state machine's (engine's) writes reach the disk (`engine_sync`). The Raft log is always
/// fsynced before anything is acknowledged and is the durable record: an engine behind it after a crash
/// replays the entries it lacks, so a crash never loses an acknowledged write either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    /// Every applied batch is also fsynced in the engine (less log replay after a power loss; one more
    /// fsync on every write's path).
    Always,
    /// The engine's writes go to the OS and are fsynced before the Raft log is compacted past them and
    /// at shutdown.
    #[default]
    Batch,
}

impl SyncMode {
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::Always => "always",
            SyncMode::Batch => "batch",
        }
    }
}

/// Whether `--initial-cluster` founds a new cluster or names the members of one that already runs (as
/// etcd's `--initial-cluster-state`). Only an empty data dir looks at it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterState {
    /// An empty data dir bootstraps the cluster from `--initial-cluster` (the first start of a site).
    #[default]
    New,
    /// The cluster already runs: an empty data dir is refused, since it means this member's state (its
    /// votes) was lost; such a machine is removed and added back under a new id with `--join`.
    Existing,
}

impl ClusterState {
    pub fn name(self) -> &'static str {
        match self {
            ClusterState::New => "new",
            ClusterState::Existing => "existing",
        }
    }
}

/// How a node with an empty data dir finds its cluster (a restarted node uses its persisted membership).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// Found a new cluster with these voters: id → peer address (`host:port`). Always contains this node.
    InitialCluster(BTreeMap<u64, String>),
    /// Join a running cluster through this member's client URL (`http(s)://host:port`).
    Join(String),
}

/// The peer port's shared secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Raft timing, the lease's drift margin, log compaction, entry size and the peer port's connection bound
/// (file/env only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftTuning {
    pub timing: Timing,
    /// The leader lease is shortened by this percentage for clock drift between nodes.
    pub lease_margin_percent: u8,
    pub compact_log_entries: u64,
    pub compact_log_bytes: u64,
    /// Bytes of one Raft entry at most (`NodeConfig::max_entry_bytes`).
    pub max_entry_bytes: usize,
    /// Inbound peer connections open at once.
    pub max_peer_connections: usize,
    /// How far a leader's clock may run ahead of the cluster's before commit timestamps stop following
    /// it (`NodeConfig::max_clock_skew`).
    pub max_clock_skew: Duration,
}

/// A validated `serve` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    pub id: u64,
    pub cluster_id: String,
    pub data_dir: PathBuf,
    pub listen_client: SocketAddr,
    pub listen_peer: SocketAddr,
    /// `host:port` clients and other nodes use for this node's client API.
    pub advertise_client: String,
    /// `host:port` other nodes use for this node's peer port.
    pub advertise_peer: String,
    pub bootstrap: Bootstrap,
    /// With [`Bootstrap::InitialCluster`]: whether an empty data dir may found the cluster.
    pub initial_cluster_state: ClusterState,
    pub retention: Duration,
    pub engine_sync: SyncMode,
    /// TiKV PD endpoints (`host:port`); `None` = federation off.
    pub pd: Option<Vec<String>>,
    pub site: Option<String>,
    /// Mutual TLS towards PD and TiKV (`pd_cacert`, `pd_cert`, `pd_key`); only with `pd`.
    pub pd_tls: Option<raft_node::transport::TlsFiles>,
    /// `None` only when the peer port is on loopback (listen and advertised address), peer TLS is on, or
    /// `insecure_peer_no_auth` is set.
    pub peer_secret: Option<Secret>,
    /// The client API's limits (those with a setting are set; the rest keep the HTTP layer's defaults).
    pub limits: Limits,
    pub raft: RaftTuning,
    /// Free space kept in reserve on the data dir's file system: below it writes are refused with 507
    /// (`node::disk`); 0 turns the guard off.
    pub reserve_space: u64,
    /// Bytes the node's caches and buffers may hold, split by `node::memory`.
    pub memory_budget: u64,
    /// Unsynced change-feed bytes above which `/readyz` reports degraded (federation only).
    pub sync_backlog_quota: u64,
    /// Changes and bytes per central transaction, at most (federation only).
    pub sync_batch_entries: usize,
    pub sync_batch_bytes: usize,
    /// The deadline of one sync batch: connecting, reading the cursor, committing, reconciling.
    pub sync_timeout: Duration,
    /// Client API tokens (`auth_token_file`, parsed at start); `None`: the client API is open.
    pub client_auth: Option<ClientAuth>,
    /// The client API is open on a non-loopback address on purpose (a warning on every start).
    pub insecure_no_auth: bool,
    /// With auth on, whether `/metrics` needs a token.
    pub metrics_auth: MetricsAccess,
    /// With [`Bootstrap::Join`]: the client token sent when asking the member for the cluster's members.
    pub join_token: Option<Secret>,
    /// TLS on the client port (and https to the other nodes' client ports); `None`: plain HTTP.
    pub client_tls: Option<ClientTlsFiles>,
    /// The CA this node trusts for the other nodes' client-port certificates when it forwards to the
    /// leader or joins over https (`trusted_ca_file`, else `client_ca`).
    pub trusted_ca: Option<PathBuf>,
    /// Mutual TLS on the peer port.
    pub peer_tls: Option<raft_node::transport::TlsFiles>,
    /// The peer port runs without TLS and without a secret although it is reachable from other hosts
    /// (`insecure_peer_no_auth`); warned about on every start.
    pub insecure_peer_no_auth: bool,
}

/// The token file and the tokens it held when the configuration was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    pub file: PathBuf,
    pub tokens: Tokens,
}

/// The layer a value came from; shown in every error so the operator knows what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    Default,
    File(PathBuf),
    Env,
    Flag,
}

impl Layer {
    fn rank(&self) -> u8 {
        match self {
            Layer::Default => 0,
            Layer::File(_) => 1,
            Layer::Env => 2,
            Layer::Flag => 3,
        }
    }
}

/// A setting as the operator wrote it: `--retention`, `KVS_RAFT_RETENTION`, `` `retention` in f.toml ``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: &'static str,
    pub origin: Layer,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Layer::Flag => write!(f, "--{}", self.key.replace('_', "-")),
            Layer::Env => write!(f, "{}", env_name(self.key)),
            Layer::File(path) => write!(f, "`{}` in {}", self.key, path.display()),
            Layer::Default => write!(f, "{} (default)", self.key),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// One value does not parse or is out of range.
    #[error("invalid value {value:?} for {setting}: {reason}")]
    Invalid {
        setting: Setting,
        value: String,
        reason: String,
    },
    /// Values that are each valid do not fit together.
    #[error("{0}")]
    Rule(String),
    #[error("cannot read {what} {}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The config file is not valid TOML or has unknown keys or wrongly typed values.
    #[error("config file {}: {message}", path.display())]
    File { path: PathBuf, message: String },
}

// -------------------------------------------------------------------------------------------------------
// Defaults and keys

const MIN_SECRET_BYTES: usize = 16;

/// Every key `KVS_RAFT_<KEY>` may set (besides `config`), in file order.
pub const KEYS: &[&str] = &[
    "id",
    "cluster_id",
    "data_dir",
    "listen_client",
    "listen_peer",
    "initial_cluster",
    "join",
    "initial_cluster_state",
    "advertise_client",
    "advertise_peer",
    "retention",
    "engine_sync",
    "pd",
    "site",
    "pd_cacert",
    "pd_cert",
    "pd_key",
    "peer_secret",
    "peer_secret_file",
    "max_key_bytes",
    "max_value_bytes",
    "max_body_bytes",
    "max_connections",
    "header_read_timeout",
    "body_read_timeout",
    "request_timeout",
    "max_inflight_proposals",
    "max_scan_bytes",
    "compact_log_entries",
    "compact_log_bytes",
    "max_entry_bytes",
    "max_peer_connections",
    "max_clock_skew",
    "reserve_space",
    "memory_budget",
    "sync_backlog_quota",
    "sync_batch_entries",
    "sync_batch_bytes",
    "sync_timeout",
    "tick",
    "election_ticks",
    "heartbeat_ticks",
    "lease_margin_percent",
    "auth_token_file",
    "insecure_no_auth",
    "metrics_auth",
    "join_token_file",
    "client_cert",
    "client_key",
    "client_ca",
    "trusted_ca_file",
    "peer_cert",
    "peer_key",
    "peer_ca",
    "insecure_peer_no_auth",
];

fn env_name(key: &str) -> String {
    format!("KVS_RAFT_{}", key.to_ascii_uppercase())
}

// -------------------------------------------------------------------------------------------------------
// Layers

/// A raw value and where it came from.
#[derive(Debug, Clone)]
struct Raw {
    value: String,
    at: Setting,
}

impl Raw {
    fn parse<T>(&self, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, ConfigError> {
        parse(&self.value).map_err(|reason| ConfigError::Invalid {
            setting: self.at.clone(),
            value: self.value.clone(),
            reason,
        })
    }
}

/// A parsed value and where it came from.
#[derive(Debug, Clone)]
struct Val<T> {
    v: T,
    at: Setting,
}

struct Layers<'a> {
    flags: BTreeMap<&'static str, String>,
    env: &'a dyn Fn(&str) -> Option<String>,
    file: BTreeMap<&'static str, String>,
    file_path: Option<PathBuf>,
}

impl Layers<'_> {
    /// The highest-precedence value of `key`, if any layer sets it.
    fn raw(&self, key: &'static str) -> Option<Raw> {
        let at = |origin| Setting { key, origin };
        if let Some(v) = self.flags.get(key) {
            return Some(Raw {
                value: v.clone(),
                at: at(Layer::Flag),
            });
        }
        if let Some(v) = (self.env)(&env_name(key)).filter(|v| !v.is_empty()) {
            return Some(Raw {
                value: v,
                at: at(Layer::Env),
            });
        }
        match (self.file.get(key), &self.file_path) {
            (Some(v), Some(path)) => Some(Raw {
                value: v.clone(),
                at: at(Layer::File(path.clone())),
            }),
            _ => None,
        }
    }

    fn opt<T>(
        &self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<Val<T>>, ConfigError> {
        self.raw(key)
            .map(|raw| {
                Ok(Val {
                    v: raw.parse(parse)?,
                    at: raw.at,
                })
            })
            .transpose()
    }

    /// The highest-precedence value of `key`, else its built-in default ([`defaults::defaults`]).
    fn get<T>(
        &self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Val<T>, ConfigError> {
        let raw = self.raw(key).unwrap_or_else(|| Raw {
            value: default_of(key).unwrap_or_default(),
            at: Setting {
                key,
                origin: Layer::Default,
            },
        });
        Ok(Val {
            v: raw.parse(parse)?,
            at: raw.at,
        })
    }

    /// One of two exclusive keys: the one set by the higher layer; both in the same layer is an error.
    fn either(&self, a: &'static str, b: &'static str, why: &str) -> Result<Pick, ConfigError> {
        Ok(match (self.raw(a), self.raw(b)) {
            (None, None) => Pick::Neither,
            (Some(x), None) => Pick::First(x),
            (None, Some(y)) => Pick::Second(y),
            (Some(x), Some(y)) => match x.at.origin.rank().cmp(&y.at.origin.rank()) {
                std::cmp::Ordering::Greater => Pick::First(x),
                std::cmp::Ordering::Less => Pick::Second(y),
                std::cmp::Ordering::Equal => {
                    return Err(ConfigError::Rule(format!(
                        "{} and {} are exclusive: {why}",
                        x.at, y.at
                    )))
                }
            },
        })
    }
}

/// Which of two exclusive keys applies.
enum Pick {
    Neither,
    First(Raw),
    Second(Raw),
}

fn path_str(key: &'static str, path: &Path) -> Result<String, ConfigError> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| ConfigError::Invalid {
            setting: Setting {
                key,
                origin: Layer::Flag,
            },
            value: path.to_string_lossy().into_owned(),
            reason: "paths must be valid UTF-8".into(),
        })
}

/// The flags that were given, in the common string form.
fn flag_values(args: &ServeArgs) -> Result<BTreeMap<&'static str, String>, ConfigError> {
    let mut flags = BTreeMap::new();
    let mut put = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            flags.insert(k, v);
        }
    };
    put("id", args.id.map(|id| id.to_string()));
    put("cluster_id", args.cluster_id.clone());
    put("listen_client", args.listen_client.clone());
    put("listen_peer", args.listen_peer.clone());
    put("initial_cluster", args.initial_cluster.clone());
    put("join", args.join.clone());
    put(
        "initial_cluster_state",
        args.initial_cluster_state.map(|s| s.name().to_string()),
    );
    put("advertise_client", args.advertise_client.clone());
    put("advertise_peer", args.advertise_peer.clone());
    put("retention", args.retention.clone());
    put("memory_budget", args.memory_budget.clone());
    put(
        "engine_sync",
        args.engine_sync.map(|s| s.name().to_string()),
    );
    put("pd", args.pd.clone());
    put("site", args.site.clone());
    put(
        "insecure_no_auth",
        args.insecure_no_auth.then(|| "true".to_string()),
    );
    put("metrics_auth", args.metrics_auth.clone());
    // Paths: refused unless UTF-8 (the layers hold strings).
    for (key, path) in [
        ("data_dir", &args.data_dir),
        ("peer_secret_file", &args.peer_secret_file),
        ("auth_token_file", &args.auth_token_file),
        ("join_token_file", &args.join_token_file),
        ("client_cert", &args.client_cert),
        ("client_key", &args.client_key),
        ("client_ca", &args.client_ca),
        ("trusted_ca_file", &args.trusted_ca_file),
        ("peer_cert", &args.peer_cert),
        ("peer_key", &args.peer_key),
        ("peer_ca", &args.peer_ca),
        ("pd_cacert", &args.pd_cacert),
        ("pd_cert", &args.pd_cert),
        ("pd_key", &args.pd_key),
    ] {
        put(key, path.as_deref().map(|p| path_str(key, p)).transpose()?);
    }
    put(
        "insecure_peer_no_auth",
        args.insecure_peer_no_auth.then(|| "true".to_string()),
    );
    Ok(flags)
}

// -------------------------------------------------------------------------------------------------------
// Building

impl ServeConfig {
    /// The configuration from the flags, the process environment and the files they name.
    pub fn from_args(args: ServeArgs) -> Result<ServeConfig, ConfigError> {
        // A variable that is set but not UTF-8 is an error, not silently unset.
        for key in KEYS.iter().copied().chain(["config"]) {
            if let Err(std::env::VarError::NotUnicode(v)) = std::env::var(env_name(key)) {
                return Err(ConfigError::Invalid {
                    setting: Setting {
                        key,
                        origin: Layer::Env,
                    },
                    value: if key == "peer_secret" {
                        "<redacted>".into()
                    } else {
                        v.to_string_lossy().into_owned()
                    },
                    reason: "not valid UTF-8".into(),
                });
            }
        }
        let cfg = Self::from_sources(args, &|name| std::env::var(name).ok(), &|path| {
            std::fs::read(path)
        })?;
        if let Some(auth) = &cfg.client_auth {
            match crate::http::auth::check_permissions(&auth.file) {
                Ok(None) => {}
                Ok(Some(warning)) => {
                    tracing::warn!(file = %auth.file.display(), "token file: {warning}")
                }
                Err(reason) => {
                    return Err(ConfigError::Rule(format!(
                        "token file {}: {reason}",
                        auth.file.display()
                    )))
                }
            }
        }
        Ok(cfg)
    }

    /// The configuration from explicit sources: `env` looks up a variable by name, `read_file` reads the
    /// config file and the peer secret file. Tests pass maps; [`ServeConfig::from_args`] the real ones.
    pub fn from_sources(
        args: ServeArgs,
        env: &dyn Fn(&str) -> Option<String>,
        read_file: &dyn Fn(&Path) -> io::Result<Vec<u8>>,
    ) -> Result<ServeConfig, ConfigError> {
        let flags = flag_values(&args)?;
        let file_path = match &args.config {
            Some(path) => Some(path.clone()),
            None => env(&env_name("config"))
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        };
        let file = match &file_path {
            Some(path) => file::load_file(path, read_file)?,
            None => BTreeMap::new(),
        };
        let layers = Layers {
            flags,
            env,
            file,
            file_path,
        };
        build(&layers, read_file)
    }
}

fn build(
    l: &Layers<'_>,
    read_file: &dyn Fn(&Path) -> io::Result<Vec<u8>>,
) -> Result<ServeConfig, ConfigError> {
    let id = l.get("id", |s| int_in(s, 1, u64::MAX))?;
    let cluster_id = l.get("cluster_id", name)?;
    let data_dir = l.get("data_dir", |s| {
        if s.trim().is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(PathBuf::from(s))
        }
    })?;
    let listen_client = l.get("listen_client", listen_addr)?;
    let listen_peer = l.get("listen_peer", listen_addr)?;
    if listen_client.v == listen_peer.v {
        return Err(ConfigError::Rule(format!(
            "{} and {} are both {}: the client API and the peer port need different addresses",
            listen_client.at, listen_peer.at, listen_client.v
        )));
    }

    let advertise_client = match l.opt("advertise_client", host_port)? {
        Some(adv) => adv.v,
        None => derived_advertise(&listen_client, "advertise_client")?,
    };

    let bootstrap = l.either(
        "initial_cluster",
        "join",
        "a new node either founds a cluster with the initial members or joins a running one",
    )?;
    let explicit_peer = l.opt("advertise_peer", host_port)?;
    let (bootstrap, advertise_peer) = match bootstrap {
        Pick::First(raw) => {
            let members = raw.parse(initial_cluster)?;
            let Some(own) = members.get(&id.v) else {
                return Err(ConfigError::Rule(format!(
                    "{} {} is not a member of {} (ids {}); add it, or use --join for a node added to a running cluster",
                    id.at,
                    id.v,
                    raw.at,
                    members.keys().map(u64::to_string).collect::<Vec<_>>().join(", ")
                )));
            };
            let advertise_peer = match &explicit_peer {
                Some(adv) if !same_address(&adv.v, own) => {
                    return Err(ConfigError::Rule(format!(
                        "{} {} differs from this node's entry {}={} in {}; other members dial the entry",
                        adv.at, adv.v, id.v, own, raw.at
                    )))
                }
                Some(adv) => adv.v.clone(),
                None => {
                    // Catch a copy-paste slip (wrong id or port) where it can be seen without DNS.
                    if let Ok(entry) = own.parse::<SocketAddr>() {
                        if !listen_peer.v.ip().is_unspecified() && entry != listen_peer.v {
                            return Err(ConfigError::Rule(format!(
                                "this node's entry {}={} in {} is not its {} {}; fix one of them, or set \
                                 --advertise-peer when a proxy or NAT sits in between",
                                id.v, own, raw.at, listen_peer.at, listen_peer.v
                            )));
                        }
                    }
                    own.clone()
                }
            };
            (Bootstrap::InitialCluster(members), advertise_peer)
        }
        Pick::Second(raw) => {
            let url = raw.parse(join_url)?;
            let advertise_peer = match explicit_peer {
                Some(adv) => adv.v,
                None => derived_advertise(&listen_peer, "advertise_peer")?,
            };
            (Bootstrap::Join(url), advertise_peer)
        }
        Pick::Neither => {
            // The dev default: a single-node cluster of this node.
            let advertise_peer = match explicit_peer {
                Some(adv) => adv.v,
                None => derived_advertise(&listen_peer, "advertise_peer")?,
            };
            let members = BTreeMap::from([(id.v, advertise_peer.clone())]);
            (Bootstrap::InitialCluster(members), advertise_peer)
        }
    };

    let initial_cluster_state = l.get("initial_cluster_state", |s| match s.trim() {
        "new" => Ok(ClusterState::New),
        "existing" => Ok(ClusterState::Existing),
        _ => Err("expected `new` or `existing`".into()),
    })?;

    let retention = l.get("retention", |s| {
        duration_in(s, Duration::ZERO, Duration::from_secs(24 * 3600))
    })?;
    let engine_sync = l.get("engine_sync", |s| match s.trim() {
        "always" => Ok(SyncMode::Always),
        "batch" => Ok(SyncMode::Batch),
        _ => Err("expected `always` or `batch`".into()),
    })?;
    let pd = l.opt("pd", host_port_list)?;
    let site = l.opt("site", name)?;
    let pd_tls = pd_tls(l, pd.as_ref())?;

    let peer_secret = match l.either(
        "peer_secret",
        "peer_secret_file",
        "give the secret either itself or as a file",
    )? {
        Pick::Neither => None,
        Pick::First(raw) => Some(secret(raw.value.into_bytes(), &raw.at)?),
        Pick::Second(raw) => {
            let (_, bytes) = read_named_file(read_file, "peer secret file", &raw)?;
            Some(secret(bytes, &raw.at)?)
        }
    };
    let tls = tls_settings(l, &bootstrap)?;
    let insecure_peer_no_auth = l.get("insecure_peer_no_auth", boolean)?;
    if peer_secret.is_none() && tls.peer.is_none() && !insecure_peer_no_auth.v {
        let exposed = if !listen_peer.v.ip().is_loopback() {
            Some(format!("{} {}", listen_peer.at, listen_peer.v))
        } else if !is_loopback_host(&advertise_peer) {
            Some(format!("the advertised peer address {advertise_peer}"))
        } else {
            None
        };
        if let Some(exposed) = exposed {
            return Err(ConfigError::Rule(format!(
                "{exposed} is reachable from other hosts, so peers must authenticate: set --peer-cert, \
                 --peer-key and --peer-ca (mutual TLS), or --peer-secret-file (or KVS_RAFT_PEER_SECRET) to \
                 the same secret of at least {MIN_SECRET_BYTES} bytes on every node; or, on a trusted \
                 network only, --insecure-peer-no-auth"
            )));
        }
    }

    let limits = limits(l)?;
    let raft = raft_tuning(l, &limits)?;
    let reserve_space = l.get("reserve_space", |s| size_in(s, 0, u64::MAX))?.v;
    let memory_budget = l
        .get("memory_budget", |s| {
            use crate::node::memory::{MAX_MEMORY_BUDGET, MIN_MEMORY_BUDGET};
            size_in(s, MIN_MEMORY_BUDGET, MAX_MEMORY_BUDGET)
        })?
        .v;
    let sync_backlog_quota = l.get("sync_backlog_quota", |s| size_in(s, 0, u64::MAX))?.v;
    let sync_batch_entries = l
        .get("sync_batch_entries", |s| {
            let n = int_in(s, 1, 100_000)?;
            usize::try_from(n).map_err(|_| "too large for this platform".to_string())
        })?
        .v;
    let sync_batch_bytes = l
        .get("sync_batch_bytes", |s| {
            let n = size_in(s, 1024, 64 << 20)?;
            usize::try_from(n).map_err(|_| "too large for this platform".to_string())
        })?
        .v;
    let sync_timeout = l
        .get("sync_timeout", |s| {
            duration_in(s, Duration::from_millis(100), Duration::from_secs(600))
        })?
        .v;
    let (client_auth, insecure_no_auth, metrics_auth) =
        client_auth(l, read_file, &listen_client, &advertise_client)?;
    let join_token = match l.raw("join_token_file") {
        None => None,
        Some(raw) => {
            let (_, mut bytes) = read_named_file(read_file, "join token file", &raw)?;
            while bytes.last().is_some_and(u8::is_ascii_whitespace) {
                bytes.pop();
            }
            if bytes.is_empty() || bytes.iter().any(|b| !b.is_ascii_graphic()) {
                // Never echo the token.
                return Err(ConfigError::Rule(format!(
                    "the join token from {} must be one token (printable ASCII, no spaces)",
                    raw.at
                )));
            }
            Some(Secret(bytes))
        }
    };

    Ok(ServeConfig {
        id: id.v,
        cluster_id: cluster_id.v,
        data_dir: data_dir.v,
        listen_client: listen_client.v,
        listen_peer: listen_peer.v,
        advertise_client,
        advertise_peer,
        bootstrap,
        initial_cluster_state: initial_cluster_state.v,
        retention: retention.v,
        engine_sync: engine_sync.v,
        pd: pd.map(|p| p.v),
        site: site.map(|s| s.v),
        pd_tls,
        peer_secret,
        limits,
        raft,
        reserve_space,
        memory_budget,
        sync_backlog_quota,
        sync_batch_entries,
        sync_batch_bytes,
        sync_timeout,
        client_auth,
        insecure_no_auth,
        metrics_auth,
        join_token,
        client_tls: tls.client,
        trusted_ca: tls.trusted_ca,
        peer_tls: tls.peer,
        insecure_peer_no_auth: insecure_peer_no_auth.v,
    })
}

/// The settings of a group that were given, as the operator wrote them (`--peer-cert, KVS_RAFT_PEER_KEY`).
fn settings_given<const N: usize>(group: [Option<Val<PathBuf>>; N]) -> String {
    group
        .into_iter()
        .flatten()
        .map(|v| v.at.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Mutual TLS towards PD and TiKV: all three files or none, and only with `pd`.
fn pd_tls(
    l: &Layers<'_>,
    pd: Option<&Val<Vec<String>>>,
) -> Result<Option<raft_node::transport::TlsFiles>, ConfigError> {
    let path = |key| l.opt(key, |s: &str| Ok(PathBuf::from(s.trim())));
    match (path("pd_cacert")?, path("pd_cert")?, path("pd_key")?) {
        (None, None, None) => Ok(None),
        (Some(ca), Some(cert), Some(key)) => match pd {
            Some(_) => Ok(Some(raft_node::transport::TlsFiles {
                cert: cert.v,
                key: key.v,
                ca: ca.v,
            })),
            None => Err(ConfigError::Rule(format!(
                "{} is for the connection to the central TiKV, which only --pd turns on",
                ca.at
            ))),
        },
        (ca, cert, key) => {
            let given = settings_given([ca, cert, key]);
            Err(ConfigError::Rule(format!(
                "TLS towards PD and TiKV needs all of --pd-cacert, --pd-cert and --pd-key (tikv-client \
                 always presents a client certificate); only {given} given"
            )))
        }
    }
}

/// The TLS settings of both ports.
struct TlsSettings {
    client: Option<ClientTlsFiles>,
    trusted_ca: Option<PathBuf>,
    peer: Option<raft_node::transport::TlsFiles>,
}

fn tls_settings(l: &Layers<'_>, bootstrap: &Bootstrap) -> Result<TlsSettings, ConfigError> {
    let path = |key| l.opt(key, |s: &str| Ok(PathBuf::from(s.trim())));
    let (cert, key, ca) = (
        path("client_cert")?,
        path("client_key")?,
        path("client_ca")?,
    );
    let client = match (cert, key) {
        (Some(cert), Some(key)) => Some(ClientTlsFiles {
            cert: cert.v,
            key: key.v,
            ca: ca.as_ref().map(|ca| ca.v.clone()),
        }),
        (None, None) => {
            if let Some(ca) = &ca {
                return Err(ConfigError::Rule(format!(
                    "{} needs --client-cert and --client-key: client certificates are checked only over TLS",
                    ca.at
                )));
            }
            None
        }
        (Some(one), None) | (None, Some(one)) => {
            return Err(ConfigError::Rule(format!(
                "{} needs both --client-cert and --client-key",
                one.at
            )))
        }
    };
    let trusted_ca = path("trusted_ca_file")?
        .map(|t| t.v)
        .or_else(|| ca.map(|ca| ca.v));
    let join_https = matches!(bootstrap, Bootstrap::Join(url) if url.starts_with("https://"));
    if trusted_ca.is_none() && (client.is_some() || join_https) {
        return Err(ConfigError::Rule(
            "with TLS on the client port (--client-cert) or --join https://, set --trusted-ca-file (the CA \
             that signed the nodes' client-port certificates; nodes forward to the leader and join over \
             https) or --client-ca"
                .into(),
        ));
    }
    let peer = match (path("peer_cert")?, path("peer_key")?, path("peer_ca")?) {
        (None, None, None) => None,
        (Some(cert), Some(key), Some(ca)) => Some(raft_node::transport::TlsFiles {
            cert: cert.v,
            key: key.v,
            ca: ca.v,
        }),
        (cert, key, ca) => {
            let given = settings_given([cert, key, ca]);
            return Err(ConfigError::Rule(format!(
                "peer TLS needs all of --peer-cert, --peer-key and --peer-ca; only {given} given"
            )));
        }
    };
    Ok(TlsSettings {
        client,
        trusted_ca,
        peer,
    })
}

/// The client API's authentication: the token file (read and parsed here, so a malformed one stops the
/// start with its line number), and the rule that a client address others can reach needs it.
fn client_auth(
    l: &Layers<'_>,
    read_file: &dyn Fn(&Path) -> io::Result<Vec<u8>>,
    listen_client: &Val<SocketAddr>,
    advertise_client: &str,
) -> Result<(Option<ClientAuth>, bool, MetricsAccess), ConfigError> {
    let insecure = l.get("insecure_no_auth", boolean)?;
    let metrics = l.get("metrics_auth", |s| {
        MetricsAccess::parse(s.trim()).ok_or_else(|| "expected `open` or `read`".to_string())
    })?;
    let auth = match l.raw("auth_token_file") {
        None => None,
        Some(raw) => {
            let (file, bytes) = read_named_file(read_file, "token file", &raw)?;
            let tokens = Tokens::parse(&bytes).map_err(|e| ConfigError::Invalid {
                setting: raw.at.clone(),
                value: raw.value.clone(),
                reason: format!("the token file is malformed: {e}"),
            })?;
            Some((ClientAuth { file, tokens }, raw.at))
        }
    };
    if let (Some((_, file_at)), true) = (&auth, insecure.v) {
        return Err(ConfigError::Rule(format!(
            "{file_at} turns client auth on and {} turns it off: give one of them",
            insecure.at
        )));
    }
    let reachable = !listen_client.v.ip().is_loopback() || !is_loopback_host(advertise_client);
    if auth.is_none() && !insecure.v && reachable {
        return Err(ConfigError::Rule(format!(
            "the client API ({} {}, advertised as {advertise_client}) is reachable from other hosts, so \
             clients must authenticate: set --auth-token-file (tokens from `kvs-raft token create`; see \
             docs/security.md), or --insecure-no-auth to serve it open anyway",
            listen_client.at, listen_client.v
        )));
    }
    Ok((auth.map(|(a, _)| a), insecure.v, metrics.v))
}

/// The file a setting names, and its contents.
fn read_named_file(
    read_file: &dyn Fn(&Path) -> io::Result<Vec<u8>>,
    what: &'static str,
    raw: &Raw,
) -> Result<(PathBuf, Vec<u8>), ConfigError> {
    let path = PathBuf::from(&raw.value);
    let bytes = read_file(&path).map_err(|source| ConfigError::Read {
        what,
        path: path.clone(),
        source,
    })?;
    Ok((path, bytes))
}

/// The advertised address when none is given: the listen address, unless that is 0.0.0.0/[::] or port 0.
fn derived_advertise(
    listen: &Val<SocketAddr>,
    advertise_key: &'static str,
) -> Result<String, ConfigError> {
    let flag = format!("--{}", advertise_key.replace('_', "-"));
    if listen.v.ip().is_unspecified() {
        return Err(ConfigError::Rule(format!(
            "{} {} listens on every interface, so it is not an address others can dial: set {flag}",
            listen.at, listen.v
        )));
    }
    if listen.v.port() == 0 {
        return Err(ConfigError::Rule(format!(
            "{} {} has no fixed port to advertise: set {flag}",
            listen.at, listen.v
        )));
    }
    Ok(listen.v.to_string())
}

fn secret(mut bytes: Vec<u8>, at: &Setting) -> Result<Secret, ConfigError> {
    while bytes.last().is_some_and(u8::is_ascii_whitespace) {
        bytes.pop();
    }
    if bytes.len() < MIN_SECRET_BYTES {
        // Never echo the secret.
        return Err(ConfigError::Rule(format!(
            "the peer secret from {at} has {} bytes; use at least {MIN_SECRET_BYTES} \
             (e.g. `head -c 32 /dev/urandom | base64`)",
            bytes.len()
        )));
    }
    Ok(Secret(bytes))
}

fn limits(l: &Layers<'_>) -> Result<Limits, ConfigError> {
    let size_usize = |max: u64| {
        move |s: &str| {
            let n = size_in(s, 1, max)?;
            usize::try_from(n).map_err(|_| "too large for this platform".to_string())
        }
    };
    let count = |s: &str| {
        let n = int_in(s, 1, 100_000_000)?;
        usize::try_from(n).map_err(|_| "too large for this platform".to_string())
    };
    let timeout = |s: &str| duration_in(s, Duration::from_millis(1), Duration::from_secs(3600));

    let max_key_bytes = l.get("max_key_bytes", size_usize(64 << 10))?;
    let max_value_bytes = l.get("max_value_bytes", size_usize(64 << 20))?;
    let max_body_bytes = l.get("max_body_bytes", |s| size_in(s, 1, 1 << 30))?;
    if u64::try_from(max_value_bytes.v).unwrap_or(u64::MAX) > max_body_bytes.v {
        return Err(ConfigError::Rule(format!(
            "{} ({}) exceeds {} ({}): a value that large could never be sent",
            max_value_bytes.at, max_value_bytes.v, max_body_bytes.at, max_body_bytes.v
        )));
    }
    Ok(Limits {
        max_key: max_key_bytes.v,
        max_value: max_value_bytes.v,
        max_body: max_body_bytes.v,
        max_connections: l.get("max_connections", count)?.v,
        header_read_timeout: l.get("header_read_timeout", timeout)?.v,
        body_read_timeout: l.get("body_read_timeout", timeout)?.v,
        request_timeout: l.get("request_timeout", timeout)?.v,
        max_inflight_proposals: l.get("max_inflight_proposals", count)?.v,
        max_scan_bytes: l.get("max_scan_bytes", size_usize(1 << 30))?.v,
        ..Limits::default()
    })
}

/// Room in a Raft entry besides one put's key and value (the entry and command encodings), with margin.
const ENTRY_OVERHEAD: usize = 1024;

fn raft_tuning(l: &Layers<'_>, limits: &Limits) -> Result<RaftTuning, ConfigError> {
    let ticks = |s: &str| {
        let n = int_in(s, 1, 1000)?;
        usize::try_from(n).map_err(|_| "too large for this platform".to_string())
    };
    let tick = l.get("tick", |s| {
        duration_in(s, Duration::from_millis(1), Duration::from_secs(10))
    })?;
    let election_ticks = l.get("election_ticks", ticks)?;
    let heartbeat_ticks = l.get("heartbeat_ticks", ticks)?;
    if election_ticks.v <= heartbeat_ticks.v {
        return Err(ConfigError::Rule(format!(
            "{} ({}) must be greater than {} ({}): followers would start elections between heartbeats",
            election_ticks.at, election_ticks.v, heartbeat_ticks.at, heartbeat_ticks.v
        )));
    }
    let max_entry = l.get("max_entry_bytes", |s| {
        let max = raft_node::max_entry_bytes(raft_node::transport::DEFAULT_MAX_FRAME);
        let n = size_in(s, 64 << 10, u64::try_from(max).unwrap_or(u64::MAX))?;
        usize::try_from(n).map_err(|_| "too large for this platform".to_string())
    })?;
    let one_put = limits
        .max_value
        .saturating_add(limits.max_key)
        .saturating_add(ENTRY_OVERHEAD);
    if max_entry.v < one_put {
        return Err(ConfigError::Rule(format!(
            "{} ({}) is below the largest put (max_value_bytes {} + max_key_bytes {} + {ENTRY_OVERHEAD} \
             bytes of encoding): a value of the maximum size could never be written",
            max_entry.at, max_entry.v, limits.max_value, limits.max_key
        )));
    }
    Ok(RaftTuning {
        timing: Timing {
            tick: tick.v,
            election_ticks: election_ticks.v,
            heartbeat_ticks: heartbeat_ticks.v,
        },
        lease_margin_percent: l
            .get("lease_margin_percent", |s| {
                let n = int_in(s, 1, 50)?;
                u8::try_from(n).map_err(|_| "too large".to_string())
            })?
            .v,
        compact_log_entries: l.get("compact_log_entries", |s| int_in(s, 1, u64::MAX))?.v,
        compact_log_bytes: l.get("compact_log_bytes", |s| size_in(s, 1, u64::MAX))?.v,
        max_entry_bytes: max_entry.v,
        max_peer_connections: l
            .get("max_peer_connections", |s| {
                let n = int_in(s, 1, 100_000)?;
                usize::try_from(n).map_err(|_| "too large for this platform".to_string())
            })?
            .v,
        max_clock_skew: l
            .get("max_clock_skew", |s| {
                duration_in(s, Duration::from_millis(1), Duration::from_secs(3600))
            })?
            .v,
    })
}
