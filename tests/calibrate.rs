//! `calibrate` and `--temperature`: the fit and the formulas against fixtures made with OpenSpliceAI 0.0.7's
//! own code (tests/data/calibrate/make_fixture.py), the output files, `-T`, bad inputs, the temperature in
//! `predict`/`variant`/`test`, and (with the shared data) the whole command against upstream's run on the
//! fly chr2L data with the 400nt OpenSpliceAI-MANE model.

mod common;
use common::run_bin as run;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;

use candle_core::{Device, Tensor};
use openspliceai_rs::calibrate::{
    self, fit, metrics, FitOptions, LabelledLogits, Temperature, CLASS_NAMES,
};
use openspliceai_rs::checkpoint::{self, pt};
use openspliceai_rs::infer::Ensemble;
use openspliceai_rs::model::spliceai::softmax_channels;
use openspliceai_rs::model::{io, SpliceAi, CONFIGS};
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/calibrate")
}

/// A fixture of make_fixture.py: the logits and labels, and upstream's JSON.
fn fixture(name: &str) -> (LabelledLogits, Value) {
    let d = data_dir();
    let raw = std::fs::read(d.join(format!("{name}_logits.f32"))).unwrap();
    let logits: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let labels = std::fs::read(d.join(format!("{name}_labels.u8"))).unwrap();
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join(format!("{name}_upstream.json"))).unwrap(),
    )
    .unwrap();
    (LabelledLogits::new(logits, labels).unwrap(), json)
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn temperature(v: &Value) -> Temperature {
    Temperature(f32s(v).try_into().unwrap())
}

/// Upstream's fit, step by step: the same number of steps, the same learning rates, the loss and the
/// temperature of every step within float32 noise, and the same restored temperature.
#[test]
fn fit_reproduces_upstreams_trajectory() {
    for name in ["fit", "clamp"] {
        let (data, up) = fixture(name);
        let r = fit(&data, &FitOptions::default(), &|| false).unwrap();
        let steps = up["trajectory"].as_array().unwrap();
        assert_eq!(r.steps.len(), steps.len(), "{name}: steps");
        let mut worst_t = 0.0f64;
        let mut worst_loss = 0.0f64;
        for (i, (ours, theirs)) in r.steps.iter().zip(steps).enumerate() {
            assert_eq!(
                ours.lr,
                theirs["lr"].as_f64().unwrap(),
                "{name} step {i}: lr"
            );
            let l = theirs["loss"].as_f64().unwrap();
            worst_loss = worst_loss.max((ours.loss as f64 - l).abs() / l);
            for (a, b) in ours.temperature.iter().zip(f32s(&theirs["temperature"])) {
                worst_t = worst_t.max((*a as f64 - b as f64).abs());
            }
        }
        eprintln!("{name}: {} steps, worst temperature difference {worst_t:.2e}, worst loss difference {worst_loss:.2e} (relative)", r.steps.len());
        assert!(worst_t < 2e-6, "{name}: temperature off by {worst_t}");
        assert!(worst_loss < 1e-6, "{name}: loss off by {worst_loss}");
        for (a, b) in r.temperature.0.iter().zip(f32s(&up["temperature"])) {
            assert!((a - b).abs() < 2e-6, "{name}: final {a} vs {b}");
        }
    }
    // The clamp fixture ends on the lower clamp with three learning-rate cuts.
    let (data, _) = fixture("clamp");
    let r = fit(&data, &FitOptions::default(), &|| false).unwrap();
    assert_eq!(r.temperature.0[0], 0.05);
    assert_eq!(r.lr_cuts(), 3);
}

