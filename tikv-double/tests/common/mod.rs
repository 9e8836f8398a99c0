//! Helpers for driving the real tikv-client 0.4 against the double. tikv-client has no deadline of
//! its own on connecting, on `GetMembers` or on the TSO stream, so every call here is under one.

#![allow(dead_code)] // each test binary uses its own subset

use std::future::Future;
use std::time::{Duration, Instant};

use tikv_client::{Config, Error, Snapshot, TransactionClient, TransactionOptions};
use tikv_double::{Options, TikvDouble};

/// Enough for any call the double answers, retries included (tikv-client's region backoff sums to
/// about 1.5 s, its PD reconnect loop to about 5 s).
pub const CALL: Duration = Duration::from_secs(20);

/// The per-RPC timeout the clients here use (tikv-client's default is 2 s).
pub const RPC_TIMEOUT: Duration = Duration::from_millis(500);

/// Await `fut` under `limit`, failing the test with `what` if it does not finish.
pub async fn within<T>(what: &str, limit: Duration, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: no answer within {limit:?}"),
    }
}

pub async fn start(opts: Options) -> TikvDouble {
    TikvDouble::start(opts).await.expect("start the double")
}

pub fn config() -> Config {
    Config::default().with_timeout(RPC_TIMEOUT)
}

pub async fn connect(double: &TikvDouble) -> Result<TransactionClient, Error> {
    within(
        "connect",
        CALL,
        TransactionClient::new_with_config(vec![double.pd_endpoint()], config()),
    )
    .await
}

pub async fn client(double: &TikvDouble) -> TransactionClient {
    connect(double).await.expect("connect to the double")
}

/// Write `pairs` in one optimistic transaction; on failure roll back (so the transaction is not
/// dropped active, which panics) and return the commit's error.
pub async fn write(client: &TransactionClient, pairs: &[(&str, &str)]) -> Result<(), Error> {
    let mut txn = within("begin", CALL, client.begin_optimistic()).await?;
    for (k, v) in pairs {
        txn.put(k.as_bytes().to_vec(), v.as_bytes().to_vec())
            .await?;
    }
    match within("commit", CALL, txn.commit()).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let _ = within("rollback", CALL, txn.rollback()).await;
            Err(e)
        }
    }
}

/// A read-only snapshot at a fresh timestamp.
pub async fn snapshot(client: &TransactionClient) -> Snapshot {
    let ts = within("timestamp", CALL, client.current_timestamp())
        .await
        .expect("a timestamp");
    client.snapshot(ts, TransactionOptions::new_optimistic())
}

pub async fn read(client: &TransactionClient, key: &str) -> Result<Option<String>, Error> {
    let mut snap = snapshot(client).await;
    let value = within("get", CALL, snap.get(key.as_bytes().to_vec())).await?;
    Ok(value.map(|v| String::from_utf8(v).expect("utf-8 test value")))
}

/// A fresh client writes and reads back: the double (and its faults) are healthy again.
pub async fn fresh_client_works(double: &TikvDouble) {
    let client = client(double).await;
    write(&client, &[("recovery", "ok")])
        .await
        .expect("write after recovery");
    assert_eq!(
        read(&client, "recovery").await.expect("read"),
        Some("ok".to_owned())
    );
}

/// End a fault test: clear every fault, show a fresh client works, shut the double down.
pub async fn clear_faults_and_check_recovery(double: TikvDouble) {
    double.faults().clear_all();
    fresh_client_works(&double).await;
    double.shutdown().await;
}

/// Whether `e`, or an error inside it, is a key error satisfying `pred`.
pub fn has_key_error(e: &Error, pred: &dyn Fn(&tikv_client::ProtoKeyError) -> bool) -> bool {
    match e {
        Error::KeyError(k) => pred(k),
        Error::MultipleKeyErrors(v) | Error::ExtractedErrors(v) => {
            v.iter().any(|e| has_key_error(e, pred))
        }
        Error::UndeterminedError(inner) => has_key_error(inner, pred),
        Error::PessimisticLockError { inner, .. } => has_key_error(inner, pred),
        _ => false,
    }
}

/// Whether `e`, or an error inside it, is a region error satisfying `pred`.
pub fn has_region_error(e: &Error, pred: &dyn Fn(&tikv_client::ProtoRegionError) -> bool) -> bool {
    match e {
        Error::RegionError(r) => pred(r),
        Error::MultipleKeyErrors(v) | Error::ExtractedErrors(v) => {
            v.iter().any(|e| has_region_error(e, pred))
        }
        _ => false,
    }
}

/// Whether `e`, or an error inside it, is a gRPC status.
pub fn is_grpc_status(e: &Error) -> bool {
    match e {
        Error::GrpcAPI(_) | Error::Grpc(_) => true,
        Error::MultipleKeyErrors(v) | Error::ExtractedErrors(v) => v.iter().any(is_grpc_status),
        Error::UndeterminedError(inner) => is_grpc_status(inner),
        _ => false,
    }
}

/// Poll `cond` every 10 ms until it holds or `limit` passes.
pub async fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
