//! Outputs never overwrite inputs (`src/clobber.rs`): every command that writes refuses an output that is one
//! of its inputs (the same path, a symbolic link, a hard link, or an input inside the output directory under
//! the name of a file the command writes there), names both, exits non-zero and leaves every input as it
//! was. Also: stale temporary files of a killed run are removed by the next run into the directory, a live
//! process's are left.
//!
//! The check runs before any input is read, so the inputs here are small placeholder files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_openspliceai-rs"));
    c.env_remove("RUST_LOG");
    c
}

fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = bin();
    for a in args {
        c.arg(a);
    }
    c.output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A file with `content`, its parent created.
fn file(path: &Path, content: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    path.to_path_buf()
}

/// The bytes of each file, to compare after the run.
fn snapshot(paths: &[&Path]) -> Vec<Vec<u8>> {
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// The run was refused: non-zero exit, one message naming both flags and paths, no panic, inputs intact.
fn assert_refused(o: &Output, words: &[&str], inputs: &[&Path], before: &[Vec<u8>]) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected a refusal, got success: {err}"
    );
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("would overwrite the input"), "{err}");
    for w in words {
        assert!(err.contains(w), "`{w}` missing from: {err}");
    }
    assert_eq!(&snapshot(inputs), before, "an input changed: {err}");
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

struct Variant {
    _dir: tempfile::TempDir,
    root: PathBuf,
    vcf: PathBuf,
    fasta: PathBuf,
    genes: PathBuf,
    model: PathBuf,
}

impl Variant {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        Self {
            vcf: file(
                &root.join("x.vcf"),
                "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t10\t.\tA\tC\t.\t.\t.\n",
            ),
            fasta: file(&root.join("ref.fa"), ">chr1\nACGTACGTACGTACGTACGT\n"),
            genes: file(
                &root.join("genes.txt"),
                "#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\ng\tchr1\t+\t1\t20\t1,\t20,\n",
            ),
            model: file(&root.join("model.pt"), "not really a checkpoint"),
            root,
            _dir: dir,
        }
    }

    fn inputs(&self) -> [&Path; 4] {
        [&self.vcf, &self.fasta, &self.genes, &self.model]
    }

    fn run(&self, output: &Path) -> Output {
        run(&[
            &"variant",
            &"-R",
            &self.fasta,
            &"-A",
            &self.genes,
            &"-m",
            &self.model,
            &"-f",
            &"80",
            &"-I",
            &self.vcf,
            &"-O",
            &output,
        ])
    }
}

/// Seen before the check: `variant -I x.vcf -O x.vcf` replaced its input with its output.
#[test]
fn variant_output_is_its_input_vcf() {
    let v = Variant::new();
    let before = snapshot(&v.inputs());
    let o = v.run(&v.vcf);
    assert_refused(
        &o,
        &["-O ", "-I ", &s(&v.vcf), "(the same file)"],
        &v.inputs(),
        &before,
    );
}

#[cfg(unix)]
#[test]
fn variant_output_is_a_symlink_to_its_input() {
    let v = Variant::new();
    let link = v.root.join("out.vcf");
    std::os::unix::fs::symlink(&v.vcf, &link).unwrap();
    let before = snapshot(&v.inputs());
    let o = v.run(&link);
    assert_refused(
        &o,
        &[&s(&link), &s(&v.vcf), "through a link"],
        &v.inputs(),
        &before,
    );
    assert!(link.is_symlink(), "the link itself is left as it was");
}

#[cfg(unix)]
#[test]
fn variant_output_is_a_hard_link_to_an_input() {
    let v = Variant::new();
    let link = v.root.join("out.vcf");
    std::fs::hard_link(&v.fasta, &link).unwrap();
    let before = snapshot(&v.inputs());
    let o = v.run(&link);
    assert_refused(
        &o,
        &["-O ", "-R ", &s(&link), &s(&v.fasta), "hard link"],
        &v.inputs(),
        &before,
    );
}

