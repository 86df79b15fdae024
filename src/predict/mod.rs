//! `predict`: splice-site scores of every position of a FASTA (or of the genes of a GFF) as BED6 files
//! (or OpenSpliceAI 0.0.7's lines, `--bed-format upstream`) and, with `--bigwig`, bigWig tracks. Records stream in one at a time; windows of 5000 positions are
//! scored in batches and their lines written at once, so memory is bounded by one record and a batch.
//! With `-p/--predict-all` every window's scores also go to `predict.h5` as they are computed (`h5out`).
//! With `--region`/`--shard` the FASTA is read by region ([`IndexedFasta`]) and only the selected windows of
//! the whole-contig grid are scored, in the unregioned run's order, so their lines are that run's lines.

pub mod bed;
pub mod bigwig;
pub mod genes;
mod h5out;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use indicatif::ProgressBar;

use crate::atomic::AtomicOutput;
use crate::genome::seq::{encode_into, window_count, window_span};
use crate::genome::{Dialect, FastaReader, IndexedFasta, Regions, Shard};
use crate::infer::Ensemble;
use crate::model::SEQ_LEN;
pub use bed::BedFormat;
use bed::{Naming, Place};
use bigwig::{Chrom, Tracks};
use h5out::PredictionsFile;

/// Errors of `predict`.
pub type PredictError = crate::infer::ScoreError;

/// What to predict and where.
#[derive(Debug, Clone)]
pub struct PredictOptions {
    pub input: PathBuf,
    pub annotation: Option<PathBuf>,
    /// Bases added each side of a gene with an annotation; negative ⇒ F/2.
    pub gene_flank: i64,
    /// A BED line is written iff score > threshold (as f32).
    pub threshold: f32,
    /// `<output_dir>/SpliceAI_5000_<F>/` receives the files.
    pub output_dir: PathBuf,
    pub batch_size: usize,
    pub progress: bool,
    /// Also write every window's scores to `predict.h5` (`-p/--predict-all`).
    pub predict_all: bool,
    /// Standard BED6 or upstream's lines.
    pub bed_format: BedFormat,
    /// Also score the reverse complement (`--strand both`).
    pub both_strands: bool,
    /// Also write the four bigWig tracks (`--bigwig`).
    pub bigwig: bool,
    /// Only these bases (`--region`, `--regions-file`; empty: all). Windows stay on the whole-contig
    /// grid, so a region's lines are the unregioned run's lines in it.
    pub regions: Regions,
    /// This part of the selected windows (`--shard I/N`).
    pub shard: Shard,
}

/// Counts for the closing summary.
#[derive(Debug, Default, Clone)]
pub struct PredictSummary {
    pub records: usize,
    pub windows: usize,
    pub acceptor_sites: usize,
    pub donor_sites: usize,
    /// Records dropped for an undefined strand (upstream's `[ERR] Undefined strand`).
    pub dropped_records: usize,
    /// Genes skipped because their sequence is not in the FASTA.
    pub skipped_genes: usize,
    pub acceptor_bed: PathBuf,
    pub donor_bed: PathBuf,
    /// `predict.h5`, with `-p`.
    pub predictions: Option<PathBuf>,
    /// Lines and bytes written to each BED file.
    pub acceptor_written: (u64, u64),
    pub donor_written: (u64, u64),
    /// The bigWig tracks, with `--bigwig`.
    pub tracks: Vec<bigwig::Written>,
}

impl std::fmt::Display for PredictSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records, {} windows: {} acceptor and {} donor sites above the threshold",
            self.records, self.windows, self.acceptor_sites, self.donor_sites
        )?;
        if self.dropped_records > 0 {
            write!(f, "; {} records dropped (strand '.')", self.dropped_records)?;
        }
        if self.skipped_genes > 0 {
            write!(
                f,
                "; {} genes skipped (sequence not in the FASTA)",
                self.skipped_genes
            )?;
        }
        for (path, (lines, bytes)) in [
            (&self.acceptor_bed, self.acceptor_written),
            (&self.donor_bed, self.donor_written),
        ] {
            write!(
                f,
                "\n  {}: {lines} lines, {}",
                path.display(),
                human_bytes(bytes)
            )?;
        }
        for t in &self.tracks {
            match t {
                bigwig::Written::File(path, bytes) => {
                    write!(f, "\n  {}: {}", path.display(), human_bytes(*bytes))?
                }
                bigwig::Written::Empty(path) => write!(
                    f,
                    "\n  {}: not written (no score above the threshold)",
                    path.display()
                )?,
            }
        }
        if let Some(p) = &self.predictions {
            write!(f, "\n  {}", p.display())?;
        }
        Ok(())
    }
}

