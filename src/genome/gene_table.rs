//! Gene rows for `variant`: SpliceAI's gene table (`#NAME CHROM STRAND TX_START TX_END EXON_START
//! EXON_END`, 0-based starts) or, our addition, a GFF3/GTF file (one row per gene from its canonical
//! transcript, see [`from_gff`]; lines through [`super::gff`]). Either may be plain, gzip or bgzip.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use super::gff::{raw_attribute as attribute, GffReader};
use super::{input, GenomeError};

/// Errors reading an annotation.
#[derive(Debug, thiserror::Error)]
pub enum AnnotationError {
    #[error(transparent)]
    Genome(#[from] GenomeError),
    #[error("{}:{line}: {message}", path.display())]
    Bad {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: the annotation holds no gene", .0.display())]
    Empty(PathBuf),
    #[error("annotation `{0}`: the packaged GRCh37/GRCh38 tables are not bundled; give the path of a gene table, GFF3 or GTF (SpliceAI's tables work as they are)")]
    NotBundled(String),
}

/// One row: a transcript with 1-based inclusive coordinates (SpliceAI's `+1` on the starts applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    pub name: String,
    pub chrom: String,
    pub minus: bool,
    pub tx_start: i64,
    pub tx_end: i64,
    /// Exon starts (1-based) and ends, sorted union: the boundaries `-M` masks against.
    pub boundaries: Vec<i64>,
}

impl Transcript {
    /// The exon boundary nearest `pos` as an offset (ties: the smaller, as SpliceAI's `min` over the
    /// sorted union).
    pub fn nearest_boundary(&self, pos: i64) -> i64 {
        let mut best = i64::MAX;
        for &b in &self.boundaries {
            let d = b - pos;
            if d.abs() < best.abs() || best == i64::MAX {
                best = d;
            }
        }
        best
    }
}

/// All rows, with the first row's chromosome (SpliceAI normalises VCF names against it).
#[derive(Debug, Clone)]
pub struct Annotation {
    rows: Vec<Transcript>,
    by_chrom: HashMap<String, Vec<usize>>,
}

/// SpliceAI's `normalise_chrom`: drop `chr` (Python's `strip('chr')`, which strips those letters from
/// both ends) when the target has none, add it when the target has it, else keep the name.
pub fn normalise_chrom(source: &str, target: &str) -> String {
    let (s, t) = (source.starts_with("chr"), target.starts_with("chr"));
    if s && !t {
        source.trim_matches(['c', 'h', 'r']).to_string()
    } else if t && !s {
        format!("chr{source}")
    } else {
        source.to_string()
    }
}

impl Annotation {
    fn new(rows: Vec<Transcript>, path: &Path) -> Result<Self, AnnotationError> {
        if rows.is_empty() {
            return Err(AnnotationError::Empty(path.to_path_buf()));
        }
        let mut by_chrom: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            by_chrom.entry(r.chrom.clone()).or_default().push(i);
        }
        Ok(Self { rows, by_chrom })
    }

    /// Loads a gene table, or a GFF3/GTF: by extension (`.gff`, `.gff3`, `.gtf`, each also with `.gz` or
    /// `.bgz`), else by the first line (so a pipe or an oddly named file works too). Opened once.
    pub fn load(spec: &str) -> Result<Self, AnnotationError> {
        if matches!(spec, "grch37" | "grch38") {
            return Err(AnnotationError::NotBundled(spec.into()));
        }
        let path = Path::new(spec);
        let name = spec.to_ascii_lowercase();
        let name = name
            .strip_suffix(".gz")
            .or_else(|| name.strip_suffix(".bgz"))
            .unwrap_or(&name);
        let input = input::open(path)?;
        let mut reader = input.reader;
        // The first line, put back in front of the rest (a pipe cannot be reopened).
        let mut first = Vec::new();
        reader
            .read_until(b'\n', &mut first)
            .map_err(|source| GenomeError::Io {
                path: input.name.clone(),
                source,
            })?;
        let gff =
            [".gff", ".gff3", ".gtf"].iter().any(|e| name.ends_with(e)) || looks_like_gff(&first);
        let reader = std::io::Cursor::new(first).chain(reader);
        if gff {
            gff_rows(&input.name, reader)
        } else {
            table_rows(&input.name, reader)
        }
    }