/// An output that exists but is no input, and `-`, pass the check (the run then fails on the placeholder
/// model, not on the check).
#[test]
fn variant_distinct_output_passes_the_check() {
    let v = Variant::new();
    let out = file(&v.root.join("old.vcf"), "old\n");
    let o = v.run(&out);
    assert!(!o.status.success());
    assert!(!stderr(&o).contains("would overwrite"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), b"old\n");
}

const METRICS_LINE: &str = r#"{"schema_version":1,"epoch":0,"split":"val","loss":0.5,"lr":0.001,"seconds":1.0,"acceptor":{"topk":0.1,"auprc":0.2,"f1":0.3},"donor":{"topk":0.1,"auprc":null,"f1":0.3}}"#;

fn run_dir(root: &Path) -> PathBuf {
    let run = root.join("run");
    file(&run.join("metrics.jsonl"), &format!("{METRICS_LINE}\n"));
    run
}

/// Seen before the check: `report RUN -o RUN/metrics.jsonl` replaced the run's metrics with the HTML.
#[test]
fn report_output_is_the_runs_metrics() {
    let d = tempfile::tempdir().unwrap();
    let run = run_dir(d.path());
    let metrics = run.join("metrics.jsonl");
    let before = snapshot(&[&metrics]);
    let o = run_cmd(&["report", &s(&run), "-o", &s(&metrics)]);
    assert_refused(&o, &["-o ", "RUN_DIR ", &s(&metrics)], &[&metrics], &before);
}

#[test]
fn report_chart_files_may_not_replace_an_input() {
    let d = tempfile::tempdir().unwrap();
    let run = run_dir(d.path());
    // The learning-rate log of the run sits where a chart would go.
    let lr = file(
        &run.join("LOG/TRAIN/learning_rate_every_batch.txt"),
        "0.001\n",
    );
    let html = run.join("LOG/TRAIN/learning_rate.html");
    std::fs::hard_link(&lr, run.join("LOG/TRAIN/learning_rate-loss.svg")).unwrap();
    let before = snapshot(&[&lr]);
    let o = run_cmd(&["report", &s(&run), "-o", &s(&html), "--format", "svg"]);
    assert_refused(&o, &["learning_rate-loss.svg", &s(&lr)], &[&lr], &before);
    assert!(!html.exists());
}

fn run_cmd(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

/// Seen before the check: create-data replaced inputs that sat in its output directory under an output's
/// name.
#[test]
fn create_data_input_inside_its_output_directory() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let fasta = file(&out.join("train.fa"), ">chr1\nACGT\n");
    let gff = file(&d.path().join("a.gff3"), "##gff-version 3\n");
    let before = snapshot(&[&fasta, &gff]);
    let o = run_cmd(&[
        "create-data",
        "--annotation-gff",
        &s(&gff),
        "--genome-fasta",
        &s(&fasta),
        "--output-dir",
        &s(&out),
        "--write-fasta",
    ]);
    assert_refused(
        &o,
        &["--output-dir ", "--genome-fasta ", &s(&fasta), &s(&out)],
        &[&fasta, &gff],
        &before,
    );
    // Nothing was written beside the input.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

#[cfg(unix)]
#[test]
fn create_data_input_hard_linked_under_an_output_name() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let gff = file(&d.path().join("a.gff3"), "##gff-version 3\n");
    let fasta = file(&d.path().join("g.fa"), ">chr1\nACGT\n");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::hard_link(&gff, out.join("test_stats.txt")).unwrap();
    let before = snapshot(&[&fasta, &gff]);
    let o = run_cmd(&[
        "create-data",
        "--annotation-gff",
        &s(&gff),
        "--genome-fasta",
        &s(&fasta),
        "--output-dir",
        &s(&out),
    ]);
    assert_refused(
        &o,
        &["--annotation-gff ", &s(&gff), "test_stats.txt", "hard link"],
        &[&fasta, &gff],
        &before,
    );
}

