//! The builder's rules, precedence and defaults, driven through fake environments and files.

use super::file::FileConfig;
use super::values::{duration, size};
use super::*;
use crate::http::auth::{Role, TokenEntry};
use std::collections::HashMap;

const SECRET: &str = "0123456789abcdef-shared";

/// A fake world: environment variables and files.
#[derive(Default)]
struct World {
    env: HashMap<String, String>,
    files: HashMap<PathBuf, Vec<u8>>,
}

impl World {
    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }
    fn file(mut self, path: &str, text: &str) -> Self {
        self.files.insert(path.into(), text.as_bytes().to_vec());
        self
    }
    fn build(&self, args: ServeArgs) -> Result<ServeConfig, ConfigError> {
        ServeConfig::from_sources(args, &|k| self.env.get(k).cloned(), &|p| {
            self.files
                .get(p)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        })
    }
    fn err(&self, args: ServeArgs) -> String {
        match self.build(args) {
            Ok(cfg) => panic!("expected an error, got {cfg:?}"),
            Err(e) => e.to_string(),
        }
    }
}

fn none() -> World {
    World::default()
}

fn args() -> ServeArgs {
    ServeArgs::default()
}

fn three(id: u64) -> ServeArgs {
    ServeArgs {
        id: Some(id),
        cluster_id: Some("site-a".into()),
        listen_client: Some(format!("127.0.0.1:{}", 7377 + 2 * id)),
        listen_peer: Some(format!("127.0.0.1:{}", 7378 + 2 * id)),
        initial_cluster: Some("1=127.0.0.1:7380,2=127.0.0.1:7382,3=127.0.0.1:7384".into()),
        ..args()
    }
}

fn assert_contains(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "{text:?} does not contain {p:?}");
    }
}

#[test]
fn config_dev_default_without_any_flag() {
    let cfg = none().build(args()).unwrap();
    assert_eq!(
        cfg,
        ServeConfig {
            id: 1,
            cluster_id: "dev".into(),
            data_dir: PathBuf::from("./kvs-data"),
            listen_client: "127.0.0.1:7379".parse().unwrap(),
            listen_peer: "127.0.0.1:7380".parse().unwrap(),
            advertise_client: "127.0.0.1:7379".into(),
            advertise_peer: "127.0.0.1:7380".into(),
            bootstrap: Bootstrap::InitialCluster(BTreeMap::from([(1, "127.0.0.1:7380".into())])),
            initial_cluster_state: ClusterState::New,
            retention: Duration::from_secs(5),
            engine_sync: SyncMode::Batch,
            pd: None,
            site: None,
            pd_tls: None,
            peer_secret: None,
            limits: Limits {
                max_key: 4096,
                max_value: 1 << 20,
                max_body: 4 << 20,
                max_connections: 4096,
                header_read_timeout: Duration::from_secs(5),
                body_read_timeout: Duration::from_secs(10),
                request_timeout: Duration::from_secs(5),
                max_inflight_proposals: 20_000,
                max_scan_bytes: 4 << 20,
                ..Limits::default()
            },
            raft: RaftTuning {
                timing: Timing {
                    tick: Duration::from_millis(20),
                    election_ticks: 12,
                    heartbeat_ticks: 2,
                },
                lease_margin_percent: 10,
                compact_log_entries: 10_000,
                compact_log_bytes: 64 << 20,
                max_entry_bytes: 8 << 20,
                max_peer_connections: 64,
                max_clock_skew: Duration::from_secs(1),
            },
            reserve_space: 1 << 30,
            memory_budget: 32 << 20,
            sync_backlog_quota: 1 << 30,
            sync_batch_entries: 256,
            sync_batch_bytes: 1 << 20,
            sync_timeout: Duration::from_secs(5),
            client_auth: None,
            insecure_no_auth: false,
            metrics_auth: MetricsAccess::Open,
            join_token: None,
            client_tls: None,
            trusted_ca: None,
            peer_tls: None,
            insecure_peer_no_auth: false,
        }
    );
}

#[test]
fn config_three_node_cluster_from_flags() {
    let cfg = none().build(three(2)).unwrap();
    assert_eq!(cfg.id, 2);
    assert_eq!(cfg.cluster_id, "site-a");
    assert_eq!(cfg.advertise_peer, "127.0.0.1:7382");
    assert_eq!(cfg.advertise_client, "127.0.0.1:7381");
    let Bootstrap::InitialCluster(members) = &cfg.bootstrap else {
        panic!("{:?}", cfg.bootstrap)
    };
    assert_eq!(members.len(), 3);
    assert_eq!(members[&3], "127.0.0.1:7384");
}

