//! Output files that appear only when complete: written to a temporary file beside the target and
//! renamed over it on commit; dropped without commit, the temporary file is removed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A temporary file `.<name>.tmp-<pid>` beside `path` that [`AtomicFile::commit`] renames over `path`;
/// dropped before that, it is removed.
pub struct AtomicFile {
    path: PathBuf,
    tmp: Option<PathBuf>,
}

impl AtomicFile {
    /// Creates the temporary file and returns it with its guard.
    pub fn create(path: &Path) -> std::io::Result<(Self, File)> {
        let name = path
            .file_name()
            .ok_or_else(|| std::io::Error::other("the output path has no file name"))?
            .to_string_lossy()
            .into_owned();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&tmp)?;
        let guard = Self {
            path: path.to_path_buf(),
            tmp: Some(tmp),
        };
        Ok((guard, file))
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs `file` (the one [`AtomicFile::create`] returned, fully written) and renames it over the
    /// final path.
    pub fn commit(mut self, file: File) -> std::io::Result<()> {
        file.sync_all()?;
        drop(file);
        let tmp = self
            .tmp
            .as_ref()
            .expect("temporary path present until commit");
        std::fs::rename(tmp, &self.path)?;
        self.tmp = None;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// A buffered writer to a temporary file that becomes `path` on [`AtomicOutput::commit`].
pub struct AtomicOutput {
    writer: Option<BufWriter<File>>,
    file: AtomicFile,
}

impl AtomicOutput {
    /// Creates the temporary file `.<name>.tmp-<pid>` in `path`'s directory.
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
        self.file.commit(f)
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
