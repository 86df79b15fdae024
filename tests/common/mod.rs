//! Shared helpers for the integration tests: finding the external test data (and the skip-or-fail rule when
//! it is absent), comparing tensors and arrays ([`compare`]), the op tests' inputs and f64 conv reference
//! ([`ops`]), and small builders several test files use.
#![allow(dead_code)]

pub mod bf16;
pub mod compare;
pub mod ops;

/// The program's allocator, as `src/main.rs` sets it, so that every test binary runs as the program does
/// and the memory tests count.
#[global_allocator]
static GLOBAL: openspliceai_rs::bench::memory::ProgramAllocator =
    openspliceai_rs::bench::memory::PROGRAM_ALLOCATOR;

use std::ffi::OsStr;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use openspliceai_rs::data::example::{write_example_data, ExampleOptions, ExamplePaths};

// ---------------------------------------------------------------------------------------------------------
// External test data and the skip rule
// ---------------------------------------------------------------------------------------------------------

/// True when running under CI (`CI=true`), where missing test data is a failure, not a skip.
pub fn under_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// The running test's name (libtest names each test's thread after the test).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string()
}

/// Something a test needs is absent (`what` says what, and why it is not here): under CI a failure (panics
/// with `what`), otherwise prints `SKIP: <test>: <what>`, so that a run without it says what it left out.
pub fn missing(what: &str) {
    let test = test_name();
    if under_ci() {
        panic!("{test}: {what}; it is required under CI=true");
    }
    eprintln!("SKIP: {test}: {what}");
}

/// A kind of test data kept outside the repository.
pub struct Source {
    /// The environment variable that names its folder.
    pub env: &'static str,
    /// Its folder when the variable is unset, relative to `../shared` beside the project.
    pub shared: &'static str,
    /// What it is and why the repository does not hold it, for the skip message.
    pub about: &'static str,
}

/// The real OpenSpliceAI-MANE checkpoints, PyTorch's outputs for them and a real upstream run.
pub const FIXTURES: Source = Source {
    env: "OSAI_FIXTURES",
    shared: "fixtures",
    about: "the fixtures (real OpenSpliceAI-MANE checkpoints, GPL-3.0, and PyTorch's outputs) are test data \
            kept outside the repository",
};

/// OpenSpliceAI 0.0.7's own `predict`/`variant` outputs on fly data, with their inputs.
pub const PV_DATA: Source = Source {
    env: "OSAI_PV_DATA",
    shared: "data/predict-variant",
    about: "upstream's predict/variant outputs on fly data are reference data kept outside the repository",
};

/// OpenSpliceAI 0.0.7's own `create-data` outputs, with their inputs.
pub const CREATE_DATA: Source = Source {
    env: "OSAI_CREATE_DATA",
    shared: "data/create-data",
    about: "upstream's create-data outputs are reference data kept outside the repository",
};

/// Real `create-data` files of D. melanogaster chr2L genes.
pub const DMEL_DATA: Source = Source {
    env: "OSAI_DMEL_DATA",
    shared: "data/dmel-chr2L",
    about: "the D. melanogaster chr2L HDF5 files are real data kept outside the repository",
};

/// External test data: the folder `$<env>` names, else `<manifest dir>/../shared/<shared>`, which must hold
/// `needs` (a path inside it; `""` for the folder alone). Returns the folder. When absent: prints
/// `SKIP: <test>: missing <what> (...)` and returns `None`, or panics under `CI=true` (see [`missing`]).
pub fn external_data(source: &Source, needs: &str, what: &str) -> Option<PathBuf> {
    let root = match std::env::var_os(source.env) {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared")
            .join(source.shared),
    };
    let absent = if !root.is_dir() {
        format!("no folder {}", root.display())
    } else if !needs.is_empty() && !root.join(needs).exists() {
        format!("{} has no {needs}", root.display())
    } else {
        return Some(root);
    };
    missing(&format!(
        "missing {what} ({absent}); {}; set {} to their folder to run this test",
        source.about, source.env
    ));
    None
}

/// The fixtures folder.
pub fn fixtures_dir() -> Option<PathBuf> {
    external_data(&FIXTURES, "", "the fixtures folder")
}

/// A file or folder under the fixtures folder.
pub fn fixture(rel: &str) -> Option<PathBuf> {
    external_data(&FIXTURES, rel, &format!("fixture {rel}")).map(|d| d.join(rel))
}

/// The real OpenSpliceAI-MANE checkpoint for a flanking size.
pub fn mane_checkpoint(flank: usize) -> Option<PathBuf> {
    let rel = format!("openspliceai-mane/{flank}nt/model_{flank}nt_rs10.pt");
    external_data(
        &FIXTURES,
        &rel,
        &format!("the OpenSpliceAI-MANE {flank}nt checkpoint"),
    )
    .map(|d| d.join(rel))
}

/// The `predict`/`variant` reference data, for tests that also run the MANE checkpoints on it.
pub struct PvData {
    root: PathBuf,
}

