//! `calibrate`: OpenSpliceAI's flags (same long and short forms), parsed here and handed to
//! `crate::calibrate`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::args::{parse_flank, ComputeArgs};
use super::terminal;
use crate::calibrate::{self, CalibrateOptions};
use crate::clobber::Io;
use crate::device::select_device;
use crate::metrics::Loss;
use crate::model::FlankConfig;

/// `calibrate`.
#[derive(Debug, Args, Clone)]
pub struct CalibrateArgs {
    /// The model to calibrate (its weights are not changed).
    #[arg(short = 'm', long = "pretrained-model", value_name = "CKPT")]
    pub pretrained_model: PathBuf,
    /// Training HDF5 (also `-train`): never read; the validation file is its name with `train` replaced
    /// by `validation`, as upstream finds it.
    #[arg(long = "train-dataset", value_name = "H5")]
    pub train_dataset: PathBuf,
    /// The validation HDF5 the temperature is fitted on, instead of the one named after `-train`.
    #[arg(long = "validation-dataset", value_name = "H5")]
    pub validation_dataset: Option<PathBuf>,
    /// Test HDF5 (also `-test`), scored before and after.
    #[arg(long = "test-dataset", value_name = "H5")]
    pub test_dataset: PathBuf,
    /// Flanking sequence length of the model: 80, 400, 2000 or 10000 [default: the checkpoint's; a given
    /// -f must match it].
    #[arg(short = 'f', long = "flanking-size", value_parser = parse_flank)]
    pub flanking_size: Option<&'static FlankConfig>,
    /// Output directory: temperature.txt, temperature.pt, calibration/results/, calibration.html.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output_dir: PathBuf,
    /// Project name (required, as upstream; calibrate's outputs do not use it).
    #[arg(short = 'p', long = "project-name")]
    pub project_name: String,
    /// Experiment number (accepted, as upstream; unused).
    #[arg(short = 'e', long = "exp-num", default_value_t = 0)]
    pub exp_num: i64,
    /// Random seed (accepted, as upstream; nothing in calibrate is random).
    #[arg(short = 'r', long = "random-seed", default_value_t = 42)]
    pub random_seed: i64,
    /// A temperature file (temperature.pt or temperature.txt) to use instead of fitting one.
    #[arg(short = 'T', long = "temperature-file", value_name = "FILE")]
    pub temperature_file: Option<PathBuf>,
    /// Accepted for compatibility and unused, as upstream: the fit runs at most 2000 steps.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub epochs: usize,
    /// Accepted for compatibility and unused, as upstream: the fit always stops after 2 steps without
    /// improvement.
    #[arg(short = 'E', long = "early-stopping")]
    pub early_stopping: bool,
    /// Accepted for compatibility and unused, as upstream: the fit's patience is 2 steps.
    #[arg(short = 'P', long, default_value_t = 2)]
    pub patience: usize,
    /// Accepted for compatibility and unused, as upstream: the fit minimises the cross-entropy.
    #[arg(short = 'l', long, value_enum, default_value_t = Loss::CrossEntropyLoss)]
    pub loss: Loss,
    #[command(flatten)]
    pub compute: ComputeArgs,
    #[command(flatten)]
    pub precision: super::args::PrecisionArgs,
    /// Also write each chart of calibration.html as its own file (`calibration-{chart}.png|svg`).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<crate::report::ChartFormat>,
    #[command(flatten)]
    pub progress: super::args::ProgressArgs,
    /// Hide progress bars.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Runs `calibrate`.
pub fn run(a: CalibrateArgs) -> Result<()> {
    Io::new()
        .input("--pretrained-model", &a.pretrained_model)
        .input("--train-dataset", &a.train_dataset)
        .input_opt("--validation-dataset", a.validation_dataset.as_ref())
        .input("--test-dataset", &a.test_dataset)
        .input_opt("--temperature-file", a.temperature_file.as_ref())
        .output_dir("--output-dir", &a.output_dir, calibrate::OUTPUT_NAMES)
        .check()?;
    let device = select_device(&a.compute.device)?;
    println!("Running openspliceai-rs in calibrate mode.");
    a.precision.select(&device)?;
    // The checkpoint door, before anything is written (calibrate loads the model again at this size).
    let flank = crate::infer::checkpoint_config(&a.pretrained_model, a.flanking_size)?;
    super::say_flank(a.flanking_size, flank, &a.pretrained_model, |l| {
        println!("{l}")
    });
    let opts = CalibrateOptions {
        model: a.pretrained_model,
        flank,
        train_dataset: a.train_dataset,
        validation_dataset: a.validation_dataset,
        test_dataset: a.test_dataset,
        output_dir: a.output_dir,
        temperature_file: a.temperature_file,
        batch_size: a.compute.batch(flank),
        device,
        progress: !a.quiet,
        out: terminal(),
        chart_format: a.format,
    };
    calibrate::run(&opts)?;
    if let Some(rss) = crate::bench::peak_rss_mib() {
        log::info!("peak RSS: {rss:.0} MiB");
    }
    Ok(())
}
