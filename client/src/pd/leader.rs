//! Finding and following the PD leader: the member list, discovery through
//! `GetMembers`, and the current leader connection shared by every call.

use std::sync::{Arc, Mutex, MutexGuard};

use flotilla_proto::pdpb::{self, pd_client::PdClient as Grpc_, GetMembersRequest};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use super::{PdClientConfig, PdError};

/// The generated gRPC client on one member's channel.
pub(crate) type Grpc = Grpc_<Channel>;

/// PD answers can hold thousands of regions (`ScanRegions` up to 10,000).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// A connection to the member believed to lead. `generation` identifies it:
/// a caller that saw it fail invalidates only that generation, so a slow
/// caller cannot throw away a newer leader another task already found.
#[derive(Clone)]
pub(crate) struct Conn {
    pub(crate) generation: u64,
    pub(crate) url: String,
    pub(crate) grpc: Grpc,
}

struct State {
    /// Client URLs to ask for the leader: the latest `GetMembers` list
    /// (leader first), then the endpoints the client was given.
    members: Vec<String>,
    seeds: Vec<String>,
    leader: Option<Conn>,
    next_generation: u64,
}

/// The shared core of a `PdClient`.
pub(crate) struct Leader {
    pub(crate) config: PdClientConfig,
    pub(crate) cluster_id: u64,
    state: Mutex<State>,
    /// One discovery at a time: when the leader fails, every waiting call
    /// needs the same answer, and PD should not get one `GetMembers` storm
    /// per task.
    discovering: tokio::sync::Mutex<()>,
}

/// `host:port` or `http://host:port` as a URL.
pub(crate) fn normalize(endpoint: &str) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    if e.contains("://") {
        e.to_string()
    } else {
        format!("http://{e}")
    }
}

/// Connects to `url`, giving up at the connect timeout or `deadline`.
pub(crate) async fn connect_url(
    url: &str,
    config: &PdClientConfig,
    deadline: Instant,
) -> Result<Grpc, PdError> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| PdError::InvalidArgument(format!("bad PD endpoint {url:?}: {e}")))?
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true);
    let until = (Instant::now() + config.connect_timeout).min(deadline);
    match tokio::time::timeout_at(until, endpoint.connect()).await {
        Ok(Ok(channel)) => Ok(Grpc_::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)),
        Ok(Err(e)) => Err(PdError::Transport(format!("connecting to {url}: {e}"))),
        Err(_) => Err(PdError::Transport(format!(
            "connecting to {url}: timed out"
        ))),
    }
}

/// Asks the member at `url` for the member list; returns the answer and a
/// connection to that member.
async fn ask_members(
    url: String,
    config: PdClientConfig,
    deadline: Instant,
) -> Result<(pdpb::GetMembersResponse, Grpc), PdError> {
    let mut grpc = connect_url(&url, &config, deadline).await?;
    let until = (Instant::now() + config.rpc_timeout).min(deadline);
    let call = grpc.get_members(GetMembersRequest { header: None });
    match tokio::time::timeout_at(until, call).await {
        Ok(Ok(resp)) => {
            let resp = resp.into_inner();
            match PdError::from_header(resp.header.as_ref()) {
                Some(e) => Err(e),
                None => Ok((resp, grpc)),
            }
        }
        Ok(Err(status)) => Err(PdError::from_status(&status)),
        Err(_) => Err(PdError::Transport(format!(
            "GetMembers on {url}: timed out"
        ))),
    }
}

/// What one round of asking every member found.
pub(crate) struct Found {
    pub(crate) cluster_id: u64,
    pub(crate) members: pdpb::GetMembersResponse,
    asked_url: String,
    leader_url: String,
    grpc: Grpc,
}

/// Asks every URL at once and takes the first member that names a leader
/// with a client URL (and, once known, the right cluster ID). Asking in
/// parallel keeps one black-holed member from costing a connect timeout.
pub(crate) async fn ask_all(
    urls: &[String],
    config: &PdClientConfig,
    cluster_id: u64,
    deadline: Instant,
) -> Result<Found, PdError> {
    let mut set = JoinSet::new();
    for url in urls {
        let (url, config) = (url.clone(), config.clone());
        set.spawn(async move { (url.clone(), ask_members(url, config, deadline).await) });
    }
    let mut last = PdError::Transport("no PD endpoints".into());
    while let Some(joined) = set.join_next().await {
        let Ok((url, result)) = joined else { continue };
        let (resp, grpc) = match result {
            Ok(ok) => ok,
            Err(e) => {
                tracing::debug!(%url, error = %e, "PD member did not answer GetMembers");
                last = e;
                continue;
            }
        };
        let got = resp.header.as_ref().map_or(0, |h| h.cluster_id);
        if got == 0 {
            // The member has not learned the cluster ID yet (just started).
            last = PdError::Unavailable(format!("{url} does not know the cluster ID yet"));
            continue;
        }
        if cluster_id != 0 && got != cluster_id {
            // A member of another cluster (misconfigured endpoints): never
            // follow it.
            tracing::warn!(%url, got, cluster_id, "PD member has another cluster ID");
            last = PdError::ClusterIdMismatch(format!("{url} answered cluster {got}"));
            continue;
        }
        let leader_url = resp
            .leader
            .as_ref()
            .and_then(|l| l.client_urls.first())
            .map(|u| normalize(u));
        let Some(leader_url) = leader_url else {
            last = PdError::NoLeader;
            continue;
        };
        return Ok(Found {
            cluster_id: got,
            members: resp,
            asked_url: url,
            leader_url,
            grpc,
        });
        // Dropping `set` aborts the other questions.
    }
    Err(last)
}

