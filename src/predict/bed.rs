//! BED lines of `predict`. The default ([`BedFormat::Standard`], [`Place`]) is BED6 on the contig: chrom = the
//! FASTA record's first word (or the GFF seqid), 0-based half-open interval of the one scored base, a name
//! without spaces, the score, the strand. [`BedFormat::Upstream`] ([`Naming`]) keeps OpenSpliceAI 0.0.7's
//! lines (`predict.py:write_batch_to_bed`): names of the form `…chrX:START-END(STRAND)…` map positions onto
//! the genome (6 columns), any other name gives record-relative coordinates with the
//! `absolute_coordinates` tag (7 columns).

use std::io::Write;
use std::sync::OnceLock;

use regex::Regex;

/// Which BED lines `predict` writes (`--bed-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BedFormat {
    /// BED6 on the contig, which bedtools, IGV and UCSC read.
    #[default]
    Standard,
    /// OpenSpliceAI 0.0.7's exact lines.
    Upstream,
}

/// Where a scored record lies on its contig (the standard format and the bigWig tracks).
#[derive(Debug, Clone)]
pub struct Place {
    /// The contig: the FASTA record's first word, or the GFF seqid.
    pub chrom: super::bigwig::Chrom,
    /// 0-based contig position of the record's first base (of its last base when `minus`).
    pub start0: u64,
    /// Record length.
    pub len: u64,
    /// The record is the reverse complement of contig `[start0, start0 + len)`.
    pub minus: bool,
    /// Name column prefix (gene id with `-a`, empty for a whole record); spaces become `_`.
    pub prefix: String,
}

impl Place {
    /// The contig position of record position `p` (which must be below `len`).
    pub fn contig_pos(&self, p: u64) -> u64 {
        if self.minus {
            self.start0 + self.len - 1 - p
        } else {
            self.start0 + p
        }
    }

    /// Writes the line of record position `p` (one base), `label` Acceptor or Donor.
    pub fn write_line<W: Write>(
        &self,
        out: &mut W,
        p: u64,
        label: &str,
        score: f32,
    ) -> std::io::Result<()> {
        let c = self.contig_pos(p);
        let strand = if self.minus { '-' } else { '+' };
        let sep = if self.prefix.is_empty() { "" } else { "_" };
        writeln!(
            out,
            "{}\t{c}\t{}\t{}{sep}{label}\t{:.6}\t{strand}",
            self.chrom.0,
            c + 1,
            self.prefix,
            score as f64
        )
    }
}

/// A name for the BED name column: whitespace becomes `_`.
pub fn bed_name(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join("_")
}

/// How the positions of one record become BED lines in upstream's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Naming {
    /// The name matched upstream's pattern: genomic coordinates on `chrom`.
    Genomic {
        chrom: String,
        /// 1-based start and end of the interval the record holds.
        start: u64,
        end: u64,
        minus: bool,
        /// The name without the trailing `:+`.
        name: String,
    },
    /// No match: coordinates relative to the record, the whole name as chromosome.
    Relative { name: String },
    /// Matched with strand `.` and nothing after it: upstream drops the record (`Undefined strand None`).
    Dropped,
}

fn pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^.*(chr[a-zA-Z0-9_]*):(\d+)-(\d+)\(([-+.])\)([-+])?.*").expect("valid regex")
    })
}

impl Naming {
    /// The naming for a record called `name` (the header plus upstream's `:+` suffix).
    pub fn parse(name: &str) -> Self {
        let Some(c) = pattern().captures(name) else {
            return Naming::Relative {
                name: name.to_string(),
            };
        };
        let strand = match &c[4] {
            "." => match c.get(5) {
                Some(s) => s.as_str().to_string(),
                None => return Naming::Dropped,
            },
            s => s.to_string(),
        };
        let (Ok(start), Ok(end)) = (c[2].parse::<u64>(), c[3].parse::<u64>()) else {
            return Naming::Relative {
                name: name.to_string(),
            };
        };
        Naming::Genomic {
            chrom: c[1].to_string(),
            start,
            end,
            minus: strand == "-",
            name: name[..name.len().saturating_sub(2)].to_string(),
        }
    }

    /// Writes one line for the interval `[s, e)` (record coordinates), `label` Acceptor or Donor.
    pub fn write_line<W: Write>(
        &self,
        out: &mut W,
        s: u64,
        e: u64,
        label: &str,
        score: f32,
    ) -> std::io::Result<()> {
        match self {
            Naming::Genomic {
                chrom,
                start,
                end,
                minus,
                name,
            } => {
                let (cs, ce, strand) = if *minus {
                    (*end as i64 - e as i64, *end as i64 - s as i64, '-')
                } else {
                    (
                        *start as i64 - 1 + s as i64,
                        *start as i64 - 1 + e as i64,
                        '+',
                    )
                };
                writeln!(
                    out,
                    "{chrom}\t{cs}\t{ce}\t{name}_{label}\t{:.6}\t{strand}",
                    score as f64
                )
            }
            Naming::Relative { name } => writeln!(
                out,
                "{name}\t{s}\t{e}\t{name}_{label}\t{:.6}\t+\tabsolute_coordinates",
                score as f64
            ),
            Naming::Dropped => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_upstream() {
        let acceptor_line = |record: &str, start, end, score| {
            let mut v = Vec::new();
            Naming::parse(record)
                .write_line(&mut v, start, end, "Acceptor", score)
                .unwrap();
            String::from_utf8(v).unwrap()
        };
        assert_eq!(
            acceptor_line("FBgn0050489 chr2R_7000001_7200000:7410-9553(-):+", 65, 66, 5e-6),
            "chr2R_7000001_7200000\t9487\t9488\tFBgn0050489 chr2R_7000001_7200000:7410-9553(-)_Acceptor\t0.000005\t-\n"
        );
        assert_eq!(
            acceptor_line("chr2R_7000001_7200000:+", 81, 82, 4.1e-5),
            "chr2R_7000001_7200000:+\t81\t82\tchr2R_7000001_7200000:+_Acceptor\t0.000041\t+\tabsolute_coordinates\n"
        );
        assert_eq!(Naming::parse("chr1:1-100(.):+"), Naming::Dropped);
    }

    #[test]
    fn standard_lines_are_bed6_on_the_contig() {
        let line = |minus, p| {
            let place = Place {
                chrom: super::super::bigwig::Chrom("chr2R".into()),
                start0: 100,
                len: 10,
                minus,
                prefix: bed_name("FBgn1 x"),
            };
            let mut v = Vec::new();
            place.write_line(&mut v, p, "Donor", 0.5).unwrap();
            String::from_utf8(v).unwrap()
        };
        assert_eq!(
            line(false, 0),
            "chr2R\t100\t101\tFBgn1_x_Donor\t0.500000\t+\n"
        );
        assert_eq!(
            line(true, 0),
            "chr2R\t109\t110\tFBgn1_x_Donor\t0.500000\t-\n"
        );
        assert_eq!(
            line(true, 9),
            "chr2R\t100\t101\tFBgn1_x_Donor\t0.500000\t-\n"
        );
    }
}
