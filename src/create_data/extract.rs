//! Genes to records: which genes and transcripts are used (upstream's filters and order), the gene sequence and
//! its donor/acceptor labels.

use std::path::Path;

use super::config::{Biotype, CreateDataConfig, ParseType};
use super::seqstore::SeqRef;
use super::CreateDataError;
use crate::genome::seq::{py_slice, reverse_complement};
use crate::genome::{Annotation, FeatureId};

/// An exon: 1-based inclusive coordinates and the annotation line.
#[derive(Clone, Copy, Debug)]
pub struct Exon {
    pub start: u64,
    pub end: u64,
    pub line: usize,
}

/// One gene that passed the annotation filters, with its selected transcripts' exons (in upstream's order).
#[derive(Clone, Debug)]
pub struct GenePlan {
    pub id: String,
    pub seqid: String,
    pub start: u64,
    pub end: u64,
    pub strand: char,
    pub line: usize,
    pub transcripts: Vec<Vec<Exon>>,
}

/// Why a gene was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    TransSplicing,
    NoBiotype,
    OtherBiotype,
    NoTranscripts,
    MissingSequence,
    NotInSplit,
}

impl SkipReason {
    pub fn describe(self) -> &'static str {
        match self {
            Self::TransSplicing => "trans-spliced",
            Self::NoBiotype => "no biotype attribute",
            Self::OtherBiotype => "other biotype",
            Self::NoTranscripts => "no transcripts",
            Self::MissingSequence => "sequence not in the FASTA",
            Self::NotInSplit => "sequence in no chromosome group",
        }
    }
}

/// A gene, used or skipped.
pub enum GeneOutcome {
    Kept(GenePlan),
    Skipped {
        seqid: String,
        reason: SkipReason,
    },
    /// Upstream (`--upstream-bugs`) crashes with KeyError on such a gene once it is in a chromosome group.
    MissingGeneBiotype {
        seqid: String,
        line: usize,
        id: String,
    },
}

fn biotype_of(f: &crate::genome::Feature, upstream: bool) -> Option<&str> {
    if upstream {
        return f.attr("gene_biotype");
    }
    ["gene_biotype", "biotype", "gene_type"]
        .iter()
        .find_map(|k| f.attr(k))
}

fn is_coding(b: &str) -> bool {
    b == "protein_coding"
}

fn is_noncoding(b: &str) -> bool {
    b == "lncRNA" || b == "ncRNA"
}

/// The transcripts of a gene: `mRNA` descendants for coding genes (and, beyond upstream, `transcript`
/// descendants when there is no `mRNA`, as in GTF/Ensembl/GENCODE files), any direct child for non-coding genes.
fn transcripts(ann: &Annotation, gene: FeatureId, coding: bool, upstream: bool) -> Vec<FeatureId> {
    let mut t: Vec<FeatureId> = if coding {
        let d = ann.descendants(gene);
        let mrna: Vec<FeatureId> = d
            .iter()
            .copied()
            .filter(|&c| ann.features[c].kind == "mRNA")
            .collect();
        if mrna.is_empty() && !upstream {
            d.into_iter()
                .filter(|&c| ann.features[c].kind == "transcript")
                .collect()
        } else {
            mrna
        }
    } else {
        ann.children(gene).to_vec()
    };
    ann.sort_by_start(&mut t);
    t
}

fn exons(ann: &Annotation, tx: FeatureId) -> Vec<Exon> {
    let mut e: Vec<FeatureId> = ann
        .descendants(tx)
        .into_iter()
        .filter(|&c| ann.features[c].kind == "exon")
        .collect();
    ann.sort_by_start(&mut e);
    e.iter()
        .map(|&i| Exon {
            start: ann.features[i].start,
            end: ann.features[i].end,
            line: ann.features[i].line,
        })
        .collect()
}

