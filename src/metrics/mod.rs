//! Epoch metrics as OpenSpliceAI 0.0.7 computes them (`train_base/utils.py`: `model_evaluation`, `metrics`,
//! `classwise_accuracy`, `print_topl_statistics`), streamed batch by batch and exact over every window
//! (upstream evaluates a random sample of 1000 windows).
//!
//! Which windows count: upstream keeps the windows with `labels.sum(axis=(1, 2)) >= 1`, i.e. every window with
//! at least one labelled position in *any* channel (padding positions are all-zero; non-splice positions have
//! channel 0 set), so in practice every window. All metrics, the per-class ones and the loss included, are
//! computed over those windows only. [`WindowFilter::AnyLabel`] (the default) reproduces that;
//! [`WindowFilter::SpliceSite`] keeps only windows with an acceptor or donor site. The ranking metrics (top-k,
//! AUPRC) can be restricted separately ([`MetricsAccumulator::with_ranking_filter`]): the trainer scores them over
//! the windows that hold a splice site (docs/upstream-behaviour.md#metrics).
//!
//! Per position: the true class is the argmax of the labels, the predicted class the argmax of the
//! probabilities (ties: lowest index, like numpy/torch, so an all-zero padding label counts as non-splice).

pub mod loss;
mod ranking;

pub use loss::Loss;
pub use ranking::{key_score, ranking_metrics, score_key, RankingMetrics, TOPK_FACTORS};

use rayon::prelude::*;
use serde::Serialize;

use crate::model::config::OUT_CLASSES;

/// The class names as upstream prints them (`ss_types`).
pub const CLASS_NAMES: [&str; 3] = ["Non-splice", "acceptor", "donor"];

/// Errors from feeding the accumulator.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Probabilities and labels differ in length.
    #[error("probabilities have {probs} values but labels have {labels}")]
    LengthMismatch {
        /// Length of the probability slice.
        probs: usize,
        /// Length of the label slice.
        labels: usize,
    },
    /// The slice is not a whole number of (3, window_len) windows.
    #[error("{len} values are not a whole number of (3, {window_len}) windows")]
    NotWholeWindows {
        /// Length of the slice.
        len: usize,
        /// The accumulator's window length.
        window_len: usize,
    },
}

/// Which windows enter the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WindowFilter {
    /// Upstream: windows whose labels sum to at least 1 over all channels and positions.
    #[default]
    AnyLabel,
    /// Windows holding at least one acceptor or donor site (label exactly 1 in channel 1 or 2).
    SpliceSite,
}

/// Precision/recall metrics of one class from the argmax confusion counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassMetrics {
    /// Upstream's class accuracy: true positives / true positions of the class (0.0 when none), i.e. recall.
    pub accuracy: f64,
    /// tp / predicted (0.0 when never predicted, sklearn's `zero_division="warn"` value).
    pub precision: f64,
    /// tp / true (0.0 when the class never occurs).
    pub recall: f64,
    /// sklearn's `2·tp / (true + predicted)` (0.0 when both are 0).
    pub f1: f64,
    /// Positions whose true class is this one.
    pub support: u64,
    /// Positions predicted as this class.
    pub predicted: u64,
}

/// Metrics of a splice-site class: argmax metrics and ranking metrics side by side (flat in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SiteClassMetrics {
    /// Argmax (confusion-count) metrics.
    #[serde(flatten)]
    pub class: ClassMetrics,
    /// Top-k, thresholds, AUPRC, number of true sites.
    #[serde(flatten)]
    pub ranking: RankingMetrics,
}

/// Everything upstream reports for one split in one epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochMetrics {
    /// Windows fed to the accumulator.
    pub windows: u64,
    /// Windows kept by the [`WindowFilter`] (upstream's `is_expr` windows).
    pub kept_windows: u64,
    /// Kept windows whose positions entered top-k and AUPRC (the ranking filter).
    pub ranked_windows: u64,
    /// Positions of the kept windows (`kept_windows × window_len`).
    pub positions: u64,
    /// Mean loss over the kept windows' positions (f64 accumulation); NaN when no window was kept.
    pub loss: f64,
    /// Mean of the three class accuracies (upstream's "Overall Accuracy", `accuracy.txt`).
    pub accuracy: f64,
    /// Channel 0.
    pub non_splice: ClassMetrics,
    /// Channel 1.
    pub acceptor: SiteClassMetrics,
    /// Channel 2.
    pub donor: SiteClassMetrics,
    /// `confusion[true][predicted]` position counts over the kept windows.
    pub confusion: [[u64; 3]; 3],
}

impl EpochMetrics {
    /// The per-class argmax metrics in channel order (non-splice, acceptor, donor).
    pub fn class_metrics(&self) -> [ClassMetrics; 3] {
        [self.non_splice, self.acceptor.class, self.donor.class]
    }
}

