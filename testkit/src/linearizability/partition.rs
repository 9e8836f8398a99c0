//! Partitions (P-compositionality): operations on different entities, or on different keys without an
//! entity, commute, so each partition is checked on its own.

use std::collections::BTreeMap;
use std::fmt;

use super::model::{entity_of, Event, Op, Outcome};
use super::report::Bytes;

/// The independent unit of checking: an entity, or a key that has no entity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Partition {
    Entity(Vec<u8>),
    Key(Vec<u8>),
}

impl Partition {
    pub(super) fn of(op: &Op) -> Partition {
        let key = match op {
            Op::Checkpoint { entity } => return Partition::Entity(entity.clone()),
            Op::Put { key, .. }
            | Op::Delete { key }
            | Op::Get { key }
            | Op::Cas { key, .. }
            | Op::Incr { key, .. } => key,
        };
        match entity_of(key) {
            Some(entity) => Partition::Entity(entity.to_vec()),
            None => Partition::Key(key.clone()),
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partition::Entity(entity) => write!(f, "entity {}", Bytes(entity)),
            Partition::Key(key) => write!(f, "key {}", Bytes(key)),
        }
    }
}

/// The events that matter, with their position in the history, grouped by partition.
pub(super) fn partitions(history: &[Event]) -> BTreeMap<Partition, Vec<(usize, &Event)>> {
    let mut out: BTreeMap<Partition, Vec<(usize, &Event)>> = BTreeMap::new();
    for (index, event) in history.iter().enumerate() {
        let matters = match event.outcome {
            Outcome::Ok(_) => true,
            Outcome::Failed => false,
            Outcome::Unknown => !event.op.is_read_only(),
        };
        if matters {
            out.entry(Partition::of(&event.op))
                .or_default()
                .push((index, event));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::testing::*;
    use crate::linearizability::Ret;

    #[test]
    fn entity_of_splits_at_the_first_slash() {
        assert_eq!(entity_of(b"player:42/pos"), Some(&b"player:42"[..]));
        assert_eq!(entity_of(b"a/b/c"), Some(&b"a"[..]));
        assert_eq!(entity_of(b"plain"), None);
        assert_eq!(entity_of(b"/leading"), None);
        assert_eq!(
            Partition::of(&Op::get("/leading")),
            Partition::Key(b"/leading".to_vec())
        );
        assert_eq!(
            Partition::of(&Op::checkpoint("a")),
            Partition::of(&Op::get("a/x"))
        );
        assert_ne!(Partition::of(&Op::get("a")), Partition::of(&Op::get("a/x")));
    }

    #[test]
    fn violation_is_reported_for_its_own_partition() {
        let h = [
            ok(1, 0, 1, Op::put("a/x", "1"), Ret::Done),
            ok(1, 0, 1, Op::put("b/x", "1"), Ret::Done),
            ok(2, 2, 3, Op::get("a/x"), value(Some("1"))),
            ok(2, 2, 3, Op::get("b/x"), value(Some("2"))),
        ];
        let (partition, detail) = assert_rejected(&h);
        assert_eq!(partition, "entity \"b\"");
        assert!(detail.contains("get \"b/x\" -> value \"2\""), "{detail}");
        assert!(!detail.contains("a/x"), "{detail}");
    }
}
