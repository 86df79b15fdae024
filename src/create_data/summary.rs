//! The closing summary: genes seen, kept and skipped by reason; per split, records, windows, labels, motifs.

use std::collections::BTreeMap;
use std::fmt;

use rayon::prelude::*;

use super::extract::{Record, SkipReason};
use super::write::windows;

/// Counts for one split.
#[derive(Debug, Default, Clone)]
pub struct SplitSummary {
    pub records: usize,
    pub windows: usize,
    pub donors: usize,
    pub acceptors: usize,
    /// Donor motifs (first two intron bases) and acceptor motifs (last two), over labelled sites.
    pub donor_motifs: BTreeMap<String, usize>,
    pub acceptor_motifs: BTreeMap<String, usize>,
}

fn motifs(r: &Record) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let (mut d, mut a) = (BTreeMap::new(), BTreeMap::new());
    for s in &r.sites {
        let m = String::from_utf8_lossy(&s.motif[..s.motif_len as usize]).into_owned();
        let map = if s.label == 2 { &mut d } else { &mut a };
        *map.entry(m).or_insert(0) += 1;
    }
    (d, a)
}

fn merge(into: &mut BTreeMap<String, usize>, from: BTreeMap<String, usize>) {
    for (k, v) in from {
        *into.entry(k).or_insert(0) += v;
    }
}

impl SplitSummary {
    pub fn of(records: &[Record]) -> Self {
        let mut s = Self {
            records: records.len(),
            windows: records.iter().map(windows).sum(),
            donors: records.iter().map(|r| r.count(2)).sum(),
            acceptors: records.iter().map(|r| r.count(1)).sum(),
            ..Self::default()
        };
        let parts: Vec<_> = records.par_iter().map(motifs).collect();
        for (d, a) in parts {
            merge(&mut s.donor_motifs, d);
            merge(&mut s.acceptor_motifs, a);
        }
        s
    }
}

/// What a create-data run did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub genes_seen: usize,
    pub genes_kept: usize,
    pub skipped: BTreeMap<SkipReason, usize>,
    /// Whether the gene-level fallback split was used.
    pub gene_split: bool,
    pub splits: BTreeMap<String, SplitSummary>,
    /// Names of the records removed as paralogs, per split.
    pub paralogs_removed: BTreeMap<String, Vec<String>>,
    /// The files this run wrote (renamed into place), in the order written.
    pub written: Vec<std::path::PathBuf>,
}

impl Summary {
    pub(crate) fn skip(&mut self, _seqid: &str, reason: SkipReason) {
        *self.skipped.entry(reason).or_insert(0) += 1;
    }
}

fn top(m: &BTreeMap<String, usize>) -> String {
    let mut v: Vec<(&String, &usize)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .take(4)
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "genes: {} seen, {} kept",
            self.genes_seen, self.genes_kept
        )?;
        for (reason, n) in &self.skipped {
            writeln!(f, "  skipped ({}): {n}", reason.describe())?;
        }
        if self.gene_split {
            writeln!(
                f,
                "  one chromosome group only: genes were split between train and test (seeded)"
            )?;
        }
        for (name, s) in &self.splits {
            writeln!(
                f,
                "{name}: {} records, {} windows, {} donors, {} acceptors; donor motifs: {}; acceptor motifs: {}",
                s.records,
                s.windows,
                s.donors,
                s.acceptors,
                top(&s.donor_motifs),
                top(&s.acceptor_motifs)
            )?;
        }
        for (name, removed) in &self.paralogs_removed {
            writeln!(f, "paralogs removed from {name}: {}", removed.len())?;
            for r in removed {
                writeln!(f, "  {r}")?;
            }
        }
        Ok(())
    }
}
