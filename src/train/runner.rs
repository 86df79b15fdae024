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
use super::progress::Progress;
use super::run_log::{console_summary, python_float_repr, EpochRecord, RunLog};
use super::schedule::Schedule;
use super::trainer::{StepInput, Trainer};
use super::TrainError;
use crate::console::Output;
use crate::data::{train_validation_windows, H5File, Order};
use crate::metrics::EpochMetrics;
use crate::metrics::Loss;
use crate::model::{io, SpliceAi, Trainable};
use crate::rundir::{self, Split};

/// One split's scores in one epoch.
#[derive(Debug, Clone)]
pub struct SplitScores {
    pub loss: f64,
    pub metrics: EpochMetrics,
}

impl SplitScores {
    fn of(metrics: EpochMetrics) -> Self {
        Self {
            loss: metrics.loss,
            metrics,
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
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
    pub pretrained: Option<PathBuf>,
    pub best_model: Option<PathBuf>,
    pub seconds: f64,
}

impl RunSummary {
    fn new(run_dir: PathBuf) -> Self {
        Self {
            run_dir,
            epochs_run: 0,
            stopped_early: false,
            best_epoch: None,
            best_val: None,
            best_test: None,
            baseline_val: None,
            baseline_test: None,
            pretrained: None,
            best_model: None,
            seconds: 0.0,
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
                v.loss,
                v.metrics.acceptor.ranking.topk,
                v.metrics.acceptor.ranking.auprc,
                v.metrics.donor.ranking.topk,
                v.metrics.donor.ranking.auprc
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

/// Builds the model a run starts from, with its trainable subset chosen.
fn build_model(cfg: &RunConfig) -> Result<(SpliceAi, Vec<candle_core::Var>), TrainError> {
    match &cfg.kind {
        RunKind::Train => {
            let mut model = SpliceAi::new(cfg.flank, cfg.random_seed, &cfg.device)?;
            let vars = model.set_trainable(Trainable::All)?;
            Ok((model, vars.into_iter().map(|(_, v)| v).collect()))
        }
        RunKind::Transfer {
            pretrained,
            trainable,
            freeze_bn,
            partial_load,
        } => {
            let (mut model, report) = if *partial_load {
                io::from_checkpoint(cfg.flank, pretrained, cfg.random_seed, &cfg.device)?
            } else {
                io::open_checkpoint(pretrained, Some(cfg.flank), cfg.random_seed, &cfg.device)?
            };
            cfg.out
                .line(format!("Loaded {}: {report}", pretrained.display()));
            if !io::all_finite(&model)? {
                return Err(TrainError::Config(format!(
                    "{}: the checkpoint holds NaN or infinite weights",
                    pretrained.display()
                )));
            }
            if let Trainable::LastUnits(n) = trainable {
                let units = cfg.flank.n_units();
                if *n > units {
                    log::warn!("--unfreeze {n} is more than the model's {units} residual units: training all {units}");
                    cfg.out.line(format!("--unfreeze {n} exceeds the {units} residual units of SpliceAI-{}; unfreezing all {units}", cfg.flank.flank));
                }
            }
            let vars = model.set_trainable(*trainable)?;
            model.set_freeze_bn(*freeze_bn);
            log::info!(
                "trainable tensors: {}",
                vars.iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok((model, vars.into_iter().map(|(_, v)| v).collect()))
        }
    }
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

/// Runs `train` or `transfer` to the end (or to early stopping) and returns the summary.
pub fn run(cfg: &RunConfig) -> Result<RunSummary, TrainError> {
    let started = Instant::now();
    let existing = check_config(cfg)?;
    let inputs = open_inputs(cfg)?;
    let mut run = Run::setup(cfg, inputs, existing)?;
    let mut summary = RunSummary::new(run.dir.clone());
    if let RunKind::Transfer { pretrained, .. } = &cfg.kind {
        run.baseline(pretrained, &mut summary)?;
    }
    let mut best = BestTracker::new(cfg.early_stopping.then_some(cfg.patience));
    for epoch in 0..cfg.epochs {
        let stop = run.epoch(epoch, &mut best, &mut summary)?;
        summary.epochs_run = epoch + 1;
        if stop {
            cfg.out.line("Early stopping triggered.");
            summary.stopped_early = true;
            break;
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Checks the options that need no file; returns the number of checkpoints an earlier run left.
fn check_config(cfg: &RunConfig) -> Result<usize, TrainError> {
    let existing = CheckpointStore::existing(&cfg.run_dir());
    if !existing.is_empty() && !cfg.overwrite {
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
    store: CheckpointStore,
    log: RunLog,
    progress: Progress,
    console: Console,
}

impl<'a> Run<'a> {
    /// Builds the model and the trainer, then prepares the run directory (cleared of an earlier run's
    /// `existing` checkpoints and logs), the prefix cache, the checkpoint store and the log.
    fn setup(cfg: &'a RunConfig, inputs: Inputs, existing: usize) -> Result<Self, TrainError> {
        let batches_per_epoch = inputs.train.windows.len().div_ceil(cfg.batch_size);
        let (model, vars) = build_model(cfg)?;
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
        let trainer = Trainer::new(model, vars, schedule, cfg.loss, batches_per_epoch)?;

        let dir = cfg.run_dir();
        std::fs::create_dir_all(&dir).map_err(|e| TrainError::Io {
            path: dir.clone(),
            source: e,
        })?;
        // Every input is checked: the run starts from a clean directory. Without checkpoints nothing of
        // value is there (a run that failed or was killed before its first epoch ended); with them,
        // --overwrite was given. Otherwise the old run's files mix with this one's: a stale model_7.pt
        // beside a 2-epoch run, LOG/ and metrics.jsonl lines of both runs, a killed epoch's batch losses
        // before this run's.
        clear_previous_run(&dir, existing, &cfg.out)?;
        cfg.run_info().write(&dir).map_err(|e| TrainError::Io {
            path: e.path,
            source: e.source,
        })?;
        let cache = match cut {
            Some(cut) => Some((Self::create_cache(cfg, &dir, &inputs, cut)?, cut)),
            None => None,
        };
        Ok(Self {
            store: CheckpointStore::create(&dir)?,
            log: RunLog::create(&dir)?,
            progress: Progress::new(cfg.progress),
            console: Console::new(cfg.console, cfg.out.clone()),
            cfg,
            dir,
            inputs,
            trainer,
            cache,
        })
    }

    /// The frozen-prefix cache: the windows of each split get a slot.
    fn create_cache(
        cfg: &RunConfig,
        dir: &Path,
        inputs: &Inputs,
        cut: usize,
    ) -> Result<Arc<PrefixCache>, TrainError> {
        let splits = Split::ALL.map(|s| (s, inputs.get(s).windows.as_slice()));
        let cache = PrefixCache::create(dir, cfg.flank, &splits, cfg.keep_cache)?;
        cfg.out.line(format!(
            "Frozen-prefix cache: blocks 0..{cut} run once per window ({:.2} MB per window in {})",
            cache.slot_bytes() as f64 / 1e6,
            cache.path().display()
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
    print_scores(&opts.out, Split::Test, &t.metrics);
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
