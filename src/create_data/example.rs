//! A small synthetic genome (FASTA + NCBI-style GFF3) whose splice sites are learnable in a minute: the
//! quickstart's starting point, so its tour covers create-data → train → transfer.
//!
//! Background sequence never contains the dinucleotides `AG` or `GT` (a Markov chain that never follows A with
//! G nor G with T), so the only `AG`/`GT` near a splice site belong to it: introns start with `GTAAGT` after an
//! exon ending in `CAG`, and end with `C` + 11 pyrimidines + `CAG` before an exon starting `G[AC]` (as in
//! `crate::data::example`). Genes lie on both strands, with 4 to 12 exons.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Paths of the written genome.
pub struct ExampleGenome {
    pub fasta: PathBuf,
    pub gff3: PathBuf,
}

/// One base after `prev` that never makes `AG` or `GT`.
fn background_base(rng: &mut StdRng, prev: u8) -> u8 {
    loop {
        let b = b"ACGT"[rng.random_range(0..4)];
        if !(prev == b'A' && b == b'G' || prev == b'G' && b == b'T') {
            return b;
        }
    }
}

/// Appends background sequence of a length drawn from `len`.
fn background(rng: &mut StdRng, out: &mut Vec<u8>, len: std::ops::Range<usize>) {
    let n = rng.random_range(len);
    for _ in 0..n {
        let prev = out.last().copied().unwrap_or(b'C');
        let b = background_base(rng, prev);
        out.push(b);
    }
}

fn pyrimidine(rng: &mut StdRng) -> u8 {
    if rng.random_bool(0.5) {
        b'C'
    } else {
        b'T'
    }
}

/// A gene in transcript orientation: its sequence and its exons as 0-based half-open spans.
fn gene(rng: &mut StdRng) -> (Vec<u8>, Vec<(usize, usize)>) {
    let n_exons = rng.random_range(4..=12);
    let mut seq = Vec::new();
    let mut exons = Vec::new();
    for e in 0..n_exons {
        let start = seq.len();
        if e > 0 {
            seq.push(b'G');
            seq.push(if rng.random_bool(0.5) { b'A' } else { b'C' });
        }
        background(rng, &mut seq, 60..200);
        if e + 1 < n_exons {
            seq.extend_from_slice(b"CAG");
        }
        exons.push((start, seq.len()));
        if e + 1 < n_exons {
            seq.extend_from_slice(b"GTAAGT");
            background(rng, &mut seq, 80..400);
            seq.push(b'C');
            for _ in 0..11 {
                let b = pyrimidine(rng);
                seq.push(b);
            }
            seq.extend_from_slice(b"CAG");
        }
    }
    (seq, exons)
}

fn revcomp(seq: &[u8]) -> Vec<u8> {
    let mut s = seq.to_vec();
    crate::genome::seq::reverse_complement(&mut s);
    s
}

/// Writes `genome.fa` and `annotation.gff3` into `dir`: `chromosomes` sequences of `genes_per_chrom` genes each.
pub fn write_example_genome(
    dir: &Path,
    chromosomes: usize,
    genes_per_chrom: usize,
    seed: u64,
) -> std::io::Result<ExampleGenome> {
    std::fs::create_dir_all(dir)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fasta = Vec::new();
    let mut gff = String::from("##gff-version 3\n");
    for c in 1..=chromosomes {
        let chrom = format!("chr{c}");
        let mut seq = Vec::new();
        for g in 0..genes_per_chrom {
            background(&mut rng, &mut seq, 500..3000);
            let (mut body, mut exons) = gene(&mut rng);
            let minus = rng.random_bool(0.5);
            if minus {
                let len = body.len();
                body = revcomp(&body);
                exons = exons
                    .iter()
                    .rev()
                    .map(|&(s, e)| (len - e, len - s))
                    .collect();
            }
            let offset = seq.len();
            seq.extend_from_slice(&body);
            let (strand, id) = (if minus { '-' } else { '+' }, format!("{chrom}_g{g}"));
            let (start, end) = (offset + 1, offset + body.len());
            let _ = writeln!(gff, "{chrom}\tsynthetic\tgene\t{start}\t{end}\t.\t{strand}\t.\tID={id};gene_biotype=protein_coding");
            let _ = writeln!(
                gff,
                "{chrom}\tsynthetic\tmRNA\t{start}\t{end}\t.\t{strand}\t.\tID={id}.t1;Parent={id}"
            );
            for (k, (s, e)) in exons.iter().enumerate() {
                let _ = writeln!(
                    gff,
                    "{chrom}\tsynthetic\texon\t{}\t{}\t.\t{strand}\t.\tID={id}.t1.e{k};Parent={id}.t1",
                    offset + s + 1,
                    offset + e
                );
            }
        }
        background(&mut rng, &mut seq, 2000..2001);
        writeln!(fasta, ">{chrom} synthetic")?;
        for line in seq.chunks(60) {
            fasta.extend_from_slice(line);
            fasta.push(b'\n');
        }
    }
    let paths = ExampleGenome {
        fasta: dir.join("genome.fa"),
        gff3: dir.join("annotation.gff3"),
    };
    std::fs::write(&paths.fasta, fasta)?;
    std::fs::write(&paths.gff3, gff)?;
    Ok(paths)
}
