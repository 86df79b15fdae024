//! The epoch loop of `train` and `transfer` (SPEC.md "Optimisation" and "Outputs"), and `test`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;

use super::cache::PrefixCache;
use super::checkpoints::CheckpointStore;
use super::config::{RunConfig, RunKind};
use super::console::Console;
use super::evaluate::{accumulator, device_loader, evaluate, CacheUse, Evaluation};
use super::loss::Loss;
use super::progress::Progress;
use super::run_log::{console_summary, python_float_repr, EpochRecord, RunLog, Split};
use super::schedule::Schedule;
use super::trainer::{StepInput, Trainer};
use super::TrainError;
use crate::data::{train_validation_windows, H5File, Order};
use crate::metrics::EpochMetrics;
use crate::model::{io, FlankConfig, SpliceAi, Trainable};

/// One split's scores in one epoch.
#[derive(Debug, Clone)]
pub struct SplitScores {
    pub loss: f64,
    pub metrics: EpochMetrics,
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

/// Opens a dataset file with a clear error.
fn open(path: &Path) -> Result<Arc<H5File>, TrainError> {
    Ok(Arc::new(H5File::open(path)?))
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
        } => {
            let (mut model, report) =
                io::from_checkpoint(cfg.flank.flank, pretrained, cfg.random_seed, &cfg.device)?;
            println!("Loaded {}: {report}", pretrained.display());
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
                    println!("--unfreeze {n} exceeds the {units} residual units of SpliceAI-{}; unfreezing all {units}", cfg.flank.flank);
                }
            }
            let vars = model.set_trainable(*trainable)?;
            model.set_freeze_frozen_bn(*freeze_bn);
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

fn print_split(split: Split, m: &EpochMetrics) {
    println!("{}", split.console_header());
    print!("{}", console_summary(m, false));
}

/// Removes what an earlier run left in `run_dir`: the checkpoints in `models/`, `LOG/` and `metrics.jsonl`.
fn clear_previous_run(run_dir: &Path, n_checkpoints: usize) -> Result<(), TrainError> {
    let io = |path: &Path, source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    };
    for p in CheckpointStore::existing(run_dir) {
        std::fs::remove_file(&p).map_err(|e| io(&p, e))?;
    }
    if n_checkpoints > 0 {
        println!("--overwrite: removed the {n_checkpoints} checkpoint(s) and the logs of the previous run in {}", run_dir.display());
    }
    let log = run_dir.join("LOG");
    if log.exists() {
        std::fs::remove_dir_all(&log).map_err(|e| io(&log, e))?;
    }
    let jsonl = run_dir.join(super::run_log::METRICS_JSONL);
    match std::fs::remove_file(&jsonl) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&jsonl, e)),
        _ => Ok(()),
    }
}

