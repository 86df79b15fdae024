//! Output files that appear only when complete: written to a temporary file beside the target and
//! renamed over it on commit; dropped without commit, the temporary file is removed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::checkpoint::atomic::AtomicFile;

/// A buffered writer to a temporary file that becomes `path` on [`AtomicOutput::commit`].
pub struct AtomicOutput {
    writer: Option<BufWriter<File>>,
    file: AtomicFile,
}

impl AtomicOutput {
    /// Creates the temporary file beside `path` ([`AtomicFile`]'s policy).
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let (file, f) = AtomicFile::create(path)?;
        Ok(Self {
            writer: Some(BufWriter::with_capacity(1 << 20, f)),
            file,
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Flushes, syncs and renames the temporary file over the final path.
    pub fn commit(mut self) -> std::io::Result<()> {
        let w = self.writer.take().expect("writer present until commit");
        let f = w.into_inner().map_err(|e| e.into_error())?;
        Ok(self.file.commit(f)?)
    }
}

impl Write for AtomicOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.as_mut().expect("not committed").write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}
