//! Leader transfer from PD operators under load: every acknowledged write
//! survives, and a read never returns a value older than one already
//! acknowledged.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{wait_for, Cluster, LONG};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leadership_moves_under_load_without_losing_or_unordering_writes() {
    let cluster = Arc::new(Cluster::start(3).await);
    let region = cluster.first_region().await;
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // One writer bumps a counter; one reader checks it never goes back.
    let writer = {
        let (cluster, acked, stop) = (cluster.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                cluster.put(b"counter", &n.to_be_bytes()).await;
                cluster.put(format!("w{n:06}").as_bytes(), b"x").await;
                acked.store(n, Ordering::SeqCst);
            }
            n
        })
    };
    let reader = {
        let (cluster, acked, stop) = (cluster.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let floor = acked.load(Ordering::SeqCst);
                let seen = cluster
                    .get(b"counter")
                    .await
                    .map_or(0, |v| u64::from_be_bytes(v.try_into().expect("8 bytes")));
                assert!(seen >= floor, "read {seen} after {floor} was acknowledged");
                reads += 1;
            }
            reads
        })
    };
    // Move the lead around every store twice.
    for round in 0..6 {
        let target = cluster.store_id(round % 3);
        let at_target = || {
            cluster
                .leader_of(region)
                .is_some_and(|(i, _, _)| cluster.store_id(i) == target)
        };
        wait_for("PD to take the transfer", LONG, || async {
            // PD refuses while it has not heard of the leader yet, and a
            // transfer to where the lead already is.
            at_target() || {
                let (status, _) = cluster.pd_operator("transfer-leader", region, target).await;
                status.contains(" 200")
            }
        })
        .await;
        wait_for("the lead to arrive", LONG, || async { at_target() }).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    let reads = reader.await.unwrap();
    assert!(
        written > 10 && reads > 10,
        "{written} writes, {reads} reads"
    );
    for n in 1..written {
        let key = format!("w{n:06}");
        assert_eq!(
            cluster.get(key.as_bytes()).await,
            Some(b"x".to_vec()),
            "{key} lost"
        );
    }
    Arc::into_inner(cluster)
        .expect("tasks done")
        .shutdown()
        .await;
}
