//! Command-line arguments: OpenSpliceAI's `transfer`/`train` flags (same long and short forms, same
//! defaults) plus this tool's own commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::metrics::Loss;
use crate::model::FlankConfig;
use crate::train::schedule::SchedulerKind;

/// Train and fine-tune SpliceAI splice-site models (OpenSpliceAI-compatible) in pure Rust.
#[derive(Debug, Parser)]
#[command(name = "openspliceai-rs", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fine-tune a pretrained OpenSpliceAI model on new data (OpenSpliceAI `transfer`).
    Transfer(TransferArgs),
    /// Train a SpliceAI model from scratch (OpenSpliceAI `train`).
    Train(TrainArgs),
    /// Score a checkpoint on a test HDF5: loss and every metric.
    Test(TestArgs),
    /// Write example data, train a small model from scratch, then fine-tune it: a two-minute tour.
    Quickstart(QuickstartArgs),
    /// Write a learnable synthetic data set in `openspliceai create-data` layout.
    ExampleData(ExampleDataArgs),
    /// Describe a checkpoint: format, tensors, parameter count, flanking size, BatchNorm statistics.
    Inspect(InspectArgs),
    /// Convert a checkpoint between PyTorch `.pt` and `.safetensors` (by extension).
    Convert(ConvertArgs),
    /// Eval-mode forward pass of a checkpoint on a safetensors input `x` (N, 4, 5000+F) → `probs` (N, 3, 5000).
    Forward(ForwardArgs),
    /// Measure speed: eval forward, train steps (-u 2, -A) and each conv shape, beside the matmul ceiling.
    Bench(BenchArgs),
    /// Training curves of one or more run directories as one self-contained HTML file (inline SVG).
    Report(ReportArgs),
    /// Genome FASTA + GFF3/GTF annotation to training HDF5 files (OpenSpliceAI `create-data`).
    CreateData(CreateDataArgs),
    /// Splice-site BED files for a FASTA or the genes of a GFF (OpenSpliceAI `predict`).
    Predict(super::infer::PredictArgs),
    /// Delta scores for the variants of a VCF (OpenSpliceAI / SpliceAI `variant`).
    Variant(super::infer::VariantArgs),
    /// Join VCFs (the shards of a `variant` run) in order into one; a `.gz` output is indexed.
    Merge(super::merge::MergeArgs),
    /// Fit one temperature per class on the validation set; NLL, ECE, reliability before and after
    /// (OpenSpliceAI `calibrate`).
    Calibrate(super::calibrate::CalibrateArgs),
}

