//! create-data against OpenSpliceAI 0.0.7's real outputs (`../shared/data/create-data/upstream/*/manifest.json`):
//! every dataset's shape, type and sha256 of its bytes, and the text side outputs, plus the port's own behaviour
//! (determinism, compressed inputs, GTF, bad inputs).

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use hdf5_reader::{Datatype, Hdf5File, StringEncoding, VarLenKind};
use openspliceai_rs::create_data::{self as cd, CreateDataConfig, ParseType};
use sha2::{Digest, Sha256};

/// One dataset as the manifest describes it.
#[derive(Debug, PartialEq)]
struct Ds {
    shape: Vec<u64>,
    kind: String,
    sha256: String,
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Our files, described like `h5_manifest.py` does (strings: sha256 of the `\n`-joined elements).
fn our_manifest(dir: &Path) -> BTreeMap<String, BTreeMap<String, Ds>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".h5") {
            continue;
        }
        let f = Hdf5File::open(&path).unwrap();
        let (_, names) = f.root_group().unwrap().member_names().unwrap();
        let mut sets = BTreeMap::new();
        for n in names {
            let ds = f.dataset(&n).unwrap();
            assert!(ds.chunks().is_none(), "{name}/{n} must be contiguous");
            let (kind, bytes) = match ds.dtype() {
                Datatype::VarLen {
                    kind: VarLenKind::String,
                    encoding,
                    ..
                } => {
                    assert_eq!(*encoding, StringEncoding::Utf8, "{name}/{n}: UTF-8 strings");
                    (
                        "vlen-utf8",
                        ds.read_strings().unwrap().join("\n").into_bytes(),
                    )
                }
                Datatype::FixedPoint {
                    size: 1,
                    signed: true,
                    ..
                } => ("int8", ds.read_raw_bytes().unwrap()),
                other => panic!("{name}/{n}: unexpected type {other:?}"),
            };
            sets.insert(
                n.clone(),
                Ds {
                    shape: ds.shape().to_vec(),
                    kind: kind.into(),
                    sha256: hex(&Sha256::digest(&bytes)),
                },
            );
        }
        out.insert(name, sets);
    }
    out
}

