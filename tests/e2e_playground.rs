//! End to end through the playground code path: real `flotilla pd` and
//! `flotilla store` processes, the SDK and the `flotilla kv` CLI.
//!
//! - 1 PD + 3 stores with a small split size: ≥ 20 regions of data, every
//!   read API checked against a model across all region boundaries; a
//!   store killed with SIGKILL (reads and writes go on), restarted (it
//!   catches up: the cluster then needs it for every write).
//! - 3 PD members: the PD leader killed, the client keeps working.
//! - Bad input from the CLI: one clear line and a non-zero exit.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use flotilla::playground::{Playground, PlaygroundConfig};
use flotilla_client::{Config, KvPair, RawClient};

const BIN: &str = env!("CARGO_BIN_EXE_flotilla");

/// Small regions that split soon, so a few MiB make dozens of them.
const STORE_TOML: &str = r#"
[raft]
tick-interval = "50ms"
[split]
region-split-size = "64KiB"
split-check-interval = "300ms"
[heartbeat]
store-interval = "1s"
region-interval = "2s"
"#;

fn config(dir: &Path, pds: usize, stores: usize) -> PlaygroundConfig {
    let toml = dir.join("store.toml");
    std::fs::write(&toml, STORE_TOML).unwrap();
    let mut config = PlaygroundConfig::new(BIN.into(), dir.join("data"), pds, stores)
        .on_free_ports()
        .unwrap();
    config.store_args = vec!["--config".into(), toml.display().to_string()];
    config
}

fn key(i: usize) -> String {
    format!("user{i:06}")
}

/// A value of 600–1000 bytes that names its key and version.
fn value(i: usize, version: usize) -> Vec<u8> {
    let mut v = format!("{}:{version}:", key(i)).into_bytes();
    v.resize(600 + (i * 37) % 400, b'.');
    v
}

