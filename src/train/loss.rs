//! The two losses of OpenSpliceAI (SPEC.md "Optimisation"), mean over batch × positions.

use candle_core::{Result, Tensor};

/// Added inside the log, as upstream does.
pub const LOG_EPS: f64 = 1e-10;
/// Focal-loss exponent.
pub const FOCAL_GAMMA: f64 = 2.0;

/// Which loss to train with (`--loss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[clap(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// `-mean(Σc y_c·log(p_c + 1e-10))`
    #[value(name = "cross_entropy_loss")]
    CrossEntropyLoss,
    /// `-mean(Σc y_c·log(p_c + 1e-10)·(1 - p_c)²)`
    #[value(name = "focal_loss")]
    FocalLoss,
}

impl Loss {
    /// The loss of probabilities `p` against one-hot labels `y`, both (N, 3, 5000): a scalar tensor.
    pub fn compute(self, p: &Tensor, y: &Tensor) -> Result<Tensor> {
        let log_p = (p + LOG_EPS)?.log()?;
        let per_class = match self {
            Loss::CrossEntropyLoss => (y * log_p)?,
            Loss::FocalLoss => {
                let w = (1.0 - p)?.sqr()?; // gamma = 2
                ((y * log_p)? * w)?
            }
        };
        // Σ over the class dim, mean over batch × positions.
        per_class.sum(1)?.mean_all()?.neg()
    }

    /// The name upstream uses on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Loss::CrossEntropyLoss => "cross_entropy_loss",
            Loss::FocalLoss => "focal_loss",
        }
    }
}
