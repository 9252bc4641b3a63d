//! `pd-scale`: PD's scale benchmark (issue 3, "Scale"). Builds a cluster of
//! 100,000 regions on 10 fake stores in one PD member, then measures region
//! heartbeats processed per second and `GetRegion` latency through gRPC.
//!
//! ```text
//! cargo run --release -p flotilla-benches --bin pd-scale -- --help
//! ```
//!
//! See `flotilla_benches::pd_scale` for what each phase does.

use flotilla_benches::pd_scale::{self, Params};

fn main() -> std::process::ExitCode {
    flotilla_benches::cli::main(
        "pd-scale",
        "PD scale benchmark: region heartbeats/s and GetRegion latency.",
        |params: Params| async move { pd_scale::run(&params).await },
    )
}
