//! Opening a `create-data` HDF5 file: signature, shard discovery, shape and type checks, and raw
//! shard reads through one of two HDF5 backends.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::decode::RawShard;
use super::{DataError, WindowRef, SEQ_LEN, X_LEN};
use crate::model::config::{IN_CHANNELS, OUT_CLASSES};

/// Which HDF5 implementation reads the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The pure-Rust `hdf5-reader` crate (always available).
    #[default]
    Pure,
    /// The official HDF5 C library through `hdf5-metno` (feature `libhdf5`).
    #[cfg(feature = "libhdf5")]
    LibHdf5,
}

/// Storage type of a dataset's elements; all hold one-hot 0/1 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// `int8`, as `create-data` writes.
    I8,
    /// `uint8`.
    U8,
    /// h5py's `bool` (a one-byte enum FALSE = 0, TRUE = 1).
    Bool,
    /// `float32` (`big_endian` as stored).
    F32 {
        /// Stored big-endian.
        big_endian: bool,
    },
    /// `float64` (`big_endian` as stored).
    F64 {
        /// Stored big-endian.
        big_endian: bool,
    },
}

/// A shard of the file: the pair `X{index}` / `Y{index}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardInfo {
    /// The shard number `i` of `X{i}` / `Y{i}`.
    pub index: usize,
    /// Windows (rows) in the shard.
    pub n_windows: usize,
}

#[derive(Debug, Clone, Copy)]
struct ShardMeta {
    x_type: ElementType,
    y_type: ElementType,
}

/// What a backend needs to provide: dataset names, shapes and types, and whole-dataset reads.
trait Reader: Send + Sync {
    fn names(&self) -> Result<Vec<String>, String>;
    /// Shape and element type; `Err(Ok(desc))` for an unsupported type, `Err(Err(msg))` on failure.
    fn meta(&self, name: &str) -> Result<(Vec<u64>, Result<ElementType, String>), String>;
    /// Element codes in storage order: the byte value for 8-bit types, and for floats 0 or 1 when
    /// the value is exactly 0.0 or 1.0, else 2.
    fn read_codes(&self, name: &str, ty: ElementType) -> Result<Vec<u8>, String>;
}

/// An open OpenSpliceAI `create-data` HDF5 file whose shards passed the presence and shape checks.
pub struct H5File {
    path: Arc<PathBuf>,
    backend: Backend,
    shards: Vec<ShardInfo>,
    meta: Vec<ShardMeta>,
    reader: Box<dyn Reader>,
}

impl std::fmt::Debug for H5File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H5File")
            .field("path", &self.path)
            .field("backend", &self.backend)
            .field("shards", &self.shards)
            .finish()
    }
}

const HDF5_SIGNATURE: [u8; 8] = [0x89, b'H', b'D', b'F', 0x0d, 0x0a, 0x1a, 0x0a];