/// `n` bytes as B, kB, MB or GB (powers of 1000).
fn human_bytes(n: u64) -> String {
    let f = n as f64;
    if n < 1000 {
        format!("{n} B")
    } else if f < 1e6 {
        format!("{:.1} kB", f / 1e3)
    } else if f < 1e9 {
        format!("{:.1} MB", f / 1e6)
    } else {
        format!("{:.2} GB", f / 1e9)
    }
}

/// One window waiting in the batch.
struct WindowMeta {
    naming: Arc<Naming>,
    /// Where the record lies on its contig (standard format, bigWig).
    place: Option<Arc<Place>>,
    index: usize,
}

/// A record as `predict` scores it: upstream's name and, when known, its place on the contig.
pub(crate) struct RecordIn<'s> {
    /// Upstream's record name (header + `:+`).
    pub name: &'s str,
    pub seq: &'s [u8],
    pub place: Option<Place>,
    /// Queue the windows from the record's end (the reverse complement of a whole contig: its contig
    /// positions then come in ascending order).
    pub from_end: bool,
    /// The reverse complement of the record just pushed (`--strand both`): not counted again.
    pub reverse_copy: bool,
}

/// Batches windows, runs the ensemble, writes BED lines in input order.
pub(crate) struct Scorer<'a> {
    ens: &'a Ensemble,
    batch: usize,
    width: usize,
    x: Vec<f32>,
    metas: Vec<WindowMeta>,
    acceptor: AtomicOutput,
    donor: AtomicOutput,
    /// `predict.h5`, with `-p`.
    predictions: Option<PredictionsFile>,
    threshold: f32,
    format: BedFormat,
    tracks: Option<Tracks>,
    /// Only positions in these regions are written (empty: all).
    regions: Regions,
    bar: ProgressBar,
    pub(crate) summary: PredictSummary,
}

fn output_err(path: &Path) -> impl Fn(std::io::Error) -> PredictError + '_ {
    move |source| PredictError::Output {
        name: path.display().to_string(),
        source,
    }
}

impl<'a> Scorer<'a> {
    fn new(
        ens: &'a Ensemble,
        dir: &Path,
        opts: &PredictOptions,
        bar: ProgressBar,
        contigs: Option<&[(String, u64)]>,
    ) -> Result<Self, PredictError> {
        std::fs::create_dir_all(dir).map_err(output_err(dir))?;
        let acc = dir.join("acceptor_predictions.bed");
        let don = dir.join("donor_predictions.bed");
        let predictions = if opts.predict_all {
            let path = dir.join("predict.h5");
            Some(PredictionsFile::create(&path).map_err(output_err(&path))?)
        } else {
            None
        };
        let predictions_path = predictions.as_ref().map(PredictionsFile::path);
        let tracks = match contigs {
            Some(c) => Some(Tracks::create(dir, c, opts.both_strands).map_err(output_err(dir))?),
            None => None,
        };
        let width = ens.config().input_len();
        let batch = opts.batch_size.max(1);
        Ok(Self {
            ens,
            batch,
            width,
            x: vec![0.0; batch * 4 * width],
            metas: Vec::with_capacity(batch),
            acceptor: AtomicOutput::create(&acc).map_err(output_err(&acc))?,
            donor: AtomicOutput::create(&don).map_err(output_err(&don))?,
            predictions,
            threshold: opts.threshold,
            format: opts.bed_format,
            tracks,
            regions: opts.regions.clone(),
            bar,
            summary: PredictSummary {
                acceptor_bed: acc,
                donor_bed: don,
                predictions: predictions_path,
                ..PredictSummary::default()
            },
        })
    }

