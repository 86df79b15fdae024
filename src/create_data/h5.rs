//! A streaming HDF5 writer for exactly what create-data writes: one root group holding 1-D variable-length UTF-8
//! string datasets and int8 arrays, contiguous, unfiltered, in the layout h5py writes by default (superblock v0,
//! a symbol-table root group, version-1 object headers, strings in global heap collections).
//!
//! The `hdf5-writer` dependency builds a whole file in memory and only writes superblock v2 with ASCII vlen
//! strings; this writer streams array data to disk as it comes (one shard or one heap collection in memory) and
//! matches upstream's dataset types (UTF-8 cset) and superblock.

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

/// The element type of a dataset.
#[derive(Clone, Copy, Debug)]
enum Kind {
    VlenUtf8,
    Int8,
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
    open_start: Option<u64>,
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
            open_start: None,
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

    /// Starts an int8 dataset of `shape` whose bytes follow through [`H5Writer::append`]; ended by
    /// [`H5Writer::end_i8`]. Nothing else may be written in between.
    pub fn begin_i8(&mut self, name: &str, shape: Vec<u64>) -> std::io::Result<()> {
        self.flush_heap()?;
        let size = shape.iter().product::<u64>();
        self.datasets.push(DatasetMeta {
            name: name.to_string(),
            kind: Kind::Int8,
            shape,
            address: if size == 0 { UNDEF } else { self.pos },
            size,
        });
        self.open_start = Some(self.pos);
        Ok(())
    }

    /// Appends bytes to the dataset begun by [`H5Writer::begin_i8`].
    pub fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        debug_assert!(self.open_start.is_some());
        self.write(bytes)
    }

    /// Ends the dataset begun by [`H5Writer::begin_i8`], checking that its bytes match its shape.
    pub fn end_i8(&mut self) -> std::io::Result<()> {
        let start = self.open_start.take().unwrap_or(self.pos);
        let expected = self.datasets.last().map_or(0, |d| d.size);
        if self.pos - start != expected {
            return Err(std::io::Error::other(format!(
                "dataset data is {} bytes, its shape needs {expected}",
                self.pos - start
            )));
        }
        Ok(())
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
        Kind::Int8 => int8(true),
        Kind::VlenUtf8 => {
            // Variable-length string, null-terminated padding, UTF-8, base type unsigned char.
            let mut t = vec![0x19, 0x01, 0x01, 0x00];
            t.extend_from_slice(&16u32.to_le_bytes());
            t.extend(int8(false));
            t
        }
    };
    // Fill value message v2: allocation late, fill written if set, no fill value defined.
    let fill = vec![2, 2, 2, 0];
    let mut layout = vec![3, 1];
    layout.extend_from_slice(&d.address.to_le_bytes());
    layout.extend_from_slice(&d.size.to_le_bytes());
    object_header(&[(0x01, space), (0x03, dtype), (0x05, fill), (0x08, layout)])
}
