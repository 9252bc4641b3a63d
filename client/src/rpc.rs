//! One attempt of one request at one region: pick the peer, send, and
//! turn the answer into a result or into what to do next ([`Failure`]),
//! updating the region cache from the store's hints on the way.

use std::future::Future;
use std::time::Duration;

use flotilla_proto::kvrpcpb::{self, kv_client::KvClient, Context, RegionError};
use flotilla_proto::metapb;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::cache::{RegionCache, RegionRoute};
use crate::conn::Connections;
use crate::error::Error;

/// A raw KV request: its context is filled in per attempt.
pub(crate) trait KvRequest: Clone + Send + 'static {
    /// The reply.
    type Response: HasRegionError + Send;
    /// Sets where the request is meant to go.
    fn set_context(&mut self, ctx: Context);
    /// Sends it.
    fn send(
        self,
        client: KvClient<Channel>,
    ) -> impl Future<Output = Result<tonic::Response<Self::Response>, Status>> + Send;
}

/// Replies that may carry a region error.
pub(crate) trait HasRegionError {
    fn take_region_error(&mut self) -> Option<RegionError>;
}

macro_rules! kv_requests {
    ($($req:ident => $resp:ident, $method:ident;)*) => {$(
        impl KvRequest for kvrpcpb::$req {
            type Response = kvrpcpb::$resp;
            fn set_context(&mut self, ctx: Context) {
                self.context = Some(ctx);
            }
            fn send(
                self,
                mut client: KvClient<Channel>,
            ) -> impl Future<Output = Result<tonic::Response<Self::Response>, Status>> + Send {
                async move { client.$method(self).await }
            }
        }
        impl HasRegionError for kvrpcpb::$resp {
            fn take_region_error(&mut self) -> Option<RegionError> {
                self.region_error.take()
            }
        }
    )*};
}

kv_requests! {
    RawGetRequest => RawGetResponse, raw_get;
    RawBatchGetRequest => RawBatchGetResponse, raw_batch_get;
    RawPutRequest => RawPutResponse, raw_put;
    RawBatchPutRequest => RawBatchPutResponse, raw_batch_put;
    RawDeleteRequest => RawDeleteResponse, raw_delete;
    RawBatchDeleteRequest => RawBatchDeleteResponse, raw_batch_delete;
    RawScanRequest => RawScanResponse, raw_scan;
    RawDeleteRangeRequest => RawDeleteRangeResponse, raw_delete_range;
    RawCompareAndSwapRequest => RawCompareAndSwapResponse, raw_compare_and_swap;
    SplitRegionRequest => SplitRegionResponse, split_region;
}

/// Why an attempt did not produce an answer, and what that means.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The request was not carried out; try again (routing again through
    /// the cache, which the answer may have updated) after `delay`.
    Retry { reason: String, delay: Delay },
    /// The request may have been carried out, or not.
    MaybeApplied { reason: String },
    /// Trying again cannot help.
    Fatal(Error),
}

/// How long to wait before the next attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delay {
    /// Right away: the cache now points somewhere better.
    None,
    /// The next step of the call's exponential backoff.
    Backoff,
    /// At least this long (the store asked for it), with backoff.
    AtLeast(Duration),
}

fn retry(reason: impl Into<String>, delay: Delay) -> Failure {
    Failure::Retry {
        reason: reason.into(),
        delay,
    }
}

/// What an attempt needs from the client.
pub(crate) struct Env<'a> {
    pub cache: &'a RegionCache,
    pub conns: &'a Connections,
    pub rpc_timeout: Duration,
}

/// Which peer of the region to address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The leader (writes, and reads by default).
    Leader,
    /// Voter number `n` (modulo their count), for a follower read.
    Replica(usize),
}

/// Sends `req` to `route`'s region once.
pub(crate) async fn attempt<R: KvRequest>(
    env: &Env<'_>,
    route: &RegionRoute,
    mut req: R,
    target: Target,
    deadline: Instant,
) -> Result<R::Response, Failure> {
    let (peer, follower_read) = pick_peer(route, target);
    let addr = match env.cache.store_addr(peer.store_id, deadline).await {
        Ok(addr) => addr,
        Err(e) if e.is_invalid_argument() => return Err(Failure::Fatal(e)),
        Err(e) => {
            // A removed store: its regions moved; ask PD for them again.
            env.cache.invalidate(route.id());
            return Err(retry(e.to_string(), Delay::Backoff));
        }
    };
    let client = env.conns.get(&addr).map_err(Failure::Fatal)?;
    req.set_context(Context {
        region_id: route.id(),
        region_epoch: Some(route.epoch()),
        peer: Some(peer),
        follower_read,
    });
    let until = (Instant::now() + env.rpc_timeout).min(deadline);
    let reply = match tokio::time::timeout_at(until, req.send(client)).await {
        Ok(reply) => reply,
        Err(_) => {
            // A hung store (paused, overloaded): the others may have
            // elected a new leader meanwhile. Try the next voter; a
            // follower's NotLeader points back here if this one still leads.
            env.cache.on_not_leader(route.id(), None, peer);
            return Err(Failure::MaybeApplied {
                reason: format!("no answer from store {} at {addr} in time", peer.store_id),
            });
        }
    };
    let mut reply = match reply {
        Ok(r) => r.into_inner(),
        Err(status) => return Err(judge_status(env, &status, route, peer, &addr)),
    };
    match reply.take_region_error() {
        None => Ok(reply),
        Some(e) => Err(judge_region_error(env.cache, route, peer, e)),
    }
}

