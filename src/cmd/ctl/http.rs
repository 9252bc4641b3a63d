//! A minimal HTTP/1.1 JSON client for PD's API: one request per
//! connection, a deadline per request, and a 307 redirect (a follower
//! pointing at the leader) followed a couple of times.
//!
//! One request per connection keeps it small: `ctl` makes one or two calls
//! per run, so keep-alive would buy nothing.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{CONTENT_TYPE, HOST, LOCATION};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// Redirects followed before giving up. PD redirects at most once (from a
/// follower to the leader); a second hop covers a leader change in between,
/// and a bound stops a redirect loop between two confused members.
const MAX_REDIRECTS: usize = 2;

/// Sends one JSON request to `addr` (`host:port`) and returns the final
/// status and body, following redirects. A body that is not JSON comes back
/// as a JSON string, an empty one as `null`, so callers always get a value
/// to show.
pub async fn request(
    method: Method,
    addr: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut target = (addr.to_string(), path.to_string());
    for _ in 0..=MAX_REDIRECTS {
        let (status, location, value) =
            request_once(method.clone(), &target.0, &target.1, body, timeout).await?;
        match location.filter(|_| is_redirect(status)) {
            Some(next) => target = split_url(&next, &target.0)?,
            None => return Ok((status, value)),
        }
    }
    bail!("PD redirected {method} {path} more than {MAX_REDIRECTS} times")
}

fn is_redirect(status: StatusCode) -> bool {
    status == StatusCode::TEMPORARY_REDIRECT || status == StatusCode::PERMANENT_REDIRECT
}

/// One request on a fresh connection, bounded by `timeout` from connect to
/// the last body byte.
async fn request_once(
    method: Method,
    addr: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> anyhow::Result<(StatusCode, Option<String>, Value)> {
    let exchange = exchange(method.clone(), addr, path, body);
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| anyhow!("no answer from PD at {addr} within {timeout:?} ({method} {path})"))?
}

async fn exchange(
    method: Method,
    addr: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(StatusCode, Option<String>, Value)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to PD's HTTP API at {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .with_context(|| format!("HTTP handshake with {addr}"))?;
    // The connection task drives the socket; it ends when `sender` drops.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let payload = body.map(|v| v.to_string()).unwrap_or_default();
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(payload)))
        .context("building the HTTP request")?;
    let resp = sender
        .send_request(req)
        .await
        .with_context(|| format!("sending the request to {addr}"))?;
    let status = resp.status();
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = resp
        .into_body()
        .collect()
        .await
        .with_context(|| format!("reading the answer from {addr}"))?
        .to_bytes();
    Ok((status, location, parse_body(&bytes)))
}

fn parse_body(bytes: &[u8]) -> Value {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).trim().to_string()))
}

/// `host:port` from a URL or bare address as PD advertises them
/// (`http://127.0.0.1:2380`, `127.0.0.1:2380/`). HTTPS is refused: this
/// client speaks plain HTTP only, and saying so beats a garbled handshake.
pub fn host_port(url: &str) -> anyhow::Result<String> {
    let (addr, _) = split_url(url, "")?;
    if addr.is_empty() {
        bail!("no host in {url:?}");
    }
    Ok(addr)
}

/// Splits a URL or a `Location` value into (`host:port`, path). A relative
/// location (just a path) stays on `current`.
fn split_url(url: &str, current: &str) -> anyhow::Result<(String, String)> {
    if url.starts_with('/') {
        return Ok((current.to_string(), url.to_string()));
    }
    if url.starts_with("https://") {
        bail!("{url:?} is HTTPS; ctl speaks plain HTTP only");
    }
    let rest = url.strip_prefix("http://").unwrap_or(url);
    Ok(match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_and_path() {
        assert_eq!(
            host_port("http://127.0.0.1:2380").unwrap(),
            "127.0.0.1:2380"
        );
        assert_eq!(host_port("127.0.0.1:2380/").unwrap(), "127.0.0.1:2380");
        assert!(host_port("https://pd:2380").is_err());
        assert!(host_port("").is_err());
        let (addr, path) = split_url("http://10.0.0.2:2380/pd/api/v1/stores", "x:1").unwrap();
        assert_eq!(
            (addr.as_str(), path.as_str()),
            ("10.0.0.2:2380", "/pd/api/v1/stores")
        );
        let (addr, path) = split_url("/pd/api/v1/config", "x:1").unwrap();
        assert_eq!((addr.as_str(), path.as_str()), ("x:1", "/pd/api/v1/config"));
    }

    /// Serves one connection on `listener` with `answer`; returns the
    /// request it read (head and body).
    async fn serve_once(listener: tokio::net::TcpListener, answer: String) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Requests here are tiny: the head and the body arrive together or
        // in a few reads; stop once the declared body is in.
        while !request_complete(&seen) {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed early");
            seen.extend_from_slice(&buf[..n]);
        }
        conn.write_all(answer.as_bytes()).await.unwrap();
        String::from_utf8(seen).unwrap()
    }

    fn request_complete(seen: &[u8]) -> bool {
        let text = String::from_utf8_lossy(seen);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        body.len() >= length
    }

    #[tokio::test]
    async fn a_redirect_is_followed_with_method_and_body() {
        let follower = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let leader = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let follower_addr = follower.local_addr().unwrap().to_string();
        let leader_addr = leader.local_addr().unwrap().to_string();
        let redirect = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{leader_addr}/pd/api/v1/config\r\n\
             content-length: 0\r\nconnection: close\r\n\r\n"
        );
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\n{\"ok\":1}";
        let first = tokio::spawn(serve_once(follower, redirect));
        let second = tokio::spawn(serve_once(leader, ok.to_string()));
        let body = serde_json::json!({"max-replicas": 5});
        let (status, value) = request(
            Method::POST,
            &follower_addr,
            "/pd/api/v1/config",
            Some(&body),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!((status, value["ok"].as_u64()), (StatusCode::OK, Some(1)));
        assert!(first.await.unwrap().starts_with("POST /pd/api/v1/config"));
        let replayed = second.await.unwrap();
        assert!(replayed.starts_with("POST /pd/api/v1/config"), "{replayed}");
        assert!(replayed.ends_with("{\"max-replicas\":5}"), "{replayed}");
    }

    #[test]
    fn bodies_always_become_values() {
        assert_eq!(parse_body(b""), Value::Null);
        assert_eq!(parse_body(b"{\"a\":1}")["a"], 1);
        assert_eq!(
            parse_body(b"Failed to parse\n"),
            Value::from("Failed to parse")
        );
    }
}
