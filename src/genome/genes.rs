//! The genes of a GFF3/GTF as upstream's `predict -a` reads them (`process_gff`): every line of type `gene`,
//! named by the first `;`-separated attribute starting with `ID=` or `Name=` (`unknown_gene` if none). A
//! line with fewer than 9 columns is reported and skipped, as upstream does; on every other line the span must
//! be 1-based with start <= end (checked by [`GffLine::span`], whatever the feature type). Lines come from [`super::gff`] (so gzip and bgzip work).

use std::path::{Path, PathBuf};

use super::gff::{GffLine, GffReader};
use super::GenomeError;

/// One `gene` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gene {
    pub id: String,
    pub seqid: String,
    /// 1-based, inclusive.
    pub start: u64,
    pub end: u64,
    pub strand: String,
    /// Line in the annotation (1-based).
    pub line: usize,
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

/// The gene of one line: `Ok(None)` for other feature types and short lines (reported).
fn gene(path: &Path, l: &GffLine) -> Result<Option<Gene>, GenomeError> {
    if l.cols.len() < 9 {
        log::warn!(
            "{}:{}: line does not have enough fields ({} of 9): skipped",
            path.display(),
            l.line,
            l.cols.len()
        );
        return Ok(None);
    }
    // Every feature line's span is checked, not only the genes': a bad line is an error wherever it is.
    let (start, end) = l.span(path)?;
    if l.cols[2] != "gene" {
        return Ok(None);
    }
    Ok(Some(Gene {
        id: gene_id(l.cols[8]),
        seqid: l.cols[0].to_string(),
        start,
        end,
        strand: l.cols[6].to_string(),
        line: l.line,
    }))
}

/// Streams the genes of an annotation, in file order.
pub struct GeneReader {
    gff: GffReader<Box<dyn std::io::BufRead + Send>>,
    path: PathBuf,
}

impl GeneReader {
    /// Opens `path` (plain, gzip or bgzip).
    pub fn open(path: &Path) -> Result<Self, GenomeError> {
        let gff = GffReader::open(path)?;
        Ok(Self {
            path: gff.path().to_path_buf(),
            gff,
        })
    }

    /// The next gene, or `None` at the end.
    pub fn next_gene(&mut self) -> Result<Option<Gene>, GenomeError> {
        while let Some(l) = self.gff.next_line()? {
            if let Some(g) = gene(&self.path, &l)? {
                return Ok(Some(g));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Result<Option<Gene>, GenomeError> {
        let mut r = GffReader::new(Path::new("x.gff3"), text.as_bytes());
        let l = r.next_line().unwrap().unwrap();
        gene(Path::new("x.gff3"), &l)
    }

    #[test]
    fn gene_ids_and_fields() {
        assert_eq!(gene_id("Name=n;ID=g"), "n");
        assert_eq!(gene_id("ID=g;Name=n"), "g");
        assert_eq!(gene_id("foo=bar"), "unknown_gene");
        let g = line("chr1\tsrc\tgene\t10\t20\t.\t-\t.\tID=a")
            .unwrap()
            .unwrap();
        assert_eq!((g.start, g.end, g.strand.as_str()), (10, 20, "-"));
        assert!(line("chr1\tsrc\tmRNA\t10\t20\t.\t-\t.\tID=a")
            .unwrap()
            .is_none());
        assert!(line("chr1\tsrc\tgene\tx\t20\t.\t-\t.\tID=a").is_err());
        assert!(line("chr1\tsrc\tgene\t0\t20\t.\t-\t.\tID=a").is_err());
        let reversed = line("chr1\tsrc\texon\t30\t20\t.\t-\t.\tParent=a")
            .unwrap_err()
            .to_string();
        assert!(
            reversed.starts_with("x.gff3:1:") && reversed.contains("start <= end"),
            "{reversed}"
        );
        assert!(line("chr1 gene 10 20").unwrap().is_none());
    }
}
