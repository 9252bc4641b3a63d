//! `lifecycle-bench`: how long a 96 MiB region takes to move to a new
//! store, and split latency with and without writes in flight.
//!
//! ```text
//! cargo build --release    # the `flotilla` binary the cluster runs
//! cargo run --release -p flotilla-benches --bin lifecycle-bench -- --help
//! ```
//!
//! See `flotilla_benches::lifecycle` for what each phase does.

use clap::Parser;
use flotilla_benches::lifecycle::{self, Params};

/// Region lifecycle benchmark: move time and split latency.
#[derive(Parser, Debug)]
#[command(name = "lifecycle-bench")]
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
    flotilla_benches::cli::run("lifecycle-bench", cli.json, lifecycle::run(&cli.params))
}