#[test]
fn config_precedence_file_then_env_then_flag() {
    let world = none()
        .file(
            "/etc/kvs.toml",
            "retention = \"10s\"\nengine_sync = \"always\"\ntick = \"50ms\"\n",
        )
        .env("KVS_RAFT_RETENTION", "20s")
        .env("KVS_RAFT_TICK", "");
    let with_file = |a: ServeArgs| ServeArgs {
        config: Some("/etc/kvs.toml".into()),
        ..a
    };
    // Flag beats env beats file beats default.
    let cfg = world
        .build(with_file(ServeArgs {
            retention: Some("30s".into()),
            ..args()
        }))
        .unwrap();
    assert_eq!(cfg.retention, Duration::from_secs(30));
    let cfg = world.build(with_file(args())).unwrap();
    assert_eq!(cfg.retention, Duration::from_secs(20));
    assert_eq!(cfg.engine_sync, SyncMode::Always, "from the file");
    assert_eq!(
        cfg.raft.timing.tick,
        Duration::from_millis(50),
        "empty env = unset"
    );
    let cfg = none()
        .file("/etc/kvs.toml", "retention = \"10s\"")
        .build(with_file(args()))
        .unwrap();
    assert_eq!(cfg.retention, Duration::from_secs(10));
    // The flag --engine-sync beats the file.
    let cfg = world
        .build(with_file(ServeArgs {
            engine_sync: Some(SyncMode::Batch),
            ..args()
        }))
        .unwrap();
    assert_eq!(cfg.engine_sync, SyncMode::Batch);
}

#[test]
fn config_file_named_by_env_and_overridden_values_are_not_validated() {
    let world = none()
        .file("/a.toml", "id = 7\ncluster_id = \"from-file\"")
        .env("KVS_RAFT_CONFIG", "/a.toml")
        .env("KVS_RAFT_CLUSTER_ID", "bad id!");
    assert_contains(
        &world.err(args()),
        &["\"bad id!\"", "KVS_RAFT_CLUSTER_ID", "1 to 64"],
    );
    let cfg = world
        .build(ServeArgs {
            cluster_id: Some("from-flag".into()),
            ..args()
        })
        .unwrap();
    assert_eq!((cfg.id, cfg.cluster_id.as_str()), (7, "from-flag"));
    // --config beats KVS_RAFT_CONFIG.
    let err = world.err(ServeArgs {
        config: Some("/missing.toml".into()),
        ..args()
    });
    assert_contains(&err, &["cannot read config file /missing.toml"]);
}

#[test]
fn config_file_with_every_key() {
    let text = r#"
        id = 3
        cluster_id = "site-b"
        data_dir = "/var/lib/kvs-raft"
        listen_client = "0.0.0.0:7379"
        listen_peer = "0.0.0.0:7380"
        advertise_client = "node3:7379"
        [initial_cluster]
        1 = "node1:7380"
        2 = "node2:7380"
        3 = "node3:7380"
    "#;
    // Top-level keys must come before the table in TOML; the rest goes in a second file variant.
    let rest = r#"
        retention = "2m"
        engine_sync = "always"
        pd = ["pd1:2379", "pd2:2379"]
        site = "site-b"
        peer_secret_file = "/etc/kvs/secret"
        max_key_bytes = 1024
        max_value_bytes = "512KiB"
        max_body_bytes = "2MiB"
        max_connections = 100
        header_read_timeout = "2s"
        body_read_timeout = "7s"
        request_timeout = "3s"
        max_inflight_proposals = 500
        max_scan_bytes = "1MiB"
        compact_log_entries = 42
        compact_log_bytes = "1MB"
        max_entry_bytes = "2MiB"
        max_peer_connections = 9
        max_clock_skew = "250ms"
        tick = "20ms"
        election_ticks = 20
        heartbeat_ticks = 2
        lease_margin_percent = 20
        auth_token_file = "/etc/kvs/tokens"
        metrics_auth = "read"
    "#;
    let world = none()
        .file("/k.toml", &format!("{rest}\n{text}"))
        .file("/etc/kvs/secret", &format!("{SECRET}\n"))
        .file("/etc/kvs/tokens", &token_line("ops", Role::Admin, "t-ops"));
    let cfg = world
        .build(ServeArgs {
            config: Some("/k.toml".into()),
            ..args()
        })
        .unwrap();
    assert_eq!(cfg.id, 3);
    assert_eq!(cfg.data_dir, PathBuf::from("/var/lib/kvs-raft"));
    assert_eq!(
        cfg.advertise_peer, "node3:7380",
        "from its initial-cluster entry"
    );
    assert_eq!(cfg.advertise_client, "node3:7379");
    assert_eq!(cfg.retention, Duration::from_secs(120));
    assert_eq!(
        cfg.pd,
        Some(vec!["pd1:2379".to_string(), "pd2:2379".to_string()])
    );
    assert_eq!(cfg.site.as_deref(), Some("site-b"));
    assert_eq!(
        cfg.peer_secret.as_ref().unwrap().expose(),
        SECRET.as_bytes()
    );
    assert_eq!(
        cfg.limits,
        Limits {
            max_key: 1024,
            max_value: 512 << 10,
            max_body: 2 << 20,
            max_connections: 100,
            header_read_timeout: Duration::from_secs(2),
            body_read_timeout: Duration::from_secs(7),
            request_timeout: Duration::from_secs(3),
            max_inflight_proposals: 500,
            max_scan_bytes: 1 << 20,
            ..Limits::default()
        }
    );
    assert_eq!(
        cfg.raft,
        RaftTuning {
            timing: Timing {
                tick: Duration::from_millis(20),
                election_ticks: 20,
                heartbeat_ticks: 2,
            },
            lease_margin_percent: 20,
            compact_log_entries: 42,
            compact_log_bytes: 1_000_000,
            max_entry_bytes: 2 << 20,
            max_peer_connections: 9,
            max_clock_skew: Duration::from_millis(250),
        }
    );
    let auth = cfg.client_auth.expect("auth on");
    assert_eq!(auth.file, PathBuf::from("/etc/kvs/tokens"));
    assert_eq!(
        auth.tokens.find(b"t-ops").map(|e| e.role),
        Some(Role::Admin)
    );
    assert_eq!(cfg.metrics_auth, MetricsAccess::Read);
}

