//! The command line on checkpoints: `inspect` of a real checkpoint, `convert` round trips, and clear errors
//! (exit code, file name, the problem, no panic) for malformed checkpoints and malformed `forward` inputs.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{Device, Tensor};
use common::{check_pt_structure, make_zip, noise_bytes};
use openspliceai_rs::checkpoint::{self, StateDict};
use openspliceai_rs::model::{io, FlankConfig, SpliceAi};

const BIN: &str = env!("CARGO_BIN_EXE_openspliceai-rs");

/// The pickle of `os.system("ls")`: loading it with Python's pickle would run a shell command.
const OS_SYSTEM_PICKLE: &[u8] =
    b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.";

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_success(what: &str, out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(
        out.status.success(),
        "{what} failed with {}:\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    stdout
}

/// The command failed cleanly: exit code ≠ 0, stderr names `file` and contains one of `problem` (case
/// insensitive), and nothing panicked.
fn assert_clean_failure(what: &str, out: &Output, file: &Path, problem: &[&str]) {
    let (stdout, stderr) = text(out);
    let context = format!("{what}\nstdout: {stdout}\nstderr: {stderr}");
    assert!(
        !out.status.success(),
        "{what} should fail, exited with {}\n{context}",
        out.status
    );
    assert!(
        out.status.code().is_some(),
        "{what} was killed by a signal\n{context}"
    );
    for bad in ["panicked", "RUST_BACKTRACE"] {
        assert!(
            !stderr.contains(bad),
            "{what}: stderr mentions {bad:?}\n{context}"
        );
    }
    let name = file.display().to_string();
    assert!(
        stderr.contains(&name),
        "{what}: stderr does not name the file {name}\n{context}"
    );
    let lower = stderr.to_lowercase();
    assert!(
        problem.iter().any(|p| lower.contains(&p.to_lowercase())),
        "{what}: stderr does not say what is wrong (expected one of {problem:?})\n{context}"
    );
}

/// Deterministic bytes that are neither a zip nor a safetensors header.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = noise_bytes(0x9e37_79b9_7f4a_7c15, n);
    out[0] = 0xe9; // not 'P' (zip)
    out[8] = 0x00; // not '{' (safetensors JSON header)
    out
}

/// Parameters of OpenSpliceAI's SpliceAI-400 from its architecture (1×1 convs 4→32 and 32→32 in, eight
/// residual units of two BatchNorms and two 32→32 W=11 convs, two 1×1 Skip convs, a 1×1 conv 32→3 out),
/// BatchNorm buffers excluded: an independent count to check `inspect` against.
fn spliceai_400_parameter_count() -> usize {
    let conv = |cin: usize, cout: usize, k: usize| cout * cin * k + cout;
    let bn = 2 * 32;
    let units = 8 * (2 * bn + 2 * conv(32, 32, 11));
    conv(4, 32, 1) + conv(32, 32, 1) + units + 2 * conv(32, 32, 1) + conv(32, 3, 1)
}

#[test]
fn inspect_describes_the_real_400nt_checkpoint() {
    let Some(ckpt) = common::mane_checkpoint(400) else {
        return;
    };
    let out = run(&["inspect".as_ref(), ckpt.as_os_str()]);
    let stdout = assert_success("inspect", &out);
    assert!(
        stdout.contains("flanking size 400"),
        "inspect does not report flanking size 400:\n{stdout}"
    );
    let params = spliceai_400_parameter_count();
    assert_eq!(params, 185_187);
    assert!(
        stdout.contains(&format!("parameters: {params}")),
        "inspect does not report {params} parameters:\n{stdout}"
    );
    let sd = checkpoint::load(&ckpt).expect("400nt checkpoint");
    assert_eq!(sd.len(), 122);
    assert!(
        stdout.contains("tensors: 122"),
        "inspect does not report 122 tensors:\n{stdout}"
    );
    // Every tensor name, at the start of its own line, in state-dict order.
    let listed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| sd.contains(w))
        .collect();
    assert_eq!(
        listed,
        sd.names(),
        "inspect should list every tensor name once, in order:\n{stdout}"
    );
}

/// Asserts that two state dicts hold the same names in the same order with bit-identical tensors.
fn assert_identical(a: &StateDict, b: &StateDict, what: &str) {
    assert_eq!(a.names(), b.names(), "{what}: names or order differ");
    for ((name, x), (_, y)) in a.iter().zip(b.iter()) {
        assert_eq!(x.dtype, y.dtype, "{what}: `{name}` dtype");
        assert_eq!(x.shape, y.shape, "{what}: `{name}` shape");
        assert!(x.data == y.data, "{what}: `{name}` bytes differ");
    }
}