/// `create-data`: OpenSpliceAI's flags and defaults, plus `--random-seed`, `--upstream-bugs`, `--no-gene-split`.
#[derive(Debug, Args, Clone)]
pub struct CreateDataArgs {
    /// GFF3 or GTF annotation (plain, gzip or bgzip).
    #[arg(long = "annotation-gff")]
    pub annotation_gff: PathBuf,
    /// Genome FASTA (plain, gzip or bgzip).
    #[arg(long = "genome-fasta")]
    pub genome_fasta: PathBuf,
    /// Directory for the outputs (created if missing).
    #[arg(long = "output-dir")]
    pub output_dir: PathBuf,
    /// Transcripts per gene: the longest (canonical) or every one.
    #[arg(long = "parse-type", value_enum, default_value = "canonical")]
    pub parse_type: crate::create_data::ParseType,
    /// Genes to use.
    #[arg(long, value_enum, default_value = "protein-coding")]
    pub biotype: crate::create_data::Biotype,
    /// Write train and test, or test only.
    #[arg(long = "chr-split", value_enum, default_value = "train-test")]
    pub chr_split: crate::create_data::ChrSplit,
    /// How chromosomes are split into train and test.
    #[arg(long = "split-method", value_enum, default_value = "random")]
    pub split_method: crate::create_data::SplitMethod,
    /// Share of train records moved to validation.
    #[arg(
        long = "val_split_ratio",
        visible_alias = "val-split-ratio",
        default_value_t = 0.1,
        value_parser = ratio("--val_split_ratio")
    )]
    pub val_split_ratio: f64,
    /// Train share of the total genome length in the random split.
    #[arg(long = "split-ratio", default_value_t = 0.8, value_parser = ratio("--split-ratio"))]
    pub split_ratio: f64,
    /// Label an intron only if its motifs are GT-AG, GC-AG or AT-AC.
    #[arg(long = "canonical-only")]
    pub canonical_only: bool,
    /// Accepted for compatibility and ignored, as upstream does: every output carries 5000 + 5000 context.
    #[arg(long = "flanking-size", default_value_t = 80)]
    pub flanking_size: usize,
    /// Read the written datasets back and print their shapes.
    #[arg(long = "verify-h5")]
    pub verify_h5: bool,
    /// Remove test and validation records that map onto train records (minimap2, map-ont).
    #[arg(long = "remove-paralogs")]
    pub remove_paralogs: bool,
    /// Paralog threshold: matching bases / alignment length.
    #[arg(long = "min-identity", default_value_t = 0.8, value_parser = ratio("--min-identity"))]
    pub min_identity: f64,
    /// Paralog threshold: alignment length / query length.
    #[arg(long = "min-coverage", default_value_t = 0.5, value_parser = ratio("--min-coverage"))]
    pub min_coverage: f64,
    /// Also write train.fa and test.fa.
    #[arg(long = "write-fasta")]
    pub write_fasta: bool,
    /// Seed of both shuffles (CPython's generator: seed 42 reproduces `random.seed(42)` runs of upstream).
    #[arg(long = "random-seed", default_value_t = 42)]
    pub random_seed: i64,
    /// Reproduce OpenSpliceAI 0.0.7's data bugs for byte-identical outputs (docs/upstream-differences.md).
    #[arg(long = "upstream-bugs")]
    pub upstream_bugs: bool,
    /// Keep upstream's empty train when one chromosome group holds every gene (no gene-level split).
    #[arg(long = "no-gene-split")]
    pub no_gene_split: bool,
    #[command(flatten)]
    pub progress: ProgressArgs,
    /// No progress bars.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `--progress-interval`, shared by the long commands.
#[derive(Debug, Args, Clone, Copy)]
pub struct ProgressArgs {
    /// When stderr is not a terminal (a log file, a batch job): seconds between plain progress lines
    /// (done/total, rate, ETA).
    #[arg(long = "progress-interval", value_name = "SECONDS",
          default_value_t = crate::progress::DEFAULT_INTERVAL_S, value_parser = positive_seconds)]
    pub progress_interval: f64,
}

impl Default for ProgressArgs {
    fn default() -> Self {
        Self {
            progress_interval: crate::progress::DEFAULT_INTERVAL_S,
        }
    }
}

impl ProgressArgs {
    /// Makes the interval the process's (see [`crate::progress::set_interval`]).
    pub fn apply(&self) {
        crate::progress::set_interval(self.progress_interval);
    }
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.001 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of seconds; expected a number of at least 0.001 (e.g. 30)"
        )),
    }
}

/// `report`.
#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Run directories (each holding metrics.jsonl, as written by `train`/`transfer`), overlaid in one report.
    #[arg(value_name = "RUN_DIR", required = true)]
    pub run_dirs: Vec<PathBuf>,
    /// The HTML file to write.
    #[arg(short, long, value_name = "HTML", default_value = "report.html")]
    pub output: PathBuf,
    /// Also write each chart as its own file beside the HTML (`{stem}-{chart}.png|svg`).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<crate::report::ChartFormat>,
}

/// `bench`.
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Flanking sizes to measure (repeat the flag), default all four.
    #[arg(short = 'f', long = "flanking-size", value_parser = parse_flank)]
    pub flanking_size: Vec<&'static FlankConfig>,
    /// Timed repetitions (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    #[command(flatten)]
    pub compute: ComputeArgs,
    /// Only measure the memory a training step keeps alive for backward (`-u 2` and `-A`), no timings.
    #[arg(long)]
    pub memory: bool,
    #[command(flatten)]
    pub precision: PrecisionArgs,
}

