//! The two losses of OpenSpliceAI, mean over batch × positions: the formula used both by training (on
//! tensors) and by the metrics (per window, on host arrays).

use candle_core::{Result, Tensor};

/// Added inside the log, as upstream does.
pub const LOG_EPS: f64 = 1e-10;

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
    /// The loss's term for one class at one position, label `y` and probability `p`: `y·ln(p + ε)`, times
    /// `(1 − p)²` for the focal loss. The loss is minus the mean over positions of the sum over classes;
    /// [`compute`](Self::compute) is the same formula on tensors, the metrics sum it in f64.
    pub fn term(self, y: f64, p: f64) -> f64 {
        let t = y * (p + LOG_EPS).ln();
        match self {
            Loss::CrossEntropyLoss => t,
            Loss::FocalLoss => t * ((1.0 - p) * (1.0 - p)),
        }
    }

    /// The loss of probabilities `p` against one-hot labels `y`, both (N, 3, 5000): a scalar tensor,
    /// [`term`](Self::term) summed over the class dim, averaged over batch × positions and negated.
    pub fn compute(self, p: &Tensor, y: &Tensor) -> Result<Tensor> {
        let log_p = (p + LOG_EPS)?.log()?;
        let per_class = match self {
            Loss::CrossEntropyLoss => (y * log_p)?,
            Loss::FocalLoss => ((y * log_p)? * (1.0 - p)?.sqr()?)?,
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// The tensor loss is minus the mean over positions of the summed scalar terms, for both losses.
    #[test]
    fn compute_is_the_mean_of_term() {
        let (n, l) = (2, 7);
        let mut p = Vec::new();
        let mut y = Vec::new();
        for w in 0..n {
            let mut probs = vec![0f32; 3 * l];
            let mut labels = vec![0f32; 3 * l];
            for j in 0..l {
                let a = 0.05 + 0.1 * ((w * l + j) % 9) as f32;
                let b = 0.9 * (1.0 - a) * (j % 3) as f32 / 2.0;
                probs[j] = 1.0 - a - b;
                probs[l + j] = a;
                probs[2 * l + j] = b;
                labels[(j % 3) * l + j] = 1.0;
            }
            p.extend(probs);
            y.extend(labels);
        }
        let pt = Tensor::from_slice(&p, (n, 3, l), &Device::Cpu).unwrap();
        let yt = Tensor::from_slice(&y, (n, 3, l), &Device::Cpu).unwrap();
        for loss in [Loss::CrossEntropyLoss, Loss::FocalLoss] {
            let got = loss.compute(&pt, &yt).unwrap().to_scalar::<f32>().unwrap() as f64;
            let sum: f64 = p
                .iter()
                .zip(&y)
                .map(|(&pc, &yc)| loss.term(yc as f64, pc as f64))
                .sum();
            let want = -sum / (n * l) as f64;
            assert!(
                (got - want).abs() <= 1e-6 * want.abs(),
                "{}: tensor {got}, terms {want}",
                loss.name()
            );
        }
    }
}
