//! End-to-end tests of `train`, `transfer` and `test` through the real binary on small synthetic data
//! (80nt, CPU): the run directory and its LOG/ files, metrics.jsonl, checkpoints that load back,
//! `model_best.pt` bookkeeping, early stopping, `--overwrite`, argument and input errors, SIGKILL safety and
//! non-finite losses.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use candle_core::Device;
use openspliceai_rs::checkpoint::{self, RawTensor, StateDict};
use openspliceai_rs::data::example::write_create_data_file;
use openspliceai_rs::data::{SEQ_LEN, X_LEN};
use openspliceai_rs::model::{io, FlankConfig, SpliceAi};

const BIN: &str = env!("CARGO_BIN_EXE_openspliceai-rs");

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

/// A training and a test HDF5.
struct Data {
    train: PathBuf,
    test: PathBuf,
}

/// Synthetic data: `shards` × `windows` training windows, one test shard of `windows` windows.
fn example_data(dir: &Path, shards: usize, windows: usize, seed: u64) -> Data {
    let p = common::example_data(dir, shards, windows, seed);
    Data {
        train: p.train,
        test: p.test,
    }
}

/// 2 × 8 training windows (14 train + 2 validation: 2 batches of 8), 8 test windows.
fn small_data(dir: &Path) -> Data {
    example_data(dir, 2, 8, 11)
}

/// 5 training windows (4 train + 1 validation: 1 batch of 4), 5 test windows: for cheap runs.
fn tiny_data(dir: &Path) -> Data {
    example_data(dir, 1, 5, 12)
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

fn tail(text: &[u8], n: usize) -> String {
    let t = String::from_utf8_lossy(text);
    let start = t.len().saturating_sub(n);
    let start = (start..t.len())
        .find(|&i| t.is_char_boundary(i))
        .unwrap_or(t.len());
    t[start..].to_string()
}

fn describe(args: &[String], out: &Output) -> String {
    format!(
        "`openspliceai-rs {}` exited with {:?}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
        args.join(" "),
        out.status.code(),
        tail(&out.stdout, 3000),
        tail(&out.stderr, 3000)
    )
}

/// Runs the binary to completion; asserts it never panicked.
fn cli(args: &[String]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .expect("spawning openspliceai-rs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some(),
        "the binary was killed by a signal: {}",
        describe(args, &out)
    );
    assert!(
        !stderr.contains("panicked"),
        "the binary panicked: {}",
        describe(args, &out)
    );
    out
}

fn cli_ok(args: &[String]) -> Output {
    let out = cli(args);
    assert!(
        out.status.success(),
        "expected success: {}",
        describe(args, &out)
    );
    out
}

/// Runs the binary expecting failure; returns stderr.
fn cli_err(args: &[String]) -> String {
    let out = cli(args);
    assert!(
        !out.status.success(),
        "expected a non-zero exit: {}",
        describe(args, &out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    for line in stderr.lines().filter(|l| l.starts_with("error: ")) {
        let parts: Vec<&str> = line.split(": ").collect();
        assert!(
            parts.windows(2).all(|w| w[0] != w[1]),
            "the error message repeats its cause: {line}"
        );
    }
    stderr
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|a| a.to_string()).collect()
}

/// `train` arguments with upstream's single-dash `-train`/`-test`.
fn train_args(data: &Data, out: &Path, project: &str, epochs: usize, batch: usize) -> Vec<String> {
    let mut a = strs(&["train", "-train"]);
    a.push(s(&data.train));
    a.push("-test".into());
    a.push(s(&data.test));
    a.extend(strs(&["-o"]));
    a.push(s(out));
    a.extend(strs(&["-p", project, "-n"]));
    a.push(epochs.to_string());
    a.push("--batch-size".into());
    a.push(batch.to_string());
    a.extend(strs(&["--device", "cpu", "--quiet"]));
    a
}

/// `transfer` arguments: the `train` ones plus `-m`.
fn transfer_args(
    data: &Data,
    out: &Path,
    project: &str,
    epochs: usize,
    batch: usize,
    pretrained: &Path,
) -> Vec<String> {
    let mut a = train_args(data, out, project, epochs, batch);
    a[0] = "transfer".into();
    a.push("-m".into());
    a.push(s(pretrained));
    a
}

/// `{out}/SpliceAI_{project}_80_0_rs{seed}/0/`.
fn run_dir(out: &Path, project: &str, seed: u64) -> PathBuf {
    run_dir_exp(out, project, "0", seed)
}

/// `{out}/SpliceAI_{project}_80_{exp}_rs{seed}/{exp}/`.
fn run_dir_exp(out: &Path, project: &str, exp: &str, seed: u64) -> PathBuf {
    out.join(format!("SpliceAI_{project}_80_{exp}_rs{seed}"))
        .join(exp)
}

fn read_lines(path: &Path) -> Vec<String> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} has a torn last line: {:?}",
        path.display(),
        tail(text.as_bytes(), 200)
    );
    text.lines().map(str::to_string).collect()
}

/// Every line of a LOG file parsed as numbers (tab-separated fields for `*_topk_all.txt`).
fn read_numbers(path: &Path) -> Vec<Vec<f64>> {
    read_lines(path)
        .iter()
        .enumerate()
        .map(|(i, line)| {
            line.split('\t')
                .map(|f| {
                    f.parse::<f64>().unwrap_or_else(|_| {
                        panic!(
                            "{} line {}: `{line}` is not a number",
                            path.display(),
                            i + 1
                        )
                    })
                })
                .collect()
        })
        .collect()
}