/// NLL, ECE, Brier and the reliability curves of upstream's functions, before and after.
#[test]
fn formulas_match_upstream() {
    for name in ["fit", "clamp"] {
        let (data, up) = fixture(name);
        for phase in ["before", "after"] {
            let want = &up[phase];
            let t = temperature(&want["temperature"]);
            let m = calibrate::split_metrics(&data, t);
            let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-300);
            let nll = want["nll"].as_f64().unwrap();
            let ece = want["ece"].as_f64().unwrap();
            assert!(
                rel(m.nll as f64, nll) < 1e-6,
                "{name} {phase}: NLL {} vs {nll}",
                m.nll
            );
            assert!(
                rel(m.ece as f64, ece) < 1e-5,
                "{name} {phase}: ECE {} vs {ece}",
                m.ece
            );
            for (c, b) in f64s(&want["brier"]).iter().enumerate() {
                assert!(
                    rel(m.brier[c], *b) < 1e-5,
                    "{name} {phase}: Brier {c}: {} vs {b}",
                    m.brier[c]
                );
            }
            for (c, curve) in want["curves"].as_array().unwrap().iter().enumerate() {
                let ours = &m.curves[c];
                let counts: Vec<i64> = curve["bin_counts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect();
                assert_eq!(
                    ours.bin_counts, counts,
                    "{name} {phase} class {c}: bin counts"
                );
                // numpy's division may differ in the last bit.
                let truth = f64s(&curve["prob_true"]);
                assert_eq!(ours.prob_true.len(), truth.len());
                for (a, b) in ours.prob_true.iter().zip(&truth) {
                    assert!(
                        (a - b).abs() < 1e-12,
                        "{name} {phase} class {c}: {a} vs {b}"
                    );
                }
                let pred = f64s(&curve["prob_pred"]);
                assert_eq!(ours.prob_pred.len(), pred.len());
                for (a, b) in ours.prob_pred.iter().zip(&pred) {
                    assert!((a - b).abs() < 1e-7, "{name} {phase} class {c}: {a} vs {b}");
                }
            }
        }
        assert_eq!(
            metrics::nll(&data, temperature(&up["before"]["temperature"])),
            metrics::loss_and_grad(&data, Temperature::ONE).0
        );
    }
}

/// temperature.txt is numpy's `str()` of the float32 vector, byte for byte.
#[test]
fn temperature_text_matches_numpy() {
    for name in ["fit", "clamp"] {
        let (_, up) = fixture(name);
        for case in up["temperature_texts"].as_array().unwrap() {
            let t = temperature(&case["values"]);
            assert_eq!(t.numpy_text(), case["text"].as_str().unwrap());
        }
    }
    let up = std::fs::read_to_string(data_dir().join("chr2L-400nt/temperature.txt")).unwrap();
    let v = Temperature::parse_text(&up).unwrap();
    assert_eq!(Temperature(v.try_into().unwrap()).numpy_text(), up);
}

/// temperature.pt: upstream's file reads as its three values; ours pickles exactly what torch.save does
/// for a bare tensor (so torch.load returns a tensor, and upstream's `-T` takes it) and reads back.
#[test]
fn temperature_pt_is_a_bare_tensor_as_torch_saves_it() {
    let up_pt = data_dir().join("chr2L-400nt/temperature.pt");
    let up_txt = std::fs::read_to_string(data_dir().join("chr2L-400nt/temperature.txt")).unwrap();
    let t = Temperature::read(&up_pt).unwrap();
    assert_eq!(t.numpy_text(), up_txt);
    let tmp = tempfile::tempdir().unwrap();
    let ours = tmp.path().join("temperature.pt");
    std::fs::write(&ours, t.pt_bytes(&ours).unwrap()).unwrap();
    assert_eq!(Temperature::read(&ours).unwrap(), t);
    let record = |p: &Path, name: &str| {
        let mut z = zip::ZipArchive::new(std::fs::File::open(p).unwrap()).unwrap();
        let mut b = Vec::new();
        z.by_name(name).unwrap().read_to_end(&mut b).unwrap();
        b
    };
    for name in [
        "temperature/data.pkl",
        "temperature/data/0",
        "temperature/byteorder",
        "temperature/version",
    ] {
        assert_eq!(record(&ours, name), record(&up_pt, name), "{name}");
    }
    // A state dict is not a temperature file; the reader says so.
    let sd_path = tmp.path().join("sd.pt");
    let mut sd = checkpoint::StateDict::new();
    sd.insert(
        "t",
        checkpoint::RawTensor::from_f32(vec![3], &[1.0, 2.0, 3.0]),
    );
    pt::write_pt(&sd_path, &sd).unwrap();
    let e = Temperature::read(&sd_path).unwrap_err();
    assert!(
        openspliceai_rs::error_chain(&e).contains("not one tensor"),
        "{e}"
    );
}

