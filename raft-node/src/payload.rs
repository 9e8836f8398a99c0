//! The bytes of a normal Raft entry: the commit ts the leader assigned, and the batched client commands.
//! `version u8 | ts u64 | count u32 | (len u32 | command)*`, integers big-endian.
//!
//! Version 2 (written now): command `i` is committed at `ts + i` — each client request batched into the
//! entry has a ts of its own, so requests are ordered in time as in the log (a put and a checkpoint of the
//! same entity in one entry never share a ts); the leader's clock reserves the whole range. Version 1
//! (older logs, still decoded): every command at `ts`.

use crate::error::Error;
use crate::node::CommitTs;

const VERSION: u8 = 2;
const VERSION_SHARED_TS: u8 = 1;
/// Bytes of the header (`version`, `ts`, `count`).
const HEADER: usize = 13;
/// Bytes each command adds besides its own (its length).
const PER_COMMAND: usize = 4;

/// The largest command an entry of at most `max_entry_bytes` can carry alone.
pub fn max_command_len(max_entry_bytes: usize) -> usize {
    max_entry_bytes.saturating_sub(HEADER + PER_COMMAND)
}

/// How many of the queued commands (their lengths, in order) go into the next entry: at most
/// `max_commands`, and no more than fit in `max_entry_bytes` — but always at least one, so a command is
/// never stuck behind the limit (commands that cannot fit alone are refused before they are queued).
pub fn batch_len(
    lengths: impl Iterator<Item = usize>,
    max_commands: usize,
    max_entry_bytes: usize,
) -> usize {
    let mut bytes = HEADER;
    let mut n = 0;
    for len in lengths.take(max_commands.max(1)) {
        bytes = bytes.saturating_add(len.saturating_add(PER_COMMAND));
        if n > 0 && bytes > max_entry_bytes {
            break;
        }
        n += 1;
    }
    n
}

fn len_u32(n: usize) -> Result<[u8; 4], Error> {
    u32::try_from(n)
        .map(u32::to_be_bytes)
        .map_err(|_| Error::Invalid("command or batch too large"))
}

/// An entry whose command `i` is committed at `ts + i`.
pub fn encode(ts: u64, commands: &[Vec<u8>]) -> Result<Vec<u8>, Error> {
    let body: usize = commands.iter().map(|c| c.len() + PER_COMMAND).sum();
    let mut out = Vec::with_capacity(HEADER + body);
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

/// The header: the timestamps of the commands and their count, without splitting them.
fn decode_header(data: &[u8]) -> Result<(CommitTs, usize, &[u8]), Error> {
    let mut buf = data;
    let step = match take(&mut buf, 1)? {
        [VERSION] => 1,
        [VERSION_SHARED_TS] => 0,
        _ => return Err(corrupt("unknown payload version")),
    };
    let b = take(&mut buf, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    let first = u64::from_be_bytes(a);
    let count = take_u32(&mut buf)?;
    Ok((CommitTs { first, step }, count, buf))
}

/// The highest ts the entry carries: its last command's (its only one if it has none).
pub fn last_ts(data: &[u8]) -> Result<u64, Error> {
    let (ts, count, _) = decode_header(data)?;
    ts.last(count).ok_or_else(|| corrupt("ts out of range"))
}

/// The commands' timestamps and the commands.
pub fn decode(data: &[u8]) -> Result<(CommitTs, Vec<&[u8]>), Error> {
    let (ts, count, mut buf) = decode_header(data)?;
    ts.last(count).ok_or_else(|| corrupt("ts out of range"))?;
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
    fn a_batch_stops_before_the_entry_byte_limit_and_always_takes_one() {
        let limit = 1000;
        // 13 + 3 × (300 + 4) = 925 fits; a fourth does not.
        assert_eq!(batch_len([300; 10].into_iter(), 1024, limit), 3);
        assert_eq!(batch_len([300; 10].into_iter(), 2, limit), 2);
        // Exactly at the limit fits.
        let exact = max_command_len(limit);
        assert_eq!(batch_len([exact, 0].into_iter(), 1024, limit), 1);
        assert_eq!(encode(1, &[vec![0; exact]]).unwrap().len(), limit);
        // One oversized command still goes alone rather than blocking the queue.
        assert_eq!(batch_len([5000, 1].into_iter(), 1024, limit), 1);
        assert_eq!(batch_len(std::iter::empty(), 1024, limit), 0);
        // Whatever is taken encodes within the limit when every command fits alone.
        let lens = [1usize, 400, 0, 583, 17, 200, 983, 3];
        let mut rest = &lens[..];
        while !rest.is_empty() {
            let n = batch_len(rest.iter().copied(), 1024, limit);
            let cmds: Vec<Vec<u8>> = rest[..n].iter().map(|&l| vec![7; l]).collect();
            assert!(encode(9, &cmds).unwrap().len() <= limit, "{:?}", &rest[..n]);
            rest = &rest[n..];
        }
    }

    #[test]
    fn roundtrip_and_every_truncation_is_an_error() {
        let cmds = vec![b"a".to_vec(), vec![], b"ccc".to_vec()];
        let data = encode(77, &cmds).unwrap();
        let (ts, got) = decode(&data).unwrap();
        assert_eq!(ts, CommitTs { first: 77, step: 1 });
        assert_eq!((ts.at(0), ts.at(2), last_ts(&data).unwrap()), (77, 79, 79));
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

#[cfg(test)]
mod versions {
    use super::*;

    #[test]
    fn each_command_of_an_entry_has_its_own_ts_and_old_entries_share_one() {
        let cmds = vec![b"put".to_vec(), b"checkpoint".to_vec()];
        let mut data = encode(100, &cmds).unwrap();
        let (ts, _) = decode(&data).unwrap();
        assert_ne!(ts.at(0), ts.at(1), "two commands of one entry share a ts");
        assert_eq!(last_ts(&data).unwrap(), 101);
        assert_eq!(last_ts(&encode(100, &[]).unwrap()).unwrap(), 100);
        // Version 1, written before: every command at the entry's ts.
        data[0] = VERSION_SHARED_TS;
        let (old, got) = decode(&data).unwrap();
        assert_eq!(
            (old.at(0), old.at(1), last_ts(&data).unwrap()),
            (100, 100, 100)
        );
        assert_eq!(got.len(), 2);
        // A ts range past u64 is corruption, not a wrap.
        let near_end = encode(u64::MAX, &cmds).unwrap();
        assert!(decode(&near_end).is_err() && last_ts(&near_end).is_err());
    }
}
