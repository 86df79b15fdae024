//! `predict`'s standard outputs: BED6 on the contig (through a BED parser and, where installed, `bedtools
//! getfasta`, which must find GT after donors and AG before acceptors), `--strand both`, `--bigwig` read
//! back with bigtools' reader, the closing summary's sizes and the combinations refused.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::run_bin as run;
use common::PvData;

/// Runs `predict -q -f 80` with the MANE 80nt model into `out` and returns the run directory.
fn predict(model: &Path, out: &Path, args: &[&str]) -> (PathBuf, String) {
    let mut a = vec![
        "predict",
        "-q",
        "-f",
        "80",
        "-m",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    a.extend_from_slice(args);
    let r = run(&a);
    let err = String::from_utf8_lossy(&r.stderr).into_owned();
    assert_eq!(r.status.code(), Some(0), "{err}");
    (out.join("SpliceAI_5000_80"), err)
}

/// Records' first words and sequences.
fn read_fasta(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = Vec::new();
    for line in common::read_text(path).lines() {
        if let Some(h) = line.strip_prefix('>') {
            v.push((h.split_whitespace().next().unwrap().to_string(), Vec::new()));
        } else {
            v.last_mut()
                .unwrap()
                .1
                .extend(line.trim().bytes().map(|b| b.to_ascii_uppercase()));
        }
    }
    v
}

#[derive(Debug, Clone, PartialEq)]
struct BedLine {
    chrom: String,
    start: u64,
    end: u64,
    name: String,
    score: f64,
    strand: char,
}

/// Parses a BED6 file strictly: 6 tab-separated columns, chrom a contig of `contigs`, 0-based half-open
/// `start < end <= length`, a name without whitespace, a score in [0, 1], strand + or -.
fn parse_bed(path: &Path, contigs: &HashMap<String, u64>) -> Vec<BedLine> {
    let text = common::read_text(path);
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let at = format!("{}:{}: {line:?}", path.display(), i + 1);
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 6, "{at}: 6 columns expected");
            let len = *contigs
                .get(f[0])
                .unwrap_or_else(|| panic!("{at}: unknown chrom"));
            let (start, end): (u64, u64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            assert!(
                start < end && end <= len,
                "{at}: interval outside [0, {len})"
            );
            assert_eq!(end - start, 1, "{at}: one base per site");
            assert!(
                !f[3].is_empty() && !f[3].contains(char::is_whitespace),
                "{at}"
            );
            let score: f64 = f[4].parse().unwrap();
            assert!((0.0..=1.0).contains(&score), "{at}");
            assert!(f[5] == "+" || f[5] == "-", "{at}");
            BedLine {
                chrom: f[0].into(),
                start,
                end,
                name: f[3].into(),
                score,
                strand: f[5].chars().next().unwrap(),
            }
        })
        .collect()
}

fn lengths(fasta: &Path) -> HashMap<String, u64> {
    read_fasta(fasta)
        .into_iter()
        .map(|(n, s)| (n, s.len() as u64))
        .collect()
}

fn data() -> Option<(PvData, PathBuf)> {
    let pv = PvData::locate()?;
    let model = common::mane_checkpoint(80)?;
    Some((pv, model))
}

