//! Issue 10 at the node: what no API lets through cannot stop the group once committed (an entry that
//! does not decode, a conf change whose context is bad, one Raft refuses: each is a recorded no-op on
//! every replica), and the membership guard rails refuse, before proposing, the changes that would.
//!
//! A deterministic in-process group: nodes over in-memory logs with the echo state machine, driven tick
//! by tick from the test thread, messages delivered at once (a node marked down neither ticks nor sends
//! nor receives).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft::prelude::{ConfChangeSingle, ConfChangeType, ConfChangeV2, ConfState};
use raft_node::membership::Refusal;
use raft_node::{
    Command, Committed, Error, Member, MembershipChange, Node, NodeConfig, Role, UncheckedEntry,
};
use testkit::mem_log::MemLog;
use testkit::single_node::Echo;

const TICK: Duration = Duration::from_millis(20);

struct Group {
    nodes: BTreeMap<u64, Node<MemLog, Echo>>,
    logs: BTreeMap<u64, MemLog>,
    down: BTreeSet<u64>,
    start: Instant,
    ticks: u64,
    logger: slog::Logger,
}

fn config(id: u64) -> NodeConfig {
    let mut cfg = NodeConfig::new(id);
    cfg.tick = TICK;
    cfg.election_tick = 10;
    cfg.heartbeat_tick = 2;
    // Node 1 times out first and leads; the others wait longer.
    cfg.election_timeout_range = Some(if id == 1 { (10, 11) } else { (30, 31) });
    cfg
}

fn member(id: u64) -> Member {
    Member {
        id,
        peer_addr: format!("127.0.0.1:{}", 17_000 + id),
        client_addr: format!("127.0.0.1:{}", 18_000 + id),
    }
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

impl Group {
    /// A new cluster of voters `1..=n`.
    fn new(n: u64) -> Group {
        let voters: Vec<u64> = (1..=n).collect();
        let mut g = Group {
            nodes: BTreeMap::new(),
            logs: (1..=n)
                .map(|id| (id, MemLog::bootstrap(voters.clone())))
                .collect(),
            down: BTreeSet::new(),
            start: Instant::now(),
            ticks: 0,
            logger: slog::Logger::root(slog::Discard, slog::o!()),
        };
        for id in 1..=n {
            g.spawn(id);
        }
        g
    }

    /// Start (or restart) node `id` over its log; a node without one joins with an empty log.
    fn spawn(&mut self, id: u64) {
        let log = self.logs.entry(id).or_default().clone();
        let node = Node::new(config(id), log, Echo::default(), &self.logger)
            .unwrap_or_else(|e| panic!("node {id} does not start: {e}"));
        self.nodes.insert(id, node);
        self.down.remove(&id);
    }

    /// Every node restarted from its log (its state machine replays it).
    fn restart_all(&mut self) {
        self.nodes.clear();
        for id in self.logs.keys().copied().collect::<Vec<_>>() {
            self.spawn(id);
        }
    }

    fn node(&mut self, id: u64) -> &mut Node<MemLog, Echo> {
        self.nodes.get_mut(&id).expect("node runs")
    }

    fn wall(&self) -> u64 {
        1_000_000_000 + self.ticks * 20_000
    }

    /// Proposals flushed, Readys processed and messages delivered until nothing moves.
    fn exchange(&mut self) {
        for _ in 0..100 {
            let wall = self.wall();
            let mut msgs = Vec::new();
            for (id, node) in &mut self.nodes {
                if self.down.contains(id) {
                    continue;
                }
                node.flush_proposals(wall);
                msgs.extend(node.process_ready().expect("the node loop goes on"));
            }
            if msgs.is_empty() {
                return;
            }
            for m in msgs {
                if self.down.contains(&m.to) || self.down.contains(&m.from) {
                    continue;
                }
                if let Some(node) = self.nodes.get_mut(&m.to) {
                    node.step(m);
                }
            }
        }
    }

    fn tick(&mut self, n: u64) {
        for _ in 0..n {
            self.ticks += 1;
            let now = self.start + TICK * u32::try_from(self.ticks).unwrap_or(u32::MAX);
            for (id, node) in &mut self.nodes {
                if !self.down.contains(id) {
                    node.tick(now);
                }
            }
            self.exchange();
        }
    }

    fn leader(&mut self) -> u64 {
        for _ in 0..200 {
            let leaders: Vec<u64> = self
                .nodes
                .iter()
                .filter(|(id, n)| !self.down.contains(id) && n.is_leader())
                .map(|(id, _)| *id)
                .collect();
            if let [id] = leaders[..] {
                return id;
            }
            self.tick(1);
        }
        panic!("no leader");
    }

    /// Handle `cmd` at node `id` and run until its reply.
    fn call<T: Send + 'static>(
        &mut self,
        id: u64,
        make: impl FnOnce(Box<dyn FnOnce(T) + Send>) -> Command<Vec<u8>>,
    ) -> T {
        let slot = Arc::new(Mutex::new(None));
        let put = slot.clone();
        let cmd = make(Box::new(move |r| *put.lock().unwrap() = Some(r)));
        self.node(id).handle(cmd);
        for _ in 0..200 {
            self.exchange();
            if let Some(r) = slot.lock().unwrap().take() {
                return r;
            }
            self.tick(1);
        }
        panic!("no reply from node {id}");
    }

    fn change(&mut self, id: u64, change: MembershipChange) -> Result<ConfState, Error> {
        self.call(id, |reply| Command::ChangeMembership {
            change,
            deadline: far(),
            reply,
        })
    }

    fn propose(&mut self, id: u64, command: &[u8]) -> Result<Committed<Vec<u8>>, Error> {
        let command = command.to_vec();
        self.call(id, |reply| Command::Propose {
            command,
            deadline: far(),
            reply,
        })
    }

    /// The write commits and every running node applies it.
    fn assert_writes(&mut self, leader: u64, command: &[u8]) {
        let done = self
            .propose(leader, command)
            .unwrap_or_else(|e| panic!("a write after all that: {e}"));
        assert_eq!(done.output, command);
        self.tick(5);
        for (id, node) in &self.nodes {
            if !self.down.contains(id) {
                assert!(
                    node.status().applied >= done.index,
                    "node {id} did not apply {}",
                    done.index
                );
            }
        }
    }

    fn voters_and_learners(&mut self, id: u64) -> (Vec<u64>, Vec<u64>) {
        let s = self.node(id).status();
        (s.voters, s.learners)
    }
}

