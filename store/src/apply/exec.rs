//! Executing one committed command into the apply batch.
//!
//! Commands of many regions share one write batch, so a compare-and-swap
//! must see the writes already in the batch: [`Overlay`] keeps the batch's
//! latest value per key and the ranges it deleted, in front of RocksDB.

use std::collections::BTreeMap;

use bytes::Bytes;
use flotilla_proto::metapb;
use flotilla_proto::raft_cmdpb::{self, request::Cmd};
use rocksdb::WriteBatch;

use crate::engine::{Engine, EngineError, CF_DEFAULT};
use crate::peer::msg::{CasOutcome, WriteResponse};
use crate::region_error;

/// The unflushed writes of the current apply batch.
#[derive(Default)]
pub struct Overlay {
    values: BTreeMap<Bytes, Option<Bytes>>,
    deleted_ranges: Vec<(Bytes, Bytes)>,
}

impl Overlay {
    /// The value of `key` as the batch would leave it.
    pub fn get(&self, engine: &Engine, key: &Bytes) -> Result<Option<Bytes>, EngineError> {
        if let Some(v) = self.values.get(key) {
            return Ok(v.clone());
        }
        let deleted = self.deleted_ranges.iter().any(|(s, e)| key >= s && key < e);
        if deleted {
            return Ok(None);
        }
        Ok(engine.get(CF_DEFAULT, key)?.map(Bytes::from))
    }

    fn put(&mut self, key: Bytes, value: Option<Bytes>) {
        self.values.insert(key, value);
    }

    fn delete_range(&mut self, start: Bytes, end: Bytes) {
        let keys: Vec<Bytes> = self
            .values
            .range(start.clone()..end.clone())
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.values.insert(k, None);
        }
        self.deleted_ranges.push((start, end));
    }

    /// Forgets everything (after the batch was written).
    pub fn clear(&mut self) {
        self.values.clear();
        self.deleted_ranges.clear();
    }
}

/// Why a command was not applied (every replica decides alike).
pub type Refusal = flotilla_proto::kvrpcpb::RegionError;

/// Applies `cmd` to `region` into `wb`: all of its requests, or — if the
/// command is stale for the region — none, with the region error.
pub fn execute(
    engine: &Engine,
    region: &metapb::Region,
    cmd: raft_cmdpb::RaftCmdRequest,
    wb: &mut WriteBatch,
    overlay: &mut Overlay,
) -> Result<Result<WriteResponse, Refusal>, EngineError> {
    if let Some(refusal) = check_epoch(region, &cmd) {
        return Ok(Err(refusal));
    }
    let mut resp = WriteResponse::default();
    let cf = engine.cf(CF_DEFAULT);
    for req in cmd.requests {
        match req.cmd {
            Some(Cmd::Put(p)) => {
                wb.put_cf(cf, &p.key, &p.value);
                overlay.put(p.key, Some(p.value));
            }
            Some(Cmd::Delete(d)) => {
                wb.delete_cf(cf, &d.key);
                overlay.put(d.key, None);
            }
            Some(Cmd::DeleteRange(d)) => {
                let end = if d.end_key.is_empty() {
                    region_end(region)
                } else {
                    d.end_key
                };
                if d.start_key < end {
                    wb.delete_range_cf(cf, &d.start_key, &end);
                    overlay.delete_range(d.start_key, end);
                }
            }
            Some(Cmd::Cas(c)) => {
                let current = overlay.get(engine, &c.key)?;
                let succeed = match &current {
                    None => c.previous_not_exist,
                    Some(v) => !c.previous_not_exist && *v == c.previous_value,
                };
                if succeed {
                    wb.put_cf(cf, &c.key, &c.value);
                    overlay.put(c.key, Some(c.value));
                }
                resp.cas.push(CasOutcome {
                    succeed,
                    previous: current,
                });
            }
            None => {}
        }
    }
    Ok(Ok(resp))
}

/// The exclusive end of `region`'s range as a concrete key.
pub fn region_end(region: &metapb::Region) -> Bytes {
    if region.end_key.is_empty() {
        Bytes::from(crate::snap::format::key_space_end())
    } else {
        region.end_key.clone()
    }
}

