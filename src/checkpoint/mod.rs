//! Reading and writing model checkpoints without any tensor library.
//!
//! Two formats are supported, both read and written under the same tensor names:
//! - PyTorch zip checkpoints (`.pt`, `.pth`, `.bin`) as written by `torch.save(model.state_dict(), path)`; the
//!   reader uses its own restricted unpickler that never imports or executes anything (see [`pt`]), and the
//!   writer produces files that `torch.load(path, weights_only=True)` accepts, laid out like PyTorch's own;
//! - safetensors files (`.safetensors`).
//!
//! Tensors are kept as raw little-endian bytes ([`RawTensor`]) in an ordered [`StateDict`]; converting them to
//! framework tensors is left to the model code. [`match_state_dict`] selects the tensors a model expects and
//! reports what was loaded, missing and ignored. [`inspect`] describes a checkpoint for humans.

mod error;
mod pickle;
pub mod pt;
mod safetensors_io;

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

pub use error::CheckpointError;
pub use pt::{encode_pt, read_pt, write_pt};
pub use safetensors_io::{
    encode_safetensors, read_safetensors, write_safetensors, ORDER_KEY as SAFETENSORS_ORDER_KEY,
};

/// Element type of a [`RawTensor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float (`torch.float32`).
    F32,
    /// 64-bit IEEE float (`torch.float64`).
    F64,
    /// 16-bit IEEE float (`torch.float16`).
    F16,
    /// bfloat16 (`torch.bfloat16`).
    BF16,
    /// 64-bit signed integer (`torch.int64`, e.g. `num_batches_tracked`).
    I64,
    /// 32-bit signed integer.
    I32,
    /// 16-bit signed integer.
    I16,
    /// 8-bit signed integer.
    I8,
    /// 8-bit unsigned integer.
    U8,
    /// Boolean stored as one byte (0 or 1).
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// The PyTorch name of the type (`float32`, `int64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::I64 => "int64",
            DType::I32 => "int32",
            DType::I16 => "int16",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::Bool => "bool",
        }
    }

    /// True for the floating-point types.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// The legacy PyTorch storage class for this type (`FloatStorage`, `LongStorage`, ...).
    pub fn torch_storage_name(self) -> &'static str {
        match self {
            DType::F32 => "FloatStorage",
            DType::F64 => "DoubleStorage",
            DType::F16 => "HalfStorage",
            DType::BF16 => "BFloat16Storage",
            DType::I64 => "LongStorage",
            DType::I32 => "IntStorage",
            DType::I16 => "ShortStorage",
            DType::I8 => "CharStorage",
            DType::U8 => "ByteStorage",
            DType::Bool => "BoolStorage",
        }
    }

    /// The inverse of [`DType::torch_storage_name`].
    pub fn from_torch_storage_name(name: &str) -> Option<DType> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A tensor as plain bytes: contiguous, row-major, little-endian.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    /// Element type.
    pub dtype: DType,
    /// Shape; empty for a 0-dimensional (scalar) tensor.
    pub shape: Vec<usize>,
    /// `numel() * dtype.size_in_bytes()` bytes.
    pub data: Vec<u8>,
}

impl RawTensor {
    /// An `f32` tensor. Panics if `values.len()` is not the product of `shape` (a programming error).
    pub fn from_f32(shape: impl Into<Vec<usize>>, values: &[f32]) -> Self {
        let shape = shape.into();
        assert_eq!(
            shape.iter().product::<usize>(),
            values.len(),
            "RawTensor::from_f32: {} values do not fill shape {:?}",
            values.len(),
            shape
        );
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        RawTensor {
            dtype: DType::F32,
            shape,
            data,
        }
    }

