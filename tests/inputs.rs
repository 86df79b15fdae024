//! Every input read front to back, by every command, reads plain, gzip and bgzip files, `-` (standard
//! input), a pipe given as `/dev/stdin` and a process substitution, and gives the same result each way; a
//! truncated gzip says so. Inputs read by random access (`variant -R`, the HDF5 datasets) refuse compressed
//! data and pipes with a message that says why and what to do. Numeric flags out of range are refused by
//! the parser, naming the flag. Tiny synthetic inputs in a tempdir; predict and variant run the 80nt
//! checkpoint.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_openspliceai-rs");

/// How an input reaches the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Plain,
    Gzip,
    Bgzip,
    /// `cat FILE | cmd ... -`
    Dash,
    /// `cat FILE | cmd ... /dev/stdin`
    DevStdin,
    /// `cmd ... <(cat FILE)`
    ProcSub,
}

const ALL: [Form; 6] = [
    Form::Plain,
    Form::Gzip,
    Form::Bgzip,
    Form::Dash,
    Form::DevStdin,
    Form::ProcSub,
];

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `BIN args` through bash with `{IN}` in `args` replaced by `file` in the given form (compressed
/// copies are written beside it).
fn run_form(args: &[&str], file: &Path, form: Form) -> Output {
    let compressed = |ext: &str, f: fn(&Path, &Path)| {
        let p = PathBuf::from(format!("{}.{ext}", file.display()));
        f(file, &p);
        p.to_string_lossy().into_owned()
    };
    let (prefix, arg) = match form {
        Form::Plain => (String::new(), quote(&file.to_string_lossy())),
        Form::Gzip => (String::new(), quote(&compressed("gz", common::gzip_copy))),
        Form::Bgzip => (String::new(), quote(&compressed("bgz", common::bgzip_copy))),
        Form::Dash => (
            format!("cat {} | ", quote(&file.to_string_lossy())),
            "-".into(),
        ),
        Form::DevStdin => (
            format!("cat {} | ", quote(&file.to_string_lossy())),
            "/dev/stdin".into(),
        ),
        Form::ProcSub => (
            String::new(),
            format!("<(cat {})", quote(&file.to_string_lossy())),
        ),
    };
    let line: Vec<String> = args
        .iter()
        .map(|a| if *a == "{IN}" { arg.clone() } else { quote(a) })
        .collect();
    let script = format!("{prefix}{} {}", quote(BIN), line.join(" "));
    let out = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("run bash");
    eprintln!(
        "{form:?}: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A deterministic 400-base chromosome `chr1`.
fn chrom() -> Vec<u8> {
    common::noise_bytes(23, 400)
        .iter()
        .map(|b| b"ACGT"[(*b % 4) as usize])
        .collect()
}

struct Tiny {
    dir: tempfile::TempDir,
}

impl Tiny {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let seq = chrom();
        let mut fa = b">chr1 synthetic\n".to_vec();
        for line in seq.chunks(60) {
            fa.extend_from_slice(line);
            fa.push(b'\n');
        }
        std::fs::write(dir.path().join("g.fa"), fa).unwrap();
        std::fs::write(
            dir.path().join("genes.txt"),
            "#NAME\tCHROM\tSTRAND\tTX_START\tTX_END\tEXON_START\tEXON_END\n\
             G1\tchr1\t+\t49\t350\t49,200,\t150,350,\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("a.gff3"),
            "##gff-version 3\n\
             chr1\tt\tgene\t50\t350\t.\t+\t.\tID=g1;Name=G1;gene_biotype=protein_coding\n\
             chr1\tt\tmRNA\t50\t350\t.\t+\t.\tID=t1;Parent=g1\n\
             chr1\tt\texon\t50\t150\t.\t+\t.\tID=e1;Parent=t1\n\
             chr1\tt\texon\t201\t350\t.\t+\t.\tID=e2;Parent=t1\n",
        )
        .unwrap();
        let mut vcf =
            String::from("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n");
        for pos in [120usize, 150, 201, 260] {
            let r = seq[pos - 1] as char;
            let a = if r == 'A' { 'G' } else { 'A' };
            vcf.push_str(&format!("chr1\t{pos}\tv{pos}\t{r}\t{a}\t.\t.\t.\n"));
        }
        std::fs::write(dir.path().join("v.vcf"), vcf).unwrap();
        Tiny { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }
}

/// A gzip copy of `src` cut in the middle of its compressed data.
fn truncated_gzip(src: &Path) -> PathBuf {
    let gz = PathBuf::from(format!("{}.full.gz", src.display()));
    common::gzip_copy(src, &gz);
    let bytes = std::fs::read(&gz).unwrap();
    let cut = PathBuf::from(format!("{}.cut.gz", src.display()));
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    cut
}

/// Runs `args` (with `{IN}`) on `file` in every form of `forms`; each must succeed and give `result` of
/// the plain run. Then a truncated gzip must fail saying so.
fn every_form(
    what: &str,
    forms: &[Form],
    file: &Path,
    args: &dyn Fn(&Path) -> Vec<String>,
    result: &dyn Fn(&Path, &Output) -> Vec<u8>,
) {
    let tmp = tempfile::tempdir().unwrap();
    let mut plain: Option<Vec<u8>> = None;
    for (i, &form) in forms.iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        let a = args(&out);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = run_form(&a, file, form);
        assert!(o.status.success(), "{what} {form:?} failed: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
        let r = result(&out, &o);
        assert!(!r.is_empty(), "{what} {form:?}: empty result");
        match &plain {
            None => plain = Some(r),
            Some(p) => assert!(
                *p == r,
                "{what} {form:?}: result differs from the plain file's"
            ),
        }
    }
    let cut = truncated_gzip(file);
    let out = tmp.path().join("cut");
    let a = args(&out);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let o = run_form(&a, &cut, Form::Plain);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{what} truncated: {err}");
    assert!(
        err.contains("the gzip data ends early: the file is truncated")
            && err.contains(&*cut.file_name().unwrap().to_string_lossy()),
        "{what} truncated: {err}"
    );
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn create_data_reads_fasta_and_gff_in_every_form() {
    let t = Tiny::new();
    let (fa, gff) = (t.arg("g.fa"), t.arg("a.gff3"));
    // stdout is the run's summary: genes seen and kept, sites per split (and where the files went,
    // which differs from run to run here).
    let summary = |_: &Path, o: &Output| {
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(s.contains("genes: 1 seen, 1 kept"), "{s}");
        let kept: Vec<&str> = s.lines().filter(|l| !l.starts_with("wrote ")).collect();
        kept.join("\n").into_bytes()
    };
    let out = |o: &Path| o.to_string_lossy().into_owned();
    every_form(
        "create-data --genome-fasta",
        &ALL,
        &t.path("g.fa"),
        &|o| {
            vec![
                "create-data".into(),
                "--genome-fasta".into(),
                "{IN}".into(),
                "--annotation-gff".into(),
                gff.clone(),
                "--output-dir".into(),
                out(o),
            ]
        },
        &summary,
    );
    every_form(
        "create-data --annotation-gff",
        &ALL,
        &t.path("a.gff3"),
        &|o| {
            vec![
                "create-data".into(),
                "--genome-fasta".into(),
                fa.clone(),
                "--annotation-gff".into(),
                "{IN}".into(),
                "--output-dir".into(),
                out(o),
            ]
        },
        &summary,
    );
}

fn checkpoint() -> Option<String> {
    common::mane_checkpoint(80).map(|p| p.to_string_lossy().into_owned())
}

#[test]
fn predict_reads_sequences_and_annotation_in_every_form() {
    let Some(m) = checkpoint() else {
        return;
    };
    let t = Tiny::new();
    let fa = t.arg("g.fa");
    let beds = |o: &Path, _: &Output| {
        let d = o.join("SpliceAI_5000_80");
        let mut b = read(&d.join("acceptor_predictions.bed"));
        b.extend(read(&d.join("donor_predictions.bed")));
        b
    };
    let base = |o: &Path| -> Vec<String> {
        ["predict", "-q", "-m", &m, "-f", "80", "-t", "0.01", "-o"]
            .iter()
            .map(|s| s.to_string())
            .chain([o.to_string_lossy().into_owned()])
            .collect()
    };
    every_form(
        "predict -i",
        &ALL,
        &t.path("g.fa"),
        &|o| {
            let mut a = base(o);
            a.extend(["-i".into(), "{IN}".into()]);
            a
        },
        &beds,
    );
    every_form(
        "predict -a",
        &ALL,
        &t.path("a.gff3"),
        &|o| {
            let mut a = base(o);
            a.extend(["-i".into(), fa.clone(), "-a".into(), "{IN}".into()]);
            a
        },
        &beds,
    );
}

#[test]
fn variant_reads_vcf_and_annotation_in_every_form() {
    let Some(m) = checkpoint() else {
        return;
    };
    let t = Tiny::new();
    let (fa, genes, vcf) = (t.arg("g.fa"), t.arg("genes.txt"), t.arg("v.vcf"));
    let scored = |_: &Path, o: &Output| {
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(s.matches("OpenSpliceAI=").count(), 4, "{s}");
        s.into_bytes()
    };
    let base = [
        "variant",
        "-q",
        "--no-provenance",
        "-m",
        &m,
        "-f",
        "80",
        "-R",
        &fa,
    ];
    let with = |extra: [&str; 4]| -> Vec<String> {
        base.iter()
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect()
    };
    every_form(
        "variant -I",
        &ALL,
        &t.path("v.vcf"),
        &|_| with(["-A", &genes, "-I", "{IN}"]),
        &scored,
    );
    // `-A -` is refused (standard input is the VCF's), every other form is read; the GFF3 is told from a
    // gene table by its content when the name does not say (`.bgz`, a pipe).
    let annotation_forms = [
        Form::Plain,
        Form::Gzip,
        Form::Bgzip,
        Form::DevStdin,
        Form::ProcSub,
    ];
    for file in ["genes.txt", "a.gff3"] {
        every_form(
            &format!("variant -A {file}"),
            &annotation_forms,
            &t.path(file),
            &|_| with(["-I", &vcf, "-A", "{IN}"]),
            &scored,
        );
    }
    let o = run_form(
        &with(["-I", &vcf, "-A", "{IN}"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &t.path("genes.txt"),
        Form::Dash,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("standard input is where the VCF is read from"));
}

/// `-R` is read by region: gzip, `-` and pipes are refused with the reason and what to do, and nothing
/// is written; bgzip (BGZF, indexed in memory when no `.fai`/`.gzi` is beside it) reads like plain text.
#[test]
fn variant_reference_needs_a_plain_regular_file() {
    let Some(m) = checkpoint() else {
        return;
    };
    let t = Tiny::new();
    let (genes, vcf) = (t.arg("genes.txt"), t.arg("v.vcf"));
    let out = t.path("out.vcf");
    let o = out.to_string_lossy().into_owned();
    let args = [
        "variant", "-q", "-m", &m, "-f", "80", "-A", &genes, "-I", &vcf, "-R", "{IN}", "-O", &o,
    ];
    for (form, words) in [
        (
            Form::Gzip,
            &[
                "g.fa.gz",
                "is gzip-compressed",
                "needs plain text",
                "gzip -dc",
            ][..],
        ),
        (Form::Dash, &["needs a file, not standard input"]),
        (
            Form::DevStdin,
            &["/dev/stdin", "not a pipe", "write it to a file"],
        ),
        (
            Form::ProcSub,
            &["/dev/fd/", "not a pipe", "write it to a file"],
        ),
    ] {
        let r = run_form(&args, &t.path("g.fa"), form);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(1), "{form:?}: {err}");
        for w in words {
            assert!(err.contains(w), "{form:?}: message lacks `{w}`: {err}");
        }
        assert!(!out.exists(), "{form:?} left the output behind");
    }
    let r = run_form(&args, &t.path("g.fa"), Form::Plain);
    assert!(r.status.success(), "{}", stderr(&r));
    let plain = std::fs::read_to_string(&out).unwrap();
    assert_eq!(plain.matches("OpenSpliceAI=").count(), 4);
    let records = |vcf: &str| -> Vec<String> {
        vcf.lines()
            .filter(|l| !l.starts_with("##"))
            .map(str::to_string)
            .collect()
    };
    let r = run_form(&args, &t.path("g.fa"), Form::Bgzip);
    assert!(r.status.success(), "bgzip: {}", stderr(&r));
    assert_eq!(
        records(&std::fs::read_to_string(&out).unwrap()),
        records(&plain)
    );
}

/// With `-a`, predict reads `-i` by region too: the same refusals as `variant -R` (bgzip is read).
#[test]
fn predict_sequences_with_annotation_need_a_plain_regular_file() {
    let Some(m) = checkpoint() else {
        return;
    };
    let t = Tiny::new();
    let gff = t.arg("a.gff3");
    let out = t.path("out");
    let o = out.to_string_lossy().into_owned();
    let args = [
        "predict", "-q", "-m", &m, "-f", "80", "-a", &gff, "-i", "{IN}", "-o", &o,
    ];
    for (form, words) in [
        (
            Form::Gzip,
            &["g.fa.gz", "is gzip-compressed", "gzip -dc"][..],
        ),
        (Form::Dash, &["needs a file, not standard input"]),
        (
            Form::ProcSub,
            &["/dev/fd/", "not a pipe", "write it to a file"],
        ),
    ] {
        let r = run_form(&args, &t.path("g.fa"), form);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(1), "{form:?}: {err}");
        for w in words {
            assert!(err.contains(w), "{form:?}: message lacks `{w}`: {err}");
        }
        assert!(!out
            .join("SpliceAI_5000_80/acceptor_predictions.bed")
            .exists());
    }
}

/// The HDF5 datasets of test/train/calibrate/transfer are read at random offsets: a pipe is refused
/// saying so, before anything is written.
#[test]
fn hdf5_datasets_refuse_pipes_clearly() {
    let t = Tiny::new();
    let h5dir = t.path("h5");
    let o = Command::new(BIN)
        .args(["create-data", "--genome-fasta"])
        .arg(t.path("g.fa"))
        .arg("--annotation-gff")
        .arg(t.path("a.gff3"))
        .arg("--output-dir")
        .arg(&h5dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let h5 = h5dir.join("dataset_test.h5");
    let h = h5.to_string_lossy().into_owned();
    let out = t.arg("run");
    let mut cases: Vec<Vec<&str>> = vec![vec![
        "train",
        "-f",
        "80",
        "-n",
        "1",
        "--project-name",
        "p",
        "--output-dir",
        &out,
        "--train-dataset",
        "{IN}",
        "--test-dataset",
        &h,
    ]];
    let m = checkpoint();
    if let Some(m) = &m {
        cases.push(vec![
            "test",
            "-m",
            m,
            "-f",
            "80",
            "-o",
            &out,
            "--quiet",
            "--test-dataset",
            "{IN}",
        ]);
        cases.push(vec![
            "transfer",
            "--pretrained-model",
            m,
            "-f",
            "80",
            "-n",
            "1",
            "--project-name",
            "p",
            "--output-dir",
            &out,
            "--train-dataset",
            "{IN}",
            "--test-dataset",
            &h,
        ]);
        cases.push(vec![
            "calibrate",
            "--pretrained-model",
            m,
            "-f",
            "80",
            "--project-name",
            "p",
            "--output-dir",
            &out,
            "--train-dataset",
            &h,
            "--validation-dataset",
            &h,
            "--test-dataset",
            "{IN}",
        ]);
    }
    for args in cases {
        let r = run_form(&args, &h5, Form::ProcSub);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(1), "{args:?}: {err}");
        for w in ["/dev/fd/", "not a regular file", "HDF5", "pipe"] {
            assert!(err.contains(w), "{}: message lacks `{w}`: {err}", args[0]);
        }
        assert!(!err.contains("panicked"));
    }
}

/// Numbers out of range are refused by the parser, naming the flag, before anything is read (the
/// input paths here do not exist).
#[test]
fn numeric_flags_out_of_range_are_refused() {
    let predict = |flag: &'static str, v: &'static str| {
        vec![
            "predict",
            "-i",
            "/nonexistent.fa",
            "-m",
            "/nonexistent.pt",
            "-f",
            "80",
            flag,
            v,
        ]
    };
    let variant = |flag: &'static str, v: &'static str| {
        vec![
            "variant",
            "-R",
            "/nonexistent.fa",
            "-A",
            "/nonexistent.txt",
            "-m",
            "/nonexistent.pt",
            flag,
            v,
        ]
    };
    let cases = [
        (predict("-t", "NaN"), "--threshold"),
        (predict("-t", "nan"), "--threshold"),
        (predict("-t", "-1"), "--threshold"),
        (predict("-t", "-0.5"), "--threshold"),
        (predict("-t", "1"), "--threshold"),
        (predict("-t", "2"), "--threshold"),
        (predict("-t", "inf"), "--threshold"),
        (predict("-t", "abc"), "--threshold"),
        (predict("--batch-size", "0"), "--batch-size"),
        (variant("-D", "5000"), "--distance"),
        (variant("-D", "-1"), "--distance"),
        (variant("-M", "2"), "--mask"),
        (variant("-p", "11"), "--precision"),
        (variant("-p", "-1"), "--precision"),
        (variant("-b", "0"), "--batch-size"),
    ];
    for (args, flag) in cases {
        // Values starting with `-` are given as `FLAG=VALUE`, as a shell user would.
        let (f, v) = (args[args.len() - 2], args[args.len() - 1]);
        let o = Command::new(BIN)
            .args(&args[..args.len() - 2])
            .arg(format!("{f}={v}"))
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(flag),
            "{args:?}: message lacks `{flag}`: {err}"
        );
        assert!(err.contains(v), "{args:?}: message lacks `{v}`: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // In range: accepted by the parser (the run then fails on the missing input, exit 1).
    for (f, v) in [("-t", "0"), ("-t", "0.999"), ("-t", "1e-6")] {
        let args = predict(f, v);
        let o = Command::new(BIN)
            .args(&args[..args.len() - 2])
            .arg(format!("{f}={v}"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{v}: {}", stderr(&o));
    }
}