/// An error unless `path` is an existing regular file that starts with the HDF5 signature.
fn check_regular_hdf5(path: &Path) -> Result<(), DataError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return Err(DataError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(
                    "not a regular file: HDF5 is read at random offsets, so a directory, pipe or \
                     process substitution cannot be read; give the path of the .h5 file itself",
                ),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DataError::NotFound {
                path: path.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(DataError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    }
    if !has_hdf5_signature(path)? {
        return Err(DataError::NotHdf5 {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

fn hdf5_error(path: &Path, dataset: Option<&str>, message: String) -> DataError {
    DataError::Hdf5 {
        path: path.to_path_buf(),
        dataset: dataset.map(str::to_string),
        message,
    }
}

fn open_reader(path: &Path, backend: Backend) -> Result<Box<dyn Reader>, DataError> {
    Ok(match backend {
        Backend::Pure => {
            Box::new(pure::PureReader::open(path).map_err(|m| hdf5_error(path, None, m))?)
        }
        #[cfg(feature = "libhdf5")]
        Backend::LibHdf5 => {
            Box::new(libhdf5::LibReader::open(path).map_err(|m| hdf5_error(path, None, m))?)
        }
    })
}

/// The index of the last shard, after checking that the datasets are `X0/Y0 … Xn/Yn` without gaps
/// (other datasets are ignored).
fn last_shard(path: &Path, names: &[String]) -> Result<usize, DataError> {
    let mut xs = std::collections::BTreeSet::new();
    let mut ys = std::collections::BTreeSet::new();
    for name in names {
        match shard_name(name) {
            Some(('X', i)) => {
                xs.insert(i);
            }
            Some((_, i)) => {
                ys.insert(i);
            }
            None => log::debug!("{}: ignoring dataset {name}", path.display()),
        }
    }
    let missing = |dataset: String, why: String| DataError::MissingDataset {
        path: path.to_path_buf(),
        dataset,
        why,
    };
    for (first, why) in [
        ("X0", "the first shard's inputs"),
        ("Y0", "the first shard's labels"),
    ] {
        let set = if first.starts_with('X') { &xs } else { &ys };
        if !set.contains(&0) {
            return Err(missing(
                first.into(),
                format!("a create-data file holds shards X0/Y0, X1/Y1, … ({why})"),
            ));
        }
    }
    let last = xs.iter().chain(ys.iter()).copied().max().unwrap_or(0);
    for i in 0..=last {
        match (xs.contains(&i), ys.contains(&i)) {
            (true, true) => {}
            (true, false) => {
                return Err(missing(format!("Y{i}"), format!("X{i} has no labels Y{i}")))
            }
            (false, true) => {
                return Err(missing(format!("X{i}"), format!("Y{i} has no inputs X{i}")))
            }
            (false, false) => {
                return Err(missing(
                    format!("X{i}"),
                    format!("shards must be numbered 0..{last} without gaps"),
                ))
            }
        }
    }
    Ok(last)
}

/// Shard `i`'s window count and element types, after checking its shapes and types.
fn shard_info(
    path: &Path,
    reader: &dyn Reader,
    i: usize,
) -> Result<(ShardInfo, ShardMeta), DataError> {
    let (xn, yn) = (format!("X{i}"), format!("Y{i}"));
    let (xshape, xtype) = reader
        .meta(&xn)
        .map_err(|m| hdf5_error(path, Some(&xn), m))?;
    let (yshape, ytype) = reader
        .meta(&yn)
        .map_err(|m| hdf5_error(path, Some(&yn), m))?;
    let bad_type = |dataset: &str, found: String| DataError::BadType {
        path: path.to_path_buf(),
        dataset: dataset.to_string(),
        found,
    };
    let x_type = xtype.map_err(|f| bad_type(&xn, f))?;
    let y_type = ytype.map_err(|f| bad_type(&yn, f))?;
    let bad_shape = |dataset: &str, found: &[u64], expected: String| DataError::BadShape {
        path: path.to_path_buf(),
        dataset: dataset.to_string(),
        found: found.to_vec(),
        expected,
    };
    if xshape.len() != 3 || xshape[1] != X_LEN as u64 || xshape[2] != IN_CHANNELS as u64 {
        return Err(bad_shape(
            &xn,
            &xshape,
            format!("(n, {X_LEN}, {IN_CHANNELS})"),
        ));
    }
    let n = xshape[0];
    let y_ok = match yshape.as_slice() {
        [1, yn_, l, c] | [yn_, l, c] => {
            *yn_ == n && *l == SEQ_LEN as u64 && *c == OUT_CLASSES as u64
        }
        _ => false,
    };
    if !y_ok {
        return Err(bad_shape(
            &yn,
            &yshape,
            format!("(1, {n}, {SEQ_LEN}, {OUT_CLASSES}) to match {xn} {xshape:?}"),
        ));
    }
    if n == 0 {
        return Err(DataError::EmptyShard {
            path: path.to_path_buf(),
            dataset: xn,
        });
    }
    let n_windows = usize::try_from(n).map_err(|_| {
        bad_shape(
            &xn,
            &xshape,
            "a window count that fits in memory".to_string(),
        )
    })?;
    Ok((
        ShardInfo {
            index: i,
            n_windows,
        },
        ShardMeta { x_type, y_type },
    ))
}

/// HDF5 puts its signature at 0, 512, 1024, 2048, … (after a user block).
fn has_hdf5_signature(path: &Path) -> Result<bool, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut offset = 0u64;
    while offset + 8 <= len {
        f.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut sig = [0u8; 8];
        f.read_exact(&mut sig).map_err(io)?;
        if sig == HDF5_SIGNATURE {
            return Ok(true);
        }
        offset = if offset == 0 { 512 } else { offset * 2 };
    }
    Ok(false)
}

/// Parses `X12` → ('X', 12); only the canonical spelling (no sign, no leading zeros).
fn shard_name(name: &str) -> Option<(char, usize)> {
    let name = name.trim_start_matches('/');
    let mut chars = name.chars();
    let kind = chars.next()?;
    if kind != 'X' && kind != 'Y' {
        return None;
    }
    let digits = chars.as_str();
    let i: usize = digits.parse().ok()?;
    (format!("{i}") == digits).then_some((kind, i))
}

impl H5File {
    /// Opens `path` with the pure-Rust backend and checks its shards (see [`H5File::open_with`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DataError> {
        Self::open_with(path, Backend::Pure)
    }

    /// Opens `path` with the given backend and checks, from metadata alone: the file exists and
    /// is HDF5; `X0`/`Y0` exist and every `X{i}` has its `Y{i}` (and the other way round), numbered
    /// without gaps; `X{i}` is (n, 15000, 4) and `Y{i}` is (1, n, 5000, 3) (or (n, 5000, 3)) with
    /// the same n ≥ 1; elements are int8, uint8, bool or float. Row values are checked as each
    /// shard is decoded.
    pub fn open_with(path: impl AsRef<Path>, backend: Backend) -> Result<Self, DataError> {
        let path = path.as_ref().to_path_buf();
        check_regular_hdf5(&path)?;
        let reader = open_reader(&path, backend)?;
        let names = reader.names().map_err(|m| hdf5_error(&path, None, m))?;
        let last = last_shard(&path, &names)?;
        let mut shards = Vec::with_capacity(last + 1);
        let mut meta = Vec::with_capacity(last + 1);
        for i in 0..=last {
            let (info, m) = shard_info(&path, reader.as_ref(), i)?;
            shards.push(info);
            meta.push(m);
        }
        log::debug!(
            "{}: {} shards, {} windows ({backend:?} backend)",
            path.display(),
            shards.len(),
            shards.iter().map(|s| s.n_windows).sum::<usize>()
        );
        Ok(Self {
            path: Arc::new(path),
            backend,
            shards,
            meta,
            reader,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The backend reading the file.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The shards, in index order.
    pub fn shards(&self) -> &[ShardInfo] {
        &self.shards
    }

    /// Total windows over all shards.
    pub fn n_windows(&self) -> usize {
        self.shards.iter().map(|s| s.n_windows).sum()
    }

    /// Element types of `X{shard}` and `Y{shard}`, or `None` for a shard that does not exist.
    pub fn element_types(&self, shard: usize) -> Option<(ElementType, ElementType)> {
        self.meta.get(shard).map(|m| (m.x_type, m.y_type))
    }

    /// Every window of the file, ordered by shard then row.
    pub fn all_windows(&self) -> Vec<WindowRef> {
        self.shards
            .iter()
            .flat_map(|s| {
                (0..s.n_windows).map(move |index| WindowRef {
                    shard: s.index,
                    index,
                })
            })
            .collect()
    }

    /// Checks that a window exists.
    pub fn check_window(&self, w: WindowRef) -> Result<(), DataError> {
        match self.shards.get(w.shard) {
            Some(s) if w.index < s.n_windows => Ok(()),
            Some(s) => Err(DataError::NoSuchWindow {
                path: self.path.to_path_buf(),
                shard: w.shard,
                index: w.index,
                detail: format!("the shard has {} windows", s.n_windows),
            }),
            None => Err(DataError::NoSuchWindow {
                path: self.path.to_path_buf(),
                shard: w.shard,
                index: w.index,
                detail: format!("the file has {} shards", self.shards.len()),
            }),
        }
    }

    /// Reads shard `shard` whole: the raw one-hot codes of `X{shard}` and `Y{shard}` (row values
    /// are checked later, by [`super::decode_batch`]).
    pub fn read_shard(&self, shard: usize) -> Result<RawShard, DataError> {
        let (info, meta) = match (self.shards.get(shard), self.meta.get(shard)) {
            (Some(i), Some(m)) => (*i, *m),
            _ => {
                return Err(DataError::InvalidArgument(format!(
                    "{}: shard {shard} does not exist ({} shards)",
                    self.path.display(),
                    self.shards.len()
                )))
            }
        };
        let read = |name: String, ty: ElementType, expected: usize| {
            let codes = self
                .reader
                .read_codes(&name, ty)
                .map_err(|message| DataError::Hdf5 {
                    path: self.path.to_path_buf(),
                    dataset: Some(name.clone()),
                    message,
                })?;
            if codes.len() != expected {
                return Err(DataError::Hdf5 {
                    path: self.path.to_path_buf(),
                    dataset: Some(name),
                    message: format!("read {} elements, expected {expected}", codes.len()),
                });
            }
            Ok(codes)
        };
        let n = info.n_windows;
        let x = read(format!("X{shard}"), meta.x_type, n * X_LEN * IN_CHANNELS)?;
        let y = read(format!("Y{shard}"), meta.y_type, n * SEQ_LEN * OUT_CLASSES)?;
        Ok(RawShard::new(self.path.clone(), shard, n, x, y))
    }
}

/// Float → code: exactly 0.0 → 0, exactly 1.0 → 1, anything else → 2.
fn float_code(v: f64) -> u8 {
    if v == 0.0 {
        0
    } else if v == 1.0 {
        1
    } else {
        2
    }
}

/// Raw little/big-endian bytes of 4/8-byte floats → codes.
fn float_bytes_to_codes(raw: &[u8], ty: ElementType) -> Result<Vec<u8>, String> {
    match ty {
        ElementType::F32 { big_endian } => Ok(raw
            .chunks_exact(4)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3]];
                float_code(f64::from(if big_endian {
                    f32::from_be_bytes(b)
                } else {
                    f32::from_le_bytes(b)
                }))
            })
            .collect()),
        ElementType::F64 { big_endian } => Ok(raw
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                float_code(if big_endian {
                    f64::from_be_bytes(b)
                } else {
                    f64::from_le_bytes(b)
                })
            })
            .collect()),
        _ => Err(format!("internal: {ty:?} is not a float type")),
    }
}