/// A single-value-per-line LOG file.
fn read_values(path: &Path) -> Vec<f64> {
    read_numbers(path)
        .into_iter()
        .map(|fields| {
            assert_eq!(
                fields.len(),
                1,
                "{}: one value per line expected",
                path.display()
            );
            fields[0]
        })
        .collect()
}

fn log_file(run: &Path, split: &str, name: &str) -> PathBuf {
    run.join("LOG").join(split).join(format!("{name}.txt"))
}

/// The 19 file names of the upstream run's LOG/{TRAIN,VAL,TEST}.
fn upstream_log_names() -> Option<BTreeSet<String>> {
    let dir = common::fixture("upstream-run/LOG")?;
    let mut per_split = Vec::new();
    for split in ["TRAIN", "VAL", "TEST"] {
        per_split.push(file_names(&dir.join(split)));
    }
    assert!(
        per_split.iter().all(|n| *n == per_split[0]),
        "the upstream fixture's splits differ"
    );
    assert_eq!(
        per_split[0].len(),
        19,
        "the upstream fixture has 19 files per split"
    );
    Some(per_split.swap_remove(0))
}

fn file_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Epoch numbers of `models/model_{e}.pt` (sorted).
fn epoch_checkpoints(run: &Path) -> Vec<usize> {
    let mut v: Vec<usize> = file_names(&run.join("models"))
        .iter()
        .filter_map(|n| n.strip_prefix("model_")?.strip_suffix(".pt")?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// Loads a checkpoint completely into a fresh 80nt model: every tensor present, matched, finite.
fn load_complete(path: &Path) -> SpliceAi {
    let sd = checkpoint::load(path).unwrap_or_else(|e| panic!("loading {}: {e}", path.display()));
    let config = FlankConfig::for_flank(80).expect("80nt config");
    let mut model = SpliceAi::new(config, 0, &Device::Cpu).expect("fresh model");
    let expected = io::expected(&model).len();
    let report = io::load_state_dict(&mut model, &sd, path)
        .unwrap_or_else(|e| panic!("load_state_dict {}: {e}", path.display()));
    assert!(
        report.missing.is_empty() && report.ignored.is_empty() && report.loaded.len() == expected,
        "{}: not a complete 80nt state dict: {report}",
        path.display()
    );
    for (name, t) in sd.iter() {
        if t.dtype.is_float() {
            let v = t.to_f32_vec().expect("f32 values");
            assert!(
                v.iter().all(|x| x.is_finite()),
                "{}: tensor {name} holds non-finite values",
                path.display()
            );
        }
    }
    assert!(
        io::all_finite(&model).expect("all_finite"),
        "{}: non-finite model",
        path.display()
    );
    model
}

fn parse_jsonl(run: &Path) -> Vec<serde_json::Value> {
    let path = run.join("metrics.jsonl");
    read_lines(&path)
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!("{} line {}: not JSON ({e}): {l}", path.display(), i + 1)
            })
        })
        .collect()
}

/// The epoch of the first minimum of the validation losses (the strictly-better rule).
fn first_argmin(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x < v[best] {
            best = i;
        }
    }
    best
}

/// What a finished run directory must hold.
#[derive(Debug, Clone, Copy)]
struct Expect {
    /// Epochs the run went through.
    epochs: usize,
    /// Batches per epoch of training, validation and test.
    batches: [usize; 3],
    /// `transfer` (a zero-shot baseline at epoch -1 in metrics.jsonl).
    transfer: bool,
}

/// A `train` run on [`tiny_data`] with batch size 4: 1 training batch, 1 validation, 2 test batches.
fn tiny(epochs: usize) -> Expect {
    Expect {
        epochs,
        batches: [1, 1, 2],
        transfer: false,
    }
}

/// A `train` run on [`tiny_data`] with batch size 5 and the 2-window adversarial validation file.
fn adversarial(epochs: usize) -> Expect {
    Expect {
        epochs,
        batches: [1, 1, 1],
        transfer: false,
    }
}

