//! Reading a snapshot file in chunks for sending.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use bytes::Bytes;

use super::SnapError;

/// A snapshot file as a sequence of chunks: each `chunk_size` bytes but the
/// last, none empty. After an error it yields nothing more.
#[derive(Debug)]
pub struct SnapChunks {
    /// `None` once the file is exhausted or failed.
    file: Option<File>,
    path: PathBuf,
    chunk_size: usize,
    /// Bytes left according to the file's size at open; sizes buffers only.
    remaining_bytes: u64,
}

impl SnapChunks {
    pub(super) fn new(file: File, path: PathBuf, size_bytes: u64, chunk_size: usize) -> SnapChunks {
        SnapChunks {
            file: Some(file),
            path,
            chunk_size: chunk_size.max(1),
            remaining_bytes: size_bytes,
        }
    }

    /// Reads up to one chunk; an empty result means the end of the file.
    fn read_chunk(&mut self, file: &mut File) -> std::io::Result<Vec<u8>> {
        let want = self.remaining_bytes.min(self.chunk_size as u64);
        let mut chunk = Vec::with_capacity(want as usize);
        file.take(self.chunk_size as u64).read_to_end(&mut chunk)?;
        self.remaining_bytes = self.remaining_bytes.saturating_sub(chunk.len() as u64);
        Ok(chunk)
    }
}

impl Iterator for SnapChunks {
    type Item = Result<Bytes, SnapError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut file = self.file.take()?;
        match self.read_chunk(&mut file) {
            Ok(chunk) if !chunk.is_empty() => {
                self.file = Some(file);
                Some(Ok(Bytes::from(chunk)))
            }
            Ok(_) => None,
            Err(e) => Some(Err(SnapError::io(&self.path)(e))),
        }
    }
}
