//! `--resume`: two uninterrupted runs give the same bytes; a run killed at any point (mid-epoch, while a
//! checkpoint is written, between an epoch's files and its state, after the state) or stopped by SIGTERM
//! and then resumed ends with the bytes of the uninterrupted run; changed flags, changed inputs and a
//! corrupt state are refused by name; a second run into a locked directory is refused.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_openspliceai-rs")
}

struct Data {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    train: String,
    test: String,
}

fn data() -> Data {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let paths = common::example_data(&root.join("data"), 2, 16, 11);
    Data {
        train: paths.train.to_str().unwrap().into(),
        test: paths.test.to_str().unwrap().into(),
        root,
        _tmp: tmp,
    }
}

/// `train` from scratch, 80nt, 3 epochs, into `out`, with `extra` flags.
fn train_cmd(d: &Data, out: &str, extra: &[&str]) -> Command {
    let out_dir = d.root.join(out);
    let mut cmd = Command::new(bin());
    cmd.args([
        "train", "-train", &d.train, "-test", &d.test, "-f", "80", "-n", "3",
    ])
    .args([
        "-p",
        "r",
        "-o",
        out_dir.to_str().unwrap(),
        "--batch-size",
        "8",
    ])
    .args(["--device", "cpu", "--quiet", "--no-report"])
    .args(extra);
    cmd
}

/// [`train_cmd`] run to its end with the environment `env`.
fn train(d: &Data, out: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = train_cmd(d, out, extra);
    cmd.envs(env.iter().copied());
    cmd.output().expect("run the binary")
}

