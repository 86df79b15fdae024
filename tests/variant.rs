//! `variant` against OpenSpliceAI 0.0.7's own outputs on the shared fly VCF
//! (`../shared/data/predict-variant/upstream/`): records identical at upstream's precisions (within one
//! unit in the last place where upstream itself depends on batching), its skips reproduced, its crashes
//! fixed, bad input refused clearly with no output left behind.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::PvData;

const BIN: &str = env!("CARGO_BIN_EXE_openspliceai-rs");

fn model(flank: usize) -> String {
    common::mane_checkpoint(flank)
        .expect("checkpoint")
        .to_string_lossy()
        .into_owned()
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .arg("variant")
        .arg("-q")
        // Upstream's header exactly (no `##openspliceai-rs_variant=` line), as the identity checks compare.
        .arg("--no-provenance")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs `variant` on `vcf` with the shared FASTA and gene table, returns the output text.
fn variant(c: &PvData, vcf: &str, flank: usize, extra: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sub/out.vcf");
    let f = flank.to_string();
    let (fa, genes, input, m) = (
        c.input_arg("region200k.fa"),
        c.input_arg("genes_region200k.txt"),
        c.input_arg(vcf),
        model(flank),
    );
    let mut args = vec![
        "-R", &fa, "-A", &genes, "-I", &input, "-m", &m, "-f", &f, "-O",
    ];
    let o = out.to_string_lossy().into_owned();
    args.push(&o);
    args.extend_from_slice(extra);
    let r = run(&args, None);
    assert!(r.status.success(), "variant failed");
    std::fs::read_to_string(&out).unwrap()
}

/// Asserts our VCF equals upstream's: header and every field but the scores identical; a score may
/// differ by `ulps` units in its last printed digit. Returns the number of records that differ.
fn compare_vcf(ours: &str, theirs: &str, ulps: u32) -> usize {
    let (a, b): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    assert_eq!(a.len(), b.len(), "line counts differ");
    let mut differing = 0;
    for (x, y) in a.iter().zip(&b) {
        if x == y {
            continue;
        }
        assert!(!x.starts_with('#'), "header differs: {x:?} vs {y:?}");
        differing += 1;
        let (ex, ey) = (entries(x), entries(y));
        assert_eq!(ex.len(), ey.len(), "{x}\n{y}");
        for (u, v) in ex.iter().zip(&ey) {
            let (pu, pv): (Vec<&str>, Vec<&str>) = (u.split('|').collect(), v.split('|').collect());
            assert_eq!(pu.len(), pv.len(), "{u} vs {v}");
            for i in 0..pu.len() {
                if (2..6).contains(&i) && pu[i] != pv[i] {
                    let decimals = pu[i].split('.').nth(1).map_or(0, str::len);
                    let unit = 10f64.powi(-(decimals as i32));
                    let d = (pu[i].parse::<f64>().unwrap() - pv[i].parse::<f64>().unwrap()).abs();
                    assert!(d <= ulps as f64 * unit * 1.0001, "{u} vs {v}");
                } else {
                    assert_eq!(pu[i], pv[i], "{u} vs {v}");
                }
            }
        }
        let (fx, fy): (Vec<&str>, Vec<&str>) = (x.split('\t').collect(), y.split('\t').collect());
        assert_eq!(fx[..7], fy[..7], "{x}\n{y}");
    }
    differing
}

fn entries(line: &str) -> Vec<String> {
    line.split('\t')
        .nth(7)
        .unwrap_or("")
        .split(';')
        .find_map(|kv| kv.strip_prefix("OpenSpliceAI="))
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

fn parity(vcf: &str, flank: usize, extra: &[&str], upstream: &str, ulps: u32) {
    let Some(c) = PvData::locate() else {
        return;
    };
    let ours = variant(&c, vcf, flank, extra);
    let theirs = common::read_text(&c.upstream(upstream));
    let n = compare_vcf(&ours, &theirs, ulps);
    eprintln!("{upstream}: {n} records differ in the last digit");
}

#[test]
fn default_80nt() {
    parity("variants.vcf", 80, &[], "variant/variant_80.vcf", 0);
}

#[test]
fn default_400nt() {
    parity("variants.vcf", 400, &[], "variant/variant_400.vcf", 0);
}

#[test]
fn default_10000nt() {
    parity("variants.vcf", 10000, &[], "variant/variant_10000.vcf", 0);
}

#[test]
fn mask_10000nt() {
    parity(
        "variants.vcf",
        10000,
        &["-M", "1"],
        "variant/variant_10000_M1.vcf",
        0,
    );
}

/// Six decimals: upstream's own `-b 16` and `-b 1` runs differ by up to 2e-6 there.
#[test]
fn precision_6_10000nt() {
    parity(
        "variants.vcf",
        10000,
        &["-p", "6"],
        "variant/variant_10000_p6.vcf",
        2,
    );
}

#[test]
fn precision_6_400nt() {
    parity(
        "variants.vcf",
        400,
        &["-p", "6"],
        "variant/variant_400_p6.vcf",
        2,
    );
    parity(
        "variants.vcf",
        400,
        &["-p", "6"],
        "variant/variant_400_b16_p6.vcf",
        2,
    );
}

#[test]
fn distance_200_mask_and_distance_0_400nt() {
    parity(
        "variants.vcf",
        400,
        &["-D", "200", "-p", "4"],
        "variant/variant_400_D200_p4.vcf",
        0,
    );
    parity(
        "variants.vcf",
        400,
        &["-M", "1", "-p", "4"],
        "variant/variant_400_M1_p4.vcf",
        0,
    );
    // -D 0 skips every record ("ref too long"), as upstream.
    parity(
        "variants.vcf",
        400,
        &["-D", "0", "-p", "4"],
        "variant/variant_400_D0_p4.vcf",
        0,
    );
}

#[test]
fn chromosome_names_without_chr() {
    parity(
        "edge_nochr_names.vcf",
        400,
        &["-p", "4"],
        "edge/edge_nochr_names.vcf",
        0,
    );
    parity(
        "edge_nochr_names.vcf",
        400,
        &["-p", "6"],
        "edge/edge_single_model_p6.vcf",
        2,
    );
}

/// A directory of models (`.pt` and `.pth`, which upstream's glob misses) is averaged.
#[test]
fn model_directory() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("models");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(model(400), dir.join("a.pt")).unwrap();
    std::fs::copy(model(400), dir.join("b.pth")).unwrap();
    let (fa, genes, input) = (
        c.input_arg("region200k.fa"),
        c.input_arg("genes_region200k.txt"),
        c.input_arg("edge_nochr_names.vcf"),
    );
    let d = dir.to_string_lossy().into_owned();
    let r = run(
        &[
            "-R", &fa, "-A", &genes, "-I", &input, "-m", &d, "-f", "400", "-p", "6",
        ],
        None,
    );
    assert!(r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("2 model(s)"));
    let theirs = common::read_text(&c.upstream("edge/edge_dir_two_models.vcf"));
    compare_vcf(&String::from_utf8(r.stdout).unwrap(), &theirs, 2);
}

/// stdin → stdout (upstream crashes without -O), and a bgzip-compressed input, give the same records.
#[test]
fn stdin_stdout_and_bgzip() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let (fa, genes, m) = (
        c.input_arg("region200k.fa"),
        c.input_arg("genes_region200k.txt"),
        model(400),
    );
    let plain = std::fs::read(c.input_arg("variants.vcf")).unwrap();
    let r = run(
        &["-R", &fa, "-A", &genes, "-m", &m, "-f", "400"],
        Some(&plain),
    );
    assert!(r.status.success());
    let theirs = common::read_text(&c.upstream("variant/variant_400.vcf"));
    compare_vcf(&String::from_utf8(r.stdout).unwrap(), &theirs, 0);
    let mut w = noodles_bgzf::io::Writer::new(Vec::new());
    w.write_all(&plain).unwrap();
    let gz = w.finish().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("v.vcf.gz");
    std::fs::write(&p, gz).unwrap();
    let ps = p.to_string_lossy().into_owned();
    let r = run(
        &[
            "-R", &fa, "-A", &genes, "-I", &ps, "-m", &m, "-f", "400", "-O", "-",
        ],
        None,
    );
    assert!(r.status.success());
    compare_vcf(&String::from_utf8(r.stdout).unwrap(), &theirs, 0);
}