#[test]
fn config_file_unknown_keys_and_bad_types_are_refused() {
    let with = |text: &str| {
        none().file("/c.toml", text).err(ServeArgs {
            config: Some("/c.toml".into()),
            ..args()
        })
    };
    assert_contains(
        &with("retentoin = \"5s\""),
        &["config file /c.toml", "unknown field `retentoin`"],
    );
    assert_contains(
        &with("peer_secret = \"x\""),
        &["unknown field `peer_secret`"],
    );
    assert_contains(&with("id = \"one\""), &["config file /c.toml", "id"]);
    assert_contains(&with("id = 1\nid = 2"), &["config file /c.toml"]);
    assert_contains(&with("max_body_bytes = true"), &["size string"]);
}

#[test]
fn config_id_must_be_at_least_one() {
    let err = none().err(ServeArgs {
        id: Some(0),
        ..args()
    });
    assert_contains(&err, &["\"0\"", "--id", "≥ 1"]);
    assert_contains(
        &none().env("KVS_RAFT_ID", "x").err(args()),
        &["KVS_RAFT_ID", "integer"],
    );
}

#[test]
fn config_id_must_be_in_the_initial_cluster() {
    let err = none().err(ServeArgs {
        listen_peer: Some("127.0.0.1:7386".into()),
        ..three(4)
    });
    assert_contains(
        &err,
        &[
            "--id 4 is not a member of --initial-cluster",
            "1, 2, 3",
            "--join",
        ],
    );
}

#[test]
fn config_initial_cluster_syntax_and_duplicates() {
    let with = |ic: &str| {
        none().err(ServeArgs {
            initial_cluster: Some(ic.into()),
            ..three(1)
        })
    };
    assert_contains(
        &with("1=127.0.0.1:7380,2=127.0.0.1:7380"),
        &["same address"],
    );
    assert_contains(
        &with("1=127.0.0.1:7380,1=127.0.0.1:7382"),
        &["id 1 is listed twice"],
    );
    assert_contains(
        &with("1=127.0.0.1:7380,127.0.0.1:7382"),
        &["not ID=HOST:PORT"],
    );
    assert_contains(&with("1=127.0.0.1:7380,0=127.0.0.1:7382"), &["id", "≥ 1"]);
    assert_contains(&with("1=127.0.0.1:7380,2=node2"), &["HOST:PORT"]);
    assert_contains(&with("1=127.0.0.1:7380,2=node2:0"), &["bad port"]);
    assert_contains(
        &with("1=127.0.0.1:7380,2=0.0.0.0:7382"),
        &["cannot be dialed"],
    );
    assert_contains(&with("1=127.0.0.1:7380,2=bad host:1"), &["bad host"]);
    assert_contains(&with(""), &["not ID=HOST:PORT"]);
    // Host names and IPv6 are fine.
    let cfg = none()
        .build(ServeArgs {
            initial_cluster: Some(
                "1=127.0.0.1:7380, 2=node-2.example:7380,3=[fd00::3]:7380".into(),
            ),
            ..three(1)
        })
        .unwrap();
    let Bootstrap::InitialCluster(m) = cfg.bootstrap else {
        panic!()
    };
    assert_eq!(m[&2], "node-2.example:7380");
    assert_eq!(m[&3], "[fd00::3]:7380");
}

#[test]
fn config_own_entry_must_match_listen_or_advertise_peer() {
    // Node 2 listening on node 1's port: a copy-paste slip.
    let err = none().err(ServeArgs {
        listen_peer: Some("127.0.0.1:7380".into()),
        listen_client: Some("127.0.0.1:7381".into()),
        ..three(2)
    });
    assert_contains(
        &err,
        &["entry 2=127.0.0.1:7382", "--listen-peer 127.0.0.1:7380"],
    );
    let err = none().err(ServeArgs {
        advertise_peer: Some("127.0.0.1:9999".into()),
        ..three(2)
    });
    assert_contains(
        &err,
        &[
            "--advertise-peer 127.0.0.1:9999 differs",
            "2=127.0.0.1:7382",
        ],
    );
    // Behind NAT: an explicit matching advertise address allows any listen address.
    let cfg = none()
        .build(ServeArgs {
            listen_peer: Some("127.0.0.1:9000".into()),
            advertise_peer: Some("127.0.0.1:7382".into()),
            ..three(2)
        })
        .unwrap();
    assert_eq!(cfg.advertise_peer, "127.0.0.1:7382");
}