mod pure {
    use super::{float_bytes_to_codes, ElementType, Reader};
    use hdf5_reader::{ByteOrder, Datatype, Hdf5File, OpenOptions};
    use std::path::Path;

    pub(super) struct PureReader {
        file: Hdf5File,
    }

    impl PureReader {
        pub(super) fn open(path: &Path) -> Result<Self, String> {
            // No chunk cache: the loader reads each dataset once per epoch, and the crate keeps
            // whole decoded chunked datasets (up to 32 MiB each) while its cache is enabled,
            // which over many shards would hold the whole file in memory.
            let options = OpenOptions::default().with_chunk_cache_bytes(0);
            Ok(Self {
                file: Hdf5File::open_with_options(path, options).map_err(|e| e.to_string())?,
            })
        }
    }

    fn element_type(dt: &Datatype) -> Result<ElementType, String> {
        match dt {
            Datatype::FixedPoint {
                size: 1,
                signed: true,
                ..
            } => Ok(ElementType::I8),
            Datatype::FixedPoint {
                size: 1,
                signed: false,
                ..
            } => Ok(ElementType::U8),
            Datatype::FloatingPoint {
                size: 4,
                byte_order,
            } => Ok(ElementType::F32 {
                big_endian: matches!(byte_order, ByteOrder::BigEndian),
            }),
            Datatype::FloatingPoint {
                size: 8,
                byte_order,
            } => Ok(ElementType::F64 {
                big_endian: matches!(byte_order, ByteOrder::BigEndian),
            }),
            Datatype::Enum { base, members }
                if matches!(**base, Datatype::FixedPoint { size: 1, .. })
                    && members.len() <= 2
                    && members
                        .iter()
                        .all(|m| m.value.len() == 1 && m.value[0] <= 1) =>
            {
                Ok(ElementType::Bool)
            }
            other => Err(format!("{other:?}")),
        }
    }

