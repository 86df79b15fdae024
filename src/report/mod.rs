//! `report`: training curves of one or more run directories as one self-contained HTML file (inline SVG
//! charts drawn with plotters, no JavaScript, no network), and optionally one PNG or SVG file per chart.
//!
//! Input per run: `metrics.jsonl` (required, schema in docs/outputs.md), `run.json` (optional: the run's flags,
//! which name it in the legends) and `LOG/TRAIN/learning_rate_every_batch.txt` (optional: the per-batch lr).

pub mod chart;
pub mod html;
pub mod load;

use std::path::{Path, PathBuf};

pub use chart::{ChartFormat, ChartKind};
pub use load::{load_run, RunData};

/// Errors of `report`, each naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A run directory lacks `metrics.jsonl`.
    #[error("{path}: no such file: is {dir} a run directory of `train`/`transfer` (the folder holding models/ and LOG/)?")]
    MissingMetrics {
        /// The expected file.
        path: PathBuf,
        /// The directory given.
        dir: PathBuf,
    },
    /// Reading a file failed.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line of a file is not what the schema says.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A file holds nothing to plot.
    #[error("{path}: {message}")]
    Empty {
        /// The file.
        path: PathBuf,
        /// What was missing.
        message: String,
    },
    /// Drawing a chart failed.
    #[error("cannot draw the chart `{chart}`: {message}")]
    Draw {
        /// The chart's title.
        chart: String,
        /// The plotting library's message.
        message: String,
    },
    /// Writing an output failed.
    #[error(transparent)]
    Write(#[from] crate::atomic::ReplaceError),
}

/// What `report` writes.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The HTML file.
    pub output: PathBuf,
    /// Also one file per chart beside the HTML (`{stem}-{chart}.{png|svg}`).
    pub chart_format: Option<ChartFormat>,
}

/// Loads every run, writes the HTML report (and the chart files when asked); returns the paths written.
pub fn write_report(
    run_dirs: &[PathBuf],
    opts: &ReportOptions,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut runs = run_dirs
        .iter()
        .map(|d| load_run(d))
        .collect::<Result<Vec<_>, _>>()?;
    load::disambiguate_labels(&mut runs);
    let html = html::render(&runs)?;
    crate::atomic::replace(&opts.output, html.as_bytes())?;
    let mut written = vec![opts.output.clone()];
    if let Some(format) = opts.chart_format {
        for kind in ChartKind::ALL {
            let path = chart_path(&opts.output, kind, format);
            let bytes = chart::render_file(kind, &runs, format)?;
            crate::atomic::replace(&path, &bytes)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// `{dir}/{stem}-{chart}.{ext}` beside the HTML file.
fn chart_path(html: &Path, kind: ChartKind, format: ChartFormat) -> PathBuf {
    let stem = html
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    html.with_file_name(format!("{stem}-{}.{}", kind.slug(), format.extension()))
}
