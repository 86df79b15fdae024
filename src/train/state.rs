//! `run_state.safetensors`: what `--resume` needs to continue a run exactly where its last complete epoch
//! left it, written atomically after every epoch (and once before the first).
//!
//! One safetensors file: each trained tensor's AdamW moments (`{name}.exp_avg`, `{name}.exp_avg_sq`, f32)
//! and, in the header's metadata under `run_state`, a JSON [`RunState`]: epochs done, the global batch
//! counter and learning rate, the best-loss tracker, the closing summary so far, the run's flags, what
//! identifies each input file, the length of every log file, and the checkpoint the weights come from
//! (its SHA-256). Nothing random needs saving: the validation split and each epoch's shuffle are
//! functions of `--seed` and the epoch, and the model has no dropout.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::optim::Moments;
use super::runner::RunSummary;
use super::TrainError;
use crate::rundir::{self, RunInfo};

/// The layout version of the state file.
pub const STATE_VERSION: u32 = 1;
const META_KEY: &str = "run_state";
/// Bytes hashed at each end of an input file ([`Fingerprint`]).
const FINGERPRINT_BYTES: u64 = 1 << 20;

/// Why a state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: not a readable run state ({reason}); remove it to start the run again", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("--resume: {flag} was {saved} in the saved run and is {now} now; resume with the run's own flags (see {}) or start a new run", run_json.display())]
    FlagChanged {
        flag: String,
        saved: String,
        now: String,
        run_json: PathBuf,
    },
    #[error("--resume: {} changed since the run started ({what}); a resumed run must read the same data", path.display())]
    InputChanged { path: PathBuf, what: String },
    #[error("--resume: {} holds {count} checkpoint(s) but no {}; it was written by a run that cannot be resumed (pass --overwrite to start again)", dir.display(), rundir::RUN_STATE)]
    NoState { dir: PathBuf, count: usize },
}

/// What identifies an input file cheaply: its size and a SHA-256 of its first and last MiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub path: PathBuf,
    pub size: u64,
    pub sha256_ends: String,
}

impl Fingerprint {
    /// The fingerprint of `path`.
    pub fn of(path: &Path) -> Result<Self, TrainError> {
        let io = |source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::File::open(path).map_err(io)?;
        let size = f.metadata().map_err(io)?.len();
        let mut buf = Vec::new();
        (&mut f)
            .take(FINGERPRINT_BYTES)
            .read_to_end(&mut buf)
            .map_err(io)?;
        if size > 2 * FINGERPRINT_BYTES {
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::Start(size - FINGERPRINT_BYTES))
                .map_err(io)?;
            f.take(FINGERPRINT_BYTES)
                .read_to_end(&mut buf)
                .map_err(io)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            size,
            sha256_ends: sha256_hex(&buf),
        })
    }
}

/// The best-loss tracker's state ([`super::best::BestTracker`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BestState {
    /// The lowest validation loss so far; `None` before any finite one.
    pub best: Option<f64>,
    pub epochs_without_improvement: usize,
}

/// One trained tensor's optimiser step count (its moments are tensors of the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamStep {
    pub name: String,
    pub step: u64,
}

/// The JSON half of the state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub version: u32,
    /// Complete epochs; the resumed run starts with this epoch index.
    pub epochs_done: usize,
    /// Batches trained so far, over all epochs (the scheduler's position).
    pub global_batch: usize,
    /// The learning rate the next batch uses.
    pub learning_rate: f64,
    pub best: BestState,
    /// The closing summary so far.
    pub summary: RunSummary,
    /// The flags of `run.json` (without the command line).
    pub flags: RunInfo,
    pub inputs: Vec<Fingerprint>,
    /// Every file under `LOG/` and `metrics.jsonl`, relative to the run directory, with its length.
    pub logs: Vec<(String, u64)>,
    /// The checkpoint holding the weights after `epochs_done` epochs (`None` before the first).
    pub model: Option<(String, String)>,
    pub optimizer: Vec<ParamStep>,
}

/// Writes the state atomically: `moments` in the optimiser's order, named by `state.optimizer`.
/// Returns the file's size.
pub fn save(run_dir: &Path, state: &RunState, moments: &[Moments]) -> Result<usize, TrainError> {
    let path = run_dir.join(rundir::RUN_STATE);
    let mut data: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::with_capacity(2 * moments.len());
    for (p, m) in state.optimizer.iter().zip(moments) {
        for (suffix, t) in [("exp_avg", &m.exp_avg), ("exp_avg_sq", &m.exp_avg_sq)] {
            let bytes: Vec<u8> = t
                .flatten_all()?
                .to_vec1::<f32>()?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            data.push((format!("{}.{suffix}", p.name), bytes, t.dims().to_vec()));
        }
    }
    let views = data
        .iter()
        .map(|(name, bytes, shape)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt(&path, e.to_string()))?;
    let json = serde_json::to_string(state).map_err(|e| corrupt(&path, e.to_string()))?;
    let meta = HashMap::from([(META_KEY.to_string(), json)]);
    let bytes = safetensors::tensor::serialize(views, Some(meta))
        .map_err(|e| corrupt(&path, e.to_string()))?;
    crate::atomic::replace(&path, &bytes).map_err(|e| TrainError::Io {
        path: e.path,
        source: e.source,
    })?;
    Ok(bytes.len())
}

