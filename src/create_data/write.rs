//! Writing the outputs: `{split}_stats.txt`, `{split}.fa`, `datafile_{split}.h5` (the records as strings) and
//! `dataset_{split}.h5` (one-hot windows in shards of 100 records), in upstream's layouts.

use std::io::{BufWriter, Write};

use rayon::prelude::*;

use super::extract::Record;
use super::output::Staged;
use super::seqstore::SeqStore;
use super::CreateDataError;
use crate::genome::seq::{base_row, window_count, window_span, MAX_FLANK, X_LEN};
use crate::h5write::{Elem, H5Writer, StringColumn};
use crate::model::config::SEQ_LEN;

/// Records per shard (`CHUNK_SIZE`).
pub const CHUNK_SIZE: usize = 100;
/// Records encoded in parallel this many at a time, then written in order: memory stays at a few records'
/// windows, not a whole shard's.
const ENCODE_BATCH: usize = 16;

/// An output file being written under its temporary name.
struct Out<'a> {
    name: String,
    staged: &'a Staged,
}

impl Out<'_> {
    fn err(&self) -> impl FnOnce(std::io::Error) -> CreateDataError + '_ {
        |source| CreateDataError::Io {
            path: self.staged.path(&self.name),
            source,
        }
    }
}

/// The records of one split, what every writer of its files reads.
pub struct SplitRecords<'a> {
    /// `train`, `test` or `validation`: the files' infix.
    pub name: &'a str,
    /// Where the records' sequences are.
    pub store: &'a SeqStore,
    pub records: Vec<&'a Record>,
}

/// A text output `name`: the bytes `text` gives for each record, in order.
fn write_text(
    staged: &mut Staged,
    name: String,
    records: &[&Record],
    mut text: impl FnMut(&Record) -> Result<Vec<u8>, CreateDataError>,
) -> Result<(), CreateDataError> {
    let mut w = BufWriter::new(staged.create(&name)?);
    let out = Out { name, staged };
    for r in records {
        w.write_all(&text(r)?).map_err(out.err())?;
    }
    w.flush().map_err(out.err())
}

/// `{split}_stats.txt`: `seqid, start, end, gene id, 1, strand` per record.
pub fn write_stats(staged: &mut Staged, s: &SplitRecords) -> Result<(), CreateDataError> {
    let (split, records) = (s.name, &s.records[..]);
    write_text(staged, format!("{split}_stats.txt"), records, |r| {
        let line = format!(
            "{}\t{}\t{}\t{}\t1\t{}\n",
            r.chrom, r.tx_start, r.tx_end, r.name, r.strand
        );
        Ok(line.into_bytes())
    })
}

/// `{split}.fa` as Biopython writes it: `>{id} {seqid}:{start}-{end}({strand})`, 60 columns.
pub fn write_fasta(staged: &mut Staged, s: &SplitRecords) -> Result<(), CreateDataError> {
    let (split, store, records) = (s.name, s.store, &s.records[..]);
    write_text(staged, format!("{split}.fa"), records, |r| {
        let seq = store.read(r.seq)?;
        let mut text = format!(
            ">{} {}:{}-{}({})\n",
            r.name, r.chrom, r.tx_start, r.tx_end, r.strand
        )
        .into_bytes();
        for line in seq.chunks(60) {
            text.extend_from_slice(line);
            text.push(b'\n');
        }
        Ok(text)
    })
}

/// `datafile_{split}.h5`: NAME, CHROM, STRAND, TX_START, TX_END, SEQ, LABEL as variable-length UTF-8 strings.
pub fn write_datafile(staged: &mut Staged, s: &SplitRecords) -> Result<(), CreateDataError> {
    let (split, store, records) = (s.name, s.store, &s.records[..]);
    let name = format!("datafile_{split}.h5");
    let file = staged.create(&name)?;
    let out = Out { name, staged };
    let mut h5 = H5Writer::create(file).map_err(out.err())?;
    type Field = fn(&Record) -> Vec<u8>;
    let fields: [(&str, Field); 5] = [
        ("NAME", |r| r.name.as_bytes().to_vec()),
        ("CHROM", |r| r.chrom.as_bytes().to_vec()),
        ("STRAND", |r| r.strand.to_string().into_bytes()),
        ("TX_START", |r| r.tx_start.to_string().into_bytes()),
        ("TX_END", |r| r.tx_end.to_string().into_bytes()),
    ];
    for (field, get) in fields {
        let mut col = StringColumn::default();
        for r in records {
            h5.push_string(&mut col, &get(r)).map_err(out.err())?;
        }
        h5.finish_strings(field, col).map_err(out.err())?;
    }
    let mut col = StringColumn::default();
    for r in records {
        h5.push_string(&mut col, &store.read(r.seq)?)
            .map_err(out.err())?;
    }
    h5.finish_strings("SEQ", col).map_err(out.err())?;
    let mut col = StringColumn::default();
    for r in records {
        h5.push_string(&mut col, &r.label_string())
            .map_err(out.err())?;
    }
    h5.finish_strings("LABEL", col).map_err(out.err())?;
    h5.finish().map_err(out.err())?;
    Ok(())
}

