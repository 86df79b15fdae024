//! FASTA input: a streaming reader (one record in memory at a time, the header kept whole as pyfaidx's
//! `long_name`) and an indexed reader (a `.fai` index built in memory by one pass, then region reads, so
//! memory is bounded by the region, not the genome).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use noodles_core::{Position, Region};
use noodles_fasta as fasta;

/// Errors reading a FASTA file.
#[derive(Debug, thiserror::Error)]
pub enum FastaError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Open(#[from] crate::genome::GenomeError),
    #[error("{}:{line}: expected a FASTA header line starting with '>'", path.display())]
    NoHeader { path: PathBuf, line: usize },
    #[error("{}: not a valid FASTA file for indexing: {source}", path.display())]
    Index {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no sequence named `{name}`", path.display())]
    NoSequence { path: PathBuf, name: String },
}

/// One FASTA record: the whole header line after `>` and the upper-cased sequence.
#[derive(Debug, Clone)]
pub struct FastaRecord {
    pub header: String,
    pub seq: Vec<u8>,
}

/// Reads records one at a time (plain, gzip or bgzip, through `genome::open_text`). Unlike
/// `genome::FastaReader` (create-data), the name is the whole header line: upstream's `predict` names
/// records by pyfaidx's `long_name` and its BED names depend on it.
pub struct FastaReader {
    path: PathBuf,
    inner: Box<dyn BufRead>,
    line: usize,
    pending_header: Option<String>,
    buf: String,
}

impl FastaReader {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self, FastaError> {
        Ok(Self {
            path: path.to_path_buf(),
            inner: crate::genome::open_text(path)?,
            line: 0,
            pending_header: None,
            buf: String::new(),
        })
    }

    fn read_line(&mut self) -> Result<bool, FastaError> {
        self.buf.clear();
        let n = self
            .inner
            .read_line(&mut self.buf)
            .map_err(|source| FastaError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.line += 1;
        while self.buf.ends_with('\n') || self.buf.ends_with('\r') {
            self.buf.pop();
        }
        Ok(n > 0)
    }

    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<FastaRecord>, FastaError> {
        let header = match self.pending_header.take() {
            Some(h) => h,
            None => loop {
                if !self.read_line()? {
                    return Ok(None);
                }
                if let Some(h) = self.buf.strip_prefix('>') {
                    break h.trim_end().to_string();
                }
                if !self.buf.trim().is_empty() {
                    return Err(FastaError::NoHeader {
                        path: self.path.clone(),
                        line: self.line,
                    });
                }
            },
        };
        let mut seq = Vec::new();
        while self.read_line()? {
            if let Some(h) = self.buf.strip_prefix('>') {
                self.pending_header = Some(h.trim_end().to_string());
                break;
            }
            seq.extend(self.buf.trim_end().bytes().map(|b| b.to_ascii_uppercase()));
        }
        Ok(Some(FastaRecord { header, seq }))
    }
}

/// Random access to the sequences of a FASTA file by name (the first word of the header, as pyfaidx's
/// keys), through an index built in memory.
pub struct IndexedFasta {
    path: PathBuf,
    index: fasta::fai::Index,
    reader: fasta::io::Reader<BufReader<File>>,
}

impl IndexedFasta {
    /// Indexes `path` by one pass over it.
    pub fn open(path: &Path) -> Result<Self, FastaError> {
        let io = |source| FastaError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let mut indexer = fasta::io::Indexer::new(BufReader::with_capacity(1 << 20, file));
        let mut records = Vec::new();
        loop {
            match indexer.index_record() {
                Ok(Some(r)) => records.push(r),
                Ok(None) => break,
                Err(e) => {
                    return Err(FastaError::Index {
                        path: path.to_path_buf(),
                        source: std::io::Error::other(e),
                    })
                }
            }
        }
        let reader = fasta::io::Reader::new(BufReader::new(File::open(path).map_err(io)?));
        Ok(Self {
            path: path.to_path_buf(),
            index: fasta::fai::Index::from(records),
            reader,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sequence names in file order.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.index
            .as_ref()
            .iter()
            .map(|r| String::from_utf8_lossy(r.name()).into_owned())
    }

    /// Length of sequence `name`, `None` when absent.
    pub fn len(&self, name: &str) -> Option<u64> {
        self.index
            .as_ref()
            .iter()
            .find(|r| r.name() == name.as_bytes())
            .map(|r| r.length())
    }

    /// Bases `[start, end)` (0-based, clipped to the sequence) of `name`, in the file's case.
    pub fn fetch(&mut self, name: &str, start: u64, end: u64) -> Result<Vec<u8>, FastaError> {
        let len = self.len(name).ok_or_else(|| FastaError::NoSequence {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        let end = end.min(len);
        if start >= end {
            return Ok(Vec::new());
        }
        let io = |source| FastaError::Io {
            path: self.path.clone(),
            source,
        };
        let interval = Position::try_from(start as usize + 1)
            .and_then(|s| Position::try_from(end as usize).map(|e| s..=e))
            .map_err(|e| io(std::io::Error::other(e)))?;
        let region = Region::new(name, interval);
        let rec = self.reader.query(&self.index, &region).map_err(io)?;
        Ok(rec.sequence().as_ref().to_vec())
    }
}
