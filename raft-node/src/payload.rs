//! The bytes of a normal Raft entry: the commit ts the leader assigned, and the batched client commands.
//! `version u8 (1) | ts u64 | count u32 | (len u32 | command)*`, integers big-endian.

use crate::error::Error;

const VERSION: u8 = 1;

fn len_u32(n: usize) -> Result<[u8; 4], Error> {
    u32::try_from(n)
        .map(u32::to_be_bytes)
        .map_err(|_| Error::Invalid("command or batch too large"))
}

pub fn encode(ts: u64, commands: &[Vec<u8>]) -> Result<Vec<u8>, Error> {
    let body: usize = commands.iter().map(|c| c.len() + 4).sum();
    let mut out = Vec::with_capacity(13 + body);
    out.push(VERSION);
    out.extend_from_slice(&ts.to_be_bytes());
    out.extend_from_slice(&len_u32(commands.len())?);
    for c in commands {
        out.extend_from_slice(&len_u32(c.len())?);
        out.extend_from_slice(c);
    }
    Ok(out)
}

fn corrupt(detail: &str) -> Error {
    Error::Corruption {
        at: "entry payload".into(),
        detail: detail.into(),
    }
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], Error> {
    if buf.len() < n {
        return Err(corrupt("truncated"));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn take_u32(buf: &mut &[u8]) -> Result<usize, Error> {
    let b = take(buf, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// Just the ts, without splitting the commands.
pub fn decode_ts(data: &[u8]) -> Result<u64, Error> {
    let mut buf = data;
    if take(&mut buf, 1)? != [VERSION] {
        return Err(corrupt("unknown payload version"));
    }
    let b = take(&mut buf, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_be_bytes(a))
}

/// The highest ts the entry carries (today its only one: all its commands share it).
pub fn last_ts(data: &[u8]) -> Result<u64, Error> {
    decode_ts(data)
}

pub fn decode(data: &[u8]) -> Result<(u64, Vec<&[u8]>), Error> {
    let ts = decode_ts(data)?;
    let mut buf = &data[9..];
    let count = take_u32(&mut buf)?;
    let mut commands = Vec::with_capacity(count.min(buf.len() / 4 + 1));
    for _ in 0..count {
        let len = take_u32(&mut buf)?;
        commands.push(take(&mut buf, len)?);
    }
    if !buf.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok((ts, commands))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_every_truncation_is_an_error() {
        let cmds = vec![b"a".to_vec(), vec![], b"ccc".to_vec()];
        let data = encode(77, &cmds).unwrap();
        let (ts, got) = decode(&data).unwrap();
        assert_eq!(ts, 77);
        assert_eq!(got, vec![&b"a"[..], b"", b"ccc"]);
        for cut in 0..data.len() {
            assert!(decode(&data[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = data.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        assert!(decode(&[9, 0, 0]).is_err());
    }
}
