//! The per-class temperature: its clamp, and its two files. `temperature.txt` holds numpy's text of the
//! float32 vector (what OpenSpliceAI writes with `str(array)`, no newline); `temperature.pt` holds the bare
//! tensor as `torch.save(tensor)` writes it, which `torch.load` (and upstream's `-T`) returns as that tensor.

use std::path::{Path, PathBuf};

use crate::checkpoint::{pt, RawTensor};

/// Number of classes (non-splice, acceptor, donor).
pub const CLASSES: usize = 3;
/// Lower end of upstream's clamp (`torch.clamp(T, min=0.05, max=5.0)` on float32).
pub const T_MIN: f32 = 0.05;
/// Upper end of the clamp.
pub const T_MAX: f32 = 5.0;

/// Why a temperature file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TemperatureError {
    /// The file cannot be read.
    #[error("{}: cannot read the temperature file", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A zip file that is not a PyTorch tensor.
    #[error("{}: not a temperature.pt (a tensor saved by torch.save)", path.display())]
    Pt {
        path: PathBuf,
        #[source]
        source: crate::checkpoint::CheckpointError,
    },
    /// Text that is not a vector of numbers.
    #[error("{}: not a temperature file ({message}); expected temperature.txt (`[1.23 0.98 1.1]`) or temperature.pt", path.display())]
    Format { path: PathBuf, message: String },
    /// A vector of another length.
    #[error("{}: holds {n} temperature values; calibrate writes 3 (non-splice, acceptor, donor)", path.display())]
    Length { path: PathBuf, n: usize },
    /// A value that is not a finite number.
    #[error("{}: temperature value {value} is not a finite number", path.display())]
    NotFinite { path: PathBuf, value: f32 },
    /// Writing `temperature.pt` failed.
    #[error("{}: cannot write the temperature", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: crate::checkpoint::CheckpointError,
    },
}

/// One temperature per class: the logits of class c are divided by `T[c]` before the softmax.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Temperature(pub [f32; CLASSES]);

impl Temperature {
    /// The identity (upstream's starting point).
    pub const ONE: Temperature = Temperature([1.0; CLASSES]);

    /// The values clamped to [[`T_MIN`], [`T_MAX`]] in float32, as upstream clamps after every step, on
    /// load and before every division.
    pub fn clamped(self) -> Temperature {
        Temperature(self.0.map(clamp))
    }

    /// The three values.
    pub fn values(&self) -> [f32; CLASSES] {
        self.0
    }

    /// numpy's `str()` of the vector as float32, byte for byte what upstream writes to `temperature.txt`:
    /// each value in its shortest round-trip form with at most 8 decimals (`maxprec`), trailing zeros
    /// trimmed down to the point, the integer parts right-aligned and the decimals left-aligned to the
    /// widest, joined by one space in brackets (e.g. `[1.5582588 1.2502965 1.3662156]`, `[1. 1. 1.]`).
    pub fn numpy_text(&self) -> String {
        let parts: Vec<(String, String)> = self.0.iter().map(|&v| positional(v)).collect();
        let left = parts.iter().map(|(i, _)| i.len()).max().unwrap_or(0);
        let right = parts.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
        let cells: Vec<String> = parts
            .iter()
            .map(|(i, f)| format!("{i:>left$}.{f:<right$}"))
            .collect();
        format!("[{}]", cells.join(" "))
    }

