//! VCF text in and out. Records pass through as text with only INFO edited (as pysam writes them for
//! OpenSpliceAI); the header gains the `OpenSpliceAI` INFO line (and htslib's `FILTER=PASS` line when
//! missing). Input is opened by [`super::input`]: a file or `-`, plain, gzip or bgzip.

use std::io::BufRead;
use std::path::{Path, PathBuf};

/// The INFO header line upstream adds.
pub const INFO_HEADER: &str = "##INFO=<ID=OpenSpliceAI,Number=.,Type=String,Description=\"OpenSpliceAI variant annotation. These include delta scores (DS) and delta positions (DP) for acceptor gain (AG), acceptor loss (AL), donor gain (DG), and donor loss (DL). Format: ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL\">";

/// The INFO key upstream (OpenSpliceAI) writes.
pub const DEFAULT_INFO_KEY: &str = "OpenSpliceAI";

/// The INFO header line for the annotation under `key`: upstream's line for `OpenSpliceAI`, SpliceAI
/// 1.3.1's exact line for `SpliceAI` (what its VEP plugin and filters read), the same words otherwise.
pub fn info_header(key: &str) -> String {
    let who = match key {
        "SpliceAI" => "SpliceAIv1.3.1",
        k => k,
    };
    INFO_HEADER
        .replacen("ID=OpenSpliceAI,", &format!("ID={key},"), 1)
        .replacen("\"OpenSpliceAI variant", &format!("\"{who} variant"), 1)
}

