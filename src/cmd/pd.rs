//! `flotilla pd`: runs a PD member until SIGINT or SIGTERM.

use anyhow::Context as _;
use flotilla_pd::cli::PdArgs;
use flotilla_pd::server::PdServer;

pub fn run(args: PdArgs) -> anyhow::Result<()> {
    if args.print_default_config {
        print!("{}", flotilla_pd::config::PdConfig::default_toml());
        return Ok(());
    }
    let cfg = args.resolve().map_err(anyhow::Error::msg)?;
    crate_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("pd")
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let server = PdServer::start(cfg).await?;
        wait_for_signal().await?;
        tracing::info!("stopping");
        server.stop().await;
        Ok(())
    })
}

pub fn crate_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

pub async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
