//! Who the members are and how to reach them, plus the ids that were removed (never reused).
//!
//! Raft's `ConfState` knows only ids. The addresses travel in the `context` of the `ConfChangeV2` that
//! adds a node, and the whole table travels in the data of a Raft snapshot, so every replica derives the
//! same table from the log. It is persisted with the conf state (one batch), so a restart keeps it.
//!
//! Encoding (versioned, bounded, never panics on bad bytes): `1u8`, conf_index u64, member count u32, per member
//! `id u64 | peer_addr (u16 len + UTF-8) | client_addr (u16 len + UTF-8)`, removed count u32, ids u64 — all
//! big-endian. A conf change context is the same encoding with an empty removed list. The encoder is total:
//! it refuses (never truncates) what the decoder would refuse, so whatever it produced decodes again.
//!
//! What may be proposed is decided before proposing ([`MembershipChange::validate`], [`Membership::check`]
//! and the node's guard rails, all answering a [`Refusal`]): a committed conf change is always appliable.
//! A committed one that still is not (written by another binary, or corrupted) is applied as a recorded
//! no-op by the node, identically on every replica (see `Node::apply_conf_change`).

use std::collections::{BTreeMap, BTreeSet};

use raft::prelude::{ConfChangeType, ConfChangeV2};

use crate::error::Error;

const FORMAT: u8 = 1;
/// Longest address the encoding carries (and the decoder accepts). Addresses proposed through the API are
/// held to [`MAX_ADDR_LEN`], well inside it; the handshake's fields are bounded by the same 1024.
const MAX_ADDR: usize = 1024;
/// Longest `host:port` a member may be added with.
pub const MAX_ADDR_LEN: usize = 255;
/// Largest node id a member may be added with: ids fit a signed 64-bit integer, so every JSON client and
/// metrics label carries them exactly, and the next id picked after the highest one never overflows.
pub const MAX_NODE_ID: u64 = i64::MAX as u64;

/// Why a membership change is refused before anything is proposed. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request itself is invalid: a bad address or id.
    #[error("{0}")]
    InvalidMember(String),
    /// Remove or promote a node that is not a member.
    #[error("node {0} is not a member")]
    NotMember(u64),
    /// Add a node that is already a member (or promote one that is already a voter).
    #[error("node {0} is already a member")]
    AlreadyMember(u64),
    /// Add a node whose id was removed: removed ids are never reused.
    #[error("node id {0} was removed from the group; node ids are never reused (add the machine under a new id)")]
    IdRemoved(u64),
    /// Remove the only voter: the group would have no one to decide anything.
    #[error("node {0} is the last voter; a group without voters can never commit again")]
    LastVoter(u64),
    /// After the change, fewer voters would be healthy than its quorum needs: it could stop the group.
    #[error(
        "refused: after this change {healthy} of its {voters} voters would be healthy, fewer than the \
         quorum of {quorum} it needs; bring members back (or remove unhealthy ones) first"
    )]
    QuorumAtRisk {
        healthy: usize,
        voters: usize,
        quorum: usize,
    },
    /// A new node joins as a learner first; it becomes a voter by promotion once caught up.
    #[error(
        "node {0} is not a member yet: a new node joins as a learner (\"learner\": true), catches up, and \
         is then promoted (the same request with \"learner\": false); it is never added directly as a voter"
    )]
    LearnerFirst(u64),
    /// The learner to promote is not caught up with the leader (or not heard from lately).
    #[error(
        "learner {id} is not caught up yet (it has {matched} of the leader's {commit} committed entries{active}); \
         it is promoted once it is within {lag} entries and answering",
        active = if *.active { "" } else { ", and it is not answering" },
        lag = PROMOTE_MAX_LAG
    )]
    NotCaughtUp {
        id: u64,
        matched: u64,
        commit: u64,
        active: bool,
    },
    /// Another membership change is still in flight (proposed, not yet applied).
    #[error("another membership change is in progress; retry once it is applied")]
    ChangeInProgress,
}

/// A learner is caught up (may be promoted) once its log is within this many entries of the leader's
/// commit index, and it answered the leader within the last election timeout.
pub const PROMOTE_MAX_LAG: u64 = 1_000;

/// What an address looks like, for error messages.
pub const ADDR_EXPECTED: &str =
    "expected HOST:PORT such as node1:7380, 10.0.0.1:7380 or [fd00::1]:7380";