/// Checks a finished run directory: LOG files and their line counts, checkpoints that load back,
/// model_best.pt bookkeeping, metrics.jsonl. Returns the validation losses.
fn check_run_dir(run: &Path, x: Expect) -> Vec<f64> {
    let epochs_run = x.epochs;
    assert!(run.is_dir(), "run directory {} missing", run.display());
    // LOG/: exactly upstream's file names, per-epoch files with one line per epoch.
    let ours: BTreeSet<String> = openspliceai_rs::train::run_log::LOG_FILES
        .iter()
        .map(|n| format!("{n}.txt"))
        .collect();
    for split in ["TRAIN", "VAL", "TEST"] {
        assert_eq!(
            file_names(&run.join("LOG").join(split)),
            ours,
            "LOG/{split} file names"
        );
    }
    if let Some(names) = upstream_log_names() {
        for split in ["TRAIN", "VAL", "TEST"] {
            assert_eq!(
                file_names(&run.join("LOG").join(split)),
                names,
                "LOG/{split} file names differ from the upstream run's"
            );
        }
    }
    for split in ["TRAIN", "VAL", "TEST"] {
        for name in openspliceai_rs::train::run_log::LOG_FILES {
            let path = log_file(run, split, name);
            let rows = read_numbers(&path);
            let per_epoch_batches = x.batches[["TRAIN", "VAL", "TEST"]
                .iter()
                .position(|s| *s == split)
                .unwrap()];
            let expected = match (split, name) {
                ("TRAIN", "loss_every_update" | "learning_rate_every_batch") => {
                    per_epoch_batches * epochs_run
                }
                ("TRAIN", "learning_rate_every_epoch") => epochs_run,
                (_, "learning_rate_every_epoch" | "learning_rate_every_batch") => 0,
                (_, "loss_every_update") => per_epoch_batches * epochs_run,
                _ => epochs_run,
            };
            assert_eq!(
                rows.len(),
                expected,
                "{}: wrong number of lines",
                path.display()
            );
            let width = if name.ends_with("topk_all") { 10 } else { 1 };
            for r in &rows {
                assert_eq!(
                    r.len(),
                    width,
                    "{}: {width} fields per line expected",
                    path.display()
                );
                assert!(
                    r.iter().all(|x| x.is_finite()),
                    "{}: non-finite value",
                    path.display()
                );
            }
        }
    }
    for lr in read_values(&log_file(run, "TRAIN", "learning_rate_every_batch")) {
        assert!(lr > 0.0 && lr <= 1e-3, "learning rate {lr} out of range");
    }

    // Checkpoints: one per epoch plus model_best.pt, all loadable.
    assert_eq!(
        epoch_checkpoints(run),
        (0..epochs_run).collect::<Vec<_>>(),
        "models/model_{{e}}.pt files of {}",
        run.display()
    );
    let models = run.join("models");
    let names = file_names(&models);
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("model_") && n.ends_with(".pt")),
        "unexpected files in {}: {names:?}",
        models.display()
    );
    for e in 0..epochs_run {
        load_complete(&models.join(format!("model_{e}.pt")));
    }
    let best = models.join("model_best.pt");
    load_complete(&best);

    // model_best.pt holds exactly the state dict of the first epoch with the lowest validation loss, and is
    // byte-identical to that epoch's checkpoint but for the archive prefix (`model_best/` vs `model_{b}/`, the
    // file stem, as torch.save names it): re-encoding model_{b}.pt under `model_best` gives its bytes.
    let val = read_values(&log_file(run, "VAL", "loss_batch"));
    let b = first_argmin(&val);
    let epoch_path = models.join(format!("model_{b}.pt"));
    let best_sd = checkpoint::load(&best).unwrap();
    let epoch_sd = checkpoint::load(&epoch_path).unwrap();
    assert!(
        best_sd == epoch_sd,
        "model_best.pt holds other weights than model_{b}.pt, the epoch of the lowest validation loss \
         (VAL losses {val:?})"
    );
    let reencoded = checkpoint::encode_pt(&best, "model_best", &epoch_sd).unwrap();
    assert!(
        std::fs::read(&best).unwrap() == reencoded,
        "model_best.pt is not byte-identical to model_{b}.pt re-archived as `model_best/`"
    );
    for e in (0..epochs_run).filter(|&e| e != b) {
        let other = checkpoint::load(&models.join(format!("model_{e}.pt"))).unwrap();
        if other == best_sd {
            // Only possible if epoch e did not change the weights at all.
            assert_eq!(
                val[e], val[b],
                "model_best.pt equals model_{e}.pt but their VAL losses differ"
            );
        }
    }

    // metrics.jsonl: train/val/test per epoch (+ the zero-shot val/test at epoch -1 for transfer).
    let records = parse_jsonl(run);
    let mut seen: Vec<(i64, String)> = records
        .iter()
        .map(|r| {
            for key in ["loss", "seconds", "windows_per_s", "accuracy"] {
                assert!(
                    r[key].is_number(),
                    "metrics.jsonl: `{key}` missing or not a number in {r}"
                );
            }
            assert!(r.get("lr").is_some(), "metrics.jsonl: `lr` missing in {r}");
            for site in ["acceptor", "donor"] {
                assert!(
                    r[site]["auprc"].is_number() && r[site]["topk"].is_number(),
                    "metrics.jsonl: `{site}.auprc`/`{site}.topk` missing in {r}"
                );
            }
            let epoch = r["epoch"].as_i64().expect("integer epoch");
            if epoch >= 0 {
                assert!(
                    r["lr"].is_number(),
                    "metrics.jsonl: epoch {epoch} has no lr: {r}"
                );
            }
            (epoch, r["split"].as_str().expect("split").to_string())
        })
        .collect();
    let mut want: Vec<(i64, String)> = Vec::new();
    if x.transfer {
        want.push((-1, "val".into()));
        want.push((-1, "test".into()));
    }
    for e in 0..epochs_run as i64 {
        for split in ["train", "val", "test"] {
            want.push((e, split.into()));
        }
    }
    seen.sort();
    want.sort();
    assert_eq!(seen, want, "metrics.jsonl (epoch, split) records");
    // The jsonl's val loss is the LOG's.
    for r in &records {
        let e = r["epoch"].as_i64().unwrap();
        if e >= 0 && r["split"] == "val" {
            let l = r["loss"].as_f64().unwrap();
            assert!(
                (l - val[e as usize]).abs() <= 1e-12 * l.abs().max(1.0),
                "metrics.jsonl val loss {l} at epoch {e} != VAL/loss_batch.txt {}",
                val[e as usize]
            );
        }
    }
    val
}

/// The early-stopping rule: how many epochs a run with these validation losses goes through, and whether
/// early stopping triggers (it can trigger at the last epoch too).
fn epochs_by_rule(val: &[f64], epochs: usize, patience: Option<usize>) -> (usize, bool) {
    let mut best = f64::INFINITY;
    let mut bad = 0;
    for (e, &v) in val.iter().enumerate() {
        if v < best {
            best = v;
            bad = 0;
        } else {
            bad += 1;
        }
        if patience.is_some_and(|p| bad >= p) {
            return (e + 1, true);
        }
    }
    (epochs, false)
}

/// A fresh (untrained) 80nt model's state dict, optionally with a poisoned `final_conv.weight[0]`.
fn fresh_checkpoint(path: &Path, seed: u64, nan: bool) {
    fresh_checkpoint_with(path, seed, if nan { Some(f32::NAN) } else { None })
}

