//! `variant`: SpliceAI-style delta scores for the records of a VCF (OpenSpliceAI 0.0.7 `variant`,
//! SpliceAI 1.3.1's rules). Records stream in chunks; within a chunk the reference window of each
//! (record, gene) is scored once for all its alleles and windows of equal length share forward passes;
//! records are written in input order.

pub mod merge;
pub mod score;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use indicatif::ProgressBar;

use crate::atomic::AtomicOutput;
use crate::genome::gene_table::{normalise_chrom, Annotation, Transcript};
use crate::genome::seq::{encode_into, encode_revcomp_into};
use crate::genome::vcf::{self, VcfRecord};
use crate::genome::vcf_index::SelectedVcf;
use crate::genome::vcf_write::{self, IndexKind, VcfWriter, WriteError};
use crate::genome::{IndexedFasta, RegionError, Regions, Shard};
use crate::infer::Ensemble;
use score::{deltas, Track};

/// Errors of `variant`.
pub type VariantError = crate::infer::ScoreError;

/// What to score and how.
#[derive(Debug, Clone)]
pub struct VariantOptions {
    pub reference: PathBuf,
    pub annotation: String,
    /// `None` (or `-`) reads stdin.
    pub input: Option<PathBuf>,
    /// `None` (or `-`) writes stdout.
    pub output: Option<PathBuf>,
    /// Where to list the records and alleles not scored (written atomically), if anywhere.
    pub skipped: Option<PathBuf>,
    /// D: scores cover POS ± D.
    pub distance: usize,
    pub mask: bool,
    pub precision: usize,
    pub progress: bool,
    /// The INFO key of the annotation (`OpenSpliceAI`, upstream's, or `SpliceAI`, SpliceAI 1.3.1's
    /// header line).
    pub info_key: String,
    /// Whether the header gains a `##openspliceai-rs_variant=` line naming the models, flanking size,
    /// distance and mask (off: upstream's header exactly).
    pub provenance: bool,
    /// `--region`/`--regions-file`: only records whose POS lies in them (empty: all).
    pub regions: Regions,
    /// `--shard I/N`: this part of the selected records.
    pub shard: Shard,
    /// The command line (the words after the program's name) for the header's
    /// `##openspliceai-rs_variantVersion=`/`Command=` lines, written with the provenance line.
    pub command_line: Option<Vec<String>>,
    /// The index beside a BGZF `-O` (`.tbi`, or `.csi` for `--csi`).
    pub index: IndexKind,
}

/// Why a record, or one ALT allele of it, is not scored. The record is still written (unchanged, or with
/// the entries of its other alleles), as upstream writes it; the reason goes to the summary and to
/// `--skipped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// ALT is `.`: no alternate allele.
    NoAlt,
    /// No gene of the annotation holds POS.
    OutsideGenes,
    /// The chromosome is neither in the FASTA nor there after `chr` normalisation.
    ChromNotInReference,
    /// The scoring window starts before the chromosome (upstream: "ref issue"/"fasta issue").
    NearChromStart,
    /// REF differs from the reference bases at POS (upstream: "ref issue").
    RefMismatch,
    /// The scoring window runs past the chromosome end.
    NearChromEnd,
    /// REF is longer than 2D bases.
    RefTooLong,
    /// A symbolic ALT (`<DEL>`, `<INS>`, ...).
    Symbolic,
    /// A breakend ALT (`]chr:pos]A`, `A[chr:pos[`, `.A`, `A.`).
    Breakend,
    /// `*`: the allele is deleted by an overlapping deletion.
    SpanningDeletion,
    /// An ALT of `.` in a list, or with `-` (not a base sequence).
    NotSequence,
}

