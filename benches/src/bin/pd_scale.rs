//! `pd-scale`: PD's scale benchmark (issue 3, "Scale"). Builds a cluster of
//! 100,000 regions on 10 fake stores in one PD member, then measures region
//! heartbeats processed per second and `GetRegion` latency through gRPC.
//!
//! ```text
//! cargo run --release -p flotilla-benches --bin pd-scale -- --help
//! ```
//!
//! See `flotilla_benches::pd_scale` for what each phase does.

use clap::Parser;
use flotilla_benches::pd_scale::{self, Params};

/// PD scale benchmark: region heartbeats/s and GetRegion latency.
#[derive(Parser, Debug)]
#[command(name = "pd-scale")]
struct Cli {
    #[command(flatten)]
    params: Params,
    /// Print the results as one JSON line on stdout (the summary then goes
    /// to stderr).
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pd-scale: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(pd_scale::run(&cli.params)) {
        Ok(report) => {
            if cli.json {
                eprint!("{}", report.summary());
                println!("{}", report.json());
            } else {
                print!("{}", report.summary());
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pd-scale: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
