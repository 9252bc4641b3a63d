//! The serving leader: what a member builds when it becomes leader (with
//! its state machine complete), and the background work it runs while it
//! leads — persisting changed regions, scheduling, keeping the TSO ahead.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flotilla_proto::{metapb, pdpb};
use parking_lot::{Mutex, RwLock};
use prost::Message as _;
use tokio::sync::mpsc;

use super::alloc::{IdAllocator, Tso};
use super::Shared;
use crate::cluster::Cluster;
use crate::error::PdError;
use crate::schedule::IdSource;
use crate::storage::meta::{
    self, member_key, region_key, store_key, Op, ALLOC_ID_KEY, CLUSTER_ID_KEY, TSO_KEY,
};
use crate::storage::CF_META;

/// Region records per persist proposal.
const PERSIST_CHUNK: usize = 4096;
/// Peer IDs kept in reserve for the schedulers.
const ID_RESERVE: u64 = 1024;

/// Where responses for one store's region heartbeat stream go.
pub type HeartbeatSender = mpsc::Sender<Result<pdpb::RegionHeartbeatResponse, tonic::Status>>;

/// The leader's state for one term.
pub struct Leader {
    /// The term this member leads in.
    pub term: u64,
    /// The cluster's ID.
    pub cluster_id: u64,
    /// Stores, regions, operators.
    pub cluster: RwLock<Cluster>,
    /// ID allocator.
    pub ids: IdAllocator,
    /// Timestamp oracle.
    pub tso: Tso,
    /// Serializes bootstrap attempts.
    pub bootstrap_lock: tokio::sync::Mutex<()>,
    /// Region heartbeat batches take turns here, as waiting tasks, before
    /// taking the cluster lock. Waiting on the lock itself parks a runtime
    /// thread per busy store stream: with a few stores sending, every
    /// worker is then processing or parked and routing requests starve.
    pub heartbeat_turn: tokio::sync::Mutex<()>,
    /// Open region heartbeat streams, by store.
    pub streams: Mutex<BTreeMap<u64, HeartbeatSender>>,
    /// Counts operator steps not pushed because a stream's queue was full
    /// (the step is re-sent on the region's next heartbeat).
    push_drops: prometheus::IntCounter,
    /// Peer IDs reserved for the schedulers.
    reserve: Mutex<std::ops::Range<u64>>,
}

impl Leader {
    /// Builds the leader state for `term` from the replicated metadata.
    pub async fn start(shared: &Arc<Shared>, term: u64) -> Result<Arc<Leader>, PdError> {
        let timeout = shared.cfg.propose_timeout;
        let cluster_id = ensure_cluster_id(shared, term).await?;
        ensure_founders(shared, term).await?;
        let read_u64 = |key: &[u8]| -> Result<u64, PdError> {
            let value = shared.engine.get_u64(CF_META, key);
            Ok(value
                .map_err(|e| PdError::Unavailable(e.to_string()))?
                .unwrap_or(0))
        };
        let ids = IdAllocator::new(shared.raft.clone(), term, read_u64(ALLOC_ID_KEY)?, timeout);
        let tso = Tso::start(
            shared.raft.clone(),
            term,
            read_u64(TSO_KEY)?,
            shared.cfg.tso_save_window,
            timeout,
        )
        .await?;
        let cluster = Cluster::load(&shared.engine, shared.cfg.schedule.clone(), shared.now_ms())
            .map_err(|e| PdError::Unavailable(e.to_string()))?;
        tracing::info!(
            term,
            cluster_id,
            regions = cluster.view.regions.len(),
            stores = cluster.stores.len(),
            "PD leader ready"
        );
        Ok(Arc::new(Leader {
            term,
            cluster_id,
            cluster: RwLock::new(cluster),
            ids,
            tso,
            bootstrap_lock: tokio::sync::Mutex::new(()),
            heartbeat_turn: tokio::sync::Mutex::new(()),
            streams: Mutex::new(BTreeMap::new()),
            push_drops: shared
                .metrics
                .queue_drops
                .with_label_values(&["heartbeat_stream"]),
            reserve: Mutex::new(0..0),
        }))
    }

    /// Replicates `ops` while this leader's term lasts (refused after it,
    /// so a deposed leader never overwrites its successor's state).
    pub async fn propose(&self, shared: &Shared, ops: Vec<Op>) -> Result<(), PdError> {
        shared
            .raft
            .propose_as_leader(ops, self.term, shared.cfg.propose_timeout)
            .await?;
        Ok(())
    }

    /// Persists a store record and makes it current.
    pub async fn save_store(&self, shared: &Shared, store: metapb::Store) -> Result<(), PdError> {
        let op = Op::Put(
            Bytes::from(store_key(store.id)),
            Bytes::from(store.encode_to_vec()),
        );
        self.propose(shared, vec![op]).await?;
        self.cluster.write().apply_store(store, shared.now_ms());
        Ok(())
    }

    /// Sends a command to the store leading its region, on that store's
    /// heartbeat stream. Dropped if the stream is gone or full: the
    /// operator's step is re-sent on the region's next heartbeat.
    pub fn push_command(&self, store_id: u64, command: pdpb::RegionCommand) {
        let streams = self.streams.lock();
        if let Some(tx) = streams.get(&store_id) {
            let response = pdpb::RegionHeartbeatResponse {
                header: Some(crate::error::ok_header(self.cluster_id)),
                commands: vec![command],
                rejected: vec![],
            };
            if tx.try_send(Ok(response)).is_err() {
                self.push_drops.inc();
            }
        }
    }

