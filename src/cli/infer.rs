//! `predict` and `variant`: OpenSpliceAI's flags (same short and long forms, same defaults), parsed here
//! and handed to `crate::predict` / `crate::variant`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::builder::RangedU64ValueParser;
use clap::Args;

use super::args::{parse_at_least_one, parse_flank, ComputeArgs};
use crate::calibrate::Temperature;
use crate::clobber::Io;
use crate::device::{describe, select_device};
use crate::genome::{Region, Regions, Shard};
use crate::infer::Ensemble;
use crate::model::FlankConfig;
use crate::predict::{self, PredictOptions};
use crate::variant::{self, VariantOptions};

/// The model options `predict` and `variant` share (with `-m`, whose default differs).
#[derive(Debug, Args, Clone)]
pub struct ScoringArgs {
    /// Flanking size of the model: 80, 400, 2000 or 10000 [default: the checkpoints'; a given -f must
    /// match them].
    #[arg(short = 'f', long = "flanking-size", value_parser = parse_flank)]
    pub flanking_size: Option<&'static FlankConfig>,
    /// Calibrated scores: divide the logits by this temperature (`calibrate`'s temperature.txt or
    /// temperature.pt) before the softmax.
    #[arg(long, value_name = "FILE")]
    pub temperature: Option<PathBuf>,
    /// Compute precision of the convolutions: f32, bf16 (bf16 operands, f32 accumulation; on the CPU
    /// needs AVX-512 BF16, else f32 with a message) or tf32 (CUDA only). Not `--precision`: variant's
    /// `-p/--precision` is upstream's decimals.
    #[arg(long = "compute-precision", value_enum, value_name = "P",
          default_value_t = crate::ops::precision::Precision::F32)]
    pub compute_precision: crate::ops::precision::Precision,
}

/// Makes `p` the process's conv precision for a model on `device`; the line to print, if any (what runs,
/// or why bf16 falls back to f32). An error names a bad `OSAI_BF16`.
pub fn select_precision(
    p: crate::ops::precision::Precision,
    device: &candle_core::Device,
) -> Result<Option<String>> {
    crate::ops::precision::select(p, crate::ops::precision::Backend::of(device))
        .map_err(anyhow::Error::msg)
}