#[test]
fn config_join_and_initial_cluster_are_exclusive_in_one_layer() {
    let err = none().err(ServeArgs {
        join: Some("http://127.0.0.1:7379".into()),
        ..three(1)
    });
    assert_contains(&err, &["--initial-cluster and --join are exclusive"]);
    // Across layers, the higher one decides: --join overrides the file's initial cluster.
    let world = none().file(
        "/c.toml",
        "initial_cluster = \"1=127.0.0.1:7380,2=127.0.0.1:7382\"",
    );
    let cfg = world
        .build(ServeArgs {
            config: Some("/c.toml".into()),
            id: Some(4),
            join: Some("http://127.0.0.1:7379/".into()),
            ..args()
        })
        .unwrap();
    assert_eq!(
        cfg.bootstrap,
        Bootstrap::Join("http://127.0.0.1:7379".into())
    );
    assert_eq!(cfg.advertise_peer, "127.0.0.1:7380");
}

#[test]
fn config_join_url_syntax() {
    let with = |url: &str| {
        none().err(ServeArgs {
            id: Some(4),
            join: Some(url.into()),
            ..args()
        })
    };
    assert_contains(&with("127.0.0.1:7379"), &["--join", "client URL"]);
    assert_contains(&with("ftp://127.0.0.1:7379"), &["not http or https"]);
    assert_contains(&with("http://127.0.0.1"), &["bad address"]);
    assert_contains(&with("http://h:1/v1"), &["bad"]);
    let cfg = none()
        .build(ServeArgs {
            id: Some(4),
            join: Some("https://node1:7379".into()),
            // https needs a CA to verify the member (config_tls_files_come_in_complete_sets).
            trusted_ca_file: Some("/ca.pem".into()),
            ..args()
        })
        .unwrap();
    assert_eq!(cfg.bootstrap, Bootstrap::Join("https://node1:7379".into()));
}

#[test]
fn config_unspecified_listen_needs_advertise() {
    let world = none()
        .env("KVS_RAFT_PEER_SECRET", SECRET)
        .env("KVS_RAFT_INSECURE_NO_AUTH", "true");
    let err = world.err(ServeArgs {
        listen_client: Some("0.0.0.0:7379".into()),
        ..args()
    });
    assert_contains(
        &err,
        &["--listen-client 0.0.0.0:7379", "set --advertise-client"],
    );
    let err = world.err(ServeArgs {
        listen_peer: Some("[::]:7380".into()),
        ..args()
    });
    assert_contains(&err, &["--listen-peer [::]:7380", "set --advertise-peer"]);
    let cfg = world
        .build(ServeArgs {
            listen_client: Some("0.0.0.0:7379".into()),
            listen_peer: Some("0.0.0.0:7380".into()),
            advertise_client: Some("node1:7379".into()),
            advertise_peer: Some("node1:7380".into()),
            ..args()
        })
        .unwrap();
    assert_eq!(cfg.advertise_client, "node1:7379");
    assert_eq!(
        cfg.bootstrap,
        Bootstrap::InitialCluster(BTreeMap::from([(1, "node1:7380".into())]))
    );
    // With an initial cluster, the node's entry is its advertised peer address.
    let cfg = world
        .build(ServeArgs {
            listen_peer: Some("0.0.0.0:7382".into()),
            ..three(2)
        })
        .unwrap();
    assert_eq!(cfg.advertise_peer, "127.0.0.1:7382");
    assert_contains(
        &world.err(ServeArgs {
            advertise_client: Some("0.0.0.0:7379".into()),
            ..args()
        }),
        &["--advertise-client", "cannot be dialed"],
    );
}

#[test]
fn config_listen_addresses() {
    assert_contains(
        &none().err(ServeArgs {
            listen_client: Some("localhost:7379".into()),
            ..args()
        }),
        &["--listen-client", "not a host name"],
    );
    assert_contains(
        &none().err(ServeArgs {
            listen_client: Some("127.0.0.1:7380".into()),
            ..args()
        }),
        &["different addresses"],
    );
    assert_contains(
        &none().err(ServeArgs {
            listen_client: Some("127.0.0.1:0".into()),
            ..args()
        }),
        &["no fixed port", "--advertise-client"],
    );
}

#[test]
fn config_cluster_id_and_site_names() {
    for bad in ["", "a b", "é", &"x".repeat(65), "a/b"] {
        assert_contains(
            &none().err(ServeArgs {
                cluster_id: Some(bad.into()),
                ..args()
            }),
            &["--cluster-id", "1 to 64"],
        );
    }
    assert_contains(
        &none().err(ServeArgs {
            site: Some("site a".into()),
            ..args()
        }),
        &["--site"],
    );
    let cfg = none()
        .build(ServeArgs {
            cluster_id: Some("Site_A.1-x".into()),
            site: Some("s".repeat(64)),
            ..args()
        })
        .unwrap();
    assert_eq!(cfg.cluster_id, "Site_A.1-x");
}

