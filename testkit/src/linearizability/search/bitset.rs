//! A set of operation indices: the search's `done` and `used` sets, and part of its cache keys.

/// A set of operation indices.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Bitset(Vec<u64>);

impl Bitset {
    pub(super) fn new(len: usize) -> Self {
        Bitset(vec![0; len.div_ceil(64)])
    }

    pub(super) fn contains(&self, bit: usize) -> bool {
        self.0[bit / 64] & (1 << (bit % 64)) != 0
    }

    pub(super) fn insert(&mut self, bit: usize) {
        self.0[bit / 64] |= 1 << (bit % 64);
    }

    pub(super) fn remove(&mut self, bit: usize) {
        self.0[bit / 64] &= !(1 << (bit % 64));
    }

    pub(super) fn is_subset_of(&self, other: &Bitset) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .all(|(mine, theirs)| mine & !theirs == 0)
    }
}
