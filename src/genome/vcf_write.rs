//! VCF out, the one writer of `variant` and `merge`: standard output, a plain file, or BGZF (what `bgzip`
//! writes) with a tabix (`.tbi`) or CSI (`.csi`) index beside it. Lines pass through as text.
//!
//! The index is built while the records are written: each record's virtual positions are taken from the
//! BGZF writer before and after its line (noodles-bgzf), and fed with the record's span to noodles-csi's
//! indexer, as `tabix -p vcf` would index the finished file (span: POS to POS + len(REF) - 1, or to INFO
//! `END` when that lies further). One pass, no re-reading of a file that may hold millions of records.
//!
//! Both files are written under temporary names ([`crate::atomic`]); on [`VcfWriter::commit`] the VCF is
//! renamed into place first and the index last, so an index never sits beside a VCF it does not describe
//! (an old index of the other kind, `.csi` for a `.tbi` run and the reverse, is removed, since htslib would
//! otherwise pick it up). Records must be sorted for an index: a contig that comes back after another, or a
//! position before the previous one, is refused ([`WriteError::Unsorted`]).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use noodles_bgzf as bgzf;
use noodles_core::Position;
use noodles_csi::binning_index::index::header::{Builder as HeaderBuilder, ReferenceSequenceNames};
use noodles_csi::binning_index::index::reference_sequence::bin::Chunk;
use noodles_csi::binning_index::index::reference_sequence::index::{BinnedIndex, LinearIndex};
use noodles_csi::binning_index::Indexer;

use crate::atomic::AtomicOutput;

/// The index written beside a BGZF VCF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexKind {
    /// Tabix `.tbi`: positions up to 2^29 - 1 (512 Mbp), what `tabix -p vcf` writes.
    #[default]
    Tbi,
    /// CSI `.csi` (min_shift 14, depth 6, as `tabix -C`/`bcftools index` write it): positions up to 2^32.
    Csi,
}

impl IndexKind {
    /// The index's extension (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            IndexKind::Tbi => "tbi",
            IndexKind::Csi => "csi",
        }
    }

    /// The other kind.
    fn other(self) -> IndexKind {
        match self {
            IndexKind::Tbi => IndexKind::Csi,
            IndexKind::Csi => IndexKind::Tbi,
        }
    }

    /// The largest position the index can hold (1-based, inclusive).
    fn max_position(self) -> u64 {
        match self {
            IndexKind::Tbi => (1 << 29) - 1,
            IndexKind::Csi => (1 << 32) - 1,
        }
    }
}

/// Whether `path` names a compressed VCF, written as BGZF and indexed: it ends in `.gz` or `.bgz`.
pub fn is_bgzf_name(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".gz") || name.ends_with(".bgz")
}

/// The index written beside `output` (`x.vcf.gz` → `x.vcf.gz.tbi`), or `None` when the output is not
/// BGZF (plain text, standard output).
pub fn index_path(output: Option<&Path>, kind: IndexKind) -> Option<PathBuf> {
    let p = output.filter(|p| p.as_os_str() != "-" && is_bgzf_name(p))?;
    let mut s = p.as_os_str().to_os_string();
    s.push(".");
    s.push(kind.extension());
    Some(PathBuf::from(s))
}

/// Every index name a BGZF `output` has (`.tbi`, `.csi`): one is written, the other removed as stale, so
/// the no-clobber check lists both. Empty when the output is not BGZF.
pub fn index_paths(output: Option<&Path>) -> Vec<PathBuf> {
    [IndexKind::Tbi, IndexKind::Csi]
        .into_iter()
        .filter_map(|k| index_path(output, k))
        .collect()
}

/// The two `##` lines that record the tool, its version and the command line, in bcftools' form
/// (`##bcftools_viewVersion=`, `##bcftools_viewCommand=`): `##openspliceai-rs_{command}Version=` and
/// `##openspliceai-rs_{command}Command=`. `args` are the words after the program's name; a word that the
/// shell would split or expand is single-quoted, control characters become `?` (one header line). No date,
/// so the same run writes the same bytes.
pub fn command_lines(command: &str, args: &[String]) -> [String; 2] {
    let words: Vec<String> = args.iter().map(|a| shell_word(a)).collect();
    let line = format!("##openspliceai-rs_{command}Command={}", words.join(" "));
    [
        format!(
            "##openspliceai-rs_{command}Version={}",
            env!("CARGO_PKG_VERSION")
        ),
        line.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect(),
    ]
}

fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Whether a header line is a command line (`##{anything}Command=`, as we and bcftools write them): it
/// differs between the runs whose outputs `merge` joins.
pub fn is_command_line(line: &str) -> bool {
    line.strip_prefix("##")
        .and_then(|l| l.split_once('='))
        .is_some_and(|(key, _)| key.ends_with("Command"))
}