/// Why `addr` cannot be a member's address: `host:port`, the host a DNS name or an IP (IPv6 in
/// brackets), the port 1–65535, at most [`MAX_ADDR_LEN`] bytes.
pub fn check_addr(addr: &str) -> Result<(), String> {
    if addr.len() > MAX_ADDR_LEN {
        return Err(format!(
            "{} bytes long, more than {MAX_ADDR_LEN}; {ADDR_EXPECTED}",
            addr.len()
        ));
    }
    if let Ok(sock) = addr.parse::<std::net::SocketAddr>() {
        if sock.ip().is_unspecified() {
            return Err(format!("{} cannot be dialed; {ADDR_EXPECTED}", sock.ip()));
        }
        if sock.port() == 0 {
            return Err(format!("port 0 cannot be dialed; {ADDR_EXPECTED}"));
        }
        return Ok(());
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!("no port; {ADDR_EXPECTED}"));
    };
    match port.parse::<u16>() {
        Ok(p) if p >= 1 && !port.starts_with('+') => {}
        _ => return Err(format!("bad port {port:?}; {ADDR_EXPECTED}")),
    }
    if !is_host_name(host) {
        return Err(format!("bad host; {ADDR_EXPECTED}"));
    }
    Ok(())
}

/// Whether `host` is a DNS name as addresses use them: 1–253 bytes of dot-separated labels, each 1–63 of
/// `[A-Za-z0-9_-]`, not starting or ending with `-`.
pub fn is_host_name(host: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    !host.is_empty() && host.len() <= 253 && host.split('.').all(label_ok)
}

