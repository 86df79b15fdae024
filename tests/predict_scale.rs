//! `predict` at genome scale: `--shard I/N` (the N BED files concatenated in shard order are the unsharded
//! run's, byte for byte), `--region`/`--regions-file` (the unregioned run's lines in the regions), a
//! bgzipped FASTA with or without its `.fai`/`.gzi` read like the plain one (`predict -i`, `predict -a`,
//! `variant -R`), a plain FASTA without `.fai` left alone, and the bad specs refused before any output.
//! On the fly region FASTA with the 80nt MANE model, cut into two contigs so shards cross a contig end.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::run_bin as run;
use common::PvData;

const FILES: [&str; 2] = ["acceptor_predictions.bed", "donor_predictions.bed"];
/// The two contigs' lengths: 25 and 16 windows of 5000, the second ending mid-window.
const CUT: usize = 120_003;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    pv: PvData,
    model: String,
    /// Two contigs `a` (CUT bases) and `b` (the rest), 60 bases a line, no `.fai`.
    fasta: PathBuf,
}

fn setup() -> Option<Setup> {
    let pv = PvData::locate()?;
    let model = common::mane_checkpoint(80)?;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let seq: Vec<u8> = common::read_text(&pv.input("region200k.fa"))
        .lines()
        .skip(1)
        .flat_map(|l| l.trim().bytes().collect::<Vec<_>>())
        .collect();
    let mut text = String::new();
    for (name, part) in [("a desc", &seq[..CUT]), ("b", &seq[CUT..])] {
        text.push_str(&format!(">{name}\n"));
        for chunk in part.chunks(60) {
            text.push_str(std::str::from_utf8(chunk).unwrap());
            text.push('\n');
        }
    }
    let fasta = dir.join("two.fa");
    std::fs::write(&fasta, text).unwrap();
    Some(Setup {
        _tmp: tmp,
        dir,
        pv,
        model: model.to_string_lossy().into_owned(),
        fasta,
    })
}

impl Setup {
    /// Runs `predict -q -f 80 -t 0.01` into `<dir>/<out>` and returns the two BED files' bytes.
    fn predict(&self, out: &str, args: &[&str]) -> [Vec<u8>; 2] {
        let o = self.dir.join(out);
        let mut a = vec![
            "predict",
            "-q",
            "-f",
            "80",
            "-t",
            "0.01",
            "-m",
            &self.model,
            "-o",
            o.to_str().unwrap(),
        ];
        a.extend_from_slice(args);
        let r = run(&a);
        assert_eq!(r.status.code(), Some(0), "{args:?}: {}", stderr(&r));
        FILES.map(|f| std::fs::read(o.join("SpliceAI_5000_80").join(f)).unwrap())
    }

    fn fasta_arg(&self) -> &str {
        self.fasta.to_str().unwrap()
    }
}

