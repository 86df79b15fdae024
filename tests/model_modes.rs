//! Train/eval BatchNorm semantics of the model: which running statistics and counters a step touches,
//! with upstream's behaviour (frozen BatchNorms still train) and with `--freeze-bn`.

mod common;

use candle_core::{Device, Tensor};
use common::compare::tensor_max_abs_diff;
use openspliceai_rs::model::{FlankConfig, Mode, SpliceAi, Trainable};

fn bn_state(m: &SpliceAi, unit_index: usize, bn: usize) -> (Vec<f32>, Vec<f32>, i64) {
    let p = format!("residual_units.{unit_index}.batchnorm{bn}");
    (
        m.tensor(&format!("{p}.running_mean"))
            .unwrap()
            .to_vec1()
            .unwrap(),
        m.tensor(&format!("{p}.running_var"))
            .unwrap()
            .to_vec1()
            .unwrap(),
        m.counter(&format!("{p}.num_batches_tracked")).unwrap(),
    )
}

fn model_and_input() -> (SpliceAi, Tensor) {
    let cfg = FlankConfig::for_flank(80).unwrap();
    let m = SpliceAi::new(cfg, 3, &Device::Cpu).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 4, cfg.input_len()), &Device::Cpu).unwrap();
    (m, x)
}

#[test]
fn eval_mode_changes_nothing() {
    let (mut m, x) = model_and_input();
    let before: Vec<_> = (0..4).map(|u| bn_state(&m, u, 1)).collect();
    m.forward(&x, Mode::Eval).unwrap();
    let after: Vec<_> = (0..4).map(|u| bn_state(&m, u, 1)).collect();
    assert_eq!(before, after);
}

#[test]
fn upstream_train_mode_updates_every_batchnorm_even_frozen_ones() {
    let (mut m, x) = model_and_input();
    m.set_trainable(Trainable::LastUnits(2)).unwrap();
    let before: Vec<_> = (0..4).map(|u| bn_state(&m, u, 2)).collect();
    m.forward(&x, Mode::Train).unwrap();
    for (u, b) in before.iter().enumerate() {
        let a = bn_state(&m, u, 2);
        assert_ne!(a.0, b.0, "unit {u}: running_mean should move in train mode");
        assert_ne!(a.1, b.1, "unit {u}: running_var should move in train mode");
        assert_eq!(a.2, b.2 + 1, "unit {u}: num_batches_tracked + 1");
    }
}

#[test]
fn freeze_bn_keeps_frozen_units_statistics_and_counters() {
    let (mut m, x) = model_and_input();
    m.set_trainable(Trainable::LastUnits(2)).unwrap();
    m.set_freeze_bn(true);
    let before: Vec<_> = (0..4)
        .flat_map(|u| [bn_state(&m, u, 1), bn_state(&m, u, 2)])
        .collect();
    for _ in 0..2 {
        m.forward(&x, Mode::Train).unwrap();
    }
    let after: Vec<_> = (0..4)
        .flat_map(|u| [bn_state(&m, u, 1), bn_state(&m, u, 2)])
        .collect();
    // Units 0 and 1 are frozen: untouched. Units 2 and 3 train: statistics move, counters + 2.
    for i in 0..4 {
        assert_eq!(
            after[i],
            before[i],
            "frozen unit {} batchnorm{} changed",
            i / 2,
            i % 2 + 1
        );
    }
    for i in 4..8 {
        assert_ne!(
            after[i].0,
            before[i].0,
            "trained unit {} batchnorm{} did not update",
            i / 2,
            i % 2 + 1
        );
        assert_eq!(after[i].2, before[i].2 + 2);
    }
}

#[test]
fn freeze_bn_frozen_prefix_output_equals_eval_mode() {
    // With every BatchNorm frozen, a train-mode pass must compute exactly the eval-mode function.
    let (mut m, x) = model_and_input();
    m.set_trainable(Trainable::Nothing).unwrap();
    m.set_freeze_bn(true);
    let train = m.forward(&x, Mode::Train).unwrap();
    let eval = m.predict(&x).unwrap();
    assert_eq!(tensor_max_abs_diff(&train, &eval), 0.0);
}

