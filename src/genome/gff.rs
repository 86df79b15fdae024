//! GFF3 and GTF: the one tokenizer every command reads annotations through (create-data's feature store,
//! predict's genes, variant's gene rows are views over it), and the attribute rules they share.
//!
//! The tokenizer reads any `BufRead` (files through [`super::input`]: plain, gzip or bgzip), skips comments
//! (`#`) and blank lines, stops at `##FASTA`, splits each line on tabs and counts lines for messages. How
//! many columns a line must have, and which attributes mean what, is each view's rule (upstream's commands
//! differ), but coordinates are parsed and checked here ([`GffLine::span`]: 1-based, start <= end), with one
//! message naming the file and line.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::{input, GenomeError};

/// One feature line, split on tabs (borrowed from the reader's buffer).
pub struct GffLine<'a> {
    /// 1-based line number.
    pub line: usize,
    /// The tab-separated columns (a well-formed line has 9).
    pub cols: Vec<&'a str>,
}

impl GffLine<'_> {
    /// 1-based column `column` (4: start, 5: end) as a whole number.
    pub fn coordinate(&self, path: &Path, column: usize) -> Result<u64, GenomeError> {
        let text = self.cols[column - 1];
        text.trim().parse::<u64>().map_err(|_| GenomeError::Parse {
            path: path.to_path_buf(),
            line: self.line,
            message: format!(
                "column {column} ({}) must be a whole number, found `{text}`",
                if column == 4 { "start" } else { "end" }
            ),
        })
    }

    /// Columns 4 and 5 (start, end) as GFF3 and GTF define them: 1-based, inclusive, `1 <= start <= end`.
    /// Every view reads its coordinates here, so a 0 or a reversed span is refused with this line's number
    /// whichever command reads the file.
    pub fn span(&self, path: &Path) -> Result<(u64, u64), GenomeError> {
        let (start, end) = (self.coordinate(path, 4)?, self.coordinate(path, 5)?);
        if start == 0 {
            return Err(self.error(
                path,
                "column 4 (start) is 0; coordinates are 1-based (the first base is 1)".into(),
            ));
        }
        if start > end {
            return Err(self.error(
                path,
                format!(
                    "start {start} (column 4) is after end {end} (column 5); expected start <= end"
                ),
            ));
        }
        Ok((start, end))
    }

    /// An error about this line.
    pub fn error(&self, path: &Path, message: String) -> GenomeError {
        GenomeError::Parse {
            path: path.to_path_buf(),
            line: self.line,
            message,
        }
    }
}

/// Reads feature lines one at a time.
pub struct GffReader<R> {
    path: PathBuf,
    input: R,
    buf: String,
    line_no: usize,
    done: bool,
}

impl GffReader<Box<dyn BufRead + Send>> {
    /// Opens `path` (`-`: standard input; plain, gzip or bgzip).
    pub fn open(path: &Path) -> Result<Self, GenomeError> {
        let input = input::open(path)?;
        Ok(Self::new(&input.name, input.reader))
    }
}

impl<R: BufRead> GffReader<R> {
    /// Reads from `input`; `path` names it in messages.
    pub fn new(path: &Path, input: R) -> Self {
        Self {
            path: path.to_path_buf(),
            input,
            buf: String::new(),
            line_no: 0,
            done: false,
        }
    }

    /// The input's name in messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next feature line; `None` at the end or at `##FASTA`.
    pub fn next_line(&mut self) -> Result<Option<GffLine<'_>>, GenomeError> {
        loop {
            if self.done {
                return Ok(None);
            }
            self.buf.clear();
            let n = self
                .input
                .read_line(&mut self.buf)
                .map_err(|e| GenomeError::Parse {
                    path: self.path.clone(),
                    line: self.line_no + 1,
                    message: format!("cannot read: {e}"),
                })?;
            if n == 0 {
                self.done = true;
                return Ok(None);
            }
            self.line_no += 1;
            let text = self.buf.trim_end_matches(['\n', '\r']);
            if text.starts_with("##FASTA") {
                self.done = true;
                return Ok(None);
            }
            if text.trim().is_empty() || text.starts_with('#') {
                continue;
            }
            let line = self.line_no;
            let text = self.buf.trim_end_matches(['\n', '\r']);
            return Ok(Some(GffLine {
                line,
                cols: text.split('\t').collect(),
            }));
        }
    }
}

/// The annotation's file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Gff3,
    Gtf,
}

