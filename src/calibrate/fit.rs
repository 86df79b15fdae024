//! Fitting the temperature as OpenSpliceAI 0.0.7's `ModelWithTemperature.set_temperature` does: full-batch
//! Adam (lr 0.01) on the cross-entropy of every validation position, the temperature clamped to [0.05, 5]
//! after every step, `ReduceLROnPlateau(mode='min', factor=0.1, patience=2)` stepped with each loss, at
//! most 2000 steps, stopping once the loss has failed twice in a row to improve on the best by more than
//! 1e-6, and then restoring the best temperature.
//!
//! Upstream's order within a step is kept, including its one quirk: the loss of a step is computed at the
//! temperature before the update, but the temperature kept as "best" when that loss improves is the one
//! after the update. The optimiser runs in float32 as `torch.optim.Adam`'s single-tensor path does.

use super::metrics::{loss_and_grad, LabelledLogits};
use super::temperature::{clamp, Temperature, CLASSES};

/// The fitting constants, hard-coded in upstream's code (which is followed here rather than the start of
/// 1.1 and patience of 10 its documentation page is reported to give).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Adam's learning rate.
    pub lr: f64,
    /// At most this many steps.
    pub max_steps: usize,
    /// A loss improves on the best when it is lower by more than this.
    pub min_delta: f64,
    /// Stop after this many steps in a row without improvement.
    pub patience: usize,
    /// The plateau scheduler's factor, patience and relative threshold.
    pub plateau_factor: f64,
    pub plateau_patience: usize,
    pub plateau_threshold: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            lr: 0.01,
            max_steps: 2000,
            min_delta: 1e-6,
            patience: 2,
            plateau_factor: 0.1,
            plateau_patience: 2,
            plateau_threshold: 1e-4,
        }
    }
}

/// One step as upstream's scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitStep {
    /// The loss at the temperature before the update.
    pub loss: f32,
    /// The learning rate the update used.
    pub lr: f64,
    /// The temperature after the update and the clamp.
    pub temperature: [f32; CLASSES],
}

/// The fitted temperature and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct FitResult {
    /// The restored best temperature.
    pub temperature: Temperature,
    /// Every step taken.
    pub steps: Vec<FitStep>,
    /// True when the loss stopped improving (false: the step limit was reached).
    pub stopped_early: bool,
}

impl FitResult {
    /// How many times the learning rate was cut.
    pub fn lr_cuts(&self) -> usize {
        self.steps.windows(2).filter(|w| w[1].lr < w[0].lr).count()
    }
}

/// Why the fit stopped without a result.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// There is nothing to fit on.
    #[error("no positions to fit the temperature on")]
    Empty,
    /// The loss is not a number (non-finite logits).
    #[error("the loss is not finite at step {step} (non-finite logits?)")]
    NotFinite { step: usize },
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
}

/// `torch.optim.Adam` (β = (0.9, 0.999), ε = 1e-8, no weight decay) on one float32 vector, in the
/// operation order of its single-tensor path.
#[derive(Debug, Clone, Default)]
pub struct Adam {
    step: u32,
    exp_avg: [f32; CLASSES],
    exp_avg_sq: [f32; CLASSES],
}

impl Adam {
    /// One update of `param` with gradient `grad` at learning rate `lr`.
    pub fn step(&mut self, param: &mut [f32; CLASSES], grad: [f32; CLASSES], lr: f64) {
        const BETA1: f64 = 0.9;
        const BETA2: f64 = 0.999;
        self.step += 1;
        let weight = (1.0 - BETA1) as f32;
        let bc1 = 1.0 - BETA1.powi(self.step as i32);
        let bc2 = 1.0 - BETA2.powi(self.step as i32);
        let step_size = (lr / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        for c in 0..CLASSES {
            let g = grad[c];
            // exp_avg.lerp_(grad, 1 − β1): weight < 0.5, so self + w·(end − self).
            self.exp_avg[c] += weight * (g - self.exp_avg[c]);
            // exp_avg_sq.mul_(β2).addcmul_(grad, grad, value=1 − β2).
            self.exp_avg_sq[c] = self.exp_avg_sq[c] * BETA2 as f32 + (1.0 - BETA2) as f32 * g * g;
            let denom = self.exp_avg_sq[c].sqrt() / bc2_sqrt + 1e-8f32;
            // param.addcdiv_(exp_avg, denom, value=−step_size).
            param[c] += -step_size * self.exp_avg[c] / denom;
        }
    }
}

/// `torch.optim.lr_scheduler.ReduceLROnPlateau(mode='min', threshold_mode='rel', cooldown=0, min_lr=0,
/// eps=1e-8)`.
#[derive(Debug, Clone)]
pub struct Plateau {
    factor: f64,
    patience: usize,
    threshold: f64,
    best: f64,
    bad: usize,
}

impl Plateau {
    /// A scheduler with upstream's settings from `opts`.
    pub fn new(opts: &FitOptions) -> Self {
        Self {
            factor: opts.plateau_factor,
            patience: opts.plateau_patience,
            threshold: opts.plateau_threshold,
            best: f64::INFINITY,
            bad: 0,
        }
    }

