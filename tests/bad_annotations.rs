//! Bad annotations, genomes and create-data options, run through the binary: each is refused with a message
//! that names the file and line (or the flag) and what was expected, exit != 0, no panic, the inputs untouched
//! and nothing written. Where upstream has the bug, `--upstream-bugs` reproduces it (exit 0). Also: the "no
//! genes passed" error lists the skip counts, and a finished run says where its files went.

mod common;
use common::run_bin as run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

/// 96 bases on `chr1`.
const FA: &str = ">chr1 test\nACGTACGTAAGTACGTACGTACGTACAGGTACGTACGTACGTACGTACGTACGTACGTACGTAAAAAAAAAACCCCCCCCCCGGGGGGGGGGTTTT\n";

/// A coding gene on chr1 (lines 2 to 5), then `extra`.
fn gff(gene_end: u64, extra: &str) -> String {
    format!(
        "##gff-version 3\nchr1\tt\tgene\t1\t{gene_end}\t.\t+\t.\tID=g1;gene_biotype=protein_coding\n\
         chr1\tt\tmRNA\t1\t60\t.\t+\t.\tID=t1;Parent=g1\n\
         chr1\tt\texon\t1\t10\t.\t+\t.\tID=e1;Parent=t1\n\
         chr1\tt\texon\t30\t60\t.\t+\t.\tID=e2;Parent=t1\n{extra}"
    )
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(snapshot(&p));
        } else {
            files.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
    files
}

/// A tempdir holding `a.gff3` and `g.fa`, and where create-data writes (`out`, not created).
struct CreateData {
    dir: tempfile::TempDir,
}

