//! `predict.h5` for `-p/--predict-all`: what OpenSpliceAI 0.0.7 means to write there (its
//! `get_prediction`), streamed. `predictions` is float32 (N_windows, 3, 5000): the ensemble's mean softmax
//! of every window of every scored record, records in input order, each record's windows in order.
//! Beside it, `NAME` (variable-length UTF-8: each record's name as upstream's NAME, the header plus `:+`)
//! and `LEN` (int64: windows per record) map rows to records; upstream keeps those two in `datafile.h5`
//! and its in-memory `LEN`. Rows go to disk batch by batch; the leading dimension is fixed when the file is
//! closed, so no pass over the input is needed to size it.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::atomic::AtomicFile;
use crate::h5write::{Elem, H5Writer, StringColumn};
use crate::model::SEQ_LEN;

/// `predict.h5` being written to a temporary file; it appears only on [`PredictionsFile::commit`].
pub(crate) struct PredictionsFile {
    guard: AtomicFile,
    h5: H5Writer,
    names: Vec<String>,
    lens: Vec<i64>,
}

impl PredictionsFile {
    /// Starts `path` with an open `predictions` dataset.
    pub(crate) fn create(path: &Path) -> std::io::Result<Self> {
        let (guard, file) = AtomicFile::create(path)?;
        let mut h5 = H5Writer::create(file)?;
        h5.begin_rows("predictions", Elem::F32, &[3, SEQ_LEN as u64])?;
        Ok(Self {
            guard,
            h5,
            names: Vec::new(),
            lens: Vec::new(),
        })
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.guard.path().to_path_buf()
    }

    /// Notes a record whose `windows` rows follow (in order, through [`PredictionsFile::rows`]).
    pub(crate) fn record(&mut self, name: &str, windows: usize) {
        self.names.push(name.to_string());
        self.lens.push(windows as i64);
    }

    /// Appends scored windows: `y` is (n, 3, 5000) row-major.
    pub(crate) fn rows(&mut self, y: &[f32]) -> std::io::Result<()> {
        self.h5.append_f32(y)
    }

    /// Closes `predictions`, writes `NAME` and `LEN`, and puts the file in place.
    pub(crate) fn commit(mut self) -> std::io::Result<()> {
        self.h5.end_array()?;
        let mut col = StringColumn::default();
        for n in &self.names {
            self.h5.push_string(&mut col, n.as_bytes())?;
        }
        self.h5.finish_strings("NAME", col)?;
        let lens: Vec<u8> = self.lens.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.h5
            .write_array("LEN", Elem::I64, vec![self.lens.len() as u64], &lens)?;
        let file: File = self.h5.finish()?;
        Ok(self.guard.commit(file)?)
    }
}
