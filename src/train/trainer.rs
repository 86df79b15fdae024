//! One optimisation step at a time: forward in train mode, loss, backward, AdamW, the lr schedule.

use candle_core::{Tensor, Var};

use super::optim::{AdamW, AdamWConfig};
use super::schedule::Schedule;
use super::TrainError;
use crate::cancel;
use crate::metrics::Loss;
use crate::model::{Mode, SpliceAi, Trunk};

/// What a training step starts from.
pub enum StepInput<'a> {
    /// The input windows (n, 4, 5000 + F).
    Window(&'a Tensor),
    /// The frozen prefix's output at list index `cut` (prefix cache).
    Prefix { state: Trunk, cut: usize },
}

/// What one training batch produced.
#[derive(Debug)]
pub struct StepOutput {
    /// The batch's loss (before the update).
    pub loss: f32,
    /// The learning rate the batch was trained with.
    pub lr_used: f64,
    /// The learning rate after the scheduler step (what upstream logs per batch).
    pub lr_next: f64,
    /// Train-mode probabilities (n, 3, 5000), for the TRAIN metrics as upstream computes them.
    pub probs: Tensor,
}

/// The model, its optimiser and schedule, and the global batch counter.
pub struct Trainer {
    model: SpliceAi,
    optimizer: AdamW,
    schedule: Schedule,
    loss: Loss,
    global_batch: usize,
    batches_per_epoch: usize,
    n_trainable: usize,
}

impl Trainer {
    /// A trainer over the model's trainable variables.
    pub fn new(
        model: SpliceAi,
        vars: Vec<Var>,
        schedule: Schedule,
        loss: Loss,
        batches_per_epoch: usize,
    ) -> Result<Self, TrainError> {
        let n_trainable = vars.iter().map(|v| v.elem_count()).sum();
        let optimizer = AdamW::new(vars, AdamWConfig::with_lr(schedule.initial_lr()))?;
        Ok(Self {
            model,
            optimizer,
            schedule,
            loss,
            global_batch: 0,
            batches_per_epoch,
            n_trainable,
        })
    }
    /// Batches trained so far over all epochs.
    pub fn global_batch(&self) -> usize {
        self.global_batch
    }

    /// The optimiser's state, per trained tensor.
    pub fn moments(&self) -> Vec<super::optim::Moments> {
        self.optimizer.moments()
    }

    /// Continues from a saved position: the global batch counter, the learning rate of the next batch
    /// and the optimiser's moments.
    pub fn restore(
        &mut self,
        global_batch: usize,
        learning_rate: f64,
        moments: Vec<super::optim::Moments>,
    ) -> Result<(), TrainError> {
        self.optimizer.restore(moments)?;
        self.optimizer.set_learning_rate(learning_rate);
        self.global_batch = global_batch;
        Ok(())
    }

    pub fn model(&self) -> &SpliceAi {
        &self.model
    }

    /// Number of trained scalars.
    pub fn n_trainable(&self) -> usize {
        self.n_trainable
    }

    /// The learning rate the next batch uses.
    pub fn learning_rate(&self) -> f64 {
        self.optimizer.learning_rate()
    }

    /// One batch: `input` (the window or the cached frozen-prefix state), `y` (n, 3, 5000). A non-finite
    /// loss stops with an error before any update; Ctrl-C is honoured after the update.
    pub fn step(
        &mut self,
        input: StepInput,
        y: &Tensor,
        epoch: usize,
    ) -> Result<StepOutput, TrainError> {
        let b = self.global_batch;
        let lr_used = self.optimizer.learning_rate();
        let probs = match input {
            StepInput::Window(x) => self.model.forward(x, Mode::Train)?,
            StepInput::Prefix { state, cut } => {
                self.model.forward_suffix(state, cut, Mode::Train)?
            }
        };
        let loss = self.loss.compute(&probs, y)?;
        let value = loss.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                epoch,
                batch: b % self.batches_per_epoch.max(1),
                value,
            });
        }
        if self.n_trainable > 0 {
            crate::ops::path::check_graph_no_f64(&loss)?;
            let grads = loss.backward()?;
            self.optimizer.step(&grads)?;
        }
        self.global_batch += 1;
        let lr_next = self.schedule.lr_after_batch(b, self.batches_per_epoch);
        self.optimizer.set_learning_rate(lr_next);
        if cancel::requested() {
            return Err(TrainError::Interrupted);
        }
        Ok(StepOutput {
            loss: value,
            lr_used,
            lr_next,
            probs: probs.detach(),
        })
    }
}