#[test]
fn config_durations() {
    assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
    assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(duration("250us"), Ok(Duration::from_micros(250)));
    assert_eq!(duration(" 7 s "), Ok(Duration::from_secs(7)));
    for bad in [
        "5",
        "",
        "s",
        "5x",
        "-5s",
        "1.5s",
        "5 seconds",
        "99999999999999999999s",
    ] {
        assert!(duration(bad).is_err(), "{bad:?}");
    }
    assert!(duration("99999999999999999h").is_err());
    assert_contains(
        &none().err(ServeArgs {
            retention: Some("5x".into()),
            ..args()
        }),
        &["\"5x\"", "--retention", "500ms, 5s or 2m"],
    );
    assert_contains(
        &none().err(ServeArgs {
            retention: Some("2d".into()),
            ..args()
        }),
        &["--retention"],
    );
    assert_contains(
        &none().env("KVS_RAFT_RETENTION", "25h").err(args()),
        &["KVS_RAFT_RETENTION", "must be from"],
    );
    assert_contains(
        &none().env("KVS_RAFT_TICK", "0ms").err(args()),
        &["KVS_RAFT_TICK", "must be from"],
    );
}

#[test]
fn config_sizes() {
    assert_eq!(size("1024"), Ok(1024));
    assert_eq!(size("4MiB"), Ok(4 << 20));
    assert_eq!(size("64 KiB"), Ok(64 << 10));
    assert_eq!(size("1GiB"), Ok(1 << 30));
    assert_eq!(size("2MB"), Ok(2_000_000));
    assert_eq!(size("7B"), Ok(7));
    for bad in [
        "",
        "MiB",
        "4mib",
        "4 M",
        "-1",
        "1.5MiB",
        "99999999999999GiB",
    ] {
        assert!(size(bad).is_err(), "{bad:?}");
    }
    let world = none()
        .env("KVS_RAFT_MAX_VALUE_BYTES", "8MiB")
        .env("KVS_RAFT_MAX_BODY_BYTES", "4MiB");
    assert_contains(
        &world.err(args()),
        &["KVS_RAFT_MAX_VALUE_BYTES (8388608) exceeds KVS_RAFT_MAX_BODY_BYTES"],
    );
    assert_contains(
        &none().env("KVS_RAFT_MAX_KEY_BYTES", "0").err(args()),
        &["KVS_RAFT_MAX_KEY_BYTES", "must be from 1"],
    );
    // One Raft entry must hold the largest put, and fit the peer transport's frame.
    assert_contains(
        &none().env("KVS_RAFT_MAX_ENTRY_BYTES", "1MiB").err(args()),
        &["KVS_RAFT_MAX_ENTRY_BYTES (1048576) is below the largest put"],
    );
    assert_contains(
        &none().env("KVS_RAFT_MAX_ENTRY_BYTES", "9MiB").err(args()),
        &["KVS_RAFT_MAX_ENTRY_BYTES"],
    );
    let cfg = none()
        .env("KVS_RAFT_MAX_ENTRY_BYTES", "2MiB")
        .build(args())
        .unwrap();
    assert_eq!(cfg.raft.max_entry_bytes, 2 << 20);
}

#[test]
fn config_raft_ticks() {
    assert_contains(
        &none()
            .env("KVS_RAFT_ELECTION_TICKS", "3")
            .env("KVS_RAFT_HEARTBEAT_TICKS", "3")
            .err(args()),
        &["KVS_RAFT_ELECTION_TICKS (3) must be greater than KVS_RAFT_HEARTBEAT_TICKS (3)"],
    );
    assert_contains(
        &none().env("KVS_RAFT_HEARTBEAT_TICKS", "0").err(args()),
        &["KVS_RAFT_HEARTBEAT_TICKS"],
    );
    assert_contains(
        &none().env("KVS_RAFT_LEASE_MARGIN_PERCENT", "0").err(args()),
        &["KVS_RAFT_LEASE_MARGIN_PERCENT", "from 1 to 50"],
    );
    assert_contains(
        &none().env("KVS_RAFT_MAX_CONNECTIONS", "0").err(args()),
        &["KVS_RAFT_MAX_CONNECTIONS"],
    );
}

#[test]
fn config_sync_and_pd() {
    assert_contains(
        &none().env("KVS_RAFT_ENGINE_SYNC", "sometimes").err(args()),
        &["KVS_RAFT_ENGINE_SYNC", "`always` or `batch`"],
    );
    let cfg = none()
        .build(ServeArgs {
            pd: Some("pd1:2379, 10.0.0.2:2379".into()),
            ..args()
        })
        .unwrap();
    assert_eq!(
        cfg.pd,
        Some(vec!["pd1:2379".to_string(), "10.0.0.2:2379".to_string()])
    );
    for bad in ["pd1", "pd1:2379,pd1:2379", "pd1:2379,", ""] {
        assert_contains(
            &none().err(ServeArgs {
                pd: Some(bad.into()),
                ..args()
            }),
            &["--pd"],
        );
    }
}

