//! `flotilla-jepsen`: one fault-testing run (see `flotilla_jepsen`). Exits
//! 0 when no anomaly was found, 1 when one was, 2 when the run itself
//! failed.
//!
//! This binary also plays the cluster's processes: the playground starts
//! it again as `flotilla-jepsen pd ...` and `flotilla-jepsen store ...`.

use std::process::ExitCode;

use clap::Parser as _;
use flotilla_jepsen::{run, Params};

fn main() -> ExitCode {
    if let Some(code) = flotilla::daemon::dispatch() {
        return code;
    }
    let params = Params::parse();
    // The cluster's stores (this binary's children, who inherit it) serve
    // the test-only fault routes the partition nemesis uses.
    std::env::set_var("FLOTILLA_FAULT_INJECTION", "1");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flotilla-jepsen: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(&params)) {
        Ok(summary) => {
            println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            if !params.json {
                eprintln!("{}", summary.line());
                if !summary.failures.is_empty() {
                    eprint!("{}", summary.failures);
                }
                if let Some(dir) = &summary.data_dir {
                    eprintln!("cluster data and logs kept in {dir}");
                }
            }
            if summary.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("flotilla-jepsen: {e:#}");
            ExitCode::from(2)
        }
    }
}
