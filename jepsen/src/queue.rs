//! The queue workload: the job queue of `client/examples/job_queue.rs`
//! under faults. Clients enqueue jobs (`queue/jobs/<job>`) and claim them:
//! a claim is a compare-and-swap of `queue/claims/<job>` from absent to a
//! token only that attempt writes. At the end every job still unclaimed is
//! claimed by a final drain.
//!
//! What must hold — every job claimed exactly once:
//! - every acknowledged enqueue is in the final table, and every claim
//!   acknowledged as won is the job's final claim (else a **lost
//!   acknowledged write**);
//! - no job has two claims acknowledged as won, and no job's final claim
//!   is a token that was never tried on it or whose CAS answered "not
//!   swapped" (else the claim register is **not linearizable**);
//! - the final tables hold no job that was never enqueued.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_checker::generate::Rng;
use flotilla_client::{Bytes, RawClient};
use flotilla_proto::limits::MAX_SCAN_LIMIT;

use crate::analysis::{self, Anomalies, Checked};
use crate::history::{Recorder, Tally};
use crate::register::{unique_value, write_error_is_certain, FINAL_READER};
use crate::workload::prefix_end;

const JOBS: &str = "queue/jobs/";
const CLAIMS: &str = "queue/claims/";
/// Jobs a worker looks at per pass.
const PAGE: u32 = 16;

/// How a claim ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// The CAS swapped: this attempt owns the job.
    Won,
    /// The CAS found a claim already there.
    Lost,
    /// The answer was lost.
    Unknown,
}

/// One enqueue: `acked` when the put was acknowledged.
#[derive(Clone, Debug)]
pub struct Enqueue {
    pub job: u64,
    pub acked: bool,
}

/// One claim attempt.
#[derive(Clone, Debug)]
pub struct Claim {
    pub job: u64,
    pub token: u64,
    pub outcome: Claimed,
}

/// The final tables, read after the faults were healed.
#[derive(Clone, Debug, Default)]
pub struct Final {
    /// Jobs in the jobs table.
    pub jobs: BTreeSet<u64>,
    /// Each claimed job's token.
    pub claims: BTreeMap<u64, u64>,
}

/// What was done to the queue.
pub struct Queue {
    /// Each operation's deadline (retries included).
    timeout: Duration,
    /// The last job number handed out: jobs are numbered in the order they
    /// are made, so workers find them in key order.
    last_job: AtomicU64,
    log: Mutex<(Vec<Enqueue>, Vec<Claim>, Option<Final>)>,
}

fn job_key(table: &str, job: u64) -> String {
    format!("{table}{job:020}")
}

