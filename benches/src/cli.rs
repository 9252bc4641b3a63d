//! What the benchmark binaries share: a runtime, Ctrl-C, and printing the
//! report.

use std::future::Future;
use std::process::ExitCode;

/// A benchmark's figures, for people and for scripts.
pub trait Summary {
    /// The human summary.
    fn summary(&self) -> String;
    /// One JSON object.
    fn json(&self) -> String;
}

/// Runs `bench` on a multi-threaded runtime. Ctrl-C drops its future (and
/// with it any cluster it started: processes killed, temporary directory
/// removed). Prints the summary on stdout — or with `json`, the JSON object
/// on stdout and the summary on stderr.
pub fn run<R, F>(name: &str, json: bool, bench: F) -> ExitCode
where
    R: Summary,
    F: Future<Output = anyhow::Result<R>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = bench => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match result {
        Some(Ok(report)) => {
            if json {
                eprint!("{}", report.summary());
                println!("{}", report.json());
            } else {
                print!("{}", report.summary());
            }
            ExitCode::SUCCESS
        }
        Some(Err(e)) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
        None => {
            eprintln!("{name}: interrupted");
            ExitCode::from(130)
        }
    }
}