fn upstream_manifest(run: &Path) -> BTreeMap<String, BTreeMap<String, Ds>> {
    let text = std::fs::read_to_string(run.join("manifest.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = BTreeMap::new();
    for (file, desc) in v.as_object().unwrap() {
        if !file.ends_with(".h5") {
            continue;
        }
        let mut sets = BTreeMap::new();
        for (n, d) in desc["datasets"].as_object().unwrap() {
            let kind = if d.get("string").is_some() {
                assert_eq!(d["string"]["cset"], 1);
                "vlen-utf8"
            } else {
                assert_eq!(d["dtype"], "int8");
                "int8"
            };
            let shape = d["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect();
            sets.insert(
                n.clone(),
                Ds {
                    shape,
                    kind: kind.into(),
                    sha256: d["sha256"].as_str().unwrap().into(),
                },
            );
        }
        out.insert(file.clone(), sets);
    }
    out
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The GFF and FASTA an upstream run read, by the run's name: `fly_*` the dm3 chr2R files, `aare_*` the
/// A. aegypti excerpt, the `edge_*` runs the small edge-case files.
fn inputs(data: &Path, run: &str) -> (PathBuf, PathBuf) {
    let i = data.join("inputs");
    if run.starts_with("fly_") {
        (
            i.join("dmel_chr2R_dm3.gff3.gz"),
            i.join("dmel_chr2R_dm3.fa.gz"),
        )
    } else if run.starts_with("aare_") {
        (
            i.join("aare_chr1_chr2_1Mb.gff3.gz"),
            i.join("aare_chr1_chr2_1Mb.fa.gz"),
        )
    } else {
        let gff = match run {
            "edge_gene_past_end" => "gene_past_end.gff3",
            "edge_gtf_ens" => "ens.gtf",
            _ => "edge.gff3",
        };
        (i.join("edge").join(gff), i.join("edge/edge.fa"))
    }
}

fn config(data: &Path, run: &str, out: &Path) -> CreateDataConfig {
    let (gff, fa) = inputs(data, run);
    let mut c = CreateDataConfig::new(gff, fa, out.to_path_buf());
    c.upstream_bugs = true;
    c
}

/// Runs create-data as upstream's run `run` did (with `tweak` for its flags) and compares every dataset and
/// every text output upstream kept.
fn check_identity(run: &str, tweak: impl FnOnce(&mut CreateDataConfig)) {
    let Some(data) = common::create_data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&data, run, tmp.path());
    tweak(&mut cfg);
    cd::run(&cfg).unwrap();
    let up = data.join("upstream").join(run);
    let ours = our_manifest(tmp.path());
    let theirs = upstream_manifest(&up);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{run}: files"
    );
    for (file, sets) in &theirs {
        assert_eq!(
            ours[file].keys().collect::<Vec<_>>(),
            sets.keys().collect::<Vec<_>>(),
            "{run}/{file}: datasets"
        );
        for (n, d) in sets {
            assert_eq!(&ours[file][n], d, "{run}/{file}/{n}");
        }
    }
    let mut texts = 0;
    for dir in [up.clone(), up.join("files")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let Some(base) = name.strip_suffix(".gz") else {
                continue;
            };
            if !(base.ends_with(".txt") || base.ends_with(".fa")) || base == "exit_code.txt" {
                continue;
            }
            let mine = std::fs::read(tmp.path().join(base))
                .unwrap_or_else(|_| panic!("{run}: {base} not written"));
            assert!(mine == gunzip(&p), "{run}: {base} differs from upstream's");
            texts += 1;
        }
    }
    assert!(texts >= 1, "{run}: no text output compared");
}

#[test]
fn fly_default_identical_to_upstream() {
    check_identity("fly_default", |_| {});
}

#[test]
fn fly_all_isoforms_identical_to_upstream() {
    check_identity("fly_all_isoforms", |c| {
        c.parse_type = ParseType::AllIsoforms
    });
}

#[test]
fn fly_canonical_only_identical_to_upstream() {
    check_identity("fly_canonical_only", |c| c.canonical_only = true);
}

#[test]
fn fly_chr_split_test_identical_to_upstream() {
    check_identity("fly_chrsplit_test", |c| c.chr_split = cd::ChrSplit::Test);
}

#[test]
fn fly_write_fasta_identical_to_upstream() {
    check_identity("fly_write_fasta", |c| c.write_fasta = true);
}

#[test]
fn aare_seed42_split_identical_to_upstream() {
    check_identity("aare_seed42", |_| {});
}

#[test]
fn aare_seed42_paralogs_identical_to_upstream() {
    check_identity("aare_seed42_paralogs", |c| c.remove_paralogs = true);
}

#[test]
fn remove_paralogs_works_on_empty_sets_and_leaves_no_temp_files() {
    let Some(data) = common::create_data_dir() else {
        return;
    };
    // One chromosome: empty train and validation (upstream: ZeroDivisionError). Then split-ratio 1: empty test.
    for (run, ratio) in [
        ("fly_remove_paralogs", 0.8),
        ("edge_paralogs_empty_test", 1.0),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = config(&data, run, tmp.path());
        c.remove_paralogs = true;
        c.split_ratio = ratio;
        let s = cd::run(&c).unwrap();
        assert_eq!(s.paralogs_removed.len(), 2, "{run}");
        let mut names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(
            names.iter().all(|n| !n.starts_with('.')),
            "{run}: temporary files left: {names:?}"
        );
        assert!(
            names.contains(&"removed_paralogs_test.txt".to_string()),
            "{names:?}"
        );
        let up = data.join("upstream").join(run);
        let expected = gunzip(&up.join("removed_paralogs_test.txt.gz"));
        assert_eq!(
            std::fs::read(tmp.path().join("removed_paralogs_test.txt")).unwrap(),
            expected
        );
    }
}

#[test]
fn aare_human_split_identical_to_upstream() {
    check_identity("aare_human_split", |c| {
        c.split_method = cd::SplitMethod::Human
    });
}

#[test]
fn edge_cases_identical_to_upstream() {
    check_identity("edge_default", |_| {});
    check_identity("edge_all_isoforms", |c| {
        c.parse_type = ParseType::AllIsoforms
    });
    check_identity("edge_canonical_only", |c| c.canonical_only = true);
    check_identity("edge_gene_past_end", |_| {});
    check_identity("edge_write_fasta", |c| c.write_fasta = true);
    check_identity("edge_gtf_ens", |_| {});
}

fn read_all(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn same_inputs_and_seed_give_identical_files_and_seeds_differ() {
    let Some(data) = common::create_data_dir() else {
        return;
    };
    let runs: Vec<_> = [42, 42, 7]
        .iter()
        .map(|&seed| {
            let tmp = tempfile::tempdir().unwrap();
            let mut c = config(&data, "aare_seed42", tmp.path());
            c.upstream_bugs = false;
            c.random_seed = seed;
            cd::run(&c).unwrap();
            (read_all(tmp.path()), tmp)
        })
        .collect();
    assert_eq!(runs[0].0, runs[1].0);
    assert_ne!(
        runs[0].0["datafile_train.h5"],
        runs[2].0["datafile_train.h5"]
    );
}

fn gzip_to(src: &Path, dst: &Path) {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(dst).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(src).unwrap()).unwrap();
    enc.finish().unwrap();
}

#[test]
fn gzip_and_plain_inputs_give_the_same_files() {
    let Some(data) = common::create_data_dir() else {
        return;
    };
    let (gff, fa) = inputs(&data, "edge_default");
    let tmp = tempfile::tempdir().unwrap();
    let (gz_gff, gz_fa) = (tmp.path().join("a.gff3.gz"), tmp.path().join("g.fa.gz"));
    gzip_to(&gff, &gz_gff);
    gzip_to(&fa, &gz_fa);
    let run = |g: &Path, f: &Path, out: &str| {
        let mut c = CreateDataConfig::new(g.into(), f.into(), tmp.path().join(out));
        c.upstream_bugs = true;
        cd::run(&c).unwrap();
        read_all(&tmp.path().join(out))
    };
    assert_eq!(run(&gff, &fa, "plain"), run(&gz_gff, &gz_fa, "gz"));
    // Nothing is written next to the inputs.
    let mut names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["a.gff3.gz", "g.fa.gz", "gz", "plain"]);
}

