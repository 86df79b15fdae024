//! `create-data`: a genome FASTA and a GFF3/GTF annotation to OpenSpliceAI's training files
//! (`datafile_{train,validation,test}.h5`, `dataset_{train,validation,test}.h5`), identical to OpenSpliceAI
//! 0.0.7's wherever it is deterministic. docs/upstream-behaviour.md#create-data lists the rules reproduced.

pub mod config;
mod error;
pub mod example;
pub mod extract;
mod output;
pub mod paralogs;
pub mod pyrandom;
mod seqstore;
pub mod split;
mod summary;
mod verify;
mod write;

use std::collections::{BTreeMap, HashMap};

use indicatif::ProgressBar;
use rayon::prelude::*;

pub use config::{Biotype, ChrSplit, CreateDataConfig, ParseType, SplitMethod};
pub use error::CreateDataError;
use extract::{build_records, plan_gene, GeneOutcome, GenePlan, Record, SkipReason};
use output::Staged;
use pyrandom::PyRandom;
use seqstore::SeqStore;
pub use summary::{SplitSummary, Summary};
pub use verify::{verify, verify_written};

/// Every file create-data may write into its output directory (which ones depends on the options), for
/// the check that no input is among them (`crate::clobber`).
pub const OUTPUT_NAMES: [&str; 12] = [
    "train_stats.txt",
    "test_stats.txt",
    "train.fa",
    "test.fa",
    "datafile_train.h5",
    "datafile_validation.h5",
    "datafile_test.h5",
    "dataset_train.h5",
    "dataset_validation.h5",
    "dataset_test.h5",
    "removed_paralogs_test.txt",
    "removed_paralogs_validation.txt",
];

use crate::genome::{Annotation, Dialect, FastaReader};

/// Genes after the annotation pass, and the records extracted once the FASTA was read.
struct Extraction {
    plans: Vec<GenePlan>,
    /// Records per plan (None: the gene's sequence is not in the FASTA).
    records: Vec<Option<Vec<Record>>>,
    /// (seqid, reason) of genes skipped by the annotation filters.
    skipped: Vec<(String, SkipReason)>,
    /// Upstream-mode genes without `gene_biotype` (seqid, line, id).
    missing_biotype: Vec<(String, usize, String)>,
    /// FASTA records in file order with their lengths.
    chroms: Vec<(String, usize)>,
}

fn plan_genes(cfg: &CreateDataConfig) -> Result<Extraction, CreateDataError> {
    let ann = Annotation::read(&cfg.annotation)?;
    if cfg.upstream_bugs {
        let missing = ann.missing_parents();
        if let Some((line, parent)) = missing.first() {
            log::warn!(
                "{}:{line}: `Parent={parent}` names no feature ({} such parent(s)); their children are ignored, \
                 as upstream does (--upstream-bugs)",
                cfg.annotation.display(),
                missing.len()
            );
        }
    } else {
        ann.check_parents()?;
    }
    let genes = ann.genes();
    let outcomes: Vec<GeneOutcome> = genes.par_iter().map(|&g| plan_gene(&ann, g, cfg)).collect();
    let mut ex = Extraction {
        plans: Vec::new(),
        records: Vec::new(),
        skipped: Vec::new(),
        missing_biotype: Vec::new(),
        chroms: Vec::new(),
    };
    for o in outcomes {
        match o {
            GeneOutcome::Kept(p) => ex.plans.push(p),
            GeneOutcome::Skipped { seqid, reason } => ex.skipped.push((seqid, reason)),
            GeneOutcome::MissingGeneBiotype { seqid, line, id } => {
                ex.missing_biotype.push((seqid, line, id))
            }
        }
    }
    ex.records = vec![None; ex.plans.len()];
    Ok(ex)
}

fn gene_bar(cfg: &CreateDataConfig, n: usize) -> ProgressBar {
    crate::progress::Progress::new(cfg.progress).counter(
        Some(n as u64),
        "genes",
        "create-data: extracting",
    )
}

/// A gene's sequence and its records.
type GeneRecords = (Vec<u8>, Vec<Record>);

