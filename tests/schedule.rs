//! Tests of `train::schedule`: the closed forms, and the per-batch learning rates against the exact
//! sequences OpenSpliceAI 0.0.7 produces with real PyTorch.
//!
//! The reference numbers below were computed with `scripts/schedule_reference.py` (PyTorch 2.15.0, run as
//! `../shared/tools/pytorch-baseline.sh python scripts/schedule_reference.py`), which replicates upstream's
//! stepping from `train_base/utils.py` (`train_epoch`/`train_model`) and `transfer/transfer.py` /
//! `train/train.py`: the optimizer is AdamW at lr 1e-4 (`transfer`) or 1e-3 (`train`); the scheduler is
//! `MultiStepLR(milestones=[E-4, …, E-1]` (`transfer`) or `[E-5, …, E-1]` (`train`)`, gamma=0.5)` or
//! `CosineAnnealingWarmRestarts(T_0=5, T_mult=1, eta_min=1e-5)`; after every batch (global index b from 0
//! across epochs, B batches per epoch) upstream calls `scheduler.step(b / B)` and appends
//! `scheduler.get_last_lr()[0]` to `TRAIN/learning_rate_every_batch.txt` (`logged[b]` here). `trained[b]`
//! is `optimizer.param_groups[0]['lr']` read before batch b's `optimizer.step()`: the lr batch b trains
//! with (batch 0: what the scheduler's constructor set). Values are Python `repr`s, pasted verbatim.

mod common;

use common::compare;
use openspliceai_rs::train::schedule::{Schedule, SchedulerKind};

/// Relative tolerance for every comparison with PyTorch's numbers.
const REL: f64 = 1e-15;

fn close(a: f64, b: f64) -> bool {
    compare::close(a, b, REL)
}

/// One upstream run: the schedule, its shape, and PyTorch's two sequences (E·B values each).
struct Case {
    kind: SchedulerKind,
    base: f64,
    milestone_count: usize,
    epochs: usize,
    batches: usize,
    trained: &'static [f64],
    logged: &'static [f64],
}

impl Case {
    fn schedule(&self) -> Schedule {
        Schedule::new(self.kind, self.base, self.epochs, self.milestone_count)
    }
}

/// Compares `lr_after_batch` with `logged` and `lr_for_batch` with `trained` for every batch of the run,
/// reporting every mismatch at once.
fn check(name: &str, case: &Case) {
    let n = case.epochs * case.batches;
    assert_eq!(case.trained.len(), n, "{name}: reference `trained` length");
    assert_eq!(case.logged.len(), n, "{name}: reference `logged` length");
    let s = case.schedule();
    let mut bad = Vec::new();
    for b in 0..n {
        let after = s.lr_after_batch(b, case.batches);
        if !close(after, case.logged[b]) {
            bad.push(format!(
                "lr_after_batch({b}, {}) = {after:e}, PyTorch logs {:e}",
                case.batches, case.logged[b]
            ));
        }
        let used = s.lr_for_batch(b, case.batches);
        if !close(used, case.trained[b]) {
            bad.push(format!(
                "lr_for_batch({b}, {}) = {used:e}, PyTorch trains with {:e}",
                case.batches, case.trained[b]
            ));
        }
    }
    assert!(bad.is_empty(), "{name}:\n  {}", bad.join("\n  "));
}

// ---------------------------------------------------------------------------------------------
// PyTorch's sequences (scripts/schedule_reference.py)

/// MultiStepLR, `transfer` (base 1e-4, 4 milestones), E = 5, B = 3.
const MULTISTEP_TRANSFER_E5_B3: Case = Case {
    kind: SchedulerKind::MultiStepLR,
    base: 1e-4,
    milestone_count: 4,
    epochs: 5,
    batches: 3,
    trained: &[
        0.0001, 0.0001, 0.0001, 0.0001, 5e-05, 5e-05, 5e-05, 2.5e-05, 2.5e-05, 2.5e-05, 1.25e-05,
        1.25e-05, 1.25e-05, 6.25e-06, 6.25e-06,
    ],
    logged: &[
        0.0001, 0.0001, 0.0001, 5e-05, 5e-05, 5e-05, 2.5e-05, 2.5e-05, 2.5e-05, 1.25e-05, 1.25e-05,
        1.25e-05, 6.25e-06, 6.25e-06, 6.25e-06,
    ],
};

