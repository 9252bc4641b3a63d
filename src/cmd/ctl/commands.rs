//! Each `ctl` command as PD API calls, and how its answer is shown.

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use super::api::{path_segment, PdApi};
use super::{views, ConfigAction, CtlCommand, Output, SchedulerAction};

/// Runs one command against the leader's API.
pub async fn execute(api: &PdApi, command: CtlCommand) -> anyhow::Result<Output> {
    match command {
        CtlCommand::Members => show(api, "/members", views::members).await,
        CtlCommand::Stores => show(api, "/stores", views::stores).await,
        CtlCommand::Store { id } => show(api, &format!("/store/{id}"), views::store).await,
        CtlCommand::Regions { limit } => {
            let query = limit.map(|n| format!("?limit={n}")).unwrap_or_default();
            show(api, &format!("/regions{query}"), views::regions).await
        }
        CtlCommand::Region { id } => show(api, &format!("/region/id/{id}"), views::region).await,
        CtlCommand::RegionForKey { key } => {
            let path = format!("/region/key/{}", path_segment(&key));
            show(api, &path, views::region).await
        }
        CtlCommand::Operators => show(api, "/operators", views::operators).await,
        CtlCommand::AddOperator {
            name,
            region,
            store,
            keys,
        } => add_operator(api, &name, region, store, &keys).await,
        CtlCommand::Schedulers { action } => schedulers(api, action).await,
        CtlCommand::Config { action: None } => show(api, "/config", views::config).await,
        CtlCommand::Config {
            action: Some(ConfigAction::Set { key, value }),
        } => config_set(api, &key, &value).await,
        CtlCommand::Split { key } => split(api, &key).await,
        CtlCommand::TransferLeader { region, store } => {
            add_operator(api, "transfer-leader", region, Some(store), &[]).await
        }
    }
}

/// A `GET` shown through `view`.
async fn show(api: &PdApi, path: &str, view: fn(&Value) -> String) -> anyhow::Result<Output> {
    let json = api.get(path).await?;
    Ok(Output {
        text: view(&json),
        json,
    })
}

/// Asks PD for a manual operator (PD checks it against the region as it
/// is now and refuses one that cannot work, e.g. a store without a peer).
async fn add_operator(
    api: &PdApi,
    name: &str,
    region: u64,
    store: Option<u64>,
    keys: &[String],
) -> anyhow::Result<Output> {
    if store.is_none() && name != "split" {
        bail!("{name} needs --store: the store to act on");
    }
    let mut body = json!({ "name": name, "region_id": region, "keys": keys });
    if let Some(store) = store {
        body["store_id"] = json!(store);
    }
    let json = api.post("/operators", &body).await?;
    Ok(Output {
        text: views::operator_created(&json),
        json,
    })
}

/// Splits at `key` the region that holds it. The region is looked up
/// first because operators are per region.
async fn split(api: &PdApi, key: &str) -> anyhow::Result<Output> {
    let region = api
        .get(&format!("/region/key/{}", path_segment(key)))
        .await
        .with_context(|| format!("finding the region of key {key:?}"))?;
    let id = region["id"]
        .as_u64()
        .with_context(|| format!("PD's region for key {key:?} has no id: {region}"))?;
    // PD would refuse this too, but only as "keys must be strictly inside
    // the region"; a repeated split deserves a plainer answer.
    if region["start_key_hex"].as_str() == Some(hex(key.as_bytes()).as_str()) {
        bail!("key {key:?} already starts region {id}; nothing to split");
    }
    add_operator(api, "split", id, None, &[key.to_string()]).await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn schedulers(api: &PdApi, action: Option<SchedulerAction>) -> anyhow::Result<Output> {
    let (json, text) = match action {
        None => return show(api, "/schedulers", views::schedulers).await,
        Some(SchedulerAction::Add { name }) => {
            let json = api.post("/schedulers", &json!({ "name": name })).await?;
            (json, format!("added scheduler {name}"))
        }
        Some(SchedulerAction::Remove { name }) => {
            let json = api
                .delete(&format!("/schedulers/{}", path_segment(&name)))
                .await?;
            (json, format!("removed scheduler {name}"))
        }
    };
    Ok(Output { json, text })
}

async fn config_set(api: &PdApi, key: &str, value: &str) -> anyhow::Result<Output> {
    let body = json!({ key: config_value(value) });
    let json = api.post("/config", &body).await?;
    Ok(Output {
        text: views::config_set(&json, key),
        json,
    })
}

/// A config value from the command line: JSON when it parses as JSON
/// (numbers, bools, lists), else the text as a string, so durations like
/// `30m` need no quoting.
fn config_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_keep_their_type() {
        assert_eq!(config_value("5"), json!(5));
        assert_eq!(config_value("0.25"), json!(0.25));
        assert_eq!(config_value("true"), json!(true));
        assert_eq!(config_value("[\"zone\",\"host\"]"), json!(["zone", "host"]));
        assert_eq!(config_value("30m"), json!("30m"));
        assert_eq!(config_value("balance"), json!("balance"));
    }
}
