//! What ticking 10,000 idle raftcore groups costs a host, awake and
//! hibernated (see `flotilla_benches::idle_groups` for the groups and for
//! exactly what one tick includes).
//!
//! ```text
//! cargo bench -p flotilla-benches --bench tick
//! ```
//!
//! One iteration is one tick of every replica of all 10,000 three-replica
//! groups (30,000 `RawNode`s), together with the Readies and message
//! deliveries that tick causes, until every group is quiet again. Throughput
//! is 10,000 elements per iteration, so criterion's time divided by 10,000
//! is the cost of one tick of one group (all three replicas, in nanoseconds
//! per group per tick); a third of it is the cost per replica.
//!
//! - `awake`: every leader heartbeats every 2 ticks, spread so that half the
//!   groups do on each tick; each tick therefore includes, for 5,000 groups,
//!   a heartbeat round trip (3 Readies, 4 messages stepped), and for all
//!   groups the 3 `tick` calls and the `has_ready` checks.
//! - `hibernated`: after `RawNode::hibernate` on every leader (and the
//!   followers' following it), a tick is 3 `tick` calls that return at once
//!   and 3 `has_ready` checks per group, with no Ready and no message.
//!
//! Groups are built, elected and (for `hibernated`) put to sleep outside
//! the measured loop; after it, the bench checks that no election happened
//! and that hibernated groups still hibernate.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use flotilla_benches::idle_groups::{IdleGroups, GROUPS};

fn tick_idle_groups(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick_10k_idle_groups");
    group.throughput(Throughput::Elements(GROUPS as u64));
    // An awake iteration takes milliseconds: fewer, longer samples.
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(10));

    let mut awake = IdleGroups::new(GROUPS);
    group.bench_function("awake", |b| b.iter(|| awake.tick()));
    assert!(awake.leadership_unchanged(), "an election happened");
    drop(awake);

    let mut hibernated = IdleGroups::new(GROUPS);
    hibernated.hibernate();
    group.bench_function("hibernated", |b| b.iter(|| hibernated.tick()));
    assert!(hibernated.all_hibernating(), "a group woke up");
    assert!(hibernated.leadership_unchanged(), "an election happened");

    group.finish();
}

criterion_group!(benches, tick_idle_groups);
criterion_main!(benches);