    /// Queues every window of a record. A record upstream drops from the BED files is still scored with
    /// `-p`, as upstream's `predict.h5` holds it.
    fn push_record(&mut self, rec: RecordIn<'_>) -> Result<(), PredictError> {
        let RecordIn {
            name,
            seq,
            place,
            from_end,
            reverse_copy,
        } = rec;
        if !reverse_copy {
            self.summary.records += 1;
        }
        let naming = match (&place, self.format) {
            (_, BedFormat::Upstream) => Naming::parse(name),
            (Some(_), BedFormat::Standard) => Naming::Relative {
                name: String::new(),
            },
            (None, BedFormat::Standard) => Naming::Dropped,
        };
        if naming == Naming::Dropped {
            log::warn!("[ERR] Undefined strand None. Skipping {name}.");
            self.summary.dropped_records += 1;
            if self.predictions.is_none() {
                return Ok(());
            }
        }
        if let Some(p) = &mut self.predictions {
            p.record(name, window_count(seq.len()));
        }
        let flank = self.ens.config().flank;
        if seq.len() < flank {
            log::warn!(
                "record `{name}` ({} bases) is shorter than the flanking size {flank}",
                seq.len()
            );
        }
        self.bar.set_message(name.to_string());
        let naming = Arc::new(naming);
        let place = place.map(Arc::new);
        let half = flank / 2;
        let n = window_count(seq.len());
        for i in 0..n {
            let j = if from_end { n - 1 - i } else { i };
            // Window j: F/2 positions of context each side, N (all-zero) past the record's ends.
            let span = window_span(j, seq.len(), half);
            self.push_window(&naming, &place, j, &seq[span.start..span.end], span.offset)?;
        }
        Ok(())
    }

    /// Queues window `j` of a record: `seq` is the part of the record it holds, from window column
    /// `offset` on (the rest is padding).
    fn push_window(
        &mut self,
        naming: &Arc<Naming>,
        place: &Option<Arc<Place>>,
        j: usize,
        seq: &[u8],
        offset: usize,
    ) -> Result<(), PredictError> {
        let slot = self.metas.len();
        let w = self.width;
        let buf = &mut self.x[slot * 4 * w..(slot + 1) * 4 * w];
        encode_into(seq, buf, w, offset);
        self.metas.push(WindowMeta {
            naming: naming.clone(),
            place: place.clone(),
            index: j,
        });
        if self.metas.len() == self.batch {
            self.flush()?;
        }
        Ok(())
    }

    /// Scores the queued windows and writes their lines.
    fn flush(&mut self) -> Result<(), PredictError> {
        let m = self.metas.len();
        if m == 0 {
            return Ok(());
        }
        if crate::cancel::requested() {
            return Err(PredictError::Interrupted);
        }
        let w = self.width;
        let x = Tensor::from_slice(&self.x[..m * 4 * w], (m, 4, w), &Device::Cpu)?;
        let y = self.ens.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
        if let Some(p) = &mut self.predictions {
            p.rows(&y).map_err(|source| PredictError::Output {
                name: p.path().display().to_string(),
                source,
            })?;
        }
        let metas = std::mem::take(&mut self.metas);
        for (b, meta) in metas.iter().enumerate() {
            if meta.naming.as_ref() == &Naming::Dropped {
                continue;
            }
            let base = b * 3 * SEQ_LEN;
            let acc = &y[base + SEQ_LEN..base + 2 * SEQ_LEN];
            let don = &y[base + 2 * SEQ_LEN..base + 3 * SEQ_LEN];
            if let Some(place) = &meta.place {
                if self.format == BedFormat::Standard || self.tracks.is_some() {
                    self.write_placed(place, meta.index, acc, don)?;
                }
            }
            if self.format == BedFormat::Standard {
                continue;
            }
            for k in 0..SEQ_LEN {
                let pos = (meta.index * SEQ_LEN + k) as u64;
                if acc[k] > self.threshold && pos > 0 {
                    meta.naming
                        .write_line(&mut self.acceptor, pos - 1, pos, "Acceptor", acc[k])
                        .map_err(output_err(&self.summary.acceptor_bed))?;
                    self.summary.acceptor_sites += 1;
                    self.summary.acceptor_written.0 += 1;
                }
                if don[k] > self.threshold {
                    meta.naming
                        .write_line(&mut self.donor, pos, pos + 1, "Donor", don[k])
                        .map_err(output_err(&self.summary.donor_bed))?;
                    self.summary.donor_sites += 1;
                    self.summary.donor_written.0 += 1;
                }
            }
        }
        self.summary.windows += m;
        self.bar.inc(m as u64);
        self.metas = metas;
        self.metas.clear();
        self.x[..m * 4 * w].fill(0.0);
        Ok(())
    }