/// `--precision` of the commands that train or score on HDF5 data (`train`, `transfer`, `test`,
/// `calibrate`), of `forward` and of `bench`; `--compute-precision`, the name `predict` and `variant` use, is
/// accepted too.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct PrecisionArgs {
    /// Compute precision of the convolutions: f32, bf16 (bf16 operands, f32 accumulation in every conv,
    /// forward and backward; BatchNorm, loss, optimiser, master weights and checkpoints stay f32; on the
    /// CPU it needs AVX-512 BF16, else f32 with a message) or tf32 (CUDA only).
    #[arg(long, alias = "compute-precision", value_enum, value_name = "P",
          default_value_t = crate::ops::precision::Precision::F32)]
    pub precision: crate::ops::precision::Precision,
}

impl PrecisionArgs {
    /// Makes the flag the process's conv precision for a model on `device`, and prints the line that says
    /// what runs (or why bf16 falls back to f32) on the console, once. An error names a bad `OSAI_BF16`.
    pub fn select(&self, device: &candle_core::Device) -> anyhow::Result<()> {
        if let Some(m) = super::infer::select_precision(self.precision, device)? {
            println!("{m}");
        }
        Ok(())
    }
}

/// Where the model runs and in what batches: the flags of every command that runs it.
#[derive(Debug, Args, Clone)]
pub struct ComputeArgs {
    /// Windows per batch [default: 36 for 80/400nt, 24 for 2000nt, 12 for 10000nt, as upstream].
    #[arg(long = "batch-size", value_parser = parse_at_least_one)]
    pub batch_size: Option<usize>,
    /// Compute device: auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

impl ComputeArgs {
    /// The batch size: the flag, else the flanking size's default.
    pub fn batch(&self, flank: &FlankConfig) -> usize {
        self.batch_size.unwrap_or(flank.batch_size)
    }
}

/// Flags shared by `train` and `transfer` (OpenSpliceAI's names, short forms and defaults).
#[derive(Debug, Args, Clone)]
pub struct CommonTrainArgs {
    /// Training HDF5 from `openspliceai create-data` (also `-train`).
    #[arg(long = "train-dataset", value_name = "H5")]
    pub train_dataset: PathBuf,
    /// Test HDF5, evaluated after every epoch (also `-test`).
    #[arg(long = "test-dataset", value_name = "H5")]
    pub test_dataset: PathBuf,
    /// Validation HDF5; without it, 10% of the training windows (seeded) are held out.
    #[arg(long = "validation-dataset", value_name = "H5")]
    pub validation_dataset: Option<PathBuf>,
    /// Number of epochs.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub epochs: usize,
    /// Learning-rate scheduler, stepped after every batch.
    #[arg(short = 's', long, value_enum, default_value_t = SchedulerKind::MultiStepLR)]
    pub scheduler: SchedulerKind,
    /// Stop when the validation loss has not improved for `--patience` epochs.
    #[arg(short = 'E', long = "early-stopping")]
    pub early_stopping: bool,
    /// Epochs without improvement before early stopping.
    #[arg(short = 'P', long, default_value_t = 2)]
    pub patience: usize,
    /// Output directory; the run goes to OUTPUT_DIR/SpliceAI_{project}_{flank}_{exp}_rs{seed}/{exp}/.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output_dir: PathBuf,
    /// Project name (part of the run directory's name).
    #[arg(short = 'p', long = "project-name")]
    pub project_name: String,
    /// Experiment number (part of the run directory's name).
    #[arg(short = 'e', long = "exp-num", default_value = "0")]
    pub exp_num: String,
    /// Flanking sequence length: 80, 400, 2000 or 10000 [default: train 80, as upstream; transfer the
    /// pretrained checkpoint's, which a given -f must match].
    #[arg(short = 'f', long = "flanking-size", value_parser = parse_flank)]
    pub flanking_size: Option<&'static FlankConfig>,
    /// Random seed (initialisation, data order, validation split).
    #[arg(short = 'r', long = "random-seed", default_value_t = 42)]
    pub random_seed: u64,
    /// Loss function.
    #[arg(short = 'l', long, value_enum, default_value_t = Loss::CrossEntropyLoss)]
    pub loss: Loss,
    #[command(flatten)]
    pub compute: ComputeArgs,
    #[command(flatten)]
    pub precision: PrecisionArgs,
    /// Allow writing into a run directory that already holds checkpoints.
    #[arg(long)]
    pub overwrite: bool,
    /// Continue the run directory from its last complete epoch, to the same bytes as an uninterrupted
    /// run (the same flags are required); starts the run when the directory holds none.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    #[command(flatten)]
    pub progress: ProgressArgs,
    /// Hide progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Per-epoch console output: a labelled table row per split, or OpenSpliceAI's own dump (the LOG/ files
    /// are the same either way).
    #[arg(long, value_enum, default_value_t = crate::train::console::ConsoleMode::Table)]
    pub console: crate::train::console::ConsoleMode,
    /// Do not write report.html (training curves) into the run directory at the end.
    #[arg(long = "no-report")]
    pub no_report: bool,
}

/// `transfer`: OpenSpliceAI's flags.
#[derive(Debug, Args, Clone)]
pub struct TransferArgs {
    #[command(flatten)]
    pub common: CommonTrainArgs,
    /// The pretrained model (PyTorch .pt state dict, or .safetensors).
    #[arg(short = 'm', long = "pretrained-model", value_name = "CKPT")]
    pub pretrained_model: PathBuf,
    /// Train every parameter.
    #[arg(short = 'A', long = "unfreeze-all")]
    pub unfreeze_all: bool,
    /// Train the last N residual units (Skip layers, initial and final convs stay frozen).
    #[arg(short = 'u', long, default_value_t = 1, value_name = "N")]
    pub unfreeze: i64,
    /// Keep the BatchNorms of frozen layers in eval mode while training: they normalise with the
    /// pretrained running statistics and never update them (upstream lets them drift, which on new
    /// species often makes the transferred model worse than the pretrained one).
    #[arg(long = "freeze-bn")]
    pub freeze_bn: bool,
    /// With --freeze-bn, the frozen layers are a fixed function and their output is computed once per
    /// window and cached (f16, memory-mapped, in the run directory); this turns the cache off.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Keep the prefix cache file after the run.
    #[arg(long = "keep-cache")]
    pub keep_cache: bool,
    /// Where the prefix cache goes (default: the run directory). It holds every window's activations
    /// (the start of the run prints the total; gigabytes for a chromosome's windows), so a fast local
    /// disk with room helps; the file is named after the run directory and deleted at the end.
    #[arg(long = "cache-dir", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Upstream's loading rule: take the checkpoint's tensors whose name and shape match the model and
    /// keep the seeded initial values elsewhere (e.g. a 10000nt checkpoint's first units for a 400nt
    /// model). Without it the checkpoint must be a complete model of the flanking size.
    #[arg(long = "partial-load")]
    pub partial_load: bool,
}

/// `train`: OpenSpliceAI's flags.
#[derive(Debug, Args, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub common: CommonTrainArgs,
}