/// Applies the annotation-side filters to one gene and picks its transcripts.
pub fn plan_gene(ann: &Annotation, gene: FeatureId, cfg: &CreateDataConfig) -> GeneOutcome {
    let f = &ann.features[gene];
    let skip = |reason| GeneOutcome::Skipped {
        seqid: f.seqid.clone(),
        reason,
    };
    if f.attr("exception") == Some("trans-splicing") {
        return skip(SkipReason::TransSplicing);
    }
    let Some(biotype) = biotype_of(f, cfg.upstream_bugs) else {
        if cfg.upstream_bugs {
            return GeneOutcome::MissingGeneBiotype {
                seqid: f.seqid.clone(),
                line: f.line,
                id: f.id.clone(),
            };
        }
        return skip(SkipReason::NoBiotype);
    };
    let coding = match cfg.biotype {
        Biotype::ProteinCoding if is_coding(biotype) => true,
        Biotype::NonCoding if is_noncoding(biotype) => false,
        Biotype::All if is_coding(biotype) || is_noncoding(biotype) => is_coding(biotype),
        _ => return skip(SkipReason::OtherBiotype),
    };
    let tx = transcripts(ann, gene, coding, cfg.upstream_bugs);
    if tx.is_empty() {
        return skip(SkipReason::NoTranscripts);
    }
    let selected = match cfg.parse_type {
        ParseType::AllIsoforms => tx,
        ParseType::Canonical => {
            let span = |t: FeatureId| ann.features[t].end as i64 - ann.features[t].start as i64 + 1;
            let mut best = tx[0];
            for &t in &tx {
                if span(t) > span(best) {
                    best = t;
                }
            }
            vec![best]
        }
    };
    GeneOutcome::Kept(GenePlan {
        id: f.id.clone(),
        seqid: f.seqid.clone(),
        start: f.start,
        end: f.end,
        strand: f.strand,
        line: f.line,
        transcripts: selected.into_iter().map(|t| exons(ann, t)).collect(),
    })
}

/// A labelled base: its position in the record, 1 (acceptor) or 2 (donor), and the motif beside it (the first
/// two intron bases for a donor, the last two for an acceptor; shorter at a sequence end).
#[derive(Clone, Copy, Debug)]
pub struct Site {
    pub pos: u32,
    pub label: u8,
    pub motif: [u8; 2],
    pub motif_len: u8,
}

/// One record of the datafile: a gene (and, with all isoforms, one of its transcripts). The sequence itself
/// lives in the [`SeqStore`](super::seqstore::SeqStore); labels are kept as the few labelled sites.
#[derive(Clone, Debug)]
pub struct Record {
    pub name: String,
    pub chrom: String,
    pub strand: char,
    pub tx_start: u64,
    pub tx_end: u64,
    pub seq: SeqRef,
    /// Labelled bases in position order; every other base is 0.
    pub sites: Vec<Site>,
}

impl Record {
    pub fn len(&self) -> usize {
        self.seq.len
    }

    pub fn is_empty(&self) -> bool {
        self.seq.len == 0
    }

    pub fn count(&self, label: u8) -> usize {
        self.sites.iter().filter(|s| s.label == label).count()
    }

    /// The labels as one digit per base (`LABEL` of the datafile).
    pub fn label_string(&self) -> Vec<u8> {
        let mut v = vec![b'0'; self.len()];
        for s in &self.sites {
            v[s.pos as usize] = b'0' + s.label;
        }
        v
    }
}

fn sites_of(labels: &[u8], seq: &[u8]) -> Vec<Site> {
    labels
        .iter()
        .enumerate()
        .filter(|(_, &l)| l != 0)
        .map(|(i, &l)| {
            let i64_ = i as i64;
            let m = if l == 2 {
                py_slice(seq, i64_ + 1, i64_ + 3)
            } else {
                py_slice(seq, i64_ - 2, i64_)
            };
            let mut motif = [0u8; 2];
            motif[..m.len().min(2)].copy_from_slice(&m[..m.len().min(2)]);
            Site {
                pos: i as u32,
                label: l,
                motif,
                motif_len: m.len().min(2) as u8,
            }
        })
        .collect()
}

fn is_canonical(d: &[u8], a: &[u8]) -> bool {
    matches!((d, a), (b"GT", b"AG") | (b"GC", b"AG") | (b"AT", b"AC"))
}

struct LabelCtx<'a> {
    plan: &'a GenePlan,
    path: &'a Path,
    upstream: bool,
}

impl LabelCtx<'_> {
    fn err(&self, line: usize, message: String) -> CreateDataError {
        CreateDataError::Annotation {
            path: self.path.to_path_buf(),
            line,
            message,
        }
    }

    /// Resolves a label index as Python would (`labels[i]`), or as an error outside the gene.
    fn index(&self, i: i64, len: usize, exon: &Exon) -> Result<usize, CreateDataError> {
        let g = self.plan;
        let wrapped = if i < 0 && self.upstream {
            i + len as i64
        } else {
            i
        };
        if wrapped < 0 || wrapped >= len as i64 {
            return Err(self.err(
                exon.line,
                format!(
                    "exon {}-{} of gene `{}` lies outside the gene's {}-{} on {} (sequence length {len} there)",
                    exon.start, exon.end, g.id, g.start, g.end, g.seqid
                ),
            ));
        }
        Ok(wrapped as usize)
    }
}