impl SkipReason {
    /// The words used in the summary and in `--skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NoAlt => "no ALT allele (.)",
            SkipReason::OutsideGenes => "outside every gene",
            SkipReason::ChromNotInReference => "chromosome not in the reference",
            SkipReason::NearChromStart => "window starts before the chromosome",
            SkipReason::RefMismatch => "REF does not match the reference",
            SkipReason::NearChromEnd => "window ends past the chromosome",
            SkipReason::RefTooLong => "REF longer than 2 x distance",
            SkipReason::Symbolic => "symbolic ALT",
            SkipReason::Breakend => "breakend ALT",
            SkipReason::SpanningDeletion => "spanning deletion ALT (*)",
            SkipReason::NotSequence => "ALT not a base sequence",
        }
    }

    /// The reason an ALT allele is not scored, if it is not (SpliceAI skips every ALT holding one of
    /// `. - * < >`; a breakend, which need not hold any of them, is skipped too).
    pub fn of_alt(alt: &str) -> Option<SkipReason> {
        if alt.contains(['[', ']'])
            || (alt.len() > 1 && (alt.starts_with('.') || alt.ends_with('.')))
        {
            Some(SkipReason::Breakend)
        } else if alt.starts_with('<') || alt.contains(['<', '>']) {
            Some(SkipReason::Symbolic)
        } else if alt == "*" {
            Some(SkipReason::SpanningDeletion)
        } else if alt.contains(['.', '-', '*']) || alt.is_empty() {
            Some(SkipReason::NotSequence)
        } else {
            None
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts for the closing summary.
#[derive(Debug, Default, Clone)]
pub struct VariantSummary {
    pub records: usize,
    /// Records that got an INFO entry.
    pub annotated: usize,
    /// (allele, gene) pairs scored by the model.
    pub scored: usize,
    /// Records (for record-level reasons) or ALT alleles (for allele-level ones) not scored, by reason.
    pub skipped: BTreeMap<SkipReason, usize>,
    pub windows: usize,
    /// With `--shard`: the shard, the index of its first record among the selected ones, and how many
    /// were selected over all shards.
    pub shard: Option<(Shard, u64, u64)>,
}

impl VariantSummary {
    /// How many were skipped for `reason`.
    pub fn skipped(&self, reason: SkipReason) -> usize {
        self.skipped.get(&reason).copied().unwrap_or(0)
    }
}

impl std::fmt::Display for VariantSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some((shard, first, total)) = self.shard {
            match self.records {
                0 => write!(f, "shard {shard} (none of the {total} selected records): ")?,
                n => write!(
                    f,
                    "shard {shard} (records {}-{} of the {total} selected): ",
                    first + 1,
                    first + n as u64
                )?,
            }
        }
        write!(
            f,
            "{} records: {} annotated ({} allele-gene scores, {} windows)",
            self.records, self.annotated, self.scored, self.windows
        )?;
        if self.skipped.is_empty() {
            return write!(f, "; nothing skipped");
        }
        write!(f, "; not scored:")?;
        for (i, (reason, n)) in self.skipped.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{n} {reason}")?;
        }
        Ok(())
    }
}

/// The header line of `--skipped`.
pub const SKIPPED_HEADER: &str = "#CHROM\tPOS\tREF\tALT\treason";

/// Records scored together.
const CHUNK: usize = 256;
/// Input columns per forward pass (about 36 windows of the 400nt model's 5400).
const BATCH_COLUMNS: usize = 200_000;

/// A window to score: the text (genome orientation) and whether to reverse-complement it.
struct WindowReq {
    seq: Vec<u8>,
    minus: bool,
}

/// What one (allele, gene) pair becomes.
enum Item {
    /// Text written as is (`ALT|GENE|.|.|…` for MNVs).
    Literal(String),
    /// Score reference request `ref_w` (see [`RefReq`]) against window `alt_w`.
    Score {
        alt: String,
        gene: usize,
        ref_w: usize,
        alt_w: usize,
    },
}

/// The reference scores one (record, gene) needs: records of one chunk in the same gene share one long
/// window over their positions (outputs depend only on the ±F/2 context, the masking only on the gene).
struct RefReq {
    chrom: String,
    tx_start: i64,
    tx_end: i64,
    minus: bool,
    pos: i64,
}

/// Longest stretch of positions one shared reference window covers.
const MAX_REF_SPAN: i64 = 50_000;

