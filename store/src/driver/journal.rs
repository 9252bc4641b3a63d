//! The state journal, for fault tests: with `FLOTILLA_FAULT_INJECTION=1`
//! (never in production) the store appends one JSON line to
//! `<data-dir>/journal.jsonl` each time it starts, each time one of its
//! peers becomes leader, and each time a peer's region epoch changes.
//! The fault harness reads every store's journal after a run to check
//! that no two stores led one region in one term (split brain) and that
//! no region's epoch went backwards on a store while it ran (epoch
//! violation).
//!
//! Each line is one `write` to a file opened for appending, so a line
//! written before a SIGKILL is kept (the page cache outlives the process).
//! Off, the journal costs one branch per published region change.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;

use parking_lot::Mutex;

use super::context::RegionMeta;

/// One store's journal file, or nothing when journaling is off.
pub struct Journal {
    file: Option<Mutex<File>>,
    store_id: u64,
}

/// The journal's file name in the data directory.
pub const FILE_NAME: &str = "journal.jsonl";

impl Journal {
    /// Opens (appending) the journal in `data_dir` if fault injection is
    /// on, and notes that the store started.
    pub fn open(data_dir: &Path, store_id: u64) -> Journal {
        let enabled = std::env::var(crate::server::fault_http::ENABLE_VAR).as_deref() == Ok("1");
        let file = enabled
            .then(|| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(data_dir.join(FILE_NAME))
                    .map_err(|e| tracing::warn!("state journal off: {e}"))
                    .ok()
            })
            .flatten();
        let journal = Journal {
            file: file.map(Mutex::new),
            store_id,
        };
        journal.write(&serde_json::json!({ "event": "start", "store": store_id }));
        journal
    }

    /// Records what changed between a region's last published state and
    /// its new one: leadership won (in a term), or a new epoch.
    pub fn region_changed(&self, old: Option<&RegionMeta>, new: &RegionMeta) {
        if self.file.is_none() {
            return;
        }
        let region = new.region.id;
        let won = new.is_leader && old.is_none_or(|o| !o.is_leader || o.term != new.term);
        if won {
            self.write(&serde_json::json!({
                "event": "leader", "store": self.store_id, "region": region, "term": new.term,
            }));
        }
        let epoch = new.region.region_epoch.unwrap_or_default();
        let old_epoch = old.map(|o| o.region.region_epoch.unwrap_or_default());
        if old_epoch != Some(epoch) && !new.region.peers.is_empty() {
            self.write(&serde_json::json!({
                "event": "epoch", "store": self.store_id, "region": region,
                "version": epoch.version, "conf_ver": epoch.conf_ver,
            }));
        }
    }

    fn write(&self, line: &serde_json::Value) {
        if let Some(file) = &self.file {
            let mut text = line.to_string();
            text.push('\n');
            if let Err(e) = file.lock().write_all(text.as_bytes()) {
                tracing::warn!("writing the state journal: {e}");
            }
        }
    }
}
