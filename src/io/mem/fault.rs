//! Fault plans for [`super::MemFs`]: fail the Nth operation of a kind, make a short write,
//! or run out of disk space after a byte budget.

/// The kinds of operations [`super::MemFs`] counts and can fail. Reads are never counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// [`crate::io::WritableFile::write_all`].
    Write,
    /// [`crate::io::WritableFile::sync`].
    Sync,
    /// [`crate::io::FileSystem::rename`].
    Rename,
    /// [`crate::io::FileSystem::sync_dir`].
    SyncDir,
    /// [`crate::io::FileSystem::create_new`].
    Create,
    /// [`crate::io::FileSystem::remove_file`] and [`crate::io::FileSystem::remove_dir`].
    Remove,
    /// [`crate::io::FileSystem::truncate`].
    Truncate,
    /// Any of the above: in a fault, matches the Nth counted operation whatever its kind;
    /// in [`super::MemFs::op_count`], the total.
    Any,
}

impl OpKind {
    /// Every kind, [`OpKind::Any`] last.
    pub const ALL: [OpKind; 8] = [
        OpKind::Write,
        OpKind::Sync,
        OpKind::Rename,
        OpKind::SyncDir,
        OpKind::Create,
        OpKind::Remove,
        OpKind::Truncate,
        OpKind::Any,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Debug)]
struct Fault {
    kind: OpKind,
    nth: u64,
    persistent: bool,
    /// For writes: bytes that land before the error.
    short: Option<usize>,
}

impl Fault {
    fn hits(&self, index: u64) -> bool {
        index == self.nth || (self.persistent && index > self.nth)
    }
}

/// Which operations a [`super::MemFs`] fails. Operation numbers are 0-based and counted
/// from the moment the plan is installed with [`super::MemFs::set_faults`], per kind
/// (or over all kinds for [`OpKind::Any`]); failed attempts count too.
///
/// ```
/// use geocrm::io::{FaultPlan, OpKind};
/// // Fail the third sync once, and every rename from the second on.
/// let plan = FaultPlan::new().fail_once(OpKind::Sync, 2).fail_from(OpKind::Rename, 1);
/// # let _ = plan;
/// ```
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    faults: Vec<Fault>,
    disk_budget: Option<u64>,
}

impl FaultPlan {
    /// A plan that fails nothing.
    #[must_use]
    pub fn new() -> Self {
        FaultPlan::default()
    }

    /// Fails operation number `nth` of `kind` (nothing happens; an error is returned).
    #[must_use]
    pub fn fail_once(mut self, kind: OpKind, nth: u64) -> Self {
        self.faults.push(Fault { kind, nth, persistent: false, short: None });
        self
    }

    /// Fails operation number `nth` of `kind` and every later one of that kind.
    #[must_use]
    pub fn fail_from(mut self, kind: OpKind, nth: u64) -> Self {
        self.faults.push(Fault { kind, nth, persistent: true, short: None });
        self
    }

    /// Makes write number `nth` a short write: the first `keep` bytes of the buffer (at most
    /// all of it) land in the file, then the write returns an error.
    #[must_use]
    pub fn short_write(mut self, nth: u64, keep: usize) -> Self {
        self.faults.push(Fault { kind: OpKind::Write, nth, persistent: false, short: Some(keep) });
        self
    }

    /// A full disk: once `bytes` bytes have been written, writes store only what fits and
    /// fail with [`std::io::ErrorKind::StorageFull`].
    #[must_use]
    pub fn disk_full_after(mut self, bytes: u64) -> Self {
        self.disk_budget = Some(bytes);
        self
    }
}

/// An injected failure decided for one operation.
#[derive(Debug)]
pub(super) struct Injected {
    /// The operation's 0-based number within its kind.
    pub(super) index: u64,
    /// For a short write, the bytes that land.
    pub(super) short: Option<usize>,
}

/// Operation counters and the installed plan.
#[derive(Debug, Default)]
pub(super) struct Faults {
    counts: [u64; 8],
    base: [u64; 8],
    plan: FaultPlan,
    budget: Option<u64>,
}

impl Faults {
    pub(super) fn install(&mut self, plan: FaultPlan) {
        self.base = self.counts;
        self.budget = plan.disk_budget;
        self.plan = plan;
    }

    pub(super) fn count(&self, kind: OpKind) -> u64 {
        self.counts.get(kind.index()).copied().unwrap_or(0)
    }

    /// Counts one operation of `kind` and says whether the plan fails it.
    pub(super) fn check(&mut self, kind: OpKind) -> Option<Injected> {
        let rel = |faults: &Faults, k: OpKind| {
            let i = k.index();
            faults.counts.get(i).copied().unwrap_or(0) - faults.base.get(i).copied().unwrap_or(0)
        };
        let (own, any) = (rel(self, kind), rel(self, OpKind::Any));
        let hit = self
            .plan
            .faults
            .iter()
            .find(|f| (f.kind == kind && f.hits(own)) || (f.kind == OpKind::Any && f.hits(any)));
        let verdict =
            hit.map(|f| Injected { index: if f.kind == OpKind::Any { any } else { own }, short: f.short });
        for k in [kind, OpKind::Any] {
            if let Some(c) = self.counts.get_mut(k.index()) {
                *c += 1;
            }
        }
        verdict
    }

    /// Takes up to `want` bytes from the disk budget; returns how many fit.
    pub(super) fn take_budget(&mut self, want: usize) -> usize {
        match &mut self.budget {
            None => want,
            Some(left) => {
                let granted = want.min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= granted as u64;
                granted
            }
        }
    }
}