/// One record's plan.
struct Planned {
    record: VcfRecord,
    genes: Vec<Transcript>,
    items: Vec<Item>,
}

struct Context<'a> {
    opts: &'a VariantOptions,
    fasta: IndexedFasta,
    fasta_first: String,
    annotation: Annotation,
    ens: &'a Ensemble,
    summary: VariantSummary,
    /// `--skipped`, written as records are planned (in input order).
    skipped_out: Option<SkippedList>,
}

impl Context<'_> {
    /// Counts `rec` (or only its allele `alt`) as not scored for `reason`, and lists it in `--skipped`.
    fn skip(
        &mut self,
        reason: SkipReason,
        rec: &VcfRecord,
        alt: Option<&str>,
    ) -> Result<(), VariantError> {
        match (reason, alt) {
            (SkipReason::OutsideGenes, _) | (_, Some(_)) => {
                log::debug!("not scored ({reason}): {}", rec.line())
            }
            _ => log::warn!("Skipping record ({reason}): {}", rec.line()),
        }
        *self.summary.skipped.entry(reason).or_default() += 1;
        match &mut self.skipped_out {
            Some(list) => list.add(rec, alt.unwrap_or(&rec.fields[4]), reason),
            None => Ok(()),
        }
    }

    /// SpliceAI's checks, then the windows of every (allele, gene). `None`: write the record unchanged.
    fn plan(
        &mut self,
        rec: VcfRecord,
        windows: &mut Vec<WindowReq>,
        refs: &mut Vec<RefReq>,
    ) -> Result<Planned, VariantError> {
        let mut p = Planned {
            record: rec,
            genes: Vec::new(),
            items: Vec::new(),
        };
        let rec = &p.record;
        let Some(alts) = rec.alts() else {
            self.skip(SkipReason::NoAlt, rec, None)?;
            return Ok(p);
        };
        let genes: Vec<Transcript> = self
            .annotation
            .at(rec.chrom(), rec.pos)
            .into_iter()
            .cloned()
            .collect();
        if genes.is_empty() {
            self.skip(SkipReason::OutsideGenes, rec, None)?;
            return Ok(p);
        }
        let f = self.ens.config().flank;
        let cov = 2 * self.opts.distance + 1;
        let wid = f + cov;
        let h = (wid / 2) as i64;
        let chrom = normalise_chrom(rec.chrom(), &self.fasta_first);
        if self.fasta.len(&chrom).is_none() {
            self.skip(SkipReason::ChromNotInReference, rec, None)?;
            return Ok(p);
        }
        let (start, end) = (rec.pos - h - 1, rec.pos + h);
        // Upstream says "fasta issue" when the window starts before the chromosome by more than its
        // length and "ref issue" (pyfaidx returns '' for a negative start) otherwise: both are this.
        if start < 0 {
            self.skip(SkipReason::NearChromStart, rec, None)?;
            return Ok(p);
        }
        let mut seq = self.fasta.fetch(&chrom, start as u64, end as u64)?;
        seq.make_ascii_uppercase();
        let refb = rec.reference();
        let h = h as usize;
        let ref_here = seq.get(h..(h + refb.len()).min(seq.len())).unwrap_or(&[]);
        if ref_here != refb.as_bytes() {
            self.skip(SkipReason::RefMismatch, rec, None)?;
            return Ok(p);
        }
        if seq.len() != wid {
            self.skip(SkipReason::NearChromEnd, rec, None)?;
            return Ok(p);
        }
        if refb.len() > 2 * self.opts.distance {
            self.skip(SkipReason::RefTooLong, rec, None)?;
            return Ok(p);
        }
        let mut items = Vec::new();
        let mut ref_windows: Vec<Option<usize>> = vec![None; genes.len()];
        for alt in alts {
            if let Some(reason) = SkipReason::of_alt(alt) {
                self.skip(reason, rec, Some(alt))?;
                continue;
            }
            for (gi, g) in genes.iter().enumerate() {
                if refb.len() > 1 && alt.len() > 1 {
                    items.push(Item::Literal(format!("{alt}|{}|.|.|.|.|.|.|.|.", g.name)));
                    continue;
                }
                let x_ref = masked_ref(&seq, g, rec.pos, h);
                let ref_w = *ref_windows[gi].get_or_insert_with(|| {
                    refs.push(RefReq {
                        chrom: chrom.clone(),
                        tx_start: g.tx_start,
                        tx_end: g.tx_end,
                        minus: g.minus,
                        pos: rec.pos,
                    });
                    refs.len() - 1
                });
                let mut x_alt = x_ref[..h].to_vec();
                x_alt.extend_from_slice(alt.as_bytes());
                x_alt.extend_from_slice(&x_ref[h + refb.len()..]);
                windows.push(WindowReq {
                    seq: x_alt,
                    minus: g.minus,
                });
                items.push(Item::Score {
                    alt: alt.to_string(),
                    gene: gi,
                    ref_w,
                    alt_w: windows.len() - 1,
                });
            }
        }
        p.genes = genes;
        p.items = items;
        Ok(p)
    }

    /// One window per run of nearby reference requests of a gene; returns (window, offset) per request.
    fn resolve_refs(
        &mut self,
        refs: &[RefReq],
        windows: &mut Vec<WindowReq>,
    ) -> Result<Vec<(usize, usize)>, VariantError> {
        let wid = (self.ens.config().flank + 2 * self.opts.distance + 1) as i64;
        let h = wid / 2;
        let key = |r: &RefReq| (r.chrom.clone(), r.tx_start, r.tx_end, r.minus);
        let mut order: Vec<usize> = (0..refs.len()).collect();
        order.sort_by_key(|&i| (key(&refs[i]), refs[i].pos));
        let mut out = vec![(0, 0); refs.len()];
        let mut i = 0;
        while i < order.len() {
            let first = &refs[order[i]];
            let mut j = i + 1;
            while j < order.len()
                && key(&refs[order[j]]) == key(first)
                && refs[order[j]].pos - refs[order[j - 1]].pos < wid
                && refs[order[j]].pos - first.pos < MAX_REF_SPAN
            {
                j += 1;
            }
            let (p1, pk) = (first.pos, refs[order[j - 1]].pos);
            let mut seq = self
                .fasta
                .fetch(&first.chrom, (p1 - h - 1) as u64, (pk + h) as u64)?;
            seq.make_ascii_uppercase();
            // Bases outside the transcript are N (seq[k] is genomic position p1 - h + k, 1-based).
            for (k, b) in seq.iter_mut().enumerate() {
                let g = p1 - h + k as i64;
                if g < first.tx_start || g > first.tx_end {
                    *b = b'N';
                }
            }
            windows.push(WindowReq {
                seq,
                minus: first.minus,
            });
            for &o in &order[i..j] {
                out[o] = (windows.len() - 1, (refs[o].pos - p1) as usize);
            }
            i = j;
        }
        Ok(out)
    }

    /// The INFO value of a planned record from the window tracks.
    fn entries(&mut self, p: &Planned, tracks: &[Track], ref_at: &[(usize, usize)]) -> Vec<String> {
        let cov = 2 * self.opts.distance + 1;
        let rlen = p.record.reference().len();
        p.items
            .iter()
            .map(|it| match it {
                Item::Literal(s) => s.clone(),
                Item::Score {
                    alt,
                    gene,
                    ref_w,
                    alt_w,
                } => {
                    self.summary.scored += 1;
                    let g = &p.genes[*gene];
                    let (w, off) = ref_at[*ref_w];
                    let r = Track {
                        acceptor: tracks[w].acceptor[off..off + cov].to_vec(),
                        donor: tracks[w].donor[off..off + cov].to_vec(),
                    };
                    let mut d = deltas(&r, &tracks[*alt_w], rlen, alt.len(), cov);
                    if self.opts.mask {
                        d = d.masked(g.nearest_boundary(p.record.pos));
                    }
                    d.entry(alt, &g.name, self.opts.precision)
                }
            })
            .collect()
    }
}