fn conf_change(kind: ConfChangeType, id: u64, context: Vec<u8>) -> ConfChangeV2 {
    let mut single = ConfChangeSingle::default();
    single.set_change_type(kind);
    single.node_id = id;
    let mut cc = ConfChangeV2::default();
    cc.changes.push(single);
    cc.context = context;
    cc
}

/// The context the old encoder wrote for issue 10's request: the peer address (1023 × 'a' then 'é')
/// cut at byte 1024, inside the 'é'.
fn cut_context() -> Vec<u8> {
    let mut out = vec![1u8];
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&9u64.to_be_bytes());
    let addr = format!("{}é", "a".repeat(1023));
    out.extend_from_slice(&1024u16.to_be_bytes());
    out.extend_from_slice(&addr.as_bytes()[..1024]);
    let client = b"127.0.0.1:1";
    out.extend_from_slice(&(client.len() as u16).to_be_bytes());
    out.extend_from_slice(client);
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}

#[test]
fn committed_entries_that_cannot_be_applied_are_no_ops_on_every_replica_and_the_group_goes_on() {
    let mut g = Group::new(3);
    let leader = g.leader();
    g.assert_writes(leader, b"before");
    // Below the API: a normal entry that is no payload, and issue 10's conf change with a cut context.
    g.node(leader)
        .propose_unchecked(UncheckedEntry::Normal(vec![0xff, 1, 2, 3]))
        .expect("proposed");
    g.tick(3);
    g.node(leader)
        .propose_unchecked(UncheckedEntry::ConfChange(conf_change(
            ConfChangeType::AddLearnerNode,
            9,
            cut_context(),
        )))
        .expect("proposed");
    g.tick(5);
    let mut applied = BTreeSet::new();
    for id in 1..=3 {
        let s = g.node(id).status();
        assert_eq!(
            s.counters.entries_unappliable, 2,
            "node {id}: both entries counted"
        );
        assert_eq!(
            (s.voters.clone(), s.learners.clone()),
            (vec![1, 2, 3], vec![])
        );
        assert!(!s.membership.members.contains_key(&9), "node {id}: {s:?}");
        applied.insert(s.applied);
    }
    assert_eq!(
        applied.len(),
        1,
        "every replica applied as far: {applied:?}"
    );
    g.assert_writes(leader, b"after");
    // Membership changes are not blocked by the refused one.
    g.change(leader, MembershipChange::AddLearner(member(4)))
        .expect("a valid learner add");
    assert_eq!(g.voters_and_learners(leader), (vec![1, 2, 3], vec![4]));

    // A full restart replays the log: nothing stops, the configuration is the same.
    g.restart_all();
    let leader = g.leader();
    g.assert_writes(leader, b"after restart");
    for id in 1..=3 {
        assert_eq!(
            g.voters_and_learners(id),
            (vec![1, 2, 3], vec![4]),
            "node {id}"
        );
    }
}

#[test]
fn removing_the_last_voter_is_refused_and_a_committed_removal_is_a_no_op() {
    let mut g = Group::new(1);
    let leader = g.leader();
    assert_eq!(
        g.change(leader, MembershipChange::Remove(1))
            .err()
            .map(|e| e.to_string()),
        Some(Refusal::LastVoter(1).to_string())
    );
    // Below the API (issue 10's `DELETE /v1/cluster/members/1` as it used to commit): raft-rs refuses it
    // at apply ("removed all voters"), and the node goes on as the only voter.
    g.node(leader)
        .propose_unchecked(UncheckedEntry::ConfChange(conf_change(
            ConfChangeType::RemoveNode,
            1,
            Vec::new(),
        )))
        .expect("proposed");
    g.tick(5);
    let s = g.node(1).status();
    assert_eq!(s.counters.entries_unappliable, 1);
    assert_eq!((s.voters, s.role), (vec![1], Role::Leader));
    assert!(!s.membership.removed.contains(&1));
    g.assert_writes(1, b"still writable");
    g.restart_all();
    let leader = g.leader();
    g.assert_writes(leader, b"after restart");
}