/// MultiStepLR, `train` (base 1e-3, 5 milestones), E = 7, B = 2.
const MULTISTEP_TRAIN_E7_B2: Case = Case {
    kind: SchedulerKind::MultiStepLR,
    base: 1e-3,
    milestone_count: 5,
    epochs: 7,
    batches: 2,
    trained: &[
        0.001, 0.001, 0.001, 0.001, 0.001, 0.0005, 0.0005, 0.00025, 0.00025, 0.000125, 0.000125,
        6.25e-05, 6.25e-05, 3.125e-05,
    ],
    logged: &[
        0.001, 0.001, 0.001, 0.001, 0.0005, 0.0005, 0.00025, 0.00025, 0.000125, 0.000125, 6.25e-05,
        6.25e-05, 3.125e-05, 3.125e-05,
    ],
};

/// CosineAnnealingWarmRestarts, `transfer` (base 1e-4, 4 milestones), E = 12, B = 4.
const COSINE_TRANSFER_E12_B4: Case = Case {
    kind: SchedulerKind::CosineAnnealingWarmRestarts,
    base: 1e-4,
    milestone_count: 4,
    epochs: 12,
    batches: 4,
    trained: &[
        0.0001,
        0.0001,
        9.94459753267812e-05,
        9.779754323328192e-05,
        9.509529358847655e-05,
        9.140576474687264e-05,
        8.681980515339464e-05,
        8.14503363531613e-05,
        7.542957248827961e-05,
        6.890576474687264e-05,
        6.20395509268104e-05,
        5.5e-05,
        4.7960449073189627e-05,
        4.109423525312737e-05,
        3.45704275117204e-05,
        2.8549663646838717e-05,
        2.3180194846605367e-05,
        1.859423525312737e-05,
        1.490470641152345e-05,
        1.2202456766718093e-05,
        1.0554024673218807e-05,
        0.0001,
        9.94459753267812e-05,
        9.779754323328192e-05,
        9.509529358847655e-05,
        9.140576474687264e-05,
        8.681980515339464e-05,
        8.14503363531613e-05,
        7.542957248827961e-05,
        6.890576474687264e-05,
        6.20395509268104e-05,
        5.5e-05,
        4.7960449073189627e-05,
        4.109423525312737e-05,
        3.45704275117204e-05,
        2.8549663646838717e-05,
        2.3180194846605367e-05,
        1.859423525312737e-05,
        1.490470641152345e-05,
        1.2202456766718093e-05,
        1.0554024673218807e-05,
        0.0001,
        9.94459753267812e-05,
        9.779754323328192e-05,
        9.509529358847655e-05,
        9.140576474687264e-05,
        8.681980515339464e-05,
        8.14503363531613e-05,
    ],
    logged: &[
        0.0001,
        9.94459753267812e-05,
        9.779754323328192e-05,
        9.509529358847655e-05,
        9.140576474687264e-05,
        8.681980515339464e-05,
        8.14503363531613e-05,
        7.542957248827961e-05,
        6.890576474687264e-05,
        6.20395509268104e-05,
        5.5e-05,
        4.7960449073189627e-05,
        4.109423525312737e-05,
        3.45704275117204e-05,
        2.8549663646838717e-05,
        2.3180194846605367e-05,
        1.859423525312737e-05,
        1.490470641152345e-05,
        1.2202456766718093e-05,
        1.0554024673218807e-05,
        0.0001,
        9.94459753267812e-05,
        9.779754323328192e-05,
        9.509529358847655e-05,
        9.140576474687264e-05,
        8.681980515339464e-05,
        8.14503363531613e-05,
        7.542957248827961e-05,
        6.890576474687264e-05,
        6.20395509268104e-05,
        5.5e-05,
        4.7960449073189627e-05,
        4.109423525312737e-05,
        3.45704275117204e-05,
        2.8549663646838717e-05,
        2.3180194846605367e-05,
        1.859423525312737e-05,
        1.490470641152345e-05,
        1.2202456766718093e-05,
        1.0554024673218807e-05,
        0.0001,
        9.94459753267812e-05,
        9.779754323328192e-05,
        9.509529358847655e-05,
        9.140576474687264e-05,
        8.681980515339464e-05,
        8.14503363531613e-05,
        7.542957248827961e-05,
    ],
};