/// The reference window with the bases outside the transcript replaced by N (SpliceAI's padding).
fn masked_ref(seq: &[u8], g: &Transcript, pos: i64, h: usize) -> Vec<u8> {
    let wid = seq.len() as i64;
    let h = h as i64;
    let pad0 = (h + g.tx_start - pos).clamp(0, wid) as usize;
    let pad1 = (h - (g.tx_end - pos)).clamp(0, wid) as usize;
    let mut x = vec![b'N'; seq.len()];
    if pad0 < seq.len() - pad1 {
        x[pad0..seq.len() - pad1].copy_from_slice(&seq[pad0..seq.len() - pad1]);
    }
    x
}

/// Scores every window: equal lengths share forward passes. Returns tracks in genome orientation;
/// `scored` hears how many windows are done after each pass.
fn score_windows(
    ens: &Ensemble,
    windows: &[WindowReq],
    mut scored: impl FnMut(usize),
) -> Result<Vec<Track>, VariantError> {
    let mut done = 0;
    let flank = ens.config().flank;
    let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, w) in windows.iter().enumerate() {
        by_len.entry(w.seq.len()).or_default().push(i);
    }
    let mut tracks = vec![Track::default(); windows.len()];
    for (len, ids) in by_len {
        let per = (BATCH_COLUMNS / len).max(1);
        for group in ids.chunks(per) {
            if crate::cancel::requested() {
                return Err(VariantError::Interrupted);
            }
            let mut x = vec![0.0f32; group.len() * 4 * len];
            for (b, &i) in group.iter().enumerate() {
                let buf = &mut x[b * 4 * len..(b + 1) * 4 * len];
                if windows[i].minus {
                    encode_revcomp_into(&windows[i].seq, buf, len, 0);
                } else {
                    encode_into(&windows[i].seq, buf, len, 0);
                }
            }
            let x = Tensor::from_vec(x, (group.len(), 4, len), &Device::Cpu)?;
            let y = ens.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
            let out = len - flank;
            for (b, &i) in group.iter().enumerate() {
                let base = b * 3 * out;
                let mut acceptor = y[base + out..base + 2 * out].to_vec();
                let mut donor = y[base + 2 * out..base + 3 * out].to_vec();
                if windows[i].minus {
                    acceptor.reverse();
                    donor.reverse();
                }
                tracks[i] = Track { acceptor, donor };
            }
            done += group.len();
            scored(done);
        }
    }
    Ok(tracks)
}

