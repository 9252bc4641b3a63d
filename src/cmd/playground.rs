//! `flotilla playground`: a working local cluster in one command.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use flotilla::playground::{Playground, PlaygroundConfig, MAX_PDS, MAX_STORES};

use flotilla::daemon::wait_for_signal;

/// Where and how big.
#[derive(Args, Debug)]
pub struct PlaygroundArgs {
    /// PD members (1 to 7; 3 for a fault-tolerant PD).
    #[arg(long = "pd", default_value_t = 1)]
    pds: usize,
    /// Stores (1 to 20). Regions get min(stores, 3) replicas.
    #[arg(long, default_value_t = 3)]
    stores: usize,
    /// Root of every process's data and log; a second run reuses it.
    #[arg(long, default_value = "flotilla-data")]
    data_dir: PathBuf,
    /// Size at which regions split (e.g. `1MiB` to see many regions soon;
    /// default: the store's, 96 MiB).
    #[arg(long)]
    region_split_size: Option<String>,
}

pub fn run(args: PlaygroundArgs) -> anyhow::Result<()> {
    if !(1..=MAX_PDS).contains(&args.pds) || !(1..=MAX_STORES).contains(&args.stores) {
        anyhow::bail!(
            "--pd takes 1 to {MAX_PDS} and --stores 1 to {MAX_STORES} (got {} and {})",
            args.pds,
            args.stores
        );
    }
    let bin = std::env::current_exe().context("finding the flotilla binary")?;
    let mut config = PlaygroundConfig::new(bin.clone(), args.data_dir, args.pds, args.stores);
    if let Some(size) = args.region_split_size {
        config.store_args = vec!["--region-split-size".into(), size];
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        eprintln!(
            "starting {} PD member(s) and {} store(s) in {} ...",
            config.pds.len(),
            config.stores.len(),
            config.data_dir.display()
        );
        let playground = tokio::select! {
            started = Playground::start(config) => started?,
            _ = wait_for_signal() => anyhow::bail!("interrupted while starting"),
        };
        let pd = playground.pd_endpoints().join(",");
        let bin = bin.display();
        println!("Flotilla is serving.\n{}", playground.describe());
        println!("Try:\n  {bin} kv --pd {pd} put hello world\n  {bin} kv --pd {pd} get hello\n  {bin} ctl --pd {pd} regions");
        println!("Ctrl-C stops everything.");
        wait_for_signal().await?;
        eprintln!("stopping...");
        tokio::task::spawn_blocking(move || playground.stop())
            .await
            .context("stopping")?;
        Ok(())
    })
}
