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

use clap::Parser;
use flotilla_benches::idle_regions::{self, Params};

/// Idle-region benchmark: CPU and memory of hibernating regions, restart
/// time.
#[derive(Parser, Debug)]
#[command(name = "idle-regions")]
struct Cli {
    #[command(flatten)]
    params: Params,
    /// Print the results as one JSON object on stdout (the summary then
    /// goes to stderr).
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    flotilla_benches::cli::run("idle-regions", cli.json, idle_regions::run(&cli.params))
}
