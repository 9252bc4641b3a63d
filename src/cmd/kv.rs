//! `flotilla kv`: read and write keys from the command line.
//!
//! Keys and values are taken and printed as text; `--hex` makes both hex
//! (binary-safe). Output is for people, or one JSON document with
//! `--json`. A failed call prints one line and exits non-zero; a `get` of
//! a missing key exits 1.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use clap::{Args, Subcommand};
use flotilla_client::{Config, KvPair, RawClient};
use serde_json::{json, Value};

/// Options of every `kv` command.
#[derive(Args, Debug)]
pub struct KvArgs {
    /// PD endpoints, comma-separated (`host:port`).
    #[arg(long, default_value = "127.0.0.1:2379", global = true)]
    pd: String,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Keys and values are hex, in and out (binary-safe).
    #[arg(long, global = true)]
    hex: bool,
    /// Deadline of the call, retries included (`500ms`, `10s`).
    #[arg(long, default_value = "10s", global = true, value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[command(subcommand)]
    command: KvCommand,
}

#[derive(Subcommand, Debug)]
enum KvCommand {
    /// Print a key's value (exit 1 if it does not exist).
    Get { key: String },
    /// Set a key's value.
    Put { key: String, value: String },
    /// Delete a key.
    Delete { key: String },
    /// Print the pairs in [START, END) in key order (both optional:
    /// START defaults to the first key, END to no end).
    Scan {
        start: Option<String>,
        end: Option<String>,
        /// Most pairs to print.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Largest key first.
        #[arg(long)]
        reverse: bool,
        /// Keys only.
        #[arg(long)]
        keys_only: bool,
    },
    /// Set KEY to NEW if it holds the expected value (--expect V) or does
    /// not exist (--expect-absent).
    Cas {
        key: String,
        new: String,
        /// The value the key must hold.
        #[arg(
            long,
            conflicts_with = "expect_absent",
            required_unless_present = "expect_absent"
        )]
        expect: Option<String>,
        /// The key must not exist.
        #[arg(long)]
        expect_absent: bool,
    },
}

/// How keys and values are read from arguments and printed.
#[derive(Clone, Copy)]
struct Codec {
    hex: bool,
}

impl Codec {
    fn parse(self, what: &str, text: &str) -> anyhow::Result<Vec<u8>> {
        if !self.hex {
            return Ok(text.as_bytes().to_vec());
        }
        decode_hex(text).with_context(|| format!("{what} {text:?} is not hex"))
    }

    fn show(self, bytes: &[u8]) -> String {
        if self.hex {
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        } else {
            match std::str::from_utf8(bytes) {
                Ok(s) => s.to_string(),
                Err(_) => bytes.escape_ascii().to_string(),
            }
        }
    }
}

fn decode_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    if text.len() % 2 != 0 {
        bail!("odd number of digits");
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            let pair = text.get(i..i + 2).ok_or_else(|| anyhow!("not ASCII"))?;
            u8::from_str_radix(pair, 16).map_err(|_| anyhow!("bad digits {pair:?}"))
        })
        .collect()
}

pub fn run(args: KvArgs) -> anyhow::Result<()> {
    super::tool_runtime()?.block_on(run_async(args))
}

async fn run_async(args: KvArgs) -> anyhow::Result<()> {
    let codec = Codec { hex: args.hex };
    let endpoints: Vec<&str> = args.pd.split(',').map(str::trim).collect();
    let mut config = Config::builder().timeout(args.timeout).build();
    config.pd.timeout = args.timeout;
    let client = RawClient::connect(endpoints, config)
        .await
        .with_context(|| format!("connecting to PD at {}", args.pd))?;
    let out = execute(&client, codec, args.command).await?;
    let text = if args.json {
        out.json.to_string()
    } else {
        out.text
    };
    if !text.is_empty() {
        println!("{text}");
    }
    match out.missing {
        Some(key) => bail!("key not found: {key}"),
        None => Ok(()),
    }
}

