//! `flotilla`: the one binary of the project. Its subcommands (`pd`, `store`,
//! `playground`, `kv`, `ctl`) arrive with the issues that build them.

use clap::Parser;

/// Flotilla: a sharded, replicated key-value store.
#[derive(Parser, Debug)]
#[command(name = "flotilla", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!(
        "flotilla {}: no subcommands yet; the daemons and tools arrive with later issues (see README.md)",
        env!("CARGO_PKG_VERSION")
    );
}
