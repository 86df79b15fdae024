//! Writing the outputs: `{split}_stats.txt`, `{split}.fa`, `datafile_{split}.h5` (the records as strings) and
//! `dataset_{split}.h5` (one-hot windows in shards of 100 records), in upstream's layouts.

use std::io::{BufWriter, Write};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::extract::Record;
use super::h5::{H5Writer, StringColumn};
use super::output::Staged;
use super::CreateDataError;

/// Context: window 5000 + 5000 on each side, as upstream's constants fix.
pub const SL: usize = 5000;
const CL_HALF: usize = 5000;
const WINDOW: usize = SL + 2 * CL_HALF;
/// Records per shard (`CHUNK_SIZE`).
pub const CHUNK_SIZE: usize = 100;

fn io_stage(staged: &Staged, name: &str) -> impl FnOnce(std::io::Error) -> CreateDataError {
    let path = staged.path(name);
    move |source| CreateDataError::Io { path, source }
}

/// `{split}_stats.txt`: `seqid, start, end, gene id, 1, strand` per record.
pub fn write_stats(
    staged: &mut Staged,
    split: &str,
    records: &[&Record],
) -> Result<(), CreateDataError> {
    let name = format!("{split}_stats.txt");
    let mut w = BufWriter::new(staged.create(&name)?);
    let err = io_stage(staged, &name);
    (|| {
        for r in records {
            writeln!(
                w,
                "{}\t{}\t{}\t{}\t1\t{}",
                r.chrom, r.tx_start, r.tx_end, r.name, r.strand
            )?;
        }
        w.flush()
    })()
    .map_err(err)
}

/// `{split}.fa` as Biopython writes it: `>{id} {seqid}:{start}-{end}({strand})`, 60 columns.
pub fn write_fasta(
    staged: &mut Staged,
    split: &str,
    records: &[&Record],
) -> Result<(), CreateDataError> {
    let name = format!("{split}.fa");
    let mut w = BufWriter::new(staged.create(&name)?);
    let err = io_stage(staged, &name);
    (|| {
        for r in records {
            writeln!(
                w,
                ">{} {}:{}-{}({})",
                r.name, r.chrom, r.tx_start, r.tx_end, r.strand
            )?;
            for line in r.seq.chunks(60) {
                w.write_all(line)?;
                w.write_all(b"\n")?;
            }
        }
        w.flush()
    })()
    .map_err(err)
}

fn label_string(labels: &[u8]) -> Vec<u8> {
    labels.iter().map(|l| b'0' + l).collect()
}

/// `datafile_{split}.h5`: NAME, CHROM, STRAND, TX_START, TX_END, SEQ, LABEL as variable-length UTF-8 strings.
pub fn write_datafile(
    staged: &mut Staged,
    split: &str,
    records: &[&Record],
) -> Result<(), CreateDataError> {
    let name = format!("datafile_{split}.h5");
    let file = staged.create(&name)?;
    let err = io_stage(staged, &name);
    (|| {
        let mut h5 = H5Writer::create(file)?;
        type Field = fn(&Record) -> Vec<u8>;
        let fields: [(&str, Field); 7] = [
            ("NAME", |r| r.name.as_bytes().to_vec()),
            ("CHROM", |r| r.chrom.as_bytes().to_vec()),
            ("STRAND", |r| r.strand.to_string().into_bytes()),
            ("TX_START", |r| r.tx_start.to_string().into_bytes()),
            ("TX_END", |r| r.tx_end.to_string().into_bytes()),
            ("SEQ", |r| r.seq.to_vec()),
            ("LABEL", |r| label_string(&r.labels)),
        ];
        for (field, get) in fields {
            let mut col = StringColumn::default();
            for r in records {
                h5.push_string(&mut col, &get(r))?;
            }
            h5.finish_strings(field, col)?;
        }
        h5.finish().map(|_| ())
    })()
    .map_err(err)
}

