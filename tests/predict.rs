//! `predict --bed-format upstream` against OpenSpliceAI 0.0.7's own outputs on the shared fly data
//! (`../shared/data/predict-variant/upstream/`): same BED lines (names, coordinates, strands, order),
//! scores within float noise; upstream's bugs marked F fixed; bad input refused with a clear message.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::PvData;

const BIN: &str = env!("CARGO_BIN_EXE_openspliceai-rs");
/// Largest score difference allowed after `{:.6f}` formatting: the fused CPU kernels sum in another
/// order than PyTorch (measured: at most 5e-6 over every run below).
const SCORE_TOL: f64 = 1e-5;

/// Runs `predict -q --bed-format upstream`: this file compares with upstream's own lines.
fn run_predict(args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .arg("predict")
        .arg("-q")
        .args(["--bed-format", "upstream"])
        .args(args)
        .output()
        .expect("run the binary");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs `predict` into a fresh directory and returns the run directory `SpliceAI_5000_<F>`.
fn predict_ok(tmp: &Path, flank: usize, args: &[&str]) -> PathBuf {
    let model = common::mane_checkpoint(flank).expect("checkpoint");
    let f = flank.to_string();
    let mut all = vec![
        "-m",
        model.to_str().unwrap(),
        "-f",
        &f,
        "-o",
        tmp.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = run_predict(&all);
    assert!(out.status.success(), "predict failed");
    tmp.join(format!("SpliceAI_5000_{flank}"))
}

/// Compares our BED with upstream's: every column but the score identical, scores within SCORE_TOL.
/// Returns the largest score difference.
fn compare_bed(ours: &Path, theirs: &Path) -> f64 {
    let a = common::read_text(ours);
    let b = common::read_text(theirs);
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    assert_eq!(
        a.len(),
        b.len(),
        "{} vs {}: line counts differ",
        ours.display(),
        theirs.display()
    );
    let mut max = 0.0f64;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let (fx, fy): (Vec<&str>, Vec<&str>) = (x.split('\t').collect(), y.split('\t').collect());
        assert_eq!(fx.len(), fy.len(), "line {}: {x:?} vs {y:?}", i + 1);
        for c in 0..fx.len() {
            if c == 4 {
                let d = (fx[c].parse::<f64>().unwrap() - fy[c].parse::<f64>().unwrap()).abs();
                max = max.max(d);
                assert!(d <= SCORE_TOL, "line {}: {x:?} vs {y:?}", i + 1);
            } else {
                assert_eq!(
                    fx[c],
                    fy[c],
                    "line {} column {}: {x:?} vs {y:?}",
                    i + 1,
                    c + 1
                );
            }
        }
    }
    max
}

fn compare_run(ours: &Path, upstream: &Path) {
    for kind in ["acceptor", "donor"] {
        let name = format!("{kind}_predictions.bed");
        let max = compare_bed(&ours.join(&name), &upstream.join(format!("{name}.gz")));
        eprintln!("{kind}: identical lines, largest score difference {max:.1e}");
    }
}

fn parity(flank: usize, input: &str, run: &str, extra: &[&str]) {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let fa = c.input(input);
    let mut args = vec!["-i", fa.to_str().unwrap()];
    args.extend_from_slice(extra);
    let dir = predict_ok(tmp.path(), flank, &args);
    compare_run(&dir, &c.upstream(&format!("predict/{run}")));
}

fn gff_parity(flank: usize, fasta: &str, gff: &str, run: &str, extra: &[&str]) {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (fa, an) = (c.input(fasta), c.input(gff));
    let mut args = vec!["-i", fa.to_str().unwrap(), "-a", an.to_str().unwrap()];
    args.extend_from_slice(extra);
    let dir = predict_ok(tmp.path(), flank, &args);
    let up = c.upstream(run);
    compare_run(&dir, &up);
    let stem = fasta.trim_end_matches(".fa");
    assert_eq!(
        common::read_text(&dir.join(format!("{stem}_genes.fa"))),
        common::read_text(&up.join(format!("{stem}_genes.fa.gz"))),
        "genes FASTA differs from upstream's"
    );
}

#[test]
fn region_400nt() {
    parity(400, "region200k.fa", "400_region200k", &[]);
}

#[test]
fn region_80nt() {
    parity(80, "region200k.fa", "80_region200k", &[]);
}

#[test]
fn region_10000nt() {
    parity(10000, "region200k.fa", "10000_region200k", &[]);
}

#[test]
fn mini_400nt_descriptions_minus_names_and_short_records() {
    parity(400, "mini.fa", "400_mini", &[]);
}

#[test]
fn mini_10000nt() {
    parity(10000, "mini.fa", "10000_mini", &[]);
}

#[test]
fn threshold_half() {
    parity(400, "region200k.fa", "400_region200k_t0.5", &["-t", "0.5"]);
}

/// Upstream bug 1.9.1 (F): with a split every `chr` record was dropped. Records are never split here
/// (windows stream), so the output equals the unsplit run.
#[test]
fn split_threshold_no_longer_drops_records() {
    parity(
        400,
        "region200k.fa",
        "400_region200k",
        &["--split-threshold", "60000"],
    );
}

#[test]
fn gff_400nt() {
    gff_parity(
        400,
        "region200k.fa",
        "region200k.gff3",
        "predict/400_region200k_gff",
        &[],
    );
}

#[test]
fn gff_10000nt() {
    gff_parity(
        10000,
        "region200k.fa",
        "region200k.gff3",
        "predict/10000_region200k_gff",
        &[],
    );
}

#[test]
fn gff_gene_flank_0() {
    gff_parity(
        400,
        "region200k.fa",
        "region200k.gff3",
        "predict/400_region200k_gff_geneflank0",
        &["--gene-flank", "0"],
    );
}

#[test]
fn gff_without_chr_names() {
    gff_parity(
        400,
        "region200k_nochr.fa",
        "region200k_nochr.gff3",
        "predict/400_region200k_nochr_gff",
        &[],
    );
}

/// Strand `.` genes dropped, lines without tabs reported, `Name=` before `ID=`, other types ignored.
#[test]
fn gff_edge_cases() {
    gff_parity(
        400,
        "region200k.fa",
        "edge_genes.gff3",
        "edge/predict_gff_variants",
        &[],
    );
}

/// Upstream aborts on a gene whose seqid the FASTA lacks (F): skipped with a warning, the rest scored.
#[test]
fn gff_missing_seqid_skips_the_gene() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = common::mane_checkpoint(400).unwrap();
    let (fa, an) = (
        c.input("region200k.fa"),
        c.input("edge_gff_missing_seqid.gff3"),
    );
    let out = Command::new(BIN)
        .args(["predict", "-q", "-f", "400", "-m"])
        .arg(&model)
        .arg("-i")
        .arg(&fa)
        .arg("-a")
        .arg(&an)
        .arg("-o")
        .arg(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("chrOther") && err.contains("skipped"), "{err}");
    let dir = tmp.path().join("SpliceAI_5000_400");
    let genes = std::fs::read_to_string(dir.join("region200k_genes.fa")).unwrap();
    assert_eq!(genes.matches('>').count(), 1, "{genes}");
    assert!(!std::fs::read_to_string(dir.join("donor_predictions.bed"))
        .unwrap()
        .is_empty());
}

