//! PyTorch zip checkpoints (`torch.save` format).
//!
//! Reading: the archive may use any prefix (`archive/`, `model_best/`, ...); the single `<prefix>/data.pkl` is
//! interpreted by the restricted unpickler of this module (no code is imported or executed) and each tensor is
//! materialised from its `<prefix>/data/<key>` record, honouring storage offset and strides.
//!
//! Writing copies the layout of `torch.save` byte for byte where it matters: uncompressed ("stored") entries
//! whose local headers carry PyTorch's `FB` padding extra field so that every record's data starts at a multiple
//! of 64 bytes, data descriptors after each record, a zip64 end-of-central-directory record, and the records
//! `data.pkl`, `.format_version`, `.storage_alignment`, `byteorder`, `data/0..n`, `version`,
//! `.data/serialization_id` in that order. The output is deterministic.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::Path;

use super::pickle::{self, Graph, Obj, PickleEntry, TensorRef, UnpickleError, Val};
use super::{CheckpointError, DType, RawTensor, StateDict};
use crate::atomic;

/// Alignment of every record's data in the archive (PyTorch's `kFieldAlignment`).
pub const RECORD_ALIGNMENT: usize = 64;

/// Largest `data.pkl` the reader accepts.
const MAX_PICKLE_BYTES: u64 = 1 << 30;

/// Largest tensor the reader materialises from a storage smaller than the tensor (stride-0 broadcasts).
const MAX_BROADCAST_BYTES: u64 = 256 << 20;

