//! Receiving a snapshot file: chunks go to a `.tmp` file, checked against
//! the announced size and checksum before it takes its final name.

use std::fmt;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use super::manager::{persist, Claim};
use super::{SnapError, SnapKey, SnapshotData};

/// Writes one incoming snapshot file. Dropping it unfinished (an error, a
/// broken stream) removes its `.tmp` file.
pub struct SnapWriter {
    key: SnapKey,
    /// `None` once a write failed: what is on disk is then unknown.
    file: Option<BufWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
    hasher: crc32fast::Hasher,
    /// Invariant: `written_bytes <= expected_size` and equals the bytes
    /// handed to `file`, all of them hashed.
    written_bytes: u64,
    expected_size: u64,
    expected_checksum: u32,
    finished: bool,
    _claim: Claim,
}

impl SnapWriter {
    pub(super) fn new(
        claim: Claim,
        file: File,
        tmp: PathBuf,
        path: PathBuf,
        expected: &SnapshotData,
    ) -> SnapWriter {
        SnapWriter {
            key: claim.key(),
            file: Some(BufWriter::new(file)),
            tmp,
            path,
            hasher: crc32fast::Hasher::new(),
            written_bytes: 0,
            expected_size: expected.file_size,
            expected_checksum: expected.checksum,
            finished: false,
            _claim: claim,
        }
    }

    /// The snapshot being received.
    pub fn key(&self) -> SnapKey {
        self.key
    }

    /// Bytes received so far.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    /// Appends a chunk. More bytes in all than announced is
    /// [`SnapError::TooLarge`] (and nothing of this chunk is written).
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), SnapError> {
        let total = self.written_bytes.saturating_add(chunk.len() as u64);
        if total > self.expected_size {
            return Err(SnapError::TooLarge {
                key: self.key,
                limit_bytes: self.expected_size,
            });
        }
        let file = self.file.as_mut().ok_or(SnapError::Aborted(self.key))?;
        if let Err(e) = file.write_all(chunk) {
            self.file = None;
            return Err(SnapError::io(&self.tmp)(e));
        }
        self.hasher.update(chunk);
        self.written_bytes = total;
        Ok(())
    }

    /// Checks the received bytes against the announced size and checksum,
    /// fsyncs the file and gives it its final name. On error the `.tmp`
    /// file is removed and no final file appears.
    pub fn finish(mut self) -> Result<(), SnapError> {
        self.check_complete()?;
        let file = self.file.take().ok_or(SnapError::Aborted(self.key))?;
        let file = file
            .into_inner()
            .map_err(|e| SnapError::io(&self.tmp)(e.into_error()))?;
        file.sync_all().map_err(SnapError::io(&self.tmp))?;
        persist(&self.tmp, &self.path)?;
        self.finished = true;
        Ok(())
    }

    fn check_complete(&self) -> Result<(), SnapError> {
        if self.written_bytes != self.expected_size {
            let detail = format!(
                "received {} of {} bytes",
                self.written_bytes, self.expected_size
            );
            return Err(SnapError::corrupt(self.key.to_string(), detail));
        }
        let checksum = self.hasher.clone().finalize();
        if checksum != self.expected_checksum {
            let detail = format!(
                "checksum {checksum:#010x}, {:#010x} announced",
                self.expected_checksum
            );
            return Err(SnapError::corrupt(self.key.to_string(), detail));
        }
        Ok(())
    }
}

impl fmt::Debug for SnapWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapWriter")
            .field("key", &self.key)
            .field("written_bytes", &self.written_bytes)
            .field("expected_size", &self.expected_size)
            .finish_non_exhaustive()
    }
}

impl Drop for SnapWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Close before removing; errors are moot, the file is garbage
            // (and `SnapManager::new` removes it after a crash anyway).
            drop(self.file.take());
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
