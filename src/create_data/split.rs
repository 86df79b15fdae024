//! Chromosome groups (upstream's `split_chromosomes`), the gene-level fallback, and the train/validation split.

use std::collections::HashSet;

use super::config::SplitMethod;
use super::pyrandom::PyRandom;

/// Names in each group.
pub struct Groups {
    pub train: HashSet<String>,
    pub test: HashSet<String>,
}

const HUMAN_TRAIN: [&str; 19] = [
    "chr2", "chr4", "chr6", "chr8", "chr10", "chr11", "chr12", "chr13", "chr14", "chr15", "chr16",
    "chr17", "chr18", "chr19", "chr20", "chr21", "chr22", "chrX", "chrY",
];
const HUMAN_TEST: [&str; 5] = ["chr1", "chr3", "chr5", "chr7", "chr9"];

/// Splits chromosomes (name, length in FASTA order) as upstream does: `random` shuffles the names and fills test
/// while its length is below `total × (1 − split_ratio)`; `human` uses SpliceAI's fixed lists.
pub fn split_chromosomes(
    chroms: &[(String, usize)],
    method: SplitMethod,
    split_ratio: f64,
    rng: &mut PyRandom,
) -> Groups {
    let mut groups = Groups {
        train: HashSet::new(),
        test: HashSet::new(),
    };
    match method {
        SplitMethod::Human => {
            for (name, _) in chroms {
                if HUMAN_TRAIN.contains(&name.as_str()) {
                    groups.train.insert(name.clone());
                } else if HUMAN_TEST.contains(&name.as_str()) {
                    groups.test.insert(name.clone());
                }
            }
            if groups.train.is_empty() && groups.test.is_empty() {
                log::warn!("--split-method human: no FASTA record is named chr1..chr22, chrX or chrY; every gene is dropped");
            }
        }
        SplitMethod::Random => {
            let total: usize = chroms.iter().map(|c| c.1).sum();
            let target = total as f64 * (1.0 - split_ratio);
            let mut order: Vec<&(String, usize)> = chroms.iter().collect();
            rng.shuffle(&mut order);
            let mut test_len = 0usize;
            for (name, len) in order {
                if (test_len as f64) < target {
                    groups.test.insert(name.clone());
                    test_len += len;
                } else {
                    groups.train.insert(name.clone());
                }
            }
        }
    }
    groups
}

/// The gene-level fallback: genes (index, span) shuffled with the seeded generator; test takes genes while its
/// total span is below `total × (1 − split_ratio)`, train the rest. Returns a per-gene flag "goes to train".
pub fn split_genes(spans: &[u64], split_ratio: f64, rng: &mut PyRandom) -> Vec<bool> {
    let total: u64 = spans.iter().sum();
    let target = total as f64 * (1.0 - split_ratio);
    let mut order: Vec<usize> = (0..spans.len()).collect();
    rng.shuffle(&mut order);
    let mut to_train = vec![true; spans.len()];
    let mut test_len = 0u64;
    for i in order {
        if (test_len as f64) < target {
            to_train[i] = false;
            test_len += spans[i];
        } else {
            break;
        }
    }
    to_train
}

/// Upstream's `split_train_val`: shuffle, then validation = the first `int(n × ratio)`, train = the rest.
pub fn split_train_val<T>(mut records: Vec<T>, ratio: f64, rng: &mut PyRandom) -> (Vec<T>, Vec<T>) {
    rng.shuffle(&mut records);
    let val_size = ((records.len() as f64) * ratio) as usize;
    let val_size = val_size.min(records.len());
    let train = records.split_off(val_size);
    (train, records)
}