/// A fresh 80nt model's state dict with `final_conv.weight[0]` set to `poison` if given.
fn fresh_checkpoint_with(path: &Path, seed: u64, poison: Option<f32>) {
    let nan = poison.is_some();
    let config = FlankConfig::for_flank(80).expect("80nt config");
    let model = SpliceAi::new(config, seed, &Device::Cpu).expect("fresh model");
    let mut sd = io::state_dict(&model).expect("state dict");
    if nan {
        let t = sd
            .get("final_conv.weight")
            .expect("final_conv.weight")
            .clone();
        let mut v = t.to_f32_vec().expect("f32");
        v[0] = poison.unwrap_or(f32::NAN);
        sd.insert(
            "final_conv.weight",
            RawTensor::from_f32(t.shape.clone(), &v),
        );
    }
    checkpoint::save(path, &sd).expect("saving the checkpoint");
}

// ---------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------

/// `train` then `test` then `transfer` from the trained `model_best.pt`, with every output checked.
#[test]
fn train_then_test_then_transfer_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_data(&tmp.path().join("data"));
    let out = tmp.path().join("runs");

    // train: 2 epochs of 2 batches (14 windows, batch 8).
    let out_train = cli_ok(&train_args(&data, &out, "scratch", 2, 8));
    let stdout = String::from_utf8_lossy(&out_train.stdout);
    assert!(
        stdout.contains("train 14 windows (2 batches of 8), validation 2, test 8"),
        "unexpected split/batching summary:\n{}",
        tail(&out_train.stdout, 3000)
    );
    let scratch = run_dir(&out, "scratch", 42);
    check_run_dir(
        &scratch,
        Expect {
            epochs: 2,
            batches: [2, 1, 1],
            transfer: false,
        },
    );
    // From scratch: lr 1e-3, MultiStepLR milestones [-3, -2, -1, 0, 1] for E = 2: after the first batch the
    // lr is 1e-3 * 0.5^4.
    let lrs = read_values(&log_file(&scratch, "TRAIN", "learning_rate_every_batch"));
    assert!(
        (lrs[0] - 1e-3 * 0.5f64.powi(4)).abs() < 1e-15,
        "lr after batch 0: {}",
        lrs[0]
    );

    // test: scores model_best.pt exactly as the run's TEST pass of that epoch did.
    let best = scratch.join("models/model_best.pt");
    let test_out = tmp.path().join("test_out");
    let mut a = strs(&["test", "-m"]);
    a.push(s(&best));
    a.push("-test".into());
    a.push(s(&data.test));
    a.extend(strs(&["-f", "80", "-o"]));
    a.push(s(&test_out));
    a.extend(strs(&["--device", "cpu", "--quiet", "--batch-size", "8"]));
    cli_ok(&a);
    let test_dir = test_out.join("LOG/TEST");
    for name in openspliceai_rs::train::run_log::LOG_FILES {
        let rows = read_numbers(&test_dir.join(format!("{name}.txt")));
        let want = match name {
            "learning_rate_every_epoch" | "learning_rate_every_batch" => 0,
            _ => 1, // 8 test windows = one batch of 8
        };
        assert_eq!(rows.len(), want, "test -o: LOG/TEST/{name}.txt lines");
    }
    let val = read_values(&log_file(&scratch, "VAL", "loss_batch"));
    let best_epoch = first_argmin(&val);
    let run_test_loss = read_values(&log_file(&scratch, "TEST", "loss_batch"))[best_epoch];
    let test_loss = read_values(&test_dir.join("loss_batch.txt"))[0];
    assert!(
        (test_loss - run_test_loss).abs() <= 1e-6 * run_test_loss,
        "`test` on model_best.pt gives loss {test_loss}, the run's TEST loss of epoch {best_epoch} was {run_test_loss}"
    );

    // transfer from the trained model: zero-shot baseline (epoch -1), 2 epochs, --unfreeze 1 by default;
    // another experiment name and seed (the seed also draws another validation split).
    let mut a = transfer_args(&data, &out, "ft", 2, 8, &best);
    a.extend(strs(&["-e", "exp1", "-r", "5"]));
    let out_tr = cli_ok(&a);
    let stdout = String::from_utf8_lossy(&out_tr.stdout);
    assert!(
        stdout.contains("8 trainable tensors"),
        "--unfreeze 1 should train the 8 tensors of the last residual unit:\n{}",
        tail(&out_tr.stdout, 3000)
    );
    let ft = run_dir_exp(&out, "ft", "exp1", 5);
    check_run_dir(
        &ft,
        Expect {
            epochs: 2,
            batches: [2, 1, 1],
            transfer: true,
        },
    );
    let lrs = read_values(&log_file(&ft, "TRAIN", "learning_rate_every_batch"));
    assert!(
        lrs.iter().all(|&lr| lr <= 1e-4),
        "transfer lr must start at 1e-4: {lrs:?}"
    );
    // The zero-shot baseline of the trained model equals the scratch run's scores of its best epoch.
    let records = parse_jsonl(&ft);
    let zero_shot_test = records
        .iter()
        .find(|r| r["epoch"] == -1 && r["split"] == "test")
        .expect("zero-shot test record")["loss"]
        .as_f64()
        .unwrap();
    assert!(
        (zero_shot_test - run_test_loss).abs() <= 1e-6 * run_test_loss,
        "zero-shot test loss {zero_shot_test} != the pretrained run's best-epoch TEST loss {run_test_loss}"
    );
    // Frozen layers stay as loaded: initial_conv and final_conv of every epoch equal the pretrained ones.
    let pre = checkpoint::load(&best).unwrap();
    for e in 0..2 {
        let sd = checkpoint::load(&ft.join(format!("models/model_{e}.pt"))).unwrap();
        for name in [
            "initial_conv.weight",
            "final_conv.weight",
            "residual_units.0.conv1.weight",
        ] {
            assert_eq!(
                sd.get(name),
                pre.get(name),
                "frozen {name} changed in model_{e}.pt"
            );
        }
        assert_ne!(
            sd.get("residual_units.3.conv2.weight"),
            pre.get("residual_units.3.conv2.weight"),
            "the unfrozen last unit did not change in model_{e}.pt"
        );
    }
}

