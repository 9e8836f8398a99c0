//! The command codec: [`Op`] lists to bytes and back (the body of a Raft command), and per-op results
//! ([`OpResult`]) to bytes and back (the reply a leader returns for a forwarded proposal).
//!
//! **This is a persistent format**: encoded op lists are stored in Raft log entries and re-applied after a
//! restart, possibly by a newer binary. Never change the meaning of an existing tag or code; add new ones,
//! or bump [`FORMAT_VERSION`] and keep decoding the old one. The known-bytes tests (`codec/tests.rs`) pin
//! the format.
//!
//! ## Format (version 1)
//!
//! ```text
//! ops      = 0x01 count:uvarint op{count}
//! op       = 0x01 key:bytes value:bytes cond                                  Put
//!          | 0x02 key:bytes cond                                              Delete
//!          | 0x03 key:bytes delta:svarint cond                                Incr
//!          | 0x04 entity:bytes name:bytes data:bytes epoch:opt_u64            Checkpoint
//!          | 0x05 key:bytes                                                   Get
//!          | 0x06 count compare{count} count op{count} count op{count}       Txn (compares, success, failure);
//!                                                                             its ops may not be Txns
//!          | 0x07 index:uvarint                                               SyncCursor (not inside a Txn)
//! cond     = flags:u8 [epoch:uvarint] [if_version:uvarint]                    flags: bit 0 epoch present,
//!                                                                             bit 1 if_version present,
//!                                                                             bit 2 if_absent; others 0
//! compare  = 0x01 key:bytes cmp value:bytes                                   Value
//!          | 0x02 key:bytes cmp ts:uvarint                                    Version
//!          | 0x03 key:bytes exists:bool                                       Exists
//!          | 0x04 entity:bytes cmp epoch:uvarint                              Epoch
//! cmp      = 0x00 Eq | 0x01 NotEq | 0x02 Less | 0x03 Greater
//!
//! results  = 0x01 count:uvarint result{count}
//! result   = 0x01 ts epoch                                                    Ok(Written)
//!          | 0x02 ts existed:bool                                             Ok(Deleted)
//!          | 0x03 value:svarint ts epoch                                      Ok(Incremented)
//!          | 0x04 epoch ts                                                    Ok(Checkpointed)
//!          | 0x05 0x00  |  0x05 0x01 value:bytes ts epoch                     Ok(Read(None | Some))
//!          | 0x06 succeeded:bool count outcome{count}                         Ok(Txn); inner outcomes
//!                                                                             use tags 0x01..=0x05 only
//!          | 0x07 cursor:uvarint                                              Ok(CursorRecorded)
//!          | 0x81 current:uvarint                                             Err(StaleEpoch)
//!          | 0x82 current_version:uvarint                                     Err(ConditionFailed)
//!          | 0x83                                                             Err(NotAnInteger)
//!          | 0x84                                                             Err(Overflow)
//!          | 0x85 reason:u8                                                   Err(InvalidKey), see INVALID_KEY_REASONS
//!          | 0x86 reason:u8                                                   Err(Invalid), see INVALID_REASONS
//!
//! changes  = 0x01 count:uvarint change{count}                                 a change-feed record
//! change   = 0x01 key:bytes ts epoch 0x00                                     Write (deleted)
//!          | 0x01 key:bytes ts epoch 0x01 value:bytes                         Write (value)
//!          | 0x02 entity:bytes name:bytes data:bytes epoch ts                 Checkpoint
//!
//! ts, epoch, count = uvarint
//! bytes    = len:uvarint byte{len}
//! opt_u64  = 0x00 | 0x01 uvarint
//! bool     = 0x00 | 0x01
//! uvarint  = unsigned LEB128 in its shortest form, at most 10 bytes, at most u64::MAX
//! svarint  = zigzag-encoded i64 as uvarint
//! ```
//!
//! ## Decoding guarantees
//! Every decoder is total: it returns a [`CodecError`] and never panics on any input. It never allocates
//! more than the remaining input justifies (a length or count larger than what the remaining bytes could
//! hold is refused before allocating). Nesting is bounded: a Txn inside a Txn is refused, as are trailing
//! bytes, unknown tags, non-canonical varints and any flag bit or bool other than the defined ones. So each
//! value has exactly one encoding, and decoding is deterministic across replicas.
//!
//! ## Encoding
//! The encoders refuse (rather than emit) what the decoder would refuse — a nested Txn, or an error reason
//! missing from the reason tables — so a command that was accepted for proposal can always be decoded when
//! the log is applied: a bad client request can never become a poisoned log entry.
//!
//! ## Why its own error type
//! The same decoder serves Raft log entries (where the caller reports [`crate::Error::Corruption`] with the
//! entry index it knows) and forwarded replies (where a failure is a transport problem), and the encoders
//! reject invalid input; one [`CodecError`] names the exact problem and each caller maps it in context.

