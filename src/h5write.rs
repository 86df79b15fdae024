//! A streaming HDF5 writer for what `create-data` and `predict -p` write: one root group holding 1-D
//! variable-length UTF-8 string datasets and int8, int64 or float32 arrays, contiguous, unfiltered, in the
//! layout h5py writes by default (superblock v0, a symbol-table root group, version-1 object headers,
//! strings in global heap collections).
//!
//! The `hdf5-writer` dependency builds a whole file in memory and only writes superblock v2 with ASCII vlen
//! strings; this writer streams array data to disk as it comes (one shard, one batch or one heap collection
//! in memory) and matches upstream's dataset types (UTF-8 cset) and superblock. Object headers are written
//! last, so an array's leading dimension may be left open until its data is complete
//! ([`H5Writer::begin_rows`]).

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};

const UNDEF: u64 = u64::MAX;
const SUPERBLOCK_SIZE: u64 = 96;
/// Entries per symbol-table node is 2 × this (libhdf5's default K).
const LEAF_K: u16 = 4;
const GCOL_MIN: usize = 4096;
/// A heap collection is flushed once it holds this many bytes.
const GCOL_TARGET: usize = 1 << 20;
const GCOL_MAX_OBJECTS: usize = 65_535;

/// The element type of a numeric array (little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    I8,
    I64,
    F32,
}

impl Elem {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Elem::I8 => 1,
            Elem::I64 => 8,
            Elem::F32 => 4,
        }
    }
}

/// The element type of a dataset.
#[derive(Clone, Copy, Debug)]
enum Kind {
    VlenUtf8,
    Array(Elem),
}

/// The array being streamed: where its data starts and, for [`H5Writer::begin_rows`], the bytes of a row.
struct OpenArray {
    start: u64,
    row_bytes: Option<u64>,
}

struct DatasetMeta {
    name: String,
    kind: Kind,
    shape: Vec<u64>,
    address: u64,
    size: u64,
}

/// A pending reference to a string in a heap collection: (collection number, object index, length).
#[derive(Clone, Copy)]
pub struct StrRef {
    collection: u32,
    index: u16,
    len: u32,
}

/// A column of variable-length strings being written; turned into a dataset by [`H5Writer::finish_strings`].
#[derive(Default)]
pub struct StringColumn {
    refs: Vec<StrRef>,
}

/// One HDF5 file being written.
pub struct H5Writer {
    out: BufWriter<File>,
    pos: u64,
    datasets: Vec<DatasetMeta>,
    heap: Vec<u8>,
    heap_objects: usize,
    collections: Vec<u64>,
    open: Option<OpenArray>,
}