/// The gene's sequence: `chrom[start-1:end]` (cut at the end of the chromosome), upper case, reverse-complemented
/// on `-`.
fn gene_sequence(plan: &GenePlan, chrom: &[u8]) -> Vec<u8> {
    let s = (plan.start.saturating_sub(1) as usize).min(chrom.len());
    let e = (plan.end as usize).min(chrom.len()).max(s);
    let mut seq = chrom[s..e].to_ascii_uppercase();
    if plan.strand == '-' {
        reverse_complement(&mut seq);
    }
    seq
}

/// Builds the gene's records (their `seq` still unset) and returns them with the gene's sequence. Correct by
/// default; `upstream` reproduces OpenSpliceAI's cumulative labels across isoforms and its wrapping negative
/// indices.
pub fn build_records(
    plan: &GenePlan,
    chrom: &[u8],
    cfg: &CreateDataConfig,
) -> Result<(Vec<u8>, Vec<Record>), CreateDataError> {
    let ctx = LabelCtx {
        plan,
        path: &cfg.annotation,
        upstream: cfg.upstream_bugs,
    };
    if !cfg.upstream_bugs && plan.strand != '+' && plan.strand != '-' {
        return Err(ctx.err(
            plan.line,
            format!(
                "gene `{}` has strand `{}`; expected + or -",
                plan.id, plan.strand
            ),
        ));
    }
    if !cfg.upstream_bugs && plan.end > chrom.len() as u64 {
        return Err(ctx.err(
            plan.line,
            format!(
                "gene `{}` ({}-{}) lies past the end of `{}`, which is {} bases long in {}; expected every gene \
                 within its sequence (--upstream-bugs writes upstream's cut or empty record instead)",
                plan.id,
                plan.start,
                plan.end,
                plan.seqid,
                chrom.len(),
                cfg.genome.display()
            ),
        ));
    }
    let seq = gene_sequence(plan, chrom);
    let len = seq.len();
    let mut labels = vec![0u8; len];
    let mut out = Vec::with_capacity(plan.transcripts.len());
    for exons in &plan.transcripts {
        if !cfg.upstream_bugs {
            labels.iter_mut().for_each(|l| *l = 0);
            check_exons_inside(&ctx, exons)?;
        }
        for pair in exons.windows(2) {
            let first = pair[0].end as i64 - plan.start as i64;
            let second = pair[1].start as i64 - plan.start as i64;
            let (d, a) = match plan.strand {
                '+' => (first, second),
                '-' => (len as i64 - second - 1, len as i64 - first - 1),
                s => {
                    return Err(ctx.err(
                        plan.line,
                        format!(
                            "gene `{}` has strand `{s}` and introns; expected + or - (OpenSpliceAI fails here too)",
                            plan.id
                        ),
                    ))
                }
            };
            let ok = is_canonical(
                py_slice(&seq[..], d + 1, d + 3),
                py_slice(&seq[..], a - 2, a),
            );
            if !cfg.canonical_only || ok {
                labels[ctx.index(d, len, &pair[0])?] = 2;
                labels[ctx.index(a, len, &pair[1])?] = 1;
            }
        }
        out.push(Record {
            name: plan.id.clone(),
            chrom: plan.seqid.clone(),
            strand: plan.strand,
            tx_start: plan.start,
            tx_end: plan.end,
            seq: SeqRef::default(),
            sites: sites_of(&labels, &seq),
        });
    }
    Ok((seq, out))
}

fn check_exons_inside(ctx: &LabelCtx, exons: &[Exon]) -> Result<(), CreateDataError> {
    let g = ctx.plan;
    if exons.len() < 2 {
        return Ok(());
    }
    for e in exons {
        if e.start < g.start || e.end > g.end {
            return Err(ctx.err(
                e.line,
                format!(
                    "exon {}-{} lies outside its gene `{}` ({}-{} on {}); fix the annotation (OpenSpliceAI would mislabel or crash)",
                    e.start, e.end, g.id, g.start, g.end, g.seqid
                ),
            ));
        }
    }
    Ok(())
}