/// `transfer` from the real OpenSpliceAI-MANE 80nt checkpoint (a PyTorch archive saved on a GPU): every tensor
/// loads, and the run completes with checkpoints that load back.
#[test]
fn transfer_from_the_real_mane_checkpoint() {
    let Some(mane) = common::mane_checkpoint(80) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(&tmp.path().join("data"));
    let out = tmp.path().join("runs");
    let o = cli_ok(&transfer_args(&data, &out, "mane", 1, 4, &mane));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("loaded 64 tensors, 0 missing, 0 ignored"),
        "the MANE checkpoint should load completely:\n{}",
        tail(&o.stdout, 3000)
    );
    check_run_dir(
        &run_dir(&out, "mane", 42),
        Expect {
            epochs: 1,
            batches: [1, 1, 2],
            transfer: true,
        },
    );
}

/// A validation file whose labels say "acceptor" everywhere: training (which learns "non-splice" almost
/// everywhere) makes its loss worse every epoch after the first.
fn adversarial_validation(path: &Path, n: usize) {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut x = vec![0u8; n * X_LEN * 4];
    for row in x.chunks_exact_mut(4) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        row[(state % 4) as usize] = 1;
    }
    let mut y = vec![0u8; n * SEQ_LEN * 3];
    for row in y.chunks_exact_mut(3) {
        row[1] = 1;
    }
    write_create_data_file(path, &[(n, x, y)]).expect("writing the validation file");
}

/// model_best.pt is written only when the validation loss improves (with or without early stopping), and
/// `-E -P 1` stops right after the first epoch that does not improve.
#[test]
fn model_best_and_early_stopping_on_a_worsening_validation_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(&tmp.path().join("data"));
    let val = tmp.path().join("data/adversarial_val.h5");
    adversarial_validation(&val, 2);
    let out = tmp.path().join("runs");

    // Without early stopping: every epoch runs, model_best.pt stays the first epoch's.
    let mut a = train_args(&data, &out, "noes", 3, 5);
    a.push("--validation-dataset".into());
    a.push(s(&val));
    cli_ok(&a);
    let run = run_dir(&out, "noes", 42);
    let losses = check_run_dir(&run, adversarial(3));
    assert!(
        losses.windows(2).all(|w| w[1] >= w[0]),
        "the adversarial validation loss should worsen every epoch: {losses:?}"
    );
    assert_eq!(first_argmin(&losses), 0);

    // With -E -P 1: stops after epoch 2 (the first non-improving one).
    let mut a = train_args(&data, &out, "es", 6, 5);
    a.extend(strs(&["-E", "-P", "1", "--validation-dataset"]));
    a.push(s(&val));
    let o = cli_ok(&a);
    let run = run_dir(&out, "es", 42);
    let losses = read_values(&log_file(&run, "VAL", "loss_batch"));
    assert_eq!(
        losses.len(),
        2,
        "-E -P 1 should stop after the second epoch (VAL losses {losses:?})"
    );
    check_run_dir(&run, adversarial(2));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Early stopping triggered."),
        "no early-stopping message:\n{}",
        tail(&o.stdout, 2000)
    );

    // -E -P 2: the same losses stop it after the third epoch.
    let mut a = train_args(&data, &out, "es2", 6, 5);
    a.extend(strs(&["-E", "-P", "2", "--validation-dataset"]));
    a.push(s(&val));
    cli_ok(&a);
    let run = run_dir(&out, "es2", 42);
    let losses = read_values(&log_file(&run, "VAL", "loss_batch"));
    assert_eq!(
        losses.len(),
        3,
        "-E -P 2 should stop after 3 epochs (VAL losses {losses:?})"
    );
    check_run_dir(&run, adversarial(3));
}

/// `-n 6 -E -P 1` on ordinary data: whatever the losses do, the run follows the rule (all epochs improve,
/// or it stops right after the first one that does not), and logs and checkpoints agree.
#[test]
fn early_stopping_follows_the_rule_on_ordinary_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(&tmp.path().join("data"));
    let out = tmp.path().join("runs");
    let pre = tmp.path().join("fresh.pt");
    fresh_checkpoint(&pre, 3, false);
    let mut a = transfer_args(&data, &out, "rule", 6, 4, &pre);
    a.extend(strs(&["-E", "-P", "1", "-A", "-r", "7"]));
    let o = cli_ok(&a);
    let run = run_dir(&out, "rule", 7);
    let losses = read_values(&log_file(&run, "VAL", "loss_batch"));
    let (want, triggered) = epochs_by_rule(&losses, 6, Some(1));
    assert_eq!(
        losses.len(),
        want,
        "with VAL losses {losses:?} the rule runs {want} epochs"
    );
    check_run_dir(
        &run,
        Expect {
            epochs: losses.len(),
            batches: [1, 1, 2],
            transfer: true,
        },
    );
    let stopped = String::from_utf8_lossy(&o.stdout).contains("Early stopping triggered.");
    assert_eq!(
        stopped, triggered,
        "early-stopping message printed: {stopped}, expected from VAL losses {losses:?}: {triggered}"
    );
    eprintln!("early stopping on ordinary data: VAL losses {losses:?}, stopped: {stopped}");
}