    /// Rows overlapping `pos` on the VCF chromosome `chrom`, in file order.
    pub fn at(&self, chrom: &str, pos: i64) -> Vec<&Transcript> {
        let c = normalise_chrom(chrom, &self.rows[0].chrom);
        self.by_chrom
            .get(&c)
            .map(|ix| {
                ix.iter()
                    .map(|&i| &self.rows[i])
                    .filter(|r| r.tx_start <= pos && pos <= r.tx_end)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there is no row (never after loading).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

fn bad(path: &Path, line: usize, message: String) -> AnnotationError {
    AnnotationError::Bad {
        path: path.to_path_buf(),
        line,
        message,
    }
}

/// True when the first line of a file reads as GFF3/GTF rather than a gene table: `##gff-version` or
/// `#!...`, or 9 tab-separated columns with integer columns 4 and 5.
fn looks_like_gff(first: &[u8]) -> bool {
    if first.starts_with(b"##gff-version") || first.starts_with(b"#!") {
        return true;
    }
    let first = String::from_utf8_lossy(first);
    let f: Vec<&str> = first.trim_end().split('\t').collect();
    f.len() == 9 && f[3].parse::<u64>().is_ok() && f[4].parse::<u64>().is_ok()
}

/// SpliceAI's gene table, columns found by name in the header.
pub fn from_table(path: &Path) -> Result<Annotation, AnnotationError> {
    let input = input::open(path)?;
    table_rows(&input.name, input.reader)
}

fn table_rows(path: &Path, reader: impl BufRead) -> Result<Annotation, AnnotationError> {
    const COLS: [&str; 7] = [
        "#NAME",
        "CHROM",
        "STRAND",
        "TX_START",
        "TX_END",
        "EXON_START",
        "EXON_END",
    ];
    let mut idx: Option<Vec<usize>> = None;
    let mut rows = Vec::new();
    for (no, line) in reader.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        let line = line.map_err(|source| GenomeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let f: Vec<&str> = line.split('\t').collect();
        let Some(ix) = &idx else {
            let found: Result<Vec<usize>, String> = COLS
                .iter()
                .map(|c| f.iter().position(|h| h.trim() == *c).ok_or(c.to_string()))
                .collect();
            idx = Some(found.map_err(|c| {
                bad(
                    path,
                    no,
                    format!(
                        "the header lacks column `{c}` (expected the tab-separated columns {})",
                        COLS.join(" ")
                    ),
                )
            })?);
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let get = |k: usize| f.get(ix[k]).copied().unwrap_or("");
        let int = |k: usize, v: &str| {
            v.trim().parse::<i64>().map_err(|_| {
                bad(
                    path,
                    no,
                    format!("column {} `{v}` is not an integer", COLS[k]),
                )
            })
        };
        let list = |k: usize| -> Result<Vec<i64>, AnnotationError> {
            get(k)
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|v| int(k, v))
                .collect()
        };
        let starts = list(5)?;
        let ends = list(6)?;
        let minus = match get(2).trim() {
            "+" => false,
            "-" => true,
            s => {
                return Err(bad(
                    path,
                    no,
                    format!("column STRAND is `{s}`; expected + or -"),
                ))
            }
        };
        let (tx_start, tx_end) = (int(3, get(3))?, int(4, get(4))?);
        check_interval(path, no, "TX", tx_start, tx_end)?;
        if starts.len() != ends.len() {
            return Err(bad(
                path,
                no,
                format!(
                    "EXON_START lists {} exon(s) and EXON_END {}; expected one end per start",
                    starts.len(),
                    ends.len()
                ),
            ));
        }
        for (&s, &e) in starts.iter().zip(&ends) {
            check_interval(path, no, "EXON", s, e)?;
        }
        let mut boundaries: Vec<i64> = starts.iter().map(|s| s + 1).chain(ends).collect();
        boundaries.sort_unstable();
        boundaries.dedup();
        rows.push(Transcript {
            name: get(0).to_string(),
            chrom: get(1).to_string(),
            minus,
            tx_start: tx_start + 1,
            tx_end,
            boundaries,
        });
    }
    if idx.is_none() {
        return Err(AnnotationError::Empty(path.to_path_buf()));
    }
    Annotation::new(rows, path)
}

/// A gene table's interval (`TX` or `EXON`): 0-based start, exclusive end, at least one base.
fn check_interval(
    path: &Path,
    line: usize,
    what: &str,
    start: i64,
    end: i64,
) -> Result<(), AnnotationError> {
    if start < 0 {
        return Err(bad(
            path,
            line,
            format!("{what}_START is {start}; expected 0 or more (0-based)"),
        ));
    }
    if start >= end {
        return Err(bad(
            path,
            line,
            format!("{what}_START {start} is not below {what}_END {end}; expected {what}_START < {what}_END (0-based start, exclusive end)"),
        ));
    }
    Ok(())
}

#[derive(Default)]
struct TxBuild {
    gene: String,
    canonical: bool,
    exons: Vec<(i64, i64)>,
    order: usize,
}

struct GeneBuild {
    name: String,
    chrom: String,
    minus: bool,
    order: usize,
}

/// The strand of a line that defines a gene: `-` is minus, `+` plus, anything else an error (the strand
/// decides which way a variant is scored).
fn gene_strand(path: &Path, l: &super::gff::GffLine) -> Result<bool, AnnotationError> {
    match l.cols[6] {
        "+" => Ok(false),
        "-" => Ok(true),
        s => Err(l
            .error(
                path,
                format!("gene strand (column 7) is `{s}`; expected + or -"),
            )
            .into()),
    }
}

/// A GFF3 or GTF: one row per gene (named by its `Name`/`gene_name`, else its id) from one transcript: the
/// one tagged `Ensembl_canonical` or `MANE_Select` if any, else the one with the most exonic bases (the
/// first in the file on ties). The row spans that transcript's exons, as SpliceAI's tables do.
pub fn from_gff(path: &Path) -> Result<Annotation, AnnotationError> {
    let input = input::open(path)?;
    gff_rows(&input.name, input.reader)
}

fn gff_rows(path: &Path, reader: impl BufRead) -> Result<Annotation, AnnotationError> {
    let mut genes: HashMap<String, GeneBuild> = HashMap::new();
    let mut txs: HashMap<String, TxBuild> = HashMap::new();
    let (mut ids, mut parents) = (HashSet::new(), HashMap::new());
    let mut reader = GffReader::new(path, reader);
    while let Some(l) = reader.next_line()? {
        let f = &l.cols;
        if f.len() < 9 {
            return Err(l
                .error(
                    path,
                    format!("expected 9 tab-separated columns, found {}", f.len()),
                )
                .into());
        }
        let (start, end) = l.span(path)?;
        let (start, end) = match (i64::try_from(start), i64::try_from(end)) {
            (Ok(s), Ok(e)) => (s, e),
            _ => return Err(l.error(path, "a coordinate is too large".into()).into()),
        };
        let attrs = f[8];
        let id = attribute(attrs, "ID");
        let gene_id = attribute(attrs, "gene_id");
        let parent = attribute(attrs, "Parent");
        let tx_id = attribute(attrs, "transcript_id");
        if let Some(i) = id {
            ids.insert(i.to_string());
        }
        for p in parent.into_iter().flat_map(|p| p.split(',')) {
            parents.entry(p.to_string()).or_insert(l.line);
        }
        match f[2] {
            "gene" | "pseudogene" | "ncRNA_gene" => {
                let Some(g) = id.or(gene_id) else { continue };
                let name = attribute(attrs, "Name")
                    .or(attribute(attrs, "gene_name"))
                    .unwrap_or(g);
                let order = genes.len();
                genes.entry(g.to_string()).or_insert(GeneBuild {
                    name: name.to_string(),
                    chrom: f[0].to_string(),
                    minus: gene_strand(path, &l)?,
                    order,
                });
            }
            "exon" => {
                let Some(t) = parent.or(tx_id) else { continue };
                let (s, e) = (start, end);
                for t in t.split(',') {
                    let order = txs.len();
                    let tx = txs.entry(t.to_string()).or_insert_with(|| TxBuild {
                        order,
                        ..TxBuild::default()
                    });
                    tx.exons.push((s, e));
                    if let (Some(g), true) = (gene_id, tx.gene.is_empty()) {
                        tx.gene = g.to_string();
                        if !genes.contains_key(g) {
                            // A GTF gene known from its exons only takes their strand.
                            let gene = GeneBuild {
                                name: attribute(attrs, "gene_name").unwrap_or(g).to_string(),
                                chrom: f[0].to_string(),
                                minus: gene_strand(path, &l)?,
                                order: usize::MAX - 1,
                            };
                            genes.insert(g.to_string(), gene);
                        }
                    }
                }
            }
            _ => {
                // Transcripts (mRNA, transcript, ncRNA, …): a Parent gene, or GTF's gene_id.
                let (Some(t), Some(g)) = (id.or(tx_id), parent.or(gene_id)) else {
                    continue;
                };
                let order = txs.len();
                let tx = txs.entry(t.to_string()).or_insert_with(|| TxBuild {
                    order,
                    ..TxBuild::default()
                });
                tx.gene = g.to_string();
                tx.canonical |=
                    attrs.contains("Ensembl_canonical") || attrs.contains("MANE_Select");
            }
        }
    }
    let dangling = parents
        .iter()
        .filter(|(p, _)| !ids.contains(*p))
        .min_by_key(|(_, &line)| line);
    if let Some((p, &line)) = dangling {
        return Err(bad(
            path,
            line,
            format!("`Parent={p}` names no feature: no line has `ID={p}`; expected every Parent to be the ID of a line in the file"),
        ));
    }
    let mut best: HashMap<&str, &TxBuild> = HashMap::new();
    let exonic = |t: &TxBuild| t.exons.iter().map(|(s, e)| e - s + 1).sum::<i64>();
    let mut ordered: Vec<&TxBuild> = txs.values().collect();
    ordered.sort_by_key(|t| t.order);
    for t in ordered {
        if t.exons.is_empty() || !genes.contains_key(&t.gene) {
            continue;
        }
        let better = match best.get(t.gene.as_str()) {
            None => true,
            Some(b) => (t.canonical, exonic(t)) > (b.canonical, exonic(b)),
        };
        if better {
            best.insert(t.gene.as_str(), t);
        }
    }
    let mut rows: Vec<(usize, Transcript)> = best
        .into_iter()
        .map(|(g, t)| {
            let gene = &genes[g];
            let mut boundaries: Vec<i64> = t.exons.iter().flat_map(|&(s, e)| [s, e]).collect();
            boundaries.sort_unstable();
            boundaries.dedup();
            (
                gene.order,
                Transcript {
                    name: gene.name.clone(),
                    chrom: gene.chrom.clone(),
                    minus: gene.minus,
                    tx_start: *boundaries.first().unwrap_or(&0),
                    tx_end: *boundaries.last().unwrap_or(&0),
                    boundaries,
                },
            )
        })
        .collect();
    rows.sort_by_key(|r| (r.0, r.1.tx_start));
    Annotation::new(rows.into_iter().map(|(_, t)| t).collect(), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_like_python_strip() {
        assert_eq!(normalise_chrom("chr3Rh", "2R"), "3R");
        assert_eq!(normalise_chrom("chrUn_ctg_chr", "1"), "Un_ctg_");
        assert_eq!(normalise_chrom("chrchr7", "1"), "7");
        assert_eq!(normalise_chrom("2R", "chr1"), "chr2R");
        assert_eq!(normalise_chrom("chr2R", "chr1"), "chr2R");
    }

    fn load(name: &str, text: &str) -> Result<Annotation, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        Annotation::load(path.to_str().unwrap()).map_err(|e| e.to_string())
    }

    /// `text` as the file `name` must be refused with a message holding every one of `needles`.
    fn refused(name: &str, text: &str, needles: &[&str]) {
        let err = load(name, text).unwrap_err();
        assert!(needles.iter().all(|n| err.contains(n)), "{err}");
    }

    const HEADER: &str = "#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\n";

    #[test]
    fn table_rows_need_ordered_intervals_and_a_strand() {
        let ok = load(
            "t.txt",
            &format!("{HEADER}A\tc\t+\t10\t90\t10,50,\t20,90,\n"),
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
        let cases = [
            (
                "B\tc\t+\t90\t10\t10,\t20,\n",
                "TX_START 90 is not below TX_END 10",
            ),
            (
                "B\tc\t?\t10\t90\t10,\t20,\n",
                "STRAND is `?`; expected + or -",
            ),
            ("B\tc\t-\t-5\t90\t10,\t20,\n", "TX_START is -5"),
            (
                "B\tc\t-\t10\t90\t10,50,\t20,\n",
                "EXON_START lists 2 exon(s) and EXON_END 1",
            ),
            (
                "B\tc\t-\t10\t90\t30,\t20,\n",
                "EXON_START 30 is not below EXON_END 20",
            ),
        ];
        for (row, needle) in cases {
            let text = format!("{HEADER}A\tc\t+\t10\t90\t10,\t20,\n{row}");
            refused("t.txt", &text, &["t.txt:3:", needle]);
        }
    }

    #[test]
    fn gff_genes_need_a_strand_spans_and_parents() {
        let gene = |strand: &str| {
            format!("c\ts\tgene\t1\t90\t.\t{strand}\t.\tID=g\nc\ts\tmRNA\t1\t90\t.\t{strand}\t.\tID=t;Parent=g\nc\ts\texon\t1\t20\t.\t{strand}\t.\tParent=t\n")
        };
        assert_eq!(load("a.gff3", &gene("-")).unwrap().len(), 1);
        refused(
            "a.gff3",
            &gene("?"),
            &["a.gff3:1:", "strand (column 7) is `?`"],
        );
        let exon = |span: &str, parent: &str| {
            format!(
                "{}c\ts\texon\t{span}\t.\t+\t.\tParent={parent}\n",
                gene("+")
            )
        };
        refused(
            "a.gff3",
            &exon("50\t40", "t"),
            &["a.gff3:4:", "start <= end"],
        );
        let no_parent = ["a.gff3:4:", "`Parent=t2` names no feature"];
        refused("a.gff3", &exon("50\t60", "t2"), &no_parent);
    }

    #[test]
    fn nearest_boundary_prefers_the_smaller_on_ties() {
        let t = Transcript {
            name: "g".into(),
            chrom: "c".into(),
            minus: false,
            tx_start: 1,
            tx_end: 100,
            boundaries: vec![10, 30],
        };
        assert_eq!(t.nearest_boundary(20), -10);
        assert_eq!(t.nearest_boundary(28), 2);
    }
}