#[test]
fn config_peer_secret_sources_and_rules() {
    // Required once the peer port is reachable from other hosts.
    let public = || ServeArgs {
        listen_peer: Some("10.1.2.3:7380".into()),
        ..args()
    };
    assert_contains(
        &none().err(public()),
        &["--listen-peer 10.1.2.3:7380", "--peer-secret-file"],
    );
    let cfg = none()
        .env("KVS_RAFT_PEER_SECRET", SECRET)
        .build(public())
        .unwrap();
    assert_eq!(cfg.peer_secret.unwrap().expose(), SECRET.as_bytes());
    // From a file; trailing whitespace dropped.
    let world = none().file("/s", &format!("{SECRET}\r\n"));
    let with_file = || ServeArgs {
        peer_secret_file: Some("/s".into()),
        ..public()
    };
    let cfg = world.build(with_file()).unwrap();
    assert_eq!(
        cfg.peer_secret.as_ref().unwrap().expose(),
        SECRET.as_bytes()
    );
    assert!(
        !format!("{cfg:?}").contains(SECRET),
        "Debug shows the secret"
    );
    // The flag (a higher layer) beats the env value; both from env is an error.
    let cfg = world
        .env("KVS_RAFT_PEER_SECRET", "another-secret-16-bytes")
        .build(with_file())
        .unwrap();
    assert_eq!(cfg.peer_secret.unwrap().expose(), SECRET.as_bytes());
    assert_contains(
        &none()
            .env("KVS_RAFT_PEER_SECRET", SECRET)
            .env("KVS_RAFT_PEER_SECRET_FILE", "/s")
            .err(args()),
        &["KVS_RAFT_PEER_SECRET and KVS_RAFT_PEER_SECRET_FILE are exclusive"],
    );
    // Too short, and never echoed.
    let err = none()
        .env("KVS_RAFT_PEER_SECRET", "short-secret")
        .err(args());
    assert_contains(&err, &["KVS_RAFT_PEER_SECRET has 12 bytes", "at least 16"]);
    assert!(!err.contains("short-secret"));
    // A missing file.
    assert_contains(
        &none().err(ServeArgs {
            peer_secret_file: Some("/nope".into()),
            ..args()
        }),
        &["cannot read peer secret file /nope"],
    );
}

#[test]
fn config_data_dir() {
    assert_contains(
        &none().env("KVS_RAFT_DATA_DIR", "  ").err(args()),
        &["KVS_RAFT_DATA_DIR", "must not be empty"],
    );
    let cfg = none()
        .env("KVS_RAFT_DATA_DIR", "/srv/kvs")
        .build(args())
        .unwrap();
    assert_eq!(cfg.data_dir, PathBuf::from("/srv/kvs"));
}

#[test]
fn config_every_key_has_an_env_variable_and_file_key() {
    // Each key (but the env-only secret) round-trips through the file shape; unknown ones are refused.
    for key in KEYS.iter().filter(|k| **k != "peer_secret") {
        let text = format!("{key} = 1");
        let result = toml::from_str::<FileConfig>(&text);
        if let Err(e) = result {
            assert!(!e.to_string().contains("unknown field"), "{key}: {e}");
        }
    }
    assert_eq!(env_name("max_body_bytes"), "KVS_RAFT_MAX_BODY_BYTES");
}

#[test]
fn config_initial_cluster_state_is_new_by_default_and_existing_on_request() {
    let cfg = none().build(three(2)).unwrap();
    assert_eq!(cfg.initial_cluster_state, ClusterState::New);
    let cfg = none()
        .build(ServeArgs {
            initial_cluster_state: Some(ClusterState::Existing),
            ..three(2)
        })
        .unwrap();
    assert_eq!(cfg.initial_cluster_state, ClusterState::Existing);
    let cfg = none()
        .env("KVS_RAFT_INITIAL_CLUSTER_STATE", "existing")
        .build(three(2))
        .unwrap();
    assert_eq!(cfg.initial_cluster_state, ClusterState::Existing);
    let cfg = none()
        .file("/k.toml", "initial_cluster_state = \"existing\"")
        .build(ServeArgs {
            config: Some("/k.toml".into()),
            ..three(2)
        })
        .unwrap();
    assert_eq!(cfg.initial_cluster_state, ClusterState::Existing);
    assert_contains(
        &none()
            .env("KVS_RAFT_INITIAL_CLUSTER_STATE", "old")
            .err(three(2)),
        &["KVS_RAFT_INITIAL_CLUSTER_STATE", "`new` or `existing`"],
    );
}

fn token_line(name: &str, role: Role, token: &str) -> String {
    format!("{}\n", TokenEntry::new(name, role, token.as_bytes()).line())
}

