//! `flotilla`: the one binary of the project — the daemons (`pd` and
//! `store`), and, with later issues, the tools (`playground`, `kv`, `ctl`).

use clap::{Parser, Subcommand};

mod pd;
mod store;

/// Flotilla: a sharded, replicated key-value store.
#[derive(Parser, Debug)]
#[command(name = "flotilla", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a placement driver (PD) member.
    Pd(flotilla_pd::cli::PdArgs),
    /// Run a store: regions' replicas and the raw KV service.
    Store(flotilla_store::cli::StoreArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pd(args) => pd::run(args),
        Command::Store(args) => store::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flotilla: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