/// `predict`.
#[derive(Debug, Args, Clone)]
pub struct PredictArgs {
    /// FASTA to score (every record, on its given strand).
    #[arg(short = 'i', long = "input-sequence", value_name = "FASTA")]
    pub input_sequence: PathBuf,
    /// A `.pt`/`.pth`/`.safetensors` checkpoint, or a directory of them; repeat -m for more (all
    /// their outputs are averaged).
    #[arg(short = 'm', long, required = true)]
    pub model: Vec<PathBuf>,
    #[command(flatten)]
    pub scoring: ScoringArgs,
    /// Output directory; files go to `<DIR>/SpliceAI_5000_<F>/`.
    #[arg(short, long, default_value = "./predict_out", value_name = "DIR")]
    pub output_dir: PathBuf,
    /// GFF3/GTF: score each `gene` (with `--gene-flank` bases each side) instead of whole records.
    #[arg(short = 'a', long = "annotation-file", value_name = "GFF")]
    pub annotation_file: Option<PathBuf>,
    /// Bases added each side of a gene with `-a`; negative means F/2.
    #[arg(long = "gene-flank", default_value_t = -1, allow_hyphen_values = true)]
    pub gene_flank: i64,
    /// A BED line (and bigWig value) is written for scores strictly above this (0 to below 1). The
    /// default 1e-6 keeps a large share of all positions, depending on the model (a 23 Mb chromosome:
    /// 3.6 M lines, 149 MB with the 80nt MANE model; up to ~19 M lines, 1.4 GB seen with a transferred
    /// model); use 0.01-0.5 for sites, --bigwig for every position's score.
    #[arg(short = 't', long, default_value_t = 1e-6, value_parser = parse_threshold)]
    pub threshold: f64,
    /// BED lines: `standard` BED6 on the contig (chrom = the record's first word or the GFF seqid,
    /// 0-based half-open, one base per site), or `upstream` (OpenSpliceAI 0.0.7's exact lines).
    #[arg(long = "bed-format", value_enum, default_value_t = predict::BedFormat::Standard)]
    pub bed_format: predict::BedFormat,
    /// Strands to score: `given` (each record or gene as it is) or `both` (its reverse complement too,
    /// reported on the contig with strand `-`).
    #[arg(long, value_enum, default_value_t = StrandArg::Given)]
    pub strand: StrandArg,
    /// Also write acceptor and donor scores per strand as bigWig tracks (`acceptor_plus.bw`,
    /// `acceptor_minus.bw`, `donor_plus.bw`, `donor_minus.bw`) for IGV/UCSC; FASTA input only (no -a).
    #[arg(long)]
    pub bigwig: bool,
    /// Score only this region: CHR, CHR:START or CHR:START-END (1-based, inclusive; repeatable). Its
    /// context is read from the FASTA around it and BED positions stay those of the contig; the lines
    /// are the whole run's lines in the region. With -a: the genes that overlap it, lines in it.
    #[arg(long = "region", value_name = "CHR[:START[-END]]")]
    pub region: Vec<crate::genome::Region>,
    /// Regions to score from a BED file (0-based, half-open), added to any --region.
    #[arg(long = "regions-file", value_name = "BED")]
    pub regions_file: Option<PathBuf>,
    /// Score part I of N of the (selected) windows: the N BED files concatenated in shard order equal
    /// the unsharded run's (see docs/commands.md).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::genome::Shard>,
    /// Also write every window's scores to `<DIR>/SpliceAI_5000_<F>/predict.h5` (`predictions`
    /// float32 (windows, 3, 5000), with `NAME` and `LEN` mapping rows to records).
    #[arg(short = 'p', long = "predict-all")]
    pub predict_all: bool,
    /// More log output (same as RUST_LOG=debug).
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Accepted for compatibility; no intermediate files are written.
    #[arg(long = "hdf-threshold", default_value_t = 0)]
    pub hdf_threshold: u64,
    /// Accepted for compatibility; BED lines and `-p` scores are written as windows are scored.
    #[arg(long = "flush-threshold", default_value_t = 500)]
    pub flush_threshold: u64,
    /// Accepted for compatibility; records are never split (windows stream), see docs/upstream-differences.md.
    #[arg(long = "split-threshold", default_value_t = 1_500_000)]
    pub split_threshold: u64,
    /// Accepted for compatibility; no HDF5 shards are written.
    #[arg(long = "chunk-size", default_value_t = 100)]
    pub chunk_size: u64,
    #[command(flatten)]
    pub compute: ComputeArgs,
    #[command(flatten)]
    pub progress: super::args::ProgressArgs,
    /// Hide progress bars.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `predict --strand`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StrandArg {
    Given,
    Both,
}

/// `-t/--threshold`: a number from 0 up to (not including) 1, the range of the scores it is compared
/// with; NaN, infinities and negatives are refused.
fn parse_threshold(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !v.is_finite() || !(0.0..1.0).contains(&v) {
        return Err(format!(
            "`{s}` is out of range: scores are probabilities, give a threshold from 0 up to (not \
             including) 1"
        ));
    }
    Ok(v)
}