/// A directory of two copies of the model reproduces the single model (mean of softmax).
#[test]
fn model_directory_is_averaged() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let src = common::mane_checkpoint(400).unwrap();
    std::fs::copy(&src, models.join("a.pt")).unwrap();
    std::fs::copy(&src, models.join("b.pth")).unwrap();
    std::fs::write(models.join("notes.txt"), "not a model").unwrap();
    let out_dir = tmp.path().join("out");
    let fa = c.input("mini.fa");
    let out = run_predict(&[
        "-i",
        fa.to_str().unwrap(),
        "-m",
        models.to_str().unwrap(),
        "-f",
        "400",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 model(s)"));
    compare_run(
        &out_dir.join("SpliceAI_5000_400"),
        &c.upstream("edge/predict_dir_two_models"),
    );
}

fn assert_fails(args: &[&str], needles: &[&str], out_dir: &Path) {
    let out = run_predict(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {args:?}");
    for n in needles {
        assert!(err.contains(n), "message lacks `{n}`: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    let run = out_dir.join("SpliceAI_5000_400");
    if run.exists() {
        for e in std::fs::read_dir(&run).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !name.ends_with(".bed")
                    && !name.ends_with(".h5")
                    && !openspliceai_rs::atomic::is_temp_name(&name),
                "left {} behind",
                p.display()
            );
        }
    }
}

#[test]
fn bad_inputs_fail_clearly_without_output() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("out");
    let os = o.to_str().unwrap();
    let m400 = common::mane_checkpoint(400).unwrap();
    let m = m400.to_str().unwrap();
    let fa = c.input("mini.fa");
    let fa = fa.to_str().unwrap();
    let bad_fa = tmp.path().join("bad.fa");
    std::fs::write(&bad_fa, "ACGT\n>x\nACGT\n").unwrap();
    let garbage = tmp.path().join("garbage.pt");
    std::fs::write(&garbage, b"not a checkpoint").unwrap();
    let empty = tmp.path().join("empty_dir");
    std::fs::create_dir(&empty).unwrap();
    let gff = tmp.path().join("bad.gff3");
    std::fs::write(&gff, "chr2R\tx\tgene\tone\t20\t.\t+\t.\tID=g\n").unwrap();
    let missing = tmp.path().join("missing.fa");
    // A gene is scored (batch of 1: its rows reach predict.h5) before line 2 fails.
    let late_gff = tmp.path().join("late.gff3");
    std::fs::write(
        &late_gff,
        "chr2R_7000001_7200000\tx\tgene\t100\t9000\t.\t+\t.\tID=g\nchr2R\tx\tgene\tone\t20\t.\t+\t.\tID=h\n",
    )
    .unwrap();
    let region = c.input("region200k.fa");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec![
                "-i",
                missing.to_str().unwrap(),
                "-m",
                m,
                "-f",
                "400",
                "-o",
                os,
            ],
            vec!["missing.fa"],
        ),
        (
            vec![
                "-i",
                bad_fa.to_str().unwrap(),
                "-m",
                m,
                "-f",
                "400",
                "-o",
                os,
            ],
            vec!["bad.fa:1", ">"],
        ),
        (
            vec!["-i", fa, "-m", m, "-f", "10000", "-o", os],
            vec!["model_400nt_rs10.pt", "flanking"],
        ),
        (
            vec![
                "-i",
                fa,
                "-m",
                garbage.to_str().unwrap(),
                "-f",
                "400",
                "-o",
                os,
            ],
            vec!["garbage.pt"],
        ),
        (
            vec![
                "-i",
                fa,
                "-m",
                empty.to_str().unwrap(),
                "-f",
                "400",
                "-o",
                os,
            ],
            vec!["empty_dir", "no model"],
        ),
        (
            vec![
                "-i",
                fa,
                "-a",
                gff.to_str().unwrap(),
                "-m",
                m,
                "-f",
                "400",
                "-o",
                os,
            ],
            vec!["bad.gff3:1", "one"],
        ),
        (vec!["-i", fa, "-m", m, "-f", "401", "-o", os], vec!["401"]),
        (
            vec![
                "-i",
                region.to_str().unwrap(),
                "-a",
                late_gff.to_str().unwrap(),
                "-p",
                "--batch-size",
                "1",
                "-m",
                m,
                "-f",
                "400",
                "-o",
                os,
            ],
            vec!["late.gff3:2"],
        ),
    ];
    for (args, needles) in cases {
        assert_fails(&args, &needles, &o);
    }
}

