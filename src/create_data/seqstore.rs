//! Gene sequences spilled to a temporary file in the output directory while genes are extracted, read back one
//! record at a time when the outputs are written: memory holds the current chromosome and a few records, not every
//! record's sequence. The file is deleted when the store is dropped (success or failure).

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::CreateDataError;

/// Where one sequence lies in the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqRef {
    offset: u64,
    pub len: usize,
}

/// An append-then-read file of sequences.
pub struct SeqStore {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    reader: Mutex<File>,
    end: u64,
}

impl SeqStore {
    pub fn create(dir: &Path) -> Result<Self, CreateDataError> {
        let owner = crate::atomic::temp_owner(std::process::id());
        let path = dir.join(format!(".create-data-sequences.{owner}.0.tmp"));
        let io = |source| CreateDataError::Io {
            path: path.clone(),
            source,
        };
        let file = File::create(&path).map_err(io)?;
        let reader = File::open(&path).map_err(io)?;
        Ok(Self {
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            reader: Mutex::new(reader),
            path,
            end: 0,
        })
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> CreateDataError + '_ {
        |source| CreateDataError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends a sequence.
    pub fn append(&mut self, seq: &[u8]) -> Result<SeqRef, CreateDataError> {
        let r = SeqRef {
            offset: self.end,
            len: seq.len(),
        };
        let w = self
            .writer
            .as_mut()
            .expect("the store is still being written");
        if let Err(e) = w.write_all(seq) {
            return Err((self.io())(e));
        }
        self.end += seq.len() as u64;
        Ok(r)
    }

    /// Ends writing; reads may follow.
    pub fn seal(&mut self) -> Result<(), CreateDataError> {
        if let Some(mut w) = self.writer.take() {
            w.flush().map_err(self.io())?;
        }
        Ok(())
    }

    /// Reads one sequence back.
    pub fn read(&self, r: SeqRef) -> Result<Vec<u8>, CreateDataError> {
        let mut buf = vec![0u8; r.len];
        let mut f = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        f.seek(SeekFrom::Start(r.offset))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(self.io())?;
        Ok(buf)
    }
}

impl Drop for SeqStore {
    fn drop(&mut self) {
        self.writer = None;
        let _ = std::fs::remove_file(&self.path);
    }
}
