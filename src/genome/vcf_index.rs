//! Which records of a VCF a run reads: all of them, those whose POS lies in `--region`/`--regions-file`
//! (bcftools' `--regions-overlap pos`), and of those the `--shard I/N` part. Records keep the file's
//! order and pass through as text ([`super::vcf`] parses every line).
//!
//! A bgzipped VCF with a `.tbi` or `.csi` index beside it (`tabix -p vcf`, `tabix -C -p vcf`) is read by
//! region: the index (noodles-tabix, noodles-csi) names the compressed blocks that can hold a region's
//! records, and only those are decompressed (noodles-bgzf seeks to them). Without an index the file is
//! scanned, with a warning. A shard is a run of the selected records cut by count ([`Shard::range`]),
//! which a first pass counts, so a shard needs a file (not standard input).
//!
//! With `--region` or `--shard` the records read must be sorted (grouped by contig, POS never going back
//! within one): an index presumes it, and the shards of a workflow are merged as sorted files.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use noodles_bgzf as bgzf;
use noodles_core::Position;
use noodles_csi::binning_index::index::reference_sequence::bin::Chunk;
use noodles_csi::binning_index::{merge_chunks, BinningIndex};

use super::input::Compression;
use super::region::{RegionError, Regions, Shard};
use super::vcf::{parse_record, VcfError, VcfReader, VcfRecord};

/// Why the selected records cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("{}: cannot read this index of {}", index.display(), vcf.display())]
    ReadIndex {
        index: PathBuf,
        vcf: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{}: the index is older than its VCF {} (the VCF changed after it was indexed); rebuild it \
         with `tabix -f -p vcf {}` (or `tabix -f -C -p vcf` for a .csi)",
        index.display(), vcf.display(), vcf.display()
    )]
    Stale { index: PathBuf, vcf: PathBuf },
    #[error(
        "{}: the index holds no sequence names (not a tabix-style index of a VCF); rebuild it with \
         `tabix -p vcf {}`",
        index.display(), vcf.display()
    )]
    NoNames { index: PathBuf, vcf: PathBuf },
    #[error(
        "{}: an index {} lies beside it, but the VCF is {}, not bgzip; compress it with `bgzip` and \
         index it again, or remove the index",
        vcf.display(), index.display(), compression.name()
    )]
    NotBgzf {
        vcf: PathBuf,
        index: PathBuf,
        compression: Compression,
    },
    #[error(
        "{at}: the VCF is not sorted: {message}; --region and --shard need the records of each contig \
         together and in POS order (sort it with `bcftools sort`)"
    )]
    Unsorted { at: String, message: String },
    #[error("{name}: {at}: {message}")]
    BadIndexed {
        name: String,
        at: String,
        message: String,
    },
    #[error("{name}: cannot read the blocks the index {} names", index.display())]
    Seek {
        name: String,
        index: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "--shard {shard}: a shard is cut from a count of the selected records, which needs a first \
         pass over the VCF, but {name} is not a regular file (standard input or a pipe can be read \
         only once); give the VCF as a file with -I"
    )]
    ShardOfStream { shard: Shard, name: String },
    #[error(transparent)]
    Region(#[from] RegionError),
}

/// The index beside `vcf`, if any: `<vcf>.tbi`, else `<vcf>.csi` (as tabix and bcftools look for them).
pub fn index_beside(vcf: &Path) -> Option<PathBuf> {
    if super::input::is_stdin(vcf) {
        return None;
    }
    ["tbi", "csi"].iter().find_map(|ext| {
        let mut name = OsString::from(vcf.as_os_str());
        name.push(".");
        name.push(ext);
        let p = PathBuf::from(name);
        p.is_file().then_some(p)
    })
}

/// A tabix (`.tbi`) or CSI (`.csi`) index of a bgzipped VCF.
pub struct VcfIndex {
    path: PathBuf,
    index: Box<dyn BinningIndex + Send>,
    names: Vec<String>,
}