impl CreateData {
    fn new(gff_text: &str, fa_text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.gff3"), gff_text).unwrap();
        std::fs::write(dir.path().join("g.fa"), fa_text).unwrap();
        Self { dir }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn run(&self, extra: &[&str]) -> Output {
        let p = |n: &str| self.dir.path().join(n).to_string_lossy().into_owned();
        let (gff, fa, out) = (p("a.gff3"), p("g.fa"), p("out"));
        let mut args = vec![
            "create-data",
            "-q",
            "--annotation-gff",
            &gff,
            "--genome-fasta",
            &fa,
            "--output-dir",
            &out,
        ];
        args.extend_from_slice(extra);
        run(&args)
    }

    /// Runs with `extra`, expecting exit `code` and every needle in stderr; the inputs are unchanged and no
    /// output (or temporary) file is left.
    fn refused(&self, extra: &[&str], code: i32, needles: &[&str]) -> String {
        let before = snapshot(self.dir.path());
        let r = self.run(extra);
        let err = String::from_utf8_lossy(&r.stderr).into_owned();
        assert_eq!(r.status.code(), Some(code), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        for n in needles {
            assert!(err.contains(n), "{extra:?}: the message lacks `{n}`: {err}");
        }
        assert_eq!(
            snapshot(self.dir.path()),
            before,
            "{extra:?}: inputs changed or outputs left behind"
        );
        err
    }
}

#[test]
fn coordinates_must_be_one_based_with_start_before_end_on_every_line() {
    let zero = CreateData::new(&gff(60, "chr1\tt\tCDS\t0\t10\t.\t+\t0\tParent=t1\n"), FA);
    zero.refused(&[], 1, &["a.gff3:6:", "column 4 (start) is 0", "1-based"]);
    // A reversed span is blamed on its own line, not on the gene.
    let reversed = CreateData::new(&gff(60, "chr1\tt\texon\t50\t40\t.\t+\t.\tParent=t1\n"), FA);
    reversed.refused(
        &[],
        1,
        &[
            "a.gff3:6:",
            "start 50 (column 4) is after end 40",
            "start <= end",
        ],
    );
    // Not an upstream output: --upstream-bugs does not let it through either.
    reversed.refused(&["--upstream-bugs"], 1, &["a.gff3:6:", "start <= end"]);
}

#[test]
fn an_exon_whose_parent_does_not_exist_is_an_error_unless_upstream_bugs() {
    let c = CreateData::new(
        &gff(60, "chr1\tt\texon\t70\t80\t.\t+\t.\tID=e3;Parent=t9\n"),
        FA,
    );
    c.refused(
        &[],
        1,
        &["a.gff3:6:", "`Parent=t9` names no feature", "ID=t9"],
    );
    let r = c.run(&["--upstream-bugs"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn a_gene_past_its_sequence_end_is_an_error_unless_upstream_bugs() {
    let c = CreateData::new(&gff(150, ""), FA);
    c.refused(
        &[],
        1,
        &[
            "a.gff3:2:",
            "gene `g1` (1-150)",
            "past the end of `chr1`",
            "96 bases long",
            "g.fa",
        ],
    );
    // Upstream writes the cut record.
    let r = c.run(&["--upstream-bugs"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(c.out().join("datafile_test.h5").is_file());
}

#[test]
fn ratios_and_thresholds_out_of_range_name_the_flag() {
    let c = CreateData::new(&gff(60, ""), FA);
    let cases: [(&str, &[&str]); 6] = [
        (
            "--val-split-ratio=1.5",
            &["--val_split_ratio", "1.5", "at least 0 and below 1"],
        ),
        ("--val-split-ratio=1", &["--val_split_ratio", "below 1"]),
        ("--split-ratio=2", &["--split-ratio", "'2'", "from 0 to 1"]),
        (
            "--min-identity=-0.5",
            &["--min-identity", "-0.5", "from 0 to 1"],
        ),
        (
            "--min-coverage=abc",
            &["--min-coverage", "`abc` is not a number"],
        ),
        ("--split-ratio=NaN", &["--split-ratio", "NaN"]),
    ];
    for (flag, needles) in cases {
        c.refused(&[flag], 2, needles);
    }
    // The ends that mean something are accepted: no validation, every sequence in train.
    let r = c.run(&["--val-split-ratio=0", "--split-ratio=1"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn no_genes_passed_lists_the_skips_and_a_finished_run_says_where_its_files_went() {
    let text = gff(
        60,
        "chr1\tt\tgene\t70\t90\t.\t+\t.\tID=g2;gene_biotype=protein_coding\n\
         chr2\tt\tgene\t1\t9\t.\t+\t.\tID=g3;gene_biotype=protein_coding\n\
         chr2\tt\tmRNA\t1\t9\t.\t+\t.\tID=t3;Parent=g3\n",
    );
    let c = CreateData::new(&text, FA);
    c.refused(
        &["--biotype", "non-coding"],
        1,
        &[
            "no genes passed the filters",
            "of 3 genes in the annotation, skipped: other biotype 3",
        ],
    );
    // Protein-coding: g1 is kept, g2 has no transcripts, g3 lies on a sequence the FASTA lacks.
    let r = c.run(&[]);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(
        stdout.contains("skipped (no transcripts): 1")
            && stdout.contains("skipped (sequence not in the FASTA): 1"),
        "{stdout}"
    );
    let out = c.out();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("wrote "))
        .unwrap_or_else(|| panic!("no `wrote` line: {stdout}"));
    assert!(
        line.contains(&format!("to {}:", out.display())) && line.contains("dataset_test.h5"),
        "{line}"
    );
    let n: usize = line["wrote ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(n, std::fs::read_dir(&out).unwrap().count(), "{line}");
}

#[test]
fn a_repeated_fasta_name_is_refused_by_create_data_predict_and_variant() {
    let dup_fa = format!("{FA}>chr2\nACGT\n>chr1 again\nACGT\n");
    let c = CreateData::new(&gff(60, ""), &dup_fa);
    c.refused(&[], 1, &["g.fa: duplicate FASTA record `chr1` (line 5)"]);
    c.refused(&["--upstream-bugs"], 1, &["duplicate FASTA record `chr1`"]);

    let Some(model) = common::mane_checkpoint(80) else {
        return;
    };
    let m = model.to_string_lossy().into_owned();
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    // predict names records by the whole header line, so the repeat is the whole line.
    let predict_fa = w("p.fa", ">s1 x\nACGTACGTAC\n>s2\nACGT\n>s1 x\nACGT\n");
    let vcf = w(
        "v.vcf",
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t20\t.\tG\tA\t.\t.\t.\n",
    );
    let table = w(
        "genes.txt",
        "#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\nG\tchr1\t+\t0\t60\t0,29,\t10,60,\n",
    );
    let variant_fa = w("v.fa", &dup_fa);
    let (pout, vout) = (dir.path().join("pred"), dir.path().join("out.vcf"));
    let (po, vo) = (
        pout.to_string_lossy().into_owned(),
        vout.to_string_lossy().into_owned(),
    );
    let before = snapshot(dir.path());
    let cases: [(Vec<&str>, &str); 2] = [
        (
            vec![
                "predict",
                "-q",
                "-i",
                &predict_fa,
                "-m",
                &m,
                "-f",
                "80",
                "-o",
                &po,
            ],
            "p.fa: duplicate FASTA record `s1 x` (line 5)",
        ),
        (
            vec![
                "variant",
                "-q",
                "-R",
                &variant_fa,
                "-A",
                &table,
                "-I",
                &vcf,
                "-O",
                &vo,
                "-m",
                &m,
                "-f",
                "80",
            ],
            "v.fa: duplicate FASTA record `chr1` (line 5)",
        ),
    ];
    for (args, needle) in cases {
        let r = run(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(needle) && !err.contains("panicked"), "{err}");
    }
    assert!(!vout.exists(), "variant left its output");
    let after: BTreeMap<_, _> = snapshot(dir.path())
        .into_iter()
        .filter(|(p, _)| !p.starts_with(&pout))
        .collect();
    assert_eq!(after, before, "inputs changed or files left behind");
    let predicted: Vec<_> = std::fs::read_dir(&pout)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        !predicted.iter().any(|p| p.is_file()),
        "predict left files: {predicted:?}"
    );
}

#[test]
fn variant_gene_tables_and_gffs_refuse_reversed_rows_and_unknown_strands() {
    let Some(model) = common::mane_checkpoint(80) else {
        return;
    };
    let m = model.to_string_lossy().into_owned();
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let fa = w("g.fa", FA);
    let vcf = w(
        "v.vcf",
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t20\t.\tG\tA\t.\t.\t.\n",
    );
    let header = "#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\n";
    let reversed = w(
        "reversed.txt",
        &format!("{header}G\tchr1\t+\t0\t60\t0,29,\t10,60,\nH\tchr1\t+\t90\t10\t10,\t20,\n"),
    );
    let strand = w(
        "strand.txt",
        &format!("{header}G\tchr1\t?\t0\t60\t0,29,\t10,60,\n"),
    );
    let gff_strand = w(
        "strand.gff3",
        &gff(60, "").replace("\tgene\t1\t60\t.\t+", "\tgene\t1\t60\t.\t?"),
    );
    let gff_zero = w(
        "zero.gff3",
        &gff(60, "").replace("exon\t1\t10", "exon\t0\t10"),
    );
    let out = dir.path().join("out.vcf");
    let o = out.to_string_lossy().into_owned();
    let before = snapshot(dir.path());
    let cases: [(&str, &[&str]); 4] = [
        (
            &reversed,
            &["reversed.txt:3:", "TX_START 90 is not below TX_END 10"],
        ),
        (
            &strand,
            &["strand.txt:2:", "STRAND is `?`; expected + or -"],
        ),
        (
            &gff_strand,
            &[
                "strand.gff3:2:",
                "gene strand (column 7) is `?`; expected + or -",
            ],
        ),
        (&gff_zero, &["zero.gff3:4:", "1-based"]),
    ];
    for (annotation, needles) in cases {
        let r = run(&[
            "variant", "-q", "-R", &fa, "-A", annotation, "-I", &vcf, "-O", &o, "-m", &m, "-f",
            "80",
        ]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{annotation}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        for n in needles {
            assert!(
                err.contains(n),
                "{annotation}: the message lacks `{n}`: {err}"
            );
        }
        assert_eq!(snapshot(dir.path()), before, "{annotation}: files changed");
    }
}

#[test]
fn predict_refuses_a_bad_span_on_any_annotation_line() {
    let Some(model) = common::mane_checkpoint(80) else {
        return;
    };
    let m = model.to_string_lossy().into_owned();
    let dir = tempfile::tempdir().unwrap();
    let fa = dir.path().join("g.fa");
    std::fs::write(&fa, FA).unwrap();
    let an = dir.path().join("a.gff3");
    std::fs::write(&an, gff(60, "chr1\tt\texon\t50\t40\t.\t+\t.\tParent=t1\n")).unwrap();
    let out = dir.path().join("pred");
    let r = run(&[
        "predict",
        "-q",
        "-i",
        fa.to_str().unwrap(),
        "-a",
        an.to_str().unwrap(),
        "-m",
        &m,
        "-f",
        "80",
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("a.gff3:6:") && err.contains("start <= end") && !err.contains("panicked"),
        "{err}"
    );
}
