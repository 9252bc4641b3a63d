//! The commit-throughput workload shared by every Raft implementation's
//! driver: "commit throughput of a 3-node in-memory Raft group: proposals of
//! 1 KiB payload batched 64 at a time, messages delivered in memory, measured
//! in entries/second."
//!
//! Every driver takes these constants rather than its own, so that the
//! figures of the implementations measure the same work.

/// Number of voters in the group. Node ids are `1..=GROUP_SIZE`, and node 1
/// is always the one elected leader.
pub const GROUP_SIZE: u64 = 3;

/// Proposals made on the leader before the group is driven to commit them.
pub const BATCH: usize = 64;

/// Size in bytes of each proposal's payload (1 KiB).
pub const PAYLOAD_BYTES: usize = 1024;

/// The payload every proposal carries: [`PAYLOAD_BYTES`] bytes of a fixed,
/// non-constant pattern, so that no implementation benefits from all-zero data.
pub fn payload() -> Vec<u8> {
    (0..PAYLOAD_BYTES)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(7))
        .collect()
}

/// Index of node `id` (1-based) in a driver's node list.
pub fn node_slot(id: u64) -> usize {
    assert!((1..=GROUP_SIZE).contains(&id), "no node {id}");
    (id - 1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_one_kib() {
        assert_eq!(payload().len(), 1024);
    }
}