#[test]
fn config_client_auth_is_required_off_loopback() {
    let world = none()
        .env("KVS_RAFT_PEER_SECRET", SECRET)
        .file("/t", &token_line("app", Role::Write, "t-app"));
    let open = |client: &str, advertise: Option<&str>| ServeArgs {
        listen_client: Some(client.into()),
        advertise_client: advertise.map(Into::into),
        ..args()
    };
    // Loopback, listen and advertised: auth is optional and off by default.
    let cfg = world.build(open("127.0.0.1:7379", None)).unwrap();
    assert_eq!((cfg.client_auth, cfg.insecure_no_auth), (None, false));
    assert!(world
        .build(open("[::1]:7379", Some("localhost:7379")))
        .is_ok());
    // Reachable by listen address or by advertised address: refused without auth.
    for (client, advertise) in [
        ("10.0.0.1:7379", None),
        ("0.0.0.0:7379", Some("node1:7379")),
        ("127.0.0.1:7379", Some("node1:7379")),
        ("127.0.0.1:7379", Some("10.1.2.3:7379")),
    ] {
        assert_contains(
            &world.err(open(client, advertise)),
            &[
                "reachable from other hosts",
                "--auth-token-file",
                "--insecure-no-auth",
            ],
        );
        // ... unless told explicitly, in any layer ...
        let cfg = world
            .build(ServeArgs {
                insecure_no_auth: true,
                ..open(client, advertise)
            })
            .unwrap();
        assert!(cfg.insecure_no_auth && cfg.client_auth.is_none());
        let env = none()
            .env("KVS_RAFT_PEER_SECRET", SECRET)
            .env("KVS_RAFT_INSECURE_NO_AUTH", "true");
        assert!(env.build(open(client, advertise)).unwrap().insecure_no_auth);
        // ... or given tokens.
        let cfg = world
            .build(ServeArgs {
                auth_token_file: Some("/t".into()),
                ..open(client, advertise)
            })
            .unwrap();
        let auth = cfg.client_auth.unwrap();
        assert_eq!((auth.file, auth.tokens.len()), (PathBuf::from("/t"), 1));
        assert_eq!(cfg.metrics_auth, MetricsAccess::Open);
    }
    // Both at once is a contradiction.
    assert_contains(
        &world.err(ServeArgs {
            auth_token_file: Some("/t".into()),
            insecure_no_auth: true,
            ..args()
        }),
        &[
            "--auth-token-file",
            "--insecure-no-auth",
            "give one of them",
        ],
    );
    assert_contains(
        &none().env("KVS_RAFT_INSECURE_NO_AUTH", "yes").err(args()),
        &["KVS_RAFT_INSECURE_NO_AUTH", "true or false"],
    );
    assert_contains(
        &none().env("KVS_RAFT_METRICS_AUTH", "closed").err(args()),
        &["KVS_RAFT_METRICS_AUTH", "`open` or `read`"],
    );
}

#[test]
fn config_a_malformed_or_missing_token_file_is_refused_with_its_line() {
    let good = token_line("app", Role::Write, "t-app");
    let world = none().file("/t", &format!("# tokens\n{good}app2 superuser sha256:00\n"));
    assert_contains(
        &world.err(ServeArgs {
            auth_token_file: Some("/t".into()),
            ..args()
        }),
        &["--auth-token-file", "malformed", "line 3", "unknown role"],
    );
    assert_contains(
        &none()
            .env("KVS_RAFT_AUTH_TOKEN_FILE", "/missing")
            .err(args()),
        &["cannot read token file /missing"],
    );
    // An empty file is valid: auth is on and no token passes.
    let cfg = none()
        .file("/empty", "# no tokens yet\n")
        .build(ServeArgs {
            auth_token_file: Some("/empty".into()),
            ..args()
        })
        .unwrap();
    assert!(cfg.client_auth.unwrap().tokens.is_empty());
}

#[test]
fn config_join_token_file() {
    let world = none()
        .file("/jt", "kvs_abcdef\n")
        .file("/bad", "two words\n")
        .file("/empty", "\n");
    let join = |file: &str| ServeArgs {
        join: Some("http://127.0.0.1:7379".into()),
        join_token_file: Some(file.into()),
        ..args()
    };
    let cfg = world.build(join("/jt")).unwrap();
    assert_eq!(
        cfg.join_token.as_ref().map(Secret::expose),
        Some(&b"kvs_abcdef"[..])
    );
    assert!(
        !format!("{cfg:?}").contains("kvs_abcdef"),
        "Debug shows the join token"
    );
    for bad in ["/bad", "/empty"] {
        let err = world.err(join(bad));
        assert_contains(&err, &["--join-token-file", "one token"]);
        assert!(!err.contains("two words"), "{err}");
    }
    assert_contains(
        &world.err(join("/missing")),
        &["cannot read join token file /missing"],
    );
}

#[test]
fn config_peer_port_must_authenticate_when_listen_or_advertised_address_is_not_loopback() {
    // Judged by the advertised address too: a loopback listener behind a public advertised address
    // (a proxy, NAT) is reachable from other hosts.
    let advertised = || ServeArgs {
        advertise_peer: Some("10.1.2.3:7380".into()),
        join: Some("http://10.1.2.4:7379".into()),
        ..args()
    };
    assert_contains(
        &none().err(advertised()),
        &[
            "advertised peer address 10.1.2.3:7380",
            "--peer-cert",
            "--peer-secret-file",
            "--insecure-peer-no-auth",
        ],
    );
    let by_name = ServeArgs {
        advertise_peer: Some("node1.example:7380".into()),
        ..advertised()
    };
    assert_contains(&none().err(by_name), &["node1.example:7380"]);
    // `localhost` is loopback.
    let local = ServeArgs {
        advertise_peer: Some("localhost:7380".into()),
        ..advertised()
    };
    assert!(none().build(local).unwrap().peer_secret.is_none());
    // A secret, peer TLS, or the explicit insecure flag each make it start.
    assert!(none()
        .env("KVS_RAFT_PEER_SECRET", SECRET)
        .build(advertised())
        .is_ok());
    let tls = none()
        .build(ServeArgs {
            peer_cert: Some("/p.crt".into()),
            peer_key: Some("/p.key".into()),
            peer_ca: Some("/ca.pem".into()),
            ..advertised()
        })
        .unwrap();
    assert_eq!(
        tls.peer_tls,
        Some(raft_node::transport::TlsFiles {
            cert: "/p.crt".into(),
            key: "/p.key".into(),
            ca: "/ca.pem".into(),
        })
    );
    let insecure = none()
        .build(ServeArgs {
            insecure_peer_no_auth: true,
            ..advertised()
        })
        .unwrap();
    assert!(insecure.insecure_peer_no_auth);
    let insecure = none()
        .env("KVS_RAFT_INSECURE_PEER_NO_AUTH", "true")
        .build(ServeArgs {
            listen_peer: Some("10.1.2.3:7380".into()),
            ..args()
        })
        .unwrap();
    assert!(insecure.insecure_peer_no_auth);
}

