//! `--remove-paralogs`: drop test/validation records that map onto a train record (upstream's
//! `paralogs.remove_paralogous_sequences`): minimap2 with mappy's `map-ont` settings over a FASTA of the train
//! sequences, `identity = mlen / blen`, `coverage = blen / len(query)`, every examined hit listed in
//! `removed_paralogs_{split}.txt`. Unlike upstream, empty train or query sets work and the reference FASTA is
//! deleted.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use minimap2::Aligner;
use rayon::prelude::*;

use super::extract::Record;
use super::output::Staged;
use super::seqstore::SeqStore;
use super::CreateDataError;

/// Python's `repr(float)`: shortest round-trip digits, `.0` on whole numbers, exponents as `1e-05`.
pub fn py_float(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    let a = v.abs();
    if a == 0.0 || (1e-4..1e16).contains(&a) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{v:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    }
}

/// Deletes the reference FASTA however the step ends.
struct TempFasta(PathBuf);

impl Drop for TempFasta {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn build_aligner(
    train: &[Record],
    store: &SeqStore,
    dir: &std::path::Path,
) -> Result<Option<Aligner<minimap2::Built>>, CreateDataError> {
    if train.iter().all(|r| r.is_empty()) {
        return Ok(None);
    }
    let tmp = TempFasta(dir.join(format!(".paralog-reference-{}.fa", std::process::id())));
    let io = |source| CreateDataError::Io {
        path: tmp.0.clone(),
        source,
    };
    let mut w = BufWriter::new(std::fs::File::create(&tmp.0).map_err(io)?);
    for (i, r) in train.iter().enumerate() {
        writeln!(w, ">seq{i}").map_err(io)?;
        w.write_all(&store.read(r.seq)?).map_err(io)?;
        w.write_all(b"\n").map_err(io)?;
    }
    w.flush().map_err(io)?;
    drop(w);
    let aligner = Aligner::builder()
        .map_ont()
        .with_index_threads(3)
        .with_index(&tmp.0, None)
        .map_err(|e| CreateDataError::Paralogs(format!("cannot index the train sequences: {e}")))?;
    Ok(Some(aligner))
}

/// (mlen, blen) of every hit of `seq`, primary and secondary, in minimap2's order.
fn hits(aligner: &Aligner<minimap2::Built>, seq: &[u8]) -> Vec<(i32, i32)> {
    if seq.is_empty() {
        return Vec::new();
    }
    // Flag 4 (MM_F_CIGAR): mappy always aligns, so mlen/blen come from the alignment.
    aligner
        .map(seq, false, false, None, Some(&[4]), None)
        .map(|m| m.iter().map(|h| (h.match_len, h.block_len)).collect())
        .unwrap_or_default()
}

/// Filters `query` against `train`; writes `removed_paralogs_{split}.txt`; returns the kept records (in order)
/// and the names of the removed ones.
pub fn remove_paralogs(
    staged: &mut Staged,
    store: &SeqStore,
    split: &str,
    train: &[Record],
    query: Vec<Record>,
    min_identity: f64,
    min_coverage: f64,
) -> Result<(Vec<Record>, Vec<String>), CreateDataError> {
    let dir = staged.path("");
    let aligner = build_aligner(train, store, &dir)?;
    let all_hits: Vec<Vec<(i32, i32)>> = match &aligner {
        Some(a) => query
            .par_iter()
            .map(|r| Ok(hits(a, &store.read(r.seq)?)))
            .collect::<Result<_, CreateDataError>>()?,
        None => vec![Vec::new(); query.len()],
    };
    let mut log = String::new();
    let mut kept = Vec::with_capacity(query.len());
    let mut removed = Vec::new();
    for (r, hs) in query.into_iter().zip(all_hits) {
        let mut paralog = false;
        for (mlen, blen) in hs {
            let identity = mlen as f64 / blen as f64;
            let coverage = blen as f64 / r.len() as f64;
            let _ = writeln!(
                log,
                "{}\t{}\t{}",
                r.name,
                py_float(identity),
                py_float(coverage)
            );
            if identity >= min_identity && coverage >= min_coverage {
                paralog = true;
                break;
            }
        }
        if paralog {
            removed.push(r.name);
        } else {
            kept.push(r);
        }
    }
    let name = format!("removed_paralogs_{split}.txt");
    let mut f = staged.create(&name)?;
    f.write_all(log.as_bytes())
        .map_err(|source| CreateDataError::Io {
            path: staged.path(&name),
            source,
        })?;
    Ok((kept, removed))
}

#[cfg(test)]
mod tests {
    use super::py_float;

    #[test]
    fn floats_print_like_python_repr() {
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.5), "0.5");
        assert_eq!(py_float(2.0 / 3.0), "0.6666666666666666");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(1.5e16), "1.5e+16");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(py_float(0.0), "0.0");
    }
}