impl VcfIndex {
    /// Reads `index` (a `.csi` by its name, else tabix) of `vcf`, refusing one older than the VCF.
    pub fn open(vcf: &Path, index: &Path) -> Result<Self, SelectError> {
        let read_err = |source| SelectError::ReadIndex {
            index: index.to_path_buf(),
            vcf: vcf.to_path_buf(),
            source,
        };
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified());
        let (v, i) = (mtime(vcf), mtime(index).map_err(read_err)?);
        if v.is_ok_and(|v| v > i) {
            return Err(SelectError::Stale {
                index: index.to_path_buf(),
                vcf: vcf.to_path_buf(),
            });
        }
        let csi = index
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csi"));
        let index_box: Box<dyn BinningIndex + Send> = if csi {
            Box::new(noodles_csi::fs::read(index).map_err(read_err)?)
        } else {
            Box::new(noodles_tabix::fs::read(index).map_err(read_err)?)
        };
        let names: Vec<String> = match index_box.header() {
            Some(h) => h
                .reference_sequence_names()
                .iter()
                .map(|n| String::from_utf8_lossy(n.as_ref()).into_owned())
                .collect(),
            None => Vec::new(),
        };
        if names.is_empty() && index_box.reference_sequences().next().is_some() {
            return Err(SelectError::NoNames {
                index: index.to_path_buf(),
                vcf: vcf.to_path_buf(),
            });
        }
        Ok(VcfIndex {
            path: index.to_path_buf(),
            index: index_box,
            names,
        })
    }

    /// The index file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contigs the index names, in the file's order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The compressed chunks that can hold the records of `regions`, merged and in file order.
    pub fn chunks(&self, regions: &Regions) -> io::Result<Vec<Chunk>> {
        // The largest position the index addresses (2^29 for tabix; CSI's own min_shift and depth).
        let max = 1u64 << (u32::from(self.index.min_shift()) + 3 * u32::from(self.index.depth()));
        let mut chunks = Vec::new();
        for (id, name) in self.names.iter().enumerate() {
            for &(start, end) in regions.spans(name) {
                if start >= max {
                    continue;
                }
                let pos = |p: u64| {
                    Position::try_from(p.max(1) as usize)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
                };
                let interval = if end >= max {
                    (pos(start)?..).into()
                } else {
                    (pos(start)?..=pos(end)?).into()
                };
                chunks.extend(self.index.query(id, interval)?);
            }
        }
        Ok(merge_chunks(&chunks))
    }
}

/// The check that records are grouped by contig and sorted by POS.
#[derive(Default)]
struct OrderCheck {
    contig: Option<String>,
    last: i64,
    done: HashSet<String>,
}

impl OrderCheck {
    fn check(&mut self, rec: &VcfRecord) -> Result<(), String> {
        match &self.contig {
            Some(c) if c == rec.chrom() => {
                if rec.pos < self.last {
                    return Err(format!(
                        "POS {} on contig `{c}` comes after POS {}",
                        rec.pos, self.last
                    ));
                }
            }
            current => {
                if self.done.contains(rec.chrom()) {
                    return Err(format!(
                        "contig `{}` appears again after contig `{}`",
                        rec.chrom(),
                        current.as_deref().unwrap_or_default()
                    ));
                }
                if let Some(c) = self.contig.take() {
                    self.done.insert(c);
                }
                self.contig = Some(rec.chrom().to_string());
            }
        }
        self.last = rec.pos;
        Ok(())
    }
}

/// The region blocks of a bgzipped VCF, read through its index.
struct Blocks {
    reader: bgzf::io::Reader<File>,
    chunks: std::vec::IntoIter<Chunk>,
    end: Option<bgzf::VirtualPosition>,
    index: PathBuf,
}

impl Blocks {
    /// The next data line of the chunks (`None` after the last), and where it starts.
    fn next_line(&mut self, name: &str) -> Result<Option<(String, u64)>, SelectError> {
        let err = |source| SelectError::Seek {
            name: name.to_string(),
            index: self.index.clone(),
            source,
        };
        loop {
            if let Some(end) = self.end {
                let at = self.reader.virtual_position();
                if at < end {
                    let mut line = String::new();
                    if self.reader.read_line(&mut line).map_err(err)? == 0 {
                        self.end = None;
                        continue;
                    }
                    while line.ends_with('\n') || line.ends_with('\r') {
                        line.pop();
                    }
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    return Ok(Some((line, u64::from(at))));
                }
            }
            let Some(chunk) = self.chunks.next() else {
                return Ok(None);
            };
            self.reader.seek(chunk.start()).map_err(err)?;
            self.end = Some(chunk.end());
        }
    }
}