/// The default BED is BED6 on the contig; its sites are upstream's (same scores; donors at the same
/// base, acceptors one base later: upstream writes the intron base before the exon's first base); the
/// closing summary gives each file's lines and bytes.
#[test]
fn standard_bed_is_bed6_at_upstreams_sites() {
    let Some((pv, model)) = data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let fa = pv.input("region200k.fa");
    let contigs = lengths(&fa);
    let fa_arg = fa.to_str().unwrap();
    let (std_dir, err) = predict(
        &model,
        &tmp.path().join("std"),
        &["-i", fa_arg, "-t", "0.001"],
    );
    let (up_dir, _) = predict(
        &model,
        &tmp.path().join("up"),
        &["-i", fa_arg, "-t", "0.001", "--bed-format", "upstream"],
    );
    for (kind, shift) in [("acceptor", 1u64), ("donor", 0)] {
        let file = std_dir.join(format!("{kind}_predictions.bed"));
        let ours = parse_bed(&file, &contigs);
        assert!(ours.len() > 100, "{kind}: {} lines", ours.len());
        assert!(ours
            .iter()
            .all(|l| l.chrom == "chr2R_7000001_7200000" && l.strand == '+'));
        let label = if kind == "acceptor" {
            "Acceptor"
        } else {
            "Donor"
        };
        assert!(ours.iter().all(|l| l.name == label), "{kind}");
        let len = contigs["chr2R_7000001_7200000"];
        let theirs: Vec<(u64, f64)> =
            common::read_text(&up_dir.join(format!("{kind}_predictions.bed")))
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.split('\t').collect();
                    assert_eq!(f[0], "chr2R_7000001_7200000:+");
                    (f[1].parse::<u64>().unwrap() + shift, f[4].parse().unwrap())
                })
                .filter(|(s, _)| *s < len)
                .collect();
        let ours_pos: Vec<(u64, f64)> = ours.iter().map(|l| (l.start, l.score)).collect();
        assert_eq!(ours_pos, theirs, "{kind}: sites differ from upstream's");
        let bytes = std::fs::metadata(&file).unwrap().len();
        let needle = format!("{}: {} lines, ", file.display(), ours.len());
        assert!(err.contains(&needle), "summary lacks `{needle}`: {err}");
        assert!(bytes > 0);
    }
}

/// `--strand both` adds the reverse complement's sites on strand `-`, mapped back onto the contig: the
/// same sites and scores as scoring a reverse-complemented copy of the record by hand.
#[test]
fn strand_both_maps_the_reverse_complement_onto_the_contig() {
    let Some((pv, model)) = data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let fa = pv.input("region200k.fa");
    let contigs = lengths(&fa);
    let (name, mut seq) = read_fasta(&fa).remove(0);
    let len = seq.len() as u64;
    seq.reverse();
    for b in &mut seq {
        *b = match *b {
            b'A' => b'T',
            b'T' => b'A',
            b'C' => b'G',
            b'G' => b'C',
            x => x,
        };
    }
    let rc = tmp.path().join("rc.fa");
    let mut text = String::from(">rc\n");
    for chunk in seq.chunks(60) {
        text.push_str(std::str::from_utf8(chunk).unwrap());
        text.push('\n');
    }
    std::fs::write(&rc, text).unwrap();
    let args = ["-t", "0.001"];
    let (plus_dir, _) = predict(
        &model,
        &tmp.path().join("plus"),
        &[&["-i", fa.to_str().unwrap()][..], &args].concat(),
    );
    let (both_dir, _) = predict(
        &model,
        &tmp.path().join("both"),
        &[&["-i", fa.to_str().unwrap(), "--strand", "both"][..], &args].concat(),
    );
    let (rc_dir, _) = predict(
        &model,
        &tmp.path().join("rc"),
        &[&["-i", rc.to_str().unwrap()][..], &args].concat(),
    );
    for kind in ["acceptor", "donor"] {
        let f = format!("{kind}_predictions.bed");
        let plus = common::read_text(&plus_dir.join(&f));
        let both = common::read_text(&both_dir.join(&f));
        assert!(both.starts_with(&plus), "{kind}: the + lines come first");
        let minus = parse_bed(&both_dir.join(&f), &contigs).split_off(plus.lines().count());
        assert!(!minus.is_empty() && minus.iter().all(|l| l.strand == '-' && l.chrom == name));
        assert!(
            minus.windows(2).all(|w| w[0].start < w[1].start),
            "{kind}: - lines ascend on the contig"
        );
        let rc_contigs = HashMap::from([("rc".to_string(), len)]);
        let mut by_hand: Vec<(u64, f64)> = parse_bed(&rc_dir.join(&f), &rc_contigs)
            .iter()
            .map(|l| (len - 1 - l.start, l.score))
            .collect();
        by_hand.sort_by_key(|x| x.0);
        let got: Vec<(u64, f64)> = minus.iter().map(|l| (l.start, l.score)).collect();
        assert_eq!(got, by_hand, "{kind}");
    }
}