/// A 3 Mb single-record FASTA streams: peak memory stays far below what holding windows for the whole
/// record would take (600 windows × 4 × 5080 × 4 B ≈ 49 MB of input alone, 36 MB of output).
#[test]
fn long_record_streams_in_bounded_memory() {
    if common::fixtures_dir().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fa = tmp.path().join("long.fa");
    let mut seq = String::with_capacity(3_000_000 + 3_000_000 / 60);
    let mut state: u64 = 12345;
    for i in 0..3_000_000u64 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seq.push(b"ACGT"[(state >> 62) as usize] as char);
        if i % 60 == 59 {
            seq.push('\n');
        }
    }
    std::fs::write(&fa, format!(">chrLong test\n{seq}\n")).unwrap();
    let out = run_predict(&[
        "-i",
        fa.to_str().unwrap(),
        "-m",
        common::mane_checkpoint(80).unwrap().to_str().unwrap(),
        "-f",
        "80",
        "-t",
        "0.5",
        "-o",
        tmp.path().join("out").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("600 windows"), "{err}");
    let rss: f64 = err
        .lines()
        .find_map(|l| l.strip_prefix("peak RSS: "))
        .and_then(|r| r.trim_end_matches(" MiB").parse().ok())
        .expect("peak RSS line");
    assert!(rss < 250.0, "peak RSS {rss} MiB");
}

/// `predict.h5` of a `-p` run, read with the pure-Rust reader: (predictions, shape, NAME, LEN).
fn read_predict_h5(dir: &Path) -> (Vec<f32>, Vec<u64>, Vec<String>, Vec<i64>) {
    let f = hdf5_reader::Hdf5File::open(dir.join("predict.h5")).expect("predict.h5 opens");
    let p = f.dataset("predictions").unwrap();
    assert!(
        matches!(
            p.dtype(),
            hdf5_reader::Datatype::FloatingPoint { size: 4, .. }
        ),
        "{:?}",
        p.dtype()
    );
    let shape = p.shape().to_vec();
    let values: Vec<f32> = p.read_array::<f32>().unwrap().iter().copied().collect();
    let names = f.dataset("NAME").unwrap().read_strings().unwrap();
    let lens: Vec<i64> = f
        .dataset("LEN")
        .unwrap()
        .read_array::<i64>()
        .unwrap()
        .iter()
        .copied()
        .collect();
    (values, shape, names, lens)
}

