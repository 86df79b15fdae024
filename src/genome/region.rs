//! Where to work: `--region CHR[:START[-END]]` (1-based, inclusive, as samtools and bcftools write them),
//! `--regions-file` (BED: 0-based, half-open) and `--shard I/N`. One home for the three so that `variant`
//! and `predict` read them the same way.
//!
//! A [`Regions`] set answers "is this position selected?" per contig; a [`Shard`] cuts a count (records,
//! windows) into N contiguous runs whose concatenation is the whole, so the N outputs written in shard order
//! are the unsharded output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A malformed region, regions file or shard spec; the message says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("--region `{spec}`: {message}; expected CHR, CHR:START or CHR:START-END (1-based, inclusive)")]
    Spec { spec: String, message: String },
    #[error("{}:{line}: {message}", path.display())]
    File {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: cannot read", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--shard `{spec}`: {message}; expected I/N with 1 <= I <= N (e.g. 3/10)")]
    Shard { spec: String, message: String },
    #[error("{origin}: contig `{chrom}` is not in {} (it names {count} contigs{example})", source_file.display())]
    UnknownContig {
        origin: String,
        chrom: String,
        source_file: PathBuf,
        count: usize,
        example: String,
    },
}

/// One region: `chrom`, 1-based inclusive `start..=end` (`end` `None`: to the contig's end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub chrom: String,
    pub start: u64,
    pub end: Option<u64>,
    /// Where it came from, for messages: `--region chr1:5-9` or `regions.bed:3`.
    pub origin: String,
}

impl Region {
    /// The region as 0-based half-open bounds on a contig of `len` bases (clipped to it).
    pub fn span0(&self, len: u64) -> (u64, u64) {
        let end = self.end.map_or(len, |e| e.min(len));
        ((self.start - 1).min(end), end)
    }

    /// Whether 1-based `pos` on `chrom` lies in the region.
    pub fn contains(&self, chrom: &str, pos: u64) -> bool {
        chrom == self.chrom && pos >= self.start && self.end.is_none_or(|e| pos <= e)
    }
}

