//! `flotilla store`: runs a store until SIGINT or SIGTERM.

use anyhow::Context as _;
use flotilla_store::cli::{default_toml, StoreArgs};
use flotilla_store::server::Store;

use super::pd::{crate_logging, wait_for_signal};

pub fn run(args: StoreArgs) -> anyhow::Result<()> {
    if args.print_default_config {
        print!("{}", default_toml());
        return Ok(());
    }
    let cfg = args.resolve().map_err(anyhow::Error::msg)?;
    crate_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("store")
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let store = Store::start(cfg).await?;
        tracing::info!(store_id = store.store_id(), addr = %store.addr(), "store serving");
        wait_for_signal().await?;
        tracing::info!("stopping");
        store.stop().await;
        Ok(())
    })
}
