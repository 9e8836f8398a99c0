//! The TOML file's shape: every key optional, unknown keys refused, values turned into the common string
//! form every layer shares.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::Deserialize;

use super::ConfigError;

/// The file's shape. Integers where TOML has them, strings for durations and addresses; sizes take both.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    id: Option<u64>,
    cluster_id: Option<String>,
    data_dir: Option<String>,
    listen_client: Option<String>,
    listen_peer: Option<String>,
    initial_cluster: Option<ClusterValue>,
    join: Option<String>,
    initial_cluster_state: Option<String>,
    advertise_client: Option<String>,
    advertise_peer: Option<String>,
    retention: Option<String>,
    engine_sync: Option<String>,
    pd: Option<ListValue>,
    site: Option<String>,
    pd_cacert: Option<String>,
    pd_cert: Option<String>,
    pd_key: Option<String>,
    peer_secret_file: Option<String>,
    max_key_bytes: Option<SizeValue>,
    max_value_bytes: Option<SizeValue>,
    max_body_bytes: Option<SizeValue>,
    max_connections: Option<u64>,
    header_read_timeout: Option<String>,
    body_read_timeout: Option<String>,
    request_timeout: Option<String>,
    max_inflight_proposals: Option<u64>,
    max_scan_bytes: Option<SizeValue>,
    compact_log_entries: Option<u64>,
    compact_log_bytes: Option<SizeValue>,
    max_entry_bytes: Option<SizeValue>,
    max_peer_connections: Option<u64>,
    max_clock_skew: Option<String>,
    reserve_space: Option<SizeValue>,
    memory_budget: Option<SizeValue>,
    sync_backlog_quota: Option<SizeValue>,
    sync_batch_entries: Option<u64>,
    sync_batch_bytes: Option<SizeValue>,
    sync_timeout: Option<String>,
    tick: Option<String>,
    election_ticks: Option<u64>,
    heartbeat_ticks: Option<u64>,
    lease_margin_percent: Option<u64>,
    auth_token_file: Option<String>,
    insecure_no_auth: Option<bool>,
    metrics_auth: Option<String>,
    join_token_file: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    client_ca: Option<String>,
    trusted_ca_file: Option<String>,
    peer_cert: Option<String>,
    peer_key: Option<String>,
    peer_ca: Option<String>,
    insecure_peer_no_auth: Option<bool>,
}

/// `"1=a:7380,2=b:7380"` or a table `{ 1 = "a:7380", 2 = "b:7380" }`.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a string \"1=host:port,...\" or a table of id = \"host:port\""
)]
enum ClusterValue {
    Text(String),
    Table(BTreeMap<String, String>),
}

/// `"a:2379,b:2379"` or `["a:2379", "b:2379"]`.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a string \"host:port,...\" or an array of \"host:port\""
)]
enum ListValue {
    Text(String),
    List(Vec<String>),
}

/// `4194304` or `"4MiB"`.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a byte count (integer) or a size string such as \"4MiB\""
)]
enum SizeValue {
    Int(u64),
    Text(String),
}

impl FileConfig {
    /// The file's values in the common string form every layer shares.
    pub(super) fn into_values(self) -> BTreeMap<&'static str, String> {
        let cluster = self.initial_cluster.map(|c| match c {
            ClusterValue::Text(s) => s,
            ClusterValue::Table(t) => t
                .into_iter()
                .map(|(id, addr)| format!("{id}={addr}"))
                .collect::<Vec<_>>()
                .join(","),
        });
        let list = |l: ListValue| match l {
            ListValue::Text(s) => s,
            ListValue::List(v) => v.join(","),
        };
        let size = |s: SizeValue| match s {
            SizeValue::Int(n) => n.to_string(),
            SizeValue::Text(s) => s,
        };
        let int = |n: u64| n.to_string();
        let entries: [(&'static str, Option<String>); 54] = [
            ("id", self.id.map(int)),
            ("cluster_id", self.cluster_id),
            ("data_dir", self.data_dir),
            ("listen_client", self.listen_client),
            ("listen_peer", self.listen_peer),
            ("initial_cluster", cluster),
            ("join", self.join),
            ("initial_cluster_state", self.initial_cluster_state),
            ("advertise_client", self.advertise_client),
            ("advertise_peer", self.advertise_peer),
            ("retention", self.retention),
            ("engine_sync", self.engine_sync),
            ("pd", self.pd.map(list)),
            ("site", self.site),
            ("pd_cacert", self.pd_cacert),
            ("pd_cert", self.pd_cert),
            ("pd_key", self.pd_key),
            ("peer_secret_file", self.peer_secret_file),
            ("max_key_bytes", self.max_key_bytes.map(size)),
            ("max_value_bytes", self.max_value_bytes.map(size)),
            ("max_body_bytes", self.max_body_bytes.map(size)),
            ("max_connections", self.max_connections.map(int)),
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("request_timeout", self.request_timeout),
            (
                "max_inflight_proposals",
                self.max_inflight_proposals.map(int),
            ),
            ("max_scan_bytes", self.max_scan_bytes.map(size)),
            ("compact_log_entries", self.compact_log_entries.map(int)),
            ("compact_log_bytes", self.compact_log_bytes.map(size)),
            ("max_entry_bytes", self.max_entry_bytes.map(size)),
            ("max_peer_connections", self.max_peer_connections.map(int)),
            ("max_clock_skew", self.max_clock_skew),
            ("reserve_space", self.reserve_space.map(size)),
            ("memory_budget", self.memory_budget.map(size)),
            ("sync_backlog_quota", self.sync_backlog_quota.map(size)),
            ("sync_batch_entries", self.sync_batch_entries.map(int)),
            ("sync_batch_bytes", self.sync_batch_bytes.map(size)),
            ("sync_timeout", self.sync_timeout),
            ("tick", self.tick),
            ("election_ticks", self.election_ticks.map(int)),
            ("heartbeat_ticks", self.heartbeat_ticks.map(int)),
            ("lease_margin_percent", self.lease_margin_percent.map(int)),
            ("auth_token_file", self.auth_token_file),
            (
                "insecure_no_auth",
                self.insecure_no_auth.map(|b| b.to_string()),
            ),
            ("metrics_auth", self.metrics_auth),
            ("join_token_file", self.join_token_file),
            ("client_cert", self.client_cert),
            ("client_key", self.client_key),
            ("client_ca", self.client_ca),
            ("trusted_ca_file", self.trusted_ca_file),
            ("peer_cert", self.peer_cert),
            ("peer_key", self.peer_key),
            ("peer_ca", self.peer_ca),
            (
                "insecure_peer_no_auth",
                self.insecure_peer_no_auth.map(|b| b.to_string()),
            ),
        ];
        entries
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    }
}

pub(super) fn load_file(
    path: &Path,
    read_file: &dyn Fn(&Path) -> io::Result<Vec<u8>>,
) -> Result<BTreeMap<&'static str, String>, ConfigError> {
    let bytes = read_file(path).map_err(|source| ConfigError::Read {
        what: "config file",
        path: path.to_path_buf(),
        source,
    })?;
    let file_error = |message: String| ConfigError::File {
        path: path.to_path_buf(),
        message,
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| file_error(format!("not UTF-8: {e}")))?;
    let parsed: FileConfig = toml::from_str(text).map_err(|e| file_error(e.to_string()))?;
    Ok(parsed.into_values())
}