/// Why `id` cannot be a member's id: 0 is reserved, and ids stay at most [`MAX_NODE_ID`].
pub fn check_id(id: u64) -> Result<(), String> {
    match id {
        0 => Err("node id 0 is reserved".into()),
        id if id > MAX_NODE_ID => Err(format!("node id {id} is larger than {MAX_NODE_ID}")),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Member {
    pub id: u64,
    /// `host:port` other nodes dial for Raft traffic.
    pub peer_addr: String,
    /// `host:port` of the node's client (HTTP) API; empty if not known yet.
    pub client_addr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membership {
    /// The log index up to which conf changes are reflected here and in the persisted `ConfState`
    /// (the last conf change applied, or the index of the snapshot the table came with). A conf change
    /// entry at or below it is not applied again after a restart.
    pub conf_index: u64,
    pub members: BTreeMap<u64, Member>,
    /// Ids removed from the group: refused by the transport and never added again.
    pub removed: BTreeSet<u64>,
}

/// A membership change as an operator asks for it (one node at a time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    /// A new node joins as a learner (no vote) and catches up.
    AddLearner(Member),
    /// A new node joins directly as a voter.
    AddVoter(Member),
    /// A learner becomes a voter.
    Promote(u64),
    /// A member leaves; its id is never accepted again.
    Remove(u64),
}

impl MembershipChange {
    /// The node the change is about.
    pub fn node_id(&self) -> u64 {
        match self {
            MembershipChange::AddLearner(m) | MembershipChange::AddVoter(m) => m.id,
            MembershipChange::Promote(id) | MembershipChange::Remove(id) => *id,
        }
    }

    /// Everything the request itself says must be valid: the id, and a new member's addresses (its peer
    /// address is required, its client address optional).
    pub fn validate(&self) -> Result<(), Refusal> {
        let invalid = Refusal::InvalidMember;
        check_id(self.node_id()).map_err(invalid)?;
        if let MembershipChange::AddLearner(m) | MembershipChange::AddVoter(m) = self {
            check_addr(&m.peer_addr).map_err(|e| invalid(format!("peer_addr: {e}")))?;
            if !m.client_addr.is_empty() {
                check_addr(&m.client_addr).map_err(|e| invalid(format!("client_addr: {e}")))?;
            }
        }
        Ok(())
    }

    /// The raft-rs conf change for this request (its context carries the new member's addresses). Refuses
    /// (never truncates) addresses the encoding cannot carry; [`MembershipChange::validate`] refuses far
    /// more, and is what a caller checks first.
    pub fn to_conf_change(&self) -> Result<ConfChangeV2, Error> {
        let (kind, id, member) = match self {
            MembershipChange::AddLearner(m) => (ConfChangeType::AddLearnerNode, m.id, Some(m)),
            MembershipChange::AddVoter(m) => (ConfChangeType::AddNode, m.id, Some(m)),
            MembershipChange::Promote(id) => (ConfChangeType::AddNode, *id, None),
            MembershipChange::Remove(id) => (ConfChangeType::RemoveNode, *id, None),
        };
        let mut single = raft::prelude::ConfChangeSingle::default();
        single.set_change_type(kind);
        single.node_id = id;
        let mut cc = ConfChangeV2::default();
        cc.changes.push(single);
        if let Some(m) = member {
            let ctx = Membership {
                conf_index: 0,
                members: BTreeMap::from([(m.id, m.clone())]),
                removed: BTreeSet::new(),
            };
            cc.context = ctx.encode()?;
        }
        Ok(cc)
    }
}

impl Membership {
    /// The initial table of a new cluster (`--initial-cluster`): ids and peer addresses.
    pub fn initial(peers: impl IntoIterator<Item = (u64, String)>) -> Self {
        Membership {
            conf_index: 0,
            members: peers
                .into_iter()
                .map(|(id, peer_addr)| {
                    (
                        id,
                        Member {
                            id,
                            peer_addr,
                            client_addr: String::new(),
                        },
                    )
                })
                .collect(),
            removed: BTreeSet::new(),
        }
    }

    /// Refuse a change that would reuse a removed id, add an existing member, touch a non-member, or
    /// remove the last voter.
    pub fn check(
        &self,
        cc: &ConfChangeV2,
        voters: &[u64],
        learners: &[u64],
    ) -> Result<(), Refusal> {
        for ch in &cc.changes {
            let id = ch.node_id;
            check_id(id).map_err(Refusal::InvalidMember)?;
            let known = voters.contains(&id) || learners.contains(&id);
            match ch.get_change_type() {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode
                    if self.removed.contains(&id) =>
                {
                    return Err(Refusal::IdRemoved(id))
                }
                ConfChangeType::AddNode if voters.contains(&id) => {
                    return Err(Refusal::AlreadyMember(id))
                }
                ConfChangeType::AddLearnerNode if known => return Err(Refusal::AlreadyMember(id)),
                ConfChangeType::RemoveNode if !known => return Err(Refusal::NotMember(id)),
                ConfChangeType::RemoveNode if voters == [id] => return Err(Refusal::LastVoter(id)),
                _ => {}
            }
        }
        Ok(())
    }

    /// The voters after `cc` is applied to a group with `voters` (simple changes only).
    pub fn voters_after(cc: &ConfChangeV2, voters: &[u64]) -> Vec<u64> {
        let mut next: BTreeSet<u64> = voters.iter().copied().collect();
        for ch in &cc.changes {
            match ch.get_change_type() {
                ConfChangeType::AddNode => {
                    next.insert(ch.node_id);
                }
                ConfChangeType::RemoveNode | ConfChangeType::AddLearnerNode => {
                    next.remove(&ch.node_id);
                }
            }
        }
        next.into_iter().collect()
    }

    /// The table after a committed conf change: members from the context are (re)recorded, removed
    /// ids move to `removed`. Pure; the caller persists the result with the conf state.
    pub fn apply(&self, index: u64, cc: &ConfChangeV2) -> Result<Membership, Error> {
        let mut next = self.clone();
        next.conf_index = index;
        if !cc.context.is_empty() {
            let ctx = Membership::decode(&cc.context)?;
            for (id, m) in ctx.members {
                next.members.insert(id, m);
            }
        }
        for ch in &cc.changes {
            match ch.get_change_type() {
                ConfChangeType::RemoveNode => {
                    next.members.remove(&ch.node_id);
                    next.removed.insert(ch.node_id);
                }
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                    next.members.entry(ch.node_id).or_insert_with(|| Member {
                        id: ch.node_id,
                        ..Member::default()
                    });
                }
            }
        }
        Ok(next)
    }

    /// Record an address a peer announced (handshake); returns whether anything changed.
    /// Addresses the encoding could not carry are ignored, so the table always encodes.
    pub fn learn(&mut self, id: u64, peer_addr: &str, client_addr: &str) -> bool {
        if peer_addr.len() > MAX_ADDR || client_addr.len() > MAX_ADDR {
            return false;
        }
        let Some(m) = self.members.get_mut(&id) else {
            return false;
        };
        let mut changed = false;
        if !peer_addr.is_empty() && m.peer_addr != peer_addr {
            m.peer_addr = peer_addr.to_string();
            changed = true;
        }
        if !client_addr.is_empty() && m.client_addr != client_addr {
            m.client_addr = client_addr.to_string();
            changed = true;
        }
        changed
    }

    /// The encoding; refuses (never truncates) a table the decoder would refuse: an address longer than
    /// 1024 bytes, more than `u32::MAX` members or removed ids.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let count = |n: usize| {
            u32::try_from(n)
                .map(u32::to_be_bytes)
                .map_err(|_| Error::Invalid("membership table too large to encode"))
        };
        let mut out = vec![FORMAT];
        out.extend_from_slice(&self.conf_index.to_be_bytes());
        out.extend_from_slice(&count(self.members.len())?);
        for m in self.members.values() {
            out.extend_from_slice(&m.id.to_be_bytes());
            put_str(&mut out, &m.peer_addr)?;
            put_str(&mut out, &m.client_addr)?;
        }
        out.extend_from_slice(&count(self.removed.len())?);
        for id in &self.removed {
            out.extend_from_slice(&id.to_be_bytes());
        }
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<Membership, Error> {
        let mut r = Reader { buf: bytes };
        if r.u8()? != FORMAT {
            return Err(bad("unknown membership format"));
        }
        let conf_index = r.u64()?;
        let n = r.u32()?;
        let mut members = BTreeMap::new();
        for _ in 0..n {
            let id = r.u64()?;
            let peer_addr = r.string()?;
            let client_addr = r.string()?;
            members.insert(
                id,
                Member {
                    id,
                    peer_addr,
                    client_addr,
                },
            );
        }
        let n = r.u32()?;
        let mut removed = BTreeSet::new();
        for _ in 0..n {
            removed.insert(r.u64()?);
        }
        if !r.buf.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Membership {
            conf_index,
            members,
            removed,
        })
    }
}