/// The annotation as GFF3 gives the gene table's results (the table's synthetic SYNTH_START gene is not
/// in the GFF3, so its two records stay unannotated).
#[test]
fn gff3_annotation_matches_the_gene_table() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let (fa, gff, input, m) = (
        c.input_arg("region200k.fa"),
        c.input_arg("region200k.gff3"),
        c.input_arg("variants.vcf"),
        model(400),
    );
    let r = run(
        &["-R", &fa, "-A", &gff, "-I", &input, "-m", &m, "-f", "400"],
        None,
    );
    assert!(r.status.success());
    let ours = String::from_utf8(r.stdout).unwrap();
    let theirs = common::read_text(&c.upstream("variant/variant_400.vcf"));
    let keep = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.contains("SYNTH"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(compare_vcf(&keep(&ours), &keep(&theirs), 0), 0);
    let synth: Vec<&str> = ours
        .lines()
        .filter(|l| l.contains("near_contig_start"))
        .collect();
    assert_eq!(synth.len(), 2);
    assert!(synth.iter().all(|l| !l.contains("OpenSpliceAI=")));
}

/// Upstream aborts the run on a contig missing from the FASTA and on `<DEL>` without END (F): here the
/// record is written unchanged with a warning and the rest is scored.
#[test]
fn missing_contig_and_symbolic_alleles_do_not_abort() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let (fa, m) = (c.input_arg("region200k.fa"), model(400));
    let genes = c.input_arg("genes_with_chrOther.txt");
    let input = c.input_arg("edge_chrom_not_in_fasta.vcf");
    let r = run(
        &["-R", &fa, "-A", &genes, "-I", &input, "-m", &m, "-f", "400"],
        None,
    );
    assert!(r.status.success());
    let out = String::from_utf8(r.stdout).unwrap();
    let other: Vec<&str> = out.lines().filter(|l| l.starts_with("chrOther")).collect();
    assert_eq!(other.len(), 1);
    assert!(!other[0].contains("OpenSpliceAI="));
    assert!(String::from_utf8_lossy(&r.stderr).contains("chromosome not in the reference"));
    assert_eq!(
        out.lines().filter(|l| l.contains("OpenSpliceAI=")).count(),
        1,
        "{out}"
    );
    let genes = c.input_arg("genes_region200k.txt");
    let input = c.input_arg("edge_symbolic_no_END.vcf");
    let r = run(
        &["-R", &fa, "-A", &genes, "-I", &input, "-m", &m, "-f", "400"],
        None,
    );
    assert!(r.status.success());
    let out = String::from_utf8(r.stdout).unwrap();
    assert!(out
        .lines()
        .any(|l| l.contains("<DEL>") && l.ends_with("\t.")));
    let upstream = common::read_text(&c.upstream("edge/edge_symbolic_no_END.vcf"));
    // Upstream wrote the records before the <DEL> one; ours match them.
    for l in upstream.lines().filter(|l| !l.starts_with('#')) {
        assert!(out.contains(l), "{l}");
    }
}

