//! Upward federation with real `kvs-raft serve` processes (SPEC §6, issue 14): three nodes with `--pd`
//! pointing at the PD + TiKV test double running inside this test process. A mixed load of puts,
//! incrs, deletes and checkpoints over HTTP; the leader is SIGKILLed while it syncs; after quiescing,
//! the central copy under `<site>/` must equal the site's live state exactly (counters included).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::http::Http;
use common::proc::Cluster;
use common::{await_leader, scan_all};
use serde_json::json;
use tikv_double::{Options, TikvDouble};

const START: Duration = Duration::from_secs(20);
const SITE: &str = "site-p";

/// The central copy as `key → value` (current epochs only), decoded from the double's store.
fn central_state(double: &TikvDouble) -> BTreeMap<String, String> {
    let items: Vec<(Vec<u8>, Vec<u8>)> = double
        .scan_prefix(format!("{SITE}/").as_bytes())
        .into_iter()
        .map(|(k, v)| (k, v.expect("no lock left behind")))
        .collect();
    let mut epochs = BTreeMap::new();
    let epoch_prefix = format!("{SITE}/e/").into_bytes();
    for (k, v) in &items {
        if let Some(entity) = k.strip_prefix(epoch_prefix.as_slice()) {
            epochs.insert(
                entity.to_vec(),
                u64::from_be_bytes(v[..].try_into().unwrap()),
            );
        }
    }
    let plain = format!("{SITE}/k/").into_bytes();
    let data = format!("{SITE}/d/").into_bytes();
    let mut out = BTreeMap::new();
    for (k, v) in items {
        let value = String::from_utf8_lossy(&v).into_owned();
        if let Some(key) = k.strip_prefix(plain.as_slice()) {
            out.insert(String::from_utf8(key.to_vec()).unwrap(), value);
        } else if let Some(rest) = k.strip_prefix(data.as_slice()) {
            let slash = rest.iter().position(|&b| b == b'/').unwrap();
            let (entity, tail) = (&rest[..slash], &rest[slash + 1..]);
            let epoch = u64::from_be_bytes(tail[..8].try_into().unwrap());
            if epochs.get(entity).copied().unwrap_or(0) == epoch {
                out.insert(
                    format!(
                        "{}/{}",
                        String::from_utf8_lossy(entity),
                        String::from_utf8_lossy(&tail[8..])
                    ),
                    value,
                );
            }
        }
    }
    out
}

/// One round of the mixed load against `addr`; failed requests (an election) are simply not counted:
/// the comparison is against the site's own state, not a model.
async fn load(http: &Http, addr: std::net::SocketAddr, round: u64) {
    for i in 0..40u64 {
        let e = (round * 7 + i) % 5;
        let _ = match i % 8 {
            0..=2 => {
                http.put(
                    addr,
                    &format!("/v1/kv/p{e}/pos"),
                    format!("{round}-{i}").as_bytes(),
                )
                .await
            }
            3..=4 => {
                http.post(addr, &format!("/v1/kv/score{e}/incr?delta=3"))
                    .await
            }
            5 => {
                http.post(addr, &format!("/v1/kv/p{e}/hits/incr?delta=1"))
                    .await
            }
            6 => {
                http.post_json(
                    addr,
                    &format!("/v1/entities/p{e}/checkpoint"),
                    &json!({"name": format!("gate{}", i % 3), "data": "d"}),
                )
                .await
            }
            _ => {
                let r = http
                    .send(
                        hyper::Method::DELETE,
                        addr,
                        &format!("/v1/kv/plain{e}"),
                        None,
                    )
                    .await;
                let _ = http
                    .put(addr, &format!("/v1/kv/plain{}", e + 1), b"v")
                    .await;
                r
            }
        };
    }
}

