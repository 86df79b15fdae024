//! What `train`/`transfer` print per epoch (`--console`): by default one labelled table row per split with
//! the zero-shot baseline beneath validation and test and the best epoch marked; `--console upstream` prints
//! OpenSpliceAI's own dump instead (unlabelled top-k/threshold rows, per-class lines, "Validationing model..."
//! kept as upstream spells it). The `LOG/` files are the same in both modes.

use super::run_log::{console_summary, python_float_repr};
use crate::console::Output;
use crate::metrics::EpochMetrics;
use crate::rundir::Split;

/// `--console`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ConsoleMode {
    /// One labelled row per split per epoch.
    #[default]
    Table,
    /// OpenSpliceAI 0.0.7's console output.
    Upstream,
}

/// The per-epoch printer of a run.
#[derive(Debug, Clone)]
pub struct Console {
    mode: ConsoleMode,
    out: Output,
    best_val_loss: f64,
    zero_shot_val: Option<EpochMetrics>,
    zero_shot_test: Option<EpochMetrics>,
}

/// The table's column names, as [`table_header`] prints them.
const COLUMNS: [&str; 11] = [
    "split",
    "loss",
    "lr",
    "acc top1",
    "acc AUPRC",
    "acc F1",
    "don top1",
    "don AUPRC",
    "don F1",
    "seconds",
    "windows/s",
];

/// Column header of the table (matches [`table_row`]).
pub fn table_header() -> String {
    let c = COLUMNS;
    format!(
        "  {:<10} {:>10} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9} {:>7} {:>8} {:>9}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]
    )
}

/// One table row: `name`, the metrics, the lr and the pass's seconds where known, then `mark`.
pub fn table_row(
    name: &str,
    m: &EpochMetrics,
    lr: Option<f64>,
    seconds: Option<f64>,
    mark: &str,
) -> String {
    let opt = |v: Option<String>, w: usize| format!("{:>w$}", v.unwrap_or_else(|| "-".into()));
    let row = format!(
        "  {:<10} {:>10} {} {:>9.4} {:>9.4} {:>7.4} {:>9.4} {:>9.4} {:>7.4} {} {} {mark}",
        name,
        format!("{:.4e}", m.loss),
        opt(lr.map(|l| format!("{l:.2e}")), 9),
        m.acceptor.ranking.topk,
        m.acceptor.ranking.auprc,
        m.acceptor.class.f1,
        m.donor.ranking.topk,
        m.donor.ranking.auprc,
        m.donor.class.f1,
        opt(seconds.map(|s| format!("{s:.1}")), 8),
        opt(
            seconds
                .filter(|s| *s > 0.0)
                .map(|s| format!("{:.1}", m.windows as f64 / s)),
            9
        ),
    );
    row.trim_end().to_string()
}

/// A split's name in the table.
fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Val => "validation",
        Split::Test => "test",
    }
}

impl Console {
    /// A printer in `mode`, writing to `out`.
    pub fn new(mode: ConsoleMode, out: Output) -> Self {
        Self {
            mode,
            out,
            best_val_loss: f64::INFINITY,
            zero_shot_val: None,
            zero_shot_test: None,
        }
    }

    /// The mode.
    pub fn mode(&self) -> ConsoleMode {
        self.mode
    }

    /// Records and prints the pretrained model's zero-shot scores (`transfer`).
    pub fn zero_shot(&mut self, val: &EpochMetrics, test: &EpochMetrics) {
        match self.mode {
            ConsoleMode::Upstream => self.out.line(format!(
                "Zero-shot (pretrained model, before training): validation loss {} | test acceptor top-1 {:.4} AUPRC {:.4}, donor top-1 {:.4} AUPRC {:.4}",
                python_float_repr(val.loss),
                test.acceptor.ranking.topk,
                test.acceptor.ranking.auprc,
                test.donor.ranking.topk,
                test.donor.ranking.auprc
            )),
            ConsoleMode::Table => {
                self.out.line("\nZero-shot: the pretrained model before training");
                self.out.line(table_header());
                self.out.line(table_row("validation", val, None, None, ""));
                self.out.line(table_row("test", test, None, None, ""));
            }
        }
        self.zero_shot_val = Some(val.clone());
        self.zero_shot_test = Some(test.clone());
    }

