//! The federation against the real tikv-client over the PD + TiKV test double: convergence (the
//! central copy under `<site>/` equals the site's live state, counters exact), the cursor fence, a
//! leader change mid-sync, the panic path and partitions. In-process "sites": replicas are engines
//! fed the same entries in the same order (what Raft guarantees), so the worker's leader-only logic
//! and the replicated cursor are exercised without a Raft group.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::{Clock, Engine, EngineConfig, Op, ScanRequest, SystemClock};
use rand::{Rng, SeedableRng};
use tikv_double::{Fault, Options, Rpc, TikvDouble};
use tokio_util::sync::CancellationToken;

use super::layout::{self, Mutation};
use super::{CentralClient, CentralConfig, Federation, Site, SyncError, WorkerConfig};

const SITE: &str = "site-a";

/// The replicas of one site: every entry goes to every engine, in order.
struct Cluster {
    _dirs: Vec<tempfile::TempDir>,
    engines: Vec<Arc<Engine>>,
    index: Mutex<u64>,
    leader: AtomicU64,
}

impl Cluster {
    fn new(n: usize) -> Arc<Cluster> {
        let mut dirs = Vec::new();
        let mut engines = Vec::new();
        for _ in 0..n {
            let dir = tempfile::tempdir().unwrap();
            let mut cfg = EngineConfig::tiny(Arc::new(SystemClock));
            cfg.change_feed = true;
            engines.push(Arc::new(Engine::open(dir.path(), cfg).unwrap()));
            dirs.push(dir);
        }
        Arc::new(Cluster {
            _dirs: dirs,
            engines,
            index: Mutex::new(0),
            leader: AtomicU64::new(0),
        })
    }

    fn apply(&self, ops: &[Op]) {
        let mut index = self.index.lock().unwrap();
        *index += 1;
        let ts = SystemClock
            .now_micros()
            .max(self.engines[0].applied().ts + 1);
        for e in &self.engines {
            e.apply(*index, ts, ops, false).unwrap();
        }
    }
}

/// Replica `id` of the cluster, as the worker sees it.
struct TestSite {
    cluster: Arc<Cluster>,
    id: u64,
    /// Set by a test: the next cursor proposal fails (a leader deposed between commit and proposal).
    drop_proposals: AtomicBool,
}

impl Site for TestSite {
    fn engine(&self) -> &Engine {
        &self.cluster.engines[usize::try_from(self.id).unwrap()]
    }

    async fn is_leader(&self) -> bool {
        self.cluster.leader.load(Ordering::SeqCst) == self.id
    }

    async fn record_cursor(&self, index: u64, _deadline: std::time::Instant) -> Result<(), String> {
        if !self.is_leader().await || self.drop_proposals.load(Ordering::SeqCst) {
            return Err("not leader".into());
        }
        self.cluster.apply(&[Op::SyncCursor { index }]);
        Ok(())
    }
}

fn site(cluster: &Arc<Cluster>, id: u64) -> Arc<TestSite> {
    Arc::new(TestSite {
        cluster: cluster.clone(),
        id,
        drop_proposals: AtomicBool::new(false),
    })
}

fn central_config(double: &TikvDouble) -> CentralConfig {
    CentralConfig {
        pd: vec![double.pd_endpoint()],
        tls: None,
        rpc_timeout: Duration::from_millis(500),
    }
}

fn worker_config(double: &TikvDouble) -> WorkerConfig {
    let mut cfg = WorkerConfig::new(central_config(double), SITE.into());
    cfg.batch_entries = 16;
    cfg.batch_deadline = Duration::from_secs(3);
    cfg.backoff_cap = Duration::from_secs(2);
    cfg.breaker_cool_down = Duration::from_secs(1);
    cfg
}

/// The double, a site of `replicas` engines and a federation on replica 0.
struct Fixture {
    double: TikvDouble,
    cluster: Arc<Cluster>,
    shutdown: CancellationToken,
    fed: Federation,
}

impl Fixture {
    /// Start with a backlog `quota`; `before` runs on the double before the worker starts.
    async fn start(replicas: usize, quota: u64, before: impl FnOnce(&TikvDouble)) -> Fixture {
        let double = TikvDouble::start(Options::default()).await.unwrap();
        before(&double);
        let cluster = Cluster::new(replicas);
        let shutdown = CancellationToken::new();
        let fed = Federation::start(
            site(&cluster, 0),
            worker_config(&double),
            quota,
            shutdown.clone(),
        );
        Fixture {
            double,
            cluster,
            shutdown,
            fed,
        }
    }

    async fn finish(self) {
        self.shutdown.cancel();
        self.double.shutdown().await;
    }
}