/// A small seeded generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn seed() -> u64 {
    let seed = std::env::var("E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("seed {seed} (rerun with E2E_SEED={seed})");
    seed | 1
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Puts until acknowledged. A put whose outcome is unknown (a store died
/// with it in flight) is not retried by the SDK; this test is the key's
/// only writer, so putting the same value again is safe here.
async fn put_again_if_unknown(client: &RawClient, key: String, value: Vec<u8>) {
    loop {
        match client.put(key.clone(), value.clone()).await {
            Ok(()) => return,
            Err(e) if e.is_undetermined() => continue,
            Err(e) => panic!("put {key}: {e}"),
        }
    }
}

fn pairs(model: &Model, range: std::ops::Range<usize>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (lo, hi) = (key(range.start).into_bytes(), key(range.end).into_bytes());
    model
        .range(lo..hi)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn plain(found: Vec<KvPair>) -> Vec<(Vec<u8>, Vec<u8>)> {
    found
        .into_iter()
        .map(|p| (p.key.to_vec(), p.value.to_vec()))
        .collect()
}

/// Every read API against the model: point and batch reads, and scans
/// both ways with limits over random windows.
async fn check_reads(client: &RawClient, model: &Model, n: usize, rng: &mut Rng) {
    for _ in 0..50 {
        let i = rng.below(n + 10);
        let got = client.get(key(i)).await.unwrap();
        assert_eq!(
            got.as_deref(),
            model.get(key(i).as_bytes()).map(|v| &v[..]),
            "get {}",
            key(i)
        );
    }
    let keys: Vec<String> = (0..n + 10).rev().map(key).collect();
    let values = client.batch_get(keys.clone()).await.unwrap();
    for (k, v) in keys.iter().zip(values) {
        assert_eq!(
            v.as_deref(),
            model.get(k.as_bytes()).map(|v| &v[..]),
            "batch_get {k}"
        );
    }
    let all: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(
        plain(client.scan(.., u32::MAX).await.unwrap()),
        all,
        "full scan"
    );
    for _ in 0..20 {
        let a = rng.below(n);
        let b = a + 1 + rng.below(n - a);
        let limit = 1 + rng.below(n);
        let expect = pairs(model, a..b);
        let got = client.scan(key(a)..key(b), limit as u32).await.unwrap();
        let want: Vec<_> = expect.iter().take(limit).cloned().collect();
        assert_eq!(plain(got), want, "scan {a}..{b} limit {limit}");
        let got = client
            .scan_reverse(key(a)..key(b), limit as u32)
            .await
            .unwrap();
        let want: Vec<_> = expect.iter().rev().take(limit).cloned().collect();
        assert_eq!(plain(got), want, "reverse scan {a}..{b} limit {limit}");
    }
}

async fn region_count(client: &RawClient) -> usize {
    client
        .pd()
        .scan_regions(&[], &[], 0)
        .await
        .map_or(0, |r| r.len())
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_playground_serves_many_regions_through_a_store_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut playground = Playground::start(config(dir.path(), 1, 3)).await.unwrap();
    let client = playground.client(Config::default()).await.unwrap();
    let mut rng = Rng(seed());
    let mut model = Model::new();
    let n = 4000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let batch: Vec<(String, Vec<u8>)> = chunk.iter().map(|&i| (key(i), value(i, 0))).collect();
        client.batch_put(batch.clone()).await.unwrap();
        model.extend(batch.into_iter().map(|(k, v)| (k.into_bytes(), v)));
    }
    wait_until("20 regions", Duration::from_secs(60), || async {
        region_count(&client).await >= 20
    })
    .await;
    println!("{} regions", region_count(&client).await);
    check_reads(&client, &model, n, &mut rng).await;

    // SIGKILL a store: after at most an election, reads and writes go on.
    let victim = 1;
    playground.store(victim).kill();
    let killed = Instant::now();
    for round in 1..=3 {
        for _ in 0..40 {
            let i = rng.below(n);
            put_again_if_unknown(&client, key(i), value(i, round)).await;
            model.insert(key(i).into_bytes(), value(i, round));
        }
    }
    println!("60 writes after the kill took {:?}", killed.elapsed());
    check_reads(&client, &model, n, &mut rng).await;

    // Restart it, then stop another store: every region now needs the
    // restarted one to commit, so writes everywhere prove it caught up.
    playground.store(victim).restart().unwrap();
    let restarted = Instant::now();
    let addr = playground.config().stores[victim].addr();
    wait_until(
        "a heartbeat from the restarted store",
        Duration::from_secs(30),
        || async {
            let stores = client.pd().get_all_stores(true).await.unwrap_or_default();
            stores.iter().any(|s| {
                s.store.as_ref().is_some_and(|m| m.address == addr)
                    && u128::from(s.ms_since_heartbeat) < restarted.elapsed().as_millis()
            })
        },
    )
    .await;
    playground.store(2).terminate();
    playground.store(2).wait_stopped(Duration::from_secs(20));
    let everywhere: Vec<(String, Vec<u8>)> =
        (0..n).step_by(50).map(|i| (key(i), value(i, 9))).collect();
    client.batch_put(everywhere.clone()).await.unwrap();
    model.extend(everywhere.into_iter().map(|(k, v)| (k.into_bytes(), v)));
    check_reads(&client, &model, n, &mut rng).await;
    playground.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_client_keeps_working_when_the_pd_leader_dies() {
    let dir = tempfile::tempdir().unwrap();
    let mut playground = Playground::start(config(dir.path(), 3, 3)).await.unwrap();
    let client = playground.client(Config::default()).await.unwrap();
    client.put("before", "1").await.unwrap();
    let members = client.pd().members().await.unwrap();
    let leader = members.leader.expect("a PD leader").name;
    let index: usize = leader.trim_start_matches("pd-").parse().unwrap();
    playground.pd(index).kill();
    // Writes need no PD; region lookups and a new client do.
    client.put("after", "2").await.unwrap();
    assert_eq!(
        client.get("before").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    let regions = client.pd().scan_regions(&[], &[], 0).await.unwrap();
    assert!(!regions.is_empty());
    let fresh = playground.client(Config::default()).await.unwrap();
    assert_eq!(
        fresh.get("after").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    assert_ne!(fresh.pd().leader_url(), None);
    playground.stop();
}

/// Runs `flotilla kv ...`; returns the exit code, stdout and stderr.
fn kv(pd: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["kv", "--pd", pd, "--timeout", "3s"])
        .args(args)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).trim().to_string();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_reads_writes_and_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let playground = Playground::start(config(dir.path(), 1, 1)).await.unwrap();
    let pd = playground.pd_endpoints().join(",");
    let pd = pd.as_str();
    assert_eq!(kv(pd, &["put", "greeting", "hello"]).0, 0);
    assert_eq!(kv(pd, &["get", "greeting"]).1, "hello");
    assert_eq!(kv(pd, &["--hex", "put", "00ff", "0102"]).0, 0);
    assert_eq!(kv(pd, &["--hex", "get", "00ff"]).1, "0102");
    let (code, out, _) = kv(pd, &["--json", "scan", "a", "z"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(r#""count":1"#) && out.contains("greeting"),
        "{out}"
    );
    assert_eq!(
        kv(pd, &["cas", "greeting", "hi", "--expect", "hello"]).1,
        "swapped (previous: hello)"
    );

    let one_line_failure = |args: &[&str], needle: &str| {
        let (code, out, err) = kv(pd, args);
        assert_ne!(code, 0, "{args:?} succeeded: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    one_line_failure(&["put", "", "v"], "empty key");
    one_line_failure(&["scan", "m", "a"], "inverted");
    one_line_failure(&["get", "missing"], "key not found");
    one_line_failure(&["--hex", "get", "zz"], "not hex");
    one_line_failure(&["scan", "--limit", "0"], "limit");
    let nowhere = format!("127.0.0.1:{}", common::free_port());
    let started = Instant::now();
    let (code, _, err) = kv(&nowhere, &["get", "k"]);
    assert_ne!(code, 0);
    assert!(err.contains("connecting to PD"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    playground.stop();
}