    /// Writes the lines (standard format) and track values of window `index` of a placed record, in
    /// ascending contig order (window positions descending on the minus strand).
    fn write_placed(
        &mut self,
        place: &Place,
        index: usize,
        acc: &[f32],
        don: &[f32],
    ) -> Result<(), PredictError> {
        let first = (index * SEQ_LEN) as u64;
        let n = (place.len.saturating_sub(first)).min(SEQ_LEN as u64) as usize;
        for i in 0..n {
            let k = if place.minus { n - 1 - i } else { i };
            let p = first + k as u64;
            if !self.regions.is_all()
                && !self
                    .regions
                    .contains(&place.chrom.0, place.contig_pos(p) + 1)
            {
                continue;
            }
            for (site, scores) in [(0, acc), (1, don)] {
                if scores[k] > self.threshold {
                    self.placed_site(place, site, p, scores[k])?;
                }
            }
        }
        Ok(())
    }

    /// One score above the threshold at position `p` of a placed record: site 0 is an acceptor, 1 a
    /// donor. A line of its BED file (standard format), a value of its track (`--bigwig`).
    fn placed_site(
        &mut self,
        place: &Place,
        site: usize,
        p: u64,
        score: f32,
    ) -> Result<(), PredictError> {
        if self.format == BedFormat::Standard {
            let s = &mut self.summary;
            let (out, path, label, sites, written) = match site {
                0 => (
                    &mut self.acceptor,
                    &s.acceptor_bed,
                    "Acceptor",
                    &mut s.acceptor_sites,
                    &mut s.acceptor_written.0,
                ),
                _ => (
                    &mut self.donor,
                    &s.donor_bed,
                    "Donor",
                    &mut s.donor_sites,
                    &mut s.donor_written.0,
                ),
            };
            place
                .write_line(out, p, label, score)
                .map_err(output_err(path))?;
            *sites += 1;
            *written += 1;
        }
        if let Some(t) = &mut self.tracks {
            let track = 2 * site + usize::from(place.minus);
            t.push(track, &place.chrom, place.contig_pos(p), score);
        }
        Ok(())
    }

    /// Scores what is left and puts both BED files in place.
    fn finish(mut self) -> Result<PredictSummary, PredictError> {
        self.flush()?;
        self.bar.finish_and_clear();
        if let Some(t) = self.tracks.take() {
            let written = t.finish().map_err(|(path, source)| PredictError::Output {
                name: path.display().to_string(),
                source,
            })?;
            self.summary.tracks = written;
        }
        if let Some(p) = self.predictions.take() {
            let path = p.path();
            p.commit().map_err(output_err(&path))?;
        }
        let acc = self.summary.acceptor_bed.clone();
        let don = self.summary.donor_bed.clone();
        self.acceptor.commit().map_err(output_err(&acc))?;
        self.donor.commit().map_err(output_err(&don))?;
        self.summary.acceptor_written.1 = std::fs::metadata(&acc).map(|m| m.len()).unwrap_or(0);
        self.summary.donor_written.1 = std::fs::metadata(&don).map(|m| m.len()).unwrap_or(0);
        Ok(self.summary)
    }
}

fn window_bar(enabled: bool, total: Option<u64>) -> ProgressBar {
    crate::progress::Progress::new(enabled).counter(total, "windows", "predict")
}

/// The windows of every record of `fasta`, from its `.fai` index when there is a current one.
fn windows_from_fai(fasta: &Path) -> Option<u64> {
    let lengths = crate::genome::fasta::fai_lengths(fasta)?;
    Some(
        lengths
            .iter()
            .map(|&n| window_count(n as usize) as u64)
            .sum(),
    )
}

/// What predict may write into [`run_dir`], as `crate::clobber::Io::output_dir` names.
pub const OUTPUT_NAMES: [&str; 8] = [
    "acceptor_predictions.bed",
    "donor_predictions.bed",
    "predict.h5",
    "*_genes.fa",
    bigwig::TRACK_NAMES[0],
    bigwig::TRACK_NAMES[1],
    bigwig::TRACK_NAMES[2],
    bigwig::TRACK_NAMES[3],
];

