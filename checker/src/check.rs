//! Checking a history of many keys: each key is its own register, checked
//! on its own (linearizability is compositional), on a pool of threads,
//! each key within a time budget.

use std::collections::BTreeMap;
use std::fmt::{Debug, Write as _};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::history::Operation;
use crate::model::Model;
use crate::search::{search, Budget, Verdict};
use crate::window::failing_window;

/// One key's operations.
pub type History<M> = Vec<Operation<<M as Model>::Input, <M as Model>::Output>>;

/// How to check.
#[derive(Clone, Debug)]
pub struct Options {
    /// Time allowed per key; a key not decided in time is `Unknown`.
    pub per_key_budget: Duration,
    /// Threads (default: the machine's cores).
    pub threads: usize,
    /// Find the smallest failing window of each illegal key.
    pub windows: bool,
    /// Stop checking the other keys once one is illegal (as Porcupine
    /// does): the verdict is then known. Keys not decided are `skipped`.
    pub stop_at_first_illegal: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            per_key_budget: Duration::from_secs(60),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            windows: true,
            stop_at_first_illegal: false,
        }
    }
}

/// One key's result.
#[derive(Clone, Debug)]
pub struct KeyResult<I, O> {
    /// The verdict.
    pub verdict: Verdict,
    /// Operations checked.
    pub ops: usize,
    /// For an illegal key, its smallest failing window (index into the
    /// key's operations, and the operation as checked there).
    pub window: Vec<(usize, Operation<I, O>)>,
    /// Time spent.
    pub elapsed: Duration,
}

/// The result of a keyed check.
#[derive(Clone, Debug)]
pub struct Report<K, I, O> {
    /// Every decided key's result.
    pub keys: BTreeMap<K, KeyResult<I, O>>,
    /// Keys left undecided because another was illegal
    /// ([`Options::stop_at_first_illegal`]).
    pub skipped: Vec<K>,
}

impl<K: Ord + Debug, I: Debug, O: Debug> Report<K, I, O> {
    /// `Illegal` if any key is, else `Unknown` if any key is, else
    /// `Linearizable`.
    pub fn verdict(&self) -> Verdict {
        let any = |v: Verdict| self.keys.values().any(|r| r.verdict == v);
        if any(Verdict::Illegal) {
            Verdict::Illegal
        } else if any(Verdict::Unknown) {
            Verdict::Unknown
        } else {
            Verdict::Linearizable
        }
    }

    /// The keys with this verdict.
    pub fn keys_with(&self, verdict: Verdict) -> Vec<&K> {
        let keys = self.keys.iter();
        keys.filter(|(_, r)| r.verdict == verdict)
            .map(|(k, _)| k)
            .collect()
    }

    /// Operations checked, over all keys.
    pub fn ops_checked(&self) -> usize {
        self.keys.values().map(|r| r.ops).sum()
    }

    /// Every illegal key's window, for a person: one operation per line,
    /// times relative to the window's first call.
    pub fn describe_failures(&self) -> String {
        let mut out = String::new();
        for (key, r) in self
            .keys
            .iter()
            .filter(|(_, r)| r.verdict == Verdict::Illegal)
        {
            let _ = writeln!(
                out,
                "key {key:?}: not linearizable; smallest failing window ({} ops):",
                r.window.len()
            );
            out.push_str(&describe_window(&r.window));
        }
        out
    }
}

/// One operation per line: client, call and return times (relative to the
/// first call), input and output.
pub fn describe_window<I: Debug, O: Debug>(window: &[(usize, Operation<I, O>)]) -> String {
    let start = window.iter().map(|(_, o)| o.call).min().unwrap_or(0);
    let mut out = String::new();
    for (i, o) in window {
        let ret = match &o.output {
            Some(_) => format!("{}", o.ret - start),
            None => "?".to_string(),
        };
        let output = match &o.output {
            Some(x) => format!("{x:?}"),
            None => "unknown".to_string(),
        };
        let _ = writeln!(
            out,
            "  #{i:<6} client {:<5} [{} .. {ret}]  {:?} -> {output}",
            o.client,
            o.call - start,
            o.input
        );
    }
    out
}

/// Checks every key's history against `model`.
pub fn check_keys<M, K>(
    model: &M,
    histories: BTreeMap<K, History<M>>,
    opts: &Options,
) -> Report<K, M::Input, M::Output>
where
    M: Model + Sync,
    M::Input: Clone + Send + Sync,
    M::Output: Clone + Send + Sync,
    K: Ord + Send + Sync,
{
    let work: Vec<(K, History<M>)> = histories.into_iter().collect();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..opts.threads.clamp(1, work.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((_, ops)) = work.get(i) else { break };
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let cancel = opts.stop_at_first_illegal.then_some(&stop);
                let r = check_with(model, ops, opts, cancel);
                if r.verdict == Verdict::Illegal && opts.stop_at_first_illegal {
                    stop.store(true, Ordering::Relaxed);
                }
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(i, r);
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut report = Report {
        keys: BTreeMap::new(),
        skipped: Vec::new(),
    };
    for (i, (k, _)) in work.into_iter().enumerate() {
        match results.remove(&i) {
            // A key cut short by another's failure was not decided.
            Some(r) if !(r.verdict == Verdict::Unknown && stop.load(Ordering::Relaxed)) => {
                report.keys.insert(k, r);
            }
            _ => report.skipped.push(k),
        }
    }
    report
}

/// Checks one key's history.
pub fn check_one<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    opts: &Options,
) -> KeyResult<M::Input, M::Output>
where
    M::Input: Clone,
    M::Output: Clone,
{
    check_with(model, ops, opts, None)
}

fn check_with<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    opts: &Options,
    cancel: Option<&AtomicBool>,
) -> KeyResult<M::Input, M::Output>
where
    M::Input: Clone,
    M::Output: Clone,
{
    let started = Instant::now();
    let budget = Budget {
        deadline: Some(started + opts.per_key_budget),
        cancel,
    };
    let verdict = search(model, ops, model.init(), &budget).verdict;
    let window = if verdict == Verdict::Illegal && opts.windows {
        // The window gets a budget of its own: the verdict stands anyway.
        failing_window(model, ops, Some(Instant::now() + opts.per_key_budget))
    } else {
        Vec::new()
    };
    KeyResult {
        verdict,
        ops: ops.len(),
        window,
        elapsed: started.elapsed(),
    }
}