/// Counters of two workloads run one after the other.
fn merged(mut a: BTreeMap<String, i64>, b: BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    for (k, v) in b {
        *a.entry(k).or_insert(0) += v;
    }
    a
}

/// A seeded mixed workload: puts, incrs, deletes and checkpoints over a few entities and plain keys.
/// Returns the exact counter values it produced.
fn workload(cluster: &Cluster, seed: u64, entries: usize) -> BTreeMap<String, i64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut counters = BTreeMap::new();
    for _ in 0..entries {
        let e = rng.gen_range(0..5);
        let ops = match rng.gen_range(0..10) {
            0..=3 => vec![Op::put(
                format!("p{e}/pos"),
                format!("{}", rng.gen::<u32>()),
            )],
            4..=6 => {
                let delta = rng.gen_range(-5..20);
                let key = format!("score{e}");
                *counters.entry(key.clone()).or_insert(0) += delta;
                vec![Op::incr(key, delta), Op::incr(format!("p{e}/hits"), 1)]
            }
            7 => vec![Op::delete(format!("p{e}/pos"))],
            8 => vec![Op::checkpoint(
                format!("p{e}"),
                format!("gate{}", rng.gen_range(0..3)),
                "d",
            )],
            _ => vec![
                Op::put(format!("plain{e}"), "v"),
                Op::delete(format!("plain{}", e + 1)),
            ],
        };
        cluster.apply(&ops);
    }
    counters
}

/// The site's live state: every key's current value (current epochs only).
fn live_state(engine: &Engine) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let page = engine
        .scan(&ScanRequest::prefix(b"", usize::MAX, u64::MAX))
        .unwrap();
    assert!(!page.more);
    page.items.into_iter().map(|(k, v)| (k, v.value)).collect()
}

/// The central copy under `<site>/`, as the same map: plain keys, and entity keys of the entity's
/// current central epoch.
fn central_state(double: &TikvDouble) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let prefix = layout::site_prefix(SITE);
    // The worker may be reclaiming an old epoch right now: its locks are waited out, not one left behind.
    let items = double.scan_prefix_settled(&prefix, Duration::from_secs(10));
    let mut epochs = BTreeMap::new();
    for (k, v) in &items {
        if let Some(entity) = k.strip_prefix(layout::epoch_key(SITE, b"").as_slice()) {
            epochs.insert(entity.to_vec(), layout::decode_u64(v).unwrap());
        }
    }
    let plain = layout::data_key(SITE, b"", 0);
    let data = layout::epoch_key(SITE, b"").replace_last(b'd');
    let mut out = BTreeMap::new();
    for (k, v) in items {
        if let Some(key) = k.strip_prefix(plain.as_slice()) {
            out.insert(key.to_vec(), v);
        } else if let Some(rest) = k.strip_prefix(data.as_slice()) {
            let slash = rest.iter().position(|&b| b == b'/').unwrap();
            let (entity, tail) = (&rest[..slash], &rest[slash + 1..]);
            let epoch = u64::from_be_bytes(tail[..8].try_into().unwrap());
            if epochs.get(entity).copied().unwrap_or(0) == epoch {
                let mut user = entity.to_vec();
                user.push(b'/');
                user.extend_from_slice(&tail[8..]);
                out.insert(user, v);
            }
        }
    }
    out
}

trait ReplaceLast {
    fn replace_last(self, b: u8) -> Vec<u8>;
}

impl ReplaceLast for Vec<u8> {
    /// `<site>/e/` → `<site>/d/`.
    fn replace_last(mut self, b: u8) -> Vec<u8> {
        let n = self.len();
        self[n - 2] = b;
        self
    }
}