    /// Printed when an epoch starts (`epoch` from 0).
    pub fn epoch_start(&self, epoch: usize, epochs: usize) {
        match self.mode {
            ConsoleMode::Upstream => {
                self.out.line(format!("\n{}", "=".repeat(60)));
                self.out
                    .line(format!("Epoch {}/{}: training model...", epoch + 1, epochs));
            }
            ConsoleMode::Table => {
                self.out.line(format!(
                    "\nEpoch {}/{} (models/model_{epoch}.pt)",
                    epoch + 1,
                    epochs
                ));
                self.out.line(table_header());
            }
        }
    }

    /// Printed after a split's pass: upstream's dump, or a row (validation rows that improve the best
    /// validation loss are marked `* best`; validation and test rows get the zero-shot row beneath).
    pub fn split(&mut self, split: Split, m: &EpochMetrics, lr: Option<f64>, seconds: f64) {
        match self.mode {
            ConsoleMode::Upstream => {
                self.out.line(split.console_header());
                self.out.text(&console_summary(m, false));
                let name = match split {
                    Split::Train => "Training",
                    Split::Val => "Validation",
                    Split::Test => "Testing",
                };
                self.out
                    .line(format!("{name} Loss: {}", python_float_repr(m.loss)));
            }
            ConsoleMode::Table => {
                let mark = if split == Split::Val && m.loss < self.best_val_loss {
                    "* best"
                } else {
                    ""
                };
                self.out
                    .line(table_row(split_name(split), m, lr, Some(seconds), mark));
                let zero = match split {
                    Split::Val => self.zero_shot_val.as_ref(),
                    Split::Test => self.zero_shot_test.as_ref(),
                    Split::Train => None,
                };
                if let Some(z) = zero {
                    self.out.line(table_row("zero-shot", z, None, None, ""));
                }
            }
        }
        if split == Split::Val && m.loss < self.best_val_loss {
            self.best_val_loss = m.loss;
        }
    }

    /// A line only upstream's console prints (`New best model saved.`, the epoch's final lr and seconds).
    pub fn upstream_only(&self, line: &str) {
        if self.mode == ConsoleMode::Upstream {
            self.out.line(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::EpochMetrics;

    fn metrics() -> EpochMetrics {
        let mut m = crate::metrics::MetricsAccumulator::new(5000).finish();
        m.loss = 0.000719;
        m.windows = 112;
        m.acceptor.ranking.topk = 0.8712;
        m.acceptor.ranking.auprc = 0.9281;
        m.donor.ranking.topk = 0.8281;
        m.donor.ranking.auprc = 0.9012;
        m
    }

    #[test]
    fn rows_line_up_with_the_header() {
        let m = metrics();
        let row = table_row("validation", &m, Some(1e-4), Some(2.0), "* best");
        let header = table_header();
        // Every number ends where its column's name does (right-aligned).
        let b = row.as_bytes();
        let row_ends: Vec<usize> = (1..=b.len())
            .filter(|&i| b[i - 1] != b' ' && (i == b.len() || b[i] == b' '))
            .collect();
        let names = &COLUMNS[1..];
        let header_ends: Vec<usize> = names
            .iter()
            .map(|n| header.find(&format!(" {n}")).unwrap() + 1 + n.len())
            .collect();
        assert_eq!(&row_ends[1..11], &header_ends[..], "\n{header}\n{row}");
        assert!(row.ends_with("* best"));
        assert!(row.contains("7.1900e-4"));
        assert!(row.contains("56.0"), "{row}");
    }

    #[test]
    fn unknown_values_are_dashes() {
        let row = table_row("zero-shot", &metrics(), None, None, "");
        assert_eq!(row.matches(" -").count(), 3, "{row}");
    }
}