#[test]
fn bad_inputs_fail_clearly_without_output() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.vcf");
    let o = out.to_string_lossy().into_owned();
    let (fa, genes, vcf, m) = (
        c.input_arg("region200k.fa"),
        c.input_arg("genes_region200k.txt"),
        c.input_arg("variants.vcf"),
        model(400),
    );
    let w = |name: &str, text: &str| -> String {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let bad_vcf = w(
        "bad.vcf",
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr2R_7000001_7200000\tx\t.\tA\tG\t.\t.\t.\n",
    );
    let not_vcf = w("not.vcf", "hello\n");
    let bad_table = w("genes.txt", "#NAME\tCHROM\tSTRAND\n");
    let bad_fa = w("bad.fa", "ACGT\n");
    let missing = tmp
        .path()
        .join("missing.vcf")
        .to_string_lossy()
        .into_owned();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec![
                "-R", &fa, "-A", &genes, "-I", &missing, "-m", &m, "-f", "400",
            ],
            vec!["missing.vcf"],
        ),
        (
            vec![
                "-R", &fa, "-A", &genes, "-I", &bad_vcf, "-m", &m, "-f", "400",
            ],
            vec!["bad.vcf:3", "POS"],
        ),
        (
            vec![
                "-R", &fa, "-A", &genes, "-I", &not_vcf, "-m", &m, "-f", "400",
            ],
            vec!["not.vcf:1"],
        ),
        (
            vec![
                "-R", &fa, "-A", &bad_table, "-I", &vcf, "-m", &m, "-f", "400",
            ],
            vec!["genes.txt:1", "TX_START"],
        ),
        (
            vec![
                "-R", &bad_fa, "-A", &genes, "-I", &vcf, "-m", &m, "-f", "400",
            ],
            vec!["bad.fa"],
        ),
        (
            vec!["-R", &fa, "-A", &genes, "-I", &vcf, "-m", &m, "-f", "10000"],
            vec!["model_400nt_rs10.pt", "flanking size"],
        ),
        (
            vec!["-R", &fa, "-A", &genes, "-I", &vcf, "-m", &m, "-f", "80"],
            vec!["model_400nt_rs10.pt", "400nt checkpoint", "-f 80"],
        ),
        (
            vec!["-R", &fa, "-A", &genes, "-I", &vcf, "-f", "400"],
            vec!["--model"],
        ),
        (
            vec!["-R", &fa, "-A", "grch38", "-I", &vcf, "-m", &m, "-f", "400"],
            vec!["grch38"],
        ),
    ];
    for (mut args, needles) in cases {
        args.extend_from_slice(&["-O", &o]);
        let r = run(&args, None);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "should fail: {args:?}");
        assert!(!err.contains("panicked"), "{err}");
        for n in needles {
            assert!(err.contains(n), "message lacks `{n}`: {err}");
        }
        assert!(!out.exists(), "left {o} behind for {args:?}");
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| openspliceai_rs::atomic::is_temp_name(&e.file_name().to_string_lossy()))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

