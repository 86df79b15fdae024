//! GFF3 and GTF annotations as a feature store with gffutils 0.14's rules (the database OpenSpliceAI builds):
//! primary keys from `ID` (or `<type>_<n>`), percent-decoded attribute values, repeated IDs merged when every
//! other column is equal and renamed `<ID>_<n>` otherwise, parent/child relations from `Parent` plus derived
//! grandchildren. GTF genes and transcripts are inferred from `gene_id`/`transcript_id` when the file has no
//! `gene`/`transcript` lines. noodles' GFF reader does not percent-decode or merge repeated IDs as gffutils
//! does, and upstream's outputs depend on both, hence this module. Lines come from [`super::gff`].

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use super::gff::{detect_format, parse_gff3_attrs, parse_gtf_attrs, Format, GffLine, GffReader};
use super::GenomeError;

/// Index of a feature in [`Annotation::features`].
pub type FeatureId = usize;

/// One feature (a GFF/GTF line, merged or inferred).
#[derive(Clone, Debug)]
pub struct Feature {
    /// The primary key (gffutils' `id`).
    pub id: String,
    pub seqid: String,
    pub kind: String,
    pub start: u64,
    pub end: u64,
    pub strand: char,
    /// The 1-based line the feature comes from (its first mention for an inferred GTF gene or transcript).
    pub line: usize,
    /// Attributes; kept for genes and transcripts only (the rest is not needed and would cost memory).
    pub attrs: Vec<(String, Vec<String>)>,
    fields_hash: u64,
}

impl Feature {
    /// The first value of attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }
}

/// All features of one annotation file, with their relations.
pub struct Annotation {
    pub path: PathBuf,
    pub format: Format,
    pub features: Vec<Feature>,
    by_id: HashMap<String, FeatureId>,
    /// Level-1 relations: parent ID → children, deduplicated, in insertion order.
    children: HashMap<String, Vec<FeatureId>>,
    relation_set: HashSet<(String, FeatureId)>,
    type_counter: HashMap<String, usize>,
    rename_counter: HashMap<String, usize>,
    ties_by_id: bool,
}

fn keeps_attrs(kind: &str) -> bool {
    !matches!(
        kind,
        "exon" | "CDS" | "five_prime_UTR" | "three_prime_UTR" | "start_codon" | "stop_codon"
    )
}

/// One parsed line before it joins the store.
struct Line<'a> {
    cols: Vec<&'a str>,
    start: u64,
    end: u64,
    strand: char,
}

impl Line<'_> {
    /// The feature of this line, its key still to be given by the store.
    fn feature(&self, line: usize, attrs: Vec<(String, Vec<String>)>, fields_hash: u64) -> Feature {
        Feature {
            id: String::new(),
            seqid: self.cols[0].to_string(),
            kind: self.cols[2].to_string(),
            start: self.start,
            end: self.end,
            strand: self.strand,
            line,
            attrs,
            fields_hash,
        }
    }
}

impl Annotation {
    /// Reads a GFF3 or GTF file (plain, gzip or bgzip).
    pub fn read(path: &Path) -> Result<Self, GenomeError> {
        let mut ann = Self {
            path: path.to_path_buf(),
            format: Format::Gff3,
            features: Vec::new(),
            by_id: HashMap::new(),
            children: HashMap::new(),
            relation_set: HashSet::new(),
            type_counter: HashMap::new(),
            rename_counter: HashMap::new(),
            ties_by_id: true,
        };
        let mut gtf = GtfState::default();
        let mut format = None;
        let mut reader = GffReader::open(path)?;
        while let Some(l) = reader.next_line()? {
            let line_no = l.line;
            let line = ann.split_line(l)?;
            let fmt = *format.get_or_insert_with(|| detect_format(path, line.cols[8]));
            match fmt {
                Format::Gff3 => ann.add_gff3(line, line_no)?,
                Format::Gtf => gtf.add(&mut ann, line, line_no),
            }
        }
        if format == Some(Format::Gtf) {
            ann.format = Format::Gtf;
            gtf.infer(&mut ann);
        }
        ann.ties_by_id = ann.compute_ties_by_id();
        Ok(ann)
    }

    fn parse_err(&self, line: usize, message: String) -> GenomeError {
        GenomeError::Parse {
            path: self.path.clone(),
            line,
            message,
        }
    }

