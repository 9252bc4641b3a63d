//! Helpers for the KV bad-input and semantics tests: the documented
//! limits, byte helpers, reading a key on every store, and checks on
//! responses (region error, invalid argument, ok).

use std::fmt::Debug;

use bytes::Bytes;
use flotilla_proto::kvrpcpb::kv_client::KvClient;
use flotilla_proto::kvrpcpb::*;
use tonic::transport::Channel;
use tonic::{Code, Status};

pub use flotilla_store::kv::service::HasRegionError;

use super::{wait_for, Cluster, LONG};

/// The documented limits (kvrpcpb.proto), spelled out independently of
/// the store's constants.
pub const MAX_KEY: usize = 8 << 10;
pub const MAX_VALUE: usize = 8 << 20;
pub const MAX_BATCH_KEYS: usize = 10_000;
pub const MAX_BATCH_BYTES: usize = 32 << 20;
pub const MAX_SCAN_LIMIT: u32 = 10_000;

pub fn b(s: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(s.as_ref())
}

pub fn pair(k: impl AsRef<[u8]>, v: impl AsRef<[u8]>) -> KvPair {
    KvPair {
        key: b(k),
        value: b(v),
    }
}

/// A KV client of store `i` that can carry the biggest legal requests.
pub async fn big_kv(cluster: &Cluster, i: usize) -> KvClient<Channel> {
    cluster
        .kv(i)
        .await
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

/// What store `i` holds for `key` in its RocksDB.
pub fn on_store(cluster: &Cluster, i: usize, key: &[u8]) -> Option<Vec<u8>> {
    cluster
        .store(i)
        .context()
        .engine
        .get("default", key)
        .expect("engine read")
}

/// No running store holds `key`.
pub fn assert_nowhere(cluster: &Cluster, key: &[u8], what: &str) {
    for (i, s) in cluster.stores.iter().enumerate() {
        if s.is_some() {
            assert_eq!(
                on_store(cluster, i, key).map(|v| v.len()),
                None,
                "{what}: key {:?} was written on store {i}",
                String::from_utf8_lossy(&key[..key.len().min(40)])
            );
        }
    }
}

/// Every running store holds `key` = `value`.
pub fn assert_everywhere(cluster: &Cluster, key: &[u8], value: &[u8], what: &str) {
    for (i, s) in cluster.stores.iter().enumerate() {
        if s.is_some() {
            assert_eq!(
                on_store(cluster, i, key).as_deref(),
                Some(value),
                "{what}: key {:?} changed on store {i}",
                String::from_utf8_lossy(key)
            );
        }
    }
}

/// Waits until every running store holds `key` = `value`.
pub async fn wait_everywhere(cluster: &Cluster, key: &[u8], value: &[u8]) {
    wait_for("every replica applied", LONG, || async {
        cluster
            .stores
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .all(|(i, _)| on_store(cluster, i, key).as_deref() == Some(value))
    })
    .await;
}

/// The region error of a response that must have one.
pub fn expect_region_error<T: HasRegionError + Debug>(
    what: &str,
    r: Result<tonic::Response<T>, Status>,
) -> RegionError {
    match r {
        Ok(r) => r
            .get_ref()
            .region_error()
            .cloned()
            .unwrap_or_else(|| panic!("{what}: served, expected a region error: {r:?}")),
        Err(s) => panic!("{what}: gRPC error {s:?}, expected a region error"),
    }
}

/// A response that must have succeeded.
pub fn expect_ok<T: HasRegionError + Debug>(
    what: &str,
    r: Result<tonic::Response<T>, Status>,
) -> T {
    match r {
        Ok(r) => {
            let r = r.into_inner();
            assert!(r.region_error().is_none(), "{what}: region error {r:?}");
            r
        }
        Err(s) => panic!("{what}: gRPC error {s:?}"),
    }
}

/// A request that must have failed with INVALID_ARGUMENT naming `limit`.
pub fn expect_invalid<T: Debug>(what: &str, r: Result<tonic::Response<T>, Status>, limit: &str) {
    match r {
        Ok(r) => panic!(
            "{what}: accepted, expected INVALID_ARGUMENT: {:?}",
            r.get_ref()
        ),
        Err(s) => {
            assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
            assert!(
                s.message().contains(limit),
                "{what}: message {:?} does not name {limit:?}",
                s.message()
            );
        }
    }
}

/// A normal write and read still work (the store survived everything).
pub async fn still_serves(cluster: &Cluster, tag: &str) {
    let key = format!("{tag}/alive");
    cluster.put(key.as_bytes(), b"yes").await;
    assert_eq!(cluster.get(key.as_bytes()).await, Some(b"yes".to_vec()));
}

/// Keys the refused deletes aim at; written before, must survive.
pub const VICTIMS: [&str; 3] = ["victim/a", "victim/b", "victim/c"];