/// Wait until the site's leader reports everything synced (cursor = central cursor, no backlog).
async fn await_synced(cluster: &Cluster, http: &Http, among: &[u64], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (leader, _) = await_leader(cluster, http, among, within).await;
        if let Ok(r) = http.get(cluster.addr(leader), "/v1/sync").await {
            let v = r.json();
            if v["state"] == "idle"
                && v["lag_entries"] == 0
                && v["central_cursor"].is_u64()
                && v["central_cursor"] == v["cursor"]
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not synced after {within:?}: {v}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_central_copy_converges_exactly_across_a_leader_sigkill() {
    let double = TikvDouble::start(Options::default()).await.unwrap();
    let pd = double.pd_endpoint();
    let pd = pd.trim_start_matches("http://").to_owned();
    let http = Http::new(Duration::from_secs(5));
    let mut cluster = Cluster::start_with("federation", 3, |node| {
        node.env.push(("KVS_RAFT_PD".into(), pd.clone()));
        node.env.push(("KVS_RAFT_SITE".into(), SITE.into()));
    });
    cluster.wait_serving(&http, &[1, 2, 3], START).await;
    let (leader, _) = await_leader(&cluster, &http, &[1, 2, 3], START).await;
    for round in 0..3 {
        load(&http, cluster.addr(leader), round).await;
    }
    await_synced(&cluster, &http, &[1, 2, 3], Duration::from_secs(60)).await;
    assert_eq!(
        central_state(&double),
        scan_all(&http, cluster.addr(leader), "linearizable")
            .await
            .unwrap(),
        "central copy = site state (before the kill)"
    );
    // More load, and the leader SIGKILLed while it syncs it.
    load(&http, cluster.addr(leader), 3).await;
    cluster.kill9(leader);
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|&id| id != leader).collect();
    let (new_leader, _) = await_leader(&cluster, &http, &rest, START).await;
    for round in 4..6 {
        load(&http, cluster.addr(new_leader), round).await;
    }
    await_synced(&cluster, &http, &rest, Duration::from_secs(60)).await;
    let site = scan_all(&http, cluster.addr(new_leader), "linearizable")
        .await
        .unwrap();
    let central = central_state(&double);
    assert!(site.keys().any(|k| k.starts_with("score")), "{site:?}");
    assert_eq!(central, site, "central copy = site state (after the kill)");
    let sync = http
        .get(cluster.addr(new_leader), "/v1/sync")
        .await
        .unwrap()
        .json();
    eprintln!("after the leader change: {sync}");
    double.shutdown().await;
}

/// Quota, outage and the panic path with processes: with a one-byte backlog quota and the central
/// store refusing every connection, the site keeps serving writes, `/readyz` says `degraded` with the
/// reason and the alarm metric is 1; PD then answers without headers (tikv-client 0.4 panics on that)
/// when the worker reconnects: the worker is restarted (counted), the node never stops serving, and
/// once the double answers properly the central copy converges exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_over_quota_degrades_readiness_and_a_client_panic_restarts_the_worker() {
    let double = TikvDouble::start(Options::default()).await.unwrap();
    let pd = double.pd_endpoint();
    let http = Http::new(Duration::from_secs(5));
    let mut cluster = Cluster::start_with("federation-quota", 3, |node| {
        node.env.push(("KVS_RAFT_PD".into(), pd.clone()));
        node.env.push(("KVS_RAFT_SITE".into(), SITE.into()));
        node.env
            .push(("KVS_RAFT_SYNC_BACKLOG_QUOTA".into(), "1".into()));
    });
    cluster.wait_serving(&http, &[1, 2, 3], START).await;
    let (leader, _) = await_leader(&cluster, &http, &[1, 2, 3], START).await;
    let addr = cluster.addr(leader);
    load(&http, addr, 0).await;
    await_synced(&cluster, &http, &[1, 2, 3], Duration::from_secs(60)).await;

    double.stop_serving(tikv_double::Target::Both, tikv_double::Partition::Refuse);
    load(&http, addr, 1).await;
    // Writes are still served during the outage.
    let r = http.put(addr, "/v1/kv/during-outage", b"x").await.unwrap();
    assert_eq!(r.status, 200, "{r}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http.get(addr, "/readyz").await.unwrap();
        let sync = http.get(addr, "/v1/sync").await.unwrap().json();
        let degraded = ready.status == 200 && ready.json()["status"] == "degraded";
        if degraded && sync["last_error"].is_string() && sync["backoff_ms"].as_u64() > Some(0) {
            assert!(ready.json()["degraded"][0]
                .as_str()
                .is_some_and(|s| s.contains("over its quota")));
            assert_eq!(sync["over_quota"], true);
            let metrics = http.get(addr, "/metrics").await.unwrap().text();
            assert!(
                metrics.contains("kvs_sync_backlog_over_quota 1"),
                "{metrics}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no degraded readiness: {} {sync}",
            ready.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Headerless PD answers: the worker's next connect panics inside tikv-client.
    double.faults().inject_times(
        tikv_double::Rpc::GetMembers,
        tikv_double::Fault::MissingHeader,
        2,
    );
    double.resume(tikv_double::Target::Both);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sync = http.get(addr, "/v1/sync").await.unwrap().json();
        if sync["restarts"].as_u64() >= Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "no worker restart: {sync}");
        // The node keeps serving meanwhile.
        let r = http
            .put(addr, "/v1/kv/while-restarting", b"y")
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    await_synced(&cluster, &http, &[1, 2, 3], Duration::from_secs(60)).await;
    let ready = http.get(addr, "/readyz").await.unwrap().json();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(
        central_state(&double),
        scan_all(&http, addr, "linearizable").await.unwrap(),
        "central copy = site state after the outage and the restart"
    );
    double.shutdown().await;
}