/// `predict`, `variant` (through the ensemble) and `test` (through the model's eval pass) divide the
/// logits by the temperature before the softmax, bit for bit.
#[test]
fn temperature_divides_the_logits() {
    let dev = Device::Cpu;
    let cfg = &CONFIGS[0];
    let mut a = SpliceAi::new(cfg, 3, &dev).unwrap();
    let b = SpliceAi::new(cfg, 4, &dev).unwrap();
    let x = Tensor::rand(0f32, 1f32, (2, 4, cfg.input_len()), &dev).unwrap();
    let t = [1.7f32, 0.6, 2.3];
    let tt = Tensor::from_slice(&t, (1, 3, 1), &dev).unwrap();
    let expect = |m: &SpliceAi| {
        softmax_channels(&m.predict_logits(&x).unwrap().broadcast_div(&tt).unwrap()).unwrap()
    };
    let plain = a.predict(&x).unwrap();
    a.set_temperature(Some(t)).unwrap();
    let scaled = a.predict(&x).unwrap();
    let bits = |t: &Tensor| -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    assert_eq!(bits(&scaled), bits(&expect(&a)));
    assert_ne!(bits(&scaled), bits(&plain));
    // Without a temperature, the logits' softmax is the old prediction.
    a.set_temperature(None).unwrap();
    assert_eq!(bits(&a.predict(&x).unwrap()), bits(&plain));
    assert_eq!(
        bits(&softmax_channels(&a.predict_logits(&x).unwrap()).unwrap()),
        bits(&plain)
    );
    // The ensemble averages the calibrated probabilities.
    let tmp = tempfile::tempdir().unwrap();
    for (name, m) in [("a.pt", &a), ("b.pt", &b)] {
        checkpoint::save(&tmp.path().join(name), &io::state_dict(m).unwrap()).unwrap();
    }
    let mut ens = Ensemble::load(tmp.path(), cfg, &dev).unwrap();
    ens.set_temperature(Some(t)).unwrap();
    let mean = ((expect(&a) + expect(&b)).unwrap() / 2.0).unwrap();
    assert_eq!(bits(&ens.forward(&x).unwrap()), bits(&mean));
}

// ---------------------------------------------------------------------------------------------------
// The command on synthetic data

/// Example data (train, validation and test, 6 windows each) and a freshly initialised 80nt model.
struct Synthetic {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    model: PathBuf,
}

impl Synthetic {
    fn new() -> Self {
        use openspliceai_rs::data::example::{write_example_data, ExampleOptions};
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let opts = |seed| ExampleOptions {
            train_shards: 1,
            test_shards: 1,
            windows_per_shard: 6,
            seed,
            ..ExampleOptions::default()
        };
        write_example_data(&dir.join("data"), &opts(1)).unwrap();
        let other = write_example_data(&dir.join("other"), &opts(2)).unwrap();
        std::fs::rename(other.test, dir.join("data/dataset_validation.h5")).unwrap();
        let model = dir.join("model_80nt.pt");
        let m = SpliceAi::new(&CONFIGS[0], 11, &Device::Cpu).unwrap();
        checkpoint::save(&model, &io::state_dict(&m).unwrap()).unwrap();
        Self {
            _tmp: tmp,
            dir,
            model,
        }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.join(rel).to_string_lossy().into_owned()
    }

    /// `calibrate` with upstream's single-dash forms, into `out`, plus `extra`.
    fn calibrate(&self, out: &str, extra: &[&str]) -> Output {
        let (m, train, test, o) = (
            self.model.to_string_lossy().into_owned(),
            self.path("data/dataset_train.h5"),
            self.path("data/dataset_test.h5"),
            self.path(out),
        );
        let mut args = vec![
            "calibrate",
            "-m",
            &m,
            "-train",
            &train,
            "-test",
            &test,
            "-f",
            "80",
            "-o",
            &o,
            "-p",
            "synthetic",
            "--device",
            "cpu",
            "-q",
        ];
        args.extend_from_slice(extra);
        run(&args)
    }
}

