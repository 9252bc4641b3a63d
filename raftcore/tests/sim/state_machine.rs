//! The replicated state machine: the ordered list of applied normal entries
//! (each a unique `u64` payload) with a running hash. Its encoding is the
//! snapshot data.

use bytes::Bytes;

/// What a node has applied.
///
/// Invariant: `entries` are in increasing index order, all `<= applied`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMachine {
    /// The last log index applied (normal, empty or configuration entry).
    pub applied: u64,
    /// `(index, payload)` of every applied normal entry with a payload.
    pub entries: Vec<(u64, u64)>,
    /// A hash over `entries`, checked when decoding a snapshot.
    pub hash: u64,
}

const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fold(hash: u64, index: u64, payload: u64) -> u64 {
    let h = (hash ^ index).wrapping_mul(FNV_PRIME);
    (h ^ payload).wrapping_mul(FNV_PRIME)
}

/// The payload of a normal entry written by the workload.
pub fn decode_payload(data: &[u8]) -> Result<u64, String> {
    let bytes: [u8; 8] = data
        .try_into()
        .map_err(|_| format!("entry payload of {} bytes, expected 8", data.len()))?;
    Ok(u64::from_le_bytes(bytes))
}

impl StateMachine {
    /// Applies the entry at `index`: a payload, or nothing (an empty or a
    /// configuration entry).
    ///
    /// # Errors
    /// If `index` does not follow the last applied entry.
    pub fn apply(&mut self, index: u64, payload: Option<u64>) -> Result<(), String> {
        if index != self.applied + 1 {
            return Err(format!(
                "applied entry {index} right after {} (gap or repeat)",
                self.applied
            ));
        }
        self.applied = index;
        if let Some(p) = payload {
            self.entries.push((index, p));
            self.hash = fold(self.hash, index, p);
        }
        Ok(())
    }

    /// The number of payloads at indexes `<= index`.
    pub fn count_upto(&self, index: u64) -> usize {
        self.entries.partition_point(|&(i, _)| i <= index)
    }

    /// Whether `payload` is applied (searching from the newest).
    pub fn contains(&self, payload: u64) -> bool {
        self.entries.iter().rev().any(|&(_, p)| p == payload)
    }

    /// The snapshot image.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(24 + 16 * self.entries.len());
        out.extend_from_slice(&self.applied.to_le_bytes());
        out.extend_from_slice(&self.hash.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for &(i, p) in &self.entries {
            out.extend_from_slice(&i.to_le_bytes());
            out.extend_from_slice(&p.to_le_bytes());
        }
        out.into()
    }

    /// Restores an image written by [`encode`](Self::encode), checking its
    /// hash and order.
    pub fn decode(data: &[u8]) -> Result<StateMachine, String> {
        let words: Vec<u64> = data
            .chunks(8)
            .map(decode_payload)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("snapshot image: {e}"))?;
        let (&[applied, hash, n], rest) = words.split_at(3.min(words.len())) else {
            return Err("snapshot image: short header".into());
        };
        if rest.len() as u64 != 2 * n {
            return Err(format!("snapshot image: {n} entries, {} words", rest.len()));
        }
        let mut sm = StateMachine::default();
        for pair in rest.chunks(2) {
            let (i, p) = (pair[0], pair[1]);
            if sm.entries.last().is_some_and(|&(last, _)| last >= i) || i > applied {
                return Err(format!("snapshot image: entry index {i} out of order"));
            }
            sm.entries.push((i, p));
            sm.hash = fold(sm.hash, i, p);
        }
        if sm.hash != hash {
            return Err("snapshot image: hash mismatch".into());
        }
        sm.applied = applied;
        Ok(sm)
    }
}
