//! FASTA: one streaming reader over any `BufRead` (one record in memory at a time) with the two naming rules
//! upstream's commands depend on, and an indexed reader for random access by region.
//!
//! Upstream reads FASTA through two libraries whose rules differ, and its outputs depend on them, so the one
//! reader takes a [`Dialect`]: create-data's Biopython `SimpleFastaParser` (id = the header's first word,
//! text before the first `>` skipped, spaces and `\r` removed from sequence lines) and predict's pyfaidx
//! (name = the whole header line, which the BED names carry; text before the first header an error; sequence
//! lines right-trimmed and upper-cased). In both, and in the indexed reader, a repeated name is an error. noodles' reader keeps the whole header
//! and rejects some inputs Biopython accepts; it serves the indexed reader, where its rules are pyfaidx's.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use noodles_core::{Position, Region};
use noodles_fasta as fasta;

use super::{input, GenomeError};

/// Whose rules name records and clean sequence lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Biopython 1.88's `SimpleFastaParser` (create-data): the name is the first word of the header.
    Biopython,
    /// pyfaidx's `long_name` (predict): the name is the whole header line; sequences upper-cased.
    Pyfaidx,
}

/// One FASTA record.
#[derive(Debug, Clone)]
pub struct FastaRecord {
    /// The record's name under the reader's [`Dialect`].
    pub name: String,
    /// Line of the header (1-based).
    pub line: usize,
    pub seq: Vec<u8>,
}

/// Reads records one at a time from any `BufRead`.
pub struct FastaReader<R> {
    path: PathBuf,
    input: R,
    dialect: Dialect,
    line: Vec<u8>,
    line_no: usize,
    pending_header: Option<(String, usize)>,
    seen: HashSet<String>,
    started: bool,
}

impl FastaReader<Box<dyn BufRead + Send>> {
    /// Opens `path` (`-`: standard input; plain, gzip or bgzip).
    pub fn open(path: &Path, dialect: Dialect) -> Result<Self, GenomeError> {
        let input = input::open(path)?;
        Ok(Self::new(&input.name, input.reader, dialect))
    }
}

impl<R: BufRead> FastaReader<R> {
    /// Reads from `input`; `path` names it in messages.
    pub fn new(path: &Path, input: R, dialect: Dialect) -> Self {
        Self {
            path: path.to_path_buf(),
            input,
            dialect,
            line: Vec::new(),
            line_no: 0,
            pending_header: None,
            seen: HashSet::new(),
            started: false,
        }
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

    /// The name of the header on the current line (which starts with `>`).
    fn header_name(&self) -> String {
        let title = &self.line[1..];
        let name = match self.dialect {
            Dialect::Biopython => title
                .split(|b| b.is_ascii_whitespace())
                .find(|w| !w.is_empty())
                .unwrap_or(&[]),
            Dialect::Pyfaidx => title.trim_ascii_end(),
        };
        String::from_utf8_lossy(name).into_owned()
    }

    /// Finds the first header: Biopython skips any text before it, pyfaidx only blank lines.
    fn first_header(&mut self) -> Result<(), GenomeError> {
        while self.read_line()? {
            if self.line.first() == Some(&b'>') {
                self.pending_header = Some((self.header_name(), self.line_no));
                break;
            }
            if self.dialect == Dialect::Pyfaidx && !self.line.trim_ascii().is_empty() {
                return Err(GenomeError::NoHeader {
                    path: self.path.clone(),
                    line: self.line_no,
                });
            }
        }
        Ok(())
    }

    /// The next record, or `None` at the end of the input.
    pub fn next_record(&mut self) -> Result<Option<FastaRecord>, GenomeError> {
        if !self.started {
            self.started = true;
            self.first_header()?;
        }
        let Some((name, line)) = self.pending_header.take() else {
            return Ok(None);
        };
        if !self.seen.insert(name.clone()) {
            return Err(GenomeError::DuplicateRecord {
                path: self.path.clone(),
                id: name,
                line,
            });
        }
        let mut seq = Vec::new();
        while self.read_line()? {
            if self.line.first() == Some(&b'>') {
                self.pending_header = Some((self.header_name(), self.line_no));
                break;
            }
            let trimmed = self.line.trim_ascii_end();
            match self.dialect {
                Dialect::Biopython => {
                    seq.extend(trimmed.iter().copied().filter(|&b| b != b' ' && b != b'\r'))
                }
                Dialect::Pyfaidx => seq.extend(trimmed.iter().map(u8::to_ascii_uppercase)),
            }
        }
        Ok(Some(FastaRecord { name, line, seq }))
    }
}

/// Random access to the sequences of a FASTA file by name (the first word of the header, as pyfaidx's
/// The sequence lengths of the `.fai` index beside `fasta` (as `samtools faidx` writes it), when there is
/// one no older than the FASTA; `None` otherwise or when it cannot be read (it is only a hint, e.g. for a
/// progress bar's total).
pub fn fai_lengths(fasta: &Path) -> Option<Vec<u64>> {
    let mut fai = fasta.as_os_str().to_owned();
    fai.push(".fai");
    let fai = PathBuf::from(fai);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&fai)? < modified(fasta)? {
        return None;
    }
    let index = fasta::fai::fs::read(&fai).ok()?;
    Some(index.as_ref().iter().map(|r| r.length()).collect())
}