/// Wait (polling, with a deadline) until every replica's feed is empty and the replicated cursor has
/// reached the last entry that changed something.
async fn wait_synced(cluster: &Cluster, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let done = cluster.engines.iter().all(|e| e.stats().feed_entries == 0);
        if done {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not synced within {within:?}: feed {:?}",
            cluster
                .engines
                .iter()
                .map(|e| e.stats().feed_entries)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_converged(cluster: &Cluster, double: &TikvDouble, counters: &BTreeMap<String, i64>) {
    let local = live_state(&cluster.engines[0]);
    let central = central_state(double);
    assert!(!local.is_empty());
    assert_eq!(
        central, local,
        "the central copy equals the site's live state"
    );
    for (key, value) in counters {
        assert_eq!(
            central.get(key.as_bytes()).map(|v| v.as_slice()),
            Some(value.to_string().as_bytes()),
            "counter {key} exact"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_changes_converge_exactly_to_the_central_copy() {
    let f = Fixture::start(1, u64::MAX, |_| {}).await;
    let counters = workload(&f.cluster, 7, 300);
    wait_synced(&f.cluster, Duration::from_secs(60)).await;
    assert_converged(&f.cluster, &f.double, &counters);
    let all = merged(counters, workload(&f.cluster, 8, 100));
    wait_synced(&f.cluster, Duration::from_secs(60)).await;
    assert_converged(&f.cluster, &f.double, &all);
    assert!(f.fed.shared().counters.batches.load(Ordering::Relaxed) >= 2);
    assert_eq!(f.fed.restarts(), 0);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_workers_batch_is_refused_by_the_cursor_check() {
    let double = TikvDouble::start(Options::default()).await.unwrap();
    let cfg = central_config(&double);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let new_leader = CentralClient::connect(&cfg, deadline).await.unwrap();
    let deposed = CentralClient::connect(&cfg, deadline).await.unwrap();
    let put = |k: &str| {
        vec![Mutation::Put(
            format!("{SITE}/k/{k}").into_bytes(),
            b"v".to_vec(),
        )]
    };
    // The deposed leader synced up to 5 once; the new leader then synced to 9.
    deposed
        .commit_batch(SITE, 0, 5, &put("a"), deadline)
        .await
        .unwrap();
    new_leader
        .commit_batch(SITE, 5, 9, &put("b"), deadline)
        .await
        .unwrap();
    // The deposed worker's next batch (it still believes the cursor is 5) is refused and writes
    // nothing.
    let refused = deposed
        .commit_batch(SITE, 5, 7, &put("stale"), deadline)
        .await;
    assert_eq!(
        refused,
        Err(SyncError::Fenced {
            expected: 5,
            central: 9
        })
    );
    assert_eq!(
        double
            .read_at(format!("{SITE}/k/stale").as_bytes(), double.current_ts())
            .unwrap(),
        None
    );
    assert_eq!(new_leader.read_cursor(SITE, deadline).await, Ok(9));
    double.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_change_mid_sync_converges_exactly() {
    let double = TikvDouble::start(Options::default()).await.unwrap();
    let cluster = Cluster::new(2);
    let shutdown = CancellationToken::new();
    let a = site(&cluster, 0);
    let b = site(&cluster, 1);
    // Leader A's proposals of the cursor are lost: the central cursor runs ahead of the replicated
    // one, as when a leader dies between its commit and its proposal.
    a.drop_proposals.store(true, Ordering::SeqCst);
    let _fa = Federation::start(a, worker_config(&double), u64::MAX, shutdown.clone());
    let _fb = Federation::start(b, worker_config(&double), u64::MAX, shutdown.clone());
    let counters = workload(&cluster, 11, 200);
    // Let A sync part of it, then move leadership to B while A's commits may be in flight; one
    // commit reply is lost on the way (an undetermined outcome).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let client = CentralClient::connect(&central_config(&double), deadline)
        .await
        .unwrap();
    while client.read_cursor(SITE, deadline).await.unwrap() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "A never synced");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    double
        .faults()
        .inject_times(Rpc::KvCommit, Fault::DropAfterApply, 1);
    cluster.leader.store(1, Ordering::SeqCst);
    let more = workload(&cluster, 12, 100);
    wait_synced(&cluster, Duration::from_secs(60)).await;
    assert_converged(&cluster, &double, &merged(counters, more));
    let replicated = cluster.engines[1].sync_cursor();
    assert_eq!(
        client.read_cursor(SITE, deadline).await.unwrap(),
        replicated
    );
    shutdown.cancel();
    double.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_tikv_client_restarts_the_worker_and_sync_converges() {
    // Headerless PD answers make tikv-client 0.4 panic on connect (GetMembers).
    let f = Fixture::start(1, u64::MAX, |double| {
        double
            .faults()
            .inject_times(Rpc::GetMembers, Fault::MissingHeader, 2);
    })
    .await;
    let counters = workload(&f.cluster, 21, 100);
    wait_synced(&f.cluster, Duration::from_secs(60)).await;
    assert!(f.fed.restarts() >= 1, "restarts {}", f.fed.restarts());
    assert_converged(&f.cluster, &f.double, &counters);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_central_is_unreachable_the_backlog_grows_then_converges() {
    let f = Fixture::start(1, 1, |_| {}).await;
    let (double, cluster, fed) = (&f.double, &f.cluster, &f.fed);
    let first = workload(cluster, 31, 50);
    wait_synced(cluster, Duration::from_secs(60)).await;
    double.stop_serving(tikv_double::Target::Both, tikv_double::Partition::Refuse);
    let second = workload(cluster, 32, 100);
    // The backlog is kept while the central store is away, and the worker reports why.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = fed.status();
        if s.last_error.is_some() && s.backoff_ms > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no backoff reported: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(cluster.engines[0].stats().feed_entries > 0);
    assert!(cluster.engines[0].stats().feed_bytes > fed.backlog_quota());
    double.resume(tikv_double::Target::Both);
    wait_synced(cluster, Duration::from_secs(60)).await;
    assert_converged(cluster, double, &merged(first, second));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_lookups_answer_negatives_from_the_bloom_and_positives_from_tikv() {
    use super::bloom::CentralCrossings;
    let f = Fixture::start(1, u64::MAX, |_| {}).await;
    let (double, cluster, fed) = (&f.double, &f.cluster, &f.fed);
    cluster.apply(&[Op::checkpoint("p1", "gate", "d")]);
    wait_synced(cluster, Duration::from_secs(30)).await;
    let c = fed.crossings();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while c.counters.rebuilds.load(Ordering::Relaxed) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no rebuild");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lookup_deadline = || tokio::time::Instant::now() + Duration::from_secs(5);
    // Negatives: answered by the filter, no TiKV read for them.
    let (neg0, remote0) = (
        c.counters.bloom_negatives.load(Ordering::Relaxed),
        c.counters.remote_reads.load(Ordering::Relaxed),
    );
    for i in 0..100 {
        let e = format!("nobody{i}");
        assert_eq!(
            c.lookup(e.as_bytes(), b"gate", lookup_deadline()).await,
            Ok(None)
        );
    }
    let negatives = c.counters.bloom_negatives.load(Ordering::Relaxed) - neg0;
    let remote = c.counters.remote_reads.load(Ordering::Relaxed) - remote0;
    assert_eq!(negatives + remote, 100);
    assert!(
        negatives >= 90,
        "{negatives} of 100 from the filter (1 % false positives)"
    );
    // A positive (synced by this node's worker) always reaches TiKV.
    let found = c
        .lookup(b"p1", b"gate", lookup_deadline())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.site.as_str(), found.epoch, found.data.as_slice()),
        (SITE, 1, &b"d"[..])
    );
    assert_eq!(
        c.counters.remote_reads.load(Ordering::Relaxed),
        remote0 + remote + 1
    );
    // Another site's crossing, then a restart (a fresh filter rebuilt from the central index): no
    // false negative for either.
    let client = CentralClient::connect(&central_config(double), lookup_deadline())
        .await
        .unwrap();
    let other = vec![Mutation::Put(
        layout::crossing_key(b"q7", b"gate"),
        layout::encode_crossing("site-b", 1, 5, b""),
    )];
    client
        .commit_batch("site-b", 0, 1, &other, lookup_deadline())
        .await
        .unwrap();
    let restarted = CentralCrossings::new(central_config(double));
    assert!(restarted.rebuild(lookup_deadline()).await.unwrap() >= 2);
    assert!(restarted
        .lookup(b"p1", b"gate", lookup_deadline())
        .await
        .unwrap()
        .is_some());
    let q7 = restarted
        .lookup(b"q7", b"gate", lookup_deadline())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(q7.site, "site-b");
    f.finish().await;
}

/// A checkpoint is O(1) centrally (an epoch write and a reclaim marker); the invalidated epoch's keys
/// are deleted afterwards while the site is quiet, at most 512 per transaction, the marker with the
/// last of them. The current epochs and the other entities stay exactly the site's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidated_central_epoch_is_reclaimed_while_the_site_is_quiet() {
    let f = Fixture::start(1, u64::MAX, |_| {}).await;
    // 1,200 keys in epoch 0 of `p` (three reclaim transactions), and another entity's key.
    for chunk in 0..12 {
        let ops: Vec<Op> = (0..100)
            .map(|i| Op::put(format!("p/k{:04}", chunk * 100 + i), "old"))
            .collect();
        f.cluster.apply(&ops);
    }
    f.cluster.apply(&[Op::put("q/pos", "kept")]);
    f.cluster.apply(&[Op::checkpoint("p", "gate", "d")]);
    f.cluster.apply(&[Op::put("p/pos", "new")]);
    wait_synced(&f.cluster, Duration::from_secs(30)).await;
    let old_epoch = layout::epoch_data_prefix(SITE, b"p", 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let markers = f.double.scan_prefix(&layout::reclaim_prefix(SITE));
        let old = f.double.scan_prefix(&old_epoch);
        if markers.is_empty() && old.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reclaimed: {} markers, {} old keys",
            markers.len(),
            old.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        f.fed
            .shared()
            .counters
            .reclaimed_keys
            .load(Ordering::Relaxed),
        1_200
    );
    assert_eq!(
        f.double
            .scan_prefix(&layout::epoch_data_prefix(SITE, b"p", 1))
            .len(),
        1
    );
    assert_eq!(central_state(&f.double), live_state(&f.cluster.engines[0]));
    f.finish().await;
}