/// Number of windows of a record: ceil(len / 5000).
pub fn windows(r: &Record) -> usize {
    window_count(r.len())
}

/// The record's windows as X rows: (W, 15000, 4), C-ordered int8 bytes.
fn encode_x(r: &Record, seq: &[u8]) -> Vec<u8> {
    let n = windows(r);
    let mut x = vec![0u8; n * X_LEN * 4];
    for w in 0..n {
        let span = window_span(w, seq.len(), MAX_FLANK / 2);
        let xs = &mut x[w * X_LEN * 4..(w + 1) * X_LEN * 4];
        for (i, &b) in seq[span.start..span.end].iter().enumerate() {
            let p = span.offset + i;
            xs[p * 4..p * 4 + 4].copy_from_slice(&base_row(b));
        }
    }
    x
}

/// The record's labels as Y rows: (W, 5000, 3), one-hot, all zero past the end.
fn encode_y(r: &Record) -> Vec<u8> {
    let mut y = vec![0u8; windows(r) * SEQ_LEN * 3];
    for p in 0..r.len() {
        y[p * 3] = 1;
    }
    for s in &r.sites {
        let p = s.pos as usize;
        y[p * 3] = 0;
        y[p * 3 + s.label as usize] = 1;
    }
    y
}

/// Where a shard goes: the writer, the sequences, and the output's path for errors.
struct ShardSink<'a> {
    h5: &'a mut H5Writer,
    store: &'a SeqStore,
    path: std::path::PathBuf,
}

fn write_rows(
    sink: &mut ShardSink,
    name: String,
    shape: Vec<u64>,
    shard: &[&Record],
    x: bool,
) -> Result<(), CreateDataError> {
    let (h5, store) = (&mut *sink.h5, sink.store);
    let io = |source| CreateDataError::Io {
        path: sink.path.clone(),
        source,
    };
    h5.begin_array(&name, Elem::I8, shape).map_err(io)?;
    for batch in shard.chunks(ENCODE_BATCH) {
        let parts: Vec<Vec<u8>> = batch
            .par_iter()
            .map(|r| {
                if x {
                    Ok(encode_x(r, &store.read(r.seq)?))
                } else {
                    Ok(encode_y(r))
                }
            })
            .collect::<Result<_, CreateDataError>>()?;
        for p in parts {
            h5.append(&p).map_err(io)?;
        }
    }
    h5.end_array().map_err(io)
}

/// `dataset_{split}.h5`: shard i holds records [100 i, 100 i + 100) as `X{i}` (W, 15000, 4) and `Y{i}`
/// (1, W, 5000, 3); an empty shard is `X{i}` (0,) and `Y{i}` (1, 0).
pub fn write_dataset(
    staged: &mut Staged,
    s: &SplitRecords,
    progress: bool,
) -> Result<(), CreateDataError> {
    let (split, store, records) = (s.name, s.store, &s.records[..]);
    let name = format!("dataset_{split}.h5");
    let file = staged.create(&name)?;
    let out = Out { name, staged };
    let shards = records.len().div_ceil(CHUNK_SIZE);
    let bar = crate::progress::Progress::new(progress).counter(
        Some(shards as u64),
        "shards",
        "create-data",
    );
    bar.set_message(format!("writing {}", out.name));
    let mut h5 = H5Writer::create(file).map_err(out.err())?;
    let mut sink = ShardSink {
        h5: &mut h5,
        store,
        path: out.staged.path(&out.name),
    };
    for (i, shard) in records.chunks(CHUNK_SIZE).enumerate() {
        let w: usize = shard.iter().map(|r| windows(r)).sum();
        let (xs, ys) = if w == 0 {
            (vec![0], vec![1, 0])
        } else {
            (
                vec![w as u64, X_LEN as u64, 4],
                vec![1, w as u64, SEQ_LEN as u64, 3],
            )
        };
        write_rows(&mut sink, format!("X{i}"), xs, shard, true)?;
        write_rows(&mut sink, format!("Y{i}"), ys, shard, false)?;
        bar.inc(1);
    }
    h5.finish().map_err(out.err())?;
    bar.finish_and_clear();
    Ok(())
}
