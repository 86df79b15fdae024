//! The epoch loop of `train` and `transfer` (docs/upstream-behaviour.md, "Optimisation" and "Run outputs"), and `test`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::best::BestTracker;
use super::cache::PrefixCache;
use super::checkpoints::CheckpointStore;
use super::config::{RunConfig, RunKind};
use super::console::Console;
use super::evaluate::{
    accumulator, device_loader, evaluate, CacheUse, EvalPass, Evaluation, SplitData,
};
use super::optim::Moments;
use super::run_log::{console_summary, python_float_repr, EpochRecord, RunLog};
use super::schedule::Schedule;
use super::state::{self, Fingerprint, ParamStep, RunState, StateError};
use super::trainer::{StepInput, Trainer};
use super::TrainError;
use crate::console::Output;
use crate::data::{train_validation_windows, H5File, Order};
use crate::metrics::EpochMetrics;
use crate::metrics::Loss;
use crate::model::{io, SpliceAi, Trainable};
use crate::progress::Progress;
use crate::rundir::lock::RunLock;
use crate::rundir::{self, Split};

/// One split's headline scores in one epoch (what the closing summary prints; saved in the run state,
/// where a NaN is written as `null`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitScores {
    #[serde(deserialize_with = "nan_if_null")]
    pub loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub acceptor_topk: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub acceptor_auprc: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub donor_topk: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub donor_auprc: f64,
    /// The share of positions that are acceptors: the AUPRC of a model that guesses.
    #[serde(deserialize_with = "nan_if_null")]
    pub acceptor_chance: f64,
}

impl SplitScores {
    fn of(m: EpochMetrics) -> Self {
        Self {
            loss: m.loss,
            acceptor_topk: m.acceptor.ranking.topk,
            acceptor_auprc: m.acceptor.ranking.auprc,
            donor_topk: m.donor.ranking.topk,
            donor_auprc: m.donor.ranking.auprc,
            acceptor_chance: m.acceptor.ranking.n_true as f64 / m.positions.max(1) as f64,
        }
    }
}

/// JSON has no NaN: serde_json writes it as `null`, read back here as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// What a finished run reports. The run state saves it (without the paths and time, which the resumed
/// run sets again).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    #[serde(skip)]
    pub run_dir: PathBuf,
    pub epochs_run: usize,
    pub stopped_early: bool,
    /// Epoch (from 0) of `model_best.pt`, if any epoch improved the validation loss.
    pub best_epoch: Option<usize>,
    /// Validation and test scores of the best epoch.
    pub best_val: Option<SplitScores>,
    pub best_test: Option<SplitScores>,
    /// Zero-shot scores of the pretrained model (transfer only).
    pub baseline_val: Option<SplitScores>,
    pub baseline_test: Option<SplitScores>,
    /// The pretrained checkpoint (transfer only).
    #[serde(skip)]
    pub pretrained: Option<PathBuf>,
    #[serde(skip)]
    pub best_model: Option<PathBuf>,
    #[serde(skip)]
    pub seconds: f64,
}

impl RunSummary {
    fn new(run_dir: PathBuf) -> Self {
        Self {
            run_dir,
            ..Self::default()
        }
    }

    /// The closing summary printed at the end of a run.
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "\n{}\nRun summary ({:.1} s, {} epochs{})\n",
            "=".repeat(60),
            self.seconds,
            self.epochs_run,
            if self.stopped_early {
                ", stopped early"
            } else {
                ""
            }
        ));
        s.push_str(&format!("  run directory: {}\n", self.run_dir.display()));
        let line = |name: &str, v: &SplitScores| {
            format!(
                "  {name:<22} loss {:.6} | acceptor top-1 {:.4} AUPRC {:.4} | donor top-1 {:.4} AUPRC {:.4}\n",
                v.loss, v.acceptor_topk, v.acceptor_auprc, v.donor_topk, v.donor_auprc
            )
        };
        if let (Some(v), Some(t)) = (&self.baseline_val, &self.baseline_test) {
            s.push_str(&line("zero-shot validation", v));
            s.push_str(&line("zero-shot test", t));
        }
        match (self.best_epoch, &self.best_val, &self.best_test) {
            (Some(e), Some(v), Some(t)) => {
                s.push_str(&format!(
                    "  best epoch: {e} ({})\n",
                    self.best_model
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ));
                s.push_str(&line("best validation", v));
                s.push_str(&line("best test", t));
                if let (Some(bv), Some(p)) = (&self.baseline_val, &self.pretrained) {
                    if v.loss < bv.loss {
                        s.push_str(&format!(
                            "  the best epoch improves the validation loss over the pretrained model by {:.6} ({:+.2}%)\n",
                            bv.loss - v.loss,
                            100.0 * (v.loss - bv.loss) / bv.loss
                        ));
                    } else {
                        s.push_str(&format!(
                            "  NOTE: no epoch beat the pretrained model's validation loss ({:.6} vs best {:.6}); the pretrained checkpoint {} is the better model for this data\n",
                            bv.loss, v.loss, p.display()
                        ));
                    }
                }
            }
            _ => s.push_str("  no epoch finished\n"),
        }
        s
    }
}