/// `urllib.parse.unquote`: %XX escapes decoded as UTF-8 (invalid sequences replaced).
fn unquote(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// GFF3 column 9 as gffutils splits it: `key=v1,v2;…`, values percent-decoded, repeated keys merged.
pub fn parse_gff3_attrs(col: &str) -> Vec<(String, Vec<String>)> {
    collect_attrs(col, |item| {
        let item = item.trim_start();
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        let values = match value {
            "" => Vec::new(),
            v => v.split(',').map(unquote).collect(),
        };
        (key.trim_end(), values)
    })
}

/// GTF column 9 as gffutils splits it: `key "value"; …`, repeated keys merged.
pub fn parse_gtf_attrs(col: &str) -> Vec<(String, Vec<String>)> {
    collect_attrs(col, |item| {
        let item = item.trim();
        let (key, value) = item.split_once(char::is_whitespace).unwrap_or((item, ""));
        (key, vec![value.trim().trim_matches('"').to_string()])
    })
}

/// The `;`-separated items of column 9 that are not blank, each split into a key and its values by
/// `split`; a key seen again gets its values appended to the first one's.
fn collect_attrs<'a>(
    col: &'a str,
    split: impl Fn(&'a str) -> (&'a str, Vec<String>),
) -> Vec<(String, Vec<String>)> {
    let mut attrs: Vec<(String, Vec<String>)> = Vec::new();
    for item in col.split(';').filter(|i| !i.trim().is_empty()) {
        let (key, values) = split(item);
        match attrs.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => v.extend(values),
            None => attrs.push((key.to_string(), values)),
        }
    }
    attrs
}

/// GTF or GFF3: by the name (`.gtf`, `.gff3`, `.gff`, also under `.gz`), else by the first line's column 9.
pub fn detect_format(path: &Path, first_attrs: &str) -> Format {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".gtf") {
        return Format::Gtf;
    }
    if name.ends_with(".gff3") || name.ends_with(".gff") {
        return Format::Gff3;
    }
    if !first_attrs.contains('=') && first_attrs.contains(" \"") {
        Format::Gtf
    } else {
        Format::Gff3
    }
}

/// Attribute `key` of column 9 in either syntax, GFF3 `key=value` or GTF `key "value"`, as written (not
/// decoded, not split on commas): the first `;`-separated item that names it.
pub fn raw_attribute<'a>(attrs: &'a str, key: &str) -> Option<&'a str> {
    attrs.split(';').find_map(|a| {
        let a = a.trim();
        if let Some(v) = a.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
            return Some(v);
        }
        let v = a.strip_prefix(key)?.strip_prefix(' ')?;
        Some(v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(usize, Vec<String>)> {
        let mut r = GffReader::new(Path::new("t.gff3"), text.as_bytes());
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push((l.line, l.cols.iter().map(|c| c.to_string()).collect()));
        }
        out
    }

    #[test]
    fn skips_comments_and_blanks_and_stops_at_fasta() {
        let text = "##gff-version 3\n\nc\ts\tgene\t1\t9\t.\t+\t.\tID=g\r\n# x\nc\ts\texon\t1\t4\t.\t+\t.\tParent=t\n##FASTA\n>c\nACGT\n";
        let got = lines(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, 3);
        assert_eq!(got[0].1[8], "ID=g");
        assert_eq!(got[1].0, 5);
    }

    #[test]
    fn coordinates_name_the_line_and_column() {
        let mut r = GffReader::new(
            Path::new("t.gff3"),
            "\nc\ts\tgene\tx\t9\t.\t+\t.\tID=g\n".as_bytes(),
        );
        let l = r.next_line().unwrap().unwrap();
        let err = l
            .coordinate(Path::new("t.gff3"), 4)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.gff3:2:") && err.contains("column 4 (start)"),
            "{err}"
        );
        assert_eq!(l.coordinate(Path::new("t.gff3"), 5).unwrap(), 9);
    }

    #[test]
    fn spans_are_one_based_and_ordered() {
        let span = |text: &str| {
            let mut r = GffReader::new(Path::new("t.gff3"), text.as_bytes());
            let l = r.next_line().unwrap().unwrap();
            l.span(Path::new("t.gff3")).map_err(|e| e.to_string())
        };
        assert_eq!(span("c\ts\tgene\t1\t1\t.\t+\t.\tID=g").unwrap(), (1, 1));
        let zero = span("#\nc\ts\tgene\t0\t9\t.\t+\t.\tID=g").unwrap_err();
        assert!(
            zero.contains("t.gff3:2:") && zero.contains("1-based"),
            "{zero}"
        );
        let reversed = span("c\ts\texon\t20\t10\t.\t+\t.\tID=g").unwrap_err();
        assert!(
            reversed.contains("t.gff3:1:")
                && reversed.contains("start 20")
                && reversed.contains("start <= end"),
            "{reversed}"
        );
        let neg = span("c\ts\texon\t-5\t10\t.\t+\t.\tID=g").unwrap_err();
        assert!(
            neg.contains("column 4 (start) must be a whole number"),
            "{neg}"
        );
    }

    #[test]
    fn attributes_in_both_syntaxes() {
        assert_eq!(raw_attribute("ID=g1;Name=n", "Name"), Some("n"));
        assert_eq!(
            raw_attribute("gene_id \"g1\"; gene_name \"N\";", "gene_name"),
            Some("N")
        );
        assert_eq!(raw_attribute("ID=g1", "Parent"), None);
        let a = parse_gff3_attrs("ID=a%3Bb;Parent=p1,p2;Parent=p3");
        assert_eq!(a[0], ("ID".to_string(), vec!["a;b".to_string()]));
        assert_eq!(a[1].1, ["p1", "p2", "p3"]);
        let g = parse_gtf_attrs("gene_id \"g\"; tag \"x\"; tag \"y\";");
        assert_eq!(
            g[1],
            ("tag".to_string(), vec!["x".to_string(), "y".to_string()])
        );
    }
}
