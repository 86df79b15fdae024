//! A streaming FASTA reader with Biopython 1.88's `SimpleFastaParser` rules: the id is the first
//! whitespace-delimited word of the header, text before the first `>` is skipped, each sequence line is
//! right-stripped and spaces and `\r` are removed. noodles' FASTA reader keeps the whole header line as the name
//! and rejects some inputs Biopython accepts, so the few lines here decide ids exactly as upstream does.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::{open_text, GenomeError};

/// One FASTA record.
pub struct FastaRecord {
    pub id: String,
    pub seq: Vec<u8>,
}

/// Reads records one at a time, so only one sequence is in memory; a repeated id is an error.
pub struct FastaReader {
    path: PathBuf,
    input: Box<dyn BufRead + Send>,
    line: Vec<u8>,
    line_no: usize,
    pending_header: Option<(String, usize)>,
    seen: HashSet<String>,
    started: bool,
}

impl FastaReader {
    pub fn open(path: &Path) -> Result<Self, GenomeError> {
        Ok(Self {
            path: path.to_path_buf(),
            input: open_text(path)?,
            line: Vec::new(),
            line_no: 0,
            pending_header: None,
            seen: HashSet::new(),
            started: false,
        })
    }

    fn read_line(&mut self) -> Result<bool, GenomeError> {
        self.line.clear();
        let n = self
            .input
            .read_until(b'\n', &mut self.line)
            .map_err(|source| GenomeError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.line_no += 1;
        Ok(n > 0)
    }

    fn header_id(&self) -> String {
        let title = &self.line[1..];
        let word = title
            .split(|b| b.is_ascii_whitespace())
            .find(|w| !w.is_empty())
            .unwrap_or(&[]);
        String::from_utf8_lossy(word).into_owned()
    }

    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<FastaRecord>, GenomeError> {
        if !self.started {
            self.started = true;
            while self.read_line()? {
                if self.line.first() == Some(&b'>') {
                    self.pending_header = Some((self.header_id(), self.line_no));
                    break;
                }
            }
        }
        let Some((id, line)) = self.pending_header.take() else {
            return Ok(None);
        };
        if !self.seen.insert(id.clone()) {
            return Err(GenomeError::DuplicateRecord {
                path: self.path.clone(),
                id,
                line,
            });
        }
        let mut seq = Vec::new();
        while self.read_line()? {
            if self.line.first() == Some(&b'>') {
                self.pending_header = Some((self.header_id(), self.line_no));
                break;
            }
            let trimmed = self.line.trim_ascii_end();
            seq.extend(trimmed.iter().copied().filter(|&b| b != b' ' && b != b'\r'));
        }
        Ok(Some(FastaRecord { id, seq }))
    }
}
