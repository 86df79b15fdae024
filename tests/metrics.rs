//! Tests of `metrics` (streaming epoch metrics) and `train::run_log` (upstream LOG files, metrics.jsonl,
//! console text).
//!
//! Expected values were computed in a Python venv (numpy 2.4.6, scikit-learn 1.9.1) with upstream
//! OpenSpliceAI 0.0.7's own `print_topl_statistics` and `classwise_accuracy` (copied verbatim from
//! `train_base/utils.py`, with the argsort kind as a parameter: `kind="stable"`, the documented tie rule),
//! `sklearn.metrics.average_precision_score`, `precision_recall_fscore_support(average=None)`, `np.argmax`, and
//! the loss `-mean(Σc y·log(p + 1e-10)[·(1-p)²])` in float64 (script: `evaluate()` in the session's
//! `ref.py`; values printed with `repr`).

mod common;

use std::fs;
use std::path::Path;

use common::compare::close;

use openspliceai_rs::metrics::Loss;
use openspliceai_rs::metrics::{
    class_metrics, ranking_metrics, score_key, ClassMetrics, EpochMetrics, MetricsAccumulator,
    MetricsError, RankingMetrics, SiteClassMetrics, WindowFilter,
};
use openspliceai_rs::rundir::{upstream_run_dir, Split};
use openspliceai_rs::train::run_log::{
    console_summary, python_float_repr, python_format_4f, topk_all_line, EpochRecord, RunLog,
    LOG_FILES,
};

// ---------------------------------------------------------------------------------------------
// Helpers

#[track_caller]
fn assert_close(what: &str, got: f64, want: f64, rel: f64) {
    assert!(close(got, want, rel), "{what}: got {got:?}, want {want:?}");
}

/// Expected values of one site channel.
struct Site {
    topk: [f64; 4],
    thr: [f64; 4],
    auprc: f64,
    n_true: u64,
    line: &'static str,
}

#[track_caller]
fn check_site(name: &str, got: &RankingMetrics, want: &Site) {
    for i in 0..4 {
        // Same operations as Python (count / (min + 1e-10)): exact.
        assert_eq!(got.topk_all[i], want.topk[i], "{name} topk[{i}]");
        assert_eq!(got.thresholds[i], want.thr[i], "{name} threshold[{i}]");
    }
    assert_eq!(got.topk, want.topk[1], "{name} topk");
    assert_close(&format!("{name} auprc"), got.auprc, want.auprc, 1e-9);
    assert_eq!(got.n_true, want.n_true, "{name} n_true");
    assert_eq!(topk_all_line(got), want.line, "{name} topk_all line");
}

#[track_caller]
fn check_classes(m: &EpochMetrics, want: [[f64; 4]; 3], accuracy: f64) {
    for (c, (got, w)) in m.class_metrics().iter().zip(want).enumerate() {
        assert_eq!(got.accuracy, w[0], "class {c} accuracy");
        assert_eq!(got.precision, w[1], "class {c} precision");
        assert_eq!(got.recall, w[2], "class {c} recall");
        assert_eq!(got.f1, w[3], "class {c} f1");
    }
    assert_eq!(m.accuracy, accuracy, "overall accuracy");
}

/// Case A: 4 windows of length 8, laid out (n, 3, L). Window 0: three acceptor sites; window 1: no site
/// (non-splice labels only); window 2: pure padding (all-zero labels: upstream's `is_expr` drops it);
/// window 3: one donor site and a padding position. Scores are multiples of 1/64 (exact in f32) with many
/// ties; the donor class is never predicted.
fn case_a() -> (Vec<f32>, Vec<f32>) {
    const L: usize = 8;
    let acc: [[f32; L]; 4] = [
        [0.5, 0.25, 0.125, 0.25, 0.0625, 0.75, 0.015625, 0.25],
        [0.25, 0.03125, 0.125, 0.0625, 0.25, 0.125, 0.5, 0.0],
        [0.75, 0.75, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0625, 0.125, 0.25, 0.015625, 0.03125, 0.0625, 0.125, 0.25],
    ];
    let don: [[f32; L]; 4] = [
        [0.0625, 0.125, 0.0, 0.125, 0.25, 0.0625, 0.125, 0.0],
        [0.125, 0.25, 0.375, 0.125, 0.0625, 0.25, 0.0625, 0.125],
        [0.0; L],
        [0.0625, 0.375, 0.125, 0.125, 0.0625, 0.0, 0.25, 0.125],
    ];
    // Class per position, -1 = padding.
    let cls: [[i32; L]; 4] = [
        [0, 1, 0, 1, 0, 1, 0, 0],
        [0; L],
        [-1; L],
        [0, 0, 2, 0, 0, 0, 0, -1],
    ];
    let mut probs = vec![0f32; 4 * 3 * L];
    let mut labels = vec![0f32; 4 * 3 * L];
    for w in 0..4 {
        for j in 0..L {
            probs[w * 3 * L + L + j] = acc[w][j];
            probs[w * 3 * L + 2 * L + j] = don[w][j];
            probs[w * 3 * L + j] = 1.0 - acc[w][j] - don[w][j];
            if cls[w][j] >= 0 {
                labels[w * 3 * L + cls[w][j] as usize * L + j] = 1.0;
            }
        }
    }
    (probs, labels)
}

// ---------------------------------------------------------------------------------------------
// metrics