/// A string the decoder accepts back: whole (a `&str` is UTF-8), at most `MAX_ADDR` bytes.
fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), Error> {
    let len = u16::try_from(s.len())
        .ok()
        .filter(|_| s.len() <= MAX_ADDR)
        .ok_or(Error::Invalid(
            "an address longer than 1024 bytes cannot be encoded",
        ))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn bad(detail: &str) -> Error {
    Error::Corruption {
        at: "membership".into(),
        detail: detail.into(),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Error> {
        if self.buf.len() < n {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn string(&mut self) -> Result<String, Error> {
        let b = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
        if len > MAX_ADDR {
            return Err(bad("address too long"));
        }
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| bad("address is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64) -> Member {
        Member {
            id,
            peer_addr: format!("127.0.0.1:{}", 7000 + id),
            client_addr: format!("127.0.0.1:{}", 8000 + id),
        }
    }

    #[test]
    fn encoding_round_trips_and_refuses_every_truncation() {
        let mut m = Membership::initial([(1, "a:1".into()), (2, "b:2".into())]);
        m.removed.insert(7);
        let bytes = m.encode().expect("encodes");
        assert_eq!(Membership::decode(&bytes).ok(), Some(m));
        for cut in 0..bytes.len() {
            assert!(Membership::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Membership::decode(&longer).is_err());
    }

    #[test]
    fn add_then_remove_remembers_the_id_and_refuses_its_reuse() {
        let m = Membership::initial([(1, "a:1".into())]);
        let add = MembershipChange::AddLearner(member(4))
            .to_conf_change()
            .expect("encodes");
        assert!(m.check(&add, &[1], &[]).is_ok());
        let m = m.apply(5, &add).expect("apply add");
        assert_eq!(m.members.get(&4), Some(&member(4)));
        let remove = MembershipChange::Remove(4)
            .to_conf_change()
            .expect("encodes");
        assert!(m.check(&remove, &[1], &[4]).is_ok());
        let m = m.apply(6, &remove).expect("apply remove");
        assert!(!m.members.contains_key(&4));
        assert!(m.removed.contains(&4));
        assert_eq!(m.conf_index, 6);
        assert_eq!(m.check(&add, &[1], &[]), Err(Refusal::IdRemoved(4)));
        let voter = MembershipChange::AddVoter(member(4))
            .to_conf_change()
            .expect("encodes");
        assert_eq!(m.check(&voter, &[1], &[]), Err(Refusal::IdRemoved(4)));
    }

    #[test]
    fn checks_refuse_changes_that_make_no_sense() {
        let m = Membership::initial([(1, "a:1".into())]);
        let again = MembershipChange::AddLearner(member(1))
            .to_conf_change()
            .expect("encodes");
        assert!(m.check(&again, &[1], &[]).is_err());
        let promote_voter = MembershipChange::Promote(1)
            .to_conf_change()
            .expect("encodes");
        assert!(m.check(&promote_voter, &[1], &[]).is_err());
        let remove_stranger = MembershipChange::Remove(9)
            .to_conf_change()
            .expect("encodes");
        assert!(m.check(&remove_stranger, &[1], &[]).is_err());
        let promote = MembershipChange::Promote(2)
            .to_conf_change()
            .expect("encodes");
        assert!(m.check(&promote, &[1], &[2]).is_ok());
        let last = MembershipChange::Remove(1)
            .to_conf_change()
            .expect("encodes");
        assert_eq!(m.check(&last, &[1], &[2]), Err(Refusal::LastVoter(1)));
        assert!(m.check(&last, &[1, 3], &[]).is_ok());
        assert_eq!(
            Membership::voters_after(&last, &[1, 3]),
            vec![3],
            "the voters after a removal"
        );
        assert_eq!(Membership::voters_after(&promote, &[1]), vec![1, 2]);
    }

    /// Issue 10: an address of 1023 × 'a' then 'é' (1025 bytes) was cut at byte 1024, inside the 'é', and
    /// every replica then failed to decode the committed conf change. The request is refused now, and
    /// the encoder refuses what it cannot carry whole instead of cutting it.
    #[test]
    fn an_address_is_never_cut_inside_a_character_it_is_refused() {
        let long = format!("{}é", "a".repeat(1023));
        let m = Member {
            id: 9,
            peer_addr: long.clone(),
            client_addr: "127.0.0.1:1".into(),
        };
        let change = MembershipChange::AddLearner(m.clone());
        assert!(matches!(change.validate(), Err(Refusal::InvalidMember(_))));
        assert!(change.to_conf_change().is_err());
        // Exactly the limit still encodes, whole, and decodes back.
        let at_limit = Member {
            peer_addr: "a".repeat(1022) + "é",
            ..m
        };
        let cc = MembershipChange::AddLearner(at_limit.clone())
            .to_conf_change()
            .expect("1024 bytes fit");
        let ctx = Membership::decode(&cc.context).expect("decodes");
        assert_eq!(ctx.members.get(&9), Some(&at_limit));
        // A table never learns an address it could not encode.
        let mut table = Membership::initial([(9, "a:1".into())]);
        assert!(!table.learn(9, &long, ""));
        assert!(table.encode().is_ok());
    }

    #[test]
    fn addresses_and_ids_are_checked_before_anything_is_proposed() {
        for good in [
            "127.0.0.1:7380",
            "[::1]:7380",
            "[fd00::1]:1",
            "node-1.example.org:65535",
            "n_1:80",
            "localhost:7380",
        ] {
            assert_eq!(check_addr(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "0.0.0.0:7380",
            "[::]:7380",
            "host:",
            ":7380",
            "host:+80",
            "-host:80",
            "ho st:80",
            "hôte:80",
            "::1:7380",
            "a..b:80",
            &format!("{}:1", "a".repeat(64)),
            &format!("{}.b:1", "a.".repeat(127)),
        ] {
            assert!(check_addr(bad).is_err(), "{bad:?} accepted");
        }
        let long_ok = format!(
            "{}.{}.{}.{}:1",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert!(long_ok.len() <= MAX_ADDR_LEN);
        assert_eq!(check_addr(&long_ok), Ok(()));
        let too_long = format!(
            "{}.{}.{}.{}:1",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63)
        );
        assert!(check_addr(&too_long).is_err());
        assert!(check_id(0).is_err());
        assert!(check_id(MAX_NODE_ID + 1).is_err());
        assert!(check_id(MAX_NODE_ID).is_ok());
        let no_client = MembershipChange::AddLearner(Member {
            id: 4,
            peer_addr: "127.0.0.1:7386".into(),
            client_addr: String::new(),
        });
        assert_eq!(no_client.validate(), Ok(()));
        assert!(MembershipChange::Remove(0).validate().is_err());
        assert!(MembershipChange::Promote(u64::MAX).validate().is_err());
    }

    proptest::proptest! {
        /// Whatever the encoder produces, the decoder gives back; whatever it cannot carry, it refuses.
        #[test]
        fn the_encoder_is_total(
            members in proptest::collection::btree_map(1u64..50, ("\\PC{0,700}", "\\PC{0,700}"), 0..4),
            removed in proptest::collection::btree_set(1u64..100, 0..4),
            conf_index in 0u64..1000,
        ) {
            let table = Membership {
                conf_index,
                members: members
                    .into_iter()
                    .map(|(id, (peer_addr, client_addr))| (id, Member { id, peer_addr, client_addr }))
                    .collect(),
                removed,
            };
            let fits = table
                .members
                .values()
                .all(|m| m.peer_addr.len() <= MAX_ADDR && m.client_addr.len() <= MAX_ADDR);
            match table.encode() {
                Ok(bytes) => {
                    proptest::prop_assert!(fits);
                    proptest::prop_assert_eq!(Membership::decode(&bytes).ok(), Some(table));
                }
                Err(_) => proptest::prop_assert!(!fits),
            }
        }
    }
}