/// The lines of a BED file whose base (1-based `start + 1`) `keep` selects.
fn filter_lines(bed: &[u8], keep: impl Fn(&str, u64) -> bool) -> Vec<u8> {
    let text = std::str::from_utf8(bed).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if keep(f[0], f[1].parse::<u64>().unwrap() + 1) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// Shards 1..N concatenated in order equal the unsharded output, byte for byte, for several N, across a
/// contig end and both strands; a plain FASTA without `.fai` gets nothing written beside it.
#[test]
fn shards_concatenated_equal_the_unsharded_run() {
    let Some(s) = setup() else { return };
    let fa = s.fasta_arg();
    let whole = s.predict("whole", &["-i", fa, "--strand", "both"]);
    assert!(
        whole.iter().all(|b| b.len() > 1000),
        "too few sites to compare"
    );
    for n in [1usize, 2, 3, 7] {
        let mut cat = [Vec::new(), Vec::new()];
        for i in 1..=n {
            let shard = format!("{i}/{n}");
            let got = s.predict(
                &format!("s{i}of{n}"),
                &["-i", fa, "--strand", "both", "--shard", &shard],
            );
            for k in 0..2 {
                cat[k].extend_from_slice(&got[k]);
            }
        }
        for k in 0..2 {
            assert!(cat[k] == whole[k], "{n} shards: {} differs", FILES[k]);
        }
    }
    let beside: Vec<_> = std::fs::read_dir(&s.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("two.fa"))
        .collect();
    assert_eq!(beside, ["two.fa"], "files written beside the input FASTA");
}

/// `--region` and `--regions-file` give the unregioned run's lines in the regions (windows stay on the
/// whole-contig grid, so edges match exactly), on both strands; shards of a regioned run, N above its
/// windows, concatenate to it.
#[test]
fn regions_equal_the_unregioned_run_filtered() {
    let Some(s) = setup() else { return };
    let fa = s.fasta_arg();
    let whole = s.predict("whole", &["-i", fa, "--strand", "both"]);
    let bed = s.dir.join("r.bed");
    std::fs::write(&bed, "# regions\nb\t99\t2000\n").unwrap();
    let bed_arg = bed.to_str().unwrap();
    let regions = [
        "--region",
        "a:4990-15010",
        "--region",
        "a:30000-30000",
        "--region",
        "b:70001",
        "--regions-file",
        bed_arg,
    ];
    let keep = |chrom: &str, pos: u64| match chrom {
        "a" => (4990..=15010).contains(&pos) || pos == 30000,
        "b" => pos >= 70001 || (100..=2000).contains(&pos),
        _ => false,
    };
    let mut args = vec!["-i", fa, "--strand", "both"];
    args.extend_from_slice(&regions);
    let got = s.predict("region", &args);
    for k in 0..2 {
        let want = filter_lines(&whole[k], keep);
        assert!(
            want.len() > 100,
            "{}: too few lines in the regions",
            FILES[k]
        );
        assert!(got[k] == want, "--region: {} differs", FILES[k]);
    }
    // 4 + 1 + 2 + 1 windows on the given strand, about as many on the other: fewer than 20 shards.
    let n = 20;
    let mut cat = [Vec::new(), Vec::new()];
    for i in 1..=n {
        let shard = format!("{i}/{n}");
        let mut a = args.clone();
        a.extend_from_slice(&["--shard", &shard]);
        let part = s.predict(&format!("rs{i}"), &a);
        for k in 0..2 {
            cat[k].extend_from_slice(&part[k]);
        }
    }
    assert!(cat == got, "shards of the regioned run differ from it");
}

/// With -a, a region scores the genes whose span overlaps it, and writes their lines in it.
#[test]
fn regions_apply_to_genes_mode() {
    let Some(s) = setup() else { return };
    let fa = s.pv.input_arg("region200k.fa");
    let gff = s.pv.input_arg("region200k.gff3");
    let whole = s.predict("genes", &["-i", &fa, "-a", &gff]);
    let spec = "chr2R_7000001_7200000:20000-60000";
    let got = s.predict("genes_region", &["-i", &fa, "-a", &gff, "--region", spec]);
    for k in 0..2 {
        let want = filter_lines(&whole[k], |c, p| {
            c == "chr2R_7000001_7200000" && (20000..=60000).contains(&p)
        });
        assert!(want.len() > 10, "{}: too few lines", FILES[k]);
        assert!(got[k] == want, "-a --region: {} differs", FILES[k]);
    }
}

/// `-i FASTA` and more arguments.
fn with<'a>(fa: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["-i", fa];
    a.extend_from_slice(extra);
    a
}

/// The `.fai` of `fasta` (as samtools writes it), through noodles' indexer.
fn write_fai(fasta: &Path, fai: &Path) {
    let mut indexer = noodles_fasta::io::Indexer::new(std::io::BufReader::new(
        std::fs::File::open(fasta).unwrap(),
    ));
    let mut text = String::new();
    while let Some(r) = indexer.index_record().unwrap() {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            String::from_utf8_lossy(r.name()),
            r.length(),
            r.position(),
            r.line_base_count(),
            r.line_width()
        ));
    }
    std::fs::write(fai, text).unwrap();
}