impl Leader {
    /// The shared core after a successful first discovery.
    pub(crate) async fn establish(
        seeds: Vec<String>,
        config: PdClientConfig,
        found: Found,
        deadline: Instant,
    ) -> Result<Arc<Leader>, PdError> {
        let leader = Arc::new(Leader {
            config,
            cluster_id: found.cluster_id,
            state: Mutex::new(State {
                members: Vec::new(),
                seeds,
                leader: None,
                next_generation: 1,
            }),
            discovering: tokio::sync::Mutex::new(()),
        });
        leader.adopt(found, deadline).await?;
        Ok(leader)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The URL of the member currently believed to lead.
    pub(crate) fn leader_url(&self) -> Option<String> {
        self.state().leader.as_ref().map(|c| c.url.clone())
    }

    /// Every client URL the client would ask for the leader.
    pub(crate) fn known_urls(&self) -> Vec<String> {
        let st = self.state();
        let mut urls = st.members.clone();
        for s in &st.seeds {
            if !urls.contains(s) {
                urls.push(s.clone());
            }
        }
        urls
    }

    /// Records a `GetMembers` answer: the member list, fresh.
    pub(crate) fn update_members(&self, resp: &pdpb::GetMembersResponse) {
        let leader = resp.leader.as_ref().map(|l| l.member_id);
        let mut urls: Vec<String> = Vec::new();
        let ordered = resp
            .members
            .iter()
            .filter(|m| Some(m.member_id) == leader)
            .chain(resp.members.iter().filter(|m| Some(m.member_id) != leader));
        for m in ordered {
            for u in &m.client_urls {
                let u = normalize(u);
                if !urls.contains(&u) {
                    urls.push(u);
                }
            }
        }
        if !urls.is_empty() {
            self.state().members = urls;
        }
    }

    /// Makes the leader `found` names the current one.
    async fn adopt(&self, found: Found, deadline: Instant) -> Result<Conn, PdError> {
        self.update_members(&found.members);
        // The member that answered may be the leader itself: reuse its
        // channel instead of dialling again.
        let grpc = if found.asked_url == found.leader_url {
            found.grpc
        } else {
            connect_url(&found.leader_url, &self.config, deadline).await?
        };
        Ok(self.install_if_none(found.leader_url, grpc))
    }

    /// Makes `url` the leader connection unless there is one already;
    /// returns the connection in place.
    fn install_if_none(&self, url: String, grpc: Grpc) -> Conn {
        let mut st = self.state();
        if let Some(c) = &st.leader {
            return c.clone();
        }
        let conn = Conn {
            generation: st.next_generation,
            url,
            grpc,
        };
        st.next_generation += 1;
        tracing::info!(url = %conn.url, "following PD leader");
        st.leader = Some(conn.clone());
        conn
    }

    /// The current leader connection, discovering one if there is none.
    pub(crate) async fn current(&self, deadline: Instant) -> Result<Conn, PdError> {
        if let Some(c) = self.state().leader.clone() {
            return Ok(c);
        }
        let _one = self.discovering.lock().await;
        // Another task may have found it while we waited for the lock.
        if let Some(c) = self.state().leader.clone() {
            return Ok(c);
        }
        let found = ask_all(&self.known_urls(), &self.config, self.cluster_id, deadline).await?;
        self.adopt(found, deadline).await
    }

    /// Forgets the leader connection `generation` (it failed), unless a
    /// newer one replaced it already.
    pub(crate) fn invalidate(&self, generation: u64) {
        let mut st = self.state();
        if st
            .leader
            .as_ref()
            .is_some_and(|c| c.generation == generation)
        {
            st.leader = None;
        }
    }

    /// After `NOT_LEADER` from connection `generation`: switches to the
    /// leader the error names if it is another member. Returns false when
    /// there was no usable hint (the caller backs off and rediscovers).
    pub(crate) async fn follow_hint(
        &self,
        generation: u64,
        hint: Option<&pdpb::Member>,
        deadline: Instant,
    ) -> bool {
        let here = self.state().leader.as_ref().map(|c| c.url.clone());
        let url = hint
            .and_then(|m| m.client_urls.first())
            .map(|u| normalize(u));
        self.invalidate(generation);
        let Some(url) = url.filter(|u| Some(u) != here.as_ref()) else {
            return false;
        };
        match connect_url(&url, &self.config, deadline).await {
            Ok(grpc) => {
                // Unless another task switched first.
                self.install_if_none(url, grpc);
                true
            }
            Err(_) => false,
        }
    }
}