#[test]
fn convert_round_trip_is_bit_identical() {
    let Some(ckpt) = common::mane_checkpoint(400) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let st = dir.path().join("model_400nt.safetensors");
    let back = dir.path().join("model_400nt.pt");
    assert_success(
        "convert .pt -> .safetensors",
        &run(&["convert".as_ref(), ckpt.as_os_str(), st.as_os_str()]),
    );
    assert_success(
        "convert .safetensors -> .pt",
        &run(&["convert".as_ref(), st.as_os_str(), back.as_os_str()]),
    );
    let original = checkpoint::load(&ckpt).expect("original");
    let via_st = checkpoint::load(&st).expect("converted safetensors");
    let round = checkpoint::load(&back).expect("round-tripped .pt");
    assert_eq!(
        checkpoint::detect_format(&st).expect("format"),
        checkpoint::Format::Safetensors
    );
    assert_eq!(
        checkpoint::detect_format(&back).expect("format"),
        checkpoint::Format::Pt
    );
    assert_identical(&original, &via_st, ".pt -> .safetensors");
    assert_identical(&original, &round, ".pt -> .safetensors -> .pt");
    if let Some((ok, report)) = check_pt_structure(&back) {
        assert!(
            ok,
            "check_pt_structure.py rejects {}: {report}",
            back.display()
        );
        eprintln!("check_pt_structure.py: {}", report.trim());
    }
}

/// The malformed checkpoints, each with the words one of which its error must contain. The truncated zip is
/// the first half of the real 80nt checkpoint, when the fixtures are there.
fn malformed_checkpoints(dir: &Path) -> Vec<(&'static str, PathBuf, Vec<&'static str>)> {
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write malformed checkpoint");
        p
    };
    let mut cases = vec![
        ("empty file", write("empty.pt", &[]), vec!["empty"]),
        (
            "random bytes",
            write("random.pt", &random_bytes(4096)),
            vec!["not a checkpoint"],
        ),
        (
            "pickle naming os.system",
            write(
                "os_system.pt",
                &make_zip(&[("archive/data.pkl", OS_SYSTEM_PICKLE)]),
            ),
            vec!["os.system"],
        ),
        (
            "missing file",
            dir.join("does_not_exist.pt"),
            vec!["no such file", "cannot find", "not found"],
        ),
    ];
    if let Some(real) = common::mane_checkpoint(80) {
        let bytes = std::fs::read(&real).expect("read real checkpoint");
        cases.push((
            "truncated zip",
            write("truncated.pt", &bytes[..bytes.len() / 2]),
            vec!["zip"],
        ));
    }
    cases
}

/// An f32 tensor of zeros.
fn zeros(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape, candle_core::DType::F32, &Device::Cpu).expect("zeros")
}

fn forward_args<'a>(
    model: &'a Path,
    input: &'a Path,
    output: &'a Path,
) -> Vec<&'a std::ffi::OsStr> {
    vec![
        "forward".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
        "--flanking-size".as_ref(),
        "80".as_ref(),
        "--input".as_ref(),
        input.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
        "--device".as_ref(),
        "cpu".as_ref(),
    ]
}

#[test]
fn malformed_checkpoints_are_clean_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("x.safetensors");
    save_tensors(&input, &[("x", zeros(&[1, 4, 5080]))]);
    let output = dir.path().join("probs.safetensors");
    for (what, path, problem) in malformed_checkpoints(dir.path()) {
        let out = run(&["inspect".as_ref(), path.as_os_str()]);
        assert_clean_failure(&format!("inspect on {what}"), &out, &path, &problem);
        let out = run(&forward_args(&path, &input, &output));
        assert_clean_failure(&format!("forward --model {what}"), &out, &path, &problem);
        assert!(
            !output.exists(),
            "forward --model {what} wrote {}",
            output.display()
        );
    }
}

/// A valid 80nt checkpoint with fresh weights, `dir/fresh_80nt.safetensors`.
fn fresh_80nt_checkpoint(dir: &Path) -> PathBuf {
    let ckpt = dir.join("fresh_80nt.safetensors");
    let model =
        SpliceAi::new(FlankConfig::for_flank(80).expect("80"), 1, &Device::Cpu).expect("model");
    checkpoint::save(&ckpt, &io::state_dict(&model).expect("state dict"))
        .expect("write checkpoint");
    ckpt
}

fn save_tensors(path: &Path, tensors: &[(&str, Tensor)]) {
    let map: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    candle_core::safetensors::save(&map, path).expect("write safetensors input");
}