/// `-p` (upstream's --predict-all, which crashes in 0.0.7, F) writes every window's scores to predict.h5
/// and the same BED files as a run without it; the BED scores are the stored scores at their positions.
#[test]
fn predict_all_writes_predict_h5_and_the_same_beds() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let fa = c.input("region200k.fa");
    let fa = fa.to_str().unwrap();
    let plain = predict_ok(&tmp.path().join("plain"), 400, &["-i", fa]);
    let all = predict_ok(&tmp.path().join("all"), 400, &["-i", fa, "-p"]);
    assert!(!plain.join("predict.h5").exists());
    for bed in ["acceptor_predictions.bed", "donor_predictions.bed"] {
        assert!(
            common::read_text(&plain.join(bed)) == common::read_text(&all.join(bed)),
            "{bed} differs with -p"
        );
    }
    let (values, shape, names, lens) = read_predict_h5(&all);
    assert_eq!(shape, [40, 3, 5000]);
    assert_eq!(names, ["chr2R_7000001_7200000:+"]);
    assert_eq!(lens, [40]);
    // Position q = 5000 w + k of channel ch is values[(w * 3 + ch) * 5000 + k].
    let at = |q: usize, ch: usize| values[((q / 5000) * 3 + ch) * 5000 + q % 5000];
    for q in 0..200_000 {
        let sum: f32 = (0..3).map(|ch| at(q, ch)).sum();
        assert!((sum - 1.0).abs() < 1e-5, "position {q}: sum {sum}");
    }
    // Every BED line (7-column, record-relative) holds the stored score at its position, and every
    // stored score above the threshold has its line.
    for (bed, ch, pos_col) in [
        ("acceptor_predictions.bed", 1, 2),
        ("donor_predictions.bed", 2, 1),
    ] {
        let text = common::read_text(&all.join(bed));
        let mut lines = 0;
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let q: usize = f[pos_col].parse().unwrap();
            assert_eq!(f[4], format!("{:.6}", at(q, ch) as f64), "{bed}: {line}");
            lines += 1;
        }
        let above = (0..200_000)
            .filter(|&q| at(q, ch) > 1e-6 && (ch == 2 || q > 0))
            .count();
        assert_eq!(lines, above, "{bed}: lines vs stored scores above 1e-6");
    }
}

/// Records upstream drops from the BEDs (a strand-`.` gene) are still scored into predict.h5, as
/// upstream's NAME/LEN hold them; the BEDs stay upstream's.
#[test]
fn predict_all_with_genes_keeps_every_record() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (fa, an) = (c.input("region200k.fa"), c.input("edge_genes.gff3"));
    let args = ["-i", fa.to_str().unwrap(), "-a", an.to_str().unwrap(), "-p"];
    let dir = predict_ok(tmp.path(), 400, &args);
    compare_run(&dir, &c.upstream("edge/predict_gff_variants"));
    let (values, shape, names, lens) = read_predict_h5(&dir);
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names[0].contains("(.):+"), "{names:?}");
    assert_eq!(shape[1..], [3, 5000]);
    assert_eq!(lens.iter().sum::<i64>() as u64, shape[0]);
    assert_eq!(values.len() as u64, shape[0] * 3 * 5000);
}

/// `-a` reads a gzip or bgzip GFF as it reads the plain one (it did not before the inputs shared one opener):
/// the BED files and the genes FASTA are byte-identical.
#[test]
fn gff_gzip_and_bgzip_read_as_plain() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (fa, gff) = (c.input("region200k.fa"), c.input("region200k.gff3"));
    let (gz, bgz) = (tmp.path().join("a.gff3.gz"), tmp.path().join("b.gff3.gz"));
    common::gzip_copy(&gff, &gz);
    common::bgzip_copy(&gff, &bgz);
    let run = |an: &Path, sub: &str| {
        let out = tmp.path().join(sub);
        let args = ["-i", fa.to_str().unwrap(), "-a", an.to_str().unwrap()];
        predict_ok(&out, 80, &args)
    };
    let plain = run(&gff, "plain");
    for dir in [run(&gz, "gz"), run(&bgz, "bgz")] {
        for f in [
            "acceptor_predictions.bed",
            "donor_predictions.bed",
            "region200k_genes.fa",
        ] {
            assert_eq!(
                std::fs::read(plain.join(f)).unwrap(),
                std::fs::read(dir.join(f)).unwrap(),
                "{f} differs for {}",
                dir.display()
            );
        }
    }
}