/// An existing run directory with checkpoints is refused without --overwrite (nothing touched); with
/// --overwrite the new run replaces the old one: a 2-epoch run overwritten by a 1-epoch run leaves the
/// directory of a 1-epoch run (no stale model_1.pt, LOG and metrics.jsonl of the new run only).
#[test]
fn refuses_existing_checkpoints_unless_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(&tmp.path().join("data"));
    let out = tmp.path().join("runs");
    cli_ok(&train_args(&data, &out, "ow", 2, 4));
    let run = run_dir(&out, "ow", 42);
    check_run_dir(&run, tiny(2));
    let before = std::fs::read(run.join("models/model_0.pt")).unwrap();

    let a = train_args(&data, &out, "ow", 1, 4);
    let err = cli_err(&a);
    assert!(
        err.contains("--overwrite"),
        "the refusal should mention --overwrite:\n{err}"
    );
    assert_eq!(
        std::fs::read(run.join("models/model_0.pt")).unwrap(),
        before,
        "a refused run must not touch the existing checkpoints"
    );
    check_run_dir(&run, tiny(2));

    let mut a = a;
    a.push("--overwrite".into());
    cli_ok(&a);
    check_run_dir(&run, tiny(1));
}

/// Argument errors: `-u 0` without `-A`, and `--unfreeze 99` clamped to the model's 4 units.
#[test]
fn unfreeze_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(&tmp.path().join("data"));
    let out = tmp.path().join("runs");
    let pre = tmp.path().join("fresh.pt");
    fresh_checkpoint(&pre, 5, false);

    let mut a = transfer_args(&data, &out, "u0", 1, 4, &pre);
    a.extend(strs(&["-u", "0"]));
    let err = cli_err(&a);
    assert!(
        err.contains("--unfreeze"),
        "-u 0 error should name --unfreeze:\n{err}"
    );
    assert!(
        !run_dir(&out, "u0", 42).join("models").exists(),
        "-u 0 must not start a run"
    );

    let mut a = transfer_args(&data, &out, "u99", 1, 4, &pre);
    a.extend(strs(&["--unfreeze", "99"]));
    let o = cli_ok(&a);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("--unfreeze 99 exceeds the 4 residual units"),
        "no clamp message for --unfreeze 99:\n{}",
        tail(&o.stdout, 3000)
    );
    assert!(
        stdout.contains("32 trainable tensors"),
        "--unfreeze 99 should train all 4 units (32 tensors):\n{}",
        tail(&o.stdout, 3000)
    );
    check_run_dir(
        &run_dir(&out, "u99", 42),
        Expect {
            epochs: 1,
            batches: [1, 1, 2],
            transfer: true,
        },
    );
}

/// Bad inputs exit non-zero, name the file, write no checkpoint, and never panic.
#[test]
fn bad_inputs_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(&tmp.path().join("data"));
    let out = tmp.path().join("runs");
    let missing = tmp.path().join("no_such_dataset.h5");
    let text = tmp.path().join("not_hdf5.h5");
    std::fs::write(&text, "this is not an HDF5 file\n".repeat(100)).unwrap();
    let pre = tmp.path().join("fresh.pt");
    fresh_checkpoint(&pre, 5, false);

    let with = |train: &Path, test: &Path| Data {
        train: train.to_path_buf(),
        test: test.to_path_buf(),
    };
    let cases: Vec<(&str, Vec<String>, PathBuf)> = vec![
        (
            "missing train",
            train_args(&with(&missing, &data.test), &out, "a", 1, 4),
            missing.clone(),
        ),
        (
            "missing test",
            train_args(&with(&data.train, &missing), &out, "b", 1, 4),
            missing.clone(),
        ),
        (
            "non-HDF5 train",
            train_args(&with(&text, &data.test), &out, "c", 1, 4),
            text.clone(),
        ),
        (
            "non-HDF5 test",
            transfer_args(&with(&data.train, &text), &out, "d", 1, 4, &pre),
            text.clone(),
        ),
        (
            "too few windows",
            train_args(&data, &out, "e", 1, 64),
            data.train.clone(),
        ),
        (
            "missing pretrained",
            transfer_args(&data, &out, "f", 1, 4, &missing),
            missing.clone(),
        ),
        (
            "non-checkpoint pretrained",
            transfer_args(&data, &out, "g", 1, 4, &text),
            text.clone(),
        ),
    ];
    for (what, args, file) in cases {
        let err = cli_err(&args);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            err.contains(&name),
            "{what}: stderr should name {name}:\n{err}"
        );
        assert!(
            err.contains("error: "),
            "{what}: expected an `error:` message:\n{err}"
        );
    }
    for p in ["a", "b", "c", "d", "e", "f", "g"] {
        let models = run_dir(&out, p, 42).join("models");
        assert!(
            !models.exists() || file_names(&models).is_empty(),
            "a failed run ({p}) wrote checkpoints"
        );
    }

    // `test` with a missing dataset and a missing model.
    let mut a = strs(&["test", "-m"]);
    a.push(s(&pre));
    a.push("-test".into());
    a.push(s(&missing));
    a.extend(strs(&["--device", "cpu", "--quiet"]));
    assert!(
        cli_err(&a).contains("no_such_dataset.h5"),
        "`test` should name the missing dataset"
    );
    let mut a = strs(&["test", "-m"]);
    a.push(s(&missing));
    a.push("-test".into());
    a.push(s(&data.test));
    a.extend(strs(&["--device", "cpu", "--quiet"]));
    assert!(
        cli_err(&a).contains("no_such_dataset.h5"),
        "`test` should name the missing model"
    );
}

