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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("idle-regions: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // On Ctrl-C the future is dropped, and with it the cluster: its
    // processes are killed and the temporary directory removed.
    let result = runtime.block_on(async {
        tokio::select! {
            r = idle_regions::run(&cli.params) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match result {
        Some(Ok(report)) => {
            if cli.json {
                eprint!("{}", report.summary());
                println!("{}", report.json());
            } else {
                print!("{}", report.summary());
            }
            std::process::ExitCode::SUCCESS
        }
        Some(Err(e)) => {
            eprintln!("idle-regions: {e:#}");
            std::process::ExitCode::FAILURE
        }
        None => {
            eprintln!("idle-regions: interrupted");
            std::process::ExitCode::from(130)
        }
    }
}