/// Why a VCF could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{name}: cannot write")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
    /// The records are not sorted, so they cannot be indexed; `message` says which record and why.
    #[error("{output}: cannot index: {message}")]
    Unsorted { output: String, message: String },
}

/// One record's place in the index.
struct Span {
    chrom: String,
    start: u64,
    end: u64,
}

/// The fields the index needs from a record line: CHROM, POS, and the end (POS + len(REF) - 1, or INFO
/// `END` where it lies further, as htslib reads them). `None` for a line with fewer than 8 columns or a
/// POS that is not a number (not a record; the readers refuse such lines before they get here).
fn span_of(line: &str) -> Option<Span> {
    let mut f = line.split('\t');
    let chrom = f.next()?;
    let pos: u64 = f.next()?.parse().ok()?;
    let refb = f.nth(1)?;
    let info = f.nth(3)?;
    let start = pos.max(1);
    let mut end = (pos + refb.len().max(1) as u64)
        .saturating_sub(1)
        .max(start);
    let info_end = info
        .split(';')
        .find_map(|kv| kv.strip_prefix("END="))
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(e) = info_end.filter(|&e| e >= start) {
        end = end.max(e);
    }
    Some(Span {
        chrom: chrom.to_string(),
        start,
        end,
    })
}

enum AnyIndexer {
    Tbi(Indexer<LinearIndex>),
    Csi(Indexer<BinnedIndex>),
}

/// The index being built: contigs in order of first appearance, the last record's place.
struct IndexBuild {
    kind: IndexKind,
    path: PathBuf,
    indexer: AnyIndexer,
    /// Contig names in order of first appearance, and each one's id.
    names: Vec<String>,
    ids: std::collections::HashMap<String, usize>,
    last: Option<(String, u64)>,
}

impl IndexBuild {
    fn new(kind: IndexKind, path: PathBuf) -> Self {
        let indexer = match kind {
            IndexKind::Tbi => AnyIndexer::Tbi(Indexer::default()),
            IndexKind::Csi => {
                AnyIndexer::Csi(Indexer::new(14, 6).expect("min_shift 14, depth 6 is valid"))
            }
        };
        Self {
            kind,
            path,
            indexer,
            names: Vec::new(),
            ids: std::collections::HashMap::new(),
            last: None,
        }
    }

    /// Adds one record written between `begin` and `end`; `Err` says why it cannot be indexed.
    fn add(
        &mut self,
        line: &str,
        begin: bgzf::VirtualPosition,
        end: bgzf::VirtualPosition,
    ) -> Result<(), String> {
        let Some(s) = span_of(line) else {
            return Err(format!(
                "not a VCF record (expected 8 tab-separated columns and an integer POS): {}",
                line.chars().take(80).collect::<String>()
            ));
        };
        if let Some((chrom, pos)) = &self.last {
            if *chrom == s.chrom {
                if s.start < *pos {
                    return Err(format!(
                        "record {}:{} comes after {chrom}:{pos}: the records are not sorted by position",
                        s.chrom, s.start
                    ));
                }
            } else if self.ids.contains_key(&s.chrom) {
                return Err(format!(
                    "contig `{}` comes back after `{chrom}` (record {}:{}): the records are not grouped \
                     by contig",
                    s.chrom, s.chrom, s.start
                ));
            }
        }
        if s.end > self.kind.max_position() {
            return Err(format!(
                "record {}:{} reaches position {}, beyond what a .{} index holds ({}){}",
                s.chrom,
                s.start,
                s.end,
                self.kind.extension(),
                self.kind.max_position(),
                if self.kind == IndexKind::Tbi {
                    ": use --csi (contigs longer than 512 Mbp need a CSI index)"
                } else {
                    ""
                }
            ));
        }
        let id = match self.ids.get(&s.chrom) {
            Some(&id) => id,
            None => {
                self.names.push(s.chrom.clone());
                self.ids.insert(s.chrom.clone(), self.names.len() - 1);
                self.names.len() - 1
            }
        };
        let (start, stop) = (
            Position::try_from(s.start as usize).map_err(|e| e.to_string())?,
            Position::try_from(s.end as usize).map_err(|e| e.to_string())?,
        );
        let chunk = Chunk::new(begin, end);
        let ctx = Some((id, start, stop, true));
        let added = match &mut self.indexer {
            AnyIndexer::Tbi(i) => i.add_record(ctx, chunk),
            AnyIndexer::Csi(i) => i.add_record(ctx, chunk),
        };
        added.map_err(|e| format!("record {}:{}: {e}", s.chrom, s.start))?;
        self.last = Some((s.chrom, s.start));
        Ok(())
    }