/// keys). A plain FASTA uses its `.fai` when there is one no older than it, else an index built in memory
/// by one pass (nothing is written beside the input). A bgzipped FASTA (`bgzip`, as `samtools faidx`
/// reads it) uses its `.fai` and `.gzi` the same way, each built in memory when absent or older than the
/// FASTA. Plain gzip cannot be read by region and is refused.
pub struct IndexedFasta {
    path: PathBuf,
    reader: fasta::io::IndexedReader<fasta::io::BufReader<File>>,
}

/// `path` + `.ext` (`g.fa.gz` → `g.fa.gz.fai`), as samtools names its indexes.
fn beside(path: &Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// The index file `path.ext` when it exists and is no older than `path` (an older one is ignored, with a
/// warning, and the index built in memory instead).
fn current_index(path: &Path, ext: &str) -> Option<PathBuf> {
    let idx = beside(path, ext);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let (i, f) = (modified(&idx)?, modified(path)?);
    if i < f {
        log::warn!(
            "{} is older than {}: ignored, the index is built in memory",
            idx.display(),
            path.display()
        );
        return None;
    }
    Some(idx)
}

/// The `.gzi` of a BGZF file built in memory: the compressed and uncompressed offsets of every non-empty
/// block after the first, read from the block headers (`BSIZE`) and trailers (`ISIZE`) without
/// decompressing.
fn build_gzi(path: &Path) -> std::io::Result<noodles_bgzf::gzi::Index> {
    use std::io::{Read, Seek, SeekFrom};
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut f = BufReader::new(File::open(path)?);
    let total = f.get_ref().metadata()?.len();
    let (mut compressed, mut uncompressed) = (0u64, 0u64);
    let mut entries = Vec::new();
    let mut header = [0u8; 12];
    while compressed < total {
        f.seek(SeekFrom::Start(compressed))?;
        f.read_exact(&mut header)?;
        if header[..4] != [0x1f, 0x8b, 8, 4] {
            return Err(bad("not a BGZF block (bgzip's format) at this offset"));
        }
        let xlen = u16::from_le_bytes([header[10], header[11]]) as usize;
        let mut extra = vec![0u8; xlen];
        f.read_exact(&mut extra)?;
        let mut bsize = None;
        let mut k = 0;
        while k + 4 <= xlen {
            let len = u16::from_le_bytes([extra[k + 2], extra[k + 3]]) as usize;
            if extra[k] == b'B' && extra[k + 1] == b'C' && len == 2 && k + 6 <= xlen {
                bsize = Some(u16::from_le_bytes([extra[k + 4], extra[k + 5]]) as u64 + 1);
            }
            k += 4 + len;
        }
        let size = bsize.ok_or_else(|| bad("a gzip member without BGZF's BC field"))?;
        let mut isize = [0u8; 4];
        f.seek(SeekFrom::Start(compressed + size - 4))?;
        f.read_exact(&mut isize)?;
        let isize = u32::from_le_bytes(isize) as u64;
        if compressed > 0 && isize > 0 {
            entries.push((compressed, uncompressed));
        }
        compressed += size;
        uncompressed += isize;
    }
    Ok(noodles_bgzf::gzi::Index::from(entries))
}

/// A `.fai` index built by one pass over `reader` (the text of `path`).
fn build_fai<R: BufRead>(path: &Path, reader: R) -> Result<fasta::fai::Index, GenomeError> {
    let mut indexer = fasta::io::Indexer::new(reader);
    let mut records = Vec::new();
    loop {
        match indexer.index_record() {
            Ok(Some(r)) => records.push(r),
            Ok(None) => break,
            Err(e) => {
                return Err(GenomeError::Index {
                    path: path.to_path_buf(),
                    source: std::io::Error::other(e),
                })
            }
        }
    }
    Ok(fasta::fai::Index::from(records))
}

impl IndexedFasta {
    /// Opens `path` for reads by region: plain, or bgzip with or without its `.fai`/`.gzi`. Standard
    /// input, pipes and plain gzip are refused with what to do instead.
    pub fn open(path: &Path) -> Result<Self, GenomeError> {
        let io = |source| GenomeError::Io {
            path: path.to_path_buf(),
            source,
        };
        if input::is_stdin(path) {
            return Err(GenomeError::Unsupported {
                path: path.to_path_buf(),
                message: "this FASTA is read by region and needs a file, not standard input".into(),
            });
        }
        if !std::fs::metadata(path).map_err(io)?.is_file() {
            let message =
                "this FASTA is read by region and needs a regular file it can read twice, \
                           not a pipe or process substitution: write it to a file first";
            return Err(GenomeError::Unsupported {
                path: path.to_path_buf(),
                message: message.into(),
            });
        }
        let read_fai = |fai: &Path| {
            fasta::fai::fs::read(fai).map_err(|source| GenomeError::Index {
                path: fai.to_path_buf(),
                source,
            })
        };
        let compression = input::open(path)?.compression;
        let (index, inner) = match compression {
            input::Compression::Gzip => {
                return Err(GenomeError::Unsupported {
                    path: path.to_path_buf(),
                    message: "this FASTA is gzip-compressed, but it is read by region, which needs \
                              plain text or bgzip here (plain gzip has no random access): decompress \
                              it (gzip -dc FILE > FILE.fa) and pass the plain file, or recompress it \
                              with bgzip (`samtools faidx` then writes its .fai and .gzi)"
                        .into(),
                });
            }
            input::Compression::Bgzip => {
                let gzi = match current_index(path, "gzi") {
                    Some(p) => {
                        noodles_bgzf::gzi::fs::read(&p).map_err(|source| GenomeError::Index {
                            path: p.clone(),
                            source,
                        })?
                    }
                    None => build_gzi(path).map_err(|source| GenomeError::Index {
                        path: path.to_path_buf(),
                        source,
                    })?,
                };
                let index = match current_index(path, "fai") {
                    Some(p) => read_fai(&p)?,
                    None => build_fai(path, input::open(path)?.reader)?,
                };
                let file = File::open(path).map_err(io)?;
                let bgzf = noodles_bgzf::io::IndexedReader::new(file, gzi);
                (index, fasta::io::BufReader::Bgzf(bgzf))
            }
            input::Compression::Plain => {
                let index = match current_index(path, "fai") {
                    Some(p) => read_fai(&p)?,
                    None => {
                        let file = File::open(path).map_err(io)?;
                        build_fai(path, BufReader::with_capacity(1 << 20, file))?
                    }
                };
                let file = File::open(path).map_err(io)?;
                (
                    index,
                    fasta::io::BufReader::Uncompressed(BufReader::new(file)),
                )
            }
        };
        let mut seen = HashSet::new();
        if let Some(dup) = index.as_ref().iter().find(|r| !seen.insert(r.name())) {
            let id = String::from_utf8_lossy(dup.name()).into_owned();
            return Err(GenomeError::DuplicateRecord {
                path: path.to_path_buf(),
                line: second_header_line(path, &id).map_err(io)?,
                id,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            reader: fasta::io::IndexedReader::new(inner, index),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sequence names in file order.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.reader
            .index()
            .as_ref()
            .iter()
            .map(|r| String::from_utf8_lossy(r.name()).into_owned())
    }

    /// Sequence names and lengths in file order.
    pub fn contigs(&self) -> Vec<(String, u64)> {
        self.reader
            .index()
            .as_ref()
            .iter()
            .map(|r| (String::from_utf8_lossy(r.name()).into_owned(), r.length()))
            .collect()
    }

    /// Length of sequence `name`, `None` when absent.
    pub fn len(&self, name: &str) -> Option<u64> {
        self.reader
            .index()
            .as_ref()
            .iter()
            .find(|r| r.name() == name.as_bytes())
            .map(|r| r.length())
    }

    /// Bases `[start, end)` (0-based, clipped to the sequence) of `name`, in the file's case.
    pub fn fetch(&mut self, name: &str, start: u64, end: u64) -> Result<Vec<u8>, GenomeError> {
        let len = self.len(name).ok_or_else(|| GenomeError::NoSequence {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        let end = end.min(len);
        if start >= end {
            return Ok(Vec::new());
        }
        let io = |source| GenomeError::Io {
            path: self.path.clone(),
            source,
        };
        let interval = Position::try_from(start as usize + 1)
            .and_then(|s| Position::try_from(end as usize).map(|e| s..=e))
            .map_err(|e| io(std::io::Error::other(e)))?;
        let region = Region::new(name, interval);
        let rec = self.reader.query(&region).map_err(io)?;
        Ok(rec.sequence().as_ref().to_vec())
    }
}

/// The line of the second header whose first word is `name` (for the message about a repeated name).
fn second_header_line(path: &Path, name: &str) -> std::io::Result<usize> {
    let mut seen = 0;
    let text = input::open(path).map_err(|e| std::io::Error::other(e.to_string()))?;
    for (i, line) in text.reader.split(b'\n').enumerate() {
        let line = line?;
        let first_word = line
            .strip_prefix(b">")
            .and_then(|t| t.split(|b| b.is_ascii_whitespace()).next());
        if first_word == Some(name.as_bytes()) {
            seen += 1;
            if seen == 2 {
                return Ok(i + 1);
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8], dialect: Dialect) -> Result<Vec<(String, String)>, GenomeError> {
        let mut r = FastaReader::new(Path::new("t.fa"), text, dialect);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push((rec.name, String::from_utf8(rec.seq).unwrap()));
        }
        Ok(out)
    }

    #[test]
    fn each_dialect_names_records_and_cleans_lines_its_way() {
        let text = b"\n>chr1 desc here \nAC GT\r\nacgt \n>chr2\n\nNN\n";
        let name_seq = |n: &str, q: &str| (n.to_string(), q.to_string());
        let cases = [
            // Biopython: first word; spaces and \r removed, case kept.
            (
                Dialect::Biopython,
                [name_seq("chr1", "ACGTacgt"), name_seq("chr2", "NN")],
            ),
            // pyfaidx: the whole header; lines right-trimmed, upper-cased.
            (
                Dialect::Pyfaidx,
                [
                    name_seq("chr1 desc here", "AC GTACGT"),
                    name_seq("chr2", "NN"),
                ],
            ),
        ];
        for (dialect, want) in cases {
            assert_eq!(read(text, dialect).unwrap(), want, "{dialect:?}");
        }
    }

    #[test]
    fn each_dialect_refuses_its_way() {
        let cases = [
            // Biopython skips text before the first header but refuses a repeated id.
            (
                Dialect::Biopython,
                &b"junk\n>a\nA\n>a x\nC\n"[..],
                "duplicate FASTA record `a` (line 4)",
            ),
            // pyfaidx refuses text before the first header, and a repeated (whole) name.
            (Dialect::Pyfaidx, &b"ACGT\n>x\nA\n"[..], "t.fa:1:"),
            (
                Dialect::Pyfaidx,
                &b">a x\nA\n>b\nC\n>a x\nG\n"[..],
                "t.fa: duplicate FASTA record `a x` (line 5)",
            ),
        ];
        for (dialect, text, needle) in cases {
            let err = read(text, dialect).unwrap_err().to_string();
            assert!(err.contains(needle), "{dialect:?}: {err}");
        }
        // Whole names that differ are different records for pyfaidx.
        assert_eq!(
            read(b">a x\nA\n>a y\nC\n", Dialect::Pyfaidx).unwrap().len(),
            2
        );
    }

    #[test]
    fn the_indexed_reader_needs_a_plain_file() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("g.fa");
        std::fs::write(&plain, ">c1 x\nACGTAC\nGT\n").unwrap();
        let mut f = IndexedFasta::open(&plain).unwrap();
        assert_eq!(f.fetch("c1", 4, 8).unwrap(), b"ACGT");
        let gz = dir.path().join("g.fa.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&std::fs::read(&plain).unwrap()).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let err = IndexedFasta::open(&gz).err().unwrap().to_string();
        assert!(
            err.contains("g.fa.gz") && err.contains("decompress"),
            "{err}"
        );
        let dup = dir.path().join("dup.fa");
        std::fs::write(&dup, ">c1 x\nACGT\n>c2\nAC\n>c1 y\nGG\n").unwrap();
        let err = IndexedFasta::open(&dup).err().unwrap().to_string();
        assert!(
            err.contains("dup.fa: duplicate FASTA record `c1` (line 5)"),
            "{err}"
        );
        let err = IndexedFasta::open(Path::new("-"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("standard input"), "{err}");
    }

    /// A bgzipped FASTA of several BGZF blocks reads by region like the plain one, with the `.gzi` built
    /// in memory (equal to `bgzip -i`'s where bgzip is installed) or read from beside it.
    #[test]
    fn the_indexed_reader_reads_bgzip_across_blocks() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("g.fa");
        let mut text = String::from(">c1 x\n");
        for i in 0..15000 {
            text.push_str(&"ACGTTGCAAC"[i % 7..]);
            text.push_str(&"GATTACA"[..i % 5]);
            text.push_str(&"CCGGAATT"[i % 3..]);
            text.push('\n');
        }
        // Equal line lengths, as indexing needs: cut the text into 60-base lines.
        let seq: String = text.lines().skip(1).collect();
        let mut text = String::from(">c1 x\n");
        for chunk in seq.as_bytes().chunks(60) {
            text.push_str(std::str::from_utf8(chunk).unwrap());
            text.push('\n');
        }
        text.push_str(">c2\nACGTN\n");
        std::fs::write(&plain, &text).unwrap();
        let gz = dir.path().join("g.fa.gz");
        let mut w = noodles_bgzf::io::Writer::new(Vec::new());
        w.write_all(text.as_bytes()).unwrap();
        std::fs::write(&gz, w.finish().unwrap()).unwrap();
        let gzi = build_gzi(&gz).unwrap();
        assert!(gzi.as_ref().len() >= 2, "{} blocks", gzi.as_ref().len() + 1);
        let mut p = IndexedFasta::open(&plain).unwrap();
        let mut b = IndexedFasta::open(&gz).unwrap();
        assert_eq!(p.contigs(), b.contigs());
        let len = p.len("c1").unwrap();
        for (s, e) in [(0, 10), (65_000, 67_000), (len - 100, len + 5), (1, len)] {
            assert_eq!(p.fetch("c1", s, e).unwrap(), b.fetch("c1", s, e).unwrap());
        }
        assert_eq!(b.fetch("c2", 0, 5).unwrap(), b"ACGTN");
        assert!(!dir.path().join("g.fa.fai").exists() && !dir.path().join("g.fa.gz.gzi").exists());
        let out = std::process::Command::new("bgzip")
            .args(["-c", "-i", "-I"])
            .arg(dir.path().join("g.fa.gz.gzi"))
            .arg(&plain)
            .output();
        if let Some(o) = out.ok().filter(|o| o.status.success()) {
            std::fs::write(&gz, o.stdout).unwrap();
            let theirs = noodles_bgzf::gzi::fs::read(dir.path().join("g.fa.gz.gzi")).unwrap();
            let ours = build_gzi(&gz).unwrap();
            let nonempty: Vec<_> = theirs
                .as_ref()
                .iter()
                .filter(|e| e.1 < text.len() as u64)
                .copied()
                .collect();
            assert_eq!(ours.as_ref(), &nonempty[..]);
            let mut b = IndexedFasta::open(&gz).unwrap();
            assert_eq!(
                p.fetch("c1", 60_000, 70_000).unwrap(),
                b.fetch("c1", 60_000, 70_000).unwrap()
            );
        }
    }

    #[test]
    fn empty_input_has_no_records() {
        assert!(read(b"", Dialect::Biopython).unwrap().is_empty());
        assert!(read(b"", Dialect::Pyfaidx).unwrap().is_empty());
    }
}