/// Reads the state of `run_dir`, `None` when there is none; moments come back on `device`.
pub fn load(
    run_dir: &Path,
    device: &Device,
) -> Result<Option<(RunState, Vec<Moments>)>, TrainError> {
    let path = run_dir.join(rundir::RUN_STATE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(TrainError::Io { path, source }),
    };
    let bad = |reason: String| corrupt(&path, reason);
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| bad(format!("no `{META_KEY}` metadata")))?;
    let state: RunState = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    if state.version != STATE_VERSION {
        return Err(bad(format!(
            "layout version {}, this program reads {STATE_VERSION}",
            state.version
        )));
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let tensor = |name: &str| -> Result<Tensor, TrainError> {
        let v = st
            .tensor(name)
            .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        if v.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor `{name}` is {:?}, not F32", v.dtype())));
        }
        let vals: Vec<f32> = v
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Tensor::from_vec(vals, v.shape(), device)?)
    };
    let moments = state
        .optimizer
        .iter()
        .map(|p| {
            Ok(Moments {
                step: p.step,
                exp_avg: tensor(&format!("{}.exp_avg", p.name))?,
                exp_avg_sq: tensor(&format!("{}.exp_avg_sq", p.name))?,
            })
        })
        .collect::<Result<Vec<_>, TrainError>>()?;
    Ok(Some((state, moments)))
}

/// The length of every file under `LOG/` and of `metrics.jsonl`, sorted by path.
pub fn log_lengths(run_dir: &Path) -> Result<Vec<(String, u64)>, TrainError> {
    let mut files = vec![rundir::METRICS_JSONL.to_string()];
    for split in rundir::Split::ALL {
        let dir = rundir::split_log_dir(run_dir, split);
        let entries = std::fs::read_dir(&dir).map_err(|source| TrainError::Io {
            path: dir.clone(),
            source,
        })?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !crate::atomic::is_temp_name(&name) && e.path().is_file() {
                let rel = e
                    .path()
                    .strip_prefix(run_dir)
                    .unwrap_or(&e.path())
                    .to_path_buf();
                files.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|rel| {
            let p = run_dir.join(&rel);
            let len = std::fs::metadata(&p)
                .map(|m| m.len())
                .map_err(|source| TrainError::Io { path: p, source })?;
            Ok((rel, len))
        })
        .collect()
}

/// Cuts every log file back to its length in the state: what an interrupted epoch appended goes.
pub fn truncate_logs(run_dir: &Path, logs: &[(String, u64)]) -> Result<(), TrainError> {
    for (rel, len) in logs {
        let path = run_dir.join(rel);
        let io = |source| TrainError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io)?;
        let now = file.metadata().map_err(io)?.len();
        if now < *len {
            return Err(corrupt(
                &path,
                format!("{now} bytes, shorter than the {len} the saved state recorded"),
            ));
        }
        file.set_len(*len).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    Ok(())
}

/// The first flag that differs between the saved run and this one (the command line aside).
pub fn check_flags(saved: &RunInfo, now: &RunInfo, run_dir: &Path) -> Result<(), StateError> {
    let strip = |r: &RunInfo| {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            for key in crate::rundir::run_info::CONTEXT_KEYS {
                o.remove(key);
            }
        }
        v
    };
    let (a, b) = (strip(saved), strip(now));
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return Ok(());
    };
    // Every key of either (a flag absent on one side, e.g. run.json's `precision`, reads as null).
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let old = a.get(key).cloned().unwrap_or_default();
        let new = b.get(key).cloned().unwrap_or_default();
        if old != new {
            return Err(StateError::FlagChanged {
                flag: flag_name(key),
                saved: old.to_string(),
                now: new.to_string(),
                run_json: run_dir.join(rundir::RUN_JSON),
            });
        }
    }
    Ok(())
}

/// The command-line flag behind a `run.json` key.
fn flag_name(key: &str) -> String {
    match key {
        "flanking_size" => "--flanking-size".into(),
        "learning_rate" | "command" | "label" => format!("the run's {key}"),
        "unfreeze" => "--unfreeze/--unfreeze-all".into(),
        _ => format!("--{}", key.replace('_', "-")),
    }
}

/// Each input's fingerprint must be the saved one.
pub fn check_inputs(saved: &[Fingerprint]) -> Result<(), TrainError> {
    for f in saved {
        let now = Fingerprint::of(&f.path)?;
        let what = if now.size != f.size {
            Some(format!("{} bytes then, {} now", f.size, now.size))
        } else if now.sha256_ends != f.sha256_ends {
            Some("same size, other content".to_string())
        } else {
            None
        };
        if let Some(what) = what {
            return Err(StateError::InputChanged {
                path: f.path.clone(),
                what,
            }
            .into());
        }
    }
    Ok(())
}

/// SHA-256 of a whole file, in hex.
pub fn file_sha256(path: &Path) -> Result<String, TrainError> {
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(sha256_hex(&bytes))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn corrupt(path: &Path, reason: String) -> TrainError {
    StateError::Corrupt {
        path: path.to_path_buf(),
        reason,
    }
    .into()
}
