//! Scripted interaction tests, in the style of etcd raft's `testdata/*.txt`.
//!
//! Each file in `raftcore/testdata/` is a sequence of commands, each
//! followed by the canonical transcript of what the cluster did: every
//! `Ready` handled, every message delivered. A test fails when the
//! transcript changes; `RAFTCORE_REWRITE=1 cargo test -p raftcore --test
//! scripted` rewrites the files with the actual output instead, to be
//! reviewed as a git diff. The commands are documented in
//! `scripted/commands.rs`; the harness never hides a step of the Ready
//! protocol, so a transcript shows exactly what a host would do.

#[path = "scripted/args.rs"]
mod args;
#[path = "scripted/commands.rs"]
mod commands;
#[path = "scripted/datadriven.rs"]
mod datadriven;
#[path = "scripted/env.rs"]
mod env;
#[path = "scripted/ready.rs"]
mod ready;

use std::path::PathBuf;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Runs one script; on mismatch panics with a diff per differing block,
/// or rewrites the file if `RAFTCORE_REWRITE` is set.
fn run_script(name: &str) {
    let path = testdata().join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let script = datadriven::parse(&path, &text);
    let mut env = env::Env::default();
    let mut outputs = Vec::new();
    let mut failures = Vec::new();
    for block in &script.blocks {
        let at = format!("{}:{}", path.display(), block.line);
        let output = args::Cmd::parse(&block.command)
            .and_then(|cmd| commands::run(&mut env, cmd))
            .unwrap_or_else(|e| panic!("{at}: script error: {e}"));
        let output = if output.is_empty() {
            "ok".to_string()
        } else {
            output
        };
        assert!(
            !output.lines().any(|l| l.trim().is_empty()),
            "{at}: output has a blank line"
        );
        if output != block.expected {
            failures.push(format!(
                "{at}: `{}`: output differs (- expected, + actual):\n{}",
                block.command,
                datadriven::diff(&block.expected, &output)
            ));
        }
        outputs.push(output);
    }
    if std::env::var_os("RAFTCORE_REWRITE").is_some() {
        std::fs::write(&path, datadriven::render(&script, &outputs))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    if !failures.is_empty() {
        panic!(
            "{} block(s) differ; rerun with RAFTCORE_REWRITE=1 to accept:\n\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_script(stringify!($name));
            }
        )*
        const SCRIPTS: &[&str] = &[$(stringify!($name)),*];
    };
}

scripts!(
    election,
    prevote,
    checkquorum,
    prevote_checkquorum,
    replication,
    batching,
    uncommitted_limit,
    max_msg_size,
    snapshot,
    confchange_simple,
    confchange_joint_auto,
    confchange_joint_explicit,
    learners,
    confchange_remove_leader_joint,
    leader_transfer,
    read_index,
    lease_read,
    hibernation,
    async_apply,
    errors,
    crash_restart,
);

/// A script nobody runs asserts nothing: every file must be listed above.
#[test]
fn every_script_is_listed() {
    let mut unlisted = Vec::new();
    for entry in std::fs::read_dir(testdata()).expect("testdata") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "txt") {
            let stem = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .to_string();
            if !SCRIPTS.contains(&stem.as_str()) {
                unlisted.push(stem);
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "scripts not listed in scripted.rs: {unlisted:?}"
    );
}
