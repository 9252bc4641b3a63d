//! A minimal HTTP/1.1 client over a tokio `TcpStream`, for the benchmarks'
//! and the fault harness's calls to status and metrics endpoints (PD's
//! `/metrics`; the stores' `/regions`, `/status`, `/metrics`, and their
//! test-only `/debug/links`) and PD's scheduler removal (`DELETE`).

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Longest one request may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The body of `GET path` at `addr` (`host:port`); fails unless the answer
/// is `200`.
pub async fn get(addr: &str, path: &str) -> anyhow::Result<String> {
    request(addr, "GET", path, "").await
}

/// The body of `DELETE path` at `addr`; fails unless the answer is `200`.
pub async fn delete(addr: &str, path: &str) -> anyhow::Result<String> {
    request(addr, "DELETE", path, "").await
}

/// The answer to `POST path` with a JSON `body`; fails unless it is `200`.
pub async fn post(addr: &str, path: &str, body: &str) -> anyhow::Result<String> {
    request(addr, "POST", path, body).await
}

/// The answer to `PUT path` with a JSON `body`; fails unless it is `200`.
pub async fn put(addr: &str, path: &str, body: &str) -> anyhow::Result<String> {
    request(addr, "PUT", path, body).await
}

async fn request(addr: &str, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
    tokio::time::timeout(TIMEOUT, request_inner(addr, method, path, body))
        .await
        .map_err(|_| anyhow!("{method} http://{addr}{path}: no answer within {TIMEOUT:?}"))?
}

async fn request_inner(addr: &str, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to http://{addr}"))?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw)
        .with_context(|| format!("{method} http://{addr}{path}: answer is not UTF-8"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("{method} http://{addr}{path}: malformed answer"))?;
    let status = head.lines().next().unwrap_or("no status line");
    let body = if head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"))
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    if !(status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200")) {
        // The server's explanation, on one line.
        let why: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
        let why: String = why.chars().take(300).collect();
        bail!("{method} http://{addr}{path}: {status}: {why}");
    }
    Ok(body)
}

/// Joins the chunks of a chunked HTTP/1.1 body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = size.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size, 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_chunks() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }

    #[tokio::test]
    async fn reads_a_plain_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
        });
        assert_eq!(get(&addr, "/status").await.unwrap(), "ok");
    }
}