/// A command proposed against an older range (the region split or merged
/// since) must not apply: its keys may belong to another region now.
fn check_epoch(region: &metapb::Region, cmd: &raft_cmdpb::RaftCmdRequest) -> Option<Refusal> {
    if crate::planted::on(crate::planted::Bug::SkipEpochCheck) {
        return None;
    }
    let current = region.region_epoch.unwrap_or_default();
    let proposed = cmd
        .header
        .as_ref()
        .and_then(|h| h.region_epoch)
        .unwrap_or_default();
    (proposed.version != current.version)
        .then(|| region_error::epoch_not_match(Some(&proposed), vec![region.clone()]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_cmdpb::{CompareAndSwapRequest, DeleteRangeRequest, PutRequest, Request};

    fn put(k: &str, v: &str) -> Request {
        Request {
            cmd: Some(Cmd::Put(PutRequest {
                key: Bytes::copy_from_slice(k.as_bytes()),
                value: Bytes::copy_from_slice(v.as_bytes()),
            })),
        }
    }

    fn cas(k: &str, prev: Option<&str>, v: &str) -> Request {
        Request {
            cmd: Some(Cmd::Cas(CompareAndSwapRequest {
                key: Bytes::copy_from_slice(k.as_bytes()),
                value: Bytes::copy_from_slice(v.as_bytes()),
                previous_value: Bytes::copy_from_slice(prev.unwrap_or("").as_bytes()),
                previous_not_exist: prev.is_none(),
            })),
        }
    }

    fn cmd(requests: Vec<Request>) -> raft_cmdpb::RaftCmdRequest {
        raft_cmdpb::RaftCmdRequest {
            header: None,
            requests,
            admin: None,
        }
    }

    #[test]
    fn compare_and_swap_sees_the_unflushed_batch() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let region = metapb::Region::default();
        let mut wb = WriteBatch::default();
        let mut overlay = Overlay::default();
        let run = |reqs, wb: &mut WriteBatch, overlay: &mut Overlay| {
            execute(&engine, &region, cmd(reqs), wb, overlay)
                .unwrap()
                .unwrap()
        };
        let r = run(vec![cas("k", None, "1")], &mut wb, &mut overlay);
        assert!(r.cas[0].succeed);
        let r = run(
            vec![cas("k", None, "2"), cas("k", Some("1"), "3")],
            &mut wb,
            &mut overlay,
        );
        assert_eq!(
            r.cas,
            vec![
                CasOutcome {
                    succeed: false,
                    previous: Some(Bytes::from("1"))
                },
                CasOutcome {
                    succeed: true,
                    previous: Some(Bytes::from("1"))
                }
            ]
        );
        let delete = Request {
            cmd: Some(Cmd::DeleteRange(DeleteRangeRequest {
                start_key: Bytes::from("a"),
                end_key: Bytes::new(),
            })),
        };
        let r = run(
            vec![put("z", "x"), delete, cas("k", None, "4")],
            &mut wb,
            &mut overlay,
        );
        assert!(r.cas[0].succeed, "the range delete removed k");
        engine.write(wb, false).unwrap();
        assert_eq!(engine.get(CF_DEFAULT, b"k").unwrap(), Some(b"4".to_vec()));
        assert_eq!(engine.get(CF_DEFAULT, b"z").unwrap(), None);
    }

    #[test]
    fn a_stale_epoch_applies_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let region = metapb::Region {
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 1,
                version: 2,
            }),
            ..Default::default()
        };
        let mut c = cmd(vec![put("k", "v")]);
        c.header = Some(raft_cmdpb::RaftCmdHeader {
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 1,
                version: 1,
            }),
            ..Default::default()
        });
        let mut wb = WriteBatch::default();
        let refused = execute(&engine, &region, c, &mut wb, &mut Overlay::default()).unwrap();
        assert!(refused.unwrap_err().epoch_not_match.is_some());
        assert!(wb.is_empty());
    }
}