/// Streams the FASTA one sequence at a time, builds the records of the genes on it (in parallel) and spills
/// their sequences to `store`.
fn extract(
    cfg: &CreateDataConfig,
    ex: &mut Extraction,
    store: &mut SeqStore,
) -> Result<(), CreateDataError> {
    let mut by_seq: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, p) in ex.plans.iter().enumerate() {
        by_seq.entry(p.seqid.clone()).or_default().push(i);
    }
    let bar = gene_bar(cfg, ex.plans.len());
    let mut reader = FastaReader::open(&cfg.genome, Dialect::Biopython)?;
    while let Some(rec) = reader.next_record()? {
        ex.chroms.push((rec.name.clone(), rec.seq.len()));
        let Some(idx) = by_seq.get(rec.name.as_str()) else {
            continue;
        };
        bar.set_message(rec.name.clone());
        let (seq, plans) = (&rec.seq, &ex.plans);
        let built: Vec<Result<GeneRecords, CreateDataError>> = idx
            .par_iter()
            .map(|&i| {
                let r = build_records(&plans[i], seq, cfg);
                bar.inc(1);
                r
            })
            .collect();
        for (&i, result) in idx.iter().zip(built) {
            let (gene_seq, mut records) = result?;
            let sref = store.append(&gene_seq)?;
            records.iter_mut().for_each(|r| r.seq = sref);
            ex.records[i] = Some(records);
        }
    }
    bar.finish_and_clear();
    store.seal()
}

/// The records of each split, in the order they are written.
struct Splits {
    train: Vec<Record>,
    test: Vec<Record>,
    validation: Vec<Record>,
}

/// Chromosome groups, the gene-level fallback, and the routing of records (gene order within a group).
fn route(
    cfg: &CreateDataConfig,
    ex: &mut Extraction,
    rng: &mut PyRandom,
    summary: &mut Summary,
) -> Result<(Vec<Record>, Vec<Record>), CreateDataError> {
    let groups = split::split_chromosomes(&ex.chroms, cfg.split_method, cfg.split_ratio, rng);
    let in_run = |s: &str| {
        groups.test.contains(s)
            || (cfg.chr_split == ChrSplit::TrainTest && groups.train.contains(s))
    };
    if let Some((_, line, id)) = ex.missing_biotype.iter().find(|(s, _, _)| in_run(s)) {
        return Err(CreateDataError::Annotation {
            path: cfg.annotation.clone(),
            line: *line,
            message: format!(
                "gene `{id}` has no `gene_biotype` attribute (required with --upstream-bugs, as in OpenSpliceAI; \
                 without that flag `biotype` and `gene_type` are read too)"
            ),
        });
    }
    for (seqid, reason) in &ex.skipped {
        summary.skip(seqid, *reason);
    }
    let mut train_genes: Vec<Vec<Record>> = Vec::new();
    let mut test_genes: Vec<Vec<Record>> = Vec::new();
    let mut missing: BTreeMap<&str, usize> = BTreeMap::new();
    for (plan, recs) in ex.plans.iter().zip(std::mem::take(&mut ex.records)) {
        let Some(recs) = recs else {
            summary.skip(&plan.seqid, SkipReason::MissingSequence);
            *missing.entry(plan.seqid.as_str()).or_insert(0) += 1;
            continue;
        };
        if groups.test.contains(&plan.seqid) {
            test_genes.push(recs);
        } else if cfg.chr_split == ChrSplit::TrainTest && groups.train.contains(&plan.seqid) {
            train_genes.push(recs);
        } else {
            summary.skip(&plan.seqid, SkipReason::NotInSplit);
        }
    }
    for (seqid, n) in &missing {
        log::warn!(
            "{}: {n} gene(s) on `{seqid}`, which {} does not hold; skipped",
            cfg.annotation.display(),
            cfg.genome.display()
        );
    }
    let fallback = cfg.gene_split
        && !cfg.upstream_bugs
        && cfg.chr_split == ChrSplit::TrainTest
        && train_genes.is_empty()
        && test_genes.len() >= 2;
    if fallback {
        let spans: Vec<u64> = test_genes
            .iter()
            .map(|r| {
                r.first()
                    .map_or(0, |r| r.tx_end.saturating_sub(r.tx_start) + 1)
            })
            .collect();
        let to_train = split::split_genes(&spans, cfg.split_ratio, rng);
        let mut test = Vec::new();
        for (recs, t) in test_genes.into_iter().zip(to_train) {
            if t {
                train_genes.push(recs);
            } else {
                test.push(recs);
            }
        }
        test_genes = test;
        summary.gene_split = true;
        log::warn!(
            "the chromosome split left train empty (one chromosome group); genes were split instead \
             (seeded, {} train / {} test genes). Use --no-gene-split for upstream's behaviour",
            train_genes.len(),
            test_genes.len()
        );
    }
    summary.genes_kept = train_genes.len() + test_genes.len();
    Ok((
        train_genes.into_iter().flatten().collect(),
        test_genes.into_iter().flatten().collect(),
    ))
}