#[test]
fn case_a_upstream_window_filter_cross_entropy() {
    let (probs, labels) = case_a();
    let half = 2 * 3 * 8;
    let mut acc = MetricsAccumulator::new(8);
    acc.update(&probs[..half], &labels[..half]).unwrap();
    acc.update(&probs[half..], &labels[half..]).unwrap();
    let m = acc.finish();
    assert_eq!((m.windows, m.kept_windows, m.positions), (4, 3, 24));
    // 0.5 × 3 sites = 1.5 → 1 position; 0.5 × 1 donor site = 0 → Python's a[-0:] selects every position.
    check_site(
        "acceptor",
        &m.acceptor.ranking,
        &Site {
            topk: [
                0.9999999999,
                0.3333333333222222,
                0.3333333333222222,
                0.9999999999666667,
            ],
            thr: [0.75, 0.5, 0.25, 0.125],
            auprc: 0.5333333333333333,
            n_true: 3,
            line: "1.0000\t0.3333\t0.3333\t1.0000\t0.5333\t0.7500\t0.5000\t0.2500\t0.1250\t3",
        },
    );
    check_site(
        "donor",
        &m.donor.ranking,
        &Site {
            topk: [0.9999999999, 0.0, 0.0, 0.0],
            thr: [0.0, 0.375, 0.375, 0.25],
            auprc: 0.06666666666666667,
            n_true: 1,
            line: "1.0000\t0.0000\t0.0000\t0.0000\t0.0667\t0.0000\t0.3750\t0.3750\t0.2500\t1",
        },
    );
    check_classes(
        &m,
        [
            [0.9, 0.8571428571428571, 0.9, 0.8780487804878049],
            [
                0.3333333333333333,
                0.3333333333333333,
                0.3333333333333333,
                0.3333333333333333,
            ],
            [0.0, 0.0, 0.0, 0.0],
        ],
        0.41111111111111115,
    );
    assert_close("loss", m.loss, 0.5012915549212552, 1e-12);
    assert_eq!(m.donor.class.predicted, 0);
    assert_eq!(m.confusion.iter().flatten().sum::<u64>(), 24);
}

#[test]
fn case_a_splice_site_filter_focal() {
    let (probs, labels) = case_a();
    let mut acc = MetricsAccumulator::new(8)
        .with_window_filter(WindowFilter::SpliceSite)
        .with_loss(Loss::FocalLoss);
    acc.update(&probs, &labels).unwrap();
    let m = acc.finish();
    assert_eq!((m.windows, m.kept_windows), (4, 2));
    check_site(
        "acceptor",
        &m.acceptor.ranking,
        &Site {
            topk: [
                0.9999999999,
                0.3333333333222222,
                0.6666666666444444,
                0.9999999999666667,
            ],
            thr: [0.75, 0.25, 0.25, 0.0625],
            auprc: 0.6190476190476191,
            n_true: 3,
            line: "1.0000\t0.3333\t0.6667\t1.0000\t0.6190\t0.7500\t0.2500\t0.2500\t0.0625\t3",
        },
    );
    check_site(
        "donor",
        &m.donor.ranking,
        &Site {
            topk: [0.9999999999, 0.0, 0.0, 0.0],
            thr: [0.0, 0.375, 0.25, 0.125],
            auprc: 0.1111111111111111,
            n_true: 1,
            line: "1.0000\t0.0000\t0.0000\t0.0000\t0.1111\t0.0000\t0.3750\t0.2500\t0.1250\t1",
        },
    );
    check_classes(
        &m,
        [
            [
                0.9166666666666666,
                0.7857142857142857,
                0.9166666666666666,
                0.8461538461538461,
            ],
            [0.3333333333333333, 0.5, 0.3333333333333333, 0.4],
            [0.0, 0.0, 0.0, 0.0],
        ],
        0.4166666666666667,
    );
    assert_close("focal loss", m.loss, 0.23352727480175053, 1e-12);
}

/// The 64-bit LCG of `gen_d()` in the reference script (state · 6364136223846793005 + 1442695040888963407,
/// output state >> 33).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Case D: 40 windows × 50 positions from the LCG: ~4% acceptor, ~4% donor labels, scores multiples of
/// 1/256 (many ties, also at the top-k boundaries), half the true sites boosted by 0.5, window 7 pure padding,
/// windows 9, 19, 29, 39 padded from position 30.
fn case_d() -> (Vec<f32>, Vec<f32>) {
    let (n, l) = (40usize, 50usize);
    let mut g = Lcg(12345);
    let mut probs = vec![0f32; n * 3 * l];
    let mut labels = vec![0f32; n * 3 * l];
    for w in 0..n {
        for j in 0..l {
            let r = g.next() % 100;
            let mut c: i32 = if r < 4 {
                1
            } else if r < 8 {
                2
            } else {
                0
            };
            if w == 7 || (w % 10 == 9 && j >= 30) {
                c = -1;
            }
            let mut a = g.next() % 64;
            let mut b = g.next() % 64;
            let boost = g.next().is_multiple_of(2);
            if c == 1 && boost {
                a += 128;
            }
            if c == 2 && boost {
                b += 128;
            }
            let base = w * 3 * l;
            probs[base + l + j] = a as f32 / 256.0;
            probs[base + 2 * l + j] = b as f32 / 256.0;
            probs[base + j] = (256 - a - b) as f32 / 256.0;
            if c >= 0 {
                labels[base + c as usize * l + j] = 1.0;
            }
        }
    }
    (probs, labels)
}