/// Checks an INFO key against VCF 4.2's rule (`[A-Za-z_][0-9A-Za-z_.]*`); the message says what is
/// expected.
pub fn check_info_key(key: &str) -> Result<(), String> {
    let mut chars = key.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{key}` is not a VCF INFO key: expected a letter or `_` first, then letters, digits, `_` or `.` (e.g. SpliceAI or OpenSpliceAI)"
        ))
    }
}
const PASS_HEADER: &str = "##FILTER=<ID=PASS,Description=\"All filters passed\">";

/// Errors reading a VCF.
#[derive(Debug, thiserror::Error)]
pub enum VcfError {
    #[error("{name}: cannot read")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name}:{line}: {message}")]
    Bad {
        name: String,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Open(#[from] super::GenomeError),
    #[error(transparent)]
    Select(#[from] super::vcf_index::SelectError),
}

/// One data line split into its fixed fields.
#[derive(Debug, Clone)]
pub struct VcfRecord {
    /// Line number in the input (1-based).
    pub line_no: usize,
    pub fields: Vec<String>,
    pub pos: i64,
}

impl VcfRecord {
    pub fn chrom(&self) -> &str {
        &self.fields[0]
    }
    pub fn reference(&self) -> &str {
        &self.fields[3]
    }
    /// ALT alleles; `None` for `.`.
    pub fn alts(&self) -> Option<Vec<&str>> {
        match self.fields[4].as_str() {
            "." | "" => None,
            a => Some(a.split(',').collect()),
        }
    }
    /// The line as text.
    pub fn line(&self) -> String {
        self.fields.join("\t")
    }
    /// The line with `OpenSpliceAI=<value>` set in INFO (an old value replaced).
    pub fn with_info(&self, value: &str) -> String {
        self.with_info_key(DEFAULT_INFO_KEY, value)
    }

    /// The line with `<key>=<value>` set in INFO (an old value under `key` replaced).
    pub fn with_info_key(&self, key: &str, value: &str) -> String {
        let mut f = self.fields.clone();
        let kept: Vec<&str> = f[7]
            .split(';')
            .filter(|k| {
                *k != "."
                    && !k.is_empty()
                    && !k.strip_prefix(key).is_some_and(|r| r.starts_with('='))
            })
            .collect();
        let mut info = kept.join(";");
        if !info.is_empty() {
            info.push(';');
        }
        info.push_str(key);
        info.push('=');
        info.push_str(value);
        f[7] = info;
        f.join("\t")
    }
}

/// One data line (not empty, no line end) as a record; the error says what is wrong with it.
pub fn parse_record(line: &str, line_no: usize) -> Result<VcfRecord, String> {
    let fields: Vec<String> = line.split('\t').map(str::to_string).collect();
    if fields.len() < 8 {
        return Err(format!(
            "expected at least 8 tab-separated columns, found {}",
            fields.len()
        ));
    }
    let pos = fields[1]
        .parse::<i64>()
        .map_err(|_| format!("POS `{}` is not an integer", fields[1]))?;
    if fields[3].is_empty() || fields[3] == "." {
        return Err("REF is empty".into());
    }
    Ok(VcfRecord {
        line_no,
        fields,
        pos,
    })
}

/// A VCF being read: its header lines, then records one at a time.
pub struct VcfReader {
    name: String,
    inner: Box<dyn BufRead>,
    line_no: usize,
    pub header: Vec<String>,
}

impl VcfReader {
    /// Opens a file (`-`: standard input; plain, gzip or bgzip) and reads the header.
    pub fn open(path: &Path) -> Result<Self, VcfError> {
        let input = super::input::open(path)?;
        Self::new(&input.name, input.reader)
    }

    /// Reads the header from `inner`; `name` names it in messages.
    pub fn new(name: &Path, inner: Box<dyn BufRead>) -> Result<Self, VcfError> {
        let mut r = Self {
            name: name.display().to_string(),
            inner,
            line_no: 0,
            header: Vec::new(),
        };
        loop {
            let Some(line) = r.next_line()? else {
                return Err(r.bad("the file ends before the `#CHROM` header line".into()));
            };
            let done = line.starts_with("#CHROM");
            if !line.starts_with('#') {
                return Err(r.bad("expected a header line starting with `#` (no `#CHROM` line before the records)".into()));
            }
            if r.header.is_empty() && !line.starts_with("##fileformat=VCF") {
                return Err(r.bad("not a VCF: the first line is not `##fileformat=VCFv4.x`".into()));
            }
            r.header.push(line);
            if done {
                return Ok(r);
            }
        }
    }

    fn bad(&self, message: String) -> VcfError {
        VcfError::Bad {
            name: self.name.clone(),
            line: self.line_no,
            message,
        }
    }

    fn next_line(&mut self) -> Result<Option<String>, VcfError> {
        let mut s = String::new();
        let n = self
            .inner
            .read_line(&mut s)
            .map_err(|source| VcfError::Io {
                name: self.name.clone(),
                source,
            })?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        while s.ends_with('\n') || s.ends_with('\r') {
            s.pop();
        }
        Ok(Some(s))
    }

    /// The header as upstream writes it: `FILTER=PASS` second when missing, the INFO line after the last
    /// meta line.
    pub fn output_header(&self) -> Vec<String> {
        self.output_header_with(DEFAULT_INFO_KEY, None)
    }

    /// The header with the INFO line of `key`, then `extra` (a `##` line of our own) before `#CHROM`.
    pub fn output_header_with(&self, key: &str, extra: Option<&str>) -> Vec<String> {
        let mut h = self.header.clone();
        let meta_end = h.len() - 1;
        h.insert(meta_end, info_header(key));
        if let Some(line) = extra {
            h.insert(meta_end + 1, line.to_string());
        }
        if !h.iter().any(|l| l.starts_with("##FILTER=<ID=PASS,")) {
            h.insert(1, PASS_HEADER.to_string());
        }
        h
    }

    /// The next record, or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<VcfRecord>, VcfError> {
        loop {
            let Some(line) = self.next_line()? else {
                return Ok(None);
            };
            if line.is_empty() {
                continue;
            }
            return parse_record(&line, self.line_no)
                .map(Some)
                .map_err(|m| self.bad(m));
        }
    }

    /// The input's name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The number of records of a VCF that is a regular file (a counting pass, for a progress total);
/// `None` for standard input, anything else or an unreadable file (the real pass reports the error).
pub fn count_records(path: &Path) -> Option<u64> {
    if path.as_os_str() == "-" || !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let mut r = super::input::open(path).ok()?.reader;
    let mut n = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) => return Some(n),
            Ok(_) => {
                if !line.starts_with(b"#") && !line.iter().all(u8::is_ascii_whitespace) {
                    n += 1;
                }
            }
            Err(_) => return None,
        }
    }
}

/// Where the output goes: a file (written atomically) or stdout.
pub fn output_path(p: &Option<PathBuf>) -> Option<&Path> {
    p.as_deref().filter(|p| p.as_os_str() != "-")
}