/// A checkpoint with a NaN weight is refused at load, naming the file.
#[test]
fn non_finite_checkpoint_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(&tmp.path().join("data"));
    let out = tmp.path().join("runs");
    let pre = tmp.path().join("nan.pt");
    fresh_checkpoint(&pre, 9, true);
    let a = transfer_args(&data, &out, "nanckpt", 2, 4, &pre);
    let err = cli_err(&a);
    assert!(
        err.contains("nan.pt") && err.contains("NaN or infinite weights"),
        "the error should name the checkpoint and its NaN weights:\n{err}"
    );
}

/// Finite weights whose forward pass overflows (a huge `final_conv.weight`): the loss becomes NaN, and
/// `transfer` stops with a message about the loss and writes no checkpoint.
#[test]
fn non_finite_loss_stops_without_saving() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(&tmp.path().join("data"));
    let out = tmp.path().join("runs");
    let pre = tmp.path().join("huge.pt");
    fresh_checkpoint_with(&pre, 9, Some(3.0e38));
    for extra in [&[][..], &["-A"][..]] {
        let mut a = transfer_args(&data, &out, &format!("nan{}", extra.len()), 2, 4, &pre);
        a.extend(strs(extra));
        let err = cli_err(&a);
        assert!(
            err.contains("loss") && (err.contains("NaN") || err.contains("nan")),
            "the error should say the loss became NaN:\n{err}"
        );
        let models = run_dir(&out, &format!("nan{}", extra.len()), 42).join("models");
        let written: Vec<String> = if models.exists() {
            file_names(&models)
                .into_iter()
                .filter(|n| n.ends_with(".pt"))
                .collect()
        } else {
            Vec::new()
        };
        assert!(
            written.is_empty(),
            "a NaN run wrote checkpoints: {written:?}"
        );
    }
}

/// Tiny xorshift for the kill moments (printed, so a failure can be replayed by hand).
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn wait_until(
    what: &str,
    mut ready: impl FnMut() -> bool,
    child: &mut std::process::Child,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        if ready() {
            return start.elapsed();
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run exited ({status}) before {what}");
        }
        assert!(start.elapsed() < limit, "no {what} within {limit:?}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn spawn(args: &[String]) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning openspliceai-rs")
}

fn kill(child: &mut std::process::Child) {
    assert!(
        child.try_wait().unwrap().is_none(),
        "the 50-epoch run ended early"
    );
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
}

/// After SIGKILL at any moment: model_best.pt (and every model_{e}.pt) loads completely, LOG files have no
/// torn line, metrics.jsonl parses, and the per-epoch logs and checkpoints agree.
fn check_after_kill(run: &Path, first_best: &[u8]) {
    let models = run.join("models");
    let best = models.join("model_best.pt");
    assert!(
        best.exists(),
        "model_best.pt existed before the kill and must survive it"
    );
    load_complete(&best);
    for e in epoch_checkpoints(run) {
        load_complete(&models.join(format!("model_{e}.pt")));
    }
    for name in file_names(&models) {
        let is_ckpt = name == "model_best.pt"
            || epoch_checkpoints(run)
                .iter()
                .any(|e| name == format!("model_{e}.pt"));
        assert!(
            is_ckpt || (name.starts_with('.') && name.ends_with(".tmp")),
            "unexpected file in models/ after a kill: {name}"
        );
    }
    let leftovers: Vec<String> = file_names(&models)
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    if !leftovers.is_empty() {
        eprintln!("temporary files left in models/ by the kill: {leftovers:?}");
    }
    for split in ["TRAIN", "VAL", "TEST"] {
        for name in openspliceai_rs::train::run_log::LOG_FILES {
            read_numbers(&log_file(run, split, name));
        }
    }
    parse_jsonl(run);
    let val = read_values(&log_file(run, "VAL", "loss_batch"));
    let n_ckpt = epoch_checkpoints(run).len();
    assert!(
        n_ckpt <= val.len() && val.len() <= n_ckpt + 1,
        "{} model_{{e}}.pt files but {} VAL epoch losses",
        n_ckpt,
        val.len()
    );
    if std::fs::read(&best).unwrap() != first_best {
        assert!(
            val.len() >= 2 && val[1..].iter().any(|&v| v < val[0]),
            "model_best.pt changed although no epoch after the first improved (VAL {val:?})"
        );
    }
}

