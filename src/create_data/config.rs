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

    /// Checks the ratios and thresholds against [`RANGES`]; the message names the flag.
    pub fn check_ranges(&self) -> Result<(), String> {
        let values = [
            self.val_split_ratio,
            self.split_ratio,
            self.min_identity,
            self.min_coverage,
        ];
        for (range, v) in RANGES.iter().zip(values) {
            range.check(v)?;
        }
        Ok(())
    }

    /// The filters in words, for the "no genes passed" error.
    pub fn describe_filters(&self) -> String {
        format!(
            "--biotype {:?}, --parse-type {:?}, --chr-split {:?}, --split-method {:?}, --split-ratio {}",
            self.biotype, self.parse_type, self.chr_split, self.split_method, self.split_ratio
        )
    }
}

/// The allowed values of one numeric flag: `min..max`, each end in or out.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub flag: &'static str,
    pub min: f64,
    pub max: f64,
    pub max_included: bool,
    /// What the flag means, for the message.
    pub why: &'static str,
}

/// create-data's ratios and thresholds, in the order of [`CreateDataConfig::check_ranges`]. `--split-ratio`
/// 0 puts every sequence in test and 1 every one in train (both upstream runs); `--val_split_ratio` 1 would
/// move every train record to validation and leave train empty, so it stops below 1.
pub const RANGES: [Range; 4] = [
    Range {
        flag: "--val_split_ratio",
        min: 0.0,
        max: 1.0,
        max_included: false,
        why: "the share of train records moved to validation",
    },
    Range {
        flag: "--split-ratio",
        min: 0.0,
        max: 1.0,
        max_included: true,
        why: "the train share of the genome",
    },
    Range {
        flag: "--min-identity",
        min: 0.0,
        max: 1.0,
        max_included: true,
        why: "a fraction of aligned bases",
    },
    Range {
        flag: "--min-coverage",
        min: 0.0,
        max: 1.0,
        max_included: true,
        why: "a fraction of the query's length",
    },
];

impl Range {
    /// The range in words: `from 0 to 1` or `from 0 up to (not including) 1`.
    pub fn describe(&self) -> String {
        if self.max_included {
            format!("from {} to {}", self.min, self.max)
        } else {
            format!("at least {} and below {}", self.min, self.max)
        }
    }

    /// `v` if it lies in the range, else a message naming the flag, the value and the range.
    pub fn check(&self, v: f64) -> Result<f64, String> {
        let below_max = if self.max_included {
            v <= self.max
        } else {
            v < self.max
        };
        if v >= self.min && below_max {
            Ok(v)
        } else {
            Err(format!(
                "{} is {v}; expected a number {} ({})",
                self.flag,
                self.describe(),
                self.why
            ))
        }
    }

    /// The range of `flag` (one of [`RANGES`]).
    pub fn of(flag: &str) -> &'static Range {
        RANGES
            .iter()
            .find(|r| r.flag == flag)
            .expect("a flag of RANGES")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_thresholds_have_ranges() {
        let base = || CreateDataConfig::new("a".into(), "g".into(), "o".into());
        assert!(base().check_ranges().is_ok());
        let mut c = base();
        c.split_ratio = 1.0;
        c.val_split_ratio = 0.0;
        assert!(c.check_ranges().is_ok());
        type Set = fn(&mut CreateDataConfig);
        let cases: [(Set, &str); 5] = [
            (|c| c.val_split_ratio = 1.5, "--val_split_ratio is 1.5"),
            (|c| c.val_split_ratio = 1.0, "below 1"),
            (|c| c.split_ratio = -0.1, "--split-ratio is -0.1"),
            (|c| c.min_identity = f64::NAN, "--min-identity is NaN"),
            (|c| c.min_coverage = 2.0, "--min-coverage is 2"),
        ];
        for (set, needle) in cases {
            let mut c = base();
            set(&mut c);
            let err = c.check_ranges().unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }
}
