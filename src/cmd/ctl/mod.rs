//! `flotilla ctl`: administer a cluster through PD, like pd-ctl.
//!
//! `--pd` names PD's gRPC endpoints (as for `kv` and `store`); ctl asks
//! them for the leader and then talks JSON to the leader's HTTP API
//! (`/pd/api/v1`). Output is a table or `key: value` lines for people, or
//! PD's own JSON with `--json` (pretty) or `--compact` (one line) for
//! scripts. A failure prints one line and exits non-zero.
//!
//! The tree: `commands` maps each command to API calls, `api` finds the
//! leader and turns PD's errors into messages, `http` is the HTTP client,
//! `views` and `table` lay the answers out as text.

mod api;
mod commands;
mod http;
mod table;
mod views;

use std::time::Duration;

use clap::{Args, Subcommand};

/// Options of every `ctl` command.
#[derive(Args, Debug)]
pub struct CtlArgs {
    /// PD endpoints, comma-separated (`host:port`).
    #[arg(long, default_value = "127.0.0.1:2379", global = true)]
    pd: String,
    /// Print PD's JSON answer, indented, instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Print PD's JSON answer on one line (implies --json).
    #[arg(long, global = true)]
    compact: bool,
    /// Deadline for finding PD's leader, and for each request to it
    /// (`500ms`, `10s`).
    #[arg(long, default_value = "10s", global = true, value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Subcommand, Debug)]
enum CtlCommand {
    /// List the PD members and which one leads.
    Members,
    /// List the stores: address, state, region and leader counts, space.
    Stores,
    /// Show one store.
    Store { id: u64 },
    /// List the regions in key order: range, epoch, leader and peers.
    Regions {
        /// Show at most this many (the first ones in key order).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Show one region.
    Region { id: u64 },
    /// Show the region that holds KEY (UTF-8 text).
    RegionForKey { key: String },
    /// List the running operators and the recently ended ones.
    Operators,
    /// Ask PD to run an operator on a region.
    AddOperator {
        /// What to do.
        #[arg(value_parser = ["add-peer", "remove-peer", "transfer-leader", "split"])]
        name: String,
        /// The region to act on.
        #[arg(long)]
        region: u64,
        /// The store to add a peer to, remove it from, or move the leader to.
        #[arg(long)]
        store: Option<u64>,
        /// A split key (repeatable); without one the store splits in the
        /// middle.
        #[arg(long = "key")]
        keys: Vec<String>,
    },
    /// List the schedulers; add or remove one.
    Schedulers {
        #[command(subcommand)]
        action: Option<SchedulerAction>,
    },
    /// Show the scheduling config; `config set KEY VALUE` changes one key.
    Config {
        #[command(subcommand)]
        action: Option<ConfigAction>,
    },
    /// Split the region that holds KEY so that KEY starts a region.
    Split { key: String },
    /// Move a region's leader to a store that holds one of its voters.
    TransferLeader { region: u64, store: u64 },
}

#[derive(Subcommand, Debug)]
enum SchedulerAction {
    /// Start a scheduler (one of the known names).
    Add { name: String },
    /// Stop a scheduler.
    Remove { name: String },
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// Set one `[schedule]` key. VALUE is sent as JSON when it parses as
    /// JSON (`5`, `0.5`, `true`, `["zone","host"]`), else as a string
    /// (`30m`).
    Set {
        key: String,
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
}

/// What a command prints: PD's JSON for scripts, text for people.
struct Output {
    json: serde_json::Value,
    text: String,
}

pub fn run(args: CtlArgs) -> anyhow::Result<()> {
    super::tool_runtime()?.block_on(run_async(args))
}

async fn run_async(args: CtlArgs) -> anyhow::Result<()> {
    let api = api::PdApi::connect(&args.pd, args.timeout).await?;
    let out = commands::execute(&api, args.command).await?;
    let text = if args.compact {
        out.json.to_string()
    } else if args.json {
        serde_json::to_string_pretty(&out.json)?
    } else {
        out.text
    };
    if !text.is_empty() {
        println!("{text}");
    }
    Ok(())
}