    /// The index, written under a temporary name beside its final path (BGZF-compressed, as htslib
    /// writes both kinds).
    fn write(self) -> io::Result<AtomicOutput> {
        let names: ReferenceSequenceNames = self.names.iter().cloned().map(Into::into).collect();
        let header = HeaderBuilder::vcf()
            .set_reference_sequence_names(names)
            .build();
        let n = self.names.len();
        let out = AtomicOutput::create(&self.path)?;
        match self.indexer {
            AnyIndexer::Tbi(i) => {
                let index = i.set_header(header).build(n);
                let mut w = noodles_tabix::io::Writer::new(out);
                w.write_index(&index)?;
                w.into_inner().finish()
            }
            AnyIndexer::Csi(i) => {
                let index = i.set_header(header).build(n);
                let mut w = noodles_csi::io::Writer::new(out);
                w.write_index(&index)?;
                w.into_inner().finish()
            }
        }
    }
}

/// A BGZF output and the index built beside it (`None`: not indexed).
struct Bgzf {
    w: bgzf::io::Writer<AtomicOutput>,
    index: Option<IndexBuild>,
}

enum Sink<'a> {
    Stdout(io::BufWriter<io::StdoutLock<'a>>),
    Plain(AtomicOutput),
    Bgzf(Box<Bgzf>),
}

/// A VCF being written: header lines, then records, then [`VcfWriter::commit`]. Dropped without a commit
/// (an error, Ctrl-C), it leaves nothing behind.
pub struct VcfWriter<'a> {
    name: String,
    sink: Sink<'a>,
}

