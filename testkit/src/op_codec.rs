//! The simulated state machine's command format: the checker's [`Op`]s as command bytes (a tag byte and
//! length-prefixed fields) and the model's results as reply bytes.

use crate::linearizability::{Op, Ret};

/// A command carrying `op`.
pub fn encode_op(op: &Op) -> Vec<u8> {
    let mut out = Vec::new();
    let field = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    };
    match op {
        Op::Put { key, value } => {
            out.push(1);
            field(&mut out, key);
            field(&mut out, value);
        }
        Op::Delete { key } => {
            out.push(2);
            field(&mut out, key);
        }
        Op::Get { key } => {
            out.push(3);
            field(&mut out, key);
        }
        Op::Cas { key, expected, new } => {
            out.push(if expected.is_some() { 4 } else { 5 });
            field(&mut out, key);
            field(&mut out, expected.as_deref().unwrap_or_default());
            field(&mut out, new);
        }
        Op::Incr { key, delta } => {
            out.push(6);
            field(&mut out, key);
            field(&mut out, &delta.to_be_bytes());
        }
        Op::Checkpoint { entity } => {
            out.push(7);
            field(&mut out, entity);
        }
    }
    out
}

/// The op a command carries; `None` if the bytes are not one.
pub fn decode_op(b: &[u8]) -> Option<Op> {
    let (&tag, mut rest) = b.split_first()?;
    let mut field = || -> Option<Vec<u8>> {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let v = rest.get(4..4 + len)?.to_vec();
        rest = &rest[4 + len..];
        Some(v)
    };
    Some(match tag {
        1 => Op::Put {
            key: field()?,
            value: field()?,
        },
        2 => Op::Delete { key: field()? },
        3 => Op::Get { key: field()? },
        4 | 5 => {
            let (key, expected, new) = (field()?, field()?, field()?);
            Op::Cas {
                key,
                expected: (tag == 4).then_some(expected),
                new,
            }
        }
        6 => Op::Incr {
            key: field()?,
            delta: i64::from_be_bytes(field()?.try_into().ok()?),
        },
        7 => Op::Checkpoint { entity: field()? },
        _ => return None,
    })
}

/// The result of applying a command: what [`Model::apply`](crate::linearizability::Model::apply) returned
/// (`None`: the op failed without effect). A read's value is not carried (reads are not proposed).
pub fn encode_ret(r: Option<Ret>) -> Vec<u8> {
    match r {
        None => vec![0],
        Some(Ret::Done) => vec![1],
        Some(Ret::Value(_)) => vec![2], // reads are not proposed
        Some(Ret::Swapped(s)) => vec![3, u8::from(s)],
        Some(Ret::Counter(v)) => [&[4u8][..], &v.to_be_bytes()].concat(),
        Some(Ret::Epoch(e)) => [&[5u8][..], &e.to_be_bytes()].concat(),
    }
}

/// What [`encode_ret`] encoded (a read's value is lost); `None` if the bytes are not a result.
pub fn decode_ret(b: &[u8]) -> Option<Option<Ret>> {
    Some(match b.split_first()? {
        (0, _) => None,
        (1, _) => Some(Ret::Done),
        (3, [s]) => Some(Ret::Swapped(*s == 1)),
        (4, v) => Some(Ret::Counter(i64::from_be_bytes(v.try_into().ok()?))),
        (5, v) => Some(Ret::Epoch(u64::from_be_bytes(v.try_into().ok()?))),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_round_trips() {
        let ops = [
            Op::put("e0/a", "v1"),
            Op::delete("k"),
            Op::get(""),
            Op::cas("k", Some(b"old"), "new"),
            Op::cas("k", None, "new"),
            Op::cas("k", Some(b""), ""),
            Op::incr("c0", -3),
            Op::checkpoint("e1"),
        ];
        for op in ops {
            assert_eq!(decode_op(&encode_op(&op)), Some(op.clone()), "{op}");
        }
        assert_eq!(decode_op(&[]), None);
        assert_eq!(decode_op(&[9]), None);
        assert_eq!(decode_op(&encode_op(&Op::put("k", "v"))[..6]), None);
    }

    #[test]
    fn results_round_trip_except_read_values() {
        for ret in [
            None,
            Some(Ret::Done),
            Some(Ret::Swapped(true)),
            Some(Ret::Swapped(false)),
            Some(Ret::Counter(-7)),
            Some(Ret::Epoch(3)),
        ] {
            assert_eq!(decode_ret(&encode_ret(ret.clone())), Some(ret));
        }
        assert_eq!(decode_ret(&encode_ret(Some(Ret::Value(None)))), None);
        assert_eq!(decode_ret(&[]), None);
    }
}