/// Runs create-data expecting an error; returns its message and checks that no output (or temporary) is left.
fn expect_error(
    gff_text: &str,
    fa_text: &str,
    tweak: impl FnOnce(&mut CreateDataConfig),
) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let (gff, fa, out) = (
        tmp.path().join("a.gff3"),
        tmp.path().join("g.fa"),
        tmp.path().join("out"),
    );
    std::fs::write(&gff, gff_text).unwrap();
    std::fs::write(&fa, fa_text).unwrap();
    let mut c = CreateDataConfig::new(gff, fa, out.clone());
    tweak(&mut c);
    let err = cd::run(&c).expect_err("the run must fail").to_string();
    if out.is_dir() {
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            0,
            "outputs left behind after: {err}"
        );
    }
    err
}

const FA: &str = ">chr1 test\nACGTACGTAAGTACGTACGTACGTACAGGTACGTACGTACGTACGTACGTACGTACGTACGTAAAAAAAAAACCCCCCCCCCGGGGGGGGGG\n";

fn gene_lines(strand: &str, extra: &str) -> String {
    format!(
        "##gff-version 3\nchr1\tt\tgene\t1\t60\t.\t{strand}\t.\tID=g1;gene_biotype=protein_coding\n\
         chr1\tt\tmRNA\t1\t60\t.\t{strand}\t.\tID=t1;Parent=g1\n\
         chr1\tt\texon\t1\t10\t.\t{strand}\t.\tID=e1;Parent=t1\n\
         chr1\tt\texon\t30\t60\t.\t{strand}\t.\tID=e2;Parent=t1\n{extra}"
    )
}

