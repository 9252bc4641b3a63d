//! The checker is validated before it is trusted: every history of the
//! corpus (Porcupine's test data, from Jepsen runs against etcd) must get
//! its known verdict.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flotilla_checker::corpus::{parse_jepsen_etcd, parse_kv};
use flotilla_checker::{check_keys, Options, RegisterModel, StringModel, Verdict};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/linearizability")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn expected(verdict: &str) -> Verdict {
    match verdict {
        "linearizable" => Verdict::Linearizable,
        "not-linearizable" => Verdict::Illegal,
        other => panic!("unknown verdict {other}"),
    }
}

#[test]
fn every_jepsen_etcd_history_gets_its_known_verdict() {
    let dir = corpus().join("jepsen-etcd");
    let verdicts = read(&dir.join("VERDICTS.tsv"));
    let opts = Options {
        per_key_budget: Duration::from_secs(60),
        ..Options::default()
    };
    let mut checked = 0;
    let mut illegal = 0;
    for line in verdicts.lines().filter(|l| !l.trim().is_empty()) {
        let (file, verdict) = line.split_once('\t').expect("file<TAB>verdict");
        let ops =
            parse_jepsen_etcd(&read(&dir.join(file))).unwrap_or_else(|e| panic!("{file}: {e}"));
        let started = Instant::now();
        let report = check_keys(
            &RegisterModel::new(),
            BTreeMap::from([("register", ops)]),
            &opts,
        );
        assert_eq!(
            report.verdict(),
            expected(verdict),
            "{file} ({:?})",
            started.elapsed()
        );
        if report.verdict() == Verdict::Illegal {
            let window = &report.keys["register"].window;
            assert!(
                !window.is_empty(),
                "{file}: an illegal history has a failing window"
            );
            illegal += 1;
        }
        checked += 1;
    }
    assert_eq!(
        (checked, illegal),
        (102, 79),
        "the corpus has 102 files, 79 illegal"
    );
}

#[test]
fn every_kv_history_gets_its_known_verdict_within_a_second() {
    let dir = corpus().join("kv");
    for clients in ["c01", "c10", "c50"] {
        for (suffix, verdict) in [("ok", Verdict::Linearizable), ("bad", Verdict::Illegal)] {
            let file = format!("{clients}-{suffix}.txt");
            let keys = parse_kv(&read(&dir.join(&file))).unwrap_or_else(|e| panic!("{file}: {e}"));
            let started = Instant::now();
            let opts = Options {
                stop_at_first_illegal: true,
                ..Options::default()
            };
            let report = check_keys(&StringModel, keys, &opts);
            let took = started.elapsed();
            assert_eq!(report.verdict(), verdict, "{file}");
            assert!(took < Duration::from_secs(1), "{file} took {took:?}");
        }
    }
}

#[test]
fn an_illegal_corpus_history_prints_a_small_window() {
    let dir = corpus().join("jepsen-etcd");
    let ops = parse_jepsen_etcd(&read(&dir.join("etcd_000.log"))).unwrap();
    let total = ops.len();
    let report = check_keys(
        &RegisterModel::new(),
        BTreeMap::from([("register", ops)]),
        &Options::default(),
    );
    let window = &report.keys["register"].window;
    assert!(
        window.len() < total / 2,
        "window of {} of {total} ops",
        window.len()
    );
    let text = report.describe_failures();
    assert!(
        text.contains("not linearizable") && text.contains("client"),
        "{text}"
    );
}