impl PvData {
    /// The data folder, once the fixtures folder (the checkpoints) is there too.
    pub fn locate() -> Option<PvData> {
        external_data(
            &FIXTURES,
            "",
            "the fixtures folder with the OpenSpliceAI-MANE checkpoints these runs use",
        )?;
        let root = external_data(&PV_DATA, "", "the predict/variant reference data")?;
        Some(PvData { root })
    }

    /// An input file (`inputs/<name>`).
    pub fn input(&self, name: &str) -> PathBuf {
        self.root.join("inputs").join(name)
    }

    /// An input file as a command-line argument.
    pub fn input_arg(&self, name: &str) -> String {
        self.input(name).to_string_lossy().into_owned()
    }

    /// Upstream's output (`upstream/<rel>`).
    pub fn upstream(&self, rel: &str) -> PathBuf {
        self.root.join("upstream").join(rel)
    }
}

/// The create-data reference data (its `upstream/` runs and their `inputs/`).
pub fn create_data_dir() -> Option<PathBuf> {
    external_data(&CREATE_DATA, "upstream", "the create-data reference runs")
}

/// The real D. melanogaster chr2L `create-data` files.
pub fn dmel_dir() -> Option<PathBuf> {
    external_data(
        &DMEL_DATA,
        "dataset_test.h5",
        "the D. melanogaster chr2L datasets",
    )
}

// ---------------------------------------------------------------------------------------------------------
// Small builders and runners
// ---------------------------------------------------------------------------------------------------------

/// A text file, gunzipped when its name ends in `.gz`.
pub fn read_text(path: &Path) -> String {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        s
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

/// The device the device-parameterised tests (`train_step`) run on: `$OSAI_TEST_DEVICE` (as `--device`
/// takes it), else the CPU. `scripts/gpu-check.sh` runs them with `cuda`.
pub fn test_device() -> candle_core::Device {
    let spec = std::env::var("OSAI_TEST_DEVICE").unwrap_or_else(|_| "cpu".to_string());
    openspliceai_rs::device::select_device(&spec)
        .unwrap_or_else(|e| panic!("OSAI_TEST_DEVICE={spec}: {e}"))
}

/// Synthetic training and test HDF5s in `dir`: `train_shards` × `windows_per_shard` training windows and
/// one test shard of `windows_per_shard` windows, seeded by `seed`.
pub fn example_data(
    dir: &Path,
    train_shards: usize,
    windows_per_shard: usize,
    seed: u64,
) -> ExamplePaths {
    let opts = ExampleOptions {
        train_shards,
        test_shards: 1,
        windows_per_shard,
        seed,
        ..ExampleOptions::default()
    };
    write_example_data(dir, &opts).expect("writing example data")
}

/// `n` deterministic pseudo-random bytes (xorshift64 from `seed`).
pub fn noise_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A zip archive of stored (uncompressed) records.
pub fn make_zip(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in records {
        w.start_file(*name, opts).expect("start zip record");
        w.write_all(data).expect("write zip record");
    }
    w.finish().expect("finish zip").into_inner()
}

/// `scripts/check_pt_structure.py` of this project.
fn structure_script() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_pt_structure.py");
    if script.exists() {
        return Some(script);
    }
    // A crate that links these test files from the project: find the script beside the real files
    // (tests/common/mod.rs → the project root).
    let real = std::fs::canonicalize(file!()).ok()?;
    Some(
        real.parent()?
            .parent()?
            .parent()?
            .join("scripts/check_pt_structure.py"),
    )
}

/// Runs `scripts/check_pt_structure.py` with `python` on `args`: (exit status success, stdout + stderr).
pub fn run_structure_script(python: &str, args: &[&OsStr]) -> std::io::Result<(bool, String)> {
    let script = structure_script()
        .ok_or_else(|| std::io::Error::other("check_pt_structure.py not found"))?;
    let out = Command::new(python).arg(&script).args(args).output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// `scripts/check_pt_structure.py` on `path` with python3; `None` when python3 cannot run it (a skip, or a
/// failure under CI: see [`missing`]).
pub fn check_pt_structure(path: &Path) -> Option<(bool, String)> {
    match run_structure_script("python3", &[path.as_os_str()]) {
        Ok(r) => Some(r),
        Err(e) => {
            missing(&format!(
                "python3 cannot run check_pt_structure.py ({e}), so the independent check of the .pt \
                 structure was not run"
            ));
            None
        }
    }
}

/// Writes `src` compressed as plain gzip (one member) to `dst`.
pub fn gzip_copy(src: &Path, dst: &Path) {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&std::fs::read(src).expect("read"))
        .expect("gzip");
    std::fs::write(dst, e.finish().expect("gzip")).expect("write");
}

/// Writes `src` compressed as BGZF (what bgzip writes) to `dst`.
pub fn bgzip_copy(src: &Path, dst: &Path) {
    let mut w = noodles_bgzf::io::Writer::new(Vec::new());
    w.write_all(&std::fs::read(src).expect("read"))
        .expect("bgzip");
    std::fs::write(dst, w.finish().expect("bgzip")).expect("write");
}

/// Runs the project's binary with `args`, echoing its stderr (shown when a test fails).
pub fn run_bin(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_openspliceai-rs"))
        .args(args)
        .output()
        .expect("run the binary");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}
