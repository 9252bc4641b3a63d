//! Readers for the validation corpus (`checker/testdata/linearizability/`, a copy of Porcupine's test data):
//! Jepsen's etcd register logs and Porcupine's key-value histories. Line
//! numbers serve as times.

use std::collections::{BTreeMap, HashMap};

use crate::history::Operation;
use crate::model::{RegisterOp, RegisterOut, StringOp, StringOut};

/// A line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// A register history of Jepsen's etcd test.
pub type EtcdHistory = Vec<Operation<RegisterOp<i64>, RegisterOut<i64>>>;

/// Reads a Jepsen etcd log: `INFO jepsen.util - <process> <type> <f> <value>`
/// (tab- or space-separated).
///
/// Reads that failed are dropped (they changed nothing); writes and CASes
/// that ended in `:info` are unknown; a `:fail` CAS did not swap. An
/// invocation with no completion is unknown.
pub fn parse_jepsen_etcd(text: &str) -> Result<EtcdHistory, ParseError> {
    let mut open: HashMap<u64, (u64, RegisterOp<i64>)> = HashMap::new();
    let mut ops = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let err = |reason: String| ParseError {
            line: n + 1,
            reason,
        };
        let Some((_, event)) = line.split_once("jepsen.util - ") else {
            continue;
        };
        // Fields are separated by tabs or spaces; the value may hold a
        // space (`[1 2]`).
        let mut fields = event.split_whitespace();
        let (Some(process), Some(kind), Some(f)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(err(format!(
                "expected process, type, function and value: {event:?}"
            )));
        };
        let value = fields.collect::<Vec<_>>().join(" ");
        let value = value.as_str();
        let process: u64 = process
            .parse()
            .map_err(|_| err(format!("bad process {process:?}")))?;
        let t = n as u64;
        if kind == ":invoke" {
            let input = match f {
                ":read" => RegisterOp::Get,
                ":write" => RegisterOp::Put(int(value).map_err(err)?),
                ":cas" => {
                    let (from, to) = pair(value).map_err(err)?;
                    RegisterOp::Cas { from, to }
                }
                _ => return Err(err(format!("unknown function {f}"))),
            };
            if open.insert(process, (t, input)).is_some() {
                return Err(err(format!("process {process} invoked twice")));
            }
            continue;
        }
        let Some((call, input)) = open.remove(&process) else {
            return Err(err(format!("process {process} completes nothing")));
        };
        let output = match (kind, &input) {
            (":ok", RegisterOp::Get) => {
                let v = if value == "nil" {
                    None
                } else {
                    Some(int(value).map_err(err)?)
                };
                Some(RegisterOut::Read(v))
            }
            (":ok", RegisterOp::Put(_)) => Some(RegisterOut::Written),
            (":ok", RegisterOp::Cas { .. }) => Some(RegisterOut::Cas(true)),
            (":fail", RegisterOp::Cas { .. }) => Some(RegisterOut::Cas(false)),
            (":fail" | ":info", RegisterOp::Get) => continue,
            (":info", _) => None,
            _ => return Err(err(format!("unexpected {kind} {f}"))),
        };
        ops.push(match output {
            Some(out) => Operation::done(process, call, t, input, out),
            None => Operation::unknown(process, call, input),
        });
    }
    for (process, (call, input)) in open {
        if input != RegisterOp::Get {
            ops.push(Operation::unknown(process, call, input));
        }
    }
    Ok(ops)
}

fn int(s: &str) -> Result<i64, String> {
    s.parse().map_err(|_| format!("bad value {s:?}"))
}

fn pair(s: &str) -> Result<(i64, i64), String> {
    let inner = s.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
    let mut it = inner.ok_or(format!("bad pair {s:?}"))?.split_whitespace();
    match (it.next(), it.next(), it.next()) {
        (Some(a), Some(b), None) => Ok((int(a)?, int(b)?)),
        _ => Err(format!("bad pair {s:?}")),
    }
}

/// Per-key string histories of Porcupine's key-value corpus.
pub type KvHistories = BTreeMap<String, Vec<Operation<StringOp, StringOut>>>;

