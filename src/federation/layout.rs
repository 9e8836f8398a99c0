//! The central key layout and the sync planner: which TiKV mutations carry a batch of change-feed
//! entries. Pure (CONVENTIONS 5); the client does the I/O.
//!
//! ```text
//! <site>/c                                   the site's cursor: last log index synced (u64 big-endian)
//! <site>/e/<entity>                          the entity's current epoch (u64 BE)
//! <site>/d/<entity>/<epoch BE><rest>         a key `<entity>/<rest>` of that epoch → its value
//! <site>/k/<key>                             a key without an entity → its value
//! <site>/g/<entity>/<old epoch BE>           an old epoch to reclaim (range deletion, later)
//! x/<entity>/<name>                          global crossings index → site, epoch, ts, data
//! ```
//! An entity never contains `/`, so `<entity>/` ends it. A checkpoint is one epoch write centrally too:
//! the old epoch's keys stay under their own prefix until reclaimed, and readers of the central copy
//! read only `<site>/d/<entity>/<current epoch>`.

use engine::{Change, ChangeEntry};

/// One write of a central transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

fn key(site: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(site.len() + 32);
    out.extend_from_slice(site.as_bytes());
    out.push(b'/');
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// `<site>/`: everything the site owns centrally.
pub fn site_prefix(site: &str) -> Vec<u8> {
    key(site, &[])
}

pub fn cursor_key(site: &str) -> Vec<u8> {
    key(site, &[b"c"])
}

pub fn epoch_key(site: &str, entity: &[u8]) -> Vec<u8> {
    key(site, &[b"e/", entity])
}

/// Where a user key lives centrally, in `epoch` of its entity.
pub fn data_key(site: &str, user_key: &[u8], epoch: u64) -> Vec<u8> {
    match engine::entity_of(user_key) {
        Some(entity) => {
            let rest = &user_key[entity.len() + 1..];
            key(site, &[b"d/", entity, b"/", &epoch.to_be_bytes(), rest])
        }
        None => key(site, &[b"k/", user_key]),
    }
}

/// `<site>/d/<entity>/<epoch BE>`: every key of one entity epoch.
pub fn epoch_data_prefix(site: &str, entity: &[u8], epoch: u64) -> Vec<u8> {
    key(site, &[b"d/", entity, b"/", &epoch.to_be_bytes()])
}

pub fn reclaim_key(site: &str, entity: &[u8], old_epoch: u64) -> Vec<u8> {
    key(site, &[b"g/", entity, b"/", &old_epoch.to_be_bytes()])
}

/// `<site>/g/`: every reclaim marker of the site.
pub fn reclaim_prefix(site: &str) -> Vec<u8> {
    key(site, &[b"g/"])
}

/// The entity and old epoch a reclaim marker names; `None` if `marker` is not one of `site`'s.
pub fn decode_reclaim_key(site: &str, marker: &[u8]) -> Option<(Vec<u8>, u64)> {
    let rest = marker.strip_prefix(reclaim_prefix(site).as_slice())?;
    let (entity, epoch) = rest.split_at(rest.len().checked_sub(9)?);
    let epoch = epoch.strip_prefix(b"/")?;
    Some((entity.to_vec(), u64::from_be_bytes(epoch.try_into().ok()?)))
}

/// The global crossings index (shared by every site).
pub fn crossing_key(entity: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = b"x/".to_vec();
    out.extend_from_slice(entity);
    out.push(b'/');
    out.extend_from_slice(name);
    out
}

/// A crossing index value: `site_len u16 BE, site, epoch BE, ts BE, data`.
pub fn encode_crossing(site: &str, epoch: u64, ts: u64, data: &[u8]) -> Vec<u8> {
    let site_len = u16::try_from(site.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(18 + site.len() + data.len());
    out.extend_from_slice(&site_len.to_be_bytes());
    out.extend_from_slice(&site.as_bytes()[..usize::from(site_len)]);
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&ts.to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// A central crossing: `(site, epoch, ts, data)`; `None` if the bytes are not one.
pub fn decode_crossing(raw: &[u8]) -> Option<(String, u64, u64, Vec<u8>)> {
    let len = usize::from(u16::from_be_bytes(raw.get(..2)?.try_into().ok()?));
    let site = std::str::from_utf8(raw.get(2..2 + len)?).ok()?.to_string();
    let rest = raw.get(2 + len..)?;
    let epoch = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let ts = u64::from_be_bytes(rest.get(8..16)?.try_into().ok()?);
    Some((site, epoch, ts, rest.get(16..)?.to_vec()))
}

pub fn decode_u64(raw: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(raw.try_into().ok()?))
}

/// The mutations that carry `entries` centrally, in order (a later write of a key wins), without the
/// cursor (the client adds it). Effects, not ops: replaying a batch writes the same values.
pub fn plan_batch(site: &str, entries: &[ChangeEntry]) -> Vec<Mutation> {
    let mut out = Vec::new();
    for entry in entries {
        for change in &entry.changes {
            match change {
                Change::Write {
                    key, value, epoch, ..
                } => {
                    let k = data_key(site, key, *epoch);
                    out.push(match value {
                        Some(v) => Mutation::Put(k, v.clone()),
                        None => Mutation::Delete(k),
                    });
                }
                Change::Checkpoint {
                    entity,
                    name,
                    data,
                    epoch,
                    ts,
                } => {
                    out.push(Mutation::Put(
                        epoch_key(site, entity),
                        epoch.to_be_bytes().to_vec(),
                    ));
                    if let Some(old) = epoch.checked_sub(1) {
                        out.push(Mutation::Put(reclaim_key(site, entity, old), Vec::new()));
                    }
                    out.push(Mutation::Put(
                        crossing_key(entity, name),
                        encode_crossing(site, *epoch, *ts, data),
                    ));
                }
            }
        }
    }
    // One mutation per key, the last one (a transaction writes each key once).
    let mut seen = std::collections::HashSet::new();
    let mut deduped: Vec<Mutation> = out
        .into_iter()
        .rev()
        .filter(|m| {
            let k = match m {
                Mutation::Put(k, _) | Mutation::Delete(k) => k.clone(),
            };
            seen.insert(k)
        })
        .collect();
    deduped.reverse();
    deduped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, changes: Vec<Change>) -> ChangeEntry {
        ChangeEntry {
            index,
            changes,
            bytes: 0,
        }
    }

    #[test]
    fn a_batch_becomes_effects_under_the_site_prefix_last_write_wins() {
        let w = |k: &str, v: Option<&str>, epoch| Change::Write {
            key: k.into(),
            value: v.map(Into::into),
            ts: 1,
            epoch,
        };
        let entries = vec![
            entry(1, vec![w("p/pos", Some("a"), 0), w("score", Some("1"), 0)]),
            entry(
                2,
                vec![
                    Change::Checkpoint {
                        entity: b"p".to_vec(),
                        name: b"g".to_vec(),
                        data: b"d".to_vec(),
                        epoch: 1,
                        ts: 9,
                    },
                    w("score", None, 0),
                    w("p/pos", Some("b"), 1),
                ],
            ),
        ];
        let mut e1 = b"s/d/p/".to_vec();
        e1.extend_from_slice(&1u64.to_be_bytes());
        e1.extend_from_slice(b"pos");
        let mut e0 = b"s/d/p/".to_vec();
        e0.extend_from_slice(&0u64.to_be_bytes());
        e0.extend_from_slice(b"pos");
        let mut g = b"s/g/p/".to_vec();
        g.extend_from_slice(&0u64.to_be_bytes());
        assert_eq!(
            plan_batch("s", &entries),
            vec![
                Mutation::Put(e0, b"a".to_vec()),
                Mutation::Put(b"s/e/p".to_vec(), 1u64.to_be_bytes().to_vec()),
                Mutation::Put(g, vec![]),
                Mutation::Put(b"x/p/g".to_vec(), encode_crossing("s", 1, 9, b"d")),
                Mutation::Delete(b"s/k/score".to_vec()),
                Mutation::Put(e1, b"b".to_vec()),
            ]
        );
        assert_eq!(
            decode_crossing(&encode_crossing("s", 1, 9, b"d")),
            Some(("s".into(), 1, 9, b"d".to_vec()))
        );
        assert_eq!(decode_crossing(b"\x00"), None);
    }

    #[test]
    fn reclaim_markers_name_their_entity_and_epoch() {
        let marker = reclaim_key("s", b"player/7", 41);
        assert!(marker.starts_with(&reclaim_prefix("s")));
        assert_eq!(
            decode_reclaim_key("s", &marker),
            Some((b"player/7".to_vec(), 41))
        );
        assert_eq!(decode_reclaim_key("t", &marker), None);
        assert_eq!(decode_reclaim_key("s", b"s/g/short"), None);
        assert_eq!(decode_reclaim_key("s", b"s/g/p:0123456789"), None);
    }
}