/// `-A` reads a gzip or bgzip GFF3 (named `.gff3.gz`) as it reads the plain one: the same VCF.
#[test]
fn gff3_annotation_gzip_and_bgzip_read_as_plain() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let gff = c.input("region200k.gff3");
    let (gz, bgz) = (tmp.path().join("a.gff3.gz"), tmp.path().join("b.gff3.gz"));
    common::gzip_copy(&gff, &gz);
    common::bgzip_copy(&gff, &bgz);
    let (fa, input, m) = (
        c.input_arg("region200k.fa"),
        c.input_arg("variants.vcf"),
        model(80),
    );
    let score = |an: &Path| {
        let an = an.to_str().unwrap();
        let r = run(
            &["-R", &fa, "-A", an, "-I", &input, "-m", &m, "-f", "80"],
            None,
        );
        assert!(r.status.success(), "variant -A {an} failed");
        r.stdout
    };
    let plain = score(&gff);
    assert!(!plain.is_empty());
    assert_eq!(plain, score(&gz), "gzip GFF3");
    assert_eq!(plain, score(&bgz), "bgzip GFF3");
}

/// Records and ALT alleles that are not scored (a breakend, which upstream scores as if it were
/// sequence; symbolic, `*` and `.` ALTs; REF not matching the genome; a window starting before the
/// contig; no gene at POS) are written as upstream writes them (unchanged, or with their other alleles'
/// entries), counted per reason in the summary and listed one per line by `--skipped`.
#[test]
fn unscored_records_and_alleles_are_counted_and_listed() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let c2 = "chr2R_7000001_7200000";
    let bnd = format!("A]{c2}:98000]");
    let records = [
        format!("{c2}\t97383\tsnv\tA\tG\t.\t.\t."),
        format!("{c2}\t97383\tbnd\tA\t{bnd}\t.\t.\t."),
        format!("{c2}\t97383\tbnd1\tA\t.A\t.\t.\t."),
        format!("{c2}\t97383\tstar\tA\t*\t.\t.\t."),
        format!("{c2}\t97383\tnoalt\tA\t.\t.\t.\t."),
        format!("{c2}\t97383\trefbad\tC\tG\t.\t.\t."),
        format!("{c2}\t150\tstart\tA\tG\t.\t.\t."),
        format!("{c2}\t97433\tsym\tG\t<DEL>\t.\t.\tEND=97440"),
        format!("{c2}\t5000\tintergenic\tA\tG\t.\t.\t."),
        format!("{c2}\t97383\tmulti\tA\tG,*,<INS>,{bnd}\t.\t.\t."),
    ];
    let text = format!(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n{}\n",
        records.join("\n")
    );
    let vcf = tmp.path().join("in.vcf");
    std::fs::write(&vcf, &text).unwrap();
    let (out, skipped) = (
        tmp.path().join("out.vcf"),
        tmp.path().join("sub/skipped.tsv"),
    );
    let (fa, genes, m) = (
        c.input_arg("region200k.fa"),
        c.input_arg("genes_region200k.txt"),
        model(400),
    );
    let (v, o, s) = (
        vcf.to_string_lossy().into_owned(),
        out.to_string_lossy().into_owned(),
        skipped.to_string_lossy().into_owned(),
    );
    let base = ["-R", &fa, "-A", &genes, "-I", &v, "-m", &m, "-f", "400"];
    let r = run(&[&base[..], &["-O", &o, "--skipped", &s]].concat(), None);
    assert!(r.status.success());
    assert_eq!(
        std::fs::read_to_string(&vcf).unwrap(),
        text,
        "input changed"
    );
    let written = std::fs::read_to_string(&out).unwrap();
    let body: Vec<&str> = written.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(body.len(), records.len());
    let entry = "OpenSpliceAI=G|FBgn0003396|";
    for (line, rec) in body.iter().zip(&records) {
        if rec.contains("\tsnv\t") || rec.contains("\tmulti\t") {
            assert!(line.contains(entry), "{line}");
            assert_eq!(line.matches('|').count(), 9, "one entry only: {line}");
        } else {
            assert_eq!(line, rec, "an unscored record is written unchanged");
        }
    }
    let (snv, multi) = (body[0], body[9]);
    assert_eq!(
        snv.rsplit('\t').next(),
        multi.rsplit('\t').next(),
        "the scored allele of a multi-allelic record scores as alone"
    );
    let expected = [
        "#CHROM\tPOS\tREF\tALT\treason".to_string(),
        format!("{c2}\t97383\tA\t{bnd}\tbreakend ALT"),
        format!("{c2}\t97383\tA\t.A\tbreakend ALT"),
        format!("{c2}\t97383\tA\t*\tspanning deletion ALT (*)"),
        format!("{c2}\t97383\tA\t.\tno ALT allele (.)"),
        format!("{c2}\t97383\tC\tG\tREF does not match the reference"),
        format!("{c2}\t150\tA\tG\twindow starts before the chromosome"),
        format!("{c2}\t97433\tG\t<DEL>\tsymbolic ALT"),
        format!("{c2}\t5000\tA\tG\toutside every gene"),
        format!("{c2}\t97383\tA\t*\tspanning deletion ALT (*)"),
        format!("{c2}\t97383\tA\t<INS>\tsymbolic ALT"),
        format!("{c2}\t97383\tA\t{bnd}\tbreakend ALT"),
    ];
    assert_eq!(
        std::fs::read_to_string(&skipped).unwrap(),
        expected.join("\n") + "\n"
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains(
            "10 records: 2 annotated (2 allele-gene scores, 3 windows); not scored: 1 no ALT \
             allele (.), 1 outside every gene, 1 window starts before the chromosome, 1 REF does \
             not match the reference, 2 symbolic ALT, 3 breakend ALT, 2 spanning deletion ALT (*)"
        ),
        "{err}"
    );

    // A `--skipped` that cannot be written fails the run and leaves neither file behind.
    let out2 = tmp.path().join("out2.vcf");
    let o2 = out2.to_string_lossy().into_owned();
    let dir = tmp.path().to_string_lossy().into_owned();
    let r = run(&[&base[..], &["-O", &o2, "--skipped", &dir]].concat(), None);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains(&dir) && err.contains("cannot write"), "{err}");
    assert!(!out2.exists());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| openspliceai_rs::atomic::is_temp_name(&e.file_name().to_string_lossy()))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// `--skipped` is a file of its own: `-` and the paths of the run's other files are refused before