/// What a command prints, both ways, and whether a `get` found nothing.
struct Output {
    text: String,
    json: Value,
    missing: Option<String>,
}

async fn execute(client: &RawClient, c: Codec, command: KvCommand) -> anyhow::Result<Output> {
    let done = |text: &str, json: Value| Output {
        text: text.to_string(),
        json,
        missing: None,
    };
    Ok(match command {
        KvCommand::Get { key } => {
            let value = client.get(c.parse("key", &key)?).await?;
            let json = json!({"key": key, "found": value.is_some(),
                "value": value.as_ref().map(|v| c.show(v))});
            match value {
                Some(v) => done(&c.show(&v), json),
                None => Output {
                    text: String::new(),
                    json,
                    missing: Some(key),
                },
            }
        }
        KvCommand::Put { key, value } => {
            client
                .put(c.parse("key", &key)?, c.parse("value", &value)?)
                .await?;
            done("OK", json!({"ok": true}))
        }
        KvCommand::Delete { key } => {
            client.delete(c.parse("key", &key)?).await?;
            done("OK", json!({"ok": true}))
        }
        KvCommand::Scan {
            start,
            end,
            limit,
            reverse,
            keys_only,
        } => {
            let start = c.parse("start", start.as_deref().unwrap_or(""))?;
            let end = c.parse("end", end.as_deref().unwrap_or(""))?;
            let range = flotilla_client::KeyRange::new(start, end);
            let pairs = if keys_only {
                let keys = if reverse {
                    client.scan_keys_reverse(range, limit).await?
                } else {
                    client.scan_keys(range, limit).await?
                };
                keys.into_iter()
                    .map(|key| KvPair {
                        key,
                        value: Bytes::new(),
                    })
                    .collect()
            } else if reverse {
                client.scan_reverse(range, limit).await?
            } else {
                client.scan(range, limit).await?
            };
            scan_output(c, &pairs, keys_only)
        }
        KvCommand::Cas {
            key,
            new,
            expect,
            expect_absent: _,
        } => {
            let expected = expect.map(|e| c.parse("expected value", &e)).transpose()?;
            let (previous, swapped) = client
                .compare_and_swap(c.parse("key", &key)?, expected, c.parse("value", &new)?)
                .await?;
            let previous = previous.map(|p| c.show(&p));
            let shown = previous.clone().unwrap_or_else(|| "(none)".into());
            let text = if swapped {
                format!("swapped (previous: {shown})")
            } else {
                format!("not swapped (current: {shown})")
            };
            done(&text, json!({"swapped": swapped, "previous": previous}))
        }
    })
}

fn scan_output(c: Codec, pairs: &[KvPair], keys_only: bool) -> Output {
    let lines: Vec<String> = pairs
        .iter()
        .map(|p| {
            if keys_only {
                c.show(&p.key)
            } else {
                format!("{}\t{}", c.show(&p.key), c.show(&p.value))
            }
        })
        .collect();
    let json_pairs: Vec<Value> = pairs
        .iter()
        .map(|p| {
            if keys_only {
                json!({"key": c.show(&p.key)})
            } else {
                json!({"key": c.show(&p.key), "value": c.show(&p.value)})
            }
        })
        .collect();
    Output {
        text: lines.join("\n"),
        json: json!({"count": pairs.len(), "pairs": json_pairs}),
        missing: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_bad_hex_is_refused() {
        let c = Codec { hex: true };
        assert_eq!(c.parse("key", "00ff10").unwrap(), vec![0, 255, 16]);
        assert_eq!(c.show(&[0, 255, 16]), "00ff10");
        assert!(c.parse("key", "abc").is_err());
        assert!(c.parse("key", "zz").is_err());
        let text = Codec { hex: false };
        assert_eq!(text.show(b"plain"), "plain");
        assert_eq!(text.show(&[0xff, b'a']), "\\xffa");
    }
}
