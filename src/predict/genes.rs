//! `predict -a`: the genes of a GFF3/GTF (type `gene`) cut from the FASTA with a flank each side,
//! reverse-complemented on the minus strand, named `{id} {seqid}:{start}-{end}({strand})` as
//! OpenSpliceAI's `process_gff`, then scored like FASTA records (in GFF order).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::fasta::IndexedFasta;
use super::{output_err, PredictError, Scorer};
use crate::atomic::AtomicOutput;
use crate::genome::seq::reverse_complement;

/// Errors reading the annotation.
#[derive(Debug, thiserror::Error)]
pub enum GffError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: column {column} `{value}` is not a positive integer", path.display())]
    Coordinate {
        path: PathBuf,
        line: usize,
        column: usize,
        value: String,
    },
}

/// One `gene` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gene {
    pub id: String,
    pub seqid: String,
    /// 1-based, inclusive.
    pub start: u64,
    pub end: u64,
    pub strand: String,
}

/// The gene id: the first `;`-separated attribute starting with `ID=` or `Name=`, else `unknown_gene`.
fn gene_id(attributes: &str) -> String {
    attributes
        .split(';')
        .find_map(|a| {
            let a = a.trim();
            a.strip_prefix("ID=").or_else(|| a.strip_prefix("Name="))
        })
        .map(str::to_string)
        .unwrap_or_else(|| "unknown_gene".into())
}

/// Parses one GFF line: `Ok(None)` for comments, other feature types and short lines (reported).
fn parse_line(path: &Path, no: usize, line: &str) -> Result<Option<Gene>, GffError> {
    if line.starts_with('#') || line.trim().is_empty() {
        return Ok(None);
    }
    let f: Vec<&str> = line.trim_end_matches(['\n', '\r']).split('\t').collect();
    if f.len() < 9 {
        eprintln!(
            "\t[ERR] {}:{no}: line does not have enough fields: {line}",
            path.display()
        );
        return Ok(None);
    }
    if f[2] != "gene" {
        return Ok(None);
    }
    let coord = |column: usize| {
        f[column - 1]
            .parse::<u64>()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| GffError::Coordinate {
                path: path.to_path_buf(),
                line: no,
                column,
                value: f[column - 1].to_string(),
            })
    };
    Ok(Some(Gene {
        id: gene_id(f[8]),
        seqid: f[0].to_string(),
        start: coord(4)?,
        end: coord(5)?,
        strand: f[6].to_string(),
    }))
}

/// Scores every gene of `gff` and writes their sequences to `genes_fa` (upstream's `<stem>_genes.fa`).
pub(crate) fn score_genes(
    fasta: &Path,
    gff: &Path,
    flank: usize,
    genes_fa: &Path,
    scorer: &mut Scorer<'_>,
) -> Result<(), PredictError> {
    let mut genome = IndexedFasta::open(fasta)?;
    let io = |source| GffError::Io {
        path: gff.to_path_buf(),
        source,
    };
    let reader = BufReader::new(File::open(gff).map_err(io)?);
    let mut out = AtomicOutput::create(genes_fa).map_err(output_err(genes_fa))?;
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        let Some(g) = parse_line(gff, i + 1, &line)? else {
            continue;
        };
        let Some(len) = genome.len(&g.seqid) else {
            log::warn!(
                "{}:{}: gene {} is on `{}`, which {} lacks: skipped",
                gff.display(),
                i + 1,
                g.id,
                g.seqid,
                fasta.display()
            );
            scorer.summary.skipped_genes += 1;
            continue;
        };
        let start = g.start.saturating_sub(flank as u64).max(1);
        let end = (g.end + flank as u64).min(len);
        let mut seq = genome.fetch(&g.seqid, start - 1, end)?;
        if g.strand == "-" {
            reverse_complement(&mut seq);
        }
        let header = format!("{} {}:{start}-{end}({})", g.id, g.seqid, g.strand);
        writeln!(out, ">{header}").map_err(output_err(genes_fa))?;
        out.write_all(&seq).map_err(output_err(genes_fa))?;
        writeln!(out).map_err(output_err(genes_fa))?;
        // Upstream writes the file's case and upper-cases when it reads the genes back.
        seq.make_ascii_uppercase();
        scorer.push_record(&format!("{header}:+"), &seq)?;
    }
    out.commit().map_err(output_err(genes_fa))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gene_ids_and_fields() {
        assert_eq!(gene_id("Name=n;ID=g"), "n");
        assert_eq!(gene_id("ID=g;Name=n"), "g");
        assert_eq!(gene_id("foo=bar"), "unknown_gene");
        let p = Path::new("x.gff3");
        let g = parse_line(p, 1, "chr1\tsrc\tgene\t10\t20\t.\t-\t.\tID=a")
            .unwrap()
            .unwrap();
        assert_eq!((g.start, g.end, g.strand.as_str()), (10, 20, "-"));
        assert!(parse_line(p, 2, "chr1\tsrc\tmRNA\t10\t20\t.\t-\t.\tID=a")
            .unwrap()
            .is_none());
        assert!(parse_line(p, 3, "chr1\tsrc\tgene\tx\t20\t.\t-\t.\tID=a").is_err());
    }
}
