//! `flotilla-ycsb` as a user runs it: a real cluster (the playground, whose
//! processes are this very binary), the load phase, then workloads A, D, E
//! and F and a custom mix, each checked through the JSON report — the mix
//! it ran, no errors, the stores' metrics read; and `--embedded`, and bad
//! input refused with one clear line.

use std::process::{Command, Output};

use flotilla::playground::{Playground, PlaygroundConfig};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_flotilla-ycsb");
const RECORDS: u64 = 400;

fn ycsb(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("flotilla-ycsb runs")
}

/// Runs the tool with `--json --quiet` and returns its report.
fn report(args: &[&str]) -> Value {
    let mut all = vec!["--json", "--quiet"];
    all.extend_from_slice(args);
    let out = ycsb(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{all:?} failed:\n{stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"))
}

fn count(r: &Value, op: &str) -> u64 {
    r["operations"][op]["count"].as_u64().unwrap_or(0)
}

/// `op`'s share of the operations is `want`, give or take 8 points.
fn assert_share(r: &Value, op: &str, want: f64) {
    let total = r["ops"].as_u64().unwrap() as f64;
    let share = count(r, op) as f64 / total;
    assert!(
        (share - want).abs() < 0.08,
        "{op}: {share} of {total}, want {want}: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_run_their_mixes_against_a_real_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let config = PlaygroundConfig::new(BIN.into(), dir.path().to_path_buf(), 1, 3)
        .on_free_ports()
        .unwrap();
    let pd = config.pd_endpoints().join(",");
    let playground = Playground::start(config).await.expect("the cluster serves");
    let common = |extra: &[&str]| {
        let records = RECORDS.to_string();
        let mut args = vec!["--pd", &pd, "--records", &records, "--concurrency", "8"];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |extra: &[&str]| {
        let args = common(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        report(&args)
    };

    let load = run(&["--workload", "load"]);
    assert_eq!(load["errors"], 0, "{load}");
    assert_eq!(count(&load, "insert"), RECORDS, "{load}");
    assert!(load["stores"]["fsyncs"].as_f64().unwrap() > 0.0, "{load}");
    assert!(load["stores"]["cpu_secs"].as_f64().unwrap() > 0.0, "{load}");

    let a = run(&["--workload", "a", "--operations", "1500"]);
    assert_eq!(
        (a["ops"].as_u64(), a["errors"].as_u64()),
        (Some(1500), Some(0)),
        "{a}"
    );
    assert_share(&a, "read", 0.5);
    assert_share(&a, "update", 0.5);
    assert_eq!(a["distribution"], "zipfian");

    // Reads of the latest keys right behind the inserts: none missing.
    let d = run(&["--workload", "d", "--operations", "1500"]);
    assert_eq!(d["errors"], 0, "{d}");
    assert_share(&d, "read", 0.95);
    assert_share(&d, "insert", 0.05);

    let e = run(&[
        "--workload",
        "e",
        "--operations",
        "600",
        "--scan-length",
        "20",
    ]);
    assert_eq!(e["errors"], 0, "{e}");
    assert_share(&e, "scan", 0.95);

    let f = run(&["--workload", "f", "--operations", "1000"]);
    assert_eq!(f["errors"], 0, "{f}");
    assert_share(&f, "rmw", 0.5);

    let custom = run(&[
        "--mix",
        "read=0.2,update=0.8",
        "--distribution",
        "uniform",
        "--operations",
        "1000",
    ]);
    assert_eq!(custom["workload"], "custom");
    assert_eq!(custom["errors"], 0, "{custom}");
    assert_share(&custom, "update", 0.8);

    // Paced to 50 ops/s for 2 s: at most 100 operations, where 8 unpaced
    // clients do hundreds (a slow machine may do fewer than 100).
    let paced = run(&["--workload", "c", "--duration", "2", "--target", "50"]);
    let ops = paced["ops"].as_u64().unwrap();
    assert!((1..=110).contains(&ops), "{ops} ops at a 50 ops/s target");
    playground.stop();
}

#[test]
fn embedded_starts_its_own_cluster_and_loads_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = report(&[
        "--embedded",
        "--dir",
        dir.path().to_str().unwrap(),
        "--records",
        "300",
        "--workload",
        "c",
        "--operations",
        "500",
        "--concurrency",
        "4",
    ]);
    assert_eq!(
        (r["ops"].as_u64(), r["errors"].as_u64()),
        (Some(500), Some(0)),
        "{r}"
    );
    assert!(r["cluster"].as_str().unwrap().contains("embedded"), "{r}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "the embedded cluster's directory is removed"
    );
}

#[test]
fn bad_input_is_refused_with_one_clear_line() {
    let nowhere = format!("127.0.0.1:{}", flotilla::playground::free_port().unwrap());
    for (args, says) in [
        (vec!["--mix", "read=0.5"], "sum to 0.5"),
        (vec!["--mix", "write=1"], "unknown operation"),
        (vec!["--workload", "z"], "invalid value 'z'"),
        (
            vec!["--concurrency", "0"],
            "--concurrency must be at least 1",
        ),
        (vec!["--value-size", "0"], "--value-size must be"),
        (
            vec!["--pd", &nowhere, "--timeout", "1", "--operations", "1"],
            "connecting to PD",
        ),
    ] {
        let out = ycsb(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