/// Reads Porcupine's key-value corpus: one EDN map per line,
/// `{:process P, :type :invoke|:ok, :f :get|:put|:append, :key "K", :value "V"}`.
pub fn parse_kv(text: &str) -> Result<KvHistories, ParseError> {
    let mut open: HashMap<u64, (u64, String, StringOp)> = HashMap::new();
    let mut keys: KvHistories = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let err = |reason: String| ParseError {
            line: n + 1,
            reason,
        };
        if line.trim().is_empty() {
            continue;
        }
        let field = |name: &str| edn_field(line, name).ok_or_else(|| err(format!("no {name}")));
        let process: u64 = field(":process")?
            .parse()
            .map_err(|_| err("bad process".into()))?;
        let (kind, f, key, value) = (
            field(":type")?,
            field(":f")?,
            field(":key")?,
            field(":value")?,
        );
        let key = unquote(&key).ok_or_else(|| err(format!("bad key {key}")))?;
        let t = n as u64;
        if kind == ":invoke" {
            let text = || unquote(&value).ok_or_else(|| err(format!("bad value {value}")));
            let input = match f.as_str() {
                ":get" => StringOp::Get,
                ":put" => StringOp::Put(text()?),
                ":append" => StringOp::Append(text()?),
                _ => return Err(err(format!("unknown function {f}"))),
            };
            if open.insert(process, (t, key, input)).is_some() {
                return Err(err(format!("process {process} invoked twice")));
            }
            continue;
        }
        let Some((call, key, input)) = open.remove(&process) else {
            return Err(err(format!("process {process} completes nothing")));
        };
        let op = match (kind.as_str(), &input) {
            (":ok", StringOp::Get) => {
                let v = unquote(&value).ok_or_else(|| err(format!("bad value {value}")))?;
                Operation::done(process, call, t, input, StringOut::Read(v))
            }
            (":ok", _) => Operation::done(process, call, t, input, StringOut::Written),
            (":info", StringOp::Get) => continue,
            (":info", _) => Operation::unknown(process, call, input),
            _ => return Err(err(format!("unexpected type {kind}"))),
        };
        keys.entry(key).or_default().push(op);
    }
    for (process, (call, key, input)) in open {
        if input != StringOp::Get {
            keys.entry(key)
                .or_default()
                .push(Operation::unknown(process, call, input));
        }
    }
    Ok(keys)
}

/// The raw text of `name`'s value in one EDN map line: up to the next
/// `, :` or the closing brace (string values are quoted and contain
/// neither in this corpus).
fn edn_field(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!("{name} "))? + name.len() + 1;
    let rest = &line[start..];
    let end = rest.find(", :").or_else(|| rest.rfind('}'))?;
    Some(rest[..end].trim().to_string())
}

fn unquote(s: &str) -> Option<String> {
    if s == "nil" {
        return Some(String::new());
    }
    s.strip_prefix('"')?.strip_suffix('"').map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_lines_become_operations() {
        let log = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                   INFO  jepsen.util - 1\t:invoke\t:cas\t[1 4]\n\
                   INFO  jepsen.util - 2\t:invoke\t:write\t3\n\
                   INFO  jepsen.util - 0\t:ok\t:read\t2\n\
                   INFO  jepsen.util - 1\t:fail\t:cas\t[1 4]\n\
                   INFO  jepsen.util - 2\t:info\t:write\t:timed-out\n\
                   INFO  jepsen.util - 3\t:invoke\t:read\tnil\n\
                   INFO  jepsen.util - 3\t:fail\t:read\t:timed-out\n";
        let ops = parse_jepsen_etcd(log).unwrap();
        assert_eq!(
            ops,
            vec![
                Operation::done(0, 0, 3, RegisterOp::Get, RegisterOut::Read(Some(2))),
                Operation::done(
                    1,
                    1,
                    4,
                    RegisterOp::Cas { from: 1, to: 4 },
                    RegisterOut::Cas(false)
                ),
                Operation::unknown(2, 2, RegisterOp::Put(3)),
            ]
        );
        assert_eq!(
            parse_jepsen_etcd("INFO  jepsen.util - 0\t:ok\t:read\tnil")
                .unwrap_err()
                .line,
            1
        );
        assert!(parse_jepsen_etcd("INFO  jepsen.util - 0\t:invoke\t:cas\t[1]").is_err());
    }

    #[test]
    fn kv_lines_become_per_key_operations() {
        let text = "{:process 0, :type :invoke, :f :append, :key \"0\", :value \"x 0 0 y\"}\n\
                    {:process 1, :type :invoke, :f :get, :key \"7\", :value nil}\n\
                    {:process 0, :type :ok, :f :append, :key \"0\", :value \"x 0 0 y\"}\n\
                    {:process 1, :type :ok, :f :get, :key \"7\", :value \"\"}\n";
        let keys = parse_kv(text).unwrap();
        assert_eq!(
            keys["0"],
            vec![Operation::done(
                0,
                0,
                2,
                StringOp::Append("x 0 0 y".into()),
                StringOut::Written
            )]
        );
        assert_eq!(
            keys["7"],
            vec![Operation::done(
                1,
                1,
                3,
                StringOp::Get,
                StringOut::Read(String::new())
            )]
        );
        assert!(parse_kv("{:process 0, :type :ok}").is_err());
    }
}
