//! `store-bench`: the store issue's closing figures. Starts one PD and three
//! stores (separate `flotilla` processes, or in this process with
//! `--in-process`), then measures raw put and get throughput at 1 KiB
//! values and 64 concurrent requests, the fsync batches behind the puts,
//! and the same puts against a plain local RocksDB as the reference.
//!
//! ```text
//! cargo build --release    # the `flotilla` binary the cluster runs
//! cargo run --release -p flotilla-benches --bin store-bench -- --help
//! ```
//!
//! See `flotilla_benches::store_bench` for what each phase does.

use std::time::Duration;

use clap::Parser;
use flotilla_benches::store_bench::{self, Params};

/// Store benchmark: write/read throughput of a 3-replica cluster and its
/// fsync batches.
#[derive(Parser, Debug)]
#[command(name = "store-bench")]
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
            eprintln!("store-bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // On Ctrl-C the benchmark's future is dropped, and with it the cluster:
    // its processes are killed and the temporary directory removed.
    let result = runtime.block_on(async {
        tokio::select! {
            r = store_bench::run(&cli.params) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    // Reference writer threads stop at their phase's end; do not wait for
    // them after an interrupt.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Some(Ok(report)) => {
            if cli.json {
                eprint!("{}", report.summary());
                println!("{}", report.json());
            } else {
                print!("{}", report.summary());
            }
            if report.process_problems.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Some(Err(e)) => {
            eprintln!("store-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
        None => {
            eprintln!("store-bench: interrupted");
            std::process::ExitCode::from(130)
        }
    }
}