fn zip_err(path: &Path, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Zip {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Reads a PyTorch zip checkpoint into a [`StateDict`] (names in the pickle's order).
///
/// Accepts plain state dicts (`OrderedDict`/`dict` of tensors) and dicts that hold one under `state_dict` or
/// `model_state_dict` (other entries of such a wrapper, e.g. an epoch number or optimizer state, are parsed
/// under the same restrictions and then ignored). Storage locations such as `cuda:0` are ignored.
pub fn read_pt(path: &Path) -> Result<StateDict, CheckpointError> {
    read_pt_with(path, state_dict_entries)
}

/// Reads a PyTorch zip checkpoint that holds one bare tensor, as `torch.save(tensor, path)` writes it (e.g.
/// OpenSpliceAI's `temperature.pt`).
pub fn read_pt_tensor(path: &Path) -> Result<RawTensor, CheckpointError> {
    let sd = read_pt_with(path, |path, g, root| match g.get(root) {
        Some(Obj::Tensor(t)) => Ok(vec![(String::new(), t.clone())]),
        _ => Err(CheckpointError::NotATensor {
            path: path.to_path_buf(),
            found: g.kind(root).to_string(),
        }),
    })?;
    sd.into_entries()
        .pop()
        .map(|(_, t)| t)
        .ok_or_else(|| zip_err(path, "no tensor"))
}

/// The named tensors that `select` finds in the unpickled root object.
type Select = fn(&Path, &Graph, &Val) -> Result<Vec<(String, TensorRef)>, CheckpointError>;

fn read_pt_with(path: &Path, select: Select) -> Result<StateDict, CheckpointError> {
    let file = std::fs::File::open(path).map_err(|e| CheckpointError::Io {
        path: path.to_path_buf(),
        action: "cannot open",
        source: e,
    })?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    if file_len == 0 {
        return Err(zip_err(path, "the file is empty"));
    }
    let mut archive =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| zip_err(path, e))?;
    read_from_archive(path, &mut archive, file_len, select)
}

fn find_pickle<R: Read + Seek>(
    path: &Path,
    archive: &zip::ZipArchive<R>,
) -> Result<String, CheckpointError> {
    let mut found = Vec::new();
    for name in archive.file_names() {
        let name = name.map_err(|e| zip_err(path, format!("unreadable record name: {e}")))?;
        if name == "data.pkl" || name.ends_with("/data.pkl") {
            found.push(name.to_string());
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(CheckpointError::Layout {
            path: path.to_path_buf(),
            message: format!(
                "the zip archive has no data.pkl record (it holds {} entries); is this a PyTorch checkpoint?",
                archive.len()
            ),
        }),
        _ => {
            found.sort();
            Err(CheckpointError::Layout {
                path: path.to_path_buf(),
                message: format!("the zip archive has several data.pkl records: {}", found.join(", ")),
            })
        }
    }
}

/// Reads at most `limit` bytes of a record; `Ok(None)` if it does not exist.
fn read_record<R: Read + Seek>(
    path: &Path,
    archive: &mut zip::ZipArchive<R>,
    name: &str,
    limit: u64,
    file_len: u64,
) -> Result<Option<(Vec<u8>, u64)>, CheckpointError> {
    let entry = match archive.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(zip_err(path, format!("record {name}: {e}"))),
    };
    let declared = entry.size();
    let cap = limit.min(declared).min(file_len.saturating_mul(2)) as usize;
    let mut buf = Vec::with_capacity(cap);
    entry
        .take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| zip_err(path, format!("record {name}: {e}")))?;
    Ok(Some((buf, declared)))
}

fn read_from_archive<R: Read + Seek>(
    path: &Path,
    archive: &mut zip::ZipArchive<R>,
    file_len: u64,
    select: Select,
) -> Result<StateDict, CheckpointError> {
    let pkl_name = find_pickle(path, archive)?;
    let prefix = pkl_name[..pkl_name.len() - "data.pkl".len()].to_string();
    let (pkl, declared) = read_record(path, archive, &pkl_name, MAX_PICKLE_BYTES + 1, file_len)?
        .ok_or_else(|| zip_err(path, format!("record {pkl_name} disappeared")))?;
    if pkl.len() as u64 > MAX_PICKLE_BYTES || declared > MAX_PICKLE_BYTES {
        return Err(CheckpointError::Layout {
            path: path.to_path_buf(),
            message: format!("{pkl_name} is implausibly large ({declared} bytes)"),
        });
    }
    let (graph, root) = pickle::unpickle(&pkl).map_err(|e| match e {
        UnpickleError::Malformed { offset, message } => CheckpointError::Pickle {
            path: path.to_path_buf(),
            record: pkl_name.clone(),
            offset,
            message,
        },
        UnpickleError::Forbidden { module, name } => CheckpointError::ForbiddenGlobal {
            path: path.to_path_buf(),
            record: pkl_name.clone(),
            module,
            name,
        },
    })?;
    let entries = select(path, &graph, &root)?;
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut sd = StateDict::new();
    for (name, t) in entries {
        let dtype = t
            .storage
            .dtype
            .clone()
            .map_err(|d| CheckpointError::UnsupportedDtype {
                path: path.to_path_buf(),
                tensor: name.clone(),
                dtype: format!("torch.{d}"),
            })?;
        let record = format!("{prefix}data/{}", t.storage.key);
        let es = dtype.size_in_bytes() as u64;
        let storage_bytes =
            t.storage
                .numel
                .checked_mul(es)
                .ok_or_else(|| CheckpointError::BadTensor {
                    path: path.to_path_buf(),
                    tensor: name.clone(),
                    message: format!("storage element count {} overflows", t.storage.numel),
                })?;
        let cached = storages.get(&t.storage.key).map_or(0, |b| b.len() as u64);
        if cached < storage_bytes {
            let (bytes, _) = read_record(path, archive, &record, storage_bytes, file_len)?
                .ok_or_else(|| CheckpointError::MissingRecord {
                    path: path.to_path_buf(),
                    tensor: name.clone(),
                    record: record.clone(),
                })?;
            if (bytes.len() as u64) < storage_bytes {
                return Err(CheckpointError::RecordTooShort {
                    path: path.to_path_buf(),
                    tensor: name.clone(),
                    record,
                    expected: storage_bytes,
                    actual: bytes.len() as u64,
                });
            }
            storages.insert(t.storage.key.clone(), bytes);
        }
        let storage = storages
            .get(&t.storage.key)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let storage = storage.get(..storage_bytes as usize).unwrap_or(&[]);
        let raw = materialise(path, &name, dtype, &t, storage)?;
        log::debug!(
            "{}: {name} {} {:?} (storage {}, offset {})",
            path.display(),
            dtype,
            raw.shape,
            t.storage.key,
            t.offset
        );
        sd.insert(name, raw);
    }
    Ok(sd)
}

/// Finds the state dict in the unpickled object and returns its `(name, tensor)` entries in order.
fn state_dict_entries(
    path: &Path,
    g: &Graph,
    root: &Val,
) -> Result<Vec<(String, TensorRef)>, CheckpointError> {
    let not_sd = |message: String| CheckpointError::NotAStateDict {
        path: path.to_path_buf(),
        message,
    };
    let pairs = match g.get(root) {
        Some(Obj::Dict(p)) => p,
        _ => return Err(not_sd(format!("the pickled object is {}", g.kind(root)))),
    };
    // A wrapper such as {"epoch": 3, "state_dict": {...}, "optimizer": {...}}.
    for wrapper_key in ["state_dict", "model_state_dict"] {
        if let Some((_, v)) = pairs
            .iter()
            .rev()
            .find(|(k, _)| g.str(k) == Some(wrapper_key))
        {
            if let Some(Obj::Dict(inner)) = g.get(v) {
                log::debug!(
                    "{}: using the state dict under `{wrapper_key}`",
                    path.display()
                );
                return tensors_of(path, g, inner);
            }
        }
    }
    tensors_of(path, g, pairs)
}

fn tensors_of(
    path: &Path,
    g: &Graph,
    pairs: &[(Val, Val)],
) -> Result<Vec<(String, TensorRef)>, CheckpointError> {
    let mut out = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let name = g.str(k).ok_or_else(|| CheckpointError::NotAStateDict {
            path: path.to_path_buf(),
            message: format!("a key is {}, not a tensor name", g.kind(k)),
        })?;
        match g.get(v) {
            Some(Obj::Tensor(t)) => out.push((name.to_string(), t.clone())),
            _ => {
                return Err(CheckpointError::NotAStateDict {
                    path: path.to_path_buf(),
                    message: format!("entry `{name}` is {}, not a tensor", g.kind(v)),
                })
            }
        }
    }
    Ok(out)
}