#[test]
fn bad_inputs_fail_with_clear_errors_and_no_outputs() {
    let dup = expect_error(&gene_lines("+", ""), &format!("{FA}>chr1\nACGT\n"), |_| {});
    assert!(
        dup.contains("duplicate FASTA record `chr1`") && dup.contains("g.fa"),
        "{dup}"
    );

    let malformed = expect_error(&gene_lines("+", "chr1\tt\texon\t5\n"), FA, |_| {});
    assert!(
        malformed.contains(":6: ") && malformed.contains("9 tab-separated columns"),
        "{malformed}"
    );

    let bad_num = expect_error(
        &gene_lines("+", "chr1\tt\texon\tx\t9\t.\t+\t.\tID=e3;Parent=t1\n"),
        FA,
        |_| {},
    );
    assert!(
        bad_num.contains(":6: ") && bad_num.contains("start"),
        "{bad_num}"
    );

    let outside = expect_error(
        &gene_lines("+", "chr1\tt\texon\t70\t80\t.\t+\t.\tID=e3;Parent=t1\n"),
        FA,
        |_| {},
    );
    assert!(
        outside.contains(":6: ") && outside.contains("outside its gene `g1`"),
        "{outside}"
    );

    let strand = expect_error(&gene_lines(".", ""), FA, |_| {});
    assert!(
        strand.contains(":2: ") && strand.contains("strand `.`"),
        "{strand}"
    );

    let empty = expect_error(&gene_lines("+", ""), FA, |c| {
        c.biotype = cd::Biotype::NonCoding
    });
    assert!(
        empty.contains("no genes passed the filters") && empty.contains("NonCoding"),
        "{empty}"
    );

    let missing_seq = expect_error(&gene_lines("+", ""), ">chr2\nACGT\n", |_| {});
    assert!(missing_seq.contains("no genes passed"), "{missing_seq}");
}

#[test]
fn unwritable_output_directory_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let c = CreateDataConfig::new(
        tmp.path().join("a.gff3"),
        tmp.path().join("g.fa"),
        blocker.join("out"),
    );
    let err = cd::run(&c).unwrap_err().to_string();
    assert!(err.contains("file/out") || err.contains("file"), "{err}");
}

/// The LABEL strings of `datafile_{split}.h5`.
fn labels(dir: &Path, split: &str) -> Vec<String> {
    let f = Hdf5File::open(dir.join(format!("datafile_{split}.h5"))).unwrap();
    f.dataset("LABEL").unwrap().read_strings().unwrap()
}

#[test]
fn all_isoforms_labels_are_per_transcript_unless_upstream_bugs() {
    let Some(data) = common::create_data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = |upstream: bool, out: &str| {
        let mut c = config(&data, "fly_all_isoforms", &tmp.path().join(out));
        c.parse_type = ParseType::AllIsoforms;
        c.upstream_bugs = upstream;
        c.gene_split = false;
        cd::run(&c).unwrap();
        labels(&tmp.path().join(out), "test")
    };
    let (fixed, cumulative) = (run(false, "fixed"), run(true, "upstream"));
    assert_eq!(fixed.len(), cumulative.len());
    let mut differ = 0;
    for (f, c) in fixed.iter().zip(&cumulative) {
        // Each transcript's own sites are a subset of upstream's cumulative ones.
        for (a, b) in f.bytes().zip(c.bytes()) {
            assert!(
                a == b'0' || a == b,
                "a fixed label must also be set upstream"
            );
        }
        differ += (f != c) as usize;
    }
    assert!(differ > 100, "only {differ} records differ");
}

