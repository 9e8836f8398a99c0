//! The simulated state machine: the checker's sequential [`Model`] as a raft-node [`StateMachine`], with a
//! durable copy that survives a simulated crash and snapshot images passed by token instead of bytes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use raft_node::{CommitTs, Error, StagedImage, StateMachine};

use crate::linearizability::Model;
use crate::op_codec::{decode_op, encode_ret};

/// A state machine image as it exists somewhere: the model and its applied (index, ts).
pub type Image = (Model, (u64, u64));

/// The machine's durable copy: written by `flush` and `install_snapshot`, it outlives a simulated crash of
/// its node (like a [`MemLog`](crate::mem_log::MemLog)); clone it before handing it to the machine.
pub type Disk = Arc<Mutex<Option<Image>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Images "on the wire": a snapshot's single chunk is a token naming one of these (the model is not
/// serialized; the token travels through the real `StagedImage` / `install_snapshot` path). Clones share
/// the same images.
#[derive(Clone, Default)]
pub struct Images {
    inner: Arc<Mutex<(u64, BTreeMap<u64, Image>)>>,
}

impl Images {
    /// Puts `image` on the wire; the staged image a receiver installs names it.
    pub fn send(&self, image: Image) -> SimImage {
        let mut inner = lock(&self.inner);
        inner.0 += 1;
        let token = inner.0;
        inner.1.insert(token, image);
        SimImage(token)
    }

    fn get(&self, token: u64) -> Option<Image> {
        lock(&self.inner).1.get(&token).cloned()
    }
}

/// A received image: one chunk carrying the token of an entry in [`Images`].
pub struct SimImage(u64);

impl StagedImage for SimImage {
    fn chunks(&self) -> Box<dyn Iterator<Item = Vec<u8>> + '_> {
        Box::new(std::iter::once(self.0.to_be_bytes().to_vec()))
    }
}

/// The checker's model plus the applied index. Commands are [`op_codec`](crate::op_codec) ops, results
/// the model's returns. A restarted node starts from the [`Disk`] copy and replays the log after it.
///
/// It asserts what a correct node guarantees: no entry applied twice and commit timestamps that never go
/// back — an entry's commands come strictly after the previous entry's last ts (a violation panics the
/// test).
pub struct KvMachine {
    model: Model,
    applied: (u64, u64),
    disk: Disk,
    images: Images,
}

impl KvMachine {
    /// The machine as a node finds it at start: the durable copy on `disk` (empty if none was written).
    pub fn restore(disk: Disk, images: Images) -> Self {
        let (model, applied) = lock(&disk).clone().unwrap_or_default();
        KvMachine {
            model,
            applied,
            disk,
            images,
        }
    }

    /// The current state, as a snapshot sender would stream it.
    pub fn image(&self) -> Image {
        (self.model.clone(), self.applied)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }
}

impl StateMachine for KvMachine {
    type Output = Vec<u8>;

    fn applied(&self) -> (u64, u64) {
        self.applied
    }

    fn apply(
        &mut self,
        index: u64,
        ts: CommitTs,
        commands: &[&[u8]],
    ) -> Result<Vec<Vec<u8>>, Error> {
        assert!(
            index > self.applied.0,
            "entry {index} applied twice (applied {})",
            self.applied.0
        );
        // Commands never share a ts with an earlier entry's (entries without commands keep the last).
        assert!(
            ts.first > self.applied.1 || commands.is_empty() && ts.first == self.applied.1,
            "commit ts went back: {} after {}",
            ts.first,
            self.applied.1
        );
        let last = ts
            .last(commands.len())
            .ok_or(Error::Invalid("ts out of range"))?;
        let mut out = Vec::with_capacity(commands.len());
        for c in commands {
            let op = decode_op(c).ok_or(Error::Invalid("undecodable command"))?;
            out.push(encode_ret(self.model.apply(&op)));
        }
        self.applied = (index, last);
        Ok(out)
    }

    fn flush(&mut self) -> Result<(), Error> {
        *lock(&self.disk) = Some(self.image());
        Ok(())
    }

    fn install_snapshot(
        &mut self,
        image: &mut dyn Iterator<Item = Vec<u8>>,
    ) -> Result<(u64, u64), Error> {
        let token = image
            .next()
            .and_then(|c| <[u8; 8]>::try_from(c.as_slice()).ok())
            .map(u64::from_be_bytes)
            .ok_or(Error::StateMachine("bad simulated image".into()))?;
        let (model, applied) = self
            .images
            .get(token)
            .ok_or(Error::StateMachine("unknown simulated image".into()))?;
        self.model = model;
        self.applied = applied;
        *lock(&self.disk) = Some(self.image());
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::{Op, Ret};
    use crate::op_codec::{decode_ret, encode_op};

    #[test]
    fn applies_ops_and_restarts_from_its_durable_copy() {
        let (disk, images) = (Disk::default(), Images::default());
        let mut m = KvMachine::restore(disk.clone(), images.clone());
        assert_eq!(m.applied(), (0, 0));
        let (put, incr) = (encode_op(&Op::put("k", "v")), encode_op(&Op::incr("c", 2)));
        let out = m
            .apply(1, CommitTs { first: 10, step: 1 }, &[&put, &incr])
            .unwrap();
        assert_eq!(decode_ret(&out[0]), Some(Some(Ret::Done)));
        assert_eq!(decode_ret(&out[1]), Some(Some(Ret::Counter(2))));
        assert!(m.apply(2, CommitTs::single(12), &[&b"junk"[..]]).is_err());
        // A crash before a flush loses what was applied; after one, a restart finds it.
        let lost = KvMachine::restore(disk.clone(), images.clone());
        assert_eq!(lost.applied(), (0, 0));
        m.flush().unwrap();
        let restarted = KvMachine::restore(disk, images);
        assert_eq!(restarted.applied(), (1, 11));
        assert_eq!(restarted.model(), m.model());
        assert_eq!(restarted.model().get(b"k"), Some(&b"v"[..]));
    }

    #[test]
    #[should_panic(expected = "applied twice")]
    fn applying_an_entry_twice_panics() {
        let mut m = KvMachine::restore(Disk::default(), Images::default());
        m.apply(1, CommitTs::single(10), &[]).unwrap();
        let _ = m.apply(1, CommitTs::single(10), &[]);
    }

    #[test]
    fn installs_an_image_sent_by_token_durably() {
        let images = Images::default();
        let mut sender = KvMachine::restore(Disk::default(), images.clone());
        sender
            .apply(5, CommitTs::single(50), &[&encode_op(&Op::put("k", "v"))])
            .unwrap();
        let staged = images.send(sender.image());
        let disk = Disk::default();
        let mut receiver = KvMachine::restore(disk.clone(), images.clone());
        assert_eq!(
            receiver.install_snapshot(&mut staged.chunks()).unwrap(),
            (5, 50)
        );
        assert_eq!(receiver.model(), sender.model());
        assert_eq!(KvMachine::restore(disk, images).applied(), (5, 50));
        let unknown = 99u64.to_be_bytes().to_vec();
        assert!(receiver
            .install_snapshot(&mut std::iter::once(unknown))
            .is_err());
        assert!(receiver.install_snapshot(&mut std::iter::empty()).is_err());
        assert_eq!(receiver.applied(), (5, 50));
    }
}
