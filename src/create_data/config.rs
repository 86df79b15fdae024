//! create-data options (OpenSpliceAI's flags plus this port's own).

use std::path::PathBuf;

/// `--parse-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ParseType {
    /// The longest transcript by genomic span.
    #[value(name = "canonical")]
    Canonical,
    /// Every transcript, one record each.
    #[value(name = "all_isoforms")]
    AllIsoforms,
}

/// `--biotype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Biotype {
    #[value(name = "protein-coding")]
    ProteinCoding,
    #[value(name = "non-coding")]
    NonCoding,
    #[value(name = "all")]
    All,
}

/// `--chr-split`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChrSplit {
    #[value(name = "train-test")]
    TrainTest,
    #[value(name = "test")]
    Test,
}

/// `--split-method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitMethod {
    #[value(name = "random")]
    Random,
    #[value(name = "human")]
    Human,
}

/// Everything create-data needs.
#[derive(Debug, Clone)]
pub struct CreateDataConfig {
    pub annotation: PathBuf,
    pub genome: PathBuf,
    pub output_dir: PathBuf,
    pub parse_type: ParseType,
    pub biotype: Biotype,
    pub chr_split: ChrSplit,
    pub split_method: SplitMethod,
    pub val_split_ratio: f64,
    pub split_ratio: f64,
    pub canonical_only: bool,
    pub remove_paralogs: bool,
    pub min_identity: f64,
    pub min_coverage: f64,
    pub write_fasta: bool,
    /// Seed of the CPython-compatible generator behind both shuffles.
    pub random_seed: i64,
    /// Reproduce OpenSpliceAI 0.0.7's bugs (cumulative isoform labels, wrapping negative indices, gene_biotype
    /// only, no gene-level fallback split) for byte-identical outputs.
    pub upstream_bugs: bool,
    /// Split genes (seeded) when the chromosome split leaves train empty. Off with `--no-gene-split` or
    /// `--upstream-bugs`.
    pub gene_split: bool,
    pub progress: bool,
}

impl CreateDataConfig {
    /// The configuration with upstream's defaults for the three required paths.
    pub fn new(annotation: PathBuf, genome: PathBuf, output_dir: PathBuf) -> Self {
        Self {
            annotation,
            genome,
            output_dir,
            parse_type: ParseType::Canonical,
            biotype: Biotype::ProteinCoding,
            chr_split: ChrSplit::TrainTest,
            split_method: SplitMethod::Random,
            val_split_ratio: 0.1,
            split_ratio: 0.8,
            canonical_only: false,
            remove_paralogs: false,
            min_identity: 0.8,
            min_coverage: 0.5,
            write_fasta: false,
            random_seed: 42,
            upstream_bugs: false,
            gene_split: true,
            progress: false,
        }
    }

    /// The filters in words, for the "no genes passed" error.
    pub fn describe_filters(&self) -> String {
        format!(
            "--biotype {:?}, --parse-type {:?}, --chr-split {:?}, --split-method {:?}, --split-ratio {}",
            self.biotype, self.parse_type, self.chr_split, self.split_method, self.split_ratio
        )
    }
}