#[test]
fn one_sequence_genome_gets_a_seeded_gene_split() {
    let Some(data) = common::create_data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(&data, "fly_default", tmp.path());
    c.upstream_bugs = false;
    let s = cd::run(&c).unwrap();
    assert!(s.gene_split);
    let n = |k: &str| s.splits[k].records;
    assert_eq!(n("train") + n("validation") + n("test"), 2816);
    assert!(
        n("train") > 1500 && n("test") > 300 && n("validation") > 100,
        "{s}"
    );
    // --no-gene-split keeps upstream's empty train.
    let tmp2 = tempfile::tempdir().unwrap();
    let mut c = config(&data, "fly_default", tmp2.path());
    c.upstream_bugs = false;
    c.gene_split = false;
    let s = cd::run(&c).unwrap();
    assert_eq!(
        (s.splits["train"].records, s.splits["test"].records),
        (0, 2816)
    );
}

/// Rewrites an NCBI-style GFF3 (gene → mRNA → exon) as GTF, with or without gene/transcript lines.
fn gff3_to_gtf(gff: &Path, explicit: bool) -> String {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(gff).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    let mut biotype: BTreeMap<String, String> = BTreeMap::new();
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let attr = |k: &str| {
            cols[8]
                .split(';')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .map(str::to_string)
        };
        let (Some(id), kind) = (attr("ID"), cols[2]) else {
            continue;
        };
        let head = cols[..8].join("\t");
        match kind {
            "gene" => {
                let b = attr("gene_biotype").unwrap_or_default();
                biotype.insert(id.clone(), b.clone());
                if explicit {
                    out += &format!("{head}\tgene_id \"{id}\"; gene_biotype \"{b}\";\n");
                }
            }
            "mRNA" => {
                let g = attr("Parent").unwrap();
                parent.insert(id.clone(), g.clone());
                if explicit {
                    let head = head.replace("\tmRNA\t", "\ttranscript\t");
                    out += &format!("{head}\tgene_id \"{g}\"; transcript_id \"{id}\";\n");
                }
            }
            "exon" => {
                let t = attr("Parent").unwrap();
                let Some(g) = parent.get(&t) else { continue };
                let b = &biotype[g];
                out += &format!(
                    "{head}\tgene_id \"{g}\"; transcript_id \"{t}\"; gene_biotype \"{b}\";\n"
                );
            }
            _ => {}
        }
    }
    out
}

#[test]
fn gtf_and_gff3_of_one_annotation_give_the_same_files() {
    let Some(data) = common::create_data_dir() else {
        return;
    };
    let (gff, fa) = inputs(&data, "aare_seed42");
    let tmp = tempfile::tempdir().unwrap();
    let run = |annotation: PathBuf, out: &str| {
        let mut c = CreateDataConfig::new(annotation, fa.clone(), tmp.path().join(out));
        c.parse_type = ParseType::AllIsoforms;
        cd::run(&c).unwrap();
        let mut files = read_all(&tmp.path().join(out));
        files.retain(|k, _| k.ends_with(".h5"));
        files
    };
    let reference = run(gff.clone(), "gff3");
    assert_eq!(reference.len(), 6);
    for explicit in [true, false] {
        let gtf = tmp.path().join(format!("a{explicit}.gtf"));
        std::fs::write(&gtf, gff3_to_gtf(&gff, explicit)).unwrap();
        assert!(
            run(gtf, &format!("gtf{explicit}")) == reference,
            "GTF (gene/transcript lines: {explicit})"
        );
    }
}