/// anything is read or written, and the inputs are left as they were.
#[test]
fn skipped_file_must_be_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| -> String {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let vcf_text = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";
    let (vcf, fa, genes) = (
        w("in.vcf", vcf_text),
        w("g.fa", ">c\nACGT\n"),
        w("genes.txt", "#NAME\tCHROM\n"),
    );
    let out = tmp.path().join("out.vcf").to_string_lossy().into_owned();
    // The same input spelled another way is still the same file.
    let vcf_again = format!("{}/./in.vcf", tmp.path().display());
    let base = [
        "-R", &fa, "-A", &genes, "-I", &vcf, "-O", &out, "-m", "none.pt", "-f", "80",
    ];
    for (skipped, words) in [
        ("-", &["--skipped -", "standard output"][..]),
        (&out[..], &["the same file as -O/--output-vcf"]),
        (
            &vcf_again[..],
            &["--skipped", "would overwrite the input -I"],
        ),
        (&fa[..], &["--skipped", "would overwrite the input -R"]),
        (&genes[..], &["--skipped", "would overwrite the input -A"]),
    ] {
        let r = run(&[&base[..], &["--skipped", skipped]].concat(), None);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{skipped}: {err}");
        for word in words {
            assert!(
                err.contains(word),
                "{skipped}: message lacks `{word}`: {err}"
            );
        }
    }
    assert_eq!(std::fs::read_to_string(&vcf).unwrap(), vcf_text);
    assert_eq!(std::fs::read_to_string(&fa).unwrap(), ">c\nACGT\n");
    assert!(!Path::new(&out).exists());
}

