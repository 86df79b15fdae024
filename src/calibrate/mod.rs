//! `calibrate`: OpenSpliceAI 0.0.7's temperature scaling. One temperature per class is fitted on the
//! validation set (every position of every window, logits collected once in eval mode; see [`fit`]), and
//! the NLL, ECE, Brier scores and reliability curves before and after are reported on validation and test,
//! in upstream's files and layout, plus a self-contained `calibration.html`.
//!
//! The model's weights are never changed: calibrated scores come from any command that takes
//! `--temperature` (the model divides its logits by it before the softmax, [`SpliceAi::set_temperature`]).
//! Upstream's pickled `calibrated_model.pt` (a whole `nn.Module`) is not written.
//!
//! [`SpliceAi::set_temperature`]: crate::model::SpliceAi::set_temperature

pub mod collect;
pub mod fit;
pub mod html;
pub mod metrics;
pub mod npz;
pub mod temperature;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::Device;

use crate::console::Output;
use crate::data::H5File;
use crate::infer::{load_strict, InferError};
use crate::model::FlankConfig;
use crate::progress::Progress;
use crate::train::TrainError;

pub use collect::{collect, windows_used, Collected};
pub use fit::{fit, FitError, FitOptions, FitResult, FitStep};
pub use metrics::{split_metrics, LabelledLogits, Reliability, SplitMetrics};
pub use temperature::{Temperature, TemperatureError};

/// The class names upstream uses in file names and plots.
pub const CLASS_NAMES: [&str; 3] = ["Non-splice site", "Acceptor site", "Donor site"];

