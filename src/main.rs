//! `flotilla`: the one binary of the project — the daemons (`pd`, `store`)
//! and the tools (`playground`, `kv`, `ctl`).

use clap::{Parser, Subcommand};

mod cmd;

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
    /// Run a local cluster on loopback (PD and stores as child processes)
    /// until Ctrl-C.
    Playground(cmd::playground::PlaygroundArgs),
    /// Read and write keys: get, put, delete, scan, cas.
    Kv(cmd::kv::KvArgs),
    /// Administer a cluster through PD: members, stores, regions,
    /// operators, schedulers, config.
    Ctl(cmd::ctl::CtlArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pd(args) => flotilla::daemon::run_pd(args),
        Command::Store(args) => flotilla::daemon::run_store(args),
        Command::Playground(args) => cmd::playground::run(args),
        Command::Kv(args) => cmd::kv::run(args),
        Command::Ctl(args) => cmd::ctl::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flotilla: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
