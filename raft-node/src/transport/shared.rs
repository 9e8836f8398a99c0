//! State shared by the transport's tasks: configuration, counters, membership, and the lifecycle (one
//! change signal every task watches, and a tracker so shutdown can wait for all of them).
//!
//! The tasks depend on this module, never the reverse: it holds links but does not know how a link's
//! writer works ([`Shared::set_peers`] is handed the function that starts one).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use raft::prelude::Message;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::counters::Counters;
use super::handshake::{Local, Me, Standing};
use super::tls::PeerTls;
use super::{Inbound, Peer, SnapshotSource, TransportConfig};

/// One current peer: its outbound queue and the generation (`epoch`) of its writer task.
pub(crate) struct Link {
    pub addr: String,
    pub epoch: u64,
    pub tx: mpsc::Sender<Message>,
    /// A snapshot transfer to this peer is in flight.
    pub snapshot_busy: Arc<AtomicBool>,
}

#[derive(Default)]
pub(crate) struct Members {
    pub links: HashMap<u64, Link>,
    pub removed: HashSet<u64>,
    /// The newest accepted raft stream per sender; older ones are closed.
    pub latest_inbound: HashMap<u64, u64>,
}

impl Members {
    pub(crate) fn standing(&self, id: u64) -> Standing {
        if self.removed.contains(&id) {
            Standing::Removed
        } else if self.links.contains_key(&id) {
            Standing::Member
        } else {
            Standing::Unknown
        }
    }

    pub(crate) fn admits(&self, id: u64) -> bool {
        self.standing(id) == Standing::Member
    }

    /// The writer (or snapshot sender) of generation `epoch` for `peer` is still wanted.
    pub(crate) fn is_current(&self, peer: u64, epoch: u64) -> bool {
        self.links.get(&peer).is_some_and(|l| l.epoch == epoch)
    }
}

/// Tracks spawned tasks: each holds a clone of the guard; shutdown drops the original and waits until
/// the channel reports that every clone is gone.
struct Tasks {
    guard: Mutex<Option<mpsc::Sender<()>>>,
    done: tokio::sync::Mutex<mpsc::Receiver<()>>,
}

pub(crate) struct Shared {
    pub cfg: TransportConfig,
    /// Peer TLS, when on (loaded from `cfg.tls`).
    pub tls: Option<PeerTls>,
    pub counters: Counters,
    pub inbound: Arc<dyn Inbound>,
    pub source: Arc<dyn SnapshotSource>,
    pub local_addr: SocketAddr,
    members: Mutex<Members>,
    /// Bumped on every membership change and on shutdown; tasks re-check their stop condition.
    changed: watch::Sender<u64>,
    shutting_down: AtomicBool,
    next_id: AtomicU64,
    tasks: Tasks,
    runtime: Handle,
    span: tracing::Span,
}

impl Shared {
    /// Must be called on a tokio runtime: the transport's tasks run there.
    pub(crate) fn new(
        cfg: TransportConfig,
        tls: Option<PeerTls>,
        inbound: Arc<dyn Inbound>,
        source: Arc<dyn SnapshotSource>,
        local_addr: SocketAddr,
    ) -> Arc<Shared> {
        let (guard, done) = mpsc::channel(1);
        let span = tracing::info_span!("transport", node = cfg.node_id);
        Arc::new(Shared {
            cfg,
            tls,
            counters: Counters::default(),
            inbound,
            source,
            local_addr,
            members: Mutex::new(Members::default()),
            changed: watch::Sender::new(0),
            shutting_down: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            tasks: Tasks {
                guard: Mutex::new(Some(guard)),
                done: tokio::sync::Mutex::new(done),
            },
            runtime: Handle::current(),
            span,
        })
    }

    pub(crate) fn members(&self) -> MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn local(&self) -> Local<'_> {
        Local {
            cluster_id: &self.cfg.cluster_id,
            node_id: self.cfg.node_id,
            secret: &self.cfg.secret,
        }
    }

    pub(crate) fn me(&self) -> Me<'_> {
        Me {
            cluster_id: &self.cfg.cluster_id,
            node_id: self.cfg.node_id,
            secret: &self.cfg.secret,
            advertise_peer: &self.cfg.advertise_peer,
            advertise_client: &self.cfg.advertise_client,
        }
    }

    fn notify(&self) {
        self.changed.send_modify(|generation| *generation += 1);
    }

    /// Resolves once the transport shuts down or `stop(members)` holds (re-checked on every change).
    pub(crate) async fn stopped(&self, stop: impl Fn(&Members) -> bool) {
        let mut changes = self.changed.subscribe();
        loop {
            if self.shutting_down.load(Ordering::SeqCst) || stop(&self.members()) {
                return;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Spawn a tracked task that is cancelled at shutdown. `false` if already shutting down.
    pub(crate) fn spawn(self: &Arc<Self>, task: impl Future<Output = ()> + Send + 'static) -> bool {
        let guard = match &*self
            .tasks
            .guard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(guard) => guard.clone(),
            None => return false,
        };
        let me = self.clone();
        let task = async move {
            tokio::select! {
                () = task => {}
                () = me.stopped(|_| false) => {}
            }
            drop(guard);
        };
        self.runtime.spawn(task.instrument(self.span.clone()));
        true
    }

    /// Replace the current peers. A peer that is new, or whose address changed, gets a link from
    /// `new_link` (which starts its writer); links of peers no longer present are dropped.
    pub(crate) fn set_peers(&self, peers: Vec<Peer>, mut new_link: impl FnMut(Peer) -> Link) {
        {
            let mut members = self.members();
            let mut links = HashMap::new();
            for peer in peers {
                if peer.id == self.cfg.node_id || links.contains_key(&peer.id) {
                    continue;
                }
                let id = peer.id;
                let link = match members.links.remove(&id) {
                    Some(link) if link.addr == peer.addr => link,
                    _ => new_link(peer),
                };
                links.insert(id, link);
            }
            // Dropping the old links closes their queues; their writers also see the change below.
            members.links = links;
            let Members {
                links,
                latest_inbound,
                ..
            } = &mut *members;
            latest_inbound.retain(|id, _| links.contains_key(id));
        }
        self.notify();
    }

    pub(crate) fn set_removed(&self, removed: Vec<u64>) {
        self.members().removed = removed.into_iter().collect();
        self.notify();
    }

    /// Record a newly accepted raft stream from `sender`; returns its id. Older streams from the same
    /// sender stop (see [`Members::latest_inbound`]).
    pub(crate) fn register_inbound(&self, sender: u64) -> u64 {
        let conn = self.next_id();
        self.members().latest_inbound.insert(sender, conn);
        self.notify();
        conn
    }

    pub(crate) async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.tasks
            .guard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.notify();
        let mut done = self.tasks.done.lock().await;
        while done.recv().await.is_some() {}
        let links = std::mem::take(&mut self.members().links);
        drop(links);
        tracing::info!(node = self.cfg.node_id, "transport stopped");
    }
}
