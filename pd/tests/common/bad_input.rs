//! Shared checks of the bad-input tests: a split fixture, the state that
//! must not change, and a panic counter for server threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use flotilla_proto::metapb;
use flotilla_proto::pdpb::*;

use super::*;
/// Panics in server threads (tokio workers, the Raft loop): tokio would
/// otherwise swallow a panicking task. Panics of the test threads
/// themselves (failed assertions) are not counted, so one failing test
/// does not fail the others.
pub static PANICS: AtomicUsize = AtomicUsize::new(0);

pub fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            if name.starts_with("tokio-") || name == "pd-raft" || name.is_empty() {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

/// One member, stores 1..=3, bootstrapped and split into A `["", g)`,
/// B `[g, p)` and the first region `[p, "")`, all led from store 1.
pub async fn fixture() -> (TestCluster, LeaderClient, Vec<metapb::Region>) {
    count_panics();
    let c = TestCluster::start(1).await;
    let mut client = c.client().await;
    register_stores(&mut client, 1..=3).await;
    let first = client.bootstrap(1).await.region.unwrap();
    let base = client.alloc_id(8).await;
    let peers = |id: u64| (1..=3).map(|s| peer(id + s, s)).collect::<Vec<_>>();
    let pieces = vec![
        region(base, b"", b"g", 1, 3, peers(base)),
        region(base + 4, b"g", b"p", 1, 3, peers(base + 4)),
        region(first.id, b"p", b"", 1, 3, first.peers.clone()),
    ];
    assert_ok(&client.report_split(pieces.clone()).await);
    let hb = HeartbeatStream::open(&mut client, 1).await;
    hb.send(pieces.iter().map(|r| heartbeat(r, 1)).collect())
        .await;
    // Persisted (in batches, shortly after): what a restart must bring back.
    for p in &pieces {
        wait_persisted(&c, 0, p, Some(1)).await;
    }
    (c, client, pieces)
}

/// What must not change: every region (with leader) and every store record.
#[derive(Debug, PartialEq)]
pub struct State {
    regions: Vec<RegionInfo>,
    stores: Vec<metapb::Store>,
}

pub async fn state(client: &mut LeaderClient) -> State {
    State {
        regions: client.all_regions(100).await,
        stores: client
            .all_stores()
            .await
            .into_iter()
            .map(|s| s.store.unwrap())
            .collect(),
    }
}

/// Restarts the member and checks the state it comes back with.
pub async fn assert_state_survives_restart(
    c: &mut TestCluster,
    client: &mut LeaderClient,
    want: &State,
) {
    // Region changes are persisted in batches from what the leader holds
    // in memory; the caller checked that is unchanged, so no refused input
    // can be waiting to be written.
    c.stop(0).await;
    c.restart(0).await;
    c.wait_leader().await;
    assert_eq!(&state(client).await, want, "state changed across a restart");
}

#[track_caller]
pub fn assert_err<T: HasHeader>(resp: &T, want: ErrorType, what: &str) {
    let got = error_type(resp);
    let msg = error_message(resp);
    assert_eq!(got, want, "{what}: got {got:?} ({msg})");
    assert!(!msg.is_empty(), "{what}: {want:?} without a message");
}
