//! Every fault the double injects, as the real tikv-client 0.4 sees it: an error, a wait our own
//! deadline ends, or a panic inside the client (contained here in a spawned task) — and recovery.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tikv_client::{CheckLevel, Error, TransactionOptions};
use tikv_double::{Fault, Options, Partition, RegionError, Rpc, Scope, Target};

/// How long we wait to show that a call does not finish (it would wait forever).
const HANG: Duration = Duration::from_secs(2);

/// Assert `fut` is still pending after [`HANG`].
async fn assert_hangs<T: std::fmt::Debug>(what: &str, fut: impl std::future::Future<Output = T>) {
    if let Ok(out) = tokio::time::timeout(HANG, fut).await {
        panic!("{what}: expected no answer, got {out:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_tikv_is_an_error_after_the_clients_retries() {
    let double = start(Options::default()).await;
    let client = client(&double).await;
    double.faults().inject(Scope::Tikv, Fault::Unavailable);
    let err = read(&client, "k").await.unwrap_err();
    assert!(is_grpc_status(&err), "{err:?}");
    assert!(double.faults().calls(Rpc::KvGet) > 1, "the client retried");
    double.faults().clear_all();
    assert_eq!(
        read(&client, "k").await.unwrap(),
        None,
        "the same client works again"
    );
    clear_faults_and_check_recovery(double).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_errors_are_retried_or_returned_as_tikv_client_decides() {
    let double = start(Options::default()).await;
    let client = client(&double).await;
    let calls = |rpc| double.faults().calls(rpc);

    // ServerIsBusy: returned at once, no retry.
    double
        .faults()
        .inject(Rpc::KvGet, Fault::RegionError(RegionError::ServerIsBusy));
    let err = read(&client, "k").await.unwrap_err();
    assert!(
        has_region_error(&err, &|e| e.server_is_busy.is_some()),
        "{err:?}"
    );
    assert_eq!(calls(Rpc::KvGet), 1);
    double.faults().clear_all();

    // A passing NotLeader: the region is reloaded from PD and the read succeeds.
    let (gets, regions) = (calls(Rpc::KvGet), calls(Rpc::GetRegion));
    double
        .faults()
        .inject_times(Rpc::KvGet, Fault::RegionError(RegionError::NotLeader), 1);
    assert_eq!(read(&client, "k").await.unwrap(), None);
    assert_eq!(calls(Rpc::KvGet), gets + 2);
    assert!(
        calls(Rpc::GetRegion) > regions,
        "the region was looked up again"
    );

    // Lasting EpochNotMatch / NotLeader: the region backoff (10 tries) runs out.
    for kind in [
        RegionError::EpochNotMatch,
        RegionError::NotLeader,
        RegionError::NotLeaderWithHint,
    ] {
        let gets = calls(Rpc::KvGet);
        double.faults().inject(Rpc::KvGet, Fault::RegionError(kind));
        let err = read(&client, "k").await.unwrap_err();
        assert!(has_region_error(&err, &|_| true), "{kind:?}: {err:?}");
        assert!(
            calls(Rpc::KvGet) - gets >= 10,
            "{kind:?}: retried until the backoff ran out"
        );
        double.faults().clear_all();
    }
    clear_faults_and_check_recovery(double).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_felt_and_past_the_rpc_timeout_it_is_an_error() {
    let double = start(Options::default()).await;
    let client = client(&double).await;
    double
        .faults()
        .inject_times(Rpc::KvGet, Fault::Delay(Duration::from_millis(300)), 1);
    let started = Instant::now();
    assert_eq!(read(&client, "k").await.unwrap(), None);
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Longer than Config::with_timeout: the grpc-timeout it sets is enforced (by tonic's client
    // and server), each try ends at it, and the retries run out.
    double
        .faults()
        .inject(Rpc::KvGet, Fault::Delay(Duration::from_secs(3)));
    let err = read(&client, "k").await.unwrap_err();
    assert!(
        matches!(&err, Error::GrpcAPI(s) if s.code() == tonic::Code::Cancelled || s.code() == tonic::Code::DeadlineExceeded),
        "{err:?}"
    );
    clear_faults_and_check_recovery(double).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_and_the_tso_stream_have_no_deadline() {
    let double = start(Options::default()).await;
    // GetMembers at connect carries no timeout: a hanging PD hangs TransactionClient::new.
    double.faults().inject(Rpc::GetMembers, Fault::Hang);
    assert_hangs("connect to a hanging PD", async {
        tikv_client::TransactionClient::new_with_config(vec![double.pd_endpoint()], config())
            .await
            .map(|_| "connected")
    })
    .await;
    double.faults().clear_all();
    let client = client(&double).await;

    // Neither has the TSO stream: a timestamp waits as long as PD does.
    double.faults().inject(Rpc::Tso, Fault::Hang);
    assert_hangs("timestamp from a hanging TSO", client.current_timestamp()).await;
    double.faults().clear_all();
    within("timestamp after the hang", CALL, client.current_timestamp())
        .await
        .expect("the same client recovers");
    double.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_blocks_or_fails_and_healing_it_restores_the_same_client() {
    let double = start(Options::default()).await;
    let client = client(&double).await;
    write(&client, &[("k", "v")]).await.unwrap();

    // PD black-holed: the TSO stream just waits.
    double.stop_serving(Target::Pd, Partition::Blackhole);
    assert_hangs("timestamp behind a partition", client.current_timestamp()).await;
    double.resume(Target::Pd);
    within("timestamp after healing", CALL, client.current_timestamp())
        .await
        .unwrap();

    // TiKV black-holed: each KV RPC ends at its grpc-timeout; the read fails after the retries.
    let ts = within("ts", CALL, client.current_timestamp())
        .await
        .unwrap();
    double.stop_serving(Target::Tikv, Partition::Blackhole);
    let mut snap = client.snapshot(ts.clone(), TransactionOptions::new_optimistic());
    let err = within("read behind a partition", CALL, snap.get(b"k".to_vec()))
        .await
        .unwrap_err();
    assert!(is_grpc_status(&err), "{err:?}");
    double.resume(Target::Tikv);
    let mut snap = client.snapshot(ts, TransactionOptions::new_optimistic());
    assert_eq!(
        within("read after healing", CALL, snap.get(b"k".to_vec()))
            .await
            .unwrap(),
        Some(b"v".to_vec())
    );

    // TiKV refusing connections: the read fails fast, then works once it serves again.
    double.stop_serving(Target::Tikv, Partition::Refuse);
    let err = read(&client, "k").await.unwrap_err();
    assert!(is_grpc_status(&err), "{err:?}");
    double.resume(Target::Tikv);
    assert_eq!(read(&client, "k").await.unwrap(), Some("v".to_owned()));
    double.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_applied_behind_a_dropped_connection_is_not_reported_undetermined() {
    let double = start(Options::default()).await;
    let client = client(&double).await;

    // Dropped once: the client's retry finds the commit done (commit is idempotent): success.
    double
        .faults()
        .inject_times(Rpc::KvCommit, Fault::DropAfterApply, 1);
    write(&client, &[("once", "v")])
        .await
        .expect("the retried commit succeeds");
    assert!(double.faults().calls(Rpc::KvCommit) >= 2);
    assert_eq!(read(&client, "once").await.unwrap(), Some("v".to_owned()));

    // Dropped every time: the primary IS committed, yet the client answers a plain gRPC error,
    // not Error::UndeterminedError (tikv-client 0.4 marks undetermined only on Error::Grpc, a
    // transport error, while a failed call is Error::GrpcAPI).
    double.faults().inject(Rpc::KvCommit, Fault::DropAfterApply);
    let err = write(&client, &[("a", "new"), ("b", "new")])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::GrpcAPI(_)), "{err:?}");
    double.faults().clear_all();
    assert_eq!(double.lock_of(b"a"), None, "the primary committed");
    assert!(
        double.lock_of(b"b").is_some(),
        "the secondary was never sent"
    );
    // A reader resolves the secondary from its committed primary.
    assert_eq!(read(&client, "b").await.unwrap(), Some("new".to_owned()));
    assert_eq!(read(&client, "a").await.unwrap(), Some("new".to_owned()));
    assert_eq!(double.lock_of(b"b"), None);
    double.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pd_answers_without_header_panic_inside_tikv_client() {
    let double = start(Options::default()).await;

    // GetMembers without header: `resp.header.as_ref().unwrap()` in validate_endpoints.
    double
        .faults()
        .inject(Rpc::GetMembers, Fault::MissingHeader);
    let endpoint = double.pd_endpoint();
    let joined = within(
        "connect task",
        CALL,
        tokio::spawn(async move {
            tikv_client::TransactionClient::new_with_config(vec![endpoint], config())
                .await
                .map(|_| "connected")
        }),
    )
    .await;
    assert!(
        joined.as_ref().is_err_and(|e| e.is_panic()),
        "expected a panic, got {joined:?}"
    );
    double.faults().clear_all();

    // GetRegion without header: `PdResponse::header` unwraps, in the caller's task.
    let fresh = client(&double).await; // nothing cached
    double.faults().inject(Rpc::GetRegion, Fault::MissingHeader);
    let joined = within(
        "read task",
        CALL,
        tokio::spawn(async move { read(&fresh, "k").await }),
    )
    .await;
    assert!(
        joined.as_ref().is_err_and(|e| e.is_panic()),
        "GetRegion: expected a panic, got {joined:?}"
    );
    double.faults().clear_all();

    // GetStore without header: the same unwrap, but inside the task tikv-client spawns per region
    // (`single_shard_handler`), whose panic it turns into `Error::JoinError`: an error, here.
    let fresh = client(&double).await;
    double.faults().inject(Rpc::GetStore, Fault::MissingHeader);
    let joined = within(
        "read task",
        CALL,
        tokio::spawn(async move { read(&fresh, "k").await }),
    )
    .await;
    assert!(
        matches!(&joined, Ok(Err(Error::JoinError(e))) if e.is_panic()),
        "GetStore: expected a contained panic, got {joined:?}"
    );
    clear_faults_and_check_recovery(double).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pd_members_without_a_leader_are_an_error_not_a_panic() {
    let double = start(Options::default()).await;
    // At connect: tikv-client 0.4.0 checks the leader (`connect` answers an error) before
    // `try_connect_leader` could unwrap it.
    double.faults().inject(Rpc::GetMembers, Fault::NoLeader);
    let Err(err) = connect(&double).await else {
        panic!("connected to a PD without a leader");
    };
    assert!(
        err.to_string().contains("PD cluster failed to respond"),
        "{err}"
    );
    double.faults().clear_all();

    // At reconnect (a PD call failed): the same check; the reconnect loop gives up with an error.
    let client = client(&double).await;
    // tikv-client reconnects at most once a second: let that second pass.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    double.faults().inject(Rpc::GetMembers, Fault::NoLeader);
    double.faults().inject(Rpc::GetRegion, Fault::Unavailable);
    let joined = within(
        "read task",
        CALL,
        tokio::spawn(async move { read(&client, "k").await }),
    )
    .await;
    match joined {
        Ok(Err(e)) => assert!(
            double.faults().calls(Rpc::GetMembers) >= 2,
            "reconnected: {e}"
        ),
        other => panic!("expected an error from the read, got {other:?}"),
    }

    // A PD header error is an error too.
    double.faults().clear_all();
    double.faults().inject(Rpc::GetMembers, Fault::PdError);
    assert!(connect(&double).await.is_err());
    clear_faults_and_check_recovery(double).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_pd_fails_the_connect() {
    let double = start(Options::default()).await;
    double.faults().inject(Scope::Pd, Fault::Unavailable);
    assert!(connect(&double).await.is_err());
    clear_faults_and_check_recovery(double).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_an_active_transaction_panics_unless_told_otherwise() {
    let double = start(Options::default()).await;
    let client = client(&double).await;
    let c = client.clone();
    let joined = within(
        "drop task",
        CALL,
        tokio::spawn(async move {
            let mut txn = c.begin_optimistic().await.expect("begin");
            // A failed or abandoned operation leaves the transaction active: dropping it panics.
            txn.put(b"k".to_vec(), b"v".to_vec()).await.expect("put");
        }),
    )
    .await;
    assert!(joined.is_err_and(|e| e.is_panic()));
    let options = TransactionOptions::new_optimistic().drop_check(CheckLevel::Warn);
    let txn = within("begin", CALL, client.begin_with_options(options))
        .await
        .unwrap();
    drop(txn); // only a warning
    double.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_tso_stream_fails_every_timestamp_until_a_reconnect_a_second_later() {
    let double = start(Options::default()).await;
    let client = client(&double).await;
    within("ts", CALL, client.current_timestamp())
        .await
        .unwrap();

    // The stream ends with an error: the client's TSO task is gone, and its retry loop skips
    // reconnecting within a second of the last connect, so every timestamp fails at once.
    double
        .faults()
        .inject_times(Rpc::Tso, Fault::Unavailable, 1);
    for _ in 0..2 {
        let started = Instant::now();
        let err = within("ts", CALL, client.current_timestamp())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("TimestampRequest channel is closed"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(1), "failed fast");
    }
    // A call a second later reconnects (GetMembers again, a new stream) and works.
    let members = double.faults().calls(Rpc::GetMembers);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    within(
        "ts after the reconnect window",
        CALL,
        client.current_timestamp(),
    )
    .await
    .unwrap();
    assert!(double.faults().calls(Rpc::GetMembers) > members);

    // The same after PD refused connections for a while.
    double.stop_serving(Target::Pd, Partition::Refuse);
    assert!(within("ts", CALL, client.current_timestamp())
        .await
        .is_err());
    double.resume(Target::Pd);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    within("ts after PD serves again", CALL, client.current_timestamp())
        .await
        .unwrap();
    double.shutdown().await;
}