    impl Reader for PureReader {
        fn names(&self) -> Result<Vec<String>, String> {
            let root = self.file.root_group().map_err(|e| e.to_string())?;
            let (_groups, datasets) = root.member_names().map_err(|e| e.to_string())?;
            Ok(datasets)
        }

        fn meta(&self, name: &str) -> Result<(Vec<u64>, Result<ElementType, String>), String> {
            let ds = self.file.dataset(name).map_err(|e| e.to_string())?;
            Ok((ds.shape().to_vec(), element_type(ds.dtype())))
        }

        fn read_codes(&self, name: &str, ty: ElementType) -> Result<Vec<u8>, String> {
            let ds = self.file.dataset(name).map_err(|e| e.to_string())?;
            if ds.chunks().is_some() {
                // Chunked (often compressed) data: inflate the chunks on rayon's pool.
                let not_contiguous = || format!("{name}: decoded array is not contiguous");
                match ty {
                    ElementType::I8 => {
                        let arr = ds.read_array_parallel::<i8>().map_err(|e| e.to_string())?;
                        let s = arr.as_slice().ok_or_else(not_contiguous)?;
                        return Ok(s.iter().map(|&v| v as u8).collect());
                    }
                    ElementType::U8 => {
                        let arr = ds.read_array_parallel::<u8>().map_err(|e| e.to_string())?;
                        return arr
                            .as_slice()
                            .map(<[u8]>::to_vec)
                            .ok_or_else(not_contiguous);
                    }
                    _ => {}
                }
            }
            let raw = ds.read_raw_bytes().map_err(|e| e.to_string())?;
            match ty {
                ElementType::I8 | ElementType::U8 | ElementType::Bool => Ok(raw),
                _ => float_bytes_to_codes(&raw, ty),
            }
        }
    }
}