impl H5Writer {
    /// Starts a file (the superblock is written last, at offset 0).
    pub fn create(file: File) -> std::io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&[0u8; SUPERBLOCK_SIZE as usize])?;
        Ok(Self {
            out,
            pos: SUPERBLOCK_SIZE,
            datasets: Vec::new(),
            heap: Vec::new(),
            heap_objects: 0,
            collections: Vec::new(),
            open: None,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Appends one string to `column` (stored in the current global heap collection).
    pub fn push_string(&mut self, column: &mut StringColumn, s: &[u8]) -> std::io::Result<()> {
        if s.is_empty() {
            column.refs.push(StrRef {
                collection: u32::MAX,
                index: 0,
                len: 0,
            });
            return Ok(());
        }
        let padded = s.len().div_ceil(8) * 8;
        if self.heap_objects > 0
            && (self.heap.len() + padded > GCOL_TARGET || self.heap_objects == GCOL_MAX_OBJECTS)
        {
            self.flush_heap()?;
        }
        self.heap_objects += 1;
        let index = self.heap_objects as u16;
        self.heap.extend_from_slice(&index.to_le_bytes());
        self.heap.extend_from_slice(&1u16.to_le_bytes());
        self.heap.extend_from_slice(&[0; 4]);
        self.heap.extend_from_slice(&(s.len() as u64).to_le_bytes());
        self.heap.extend_from_slice(s);
        self.heap.resize(self.heap.len() + padded - s.len(), 0);
        column.refs.push(StrRef {
            collection: self.collections.len() as u32,
            index,
            len: s.len() as u32,
        });
        Ok(())
    }

    /// Writes the current global heap collection ("GCOL"), padded to libhdf5's 4 KiB minimum.
    fn flush_heap(&mut self) -> std::io::Result<()> {
        if self.heap_objects == 0 {
            return Ok(());
        }
        let body = std::mem::take(&mut self.heap);
        let size = (16 + body.len() + 16).max(GCOL_MIN);
        let size = size.div_ceil(8) * 8;
        let mut buf = Vec::with_capacity(size);
        buf.extend_from_slice(b"GCOL");
        buf.extend_from_slice(&[1, 0, 0, 0]);
        buf.extend_from_slice(&(size as u64).to_le_bytes());
        buf.extend_from_slice(&body);
        let free = size - buf.len();
        if free >= 16 {
            // Object 0: the free space, its size counting its own header.
            buf.extend_from_slice(&[0; 8]);
            buf.extend_from_slice(&(free as u64).to_le_bytes());
        }
        buf.resize(size, 0);
        self.collections.push(self.pos);
        self.heap_objects = 0;
        self.write(&buf)
    }

    /// Ends a string column as the 1-D dataset `name`.
    pub fn finish_strings(&mut self, name: &str, column: StringColumn) -> std::io::Result<()> {
        if self.open.is_some() {
            return Err(std::io::Error::other("an array dataset is still open"));
        }
        // A reference may point into the collection still in memory: place it first.
        self.flush_heap()?;
        let mut data = Vec::with_capacity(column.refs.len() * 16);
        for r in &column.refs {
            let addr = if r.len == 0 {
                0
            } else {
                self.collections[r.collection as usize]
            };
            data.extend_from_slice(&r.len.to_le_bytes());
            data.extend_from_slice(&addr.to_le_bytes());
            data.extend_from_slice(&u32::from(r.index).to_le_bytes());
        }
        let shape = vec![column.refs.len() as u64];
        self.raw_dataset(name, Kind::VlenUtf8, shape, &data)
    }

    /// Starts an array dataset of `shape` whose bytes (little-endian, row-major) follow through
    /// [`H5Writer::append`]; ended by [`H5Writer::end_array`]. Nothing else may be written in between.
    pub fn begin_array(&mut self, name: &str, elem: Elem, shape: Vec<u64>) -> std::io::Result<()> {
        self.open_array(name, elem, shape, None)
    }

    /// Starts an array dataset of rows of `row_shape` whose number is known only at its end: the leading
    /// dimension is the count of rows appended before [`H5Writer::end_array`].
    pub fn begin_rows(&mut self, name: &str, elem: Elem, row_shape: &[u64]) -> std::io::Result<()> {
        let row_bytes = row_shape.iter().product::<u64>() * elem.size();
        if row_bytes == 0 {
            return Err(std::io::Error::other(format!(
                "dataset {name}: rows of shape {row_shape:?} are empty"
            )));
        }
        let shape = std::iter::once(0)
            .chain(row_shape.iter().copied())
            .collect();
        self.open_array(name, elem, shape, Some(row_bytes))
    }

    fn open_array(
        &mut self,
        name: &str,
        elem: Elem,
        shape: Vec<u64>,
        row_bytes: Option<u64>,
    ) -> std::io::Result<()> {
        if self.open.is_some() {
            return Err(std::io::Error::other("an array dataset is still open"));
        }
        self.flush_heap()?;
        let size = shape.iter().product::<u64>() * elem.size();
        self.datasets.push(DatasetMeta {
            name: name.to_string(),
            kind: Kind::Array(elem),
            shape,
            address: UNDEF,
            size,
        });
        self.open = Some(OpenArray {
            start: self.pos,
            row_bytes,
        });
        Ok(())
    }

    /// Appends bytes to the open array dataset.
    pub fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.open.is_none() {
            return Err(std::io::Error::other("no array dataset is open"));
        }
        self.write(bytes)
    }

    /// Appends float32 values (written little-endian) to the open array dataset.
    pub fn append_f32(&mut self, values: &[f32]) -> std::io::Result<()> {
        let mut buf = [0u8; 4 * 4096];
        for chunk in values.chunks(4096) {
            for (dst, v) in buf.chunks_exact_mut(4).zip(chunk) {
                dst.copy_from_slice(&v.to_le_bytes());
            }
            self.append(&buf[..4 * chunk.len()])?;
        }
        Ok(())
    }

    /// Ends the open array dataset, checking that its bytes match its shape (or, for
    /// [`H5Writer::begin_rows`], are whole rows, whose count becomes the leading dimension).
    pub fn end_array(&mut self) -> std::io::Result<()> {
        let open = self
            .open
            .take()
            .ok_or_else(|| std::io::Error::other("no array dataset is open"))?;
        let written = self.pos - open.start;
        let d = self
            .datasets
            .last_mut()
            .expect("an open array has its metadata");
        match open.row_bytes {
            None if written != d.size => {
                return Err(std::io::Error::other(format!(
                    "dataset {} data is {written} bytes, its shape needs {}",
                    d.name, d.size
                )));
            }
            None => {}
            Some(row) => {
                if !written.is_multiple_of(row) {
                    return Err(std::io::Error::other(format!(
                        "dataset {} data is {written} bytes, not whole rows of {row}",
                        d.name
                    )));
                }
                d.shape[0] = written / row;
                d.size = written;
            }
        }
        if d.size > 0 {
            d.address = open.start;
        }
        Ok(())
    }

    /// Writes a whole array dataset at once.
    pub fn write_array(
        &mut self,
        name: &str,
        elem: Elem,
        shape: Vec<u64>,
        bytes: &[u8],
    ) -> std::io::Result<()> {
        self.begin_array(name, elem, shape)?;
        self.append(bytes)?;
        self.end_array()
    }

    fn raw_dataset(
        &mut self,
        name: &str,
        kind: Kind,
        shape: Vec<u64>,
        data: &[u8],
    ) -> std::io::Result<()> {
        let address = if data.is_empty() { UNDEF } else { self.pos };
        self.write(data)?;
        self.datasets.push(DatasetMeta {
            name: name.to_string(),
            kind,
            shape,
            address,
            size: data.len() as u64,
        });
        Ok(())
    }

    /// Writes the object headers, the root group and the superblock, and flushes the file.
    pub fn finish(mut self) -> std::io::Result<File> {
        if self.open.is_some() {
            return Err(std::io::Error::other("an array dataset is still open"));
        }
        self.flush_heap()?;
        let mut datasets = std::mem::take(&mut self.datasets);
        let mut headers = Vec::with_capacity(datasets.len());
        for d in &datasets {
            let addr = self.pos;
            let header = dataset_header(d);
            self.write(&header)?;
            headers.push(addr);
        }
        // Symbol-table entries are sorted by name (bytewise), as libhdf5 keeps them.
        let mut order: Vec<usize> = (0..datasets.len()).collect();
        order.sort_by(|&a, &b| datasets[a].name.as_bytes().cmp(datasets[b].name.as_bytes()));
        let (heap_data, name_offsets) = local_heap_data(&datasets, &order);
        let heap_addr = self.pos;
        let heap_data_addr = heap_addr + 32;
        let mut heap = Vec::new();
        heap.extend_from_slice(b"HEAP");
        heap.extend_from_slice(&[0, 0, 0, 0]);
        heap.extend_from_slice(&(heap_data.len() as u64).to_le_bytes());
        // libhdf5's H5HL_FREE_NULL: no free block.
        heap.extend_from_slice(&1u64.to_le_bytes());
        heap.extend_from_slice(&heap_data_addr.to_le_bytes());
        heap.extend_from_slice(&heap_data);
        self.write(&heap)?;

        let per_node = 2 * LEAF_K as usize;
        let chunks: Vec<&[usize]> = order.chunks(per_node).collect();
        let mut snods = Vec::new();
        for chunk in &chunks {
            snods.push(self.pos);
            let node = symbol_node(chunk, &name_offsets, &headers);
            self.write(&node)?;
        }
        let internal_k = (snods.len().div_ceil(2)).max(16) as u16;
        let btree_addr = self.pos;
        let last_names: Vec<u64> = chunks
            .iter()
            .map(|c| name_offsets[*c.last().unwrap()])
            .collect();
        let btree = group_btree(&snods, &last_names, internal_k);
        self.write(&btree)?;
        let root_addr = self.pos;
        self.write(&root_header(btree_addr, heap_addr))?;
        let eof = self.pos;
        datasets.clear();
        self.out.flush()?;
        let sb = superblock(internal_k, eof, root_addr, btree_addr, heap_addr);
        let mut file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&sb)?;
        file.flush()?;
        Ok(file)
    }
}