fn parse_pos(s: &str) -> Option<u64> {
    let digits: String = s.chars().filter(|&c| c != ',').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl FromStr for Region {
    type Err = RegionError;

    fn from_str(spec: &str) -> Result<Self, RegionError> {
        let bad = |message: &str| RegionError::Spec {
            spec: spec.to_string(),
            message: message.to_string(),
        };
        // A contig name may itself hold ':' (HLA-A*01:01): the span is what follows the last ':' when that
        // starts with a digit, so such a contig is named with its span (`HLA-A*01:01:1-500`).
        let (chrom, span) = match spec.rsplit_once(':') {
            Some((c, s)) if s.chars().next().is_some_and(|c| c.is_ascii_digit()) => (c, Some(s)),
            _ => (spec, None),
        };
        if chrom.is_empty() || chrom.chars().any(char::is_whitespace) {
            return Err(bad("the contig name is empty or holds a space"));
        }
        let (start, end) = match span {
            None => (1, None),
            Some(s) => match s.split_once('-') {
                None => (
                    parse_pos(s).ok_or_else(|| bad("START is not a number"))?,
                    None,
                ),
                Some((a, "")) => (
                    parse_pos(a).ok_or_else(|| bad("START is not a number"))?,
                    None,
                ),
                Some((a, b)) => (
                    parse_pos(a).ok_or_else(|| bad("START is not a number"))?,
                    Some(parse_pos(b).ok_or_else(|| bad("END is not a number"))?),
                ),
            },
        };
        if start == 0 {
            return Err(bad("START is 0, but positions are 1-based"));
        }
        if end.is_some_and(|e| e < start) {
            return Err(bad("END is before START"));
        }
        Ok(Region {
            chrom: chrom.to_string(),
            start,
            end,
            origin: format!("--region {spec}"),
        })
    }
}

/// Reads a BED file of regions (columns 1-3; 0-based half-open; `track`, `browser` and `#` lines skipped).
pub fn read_regions_file(path: &Path) -> Result<Vec<Region>, RegionError> {
    let text = std::fs::read_to_string(path).map_err(|source| RegionError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty()
            || line.starts_with('#')
            || line.starts_with("track")
            || line.starts_with("browser")
        {
            continue;
        }
        let bad = |message: String| RegionError::File {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 {
            return Err(bad(format!(
                "expected tab-separated CHROM, START, END (BED); found {} column(s)",
                cols.len()
            )));
        }
        let num = |k: usize, what: &str| {
            cols[k].trim().parse::<u64>().map_err(|_| {
                bad(format!(
                    "column {} ({what}) is `{}`, not a whole number",
                    k + 1,
                    cols[k]
                ))
            })
        };
        let (start0, end) = (num(1, "start")?, num(2, "end")?);
        if end <= start0 {
            return Err(bad(format!(
                "start {start0} (column 2) is not below end {end} (column 3); BED intervals are 0-based, half-open"
            )));
        }
        out.push(Region {
            chrom: cols[0].to_string(),
            start: start0 + 1,
            end: Some(end),
            origin: format!("{}:{}", path.display(), i + 1),
        });
    }
    Ok(out)
}

/// The regions a command was given, merged per contig; empty means everywhere.
#[derive(Debug, Clone, Default)]
pub struct Regions {
    list: Vec<Region>,
    /// contig → sorted, merged 1-based inclusive intervals (`u64::MAX` for "to the end").
    merged: BTreeMap<String, Vec<(u64, u64)>>,
}

impl Regions {
    /// Gathers `--region` values and the regions of `--regions-file`.
    pub fn new(regions: &[Region], file: Option<&Path>) -> Result<Self, RegionError> {
        let mut list = regions.to_vec();
        if let Some(f) = file {
            list.extend(read_regions_file(f)?);
        }
        let mut merged: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
        for r in &list {
            merged
                .entry(r.chrom.clone())
                .or_default()
                .push((r.start, r.end.unwrap_or(u64::MAX)));
        }
        for spans in merged.values_mut() {
            spans.sort_unstable();
            let mut out: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
            for &(s, e) in spans.iter() {
                match out.last_mut() {
                    Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                    _ => out.push((s, e)),
                }
            }
            *spans = out;
        }
        Ok(Regions { list, merged })
    }

    /// No region given: everything is selected.
    pub fn is_all(&self) -> bool {
        self.list.is_empty()
    }

    /// The regions as given (for messages and index queries).
    pub fn list(&self) -> &[Region] {
        &self.list
    }

    /// The contigs named, in sorted order.
    pub fn contigs(&self) -> impl Iterator<Item = &str> {
        self.merged.keys().map(String::as_str)
    }

    /// The merged 1-based inclusive spans on `chrom` (`u64::MAX` end: to the contig's end).
    pub fn spans(&self, chrom: &str) -> &[(u64, u64)] {
        self.merged.get(chrom).map_or(&[], Vec::as_slice)
    }

    /// Whether 1-based `pos` on `chrom` is selected.
    pub fn contains(&self, chrom: &str, pos: u64) -> bool {
        if self.is_all() {
            return true;
        }
        let spans = self.spans(chrom);
        let i = spans.partition_point(|&(s, _)| s <= pos);
        i > 0 && pos <= spans[i - 1].1
    }

    /// Whether any base of 1-based inclusive `start..=end` on `chrom` is selected.
    pub fn overlaps(&self, chrom: &str, start: u64, end: u64) -> bool {
        if self.is_all() {
            return true;
        }
        let spans = self.spans(chrom);
        // The spans are merged, so sorted by start and by end: the last one starting at or before `end`
        // is the only candidate.
        let i = spans.partition_point(|&(s, _)| s <= end);
        i > 0 && spans[i - 1].1 >= start
    }

    /// Checks that every contig named exists in `names` (read from `source_file`).
    pub fn check_contigs<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str> + Clone,
        source_file: &Path,
    ) -> Result<(), RegionError> {
        for r in &self.list {
            if !names.clone().into_iter().any(|n| n == r.chrom) {
                let all: Vec<&str> = names.clone().into_iter().collect();
                let example = match all.first() {
                    Some(first) => format!(", e.g. `{first}`"),
                    None => String::new(),
                };
                return Err(RegionError::UnknownContig {
                    origin: r.origin.clone(),
                    chrom: r.chrom.clone(),
                    source_file: source_file.to_path_buf(),
                    count: all.len(),
                    example,
                });
            }
        }
        Ok(())
    }
}

/// `--shard I/N`: the I-th (1-based) of N contiguous parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// The whole: shard 1 of 1.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// This shard's half-open part `[start, end)` of `0..total`: part I is
    /// `[total·(I-1)/N, total·I/N)`, so the parts tile the whole in order and differ in size by at most one.
    pub fn range(&self, total: u64) -> std::ops::Range<u64> {
        let at = |i: u64| ((total as u128 * i as u128) / self.count as u128) as u64;
        at(self.index - 1)..at(self.index)
    }

    /// Whether this is the whole (1/1).
    pub fn is_all(&self) -> bool {
        self.count == 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = RegionError;

    fn from_str(spec: &str) -> Result<Self, RegionError> {
        let bad = |message: &str| RegionError::Shard {
            spec: spec.to_string(),
            message: message.to_string(),
        };
        let (i, n) = spec.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let i: u64 = i
            .trim()
            .parse()
            .map_err(|_| bad("I is not a whole number"))?;
        let n: u64 = n
            .trim()
            .parse()
            .map_err(|_| bad("N is not a whole number"))?;
        if n == 0 || i == 0 || i > n {
            return Err(bad("I must lie in 1..=N and N must be at least 1"));
        }
        Ok(Shard { index: i, count: n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Result<Region, String> {
        s.parse::<Region>().map_err(|e| e.to_string())
    }

    #[test]
    fn region_specs_read_as_samtools_writes_them() {
        let a = r("2L:1,000-2,000").unwrap();
        assert_eq!((a.chrom.as_str(), a.start, a.end), ("2L", 1000, Some(2000)));
        assert_eq!(r("2L").unwrap().end, None);
        assert_eq!(r("2L").unwrap().start, 1);
        assert_eq!(r("2L:500").unwrap().end, None);
        assert_eq!(r("2L:500-").unwrap().start, 500);
        assert_eq!(r("HLA-A*01:01:5-6").unwrap().chrom, "HLA-A*01:01");
        assert!(r("2L:0-5").unwrap_err().contains("1-based"));
        assert!(r("2L:9-5").unwrap_err().contains("END is before START"));
        assert!(r("2L:5-x").unwrap_err().contains("END is not a number"));
        assert!(r(":5-9").unwrap_err().contains("contig name is empty"));
        assert_eq!(r("2L:10-20").unwrap().span0(15), (9, 15));
    }

    #[test]
    fn regions_merge_and_select_by_position() {
        let given = [
            r("a:10-20").unwrap(),
            r("a:21-30").unwrap(),
            r("a:50-60").unwrap(),
            r("b").unwrap(),
        ];
        let set = Regions::new(&given, None).unwrap();
        assert_eq!(set.spans("a"), &[(10, 30), (50, 60)]);
        for (chrom, pos, want) in [
            ("a", 9, false),
            ("a", 10, true),
            ("a", 30, true),
            ("a", 31, false),
        ] {
            assert_eq!(set.contains(chrom, pos), want, "{chrom}:{pos}");
        }
        assert!(set.contains("b", 1_000_000_000));
        assert!(!set.contains("c", 1));
        assert!(Regions::default().contains("c", 1));
        for (s, e, want) in [
            (1, 9, false),
            (1, 10, true),
            (31, 49, false),
            (25, 55, true),
            (61, 99, false),
        ] {
            assert_eq!(set.overlaps("a", s, e), want, "a:{s}-{e}");
        }
        assert!(set.overlaps("b", 5, 6) && !set.overlaps("c", 1, 9));
        let err = set
            .check_contigs(["a", "c"], Path::new("ref.fa"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`b` is not in ref.fa"), "{err}");
    }

    #[test]
    fn regions_file_is_bed_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.bed");
        std::fs::write(&p, "track name=x\n# c\nchr1\t0\t10\textra\nchr2\t5\t6\n").unwrap();
        let got = read_regions_file(&p).unwrap();
        assert_eq!((got[0].start, got[0].end), (1, Some(10)));
        assert_eq!((got[1].start, got[1].end), (6, Some(6)));
        std::fs::write(&p, "chr1\t10\t10\n").unwrap();
        let err = read_regions_file(&p).unwrap_err().to_string();
        assert!(
            err.contains("r.bed:1") && err.contains("not below end"),
            "{err}"
        );
        std::fs::write(&p, "chr1 0 10\n").unwrap();
        assert!(read_regions_file(&p)
            .unwrap_err()
            .to_string()
            .contains("found 1 column"));
    }

    #[test]
    fn shards_tile_the_whole_in_order() {
        for total in [0u64, 1, 7, 100, 1001] {
            for n in [1u64, 2, 3, 7, 150] {
                let mut next = 0;
                for i in 1..=n {
                    let part = Shard { index: i, count: n }.range(total);
                    assert_eq!(part.start, next);
                    assert!(part.end - part.start <= total / n + 1);
                    next = part.end;
                }
                assert_eq!(next, total);
            }
        }
        assert_eq!(
            "3/10".parse::<Shard>().unwrap(),
            Shard {
                index: 3,
                count: 10
            }
        );
        for bad in ["0/3", "4/3", "1/0", "3", "a/b"] {
            assert!(
                bad.parse::<Shard>()
                    .unwrap_err()
                    .to_string()
                    .contains("--shard"),
                "{bad}"
            );
        }
    }
}