/// CosineAnnealingWarmRestarts, `transfer` (base 1e-4, 4 milestones), E = 2, B = 8.
const COSINE_TRANSFER_E2_B8: Case = Case {
    kind: SchedulerKind::CosineAnnealingWarmRestarts,
    base: 1e-4,
    milestone_count: 4,
    epochs: 2,
    batches: 8,
    trained: &[
        0.0001,
        0.0001,
        9.986128001799077e-05,
        9.94459753267812e-05,
        9.875664641789545e-05,
        9.779754323328192e-05,
        9.657457896300791e-05,
        9.509529358847655e-05,
        9.336880739593416e-05,
        9.140576474687264e-05,
        8.92182684520014e-05,
        8.681980515339464e-05,
        8.422516217485827e-05,
        8.14503363531613e-05,
        7.85124354122177e-05,
        7.542957248827961e-05,
    ],
    logged: &[
        0.0001,
        9.986128001799077e-05,
        9.94459753267812e-05,
        9.875664641789545e-05,
        9.779754323328192e-05,
        9.657457896300791e-05,
        9.509529358847655e-05,
        9.336880739593416e-05,
        9.140576474687264e-05,
        8.92182684520014e-05,
        8.681980515339464e-05,
        8.422516217485827e-05,
        8.14503363531613e-05,
        7.85124354122177e-05,
        7.542957248827961e-05,
        7.222075445642905e-05,
    ],
};

/// MultiStepLR, `transfer` (base 1e-4, 4 milestones), E = 4, B = 2.
const MULTISTEP_TRANSFER_E4_B2: Case = Case {
    kind: SchedulerKind::MultiStepLR,
    base: 1e-4,
    milestone_count: 4,
    epochs: 4,
    batches: 2,
    trained: &[
        5e-05, 5e-05, 5e-05, 2.5e-05, 2.5e-05, 1.25e-05, 1.25e-05, 6.25e-06,
    ],
    logged: &[
        5e-05, 5e-05, 2.5e-05, 2.5e-05, 1.25e-05, 1.25e-05, 6.25e-06, 6.25e-06,
    ],
};

/// MultiStepLR, `transfer` (base 1e-4, 4 milestones), E = 1, B = 1.
const MULTISTEP_TRANSFER_E1_B1: Case = Case {
    kind: SchedulerKind::MultiStepLR,
    base: 1e-4,
    milestone_count: 4,
    epochs: 1,
    batches: 1,
    trained: &[5e-05],
    logged: &[6.25e-06],
};

/// MultiStepLR, `transfer` (base 1e-4, 4 milestones), E = 2, B = 3.
const MULTISTEP_TRANSFER_E2_B3: Case = Case {
    kind: SchedulerKind::MultiStepLR,
    base: 1e-4,
    milestone_count: 4,
    epochs: 2,
    batches: 3,
    trained: &[5e-05, 1.25e-05, 1.25e-05, 1.25e-05, 6.25e-06, 6.25e-06],
    logged: &[1.25e-05, 1.25e-05, 1.25e-05, 6.25e-06, 6.25e-06, 6.25e-06],
};

/// MultiStepLR, `train` (base 1e-3, 5 milestones), E = 5, B = 2.
const MULTISTEP_TRAIN_E5_B2: Case = Case {
    kind: SchedulerKind::MultiStepLR,
    base: 1e-3,
    milestone_count: 5,
    epochs: 5,
    batches: 2,
    trained: &[
        0.0005, 0.0005, 0.0005, 0.00025, 0.00025, 0.000125, 0.000125, 6.25e-05, 6.25e-05, 3.125e-05,
    ],
    logged: &[
        0.0005, 0.0005, 0.00025, 0.00025, 0.000125, 0.000125, 6.25e-05, 6.25e-05, 3.125e-05,
        3.125e-05,
    ],
};

/// MultiStepLR, `train` (base 1e-3, 5 milestones), E = 3, B = 2.
const MULTISTEP_TRAIN_E3_B2: Case = Case {
    kind: SchedulerKind::MultiStepLR,
    base: 1e-3,
    milestone_count: 5,
    epochs: 3,
    batches: 2,
    trained: &[0.0005, 0.000125, 0.000125, 6.25e-05, 6.25e-05, 3.125e-05],
    logged: &[0.000125, 0.000125, 6.25e-05, 6.25e-05, 3.125e-05, 3.125e-05],
};