/// The peer to address, and whether it is a follower read.
fn pick_peer(route: &RegionRoute, target: Target) -> (metapb::Peer, bool) {
    let voters: Vec<metapb::Peer> = route.voters().copied().collect();
    let leader = route
        .leader
        .or_else(|| voters.first().copied())
        .unwrap_or_default();
    match target {
        Target::Replica(n) if !voters.is_empty() => {
            let peer = voters[n % voters.len()];
            (peer, Some(peer) != route.leader)
        }
        _ => (leader, false),
    }
}

/// A store's region error: update the cache, and say what to do.
fn judge_region_error(
    cache: &RegionCache,
    route: &RegionRoute,
    tried: metapb::Peer,
    e: RegionError,
) -> Failure {
    let region = route.id();
    if let Some(nl) = e.not_leader {
        let hint = nl.leader.filter(|l| l.id != 0 && *l != tried);
        cache.on_not_leader(region, hint, tried);
        // Refused before proposing: not applied. A named new leader is
        // worth trying at once; otherwise an election is going on.
        let delay = if hint.is_some() {
            Delay::None
        } else {
            Delay::Backoff
        };
        return retry(
            format!("region {region}: not leader ({})", e.message),
            delay,
        );
    }
    if let Some(en) = e.epoch_not_match {
        cache.on_epoch_not_match(region, en.current_regions, tried.store_id);
        return retry(format!("region {region}: epoch changed"), Delay::None);
    }
    if e.region_not_found.is_some() || e.store_not_match.is_some() {
        cache.invalidate(region);
        return retry(format!("region {region}: {}", e.message), Delay::Backoff);
    }
    if e.key_not_in_region.is_some() {
        // Our range for the region is wrong: learn it again.
        cache.invalidate(region);
        return retry(format!("region {region}: {}", e.message), Delay::Backoff);
    }
    if let Some(busy) = e.server_is_busy {
        let wait = Duration::from_millis(busy.backoff_ms);
        return retry(
            format!("store {} busy: {}", tried.store_id, busy.reason),
            Delay::AtLeast(wait),
        );
    }
    if e.stale_command.is_some() {
        return Failure::MaybeApplied {
            reason: format!("region {region}: the command was superseded (leader changed)"),
        };
    }
    if let Some(big) = e.raft_entry_too_large {
        return Failure::Fatal(Error::InvalidArgument(format!(
            "request of {} bytes does not fit in one Raft entry of region {region}",
            big.entry_size
        )));
    }
    Failure::Fatal(Error::Store(format!(
        "region {region}: unknown region error: {}",
        e.message
    )))
}

/// A gRPC failure: a status the store sent, or one our side made up for a
/// broken connection.
fn judge_status(
    env: &Env<'_>,
    status: &Status,
    route: &RegionRoute,
    peer: metapb::Peer,
    addr: &str,
) -> Failure {
    let store_id = peer.store_id;
    let from_transport = std::error::Error::source(status).is_some();
    if from_transport {
        if never_sent(status) {
            // The store is down (or moved): try the region's next voter,
            // and look the address up again when we come back to it.
            env.cache.invalidate_store(store_id);
            env.cache.on_not_leader(route.id(), None, peer);
            return retry(
                format!("store {store_id} at {addr} unreachable: {}", chain(status)),
                Delay::Backoff,
            );
        }
        env.cache.on_not_leader(route.id(), None, peer);
        return Failure::MaybeApplied {
            reason: format!(
                "connection to store {store_id} at {addr} failed: {}",
                chain(status)
            ),
        };
    }
    let msg = status.message().to_string();
    match status.code() {
        Code::InvalidArgument => Failure::Fatal(Error::InvalidArgument(msg)),
        Code::ResourceExhausted => Failure::Fatal(Error::ResourceExhausted(msg)),
        Code::Unimplemented | Code::Internal | Code::DataLoss => {
            Failure::Fatal(Error::Store(format!("store {store_id}: {msg}")))
        }
        _ => Failure::MaybeApplied {
            reason: format!("store {store_id}: {:?}: {msg}", status.code()),
        },
    }
}

/// Whether a transport failure happened before the request left: the TCP
/// connect failed.
fn never_sent(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        if e.to_string().contains("tcp connect error") {
            return true;
        }
        source = e.source();
    }
    false
}

/// A status and its causes, on one line.
fn chain(status: &Status) -> String {
    let mut out = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