#[test]
fn case_d_generated_with_ties_any_batching() {
    let (probs, labels) = case_d();
    // The generator matches the Python one: same totals.
    assert_eq!(probs.iter().map(|&v| v as f64).sum::<f64>(), 2000.0);
    assert_eq!(labels.iter().map(|&v| v as f64).sum::<f64>(), 1870.0);
    let stride = 3 * 50;
    for batch in [40usize, 7, 1] {
        for (kind, loss) in [
            (Loss::CrossEntropyLoss, 0.3817473738934757),
            (Loss::FocalLoss, 0.11891412760241207),
        ] {
            let mut acc = MetricsAccumulator::new(50).with_loss(kind);
            for (p, y) in probs
                .chunks(batch * stride)
                .zip(labels.chunks(batch * stride))
            {
                acc.update(p, y).unwrap();
            }
            let m = acc.finish();
            assert_eq!(m.kept_windows, 39);
            check_site(
                "acceptor",
                &m.acceptor.ranking,
                &Site {
                    topk: [
                        0.9999999999970588,
                        0.507246376810859,
                        0.5217391304340264,
                        0.579710144926696,
                    ],
                    thr: [0.5, 0.24609375, 0.23828125, 0.21484375],
                    auprc: 0.5457592449741383,
                    n_true: 69,
                    line:
                        "1.0000\t0.5072\t0.5217\t0.5797\t0.5458\t0.5000\t0.2461\t0.2383\t0.2148\t69",
                },
            );
            check_site(
                "donor",
                &m.donor.ranking,
                &Site {
                    topk: [
                        0.999999999997619,
                        0.5411764705875987,
                        0.5647058823522768,
                        0.5999999999992941,
                    ],
                    thr: [0.5234375, 0.2421875, 0.23046875, 0.2109375],
                    auprc: 0.5747494342254055,
                    n_true: 85,
                    line:
                        "1.0000\t0.5412\t0.5647\t0.6000\t0.5747\t0.5234\t0.2422\t0.2305\t0.2109\t85",
                },
            );
            check_classes(
                &m,
                [
                    [1.0, 0.9594017094017094, 1.0, 0.9792802617230099],
                    [
                        0.4927536231884058,
                        1.0,
                        0.4927536231884058,
                        0.6601941747572816,
                    ],
                    [
                        0.5176470588235295,
                        1.0,
                        0.5176470588235295,
                        0.6821705426356589,
                    ],
                ],
                0.670133560670645,
            );
            assert_close("loss", m.loss, loss, 1e-12);
        }
    }
}

/// Straightforward reference: stable argsort (ascending; the top m are the last m), intersect, and
/// sklearn's AP over distinct thresholds. O(n log n) with an index per element.
fn naive_ranking(scores: &[f32], truth: &[bool]) -> RankingMetrics {
    let n = scores.len();
    let idx_true: Vec<usize> = (0..n).filter(|&i| truth[i]).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| score_key(scores[i])); // stable
    let mut topk_all = [0.0; 4];
    let mut thresholds = [0.0; 4];
    for (s, f) in [0.5, 1.0, 2.0, 4.0].iter().enumerate() {
        let m = (f * idx_true.len() as f64) as usize;
        let sel: &[usize] = if m == 0 || m >= n {
            &order
        } else {
            &order[n - m..]
        };
        let hits = sel.iter().filter(|&&i| truth[i]).count();
        topk_all[s] = hits as f64 / (sel.len().min(idx_true.len()) as f64 + 1e-10);
        thresholds[s] = scores[sel[0]] as f64;
    }
    let mut ap = 0.0;
    let (mut tp, mut seen, mut prev_r) = (0usize, 0usize, 0.0);
    let mut i = n;
    while i > 0 {
        let k = score_key(scores[order[i - 1]]);
        while i > 0 && score_key(scores[order[i - 1]]) == k {
            tp += truth[order[i - 1]] as usize;
            seen += 1;
            i -= 1;
        }
        let r = tp as f64 / idx_true.len() as f64;
        ap += (r - prev_r) * (tp as f64 / seen as f64);
        prev_r = r;
    }
    RankingMetrics {
        topk: topk_all[1],
        topk_all,
        thresholds,
        auprc: ap,
        n_true: idx_true.len() as u64,
    }
}

#[test]
fn ranking_matches_naive_reference_over_wide_keys() {
    // Scores spread over many histogram buckets (full f32 mantissas), some quantised to force ties,
    // sites dense enough to hit every boundary case.
    let mut g = Lcg(99);
    for (n, quant, site_pct) in [
        (200_000usize, 0u64, 1u64),
        (50_000, 1000, 3),
        (3_000, 7, 20),
        (17, 3, 30),
    ] {
        let mut scores = Vec::with_capacity(n);
        let mut truth = Vec::with_capacity(n);
        for _ in 0..n {
            let u = (g.next() as f64) / (1u64 << 31) as f64;
            let site = g.next() % 100 < site_pct;
            let mut s = if site { u.powf(0.3) } else { u.powi(3) };
            if quant > 0 {
                s = (s * quant as f64).round() / quant as f64;
            }
            scores.push(s as f32);
            truth.push(site);
        }
        let want = naive_ranking(&scores, &truth);
        let mut keys: Vec<u32> = scores.iter().map(|&s| score_key(s)).collect();
        let positives: Vec<u64> = (0..n as u64).filter(|&i| truth[i as usize]).collect();
        let got = ranking_metrics(&mut keys, &positives);
        assert_eq!(got.topk_all, want.topk_all, "n={n} quant={quant}");
        assert_eq!(got.thresholds, want.thresholds, "n={n} quant={quant}");
        assert_eq!(got.n_true, want.n_true);
        assert_close("auprc", got.auprc, want.auprc, 1e-9);
        assert!(
            keys.windows(2).all(|w| w[0] <= w[1]),
            "keys are sorted in place"
        );
    }
}