#[test]
fn a_new_voter_joins_as_a_learner_and_is_promoted_once_caught_up_one_change_at_a_time() {
    let mut g = Group::new(3);
    let leader = g.leader();
    for i in 0..20u32 {
        g.assert_writes(leader, &i.to_be_bytes());
    }
    let refused = |r: Result<ConfState, Error>| match r {
        Err(Error::Membership(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    };
    // A direct voter add changes nothing.
    assert_eq!(
        refused(g.change(leader, MembershipChange::AddVoter(member(4)))),
        Refusal::LearnerFirst(4)
    );
    assert_eq!(g.voters_and_learners(leader), (vec![1, 2, 3], vec![]));
    // Invalid requests are refused before anything else.
    let bad = Member {
        peer_addr: format!("{}é", "a".repeat(1023)),
        ..member(9)
    };
    assert!(matches!(
        refused(g.change(leader, MembershipChange::AddLearner(bad))),
        Refusal::InvalidMember(_)
    ));
    // As a learner it is added; not running yet, it cannot be promoted.
    g.change(leader, MembershipChange::AddLearner(member(4)))
        .expect("learner added");
    assert!(matches!(
        refused(g.change(leader, MembershipChange::Promote(4))),
        Refusal::NotCaughtUp {
            id: 4,
            active: false,
            ..
        }
    ));
    // A second change while one is in flight: both handled in the same turn.
    let first = Arc::new(Mutex::new(None));
    let second = Arc::new(Mutex::new(None));
    for (change, slot) in [
        (MembershipChange::AddLearner(member(5)), first.clone()),
        (MembershipChange::AddLearner(member(6)), second.clone()),
    ] {
        g.node(leader).handle(Command::ChangeMembership {
            change,
            deadline: far(),
            reply: Box::new(move |r| *slot.lock().unwrap() = Some(r)),
        });
    }
    g.tick(5);
    assert!(first.lock().unwrap().take().expect("answered").is_ok());
    assert_eq!(
        refused(second.lock().unwrap().take().expect("answered")),
        Refusal::ChangeInProgress
    );
    assert_eq!(g.voters_and_learners(leader), (vec![1, 2, 3], vec![4, 5]));
    g.change(leader, MembershipChange::Remove(5))
        .expect("remove learner 5");
    // Removed ids are never reused; members are not added twice; non-members are not removed.
    assert_eq!(
        refused(g.change(leader, MembershipChange::AddLearner(member(5)))),
        Refusal::IdRemoved(5)
    );
    assert_eq!(
        refused(g.change(leader, MembershipChange::AddLearner(member(2)))),
        Refusal::AlreadyMember(2)
    );
    assert_eq!(
        refused(g.change(leader, MembershipChange::Remove(7))),
        Refusal::NotMember(7)
    );
    // Node 4 starts, catches up, and is promoted. (It starts from the founding configuration: this
    // harness's state machine takes no snapshot, and a node without one asks for a snapshot.)
    g.logs.insert(4, MemLog::bootstrap(vec![1, 2, 3]));
    g.spawn(4);
    g.tick(20);
    let cs = g
        .change(leader, MembershipChange::Promote(4))
        .expect("promoted once caught up");
    assert_eq!(cs.voters.len(), 4);
    assert_eq!(g.voters_and_learners(leader), (vec![1, 2, 3, 4], vec![]));
    g.assert_writes(leader, b"four voters");
}

#[test]
fn a_change_that_leaves_fewer_healthy_voters_than_a_quorum_is_refused() {
    let mut g = Group::new(3);
    let leader = g.leader();
    assert_eq!(leader, 1);
    g.assert_writes(leader, b"x");
    // Node 3 stops; the leader has not heard from it for an election timeout.
    g.down.insert(3);
    g.tick(15);
    // Removing the healthy node 2 would leave voters {1, 3} with only 1 healthy: the group would stop.
    match g.change(leader, MembershipChange::Remove(2)) {
        Err(Error::Membership(Refusal::QuorumAtRisk {
            healthy: 1,
            voters: 2,
            quorum: 2,
        })) => {}
        other => panic!("expected quorum_at_risk, got {other:?}"),
    }
    assert_eq!(g.voters_and_learners(leader), (vec![1, 2, 3], vec![]));
    g.assert_writes(leader, b"still writable");
    // Removing the dead one keeps a healthy quorum: allowed.
    g.change(leader, MembershipChange::Remove(3))
        .expect("remove the dead voter");
    assert_eq!(g.voters_and_learners(leader), (vec![1, 2], vec![]));
    g.assert_writes(leader, b"two voters");
}