/// `bedtools getfasta -s` on our coordinates: the two bases after a donor (the last exon base) are GT
/// (or GC) and the two before an acceptor (the first exon base) are AG, on both strands, for the sites
/// scored above 0.5 of the whole region (`--strand both`) and of its genes (`-a`).
#[test]
fn bedtools_getfasta_finds_the_splice_motifs() {
    let Some((pv, model)) = data() else { return };
    if Command::new("bedtools").arg("--version").output().is_err() {
        common::missing("bedtools (apt-get install bedtools; scripts/ci-setup.sh installs it)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fa = tmp.path().join("region.fa");
    std::fs::copy(pv.input("region200k.fa"), &fa).unwrap();
    let gff = pv.input_arg("region200k.gff3");
    let contigs = lengths(&fa);
    let fa_arg = fa.to_str().unwrap();
    for (run, extra) in [
        ("whole", vec!["--strand", "both"]),
        ("genes", vec!["-a", gff.as_str()]),
    ] {
        let mut args = vec!["-i", fa_arg, "-t", "0.5"];
        args.extend(extra);
        let (dir, _) = predict(&model, &tmp.path().join(run), &args);
        for (kind, motifs) in [("donor", &["GT", "GC"][..]), ("acceptor", &["AG"][..])] {
            let sites = parse_bed(&dir.join(format!("{kind}_predictions.bed")), &contigs);
            assert!(sites.len() >= 10, "{run} {kind}: {} sites", sites.len());
            assert!(sites.iter().any(|s| s.strand == '-') && sites.iter().any(|s| s.strand == '+'));
            // The motif's interval on the contig: after a donor / before an acceptor in the
            // transcript's direction.
            let mut bed = String::new();
            for s in &sites {
                let after = (kind == "donor") == (s.strand == '+');
                let (a, b) = if after {
                    (s.end, s.end + 2)
                } else {
                    (s.start.saturating_sub(2), s.start)
                };
                bed.push_str(&format!(
                    "{}\t{a}\t{b}\t{}\t0\t{}\n",
                    s.chrom, s.name, s.strand
                ));
            }
            let motif_bed = tmp.path().join(format!("{run}_{kind}_motifs.bed"));
            std::fs::write(&motif_bed, bed).unwrap();
            let out = Command::new("bedtools")
                .args(["getfasta", "-s", "-tab", "-fi", fa_arg, "-bed"])
                .arg(&motif_bed)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let got: Vec<String> = text
                .lines()
                .map(|l| l.split('\t').nth(1).unwrap().to_ascii_uppercase())
                .collect();
            assert_eq!(got.len(), sites.len());
            let hits = got.iter().filter(|m| motifs.contains(&m.as_str())).count();
            eprintln!(
                "{run} {kind}: {hits}/{} sites above 0.5 have {motifs:?}",
                got.len()
            );
            assert!(
                hits * 100 >= got.len() * 95,
                "{run} {kind}: only {hits}/{} {motifs:?}: {got:?}",
                got.len()
            );
        }
    }
}

/// `--bigwig` writes four tracks that bigtools reads back: every value at the base and on the strand of
/// its BED line, with the same score, and nothing else; the contigs with their lengths. A track with no
/// value is not written.
#[test]
fn bigwig_tracks_read_back() {
    let Some((pv, model)) = data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let fa = pv.input("mini.fa");
    let contigs = lengths(&fa);
    let (dir, err) = predict(
        &model,
        &tmp.path().join("o"),
        &[
            "-i",
            fa.to_str().unwrap(),
            "-t",
            "0.0001",
            "--strand",
            "both",
            "--bigwig",
        ],
    );
    for (kind, strand, track) in [
        ("acceptor", '+', "acceptor_plus.bw"),
        ("acceptor", '-', "acceptor_minus.bw"),
        ("donor", '+', "donor_plus.bw"),
        ("donor", '-', "donor_minus.bw"),
    ] {
        let path = dir.join(track);
        assert!(err.contains(&path.display().to_string()), "{err}");
        let lines: Vec<BedLine> = parse_bed(&dir.join(format!("{kind}_predictions.bed")), &contigs)
            .into_iter()
            .filter(|l| l.strand == strand)
            .collect();
        assert!(!lines.is_empty(), "{track}");
        let mut bw = bigtools::BigWigRead::open_file(&path).unwrap();
        let mut chroms: Vec<(String, u64)> = bw
            .chroms()
            .iter()
            .map(|c| (c.name.clone(), c.length as u64))
            .collect();
        chroms.sort();
        let mut want: Vec<(String, u64)> = contigs.clone().into_iter().collect();
        want.sort();
        assert_eq!(chroms, want, "{track}");
        let mut values = 0;
        for (chrom, len) in &want {
            let vals: Vec<bigtools::Value> = bw
                .get_interval(chrom, 0, *len as u32)
                .unwrap()
                .map(|v| v.unwrap())
                .collect();
            values += vals.len();
            let at: HashMap<u32, f32> = vals.iter().map(|v| (v.start, v.value)).collect();
            assert!(vals.iter().all(|v| v.end == v.start + 1));
            for l in lines.iter().filter(|l| &l.chrom == chrom) {
                let v = at
                    .get(&(l.start as u32))
                    .unwrap_or_else(|| panic!("{track}: no value at {l:?}"));
                assert!((*v as f64 - l.score).abs() <= 5e-7, "{track}: {v} vs {l:?}");
            }
        }
        assert_eq!(values, lines.len(), "{track}: values vs BED lines");
    }
    // No score above -t: a bigWig cannot be empty, so no track and no temporary file, said in the summary.
    let (dir, err) = predict(
        &model,
        &tmp.path().join("none"),
        &["-i", fa.to_str().unwrap(), "-t", "0.999", "--bigwig"],
    );
    assert!(
        err.contains("acceptor_plus.bw: not written (no score above the threshold)"),
        "{err}"
    );
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["acceptor_predictions.bed", "donor_predictions.bed"]);
}

/// Combinations that cannot work are refused before anything is read or written; a bigWig output named
/// as an input is refused by the no-clobber check.
#[test]
fn bad_combinations_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let fa = tmp.path().join("in.fa");
    std::fs::write(&fa, ">s\nACGT\n").unwrap();
    let model = tmp.path().join("m.pt");
    std::fs::write(&model, "not a model").unwrap();
    let out = tmp.path().join("out");
    let (f, m, o) = (
        fa.to_str().unwrap(),
        model.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let cases: [(Vec<&str>, &[&str]); 2] = [
        (
            vec!["--bigwig", "-a", f],
            &["--bigwig", "-a/--annotation-file"],
        ),
        (
            vec!["--strand", "both", "--bed-format", "upstream"],
            &["--strand both", "--bed-format standard"],
        ),
    ];
    for (extra, needles) in cases {
        let mut a = vec!["predict", "-q", "-f", "80", "-i", f, "-m", m, "-o", o];
        a.extend(extra);
        let r = run(&a);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{err}");
        for n in needles {
            assert!(err.contains(n), "lacks `{n}`: {err}");
        }
        assert!(!err.contains("panicked") && !out.exists(), "{err}");
    }
    // An input where a track would go.
    let track = out.join("SpliceAI_5000_80/donor_minus.bw");
    std::fs::create_dir_all(track.parent().unwrap()).unwrap();
    std::fs::write(&track, ">s\nACGT\n").unwrap();
    let r = run(&[
        "predict",
        "-q",
        "-f",
        "80",
        "-i",
        track.to_str().unwrap(),
        "-m",
        m,
        "-o",
        o,
        "--bigwig",
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_ne!(r.status.code(), Some(0), "{err}");
    assert!(
        err.contains("donor_minus.bw") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&track).unwrap(), ">s\nACGT\n");
}
