//! Commit throughput of a 3-node in-memory Raft group: proposals of 1 KiB
//! payload batched 64 at a time, messages delivered in memory, measured in
//! entries/second (see `flotilla_benches::workload`).
//!
//! Each Raft implementation is one function of the criterion group
//! `commit_3node_1KiB_x64`, so a single run reports them side by side:
//!
//! ```text
//! cargo bench -p flotilla-benches --features raft-rs --bench commit
//! ```
//!
//! One iteration proposes one batch on the leader and drives the group until
//! the leader has committed and applied it; throughput is `BATCH` elements
//! per iteration. Groups are built and elected outside the measured loop.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

#[cfg(feature = "raft-rs")]
use flotilla_benches::raftrs_group::RaftRsGroup;
#[cfg(feature = "raft-rs")]
use flotilla_benches::workload::payload;
use flotilla_benches::workload::BATCH;

/// The criterion group every implementation's bench function joins.
#[cfg_attr(not(feature = "raft-rs"), allow(dead_code))] // until raftcore's twin lands
type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Baseline: TiKV's raft-rs 0.7 over `MemStorage`.
#[cfg(feature = "raft-rs")]
fn bench_raftrs(group: &mut Group<'_>) {
    let payload = payload();
    let mut raft = RaftRsGroup::new();
    raft.elect_leader();
    group.bench_function("raft-rs", |b| {
        b.iter(|| raft.propose_and_commit(BATCH, std::hint::black_box(&payload)))
    });
}

// ---------------------------------------------------------------------------
// RAFTCORE GOES HERE: add `fn bench_raftcore(group: &mut Group<'_>)`, a twin
// of `bench_raftrs` (build a 3-node raftcore group, elect node 1 outside the
// measured loop, then `group.bench_function("raftcore", ...)` calling its
// `propose_and_commit(BATCH, &payload)`), and call it from `commit_3node`.
// ---------------------------------------------------------------------------

fn commit_3node(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit_3node_1KiB_x64");
    group.throughput(Throughput::Elements(BATCH as u64));

    #[cfg(feature = "raft-rs")]
    bench_raftrs(&mut group);

    // RAFTCORE GOES HERE: bench_raftcore(&mut group);

    group.finish();
}

criterion_group!(benches, commit_3node);
criterion_main!(benches);
