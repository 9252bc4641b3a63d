//! PD's HTTP API as `ctl` uses it: find the leader through the gRPC
//! endpoints given on the command line, then talk JSON to its
//! `/pd/api/v1`, turning PD's error bodies into one-line errors.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use flotilla_client::pd::{PdClient, PdClientConfig};
use hyper::{Method, StatusCode};
use serde_json::Value;

use super::http;

/// Where every API path lives on a PD member.
const API_PREFIX: &str = "/pd/api/v1";

/// The leader's HTTP API.
pub struct PdApi {
    /// `host:port` of the leader's HTTP listener.
    addr: String,
    /// Deadline of each request.
    timeout: Duration,
}

impl PdApi {
    /// Finds the PD leader behind `endpoints` (comma-separated gRPC
    /// addresses) and its HTTP address.
    ///
    /// The leader is asked directly: any member answers `members`, but only
    /// the leader answers the rest, and a follower's redirect costs a round
    /// trip (it is still followed, for a leader change in between).
    pub async fn connect(endpoints: &str, timeout: Duration) -> anyhow::Result<PdApi> {
        let list: Vec<String> = endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        let client = PdClient::connect(&list, client_config(timeout))
            .await
            .with_context(|| format!("connecting to PD at {endpoints}"))?;
        let members = client
            .members()
            .await
            .with_context(|| format!("asking PD at {endpoints} for its members"))?;
        let leader = members
            .leader
            .ok_or_else(|| anyhow!("PD has no leader right now; retry in a few seconds"))?;
        if leader.http_url.is_empty() {
            bail!("the PD leader {:?} advertises no HTTP address", leader.name);
        }
        let addr = http::host_port(&leader.http_url)
            .with_context(|| format!("the PD leader's HTTP address {:?}", leader.http_url))?;
        Ok(PdApi { addr, timeout })
    }

    /// `GET /pd/api/v1{path}`.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }

    /// `POST /pd/api/v1{path}` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `DELETE /pd/api/v1{path}`.
    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::DELETE, path, None).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let full = format!("{API_PREFIX}{path}");
        let (status, value) =
            http::request(method.clone(), &self.addr, &full, body, self.timeout).await?;
        if status.is_success() {
            return Ok(value);
        }
        Err(api_error(status, &value, &format!("{method} {full}")))
    }
}

/// The client's deadlines from the command's: a single attempt never
/// outlives the whole call, so a short `--timeout` fails fast on an
/// unreachable PD.
fn client_config(timeout: Duration) -> PdClientConfig {
    let defaults = PdClientConfig::default();
    PdClientConfig {
        timeout,
        rpc_timeout: defaults.rpc_timeout.min(timeout),
        connect_timeout: defaults.connect_timeout.min(timeout),
        ..defaults
    }
}

/// PD's error body (`{"error": "...", "type": "..."}`) as one line; a body
/// without `error` (a route PD does not have, a JSON it could not parse) is
/// shown as it came. PD's words come first: they are what to act on.
fn api_error(status: StatusCode, body: &Value, request: &str) -> anyhow::Error {
    let text = match body.get("error").and_then(Value::as_str) {
        Some(e) => e.to_string(),
        None => match body {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    };
    let text = one_line(&text);
    if text.is_empty() {
        anyhow!("PD answered {status} to {request}")
    } else {
        anyhow!("{text} (PD answered {status} to {request})")
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` as one URL path segment: everything but RFC 3986's unreserved
/// characters is percent-encoded, so a key holding `/`, `?`, `%` or
/// non-ASCII reaches PD as one segment, decoded back to the same UTF-8.
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_become_one_encoded_segment() {
        assert_eq!(path_segment("key050"), "key050");
        assert_eq!(path_segment("a/b?c%d e"), "a%2Fb%3Fc%25d%20e");
        assert_eq!(path_segment("é"), "%C3%A9");
    }

    #[test]
    fn errors_show_pd_text_on_one_line() {
        let body = json!({"error": "store 9 holds no replica", "type": "InvalidArgument"});
        let e = api_error(StatusCode::BAD_REQUEST, &body, "POST /x").to_string();
        assert_eq!(
            e,
            "store 9 holds no replica (PD answered 400 Bad Request to POST /x)"
        );
        let e = api_error(StatusCode::NOT_FOUND, &Value::Null, "GET /y").to_string();
        assert_eq!(e, "PD answered 404 Not Found to GET /y");
        let e = api_error(StatusCode::BAD_REQUEST, &json!("bad\njson"), "POST /z").to_string();
        assert_eq!(e, "bad json (PD answered 400 Bad Request to POST /z)");
    }
}