fn local_heap_data(datasets: &[DatasetMeta], order: &[usize]) -> (Vec<u8>, Vec<u64>) {
    // Offset 0 holds the empty name (the root group's own link name).
    let mut data = vec![0u8; 8];
    let mut offsets = vec![0u64; datasets.len()];
    for &i in order {
        offsets[i] = data.len() as u64;
        data.extend_from_slice(datasets[i].name.as_bytes());
        data.push(0);
        data.resize(data.len().div_ceil(8) * 8, 0);
    }
    // Room for a free block is not needed; keep the segment a multiple of 8 and at least 16 bytes.
    if data.len() < 16 {
        data.resize(16, 0);
    }
    (data, offsets)
}

fn symbol_node(entries: &[usize], name_offsets: &[u64], headers: &[u64]) -> Vec<u8> {
    let mut n = Vec::new();
    n.extend_from_slice(b"SNOD");
    n.extend_from_slice(&[1, 0]);
    n.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for &i in entries {
        n.extend_from_slice(&name_offsets[i].to_le_bytes());
        n.extend_from_slice(&headers[i].to_le_bytes());
        n.extend_from_slice(&[0u8; 24]);
    }
    // libhdf5 reads a node at its full capacity.
    n.resize(8 + 2 * LEAF_K as usize * 40, 0);
    n
}

