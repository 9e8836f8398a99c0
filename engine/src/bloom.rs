//! The checkpoint-crossing filter: answers "has `(entity, name)` possibly been crossed?" from memory.
//!
//! Guarantee: no false negatives. Every crossing is inserted *before* the batch that records it is written,
//! and the filter is rebuilt from the stored crossings at open and after a snapshot install, so a crossing
//! that can be read from disk is always in the filter. False positives (about `fp_rate`) cost one disk read.

use growable_bloom_filter::GrowableBloom;

#[derive(Debug)]
pub struct CrossingFilter {
    bloom: GrowableBloom,
    fp_rate: f64,
    expected: usize,
    items: u64,
}

impl CrossingFilter {
    pub fn new(fp_rate: f64, expected: usize) -> Self {
        CrossingFilter {
            bloom: GrowableBloom::new(fp_rate, expected.max(1)),
            fp_rate,
            expected,
            items: 0,
        }
    }

    pub fn insert(&mut self, entity: &[u8], name: &[u8]) {
        if self.bloom.insert((entity, name)) {
            self.items += 1;
        }
    }

    pub fn may_contain(&self, entity: &[u8], name: &[u8]) -> bool {
        self.bloom.contains((entity, name))
    }

    pub fn items(&self) -> u64 {
        self.items
    }

    /// Approximate heap size: the optimal bloom size for the items held at `fp_rate`, times the growable
    /// filter's overhead (its stages double and tighten their error rates; 2x is a safe upper estimate).
    pub fn approx_bytes(&self) -> u64 {
        let n = self.items.max(self.expected as u64) as f64;
        let bits = -n * self.fp_rate.ln() / (std::f64::consts::LN_2 * std::f64::consts::LN_2);
        (2.0 * bits / 8.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_far_past_the_expected_size() {
        let mut f = CrossingFilter::new(0.01, 100);
        for i in 0..20_000u32 {
            f.insert(format!("player:{i}").as_bytes(), b"cp");
        }
        assert!((0..20_000u32).all(|i| f.may_contain(format!("player:{i}").as_bytes(), b"cp")));
        let fp = (0..10_000u32)
            .filter(|i| f.may_contain(format!("other:{i}").as_bytes(), b"cp"))
            .count();
        assert!(fp < 500, "false positive rate far above target: {fp}/10000");
    }
}