/// Streaming accumulator: feed each batch's probabilities and one-hot labels, laid out (n, 3, window_len).
///
/// Memory: 8 bytes per position of a kept window (acceptor and donor scores as `f32`-derived `u32` keys) plus
/// 8 bytes per true site; [`finish`](Self::finish) sorts in place and allocates no copy of the scores.
#[derive(Debug, Clone)]
pub struct MetricsAccumulator {
    window_len: usize,
    filter: WindowFilter,
    ranking_filter: WindowFilter,
    loss: Loss,
    windows: u64,
    ranked_windows: u64,
    kept_windows: u64,
    confusion: [[u64; 3]; 3],
    loss_sum: f64,
    keys: [Vec<u32>; 2],
    positives: [Vec<u64>; 2],
}

/// A ranked window's acceptor and donor key chunks and its offset in the key buffers.
type KeySlot<'a> = (&'a mut [u32], &'a mut [u32], u64);

/// Per-window partial result.
struct WindowStats {
    confusion: [[u64; 3]; 3],
    loss: f64,
    positives: [Vec<u32>; 2],
}

impl MetricsAccumulator {
    /// An empty accumulator for windows of `window_len` positions ([`SEQ_LEN`](crate::model::config::SEQ_LEN) for SpliceAI), with upstream's
    /// window filter and cross-entropy loss.
    pub fn new(window_len: usize) -> Self {
        assert!(window_len > 0, "window_len must be positive");
        Self {
            window_len,
            filter: WindowFilter::default(),
            ranking_filter: WindowFilter::default(),
            loss: Loss::CrossEntropyLoss,
            windows: 0,
            ranked_windows: 0,
            kept_windows: 0,
            confusion: [[0; 3]; 3],
            loss_sum: 0.0,
            keys: [Vec::new(), Vec::new()],
            positives: [Vec::new(), Vec::new()],
        }
    }