fn group_btree(snods: &[u64], last_names: &[u64], k: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"TREE");
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&(snods.len() as u16).to_le_bytes());
    b.extend_from_slice(&UNDEF.to_le_bytes());
    b.extend_from_slice(&UNDEF.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    for (addr, key) in snods.iter().zip(last_names) {
        b.extend_from_slice(&addr.to_le_bytes());
        b.extend_from_slice(&key.to_le_bytes());
    }
    let capacity = 24 + 2 * k as usize * 8 + (2 * k as usize + 1) * 8;
    b.resize(capacity, 0);
    b
}

fn superblock(internal_k: u16, eof: u64, root: u64, btree: u64, heap: u64) -> Vec<u8> {
    let mut s = Vec::with_capacity(SUPERBLOCK_SIZE as usize);
    s.extend_from_slice(b"\x89HDF\r\n\x1a\n");
    s.extend_from_slice(&[0, 0, 0, 0, 0, 8, 8, 0]);
    s.extend_from_slice(&LEAF_K.to_le_bytes());
    s.extend_from_slice(&internal_k.to_le_bytes());
    s.extend_from_slice(&0u32.to_le_bytes());
    for a in [0, UNDEF, eof, UNDEF] {
        s.extend_from_slice(&a.to_le_bytes());
    }
    // Root group symbol-table entry, cache type 1 (B-tree and heap addresses in the scratch pad).
    s.extend_from_slice(&0u64.to_le_bytes());
    s.extend_from_slice(&root.to_le_bytes());
    s.extend_from_slice(&1u32.to_le_bytes());
    s.extend_from_slice(&0u32.to_le_bytes());
    s.extend_from_slice(&btree.to_le_bytes());
    s.extend_from_slice(&heap.to_le_bytes());
    s
}

/// A version-1 object header holding `messages` (type, body).
fn object_header(messages: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let body: usize = messages
        .iter()
        .map(|(_, m)| 8 + m.len().div_ceil(8) * 8)
        .sum();
    let mut h = Vec::with_capacity(16 + body);
    h.extend_from_slice(&[1, 0]);
    h.extend_from_slice(&(messages.len() as u16).to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&(body as u32).to_le_bytes());
    h.extend_from_slice(&[0; 4]);
    for (kind, m) in messages {
        let padded = m.len().div_ceil(8) * 8;
        h.extend_from_slice(&kind.to_le_bytes());
        h.extend_from_slice(&(padded as u16).to_le_bytes());
        h.extend_from_slice(&[0; 4]);
        h.extend_from_slice(m);
        h.resize(h.len() + padded - m.len(), 0);
    }
    h
}

fn root_header(btree: u64, heap: u64) -> Vec<u8> {
    let mut stab = Vec::new();
    stab.extend_from_slice(&btree.to_le_bytes());
    stab.extend_from_slice(&heap.to_le_bytes());
    object_header(&[(0x11, stab)])
}