#[test]
fn unfreeze_selects_the_last_units_and_clamps() {
    let (mut m, _) = model_and_input();
    let names =
        |v: Vec<(String, candle_core::Var)>| v.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    let two = names(m.set_trainable(Trainable::LastUnits(2)).unwrap());
    assert_eq!(two.len(), 16, "{two:?}");
    assert!(two
        .iter()
        .all(|n| n.starts_with("residual_units.2.") || n.starts_with("residual_units.3.")));
    let many = names(m.set_trainable(Trainable::LastUnits(99)).unwrap());
    assert_eq!(many.len(), 32, "clamped to the 4 units: {many:?}");
    assert!(!many.iter().any(|n| n.contains("residual_units.4.")
        || n.starts_with("initial")
        || n.starts_with("final")));
    let all = names(m.set_trainable(Trainable::All).unwrap());
    assert_eq!(all.len(), 32 + 6 + 2, "{all:?}");
}

#[test]
fn prefix_then_suffix_equals_the_whole_network() {
    // 400nt: 8 units, Skips at list indices 4 and 9; train the last 2 units so the cut is at index 7.
    let cfg = FlankConfig::for_flank(400).unwrap();
    let mut m = SpliceAi::new(cfg, 5, &Device::Cpu).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 4, cfg.input_len()), &Device::Cpu).unwrap();
    assert_eq!(
        m.frozen_prefix_end(),
        None,
        "nothing trainable, no freeze-bn: no prefix"
    );
    m.set_trainable(Trainable::LastUnits(2)).unwrap();
    assert_eq!(
        m.frozen_prefix_end(),
        None,
        "without --freeze-bn the prefix is not a fixed function"
    );
    m.set_freeze_bn(true);
    let cut = m.frozen_prefix_end().expect("a frozen prefix");
    assert_eq!(cut, 7);
    let whole = m.predict(&x).unwrap();
    let state = m.forward_prefix(&x, cut).unwrap();
    assert_eq!(state.skip.dims(), &[2, 32, 5000]);
    assert_eq!(state.h.dims(), &[2, 32, cfg.input_len()]);
    let split = m.clone().forward_suffix(state, cut, Mode::Eval).unwrap();
    assert!(tensor_max_abs_diff(&whole, &split) < 1e-6);
    m.set_trainable(Trainable::All).unwrap();
    assert_eq!(
        m.frozen_prefix_end(),
        None,
        "everything trainable: no prefix"
    );
}

#[test]
fn predict_computes_only_what_the_output_reads_and_equals_the_full_pass() {
    // `predict` cuts each unit's result to what the output still reads; `forward` in eval mode runs every
    // unit over the whole length. Every flanking size, the training window and the shorter windows of
    // `variant` (CL + 2D + 1), with trained-looking running statistics.
    for flank in [80, 400, 2000, 10000] {
        let cfg = FlankConfig::for_flank(flank).unwrap();
        let mut m = SpliceAi::new(cfg, 7, &Device::Cpu).unwrap();
        let warm = Tensor::randn(0f32, 1.0, (2, 4, flank + 301), &Device::Cpu).unwrap();
        m.forward(&warm, Mode::Train).unwrap();
        for out_len in [1, 101, 5000] {
            let x = Tensor::randn(0f32, 1.0, (1, 4, flank + out_len), &Device::Cpu).unwrap();
            let cut = m.predict(&x).unwrap();
            let full = m.forward(&x, Mode::Eval).unwrap();
            assert_eq!(cut.dims(), &[1, 3, out_len]);
            let d = tensor_max_abs_diff(&cut, &full);
            assert!(
                d < 1e-6,
                "{flank}nt, {out_len} outputs: max |cut - full| = {d:e}"
            );
        }
    }
}