/// bgzip with `.gzi` (from `bgzip -i` where installed) and `.fai`, and bgzip alone (both built in memory),
/// read like the plain FASTA: `predict -i` with a region, `predict -a`, `variant -R`.
#[test]
fn bgzipped_fasta_reads_like_plain() {
    let Some(s) = setup() else { return };
    let plain = s.pv.input("region200k.fa");
    let gff = s.pv.input_arg("region200k.gff3");
    let indexed = s.dir.join("indexed.fa.gz");
    let gzi = s.dir.join("indexed.fa.gz.gzi");
    let bgzip_i = Command::new("bgzip")
        .args(["-c", "-i", "-I"])
        .arg(&gzi)
        .arg(&plain)
        .stdout(std::fs::File::create(&indexed).unwrap())
        .status();
    if !bgzip_i.is_ok_and(|st| st.success()) {
        eprintln!("bgzip not installed: the .gzi is built in memory");
        common::bgzip_copy(&plain, &indexed);
    }
    write_fai(&plain, &s.dir.join("indexed.fa.gz.fai"));
    // Indexes no older than the FASTA are used (an older one is ignored).
    for idx in ["indexed.fa.gz.fai", "indexed.fa.gz.gzi"] {
        if let Ok(f) = std::fs::File::options().write(true).open(s.dir.join(idx)) {
            f.set_modified(std::time::SystemTime::now()).unwrap();
        }
    }
    let bare = s.dir.join("bare.fa.gz");
    common::bgzip_copy(&plain, &bare);
    let plain_arg = plain.to_str().unwrap();
    let region = ["--region", "chr2R_7000001_7200000:64000-131000"];
    let want_region = s.predict("p_region", &with(plain_arg, &region));
    let want_genes = s.predict("p_genes", &with(plain_arg, &["-a", &gff]));
    let vcf = s.pv.input_arg("variants.vcf");
    let genes = s.pv.input_arg("genes_region200k.txt");
    let variant = |fa: &str, out: &str| {
        let out = s.dir.join(out);
        let r = run(&[
            "variant",
            "-q",
            "-f",
            "80",
            "-m",
            &s.model,
            "-R",
            fa,
            "-A",
            &genes,
            "-I",
            &vcf,
            "-O",
            out.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(0), "variant -R {fa}: {}", stderr(&r));
        std::fs::read(out).unwrap()
    };
    let want_vcf = variant(plain_arg, "plain.vcf");
    assert!(
        String::from_utf8_lossy(&want_vcf).contains("OpenSpliceAI="),
        "no scores"
    );
    for (tag, fa) in [("indexed", &indexed), ("bare", &bare)] {
        let fa = fa.to_str().unwrap();
        let got = s.predict(&format!("{tag}_region"), &with(fa, &region));
        assert!(got == want_region, "{tag}: predict -i --region differs");
        let got = s.predict(&format!("{tag}_genes"), &with(fa, &["-a", &gff]));
        assert!(got == want_genes, "{tag}: predict -a differs");
        let got = variant(fa, &format!("{tag}.vcf"));
        // The provenance line names the reference; the records must be identical.
        let body = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .lines()
                .filter(|l| !l.starts_with("##"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(body(&got), body(&want_vcf), "{tag}: variant -R differs");
    }
    // Nothing was written beside the bare bgzip file.
    assert!(!s.dir.join("bare.fa.gz.fai").exists() && !s.dir.join("bare.fa.gz.gzi").exists());
}

/// A region on a contig the FASTA lacks, malformed region and shard specs, a bad regions file and the
/// combinations refused: exit != 0 with the flag or file named, and no output left.
#[test]
fn bad_regions_and_shards_fail_cleanly() {
    let Some(s) = setup() else { return };
    let fa = s.fasta_arg();
    let bed = s.dir.join("bad.bed");
    std::fs::write(&bed, "a\t10\t5\n").unwrap();
    let bed_arg = bed.to_str().unwrap();
    let out = s.dir.join("bad_out");
    let o = out.to_str().unwrap();
    let base = [
        "predict", "-q", "-f", "80", "-m", &s.model, "-o", o, "-i", fa,
    ];
    let cases: [(&[&str], i32, &[&str]); 10] = [
        (
            &["--region", "chrX:1-10"],
            1,
            &["--region chrX:1-10", "`chrX` is not in", "two.fa"],
        ),
        (&["--region", "a:0-5"], 2, &["--region", "1-based"]),
        (&["--region", "a:9-5"], 2, &["END is before START"]),
        (
            &["--region", "a:5-x"],
            2,
            &["--region", "END is not a number"],
        ),
        (&["--shard", "0/3"], 2, &["--shard", "1 <= I <= N"]),
        (&["--shard", "4/3"], 2, &["--shard"]),
        (&["--shard", "2"], 2, &["--shard", "I/N"]),
        (
            &["--regions-file", bed_arg],
            1,
            &["bad.bed:1", "not below end"],
        ),
        (&["--shard", "1/2", "--bigwig"], 1, &["--shard", "--bigwig"]),
        (&["--region", "a", "-p"], 1, &["--region", "--predict-all"]),
    ];
    for (extra, code, words) in cases {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        let r = run(&a);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(code), "{extra:?}: {err}");
        for w in words {
            assert!(err.contains(w), "{extra:?}: message lacks `{w}`: {err}");
        }
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
        assert!(!out.exists(), "{extra:?} left output behind");
    }
    // A region on a contig absent from a bgzipped FASTA, and --shard with upstream's lines.
    let bgz = s.dir.join("two.fa.gz");
    common::bgzip_copy(&s.fasta, &bgz);
    for (extra, words) in [
        (
            vec!["-i", bgz.to_str().unwrap(), "--region", "c:1-5"],
            &["`c` is not in", "two.fa.gz"][..],
        ),
        (
            vec!["-i", fa, "--shard", "1/2", "--bed-format", "upstream"],
            &["--shard", "--bed-format standard"],
        ),
    ] {
        let mut a = base[..8].to_vec();
        a.extend_from_slice(&extra);
        let r = run(&a);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(1), "{extra:?}: {err}");
        for w in words {
            assert!(err.contains(w), "{extra:?}: message lacks `{w}`: {err}");
        }
        assert!(!out.exists(), "{extra:?} left output behind");
    }
}
