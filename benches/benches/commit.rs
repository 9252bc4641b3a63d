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
//! Without the `raft-rs` feature only the raftcore function runs.
//!
//! One iteration proposes one batch on the leader and drives the group until
//! the leader has committed and applied it; throughput is `BATCH` elements
//! per iteration. Groups are built and elected outside the measured loop.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

use bytes::Bytes;
use flotilla_benches::raftcore_group::RaftcoreGroup;
#[cfg(feature = "raft-rs")]
use flotilla_benches::raftrs_group::RaftRsGroup;
use flotilla_benches::workload::{payload, BATCH};

/// The criterion group every implementation's bench function joins.
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

/// Flotilla's raftcore over its `MemStorage`, driven like raft-rs above.
///
/// The payload is one shared `Bytes` buffer that every proposal clones (a
/// reference-count increment): raftcore's `propose` takes `Bytes`, so unlike
/// raft-rs it needs no per-proposal copy of the payload. That is a property
/// of raftcore's API, kept here as a host would keep it.
fn bench_raftcore(group: &mut Group<'_>) {
    let payload = Bytes::from(payload());
    let mut raft = RaftcoreGroup::new();
    raft.elect_leader();
    group.bench_function("raftcore", |b| {
        b.iter(|| raft.propose_and_commit(BATCH, std::hint::black_box(&payload)))
    });
}

fn commit_3node(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit_3node_1KiB_x64");
    group.throughput(Throughput::Elements(BATCH as u64));

    #[cfg(feature = "raft-rs")]
    bench_raftrs(&mut group);

    bench_raftcore(&mut group);

    group.finish();
}

criterion_group!(benches, commit_3node);
criterion_main!(benches);
