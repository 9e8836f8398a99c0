//! `TikvDouble`: one PD and one TiKV server on loopback, their shared state, and the controls.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::conn::{self, ConnId, Partition, Registry};
use crate::faults::{Fault, Faults, RegionError, Rpc};
use crate::mvcc::{Lock, Mvcc, TxnError};
use crate::proto::pdpb::pd_server::PdServer;
use crate::proto::tikvpb::tikv_server::TikvServer;
use crate::regions::Regions;
use crate::tso::Tso;
use crate::{pd, tikv};

/// How to start a double.
#[derive(Clone, Debug)]
pub struct Options {
    /// The cluster id PD reports.
    pub cluster_id: u64,
    /// Split the keyspace into two regions at this raw key (both on the one store).
    pub split_key: Option<Vec<u8>>,
    /// Serve PD and TiKV over mutual TLS (as a real cluster with `security` set does).
    pub tls: Option<ServerTls>,
}

/// The double's TLS: its certificate and key, and the CA its clients' certificates must be signed by
/// (all PEM).
#[derive(Clone)]
pub struct ServerTls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub client_ca_pem: Vec<u8>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls { .. }")
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            cluster_id: 7,
            split_key: None,
            tls: None,
        }
    }
}

/// Which server a partition applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Pd,
    Tikv,
    Both,
}

/// What a handler does after consulting the fault table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    Proceed,
    RegionError(RegionError),
    PdError,
    MissingHeader,
    NoLeader,
    DropAfterApply,
}

/// State shared by both servers and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub cluster_id: u64,
    pub pd_url: String,
    pub tikv_addr: String,
    pub regions: Regions,
    pub tso: Tso,
    pub faults: Faults,
    pub pd_conns: Arc<Registry>,
    pub tikv_conns: Arc<Registry>,
    mvcc: Mutex<Mvcc>,
    pub gc_safe_point: Mutex<u64>,
}

impl Shared {
    pub fn mvcc(&self) -> MutexGuard<'_, Mvcc> {
        self.mvcc.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Count the call and apply its fault: an error status, a wait, or what the handler must
    /// change in its answer.
    pub async fn gate(&self, rpc: Rpc) -> Result<Gate, tonic::Status> {
        let fault = self.faults.on_call(rpc);
        self.apply(rpc, fault).await
    }

    pub async fn apply(&self, rpc: Rpc, fault: Option<Fault>) -> Result<Gate, tonic::Status> {
        Ok(match fault {
            None => Gate::Proceed,
            Some(Fault::Unavailable) => {
                return Err(tonic::Status::unavailable(format!(
                    "tikv-double: {rpc:?} unavailable (injected)"
                )))
            }
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                Gate::Proceed
            }
            Some(Fault::Hang) => {
                while self.faults.hangs(rpc) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Gate::Proceed
            }
            Some(Fault::RegionError(e)) => Gate::RegionError(e),
            Some(Fault::PdError) => Gate::PdError,
            Some(Fault::MissingHeader) => Gate::MissingHeader,
            Some(Fault::NoLeader) => Gate::NoLeader,
            Some(Fault::DropAfterApply) => Gate::DropAfterApply,
        })
    }

    /// Drop the connection a request came on and never answer it.
    pub async fn drop_connection<T>(&self, conn: Option<ConnId>, registry: &Registry) -> T {
        match conn {
            Some(id) => registry.kill(id),
            None => tracing::warn!("tikv-double: request without connection id; hanging instead"),
        }
        std::future::pending().await
    }
}

/// A running double. Dropping it stops the servers (`shutdown` also waits for them).
#[derive(Debug)]
pub struct TikvDouble {
    shared: Arc<Shared>,
    pd_addr: String,
    stop: Vec<oneshot::Sender<()>>,
    servers: Vec<JoinHandle<()>>,
}

impl TikvDouble {
    /// Start PD and TiKV on `127.0.0.1:0` listeners. Call from within a tokio runtime.
    pub async fn start(opts: Options) -> io::Result<Self> {
        let pd_listener = TcpListener::bind("127.0.0.1:0").await?;
        let tikv_listener = TcpListener::bind("127.0.0.1:0").await?;
        let pd_addr = pd_listener.local_addr()?.to_string();
        let tikv_addr = tikv_listener.local_addr()?.to_string();
        let shared = Arc::new(Shared {
            cluster_id: opts.cluster_id,
            pd_url: format!(
                "{}://{pd_addr}",
                if opts.tls.is_some() { "https" } else { "http" }
            ),
            tikv_addr,
            regions: Regions::new(opts.split_key),
            tso: Tso::default(),
            faults: Faults::default(),
            pd_conns: Arc::default(),
            tikv_conns: Arc::default(),
            mvcc: Mutex::new(Mvcc::new()),
            gc_safe_point: Mutex::new(0),
        });
        let (pd_stop, pd_stopped) = oneshot::channel::<()>();
        let (tikv_stop, tikv_stopped) = oneshot::channel::<()>();
        let server = || -> io::Result<Server> {
            let builder = Server::builder();
            match &opts.tls {
                None => Ok(builder),
                Some(t) => {
                    let tls = ServerTlsConfig::new()
                        .identity(Identity::from_pem(&t.cert_pem, &t.key_pem))
                        .client_ca_root(Certificate::from_pem(&t.client_ca_pem));
                    builder
                        .tls_config(tls)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
                }
            }
        };
        let pd_server = server()?
            .add_service(PdServer::new(pd::PdService::new(shared.clone())))
            .serve_with_incoming_shutdown(
                conn::incoming(pd_listener, shared.pd_conns.clone()),
                async {
                    let _ = pd_stopped.await;
                },
            );
        let tikv_server = server()?
            .add_service(TikvServer::new(tikv::TikvService::new(shared.clone())))
            .serve_with_incoming_shutdown(
                conn::incoming(tikv_listener, shared.tikv_conns.clone()),
                async {
                    let _ = tikv_stopped.await;
                },
            );
        let servers = vec![
            tokio::spawn(async move {
                if let Err(e) = pd_server.await {
                    tracing::warn!(error = %e, "tikv-double: PD server ended");
                }
            }),
            tokio::spawn(async move {
                if let Err(e) = tikv_server.await {
                    tracing::warn!(error = %e, "tikv-double: TiKV server ended");
                }
            }),
        ];
        Ok(Self {
            shared,
            pd_addr,
            stop: vec![pd_stop, tikv_stop],
            servers,
        })
    }