fn debug_logging(on: bool) {
    if on {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

/// Runs `predict`.
pub fn predict(a: PredictArgs) -> Result<()> {
    debug_logging(a.debug);
    if a.bigwig && a.annotation_file.is_some() {
        bail!(
            "--bigwig writes whole-contig tracks and cannot be combined with -a/--annotation-file \
             (genes overlap): drop one of them"
        );
    }
    if a.strand == StrandArg::Both && a.bed_format == predict::BedFormat::Upstream {
        bail!(
            "--strand both needs --bed-format standard: upstream's lines have no place for the \
             reverse strand"
        );
    }
    let regioned = !a.region.is_empty() || a.regions_file.is_some();
    if regioned || a.shard.is_some() {
        let flag = if a.shard.is_some() {
            "--shard"
        } else {
            "--region/--regions-file"
        };
        if a.bed_format == predict::BedFormat::Upstream {
            bail!("{flag} needs --bed-format standard (positions on the contig); upstream's lines name positions by record");
        }
        if a.predict_all {
            bail!(
                "{flag} cannot be combined with -p/--predict-all: predict.h5 holds whole records"
            );
        }
    }
    if a.shard.is_some() && a.bigwig {
        bail!("--shard cannot be combined with --bigwig (a track covers whole contigs): run --bigwig unsharded, or shard by --region");
    }
    if a.shard.is_some() && a.annotation_file.is_some() {
        bail!("--shard splits the windows of whole contigs and cannot be combined with -a/--annotation-file: give each job a --region instead");
    }
    let regions = crate::genome::Regions::new(&a.region, a.regions_file.as_deref())?;
    // The output folder is named by the flanking size, which the checkpoints may decide: the inputs are
    // checked against every folder it could be, before anything is read.
    for f in super::flanks_or_all(a.scoring.flanking_size) {
        Io::new()
            .input("-i", &a.input_sequence)
            .inputs("-m", &a.model)
            .input_opt("-a", a.annotation_file.as_ref())
            .input_opt("--regions-file", a.regions_file.as_ref())
            .input_opt("--temperature", a.scoring.temperature.as_ref())
            .output_dir(
                "-o",
                predict::run_dir(&a.output_dir, f.flank),
                predict::OUTPUT_NAMES,
            )
            .check()?;
    }
    let ens = load_ensemble("predict", &a.model, &a.scoring, &a.compute.device)?;
    let opts = PredictOptions {
        input: a.input_sequence,
        annotation: a.annotation_file,
        gene_flank: a.gene_flank,
        threshold: a.threshold as f32,
        output_dir: a.output_dir,
        batch_size: a.compute.batch(ens.config()),
        progress: !a.quiet,
        predict_all: a.predict_all,
        bed_format: a.bed_format,
        both_strands: a.strand == StrandArg::Both,
        bigwig: a.bigwig,
        regions,
        shard: a.shard.unwrap_or(crate::genome::Shard::ALL),
    };
    let summary = predict::run(&opts, &ens)?;
    eprintln!("{summary}");
    peak_rss();
    Ok(())
}

/// Reads `--temperature`, if given.
pub fn read_temperature(path: Option<&Path>) -> Result<Option<Temperature>> {
    Ok(match path {
        Some(p) => Some(Temperature::read(p)?),
        None => None,
    })
}

/// The models of `models` (files or directories) on `device`, each named on stderr, of `-f`'s flanking
/// size and with `--temperature` applied when given: the one way predict and variant load what they
/// score with.
fn load_ensemble(
    command: &str,
    models: &[PathBuf],
    scoring: &ScoringArgs,
    device: &str,
) -> Result<Ensemble> {
    let (flank, temperature) = (scoring.flanking_size, scoring.temperature.as_deref());
    let device = select_device(device)?;
    if let Some(m) = select_precision(scoring.compute_precision, &device)? {
        eprintln!("{m}");
    }
    let mut ens = Ensemble::load_all(models, flank, &device)?;
    eprintln!(
        "{command}: {} model(s) of SpliceAI-{} on {}{}",
        ens.paths().len(),
        ens.config().flank,
        describe(&device),
        if flank.is_none() {
            " (no -f given: flanking size from the checkpoints)"
        } else {
            ""
        }
    );
    for p in ens.paths() {
        eprintln!("  {}", p.display());
    }
    if let Some(t) = read_temperature(temperature)? {
        ens.set_temperature(Some(t.values()))?;
        eprintln!("calibrated scores: logits divided by {t} before the softmax");
    }
    Ok(ens)
}

fn peak_rss() {
    if let Some(rss) = crate::bench::peak_rss_mib() {
        eprintln!("peak RSS: {rss:.0} MiB");
    }
}

/// `variant`.
#[derive(Debug, Args, Clone)]
pub struct VariantArgs {
    /// Reference genome FASTA.
    #[arg(short = 'R', long = "ref-genome", value_name = "FASTA")]
    pub ref_genome: PathBuf,
    /// SpliceAI gene table (`#NAME CHROM STRAND TX_START TX_END EXON_START EXON_END`), or a GFF3/GTF
    /// (`.gff`, `.gff3`, `.gtf`, also `.gz`: one row per gene from its canonical or longest transcript).
    #[arg(short = 'A', long = "annotation")]
    pub annotation: String,
    /// Input VCF, plain, gzip or bgzip (`-`: stdin) [default: stdin].
    #[arg(short = 'I', long = "input-vcf", value_name = "VCF")]
    pub input_vcf: Option<PathBuf>,
    /// Output VCF [default: stdout]; a name ending in `.gz` or `.bgz` is written as BGZF (bgzip's format,
    /// which tabix indexes).
    #[arg(short = 'O', long = "output-vcf", value_name = "VCF")]
    pub output_vcf: Option<PathBuf>,
    /// Also list the records and ALT alleles not scored, with the reason (tab-separated: CHROM POS REF
    /// ALT reason, after a `#` header line).
    #[arg(long, value_name = "FILE")]
    pub skipped: Option<PathBuf>,
    /// Scores cover POS ± D bases (0 to 4999).
    #[arg(short = 'D', long = "distance", default_value_t = 50,
          value_parser = clap::value_parser!(u16).range(0..=4999))]
    pub distance: u16,
    /// 1: mask gains at annotated boundaries and losses elsewhere (SpliceAI's -M).
    #[arg(short = 'M', long = "mask", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=1))]
    pub mask: u8,
    /// INFO key of the scores: upstream's `OpenSpliceAI`, or `SpliceAI` for tools written for SpliceAI
    /// (its VEP plugin, filters): SpliceAI 1.3.1's header line and the same field layout.
    #[arg(long = "info-key", value_name = "NAME", default_value = crate::genome::vcf::DEFAULT_INFO_KEY,
          value_parser = info_key)]
    pub info_key: String,
    /// Only the records whose POS lies in CHR, CHR:START or CHR:START-END (1-based, inclusive; repeat
    /// for more). With a `.tbi`/`.csi` index beside a bgzipped -I only the regions' blocks are read.
    #[arg(long = "region", value_name = "CHR[:START[-END]]")]
    pub region: Vec<Region>,
    /// Only the records whose POS lies in a region of this BED file (0-based, half-open), as --region.
    #[arg(long = "regions-file", value_name = "BED")]
    pub regions_file: Option<PathBuf>,
    /// Score only part I of N of the (selected) records, cut by count in file order: the N outputs'
    /// records, concatenated in shard order, are the unsharded output's.
    #[arg(long = "shard", value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Leave out the header's `##openspliceai-rs_variant=` line (models, flanking size, distance, mask):
    /// upstream's header exactly.
    #[arg(long = "no-provenance")]
    pub no_provenance: bool,
    /// Index a BGZF -O with CSI (`<name>.csi`) instead of tabix (`<name>.tbi`): needed for contigs
    /// longer than 512 Mbp.
    #[arg(long)]
    pub csi: bool,
    /// A `.pt`/`.pth`/`.safetensors` checkpoint or a directory of them; repeat -m for more (all
    /// averaged).
    #[arg(short = 'm', long = "model", default_value = "SpliceAI")]
    pub model: Vec<String>,
    #[command(flatten)]
    pub scoring: ScoringArgs,
    /// Model type: only `pytorch` checkpoints are read.
    #[arg(short = 't', long = "model-type", default_value = "pytorch")]
    pub model_type: String,
    /// Decimals of the delta scores (0 to 10: scores are float32).
    #[arg(short = 'p', long = "precision", default_value_t = 2,
          value_parser = RangedU64ValueParser::<usize>::new().range(0..=10))]
    pub precision: usize,
    /// Accepted for compatibility (at least 1): windows are always batched (results do not depend on it).
    #[arg(short = 'b', long = "batch-size", default_value_t = 1, value_parser = parse_at_least_one)]
    pub batch_size: usize,
    /// Compute device: auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[command(flatten)]
    pub progress: super::args::ProgressArgs,
    /// Hide progress bars.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