/// Runs `train` or `transfer` to the end (or to early stopping) and returns the summary.
pub fn run(cfg: &RunConfig) -> Result<RunSummary, TrainError> {
    let started = Instant::now();
    let run_dir = cfg.run_dir();
    let existing = CheckpointStore::existing(&run_dir);
    if !existing.is_empty() && !cfg.overwrite {
        return Err(TrainError::RunDirNotEmpty {
            dir: run_dir.join("models"),
            count: existing.len(),
        });
    }
    if cfg.epochs == 0 {
        return Err(TrainError::Config("--epochs must be at least 1".into()));
    }
    if cfg.batch_size == 0 {
        return Err(TrainError::Config("--batch-size must be at least 1".into()));
    }
    // Open and check every input before any output is written.
    let train_file = open(&cfg.train_dataset)?;
    let test_file = open(&cfg.test_dataset)?;
    let val_file = cfg.validation_dataset.as_deref().map(open).transpose()?;
    let (train_windows, val_windows) =
        train_validation_windows(&train_file, val_file.as_deref(), cfg.random_seed);
    let val_file = val_file.unwrap_or_else(|| train_file.clone());
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
    let test_windows = test_file.all_windows();
    let batches_per_epoch = train_windows.len().div_ceil(cfg.batch_size);

    let (model, vars) = build_model(cfg)?;
    println!(
        "SpliceAI-{} ({} residual units) on {} | train {} windows ({} batches of {}), validation {}, test {} | {} trainable tensors",
        cfg.flank.flank,
        cfg.flank.n_units(),
        crate::device::describe(&cfg.device),
        train_windows.len(),
        batches_per_epoch,
        cfg.batch_size,
        val_windows.len(),
        test_windows.len(),
        vars.len()
    );
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
    let mut trainer = Trainer::new(model, vars, schedule, cfg.loss, batches_per_epoch)?;

    std::fs::create_dir_all(&run_dir).map_err(|e| TrainError::Io {
        path: run_dir.clone(),
        source: e,
    })?;
    // Every input is checked: the run starts from a clean directory. Without checkpoints nothing of value is
    // there (a run that failed or was killed before its first epoch ended); with them, --overwrite was given.
    // Otherwise the old run's files mix with this one's: a stale model_7.pt beside a 2-epoch run, LOG/ and
    // metrics.jsonl lines of both runs, a killed epoch's batch losses before this run's.
    clear_previous_run(&run_dir, existing.len())?;
    super::run_info::RunInfo::new(cfg).write(&run_dir)?;
    // The frozen-prefix cache: train, validation and test windows each get a slot.
    let cache = match cut {
        Some(_) => Some(Arc::new(PrefixCache::create(
            &run_dir,
            cfg.flank,
            &[(0, &train_windows), (1, &val_windows), (2, &test_windows)],
            cfg.keep_cache,
        )?)),
        None => None,
    };
    let use_cache = |source: u8| -> Option<CacheUse> {
        Some(CacheUse {
            cache: cache.clone()?,
            source,
            cut: cut?,
        })
    };
    if let (Some(c), Some(cut)) = (&cache, cut) {
        println!(
            "Frozen-prefix cache: blocks 0..{cut} run once per window ({:.2} MB per window in {})",
            c.slot_bytes() as f64 / 1e6,
            c.path().display()
        );
    }
    let store = CheckpointStore::create(&run_dir)?;
    let mut log = RunLog::create(&run_dir)?;
    let progress = Progress::new(cfg.progress);
    let mut console = Console::new(cfg.console);

    let mut summary = RunSummary {
        run_dir: run_dir.clone(),
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
    };

    // Zero-shot baseline of the pretrained model (metrics.jsonl only, epoch -1).
    if let RunKind::Transfer { pretrained, .. } = &cfg.kind {
        summary.pretrained = Some(pretrained.clone());
        let v = evaluate(
            trainer.model(),
            val_file.clone(),
            val_windows.clone(),
            cfg.batch_size,
            cfg.loss,
            &progress,
            "zero-shot val",
            use_cache(1),
        )?;
        let t = evaluate(
            trainer.model(),
            test_file.clone(),
            test_windows.clone(),
            cfg.batch_size,
            cfg.loss,
            &progress,
            "zero-shot test",
            use_cache(2),
        )?;
        log.log_jsonl(&EpochRecord::new(
            -1,
            Split::Val,
            &v.metrics,
            None,
            v.seconds,
        ))?;
        log.log_jsonl(&EpochRecord::new(
            -1,
            Split::Test,
            &t.metrics,
            None,
            t.seconds,
        ))?;
        console.zero_shot(&v.metrics, &t.metrics);
        summary.baseline_val = Some(SplitScores {
            loss: v.metrics.loss,
            metrics: v.metrics,
        });
        summary.baseline_test = Some(SplitScores {
            loss: t.metrics.loss,
            metrics: t.metrics,
        });
    }

    let mut best_val_loss = f64::INFINITY;
    let mut epochs_without_improvement = 0usize;
    for epoch in 0..cfg.epochs {
        let epoch_start = Instant::now();
        console.epoch_start(epoch, cfg.epochs);
        // --- train ---
        let loader = device_loader(
            train_file.clone(),
            train_windows.clone(),
            cfg.flank.flank,
            cfg.batch_size,
            Order::Shuffled {
                seed: cfg.random_seed,
                epoch: epoch as u64,
            },
            &cfg.device,
            use_cache(0),
        )?;
        let train_cache = use_cache(0);
        let bar = progress.bar(
            loader.batches_per_epoch() as u64,
            &format!("epoch {}/{} train", epoch + 1, cfg.epochs),
        );
        let mut acc = accumulator(cfg.loss);
        let mut seen = 0usize;
        let train_start = Instant::now();
        for batch in loader {
            let mut batch = batch?;
            let input = match &train_cache {
                Some(c) => StepInput::Prefix {
                    state: c.state(trainer.model(), &mut batch)?,
                    cut: c.cut,
                },
                None => StepInput::Window(&batch.x),
            };
            let out = trainer.step(input, &batch.y, epoch)?;
            log.log_batch_loss(Split::Train, out.loss as f64)?;
            log.log_batch_lr(out.lr_next)?;
            acc.update(&out.probs.flatten_all()?.to_vec1::<f32>()?, &batch.y_host)?;
            seen += batch.n;
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.5} | lr {:.3e} | {:.1} windows/s",
                out.loss,
                out.lr_used,
                seen as f64 / train_start.elapsed().as_secs_f64().max(1e-9)
            ));
        }
        bar.finish_and_clear();
        let train_seconds = train_start.elapsed().as_secs_f64();
        let train_m = acc.finish();
        log.log_epoch_metrics(Split::Train, &train_m)?;
        let lr_now = Some(trainer.learning_rate());
        console.split(Split::Train, &train_m, lr_now, train_seconds);

        // --- validation and test ---
        let v: Evaluation = evaluate(
            trainer.model(),
            val_file.clone(),
            val_windows.clone(),
            cfg.batch_size,
            cfg.loss,
            &progress,
            &format!("epoch {}/{} val", epoch + 1, cfg.epochs),
            use_cache(1),
        )?;
        for l in &v.batch_losses {
            log.log_batch_loss(Split::Val, *l as f64)?;
        }
        log.log_epoch_metrics(Split::Val, &v.metrics)?;
        console.split(Split::Val, &v.metrics, lr_now, v.seconds);
        let t: Evaluation = evaluate(
            trainer.model(),
            test_file.clone(),
            test_windows.clone(),
            cfg.batch_size,
            cfg.loss,
            &progress,
            &format!("epoch {}/{} test", epoch + 1, cfg.epochs),
            use_cache(2),
        )?;
        for l in &t.batch_losses {
            log.log_batch_loss(Split::Test, *l as f64)?;
        }
        log.log_epoch_metrics(Split::Test, &t.metrics)?;
        console.split(Split::Test, &t.metrics, lr_now, t.seconds);
        let lr = trainer.learning_rate();
        log.log_epoch_lr(lr)?;

        // --- checkpoints ---
        store.save(trainer.model(), &store.epoch_path(epoch))?;
        let val_loss = v.metrics.loss;
        if val_loss < best_val_loss {
            best_val_loss = val_loss;
            epochs_without_improvement = 0;
            store.save(trainer.model(), &store.best_path())?;
            console.upstream_only("New best model saved.");
            summary.best_epoch = Some(epoch);
            summary.best_model = Some(store.best_path());
            summary.best_val = Some(SplitScores {
                loss: val_loss,
                metrics: v.metrics.clone(),
            });
            summary.best_test = Some(SplitScores {
                loss: t.metrics.loss,
                metrics: t.metrics.clone(),
            });
        } else {
            epochs_without_improvement += 1;
            console.upstream_only(&format!(
                "No improvement in validation loss for {epochs_without_improvement} epochs."
            ));
        }
        log.log_jsonl(&EpochRecord::new(
            epoch as i64,
            Split::Train,
            &train_m,
            Some(lr),
            train_seconds,
        ))?;
        log.log_jsonl(&EpochRecord::new(
            epoch as i64,
            Split::Val,
            &v.metrics,
            Some(lr),
            v.seconds,
        ))?;
        log.log_jsonl(&EpochRecord::new(
            epoch as i64,
            Split::Test,
            &t.metrics,
            Some(lr),
            t.seconds,
        ))?;
        log.flush()?;
        summary.epochs_run = epoch + 1;
        console.upstream_only(&format!(
            ">> Epoch {}; Final Learning Rate: {}\n--- {:.2} seconds ---",
            epoch + 1,
            python_float_repr(lr),
            epoch_start.elapsed().as_secs_f64()
        ));
        if cfg.early_stopping && epochs_without_improvement >= cfg.patience {
            println!("Early stopping triggered.");
            summary.stopped_early = true;
            break;
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// `test`: scores a checkpoint on a test file; writes LOG/TEST under `output_dir` when given.
#[allow(clippy::too_many_arguments)]
pub fn run_test(
    model_path: &Path,
    test_dataset: &Path,
    flank: &'static FlankConfig,
    output_dir: Option<&Path>,
    loss: Loss,
    batch_size: usize,
    device: &Device,
    show_progress: bool,
) -> Result<EpochMetrics, TrainError> {
    let test_file = open(test_dataset)?;
    let (model, report) = io::load_complete(flank.flank, model_path, device)?;
    println!("Loaded {}: {report}", model_path.display());
    let progress = Progress::new(show_progress);
    let windows = test_file.all_windows();
    let t = evaluate(
        &model, test_file, windows, batch_size, loss, &progress, "test", None,
    )?;
    print_split(Split::Test, &t.metrics);
    println!("Testing Loss: {}", python_float_repr(t.metrics.loss));
    if let Some(dir) = output_dir {
        let mut log = RunLog::create(dir)?;
        for l in &t.batch_losses {
            log.log_batch_loss(Split::Test, *l as f64)?;
        }
        log.log_epoch_metrics(Split::Test, &t.metrics)?;
        log.log_jsonl(&EpochRecord::new(
            0,
            Split::Test,
            &t.metrics,
            None,
            t.seconds,
        ))?;
        log.flush()?;
        println!("Wrote {}", dir.join("LOG").join("TEST").display());
    }
    Ok(t.metrics)
}