#[test]
fn biotype_is_read_from_ensembl_and_gencode_keys_and_genes_without_one_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut gff = String::from("##gff-version 3\n");
    for (i, attr) in [
        "gene_biotype=protein_coding",
        "biotype=protein_coding",
        "gene_type=protein_coding",
        "Name=x",
    ]
    .iter()
    .enumerate()
    {
        let (s, e) = (i * 100 + 1, i * 100 + 60);
        gff += &format!(
            "chr1\tt\tgene\t{s}\t{e}\t.\t+\t.\tID=g{i};{attr}\n\
             chr1\tt\tmRNA\t{s}\t{e}\t.\t+\t.\tID=t{i};Parent=g{i}\n\
             chr1\tt\texon\t{s}\t{}\t.\t+\t.\tID=e{i}a;Parent=t{i}\n\
             chr1\tt\texon\t{}\t{e}\t.\t+\t.\tID=e{i}b;Parent=t{i}\n",
            s + 9,
            s + 29
        );
    }
    let (g, f) = (tmp.path().join("a.gff3"), tmp.path().join("g.fa"));
    std::fs::write(&g, gff).unwrap();
    std::fs::write(&f, format!(">chr1\n{}\n", "ACGT".repeat(100))).unwrap();
    let mut c = CreateDataConfig::new(g.clone(), f.clone(), tmp.path().join("out"));
    c.gene_split = false;
    let s = cd::run(&c).unwrap();
    assert_eq!(s.genes_kept, 3, "{s}");
    assert_eq!(s.skipped.values().sum::<usize>(), 1, "{s}");
    assert!(s.to_string().contains("no biotype attribute"), "{s}");
    // Upstream reads gene_biotype only and dies on the first gene without it.
    c.upstream_bugs = true;
    c.output_dir = tmp.path().join("up");
    let err = cd::run(&c).unwrap_err().to_string();
    assert!(
        err.contains(":6: ") && err.contains("`g1`") && err.contains("gene_biotype"),
        "{err}"
    );
}

#[test]
fn non_coding_and_all_biotypes_run_to_the_end() {
    let Some(data) = common::create_data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(&data, "edge_noncoding", &tmp.path().join("nc"));
    c.biotype = cd::Biotype::NonCoding;
    let s = cd::run(&c).unwrap();
    assert_eq!(s.genes_kept, 1, "{s}"); // gF, the lncRNA
    assert!(tmp.path().join("nc/dataset_test.h5").exists());
    let mut c = config(&data, "edge_biotype_all", &tmp.path().join("all"));
    c.biotype = cd::Biotype::All;
    let s = cd::run(&c).unwrap();
    let up = gunzip(&data.join("upstream/edge_default/test_stats.txt.gz"));
    assert_eq!(
        s.splits["test"].records,
        up.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() + 1
    );
}

#[test]
fn example_genome_gives_canonical_sites_on_both_strands() {
    let tmp = tempfile::tempdir().unwrap();
    let g = cd::example::write_example_genome(&tmp.path().join("genome"), 2, 6, 3).unwrap();
    let mut c = CreateDataConfig::new(g.gff3, g.fasta, tmp.path().join("out"));
    c.split_ratio = 0.5;
    let s = cd::run(&c).unwrap();
    assert_eq!(s.genes_kept, 12);
    let (mut donors, mut gt) = (0, 0);
    for split in s.splits.values() {
        assert_eq!(split.donors, split.acceptors);
        donors += split.donors;
        gt += split.donor_motifs.get("GT").copied().unwrap_or(0);
        assert_eq!(
            split.acceptor_motifs.get("AG").copied().unwrap_or(0),
            split.acceptors
        );
    }
    assert!(donors >= 12 * 3, "{s}");
    assert_eq!(gt, donors);
    let strands = std::fs::read_to_string(tmp.path().join("out/test_stats.txt")).unwrap()
        + &std::fs::read_to_string(tmp.path().join("out/train_stats.txt")).unwrap();
    assert!(strands.contains("\t+\n") && strands.contains("\t-\n"));
}
