//! `flotilla-ycsb`: YCSB's core workloads (A–F, load, custom mixes) against
//! a Flotilla cluster, with a live progress line and a final report per
//! operation.
//!
//! ```text
//! cargo run --release -p flotilla-benches --bin flotilla-ycsb -- --embedded --workload a
//! cargo run --release -p flotilla-benches --bin flotilla-ycsb -- --pd 127.0.0.1:2379 --workload load
//! ```
//!
//! With `--embedded` this binary also plays the cluster's processes: the
//! playground starts it again as `flotilla-ycsb pd ...` and
//! `flotilla-ycsb store ...`. See `flotilla_benches::ycsb`.

use flotilla_benches::ycsb::{self, Params};

fn main() -> std::process::ExitCode {
    // A playground's child: this binary is also the cluster's processes.
    if let Some(code) = flotilla::daemon::dispatch() {
        return code;
    }
    flotilla_benches::cli::main(
        "flotilla-ycsb",
        "A YCSB-style load tool for Flotilla.",
        |params: Params| async move { ycsb::run(&params).await },
    )
}