/// CosineAnnealingWarmRestarts, `train` (base 1e-3, 5 milestones), E = 6, B = 3.
const COSINE_TRAIN_E6_B3: Case = Case {
    kind: SchedulerKind::CosineAnnealingWarmRestarts,
    base: 1e-3,
    milestone_count: 5,
    epochs: 6,
    batches: 3,
    trained: &[
        0.001,
        0.001,
        0.0009891830623632338,
        0.0009572050015330874,
        0.000905463412215599,
        0.0008362196501476349,
        0.0007525,
        0.000657963412215599,
        0.0005567415893174885,
        0.00045325841068251166,
        0.0003520365877844011,
        0.0002574999999999999,
        0.00017378034985236535,
        0.00010453658778440107,
        5.279499846691263e-05,
        2.0816937636766185e-05,
        0.001,
        0.0009891830623632338,
    ],
    logged: &[
        0.001,
        0.0009891830623632338,
        0.0009572050015330874,
        0.000905463412215599,
        0.0008362196501476349,
        0.0007525,
        0.000657963412215599,
        0.0005567415893174885,
        0.00045325841068251166,
        0.0003520365877844011,
        0.0002574999999999999,
        0.00017378034985236535,
        0.00010453658778440107,
        5.279499846691263e-05,
        2.0816937636766185e-05,
        0.001,
        0.0009891830623632338,
        0.0009572050015330874,
    ],
};

// ---------------------------------------------------------------------------------------------
// Per-batch sequences against PyTorch

#[test]
fn multistep_transfer_matches_pytorch() {
    check("MultiStepLR transfer E=5 B=3", &MULTISTEP_TRANSFER_E5_B3);
}

#[test]
fn multistep_train_matches_pytorch() {
    check("MultiStepLR train E=7 B=2", &MULTISTEP_TRAIN_E7_B2);
}

#[test]
fn cosine_transfer_across_restarts_matches_pytorch() {
    let c = &COSINE_TRANSFER_E12_B4;
    check("CosineAnnealingWarmRestarts transfer E=12 B=4", c);
    // The restarts at epochs 5 and 10 are in the reference: back to the base lr at b = 20 and 40.
    assert_eq!(c.logged[20], 1e-4);
    assert_eq!(c.logged[40], 1e-4);
    assert!(c.logged[19] < 1.1e-5 && c.logged[39] < 1.1e-5);
}

#[test]
fn cosine_train_matches_pytorch() {
    check(
        "CosineAnnealingWarmRestarts train E=6 B=3",
        &COSINE_TRAIN_E6_B3,
    );
}

#[test]
fn cosine_transfer_fixture_shape_matches_pytorch() {
    check(
        "CosineAnnealingWarmRestarts transfer E=2 B=8",
        &COSINE_TRANSFER_E2_B8,
    );
}

/// The real upstream run in `upstream-run/` (transfer, cosine, 2 epochs × 8 batches): its
/// `learning_rate_every_batch.txt` is what `lr_after_batch` must produce, and what PyTorch produced above.
#[test]
fn fixture_learning_rate_every_batch() {
    let Some(path) = common::fixture("upstream-run/LOG/TRAIN/learning_rate_every_batch.txt") else {
        return;
    };
    let text = std::fs::read_to_string(&path).expect("read learning_rate_every_batch.txt");
    let values: Vec<f64> = text
        .lines()
        .map(|l| l.trim().parse::<f64>().expect("a float per line"))
        .collect();
    assert_eq!(values.len(), 16, "2 epochs × 8 batches");
    let s = Schedule::new(SchedulerKind::CosineAnnealingWarmRestarts, 1e-4, 2, 4);
    for (b, &v) in values.iter().enumerate() {
        assert!(
            close(s.lr_after_batch(b, 8), v),
            "batch {b}: lr_after_batch = {:e}, fixture logs {v:e}",
            s.lr_after_batch(b, 8)
        );
        assert_eq!(
            v, COSINE_TRANSFER_E2_B8.logged[b],
            "fixture vs PyTorch at batch {b}"
        );
    }
}

/// Short runs put a MultiStepLR milestone at epoch 0 (E ≤ 4 for `transfer`, E ≤ 5 for `train`), or below.
/// PyTorch's constructor steps to epoch 0 with the chainable form, which multiplies by γ once for a
/// milestone equal to 0 (negative milestones are not counted there), so batch 0 trains at base·0.5;
/// `step(t)` then uses the closed form, which counts every milestone ≤ t, negative ones included.
#[test]
fn multistep_short_runs_match_pytorch() {
    check("MultiStepLR transfer E=4 B=2", &MULTISTEP_TRANSFER_E4_B2);
    check("MultiStepLR transfer E=1 B=1", &MULTISTEP_TRANSFER_E1_B1);
    check("MultiStepLR transfer E=2 B=3", &MULTISTEP_TRANSFER_E2_B3);
    check("MultiStepLR train E=5 B=2", &MULTISTEP_TRAIN_E5_B2);
    check("MultiStepLR train E=3 B=2", &MULTISTEP_TRAIN_E3_B2);
}