/// train: an input inside the run directory's `models/` folder, which the run fills.
#[test]
fn train_input_inside_the_run_directory() {
    let d = tempfile::tempdir().unwrap();
    let runs = d.path().join("runs");
    let run = runs.join("SpliceAI_p_80_0_rs42/0");
    let train = file(&run.join("models/data.h5"), "h5");
    let test = file(&d.path().join("test.h5"), "h5");
    let before = snapshot(&[&train, &test]);
    let o = run_cmd(&[
        "train",
        "--train-dataset",
        &s(&train),
        "--test-dataset",
        &s(&test),
        "-o",
        &s(&runs),
        "-p",
        "p",
        "--device",
        "cpu",
    ]);
    assert_refused(
        &o,
        &[
            "--output-dir ",
            "--train-dataset ",
            &s(&train),
            &format!("writing into {}", s(&run.join("models"))),
        ],
        &[&train, &test],
        &before,
    );
}

/// transfer from the best model of the run it writes into.
#[test]
fn transfer_from_the_run_it_writes() {
    let d = tempfile::tempdir().unwrap();
    let runs = d.path().join("runs");
    let run = runs.join("SpliceAI_p_80_0_rs42/0");
    let best = file(&run.join("models/model_best.pt"), "pt");
    let train = file(&d.path().join("train.h5"), "h5");
    let test = file(&d.path().join("test.h5"), "h5");
    let before = snapshot(&[&best, &train, &test]);
    let o = run_cmd(&[
        "transfer",
        "-train",
        &s(&train),
        "-test",
        &s(&test),
        "-o",
        &s(&runs),
        "-p",
        "p",
        "-m",
        &s(&best),
        "--overwrite",
        "--device",
        "cpu",
    ]);
    assert_refused(
        &o,
        &["--pretrained-model ", &s(&best)],
        &[&best, &train, &test],
        &before,
    );
}

#[test]
fn test_dataset_inside_log_test() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let data = file(&out.join("LOG/TEST/test.h5"), "h5");
    let model = file(&d.path().join("m.pt"), "pt");
    let before = snapshot(&[&data, &model]);
    let o = run_cmd(&[
        "test",
        "-m",
        &s(&model),
        "-test",
        &s(&data),
        "-o",
        &s(&out),
        "--device",
        "cpu",
    ]);
    assert_refused(
        &o,
        &["--output-dir ", "--test-dataset ", &s(&data)],
        &[&data, &model],
        &before,
    );
}

#[test]
fn predict_input_is_an_output_bed() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let fasta = file(
        &out.join("SpliceAI_5000_80/acceptor_predictions.bed"),
        ">s\nACGT\n",
    );
    let model = file(&d.path().join("m.pt"), "pt");
    let before = snapshot(&[&fasta, &model]);
    let o = run_cmd(&[
        "predict",
        "-i",
        &s(&fasta),
        "-m",
        &s(&model),
        "-f",
        "80",
        "-o",
        &s(&out),
        "--device",
        "cpu",
    ]);
    assert_refused(&o, &["-o ", "-i ", &s(&fasta)], &[&fasta, &model], &before);
}

/// A model directory stands for its checkpoints: predict may not write into one of them.
#[cfg(unix)]
#[test]
fn predict_model_directory_member_linked_as_output() {
    let d = tempfile::tempdir().unwrap();
    let models = d.path().join("models");
    let ckpt = file(&models.join("model_1.pt"), "pt");
    let fasta = file(&d.path().join("s.fa"), ">s\nACGT\n");
    let out = d.path().join("out");
    std::fs::create_dir_all(out.join("SpliceAI_5000_80")).unwrap();
    std::os::unix::fs::symlink(&ckpt, out.join("SpliceAI_5000_80/predict.h5")).unwrap();
    let before = snapshot(&[&ckpt, &fasta]);
    let o = run_cmd(&[
        "predict",
        "-i",
        &s(&fasta),
        "-m",
        &s(&models),
        "-f",
        "80",
        "-o",
        &s(&out),
        "-p",
    ]);
    assert_refused(
        &o,
        &["-m ", &s(&ckpt), "predict.h5", "through a link"],
        &[&ckpt, &fasta],
        &before,
    );
}