/// The directory OpenSpliceAI writes into: `<output_dir>/SpliceAI_5000_<F>`.
pub fn run_dir(output_dir: &Path, flank: usize) -> PathBuf {
    output_dir.join(format!("SpliceAI_5000_{flank}"))
}

/// Runs `predict` with a loaded ensemble.
pub fn run(opts: &PredictOptions, ens: &Ensemble) -> Result<PredictSummary, PredictError> {
    let flank = ens.config().flank;
    let dir = run_dir(&opts.output_dir, flank);
    let contigs = if opts.bigwig {
        Some(contig_sizes(&opts.input)?)
    } else {
        None
    };
    // With --region or --shard the FASTA is read by region, and the regions are checked against it
    // before any output is created.
    let selected = !opts.regions.is_all() || !opts.shard.is_all();
    let genome = if selected {
        let genome = IndexedFasta::open(&opts.input)?;
        let names = genome.contigs();
        opts.regions
            .check_contigs(names.iter().map(|(n, _)| n.as_str()), &opts.input)
            .map_err(crate::genome::GenomeError::from)?;
        Some(genome)
    } else {
        None
    };
    let genome = match (genome, &opts.annotation) {
        (Some(genome), None) => return score_selected(opts, ens, genome, contigs.as_deref()),
        (genome, _) => genome,
    };
    // The bar's total, when a FASTA index gives it (both strands score every window twice).
    let strands = if opts.both_strands { 2 } else { 1 };
    let total = match opts.annotation {
        None => windows_from_fai(&opts.input).map(|w| strands * w),
        Some(_) => None,
    };
    let bar = window_bar(opts.progress, total);
    let mut scorer = Scorer::new(ens, &dir, opts, bar, contigs.as_deref())?;
    match &opts.annotation {
        None => {
            let mut reader = FastaReader::open(&opts.input, Dialect::Pyfaidx)?;
            while let Some(mut rec) = reader.next_record()? {
                let name = format!("{}:+", rec.name);
                let chrom = Chrom(first_word(&rec.name).into());
                let place = |minus| Place {
                    chrom: chrom.clone(),
                    start0: 0,
                    len: rec.seq.len() as u64,
                    minus,
                    prefix: String::new(),
                };
                let (plus, minus) = (place(false), place(true));
                scorer.push_record(RecordIn {
                    name: &name,
                    seq: &rec.seq,
                    place: Some(plus),
                    from_end: false,
                    reverse_copy: false,
                })?;
                if opts.both_strands {
                    crate::genome::seq::reverse_complement(&mut rec.seq);
                    // `predict.h5` (-p) names the reverse complement `<header>:-`.
                    scorer.push_record(RecordIn {
                        name: &format!("{}:-", rec.name),
                        seq: &rec.seq,
                        place: Some(minus),
                        from_end: true,
                        reverse_copy: true,
                    })?;
                }
            }
        }
        Some(gff) => {
            let gene_flank = if opts.gene_flank < 0 {
                flank / 2
            } else {
                opts.gene_flank as usize
            };
            let stem = opts
                .input
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "input".into());
            let genes_fa = dir.join(format!("{stem}_genes.fa"));
            genes::score_genes(
                genome,
                &opts.input,
                gff,
                gene_flank,
                &genes_fa,
                opts.both_strands,
                &mut scorer,
            )?;
        }
    }
    scorer.finish()
}

/// One window of the whole-contig grid: contig `contig` (index order), its reverse complement when
/// `minus`, window `j` of that record.
#[derive(Debug, Clone, Copy)]
struct GridWindow {
    contig: usize,
    minus: bool,
    j: usize,
}

