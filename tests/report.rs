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
    for bad in ["<script", "src=", "url(", "@import", "<link", "<img"] {
        assert!(!html.contains(bad), "the report holds `{bad}`");
    }
    // Links only within the page (the chart index at the top).
    assert_eq!(
        html.matches("href=").count(),
        html.matches("href=\"#").count(),
        "the report links outside itself"
    );
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
            "epoch (as the console counts: epoch 1 saves models/model_0.pt)"
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
            texts.iter().any(|t| t == "train from scratch"),
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
        for label in ["train from scratch", "transfer -u 2"] {
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
    for (dir, label) in [
        (&r.scratch, "train from scratch"),
        (&r.transfer, "transfer -u 2"),
    ] {
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

/// The `<circle>`s of an SVG as (radius, filled).
fn marks(svg: &str) -> Vec<(String, bool)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("circle"))
        .map(|n| {
            (
                n.attribute("r").unwrap_or("").to_string(),
                n.attribute("fill").is_some_and(|f| f != "none"),
            )
        })
        .collect()
}

#[test]
fn report_names_runs_data_and_version_and_draws_chance_lines() {
    let r = runs();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.transfer.join("run.json")).unwrap())
            .unwrap();
    assert_eq!(info["tool_version"], env!("CARGO_PKG_VERSION"));
    assert!(info["started"].as_str().unwrap().ends_with('Z'), "{info}");
    assert_eq!(info["windows"]["test"], 8, "{info}");
    let dir = tempfile::tempdir().unwrap();
    let html_path = dir.path().join("two.html");
    run_ok(&[
        "report",
        r.scratch.to_str().unwrap(),
        r.transfer.to_str().unwrap(),
        "-o",
        html_path.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&html_path).unwrap();
    no_network_reference(&html);
    for want in [
        "train from scratch",
        "transfer -u 2",
        "(8 windows)",
        "validation: carved out of the training file",
        &format!("openspliceai-rs {}, started 20", env!("CARGO_PKG_VERSION")),
        "href=\"#learning-rate\"",
        // The zero-shot row names the pretrained checkpoint by its path.
        &format!(
            "<code>{}</code>",
            r.scratch.join("models/model_best.pt").display()
        ),
        // The command line.
        "transfer -p tl -m ",
    ] {
        assert!(html.contains(want), "no `{want}` in the report");
    }
    let metrics = std::fs::read_to_string(r.transfer.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    let n = last["ranked_positions"].as_u64().unwrap();
    assert!(n > 0, "{last}");
    for (id, svg) in charts(&html) {
        let (_, texts) = circles_and_texts(&svg);
        let chance = texts.iter().any(|t| t.starts_with("chance: "));
        assert_eq!(chance, id.ends_with("auprc"), "{id}: {texts:?}");
        if id == "acceptor-auprc" {
            let f = last["acceptor"]["n_true"].as_u64().unwrap() as f64 / n as f64;
            assert!(
                texts.iter().any(|t| t.starts_with("chance: 0.0")),
                "{id}: chance {f}: {texts:?}"
            );
        }
        if id != "learning-rate" {
            // Epochs 1 and 2 on the x axis, as the console counts them; no epoch 0.
            assert!(texts.iter().any(|t| t == "2"), "{id}: {texts:?}");
            assert!(!texts.iter().any(|t| t == "0"), "{id}: {texts:?}");
            // The split's mark in the legend.
            for glyph in ["●", "○"] {
                assert!(texts.iter().any(|t| t == glyph), "{id}: {texts:?}");
            }
        }
    }
}

#[test]
fn one_epoch_runs_have_a_mark_per_split() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::example_data(&dir.path().join("data"), 1, 5, 12);
    let out = dir.path().join("runs");
    run_ok(&[
        "train",
        "-train",
        data.train.to_str().unwrap(),
        "-test",
        data.test.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-p",
        "one",
        "-n",
        "1",
        "-f",
        "80",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--quiet",
    ]);
    let html = std::fs::read_to_string(out.join("SpliceAI_one_80_0_rs42/0/report.html")).unwrap();
    for (id, svg) in charts(&html) {
        let m = marks(&svg);
        let count = |r: &str, filled: bool| m.iter().filter(|x| x.0 == r && x.1 == filled).count();
        match id.as_str() {
            "learning-rate" => assert!(m.is_empty(), "{id}"),
            "loss" => assert_eq!(
                (count("2", true), count("3", true), count("5", false)),
                (1, 1, 1),
                "{id}: train a small dot, validation a dot, test a ring: {m:?}"
            ),
            _ => assert_eq!(
                (count("3", true), count("5", false), m.len()),
                (1, 1, 2),
                "{id}: {m:?}"
            ),
        }
    }
}