/// The files upstream writes (but calibrated_model.pt), plus calibration.html.
fn expected_files(flank: usize, with_pt: bool) -> Vec<String> {
    let mut files = vec![
        "calibration.html".to_string(),
        "temperature.txt".to_string(),
    ];
    if with_pt {
        files.push("temperature.pt".into());
    }
    for split in ["test", "validation"] {
        let base = format!("calibration/results/{split}");
        files.push(format!("{base}/metrics_original.txt"));
        files.push(format!("{base}/metrics_calibrated.txt"));
        for class in CLASS_NAMES {
            for suffix in ["original", "calibrated"] {
                files.push(format!(
                    "{base}/calibration_data/calibration_data_{class}_{suffix}_{flank}nt.npz"
                ));
            }
        }
    }
    files.sort();
    files
}

fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A `.npy` member of an `.npz`: (descr, values as f64).
fn npz_member(path: &Path, name: &str) -> (String, Vec<f64>) {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut b = Vec::new();
    z.by_name(&format!("{name}.npy"))
        .unwrap()
        .read_to_end(&mut b)
        .unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    let descr = header.split('\'').nth(3).unwrap().to_string();
    let data = &b[10 + hlen..];
    let values = data
        .chunks_exact(8)
        .map(|c| match descr.as_str() {
            "<f8" => f64::from_le_bytes(c.try_into().unwrap()),
            "<i8" => i64::from_le_bytes(c.try_into().unwrap()) as f64,
            d => panic!("descr {d}"),
        })
        .collect();
    (descr, values)
}

#[test]
fn calibrate_writes_upstreams_files() {
    let s = Synthetic::new();
    let out = s.calibrate("out", &[]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Optimized temperature vector: ["),
        "{stdout}"
    );
    let dir = s.dir.join("out");
    assert_eq!(files_under(&dir), expected_files(80, true));
    // The temperature is the library's fit on the same logits.
    let (model, _) =
        openspliceai_rs::infer::load_strict(&s.model, &CONFIGS[0], &Device::Cpu).unwrap();
    let file = std::sync::Arc::new(
        openspliceai_rs::data::H5File::open(s.dir.join("data/dataset_validation.h5")).unwrap(),
    );
    let progress = openspliceai_rs::progress::Progress::new(false);
    let val = calibrate::collect(&model, file, 4, &progress, "validation").unwrap();
    assert_eq!((val.windows, val.data.len()), (6, 30_000));
    let t = fit(&val.data, &FitOptions::default(), &|| false)
        .unwrap()
        .temperature;
    let text = std::fs::read_to_string(dir.join("temperature.txt")).unwrap();
    assert_eq!(text, t.numpy_text());
    assert_eq!(Temperature::read(&dir.join("temperature.pt")).unwrap(), t);
    // Upstream's metrics text.
    let m =
        std::fs::read_to_string(dir.join("calibration/results/validation/metrics_calibrated.txt"))
            .unwrap();
    let want = calibrate::split_metrics(&val.data, t);
    assert_eq!(
        m,
        format!(
            "Calibrated_NLL\tCalibrated_ECE\n{:.8}\t{:.8}\n",
            want.nll as f64, want.ece as f64
        )
    );
    let m =
        std::fs::read_to_string(dir.join("calibration/results/test/metrics_original.txt")).unwrap();
    assert!(m.starts_with("Original_NLL\tOriginal_ECE\n"), "{m}");
    // The reliability curves, as np.load would read them; both files carry the original bin counts.
    let base = dir.join("calibration/results/validation/calibration_data");
    for (c, class) in CLASS_NAMES.iter().enumerate() {
        let orig = base.join(format!("calibration_data_{class}_original_80nt.npz"));
        let cal = base.join(format!("calibration_data_{class}_calibrated_80nt.npz"));
        let (d, pt) = npz_member(&cal, "prob_true");
        assert_eq!(d, "<f8");
        assert_eq!(pt, want.curves[c].prob_true);
        assert_eq!(npz_member(&cal, "prob_pred").1, want.curves[c].prob_pred);
        let (d, counts) = npz_member(&cal, "bin_counts");
        assert_eq!(d, "<i8");
        assert_eq!(counts.len(), 30);
        assert_eq!(counts, npz_member(&orig, "bin_counts").1);
    }
    let html = std::fs::read_to_string(dir.join("calibration.html")).unwrap();
    assert!(
        html.contains("Reliability") && html.matches("<svg").count() >= 14,
        "calibration.html"
    );
    // Self-contained: no scripts, nothing fetched.
    assert!(
        !html.contains("<script") && !html.contains("href=\"http") && !html.contains("src=\"http")
    );
}

/// `-T` skips the fit: the same temperature.txt and metrics from temperature.pt or temperature.txt, and
/// (as upstream) no new temperature.pt.
#[test]
fn temperature_file_round_trip() {
    let s = Synthetic::new();
    assert!(s.calibrate("fit", &[]).status.success());
    for (i, file) in ["fit/temperature.pt", "fit/temperature.txt"]
        .iter()
        .enumerate()
    {
        let out_name = format!("again{i}");
        let t = s.path(file);
        let out = s.calibrate(&out_name, &["-T", &t]);
        assert!(out.status.success());
        let (a, b) = (s.dir.join("fit"), s.dir.join(&out_name));
        assert_eq!(files_under(&b), expected_files(80, false));
        for rel in [
            "temperature.txt",
            "calibration/results/validation/metrics_calibrated.txt",
            "calibration/results/test/metrics_calibrated.txt",
            "calibration/results/test/metrics_original.txt",
        ] {
            assert_eq!(
                std::fs::read(a.join(rel)).unwrap(),
                std::fs::read(b.join(rel)).unwrap(),
                "{rel} from -T {file}"
            );
        }
    }
}

/// Fails with a message naming the problem, exit status ≠ 0, and no output directory.
fn assert_fails(out: Output, needles: &[&str], out_dir: &Path) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks `{n}`: {err}");
    }
    assert!(!out_dir.exists(), "{} was created", out_dir.display());
}

