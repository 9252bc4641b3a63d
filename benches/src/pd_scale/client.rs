//! Talking to the PD under test: gRPC connections with the cluster ID in
//! every header, response-header checks, and reading its `/metrics`.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use flotilla_proto::pdpb::pd_client::PdClient;
use flotilla_proto::pdpb::{self, ErrorType, RequestHeader, ResponseHeader};
use tonic::transport::{Channel, Endpoint};

/// Longest a gRPC message may be (a full `ScanRegions` page is ~1 MiB).
const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// How long to wait for the PD to elect itself and start serving.
const SERVING_DEADLINE: Duration = Duration::from_secs(60);

/// The PD under test, once it serves.
#[derive(Clone, Debug)]
pub struct Pd {
    /// gRPC address, `host:port`.
    pub client_addr: String,
    /// HTTP address (`/metrics`, the JSON API), `host:port`.
    pub http_addr: String,
    /// The cluster's ID, sent in every request header.
    pub cluster_id: u64,
    channel: Channel,
}

impl Pd {
    /// Connects to the PD at `client_addr` and waits until it serves as
    /// leader. The HTTP address comes from `GetMembers` unless given.
    pub async fn connect(client_addr: &str, http_addr: Option<&str>) -> anyhow::Result<Pd> {
        let channel = connect_channel(client_addr).await?;
        let mut client = grpc(channel.clone());
        let started = Instant::now();
        loop {
            let members = client
                .get_members(pdpb::GetMembersRequest::default())
                .await
                .context("GetMembers")?
                .into_inner();
            let cluster_id = members.header.as_ref().map_or(0, |h| h.cluster_id);
            if let (Some(leader), true) = (members.leader.clone(), cluster_id != 0) {
                let header = Some(RequestHeader { cluster_id });
                let serving = client
                    .is_bootstrapped(pdpb::IsBootstrappedRequest { header })
                    .await
                    .context("IsBootstrapped")?
                    .into_inner();
                if check(serving.header.as_ref()).is_ok() {
                    let advertised = members
                        .members
                        .iter()
                        .filter(|m| m.member_id == leader.member_id)
                        .chain([&leader])
                        .map(|m| strip_scheme(&m.http_url))
                        .find(|a| !a.is_empty());
                    let http_addr = match (http_addr, advertised) {
                        (Some(a), _) | (None, Some(a)) => a.to_string(),
                        (None, None) => bail!(
                            "PD at {client_addr} does not say where its HTTP API is: pass --pd-http"
                        ),
                    };
                    return Ok(Pd {
                        client_addr: client_addr.to_string(),
                        http_addr,
                        cluster_id,
                        channel,
                    });
                }
            }
            if started.elapsed() > SERVING_DEADLINE {
                bail!("PD at {client_addr} did not start serving within {SERVING_DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A client on the shared connection.
    pub fn client(&self) -> PdClient<Channel> {
        grpc(self.channel.clone())
    }

    /// A client on a connection of its own (as each store has).
    pub async fn own_client(&self) -> anyhow::Result<PdClient<Channel>> {
        Ok(grpc(connect_channel(&self.client_addr).await?))
    }

    /// The request header for this cluster.
    pub fn header(&self) -> Option<RequestHeader> {
        Some(RequestHeader {
            cluster_id: self.cluster_id,
        })
    }

    /// The value of the Prometheus sample `series` (name with labels, as
    /// rendered) from the PD's `/metrics`; 0 if absent.
    pub async fn metric(&self, series: &str) -> anyhow::Result<f64> {
        let text = crate::http::get(&self.http_addr, "/metrics").await?;
        Ok(sample(&text, series).unwrap_or(0.0))
    }
}

async fn connect_channel(addr: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("connecting to PD at {addr}"))
}

fn grpc(channel: Channel) -> PdClient<Channel> {
    PdClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn strip_scheme(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

/// Fails with the PD's error if the response header carries one.
pub fn check(header: Option<&ResponseHeader>) -> anyhow::Result<()> {
    match header.and_then(|h| h.error.as_ref()) {
        Some(e) if e.r#type != ErrorType::Ok as i32 => Err(anyhow!(
            "PD error {:?}: {}",
            ErrorType::try_from(e.r#type).unwrap_or(ErrorType::Unknown),
            e.message
        )),
        _ => Ok(()),
    }
}

/// The value of one sample in Prometheus text format.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_samples_by_series() {
        let text = "# HELP x\nflotilla_pd_region_heartbeats_total{result=\"ok\"} 12345\n\
                    flotilla_pd_region_heartbeats_total{result=\"rejected\"} 2\n";
        assert_eq!(
            sample(text, "flotilla_pd_region_heartbeats_total{result=\"ok\"}"),
            Some(12345.0)
        );
        assert_eq!(sample(text, "flotilla_pd_regions"), None);
    }
}