fn run_dir(d: &Data, out: &str) -> PathBuf {
    d.root.join(out).join("SpliceAI_r_80_0_rs42/0")
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "failed ({:?}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file of a run that must not depend on interruptions: checkpoints, LOG/ and `metrics.jsonl`
/// without its timings. (`run.json` holds the command line, `run_state` and `run.lock` its identity.)
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if rel == "metrics.jsonl" {
                files.insert(rel, without_timings(&std::fs::read_to_string(&p).unwrap()));
            } else if rel.starts_with("models/") || rel.starts_with("LOG/") {
                files.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

fn without_timings(jsonl: &str) -> Vec<u8> {
    let mut out = String::new();
    for line in jsonl.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("seconds");
        o.remove("windows_per_s");
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

fn assert_same(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>, what: &str) {
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(a), names(b), "{what}: the same files");
    for (name, bytes) in a {
        assert!(bytes == &b[name], "{what}: {name} differs");
    }
}

#[test]
fn uninterrupted_runs_agree_and_killed_runs_resume_to_the_same_bytes() {
    let d = data();
    ok(&train(&d, "ref", &[], &[]));
    let reference = snapshot(&run_dir(&d, "ref"));
    assert!(reference.contains_key("models/model_2.pt"));
    assert!(reference.contains_key("models/model_best.pt"));
    ok(&train(&d, "again", &[], &[]));
    assert_same(&reference, &snapshot(&run_dir(&d, "again")), "a second run");

    // Kill points: mid-epoch (first, middle and last epoch), while a checkpoint is being written,
    // between an epoch's files and its state, and just after a state.
    for point in [
        "batch:0:1",
        "checkpoint:0",
        "state:0",
        "epoch:0",
        "batch:1:2",
        "checkpoint:2",
        "state:2",
    ] {
        let out = format!("kill-{}", point.replace(':', "-"));
        let killed = train(&d, &out, &[], &[("OSAI_TEST_ABORT", point)]);
        assert!(!killed.status.success(), "{point}: the run must die");
        let resumed = train(&d, &out, &["--resume"], &[]);
        ok(&resumed);
        assert_same(&reference, &snapshot(&run_dir(&d, &out)), point);
    }

    // --resume on a finished run trains nothing and changes nothing.
    let again = train(&d, "ref", &["--resume"], &[]);
    ok(&again);
    assert_same(
        &reference,
        &snapshot(&run_dir(&d, "ref")),
        "a finished run resumed",
    );
}

#[test]
fn sigterm_stops_after_a_batch_and_the_run_resumes_to_the_same_bytes() {
    let d = data();
    ok(&train(&d, "ref", &[], &[]));
    let reference = snapshot(&run_dir(&d, "ref"));
    let child = train_cmd(&d, "term", &[])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Once the first batch is logged, the handlers are installed and training is under way.
    let batches = run_dir(&d, "term").join("LOG/TRAIN/loss_every_update.txt");
    let start = std::time::Instant::now();
    while std::fs::metadata(&batches).map_or(true, |m| m.len() == 0) {
        assert!(start.elapsed().as_secs() < 60, "the run never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Stopped by the signal (143), or finished before it arrived (0) on a very fast machine.
    match out.status.code() {
        Some(143) => assert!(err.contains("--resume"), "{err}"),
        Some(0) => {}
        other => panic!("exit {other:?}: {err}"),
    }
    ok(&train(&d, "term", &["--resume"], &[]));
    assert_same(&reference, &snapshot(&run_dir(&d, "term")), "SIGTERM");
}

#[test]
fn resume_refuses_changed_flags_inputs_and_a_corrupt_state() {
    let d = data();
    let killed = train(&d, "x", &[], &[("OSAI_TEST_ABORT", "epoch:0")]);
    assert!(!killed.status.success());
    let dir = run_dir(&d, "x");

    let flag = train(
        &d,
        "x",
        &["--resume", "-s", "CosineAnnealingWarmRestarts"],
        &[],
    );
    assert!(!flag.status.success());
    let e = stderr(&flag);
    assert!(
        e.contains("--scheduler") && e.contains("MultiStepLR"),
        "{e}"
    );

    // Another data set at the same path.
    let other = d.root.join("other");
    let paths = common::example_data(&other, 1, 16, 99);
    let test_copy = std::fs::read(&d.test).unwrap();
    std::fs::copy(&paths.test, &d.test).unwrap();
    let changed = train(&d, "x", &["--resume"], &[]);
    std::fs::write(&d.test, &test_copy).unwrap();
    assert!(!changed.status.success());
    let e = stderr(&changed);
    assert!(e.contains(&d.test) && e.contains("changed"), "{e}");

    let state = dir.join("run_state.safetensors");
    let good = std::fs::read(&state).unwrap();
    std::fs::write(&state, b"not a state").unwrap();
    let corrupt = train(&d, "x", &["--resume"], &[]);
    assert!(!corrupt.status.success());
    let e = stderr(&corrupt);
    assert!(
        e.contains("run_state.safetensors") && e.contains("not a readable run state"),
        "{e}"
    );
    std::fs::write(&state, good).unwrap();

    // Checkpoints without any state (an older run): refused rather than overwritten.
    std::fs::remove_file(&state).unwrap();
    let stateless = train(&d, "x", &["--resume"], &[]);
    assert!(!stateless.status.success());
    assert!(
        stderr(&stateless).contains("cannot be resumed"),
        "{}",
        stderr(&stateless)
    );

    // --resume into an empty directory starts the run.
    ok(&train(&d, "fresh", &["--resume"], &[]));
    assert!(run_dir(&d, "fresh").join("models/model_2.pt").exists());
}

#[test]
fn a_second_run_into_a_locked_directory_is_refused() {
    let d = data();
    let dir = run_dir(&d, "locked");
    std::fs::create_dir_all(&dir).unwrap();
    let _held = openspliceai_rs::rundir::lock::RunLock::acquire(&dir, "train -p r (the first run)")
        .unwrap();
    let second = train(&d, "locked", &[], &[]);
    assert!(!second.status.success());
    let e = stderr(&second);
    assert!(
        e.contains("another run is writing") && e.contains("(the first run)"),
        "{e}"
    );
    assert!(!dir.join("models/model_0.pt").exists());
}

#[test]
fn a_cached_freeze_bn_transfer_resumes_to_the_same_bytes() {
    let d = data();
    ok(&train(&d, "base", &[], &[]));
    let base = run_dir(&d, "base").join("models/model_best.pt");
    let transfer = |out: &str, extra: &[&str], env: &[(&str, &str)]| {
        let out_dir = d.root.join(out);
        let mut args = vec![
            "transfer",
            "-train",
            &d.train,
            "-test",
            &d.test,
            "-m",
            base.to_str().unwrap(),
            "-f",
            "80",
            "-u",
            "2",
            "--freeze-bn",
            "-n",
            "3",
            "-p",
            "r",
            "-o",
            out_dir.to_str().unwrap(),
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--quiet",
            "--no-report",
        ];
        args.extend_from_slice(extra);
        let mut cmd = Command::new(bin());
        cmd.args(&args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    ok(&transfer("tref", &[], &[]));
    let reference = snapshot(&run_dir(&d, "tref"));
    for point in ["batch:1:1", "epoch:1"] {
        let out = format!("t-{}", point.replace(':', "-"));
        assert!(!transfer(&out, &[], &[("OSAI_TEST_ABORT", point)])
            .status
            .success());
        ok(&transfer(&out, &["--resume"], &[]));
        assert_same(&reference, &snapshot(&run_dir(&d, &out)), point);
    }
}