/// Runs create-data and returns what it did.
pub fn run(cfg: &CreateDataConfig) -> Result<Summary, CreateDataError> {
    cfg.check_ranges().map_err(CreateDataError::Option)?;
    let mut staged = Staged::new(&cfg.output_dir)?;
    let mut ex = plan_genes(cfg)?;
    hwm("plan");
    let mut store = SeqStore::create(&cfg.output_dir)?;
    extract(cfg, &mut ex, &mut store)?;
    hwm("extract");
    let mut summary = Summary {
        genes_seen: ex.plans.len() + ex.skipped.len() + ex.missing_biotype.len(),
        ..Summary::default()
    };
    let mut rng = PyRandom::new(cfg.random_seed);
    let (train, test) = route(cfg, &mut ex, &mut rng, &mut summary)?;
    if train.is_empty() && test.is_empty() && !cfg.upstream_bugs {
        return Err(CreateDataError::Empty {
            filters: cfg.describe_filters(),
            skipped: summary.describe_skips(),
        });
    }
    if cfg.chr_split == ChrSplit::TrainTest {
        side_outputs(&mut staged, &store, cfg, "train", &train)?;
    }
    side_outputs(&mut staged, &store, cfg, "test", &test)?;
    let splits = match cfg.chr_split {
        ChrSplit::Test => Splits {
            train: Vec::new(),
            test,
            validation: Vec::new(),
        },
        ChrSplit::TrainTest => {
            let mut test = test;
            if cfg.remove_paralogs {
                test =
                    filter_paralogs(&mut staged, &store, cfg, "test", &train, test, &mut summary)?;
            }
            let (train, mut validation) =
                split::split_train_val(train, cfg.val_split_ratio, &mut rng);
            if cfg.remove_paralogs {
                validation = filter_paralogs(
                    &mut staged,
                    &store,
                    cfg,
                    "validation",
                    &train,
                    validation,
                    &mut summary,
                )?;
            }
            Splits {
                train,
                test,
                validation,
            }
        }
    };
    hwm("split");
    write_all(&mut staged, &store, cfg, &splits, &mut summary)?;
    hwm("write");
    summary.written = staged.commit()?;
    Ok(summary)
}

fn filter_paralogs(
    staged: &mut Staged,
    store: &SeqStore,
    cfg: &CreateDataConfig,
    split: &str,
    train: &[Record],
    query: Vec<Record>,
    summary: &mut Summary,
) -> Result<Vec<Record>, CreateDataError> {
    let n = query.len();
    let (kept, removed) = paralogs::remove_paralogs(
        staged,
        store,
        split,
        train,
        query,
        cfg.min_identity,
        cfg.min_coverage,
    )?;
    log::info!("paralogs: {} of {n} {split} records removed", removed.len());
    summary.paralogs_removed.insert(split.to_string(), removed);
    Ok(kept)
}

fn side_outputs(
    staged: &mut Staged,
    store: &SeqStore,
    cfg: &CreateDataConfig,
    split: &str,
    records: &[Record],
) -> Result<(), CreateDataError> {
    let s = write::SplitRecords {
        name: split,
        store,
        records: records.iter().collect(),
    };
    write::write_stats(staged, &s)?;
    if cfg.write_fasta {
        write::write_fasta(staged, &s)?;
    }
    Ok(())
}

fn write_all(
    staged: &mut Staged,
    store: &SeqStore,
    cfg: &CreateDataConfig,
    splits: &Splits,
    summary: &mut Summary,
) -> Result<(), CreateDataError> {
    let mut list: Vec<(&str, &Vec<Record>)> = vec![("test", &splits.test)];
    if cfg.chr_split == ChrSplit::TrainTest {
        list.push(("train", &splits.train));
        list.push(("validation", &splits.validation));
    }
    let mut per_split = BTreeMap::new();
    for (name, records) in list {
        let s = write::SplitRecords {
            name,
            store,
            records: records.iter().collect(),
        };
        write::write_datafile(staged, &s)?;
        write::write_dataset(staged, &s, cfg.progress)?;
        per_split.insert(name.to_string(), SplitSummary::of(records));
    }
    summary.splits = per_split;
    Ok(())
}

/// Logs (debug) the peak resident memory so far, where /proc says it (Linux).
fn hwm(stage: &str) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(l) = status.lines().find(|l| l.starts_with("VmHWM")) {
        log::debug!(
            "after {stage}: peak {}",
            l.trim_start_matches("VmHWM:").trim()
        );
    }
}