/// The number after a table's prefix (`u64::MAX` if it does not parse, so
/// a key no one wrote stands out).
fn number(key: &[u8], table: &str) -> u64 {
    key.get(table.len()..)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

impl Queue {
    /// An empty queue.
    pub fn new(timeout: Duration) -> Queue {
        Queue {
            timeout,
            last_job: AtomicU64::new(0),
            log: Mutex::default(),
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, (Vec<Enqueue>, Vec<Claim>, Option<Final>)> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One client: enqueues a job one pass in four, and works on the others:
/// reads a page of jobs after its cursor and the page's claims, and tries
/// to claim the first free one.
pub async fn client(
    id: u64,
    seed: u64,
    kv: RawClient,
    queue: Arc<Queue>,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) {
    let kv = kv.with_timeout(queue.timeout);
    let mut rng = Rng(seed ^ id.wrapping_mul(0x9e37_79b9));
    let mut seq = 0;
    let mut cursor = 0;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        if rng.below(4) == 0 {
            let job = queue.last_job.fetch_add(1, Ordering::Relaxed) + 1;
            let tally = match kv.put(job_key(JOBS, job), "job").await {
                Ok(()) => Tally::Ok,
                Err(e) if write_error_is_certain(&e) => Tally::Failed,
                Err(_) => Tally::Unknown,
            };
            recorder.tally(id, tally);
            if tally != Tally::Failed {
                queue.log().0.push(Enqueue {
                    job,
                    acked: tally == Tally::Ok,
                });
            }
            continue;
        }
        match free_job(&kv, cursor).await {
            Ok((Some(job), _)) => {
                let token = unique_value(id, seq);
                let outcome = claim(&kv, job, token).await;
                recorder.tally(
                    id,
                    match outcome {
                        Claimed::Unknown => Tally::Unknown,
                        _ => Tally::Ok,
                    },
                );
                queue.log().1.push(Claim {
                    job,
                    token,
                    outcome,
                });
                cursor = job;
            }
            // A page of claimed jobs: move past it.
            Ok((None, Some(last))) => cursor = last,
            Ok((None, None)) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(()) => recorder.tally(id, Tally::Failed),
        }
    }
}

/// The first job after `cursor` without a claim, if any, and the last job
/// of the page read.
async fn free_job(kv: &RawClient, cursor: u64) -> Result<(Option<u64>, Option<u64>), ()> {
    let from = job_key(JOBS, cursor.saturating_add(1));
    let jobs = kv
        .scan_keys(from..prefix_end(JOBS), PAGE)
        .await
        .map_err(|_| ())?;
    let jobs: Vec<u64> = jobs.iter().map(|k| number(k, JOBS)).collect();
    let claim_keys: Vec<String> = jobs.iter().map(|j| job_key(CLAIMS, *j)).collect();
    let claims = kv.batch_get(claim_keys).await.map_err(|_| ())?;
    let free = jobs
        .iter()
        .zip(&claims)
        .find(|(_, claim)| claim.is_none())
        .map(|(job, _)| *job);
    Ok((free, jobs.last().copied()))
}

/// Tries to claim `job` with `token`.
async fn claim(kv: &RawClient, job: u64, token: u64) -> Claimed {
    match kv
        .compare_and_swap(job_key(CLAIMS, job), None::<Bytes>, token.to_string())
        .await
    {
        Ok((_, true)) => Claimed::Won,
        Ok((_, false)) => Claimed::Lost,
        Err(_) => Claimed::Unknown,
    }
}

/// Reads a whole table, page by page: each key's number and value.
async fn read_table(kv: &RawClient, table: &str) -> Option<BTreeMap<u64, u64>> {
    let mut rows = BTreeMap::new();
    let mut from = table.to_string().into_bytes();
    loop {
        let page = kv
            .scan(from.clone()..prefix_end(table).into_bytes(), MAX_SCAN_LIMIT)
            .await
            .ok()?;
        for p in &page {
            let value = std::str::from_utf8(&p.value)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX);
            rows.insert(number(&p.key, table), value);
        }
        match page.last() {
            Some(last) if page.len() == MAX_SCAN_LIMIT as usize => {
                from = flotilla_client::key_after(&last.key).to_vec();
            }
            _ => return Some(rows),
        }
    }
}

/// After the faults are healed: claims every job still free (as the final
/// reader), then reads both tables. Retried until `deadline`; returns what
/// could not be done.
pub async fn final_drain(
    kv: &RawClient,
    queue: &Queue,
    deadline: tokio::time::Instant,
) -> Vec<String> {
    let mut seq = 0;
    loop {
        match drain_once(kv, queue, &mut seq).await {
            Ok(done) => {
                queue.log().2 = Some(done);
                return Vec::new();
            }
            Err(what) if tokio::time::Instant::now() >= deadline => return vec![what],
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn drain_once(kv: &RawClient, queue: &Queue, seq: &mut u64) -> Result<Final, String> {
    let jobs = read_table(kv, JOBS).await.ok_or("the jobs table")?;
    let claims = read_table(kv, CLAIMS).await.ok_or("the claims table")?;
    for job in jobs.keys().filter(|j| !claims.contains_key(j)) {
        *seq += 1;
        let token = unique_value(FINAL_READER, *seq);
        let outcome = claim(kv, *job, token).await;
        queue.log().1.push(Claim {
            job: *job,
            token,
            outcome,
        });
        if outcome == Claimed::Unknown {
            return Err(format!("claiming job {job}"));
        }
    }
    let claims = read_table(kv, CLAIMS).await.ok_or("the claims table")?;
    Ok(Final {
        jobs: jobs.into_keys().collect(),
        claims,
    })
}

/// Checks the queue; returns the account, the anomalies and a description
/// of each.
pub fn analyse(queue: &Queue) -> (Checked, Anomalies, String) {
    let started = std::time::Instant::now();
    let (enqueues, claims, last) = {
        let log = queue.log();
        (log.0.clone(), log.1.clone(), log.2.clone())
    };
    let found = check(&enqueues, &claims, &last.unwrap_or_default());
    let ops = enqueues.len() + claims.len();
    let (checked, anomalies) = analysis::account(found.jobs, ops, found.lost, found.wrong, started);
    (checked, anomalies, found.failures)
}

/// What the queue check found.
#[derive(Debug, Default)]
pub struct QueueFindings {
    /// Jobs in the final table.
    pub jobs: usize,
    /// Jobs whose acknowledged enqueue or won claim the final tables lost.
    pub lost: u64,
    /// Jobs with any other anomaly: claimed twice, held by a claim that
    /// did not win, never enqueued, never claimed.
    pub wrong: u64,
    /// One line per anomaly.
    pub failures: String,
}

/// The check itself (see the module's doc).
pub fn check(enqueues: &[Enqueue], claims: &[Claim], last: &Final) -> QueueFindings {
    let mut found = QueueFindings {
        jobs: last.jobs.len(),
        ..QueueFindings::default()
    };
    let mut wrong = BTreeSet::new();
    let mut lost = BTreeSet::new();
    let mut failures = String::new();
    let mut fail = |job: u64, loss: bool, what: String| {
        if loss { &mut lost } else { &mut wrong }.insert(job);
        let _ = writeln!(failures, "job {job}: {what}");
    };
    let enqueued: BTreeSet<u64> = enqueues.iter().map(|e| e.job).collect();
    for e in enqueues.iter().filter(|e| e.acked) {
        if !last.jobs.contains(&e.job) {
            fail(
                e.job,
                true,
                "its acknowledged enqueue is not in the table".into(),
            );
        }
    }
    for job in last.jobs.iter().filter(|j| !enqueued.contains(j)) {
        fail(*job, false, "in the table but never enqueued".into());
    }
    let mut tries: BTreeMap<u64, Vec<&Claim>> = BTreeMap::new();
    for c in claims {
        tries.entry(c.job).or_default().push(c);
    }
    for (job, tries) in &tries {
        let won: Vec<u64> = tries
            .iter()
            .filter(|c| c.outcome == Claimed::Won)
            .map(|c| c.token)
            .collect();
        if won.len() > 1 {
            fail(*job, false, format!("claimed twice, by tokens {won:?}"));
        }
        let holder = last.claims.get(job);
        if let Some(w) = won.iter().find(|w| Some(*w) != holder) {
            let what = format!("its won claim {w} is not the final claim {holder:?}");
            fail(*job, true, what);
        }
    }
    for (job, holder) in &last.claims {
        let owner = tries
            .get(job)
            .and_then(|t| t.iter().find(|c| c.token == *holder));
        match owner {
            Some(c) if c.outcome != Claimed::Lost => {}
            Some(_) => fail(
                *job,
                false,
                format!("held by token {holder}, whose CAS did not swap"),
            ),
            None => fail(
                *job,
                false,
                format!("held by token {holder}, never tried on it"),
            ),
        }
    }
    for job in last.jobs.iter().filter(|j| !last.claims.contains_key(j)) {
        fail(*job, false, "never claimed".into());
    }
    found.lost = lost.len() as u64;
    found.wrong = wrong.len() as u64;
    found.failures = failures;
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(job: u64, token: u64, outcome: Claimed) -> Claim {
        Claim {
            job,
            token,
            outcome,
        }
    }

    fn enqueued(jobs: &[u64]) -> Vec<Enqueue> {
        jobs.iter()
            .map(|j| Enqueue {
                job: *j,
                acked: true,
            })
            .collect()
    }

    fn last(jobs: &[u64], claims: &[(u64, u64)]) -> Final {
        Final {
            jobs: jobs.iter().copied().collect(),
            claims: claims.iter().copied().collect(),
        }
    }

    #[test]
    fn every_job_claimed_once_passes() {
        let claims = [
            claim(1, 10, Claimed::Won),
            claim(1, 11, Claimed::Lost),
            claim(2, 20, Claimed::Unknown),
            claim(2, 21, Claimed::Lost),
        ];
        let found = check(
            &enqueued(&[1, 2]),
            &claims,
            &last(&[1, 2], &[(1, 10), (2, 20)]),
        );
        assert_eq!(
            (found.jobs, found.lost, found.wrong),
            (2, 0, 0),
            "{}",
            found.failures
        );
    }

    #[test]
    fn double_claims_lost_jobs_and_foreign_owners_are_caught() {
        let double = check(
            &enqueued(&[1]),
            &[claim(1, 10, Claimed::Won), claim(1, 11, Claimed::Won)],
            &last(&[1], &[(1, 11)]),
        );
        assert_eq!((double.lost, double.wrong), (1, 1));
        assert!(
            double.failures.contains("claimed twice"),
            "{}",
            double.failures
        );

        let lost_job = check(
            &enqueued(&[1, 2]),
            &[claim(1, 10, Claimed::Won)],
            &last(&[1], &[(1, 10)]),
        );
        assert_eq!((lost_job.lost, lost_job.wrong), (1, 0));

        let not_swapped = check(
            &enqueued(&[1]),
            &[claim(1, 10, Claimed::Lost)],
            &last(&[1], &[(1, 10)]),
        );
        assert_eq!((not_swapped.lost, not_swapped.wrong), (0, 1));
        assert!(not_swapped.failures.contains("did not swap"));

        let unclaimed = check(&enqueued(&[1]), &[], &last(&[1], &[]));
        assert!(unclaimed.failures.contains("never claimed"));

        let phantom = check(&[], &[], &last(&[5], &[(5, 1)]));
        assert!(phantom.failures.contains("never enqueued"));
        assert!(phantom.failures.contains("never tried"));
    }

    #[test]
    fn table_keys_round_trip() {
        assert_eq!(number(job_key(JOBS, 42).as_bytes(), JOBS), 42);
        assert_eq!(number(b"queue/jobs/x", JOBS), u64::MAX);
        assert!(prefix_end(JOBS).as_str() > job_key(JOBS, u64::MAX).as_str());
    }
}
