//! The search's candidate lists: call and return entries sorted by time, in a dancing-links list.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum EntryKind {
    // Declared first so that, at equal times, calls sort before returns (closed intervals).
    Call,
    Return,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    pub(super) time: u64,
    pub(super) kind: EntryKind,
    pub(super) op: usize,
}

/// Entries sorted by time in a doubly linked list whose nodes can be unlinked and relinked in O(1), in LIFO
/// order (dancing links). Slot `len` is the head sentinel, slot `len + 1` the tail sentinel.
pub(super) struct EntryList {
    entries: Vec<Entry>,
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl EntryList {
    pub(super) fn new(mut entries: Vec<Entry>) -> Self {
        entries.sort_by_key(|e| (e.time, e.kind, e.op));
        let len = entries.len();
        let order: Vec<usize> = std::iter::once(len)
            .chain(0..len)
            .chain(std::iter::once(len + 1))
            .collect();
        let mut next: Vec<usize> = (0..len + 2).collect();
        let mut prev = next.clone();
        for pair in order.windows(2) {
            next[pair[0]] = pair[1];
            prev[pair[1]] = pair[0];
        }
        EntryList {
            entries,
            next,
            prev,
        }
    }

    pub(super) fn first(&self) -> usize {
        self.next[self.entries.len()]
    }

    pub(super) fn next(&self, slot: usize) -> usize {
        self.next[slot]
    }

    /// The entry in `slot`; `None` for the sentinels.
    pub(super) fn entry(&self, slot: usize) -> Option<Entry> {
        self.entries.get(slot).copied()
    }

    pub(super) fn unlink(&mut self, slot: usize) {
        let (prev, next) = (self.prev[slot], self.next[slot]);
        self.next[prev] = next;
        self.prev[next] = prev;
    }

    /// Undoes the latest `unlink(slot)` still in force.
    pub(super) fn relink(&mut self, slot: usize) {
        let (prev, next) = (self.prev[slot], self.next[slot]);
        self.next[prev] = slot;
        self.prev[next] = slot;
    }

    /// Slot of each operation's call and return entry.
    pub(super) fn slots(&self, op_count: usize) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
        let (mut calls, mut returns) = (vec![None; op_count], vec![None; op_count]);
        for (slot, entry) in self.entries.iter().enumerate() {
            let table = match entry.kind {
                EntryKind::Call => &mut calls,
                EntryKind::Return => &mut returns,
            };
            table[entry.op] = Some(slot);
        }
        (calls, returns)
    }
}
