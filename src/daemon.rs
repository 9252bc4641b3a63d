//! The daemons, `pd` and `store`, as library calls: the `flotilla` binary
//! runs them as its subcommands, and any other binary that starts a
//! [`playground`](crate::playground) of its own children (the
//! `flotilla-ycsb` load tool) runs them through [`dispatch`].

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use flotilla_pd::cli::PdArgs;
use flotilla_pd::server::PdServer;
use flotilla_store::cli::{default_toml, StoreArgs};
use flotilla_store::server::Store;

/// Runs a PD member until SIGINT or SIGTERM.
pub fn run_pd(args: PdArgs) -> anyhow::Result<()> {
    if args.print_default_config {
        print!("{}", flotilla_pd::config::PdConfig::default_toml());
        return Ok(());
    }
    let cfg = args.resolve().map_err(anyhow::Error::msg)?;
    init_logging();
    daemon_runtime("pd")?.block_on(async move {
        let server = PdServer::start(cfg).await?;
        wait_for_signal().await?;
        tracing::info!("stopping");
        server.stop().await;
        Ok(())
    })
}

/// Runs a store until SIGINT or SIGTERM.
pub fn run_store(args: StoreArgs) -> anyhow::Result<()> {
    if args.print_default_config {
        print!("{}", default_toml());
        return Ok(());
    }
    let cfg = args.resolve().map_err(anyhow::Error::msg)?;
    init_logging();
    daemon_runtime("store")?.block_on(async move {
        let store = Store::start(cfg).await?;
        tracing::info!(store_id = store.store_id(), addr = %store.addr(), "store serving");
        wait_for_signal().await?;
        tracing::info!("stopping");
        store.stop().await;
        Ok(())
    })
}

/// The daemon a command line asks for.
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
enum Daemon {
    /// Run a placement driver (PD) member.
    Pd(PdArgs),
    /// Run a store.
    Store(StoreArgs),
}

/// When this process was started as `<binary> pd ...` or
/// `<binary> store ...` (a playground's child), runs that daemon and
/// returns its exit code; otherwise returns `None` and the binary goes on
/// with its own command line.
pub fn dispatch() -> Option<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let first = args.first()?.to_str()?.to_string();
    if first != "pd" && first != "store" {
        return None;
    }
    let daemon = Daemon::parse_from(args);
    let result = match daemon {
        Daemon::Pd(args) => run_pd(args),
        Daemon::Store(args) => run_store(args),
    };
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{first}: {e:#}");
            ExitCode::FAILURE
        }
    })
}

/// Logs to stderr at `$RUST_LOG` (default `info`), coloured on a terminal.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

fn daemon_runtime(name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(name)
        .build()
        .context("starting the runtime")
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM.
pub async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