    /// The PD endpoint to give `TransactionClient::new` (`127.0.0.1:port`).
    pub fn pd_endpoint(&self) -> String {
        self.pd_addr.clone()
    }

    /// The TiKV store's address, as PD advertises it.
    pub fn tikv_address(&self) -> String {
        self.shared.tikv_addr.clone()
    }

    /// The fault table: inject, clear, count calls. Changes apply to the next call.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Stop serving (a partition): see [`Partition`].
    pub fn stop_serving(&self, target: Target, how: Partition) {
        for registry in self.registries(target) {
            registry.stop(how);
        }
    }

    /// Serve again after [`TikvDouble::stop_serving`].
    pub fn resume(&self, target: Target) {
        for registry in self.registries(target) {
            registry.resume();
        }
    }

    fn registries(&self, target: Target) -> Vec<&Registry> {
        match target {
            Target::Pd => vec![&self.shared.pd_conns],
            Target::Tikv => vec![&self.shared.tikv_conns],
            Target::Both => vec![&self.shared.pd_conns, &self.shared.tikv_conns],
        }
    }

    /// Move the TSO's clock forward: locks whose TTL then passed count as abandoned.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.tso.advance(by);
    }

    /// A fresh timestamp from the double's TSO.
    pub fn current_ts(&self) -> u64 {
        self.shared.tso.next_version()
    }

    /// The value a snapshot at `ts` sees, read directly (no RPC, no fault); a lock that stops
    /// the read is `TxnError::Locked`.
    pub fn read_at(&self, key: &[u8], ts: u64) -> Result<Option<Vec<u8>>, TxnError> {
        self.shared.mvcc().get(key, ts)
    }

    /// Every committed key under `prefix` with its value, as a snapshot at a fresh timestamp sees
    /// them, read directly (no RPC, no fault): the test side's view of the central state. A lock that
    /// stops the read is an item carrying `TxnError::Locked`.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Vec<crate::mvcc::ScanItem> {
        let mut end = prefix.to_vec();
        while let Some(last) = end.pop() {
            if last < 0xFF {
                end.push(last + 1);
                break;
            }
        }
        let range = crate::mvcc::KeyRange {
            start: prefix.to_vec(),
            end,
        };
        let ts = self.current_ts();
        self.shared.mvcc().scan(&range, 0, ts, false)
    }

    /// [`TikvDouble::scan_prefix`] once no transaction holds a lock under `prefix`: a lock is read again
    /// every 10 ms (a client's transaction in flight), and one still there after `within` (longer than a
    /// lock's TTL: left behind for good) panics with the lock. Blocks the calling thread: from tests on
    /// a multi-thread runtime only.
    pub fn scan_prefix_settled(&self, prefix: &[u8], within: Duration) -> Vec<(Vec<u8>, Vec<u8>)> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let items = self.scan_prefix(prefix);
            match items.iter().find_map(|(_, v)| v.as_ref().err()) {
                None => {
                    return items
                        .into_iter()
                        .filter_map(|(k, v)| v.ok().map(|v| (k, v)))
                        .collect()
                }
                Some(lock) if std::time::Instant::now() >= deadline => {
                    panic!("a lock left behind under the prefix after {within:?}: {lock:?}")
                }
                Some(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// The lock on `key`, if any.
    pub fn lock_of(&self, key: &[u8]) -> Option<Lock> {
        self.shared.mvcc().lock_of(key)
    }

    /// The GC safe point PD holds.
    pub fn gc_safe_point(&self) -> u64 {
        *self
            .shared
            .gc_safe_point
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Stop both servers, drop every connection and wait for the servers to end.
    pub async fn shutdown(mut self) {
        self.stop_now();
        for server in self.servers.drain(..) {
            let _ = server.await;
        }
    }

    fn stop_now(&mut self) {
        for stop in self.stop.drain(..) {
            let _ = stop.send(());
        }
        // Connections are served by their own tasks: end them, or they outlive the server.
        self.shared.pd_conns.stop(Partition::Refuse);
        self.shared.tikv_conns.stop(Partition::Refuse);
    }
}

impl Drop for TikvDouble {
    fn drop(&mut self) {
        self.stop_now();
    }
}