#[test]
fn forward_rejects_malformed_inputs_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A valid 80nt checkpoint (fresh weights) so that only the input is at fault.
    let ckpt = fresh_80nt_checkpoint(dir.path());
    // The same command with a good input succeeds, so the failures below are the inputs' doing.
    let good = dir.path().join("good.safetensors");
    save_tensors(&good, &[("x", zeros(&[2, 4, 5080]))]);
    let good_out = dir.path().join("good_probs.safetensors");
    assert_success(
        "forward with a good input",
        &run(&forward_args(&ckpt, &good, &good_out)),
    );
    let probs = candle_core::safetensors::load(&good_out, &Device::Cpu).expect("probs written");
    assert_eq!(
        probs["probs"].dims(),
        &[2, 3, 5000],
        "shape of the written probs"
    );
    let wrong_len = dir.path().join("x_wrong_length.safetensors");
    save_tensors(&wrong_len, &[("x", zeros(&[1, 4, 100]))]);
    let wrong_channels = dir.path().join("x_wrong_channels.safetensors");
    save_tensors(&wrong_channels, &[("x", zeros(&[1, 5, 5080]))]);
    let wrong_rank = dir.path().join("x_wrong_rank.safetensors");
    save_tensors(&wrong_rank, &[("x", zeros(&[4, 5080]))]);
    let no_x = dir.path().join("no_x.safetensors");
    save_tensors(&no_x, &[("inputs", zeros(&[1, 4, 5080]))]);
    let not_safetensors = dir.path().join("garbage.safetensors");
    std::fs::write(&not_safetensors, random_bytes(512)).expect("write garbage");
    let cases: Vec<(&str, &Path, &[&str])> = vec![
        ("x of the wrong length", &wrong_len, &["shape"]),
        ("x with 5 channels", &wrong_channels, &["shape"]),
        ("x of rank 2", &wrong_rank, &["shape"]),
        ("no tensor x", &no_x, &["`x`"]),
        (
            "a file that is not safetensors",
            &not_safetensors,
            &["safetensors"],
        ),
    ];
    let output = dir.path().join("probs.safetensors");
    for (what, input, problem) in cases {
        let out = run(&forward_args(&ckpt, input, &output));
        assert_clean_failure(&format!("forward with {what}"), &out, input, problem);
        assert!(
            !output.exists(),
            "forward with {what} wrote {}",
            output.display()
        );
    }
}

#[test]
fn forward_rejects_an_input_without_windows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = fresh_80nt_checkpoint(dir.path());
    let empty = dir.path().join("x_no_windows.safetensors");
    save_tensors(&empty, &[("x", zeros(&[0, 4, 5080]))]);
    let output = dir.path().join("probs.safetensors");
    let out = run(&forward_args(&ckpt, &empty, &output));
    assert_clean_failure(
        "forward with x of shape (0, 4, 5080)",
        &out,
        &empty,
        &["window", "shape", "empty"],
    );
}

/// An 80nt checkpoint for a 400nt `forward`: refused by the completeness rule, naming the file; the
/// library's `infer::load_strict` gives the same typed error, and accepts the checkpoint at its own size.
#[test]
fn forward_refuses_a_checkpoint_of_a_smaller_flanking_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = fresh_80nt_checkpoint(dir.path());
    let input = dir.path().join("x.safetensors");
    save_tensors(&input, &[("x", zeros(&[1, 4, 5400]))]);
    let output = dir.path().join("probs.safetensors");
    let mut args = forward_args(&ckpt, &input, &output);
    args[4] = "400".as_ref();
    let out = run(&args);
    assert_clean_failure(
        "forward -f 400 with an 80nt checkpoint",
        &out,
        &ckpt,
        &["lacks 58 of the 122 tensors of a SpliceAI-400 model"],
    );
    assert!(
        !output.exists(),
        "a refused forward wrote {}",
        output.display()
    );

    let config = |f| openspliceai_rs::model::FlankConfig::for_flank(f).unwrap();
    match openspliceai_rs::infer::load_strict(&ckpt, config(400), &Device::Cpu) {
        Err(openspliceai_rs::infer::InferError::Model(
            openspliceai_rs::model::ModelError::Incomplete {
                flank,
                missing,
                total,
                first,
                ..
            },
        )) => assert_eq!(
            (flank, missing, total, first.as_str()),
            (400, 58, 122, "residual_units.5.batchnorm1.weight")
        ),
        Err(e) => panic!("expected ModelError::Incomplete, got {e}"),
        Ok((_, report)) => panic!("an 80nt checkpoint passed as a full 400nt model: {report}"),
    }
    let (_, report) = openspliceai_rs::infer::load_strict(&ckpt, config(80), &Device::Cpu)
        .expect("complete at 80nt");
    assert!(report.missing.is_empty(), "{report}");
}