    /// Steps with `loss`; returns the learning rate to use from now on.
    pub fn step(&mut self, loss: f64, lr: f64) -> f64 {
        if loss < self.best * (1.0 - self.threshold) {
            self.best = loss;
            self.bad = 0;
        } else {
            self.bad += 1;
        }
        if self.bad > self.patience {
            self.bad = 0;
            let new_lr = (lr * self.factor).max(0.0);
            if lr - new_lr > 1e-8 {
                return new_lr;
            }
        }
        lr
    }
}

/// Fits the temperature on `data` from 1.0. `cancelled` is polled once a step.
pub fn fit(
    data: &LabelledLogits,
    opts: &FitOptions,
    cancelled: &dyn Fn() -> bool,
) -> Result<FitResult, FitError> {
    if data.is_empty() {
        return Err(FitError::Empty);
    }
    let mut t = Temperature::ONE.0;
    let mut adam = Adam::default();
    let mut plateau = Plateau::new(opts);
    let mut lr = opts.lr;
    let mut best_loss = f64::INFINITY;
    let mut best = t;
    let mut bad = 0;
    let mut steps = Vec::new();
    let mut stopped_early = false;
    for step in 0..opts.max_steps {
        if cancelled() {
            return Err(FitError::Interrupted);
        }
        let (loss, grad) = loss_and_grad(data, Temperature(t));
        if !loss.is_finite() {
            return Err(FitError::NotFinite { step: step + 1 });
        }
        adam.step(&mut t, grad, lr);
        t = t.map(clamp);
        steps.push(FitStep {
            loss,
            lr,
            temperature: t,
        });
        let current = loss as f64;
        lr = plateau.step(current, lr);
        if best_loss - current > opts.min_delta {
            best_loss = current;
            best = t;
            bad = 0;
        } else {
            bad += 1;
        }
        log::debug!(
            "calibrate step {}: loss {loss:.9}, temperature {}",
            step + 1,
            Temperature(t)
        );
        if bad >= opts.patience {
            stopped_early = true;
            break;
        }
    }
    Ok(FitResult {
        temperature: Temperature(best),
        steps,
        stopped_early,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's plateau rule: a loss must beat the best by 0.01 % to count; the fourth step in a row
    /// without that cuts the rate tenfold and starts counting again.
    #[test]
    fn plateau_cuts_after_three_flat_steps() {
        let opts = FitOptions::default();
        let mut p = Plateau::new(&opts);
        let mut lr = 0.01;
        for loss in [1.0, 0.99995, 0.99999] {
            lr = p.step(loss, lr);
            assert_eq!(lr, 0.01);
        }
        lr = p.step(0.99991, lr);
        assert_eq!(lr, 0.01 * 0.1);
        lr = p.step(0.5, lr);
        assert_eq!(lr, 0.01 * 0.1);
        // Below eps (1e-8) the cut is skipped.
        let mut p = Plateau::new(&opts);
        let mut lr = 1e-8;
        for _ in 0..4 {
            lr = p.step(1.0, lr);
        }
        assert_eq!(lr, 1e-8);
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        let mut a = Adam::default();
        let mut p = [1.0f32; 3];
        a.step(&mut p, [0.5, -2.0, 0.0], 0.01);
        assert!((p[0] - 0.99).abs() < 1e-6);
        assert!((p[1] - 1.01).abs() < 1e-6);
        assert_eq!(p[2], 1.0);
    }

    #[test]
    fn stops_after_two_steps_without_improvement() {
        // All-zero logits: the loss does not depend on the temperature; the first step improves on
        // infinity, the next two do not.
        let data = LabelledLogits::new(vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0], vec![0, 1]).unwrap();
        let r = fit(&data, &FitOptions::default(), &|| false).unwrap();
        assert!(r.stopped_early);
        assert_eq!(r.steps.len(), 3);
        // The first loss improves on infinity: the best is the temperature after step 1.
        assert_eq!(r.temperature.0, r.steps[0].temperature);
        assert!(
            fit(&LabelledLogits::default(), &FitOptions::default(), &|| {
                false
            })
            .is_err()
        );
        assert!(matches!(
            fit(&data, &FitOptions::default(), &|| true),
            Err(FitError::Interrupted)
        ));
    }
}