/// `test`.
#[derive(Debug, Args, Clone)]
pub struct TestArgs {
    /// The checkpoint to score.
    #[arg(short, long, alias = "pretrained-model", value_name = "CKPT")]
    pub model: PathBuf,
    /// Test HDF5 (also `-test`).
    #[arg(long = "test-dataset", value_name = "H5")]
    pub test_dataset: PathBuf,
    /// Flanking sequence length: 80, 400, 2000 or 10000 [default: the checkpoint's; a given -f must
    /// match it].
    #[arg(short = 'f', long = "flanking-size", value_parser = parse_flank)]
    pub flanking_size: Option<&'static FlankConfig>,
    /// Where LOG/TEST goes (a run directory, or any directory).
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Loss function to report.
    #[arg(short = 'l', long, value_enum, default_value_t = Loss::CrossEntropyLoss)]
    pub loss: Loss,
    /// Score the calibrated model: divide the logits by this temperature (`calibrate`'s temperature.txt
    /// or temperature.pt) before the softmax.
    #[arg(long, value_name = "FILE")]
    pub temperature: Option<PathBuf>,
    #[command(flatten)]
    pub compute: ComputeArgs,
    #[command(flatten)]
    pub precision: PrecisionArgs,
    #[command(flatten)]
    pub progress: ProgressArgs,
    /// Console output: a labelled table row (the columns of `transfer`'s table), or OpenSpliceAI's own
    /// unlabelled dump (`upstream`). LOG/TEST and metrics.jsonl are the same in both modes.
    #[arg(long, value_enum, default_value_t = crate::train::console::ConsoleMode::Table)]
    pub console: crate::train::console::ConsoleMode,
    /// Hide progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// `quickstart` (it starts DIR's runs afresh each time).
#[derive(Debug, Args, Clone)]
pub struct QuickstartArgs {
    /// Where data and runs go.
    #[arg(long, default_value = "quickstart_outputs")]
    pub dir: PathBuf,
    /// Compute device.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// `example-data`.
#[derive(Debug, Args, Clone)]
pub struct ExampleDataArgs {
    /// Output directory (dataset_train.h5, dataset_test.h5).
    #[arg(long = "output-dir", short = 'o', value_name = "DIR")]
    pub output_dir: PathBuf,
    /// Shards in the training file.
    #[arg(long, default_value_t = 4)]
    pub shards: usize,
    /// Windows per shard.
    #[arg(long, default_value_t = 40)]
    pub windows: usize,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// `inspect`.
#[derive(Debug, Args, Clone)]
pub struct InspectArgs {
    /// A `.pt` or `.safetensors` checkpoint.
    pub checkpoint: PathBuf,
}

/// `convert`.
#[derive(Debug, Args, Clone)]
pub struct ConvertArgs {
    /// Input checkpoint (.pt or .safetensors).
    pub input: PathBuf,
    /// Output checkpoint; the format follows the extension. The input must be a complete SpliceAI model
    /// (the checks of every command that loads one).
    pub output: PathBuf,
}

/// `forward`.
#[derive(Debug, Args, Clone)]
pub struct ForwardArgs {
    /// Checkpoint (.pt or .safetensors).
    #[arg(short = 'm', long)]
    pub model: PathBuf,
    /// Flanking sequence length: 80, 400, 2000 or 10000 [default: the checkpoint's; a given -f must
    /// match it].
    #[arg(short = 'f', long = "flanking-size", value_parser = parse_flank)]
    pub flanking_size: Option<&'static FlankConfig>,
    /// safetensors file with `x` (N, 4, 5000+F), f32.
    #[arg(long)]
    pub input: PathBuf,
    /// safetensors file to write with `probs` (N, 3, 5000).
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub compute: ComputeArgs,
    #[command(flatten)]
    pub precision: PrecisionArgs,
}

/// Rewrites OpenSpliceAI's single-dash long options (`-train`, `-test`) into the long forms clap knows.
pub fn normalize_args<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    args.into_iter()
        .map(|a| {
            for (old, new) in [("-train", "--train-dataset"), ("-test", "--test-dataset")] {
                if a == old {
                    return new.to_string();
                }
                if let Some(rest) = a.strip_prefix(old).and_then(|r| r.strip_prefix('=')) {
                    return format!("{new}={rest}");
                }
            }
            a
        })
        .collect()
}

/// Parses a flanking size straight into its configuration (the one table, [`FlankConfig::for_flank`]).
/// A count that must be at least 1 (a batch size).
pub(crate) fn parse_at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("`{s}` is not a whole number of at least 1")),
    }
}

pub(crate) fn parse_flank(s: &str) -> Result<&'static FlankConfig, String> {
    s.parse::<usize>()
        .map_err(|_| format!("`{s}` is not a whole number"))
        .and_then(|v| FlankConfig::for_flank(v).map_err(|e| e.to_string()))
}

/// A parser for one of create-data's ratios: a number in the flag's range
/// ([`crate::create_data::config::RANGES`]); clap's message names the flag and the value.
fn ratio(
    flag: &'static str,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    let range = crate::create_data::config::Range::of(flag);
    move |s: &str| {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a number; expected {}", range.describe()))?;
        range
            .check(v)
            .map_err(|_| format!("expected a number {} ({})", range.describe(), range.why))
    }
}