#[test]
fn degenerate_inputs() {
    // No window at all: nothing ranked (upstream crashes here).
    let m = MetricsAccumulator::new(8).finish();
    assert_eq!(m.kept_windows, 0);
    assert!(m.loss.is_nan() && m.acceptor.ranking.auprc.is_nan());
    assert!(m.donor.ranking.thresholds.iter().all(|t| t.is_nan()));
    assert_eq!(m.accuracy, 0.0);
    // No true site among stored positions: sklearn 1.9.1 gives AP 0.0; upstream's topk line
    // '0.0000\t0.0000\t0.0000\t0.0000\t0.0000\t0.1250\t0.1250\t0.1250\t0.1250\t0' (print_topl_statistics on
    // y_true [0,0,0,0], y_pred [0.5,0.25,0.125,0.75]).
    let mut keys: Vec<u32> = [0.5f32, 0.25, 0.125, 0.75]
        .iter()
        .map(|&s| score_key(s))
        .collect();
    let r = ranking_metrics(&mut keys, &[]);
    assert_eq!(r.auprc, 0.0);
    assert_eq!(
        topk_all_line(&r),
        "0.0000\t0.0000\t0.0000\t0.0000\t0.0000\t0.1250\t0.1250\t0.1250\t0.1250\t0"
    );
    // Shape errors.
    let mut acc = MetricsAccumulator::new(8);
    assert!(matches!(
        acc.update(&[0.0; 24], &[0.0; 23]),
        Err(MetricsError::LengthMismatch {
            probs: 24,
            labels: 23
        })
    ));
    assert!(matches!(
        acc.update(&[0.0; 30], &[0.0; 30]),
        Err(MetricsError::NotWholeWindows {
            len: 30,
            window_len: 8
        })
    ));
    // Ties in argmax go to the lowest class; a label row of zeros is class 0.
    // Layout (3, 2): position 0 scores (0.4, 0.4, 0.2), acceptor label; position 1 (0.3, 0.3, 0.3), no label.
    let probs = [0.4f32, 0.3, 0.4, 0.3, 0.2, 0.3];
    let labels = [0.0f32, 0.0, 1.0, 0.0, 0.0, 0.0];
    let mut acc = MetricsAccumulator::new(2);
    acc.update(&probs, &labels).unwrap();
    assert_eq!(acc.finish().confusion, [[1, 0, 0], [1, 0, 0], [0, 0, 0]]);
    let c = class_metrics(&[[0, 0, 0], [0, 0, 0], [0, 0, 0]]);
    assert_eq!(c[1].f1, 0.0);
}

// ---------------------------------------------------------------------------------------------
// Number formats

