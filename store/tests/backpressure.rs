//! Bounded queues: when a region's mailbox is full the store answers
//! `ServerIsBusy` with a backoff instead of queueing without bound, and
//! every write still lands once retried.

mod common;

use std::time::{Duration, Instant};

use common::*;
use flotilla_proto::kvrpcpb::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_mailbox_answers_server_is_busy_and_retried_writes_land() {
    let cluster = Cluster::start_with(1, |cfg| cfg.raft.mailbox_capacity = 1).await;
    let first = cluster.first_region().await;
    let (i, ctx) = cluster.leader_context(first).await;
    let deadline = Instant::now() + LONG;
    let mut busy_seen = 0;
    let mut round = 0;
    while busy_seen == 0 {
        assert!(Instant::now() < deadline, "never saw ServerIsBusy");
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let addr = cluster.store(i).addr();
                tokio::spawn(async move {
                    let mut kv = flotilla_proto::kvrpcpb::kv_client::KvClient::connect(format!(
                        "http://{addr}"
                    ))
                    .await
                    .unwrap();
                    let key = format!("r{round}-t{t}");
                    let mut busy = 0;
                    loop {
                        let resp = kv
                            .raw_put(RawPutRequest {
                                context: Some(ctx),
                                key: key.clone().into(),
                                value: "v".into(),
                            })
                            .await
                            .unwrap()
                            .into_inner();
                        match resp.region_error {
                            None => return (key, busy),
                            Some(e) => {
                                let b = e.server_is_busy.expect("only ServerIsBusy expected");
                                assert!(b.backoff_ms > 0);
                                busy += 1;
                                tokio::time::sleep(Duration::from_millis(b.backoff_ms)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            let (key, busy) = t.await.unwrap();
            busy_seen += busy;
            assert_eq!(cluster.get(key.as_bytes()).await, Some(b"v".to_vec()));
        }
        round += 1;
    }
    let metrics = cluster.store(i).context().metrics.render();
    assert!(
        metrics.contains("flotilla_store_kv_requests_total{method=\"raw_put\",outcome=\"busy\"}"),
        "busy answers are counted"
    );
    cluster.shutdown().await;
}