fn spinner(enabled: bool, total: Option<u64>) -> ProgressBar {
    crate::progress::Progress::new(enabled).counter(total, "records", "variant")
}

/// The `##` header line of our own that records how the scores were made.
pub fn provenance_line(opts: &VariantOptions, ens: &Ensemble) -> String {
    let models: Vec<String> = ens
        .paths()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let line = format!(
        "##openspliceai-rs_variant=version={}; info_key={}; models={}; flanking_size={}; distance={}; mask={}; precision={}",
        env!("CARGO_PKG_VERSION"),
        opts.info_key,
        models.join(","),
        ens.config().flank,
        opts.distance,
        u8::from(opts.mask),
        opts.precision,
    );
    // One header line, whatever the paths hold.
    line.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Whether `-O` names a compressed VCF, written as BGZF (what bgzip writes and tabix indexes).
pub use crate::genome::vcf_write::is_bgzf_name;

/// A write error of the output VCF as `variant` reports it; unsorted records name the input line.
fn write_error(e: WriteError, input: &str, line: usize) -> VariantError {
    match e {
        WriteError::Io { name, source } => VariantError::Output { name, source },
        WriteError::Unsorted { output, message } => VariantError::Vcf(vcf::VcfError::Bad {
            name: input.to_string(),
            line,
            message: format!(
                "{message}; {output} is BGZF with an index, which needs sorted records: sort the input \
                 (bcftools sort) or write a plain .vcf"
            ),
        }),
    }
}

/// `--skipped`: a header, then one tab-separated line per record or allele not scored, written under a
/// temporary name and renamed by [`SkippedList::commit`].
struct SkippedList {
    name: String,
    out: std::io::BufWriter<AtomicOutput>,
}

impl SkippedList {
    fn create(path: &Path) -> Result<Self, VariantError> {
        let name = path.display().to_string();
        let err = |source| VariantError::Output {
            name: name.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut out = std::io::BufWriter::new(AtomicOutput::create(path).map_err(err)?);
        writeln!(out, "{SKIPPED_HEADER}").map_err(err)?;
        Ok(Self { name, out })
    }

    fn err(&self, source: std::io::Error) -> VariantError {
        VariantError::Output {
            name: self.name.clone(),
            source,
        }
    }

    fn add(&mut self, rec: &VcfRecord, alt: &str, reason: SkipReason) -> Result<(), VariantError> {
        writeln!(
            self.out,
            "{}\t{}\t{}\t{alt}\t{reason}",
            rec.chrom(),
            rec.fields[1],
            rec.reference()
        )
        .map_err(|e| self.err(e))
    }

    fn commit(self) -> Result<(), VariantError> {
        let name = self.name;
        let err = |source| VariantError::Output {
            name: name.clone(),
            source,
        };
        self.out
            .into_inner()
            .map_err(|e| err(e.into_error()))?
            .commit()
            .map_err(err)
    }
}

/// Every contig `regions` names must be in the reference (as a VCF name is looked up there: with or
/// without `chr`, see [`normalise_chrom`]).
fn check_region_contigs(
    regions: &Regions,
    fasta: &IndexedFasta,
    fasta_first: &str,
    reference: &Path,
) -> Result<(), VariantError> {
    for r in regions.list() {
        if fasta.len(&normalise_chrom(&r.chrom, fasta_first)).is_none() {
            let err = RegionError::UnknownContig {
                origin: r.origin.clone(),
                chrom: r.chrom.clone(),
                source_file: reference.to_path_buf(),
                count: fasta.names().count(),
                example: if fasta_first.is_empty() {
                    String::new()
                } else {
                    format!(", e.g. `{fasta_first}`")
                },
            };
            return Err(
                vcf::VcfError::from(crate::genome::vcf_index::SelectError::from(err)).into(),
            );
        }
    }
    Ok(())
}

/// Runs `variant` with a loaded ensemble.
pub fn run(opts: &VariantOptions, ens: &Ensemble) -> Result<VariantSummary, VariantError> {
    let annotation = Annotation::load(&opts.annotation)?;
    let fasta = IndexedFasta::open(&opts.reference)?;
    let fasta_first = fasta.names().next().unwrap_or_default();
    check_region_contigs(&opts.regions, &fasta, &fasta_first, &opts.reference)?;
    let mut reader = SelectedVcf::open(
        opts.input.as_deref().unwrap_or(Path::new("-")),
        &opts.regions,
        opts.shard,
    )?;
    let in_name = reader.header().name().to_string();
    let mut out = VcfWriter::create(vcf::output_path(&opts.output), Some(opts.index))
        .map_err(|e| write_error(e, &in_name, 0))?;
    let skipped_out = opts
        .skipped
        .as_deref()
        .map(SkippedList::create)
        .transpose()?;
    let total = match reader.counts() {
        Some((n, _)) => Some(n),
        None => opts.input.as_deref().and_then(vcf::count_records),
    };
    let extra = opts.provenance.then(|| provenance_line(opts, ens));
    let mut header = reader
        .header()
        .output_header_with(&opts.info_key, extra.as_deref());
    if let Some(args) = opts.command_line.as_ref().filter(|_| opts.provenance) {
        // Before the INFO line of the scores (which the provenance line follows).
        let info = header.len() - 2 - usize::from(extra.is_some());
        for (i, l) in vcf_write::command_lines("variant", args)
            .into_iter()
            .enumerate()
        {
            header.insert(info + i, l);
        }
    }
    for line in &header {
        out.header_line(line)
            .map_err(|e| write_error(e, &in_name, 0))?;
    }
    let mut ctx = Context {
        opts,
        fasta,
        fasta_first,
        annotation,
        ens,
        summary: VariantSummary {
            shard: (!opts.shard.is_all()).then(|| {
                (
                    opts.shard,
                    reader.first(),
                    reader.counts().map_or(0, |c| c.1),
                )
            }),
            ..VariantSummary::default()
        },
        skipped_out,
    };
    let bar = spinner(opts.progress, total);
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        while chunk.len() < CHUNK {
            match reader.next_record()? {
                Some(r) => chunk.push(r),
                None => break,
            }
        }
        if chunk.is_empty() {
            break;
        }
        let mut windows = Vec::new();
        let mut refs = Vec::new();
        let mut planned = Vec::with_capacity(chunk.len());
        for rec in chunk {
            planned.push(ctx.plan(rec, &mut windows, &mut refs)?);
        }
        let ref_at = ctx.resolve_refs(&refs, &mut windows)?;
        // The bar moves through the chunk's records as its windows are scored.
        let (base, n) = (bar.position(), planned.len() as u64);
        let tracks = score_windows(ens, &windows, |done| {
            bar.set_position(base + n * done as u64 / windows.len().max(1) as u64)
        })?;
        ctx.summary.windows += windows.len();
        for p in &planned {
            ctx.summary.records += 1;
            let entries = ctx.entries(p, &tracks, &ref_at);
            let line = if entries.is_empty() {
                p.record.line()
            } else {
                ctx.summary.annotated += 1;
                p.record.with_info_key(&opts.info_key, &entries.join(","))
            };
            out.record(&line)
                .map_err(|e| write_error(e, &in_name, p.record.line_no))?;
        }
        bar.set_position(base + n);
    }
    bar.finish_and_clear();
    if let Some(list) = ctx.skipped_out.take() {
        list.commit()?;
    }
    out.commit().map_err(|e| write_error(e, &in_name, 0))?;
    Ok(ctx.summary)
}

#[cfg(test)]
mod tests {
    use super::SkipReason::{self, *};

    #[test]
    fn alt_classes() {
        for (alt, want) in [
            ("A", None),
            ("ACGT", None),
            ("N", None),
            // IUPAC codes are scored as upstream scores them (as N).
            ("R", None),
            ("<DEL>", Some(Symbolic)),
            ("<INS:ME:ALU>", Some(Symbolic)),
            ("<*>", Some(Symbolic)),
            ("A]chr2:98000]", Some(Breakend)),
            ("]chr2:98000]A", Some(Breakend)),
            ("A[chr2:98000[", Some(Breakend)),
            ("[chr2:98000[A", Some(Breakend)),
            (".A", Some(Breakend)),
            ("A.", Some(Breakend)),
            ("A[<ctg1>:7[", Some(Breakend)),
            ("*", Some(SpanningDeletion)),
            (".", Some(NotSequence)),
            ("-", Some(NotSequence)),
            ("A-C", Some(NotSequence)),
            ("", Some(NotSequence)),
        ] {
            assert_eq!(SkipReason::of_alt(alt), want, "{alt}");
        }
    }

    #[test]
    fn summary_counts_each_reason_once_in_order() {
        let mut s = super::VariantSummary {
            records: 5,
            annotated: 2,
            scored: 3,
            windows: 4,
            ..Default::default()
        };
        assert_eq!(
            s.to_string(),
            "5 records: 2 annotated (3 allele-gene scores, 4 windows); nothing skipped"
        );
        s.skipped.insert(Breakend, 2);
        s.skipped.insert(NoAlt, 1);
        assert_eq!(
            s.to_string(),
            "5 records: 2 annotated (3 allele-gene scores, 4 windows); not scored: 1 no ALT \
             allele (.), 2 breakend ALT"
        );
        assert_eq!(s.skipped(Breakend), 2);
        assert_eq!(s.skipped(Symbolic), 0);
    }
}
