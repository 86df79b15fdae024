//! `run.json`: what a run was asked to do (command, flags, command line), written into the run directory by
//! `train`/`transfer` when the run starts, so that `report` can name runs by their flags and a user can tell runs apart later.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::RUN_JSON;

/// The content of `run.json` (same [`schema_version`](super::METRICS_SCHEMA_VERSION) as
/// `metrics.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Layout version, as in `metrics.jsonl`.
    pub schema_version: u32,
    /// `train` or `transfer`.
    pub command: String,
    /// The flags that tell runs apart, e.g. `transfer -u 2 --freeze-bn` (the legend of `report`).
    pub label: String,
    /// The process's command line.
    pub command_line: Vec<String>,
    /// The pretrained checkpoint (`transfer`).
    pub pretrained_model: Option<PathBuf>,
    /// `all` or the number of trained residual units (`transfer`).
    pub unfreeze: Option<String>,
    /// `--freeze-bn`.
    pub freeze_bn: bool,
    pub train_dataset: PathBuf,
    pub test_dataset: PathBuf,
    pub validation_dataset: Option<PathBuf>,
    pub flanking_size: usize,
    pub epochs: usize,
    pub scheduler: String,
    pub loss: String,
    pub batch_size: usize,
    pub random_seed: u64,
    /// Base learning rate.
    pub learning_rate: f64,
    pub early_stopping: bool,
    pub patience: usize,
    pub project_name: String,
    pub exp_num: String,
    /// The compute device, in words.
    pub device: String,
    /// The version of this tool that started the run (absent in run.json files of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_version: Option<String>,
    /// When the run started, UTC (`2026-12-07T03:45:12Z`; absent in older run.json files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// Windows per split as the run used them (validation carved out of the training file when no
    /// validation file was given; absent in older run.json files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<SplitWindows>,
    /// The convolutions' compute precision where it is not f32: `bf16`, `bf16-emulated`
    /// (`OSAI_BF16=emulate`) or `tf32` (CUDA); absent for f32 and in older run.json files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
}

/// Windows per split of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitWindows {
    pub train: usize,
    pub validation: usize,
    pub test: usize,
}

/// The keys of `run.json` that describe this start of a run rather than its flags (a resumed run may
/// differ in them).
pub const CONTEXT_KEYS: [&str; 4] = ["command_line", "tool_version", "started", "windows"];

/// `now` as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_timestamp(secs)
}

/// Seconds since 1970 as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl RunInfo {
    /// Writes `run_dir/run.json` atomically.
    pub fn write(&self, run_dir: &Path) -> Result<(), crate::atomic::ReplaceError> {
        let json = serde_json::to_string_pretty(self).expect("RunInfo always serialises");
        crate::atomic::replace(&run_dir.join(RUN_JSON), json.as_bytes())
    }
}

/// `train`, `transfer -A`, `transfer -u 2 --freeze-bn`.
pub fn label(command: &str, unfreeze: Option<&str>, freeze_bn: bool) -> String {
    let mut s = command.to_string();
    match unfreeze {
        Some("all") => s.push_str(" -A"),
        Some(n) => s.push_str(&format!(" -u {n}")),
        None => {}
    }
    if freeze_bn {
        s.push_str(" --freeze-bn");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn timestamps_are_utc_dates() {
        assert_eq!(super::utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc_timestamp(1_796_614_712), "2026-12-07T03:38:32Z");
    }

    #[test]
    fn old_run_json_files_stay_readable() {
        let old = r#"{"schema_version":1,"command":"train","label":"train","command_line":["x"],
"pretrained_model":null,"unfreeze":null,"freeze_bn":false,"train_dataset":"a.h5","test_dataset":"b.h5",
"validation_dataset":null,"flanking_size":80,"epochs":1,"scheduler":"x","loss":"x","batch_size":4,
"random_seed":42,"learning_rate":0.001,"early_stopping":false,"patience":2,"project_name":"p",
"exp_num":"0","device":"cpu"}"#;
        let info: super::RunInfo = serde_json::from_str(old).unwrap();
        assert_eq!(
            (info.tool_version, info.started, info.windows),
            (None, None, None)
        );
    }

    #[test]
    fn labels_name_the_flags() {
        assert_eq!(label("train", None, false), "train");
        assert_eq!(label("transfer", Some("all"), false), "transfer -A");
        assert_eq!(
            label("transfer", Some("2"), true),
            "transfer -u 2 --freeze-bn"
        );
    }
}
