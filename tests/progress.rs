//! Progress that logs show: with stderr not a terminal (a pipe here, a log file in a batch job), the long
//! commands print a plain line at the `--progress-interval` with done/total, rate and ETA; a short run
//! with the default interval (30 s) prints none; `-q` prints none.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::PvData;

const BIN: &str = env!("CARGO_BIN_EXE_openspliceai-rs");

fn model(flank: usize) -> String {
    common::mane_checkpoint(flank)
        .expect("checkpoint")
        .to_string_lossy()
        .into_owned()
}

/// Runs the binary with stderr to a pipe; returns the exit status and each stderr line with the time it
/// arrived.
fn run_timed(args: &[&str]) -> (std::process::ExitStatus, Vec<(Duration, String)>) {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    let err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    for line in err.lines() {
        let line = line.unwrap();
        eprintln!("{:6.2}s {line}", start.elapsed().as_secs_f64());
        lines.push((start.elapsed(), line));
    }
    (child.wait().unwrap(), lines)
}

fn progress_lines<'a>(
    lines: &'a [(Duration, String)],
    prefix: &str,
) -> Vec<&'a (Duration, String)> {
    lines
        .iter()
        .filter(|(_, l)| l.starts_with(prefix) && l.contains("/s, elapsed "))
        .collect()
}

/// Asserts a plain line reads `<label>: done/total unit (pct%), rate unit/s, elapsed ..., ETA ...`.
fn assert_line(line: &str, label: &str, unit: &str, total: u64) {
    let rest = line
        .strip_prefix(&format!("{label}: "))
        .unwrap_or_else(|| panic!("{line}"));
    let (done, rest) = rest.split_once('/').unwrap_or_else(|| panic!("{line}"));
    let done: u64 = done.parse().unwrap_or_else(|_| panic!("{line}"));
    assert!(done <= total, "{line}");
    assert!(
        rest.starts_with(&format!("{total} {unit} (")),
        "total {total} {unit} missing: {line}"
    );
    assert!(rest.contains(&format!(" {unit}/s, elapsed ")), "{line}");
    assert!(rest.contains(", ETA "), "{line}");
}

/// The gaps between consecutive progress lines are the interval (within what a loaded machine allows).
fn assert_spacing(lines: &[&(Duration, String)], interval: f64) {
    for w in lines.windows(2) {
        let gap = (w[1].0 - w[0].0).as_secs_f64();
        assert!(
            gap > 0.5 * interval && gap < 2.5 * interval,
            "lines {gap:.2} s apart, interval {interval} s:\n{}\n{}",
            w[0].1,
            w[1].1
        );
    }
}

fn variant_args<'a>(c: &'a [String; 4], out: &'a str, flank: &'a str) -> Vec<&'a str> {
    vec![
        "variant", "-R", &c[0], "-A", &c[1], "-I", &c[2], "-m", &c[3], "-f", flank, "-O", out,
    ]
}

#[test]
fn variant_prints_progress_lines_at_the_interval_when_stderr_is_a_pipe() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.vcf").to_string_lossy().into_owned();
    let inputs = [
        c.input_arg("region200k.fa"),
        c.input_arg("genes_region200k.txt"),
        c.input_arg("variants.vcf"),
        model(10000),
    ];
    let mut args = variant_args(&inputs, &out, "10000");
    args.extend(["--progress-interval", "0.5"]);
    let (status, lines) = run_timed(&args);
    assert!(status.success());
    let progress = progress_lines(&lines, "variant: ");
    assert!(
        progress.len() >= 2,
        "expected progress lines every 0.5 s: {lines:?}"
    );
    for (_, l) in &progress {
        // The total comes from a counting pass over the input file: its 91 records.
        assert_line(l, "variant", "records", 91);
    }
    assert_spacing(&progress, 0.5);
    // Records advance as their windows are scored, so the later lines have a rate and an ETA.
    let last = &progress[progress.len() - 1].1;
    assert!(!last.starts_with("variant: 0/"), "{last}");
    assert!(!last.contains("ETA unknown"), "{last}");
    // -q: none.
    std::fs::remove_file(&out).unwrap();
    args.push("-q");
    let (status, lines) = run_timed(&args);
    assert!(status.success());
    assert!(progress_lines(&lines, "variant: ").is_empty(), "{lines:?}");
}

#[test]
fn a_short_run_prints_at_most_one_progress_line_by_default() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.vcf").to_string_lossy().into_owned();
    let inputs = [
        c.input_arg("region200k.fa"),
        c.input_arg("genes_region200k.txt"),
        c.input_arg("variants.vcf"),
        model(80),
    ];
    let (status, lines) = run_timed(&variant_args(&inputs, &out, "80"));
    assert!(status.success());
    assert!(progress_lines(&lines, "variant: ").len() <= 1, "{lines:?}");
}

/// `predict` on a FASTA with a `.fai`: the total is the FASTA's windows (200 kb: 40 of 5000 bases).
#[test]
fn predict_progress_lines_know_the_total_from_the_fasta_index() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let fa = tmp.path().join("region.fa");
    std::fs::copy(c.input("region200k.fa"), &fa).unwrap();
    std::fs::copy(
        c.input("region200k.fa.fai"),
        tmp.path().join("region.fa.fai"),
    )
    .unwrap();
    let (fa, out, m) = (
        fa.to_string_lossy().into_owned(),
        tmp.path().join("out").to_string_lossy().into_owned(),
        model(10000),
    );
    let (status, lines) = run_timed(&[
        "predict",
        "-i",
        &fa,
        "-m",
        &m,
        "-f",
        "10000",
        "-o",
        &out,
        "--progress-interval",
        "0.3",
    ]);
    assert!(status.success());
    let progress = progress_lines(&lines, "predict: ");
    assert!(!progress.is_empty(), "no progress line: {lines:?}");
    for (_, l) in &progress {
        assert_line(l, "predict", "windows", 40);
    }
    assert_spacing(&progress, 0.3);
}

#[test]
fn progress_interval_must_be_a_positive_number() {
    for bad in ["0", "-1", "abc", "nan"] {
        let r = Command::new(BIN)
            .args(["variant", "-R", "x.fa", "-A", "g.txt", "-m", "m.pt"])
            .arg(format!("--progress-interval={bad}"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("--progress-interval"), "{err}");
        assert!(err.contains("number of seconds"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `test` (the split's pass over its batches) prints its lines too, labelled by the split.
#[test]
fn test_command_prints_progress_lines_of_its_pass() {
    let Some(m) = common::mane_checkpoint(2000) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = common::example_data(&tmp.path().join("data"), 1, 60, 7);
    let (m, test, out) = (
        m.to_string_lossy().into_owned(),
        data.test.to_string_lossy().into_owned(),
        tmp.path().join("t").to_string_lossy().into_owned(),
    );
    let (status, lines) = run_timed(&[
        "test",
        "-m",
        &m,
        "-test",
        &test,
        "-f",
        "2000",
        "-o",
        &out,
        "--device",
        "cpu",
        "--progress-interval",
        "0.3",
    ]);
    assert!(status.success());
    let progress = progress_lines(&lines, "test: ");
    assert!(!progress.is_empty(), "no progress line: {lines:?}");
    for (_, l) in &progress {
        assert_line(l, "test", "batches", 3);
    }
    assert_spacing(&progress, 0.3);
}