/// Copies a (possibly strided) view of a storage into a contiguous tensor.
fn materialise(
    path: &Path,
    name: &str,
    dtype: DType,
    t: &TensorRef,
    storage: &[u8],
) -> Result<RawTensor, CheckpointError> {
    let bad = |message: String| CheckpointError::BadTensor {
        path: path.to_path_buf(),
        tensor: name.to_string(),
        message,
    };
    let es = dtype.size_in_bytes() as u64;
    let storage_numel = storage.len() as u64 / es;
    let mut numel: u64 = 1;
    for &s in &t.size {
        numel = numel
            .checked_mul(s)
            .ok_or_else(|| bad(format!("shape {:?} overflows", t.size)))?;
    }
    let shape: Vec<usize> = t
        .size
        .iter()
        .map(|&s| usize::try_from(s).map_err(|_| bad(format!("dimension {s} is too large"))))
        .collect::<Result<_, _>>()?;
    if numel == 0 {
        return Ok(RawTensor {
            dtype,
            shape,
            data: Vec::new(),
        });
    }
    // Highest storage element the view touches.
    let mut last = t.offset;
    for (&s, &st) in t.size.iter().zip(&t.stride) {
        last = (s - 1)
            .checked_mul(st)
            .and_then(|x| x.checked_add(last))
            .ok_or_else(|| {
                bad(format!(
                    "size {:?} with stride {:?} overflows",
                    t.size, t.stride
                ))
            })?;
    }
    if last >= storage_numel {
        return Err(bad(format!(
            "size {:?}, stride {:?} and offset {} reach element {last}, beyond the storage's {storage_numel} elements",
            t.size, t.stride, t.offset
        )));
    }
    let out_bytes = numel * es;
    if numel > storage_numel && out_bytes > MAX_BROADCAST_BYTES {
        return Err(bad(format!(
            "a broadcast view of {numel} elements over a storage of {storage_numel} is too large to materialise"
        )));
    }
    let es = es as usize;
    let contiguous: Vec<u64> = pickle::contiguous_strides(&shape)
        .iter()
        .map(|&s| s as u64)
        .collect();
    let off = t.offset as usize * es;
    if t.stride == contiguous || shape.iter().filter(|&&s| s != 1).count() == 0 {
        let data = storage[off..off + out_bytes as usize].to_vec();
        return Ok(RawTensor { dtype, shape, data });
    }
    let mut data = Vec::with_capacity(out_bytes as usize);
    let mut idx = vec![0usize; shape.len()];
    let strides: Vec<usize> = t.stride.iter().map(|&s| s as usize).collect();
    let mut pos = t.offset as usize;
    'outer: loop {
        data.extend_from_slice(&storage[pos * es..pos * es + es]);
        let mut d = shape.len();
        loop {
            if d == 0 {
                break 'outer;
            }
            d -= 1;
            idx[d] += 1;
            pos += strides[d];
            if idx[d] < shape[d] {
                break;
            }
            pos -= strides[d] * shape[d];
            idx[d] = 0;
        }
    }
    Ok(RawTensor { dtype, shape, data })
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