/// SIGKILL at random moments of a 50-epoch run (and right after a checkpoint appears, when model_best.pt may be
/// being written): everything left behind is whole. A killed run is then restarted in its directory (with
/// --overwrite where it left checkpoints) and the restarted run's directory is that of a clean run.
#[test]
fn sigkill_never_leaves_a_torn_model_best_or_log() {
    let tmp = tempfile::tempdir().unwrap();
    let data = example_data(&tmp.path().join("data"), 2, 10, 13); // 18 train (3 batches of 8), 2 val, 10 test
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    eprintln!("kill test rng seed {seed}");
    let limit = Duration::from_secs(120);
    for round in 0..3 {
        let out = tmp.path().join(format!("runs{round}"));
        let run = run_dir(&out, "kill", 42);
        let best = run.join("models/model_best.pt");
        let mut child = spawn(&train_args(&data, &out, "kill", 50, 8));
        let first_epoch = wait_until("model_best.pt", || best.exists(), &mut child, limit);
        // model_best.pt appears by rename, complete.
        let first_best = std::fs::read(&best).unwrap();
        load_complete(&best);
        let what = if round == 0 {
            // Right after model_1.pt appears: model_best.pt may be being written.
            let m1 = run.join("models/model_1.pt");
            wait_until("model_1.pt", || m1.exists(), &mut child, limit);
            "just after model_1.pt appeared".to_string()
        } else {
            let delay = first_epoch.mul_f64(0.2 + 1.6 * rng.next_f64());
            std::thread::sleep(delay);
            format!("{delay:?} after model_best.pt appeared")
        };
        kill(&mut child);
        eprintln!("round {round}: killed {what}");
        check_after_kill(&run, &first_best);
        if round == 0 {
            // Restart over the killed run.
            let mut a = train_args(&data, &out, "kill", 1, 8);
            a.push("--overwrite".into());
            cli_ok(&a);
            check_run_dir(
                &run,
                Expect {
                    epochs: 1,
                    batches: [3, 1, 2],
                    transfer: false,
                },
            );
        }
    }

    // Killed during the first epoch (no checkpoint yet): a rerun needs no --overwrite and starts clean.
    let out = tmp.path().join("runs_epoch0");
    let run = run_dir(&out, "kill", 42);
    let losses = log_file(&run, "TRAIN", "loss_every_update");
    let mut child = spawn(&train_args(&data, &out, "kill", 50, 8));
    wait_until(
        "a training batch loss",
        || std::fs::metadata(&losses).is_ok_and(|m| m.len() > 0),
        &mut child,
        limit,
    );
    kill(&mut child);
    assert!(
        epoch_checkpoints(&run).is_empty() && !run.join("models/model_best.pt").exists(),
        "a checkpoint was written before the first epoch ended"
    );
    for split in ["TRAIN", "VAL", "TEST"] {
        for name in openspliceai_rs::train::run_log::LOG_FILES {
            read_numbers(&log_file(&run, split, name));
        }
    }
    cli_ok(&train_args(&data, &out, "kill", 1, 8));
    check_run_dir(
        &run,
        Expect {
            epochs: 1,
            batches: [3, 1, 2],
            transfer: false,
        },
    );
}

/// Ctrl-C (SIGINT) ends the run after the current batch: exit code 130, a message, and every file that
/// exists is whole (checkpoints load, log lines parse).
#[test]
fn ctrl_c_stops_after_the_current_batch_with_nothing_half_written() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_data(&tmp.path().join("data"));
    let out = tmp.path().join("runs");
    let args = train_args(&data, &out, "sigint", 50, 4);
    let child = std::process::Command::new(BIN)
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the binary");
    let run = run_dir(&out, "sigint", 42);
    let start = std::time::Instant::now();
    while !run.join("models/model_0.pt").exists() {
        assert!(start.elapsed().as_secs() < 120, "no model_0.pt after 120 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(130),
        "exit status after Ctrl-C; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("interrupted"),
        "stderr should say the run was interrupted:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for e in epoch_checkpoints(&run) {
        load_complete(&run.join(format!("models/model_{e}.pt")));
    }
    load_complete(&run.join("models/model_best.pt"));
    for line in read_lines(&log_file(&run, "TRAIN", "loss_every_update")) {
        line.parse::<f64>()
            .unwrap_or_else(|_| panic!("torn log line {line:?}"));
    }
}

/// A fresh 80nt checkpoint without `final_conv.bias`: `test` and `transfer` refuse it with the completeness
/// error; `transfer --partial-load` keeps upstream's partial-loading rule and reports the tensor as missing.
#[test]
fn test_refuses_an_incomplete_checkpoint_and_transfer_loads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(&tmp.path().join("data"));
    let out = tmp.path().join("runs");
    let full = tmp.path().join("full.pt");
    fresh_checkpoint(&full, 3, false);
    let sd = checkpoint::load(&full).expect("fresh checkpoint");
    let mut partial = StateDict::new();
    for name in sd.names().into_iter().filter(|n| *n != "final_conv.bias") {
        partial.insert(name, sd.get(name).expect("listed name").clone());
    }
    let pre = tmp.path().join("partial.pt");
    checkpoint::save(&pre, &partial).expect("saving the partial checkpoint");

    let test_out = tmp.path().join("test_out");
    let mut a = strs(&["test", "-m"]);
    a.push(s(&pre));
    a.push("-test".into());
    a.push(s(&data.test));
    a.extend(strs(&["-f", "80", "-o"]));
    a.push(s(&test_out));
    a.extend(strs(&["--device", "cpu", "--quiet"]));
    let err = cli_err(&a);
    assert!(
        err.contains("partial.pt")
            && err.contains("lacks 1 of the 64 tensors of a SpliceAI-80 model")
            && err.contains("`final_conv.bias`"),
        "`test` should refuse the incomplete checkpoint, naming it and the missing tensor:\n{err}"
    );
    assert!(
        !test_out.exists(),
        "a refused `test` wrote {}",
        test_out.display()
    );

    let err = cli_err(&transfer_args(&data, &out, "partial", 1, 4, &pre));
    assert!(
        err.contains("partial.pt")
            && err.contains("lacks 1 of the 64 tensors of a SpliceAI-80 model")
            && err.contains("`final_conv.bias`"),
        "`transfer` should refuse the incomplete checkpoint, naming it and the missing tensor:\n{err}"
    );
    assert!(
        !run_dir(&out, "partial", 42).exists(),
        "a refused `transfer` created its run directory"
    );
    let mut partial_args = transfer_args(&data, &out, "partial", 1, 4, &pre);
    partial_args.push("--partial-load".into());
    let out_transfer = cli_ok(&partial_args);
    let stdout = String::from_utf8_lossy(&out_transfer.stdout);
    assert!(
        stdout.contains("loaded 63 tensors, 1 missing, 0 ignored")
            && stdout.contains("missing: final_conv.bias"),
        "`transfer` should load the 63 tensors and report the missing one:\n{stdout}"
    );
}
