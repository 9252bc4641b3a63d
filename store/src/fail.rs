//! Crash points for tests: `FLOTILLA_FAILPOINTS=name` (or `name=N`, the
//! N-th time it is reached) makes the process abort at that named point,
//! as a power cut would — used by the crash-safety tests to kill a store
//! between persisting the log and applying it, and between apply batches.
//! Unset (always, in production), a point costs one atomic load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

struct Armed {
    name: String,
    hit_at: u64,
    hits: AtomicU64,
}

fn armed() -> &'static Option<Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED.get_or_init(|| {
        let spec = std::env::var("FLOTILLA_FAILPOINTS").ok()?;
        let (name, n) = match spec.split_once('=') {
            Some((name, n)) => (name.to_string(), n.parse().ok()?),
            None => (spec, 1),
        };
        Some(Armed {
            name,
            hit_at: n,
            hits: AtomicU64::new(0),
        })
    })
}

/// Aborts the process if `name` is the armed point and this is the hit it
/// is armed for.
pub fn point(name: &str) {
    if let Some(a) = armed() {
        if a.name == name && a.hits.fetch_add(1, Ordering::Relaxed) + 1 == a.hit_at {
            eprintln!("failpoint {name}: aborting");
            std::process::abort();
        }
    }
}