/// Runs `variant` with `args` as given (no `-q`, no `--no-provenance`), stderr to a pipe.
fn run_plain(args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .arg("variant")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the binary");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The value of INFO key `key` of a record line, split into its entries.
fn entries_of(line: &str, key: &str) -> Option<Vec<String>> {
    let prefix = format!("{key}=");
    line.split('\t')
        .nth(7)?
        .split(';')
        .find_map(|kv| kv.strip_prefix(prefix.as_str()))
        .map(|v| v.split(',').map(str::to_string).collect())
}

/// `--info-key SpliceAI`: SpliceAI 1.3.1's header line exactly and its field layout, record by record and
/// field by field against SpliceAI 1.3.1's own output on the shared VCF (its models differ from ours, so
/// the scores may differ; their form may not).
#[test]
fn info_key_spliceai_matches_spliceai_1_3_1_field_by_field() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let ours = variant(&c, "variants.vcf", 10000, &["--info-key", "SpliceAI"]);
    let theirs = common::read_text(&c.upstream("spliceai_default.vcf"));
    let (a, b): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    assert_eq!(a.len(), b.len(), "line counts differ");
    let mut annotated = 0;
    for (x, y) in a.iter().zip(&b) {
        if y.starts_with('#') {
            assert_eq!(x, y, "header line differs");
            continue;
        }
        let (fx, fy): (Vec<&str>, Vec<&str>) = (x.split('\t').collect(), y.split('\t').collect());
        assert_eq!(fx[..7], fy[..7], "{x}\n{y}");
        assert!(!x.contains("OpenSpliceAI="), "{x}");
        let (ex, ey) = (entries_of(x, "SpliceAI"), entries_of(y, "SpliceAI"));
        assert_eq!(
            ex.is_some(),
            ey.is_some(),
            "annotated in one only:\n{x}\n{y}"
        );
        let (Some(ex), Some(ey)) = (ex, ey) else {
            assert_eq!(x, y);
            continue;
        };
        annotated += 1;
        assert_eq!(ex.len(), ey.len(), "{x}\n{y}");
        for (u, v) in ex.iter().zip(&ey) {
            let (pu, pv): (Vec<&str>, Vec<&str>) = (u.split('|').collect(), v.split('|').collect());
            assert_eq!(pu.len(), 10, "{u}");
            assert_eq!(pv.len(), 10, "{v}");
            assert_eq!(pu[..2], pv[..2], "ALLELE|SYMBOL: {u} vs {v}");
            for i in 2..10 {
                if pv[i] == "." {
                    assert_eq!(pu[i], ".", "{u} vs {v}");
                } else if i < 6 {
                    // DS: a number with SpliceAI's 2 decimals, in [0, 1].
                    let d = pu[i].split('.').nth(1).map_or(0, str::len);
                    assert_eq!(d, 2, "DS {i}: {u} vs {v}");
                    let s: f64 = pu[i].parse().unwrap();
                    assert!((0.0..=1.0).contains(&s), "{u}");
                } else {
                    // DP: an integer offset within -D..=D.
                    let p: i64 = pu[i].parse().unwrap_or_else(|_| panic!("DP {i}: {u}"));
                    pv[i].parse::<i64>().unwrap();
                    assert!(p.abs() <= 50, "{u}");
                }
            }
        }
    }
    assert!(annotated > 50, "only {annotated} records annotated");
}

/// The INFO key must be one a VCF allows: refused before anything is read or written.
#[test]
fn info_key_must_be_a_vcf_key() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.vcf");
    let o = out.to_string_lossy().into_owned();
    for bad in ["1abc", "Splice AI", "a=b", ""] {
        let r = run_plain(&[
            "-R",
            "ref.fa",
            "-A",
            "genes.txt",
            "-I",
            "in.vcf",
            "-O",
            &o,
            "-m",
            "m.pt",
            "--info-key",
            bad,
        ]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("--info-key"), "{err}");
        assert!(err.contains("not a VCF INFO key"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists());
    }
}