#[test]
fn calibrate_temperature_file_in_its_output_directory() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let t = file(&out.join("temperature.txt"), "[1. 1. 1.]\n");
    let model = file(&d.path().join("m.pt"), "pt");
    let train = file(&d.path().join("dataset_train.h5"), "h5");
    let test = file(&d.path().join("dataset_test.h5"), "h5");
    let before = snapshot(&[&t, &model, &train, &test]);
    let o = run_cmd(&[
        "calibrate",
        "-m",
        &s(&model),
        "-train",
        &s(&train),
        "-test",
        &s(&test),
        "-o",
        &s(&out),
        "-p",
        "p",
        "-T",
        &s(&t),
        "--device",
        "cpu",
    ]);
    assert_refused(
        &o,
        &["--output-dir ", "--temperature-file ", &s(&t)],
        &[&t, &model, &train, &test],
        &before,
    );
}

#[test]
fn convert_onto_itself() {
    let d = tempfile::tempdir().unwrap();
    let m = file(&d.path().join("m.pt"), "pt");
    let before = snapshot(&[&m]);
    let o = run_cmd(&["convert", &s(&m), &s(&m)]);
    assert_refused(&o, &["OUTPUT ", "INPUT ", &s(&m)], &[&m], &before);
}

#[test]
fn forward_output_is_its_model() {
    let d = tempfile::tempdir().unwrap();
    let m = file(&d.path().join("m.safetensors"), "st");
    let x = file(&d.path().join("x.safetensors"), "st");
    let before = snapshot(&[&m, &x]);
    // Through a relative path with `..`: the same file under another spelling.
    let other = d.path().join("sub");
    std::fs::create_dir_all(&other).unwrap();
    let spelled = other.join("..").join("m.safetensors");
    let o = run_cmd(&[
        "forward",
        "-m",
        &s(&m),
        "-f",
        "80",
        "--input",
        &s(&x),
        "--output",
        &s(&spelled),
        "--device",
        "cpu",
    ]);
    assert_refused(
        &o,
        &["--output ", "--model ", &s(&m), "(the same file)"],
        &[&m, &x],
        &before,
    );
}

/// A temporary file of ours whose process (on this machine) has ended is removed by the next run into its
/// directory (and said); one of a running process (here: this test's) or of another machine is left, as a
/// parallel job's would be.
#[cfg(target_os = "linux")]
#[test]
fn stale_temporary_files_are_removed_live_ones_kept() {
    let d = tempfile::tempdir().unwrap();
    let run = run_dir(d.path());
    let out = d.path().join("out");
    let owner = openspliceai_rs::atomic::temp_owner;
    if !owner(1).contains('@') {
        eprintln!(
            "skipped: this machine has no host name, so no temporary file is ever taken for stale"
        );
        return;
    }
    // Above Linux's largest process id (2^22): never running.
    let stale = file(
        &out.join(format!(".report.html.{}.3.tmp", owner(4_999_999))),
        "torn",
    );
    let live = file(
        &out.join(format!(".report.html.{}.0.tmp", owner(std::process::id()))),
        "being written",
    );
    // A job on another machine writing into the same shared directory: its pid means nothing here.
    let elsewhere = file(
        &out.join(".report.html.4999999@another-node.0.tmp"),
        "being written elsewhere",
    );
    let unknown = file(&out.join(".report.html.tmp"), "whose?");
    let html = out.join("report.html");
    let o = run_cmd(&["report", &s(&run), "-o", &s(&html)]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(html.is_file());
    assert!(!stale.exists(), "the stale temporary file was removed");
    assert!(err.contains("removed") && err.contains(&s(&stale)), "{err}");
    assert!(live.exists(), "a running process's temporary file is left");
    assert!(unknown.exists(), "a temporary file without a pid is left");
    assert!(
        elsewhere.exists(),
        "another machine's temporary file is left"
    );
    assert!(
        err.contains(&s(&unknown)) && err.contains("left in place"),
        "{err}"
    );
}
