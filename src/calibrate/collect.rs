//! The logits and labels of every position of a dataset, on the fused evaluation path
//! ([`SpliceAi::predict_logits`]), read by the training loader in file order.

use std::sync::Arc;

use crate::data::{H5File, Order};
use crate::model::config::{OUT_CLASSES, SEQ_LEN};
use crate::model::SpliceAi;
use crate::progress::Progress;
use crate::train::evaluate::device_loader;
use crate::train::TrainError;

use super::metrics::{label_class, LabelledLogits};

/// The positions of one dataset.
#[derive(Debug, Clone)]
pub struct Collected {
    /// Logits and classes, window after window.
    pub data: LabelledLogits,
    /// Windows read.
    pub windows: usize,
    /// Windows of the file left out (upstream's rule: see [`windows_used`]).
    pub dropped: usize,
}

/// How many of a file's `n` windows upstream's `calibrate` scores: it reads them in batches of an even
/// size (36, 24 or 12, counted for two GPUs) and trims each batch to a multiple of two, so an odd last
/// window is left out.
pub fn windows_used(n: usize) -> usize {
    n - n % 2
}

/// Runs the model in eval mode over the windows of `file` that upstream scores, in file order, and keeps
/// the logits (position-major) and each position's class.
pub fn collect(
    model: &SpliceAi,
    file: Arc<H5File>,
    batch_size: usize,
    progress: &Progress,
    label: &str,
) -> Result<Collected, TrainError> {
    let mut windows = file.all_windows();
    let dropped = windows.len() - windows_used(windows.len());
    windows.truncate(windows.len() - dropped);
    let n_windows = windows.len();
    let loader = device_loader(
        file,
        windows,
        model.config().flank,
        batch_size.max(1),
        Order::Sequential,
        model.device(),
        None,
    )?;
    let bar = progress.bar(loader.batches_per_epoch() as u64, label);
    let mut data = LabelledLogits::default();
    let mut logits_pm = Vec::new();
    let mut labels = Vec::new();
    for batch in loader {
        let batch = batch?;
        let logits = model.predict_logits(&batch.x)?;
        let host = logits
            .to_device(&candle_core::Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        // (n, 3, 5000) channel-major → position-major rows of three.
        logits_pm.clear();
        labels.clear();
        for w in 0..batch.n {
            let base = w * OUT_CLASSES * SEQ_LEN;
            for j in 0..SEQ_LEN {
                let at = |c: usize| base + c * SEQ_LEN + j;
                logits_pm.extend_from_slice(&[host[at(0)], host[at(1)], host[at(2)]]);
                let y = &batch.y_host;
                labels.push(label_class([y[at(0)], y[at(1)], y[at(2)]]));
            }
        }
        data.extend(&logits_pm, &labels);
        bar.inc(1);
        if crate::cancel::requested() {
            return Err(TrainError::Interrupted);
        }
    }
    bar.finish_and_clear();
    Ok(Collected {
        data,
        windows: n_windows,
        dropped,
    })
}