/// By default the header names the models, flanking size, distance and mask in a `##` line of our own
/// (before `#CHROM`, after the INFO line); `-O x.vcf.gz` writes BGZF with the same text, which tabix
/// indexes and bcftools reads (when they are installed).
#[test]
fn provenance_line_and_bgzf_output() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (fa, genes, input, m) = (
        c.input_arg("region200k.fa"),
        c.input_arg("genes_region200k.txt"),
        c.input_arg("variants.vcf"),
        model(80),
    );
    let plain = tmp.path().join("out.vcf");
    let gz = tmp.path().join("out.vcf.gz");
    let mut texts = Vec::new();
    for out in [&plain, &gz] {
        let o = out.to_string_lossy().into_owned();
        let r = run_plain(&[
            "-q", "-R", &fa, "-A", &genes, "-I", &input, "-m", &m, "-f", "80", "-D", "40", "-M",
            "1", "-O", &o,
        ]);
        assert!(r.status.success());
        texts.push(std::fs::read(out).unwrap());
    }
    let text = String::from_utf8(texts[0].clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let chrom = lines.iter().position(|l| l.starts_with("#CHROM")).unwrap();
    let prov = lines[chrom - 1];
    assert!(
        lines[chrom - 2].starts_with("##INFO=<ID=OpenSpliceAI,"),
        "{text}"
    );
    assert!(
        prov.starts_with("##openspliceai-rs_variant=version="),
        "{prov}"
    );
    for want in [
        "info_key=OpenSpliceAI".to_string(),
        format!("models={m};"),
        "flanking_size=80;".into(),
        "distance=40;".into(),
        "mask=1;".into(),
    ] {
        assert!(prov.contains(&want), "`{want}` not in {prov}");
    }
    // BGZF: gzip members with the BC extra field, ending in the empty EOF block.
    let bytes = &texts[1];
    assert_eq!(bytes[..4], [0x1f, 0x8b, 8, 4], "not BGZF");
    assert_eq!(&bytes[12..14], b"BC");
    const EOF_BLOCK: [u8; 28] = [
        0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, 0x42, 0x43, 2, 0, 0x1b, 0, 3, 0, 0, 0, 0, 0,
        0, 0, 0, 0,
    ];
    assert_eq!(
        bytes[bytes.len() - 28..],
        EOF_BLOCK,
        "no BGZF end-of-file block"
    );
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut noodles_bgzf::io::Reader::new(&bytes[..]),
        &mut unzipped,
    )
    .unwrap();
    // The same text but for the command line, which names each run's -O.
    let without_command = |b: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(b)
            .lines()
            .filter(|l| !l.starts_with("##openspliceai-rs_variantCommand="))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        without_command(&unzipped),
        without_command(&texts[0]),
        "the BGZF text differs from the plain VCF"
    );
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("tabix") || !have("bcftools") {
        common::missing("tabix and bcftools (apt-get install tabix bcftools; scripts/ci-setup.sh)");
        return;
    }
    let g = gz.to_string_lossy().into_owned();
    // Our own index is already beside it (tests/vcf_index.rs); tabix replaces it with its own.
    let r = Command::new("tabix")
        .args(["-f", "-p", "vcf", &g])
        .output()
        .unwrap();
    assert!(
        r.status.success(),
        "tabix: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(tmp.path().join("out.vcf.gz.tbi").is_file());
    let r = Command::new("bcftools")
        .args(["view", "-H", &g])
        .output()
        .unwrap();
    assert!(
        r.status.success(),
        "bcftools: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let records = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(String::from_utf8_lossy(&r.stdout).lines().count(), records);
    // A region query through the index.
    let first = text.lines().find(|l| !l.starts_with('#')).unwrap();
    let (c0, p0) = {
        let f: Vec<&str> = first.split('\t').collect();
        (f[0].to_string(), f[1].to_string())
    };
    let r = Command::new("tabix")
        .args([&g, &format!("{c0}:{p0}-{p0}")])
        .output()
        .unwrap();
    assert!(r.status.success());
    assert!(String::from_utf8_lossy(&r.stdout).contains(&format!("{c0}\t{p0}\t")));
}
