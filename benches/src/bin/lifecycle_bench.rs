//! `lifecycle-bench`: how long a 96 MiB region takes to move to a new
//! store, and split latency with and without writes in flight.
//!
//! ```text
//! cargo build --release    # the `flotilla` binary the cluster runs
//! cargo run --release -p flotilla-benches --bin lifecycle-bench -- --help
//! ```
//!
//! See `flotilla_benches::lifecycle` for what each phase does.

use flotilla_benches::lifecycle::{self, Params};

fn main() -> std::process::ExitCode {
    flotilla_benches::cli::main(
        "lifecycle-bench",
        "Region lifecycle benchmark: move time and split latency.",
        |params: Params| async move { lifecycle::run(&params).await },
    )
}