fn info_key(s: &str) -> Result<String, String> {
    crate::genome::vcf::check_info_key(s).map(|()| s.to_string())
}

/// `--skipped` must be a file of its own: not `-` (stdout may carry the VCF) and none of the other
/// files of the run, which it would replace.
fn check_skipped_path(s: &Path, a: &VariantArgs) -> Result<()> {
    if s.as_os_str() == "-" {
        bail!("--skipped -: give a file name (standard output is where the VCF goes without -O)");
    }
    // Against the inputs, the no-clobber check of every command; against the other output, here.
    let same = |p: &Path| {
        p == s
            || matches!(
                (p.canonicalize(), s.canonicalize()),
                (Ok(x), Ok(y)) if x == y
            )
    };
    if a.output_vcf.as_deref().is_some_and(same) {
        bail!(
            "--skipped {}: the same file as -O/--output-vcf; give the list of skipped records a file of its own",
            s.display()
        );
    }
    Ok(())
}

/// Runs `variant`.
pub fn variant(a: VariantArgs) -> Result<()> {
    if a.model_type != "pytorch" {
        bail!(
            "--model-type {}: only pytorch checkpoints are supported",
            a.model_type
        );
    }
    if a.annotation == "-" {
        bail!("-A -: the annotation must be a file (standard input is where the VCF is read from)");
    }
    if a.model.iter().any(|m| m == "SpliceAI") {
        bail!("-m/--model: give an OpenSpliceAI checkpoint or a directory of them (SpliceAI's Keras models are not supported)");
    }
    if let Some(s) = &a.skipped {
        check_skipped_path(s, &a)?;
    }
    let models: Vec<PathBuf> = a.model.iter().map(PathBuf::from).collect();
    let index = a
        .input_vcf
        .as_deref()
        .filter(|_| !a.region.is_empty() || a.regions_file.is_some())
        .and_then(crate::genome::vcf_index::index_beside);
    let index_kind = super::merge::index_kind(a.csi);
    // Both index names: the one written, and the other kind, which is removed as stale.
    let indexes = crate::genome::vcf_write::index_paths(a.output_vcf.as_deref());
    Io::new()
        .input_opt("-I", a.input_vcf.as_ref())
        .input_opt("-I's index", index.as_ref())
        .input_opt("--regions-file", a.regions_file.as_ref())
        .input("-R", &a.ref_genome)
        .input("-A", &a.annotation)
        .inputs("-m", &models)
        .input_opt("--temperature", a.scoring.temperature.as_ref())
        .output_opt("-O", a.output_vcf.as_ref())
        .output_opt("-O", indexes.first())
        .output_opt("-O", indexes.get(1))
        .output_opt("--skipped", a.skipped.as_ref())
        .check()?;
    let regions = Regions::new(&a.region, a.regions_file.as_deref())?;
    let ens = load_ensemble("variant", &models, &a.scoring, &a.device)?;
    let opts = VariantOptions {
        reference: a.ref_genome,
        annotation: a.annotation,
        input: a.input_vcf,
        output: a.output_vcf,
        skipped: a.skipped,
        distance: a.distance as usize,
        mask: a.mask == 1,
        precision: a.precision,
        progress: !a.quiet,
        info_key: a.info_key,
        provenance: !a.no_provenance,
        regions,
        shard: a.shard.unwrap_or(Shard::ALL),
        command_line: (!a.no_provenance).then(super::merge::command_words),
        index: index_kind,
    };
    let summary = variant::run(&opts, &ens)?;
    eprintln!("{summary}");
    peak_rss();
    Ok(())
}
