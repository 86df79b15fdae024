//! Learning-rate schedules with OpenSpliceAI's per-batch fractional-epoch stepping (docs/upstream-behaviour.md#optimisation).
//!
//! Upstream calls `scheduler.step(b / B)` after every batch (b counted from 0 across epochs); batch b ≥ 1
//! trains with lr(t = (b − 1) / B) and batch 0 with the lr the scheduler's constructor set
//! ([`Schedule::initial_lr`]: the base lr, except base·0.5 for a MultiStepLR milestone at epoch 0).

/// Which schedule (`--scheduler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum SchedulerKind {
    /// lr · 0.5^(milestones ≤ t), milestones at the last 4 (transfer) or 5 (train) epochs.
    #[value(name = "MultiStepLR")]
    MultiStepLR,
    /// CosineAnnealingWarmRestarts(T_0 = 5, T_mult = 1, eta_min = 1e-5).
    #[value(name = "CosineAnnealingWarmRestarts")]
    CosineAnnealingWarmRestarts,
}

/// A schedule as a closed form of the fractional epoch.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    MultiStep {
        base: f64,
        milestones: Vec<i64>,
        gamma: f64,
    },
    CosineWarmRestarts {
        base: f64,
        t0: f64,
        eta_min: f64,
    },
}

impl Schedule {
    /// The schedule upstream builds for `kind`, base lr and `epochs`; `milestone_count` is 4 for
    /// `transfer` and 5 for `train` (milestones E − count, …, E − 1; negative ones count).
    pub fn new(kind: SchedulerKind, base: f64, epochs: usize, milestone_count: usize) -> Self {
        match kind {
            SchedulerKind::MultiStepLR => Schedule::MultiStep {
                base,
                milestones: (1..=milestone_count as i64)
                    .rev()
                    .map(|k| epochs as i64 - k)
                    .collect(),
                gamma: 0.5,
            },
            SchedulerKind::CosineAnnealingWarmRestarts => Schedule::CosineWarmRestarts {
                base,
                t0: 5.0,
                eta_min: 1e-5,
            },
        }
    }

    /// lr at fractional epoch t.
    pub fn lr_at(&self, t: f64) -> f64 {
        match self {
            Schedule::MultiStep { .. } => self.decayed(|m| (m as f64) <= t),
            Schedule::CosineWarmRestarts { base, t0, eta_min } => {
                let t_cur = t.rem_euclid(*t0);
                eta_min + (base - eta_min) * (1.0 + (std::f64::consts::PI * t_cur / t0).cos()) / 2.0
            }
        }
    }

    /// The lr the scheduler's constructor sets, which batch 0 trains with. PyTorch's constructor steps
    /// to epoch 0 with the chainable (not the closed) form: MultiStepLR multiplies by γ once per
    /// milestone *equal to* 0 (negative milestones are not counted, unlike in [`Self::lr_at`]), so a
    /// `transfer` with E ≤ 4 (`train`: E ≤ 5) starts at base·0.5; the cosine form at T_cur = 0.
    pub fn initial_lr(&self) -> f64 {
        match self {
            Schedule::MultiStep { .. } => self.decayed(|m| m == 0),
            Schedule::CosineWarmRestarts { .. } => self.lr_at(0.0),
        }
    }

    /// The base lr times γ once per milestone that `counts` (MultiStepLR); the cosine schedule has no
    /// milestones and answers its base.
    fn decayed(&self, counts: impl Fn(i64) -> bool) -> f64 {
        match self {
            Schedule::MultiStep {
                base,
                milestones,
                gamma,
            } => base * gamma.powi(milestones.iter().filter(|&&m| counts(m)).count() as i32),
            Schedule::CosineWarmRestarts { base, .. } => *base,
        }
    }

    /// The lr batch `b` (global index from 0) trains with, B batches per epoch.
    pub fn lr_for_batch(&self, b: usize, batches_per_epoch: usize) -> f64 {
        if b == 0 {
            return self.initial_lr();
        }
        self.lr_at((b - 1) as f64 / batches_per_epoch.max(1) as f64)
    }

    /// The lr after batch `b` has been stepped (what upstream logs in `learning_rate_every_batch.txt`).
    pub fn lr_after_batch(&self, b: usize, batches_per_epoch: usize) -> f64 {
        self.lr_at(b as f64 / batches_per_epoch.max(1) as f64)
    }

    /// The base learning rate.
    pub fn base(&self) -> f64 {
        match self {
            Schedule::MultiStep { base, .. } | Schedule::CosineWarmRestarts { base, .. } => *base,
        }
    }
}