#[test]
fn config_tls_files_come_in_complete_sets() {
    assert_contains(
        &none().err(ServeArgs {
            peer_cert: Some("/p.crt".into()),
            peer_ca: Some("/ca.pem".into()),
            ..args()
        }),
        &[
            "--peer-cert, --peer-key and --peer-ca",
            "only --peer-cert, --peer-ca given",
        ],
    );
    assert_contains(
        &none().err(ServeArgs {
            client_cert: Some("/c.crt".into()),
            ..args()
        }),
        &["--client-cert needs both --client-cert and --client-key"],
    );
    assert_contains(
        &none().err(ServeArgs {
            client_ca: Some("/ca.pem".into()),
            ..args()
        }),
        &["--client-ca needs --client-cert and --client-key"],
    );
    // Client TLS needs a CA to verify the other nodes' client ports (forwarding).
    let tls = || ServeArgs {
        client_cert: Some("/c.crt".into()),
        client_key: Some("/c.key".into()),
        ..args()
    };
    assert_contains(&none().err(tls()), &["--trusted-ca-file"]);
    let cfg = none()
        .build(ServeArgs {
            client_ca: Some("/ca.pem".into()),
            ..tls()
        })
        .unwrap();
    assert_eq!(
        cfg.client_tls,
        Some(ClientTlsFiles {
            cert: "/c.crt".into(),
            key: "/c.key".into(),
            ca: Some("/ca.pem".into()),
        })
    );
    assert_eq!(cfg.trusted_ca, Some(PathBuf::from("/ca.pem")));
    let cfg = none()
        .env("KVS_RAFT_TRUSTED_CA_FILE", "/trust.pem")
        .build(ServeArgs {
            client_ca: Some("/ca.pem".into()),
            ..tls()
        })
        .unwrap();
    assert_eq!(cfg.trusted_ca, Some(PathBuf::from("/trust.pem")));
    // --join https:// needs a CA as well, even without TLS on this node's own client port.
    let join = ServeArgs {
        join: Some("https://127.0.0.1:7379".into()),
        ..args()
    };
    assert_contains(
        &none().err(join.clone()),
        &["--join https://", "--trusted-ca-file"],
    );
    let cfg = none()
        .file("/k.toml", "trusted_ca_file = \"/trust.pem\"")
        .build(ServeArgs {
            config: Some("/k.toml".into()),
            ..join
        })
        .unwrap();
    assert_eq!(cfg.trusted_ca, Some(PathBuf::from("/trust.pem")));
    assert!(cfg.client_tls.is_none());
}

#[test]
fn config_pd_tls_and_sync_batches() {
    let with_pd = || ServeArgs {
        pd: Some("pd1:2379".into()),
        ..args()
    };
    let tls = |args: ServeArgs| ServeArgs {
        pd_cacert: Some("/ca.pem".into()),
        pd_cert: Some("/c.pem".into()),
        pd_key: Some("/k.pem".into()),
        ..args
    };
    let cfg = none().build(tls(with_pd())).unwrap();
    assert_eq!(
        cfg.pd_tls,
        Some(raft_node::transport::TlsFiles {
            cert: "/c.pem".into(),
            key: "/k.pem".into(),
            ca: "/ca.pem".into(),
        })
    );
    // All three or none, and only with --pd.
    assert_contains(
        &none().err(ServeArgs {
            pd_cacert: Some("/ca.pem".into()),
            ..with_pd()
        }),
        &[
            "--pd-cacert, --pd-cert and --pd-key",
            "only --pd-cacert given",
        ],
    );
    assert_contains(
        &none().err(tls(args())),
        &["--pd-cacert", "only --pd turns on"],
    );
    // Batch limits and the deadline, from the environment, within their ranges.
    let cfg = none()
        .env("KVS_RAFT_SYNC_BATCH_ENTRIES", "64")
        .env("KVS_RAFT_SYNC_BATCH_BYTES", "256KiB")
        .env("KVS_RAFT_SYNC_TIMEOUT", "2s")
        .build(with_pd())
        .unwrap();
    assert_eq!(
        (
            cfg.sync_batch_entries,
            cfg.sync_batch_bytes,
            cfg.sync_timeout
        ),
        (64, 256 << 10, Duration::from_secs(2))
    );
    for (key, bad) in [
        ("KVS_RAFT_SYNC_BATCH_ENTRIES", "0"),
        ("KVS_RAFT_SYNC_BATCH_BYTES", "1000"),
        ("KVS_RAFT_SYNC_BATCH_BYTES", "65MiB"),
        ("KVS_RAFT_SYNC_TIMEOUT", "50ms"),
    ] {
        assert_contains(&none().env(key, bad).err(with_pd()), &[key]);
    }
}
