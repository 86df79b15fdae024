//! `merge`: the gather step of a sharded `variant` run. VCFs (plain or bgzipped, e.g. the outputs of
//! `variant --shard I/N`) are joined in the order given: one header (the first input's), then every
//! record of each input in turn, as `bcftools concat` joins them. The inputs must be pieces of one run:
//! their headers equal but for command lines (`##…Command=`), and their records in order across files.
//! The output is written by [`VcfWriter`]: BGZF with an index for a `.gz` name, plain text otherwise.

use std::path::{Path, PathBuf};

use crate::genome::vcf::{VcfError, VcfReader, VcfRecord};
use crate::genome::vcf_write::{self, IndexKind, VcfWriter, WriteError};

/// What to join, and where.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// The inputs, in order (`-` is standard input).
    pub inputs: Vec<PathBuf>,
    /// `None` or `-`: standard output.
    pub output: Option<PathBuf>,
    /// The index beside a BGZF output.
    pub index: IndexKind,
    /// The command line (the words after the program's name) for `##openspliceai-rs_mergeVersion=` and
    /// `##openspliceai-rs_mergeCommand=`; `None` adds nothing.
    pub command_line: Option<Vec<String>>,
}

/// Why a merge failed.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    Vcf(#[from] VcfError),
    #[error("{name}: cannot write")]
    Output {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{file}: its header differs from that of {first} (the first input) at its line {line}: {what}; \
         the inputs must be pieces of one run, with headers equal but for `##…Command=` lines"
    )]
    Header {
        file: String,
        first: String,
        line: usize,
        what: String,
    },
    /// A file whose first record comes before the last one written; `message` names both records and
    /// the previous file.
    #[error("{file}: {message}; give the inputs in genome order (shard 1 first)")]
    Order { file: String, message: String },
}

/// What was joined.
#[derive(Debug, Clone, Default)]
pub struct MergeSummary {
    pub files: usize,
    pub records: usize,
}

impl std::fmt::Display for MergeSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "merged {} records of {} files", self.records, self.files)
    }
}

/// The header lines that must agree, with their line numbers (1-based) in the file.
fn compared(header: &[String]) -> Vec<(usize, &str)> {
    header
        .iter()
        .enumerate()
        .filter(|(_, l)| !vcf_write::is_command_line(l))
        .map(|(i, l)| (i + 1, l.as_str()))
        .collect()
}

fn shorten(line: &str) -> String {
    const MAX: usize = 120;
    if line.chars().count() <= MAX {
        format!("`{line}`")
    } else {
        format!("`{}…`", line.chars().take(MAX).collect::<String>())
    }
}

/// The first difference of `other`'s header from `first`'s: (line number in `other`, what differs).
fn header_difference(first: &[String], other: &[String]) -> Option<(usize, String)> {
    let (a, b) = (compared(first), compared(other));
    for (i, &(line, text)) in b.iter().enumerate() {
        match a.get(i) {
            Some(&(_, want)) if want == text => {}
            Some(&(_, want)) => {
                return Some((
                    line,
                    format!("{} where the first has {}", shorten(text), shorten(want)),
                ))
            }
            None => return Some((line, format!("{} is not in the first", shorten(text)))),
        }
    }
    a.get(b.len()).map(|&(_, want)| {
        (
            other.len(),
            format!("the header ends before the first's {}", shorten(want)),
        )
    })
}

/// The last record written: its file, contig and position; and every contig seen so far.
struct Last {
    file: String,
    chrom: String,
    pos: i64,
}