    /// Runs the leader's background loops until it stops leading.
    pub fn spawn_background(self: &Arc<Self>, shared: &Arc<Shared>) {
        tokio::spawn(persist_loop(self.clone(), shared.clone()));
        tokio::spawn(schedule_loop(self.clone(), shared.clone()));
        tokio::spawn(tso_loop(self.clone(), shared.clone()));
    }

    async fn refill_reserve(&self) -> Result<(), PdError> {
        let left = {
            let r = self.reserve.lock();
            r.end - r.start
        };
        if left >= ID_RESERVE / 2 {
            return Ok(());
        }
        let first = self.ids.alloc(ID_RESERVE as u32).await?;
        *self.reserve.lock() = first..first + ID_RESERVE;
        Ok(())
    }
}

struct Reserve<'a>(&'a Mutex<std::ops::Range<u64>>);

impl IdSource for Reserve<'_> {
    fn next_id(&mut self) -> Option<u64> {
        self.0.lock().next()
    }
}

fn still_leading(leader: &Leader, shared: &Shared) -> bool {
    !shared.is_stopping()
        && shared
            .leader
            .read()
            .as_ref()
            .is_some_and(|l| l.term == leader.term)
}

async fn ensure_cluster_id(shared: &Shared, term: u64) -> Result<u64, PdError> {
    let read = || -> Result<Option<u64>, PdError> {
        let value = shared.engine.get_u64(CF_META, CLUSTER_ID_KEY);
        value.map_err(|e| PdError::Unavailable(e.to_string()))
    };
    if let Some(id) = read()? {
        return Ok(id);
    }
    // Unix seconds in the high half keeps IDs of clusters made at different
    // times apart; a random low half keeps simultaneous ones apart.
    let random = std::hash::BuildHasher::hash_one(
        &std::collections::hash_map::RandomState::new(),
        shared.id,
    );
    let id = (super::alloc::wall_ms() / 1000) << 32 | (random & 0xffff_ffff);
    let op = Op::Insert(
        Bytes::from_static(CLUSTER_ID_KEY),
        Bytes::copy_from_slice(&meta::encode_u64(id)),
    );
    shared
        .raft
        .propose_as_leader(vec![op], term, shared.cfg.propose_timeout)
        .await?;
    read()?.ok_or_else(|| PdError::Unavailable("cluster ID not persisted".into()))
}

/// Writes records for founding members that are still members but were
/// never published, so `GetMembers` lists every member from the start.
async fn ensure_founders(shared: &Shared, term: u64) -> Result<(), PdError> {
    let conf = shared.raft.status().conf_state;
    let mut ops = Vec::new();
    for f in shared.initial.iter().filter(|f| conf.contains(f.id)) {
        let record = pdpb::Member {
            member_id: f.id,
            name: f.name.clone(),
            peer_urls: vec![f.peer_url.clone()],
            ..Default::default()
        };
        ops.push(Op::Insert(
            Bytes::from(member_key(f.id)),
            Bytes::from(record.encode_to_vec()),
        ));
    }
    if !ops.is_empty() {
        shared
            .raft
            .propose_as_leader(ops, term, shared.cfg.propose_timeout)
            .await?;
    }
    Ok(())
}

async fn persist_loop(leader: Arc<Leader>, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.cfg.region_persist_interval);
    while still_leading(&leader, &shared) {
        tick.tick().await;
        let dirty = leader.cluster.write().take_dirty();
        if dirty.is_empty() {
            continue;
        }
        let ops: Vec<Op> = dirty
            .iter()
            .map(|(id, record)| match record {
                Some(info) => Op::Put(
                    Bytes::from(region_key(*id)),
                    Bytes::from(info.encode_to_vec()),
                ),
                None => Op::Delete(Bytes::from(region_key(*id))),
            })
            .collect();
        for chunk in ops.chunks(PERSIST_CHUNK) {
            if let Err(e) = leader.propose(&shared, chunk.to_vec()).await {
                tracing::warn!(error = %e, regions = dirty.len(), "persisting regions failed; will retry");
                leader.cluster.write().restore_dirty(dirty);
                break;
            }
            // Counted as written, not as attempted: the scale benchmark
            // waits on this to know every region is persisted.
            shared.metrics.regions_persisted.inc_by(chunk.len() as u64);
        }
    }
}

async fn schedule_loop(leader: Arc<Leader>, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.cfg.schedule_interval);
    while still_leading(&leader, &shared) {
        tick.tick().await;
        if let Err(e) = leader.refill_reserve().await {
            tracing::debug!(error = %e, "could not reserve peer IDs for scheduling");
        }
        let report = {
            let mut cluster = leader.cluster.write();
            let mut ids = Reserve(&leader.reserve);
            let report = cluster.schedule_pass(&mut ids, shared.now_ms());
            shared.metrics.observe_cluster(&cluster);
            report
        };
        for (store, command) in report.commands {
            leader.push_command(store, command);
        }
        for store in report.tombstones {
            tracing::info!(store = store.id, "offline store drained; now a tombstone");
            if let Err(e) = leader.save_store(&shared, store).await {
                tracing::warn!(error = %e, "persisting a tombstone failed; will retry");
            }
        }
    }
}

async fn tso_loop(leader: Arc<Leader>, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while still_leading(&leader, &shared) {
        tick.tick().await;
        if leader.tso.needs_persist() {
            if let Err(e) = leader.tso.persist_ahead().await {
                tracing::debug!(error = %e, "persisting the TSO window failed; will retry");
            }
        }
    }
}