    fn split_line<'a>(&self, l: GffLine<'a>) -> Result<Line<'a>, GenomeError> {
        if l.cols.len() != 9 {
            return Err(l.error(
                &self.path,
                format!(
                    "expected 9 tab-separated columns (seqid, source, type, start, end, score, strand, phase, attributes), found {}",
                    l.cols.len()
                ),
            ));
        }
        let (start, end) = l.span(&self.path)?;
        let strand = match l.cols[6] {
            s if s.chars().count() == 1 => s.chars().next().unwrap(),
            s => {
                return Err(l.error(
                    &self.path,
                    format!("column 7 (strand) must be one character (+, -, . or ?), found `{s}`"),
                ))
            }
        };
        Ok(Line {
            cols: l.cols,
            start,
            end,
            strand,
        })
    }

    fn next_auto_id(&mut self, kind: &str) -> String {
        let n = self.type_counter.entry(kind.to_string()).or_insert(0);
        *n += 1;
        format!("{kind}_{n}")
    }

    fn add_gff3(&mut self, line: Line, line_no: usize) -> Result<(), GenomeError> {
        let attrs = parse_gff3_attrs(line.cols[8]);
        let id_values = attrs
            .iter()
            .find(|(k, _)| k == "ID")
            .map(|(_, v)| v.clone());
        let parents: Vec<String> = attrs
            .iter()
            .find(|(k, _)| k == "Parent")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let id = match id_values.as_deref() {
            Some([one]) => Some(one.clone()),
            Some([]) | None => None,
            Some(many) => {
                return Err(self.parse_err(
                    line_no,
                    format!(
                        "`ID` must have one value, found {}: {}",
                        many.len(),
                        many.join(",")
                    ),
                ))
            }
        };
        let kind = line.cols[2];
        let mut hasher = DefaultHasher::new();
        for i in [0, 1, 2, 3, 4, 5, 6, 7] {
            line.cols[i].hash(&mut hasher);
        }
        let fields_hash = hasher.finish();
        let attrs = if keeps_attrs(kind) { attrs } else { Vec::new() };
        let feature = line.feature(line_no, attrs, fields_hash);
        let fid = match id {
            None => {
                let id = self.next_auto_id(kind);
                self.insert(id, feature)
            }
            Some(id) => self.insert_or_merge(id, feature),
        };
        for p in parents {
            self.relate(p, fid);
        }
        Ok(())
    }

    fn insert(&mut self, id: String, mut feature: Feature) -> FeatureId {
        let fid = self.features.len();
        feature.id = id.clone();
        self.by_id.insert(id, fid);
        self.features.push(feature);
        fid
    }

    /// gffutils' `merge_strategy='merge'`: equal columns merge attributes, otherwise the ID gets a `_n` suffix.
    fn insert_or_merge(&mut self, id: String, feature: Feature) -> FeatureId {
        match self.by_id.entry(id.clone()) {
            Entry::Vacant(_) => self.insert(id, feature),
            Entry::Occupied(e) => {
                let existing = *e.get();
                if self.features[existing].fields_hash == feature.fields_hash {
                    let target = &mut self.features[existing];
                    for (k, vs) in feature.attrs {
                        match target.attrs.iter_mut().find(|(tk, _)| *tk == k) {
                            Some((_, tv)) => {
                                for v in vs {
                                    if !tv.contains(&v) {
                                        tv.push(v);
                                    }
                                }
                            }
                            None => target.attrs.push((k, vs)),
                        }
                    }
                    existing
                } else {
                    let n = self.rename_counter.entry(id.clone()).or_insert(0);
                    *n += 1;
                    let new_id = format!("{id}_{n}");
                    self.insert(new_id, feature)
                }
            }
        }
    }

    fn relate(&mut self, parent: String, child: FeatureId) {
        if self.relation_set.insert((parent.clone(), child)) {
            self.children.entry(parent).or_default().push(child);
        }
    }

    /// `Parent` values that are not the `ID` of any line (GFF3 only; a GTF's parents are inferred), each with
    /// the first line naming it, in line order. gffutils (so upstream) drops such children without a word.
    pub fn missing_parents(&self) -> Vec<(usize, String)> {
        if self.format != Format::Gff3 {
            return Vec::new();
        }
        let mut missing: Vec<(usize, String)> = self
            .children
            .iter()
            .filter(|(parent, _)| !self.by_id.contains_key(parent.as_str()))
            .filter_map(|(parent, kids)| {
                let line = kids.iter().map(|&k| self.features[k].line).min()?;
                Some((line, parent.clone()))
            })
            .collect();
        missing.sort();
        missing
    }

    /// An error for the first line whose `Parent` names no feature (see [`Annotation::missing_parents`]).
    pub fn check_parents(&self) -> Result<(), GenomeError> {
        let missing = self.missing_parents();
        let Some((line, parent)) = missing.first() else {
            return Ok(());
        };
        let more = match missing.len() {
            1 => String::new(),
            n => format!(" ({} more such parents)", n - 1),
        };
        Err(self.parse_err(
            *line,
            format!(
                "`Parent={parent}` names no feature: no line has `ID={parent}`{more}; expected every Parent to be \
                 the ID of a line in the file"
            ),
        ))
    }

    /// The feature with primary key `id`.
    pub fn get(&self, id: &str) -> Option<&Feature> {
        self.by_id.get(id).map(|&i| &self.features[i])
    }

    /// Direct children of `f`.
    pub fn children(&self, f: FeatureId) -> &[FeatureId] {
        self.children
            .get(&self.features[f].id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Children and grandchildren of `f` (gffutils' `level=None`; a feature reached both ways comes twice).
    pub fn descendants(&self, f: FeatureId) -> Vec<FeatureId> {
        let mut out = self.children(f).to_vec();
        for &c in self.children(f) {
            out.extend_from_slice(self.children(c));
        }
        out
    }

    /// Genes (features of type exactly `gene`) in file order.
    pub fn genes(&self) -> Vec<FeatureId> {
        let mut g: Vec<FeatureId> = (0..self.features.len())
            .filter(|&i| self.features[i].kind == "gene")
            .collect();
        g.sort_by_key(|&i| self.features[i].line);
        g
    }

    /// Whether equal starts are broken by ID (gffutils' query plan on a real-size file) or by file order (a toy
    /// file whose average count of features per type is at most 4).
    pub fn ties_by_id(&self) -> bool {
        self.ties_by_id
    }

    fn compute_ties_by_id(&self) -> bool {
        let types: HashSet<&str> = self.features.iter().map(|f| f.kind.as_str()).collect();
        if types.is_empty() {
            return true;
        }
        self.features.len().div_ceil(types.len()) >= 5
    }

    /// Sorts features by start, ties as [`Annotation::ties_by_id`] says.
    pub fn sort_by_start(&self, ids: &mut [FeatureId]) {
        if self.ties_by_id() {
            ids.sort_by(|&a, &b| {
                let (fa, fb) = (&self.features[a], &self.features[b]);
                (fa.start, fa.id.as_bytes()).cmp(&(fb.start, fb.id.as_bytes()))
            });
        } else {
            ids.sort_by_key(|&a| (self.features[a].start, self.features[a].line));
        }
    }
}

/// GTF bookkeeping: which genes and transcripts have their own lines, and the spans of those that don't.
#[derive(Default)]
struct GtfState {
    explicit: HashSet<(bool, String)>,
    spans: HashMap<(bool, String), FeatureId>,
    order: Vec<(bool, String)>,
}

impl GtfState {
    fn add(&mut self, ann: &mut Annotation, line: Line, line_no: usize) {
        let attrs = parse_gtf_attrs(line.cols[8]);
        let get = |k: &str| {
            attrs
                .iter()
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| v.first().cloned())
        };
        let (gene_id, tx_id) = (get("gene_id"), get("transcript_id"));
        let kind = line.cols[2];
        let feature = line.feature(line_no, attrs.clone(), 0);
        let (id, parent) = match kind {
            "gene" if gene_id.is_some() => (gene_id.clone().unwrap(), None),
            "transcript" | "mRNA" if tx_id.is_some() => (tx_id.clone().unwrap(), gene_id.clone()),
            _ => (ann.next_auto_id(kind), tx_id.clone().or(gene_id.clone())),
        };
        if matches!(kind, "gene") && gene_id.is_some() {
            self.explicit.insert((true, id.clone()));
        }
        if matches!(kind, "transcript" | "mRNA") && tx_id.is_some() {
            self.explicit.insert((false, id.clone()));
        }
        let mut feature = feature;
        if !keeps_attrs(kind) {
            feature.attrs.clear();
        }
        let fid = ann.insert(id, feature);
        if let Some(p) = parent {
            ann.relate(p, fid);
        }
        let tmpl = Feature {
            attrs,
            ..ann.features[fid].clone()
        };
        self.extend(ann, (true, gene_id.clone()), &tmpl);
        if gene_id.is_some() {
            self.extend(ann, (false, tx_id), &tmpl);
        }
    }

    /// Grows the inferred span of a gene (`true`) or transcript (`false`) named in `key`.
    fn extend(&mut self, ann: &mut Annotation, key: (bool, Option<String>), f: &Feature) {
        let (is_gene, Some(name)) = key else { return };
        let key = (is_gene, name);
        match self.spans.get(&key) {
            Some(&i) => {
                let s = &mut ann.features[i];
                s.start = s.start.min(f.start);
                s.end = s.end.max(f.end);
            }
            None => {
                let mut inferred = f.clone();
                inferred.kind = if is_gene { "gene" } else { "transcript" }.to_string();
                inferred.id = key.1.clone();
                self.spans.insert(key.clone(), ann.features.len());
                self.order.push(key);
                ann.features.push(inferred);
            }
        }
    }

    /// Keeps the inferred genes and transcripts that have no line of their own.
    fn infer(self, ann: &mut Annotation) {
        let mut remove: HashSet<FeatureId> = HashSet::new();
        for key in &self.order {
            let i = self.spans[key];
            if self.explicit.contains(key) {
                remove.insert(i);
            }
        }
        let mut remap = vec![usize::MAX; ann.features.len()];
        let mut kept = Vec::with_capacity(ann.features.len());
        for (i, f) in std::mem::take(&mut ann.features).into_iter().enumerate() {
            if !remove.contains(&i) {
                remap[i] = kept.len();
                kept.push(f);
            }
        }
        ann.features = kept;
        for v in ann.children.values_mut() {
            for c in v.iter_mut() {
                *c = remap[*c];
            }
        }
        ann.relation_set = ann
            .children
            .iter()
            .flat_map(|(p, v)| v.iter().map(move |&c| (p.clone(), c)))
            .collect();
        ann.by_id.clear();
        for (i, f) in ann.features.iter().enumerate() {
            ann.by_id.entry(f.id.clone()).or_insert(i);
        }
        // Inferred transcripts are children of their gene.
        for key in &self.order {
            if !key.0 && !self.explicit.contains(key) {
                let i = ann.by_id[&key.1];
                let gene = ann.features[i].attr("gene_id").map(str::to_string);
                if let Some(g) = gene {
                    ann.relate(g, i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Annotation, GenomeError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.gff3");
        std::fs::write(&path, text).unwrap();
        Annotation::read(&path)
    }

    const GENE: &str =
        "c\ts\tgene\t1\t90\t.\t+\t.\tID=g\nc\ts\tmRNA\t1\t90\t.\t+\t.\tID=t;Parent=g\n";

    #[test]
    fn every_line_needs_a_one_based_ordered_span() {
        for (span, needle) in [("0\t9", "1-based"), ("9\t5", "start <= end")] {
            let text = format!("{GENE}c\ts\texon\t{span}\t.\t+\t.\tParent=t\n");
            let err = read(&text).err().unwrap().to_string();
            assert!(err.contains("a.gff3:3:") && err.contains(needle), "{err}");
        }
    }

    #[test]
    fn a_parent_that_is_no_feature_is_reported_at_its_first_line() {
        let ann = read(&format!(
            "{GENE}c\ts\texon\t1\t9\t.\t+\t.\tParent=t\nc\ts\texon\t20\t29\t.\t+\t.\tParent=tx\n\
             c\ts\texon\t40\t49\t.\t+\t.\tParent=tx\n"
        ))
        .unwrap();
        assert_eq!(ann.missing_parents(), [(4, "tx".to_string())]);
        let err = ann.check_parents().unwrap_err().to_string();
        assert!(
            err.contains("a.gff3:4:")
                && err.contains("`Parent=tx`")
                && err.contains("no line has `ID=tx`"),
            "{err}"
        );
        // A parent defined after its child is fine (GFF3 allows forward references).
        let late = read("c\ts\texon\t1\t9\t.\t+\t.\tParent=t\nc\ts\tmRNA\t1\t90\t.\t+\t.\tID=t\n")
            .unwrap();
        assert!(late.check_parents().is_ok());
    }
}