#[test]
fn python_float_repr_matches_python() {
    // (f64 bits, repr(x)) from python3 (repr_cases.py): specials, exponent boundaries -4/16, subnormals,
    // float32 values widened to double, and random values over 1e-30..1e30.
    let cases: &[(u64, &str)] = &[
        (0x0000000000000000, "0.0"),
        (0x8000000000000000, "-0.0"),
        (0x3ff0000000000000, "1.0"),
        (0xbff0000000000000, "-1.0"),
        (0x3fb999999999999a, "0.1"),
        (0x3fd5555555555555, "0.3333333333333333"),
        (0x3fe5555555555555, "0.6666666666666666"),
        (0x4059000000000000, "100.0"),
        (0x430c6bf526340000, "1000000000000000.0"),
        (0x431550f7dca70000, "1500000000000000.0"),
        (0x4341c37937e08000, "1e+16"),
        (0x434aa535d3d0c000, "1.5e+16"),
        (0x4341c37937e07fff, "9999999999999998.0"),
        (0x437b69b4ba630f35, "1.2345678901234568e+17"),
        (0x3f1a36e2eb1c432d, "0.0001"),
        (0x3f1a36e2eb1c432d, "0.0001"),
        (0x3f1a36e2eb1c432c, "9.999999999999999e-05"),
        (0x3ee4f8b588e368f1, "1e-05"),
        (0x3eef75104d551d69, "1.5e-05"),
        (0x3f1a2d93ba2d70e5, "9.986128001799077e-05"),
        (0x0000000000000001, "5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0x0010000000000000, "2.2250738585072014e-308"),
        (0xbff8000000000000, "-1.5"),
        (0x3f94e9c080000000, "0.02042294293642044"),
        (0x3fd55adca3337db0, "0.33367076814280505"),
        (0x4480f0cf064dd592, "1e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x54b249ad2594c37d, "1e+100"),
        (0x01aa749ec2ff5c8a, "1.2345e-300"),
        (0x3fb99999a0000000, "0.10000000149011612"),
        (0x3f94e9c080000000, "0.02042294293642044"),
        (0x3e7ad7f2a0000000, "1.0000000116860974e-07"),
        (0x40c81cd6c8b43958, "12345.678"),
        (0x3fe0000000000000, "0.5"),
        (0x7ff8000000000000, "nan"),
        (0x7ff0000000000000, "inf"),
        (0xfff0000000000000, "-inf"),
        (0x3ddb7cdfd9d7bdbb, "1e-10"),
        (0x3feffffffff24190, "0.9999999999"),
        (0x4340000000000000, "9007199254740992.0"),
        (0x43b0000000000000, "1.152921504606847e+18"),
        (0x3f71111111110940, "0.004166666666664931"),
        (0xbe105faf5c1a0c10, "-9.53078824548157e-10"),
        (0x4240b360030810c8, "143457781264.1311"),
        (0x3ea4f47e440aca03, "6.245092053130196e-07"),
        (0xba2c1a45c3ae4af0, "-1.7735251032025449e-28"),
        (0xbaa398acca49040b, "-3.165967001143225e-26"),
        (0x3a84e68b20817016, "8.441669122048343e-27"),
        (0x4642fd8b8d4e76cd, "3.009150681463131e+30"),
        (0x4157eaec3370dc62, "6269872.803763481"),
        (0x3ca474162d8b8d77, "1.4192441255598064e-16"),
        (0x3d94fd13d0585708, "4.772251392143187e-12"),
        (0x414ccfa8355d8cb7, "3776336.4169174093"),
        (0x3b1e25d0b13ba045, "6.234401472962196e-24"),
        (0x3e8930e4def4181f, "1.8768751839526002e-07"),
        (0x4137719a879a29c8, "1536410.5296960939"),
        (0xc051cf1a959ed6ad, "-71.23599758636074"),
        (0xc400992f0ece8940, "-3.827324533391124e+19"),
        (0x3e98d0f2ed24aba7, "3.697902971773141e-07"),
        (0x4306ca33ce41f5da, "801846667525819.2"),
        (0xc14c3ef108908707, "-3702242.0669106278"),
        (0xc57526c3fe0ed8c2, "-4.091281209625359e+26"),
        (0x3d9c808ac29d457c, "6.480631171327631e-12"),
        (0x3b50f28319a04273, "5.607395475827942e-23"),
        (0xc3cc4ce018a386f8, "-4.078502255438721e+18"),
        (0x3f21bb767495e681, "0.00013528653134269392"),
        (0xc3d4e5374a7bd6fb, "-6.022681773880372e+18"),
        (0xbe3f2be13331495e, "-7.257658296462934e-09"),
        (0x41937bcf574bb7d7, "81720277.82394348"),
        (0xc4c381bccef355f5, "-1.8423639647821326e+23"),
        (0x401d17f08ffd1a74, "7.273378610442354"),
        (0xba82c4abbda5233e, "-7.580434011768015e-27"),
        (0xc2620c7d522bbe48, "-620151607645.9463"),
        (0xbda061c7bb7f01ef, "-7.449650149584732e-12"),
        (0xba1dff9973108564, "-9.465837099814843e-29"),
        (0xbbf32df55c7d27c4, "-6.498275891347691e-20"),
        (0xba6d5a4d980f553d, "-2.9638699733771154e-27"),
        (0xbb8ce20d459c1fc3, "-7.645270416353148e-22"),
        (0xbf184079258cbd99, "-9.251346035620555e-05"),
        (0xbad35267c8c74c8a, "-2.497296542247285e-25"),
        (0x41155d9cdeee52b8, "350055.21770600555"),
        (0xc4a4a5279e2afcb4, "-4.874694859801681e+22"),
        (0x3f4725af60000000, "0.0007063967059366405"),
        (0x3f7bf6dec0000000, "0.00682723056524992"),
        (0x3eb0116ca0000000, "9.577312312103459e-07"),
        (0x3e7646aa20000000, "8.298469111878148e-08"),
        (0x3ec3753c60000000, "2.3195686935650883e-06"),
        (0x3fbee1a5a0000000, "0.12063059955835342"),
        (0x3ef31ebac0000000, "1.8234288290841505e-05"),
        (0x3f05765760000000, "4.093603274668567e-05"),
        (0x4015623620000000, "5.345909595489502"),
        (0x3ea300d580000000, "5.663412139256252e-07"),
        (0x3fe6188620000000, "0.690493643283844"),
        (0x4057c16ee0000000, "95.02239227294922"),
        (0x3e3d0ae600000000, "6.762000737126073e-09"),
        (0x4046d50a20000000, "45.664371490478516"),
        (0x3f80572720000000, "0.007978730835020542"),
        (0x3f704e1000000000, "0.003980696201324463"),
        (0x4024b51960000000, "10.35370922088623"),
        (0x3ed0cbb860000000, "4.0044265006145e-06"),
        (0x3ea6991dc0000000, "6.734761655025068e-07"),
        (0x3e67a7ee00000000, "4.406268772072508e-08"),
    ];
    for &(bits, want) in cases {
        assert_eq!(
            python_float_repr(f64::from_bits(bits)),
            want,
            "bits {bits:#018x}"
        );
    }
}

#[test]
fn percent_4f_matches_python() {
    // (f64 bits, "%.4f" % x) from python3 (pct_cases.py), including exact binary ties (0.03125 → 0.0312).
    let cases: &[(u64, &str)] = &[
        (0x3fa0000000000000, "0.0312"),
        (0x3fb8000000000000, "0.0938"),
        (0x3fc4000000000000, "0.1562"),
        (0x3fde000000000000, "0.4688"),
        (0x3f0a36e2eb1c432d, "0.0001"),
        (0x3fefff972474538f, "1.0000"),
        (0x3efa36e2eb1c432d, "0.0000"),
        (0x3ddb7cdfd9d7bdbb, "0.0000"),
        (0x3feffffffff24190, "1.0000"),
        (0x0000000000000000, "0.0000"),
        (0x3ff0000000000000, "1.0000"),
        (0x3fbf9a6b50b0f27c, "0.1235"),
        (0x3f23a92a30553261, "0.0001"),
        (0x3fdcf3c960000000, "0.4524"),
        (0x3fe1e9a7c0000000, "0.5598"),
        (0x3fed932220000000, "0.9242"),
        (0x3fddcd3600000000, "0.4657"),
        (0x3fe0403c60000000, "0.5078"),
        (0x3fe2cbdb40000000, "0.5874"),
        (0x3fc7a2f340000000, "0.1847"),
        (0x3fe0618e40000000, "0.5119"),
        (0x3fe427ffc0000000, "0.6299"),
        (0x3fe9601100000000, "0.7930"),
        (0x3fb8187980000000, "0.0941"),
        (0x3fd36aed20000000, "0.3034"),
        (0x3fb7362f40000000, "0.0907"),
        (0x3fe9e89ba0000000, "0.8096"),
        (0x3fe630a5e0000000, "0.6934"),
        (0x3fa57156e0000000, "0.0419"),
        (0x3fef6e20e0000000, "0.9822"),
        (0x3feedf4bc0000000, "0.9648"),
        (0x3fe4ecef00000000, "0.6539"),
        (0x3fe3b2b080000000, "0.6156"),
        (0x3fc428c440000000, "0.1575"),
        (0x3f8eb8b4e0000000, "0.0150"),
        (0x3fe0e87fe0000000, "0.5284"),
        (0x3fae7d7b80000000, "0.0596"),
        (0x3fc858be80000000, "0.1902"),
        (0x3fcef7fd20000000, "0.2419"),
        (0x3f9ecdf860000000, "0.0301"),
        (0x3fddb11a20000000, "0.4639"),
        (0x3fdc31a960000000, "0.4405"),
        (0x3feaf529c0000000, "0.8424"),
        (0x3f4102ba8c389447, "0.0005"),
        (0x3f44fb27f90349cc, "0.0006"),
        (0x3f406066ac0d0248, "0.0005"),
        (0x3f45b507899069c6, "0.0007"),
        (0x3f3df8b8e28c5294, "0.0005"),
        (0x3f323acc8e98a92b, "0.0003"),
        (0x3f505879303ba5a5, "0.0010"),
        (0x3f50503bc26b8b1b, "0.0010"),
        (0x3f4b883d2740b798, "0.0008"),
        (0x3f473189968b5b56, "0.0007"),
        (0x0000000000000000, "0.0000"),
        (0x3faf280000000000, "0.0609"),
        (0x3fbf280000000000, "0.1217"),
        (0x3fc75e0000000000, "0.1826"),
        (0x3fcf280000000000, "0.2434"),
        (0x3fd3790000000000, "0.3043"),
        (0x3fd75e0000000000, "0.3651"),
        (0x3fdb430000000000, "0.4260"),
        (0x3fdf280000000000, "0.4868"),
        (0x3fe1868000000000, "0.5477"),
        (0x3fe3790000000000, "0.6085"),
        (0x3fe56b8000000000, "0.6694"),
        (0x3fe75e0000000000, "0.7302"),
        (0x3fe9508000000000, "0.7911"),
        (0x3feb430000000000, "0.8519"),
        (0x3fed358000000000, "0.9128"),
        (0x3fef280000000000, "0.9736"),
    ];
    for &(bits, want) in cases {
        assert_eq!(
            python_format_4f(f64::from_bits(bits)),
            want,
            "bits {bits:#018x}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// run_log against the real upstream run

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

fn class(accuracy: f64, precision: f64, recall: f64, f1: f64) -> ClassMetrics {
    ClassMetrics {
        accuracy,
        precision,
        recall,
        f1,
        support: 0,
        predicted: 0,
    }
}

/// Rebuilds a split's epoch metrics from the fixture's LOG files (full-precision values where upstream
/// writes them, the 4-decimal ones otherwise) and the non-splice line of console.log.
fn metrics_from_fixture(dir: &Path, epoch: usize, non_splice: ClassMetrics) -> EpochMetrics {
    let v = |name: &str| num(&read_lines(&dir.join(format!("{name}.txt")))[epoch]);
    let site = |s: &str| {
        let all: Vec<String> = read_lines(&dir.join(format!("{s}_topk_all.txt")))[epoch]
            .split('\t')
            .map(str::to_owned)
            .collect();
        assert_eq!(all.len(), 10);
        let mut topk_all = [0.0; 4];
        let mut thresholds = [0.0; 4];
        for i in 0..4 {
            topk_all[i] = num(&all[i]);
            thresholds[i] = num(&all[5 + i]);
        }
        topk_all[1] = v(&format!("{s}_topk"));
        SiteClassMetrics {
            class: class(
                v(&format!("{s}_accuracy")),
                v(&format!("{s}_precision")),
                v(&format!("{s}_recall")),
                v(&format!("{s}_f1")),
            ),
            ranking: RankingMetrics {
                topk: topk_all[1],
                topk_all,
                thresholds,
                auprc: v(&format!("{s}_auprc")),
                n_true: all[9].parse().unwrap(),
            },
        }
    };
    EpochMetrics {
        windows: 0,
        kept_windows: 0,
        ranked_windows: 0,
        positions: 0,
        loss: v("loss_batch"),
        accuracy: v("accuracy"),
        non_splice,
        acceptor: site("acceptor"),
        donor: site("donor"),
        confusion: [[0; 3]; 3],
    }
}

/// The console blocks from "\nacceptor:" to the "Class donor" line, in order (6 = 2 epochs × 3 splits).
fn console_blocks(console: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = console;
    while let Some(start) = rest.find("\nacceptor:\n") {
        let from = &rest[start..];
        let donor_class = from.find("Class donor").expect("Class donor line");
        let end = donor_class + from[donor_class..].find('\n').unwrap() + 1;
        blocks.push(from[..end].to_owned());
        rest = &from[end..];
    }
    blocks
}

fn non_splice_from_block(block: &str) -> ClassMetrics {
    let line = block
        .lines()
        .find(|l| l.starts_with("Class Non-splice"))
        .unwrap();
    let vals: Vec<f64> = line
        .split(", ")
        .map(|kv| num(kv.rsplit('=').next().unwrap()))
        .collect();
    class(vals[0], vals[1], vals[2], vals[3])
}

#[test]
fn run_log_reproduces_upstream_log_tree_byte_for_byte() {
    let Some(fixture) = common::fixture("upstream-run/LOG") else {
        return;
    };
    let console = fs::read_to_string(fixture.join("../console.log")).unwrap();
    let blocks = console_blocks(&console);
    assert_eq!(
        blocks.len(),
        6,
        "2 epochs × TRAIN, VAL, TEST in console.log"
    );

    let tmp = tempfile::tempdir().unwrap();
    let run = upstream_run_dir(tmp.path(), "f400u2", 400, "0", 42);
    assert_eq!(run, tmp.path().join("SpliceAI_f400u2_400_0_rs42/0"));
    let mut log = RunLog::create(&run).unwrap();

    // Replay upstream's call sequence: per batch losses (and TRAIN lrs), then each split's epoch metrics,
    // then the epoch-end lr.
    let f = |split: &str, name: &str| read_lines(&fixture.join(split).join(format!("{name}.txt")));
    let train_losses = f("TRAIN", "loss_every_update");
    let train_lrs = f("TRAIN", "learning_rate_every_batch");
    let epoch_lrs = f("TRAIN", "learning_rate_every_epoch");
    assert_eq!(
        (train_losses.len(), train_lrs.len(), epoch_lrs.len()),
        (16, 16, 2)
    );
    for epoch in 0..2 {
        for (si, split) in Split::ALL.into_iter().enumerate() {
            let losses = f(split.dir_name(), "loss_every_update");
            let per_epoch = losses.len() / 2;
            for b in 0..per_epoch {
                log.log_batch_loss(split, num(&losses[epoch * per_epoch + b]))
                    .unwrap();
                if split == Split::Train {
                    log.log_batch_lr(num(&train_lrs[epoch * per_epoch + b]))
                        .unwrap();
                }
            }
            let block = &blocks[epoch * 3 + si];
            let m = metrics_from_fixture(
                &fixture.join(split.dir_name()),
                epoch,
                non_splice_from_block(block),
            );
            log.log_epoch_metrics(split, &m).unwrap();
            // The console text upstream prints after this split's pass.
            assert_eq!(
                &console_summary(&m, false),
                block,
                "{split:?} epoch {epoch}"
            );
            log.log_jsonl(&EpochRecord::new(epoch as i64, split, &m, None, 1.5))
                .unwrap();
        }
        log.log_epoch_lr(num(&epoch_lrs[epoch])).unwrap();
    }

    for split in Split::ALL {
        let mut want: Vec<String> = fs::read_dir(fixture.join(split.dir_name()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut got: Vec<String> = fs::read_dir(log.split_dir(split))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{split:?} file names");
        assert_eq!(got.len(), LOG_FILES.len());
        for name in &want {
            let a = fs::read(fixture.join(split.dir_name()).join(name)).unwrap();
            let b = fs::read(log.split_dir(split).join(name)).unwrap();
            assert!(
                a == b,
                "{split:?}/{name} differs:\n--- upstream\n{}\n--- ours\n{}",
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b)
            );
        }
    }

    // metrics.jsonl: one object per split per epoch.
    let lines = read_lines(&run.join("metrics.jsonl"));
    assert_eq!(lines.len(), 6);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["epoch"], 0);
    assert_eq!(first["split"], "train");
    assert_eq!(first["acceptor"]["n_true"], 950);
    // serde_json (without float_roundtrip) may parse 1 ulp off: check the written text, which is exact.
    for needle in [
        r#""loss":0.02042294293642044"#,
        r#""topk":0.011578947368419834"#,
        r#""non_splice":{"accuracy":0.9999596728494677"#,
    ] {
        assert!(lines[0].contains(needle), "{needle} not in {}", lines[0]);
    }
    assert_eq!(first["acceptor"]["topk_all"].as_array().unwrap().len(), 4);
    assert!(first["lr"].is_null());
    let last: serde_json::Value = serde_json::from_str(&lines[5]).unwrap();
    assert_eq!(
        (last["epoch"].as_i64(), last["split"].as_str()),
        (Some(1), Some("test"))
    );
}

#[test]
fn run_log_jsonl_baseline_and_real_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = RunLog::create(tmp.path()).unwrap();
    let (probs, labels) = case_a();
    let mut acc = MetricsAccumulator::new(8);
    acc.update(&probs, &labels).unwrap();
    let m = acc.finish();
    log.log_jsonl(&EpochRecord::new(-1, Split::Val, &m, Some(1e-4), 2.0))
        .unwrap();
    let empty = MetricsAccumulator::new(8).finish();
    log.log_jsonl(&EpochRecord::new(0, Split::Test, &empty, None, 0.0))
        .unwrap();
    let lines = read_lines(&tmp.path().join("metrics.jsonl"));
    assert_eq!(lines.len(), 2);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    for key in [
        "epoch",
        "split",
        "loss",
        "lr",
        "seconds",
        "windows_per_s",
        "accuracy",
        "acceptor",
        "donor",
        "non_splice",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["epoch"], -1);
    assert_eq!(v["split"], "val");
    assert_eq!(v["windows_per_s"].as_f64().unwrap(), 2.0);
    assert_eq!(v["lr"].as_f64().unwrap(), 1e-4);
    assert_eq!(
        v["acceptor"]["auprc"].as_f64().unwrap(),
        m.acceptor.ranking.auprc
    );
    assert_eq!(v["donor"]["thresholds"][0].as_f64().unwrap(), 0.0);
    assert_eq!(v["donor"]["f1"].as_f64().unwrap(), 0.0);
    // NaN (no window) is written as null, the line stays valid JSON.
    let e: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert!(e["loss"].is_null() && e["acceptor"]["auprc"].is_null());
}

#[test]
fn run_log_repairs_torn_files_and_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = RunLog::create(tmp.path()).unwrap();
    log.log_batch_loss(Split::Val, 0.25).unwrap();
    log.log_batch_lr(9.986128001799077e-05).unwrap();
    log.log_epoch_lr(0.0001).unwrap();
    drop(log);
    // Simulate a torn tail and a stale temp file left by a crash.
    let loss_path = tmp.path().join("LOG/VAL/loss_every_update.txt");
    let mut torn = fs::read(&loss_path).unwrap();
    torn.extend_from_slice(b"0.12");
    fs::write(&loss_path, torn).unwrap();
    let stale = tmp.path().join("LOG/TRAIN/.accuracy.txt.tmp");
    fs::write(&stale, "junk").unwrap();

    let mut log = RunLog::create(tmp.path()).unwrap();
    assert!(!stale.exists());
    assert_eq!(fs::read_to_string(&loss_path).unwrap(), "0.25\n");
    log.log_batch_loss(Split::Val, 1.0).unwrap();
    log.flush().unwrap();
    assert_eq!(fs::read_to_string(&loss_path).unwrap(), "0.25\n1.0\n");
    assert_eq!(
        fs::read_to_string(tmp.path().join("LOG/TRAIN/learning_rate_every_batch.txt")).unwrap(),
        "9.986128001799077e-05\n"
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("LOG/TRAIN/learning_rate_every_epoch.txt")).unwrap(),
        "0.0001\n"
    );
    // No temp file remains after atomic appends.
    let leftovers: Vec<_> = fs::read_dir(tmp.path().join("LOG/TRAIN"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn console_summary_colour_codes_are_upstreams() {
    let (probs, labels) = case_a();
    let mut acc = MetricsAccumulator::new(8);
    acc.update(&probs, &labels).unwrap();
    let m = acc.finish();
    let coloured = console_summary(&m, true);
    // Upstream: bold site name, red top-k@1, blue AUPRC.
    assert!(
        coloured.starts_with("\n\x1b[1macceptor:\x1b[0m\n1.0000\t\x1b[91m0.3333\t\x1b[0m0.3333\t")
    );
    assert!(coloured.contains("\t\x1b[94m0.5333\t\x1b[0m0.7500\t"));
    let stripped = coloured
        .replace("\x1b[1m", "")
        .replace("\x1b[0m", "")
        .replace("\x1b[91m", "")
        .replace("\x1b[94m", "");
    assert_eq!(stripped, console_summary(&m, false));
    assert!(stripped.contains("Overall Accuracy: 0.41111111111111115\n"));
    assert!(stripped.contains("Class donor\t: Accuracy=0.0, Precision=0.0, Recall=0.0, F1=0.0\n"));
}

#[test]
fn console_header_names() {
    assert_eq!(Split::Val.console_header(), "Validationing model...");
    assert_eq!(Split::Test.dir_name(), "TEST");
}

/// The trainer's setting: confusion counts and loss over every labelled window (upstream), top-k and AUPRC
/// only over windows that hold a splice site (upstream's rule).
#[test]
fn ranking_filter_scores_only_windows_with_a_site() {
    let wl = 4;
    // Window 0: acceptor at position 1 (score 0.6); window 1: no site, a decoy acceptor score 0.9.
    let probs: Vec<f32> = vec![
        0.9, 0.4, 0.9, 0.9, /* acc */ 0.05, 0.6, 0.05, 0.05, /* don */ 0.05, 0.0, 0.05,
        0.05, //
        0.1, 0.9, 0.9, 0.9, /* acc */ 0.9, 0.05, 0.05, 0.05, /* don */ 0.0, 0.05, 0.05,
        0.05,
    ];
    let labels: Vec<f32> = vec![
        1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, //
        1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ];
    let run = |ranking: WindowFilter| {
        let mut acc = MetricsAccumulator::new(wl).with_ranking_filter(ranking);
        acc.update(&probs, &labels).unwrap();
        acc.finish()
    };
    let site_only = run(WindowFilter::SpliceSite);
    let upstream = run(WindowFilter::AnyLabel);
    // Both count all 8 positions in the confusion matrix (the decoy is a false acceptor call in both).
    assert_eq!(site_only.confusion, upstream.confusion);
    assert_eq!(site_only.confusion[0][1], 1);
    assert_eq!(site_only.kept_windows, 2);
    assert_eq!(site_only.ranked_windows, 1);
    assert_eq!(upstream.ranked_windows, 2);
    // Over window 0 alone the true acceptor ranks first: AUPRC 1, top-1 hit.
    assert_close(
        "site-only auprc",
        site_only.acceptor.ranking.auprc,
        1.0,
        1e-12,
    );
    // With the decoy window the acceptor ranks second: AP = 1/2 (sklearn), top-1 misses.
    assert_close(
        "upstream auprc",
        upstream.acceptor.ranking.auprc,
        0.5,
        1e-12,
    );
    assert!(upstream.acceptor.ranking.topk < 0.5);
}