/// Calls `f` for every window the regions select, in the order of the unregioned output: contigs in
/// FASTA order; per contig the given strand's windows from its start, then (`both`) the reverse
/// complement's from the contig's start (its record's end). A window is selected when any base it scores
/// lies in a region.
fn for_each_window<E>(
    contigs: &[(String, u64)],
    regions: &Regions,
    both: bool,
    mut f: impl FnMut(GridWindow) -> Result<(), E>,
) -> Result<(), E> {
    let step = SEQ_LEN as u64;
    for (contig, (name, len)) in contigs.iter().enumerate() {
        let len = *len;
        if !regions.is_all() && regions.spans(name).is_empty() {
            continue;
        }
        let n = window_count(len as usize);
        for minus in [false, true] {
            if minus && !both {
                break;
            }
            for i in 0..n {
                let j = if minus { n - 1 - i } else { i };
                // The record bases [a, b) of window j, as 0-based contig bases.
                let (a, b) = (j as u64 * step, ((j as u64 + 1) * step).min(len));
                let (a, b) = if minus { (len - b, len - a) } else { (a, b) };
                if regions.overlaps(name, a + 1, b) {
                    f(GridWindow { contig, minus, j })?;
                }
            }
        }
    }
    Ok(())
}

/// `predict` with `--region`/`--shard` (no annotation): only the selected windows of the whole-contig
/// grid, this shard's part of them, each read from the FASTA with its context; lines only for the bases
/// in the regions. The windows, their context and so their scores are those of the unregioned run.
fn score_selected(
    opts: &PredictOptions,
    ens: &Ensemble,
    mut genome: IndexedFasta,
    contig_lengths: Option<&[(String, u64)]>,
) -> Result<PredictSummary, PredictError> {
    let contigs = genome.contigs();
    let both = opts.both_strands;
    let mut total = 0u64;
    for_each_window(&contigs, &opts.regions, both, |_| {
        total += 1;
        Ok::<(), PredictError>(())
    })?;
    let part = opts.shard.range(total);
    let bar = window_bar(opts.progress, Some(part.end - part.start));
    let dir = run_dir(&opts.output_dir, ens.config().flank);
    let mut scorer = Scorer::new(ens, &dir, opts, bar, contig_lengths)?;
    let half = ens.config().flank / 2;
    let naming = Arc::new(Naming::Relative {
        name: String::new(),
    });
    let mut places: Option<(usize, [Option<Arc<Place>>; 2])> = None;
    let mut k = 0u64;
    for_each_window(&contigs, &opts.regions, both, |w| {
        let at = k;
        k += 1;
        if !part.contains(&at) {
            return Ok(());
        }
        let (name, len) = &contigs[w.contig];
        if places.as_ref().is_none_or(|(c, _)| *c != w.contig) {
            scorer.summary.records += 1;
            let place = |minus| {
                Some(Arc::new(Place {
                    chrom: Chrom(name.as_str().into()),
                    start0: 0,
                    len: *len,
                    minus,
                    prefix: String::new(),
                }))
            };
            places = Some((w.contig, [place(false), place(true)]));
        }
        let place = &places.as_ref().expect("set above").1[usize::from(w.minus)];
        scorer.bar.set_message(name.clone());
        let span = window_span(w.j, *len as usize, half);
        let (a, b) = (span.start as u64, span.end as u64);
        let mut seq = if w.minus {
            let mut s = genome.fetch(name, len - b, len - a)?;
            crate::genome::seq::reverse_complement(&mut s);
            s
        } else {
            genome.fetch(name, a, b)?
        };
        seq.make_ascii_uppercase();
        scorer.push_window(&naming, place, w.j, &seq, span.offset)
    })?;
    scorer.finish()
}

/// A FASTA header's first word: the name bedtools, samtools and genome browsers give the record.
pub fn first_word(header: &str) -> &str {
    header.split_whitespace().next().unwrap_or("")
}

/// Names and lengths of the FASTA's records (one pass), for the bigWig header; two records with the
/// same first word are refused, as a track could not tell them apart.
fn contig_sizes(path: &Path) -> Result<Vec<(String, u64)>, PredictError> {
    let mut reader = FastaReader::open(path, Dialect::Pyfaidx)?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    while let Some(rec) = reader.next_record()? {
        let name = first_word(&rec.name).to_string();
        if !seen.insert(name.clone()) {
            return Err(crate::genome::GenomeError::Parse {
                path: path.to_path_buf(),
                line: rec.line,
                message: format!(
                    "a second record named `{name}` (first word of the header): --bigwig needs \
                     distinct contig names"
                ),
            }
            .into());
        }
        out.push((name, rec.seq.len() as u64));
    }
    Ok(out)
}
