//! AdamW exactly as PyTorch's `torch.optim.AdamW` (β 0.9/0.999, eps 1e-8, weight decay 0.01, no amsgrad).

use candle_core::{backprop::GradStore, Result, Tensor, Var};

/// Hyper-parameters of AdamW.
#[derive(Debug, Clone, Copy)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamWConfig {
    /// PyTorch's defaults with weight decay 0.01 and the given learning rate.
    pub fn with_lr(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

struct ParamState {
    var: Var,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    step: u64,
}

/// AdamW over a fixed list of trainable variables.
pub struct AdamW {
    cfg: AdamWConfig,
    params: Vec<ParamState>,
}

impl AdamW {
    /// An optimiser for these variables (the trainable subset of the model).
    pub fn new(vars: Vec<Var>, cfg: AdamWConfig) -> Result<Self> {
        let params = vars
            .into_iter()
            .map(|var| {
                let z = var.as_tensor().zeros_like()?;
                Ok(ParamState {
                    exp_avg: z.clone(),
                    exp_avg_sq: z,
                    var,
                    step: 0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { cfg, params })
    }

    /// The learning rate the next step uses.
    pub fn learning_rate(&self) -> f64 {
        self.cfg.lr
    }

    /// Sets the learning rate (the scheduler's job).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// One update from the gradients of a backward pass. Parameters without a gradient are skipped,
    /// as PyTorch skips `grad is None`.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let c = self.cfg;
        for p in &mut self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else {
                continue;
            };
            p.step += 1;
            let theta = (p.var.as_tensor() * (1.0 - c.lr * c.weight_decay))?;
            p.exp_avg = ((&p.exp_avg * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            p.exp_avg_sq = ((&p.exp_avg_sq * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let bc1 = 1.0 - c.beta1.powi(p.step as i32);
            let bc2 = 1.0 - c.beta2.powi(p.step as i32);
            let step_size = c.lr / bc1;
            let denom = ((p.exp_avg_sq.sqrt()? / bc2.sqrt())? + c.eps)?;
            let next = (theta - ((&p.exp_avg / denom)? * step_size)?)?;
            p.var.set(&next)?;
        }
        Ok(())
    }
}