use crate::op::{Change, CmpOp, Compare, Op, OpError, OpOutcome, OpResult, Versioned, WriteCond};

/// The leading byte of every encoding this module produces.
pub const FORMAT_VERSION: u8 = 1;

/// Reasons carried by [`OpError::InvalidKey`], indexed by their wire code minus one. Append only.
pub const INVALID_KEY_REASONS: &[&str] = &["empty key", "empty entity", "entity contains '/'"];

/// Reasons carried by [`OpError::Invalid`], indexed by their wire code minus one. Append only.
pub const INVALID_REASONS: &[&str] = &[
    "transactions do not nest",
    "empty checkpoint name",
    "a sync cursor inside a transaction",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ends before the content it announces (including a length or count larger than what the
    /// remaining bytes could hold).
    #[error("truncated: the input ends before the encoded content does")]
    Truncated,
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    #[error("unknown {what} tag {tag:#04x}")]
    UnknownTag { what: &'static str, tag: u8 },
    #[error("bad varint: not in shortest form or larger than 64 bits")]
    BadVarint,
    #[error("{0} trailing bytes after the encoding")]
    TrailingBytes(usize),
    /// A Txn inside a Txn (op or outcome): transactions do not nest.
    #[error("a transaction inside a transaction")]
    NestedTxn,
    /// A sync cursor (op or outcome) inside a Txn: only the sync worker proposes it, on its own.
    #[error("a sync cursor inside a transaction")]
    CursorInTxn,
    /// Decoding: a reason code that is not in the table.
    #[error("unknown {what} reason code {code}")]
    UnknownReason { what: &'static str, code: u8 },
    /// Encoding: a reason text that has no code yet; add it to the table.
    #[error("{what} reason {reason:?} has no wire code (add it to the codec's table)")]
    UnregisteredReason {
        what: &'static str,
        reason: &'static str,
    },
}

// ---------------------------------------------------------------------------------------------------------
// Tags

const OP_PUT: u8 = 0x01;
const OP_DELETE: u8 = 0x02;
const OP_INCR: u8 = 0x03;
const OP_CHECKPOINT: u8 = 0x04;
const OP_GET: u8 = 0x05;
const OP_TXN: u8 = 0x06;
const OP_SYNC_CURSOR: u8 = 0x07;

const CMP_VALUE: u8 = 0x01;
const CMP_VERSION: u8 = 0x02;
const CMP_EXISTS: u8 = 0x03;
const CMP_EPOCH: u8 = 0x04;

const COND_EPOCH: u8 = 0b001;
const COND_IF_VERSION: u8 = 0b010;
const COND_IF_ABSENT: u8 = 0b100;

const OUT_WRITTEN: u8 = 0x01;
const OUT_DELETED: u8 = 0x02;
const OUT_INCREMENTED: u8 = 0x03;
const OUT_CHECKPOINTED: u8 = 0x04;
const OUT_READ: u8 = 0x05;
const OUT_TXN: u8 = 0x06;
const OUT_CURSOR: u8 = 0x07;

const CHANGE_WRITE: u8 = 0x01;
const CHANGE_CHECKPOINT: u8 = 0x02;

const ERR_STALE_EPOCH: u8 = 0x81;
const ERR_CONDITION_FAILED: u8 = 0x82;
const ERR_NOT_AN_INTEGER: u8 = 0x83;
const ERR_OVERFLOW: u8 = 0x84;
const ERR_INVALID_KEY: u8 = 0x85;
const ERR_INVALID: u8 = 0x86;

/// Smallest encodings, used to refuse counts the remaining input cannot hold before allocating.
const MIN_OP_BYTES: usize = 2; // Get with an empty key
const MIN_COMPARE_BYTES: usize = 3; // Exists with an empty key
const MIN_RESULT_BYTES: usize = 1; // NotAnInteger
const MIN_OUTCOME_BYTES: usize = 2; // Read(None)
const MIN_CHANGE_BYTES: usize = 5; // Write of an empty key, deleted

// ---------------------------------------------------------------------------------------------------------
// Encoding

/// Encodes a list of ops (one Raft command). Fails only on a Txn nested in a Txn.
pub fn encode_ops(ops: &[Op]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(16 + ops.len() * 16);
    out.push(FORMAT_VERSION);
    put_len(&mut out, ops.len());
    for op in ops {
        put_op(&mut out, op, false)?;
    }
    Ok(out)
}

/// Encodes per-op results. Fails on a Txn outcome nested in a Txn outcome, or on an
/// `InvalidKey`/`Invalid` reason missing from [`INVALID_KEY_REASONS`]/[`INVALID_REASONS`].
pub fn encode_results(results: &[OpResult]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(16 + results.len() * 8);
    out.push(FORMAT_VERSION);
    put_len(&mut out, results.len());
    for result in results {
        match result {
            Ok(outcome) => put_outcome(&mut out, outcome, false)?,
            Err(error) => put_error(&mut out, error)?,
        }
    }
    Ok(out)
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(low7(v) | 0x80);
        v >>= 7;
    }
    out.push(low7(v));
}

/// The low 7 bits of `v`.
fn low7(v: u64) -> u8 {
    v.to_le_bytes()[0] & 0x7f
}

fn zigzag(v: i64) -> u64 {
    // Two's-complement reinterpretation, no value is lost: (v << 1) ^ (v >> 63).
    u64::from_ne_bytes(((v << 1) ^ (v >> 63)).to_ne_bytes())
}

fn unzigzag(v: u64) -> i64 {
    let half = i64::from_ne_bytes((v >> 1).to_ne_bytes());
    let sign = i64::from_ne_bytes((v & 1).to_ne_bytes());
    half ^ -sign
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    // usize → u64 never loses bits on any platform Rust supports.
    put_uvarint(out, u64::try_from(n).unwrap_or(u64::MAX));
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_bool(out: &mut Vec<u8>, b: bool) {
    out.push(u8::from(b));
}

fn put_cond(out: &mut Vec<u8>, cond: &WriteCond) {
    let mut flags = 0;
    if cond.epoch.is_some() {
        flags |= COND_EPOCH;
    }
    if cond.if_version.is_some() {
        flags |= COND_IF_VERSION;
    }
    if cond.if_absent {
        flags |= COND_IF_ABSENT;
    }
    out.push(flags);
    if let Some(epoch) = cond.epoch {
        put_uvarint(out, epoch);
    }
    if let Some(version) = cond.if_version {
        put_uvarint(out, version);
    }
}

fn put_cmp(out: &mut Vec<u8>, op: CmpOp) {
    out.push(match op {
        CmpOp::Eq => 0,
        CmpOp::NotEq => 1,
        CmpOp::Less => 2,
        CmpOp::Greater => 3,
    });
}

fn put_op(out: &mut Vec<u8>, op: &Op, in_txn: bool) -> Result<(), CodecError> {
    match op {
        Op::Put { key, value, cond } => {
            out.push(OP_PUT);
            put_bytes(out, key);
            put_bytes(out, value);
            put_cond(out, cond);
        }
        Op::Delete { key, cond } => {
            out.push(OP_DELETE);
            put_bytes(out, key);
            put_cond(out, cond);
        }
        Op::Incr { key, delta, cond } => {
            out.push(OP_INCR);
            put_bytes(out, key);
            put_uvarint(out, zigzag(*delta));
            put_cond(out, cond);
        }
        Op::Checkpoint {
            entity,
            name,
            data,
            epoch,
        } => {
            out.push(OP_CHECKPOINT);
            put_bytes(out, entity);
            put_bytes(out, name);
            put_bytes(out, data);
            match epoch {
                None => out.push(0),
                Some(e) => {
                    out.push(1);
                    put_uvarint(out, *e);
                }
            }
        }
        Op::Get { key } => {
            out.push(OP_GET);
            put_bytes(out, key);
        }
        Op::SyncCursor { .. } if in_txn => return Err(CodecError::CursorInTxn),
        Op::SyncCursor { index } => {
            out.push(OP_SYNC_CURSOR);
            put_uvarint(out, *index);
        }
        Op::Txn { .. } if in_txn => return Err(CodecError::NestedTxn),
        Op::Txn {
            compares,
            success,
            failure,
        } => {
            out.push(OP_TXN);
            put_len(out, compares.len());
            for c in compares {
                put_compare(out, c);
            }
            for branch in [success, failure] {
                put_len(out, branch.len());
                for op in branch {
                    put_op(out, op, true)?;
                }
            }
        }
    }
    Ok(())
}

fn put_compare(out: &mut Vec<u8>, c: &Compare) {
    match c {
        Compare::Value { key, op, value } => {
            out.push(CMP_VALUE);
            put_bytes(out, key);
            put_cmp(out, *op);
            put_bytes(out, value);
        }
        Compare::Version { key, op, ts } => {
            out.push(CMP_VERSION);
            put_bytes(out, key);
            put_cmp(out, *op);
            put_uvarint(out, *ts);
        }
        Compare::Exists { key, exists } => {
            out.push(CMP_EXISTS);
            put_bytes(out, key);
            put_bool(out, *exists);
        }
        Compare::Epoch { entity, op, epoch } => {
            out.push(CMP_EPOCH);
            put_bytes(out, entity);
            put_cmp(out, *op);
            put_uvarint(out, *epoch);
        }
    }
}

fn put_outcome(out: &mut Vec<u8>, outcome: &OpOutcome, in_txn: bool) -> Result<(), CodecError> {
    match outcome {
        OpOutcome::Written { ts, epoch } => {
            out.push(OUT_WRITTEN);
            put_uvarint(out, *ts);
            put_uvarint(out, *epoch);
        }
        OpOutcome::Deleted { ts, existed } => {
            out.push(OUT_DELETED);
            put_uvarint(out, *ts);
            put_bool(out, *existed);
        }
        OpOutcome::Incremented { value, ts, epoch } => {
            out.push(OUT_INCREMENTED);
            put_uvarint(out, zigzag(*value));
            put_uvarint(out, *ts);
            put_uvarint(out, *epoch);
        }
        OpOutcome::Checkpointed { epoch, ts } => {
            out.push(OUT_CHECKPOINTED);
            put_uvarint(out, *epoch);
            put_uvarint(out, *ts);
        }
        OpOutcome::Read(read) => {
            out.push(OUT_READ);
            match read {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    put_bytes(out, &v.value);
                    put_uvarint(out, v.ts);
                    put_uvarint(out, v.epoch);
                }
            }
        }
        OpOutcome::CursorRecorded { .. } if in_txn => return Err(CodecError::CursorInTxn),
        OpOutcome::CursorRecorded { cursor } => {
            out.push(OUT_CURSOR);
            put_uvarint(out, *cursor);
        }
        OpOutcome::Txn { .. } if in_txn => return Err(CodecError::NestedTxn),
        OpOutcome::Txn { succeeded, results } => {
            out.push(OUT_TXN);
            put_bool(out, *succeeded);
            put_len(out, results.len());
            for r in results {
                put_outcome(out, r, true)?;
            }
        }
    }
    Ok(())
}

fn reason_code(table: &[&str], what: &'static str, reason: &'static str) -> Result<u8, CodecError> {
    table
        .iter()
        .position(|known| *known == reason)
        .and_then(|i| u8::try_from(i + 1).ok())
        .ok_or(CodecError::UnregisteredReason { what, reason })
}

fn put_error(out: &mut Vec<u8>, error: &OpError) -> Result<(), CodecError> {
    match error {
        OpError::StaleEpoch { current } => {
            out.push(ERR_STALE_EPOCH);
            put_uvarint(out, *current);
        }
        OpError::ConditionFailed { current_version } => {
            out.push(ERR_CONDITION_FAILED);
            put_uvarint(out, *current_version);
        }
        OpError::NotAnInteger => out.push(ERR_NOT_AN_INTEGER),
        OpError::Overflow => out.push(ERR_OVERFLOW),
        OpError::InvalidKey(reason) => {
            let code = reason_code(INVALID_KEY_REASONS, "invalid-key", reason)?;
            out.push(ERR_INVALID_KEY);
            out.push(code);
        }
        OpError::Invalid(reason) => {
            let code = reason_code(INVALID_REASONS, "invalid-operation", reason)?;
            out.push(ERR_INVALID);
            out.push(code);
        }
    }
    Ok(())
}

/// Encodes the changes of one log entry (a change-feed record).
pub fn encode_changes(changes: &[Change]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + changes.len() * 32);
    out.push(FORMAT_VERSION);
    put_len(&mut out, changes.len());
    for change in changes {
        match change {
            Change::Write {
                key,
                value,
                ts,
                epoch,
            } => {
                out.push(CHANGE_WRITE);
                put_bytes(&mut out, key);
                put_uvarint(&mut out, *ts);
                put_uvarint(&mut out, *epoch);
                match value {
                    None => out.push(0),
                    Some(v) => {
                        out.push(1);
                        put_bytes(&mut out, v);
                    }
                }
            }
            Change::Checkpoint {
                entity,
                name,
                data,
                epoch,
                ts,
            } => {
                out.push(CHANGE_CHECKPOINT);
                put_bytes(&mut out, entity);
                put_bytes(&mut out, name);
                put_bytes(&mut out, data);
                put_uvarint(&mut out, *epoch);
                put_uvarint(&mut out, *ts);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Decoding

/// Decodes a change-feed record encoded by [`encode_changes`].
pub fn decode_changes(bytes: &[u8]) -> Result<Vec<Change>, CodecError> {
    let mut r = Reader::new(bytes)?;
    let n = r.count(MIN_CHANGE_BYTES)?;
    let mut changes = Vec::with_capacity(n);
    for _ in 0..n {
        changes.push(match r.u8()? {
            CHANGE_WRITE => Change::Write {
                key: r.bytes()?,
                ts: r.uvarint()?,
                epoch: r.uvarint()?,
                value: match r.u8()? {
                    0 => None,
                    1 => Some(r.bytes()?),
                    tag => {
                        return Err(CodecError::UnknownTag {
                            what: "optional value",
                            tag,
                        })
                    }
                },
            },
            CHANGE_CHECKPOINT => Change::Checkpoint {
                entity: r.bytes()?,
                name: r.bytes()?,
                data: r.bytes()?,
                epoch: r.uvarint()?,
                ts: r.uvarint()?,
            },
            tag => {
                return Err(CodecError::UnknownTag {
                    what: "change",
                    tag,
                })
            }
        });
    }
    r.finish()?;
    Ok(changes)
}

/// Decodes a list of ops encoded by [`encode_ops`].
pub fn decode_ops(bytes: &[u8]) -> Result<Vec<Op>, CodecError> {
    let mut r = Reader::new(bytes)?;
    let n = r.count(MIN_OP_BYTES)?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        ops.push(r.op(false)?);
    }
    r.finish()?;
    Ok(ops)
}

/// Decodes per-op results encoded by [`encode_results`].
pub fn decode_results(bytes: &[u8]) -> Result<Vec<OpResult>, CodecError> {
    let mut r = Reader::new(bytes)?;
    let n = r.count(MIN_RESULT_BYTES)?;
    let mut results = Vec::with_capacity(n);
    for _ in 0..n {
        results.push(r.result()?);
    }
    r.finish()?;
    Ok(results)
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Checks the version byte.
    fn new(buf: &'a [u8]) -> Result<Self, CodecError> {
        let mut r = Reader { buf };
        match r.u8()? {
            FORMAT_VERSION => Ok(r),
            v => Err(CodecError::UnknownVersion(v)),
        }
    }

    fn finish(self) -> Result<(), CodecError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(CodecError::TrailingBytes(n)),
        }
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        let (&b, rest) = self.buf.split_first().ok_or(CodecError::Truncated)?;
        self.buf = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.buf.len() {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn uvarint(&mut self) -> Result<u64, CodecError> {
        let mut v: u64 = 0;
        for i in 0..10u32 {
            let b = self.u8()?;
            // The 10th byte holds bit 63 only.
            if i == 9 && b > 1 {
                return Err(CodecError::BadVarint);
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                // Shortest form: a multi-byte varint cannot end in a zero byte.
                if b == 0 && i > 0 {
                    return Err(CodecError::BadVarint);
                }
                return Ok(v);
            }
        }
        Err(CodecError::BadVarint)
    }

    fn svarint(&mut self) -> Result<i64, CodecError> {
        self.uvarint().map(unzigzag)
    }

    /// A length or count whose items take at least `min_each` bytes each: refused when the remaining
    /// input cannot hold that many, so no allocation exceeds what the input justifies.
    fn count(&mut self, min_each: usize) -> Result<usize, CodecError> {
        let n = usize::try_from(self.uvarint()?).map_err(|_| CodecError::Truncated)?;
        match n.checked_mul(min_each) {
            Some(need) if need <= self.buf.len() => Ok(n),
            _ => Err(CodecError::Truncated),
        }
    }

    fn bytes(&mut self) -> Result<Vec<u8>, CodecError> {
        let n = self.count(1)?;
        self.take(n).map(<[u8]>::to_vec)
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, CodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(CodecError::UnknownTag { what, tag }),
        }
    }

    fn cond(&mut self) -> Result<WriteCond, CodecError> {
        let flags = self.u8()?;
        if flags & !(COND_EPOCH | COND_IF_VERSION | COND_IF_ABSENT) != 0 {
            return Err(CodecError::UnknownTag {
                what: "condition flags",
                tag: flags,
            });
        }
        let epoch = if flags & COND_EPOCH != 0 {
            Some(self.uvarint()?)
        } else {
            None
        };
        let if_version = if flags & COND_IF_VERSION != 0 {
            Some(self.uvarint()?)
        } else {
            None
        };
        Ok(WriteCond {
            epoch,
            if_version,
            if_absent: flags & COND_IF_ABSENT != 0,
        })
    }

    fn cmp(&mut self) -> Result<CmpOp, CodecError> {
        match self.u8()? {
            0 => Ok(CmpOp::Eq),
            1 => Ok(CmpOp::NotEq),
            2 => Ok(CmpOp::Less),
            3 => Ok(CmpOp::Greater),
            tag => Err(CodecError::UnknownTag {
                what: "comparison",
                tag,
            }),
        }
    }

    fn op(&mut self, in_txn: bool) -> Result<Op, CodecError> {
        Ok(match self.u8()? {
            OP_PUT => Op::Put {
                key: self.bytes()?,
                value: self.bytes()?,
                cond: self.cond()?,
            },
            OP_DELETE => Op::Delete {
                key: self.bytes()?,
                cond: self.cond()?,
            },
            OP_INCR => Op::Incr {
                key: self.bytes()?,
                delta: self.svarint()?,
                cond: self.cond()?,
            },
            OP_CHECKPOINT => Op::Checkpoint {
                entity: self.bytes()?,
                name: self.bytes()?,
                data: self.bytes()?,
                epoch: match self.u8()? {
                    0 => None,
                    1 => Some(self.uvarint()?),
                    tag => {
                        return Err(CodecError::UnknownTag {
                            what: "optional epoch",
                            tag,
                        })
                    }
                },
            },
            OP_GET => Op::Get { key: self.bytes()? },
            OP_SYNC_CURSOR if in_txn => return Err(CodecError::CursorInTxn),
            OP_SYNC_CURSOR => Op::SyncCursor {
                index: self.uvarint()?,
            },
            OP_TXN if in_txn => return Err(CodecError::NestedTxn),
            OP_TXN => {
                let n = self.count(MIN_COMPARE_BYTES)?;
                let mut compares = Vec::with_capacity(n);
                for _ in 0..n {
                    compares.push(self.compare()?);
                }
                let success = self.txn_branch()?;
                let failure = self.txn_branch()?;
                Op::Txn {
                    compares,
                    success,
                    failure,
                }
            }
            tag => return Err(CodecError::UnknownTag { what: "op", tag }),
        })
    }

    fn txn_branch(&mut self) -> Result<Vec<Op>, CodecError> {
        let n = self.count(MIN_OP_BYTES)?;
        let mut ops = Vec::with_capacity(n);
        for _ in 0..n {
            ops.push(self.op(true)?);
        }
        Ok(ops)
    }

    fn compare(&mut self) -> Result<Compare, CodecError> {
        Ok(match self.u8()? {
            CMP_VALUE => Compare::Value {
                key: self.bytes()?,
                op: self.cmp()?,
                value: self.bytes()?,
            },
            CMP_VERSION => Compare::Version {
                key: self.bytes()?,
                op: self.cmp()?,
                ts: self.uvarint()?,
            },
            CMP_EXISTS => Compare::Exists {
                key: self.bytes()?,
                exists: self.bool("exists flag")?,
            },
            CMP_EPOCH => Compare::Epoch {
                entity: self.bytes()?,
                op: self.cmp()?,
                epoch: self.uvarint()?,
            },
            tag => {
                return Err(CodecError::UnknownTag {
                    what: "compare",
                    tag,
                })
            }
        })
    }

    fn result(&mut self) -> Result<OpResult, CodecError> {
        let tag = self.u8()?;
        Ok(match tag {
            ERR_STALE_EPOCH => Err(OpError::StaleEpoch {
                current: self.uvarint()?,
            }),
            ERR_CONDITION_FAILED => Err(OpError::ConditionFailed {
                current_version: self.uvarint()?,
            }),
            ERR_NOT_AN_INTEGER => Err(OpError::NotAnInteger),
            ERR_OVERFLOW => Err(OpError::Overflow),
            ERR_INVALID_KEY => Err(OpError::InvalidKey(
                self.reason(INVALID_KEY_REASONS, "invalid-key")?,
            )),
            ERR_INVALID => Err(OpError::Invalid(
                self.reason(INVALID_REASONS, "invalid-operation")?,
            )),
            tag => Ok(self.outcome(tag, false)?),
        })
    }

    fn reason(
        &mut self,
        table: &[&'static str],
        what: &'static str,
    ) -> Result<&'static str, CodecError> {
        let code = self.u8()?;
        usize::from(code)
            .checked_sub(1)
            .and_then(|i| table.get(i).copied())
            .ok_or(CodecError::UnknownReason { what, code })
    }

    /// An outcome whose tag has been read.
    fn outcome(&mut self, tag: u8, in_txn: bool) -> Result<OpOutcome, CodecError> {
        Ok(match tag {
            OUT_WRITTEN => OpOutcome::Written {
                ts: self.uvarint()?,
                epoch: self.uvarint()?,
            },
            OUT_DELETED => OpOutcome::Deleted {
                ts: self.uvarint()?,
                existed: self.bool("existed flag")?,
            },
            OUT_INCREMENTED => OpOutcome::Incremented {
                value: self.svarint()?,
                ts: self.uvarint()?,
                epoch: self.uvarint()?,
            },
            OUT_CHECKPOINTED => OpOutcome::Checkpointed {
                epoch: self.uvarint()?,
                ts: self.uvarint()?,
            },
            OUT_READ => OpOutcome::Read(match self.u8()? {
                0 => None,
                1 => Some(Versioned {
                    value: self.bytes()?,
                    ts: self.uvarint()?,
                    epoch: self.uvarint()?,
                }),
                tag => {
                    return Err(CodecError::UnknownTag {
                        what: "optional read",
                        tag,
                    })
                }
            }),
            OUT_CURSOR if in_txn => return Err(CodecError::CursorInTxn),
            OUT_CURSOR => OpOutcome::CursorRecorded {
                cursor: self.uvarint()?,
            },
            OUT_TXN if in_txn => return Err(CodecError::NestedTxn),
            OUT_TXN => {
                let succeeded = self.bool("txn succeeded flag")?;
                let n = self.count(MIN_OUTCOME_BYTES)?;
                let mut results = Vec::with_capacity(n);
                for _ in 0..n {
                    let tag = self.u8()?;
                    results.push(self.outcome(tag, true)?);
                }
                OpOutcome::Txn { succeeded, results }
            }
            tag => {
                return Err(CodecError::UnknownTag {
                    what: "result",
                    tag,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests;