/// Builds the model a run starts from, with its trainable subset chosen: from scratch or the pretrained
/// checkpoint, or, when a run resumes, from `resume_weights` (the checkpoint of its last complete epoch).
fn build_model(
    cfg: &RunConfig,
    resume_weights: Option<&Path>,
) -> Result<(SpliceAi, Vec<(String, candle_core::Var)>), TrainError> {
    let (mut model, trainable) = match (&cfg.kind, resume_weights) {
        (RunKind::Train, None) => (
            SpliceAi::new(cfg.flank, cfg.random_seed, &cfg.device)?,
            Trainable::All,
        ),
        (RunKind::Train, Some(weights)) => (load_weights(cfg, weights, false)?, Trainable::All),
        (
            RunKind::Transfer {
                pretrained,
                trainable,
                freeze_bn,
                partial_load,
            },
            weights,
        ) => {
            // A resumed run's own checkpoint is always whole; --partial-load is for the pretrained one.
            let partial = *partial_load && weights.is_none();
            let mut model = load_weights(cfg, weights.unwrap_or(pretrained), partial)?;
            if let Trainable::LastUnits(n) = trainable {
                let units = cfg.flank.n_units();
                if *n > units {
                    log::warn!("--unfreeze {n} is more than the model's {units} residual units: training all {units}");
                    cfg.out.line(format!("--unfreeze {n} exceeds the {units} residual units of SpliceAI-{}; unfreezing all {units}", cfg.flank.flank));
                }
            }
            model.set_freeze_bn(*freeze_bn);
            (model, *trainable)
        }
    };
    let vars = model.set_trainable(trainable)?;
    log::info!(
        "trainable tensors: {}",
        vars.iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((model, vars))
}

/// A checkpoint's weights through the checkpoint door (every tensor of the model, of its shape, finite),
/// or with `partial` upstream's rule (whatever matches is loaded: `transfer --partial-load`).
fn load_weights(cfg: &RunConfig, path: &Path, partial: bool) -> Result<SpliceAi, TrainError> {
    let (model, report) = if partial {
        io::from_checkpoint(cfg.flank, path, cfg.random_seed, &cfg.device)?
    } else {
        io::open_checkpoint(path, Some(cfg.flank), cfg.random_seed, &cfg.device)?
    };
    cfg.out.line(format!("Loaded {}: {report}", path.display()));
    if !io::all_finite(&model)? {
        return Err(TrainError::Config(format!(
            "{}: the checkpoint holds NaN or infinite weights",
            path.display()
        )));
    }
    Ok(model)
}

/// Prints a split's scores as upstream does: the pass header, the metrics, then `{Training,Validation,
/// Testing} Loss: …`.
fn print_scores(out: &Output, split: Split, m: &EpochMetrics) {
    out.line(split.console_header());
    out.text(&console_summary(m, false));
    let name = match split {
        Split::Train => "Training",
        Split::Val => "Validation",
        Split::Test => "Testing",
    };
    out.line(format!("{name} Loss: {}", python_float_repr(m.loss)));
}

/// Writes an evaluation of `split` to `LOG/`: each batch's loss, then the epoch's metrics.
fn log_evaluation(log: &mut RunLog, split: Split, e: &Evaluation) -> Result<(), TrainError> {
    for l in &e.batch_losses {
        log.log_batch_loss(split, *l as f64)?;
    }
    log.log_epoch_metrics(split, &e.metrics)?;
    Ok(())
}

/// Removes what an earlier run left in `run_dir`: the checkpoints in `models/`, `LOG/` and `metrics.jsonl`.
fn clear_previous_run(
    run_dir: &Path,
    n_checkpoints: usize,
    out: &Output,
) -> Result<(), TrainError> {
    let io = |path: &Path, source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    };
    for p in CheckpointStore::existing(run_dir) {
        std::fs::remove_file(&p).map_err(|e| io(&p, e))?;
    }
    if n_checkpoints > 0 {
        out.line(format!("--overwrite: removed the {n_checkpoints} checkpoint(s) and the logs of the previous run in {}", run_dir.display()));
    }
    let log = rundir::log_dir(run_dir);
    if log.exists() {
        std::fs::remove_dir_all(&log).map_err(|e| io(&log, e))?;
    }
    let jsonl = run_dir.join(rundir::METRICS_JSONL);
    match std::fs::remove_file(&jsonl) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&jsonl, e)),
        _ => Ok(()),
    }
}

