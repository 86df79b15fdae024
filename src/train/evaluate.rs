//! Evaluation: eval-mode forward over every window of a split, in file order, into the metrics.

use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};

use super::cache::PrefixCache;
use super::TrainError;
use crate::data::{Batch, H5File, Loader, LoaderConfig, Order, WindowRef};
use crate::metrics::Loss;
use crate::metrics::{EpochMetrics, MetricsAccumulator, WindowFilter};
use crate::model::config::{OUT_CLASSES, SEQ_LEN};
use crate::model::{SpliceAi, Trunk};
use crate::progress::Progress;
use crate::rundir::Split;

/// A batch on the compute device.
pub struct DeviceBatch {
    /// (n, 4, 5000 + F)
    pub x: Tensor,
    /// (n, 3, 5000)
    pub y: Tensor,
    /// The labels on the host, (n, 3, 5000) row-major, for the metrics.
    pub y_host: Vec<f32>,
    /// Windows in the batch.
    pub n: usize,
    /// The windows, in batch order.
    pub windows: Vec<WindowRef>,
    /// The frozen prefix's output, when the prefix cache already holds every window of the batch.
    pub cached: Option<Trunk>,
}

/// The prefix cache and the split whose windows it serves, when caching is on.
#[derive(Clone)]
pub struct CacheUse {
    pub cache: Arc<PrefixCache>,
    pub split: Split,
    /// List index of the first block after the frozen prefix.
    pub cut: usize,
}

impl CacheUse {
    /// The prefix state of a batch: from the cache, or computed now (then stored and read back, so that
    /// every epoch sees the same f16-rounded values).
    pub fn state(&self, model: &SpliceAi, batch: &mut DeviceBatch) -> Result<Trunk, TrainError> {
        if let Some(s) = batch.cached.take() {
            return Ok(s);
        }
        let state = model.forward_prefix(&batch.x, self.cut)?;
        self.cache.store(self.split, &batch.windows, &state)?;
        self.cache.load(self.split, &batch.windows, model.device())
    }
}

/// A loader whose background thread also moves each batch to `device`.
pub fn device_loader(
    file: Arc<H5File>,
    windows: Vec<WindowRef>,
    flank: usize,
    batch_size: usize,
    order: Order,
    device: &Device,
    cache: Option<CacheUse>,
) -> Result<Loader<DeviceBatch>, TrainError> {
    let device = device.clone();
    let config = LoaderConfig::new(flank, batch_size, order);
    Ok(Loader::new(file, windows, config, move |b: Batch| {
        let len = b.x_len();
        let cached = match &cache {
            Some(c) if c.cache.is_filled(c.split, &b.windows) => {
                Some(c.cache.load(c.split, &b.windows, &device)?)
            }
            _ => None,
        };
        let x = Tensor::from_vec(b.x, (b.n, 4, len), &device)?;
        let y = Tensor::from_slice(&b.y, (b.n, OUT_CLASSES, SEQ_LEN), &device)?;
        // The batch must be on the device before the consuming thread reads it: a host-to-device copy
        // may be queued asynchronously. candle 0.11 has one stream per device, so the consumer's kernels
        // should be ordered after it anyway; this makes it hold for every backend without relying on that.
        device.synchronize()?;
        Ok::<_, TrainError>(DeviceBatch {
            x,
            y,
            y_host: b.y,
            n: b.n,
            windows: b.windows,
            cached,
        })
    })?)
}

/// A metrics accumulator set up as the trainer scores every split: confusion counts and loss over every
/// labelled window (upstream), top-k and AUPRC over windows that hold a splice site (docs/upstream-behaviour.md#metrics).
pub fn accumulator(loss: Loss) -> MetricsAccumulator {
    MetricsAccumulator::new(SEQ_LEN)
        .with_loss(loss)
        .with_window_filter(WindowFilter::AnyLabel)
        .with_ranking_filter(WindowFilter::SpliceSite)
}

/// Result of evaluating one split.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub metrics: EpochMetrics,
    /// Each batch's loss, in order.
    pub batch_losses: Vec<f32>,
    pub seconds: f64,
}

/// One split's data: the file and the windows of it that belong to the split.
#[derive(Debug, Clone)]
pub struct SplitData {
    pub file: Arc<H5File>,
    pub windows: Vec<WindowRef>,
}

/// How an evaluation pass runs.
pub struct EvalPass<'a> {
    pub batch_size: usize,
    pub loss: Loss,
    pub progress: &'a Progress,
    /// The progress bar's label.
    pub label: &'a str,
}

/// Runs the model in eval mode over every window of `data` (the last partial batch included), through the
/// frozen-prefix cache when given one.
pub fn evaluate(
    model: &SpliceAi,
    data: &SplitData,
    pass: &EvalPass,
    cache: Option<CacheUse>,
) -> Result<Evaluation, TrainError> {
    let EvalPass {
        batch_size,
        loss,
        progress,
        label,
    } = *pass;
    let start = Instant::now();
    let flank = model.config().flank;
    let loader = device_loader(
        data.file.clone(),
        data.windows.clone(),
        flank,
        batch_size,
        Order::Sequential,
        model.device(),
        cache.clone(),
    )?;
    let bar = progress.bar(loader.batches_per_epoch() as u64, label);
    let mut metrics = accumulator(loss);
    let mut batch_losses = Vec::with_capacity(loader.batches_per_epoch());
    let mut seen = 0usize;
    for batch in loader {
        let mut batch = batch?;
        let probs = match &cache {
            Some(c) => {
                let state = c.state(model, &mut batch)?;
                model.predict_suffix(state, c.cut)?
            }
            None => model.predict(&batch.x)?,
        };
        let l = loss.compute(&probs, &batch.y)?.to_scalar::<f32>()?;
        batch_losses.push(l);
        let host = probs.flatten_all()?.to_vec1::<f32>()?;
        metrics.update(&host, &batch.y_host)?;
        seen += batch.n;
        let rate = seen as f64 / start.elapsed().as_secs_f64().max(1e-9);
        bar.inc(1);
        bar.set_message(format!("loss {l:.5} | {rate:.1} windows/s"));
        if crate::cancel::requested() {
            return Err(TrainError::Interrupted);
        }
    }
    bar.finish_and_clear();
    Ok(Evaluation {
        metrics: metrics.finish(),
        batch_losses,
        seconds: start.elapsed().as_secs_f64(),
    })
}