#[test]
fn test_prints_the_labelled_table_and_report_reads_its_output() {
    let r = runs();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.scratch.join("run.json")).unwrap())
            .unwrap();
    let test_h5 = info["test_dataset"].as_str().unwrap().to_string();
    let model = r.scratch.join("models/model_best.pt");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scores");
    let args = |extra: &[&'static str], o: &Path| {
        let mut a: Vec<String> = [
            "test",
            "-m",
            model.to_str().unwrap(),
            "-test",
            &test_h5,
            "-f",
            "80",
            "--device",
            "cpu",
            "--quiet",
            "-o",
            o.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    fn strs(a: &[String]) -> Vec<&str> {
        a.iter().map(String::as_str).collect()
    }
    let a = args(&[], &out);
    let stdout = run_ok(&strs(&a));
    for label in [
        "loss",
        "acc top1",
        "acc AUPRC",
        "don AUPRC",
        "don F1",
        "windows/s",
    ] {
        assert!(stdout.contains(label), "no `{label}` column:\n{stdout}");
    }
    assert!(stdout.contains("\n  test "), "no test row:\n{stdout}");
    assert!(stdout.contains("(8 windows"), "{stdout}");
    assert!(!stdout.contains("Testing model..."), "{stdout}");
    let a = args(&["--console", "upstream"], &dir.path().join("up"));
    let up = run_ok(&strs(&a));
    assert!(up.contains("Testing model..."), "{up}");
    assert!(up.contains("Testing Loss: "), "{up}");
    assert!(!up.contains("acc AUPRC"), "{up}");
    // `report` reads a `test` output directory: one test mark per chart, the folder as its name.
    let html_path = dir.path().join("t.html");
    run_ok(&[
        "report",
        out.to_str().unwrap(),
        "-o",
        html_path.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&html_path).unwrap();
    let (_, svg) = charts(&html)
        .into_iter()
        .find(|(id, _)| id == "acceptor-auprc")
        .unwrap();
    assert_eq!(marks(&svg), vec![("5".to_string(), false)]);
}

#[test]
fn freeze_bn_cache_goes_to_cache_dir_and_its_size_is_printed() {
    let r = runs();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.scratch.join("run.json")).unwrap())
            .unwrap();
    let (train, test) = (
        info["train_dataset"].as_str().unwrap(),
        info["test_dataset"].as_str().unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("scratch_disk");
    std::fs::create_dir(&cache_dir).unwrap();
    let out = dir.path().join("runs");
    let best = r.scratch.join("models/model_best.pt");
    let stdout = run_ok(&[
        "transfer",
        "-m",
        best.to_str().unwrap(),
        "-u",
        "2",
        "--freeze-bn",
        "--cache-dir",
        cache_dir.to_str().unwrap(),
        "--keep-cache",
        "-train",
        train,
        "-test",
        test,
        "-o",
        out.to_str().unwrap(),
        "-p",
        "fb",
        "-n",
        "1",
        "-f",
        "80",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--quiet",
        "--no-report",
    ]);
    let cache = cache_dir.join("SpliceAI_fb_80_0_rs42-0.prefix_cache.f16");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Frozen-prefix cache"))
        .unwrap_or_else(|| panic!("no cache line:\n{stdout}"));
    assert!(
        line.contains(&format!("GB on disk in {}", cache.display())),
        "{line}"
    );
    assert!(line.contains("kept after the run"), "{line}");
    let len = std::fs::metadata(&cache).unwrap().len();
    assert!(len > 0);
    assert!(!out
        .join("SpliceAI_fb_80_0_rs42/0")
        .join("prefix_cache.f16")
        .exists());

    // The no-clobber check knows the cache file: where its name is the pretrained model, nothing runs.
    #[cfg(unix)]
    {
        let clash = cache_dir.join("SpliceAI_cl_80_0_rs42-0.prefix_cache.f16");
        std::os::unix::fs::symlink(&best, &clash).unwrap();
        let before = std::fs::read(&best).unwrap();
        let err = run_err(&[
            "transfer",
            "-m",
            best.to_str().unwrap(),
            "--freeze-bn",
            "--cache-dir",
            cache_dir.to_str().unwrap(),
            "-train",
            train,
            "-test",
            test,
            "-o",
            out.to_str().unwrap(),
            "-p",
            "cl",
            "-n",
            "1",
            "-f",
            "80",
            "--device",
            "cpu",
            "--quiet",
        ]);
        assert!(
            err.contains("--cache-dir") && err.contains("--pretrained-model"),
            "{err}"
        );
        assert_eq!(std::fs::read(&best).unwrap(), before);
        assert!(!out.join("SpliceAI_cl_80_0_rs42").exists());
    }
}
