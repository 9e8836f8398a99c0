//! Encodings of the values stored under the keys of [`crate::keys`]. Pure functions, no I/O.

use crate::error::Error;
use crate::keys::decode_u64;
use crate::op::Crossing;

const TOMBSTONE: u8 = 0;
const PUT: u8 = 1;

/// A stored version: `None` is a tombstone.
pub fn encode_version(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![TOMBSTONE],
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(PUT);
            out.extend_from_slice(v);
            out
        }
    }
}

pub fn decode_version(raw: &[u8]) -> Result<Option<&[u8]>, Error> {
    match raw.split_first() {
        Some((&TOMBSTONE, [])) => Ok(None),
        Some((&PUT, rest)) => Ok(Some(rest)),
        _ => Err(Error::Corruption {
            at: "data value".into(),
            detail: format!("bad version tag in {} bytes", raw.len()),
        }),
    }
}

pub fn is_tombstone(raw: &[u8]) -> bool {
    raw == [TOMBSTONE]
}

pub fn encode_crossing(c: &Crossing) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + c.data.len());
    out.extend_from_slice(&c.epoch.to_be_bytes());
    out.extend_from_slice(&c.ts.to_be_bytes());
    out.extend_from_slice(&c.data);
    out
}

pub fn decode_crossing(raw: &[u8]) -> Result<Crossing, Error> {
    if raw.len() < 16 {
        return Err(Error::Corruption {
            at: "crossing value".into(),
            detail: format!("{} bytes", raw.len()),
        });
    }
    Ok(Crossing {
        epoch: decode_u64(&raw[..8], "crossing epoch")?,
        ts: decode_u64(&raw[8..16], "crossing ts")?,
        data: raw[16..].to_vec(),
    })
}

/// The applied state: index of the last applied Raft entry and its commit ts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub index: u64,
    pub ts: u64,
}

pub fn encode_applied(a: Applied) -> Vec<u8> {
    let mut out = a.index.to_be_bytes().to_vec();
    out.extend_from_slice(&a.ts.to_be_bytes());
    out
}

pub fn decode_applied(raw: &[u8]) -> Result<Applied, Error> {
    if raw.len() != 16 {
        return Err(Error::Corruption {
            at: "applied index".into(),
            detail: format!("{} bytes", raw.len()),
        });
    }
    Ok(Applied {
        index: decode_u64(&raw[..8], "applied index")?,
        ts: decode_u64(&raw[8..], "applied ts")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_and_rejects_garbage() {
        assert_eq!(
            decode_version(&encode_version(Some(b"v"))).unwrap(),
            Some(&b"v"[..])
        );
        assert_eq!(decode_version(&encode_version(None)).unwrap(), None);
        assert!(decode_version(&[]).is_err());
        assert!(decode_version(&[0, 1]).is_err());
        assert!(decode_version(&[9]).is_err());
        let c = Crossing {
            epoch: 3,
            ts: 9,
            data: b"d".to_vec(),
        };
        assert_eq!(decode_crossing(&encode_crossing(&c)).unwrap(), c);
        assert!(decode_crossing(&[1, 2]).is_err());
        let a = Applied { index: 5, ts: 6 };
        assert_eq!(decode_applied(&encode_applied(a)).unwrap(), a);
        assert!(decode_applied(&[0; 15]).is_err());
    }
}