#[cfg(feature = "libhdf5")]
mod libhdf5 {
    use super::{float_code, ElementType, Reader};
    use hdf5_metno::types::{FloatSize, IntSize, TypeDescriptor};
    use std::path::Path;

    pub(super) struct LibReader {
        file: hdf5_metno::File,
    }

    impl LibReader {
        pub(super) fn open(path: &Path) -> Result<Self, String> {
            Ok(Self {
                file: hdf5_metno::File::open(path).map_err(|e| e.to_string())?,
            })
        }
    }

    impl Reader for LibReader {
        fn names(&self) -> Result<Vec<String>, String> {
            let mut out = Vec::new();
            for name in self.file.member_names().map_err(|e| e.to_string())? {
                if self.file.link_exists(&name) && self.file.dataset(&name).is_ok() {
                    out.push(name);
                }
            }
            Ok(out)
        }

        fn meta(&self, name: &str) -> Result<(Vec<u64>, Result<ElementType, String>), String> {
            let ds = self.file.dataset(name).map_err(|e| e.to_string())?;
            let shape = ds.shape().into_iter().map(|d| d as u64).collect();
            let desc = ds
                .dtype()
                .and_then(|t| t.to_descriptor())
                .map_err(|e| e.to_string());
            let ty = match desc {
                Ok(TypeDescriptor::Integer(IntSize::U1)) => Ok(ElementType::I8),
                Ok(TypeDescriptor::Unsigned(IntSize::U1)) => Ok(ElementType::U8),
                Ok(TypeDescriptor::Boolean) => Ok(ElementType::Bool),
                Ok(TypeDescriptor::Float(FloatSize::U4)) => Ok(ElementType::F32 {
                    big_endian: cfg!(target_endian = "big"),
                }),
                Ok(TypeDescriptor::Float(FloatSize::U8)) => Ok(ElementType::F64 {
                    big_endian: cfg!(target_endian = "big"),
                }),
                Ok(other) => Err(format!("{other:?}")),
                Err(e) => Err(e),
            };
            Ok((shape, ty))
        }

        fn read_codes(&self, name: &str, ty: ElementType) -> Result<Vec<u8>, String> {
            let ds = self.file.dataset(name).map_err(|e| e.to_string())?;
            let err = |e: hdf5_metno::Error| e.to_string();
            Ok(match ty {
                ElementType::I8 => ds
                    .read_raw::<i8>()
                    .map_err(err)?
                    .into_iter()
                    .map(|v| v as u8)
                    .collect(),
                ElementType::U8 => ds.read_raw::<u8>().map_err(err)?,
                ElementType::Bool => ds
                    .read_raw::<bool>()
                    .map_err(err)?
                    .into_iter()
                    .map(u8::from)
                    .collect(),
                ElementType::F32 { .. } => ds
                    .read_raw::<f32>()
                    .map_err(err)?
                    .into_iter()
                    .map(|v| float_code(f64::from(v)))
                    .collect(),
                ElementType::F64 { .. } => ds
                    .read_raw::<f64>()
                    .map_err(err)?
                    .into_iter()
                    .map(float_code)
                    .collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shard_name;

    #[test]
    fn shard_names() {
        assert_eq!(shard_name("X0"), Some(('X', 0)));
        assert_eq!(shard_name("/Y12"), Some(('Y', 12)));
        assert_eq!(shard_name("X01"), None);
        assert_eq!(shard_name("X"), None);
        assert_eq!(shard_name("Z1"), None);
        assert_eq!(shard_name("X-1"), None);
    }
}