    /// Sets which windows count (before the first [`update`](Self::update)).
    pub fn with_window_filter(mut self, filter: WindowFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Sets which of the kept windows enter top-k and AUPRC (before the first [`update`](Self::update)).
    /// The trainer scores the ranking over windows that hold a splice site ([`WindowFilter::SpliceSite`]);
    /// the default is upstream's rule, the same as [`with_window_filter`](Self::with_window_filter).
    pub fn with_ranking_filter(mut self, filter: WindowFilter) -> Self {
        self.ranking_filter = filter;
        self
    }

    /// Sets the loss accumulated into [`EpochMetrics::loss`].
    pub fn with_loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// Windows fed so far.
    pub fn windows(&self) -> u64 {
        self.windows
    }

    /// Windows kept so far.
    pub fn kept_windows(&self) -> u64 {
        self.kept_windows
    }

    /// Adds one batch: `probs` and `labels` are both (n, 3, window_len), row-major.
    pub fn update(&mut self, probs: &[f32], labels: &[f32]) -> Result<(), MetricsError> {
        if probs.len() != labels.len() {
            return Err(MetricsError::LengthMismatch {
                probs: probs.len(),
                labels: labels.len(),
            });
        }
        let wl = self.window_len;
        let stride = OUT_CLASSES * wl;
        if !probs.len().is_multiple_of(stride) {
            return Err(MetricsError::NotWholeWindows {
                len: probs.len(),
                window_len: wl,
            });
        }
        let n = probs.len() / stride;
        self.windows += n as u64;
        let kept: Vec<usize> = (0..n)
            .filter(|&w| self.keeps(&labels[w * stride..(w + 1) * stride]))
            .collect();
        if kept.is_empty() {
            return Ok(());
        }
        let ranked: Vec<bool> = kept
            .iter()
            .map(|&w| {
                keeps(
                    self.ranking_filter,
                    wl,
                    &labels[w * stride..(w + 1) * stride],
                )
            })
            .collect();
        let n_ranked = ranked.iter().filter(|&&r| r).count();
        let base = self.keys[0].len();
        for keys in &mut self.keys {
            keys.resize(base + n_ranked * wl, 0);
        }
        // One optional (acceptor, donor) key slot per kept window: ranked windows get the next chunk.
        let [acc_keys, don_keys] = &mut self.keys;
        let mut acc_rest = &mut acc_keys[base..];
        let mut don_rest = &mut don_keys[base..];
        let mut slots: Vec<Option<KeySlot<'_>>> = Vec::with_capacity(kept.len());
        let mut next = base as u64;
        for &r in &ranked {
            if r {
                let (a, ar) = std::mem::take(&mut acc_rest).split_at_mut(wl);
                let (d, dr) = std::mem::take(&mut don_rest).split_at_mut(wl);
                acc_rest = ar;
                don_rest = dr;
                slots.push(Some((a, d, next)));
                next += wl as u64;
            } else {
                slots.push(None);
            }
        }
        let loss = self.loss;
        let stats: Vec<(WindowStats, Option<u64>)> = kept
            .par_iter()
            .zip(slots.into_par_iter())
            .map(|(&w, slot)| {
                let p = &probs[w * stride..(w + 1) * stride];
                let y = &labels[w * stride..(w + 1) * stride];
                match slot {
                    Some((acc, don, offset)) => {
                        (window_stats(p, y, wl, loss, Some((acc, don))), Some(offset))
                    }
                    None => (window_stats(p, y, wl, loss, None), None),
                }
            })
            .collect();
        for (s, offset) in stats {
            for t in 0..3 {
                for q in 0..3 {
                    self.confusion[t][q] += s.confusion[t][q];
                }
            }
            self.loss_sum += s.loss;
            if let Some(offset) = offset {
                for c in 0..2 {
                    self.positives[c].extend(s.positives[c].iter().map(|&j| offset + j as u64));
                }
            }
        }
        self.ranked_windows += n_ranked as u64;
        self.kept_windows += kept.len() as u64;
        Ok(())
    }

    fn keeps(&self, y: &[f32]) -> bool {
        keeps(self.filter, self.window_len, y)
    }

    /// Windows whose positions entered top-k and AUPRC so far.
    pub fn ranked_windows(&self) -> u64 {
        self.ranked_windows
    }

    /// Computes the epoch's metrics (consumes the accumulator; sorts the stored scores in place).
    pub fn finish(self) -> EpochMetrics {
        let positions = self.kept_windows * self.window_len as u64;
        let class = class_metrics(&self.confusion);
        let accuracy = (class[0].accuracy + class[1].accuracy + class[2].accuracy) / 3.0;
        let [mut acc_keys, mut don_keys] = self.keys;
        let [acc_pos, don_pos] = self.positives;
        let acc_rank = ranking_metrics(&mut acc_keys, &acc_pos);
        drop(acc_keys);
        let don_rank = ranking_metrics(&mut don_keys, &don_pos);
        EpochMetrics {
            windows: self.windows,
            kept_windows: self.kept_windows,
            ranked_windows: self.ranked_windows,
            positions,
            loss: if positions > 0 {
                self.loss_sum / positions as f64
            } else {
                f64::NAN
            },
            accuracy,
            non_splice: class[0],
            acceptor: SiteClassMetrics {
                class: class[1],
                ranking: acc_rank,
            },
            donor: SiteClassMetrics {
                class: class[2],
                ranking: don_rank,
            },
            confusion: self.confusion,
        }
    }
}

fn keeps(filter: WindowFilter, wl: usize, y: &[f32]) -> bool {
    match filter {
        WindowFilter::AnyLabel => y.iter().map(|&v| v as f64).sum::<f64>() >= 1.0,
        WindowFilter::SpliceSite => y[wl..].contains(&1.0),
    }
}

/// Index of the first maximum of three values (numpy/torch argmax tie rule).
#[inline]
fn argmax3(a: f32, b: f32, c: f32) -> usize {
    let mut best = 0;
    let mut v = a;
    if b > v {
        best = 1;
        v = b;
    }
    if c > v {
        best = 2;
    }
    best
}

fn window_stats(
    p: &[f32],
    y: &[f32],
    wl: usize,
    loss: Loss,
    mut keys: Option<(&mut [u32], &mut [u32])>,
) -> WindowStats {
    let mut confusion = [[0u64; 3]; 3];
    let mut loss_sum = 0.0f64;
    let mut positives = [Vec::new(), Vec::new()];
    for j in 0..wl {
        let (p0, p1, p2) = (p[j], p[wl + j], p[2 * wl + j]);
        let (y0, y1, y2) = (y[j], y[wl + j], y[2 * wl + j]);
        confusion[argmax3(y0, y1, y2)][argmax3(p0, p1, p2)] += 1;
        let mut pos_loss = 0.0f64;
        for (yc, pc) in [(y0, p0), (y1, p1), (y2, p2)] {
            if yc != 0.0 {
                pos_loss += loss.term(yc as f64, pc as f64);
            }
        }
        loss_sum -= pos_loss;
        if let Some((acc, don)) = keys.as_mut() {
            acc[j] = score_key(p1);
            don[j] = score_key(p2);
            if y1 == 1.0 {
                positives[0].push(j as u32);
            }
            if y2 == 1.0 {
                positives[1].push(j as u32);
            }
        }
    }
    WindowStats {
        confusion,
        loss: loss_sum,
        positives,
    }
}

/// Per-class metrics from `confusion[true][predicted]`, with upstream's (`classwise_accuracy`) and sklearn's
/// (`precision_recall_fscore_support(average=None)`, zero-division → 0.0) definitions.
pub fn class_metrics(confusion: &[[u64; 3]; 3]) -> [ClassMetrics; 3] {
    let div = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    std::array::from_fn(|c| {
        let tp = confusion[c][c];
        let support: u64 = confusion[c].iter().sum();
        let predicted: u64 = (0..3).map(|t| confusion[t][c]).sum();
        let recall = div(tp, support);
        let denom = support as f64 + predicted as f64;
        ClassMetrics {
            accuracy: recall,
            precision: div(tp, predicted),
            recall,
            f1: if denom == 0.0 {
                0.0
            } else {
                2.0 * tp as f64 / denom
            },
            support,
            predicted,
        }
    })
}
