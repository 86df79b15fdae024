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

/// One parameter's AdamW state: the step count and both moment estimates (what `--resume` restores).
#[derive(Debug, Clone)]
pub struct Moments {
    pub step: u64,
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
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

    /// Every parameter's state, in the order of the variables given to [`AdamW::new`].
    pub fn moments(&self) -> Vec<Moments> {
        self.params
            .iter()
            .map(|p| Moments {
                step: p.step,
                exp_avg: p.exp_avg.clone(),
                exp_avg_sq: p.exp_avg_sq.clone(),
            })
            .collect()
    }

    /// Restores the state [`moments`](Self::moments) returned, one entry per parameter in the same order
    /// and shape.
    pub fn restore(&mut self, moments: Vec<Moments>) -> Result<()> {
        if moments.len() != self.params.len() {
            candle_core::bail!(
                "the saved optimiser holds {} tensors, the model trains {}",
                moments.len(),
                self.params.len()
            );
        }
        for (p, m) in self.params.iter_mut().zip(moments) {
            let want = p.var.as_tensor().dims();
            if m.exp_avg.dims() != want || m.exp_avg_sq.dims() != want {
                candle_core::bail!(
                    "saved optimiser moments of shape {:?}, the parameter is {want:?}",
                    m.exp_avg.dims()
                );
            }
            p.step = m.step;
            p.exp_avg = m.exp_avg;
            p.exp_avg_sq = m.exp_avg_sq;
        }
        Ok(())
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