    /// An `i64` tensor. Panics if `values.len()` is not the product of `shape` (a programming error).
    pub fn from_i64(shape: impl Into<Vec<usize>>, values: &[i64]) -> Self {
        let shape = shape.into();
        assert_eq!(
            shape.iter().product::<usize>(),
            values.len(),
            "RawTensor::from_i64: {} values do not fill shape {:?}",
            values.len(),
            shape
        );
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        RawTensor {
            dtype: DType::I64,
            shape,
            data,
        }
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The number of data bytes the shape and type call for, or `None` on overflow.
    pub fn expected_len(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(self.dtype.size_in_bytes(), |acc, &d| acc.checked_mul(d))
    }

    /// Checks that `data` holds exactly `numel() * dtype.size_in_bytes()` bytes.
    pub fn validate(&self) -> Result<(), String> {
        match self.expected_len() {
            Some(n) if n == self.data.len() => Ok(()),
            Some(n) => Err(format!(
                "data holds {} bytes but shape {:?} of {} needs {}",
                self.data.len(),
                self.shape,
                self.dtype,
                n
            )),
            None => Err(format!("shape {:?} overflows", self.shape)),
        }
    }

    fn conversion_error(&self, message: String) -> CheckpointError {
        CheckpointError::Conversion {
            dtype: self.dtype.name(),
            shape: self.shape.clone(),
            message,
        }
    }

    /// The values as `f32` (exact for f32/f16/bf16, rounded for f64 and large integers; bool → 0/1).
    pub fn to_f32_vec(&self) -> Result<Vec<f32>, CheckpointError> {
        self.validate().map_err(|m| self.conversion_error(m))?;
        let d = &self.data;
        Ok(match self.dtype {
            DType::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F64 => d
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c8(c)) as f32)
                .collect(),
            DType::F16 => d
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => d
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::I64 => d
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c8(c)) as f32)
                .collect(),
            DType::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
            DType::I16 => d
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
                .collect(),
            DType::I8 => d.iter().map(|&b| b as i8 as f32).collect(),
            DType::U8 => d.iter().map(|&b| b as f32).collect(),
            DType::Bool => d.iter().map(|&b| if b != 0 { 1.0 } else { 0.0 }).collect(),
        })
    }

    /// The values as `i64`; an error for floating-point tensors.
    pub fn to_i64_vec(&self) -> Result<Vec<i64>, CheckpointError> {
        self.validate().map_err(|m| self.conversion_error(m))?;
        let d = &self.data;
        Ok(match self.dtype {
            DType::I64 => d
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c8(c)))
                .collect(),
            DType::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
            DType::I16 => d
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
            DType::I8 => d.iter().map(|&b| b as i8 as i64).collect(),
            DType::U8 => d.iter().map(|&b| b as i64).collect(),
            DType::Bool => d.iter().map(|&b| i64::from(b != 0)).collect(),
            DType::F32 | DType::F64 | DType::F16 | DType::BF16 => {
                return Err(self.conversion_error(
                    "expected an integer tensor, cannot convert floating-point values to i64"
                        .into(),
                ))
            }
        })
    }
}

fn c8(c: &[u8]) -> [u8; 8] {
    [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]
}

/// An ordered collection of named tensors (a PyTorch `state_dict`).
///
/// Iteration follows first-insertion order; inserting an existing name replaces its tensor in place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateDict {
    entries: Vec<(String, RawTensor)>,
    index: HashMap<String, usize>,
}

impl StateDict {
    /// Checks that every tensor's data length matches its shape and type before it is written; `path`
    /// (the file being written) names the problem.
    pub fn validate(&self, path: &Path) -> Result<(), CheckpointError> {
        for (name, t) in self.iter() {
            t.validate().map_err(|message| CheckpointError::BadTensor {
                path: path.to_path_buf(),
                tensor: name.to_string(),
                message,
            })?;
        }
        Ok(())
    }

    /// An empty state dict.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts `tensor` under `name`; an existing entry keeps its position and gets the new tensor.
    /// Returns the replaced tensor, if any.
    pub fn insert(&mut self, name: impl Into<String>, tensor: RawTensor) -> Option<RawTensor> {
        let name = name.into();
        if let Some(&i) = self.index.get(&name) {
            return Some(std::mem::replace(&mut self.entries[i].1, tensor));
        }
        self.index.insert(name.clone(), self.entries.len());
        self.entries.push((name, tensor));
        None
    }

    /// The tensor stored under `name`.
    pub fn get(&self, name: &str) -> Option<&RawTensor> {
        self.index.get(name).map(|&i| &self.entries[i].1)
    }

    /// Mutable access to the tensor stored under `name`.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut RawTensor> {
        match self.index.get(name) {
            Some(&i) => Some(&mut self.entries[i].1),
            None => None,
        }
    }

    /// True if `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// `(name, tensor)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawTensor)> + '_ {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The names in order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Consumes the dict, yielding `(name, tensor)` pairs in order.
    pub fn into_entries(self) -> Vec<(String, RawTensor)> {
        self.entries
    }
}

impl FromIterator<(String, RawTensor)> for StateDict {
    fn from_iter<I: IntoIterator<Item = (String, RawTensor)>>(iter: I) -> Self {
        let mut sd = StateDict::new();
        for (n, t) in iter {
            sd.insert(n, t);
        }
        sd
    }
}

/// A checkpoint file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PyTorch zip checkpoint (`torch.save`).
    Pt,
    /// safetensors.
    Safetensors,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Pt => "PyTorch zip (.pt)",
            Format::Safetensors => "safetensors",
        })
    }
}

