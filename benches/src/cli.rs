//! What the benchmark binaries share: their command line (the bench's
//! parameters and `--json`), a runtime, Ctrl-C, and printing the report.

use std::future::Future;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

/// A benchmark's command line: its parameters, and `--json`.
#[derive(clap::Parser, Debug)]
struct Cli<P: clap::Args> {
    #[command(flatten)]
    params: P,
    /// Print the report as one JSON object on stdout (the summary then
    /// goes to stderr).
    #[arg(long)]
    json: bool,
}

/// A benchmark binary's whole `main`: parses its parameters `P` and
/// `--json` (as the program `name`, described by `about`), then [`run`]s
/// `bench` on them. Bad options print clap's message and exit 2.
pub fn main<P, R, F, Fut>(name: &'static str, about: &'static str, bench: F) -> ExitCode
where
    P: clap::Args,
    R: Summary,
    F: FnOnce(P) -> Fut,
    Fut: Future<Output = anyhow::Result<R>>,
{
    let matches = Cli::<P>::command().name(name).about(about).get_matches();
    let cli = Cli::<P>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    run(name, cli.json, bench(cli.params))
}

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
