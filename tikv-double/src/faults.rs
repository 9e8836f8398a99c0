//! Injectable faults: rules (per RPC or for all) that the handlers consult before they answer,
//! changeable at runtime, and a count of the calls each RPC received.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// An RPC the double serves (the ones tikv-client 0.4's transactional API sends).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rpc {
    // PD
    GetMembers,
    Tso,
    GetRegion,
    GetRegionById,
    GetStore,
    GetAllStores,
    UpdateGcSafePoint,
    // TiKV
    KvGet,
    KvBatchGet,
    KvScan,
    KvPrewrite,
    KvCommit,
    KvBatchRollback,
    KvCleanup,
    KvCheckTxnStatus,
    KvCheckSecondaryLocks,
    KvResolveLock,
    KvTxnHeartBeat,
    KvScanLock,
    KvPessimisticLock,
    KvPessimisticRollback,
}

impl Rpc {
    /// Whether PD (not TiKV) serves it.
    pub fn is_pd(self) -> bool {
        matches!(
            self,
            Rpc::GetMembers
                | Rpc::Tso
                | Rpc::GetRegion
                | Rpc::GetRegionById
                | Rpc::GetStore
                | Rpc::GetAllStores
                | Rpc::UpdateGcSafePoint
        )
    }
}

/// A region error TiKV puts in a response's `region_error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// `NotLeader` without a leader hint (an election is under way): the client reloads the region.
    NotLeader,
    /// `NotLeader` naming the (same) leader peer: the client updates its cache and retries at once.
    NotLeaderWithHint,
    /// `EpochNotMatch` without current regions: the client drops its cached region.
    EpochNotMatch,
    /// `ServerIsBusy`: tikv-client 0.4 gives up at once with `Error::RegionError`.
    ServerIsBusy,
    RegionNotFound,
}

/// What a rule does to a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer `Status::unavailable` (a Tso stream: refuse to open, or end with it).
    Unavailable,
    /// Wait this long, then answer normally (each Tso answer).
    Delay(Duration),
    /// Never answer while the rule stands (its `times` is ignored); clear it to release the calls.
    Hang,
    /// TiKV: answer this region error instead of doing the work.
    RegionError(RegionError),
    /// PD: answer a header carrying an error (what a PD follower or a not-bootstrapped PD says).
    PdError,
    /// PD: answer without `header` (tikv-client unwraps it).
    MissingHeader,
    /// PD `GetMembers`: answer without `leader` (and without `etcd_leader`).
    NoLeader,
    /// TiKV writes: apply the request, then drop the connection that carried it without replying
    /// (the client cannot know whether it applied). Other RPCs: drop before doing anything.
    DropAfterApply,
}

/// Which calls a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Pd,
    Tikv,
    Rpc(Rpc),
}

impl Scope {
    fn covers(self, rpc: Rpc) -> bool {
        match self {
            Scope::All => true,
            Scope::Pd => rpc.is_pd(),
            Scope::Tikv => !rpc.is_pd(),
            Scope::Rpc(r) => r == rpc,
        }
    }
}

impl From<Rpc> for Scope {
    fn from(rpc: Rpc) -> Self {
        Scope::Rpc(rpc)
    }
}

#[derive(Debug)]
struct Rule {
    scope: Scope,
    fault: Fault,
    /// Calls it still applies to; `None`: until cleared.
    remaining: Option<u32>,
}

#[derive(Debug, Default)]
struct State {
    /// Newest first.
    rules: Vec<Rule>,
    calls: BTreeMap<Rpc, u64>,
}

/// The fault table and call counters of one double.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The table stays consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Apply `fault` to every call in `scope` until cleared. Newer rules win over older ones.
    pub fn inject(&self, scope: impl Into<Scope>, fault: Fault) {
        self.add(scope.into(), fault, None);
    }

    /// Apply `fault` to the next `times` calls in `scope`.
    pub fn inject_times(&self, scope: impl Into<Scope>, fault: Fault, times: u32) {
        if times > 0 {
            self.add(scope.into(), fault, Some(times));
        }
    }

    fn add(&self, scope: Scope, fault: Fault, remaining: Option<u32>) {
        self.lock().rules.insert(
            0,
            Rule {
                scope,
                fault,
                remaining,
            },
        );
    }

    /// Remove the rules injected with exactly this scope.
    pub fn clear(&self, scope: impl Into<Scope>) {
        let scope = scope.into();
        self.lock().rules.retain(|r| r.scope != scope);
    }

    /// Remove every rule.
    pub fn clear_all(&self) {
        self.lock().rules.clear();
    }

    /// How many calls of `rpc` arrived (each Tso stream counts once, when opened).
    pub fn calls(&self, rpc: Rpc) -> u64 {
        self.lock().calls.get(&rpc).copied().unwrap_or(0)
    }

    /// Count a call and take the fault that applies to it, if any.
    pub(crate) fn on_call(&self, rpc: Rpc) -> Option<Fault> {
        let mut state = self.lock();
        *state.calls.entry(rpc).or_default() += 1;
        Self::take(&mut state, rpc)
    }

    /// The fault for one more answer of an open stream (not counted as a call).
    pub(crate) fn on_message(&self, rpc: Rpc) -> Option<Fault> {
        Self::take(&mut self.lock(), rpc)
    }

    fn take(state: &mut State, rpc: Rpc) -> Option<Fault> {
        let index = state.rules.iter().position(|r| r.scope.covers(rpc))?;
        let rule = &mut state.rules[index];
        let fault = rule.fault.clone();
        if fault != Fault::Hang {
            if let Some(n) = rule.remaining.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    state.rules.remove(index);
                }
            }
        }
        Some(fault)
    }

    /// Whether a `Hang` rule still covers `rpc`.
    pub(crate) fn hangs(&self, rpc: Rpc) -> bool {
        self.lock()
            .rules
            .iter()
            .any(|r| r.scope.covers(rpc) && r.fault == Fault::Hang)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_rule_wins_and_counted_rules_run_out() {
        let faults = Faults::default();
        faults.inject(Scope::Tikv, Fault::Unavailable);
        faults.inject_times(Rpc::KvCommit, Fault::DropAfterApply, 2);
        assert_eq!(faults.on_call(Rpc::KvCommit), Some(Fault::DropAfterApply));
        assert_eq!(faults.on_call(Rpc::KvCommit), Some(Fault::DropAfterApply));
        assert_eq!(faults.on_call(Rpc::KvCommit), Some(Fault::Unavailable));
        assert_eq!(
            faults.on_call(Rpc::GetMembers),
            None,
            "PD is out of the TiKV scope"
        );
        assert_eq!(faults.calls(Rpc::KvCommit), 3);
        faults.clear(Scope::Tikv);
        assert_eq!(faults.on_call(Rpc::KvGet), None);
    }

    #[test]
    fn a_hang_stands_until_cleared() {
        let faults = Faults::default();
        faults.inject_times(Rpc::KvGet, Fault::Hang, 1);
        assert_eq!(faults.on_call(Rpc::KvGet), Some(Fault::Hang));
        assert!(faults.hangs(Rpc::KvGet));
        faults.clear_all();
        assert!(!faults.hangs(Rpc::KvGet));
    }
}