// ---------------------------------------------------------------------------------------------
// Closed forms

#[test]
fn multistep_milestones() {
    let m = |epochs, count| match Schedule::new(SchedulerKind::MultiStepLR, 1e-4, epochs, count) {
        Schedule::MultiStep {
            base,
            milestones,
            gamma,
        } => {
            assert_eq!(base, 1e-4);
            assert_eq!(gamma, 0.5);
            milestones
        }
        other => panic!("expected MultiStep, got {other:?}"),
    };
    assert_eq!(m(10, 4), vec![6, 7, 8, 9]);
    assert_eq!(m(10, 5), vec![5, 6, 7, 8, 9]);
    assert_eq!(m(2, 4), vec![-2, -1, 0, 1]);
    assert_eq!(m(1, 5), vec![-4, -3, -2, -1, 0]);
}

#[test]
fn multistep_closed_form() {
    let s = Schedule::new(SchedulerKind::MultiStepLR, 1e-4, 10, 4); // milestones 6, 7, 8, 9
    assert_eq!(s.base(), 1e-4);
    assert_eq!(s.lr_at(0.0), 1e-4);
    assert_eq!(s.lr_at(5.999), 1e-4);
    assert_eq!(s.lr_at(6.0), 5e-5);
    assert_eq!(s.lr_at(7.5), 2.5e-5);
    assert_eq!(s.lr_at(8.0), 1.25e-5);
    assert_eq!(s.lr_at(9.0), 6.25e-6);
    assert_eq!(s.lr_at(100.0), 6.25e-6);
    // Negative milestones count from the first step on (PyTorch's closed form, bisect_right).
    let s = Schedule::new(SchedulerKind::MultiStepLR, 1e-3, 2, 5); // -3, -2, -1, 0, 1
    assert_eq!(s.lr_at(0.0), 1e-3 / 16.0);
    assert_eq!(s.lr_at(0.5), 1e-3 / 16.0);
    assert_eq!(s.lr_at(1.0), 1e-3 / 32.0);
}

#[test]
fn cosine_closed_form() {
    let s = Schedule::new(SchedulerKind::CosineAnnealingWarmRestarts, 1e-4, 10, 4);
    assert_eq!(
        s,
        Schedule::CosineWarmRestarts {
            base: 1e-4,
            t0: 5.0,
            eta_min: 1e-5
        }
    );
    let f = |t: f64| {
        1e-5 + (1e-4 - 1e-5) * (1.0 + (std::f64::consts::PI * (t % 5.0) / 5.0).cos()) / 2.0
    };
    for t in [0.0, 0.25, 1.0, 2.5, 4.0, 4.999, 5.0, 7.5, 10.0, 12.75] {
        assert!(
            close(s.lr_at(t), f(t)),
            "t = {t}: {:e} vs {:e}",
            s.lr_at(t),
            f(t)
        );
    }
    assert!(close(s.lr_at(0.0), 1e-4));
    assert!(close(s.lr_at(2.5), 5.5e-5));
    assert!(close(s.lr_at(5.0), 1e-4));
    assert!(close(s.lr_at(10.0), 1e-4));
    assert!((s.lr_at(4.999_999) - 1e-5).abs() < 1e-15);
    // Periodic with period T_0 = 5.
    for t in [0.1, 1.3, 3.7] {
        assert!(close(s.lr_at(t), s.lr_at(t + 5.0)));
    }
}

/// The lr a batch trains with is the one logged after the batch before it.
#[test]
fn trained_lr_is_previous_logged_lr() {
    for kind in [
        SchedulerKind::MultiStepLR,
        SchedulerKind::CosineAnnealingWarmRestarts,
    ] {
        let s = Schedule::new(kind, 1e-4, 12, 4);
        for b in 1..48 {
            assert_eq!(
                s.lr_for_batch(b, 4),
                s.lr_after_batch(b - 1, 4),
                "{kind:?} b = {b}"
            );
        }
    }
}
