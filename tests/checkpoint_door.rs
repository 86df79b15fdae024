//! The checkpoint door: every command that loads a checkpoint (`transfer`, `test`, `forward`, `predict`,
//! `variant`, `calibrate`, `convert`) refuses, with exit ≠ 0 and a message naming the file and the problem,
//! a checkpoint of another flanking size than `-f`, one with a missing tensor, a tensor of the wrong shape,
//! a NaN weight or an integer weight; it leaves the checkpoint untouched and writes nothing. Without `-f`
//! the flanking size is the checkpoint's, and said; `-m` may be repeated for `predict` and `variant`.
//!
//! Everything is synthetic and small (fresh 80nt models, eight-window data sets, a 1 kb genome).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::Device;
use openspliceai_rs::checkpoint::{self, RawTensor, StateDict};
use openspliceai_rs::model::{io, FlankConfig, SpliceAi};

const BIN: &str = env!("CARGO_BIN_EXE_openspliceai-rs");

fn run(args: &[String]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

fn strs(a: &[&str]) -> Vec<String> {
    a.iter().map(|x| x.to_string()).collect()
}

/// stdout and stderr together, with the command line, for assertion messages.
fn describe(args: &[String], out: &Output) -> String {
    format!(
        "`openspliceai-rs {}` exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn state_dict_of(flank: usize, seed: u64) -> StateDict {
    let config = FlankConfig::for_flank(flank).expect("flank");
    let model = SpliceAi::new(config, seed, &Device::Cpu).expect("fresh model");
    io::state_dict(&model).expect("state dict")
}

/// The synthetic inputs every command needs, and the checkpoints.
struct World {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    train: PathBuf,
    test: PathBuf,
    x80: PathBuf,
    fasta: PathBuf,
    genes: PathBuf,
    vcf: PathBuf,
    good: PathBuf,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let data = common::example_data(&dir.join("data"), 1, 8, 12);
        // calibrate fits on the validation file named after the training file.
        std::fs::copy(&data.test, dir.join("data/dataset_validation.h5")).expect("validation copy");
        let x80 = dir.join("x80.safetensors");
        let x = candle_core::Tensor::zeros((1, 4, 5080), candle_core::DType::F32, &Device::Cpu)
            .expect("zeros");
        candle_core::safetensors::save(&[("x".to_string(), x)].into_iter().collect(), &x80)
            .expect("write x");
        let bases: String = (0..1000)
            .map(|i| b"ACGTTGCAAG"[(i * 7 + i / 13) % 10] as char)
            .collect();
        let fasta = dir.join("genome.fa");
        std::fs::write(&fasta, format!(">chr1\n{bases}\n")).expect("fasta");
        let genes = dir.join("genes.txt");
        std::fs::write(
            &genes,
            "#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\n\
             g1\tchr1\t+\t100\t900\t100,500,\t300,900,\n",
        )
        .expect("gene table");
        let vcf = dir.join("in.vcf");
        let ref_base = &bases[399..400];
        let alt = if ref_base == "A" { "G" } else { "A" };
        std::fs::write(
            &vcf,
            format!(
                "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=1000>\n\
                 #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t400\t.\t{ref_base}\t{alt}\t.\t.\t.\n"
            ),
        )
        .expect("vcf");
        let good = dir.join("good_80nt.pt");
        checkpoint::save(&good, &state_dict_of(80, 1)).expect("good checkpoint");
        World {
            _tmp: tmp,
            train: data.train,
            test: data.test,
            dir,
            x80,
            fasta,
            genes,
            vcf,
            good,
        }
    }

    /// A checkpoint `name` holding `sd`.
    fn save(&self, name: &str, sd: &StateDict) -> PathBuf {
        let p = self.dir.join(name);
        checkpoint::save(&p, sd).expect("write checkpoint");
        p
    }

    /// The command line of `command` with checkpoint(s) `models` writing under `out`, plus `extra`.
    fn args(&self, command: &str, models: &[&Path], out: &Path, extra: &[&str]) -> Vec<String> {
        let m = |flag: &str| -> Vec<String> {
            models
                .iter()
                .flat_map(|p| [flag.to_string(), s(p)])
                .collect()
        };
        let mut a: Vec<String> = match command {
            "transfer" => {
                let mut a = strs(&["transfer", "--train-dataset"]);
                a.extend([s(&self.train), "--test-dataset".into(), s(&self.test)]);
                a.extend(["-o".into(), s(out)]);
                a.extend(strs(&["-p", "door", "-n", "1", "--quiet", "--no-report"]));
                a.extend(strs(&["--batch-size", "4", "--device", "cpu"]));
                a.extend(m("-m"));
                a
            }
            "test" => {
                let mut a = strs(&["test", "--test-dataset"]);
                a.extend([s(&self.test), "-o".into(), s(out)]);
                a.extend(strs(&["--quiet", "--device", "cpu"]));
                a.extend(m("-m"));
                a
            }
            "forward" => {
                let mut a = strs(&["forward", "--input"]);
                a.extend([
                    s(&self.x80),
                    "--output".into(),
                    s(&out.join("probs.safetensors")),
                ]);
                a.extend(strs(&["--device", "cpu"]));
                a.extend(m("-m"));
                a
            }
            "predict" => {
                let mut a = strs(&["predict", "-q", "-i"]);
                a.extend([s(&self.fasta), "-o".into(), s(out)]);
                a.extend(strs(&["--device", "cpu"]));
                a.extend(m("-m"));
                a
            }
            "variant" => {
                let mut a = strs(&["variant", "-q", "-R"]);
                a.extend([s(&self.fasta), "-A".into(), s(&self.genes)]);
                a.extend([
                    "-I".into(),
                    s(&self.vcf),
                    "-O".into(),
                    s(&out.join("out.vcf")),
                ]);
                a.extend(strs(&["--device", "cpu"]));
                a.extend(m("-m"));
                a
            }
            "calibrate" => {
                let mut a = strs(&["calibrate", "--train-dataset"]);
                a.extend([s(&self.train), "--test-dataset".into(), s(&self.test)]);
                a.extend(["-o".into(), s(out)]);
                a.extend(strs(&["-p", "door", "-q", "--device", "cpu"]));
                a.extend(m("-m"));
                a
            }
            "convert" => {
                assert_eq!(models.len(), 1, "convert takes one checkpoint");
                vec![
                    "convert".into(),
                    s(models[0]),
                    s(&out.join("converted.safetensors")),
                ]
            }
            c => panic!("no command line for {c}"),
        };
        a.extend(strs(extra));
        a
    }
}

/// Every command that loads a checkpoint.
const COMMANDS: [&str; 7] = [
    "transfer",
    "test",
    "forward",
    "predict",
    "variant",
    "calibrate",
    "convert",
];

/// The command failed cleanly: exit ≠ 0 (not a signal, not a panic), the message names `file` and holds
/// every one of `words`; the checkpoint is byte-identical and `out` was not created.
fn assert_refused(
    args: &[String],
    out: &Output,
    file: &Path,
    before: &[u8],
    words: &[&str],
    dir: &Path,
) {
    let context = describe(args, out);
    assert!(!out.status.success(), "should fail:\n{context}");
    assert!(
        out.status.code().is_some(),
        "killed by a signal:\n{context}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panicked:\n{context}");
    assert!(
        stderr.contains(&s(file)),
        "the message does not name {}:\n{context}",
        file.display()
    );
    for w in words {
        assert!(stderr.contains(w), "the message lacks `{w}`:\n{context}");
    }
    assert_eq!(
        std::fs::read(file).expect("checkpoint still there"),
        before,
        "the checkpoint changed:\n{context}"
    );
    assert!(!dir.exists(), "{} was written:\n{context}", dir.display());
}

/// The bad checkpoints: (file name, the state dict, the words its error must hold, whether the case
/// applies to `convert`, which has no -f).
fn bad_checkpoints() -> Vec<(&'static str, StateDict, Vec<&'static str>, bool)> {
    let good = state_dict_of(80, 2);
    let edit = |name: &str, f: &dyn Fn(&RawTensor) -> Option<RawTensor>| {
        let mut sd = StateDict::new();
        for (n, t) in good.iter() {
            if n == name {
                if let Some(t) = f(t) {
                    sd.insert(n, t);
                }
            } else {
                sd.insert(n, t.clone());
            }
        }
        sd
    };
    let first = good.names()[0].to_string();
    let first_leaked: &'static str = Box::leak(format!("`{first}`").into_boxed_str());
    vec![
        (
            "model_400nt.pt",
            state_dict_of(400, 3),
            vec!["400nt checkpoint", "-f 80", "-f 400"],
            false,
        ),
        (
            "missing.pt",
            edit("residual_units.2.conv2.weight", &|_| None),
            vec![
                "lacks 1 of the 64 tensors of a SpliceAI-80 model",
                "`residual_units.2.conv2.weight`",
                "not a whole model",
            ],
            true,
        ),
        (
            "wrong_shape.safetensors",
            edit("final_conv.weight", &|t| {
                let mut shape = t.shape.clone();
                shape[2] = 3;
                let n: usize = shape.iter().product();
                Some(RawTensor::from_f32(shape, &vec![0.5; n]))
            }),
            vec!["`final_conv.weight`", "[3, 32, 3]", "expects [3, 32, 1]"],
            true,
        ),
        (
            "nan.pt",
            edit("residual_units.1.conv1.weight", &|t| {
                let mut v = t.to_f32_vec().unwrap();
                v[7] = f32::NAN;
                v[9] = f32::INFINITY;
                Some(RawTensor::from_f32(t.shape.clone(), &v))
            }),
            vec![
                "`residual_units.1.conv1.weight`",
                "NaN or infinite",
                "2 of its",
            ],
            true,
        ),
        (
            "integer.pt",
            edit(&first, &|t| {
                Some(RawTensor::from_i64(t.shape.clone(), &vec![0; t.numel()]))
            }),
            vec![first_leaked, "int64", "floating-point"],
            true,
        ),
    ]
}

#[test]
fn every_command_refuses_every_bad_checkpoint() {
    let w = World::new();
    for (name, sd, words, for_convert) in bad_checkpoints() {
        let ckpt = w.save(name, &sd);
        let before = std::fs::read(&ckpt).unwrap();
        for command in COMMANDS {
            if command == "convert" && !for_convert {
                continue;
            }
            let out_dir = w.dir.join(format!("out_{command}_{name}"));
            let extra: &[&str] = if command == "convert" {
                &[]
            } else {
                &["-f", "80"]
            };
            let args = w.args(command, &[&ckpt], &out_dir, extra);
            if command == "convert" {
                std::fs::create_dir(&out_dir).unwrap();
            }
            let out = run(&args);
            let target = if command == "convert" {
                out_dir.join("converted.safetensors")
            } else {
                out_dir.clone()
            };
            assert_refused(&args, &out, &ckpt, &before, &words, &target);
        }
    }
}

/// A smaller checkpoint than `-f` (80nt for -f 400): the missing units, and the checkpoint's own size.
#[test]
fn a_smaller_checkpoint_than_f_names_both_sizes() {
    let w = World::new();
    let before = std::fs::read(&w.good).unwrap();
    for command in ["test", "predict", "variant", "transfer"] {
        let out_dir = w.dir.join(format!("out_{command}"));
        let args = w.args(command, &[&w.good], &out_dir, &["-f", "400"]);
        let out = run(&args);
        assert_refused(
            &args,
            &out,
            &w.good,
            &before,
            &["SpliceAI-400", "flanking size is 80", "-f 80"],
            &out_dir,
        );
    }
}

/// Without -f every command takes the checkpoint's size and says so, and runs.
#[test]
fn without_f_the_size_is_read_from_the_checkpoint_and_said() {
    let w = World::new();
    for command in COMMANDS {
        let out_dir = w.dir.join(format!("out_{command}"));
        if matches!(command, "convert" | "forward") {
            std::fs::create_dir(&out_dir).unwrap();
        }
        let args = w.args(command, &[&w.good], &out_dir, &[]);
        let out = run(&args);
        let context = describe(&args, &out);
        assert!(out.status.success(), "should succeed:\n{context}");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let want = match command {
            "predict" | "variant" => "(no -f given: flanking size from the checkpoints)",
            "convert" => "SpliceAI-80)",
            _ => "SpliceAI-80 (no -f given: flanking size 80 read from the checkpoint)",
        };
        assert!(said.contains(want), "`{want}` not said:\n{context}");
        if matches!(command, "predict" | "variant") {
            assert!(said.contains("1 model(s) of SpliceAI-80"), "{context}");
        }
    }
    // A 400nt checkpoint without -f is scored as the 400nt model it is (not upstream's default 80).
    let big = w.save("model_400nt.safetensors", &state_dict_of(400, 4));
    let out_dir = w.dir.join("out_predict_400");
    let args = w.args("predict", &[&big], &out_dir, &[]);
    let out = run(&args);
    let context = describe(&args, &out);
    assert!(out.status.success(), "{context}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("of SpliceAI-400"),
        "{context}"
    );
    assert!(out_dir.join("SpliceAI_5000_400").is_dir(), "{context}");
}

/// `-m` repeated: every member named, the mean of identical members is the single model's output; members
/// of different sizes are refused naming both files.
#[test]
fn m_may_be_repeated_and_members_are_named() {
    let w = World::new();
    let copy = w.dir.join("copy_80nt.safetensors");
    checkpoint::save(&copy, &checkpoint::load(&w.good).unwrap()).unwrap();
    let one = w.dir.join("one");
    let args = w.args("predict", &[&w.good], &one, &["-t", "0.2"]);
    assert!(run(&args).status.success());
    for command in ["predict", "variant"] {
        let two = w.dir.join(format!("two_{command}"));
        let extra: &[&str] = if command == "predict" {
            &["-t", "0.2"]
        } else {
            &[]
        };
        let args = w.args(command, &[&w.good, &copy], &two, extra);
        let out = run(&args);
        let context = describe(&args, &out);
        assert!(out.status.success(), "{context}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("2 model(s) of SpliceAI-80"), "{context}");
        for p in [&w.good, &copy] {
            assert!(
                err.contains(&format!("  {}\n", p.display())),
                "member not named:\n{context}"
            );
        }
        if command == "predict" {
            for bed in ["acceptor_predictions.bed", "donor_predictions.bed"] {
                let read = |d: &Path| std::fs::read(d.join("SpliceAI_5000_80").join(bed)).unwrap();
                assert_eq!(
                    read(&one),
                    read(&two),
                    "{bed}: two copies averaged differ from one"
                );
            }
        }
    }
    let big = w.save("model_400nt.pt", &state_dict_of(400, 5));
    let out_dir = w.dir.join("mixed");
    let args = w.args("predict", &[&w.good, &big], &out_dir, &[]);
    let out = run(&args);
    let before = std::fs::read(&big).unwrap();
    assert_refused(
        &args,
        &out,
        &big,
        &before,
        &[
            "SpliceAI-400",
            "SpliceAI-80",
            "good_80nt.pt",
            "one flanking size",
        ],
        &out_dir,
    );
}

/// A directory of one run's epoch checkpoints is averaged, with a warning saying so.
#[test]
fn a_directory_of_epoch_checkpoints_is_warned_about() {
    let w = World::new();
    let models = w.dir.join("models");
    std::fs::create_dir(&models).unwrap();
    for e in 0..2 {
        checkpoint::save(&models.join(format!("model_{e}.pt")), &state_dict_of(80, e)).unwrap();
    }
    let out_dir = w.dir.join("out");
    let args = w.args("predict", &[&models], &out_dir, &[]);
    let out = run(&args);
    let context = describe(&args, &out);
    assert!(out.status.success(), "{context}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("epoch checkpoints") && err.contains(&s(&models)),
        "no warning about epoch checkpoints:\n{context}"
    );
    assert!(
        err.contains("model_0.pt") && err.contains("model_1.pt"),
        "{context}"
    );
}

/// `transfer --partial-load` keeps upstream's rule: a checkpoint missing a tensor is fine-tuned, the
/// missing tensor reported.
#[test]
fn transfer_partial_load_keeps_upstreams_rule() {
    let w = World::new();
    let (name, sd, _, _) = bad_checkpoints().remove(1);
    let ckpt = w.save(name, &sd);
    let out_dir = w.dir.join("runs");
    let args = w.args("transfer", &[&ckpt], &out_dir, &["--partial-load"]);
    let out = run(&args);
    let context = describe(&args, &out);
    assert!(out.status.success(), "{context}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("loaded 63 tensors, 1 missing, 0 ignored")
            && stdout.contains("missing: residual_units.2.conv2.weight"),
        "{context}"
    );
}
