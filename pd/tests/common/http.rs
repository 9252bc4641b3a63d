//! A tiny HTTP/1.1 client for the JSON API.

// ---- a tiny HTTP/1.1 client ---------------------------------------------------------

/// An HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request with `Connection: close`, read to EOF.
pub async fn http(
    method: &str,
    addr: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> std::io::Result<HttpResponse> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body).ok_or_else(|| bad("bad chunked body"))?
    } else {
        body.to_string()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut s: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        s = rest.get(size + 2..)?;
    }
}

/// [`http`], following `307` redirects to the leader, and retrying (until
/// [`LONG`]) while no leader can be reached: a member that knows none —
/// during an election, or before the leader published its HTTP address —
/// answers `503` of type `NotLeader`, and during an election stale views of
/// the leader may redirect in a circle. Neither did anything, so retrying
/// is safe for any method.
pub async fn http_leader(
    method: &str,
    addr: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> HttpResponse {
    let start = std::time::Instant::now();
    loop {
        let last = follow_redirects(method, addr, path, body).await;
        match last {
            Some(resp) if !is_no_leader(&resp) => return resp,
            _ if start.elapsed() > super::LONG => panic!(
                "no PD leader answered {method} {addr}{path} within {:?}; last answer: {last:?}",
                super::LONG
            ),
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// [`http`], following a few `307` redirects; `None` if they go on.
async fn follow_redirects(
    method: &str,
    addr: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Option<HttpResponse> {
    let mut addr = addr.to_string();
    let mut path = path.to_string();
    for _ in 0..4 {
        let resp = http(method, &addr, &path, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {addr}{path}: {e}"));
        if resp.status != 307 {
            return Some(resp);
        }
        let location = resp
            .header("location")
            .unwrap_or_else(|| panic!("307 without Location: {}", resp.body))
            .to_string();
        let rest = location.trim_start_matches("http://");
        let (host, p) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        addr = host.to_string();
        path = p.to_string();
    }
    None
}

/// Whether `resp` is a member's "no leader to redirect to" (`503` of type
/// `NotLeader`), as opposed to the leader's own answer.
pub fn is_no_leader(resp: &HttpResponse) -> bool {
    resp.status == 503
        && serde_json::from_str::<serde_json::Value>(&resp.body)
            .is_ok_and(|json| json["type"] == "NotLeader")
}