/// One-hot rows for bases: A, C, G, T; everything else (N, IUPAC, padding) all zero.
fn base_row(b: u8) -> [u8; 4] {
    match b {
        b'A' => [1, 0, 0, 0],
        b'C' => [0, 1, 0, 0],
        b'G' => [0, 0, 1, 0],
        b'T' => [0, 0, 0, 1],
        _ => [0; 4],
    }
}

/// Number of windows of a record: ceil(len / 5000).
pub fn windows(r: &Record) -> usize {
    r.seq.len().div_ceil(SL)
}

/// The record's windows as X rows: (W, 15000, 4), C-ordered int8 bytes.
fn encode_x(r: &Record) -> Vec<u8> {
    let n = windows(r);
    let len = r.seq.len() as i64;
    let mut x = vec![0u8; n * WINDOW * 4];
    for w in 0..n {
        let base0 = (w * SL) as i64 - CL_HALF as i64;
        let xs = &mut x[w * WINDOW * 4..(w + 1) * WINDOW * 4];
        let lo = (-base0).clamp(0, WINDOW as i64) as usize;
        let hi = (len - base0).clamp(0, WINDOW as i64) as usize;
        for p in lo..hi {
            let b = r.seq[(base0 + p as i64) as usize];
            xs[p * 4..p * 4 + 4].copy_from_slice(&base_row(b));
        }
    }
    x
}

/// The record's labels as Y rows: (W, 5000, 3), one-hot, all zero past the end.
fn encode_y(r: &Record) -> Vec<u8> {
    let n = windows(r);
    let mut y = vec![0u8; n * SL * 3];
    for (p, &l) in r.labels.iter().enumerate() {
        y[p * 3 + l as usize] = 1;
    }
    y
}

/// Records encoded in parallel this many at a time, then written in order: memory stays at a few records'
/// windows, not a whole shard's.
const ENCODE_BATCH: usize = 16;

fn write_rows(
    h5: &mut H5Writer,
    name: String,
    shape: Vec<u64>,
    shard: &[&Record],
    encode: fn(&Record) -> Vec<u8>,
) -> std::io::Result<()> {
    h5.begin_i8(&name, shape)?;
    for batch in shard.chunks(ENCODE_BATCH) {
        let parts: Vec<Vec<u8>> = batch.par_iter().map(|r| encode(r)).collect();
        for p in parts {
            h5.append(&p)?;
        }
    }
    h5.end_i8()
}

/// `dataset_{split}.h5`: shard i holds records [100 i, 100 i + 100) as `X{i}` (W, 15000, 4) and `Y{i}`
/// (1, W, 5000, 3); an empty shard is `X{i}` (0,) and `Y{i}` (1, 0).
pub fn write_dataset(
    staged: &mut Staged,
    split: &str,
    records: &[&Record],
    progress: bool,
) -> Result<(), CreateDataError> {
    let name = format!("dataset_{split}.h5");
    let file = staged.create(&name)?;
    let err = io_stage(staged, &name);
    let shards = records.len().div_ceil(CHUNK_SIZE);
    let bar = if progress {
        ProgressBar::new(shards as u64).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} shards {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
    bar.set_message(format!("writing {name}"));
    (|| {
        let mut h5 = H5Writer::create(file)?;
        for (i, shard) in records.chunks(CHUNK_SIZE).enumerate() {
            let w: usize = shard.iter().map(|r| windows(r)).sum();
            let (xs, ys) = if w == 0 {
                (vec![0], vec![1, 0])
            } else {
                (
                    vec![w as u64, WINDOW as u64, 4],
                    vec![1, w as u64, SL as u64, 3],
                )
            };
            write_rows(&mut h5, format!("X{i}"), xs, shard, encode_x)?;
            write_rows(&mut h5, format!("Y{i}"), ys, shard, encode_y)?;
            bar.inc(1);
        }
        h5.finish().map(|_| ())
    })()
    .map_err(err)?;
    bar.finish_and_clear();
    Ok(())
}