/// Joins the inputs into the output.
pub fn merge(opts: &MergeOptions) -> Result<MergeSummary, MergeError> {
    let output = opts.output.as_deref().filter(|p| p.as_os_str() != "-");
    let mut out: Option<VcfWriter> = None;
    let mut first_header: Option<(String, Vec<String>)> = None;
    let mut last: Option<Last> = None;
    let mut seen: Vec<String> = Vec::new();
    let mut summary = MergeSummary::default();
    for path in &opts.inputs {
        let mut reader = VcfReader::open(path)?;
        let file = reader.name().to_string();
        match &first_header {
            Some((first, header)) => {
                if let Some((line, what)) = header_difference(header, &reader.header) {
                    return Err(MergeError::Header {
                        file,
                        first: first.clone(),
                        line,
                        what,
                    });
                }
            }
            None => {
                let mut w = VcfWriter::create(output, Some(opts.index))
                    .map_err(|e| write_error(e, &file, 0))?;
                let mut header = reader.header.clone();
                if let Some(args) = &opts.command_line {
                    let at = header.len() - 1;
                    for (i, l) in vcf_write::command_lines("merge", args)
                        .into_iter()
                        .enumerate()
                    {
                        header.insert(at + i, l);
                    }
                }
                for l in &header {
                    w.header_line(l).map_err(|e| write_error(e, &file, 0))?;
                }
                out = Some(w);
                first_header = Some((file.clone(), reader.header.clone()));
            }
        }
        let w = out.as_mut().expect("created for the first input");
        summary.files += 1;
        let mut first_record = true;
        while let Some(rec) = reader.next_record()? {
            if first_record {
                first_record = false;
                check_order(&rec, &file, last.as_ref(), &seen)?;
            }
            w.record(&rec.line())
                .map_err(|e| write_error(e, &file, rec.line_no))?;
            if seen.last().is_none_or(|c| c != rec.chrom()) {
                seen.push(rec.chrom().to_string());
            }
            last = Some(Last {
                file: file.clone(),
                chrom: rec.chrom().to_string(),
                pos: rec.pos,
            });
            summary.records += 1;
        }
    }
    if let Some(w) = out {
        w.commit().map_err(|e| write_error(e, "", 0))?;
    }
    Ok(summary)
}

/// Refuses a file whose first record comes before the last record written: on the same contig at an
/// earlier position, or on a contig that an earlier record left.
fn check_order(
    rec: &VcfRecord,
    file: &str,
    last: Option<&Last>,
    seen: &[String],
) -> Result<(), MergeError> {
    let Some(last) = last else {
        return Ok(());
    };
    let why = if rec.chrom() == last.chrom {
        (rec.pos < last.pos).then_some("comes before")
    } else {
        seen.iter()
            .any(|c| c == rec.chrom())
            .then_some("is on a contig that ended before")
    };
    match why {
        None => Ok(()),
        Some(why) => Err(MergeError::Order {
            file: file.to_string(),
            message: format!(
                "its first record {}:{} (line {}) {why} {}'s last record {}:{}",
                rec.chrom(),
                rec.pos,
                rec.line_no,
                last.file,
                last.chrom,
                last.pos
            ),
        }),
    }
}

fn write_error(e: WriteError, input: &str, line: usize) -> MergeError {
    match e {
        WriteError::Io { name, source } => MergeError::Output { name, source },
        WriteError::Unsorted { output, message } => MergeError::Vcf(VcfError::Bad {
            name: input.to_string(),
            line,
            message: format!(
                "{message}; {output} is BGZF with an index, which needs sorted records: each input \
                 must be sorted"
            ),
        }),
    }
}

/// The paths a merge writes (or, for the index of the other kind, removes): the output and, for a BGZF
/// output, both index names.
pub fn outputs(output: Option<&Path>) -> Vec<PathBuf> {
    let Some(p) = output.filter(|p| p.as_os_str() != "-") else {
        return Vec::new();
    };
    let mut v = vec![p.to_path_buf()];
    v.extend(vcf_write::index_paths(Some(p)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn headers_compare_but_for_command_lines() {
        let a = h(&[
            "##fileformat=VCFv4.2",
            "##openspliceai-rs_variantCommand=variant --shard 1/3",
            "##contig=<ID=1>",
            "#CHROM\tPOS",
        ]);
        let b = h(&[
            "##fileformat=VCFv4.2",
            "##contig=<ID=1>",
            "##bcftools_viewCommand=view -r 1; Date=today",
            "#CHROM\tPOS",
        ]);
        assert_eq!(header_difference(&a, &b), None);
        let c = h(&["##fileformat=VCFv4.2", "##contig=<ID=2>", "#CHROM\tPOS"]);
        let (line, what) = header_difference(&a, &c).unwrap();
        assert_eq!(line, 2);
        assert!(
            what.contains("`##contig=<ID=2>` where the first has `##contig=<ID=1>`"),
            "{what}"
        );
        let d = h(&[
            "##fileformat=VCFv4.2",
            "##contig=<ID=1>",
            "##x=y",
            "#CHROM\tPOS",
        ]);
        assert_eq!(header_difference(&a, &d).unwrap().0, 3);
        let e = h(&["##fileformat=VCFv4.2", "##contig=<ID=1>"]);
        assert!(header_difference(&a, &e).unwrap().1.contains("ends before"));
    }
}
