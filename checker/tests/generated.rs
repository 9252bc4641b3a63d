//! Generated histories: concurrent clients of a simulated register, each
//! operation taking effect at a random instant inside its interval, are
//! linearizable by construction and must be found so; the same histories
//! with a planted anomaly must be found illegal, with the anomaly in the
//! failing window. Each case is seeded; a failure prints its seed.

use std::collections::BTreeMap;

use flotilla_checker::generate::{linearizable_history, plant_stale_read, Op, Rng};
use flotilla_checker::model::{RegisterOp, RegisterOut, RegisterState};
use flotilla_checker::{check_keys, search, Budget, Model, Options, RegisterModel, Verdict};

#[test]
fn simulated_histories_are_linearizable() {
    for seed in 0..300 {
        let mut rng = Rng(seed);
        let (clients, per_client) = (2 + rng.below(6), 20 + rng.below(60) as usize);
        let ops = linearizable_history(&mut rng, clients, per_client);
        let m = RegisterModel::new();
        let s = search(&m, &ops, m.init(), &Budget::unlimited());
        assert_eq!(s.verdict, Verdict::Linearizable, "seed {seed}: {ops:#?}");
    }
}

#[test]
fn planted_stale_reads_are_caught_and_shown_in_the_window() {
    let mut planted = 0;
    for seed in 0..300 {
        let mut rng = Rng(seed);
        let (clients, per_client) = (2 + rng.below(6), 20 + rng.below(60) as usize);
        let mut ops = linearizable_history(&mut rng, clients, per_client);
        let Some(stale) = plant_stale_read(&mut ops) else {
            continue;
        };
        planted += 1;
        let report = check_keys(
            &RegisterModel::new(),
            BTreeMap::from([(seed, ops)]),
            &Options::default(),
        );
        assert_eq!(
            report.verdict(),
            Verdict::Illegal,
            "seed {seed}: stale read #{stale} missed"
        );
        let window = &report.keys[&seed].window;
        assert!(
            window.iter().any(|(i, _)| *i == stale),
            "seed {seed}: window {window:?}"
        );
        let window_ops: Vec<Op> = window.iter().map(|(_, o)| o.clone()).collect();
        let again = search(
            &RegisterModel::new(),
            &window_ops,
            RegisterState::Any,
            &Budget::unlimited(),
        );
        assert_eq!(
            again.verdict,
            Verdict::Illegal,
            "seed {seed}: the window alone must fail"
        );
    }
    assert!(
        planted >= 250,
        "only {planted} histories had room for a stale read"
    );
}

#[test]
fn a_phantom_read_is_caught() {
    for seed in 0..50 {
        let mut rng = Rng(seed);
        let mut ops = linearizable_history(&mut rng, 4, 30);
        let get = ops
            .iter()
            .position(|o| o.input == RegisterOp::Get && o.output.is_some())
            .unwrap();
        ops[get].output = Some(RegisterOut::Read(Some(u64::MAX)));
        let m = RegisterModel::new();
        assert_eq!(
            search(&m, &ops, m.init(), &Budget::unlimited()).verdict,
            Verdict::Illegal,
            "seed {seed}"
        );
    }
}

#[test]
fn only_the_key_with_the_anomaly_is_reported() {
    let mut rng = Rng(7);
    let mut keys: BTreeMap<u64, Vec<Op>> = (0..20)
        .map(|k| (k, linearizable_history(&mut rng, 5, 40)))
        .collect();
    plant_stale_read(keys.get_mut(&13).unwrap()).expect("room for a stale read");
    let report = check_keys(&RegisterModel::new(), keys, &Options::default());
    assert_eq!(report.keys_with(Verdict::Illegal), vec![&13]);
    assert_eq!(report.ops_checked(), 20 * 5 * 40);
    assert!(report
        .describe_failures()
        .starts_with("key 13: not linearizable"));
}