/// The records a run reads (see the module's words), one at a time in file order.
pub struct SelectedVcf {
    /// The header; without an index, also the source of the records.
    reader: VcfReader,
    blocks: Option<Blocks>,
    regions: Regions,
    order: Option<OrderCheck>,
    /// Selected records still to pass over before this shard's first.
    skip: u64,
    /// Records this shard still gives (`None`: all).
    left: Option<u64>,
    /// The shard's count and the count over all shards, when known before the end.
    counts: Option<(u64, u64)>,
    shard: Shard,
}

impl SelectedVcf {
    /// Opens `path` (`-`: standard input) for the records `regions` (empty: all) and `shard` select.
    /// Checks the regions' contigs against the index when there is one, and counts the selected records
    /// first when a shard is asked for (or when there are regions and `path` is a file, for a total).
    pub fn open(path: &Path, regions: &Regions, shard: Shard) -> Result<Self, VcfError> {
        let active = !regions.is_all() || !shard.is_all();
        // Standard input, a pipe or a process substitution can be read only once: no counting pass.
        let regular =
            !super::input::is_stdin(path) && std::fs::metadata(path).is_ok_and(|m| m.is_file());
        if !regular && !shard.is_all() {
            let name = match super::input::is_stdin(path) {
                true => "standard input".to_string(),
                false => path.display().to_string(),
            };
            return Err(SelectError::ShardOfStream { shard, name }.into());
        }
        let mut sel = Self::open_pass(path, regions, active, true)?;
        sel.shard = shard;
        if active && regular {
            let mut total = 0u64;
            let mut count = Self::open_pass(path, regions, true, false)?;
            while count.next_selected()?.is_some() {
                total += 1;
            }
            let part = shard.range(total);
            sel.skip = part.start;
            sel.left = Some(part.end - part.start);
            sel.counts = Some((part.end - part.start, total));
        }
        Ok(sel)
    }

    /// One pass over the selected records, without the shard's cut.
    fn open_pass(
        path: &Path,
        regions: &Regions,
        check_order: bool,
        warn: bool,
    ) -> Result<Self, VcfError> {
        let stdin = super::input::is_stdin(path);
        let input = super::input::open(path)?;
        let compression = input.compression;
        let reader = VcfReader::new(&input.name, input.reader)?;
        let index = if regions.is_all() {
            None
        } else {
            index_beside(path)
        };
        let blocks = match index {
            Some(index) => {
                if compression != Compression::Bgzip {
                    return Err(SelectError::NotBgzf {
                        vcf: path.to_path_buf(),
                        index,
                        compression,
                    }
                    .into());
                }
                let ix = VcfIndex::open(path, &index)?;
                regions
                    .check_contigs(ix.names().iter().map(String::as_str), ix.path())
                    .map_err(SelectError::from)?;
                let seek_err = |source| SelectError::Seek {
                    name: reader.name().to_string(),
                    index: index.clone(),
                    source,
                };
                let chunks = ix.chunks(regions).map_err(seek_err)?;
                let file = File::open(path).map_err(seek_err)?;
                Some(Blocks {
                    reader: bgzf::io::Reader::new(file),
                    chunks: chunks.into_iter(),
                    end: None,
                    index,
                })
            }
            None => {
                if warn && !regions.is_all() && stdin {
                    log::warn!(
                        "{}: no index can come with standard input, so the whole VCF is read to \
                         find the records of the regions; give -I a bgzipped, indexed file \
                         (`tabix -p vcf`) to read only their blocks",
                        reader.name()
                    );
                } else if warn && !regions.is_all() {
                    log::warn!(
                        "{}: no .tbi or .csi index beside it, so the whole VCF is read to find the \
                         records of the regions; bgzip it and index it (`tabix -p vcf`) to read only \
                         their blocks",
                        reader.name()
                    );
                }
                None
            }
        };
        Ok(SelectedVcf {
            reader,
            blocks,
            regions: regions.clone(),
            order: check_order.then(OrderCheck::default),
            skip: 0,
            left: None,
            counts: None,
            shard: Shard::ALL,
        })
    }

