//! How the checker shows what it found: operations, results and states as text, and a refutation as the
//! longest linearizable prefix, the state after it and the operations that could not follow it.

use std::fmt;

use super::model::{Model, Op, Ret};
use super::search::{Longest, SearchOp};

/// Lines of the report listed at most, per section.
const REPORT_LINES: usize = 40;

pub(super) fn describe_refutation(ops: &[SearchOp], longest: &Longest) -> String {
    let definite = ops.iter().filter(|o| o.is_definite()).count();
    let mut out = format!(
        "no linearization of {} operations ({definite} ok, {} unknown)\n\
         longest linearizable prefix: {} of {definite} ok operations\n",
        ops.len(),
        ops.len() - definite,
        longest.definite,
    );
    let skipped = longest.ops.len().saturating_sub(REPORT_LINES);
    if skipped > 0 {
        out.push_str(&format!("  … {skipped} earlier operations\n"));
    }
    for (position, &op) in longest.ops.iter().enumerate().skip(skipped) {
        out.push_str(&format!("  {:>4}. {}\n", position + 1, ops[op]));
    }
    out.push_str(&format!("state after it: {}\n", longest.state));
    let deadline = ops
        .iter()
        .enumerate()
        .filter(|(op, o)| o.is_definite() && !longest.ops.contains(op))
        .min_by_key(|(_, o)| (o.event.complete.unwrap_or(u64::MAX), o.index));
    if let Some((_, o)) = deadline {
        out.push_str(&format!(
            "no continuation linearizes the next deadline: {o}\n"
        ));
    }
    let mut rest: Vec<&SearchOp> = ops
        .iter()
        .enumerate()
        .filter(|(op, _)| !longest.ops.contains(op))
        .map(|(_, o)| o)
        .collect();
    rest.sort_by_key(|o| (o.event.invoke, o.index));
    out.push_str("operations not in it, by invoke time:\n");
    for o in rest.iter().take(REPORT_LINES) {
        out.push_str(&format!("        {o}\n"));
    }
    if rest.len() > REPORT_LINES {
        out.push_str(&format!("  … {} more\n", rest.len() - REPORT_LINES));
    }
    out
}

/// Byte strings shown quoted, with non-printable bytes escaped.
pub(super) struct Bytes<'a>(pub(super) &'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Put { key, value } => write!(f, "put {} = {}", Bytes(key), Bytes(value)),
            Op::Delete { key } => write!(f, "delete {}", Bytes(key)),
            Op::Get { key } => write!(f, "get {}", Bytes(key)),
            Op::Cas {
                key,
                expected: Some(expected),
                new,
            } => {
                write!(
                    f,
                    "cas {} from {} to {}",
                    Bytes(key),
                    Bytes(expected),
                    Bytes(new)
                )
            }
            Op::Cas {
                key,
                expected: None,
                new,
            } => write!(f, "cas {} from absent to {}", Bytes(key), Bytes(new)),
            Op::Incr { key, delta } => write!(f, "incr {} by {delta}", Bytes(key)),
            Op::Checkpoint { entity } => write!(f, "checkpoint {}", Bytes(entity)),
        }
    }
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ret::Done => write!(f, "done"),
            Ret::Value(Some(value)) => write!(f, "value {}", Bytes(value)),
            Ret::Value(None) => write!(f, "absent"),
            Ret::Swapped(true) => write!(f, "swapped"),
            Ret::Swapped(false) => write!(f, "not swapped"),
            Ret::Counter(value) => write!(f, "counter {value}"),
            Ret::Epoch(epoch) => write!(f, "epoch {epoch}"),
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        for (i, (key, value)) in self.values.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{}: {}", Bytes(key), Bytes(value))?;
        }
        write!(f, "}} epochs {{")?;
        for (i, (entity, epoch)) in self.epochs.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{}: {epoch}", Bytes(entity))?;
        }
        write!(f, "}}")
    }
}

impl fmt::Display for SearchOp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.event;
        write!(f, "#{} client {} [{}, ", self.index, e.client, e.invoke)?;
        match (self.expected, e.complete) {
            (Some(_), Some(complete)) => write!(f, "{complete}]")?,
            _ => write!(f, "∞]")?,
        }
        match self.expected {
            Some(ret) => write!(f, " {} -> {}", e.op, ret),
            None => write!(f, " {} -> unknown", e.op),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::linearizability::testing::*;
    use crate::linearizability::{Op, Ret};

    #[test]
    fn stale_read_after_completed_write_is_rejected() {
        let h = [
            ok(1, 0, 1, Op::put("k", "1"), Ret::Done),
            ok(1, 2, 3, Op::put("k", "2"), Ret::Done),
            ok(2, 4, 5, Op::get("k"), value(Some("1"))),
        ];
        let (partition, detail) = assert_rejected(&h);
        assert_eq!(partition, "key \"k\"");
        assert!(
            detail.contains("longest linearizable prefix: 2 of 3"),
            "{detail}"
        );
        assert!(
            detail.contains("#2 client 2 [4, 5] get \"k\" -> value \"1\""),
            "{detail}"
        );
        assert!(
            detail.contains("state after it: {\"k\": \"2\"}"),
            "{detail}"
        );
    }
}