impl VcfWriter<'_> {
    /// Standard output (`None` or `-`: plain text), a plain file, or, for a name ending in `.gz`/`.bgz`,
    /// BGZF with an index of `index` kind beside it (`None`: no index). Creates the parent directory.
    pub fn create(output: Option<&Path>, index: Option<IndexKind>) -> Result<Self, WriteError> {
        let Some(p) = output.filter(|p| p.as_os_str() != "-") else {
            return Ok(Self {
                name: "<stdout>".into(),
                sink: Sink::Stdout(io::BufWriter::new(io::stdout().lock())),
            });
        };
        let name = p.display().to_string();
        let err = |source| WriteError::Io {
            name: name.clone(),
            source,
        };
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let f = AtomicOutput::create(p).map_err(err)?;
        let sink = if is_bgzf_name(p) {
            let build = index.map(|k| {
                IndexBuild::new(k, index_path(Some(p), k).expect("a BGZF name has an index"))
            });
            Sink::Bgzf(Box::new(Bgzf {
                w: bgzf::io::Writer::new(f),
                index: build,
            }))
        } else {
            Sink::Plain(f)
        };
        Ok(Self { name, sink })
    }

    /// The output's name in messages (`<stdout>` for standard output).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn io(&self, source: io::Error) -> WriteError {
        WriteError::Io {
            name: self.name.clone(),
            source,
        }
    }

    fn raw(&mut self, line: &str) -> io::Result<()> {
        let w: &mut dyn Write = match &mut self.sink {
            Sink::Stdout(w) => w,
            Sink::Plain(w) => w,
            Sink::Bgzf(b) => &mut b.w,
        };
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")
    }

    /// Writes a header line (no newline in `line`).
    pub fn header_line(&mut self, line: &str) -> Result<(), WriteError> {
        self.raw(line).map_err(|e| self.io(e))
    }

    /// Writes a record line (no newline in `line`) and indexes it when an index is built.
    pub fn record(&mut self, line: &str) -> Result<(), WriteError> {
        let begin = match &self.sink {
            Sink::Bgzf(b) if b.index.is_some() => Some(b.w.virtual_position()),
            _ => None,
        };
        self.raw(line).map_err(|e| self.io(e))?;
        if let (Some(begin), Sink::Bgzf(b)) = (begin, &mut self.sink) {
            let end = b.w.virtual_position();
            let Some(build) = b.index.as_mut() else {
                return Ok(());
            };
            build
                .add(line, begin, end)
                .map_err(|message| WriteError::Unsorted {
                    output: self.name.clone(),
                    message,
                })?;
        }
        Ok(())
    }

    /// Finishes the file (BGZF: its end-of-file block), writes the index, and puts both in place: the VCF
    /// first, the index last.
    pub fn commit(self) -> Result<(), WriteError> {
        let name = self.name;
        let err = |source| WriteError::Io {
            name: name.clone(),
            source,
        };
        match self.sink {
            Sink::Stdout(mut w) => w.flush().map_err(err),
            Sink::Plain(f) => f.commit().map_err(err),
            Sink::Bgzf(b) => {
                let Bgzf { w, index: build } = *b;
                let f = w.finish().map_err(err)?;
                let Some(build) = build else {
                    return f.commit().map_err(err);
                };
                let index_name = build.path.display().to_string();
                let ierr = |source| WriteError::Io {
                    name: index_name.clone(),
                    source,
                };
                let (kind, path) = (build.kind, build.path.clone());
                let index = build.write().map_err(ierr)?;
                // No moment where an old index sits beside the new VCF: the old ones go first.
                let other = index_path(Some(f.path()), kind.other()).expect("a BGZF name");
                for old in [&path, &other] {
                    match std::fs::remove_file(old) {
                        Ok(()) => log::debug!("removed the old index {}", old.display()),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(ierr(e)),
                    }
                }
                f.commit().map_err(err)?;
                index.commit().map_err(ierr)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_as_htslib_reads_them() {
        let s = span_of("1\t100\t.\tACG\tA\t.\t.\tDP=3").unwrap();
        assert_eq!((s.chrom.as_str(), s.start, s.end), ("1", 100, 102));
        let s = span_of("1\t100\t.\tA\t<DEL>\t.\t.\tSVTYPE=DEL;END=500").unwrap();
        assert_eq!((s.start, s.end), (100, 500));
        // An END before POS is ignored; a key that only ends in END is not END.
        let s = span_of("1\t100\t.\tA\tT\t.\t.\tEND=5;XEND=900").unwrap();
        assert_eq!((s.start, s.end), (100, 100));
        assert!(span_of("1\tx\t.\tA\tT\t.\t.\t.").is_none());
        assert!(span_of("1\t5\t.\tA").is_none());
    }

    #[test]
    fn index_names_and_command_lines() {
        let p = Path::new("out/x.vcf.gz");
        assert_eq!(
            index_path(Some(p), IndexKind::Tbi).unwrap(),
            Path::new("out/x.vcf.gz.tbi")
        );
        assert_eq!(
            index_path(Some(Path::new("x.VCF.BGZ")), IndexKind::Csi).unwrap(),
            Path::new("x.VCF.BGZ.csi")
        );
        assert!(index_path(Some(Path::new("x.vcf")), IndexKind::Tbi).is_none());
        assert!(index_path(Some(Path::new("-")), IndexKind::Tbi).is_none());
        assert!(index_path(None, IndexKind::Tbi).is_none());
        let args: Vec<String> = ["merge", "-O", "a b.vcf.gz", "it's", "x\ty"]
            .map(String::from)
            .into();
        let [v, c] = command_lines("merge", &args);
        assert_eq!(
            v,
            format!(
                "##openspliceai-rs_mergeVersion={}",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(
            c,
            r#"##openspliceai-rs_mergeCommand=merge -O 'a b.vcf.gz' 'it'\''s' 'x?y'"#
        );
        assert!(is_command_line(&c));
        assert!(is_command_line(
            "##bcftools_viewCommand=view -r 1 x.vcf.gz; Date=x"
        ));
        assert!(!is_command_line(&v));
        assert!(!is_command_line("##INFO=<ID=Command,Number=1>"));
        assert!(!is_command_line("#CHROM\tPOS"));
    }

    #[test]
    fn unsorted_records_are_refused_naming_both() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("x.vcf.gz");
        let rec = |c: &str, p: u32| format!("{c}\t{p}\t.\tA\tT\t.\t.\t.");
        for (lines, want) in [
            (vec![rec("1", 5), rec("1", 3)], "record 1:3 comes after 1:5"),
            (
                vec![rec("1", 5), rec("2", 3), rec("1", 9)],
                "contig `1` comes back after `2`",
            ),
        ] {
            let mut w = VcfWriter::create(Some(&out), Some(IndexKind::Tbi)).unwrap();
            w.header_line("##fileformat=VCFv4.2").unwrap();
            let mut got = None;
            for l in &lines {
                if let Err(e) = w.record(l) {
                    got = Some(e);
                    break;
                }
            }
            let e = got.expect("refused").to_string();
            assert!(e.contains(want), "{e}");
            assert!(e.contains("x.vcf.gz: cannot index"), "{e}");
            drop(w);
            assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        }
        // Beyond a .tbi's reach, with the advice to use --csi; a .csi holds it.
        let far = rec("1", 600_000_000);
        let mut w = VcfWriter::create(Some(&out), Some(IndexKind::Tbi)).unwrap();
        let e = w.record(&far).unwrap_err().to_string();
        assert!(e.contains("--csi"), "{e}");
        drop(w);
        let mut w = VcfWriter::create(Some(&out), Some(IndexKind::Csi)).unwrap();
        w.header_line("##fileformat=VCFv4.2").unwrap();
        w.record(&far).unwrap();
        w.commit().unwrap();
        assert!(d.path().join("x.vcf.gz.csi").is_file());
        assert!(!d.path().join("x.vcf.gz.tbi").exists());
    }
}