/// Errors of `calibrate`; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// `-train`'s name has no `train` to turn into `validation`.
    #[error("-train {}: its file name holds no `train` to replace by `validation` (how the validation file is found); name it with --validation-dataset", .0.display())]
    NoTrainInName(PathBuf),
    /// The validation file derived from `-train` does not exist.
    #[error("validation file {} not found: it is -train {} with `train` replaced by `validation` in the file name; name another one with --validation-dataset", path.display(), train.display())]
    DerivedValidationMissing { path: PathBuf, train: PathBuf },
    /// A named input file does not exist.
    #[error("{flag} {}: no such file", path.display())]
    Missing { flag: &'static str, path: PathBuf },
    /// A named input exists but is not a regular file (a directory, a pipe).
    #[error("{flag} {}: not a regular file: HDF5 is read at random offsets, so a directory, pipe or process substitution cannot be read; give the path of the .h5 file itself", path.display())]
    NotRegular { flag: &'static str, path: PathBuf },
    /// A dataset holds no window that upstream would score.
    #[error("{}: no windows to score", .0.display())]
    NoWindows(PathBuf),
    /// The temperature file.
    #[error(transparent)]
    Temperature(Box<TemperatureError>),
    /// Loading the model (the message names the file and, for another flanking size, says so).
    #[error(transparent)]
    Load(Box<InferError>),
    /// Reading a dataset or running the model over it.
    #[error("cannot score {}", path.display())]
    Score {
        path: PathBuf,
        #[source]
        source: Box<TrainError>,
    },
    /// The fit.
    #[error("cannot fit the temperature")]
    Fit(#[from] FitError),
    /// Drawing the report.
    #[error("cannot draw calibration.html")]
    Report(#[source] Box<crate::report::ReportError>),
    /// Encoding an output.
    #[error("cannot encode {}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    /// Writing an output.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Ctrl-C.
    #[error("interrupted (Ctrl-C); nothing was written")]
    Interrupted,
}

impl From<TemperatureError> for CalibrateError {
    fn from(e: TemperatureError) -> Self {
        CalibrateError::Temperature(Box::new(e))
    }
}

impl From<InferError> for CalibrateError {
    fn from(e: InferError) -> Self {
        CalibrateError::Load(Box::new(e))
    }
}

impl From<crate::report::ReportError> for CalibrateError {
    fn from(e: crate::report::ReportError) -> Self {
        CalibrateError::Report(Box::new(e))
    }
}

/// What `calibrate` needs.
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    /// The checkpoint.
    pub model: PathBuf,
    /// The flanking size the checkpoint must have.
    pub flank: &'static FlankConfig,
    /// `-train`: names the validation file when `validation_dataset` is not given (never read).
    pub train_dataset: PathBuf,
    /// The validation file, if named.
    pub validation_dataset: Option<PathBuf>,
    /// The test file.
    pub test_dataset: PathBuf,
    /// Where everything goes.
    pub output_dir: PathBuf,
    /// `-T`: use this temperature instead of fitting one.
    pub temperature_file: Option<PathBuf>,
    /// Windows per batch.
    pub batch_size: usize,
    /// Compute device.
    pub device: Device,
    /// Progress bars.
    pub progress: bool,
    /// Console text.
    pub out: Output,
    /// `--format`: also each chart of `calibration.html` as its own file, `calibration-{chart}.{png|svg}`.
    pub chart_format: Option<crate::report::ChartFormat>,
}

/// One split's metrics before and after.
#[derive(Debug, Clone)]
pub struct SplitReport {
    /// `validation` or `test`.
    pub name: &'static str,
    /// The file.
    pub path: PathBuf,
    /// Windows scored and windows left out.
    pub windows: usize,
    pub dropped: usize,
    /// Positions scored.
    pub positions: usize,
    /// Under temperature 1.
    pub original: SplitMetrics,
    /// Under the temperature.
    pub calibrated: SplitMetrics,
}

/// What `calibrate` did.
#[derive(Debug, Clone)]
pub struct CalibrationSummary {
    /// The temperature used (fitted, or read with `-T`), clamped.
    pub temperature: Temperature,
    /// The fit, when there was one.
    pub fit: Option<FitResult>,
    /// Validation, then test.
    pub splits: Vec<SplitReport>,
    /// Every file written.
    pub written: Vec<PathBuf>,
}

/// Upstream's rule for the validation file: `-train`'s file name with every `train` replaced by
/// `validation`, in the same directory.
pub fn derived_validation_path(train: &Path) -> Result<PathBuf, CalibrateError> {
    let name = train
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains("train") {
        return Err(CalibrateError::NoTrainInName(train.to_path_buf()));
    }
    Ok(train.with_file_name(name.replace("train", "validation")))
}

/// An error unless `path` (given with `flag`) is an existing regular file.
fn dataset_file(flag: &'static str, path: &Path) -> Result<(), CalibrateError> {
    let path = path.to_path_buf();
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(CalibrateError::NotRegular { flag, path }),
        Err(_) => Err(CalibrateError::Missing { flag, path }),
    }
}

/// The validation file: `--validation-dataset`, else derived from `-train`; it must exist.
pub fn validation_path(opts: &CalibrateOptions) -> Result<PathBuf, CalibrateError> {
    match &opts.validation_dataset {
        Some(p) => dataset_file("--validation-dataset", p).map(|()| p.clone()),
        None => {
            let p = derived_validation_path(&opts.train_dataset)?;
            if p.is_file() {
                Ok(p)
            } else {
                Err(CalibrateError::DerivedValidationMissing {
                    path: p,
                    train: opts.train_dataset.clone(),
                })
            }
        }
    }
}

/// Upstream's `metrics_{original,calibrated}.txt`.
pub fn metrics_text(prefix: &str, m: &SplitMetrics) -> String {
    format!(
        "{prefix}_NLL\t{prefix}_ECE\n{:.8}\t{:.8}\n",
        m.nll as f64, m.ece as f64
    )
}

/// Upstream's name of a reliability-curve file.
pub fn curve_file_name(class: usize, suffix: &str, flank: usize) -> String {
    format!(
        "calibration_data_{}_{suffix}_{flank}nt.npz",
        CLASS_NAMES[class]
    )
}

/// Runs `calibrate`: fits (or reads) the temperature, scores both splits, writes everything. Inputs are
/// checked, and everything is computed, before the first file is written; each file is written atomically.
pub fn run(opts: &CalibrateOptions) -> Result<CalibrationSummary, CalibrateError> {
    let out = &opts.out;
    let validation = validation_path(opts)?;
    dataset_file("-test", &opts.test_dataset)?;
    let given = match &opts.temperature_file {
        Some(p) => Some(Temperature::read(p)?),
        None => None,
    };
    let (model, report) = load_strict(&opts.model, opts.flank, &opts.device)?;
    out.line(format!("Loaded {}: {report}", opts.model.display()));
    let progress = Progress::new(opts.progress);
    let score = |path: &Path, label: &str| -> Result<Collected, CalibrateError> {
        let err = |source: TrainError| CalibrateError::Score {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        let file = Arc::new(H5File::open(path).map_err(|e| err(e.into()))?);
        let c = collect(&model, file, opts.batch_size, &progress, label).map_err(|e| match e {
            TrainError::Interrupted => CalibrateError::Interrupted,
            e => err(e),
        })?;
        if c.data.is_empty() {
            return Err(CalibrateError::NoWindows(path.to_path_buf()));
        }
        let left_out = if c.dropped > 0 {
            " (its odd last window left out, as upstream does)"
        } else {
            ""
        };
        out.line(format!(
            "{label}: {} windows, {} positions from {}{left_out}",
            c.windows,
            c.data.len(),
            path.display()
        ));
        Ok(c)
    };
    let val = score(&validation, "validation")?;
    let (temperature, fitted) = match given {
        Some(t) => {
            out.line(format!(
                "Temperature from {}: {t}",
                opts.temperature_file
                    .as_deref()
                    .unwrap_or(Path::new(""))
                    .display()
            ));
            (t, None)
        }
        None => {
            let before = metrics::nll(&val.data, Temperature::ONE);
            out.line(format!("Before temperature scaling - NLL: {before:.8}"));
            let f =
                fit(&val.data, &FitOptions::default(), &crate::cancel::requested).map_err(|e| {
                    match e {
                        FitError::Interrupted => CalibrateError::Interrupted,
                        e => CalibrateError::Fit(e),
                    }
                })?;
            out.line(format!(
                "Fitted in {} steps ({}; learning rate cut {} times)",
                f.steps.len(),
                if f.stopped_early {
                    "the loss improved by at most 1e-6 twice in a row"
                } else {
                    "the step limit"
                },
                f.lr_cuts()
            ));
            out.line(format!("Optimized temperature vector: {}", f.temperature));
            (f.temperature, Some(f))
        }
    };
    // Each split's logits are dropped once its metrics are computed: at most one split is held.
    let report = |name: &'static str, path: PathBuf, c: Collected| -> SplitReport {
        let original = split_metrics(&c.data, Temperature::ONE);
        let calibrated = split_metrics(&c.data, temperature);
        out.line(format!(
            "{name}: NLL {:.8} → {:.8}, ECE {:.8} → {:.8}",
            original.nll, calibrated.nll, original.ece, calibrated.ece
        ));
        SplitReport {
            name,
            path,
            windows: c.windows,
            dropped: c.dropped,
            positions: c.data.len(),
            original,
            calibrated,
        }
    };
    let mut splits = vec![report("validation", validation, val)];
    let test = score(&opts.test_dataset, "test")?;
    splits.push(report("test", opts.test_dataset.clone(), test));
    if crate::cancel::requested() {
        return Err(CalibrateError::Interrupted);
    }
    let mut summary = CalibrationSummary {
        temperature,
        fit: fitted,
        splits,
        written: Vec::new(),
    };
    let files = output_files(opts, &summary)?;
    for (path, bytes) in &files {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| CalibrateError::Write {
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        crate::atomic::replace(path, bytes).map_err(|e| CalibrateError::Write {
            path: path.clone(),
            source: e.into(),
        })?;
    }
    summary.written = files.into_iter().map(|(p, _)| p).collect();
    out.line(format!(
        "Wrote {} files under {} (temperature.txt{}, calibration/results/, calibration.html)",
        summary.written.len(),
        opts.output_dir.display(),
        if summary.fit.is_some() {
            ", temperature.pt"
        } else {
            ""
        }
    ));
    Ok(summary)
}

/// What calibrate may write into its output directory, as `crate::clobber::Io::output_dir` names.
pub const OUTPUT_NAMES: [&str; 5] = [
    "temperature.pt",
    "temperature.txt",
    "calibration/",
    "calibration-*",
    "calibration.html",
];

/// Every output as (path, bytes), in upstream's layout.
fn output_files(
    opts: &CalibrateOptions,
    s: &CalibrationSummary,
) -> Result<Vec<(PathBuf, Vec<u8>)>, CalibrateError> {
    let dir = &opts.output_dir;
    let mut files = Vec::new();
    if s.fit.is_some() {
        // Upstream saves temperature.pt only when it fitted one.
        let p = dir.join("temperature.pt");
        let bytes = s.temperature.pt_bytes(&p)?;
        files.push((p, bytes));
    }
    files.push((
        dir.join("temperature.txt"),
        s.temperature.numpy_text().into_bytes(),
    ));
    let flank = opts.flank.flank;
    for split in &s.splits {
        let results = dir.join("calibration").join("results").join(split.name);
        files.push((
            results.join("metrics_original.txt"),
            metrics_text("Original", &split.original).into_bytes(),
        ));
        files.push((
            results.join("metrics_calibrated.txt"),
            metrics_text("Calibrated", &split.calibrated).into_bytes(),
        ));
        for c in 0..CLASS_NAMES.len() {
            // Upstream stores the original bin counts with both curves.
            let counts = &split.original.curves[c].bin_counts;
            for (suffix, m) in [
                ("original", &split.original),
                ("calibrated", &split.calibrated),
            ] {
                let p = results
                    .join("calibration_data")
                    .join(curve_file_name(c, suffix, flank));
                let curve = &m.curves[c];
                let bytes = npz::npz_bytes(&[
                    ("prob_true", npz::Array::F64(&curve.prob_true)),
                    ("prob_pred", npz::Array::F64(&curve.prob_pred)),
                    ("bin_counts", npz::Array::I64(counts)),
                ])
                .map_err(|e| CalibrateError::Encode {
                    path: p.clone(),
                    source: e,
                })?;
                files.push((p, bytes));
            }
        }
    }
    let page = html::render(s, opts)?;
    for (slug, bytes) in page.charts {
        let ext = opts.chart_format.map_or("svg", |f| f.extension());
        files.push((dir.join(format!("calibration-{slug}.{ext}")), bytes));
    }
    files.push((dir.join("calibration.html"), page.html.into_bytes()));
    Ok(files)
}