    /// Parses the text of a `temperature.txt` (numpy's `[a b c]`; commas are accepted too).
    pub fn parse_text(text: &str) -> Result<Vec<f32>, String> {
        let t = text.trim();
        let inner = t
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(|| "the text is not a bracketed list of numbers".to_string())?;
        inner
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<f32>()
                    .map_err(|_| format!("`{s}` is not a number"))
            })
            .collect()
    }

    /// Reads `temperature.txt` or `temperature.pt` (told apart by content: a zip is a tensor file), checks
    /// that it holds three finite values and clamps them, as upstream's `load_temperature` does.
    pub fn read(path: &Path) -> Result<Temperature, TemperatureError> {
        let bytes = std::fs::read(path).map_err(|e| TemperatureError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        let values = if bytes.starts_with(b"PK") {
            let t = pt::read_pt_tensor(path).map_err(|e| TemperatureError::Pt {
                path: path.to_path_buf(),
                source: e,
            })?;
            t.to_f32_vec().map_err(|e| TemperatureError::Pt {
                path: path.to_path_buf(),
                source: e,
            })?
        } else {
            let text = String::from_utf8(bytes).map_err(|_| TemperatureError::Format {
                path: path.to_path_buf(),
                message: "neither text nor a zip archive".into(),
            })?;
            Self::parse_text(&text).map_err(|message| TemperatureError::Format {
                path: path.to_path_buf(),
                message,
            })?
        };
        let values: [f32; CLASSES] =
            values
                .as_slice()
                .try_into()
                .map_err(|_| TemperatureError::Length {
                    path: path.to_path_buf(),
                    n: values.len(),
                })?;
        if let Some(&value) = values.iter().find(|v| !v.is_finite()) {
            return Err(TemperatureError::NotFinite {
                path: path.to_path_buf(),
                value,
            });
        }
        Ok(Temperature(values).clamped())
    }

    /// The vector as a float32 tensor of shape (3,).
    pub fn to_raw(&self) -> RawTensor {
        RawTensor::from_f32(vec![CLASSES], &self.0)
    }

    /// The bytes of `temperature.pt` (`torch.save(tensor)`; the archive is named after `path`'s stem).
    pub fn pt_bytes(&self, path: &Path) -> Result<Vec<u8>, TemperatureError> {
        pt::encode_pt_tensor(path, &pt::archive_name(path), &self.to_raw()).map_err(|e| {
            TemperatureError::Write {
                path: path.to_path_buf(),
                source: e,
            }
        })
    }
}

impl std::fmt::Display for Temperature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.numpy_text())
    }
}

/// `torch.clamp(x, 0.05, 5.0)` on a float32.
pub fn clamp(x: f32) -> f32 {
    x.clamp(T_MIN, T_MAX)
}

/// numpy's `dragon4_positional(x, precision=8, unique=True, trim='.')`: the shortest digits that read
/// back as `x`, or the value rounded to 8 decimals when those need more; split into the integer part and
/// the decimals (trailing zeros removed).
fn positional(x: f32) -> (String, String) {
    let shortest = format!("{x}");
    let s = match shortest.split_once('.') {
        Some((_, frac)) if frac.len() > 8 => format!("{:.8}", x as f64),
        _ => shortest,
    };
    let (int, frac) = s.split_once('.').unwrap_or((s.as_str(), ""));
    (int.to_string(), frac.trim_end_matches('0').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_text_pads_and_trims_as_numpy() {
        assert_eq!(Temperature::ONE.numpy_text(), "[1. 1. 1.]");
        assert_eq!(
            Temperature([0.05, 5.0, 1.2345678]).numpy_text(),
            "[0.05      5.        1.2345678]"
        );
        assert_eq!(
            Temperature([1.5, 0.25, 3.0]).numpy_text(),
            "[1.5  0.25 3.  ]"
        );
        // 0.123456789 needs 9 decimals: rounded to 8.
        assert_eq!(
            Temperature([0.123_456_79, 4.99999, 1.1]).numpy_text(),
            "[0.12345679 4.99999    1.1       ]"
        );
    }

    #[test]
    fn text_round_trips() {
        for t in [
            Temperature([1.558_258_8, 1.250_296_5, 1.366_215_6]),
            Temperature([0.05, 5.0, 1.0]),
            Temperature([0.232_717_38, 1.285_067_2, 1.566_312_6]),
        ] {
            let v = Temperature::parse_text(&t.numpy_text()).unwrap();
            assert_eq!(v, t.0.to_vec());
        }
        assert!(Temperature::parse_text("1 2 3").is_err());
        assert!(Temperature::parse_text("[1 x 3]").is_err());
        assert_eq!(Temperature::parse_text("[1, 2]").unwrap(), vec![1.0, 2.0]);
    }

    #[test]
    fn clamp_is_upstreams() {
        assert_eq!(clamp(0.0), T_MIN);
        assert_eq!(clamp(7.0), T_MAX);
        assert_eq!(clamp(1.25), 1.25);
        assert_eq!(T_MIN as f64, 0.05000000074505806);
    }
}