#[test]
fn bad_inputs_fail_clearly_without_output() {
    let s = Synthetic::new();
    let o = s.dir.join("out");
    // The validation file named after -train does not exist.
    std::fs::copy(
        s.dir.join("data/dataset_train.h5"),
        s.dir.join("data/fly_train.h5"),
    )
    .unwrap();
    let (m, test, o_s) = (
        s.model.to_string_lossy().into_owned(),
        s.path("data/dataset_test.h5"),
        o.to_string_lossy().into_owned(),
    );
    let base = |train: String| -> Vec<String> {
        [
            "calibrate",
            "-m",
            &m,
            "-train",
            &train,
            "-test",
            &test,
            "-f",
            "80",
            "-o",
            &o_s,
            "-p",
            "x",
            "-q",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let go = |args: Vec<String>, extra: &[&str]| {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend_from_slice(extra);
        run(&a)
    };
    assert_fails(
        go(base(s.path("data/fly_train.h5")), &[]),
        &["fly_validation.h5", "not found", "--validation-dataset"],
        &o,
    );
    std::fs::copy(
        s.dir.join("data/dataset_train.h5"),
        s.dir.join("data/fly.h5"),
    )
    .unwrap();
    assert_fails(
        go(base(s.path("data/fly.h5")), &[]),
        &["fly.h5", "no `train`"],
        &o,
    );
    let train = s.path("data/dataset_train.h5");
    assert_fails(
        go(
            base(train.clone()),
            &["--validation-dataset", &s.path("data/none.h5")],
        ),
        &["--validation-dataset", "none.h5: no such file"],
        &o,
    );
    // Temperature files: missing, of the wrong length, not a temperature.
    assert_fails(
        go(base(train.clone()), &["-T", &s.path("missing.txt")]),
        &["missing.txt", "cannot read"],
        &o,
    );
    let two = s.dir.join("two.txt");
    std::fs::write(&two, "[1.5 1.2]").unwrap();
    assert_fails(
        go(base(train.clone()), &["-T", two.to_str().unwrap()]),
        &["two.txt", "holds 2 temperature values"],
        &o,
    );
    let junk = s.dir.join("junk.pt");
    std::fs::write(&junk, b"PK\x03\x04 not really").unwrap();
    assert_fails(
        go(base(train.clone()), &["-T", junk.to_str().unwrap()]),
        &["junk.pt", "temperature.pt"],
        &o,
    );
    let text = s.dir.join("words.txt");
    std::fs::write(&text, "hello").unwrap();
    assert_fails(
        go(base(train.clone()), &["-T", text.to_str().unwrap()]),
        &["words.txt", "not a temperature file"],
        &o,
    );
    // A checkpoint of another flanking size.
    let mut args = base(train);
    let f = args.iter().position(|a| a == "80").unwrap();
    args[f] = "400".into();
    assert_fails(go(args, &[]), &["model_80nt.pt"], &o);
}

/// `test --temperature`: the identity changes nothing, a temperature gives the loss of the calibrated
/// probabilities.
#[test]
fn test_command_scores_the_calibrated_model() {
    let s = Synthetic::new();
    let (m, test) = (
        s.model.to_string_lossy().into_owned(),
        s.path("data/dataset_test.h5"),
    );
    let one = s.dir.join("one.txt");
    std::fs::write(&one, "[1. 1. 1.]").unwrap();
    let t = Temperature([2.0, 0.5, 1.25]);
    let tf = s.dir.join("t.txt");
    std::fs::write(&tf, t.numpy_text()).unwrap();
    let loss = |dir: &str, extra: &[&str]| -> f64 {
        let o = s.path(dir);
        let mut a = vec![
            "test", "-m", &m, "-test", &test, "-f", "80", "-o", &o, "--quiet", "--device", "cpu",
        ];
        a.extend_from_slice(extra);
        let out = run(&a);
        assert!(out.status.success());
        let j = std::fs::read_to_string(s.dir.join(dir).join("metrics.jsonl")).unwrap();
        let rec: Value = serde_json::from_str(j.lines().next().unwrap()).unwrap();
        rec["loss"].as_f64().unwrap()
    };
    let plain = loss("plain", &[]);
    assert_eq!(
        loss("one", &["--temperature", one.to_str().unwrap()]),
        plain
    );
    let scaled = loss("scaled", &["--temperature", tf.to_str().unwrap()]);
    assert_ne!(scaled, plain);
    // The cross-entropy (with upstream's 1e-10 inside the log) of softmax(logits / T) over every position.
    let (model, _) =
        openspliceai_rs::infer::load_strict(&s.model, &CONFIGS[0], &Device::Cpu).unwrap();
    let file = std::sync::Arc::new(openspliceai_rs::data::H5File::open(&test).unwrap());
    let c = calibrate::collect(
        &model,
        file,
        6,
        &openspliceai_rs::progress::Progress::new(false),
        "t",
    )
    .unwrap();
    let probs = metrics::probabilities(&c.data, t);
    let mut want = 0.0f64;
    for (i, &l) in c.data.labels().iter().enumerate() {
        want -= (probs[3 * i + l as usize] as f64 + 1e-10).ln();
    }
    want /= c.data.len() as f64;
    // Unlabelled positions count as class 0 in calibrate but contribute nothing to `test`'s loss: the
    // example data labels every position.
    assert!((scaled - want).abs() < 1e-5 * want, "{scaled} vs {want}");
}

// ---------------------------------------------------------------------------------------------------
// Against upstream on real data (shared data; skipped without it, required under CI=true)

/// The whole command on the fly chr2L data with the 400nt OpenSpliceAI-MANE model, beside upstream's run
/// (tests/data/calibrate/chr2L-400nt): the same number of steps, temperatures within 1e-5, NLL within
/// 1e-4 and ECE within 1e-2 (relative), the same reliability bins.
#[test]
fn chr2l_400nt_matches_upstream() {
    let Some(d) = common::dmel_dir() else { return };
    let Some(model) = common::mane_checkpoint(400) else {
        return;
    };
    let up = data_dir().join("chr2L-400nt");
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("out");
    let out = run(&[
        "calibrate",
        "-m",
        model.to_str().unwrap(),
        "-train",
        d.join("dataset_train.h5").to_str().unwrap(),
        "-test",
        d.join("dataset_test.h5").to_str().unwrap(),
        "-f",
        "400",
        "-o",
        o.to_str().unwrap(),
        "-p",
        "chr2L",
        "-q",
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let trajectory: Value =
        serde_json::from_str(&std::fs::read_to_string(up.join("trajectory.json")).unwrap())
            .unwrap();
    let steps = trajectory.as_array().unwrap().len();
    assert!(
        stdout.contains(&format!("Fitted in {steps} steps")),
        "{stdout}"
    );
    let ours = Temperature::read(&o.join("temperature.txt")).unwrap();
    let theirs = Temperature::read(&up.join("temperature.pt")).unwrap();
    for (a, b) in ours.0.iter().zip(theirs.0) {
        assert!((a - b).abs() < 1e-5, "temperature {ours} vs {theirs}");
    }
    for split in ["validation", "test"] {
        for m in ["original", "calibrated"] {
            let read = |p: PathBuf| -> (f64, f64) {
                let t = std::fs::read_to_string(&p).unwrap();
                let v: Vec<f64> = t
                    .lines()
                    .nth(1)
                    .unwrap()
                    .split('\t')
                    .map(|x| x.parse().unwrap())
                    .collect();
                (v[0], v[1])
            };
            let (nll, ece) = read(o.join(format!("calibration/results/{split}/metrics_{m}.txt")));
            let (unll, uece) = read(up.join(format!("{split}/metrics_{m}.txt")));
            assert!(
                (nll - unll).abs() <= 1e-4 * unll,
                "{split} {m}: NLL {nll} vs {unll}"
            );
            assert!(
                (ece - uece).abs() <= 1e-2 * uece,
                "{split} {m}: ECE {ece} vs {uece}"
            );
        }
        for class in CLASS_NAMES {
            for suffix in ["original", "calibrated"] {
                let name = format!("calibration_data_{class}_{suffix}_400nt.npz");
                let a = o.join(format!(
                    "calibration/results/{split}/calibration_data/{name}"
                ));
                let b = up.join(split).join(&name);
                let (ca, cb) = (
                    npz_member(&a, "bin_counts").1,
                    npz_member(&b, "bin_counts").1,
                );
                let moved: f64 = ca.iter().zip(&cb).map(|(x, y)| (x - y).abs()).sum();
                assert!(moved <= 2.0, "{split} {name}: bin counts {ca:?} vs {cb:?}");
                if moved == 0.0 {
                    let (pa, pb) = (npz_member(&a, "prob_pred").1, npz_member(&b, "prob_pred").1);
                    assert_eq!(pa.len(), pb.len());
                    for (x, y) in pa.iter().zip(&pb) {
                        assert!((x - y).abs() < 1e-4, "{split} {name}: {x} vs {y}");
                    }
                }
            }
        }
    }
}

/// `predict` and `variant` take `--temperature`: the identity leaves their files byte-identical; a
/// uniform temperature gives `softmax(log p / T)` of the uncalibrated scores (the same as dividing the
/// logits when every class has the same T).
#[test]
fn predict_and_variant_take_a_temperature() {
    let Some(pv) = common::PvData::locate() else {
        return;
    };
    let Some(model) = common::mane_checkpoint(80) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one.txt");
    std::fs::write(&one, "[1. 1. 1.]").unwrap();
    let two = tmp.path().join("two.txt");
    std::fs::write(&two, "[2. 2. 2.]").unwrap();
    let skew = tmp.path().join("skew.txt");
    std::fs::write(&skew, "[3.  0.5 0.5]").unwrap();
    let m = model.to_str().unwrap();
    let fa = pv.input("mini.fa");
    let predict = |name: &str, extra: &[&str]| -> PathBuf {
        let o = tmp.path().join(name);
        let mut a = vec![
            "predict",
            "-q",
            "-i",
            fa.to_str().unwrap(),
            "-m",
            m,
            "-f",
            "80",
            "-p",
            "-o",
            o.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        assert!(run(&a).status.success());
        o.join("SpliceAI_5000_80")
    };
    let plain = predict("plain", &[]);
    let ident = predict("one", &["--temperature", one.to_str().unwrap()]);
    let halved = predict("two", &["--temperature", two.to_str().unwrap()]);
    for bed in ["acceptor_predictions.bed", "donor_predictions.bed"] {
        assert_eq!(
            std::fs::read(plain.join(bed)).unwrap(),
            std::fs::read(ident.join(bed)).unwrap()
        );
    }
    let scores = |d: &Path| -> Vec<f32> {
        let f = hdf5_reader::Hdf5File::open(d.join("predict.h5")).unwrap();
        f.dataset("predictions")
            .unwrap()
            .read_array::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    };
    let (p, h) = (scores(&plain), scores(&halved));
    assert_eq!(p.len(), h.len());
    let mut worst = 0.0f64;
    // predictions is (windows, 3, 5000): softmax over the class axis of log(p) / 2.
    for (pw, hw) in p.chunks_exact(15_000).zip(h.chunks_exact(15_000)) {
        for j in 0..5000 {
            let lp: Vec<f64> = (0..3)
                .map(|c| (pw[c * 5000 + j] as f64).max(1e-38).ln() / 2.0)
                .collect();
            let mx = lp.iter().cloned().fold(f64::MIN, f64::max);
            let s: f64 = lp.iter().map(|v| (v - mx).exp()).sum();
            for c in 0..3 {
                let want = (lp[c] - mx).exp() / s;
                worst = worst.max((hw[c * 5000 + j] as f64 - want).abs());
            }
        }
    }
    assert!(worst < 1e-5, "predict --temperature: off by {worst}");
    // variant
    let genes = pv.input("genes_region200k.txt");
    let vcf = pv.input("variants.vcf");
    let rfa = pv.input("region200k.fa");
    let variant = |name: &str, extra: &[&str]| -> Vec<u8> {
        let o = tmp.path().join(name);
        let mut a = vec![
            "variant",
            "-q",
            "--no-provenance",
            "-R",
            rfa.to_str().unwrap(),
            "-A",
            genes.to_str().unwrap(),
            "-I",
            vcf.to_str().unwrap(),
            "-m",
            m,
            "-f",
            "80",
            "-O",
            o.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        assert!(run(&a).status.success());
        std::fs::read(o).unwrap()
    };
    let v_plain = variant("plain.vcf", &[]);
    assert_eq!(
        variant("one.vcf", &["--temperature", one.to_str().unwrap()]),
        v_plain
    );
    assert_ne!(
        variant("skew.vcf", &["--temperature", skew.to_str().unwrap()]),
        v_plain
    );
    // A bad temperature file stops both before any output.
    let bad = tmp.path().join("bad.txt");
    std::fs::write(&bad, "[1 2]").unwrap();
    let o = tmp.path().join("bad_out");
    let out = run(&[
        "predict",
        "-q",
        "-i",
        fa.to_str().unwrap(),
        "-m",
        m,
        "-f",
        "80",
        "-o",
        o.to_str().unwrap(),
        "--temperature",
        bad.to_str().unwrap(),
    ]);
    assert_fails(out, &["bad.txt", "holds 2 temperature values"], &o);
}

/// `--format svg|png` writes each chart of calibration.html beside it as its own file: the same charts,
/// SVG that parses, PNG with its signature; without `--format` no chart file is written.
#[test]
fn format_writes_each_chart_on_its_own() {
    let s = Synthetic::new();
    let chart_files = |dir: &Path, ext: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with("calibration-") && n.ends_with(ext)
            })
            .collect();
        v.sort();
        v
    };
    for (format, ext) in [("svg", ".svg"), ("png", ".png")] {
        let out = s.calibrate(format, &["--format", format]);
        assert!(out.status.success(), "--format {format}");
        let dir = s.dir.join(format);
        let files = chart_files(&dir, ext);
        let html = std::fs::read_to_string(dir.join("calibration.html")).unwrap();
        // One file per inline chart: the fit's two, the calibration map, and per split 3 reliability, 3
        // score, 1 Brier.
        assert_eq!(
            files.len(),
            html.matches("<svg").count(),
            "--format {format}"
        );
        assert_eq!(files.len(), 3 + 2 * 7, "{files:?}");
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            if format == "png" {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", f.display());
            } else {
                let text = String::from_utf8(bytes).unwrap();
                roxmltree::Document::parse(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            }
        }
    }
    let out = s.calibrate("none", &[]);
    assert!(out.status.success());
    assert!(chart_files(&s.dir.join("none"), "").is_empty());
}
