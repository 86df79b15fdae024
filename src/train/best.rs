//! Upstream's one validation-loss rule, used for `model_best.pt` and for early stopping: an epoch is a new
//! best when its validation loss is strictly below every earlier one (a NaN loss never is), and a run with
//! early stopping stops once `patience` epochs in a row brought no new best.

/// Tracks the best validation loss so far and the epochs since it.
#[derive(Debug, Clone)]
pub struct BestTracker {
    best: f64,
    epochs_without_improvement: usize,
    patience: Option<usize>,
}

/// What one epoch's validation loss means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The loss is a new best: save `model_best.pt`.
    pub improved: bool,
    /// Epochs in a row without a new best, this one included (0 when it improved).
    pub epochs_without_improvement: usize,
    /// Early stopping is on and `patience` is reached: stop after this epoch.
    pub stop: bool,
}

impl BestTracker {
    /// A tracker with no best yet; `patience` is `Some` when early stopping is on.
    pub fn new(patience: Option<usize>) -> Self {
        Self {
            best: f64::INFINITY,
            epochs_without_improvement: 0,
            patience,
        }
    }

    /// What `--resume` saves.
    pub fn state(&self) -> super::state::BestState {
        super::state::BestState {
            best: self.best.is_finite().then_some(self.best),
            epochs_without_improvement: self.epochs_without_improvement,
        }
    }

    /// A tracker continuing from a saved [`state`](Self::state).
    pub fn restore(patience: Option<usize>, s: super::state::BestState) -> Self {
        Self {
            best: s.best.unwrap_or(f64::INFINITY),
            epochs_without_improvement: s.epochs_without_improvement,
            patience,
        }
    }

    /// Takes the validation loss of the epoch that just ended.
    pub fn observe(&mut self, val_loss: f64) -> Verdict {
        let improved = val_loss < self.best;
        if improved {
            self.best = val_loss;
            self.epochs_without_improvement = 0;
        } else {
            self.epochs_without_improvement += 1;
        }
        Verdict {
            improved,
            epochs_without_improvement: self.epochs_without_improvement,
            stop: self
                .patience
                .is_some_and(|p| self.epochs_without_improvement >= p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `losses` to a tracker with `patience`: after each epoch the count of epochs without a new
    /// best must be `without`'s (0: the epoch improved), and early stopping must ask to stop exactly after
    /// the epochs in `stops`.
    fn check(patience: Option<usize>, losses: &[f64], without: &[usize], stops: &[usize]) {
        let mut t = BestTracker::new(patience);
        for (epoch, (&loss, &w)) in losses.iter().zip(without).enumerate() {
            let want = Verdict {
                improved: w == 0,
                epochs_without_improvement: w,
                stop: stops.contains(&epoch),
            };
            let ctx = format!("patience {patience:?}, losses {losses:?}, epoch {epoch}");
            assert_eq!(t.observe(loss), want, "{ctx}");
        }
    }

    #[test]
    fn verdicts_follow_upstreams_rule() {
        // Equal to the best (epoch 3) is no improvement.
        check(None, &[3.0, 2.0, 2.5, 2.0, 1.0], &[0, 0, 1, 2, 0], &[]);
        check(Some(2), &[1.0, 1.5, 0.5, 0.7, 0.9], &[0, 1, 0, 1, 2], &[4]);
        // A NaN loss is never a new best.
        check(Some(1), &[f64::NAN, 1.0, f64::NAN], &[1, 0, 1], &[0, 2]);
        // Patience 0 stops after the first epoch, improved or not (upstream's `>=`).
        check(Some(0), &[1.0], &[0], &[0]);
    }

    #[test]
    fn a_restored_tracker_continues_where_it_was_saved() {
        let mut t = BestTracker::new(Some(3));
        for loss in [1.0, 0.5, 0.7] {
            t.observe(loss);
        }
        let mut r = BestTracker::restore(Some(3), t.state());
        for loss in [0.6, 0.4, 0.9] {
            assert_eq!(r.observe(loss), t.observe(loss));
        }
    }
}