/// PyTorch's padding: the local header's extra field is `FB` + u16 length + `Z`*length, sized so that the data
/// after the header starts at a multiple of [`RECORD_ALIGNMENT`].
fn padding_for(cursor: usize, name_len: usize) -> Vec<u8> {
    let start = cursor + 30 + name_len + 4;
    let pad = (RECORD_ALIGNMENT - start % RECORD_ALIGNMENT) % RECORD_ALIGNMENT;
    let mut extra = Vec::with_capacity(pad + 4);
    extra.extend_from_slice(b"FB");
    extra.extend_from_slice(&(pad as u16).to_le_bytes());
    extra.resize(pad + 4, b'Z');
    extra
}

struct CentralEntry {
    name: String,
    crc: u32,
    size: u32,
    offset: u32,
}

struct ZipWriter {
    out: Vec<u8>,
    entries: Vec<CentralEntry>,
    names_hash: u64,
    crc_hash: u64,
}

const U32_LIMIT: usize = u32::MAX as usize;

impl ZipWriter {
    fn add(&mut self, name: String, data: &[u8]) -> Result<(), String> {
        let offset = self.out.len();
        if offset >= U32_LIMIT || data.len() >= U32_LIMIT || self.entries.len() >= 0xffff {
            return Err(format!(
                "record {name} would need zip64 entries (archive over 4 GiB or 65535 records), which this writer does \
                 not produce"
            ));
        }
        let extra = padding_for(offset, name.len());
        let crc = crc32fast::hash(data);
        let o = &mut self.out;
        o.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        o.extend_from_slice(&0u16.to_le_bytes()); // version needed (as PyTorch's miniz writes it)
        o.extend_from_slice(&0x0808u16.to_le_bytes()); // data descriptor follows; UTF-8 names
        o.extend_from_slice(&0u16.to_le_bytes()); // stored
        o.extend_from_slice(&0u16.to_le_bytes()); // time
        o.extend_from_slice(&0u16.to_le_bytes()); // date
        o.extend_from_slice(&0u32.to_le_bytes()); // crc (in the descriptor)
        o.extend_from_slice(&0u32.to_le_bytes()); // compressed size (in the descriptor)
        o.extend_from_slice(&0u32.to_le_bytes()); // size (in the descriptor)
        o.extend_from_slice(&(name.len() as u16).to_le_bytes());
        o.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        o.extend_from_slice(name.as_bytes());
        o.extend_from_slice(&extra);
        debug_assert_eq!(o.len() % RECORD_ALIGNMENT, 0);
        o.extend_from_slice(data);
        o.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        o.extend_from_slice(&crc.to_le_bytes());
        o.extend_from_slice(&(data.len() as u32).to_le_bytes());
        o.extend_from_slice(&(data.len() as u32).to_le_bytes());
        // Deterministic stand-ins for PyTorch's serialization id ingredients.
        for b in name.bytes().chain(std::iter::once(0)) {
            self.names_hash = (self.names_hash ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.crc_hash = self.crc_hash.rotate_left(5) ^ crc as u64;
        self.entries.push(CentralEntry {
            name,
            crc,
            size: data.len() as u32,
            offset: offset as u32,
        });
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<u8>, String> {
        let cd_start = self.out.len();
        if cd_start >= U32_LIMIT {
            return Err(
                "the archive would exceed 4 GiB, which this writer does not support".into(),
            );
        }
        let o = &mut self.out;
        for e in &self.entries {
            o.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            o.extend_from_slice(&0u16.to_le_bytes()); // version made by
            o.extend_from_slice(&0u16.to_le_bytes()); // version needed
            o.extend_from_slice(&0x0808u16.to_le_bytes());
            o.extend_from_slice(&0u16.to_le_bytes()); // stored
            o.extend_from_slice(&0u16.to_le_bytes()); // time
            o.extend_from_slice(&0u16.to_le_bytes()); // date
            o.extend_from_slice(&e.crc.to_le_bytes());
            o.extend_from_slice(&e.size.to_le_bytes());
            o.extend_from_slice(&e.size.to_le_bytes());
            o.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            o.extend_from_slice(&0u16.to_le_bytes()); // extra
            o.extend_from_slice(&0u16.to_le_bytes()); // comment
            o.extend_from_slice(&0u16.to_le_bytes()); // disk
            o.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            o.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            o.extend_from_slice(&e.offset.to_le_bytes());
            o.extend_from_slice(e.name.as_bytes());
        }
        let cd_end = o.len();
        let cd_size = (cd_end - cd_start) as u64;
        let n = self.entries.len() as u64;
        // zip64 end of central directory record + locator, as PyTorch writes them, then the classic record.
        o.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        o.extend_from_slice(&44u64.to_le_bytes());
        o.extend_from_slice(&0x031eu16.to_le_bytes());
        o.extend_from_slice(&0x002du16.to_le_bytes());
        o.extend_from_slice(&0u32.to_le_bytes());
        o.extend_from_slice(&0u32.to_le_bytes());
        o.extend_from_slice(&n.to_le_bytes());
        o.extend_from_slice(&n.to_le_bytes());
        o.extend_from_slice(&cd_size.to_le_bytes());
        o.extend_from_slice(&(cd_start as u64).to_le_bytes());
        o.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        o.extend_from_slice(&0u32.to_le_bytes());
        o.extend_from_slice(&(cd_end as u64).to_le_bytes());
        o.extend_from_slice(&1u32.to_le_bytes());
        o.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        o.extend_from_slice(&0u16.to_le_bytes());
        o.extend_from_slice(&0u16.to_le_bytes());
        o.extend_from_slice(&(n as u16).to_le_bytes());
        o.extend_from_slice(&(n as u16).to_le_bytes());
        o.extend_from_slice(&(cd_size as u32).to_le_bytes());
        o.extend_from_slice(&(cd_start as u32).to_le_bytes());
        o.extend_from_slice(&0u16.to_le_bytes());
        Ok(self.out)
    }
}

/// The archive prefix `torch.save` would use for `path`: the file name without its extension (`model_best` for
/// `runs/x/model_best.pt`), or `archive` when there is none.
pub fn archive_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "archive".to_string())
}

/// Encodes `sd` as the bytes of a PyTorch zip checkpoint whose records live under `archive_name/`.
///
/// Fails (naming `path`, used only for messages) if a tensor's data length does not match its shape and type,
/// or if the archive would need zip64 entries.
pub fn encode_pt(
    path: &Path,
    archive_name: &str,
    sd: &StateDict,
) -> Result<Vec<u8>, CheckpointError> {
    sd.validate(path)?;
    let entries: Vec<PickleEntry<'_>> = sd
        .iter()
        .enumerate()
        .map(|(i, (name, t))| PickleEntry {
            name,
            dtype: t.dtype,
            shape: &t.shape,
            key: i.to_string(),
            numel: t.numel(),
        })
        .collect();
    let pkl = pickle::pickle_state_dict(&entries);
    let records: Vec<&[u8]> = sd.iter().map(|(_, t)| t.data.as_slice()).collect();
    encode_archive(path, archive_name, &pkl, &records)
}

/// Encodes one bare tensor as the bytes of `torch.save(tensor)` (records under `archive_name/`), which
/// `torch.load` returns as that tensor.
pub fn encode_pt_tensor(
    path: &Path,
    archive_name: &str,
    t: &RawTensor,
) -> Result<Vec<u8>, CheckpointError> {
    t.validate().map_err(|message| CheckpointError::BadTensor {
        path: path.to_path_buf(),
        tensor: String::new(),
        message,
    })?;
    let pkl = pickle::pickle_tensor(&PickleEntry {
        name: "",
        dtype: t.dtype,
        shape: &t.shape,
        key: "0".to_string(),
        numel: t.numel(),
    });
    encode_archive(path, archive_name, &pkl, &[t.data.as_slice()])
}

/// The archive of `torch.save`: `data.pkl`, the format records, storage `i` from `records[i]`, the version.
fn encode_archive(
    path: &Path,
    archive_name: &str,
    pkl: &[u8],
    records: &[&[u8]],
) -> Result<Vec<u8>, CheckpointError> {
    let total: usize = records.iter().map(|r| r.len() + 128).sum::<usize>() + pkl.len() + 4096;
    let mut w = ZipWriter {
        out: Vec::with_capacity(total),
        entries: Vec::with_capacity(records.len() + 7),
        names_hash: 0xcbf2_9ce4_8422_2325,
        crc_hash: 0,
    };
    let too_large = |message: String| CheckpointError::TooLarge {
        path: path.to_path_buf(),
        message,
    };
    let p = archive_name;
    w.add(format!("{p}/data.pkl"), pkl).map_err(too_large)?;
    w.add(format!("{p}/.format_version"), b"1")
        .map_err(too_large)?;
    w.add(
        format!("{p}/.storage_alignment"),
        RECORD_ALIGNMENT.to_string().as_bytes(),
    )
    .map_err(too_large)?;
    w.add(format!("{p}/byteorder"), b"little")
        .map_err(too_large)?;
    for (i, data) in records.iter().enumerate() {
        w.add(format!("{p}/data/{i}"), data).map_err(too_large)?;
    }
    w.add(format!("{p}/version"), b"3\n").map_err(too_large)?;
    let serialization_id = format!("{:020}{:020}", w.names_hash, w.crc_hash);
    w.add(
        format!("{p}/.data/serialization_id"),
        serialization_id.as_bytes(),
    )
    .map_err(too_large)?;
    w.finish().map_err(too_large)
}

/// Writes `sd` as a PyTorch zip checkpoint that `torch.load(path, weights_only=True)` reads, atomically (see
/// [`super::save`]). The archive prefix is the file stem of `path`, as `torch.save` chooses it.
pub fn write_pt(path: &Path, sd: &StateDict) -> Result<(), CheckpointError> {
    let bytes = encode_pt(path, &archive_name(path), sd)?;
    Ok(atomic::replace(path, &bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_matches_pytorch() {
        // Values observed in a real torch.save archive: data.pkl at 0 with a 19-byte name gets 11 pad bytes.
        assert_eq!(padding_for(0, 19).len(), 15);
        assert_eq!(&padding_for(0, 19)[..4], b"FB\x0b\x00");
        for cursor in [0usize, 1, 63, 64, 9350, 123_457] {
            for name_len in [1usize, 17, 33, 60] {
                let extra = padding_for(cursor, name_len);
                assert_eq!((cursor + 30 + name_len + extra.len()) % RECORD_ALIGNMENT, 0);
            }
        }
    }

    #[test]
    fn strided_views_are_materialised() {
        // storage 0..12 as f32; a transposed 3x4 -> 4x3 view with offset 0, and a slice with an offset.
        let storage: Vec<u8> = (0..12).flat_map(|v| (v as f32).to_le_bytes()).collect();
        let t = TensorRef {
            storage: pickle::StorageRef {
                dtype: Ok(DType::F32),
                key: "0".into(),
                numel: 12,
            },
            offset: 0,
            size: vec![4, 3],
            stride: vec![1, 4],
        };
        let r = materialise(Path::new("x.pt"), "t", DType::F32, &t, &storage).expect("valid view");
        assert_eq!(
            r.to_f32_vec().expect("f32"),
            vec![0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]
        );
        let t2 = TensorRef {
            offset: 5,
            size: vec![2],
            stride: vec![3],
            ..t.clone()
        };
        let r2 =
            materialise(Path::new("x.pt"), "t", DType::F32, &t2, &storage).expect("valid view");
        assert_eq!(r2.to_f32_vec().expect("f32"), vec![5., 8.]);
        let t3 = TensorRef {
            offset: 11,
            size: vec![2],
            stride: vec![1],
            ..t
        };
        let e = materialise(Path::new("x.pt"), "t", DType::F32, &t3, &storage)
            .expect_err("out of range");
        assert!(e.to_string().contains("beyond the storage"), "{e}");
    }
}
