//! `report` end to end through the real binary: a quickstart-like pair of runs (train from scratch, then
//! `transfer -u 2` from its best model) on small synthetic data, one run and two runs together; the charts'
//! SVG parses and holds one dot per epoch and split, the axis labels and the legend; no network reference;
//! `--format svg|png` files; `run.json`; clear errors for a missing or truncated `metrics.jsonl`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const BIN: &str = env!("CARGO_BIN_EXE_openspliceai-rs");

fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("running the binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    out
}

fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_err(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The two runs (2 epochs each), made once for all tests: (scratch run dir, transfer run dir).
struct Runs {
    _dir: tempfile::TempDir,
    scratch: PathBuf,
    transfer: PathBuf,
}

fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = common::example_data(&dir.path().join("data"), 2, 8, 5);
        let out = dir.path().join("runs");
        let s = |p: &Path| p.to_str().unwrap().to_string();
        let (train, test, out_s) = (s(&data.train), s(&data.test), s(&out));
        let common = [
            "-train",
            &train,
            "-test",
            &test,
            "-o",
            &out_s,
            "-n",
            "2",
            "-f",
            "80",
            "--batch-size",
            "4",
            "-s",
            "CosineAnnealingWarmRestarts",
            "--device",
            "cpu",
            "--quiet",
        ];
        let mut a = vec!["train", "-p", "scratch"];
        a.extend(common);
        let stdout = run_ok(&a);
        std::fs::write(dir.path().join("scratch.stdout"), stdout).unwrap();
        let scratch = out.join("SpliceAI_scratch_80_0_rs42/0");
        let best = s(&scratch.join("models/model_best.pt"));
        let mut a = vec!["transfer", "-p", "tl", "-m", &best, "-u", "2"];
        a.extend(common);
        let stdout = run_ok(&a);
        std::fs::write(dir.path().join("transfer.stdout"), stdout).unwrap();
        Runs {
            transfer: out.join("SpliceAI_tl_80_0_rs42/0"),
            scratch,
            _dir: dir,
        }
    })
}

/// The `<svg>…</svg>` documents of an HTML page, by chart id.
fn charts(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in html.split("<div class=\"chart\" id=\"").skip(1) {
        let (id, rest) = part.split_once('"').unwrap();
        let start = rest.find("<svg").unwrap();
        let end = rest.find("</svg>").unwrap() + "</svg>".len();
        out.push((id.to_string(), rest[start..end].to_string()));
    }
    out
}

/// (number of `<circle>`s, every text) of an SVG document; panics if it does not parse.
fn circles_and_texts(svg: &str) -> (usize, Vec<String>) {
    let doc = roxmltree::Document::parse(svg).expect("the chart's SVG parses");
    let circles = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .count();
    let texts = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect();
    (circles, texts)
}

fn no_network_reference(html: &str) {
    for bad in [
        "<script", "href=", "src=", "url(", "@import", "<link", "<img",
    ] {
        assert!(!html.contains(bad), "the report holds `{bad}`");
    }
}

#[test]
fn runs_write_run_json_and_versioned_metrics() {
    let r = runs();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.transfer.join("run.json")).unwrap())
            .unwrap();
    assert_eq!(info["label"], "transfer -u 2");
    assert_eq!(info["schema_version"], 1);
    assert_eq!(info["epochs"], 2);
    assert!(info["command_line"].as_array().unwrap().len() > 5);
    let scratch: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.scratch.join("run.json")).unwrap())
            .unwrap();
    assert_eq!(scratch["label"], "train");
    for line in std::fs::read_to_string(r.transfer.join("metrics.jsonl"))
        .unwrap()
        .lines()
    {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["schema_version"], 1, "{line}");
    }
}

#[test]
fn one_run_report_has_a_dot_per_epoch_and_split() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let html_path = dir.path().join("one.html");
    let stdout = run_ok(&[
        "report",
        r.scratch.to_str().unwrap(),
        "-o",
        html_path.to_str().unwrap(),
    ]);
    assert!(stdout.contains("one.html"), "{stdout}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    no_network_reference(&html);
    let charts = charts(&html);
    let ids: Vec<&str> = charts.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(
        ids,
        [
            "loss",
            "acceptor-auprc",
            "donor-auprc",
            "acceptor-top1",
            "donor-top1",
            "learning-rate"
        ]
    );
    for (id, svg) in &charts {
        let (circles, texts) = circles_and_texts(svg);
        let expected = match id.as_str() {
            "loss" => 2 * 3,      // 2 epochs × train, validation, test
            "learning-rate" => 0, // a line per batch, no dots
            _ => 2 * 2,           // 2 epochs × validation, test
        };
        assert_eq!(circles, expected, "{id}");
        let x_label = if id == "learning-rate" {
            "training batch"
        } else {
            "epoch (models/model_N.pt)"
        };
        assert!(
            texts.iter().any(|t| t == x_label),
            "{id}: no x label in {texts:?}"
        );
        let y_label = match id.as_str() {
            "loss" => "loss",
            "learning-rate" => "learning rate",
            "acceptor-auprc" | "donor-auprc" => "AUPRC",
            _ => "top-1 accuracy",
        };
        assert!(
            texts.iter().any(|t| t == y_label),
            "{id}: no y label in {texts:?}"
        );
        assert!(
            texts.iter().any(|t| t == "train"),
            "{id}: no legend in {texts:?}"
        );
        if id != "learning-rate" {
            assert!(
                texts.iter().any(|t| t == "validation set"),
                "{id}: no split key in {texts:?}"
            );
        }
        assert!(
            !texts.iter().any(|t| t.contains("zero-shot")),
            "{id}: a train run has no zero-shot"
        );
    }
    assert!(html.contains("Best epoch per run"));
}

