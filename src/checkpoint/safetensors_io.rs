//! safetensors reading and writing under the state-dict names.
//!
//! The writer lays the data out as the reference `safetensors` serializer does (by descending element type, then
//! name, so every tensor is naturally aligned) and records the state-dict order in the header's `__metadata__`
//! under [`ORDER_KEY`] (a JSON list of names), next to `"format": "pt"`. The reader restores that order when the
//! key is present and consistent, and otherwise uses the order of the data offsets.

use std::collections::HashSet;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors};

use super::{CheckpointError, DType, RawTensor, StateDict};
use crate::atomic;

/// `__metadata__` key holding the state-dict order as a JSON list of names.
pub const ORDER_KEY: &str = "openspliceai_rs.order";

fn st_err(path: &Path, message: impl Into<String>) -> CheckpointError {
    CheckpointError::Safetensors {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn from_st(d: Dtype) -> Option<DType> {
    Some(match d {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        _ => return None,
    })
}

fn to_st(d: DType) -> Dtype {
    match d {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::I16 => Dtype::I16,
        DType::I8 => Dtype::I8,
        DType::U8 => Dtype::U8,
        DType::Bool => Dtype::BOOL,
    }
}

/// The safetensors header name of a type (`F32`, `I64`, `BOOL`, ...).
fn st_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "F32",
        DType::F64 => "F64",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::I64 => "I64",
        DType::I32 => "I32",
        DType::I16 => "I16",
        DType::I8 => "I8",
        DType::U8 => "U8",
        DType::Bool => "BOOL",
    }
}

/// Reads a safetensors file into a [`StateDict`].
pub fn read_safetensors(path: &Path) -> Result<StateDict, CheckpointError> {
    let buf = std::fs::read(path).map_err(|e| CheckpointError::Io {
        path: path.to_path_buf(),
        action: "cannot read",
        source: e,
    })?;
    let (_, meta) = SafeTensors::read_metadata(&buf).map_err(|e| st_err(path, e.to_string()))?;
    let st = SafeTensors::deserialize(&buf).map_err(|e| st_err(path, e.to_string()))?;
    let by_offset = meta.offset_keys();
    let order = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(ORDER_KEY))
        .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
        .filter(|names| {
            let a: HashSet<&str> = names.iter().map(String::as_str).collect();
            let b: HashSet<&str> = by_offset.iter().map(String::as_str).collect();
            a.len() == names.len() && a == b
        })
        .unwrap_or(by_offset);
    let mut sd = StateDict::new();
    for name in order {
        let view = st
            .tensor(&name)
            .map_err(|e| st_err(path, format!("tensor `{name}`: {e}")))?;
        let dtype = from_st(view.dtype()).ok_or_else(|| CheckpointError::UnsupportedDtype {
            path: path.to_path_buf(),
            tensor: name.clone(),
            dtype: format!("{:?}", view.dtype()),
        })?;
        let t = RawTensor {
            dtype,
            shape: view.shape().to_vec(),
            data: view.data().to_vec(),
        };
        t.validate().map_err(|message| CheckpointError::BadTensor {
            path: path.to_path_buf(),
            tensor: name.clone(),
            message,
        })?;
        log::debug!("{}: {name} {} {:?}", path.display(), dtype, t.shape);
        sd.insert(name, t);
    }
    Ok(sd)
}

/// Encodes `sd` as safetensors bytes (see the module documentation for the layout). `path` is only used in
/// error messages.
pub fn encode_safetensors(path: &Path, sd: &StateDict) -> Result<Vec<u8>, CheckpointError> {
    sd.validate(path)?;
    let mut layout: Vec<(&str, &RawTensor)> = sd.iter().collect();
    layout.sort_by(|(ln, lt), (rn, rt)| to_st(rt.dtype).cmp(&to_st(lt.dtype)).then(ln.cmp(rn)));
    let json = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"));
    let order = serde_json::to_string(&sd.names()).map_err(|e| st_err(path, e.to_string()))?;
    let mut header = String::new();
    header.push_str("{\"__metadata__\":{\"format\":\"pt\",");
    header.push_str(&json(ORDER_KEY));
    header.push(':');
    header.push_str(&json(&order));
    header.push('}');
    let mut offset = 0usize;
    for (name, t) in &layout {
        let end = offset + t.data.len();
        let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        header.push_str(&format!(
            ",{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            json(name),
            st_name(t.dtype),
            shape.join(",")
        ));
        offset = end;
    }
    header.push('}');
    let mut header = header.into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for (_, t) in &layout {
        out.extend_from_slice(&t.data);
    }
    // Check the result with the reference parser before anything reaches the disk.
    SafeTensors::read_metadata(&out).map_err(|e| {
        st_err(
            path,
            format!("internal error: wrote an invalid header: {e}"),
        )
    })?;
    Ok(out)
}

/// Writes `sd` as a safetensors file, atomically (see [`super::save`]).
pub fn write_safetensors(path: &Path, sd: &StateDict) -> Result<(), CheckpointError> {
    let bytes = encode_safetensors(path, sd)?;
    Ok(atomic::replace(path, &bytes)?)
}