fn dataset_header(d: &DatasetMeta) -> Vec<u8> {
    let mut space = vec![1, d.shape.len() as u8, 1, 0, 0, 0, 0, 0];
    for _ in 0..2 {
        for dim in &d.shape {
            space.extend_from_slice(&dim.to_le_bytes());
        }
    }
    let int8 = |signed: bool| {
        let mut t = vec![0x10, if signed { 0x08 } else { 0 }, 0, 0];
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        t.extend_from_slice(&8u16.to_le_bytes());
        t
    };
    let dtype = match d.kind {
        Kind::Array(Elem::I8) => int8(true),
        Kind::Array(Elem::I64) => {
            // Fixed-point, version 1, little-endian, signed; 8 bytes, offset 0, precision 64.
            let mut t = vec![0x10, 0x08, 0, 0];
            t.extend_from_slice(&8u32.to_le_bytes());
            t.extend_from_slice(&0u16.to_le_bytes());
            t.extend_from_slice(&64u16.to_le_bytes());
            t
        }
        Kind::Array(Elem::F32) => {
            // IEEE float32 as h5py writes it: floating point, version 1, little-endian, implied mantissa
            // msb, sign at bit 31; offset 0, precision 32, exponent at 23 (8 bits), mantissa at 0
            // (23 bits), bias 127.
            let mut t = vec![0x11, 0x20, 0x1f, 0x00];
            t.extend_from_slice(&4u32.to_le_bytes());
            t.extend_from_slice(&0u16.to_le_bytes());
            t.extend_from_slice(&32u16.to_le_bytes());
            t.extend_from_slice(&[23, 8, 0, 23]);
            t.extend_from_slice(&127u32.to_le_bytes());
            t
        }
        Kind::VlenUtf8 => {
            // Variable-length string, null-terminated padding, UTF-8, base type unsigned char.
            let mut t = vec![0x19, 0x01, 0x01, 0x00];
            t.extend_from_slice(&16u32.to_le_bytes());
            t.extend(int8(false));
            t
        }
    };
    // Fill value message v2: allocation late, fill written if set; int8 and strings as create-data's
    // upstream files have it (no fill value defined), int64 and float32 as h5py writes them (the default
    // fill value, zero, defined: size 0).
    let fill = match d.kind {
        Kind::Array(Elem::I64 | Elem::F32) => vec![2, 2, 2, 1, 0, 0, 0, 0],
        _ => vec![2, 2, 2, 0],
    };
    let mut layout = vec![3, 1];
    layout.extend_from_slice(&d.address.to_le_bytes());
    layout.extend_from_slice(&d.size.to_le_bytes());
    object_header(&[(0x01, space), (0x03, dtype), (0x05, fill), (0x08, layout)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdf5_reader::Hdf5File;

    #[test]
    fn rows_strings_and_int64_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.h5");
        let mut h5 = H5Writer::create(File::create(&path).unwrap()).unwrap();
        let values: Vec<f32> = (0..2 * 3 * 4).map(|i| i as f32 / 7.0).collect();
        h5.begin_rows("predictions", Elem::F32, &[3, 4]).unwrap();
        h5.append_f32(&values[..12]).unwrap();
        h5.append_f32(&values[12..]).unwrap();
        h5.end_array().unwrap();
        let mut names = StringColumn::default();
        for n in ["rec one:+", "chrT:1-5(-):+"] {
            h5.push_string(&mut names, n.as_bytes()).unwrap();
        }
        h5.finish_strings("NAME", names).unwrap();
        let lens: Vec<u8> = [1i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
        h5.write_array("LEN", Elem::I64, vec![2], &lens).unwrap();
        h5.begin_rows("empty", Elem::F32, &[3]).unwrap();
        h5.end_array().unwrap();
        h5.finish().unwrap();

        let f = Hdf5File::open(&path).unwrap();
        let p = f.dataset("predictions").unwrap();
        assert_eq!(p.shape(), &[2, 3, 4]);
        let read = p.read_array::<f32>().unwrap();
        assert_eq!(read.iter().copied().collect::<Vec<_>>(), values);
        let lens = f.dataset("LEN").unwrap().read_array::<i64>().unwrap();
        assert_eq!(lens.iter().copied().collect::<Vec<_>>(), vec![1, -1]);
        let names = f.dataset("NAME").unwrap().read_strings().unwrap();
        assert_eq!(names, vec!["rec one:+", "chrT:1-5(-):+"]);
        assert_eq!(f.dataset("empty").unwrap().shape(), &[0, 3]);
    }

    #[test]
    fn partial_rows_and_wrong_sizes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("t.h5")).unwrap();
        let mut h5 = H5Writer::create(file).unwrap();
        h5.begin_rows("p", Elem::F32, &[3]).unwrap();
        h5.append_f32(&[1.0, 2.0]).unwrap();
        assert!(h5.end_array().is_err());
        assert!(h5.begin_rows("z", Elem::F32, &[0, 3]).is_err());
        h5.begin_array("x", Elem::I8, vec![4]).unwrap();
        assert!(h5.begin_array("y", Elem::I8, vec![1]).is_err());
        h5.append(&[1, 2, 3]).unwrap();
        assert!(h5.end_array().is_err());
        assert!(h5.append(&[1]).is_err());
    }
}