#[test]
fn two_runs_overlay_with_legend_and_zero_shot() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let html_path = dir.path().join("two.html");
    run_ok(&[
        "report",
        r.scratch.to_str().unwrap(),
        r.transfer.to_str().unwrap(),
        "-o",
        html_path.to_str().unwrap(),
        "--format",
        "svg",
    ]);
    let html = std::fs::read_to_string(&html_path).unwrap();
    no_network_reference(&html);
    for (id, svg) in charts(&html) {
        let (circles, texts) = circles_and_texts(&svg);
        let expected = match id.as_str() {
            "loss" => 2 * 2 * 3,
            "learning-rate" => 0,
            _ => 2 * 2 * 2,
        };
        assert_eq!(circles, expected, "{id}");
        for label in ["train", "transfer -u 2"] {
            assert!(
                texts.iter().any(|t| t == label),
                "{id}: no `{label}` in {texts:?}"
            );
        }
        if id != "learning-rate" {
            assert!(
                texts
                    .iter()
                    .any(|t| t == "zero-shot validation (pretrained)"),
                "{id}: no zero-shot line in {texts:?}"
            );
        }
        // The same chart as its own file.
        let file = dir.path().join(format!("two-{id}.svg"));
        let own =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(circles_and_texts(&own).0, expected, "{}", file.display());
    }
    // The zero-shot row of the transfer run sits in the best-epoch table.
    assert!(html.contains("zero-shot: model_best.pt"));
}

#[test]
fn png_charts_are_png_files() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let html_path = dir.path().join("r.html");
    run_ok(&[
        "report",
        r.transfer.to_str().unwrap(),
        "-o",
        html_path.to_str().unwrap(),
        "--format",
        "png",
    ]);
    for id in [
        "loss",
        "acceptor-auprc",
        "donor-auprc",
        "acceptor-top1",
        "donor-top1",
        "learning-rate",
    ] {
        let bytes = std::fs::read(dir.path().join(format!("r-{id}.png"))).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{id}");
        assert!(bytes.len() > 5000, "{id}: {} bytes", bytes.len());
    }
}

#[test]
fn missing_metrics_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = run_err(&[
        "report",
        dir.path().to_str().unwrap(),
        "-o",
        dir.path().join("r.html").to_str().unwrap(),
    ]);
    let expected = dir.path().join("metrics.jsonl");
    assert!(
        err.contains(&format!("{}: no such file", expected.display())),
        "{err}"
    );
    assert!(!dir.path().join("r.html").exists());
}

#[test]
fn truncated_metrics_names_file_and_line() {
    let r = runs();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(r.scratch.join("metrics.jsonl")).unwrap();
    let n = text.lines().count();
    std::fs::write(dir.path().join("metrics.jsonl"), &text[..text.len() - 40]).unwrap();
    let err = run_err(&[
        "report",
        dir.path().to_str().unwrap(),
        "-o",
        dir.path().join("r.html").to_str().unwrap(),
    ]);
    let expected = format!("{}:{n}:", dir.path().join("metrics.jsonl").display());
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains("cut short"), "{err}");
}

#[test]
fn runs_write_their_own_report() {
    let r = runs();
    for (dir, label) in [(&r.scratch, "train"), (&r.transfer, "transfer -u 2")] {
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        no_network_reference(&html);
        let (_, svg) = &charts(&html)[0];
        let (circles, texts) = circles_and_texts(svg);
        assert_eq!(circles, 2 * 3, "{}", dir.display());
        assert!(texts.iter().any(|t| t == label), "{texts:?}");
    }
    let stdout = std::fs::read_to_string(r._dir.path().join("transfer.stdout")).unwrap();
    assert!(stdout.contains("training curves: "), "{stdout}");
}

#[test]
fn console_table_labels_every_column_and_marks_the_best_epoch() {
    let r = runs();
    let stdout = std::fs::read_to_string(r._dir.path().join("transfer.stdout")).unwrap();
    for label in [
        "loss",
        "lr",
        "acc top1",
        "acc AUPRC",
        "don AUPRC",
        "don F1",
        "seconds",
        "windows/s",
    ] {
        assert!(stdout.contains(label), "no `{label}` column:\n{stdout}");
    }
    assert!(stdout.contains("Zero-shot"), "{stdout}");
    assert!(
        stdout.contains("  zero-shot "),
        "no zero-shot row beside validation/test:\n{stdout}"
    );
    assert!(stdout.contains("* best"), "{stdout}");
    assert!(!stdout.contains("Validationing"), "{stdout}");
    assert!(!stdout.contains("Class Non-splice"), "{stdout}");
}

#[test]
fn console_upstream_keeps_the_dump_and_no_report_skips_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::example_data(&dir.path().join("data"), 1, 5, 12);
    let out = dir.path().join("runs");
    let stdout = run_ok(&[
        "train",
        "-train",
        data.train.to_str().unwrap(),
        "-test",
        data.test.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-p",
        "up",
        "-n",
        "1",
        "-f",
        "80",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--quiet",
        "--console",
        "upstream",
        "--no-report",
    ]);
    assert!(stdout.contains("Validationing model..."), "{stdout}");
    assert!(stdout.contains("Class Non-splice"), "{stdout}");
    assert!(!stdout.contains("acc AUPRC"), "{stdout}");
    let run_dir = out.join("SpliceAI_up_80_0_rs42/0");
    assert!(run_dir.join("metrics.jsonl").is_file());
    assert!(!run_dir.join("report.html").exists());
}