/// Removes `model_{k}.pt` for every `k >= from`: what an interrupted epoch wrote before its state.
fn remove_checkpoints_from(run_dir: &Path, from: usize) -> Result<(), TrainError> {
    for k in from.. {
        let path = rundir::epoch_model(run_dir, k);
        match std::fs::remove_file(&path) {
            Ok(()) => log::info!(
                "removed {}, written by an interrupted epoch",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(TrainError::Io { path, source }),
        }
    }
    Ok(())
}

/// Runs `train` or `transfer` to the end (or to early stopping) and returns the summary. With `--resume`,
/// continues the run directory from its last complete epoch (or starts it when it holds no run).
pub fn run(cfg: &RunConfig) -> Result<RunSummary, TrainError> {
    let started = Instant::now();
    let existing = check_config(cfg)?;
    let inputs = open_inputs(cfg)?;
    let (mut run, resumed) = Run::setup(cfg, inputs, existing)?;
    let mut summary = RunSummary::new(run.dir.clone());
    let patience = cfg.early_stopping.then_some(cfg.patience);
    let mut best = BestTracker::new(patience);
    let first_epoch = match resumed {
        Some(state) => {
            best = BestTracker::restore(patience, state.best);
            run.restore_summary(&state.summary, &mut summary);
            cfg.out.line(format!(
                "Resuming {} after epoch {} of {}",
                run.dir.display(),
                state.epochs_done,
                cfg.epochs
            ));
            state.epochs_done
        }
        None => {
            if let RunKind::Transfer { pretrained, .. } = &cfg.kind {
                run.baseline(pretrained, &mut summary)?;
            }
            run.save_state(0, &best, &summary)?;
            0
        }
    };
    for epoch in first_epoch..cfg.epochs {
        if summary.stopped_early {
            break;
        }
        let stop = run.epoch(epoch, &mut best, &mut summary)?;
        summary.epochs_run = epoch + 1;
        summary.stopped_early = stop;
        test_abort_point(|| format!("state:{epoch}"));
        run.save_state(epoch + 1, &best, &summary)?;
        test_abort_point(|| format!("epoch:{epoch}"));
        if stop {
            cfg.out.line("Early stopping triggered.");
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Test hook for the kill tests of `--resume`: `OSAI_TEST_ABORT=<point>` aborts the process at that
/// point, with no cleanup, as `kill -9` would (`batch:E:B`, `checkpoint:E`, `state:E`, `epoch:E`).
fn test_abort_point(point: impl FnOnce() -> String) {
    if let Some(want) = std::env::var_os("OSAI_TEST_ABORT") {
        if want.to_str() == Some(point().as_str()) {
            std::process::abort();
        }
    }
}

/// Checks the options that need no file; returns the number of checkpoints an earlier run left.
fn check_config(cfg: &RunConfig) -> Result<usize, TrainError> {
    let existing = CheckpointStore::existing(&cfg.run_dir());
    if !existing.is_empty() && !cfg.overwrite && !cfg.resume {
        return Err(TrainError::RunDirNotEmpty {
            dir: rundir::models_dir(&cfg.run_dir()),
            count: existing.len(),
        });
    }
    if cfg.epochs == 0 {
        return Err(TrainError::Config("--epochs must be at least 1".into()));
    }
    if cfg.batch_size == 0 {
        return Err(TrainError::Config("--batch-size must be at least 1".into()));
    }
    Ok(existing.len())
}

/// The windows of the three splits, checked before any output is written.
struct Inputs {
    train: SplitData,
    val: SplitData,
    test: SplitData,
}

impl Inputs {
    fn get(&self, split: Split) -> &SplitData {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }
}

/// Opens every input file and chooses the windows of each split ([`train_validation_windows`]).
fn open_inputs(cfg: &RunConfig) -> Result<Inputs, TrainError> {
    let train_file = Arc::new(H5File::open(&cfg.train_dataset)?);
    let test_file = Arc::new(H5File::open(&cfg.test_dataset)?);
    let val_file = match cfg.validation_dataset.as_deref() {
        Some(p) => Some(Arc::new(H5File::open(p)?)),
        None => None,
    };
    let (train_windows, val_windows) =
        train_validation_windows(&train_file, val_file.as_deref(), cfg.random_seed);
    if val_windows.is_empty() {
        return Err(TrainError::Config(format!(
            "{}: no validation windows (the file has {} windows; give --validation-dataset)",
            cfg.train_dataset.display(),
            train_file.n_windows()
        )));
    }
    if train_windows.len() < cfg.batch_size {
        return Err(TrainError::Data(crate::data::DataError::TooFewWindows {
            path: cfg.train_dataset.clone(),
            n_windows: train_windows.len(),
            batch_size: cfg.batch_size,
        }));
    }
    Ok(Inputs {
        val: SplitData {
            file: val_file.unwrap_or_else(|| train_file.clone()),
            windows: val_windows,
        },
        train: SplitData {
            file: train_file,
            windows: train_windows,
        },
        test: SplitData {
            windows: test_file.all_windows(),
            file: test_file,
        },
    })
}

/// A run being trained: its inputs, the trainer, and where its outputs go.
struct Run<'a> {
    cfg: &'a RunConfig,
    dir: PathBuf,
    inputs: Inputs,
    trainer: Trainer,
    /// The frozen-prefix cache and the list index where the prefix ends.
    cache: Option<(Arc<PrefixCache>, usize)>,
    /// The trained tensors' names, in the optimiser's order.
    names: Vec<String>,
    /// What identifies each input file (checked when the run resumes).
    fingerprints: Vec<Fingerprint>,
    /// Held until the run ends: one run per directory.
    _lock: RunLock,
    store: CheckpointStore,
    log: RunLog,
    progress: Progress,
    console: Console,
}

impl<'a> Run<'a> {
    /// Takes the run directory's lock, builds the model and the trainer, then prepares the run directory:
    /// cleared of an earlier run's `existing` checkpoints and logs, or, resuming, cut back to the last
    /// complete epoch of the saved state (returned). Then the prefix cache, checkpoint store and log.
    fn setup(
        cfg: &'a RunConfig,
        inputs: Inputs,
        existing: usize,
    ) -> Result<(Self, Option<RunState>), TrainError> {
        let dir = cfg.run_dir();
        std::fs::create_dir_all(&dir).map_err(|e| TrainError::Io {
            path: dir.clone(),
            source: e,
        })?;
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let lock = RunLock::acquire(&dir, &command)?;
        let resumed = match cfg.resume {
            true => Self::saved_state(cfg, &dir, existing)?,
            false => None,
        };
        let weights = resumed
            .as_ref()
            .and_then(|(s, _)| s.model.as_ref())
            .map(|(file, _)| dir.join(file));
        let batches_per_epoch = inputs.train.windows.len().div_ceil(cfg.batch_size);
        let (model, vars) = build_model(cfg, weights.as_deref())?;
        cfg.out.line(format!(
            "SpliceAI-{} ({} residual units) on {} | train {} windows ({} batches of {}), validation {}, test {} | {} trainable tensors",
            cfg.flank.flank,
            cfg.flank.n_units(),
            crate::device::describe(&cfg.device),
            inputs.train.windows.len(),
            batches_per_epoch,
            cfg.batch_size,
            inputs.val.windows.len(),
            inputs.test.windows.len(),
            vars.len()
        ));
        let cut = if cfg.no_cache {
            None
        } else {
            model.frozen_prefix_end()
        };
        let schedule = Schedule::new(
            cfg.scheduler,
            cfg.base_lr(),
            cfg.epochs,
            cfg.milestone_count(),
        );
        let (names, vars): (Vec<String>, Vec<_>) = vars.into_iter().unzip();
        let mut trainer = Trainer::new(model, vars, schedule, cfg.loss, batches_per_epoch)?;
        let fingerprints = match &resumed {
            Some((state, moments)) => {
                let saved: Vec<&str> = state.optimizer.iter().map(|p| p.name.as_str()).collect();
                if saved != names.iter().map(String::as_str).collect::<Vec<_>>() {
                    return Err(TrainError::Config(format!(
                        "{}: the saved optimiser trains other tensors than this run",
                        dir.join(rundir::RUN_STATE).display()
                    )));
                }
                trainer.restore(state.global_batch, state.learning_rate, moments.clone())?;
                state::truncate_logs(&dir, &state.logs)?;
                remove_checkpoints_from(&dir, state.epochs_done)?;
                state.inputs.clone()
            }
            None => {
                // Every input is checked: the run starts from a clean directory. Without checkpoints
                // nothing of value is there (a run that failed or was killed before its first epoch
                // ended); with them, --overwrite was given. Otherwise the old run's files mix with this
                // one's: a stale model_7.pt beside a 2-epoch run, LOG/ and metrics.jsonl lines of both
                // runs, a killed epoch's batch losses before this run's.
                clear_previous_run(&dir, existing, &cfg.out)?;
                let mut info = cfg.run_info();
                info.windows = Some(crate::rundir::run_info::SplitWindows {
                    train: inputs.train.windows.len(),
                    validation: inputs.val.windows.len(),
                    test: inputs.test.windows.len(),
                });
                info.write(&dir).map_err(|e| TrainError::Io {
                    path: e.path,
                    source: e.source,
                })?;
                cfg.input_files()
                    .iter()
                    .map(|p| Fingerprint::of(p))
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        let cache = match cut {
            Some(cut) => Some((Self::create_cache(cfg, &dir, &inputs, cut)?, cut)),
            None => None,
        };
        let run = Self {
            store: CheckpointStore::create(&dir)?,
            log: RunLog::create(&dir)?,
            progress: Progress::new(cfg.progress),
            console: Console::new(cfg.console, cfg.out.clone()),
            cfg,
            dir,
            inputs,
            trainer,
            cache,
            names,
            fingerprints,
            _lock: lock,
        };
        Ok((run, resumed.map(|(s, _)| s)))
    }

    /// The saved state `--resume` continues from, checked against this run: `None` when the directory
    /// holds no run yet (the run starts); an error when it holds checkpoints without a state (unless
    /// `--overwrite`), when a flag or an input changed, or when the state's checkpoint is not the one
    /// it saved.
    fn saved_state(
        cfg: &RunConfig,
        dir: &Path,
        existing: usize,
    ) -> Result<Option<(RunState, Vec<Moments>)>, TrainError> {
        let Some((state, moments)) = state::load(dir, &cfg.device)? else {
            if existing > 0 && !cfg.overwrite {
                return Err(StateError::NoState {
                    dir: dir.to_path_buf(),
                    count: existing,
                }
                .into());
            }
            return Ok(None);
        };
        state::check_flags(&state.flags, &cfg.run_info(), dir)?;
        state::check_inputs(&state.inputs)?;
        if let Some((file, sha)) = &state.model {
            let path = dir.join(file);
            if state::file_sha256(&path)? != *sha {
                return Err(StateError::Corrupt {
                    path: path.clone(),
                    reason: format!(
                        "not the checkpoint {} recorded after epoch {}",
                        rundir::RUN_STATE,
                        state.epochs_done
                    ),
                }
                .into());
            }
        }
        Ok(Some((state, moments)))
    }

    /// Saves what `--resume` needs after `epochs_done` complete epochs.
    fn save_state(
        &self,
        epochs_done: usize,
        best: &BestTracker,
        summary: &RunSummary,
    ) -> Result<(), TrainError> {
        let started = Instant::now();
        let model = match epochs_done.checked_sub(1) {
            Some(last) => {
                let path = self.store.epoch_path(last);
                let rel = path.strip_prefix(&self.dir).unwrap_or(&path);
                Some((
                    rel.to_string_lossy().into_owned(),
                    state::file_sha256(&path)?,
                ))
            }
            None => None,
        };
        let moments = self.trainer.moments();
        let st = RunState {
            version: state::STATE_VERSION,
            epochs_done,
            global_batch: self.trainer.global_batch(),
            learning_rate: self.trainer.learning_rate(),
            best: best.state(),
            summary: summary.clone(),
            flags: self.cfg.run_info(),
            inputs: self.fingerprints.clone(),
            logs: state::log_lengths(&self.dir)?,
            model,
            optimizer: self
                .names
                .iter()
                .zip(&moments)
                .map(|(name, m)| ParamStep {
                    name: name.clone(),
                    step: m.step,
                })
                .collect(),
        };
        let bytes = state::save(&self.dir, &st, &moments)?;
        log::info!(
            "{}: {bytes} bytes in {:.3} s",
            self.dir.join(rundir::RUN_STATE).display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// The closing summary as the saved state left it, with this run's paths.
    fn restore_summary(&self, saved: &RunSummary, summary: &mut RunSummary) {
        *summary = RunSummary {
            run_dir: summary.run_dir.clone(),
            best_model: saved.best_epoch.map(|_| self.store.best_path()),
            pretrained: match &self.cfg.kind {
                RunKind::Transfer { pretrained, .. } => Some(pretrained.clone()),
                RunKind::Train => None,
            },
            ..saved.clone()
        };
    }

    /// The frozen-prefix cache: the windows of each split get a slot.
    fn create_cache(
        cfg: &RunConfig,
        dir: &Path,
        inputs: &Inputs,
        cut: usize,
    ) -> Result<Arc<PrefixCache>, TrainError> {
        let splits = Split::ALL.map(|s| (s, inputs.get(s).windows.as_slice()));
        let path = cfg.prefix_cache_path(dir);
        let cache = PrefixCache::create(&path, cfg.flank, &splits, cfg.keep_cache)?;
        cfg.out.line(format!(
            "Frozen-prefix cache: blocks 0..{cut} run once per window; {} windows × {:.2} MB = {:.2} GB on disk in {} ({}; --cache-dir puts it elsewhere, --no-cache turns it off)",
            cache.windows(),
            cache.slot_bytes() as f64 / 1e6,
            cache.total_bytes() as f64 / 1e9,
            cache.path().display(),
            if cfg.keep_cache { "kept after the run (--keep-cache)" } else { "deleted when the run ends" }
        ));
        Ok(Arc::new(cache))
    }

    fn use_cache(&self, split: Split) -> Option<CacheUse> {
        self.cache.as_ref().map(|(cache, cut)| CacheUse {
            cache: cache.clone(),
            split,
            cut: *cut,
        })
    }

    /// Eval-mode scores of the current model on every window of `split`, through the prefix cache
    /// where the run keeps one.
    fn score(&self, split: Split, label: &str) -> Result<Evaluation, TrainError> {
        self.score_with(split, label, self.use_cache(split))
    }

    fn score_with(
        &self,
        split: Split,
        label: &str,
        cache: Option<CacheUse>,
    ) -> Result<Evaluation, TrainError> {
        let data = self.inputs.get(split);
        let pass = EvalPass {
            batch_size: self.cfg.batch_size,
            loss: self.cfg.loss,
            progress: &self.progress,
            label,
        };
        evaluate(self.trainer.model(), data, &pass, cache)
    }

    /// Zero-shot scores of the pretrained model before training (`metrics.jsonl` only, epoch -1). They
    /// come from the model as loaded, in f32, never through the f16 prefix cache, so that the baseline of
    /// one checkpoint on one data set is the same number whatever `-u`/`--freeze-bn` the run uses.
    fn baseline(&mut self, pretrained: &Path, summary: &mut RunSummary) -> Result<(), TrainError> {
        summary.pretrained = Some(pretrained.to_path_buf());
        let v = self.score_with(Split::Val, "zero-shot val", None)?;
        let t = self.score_with(Split::Test, "zero-shot test", None)?;
        for (split, e) in [(Split::Val, &v), (Split::Test, &t)] {
            self.log
                .log_jsonl(&EpochRecord::new(-1, split, &e.metrics, None, e.seconds))?;
        }
        self.console.zero_shot(&v.metrics, &t.metrics);
        summary.baseline_val = Some(SplitScores::of(v.metrics));
        summary.baseline_test = Some(SplitScores::of(t.metrics));
        Ok(())
    }

    /// One epoch: train, score validation and test, write checkpoints and logs. Returns whether early
    /// stopping asks to stop now.
    fn epoch(
        &mut self,
        epoch: usize,
        best: &mut BestTracker,
        summary: &mut RunSummary,
    ) -> Result<bool, TrainError> {
        let epoch_start = Instant::now();
        let epochs = self.cfg.epochs;
        self.console.epoch_start(epoch, epochs);
        let (train_m, train_seconds) = self.train_epoch(epoch)?;
        let v = self.evaluate_epoch(epoch, Split::Val, "val")?;
        let t = self.evaluate_epoch(epoch, Split::Test, "test")?;
        let lr = self.trainer.learning_rate();
        self.log.log_epoch_lr(lr)?;

        if std::env::var_os("OSAI_TEST_ABORT").is_some_and(|v| v == *format!("checkpoint:{epoch}"))
        {
            // Killed while the checkpoint is being written: a partial temporary file, no checkpoint.
            let (_, mut f) =
                crate::atomic::temp_beside(&self.store.epoch_path(epoch)).map_err(|e| {
                    TrainError::Io {
                        path: e.path,
                        source: e.source,
                    }
                })?;
            let _ = std::io::Write::write_all(&mut f, b"PK\x03\x04 partial");
            std::process::abort();
        }
        self.store
            .save(self.trainer.model(), &self.store.epoch_path(epoch))?;
        let verdict = best.observe(v.metrics.loss);
        if verdict.improved {
            self.store
                .save(self.trainer.model(), &self.store.best_path())?;
            self.console.upstream_only("New best model saved.");
            summary.best_epoch = Some(epoch);
            summary.best_model = Some(self.store.best_path());
            summary.best_val = Some(SplitScores::of(v.metrics.clone()));
            summary.best_test = Some(SplitScores::of(t.metrics.clone()));
        } else {
            self.console.upstream_only(&format!(
                "No improvement in validation loss for {} epochs.",
                verdict.epochs_without_improvement
            ));
        }
        let records = [
            (Split::Train, &train_m, train_seconds),
            (Split::Val, &v.metrics, v.seconds),
            (Split::Test, &t.metrics, t.seconds),
        ];
        for (split, m, seconds) in records {
            self.log
                .log_jsonl(&EpochRecord::new(epoch as i64, split, m, Some(lr), seconds))?;
        }
        self.log.flush()?;
        self.console.upstream_only(&format!(
            ">> Epoch {}; Final Learning Rate: {}\n--- {:.2} seconds ---",
            epoch + 1,
            python_float_repr(lr),
            epoch_start.elapsed().as_secs_f64()
        ));
        Ok(verdict.stop)
    }

    /// Scores `split` after an epoch's training, writes the scores to `LOG/` and prints them.
    fn evaluate_epoch(
        &mut self,
        epoch: usize,
        split: Split,
        name: &str,
    ) -> Result<Evaluation, TrainError> {
        let label = format!("epoch {}/{} {name}", epoch + 1, self.cfg.epochs);
        let e = self.score(split, &label)?;
        log_evaluation(&mut self.log, split, &e)?;
        let lr = self.trainer.learning_rate();
        self.console.split(split, &e.metrics, Some(lr), e.seconds);
        Ok(e)
    }

    /// The training pass of one epoch: a step per batch, each batch's loss and learning rate logged;
    /// returns the epoch's training metrics (also logged and printed) and its seconds.
    fn train_epoch(&mut self, epoch: usize) -> Result<(EpochMetrics, f64), TrainError> {
        let cfg = self.cfg;
        let train = &self.inputs.train;
        let cache = self.use_cache(Split::Train);
        let loader = device_loader(
            train.file.clone(),
            train.windows.clone(),
            cfg.flank.flank,
            cfg.batch_size,
            Order::Shuffled {
                seed: cfg.random_seed,
                epoch: epoch as u64,
            },
            &cfg.device,
            cache.clone(),
        )?;
        let loader_batches = loader.batches_per_epoch();
        let bar = self.progress.bar(
            loader.batches_per_epoch() as u64,
            &format!("epoch {}/{} train", epoch + 1, cfg.epochs),
        );
        let mut metrics = accumulator(cfg.loss);
        let mut seen = 0usize;
        let start = Instant::now();
        for batch in loader {
            let mut batch = batch?;
            let input = match &cache {
                Some(c) => StepInput::Prefix {
                    state: c.state(self.trainer.model(), &mut batch)?,
                    cut: c.cut,
                },
                None => StepInput::Window(&batch.x),
            };
            let out = self.trainer.step(input, &batch.y, epoch)?;
            self.log.log_batch_loss(Split::Train, out.loss as f64)?;
            self.log.log_batch_lr(out.lr_next)?;
            let b = self.trainer.global_batch() - 1 - epoch * loader_batches;
            test_abort_point(|| format!("batch:{epoch}:{b}"));
            metrics.update(&out.probs.flatten_all()?.to_vec1::<f32>()?, &batch.y_host)?;
            seen += batch.n;
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.5} | lr {:.3e} | {:.1} windows/s",
                out.loss,
                out.lr_used,
                seen as f64 / start.elapsed().as_secs_f64().max(1e-9)
            ));
        }
        bar.finish_and_clear();
        let seconds = start.elapsed().as_secs_f64();
        let m = metrics.finish();
        self.log.log_epoch_metrics(Split::Train, &m)?;
        let lr = self.trainer.learning_rate();
        self.console.split(Split::Train, &m, Some(lr), seconds);
        Ok((m, seconds))
    }
}

/// What `test` scores and where its log goes.
#[derive(Debug, Clone)]
pub struct TestOptions {
    pub test_dataset: PathBuf,
    /// Where `LOG/TEST` and `metrics.jsonl` go, if anywhere.
    pub output_dir: Option<PathBuf>,
    pub loss: Loss,
    pub batch_size: usize,
    pub show_progress: bool,
    /// Where the scores are printed.
    pub out: Output,
    /// A labelled table row, or upstream's dump.
    pub console: super::console::ConsoleMode,
}

/// `test`: scores a loaded model on a test file; writes LOG/TEST under the output directory when given.
pub fn run_test(model: &SpliceAi, opts: &TestOptions) -> Result<EpochMetrics, TrainError> {
    let file = Arc::new(H5File::open(&opts.test_dataset)?);
    let data = SplitData {
        windows: file.all_windows(),
        file,
    };
    let pass = EvalPass {
        batch_size: opts.batch_size,
        loss: opts.loss,
        progress: &Progress::new(opts.show_progress),
        label: "test",
    };
    let t = evaluate(model, &data, &pass, None)?;
    match opts.console {
        super::console::ConsoleMode::Upstream => print_scores(&opts.out, Split::Test, &t.metrics),
        super::console::ConsoleMode::Table => {
            opts.out.line(format!(
                "\nScores on {} ({} windows, {} kept)",
                opts.test_dataset.display(),
                t.metrics.windows,
                t.metrics.kept_windows
            ));
            opts.out.line(super::console::table_header());
            opts.out.line(super::console::table_row(
                "test",
                &t.metrics,
                None,
                Some(t.seconds),
                "",
            ));
        }
    }
    if let Some(dir) = opts.output_dir.as_deref() {
        let mut log = RunLog::create(dir)?;
        log_evaluation(&mut log, Split::Test, &t)?;
        log.log_jsonl(&EpochRecord::new(
            0,
            Split::Test,
            &t.metrics,
            None,
            t.seconds,
        ))?;
        log.flush()?;
        opts.out.line(format!(
            "Wrote {}",
            rundir::split_log_dir(dir, Split::Test).display()
        ));
    }
    Ok(t.metrics)
}
