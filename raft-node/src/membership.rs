//! Who the members are and how to reach them, plus the ids that were removed (never reused).
//!
//! Raft's `ConfState` knows only ids. The addresses travel in the `context` of the `ConfChangeV2` that
//! adds a node, and the whole table travels in the data of a Raft snapshot, so every replica derives the
//! same table from the log. It is persisted with the conf state (one batch), so a restart keeps it.
//!
//! Encoding (versioned, bounded, never panics on bad bytes): `1u8`, conf_index u64, member count u32, per member
//! `id u64 | peer_addr (u16 len + UTF-8) | client_addr (u16 len + UTF-8)`, removed count u32, ids u64 — all
//! big-endian. A conf change context is the same encoding with an empty removed list.

use std::collections::{BTreeMap, BTreeSet};

use raft::prelude::{ConfChangeType, ConfChangeV2};

use crate::error::Error;

const FORMAT: u8 = 1;
const MAX_ADDR: usize = 1024;

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
    /// The raft-rs conf change for this request (its context carries the new member's addresses).
    pub fn to_conf_change(&self) -> ConfChangeV2 {
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
            cc.context = ctx.encode();
        }
        cc
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

    /// Refuse a change that would reuse a removed id, add an existing member, or touch a non-member.
    pub fn check(&self, cc: &ConfChangeV2, voters: &[u64], learners: &[u64]) -> Result<(), Error> {
        for ch in &cc.changes {
            let id = ch.node_id;
            if id == 0 {
                return Err(Error::Invalid("node id 0 is reserved"));
            }
            let known = voters.contains(&id) || learners.contains(&id);
            match ch.get_change_type() {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode
                    if self.removed.contains(&id) =>
                {
                    return Err(Error::Invalid(
                        "this node id was removed; node ids are never reused",
                    ))
                }
                ConfChangeType::AddNode if voters.contains(&id) => {
                    return Err(Error::Invalid("node is already a voter"))
                }
                ConfChangeType::AddLearnerNode if known => {
                    return Err(Error::Invalid("node is already a member"))
                }
                ConfChangeType::RemoveNode if !known => {
                    return Err(Error::Invalid("node is not a member"))
                }
                _ => {}
            }
        }
        Ok(())
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
    pub fn learn(&mut self, id: u64, peer_addr: &str, client_addr: &str) -> bool {
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

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        out.extend_from_slice(&self.conf_index.to_be_bytes());
        out.extend_from_slice(
            &u32::try_from(self.members.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for m in self.members.values() {
            out.extend_from_slice(&m.id.to_be_bytes());
            put_str(&mut out, &m.peer_addr);
            put_str(&mut out, &m.client_addr);
        }
        out.extend_from_slice(
            &u32::try_from(self.removed.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for id in &self.removed {
            out.extend_from_slice(&id.to_be_bytes());
        }
        out
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

fn put_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(MAX_ADDR)];
    out.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(bytes);
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
        let bytes = m.encode();
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
        let add = MembershipChange::AddLearner(member(4)).to_conf_change();
        assert!(m.check(&add, &[1], &[]).is_ok());
        let m = m.apply(5, &add).expect("apply add");
        assert_eq!(m.members.get(&4), Some(&member(4)));
        let remove = MembershipChange::Remove(4).to_conf_change();
        assert!(m.check(&remove, &[1], &[4]).is_ok());
        let m = m.apply(6, &remove).expect("apply remove");
        assert!(!m.members.contains_key(&4));
        assert!(m.removed.contains(&4));
        assert_eq!(m.conf_index, 6);
        assert!(matches!(m.check(&add, &[1], &[]), Err(Error::Invalid(_))));
        let voter = MembershipChange::AddVoter(member(4)).to_conf_change();
        assert!(matches!(m.check(&voter, &[1], &[]), Err(Error::Invalid(_))));
    }

    #[test]
    fn checks_refuse_changes_that_make_no_sense() {
        let m = Membership::initial([(1, "a:1".into())]);
        let again = MembershipChange::AddLearner(member(1)).to_conf_change();
        assert!(m.check(&again, &[1], &[]).is_err());
        let promote_voter = MembershipChange::Promote(1).to_conf_change();
        assert!(m.check(&promote_voter, &[1], &[]).is_err());
        let remove_stranger = MembershipChange::Remove(9).to_conf_change();
        assert!(m.check(&remove_stranger, &[1], &[]).is_err());
        let promote = MembershipChange::Promote(2).to_conf_change();
        assert!(m.check(&promote, &[1], &[2]).is_ok());
    }
}