impl Format {
    /// The format an output path's extension selects: `.pt`/`.pth`/`.bin` → [`Format::Pt`],
    /// `.safetensors` → [`Format::Safetensors`].
    pub fn from_extension(path: &Path) -> Result<Format, CheckpointError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("pt") | Some("pth") | Some("bin") => Ok(Format::Pt),
            Some("safetensors") => Ok(Format::Safetensors),
            _ => Err(CheckpointError::UnsupportedExtension {
                path: path.to_path_buf(),
            }),
        }
    }
}

fn io_err(path: &Path, action: &'static str, source: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Determines a file's format from its first bytes: a zip signature means [`Format::Pt`]; an 8-byte header
/// length followed by a JSON object means [`Format::Safetensors`]; anything else is an error.
pub fn detect_format(path: &Path) -> Result<Format, CheckpointError> {
    let file = std::fs::File::open(path).map_err(|e| io_err(path, "cannot open", e))?;
    let mut head = Vec::with_capacity(9);
    file.take(9)
        .read_to_end(&mut head)
        .map_err(|e| io_err(path, "cannot read", e))?;
    let unknown = |reason: String| CheckpointError::UnknownFormat {
        path: path.to_path_buf(),
        reason,
    };
    if head.is_empty() {
        return Err(unknown("the file is empty".into()));
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(Format::Pt);
    }
    if head.len() == 9 && head[8] == b'{' {
        return Ok(Format::Safetensors);
    }
    Err(unknown(format!(
        "unrecognised leading bytes {:02x?}",
        &head[..head.len().min(8)]
    )))
}

/// Reads a checkpoint, choosing the format by content (see [`detect_format`]).
pub fn load(path: &Path) -> Result<StateDict, CheckpointError> {
    match detect_format(path)? {
        Format::Pt => read_pt(path),
        Format::Safetensors => read_safetensors(path),
    }
}

/// Writes a checkpoint, choosing the format by extension (see [`Format::from_extension`]).
///
/// The write is atomic: the file is written to a temporary file in the same directory, synced, and renamed over
/// `path`, so an existing file at `path` survives any failure intact and no temporary file is left behind.
pub fn save(path: &Path, sd: &StateDict) -> Result<(), CheckpointError> {
    match Format::from_extension(path)? {
        Format::Pt => write_pt(path, sd),
        Format::Safetensors => write_safetensors(path, sd),
    }
}

/// A tensor a model expects: its state-dict name and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// State-dict name.
    pub name: String,
    /// Expected shape (empty for a scalar).
    pub shape: Vec<usize>,
}

impl Expected {
    /// Convenience constructor.
    pub fn new(name: impl Into<String>, shape: impl Into<Vec<usize>>) -> Self {
        Expected {
            name: name.into(),
            shape: shape.into(),
        }
    }
}

/// What [`match_state_dict`] kept and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Expected names found with the expected shape, in expected order.
    pub loaded: Vec<String>,
    /// Expected names absent from the checkpoint (or present with another shape), in expected order.
    pub missing: Vec<String>,
    /// Checkpoint entries not used, in checkpoint order: names the model does not have and names whose shape
    /// differs from the model's (the latter are also in `missing`).
    pub ignored: Vec<String>,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loaded {} tensors, {} missing, {} ignored",
            self.loaded.len(),
            self.missing.len(),
            self.ignored.len()
        )?;
        if !self.missing.is_empty() {
            write!(f, "\n  missing: {}", self.missing.join(", "))?;
        }
        if !self.ignored.is_empty() {
            write!(f, "\n  ignored: {}", self.ignored.join(", "))?;
        }
        Ok(())
    }
}

/// Keeps the tensors of `sd` whose name and shape match an expected entry, in `expected` order.
///
/// A name present with another shape is both `missing` (the model keeps its own value) and `ignored` (the
/// checkpoint's tensor is not used); names the model does not have are `ignored`.
pub fn match_state_dict(sd: &StateDict, expected: &[Expected]) -> (StateDict, LoadReport) {
    let mut out = StateDict::new();
    let mut report = LoadReport::default();
    let mut wanted: HashMap<&str, &[usize]> = HashMap::new();
    for e in expected {
        wanted.insert(e.name.as_str(), &e.shape);
        match sd.get(&e.name) {
            Some(t) if t.shape == e.shape => {
                out.insert(e.name.clone(), t.clone());
                report.loaded.push(e.name.clone());
            }
            Some(t) => {
                log::debug!(
                    "checkpoint tensor {} has shape {:?}, model expects {:?}: ignored",
                    e.name,
                    t.shape,
                    e.shape
                );
                report.missing.push(e.name.clone());
            }
            None => report.missing.push(e.name.clone()),
        }
    }
    for (name, t) in sd.iter() {
        match wanted.get(name) {
            Some(shape) if *shape == t.shape.as_slice() => {}
            _ => report.ignored.push(name.to_string()),
        }
    }
    (out, report)
}
