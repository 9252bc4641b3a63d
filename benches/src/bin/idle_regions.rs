//! `idle-regions`: the hibernation figures — what 10,000 idle regions cost
//! each store (CPU and memory, against the same cluster with hibernation
//! off), and how fast one store, then the whole cluster, serves again
//! after a restart.
//!
//! ```text
//! cargo build --release    # the `flotilla` binary the cluster runs
//! cargo run --release -p flotilla-benches --bin idle-regions -- --help
//! ```
//!
//! See `flotilla_benches::idle_regions` for what each phase does.

use flotilla_benches::idle_regions::{self, Params};

fn main() -> std::process::ExitCode {
    flotilla_benches::cli::main(
        "idle-regions",
        "Idle-region benchmark: CPU and memory of hibernating regions, restart time.",
        |params: Params| async move { idle_regions::run(&params).await },
    )
}