    /// The VCF's header (and its name).
    pub fn header(&self) -> &VcfReader {
        &self.reader
    }

    /// The shard asked for.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// (records this run gives, records selected over all shards), when counted before the run: with
    /// `--region` or `--shard` on a file.
    pub fn counts(&self) -> Option<(u64, u64)> {
        self.counts
    }

    /// The index of this shard's first record among all the selected ones (0-based).
    pub fn first(&self) -> u64 {
        self.shard.range(self.counts.map_or(0, |c| c.1)).start
    }

    /// The next record of this shard, or `None` at its end.
    pub fn next_record(&mut self) -> Result<Option<VcfRecord>, VcfError> {
        if self.left == Some(0) {
            return Ok(None);
        }
        while self.skip > 0 {
            if self.next_selected()?.is_none() {
                return Ok(None);
            }
            self.skip -= 1;
        }
        let rec = self.next_selected()?;
        if let (Some(left), Some(_)) = (&mut self.left, &rec) {
            *left -= 1;
        }
        Ok(rec)
    }

    /// The next record in the regions.
    fn next_selected(&mut self) -> Result<Option<VcfRecord>, VcfError> {
        loop {
            let (rec, at) = match &mut self.blocks {
                None => match self.reader.next_record()? {
                    Some(r) => {
                        let at = format!("{}:{}", self.reader.name(), r.line_no);
                        (r, at)
                    }
                    None => return Ok(None),
                },
                Some(blocks) => {
                    let name = self.reader.name();
                    let Some((line, offset)) = blocks.next_line(name)? else {
                        return Ok(None);
                    };
                    let at = format!("the record at BGZF virtual offset {offset}");
                    let rec =
                        parse_record(&line, 0).map_err(|message| SelectError::BadIndexed {
                            name: name.to_string(),
                            at: at.clone(),
                            message,
                        })?;
                    let at = format!("{name}: {}:{}", rec.chrom(), rec.pos);
                    (rec, at)
                }
            };
            if let Some(order) = &mut self.order {
                order
                    .check(&rec)
                    .map_err(|message| SelectError::Unsorted { at, message })?;
            }
            if self
                .regions
                .contains(rec.chrom(), u64::try_from(rec.pos).unwrap_or(0))
            {
                return Ok(Some(rec));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(chrom: &str, pos: i64) -> VcfRecord {
        parse_record(&format!("{chrom}\t{pos}\t.\tA\tC\t.\t.\t."), 1).unwrap()
    }

    #[test]
    fn order_check_names_what_goes_back() {
        let mut o = OrderCheck::default();
        for (c, p) in [("a", 1), ("a", 1), ("a", 5), ("b", 2), ("c", 1)] {
            o.check(&rec(c, p)).unwrap();
        }
        let e = o.check(&rec("c", 0)).unwrap_err();
        assert!(e.contains("POS 0 on contig `c` comes after POS 1"), "{e}");
        let e = o.check(&rec("a", 9)).unwrap_err();
        assert!(e.contains("`a` appears again after contig `c`"), "{e}");
    }

    #[test]
    fn index_beside_prefers_tbi() {
        let dir = tempfile::tempdir().unwrap();
        let vcf = dir.path().join("x.vcf.gz");
        std::fs::write(&vcf, b"").unwrap();
        assert_eq!(index_beside(&vcf), None);
        std::fs::write(dir.path().join("x.vcf.gz.csi"), b"").unwrap();
        assert_eq!(index_beside(&vcf), Some(dir.path().join("x.vcf.gz.csi")));
        std::fs::write(dir.path().join("x.vcf.gz.tbi"), b"").unwrap();
        assert_eq!(index_beside(&vcf), Some(dir.path().join("x.vcf.gz.tbi")));
        assert_eq!(index_beside(Path::new("-")), None);
    }
}
