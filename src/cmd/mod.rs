//! The binary's subcommands, one module each.

pub mod ctl;
pub mod kv;
pub mod playground;

/// A current-thread runtime for a one-shot tool command.
pub fn tool_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}
