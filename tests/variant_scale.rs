//! `variant` at genome scale, input side: `--shard I/N` outputs concatenate to the unsharded output,
//! `--region`/`--regions-file` select records by POS as filtering the unsharded output does, a bgzipped
//! VCF with a `.tbi` or `.csi` index reads as the plain one (and only the regions' blocks are read), and
//! the bad inputs (unknown contigs, malformed specs, a stale index, an unsorted VCF) fail clearly with
//! nothing written. Runs the 80nt OpenSpliceAI-MANE model on the shared 91-record fly VCF.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::PvData;
use openspliceai_rs::genome::vcf_index::SelectedVcf;
use openspliceai_rs::genome::{Regions, Shard};

const BIN: &str = env!("CARGO_BIN_EXE_openspliceai-rs");
const CONTIG: &str = "chr2R_7000001_7200000";

/// The shared inputs and the 80nt model, or `None` (a skip) when the data is absent.
struct Fly {
    data: PvData,
    model: PathBuf,
    /// The reference FASTA (-R).
    fa: PathBuf,
}

impl Fly {
    fn locate() -> Option<Fly> {
        let data = PvData::locate()?;
        let model = common::mane_checkpoint(80)?;
        let fa = data.input("region200k.fa");
        Some(Fly { data, model, fa })
    }

    fn vcf(&self) -> PathBuf {
        self.data.input("variants.vcf")
    }

    /// Runs `variant` on `input` writing `out`, with `extra` flags; returns the process output.
    fn run(&self, input: &Path, out: &Path, extra: &[&str]) -> Output {
        let o = Command::new(BIN)
            .arg("variant")
            .args(["-q", "--no-provenance", "-f", "80", "-R"])
            .arg(&self.fa)
            .arg("-A")
            .arg(self.data.input("genes_region200k.txt"))
            .arg("-m")
            .arg(&self.model)
            .arg("-I")
            .arg(input)
            .arg("-O")
            .arg(out)
            .args(extra)
            .output()
            .expect("run the binary");
        eprintln!("{}", String::from_utf8_lossy(&o.stderr));
        o
    }

    /// Runs `variant` with `input` piped to it, read as `-I <name>` (`-`, `/dev/stdin`).
    fn run_stdin(&self, input: &[u8], name: &str, out: &Path, extra: &[&str]) -> Output {
        let mut child = Command::new(BIN)
            .arg("variant")
            .args(["-q", "--no-provenance", "-f", "80", "-R"])
            .arg(&self.fa)
            .arg("-A")
            .arg(self.data.input("genes_region200k.txt"))
            .arg("-m")
            .arg(&self.model)
            .args(["-I", name, "-O"])
            .arg(out)
            .args(extra)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the binary");
        // The child may refuse before reading all of it.
        child.stdin.take().unwrap().write_all(input).ok();
        let o = child.wait_with_output().unwrap();
        eprintln!("{}", String::from_utf8_lossy(&o.stderr));
        o
    }

    /// Runs `variant` and returns its output VCF and stderr, asserting success.
    fn ok(&self, input: &Path, dir: &Path, extra: &[&str]) -> (String, String) {
        let out = dir.join(format!(
            "out{}.vcf",
            extra.join("_").replace(['/', ':'], "-")
        ));
        let o = self.run(input, &out, extra);
        assert!(o.status.success(), "variant {extra:?} failed");
        (
            std::fs::read_to_string(&out).unwrap(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// Runs `variant`, asserting it fails with exit status `code` (any non-zero one for `None`), with
    /// every word of `words` in its message, and leaves no output.
    fn fails(&self, input: &Path, dir: &Path, extra: &[&str], code: Option<i32>, words: &[&str]) {
        let out = dir.join("refused.vcf");
        let o = self.run(input, &out, extra);
        let err = String::from_utf8_lossy(&o.stderr);
        match code {
            Some(c) => assert_eq!(o.status.code(), Some(c), "{extra:?}: {err}"),
            None => assert!(!o.status.success(), "{extra:?} succeeded"),
        }
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
        for w in words {
            assert!(err.contains(w), "{extra:?}: `{w}` not in: {err}");
        }
        assert!(!out.exists(), "{extra:?} left {}", out.display());
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("refused"))
            .collect();
        assert!(left.is_empty(), "{extra:?} left {left:?}");
    }
}

fn header(vcf: &str) -> Vec<&str> {
    vcf.lines().filter(|l| l.starts_with('#')).collect()
}

fn records(vcf: &str) -> Vec<&str> {
    vcf.lines().filter(|l| !l.starts_with('#')).collect()
}

fn pos(line: &str) -> u64 {
    line.split('\t').nth(1).unwrap().parse().unwrap()
}

/// Runs a tool (bgzip, tabix); `false` (a skip, or a failure under CI) when it is not installed.
fn tool(name: &str, args: &[&str], dir: &Path) -> bool {
    match Command::new(name).args(args).current_dir(dir).status() {
        Ok(s) => {
            assert!(s.success(), "{name} {args:?} failed");
            true
        }
        Err(e) => {
            common::missing(&format!(
                "`{name}` cannot run ({e}); install htslib's tools"
            ));
            false
        }
    }
}

/// `src` bgzipped into `dir/name` and indexed (`-C`: CSI); `None` when bgzip or tabix is absent.
fn bgzip_and_index(src: &Path, dir: &Path, name: &str, csi: bool) -> Option<PathBuf> {
    let gz = dir.join(name);
    std::fs::copy(src, dir.join(name.trim_end_matches(".gz"))).unwrap();
    if !tool("bgzip", &["-f", name.trim_end_matches(".gz")], dir) {
        return None;
    }
    let mut args = vec!["-f", "-p", "vcf", name];
    if csi {
        args.insert(0, "-C");
    }
    tool("tabix", &args, dir).then_some(gz)
}

#[test]
fn shards_concatenate_to_the_unsharded_output() {
    let Some(fly) = Fly::locate() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (whole, _) = fly.ok(&fly.vcf(), dir.path(), &[]);
    let want = records(&whole);
    assert_eq!(want.len(), 91);
    for n in [1u64, 2, 3, 7, 200] {
        let mut got: Vec<String> = Vec::new();
        for i in 1..=n {
            let spec = format!("{i}/{n}");
            let (part, err) = fly.ok(&fly.vcf(), dir.path(), &["--shard", &spec]);
            assert_eq!(header(&part), header(&whole), "shard {spec}: header");
            let recs = records(&part);
            let range = Shard { index: i, count: n }.range(91);
            assert_eq!(recs.len() as u64, range.end - range.start, "shard {spec}");
            if n > 1 {
                let said = if recs.is_empty() {
                    format!("shard {spec} (none of the 91 selected records)")
                } else {
                    format!(
                        "shard {spec} (records {}-{} of the 91 selected)",
                        range.start + 1,
                        range.end
                    )
                };
                assert!(err.contains(&said), "{said} not in: {err}");
            }
            got.extend(recs.iter().map(|s| s.to_string()));
        }
        assert_eq!(got, want, "{n} shards concatenated");
    }
}

#[test]
fn regions_select_records_by_pos() {
    let Some(fly) = Fly::locate() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (whole, _) = fly.ok(&fly.vcf(), dir.path(), &[]);
    // Two regions, the second overlapping the first, and a BED region (0-based 97000 = POS 97001).
    let bed = dir.path().join("regions.bed");
    std::fs::write(&bed, format!("track name=x\n{CONTIG}\t97000\t98200\n")).unwrap();
    let (a, b) = (
        format!("{CONTIG}:20000-30000"),
        format!("{CONTIG}:25,000-80000"),
    );
    let bed_arg = bed.to_string_lossy().into_owned();
    let extra = [
        "--region",
        a.as_str(),
        "--region",
        b.as_str(),
        "--regions-file",
        bed_arg.as_str(),
    ];
    let (sel, err) = fly.ok(&fly.vcf(), dir.path(), &extra);
    assert!(err.contains("no .tbi or .csi index"), "no warning: {err}");
    assert_eq!(header(&sel), header(&whole));
    let want: Vec<&str> = records(&whole)
        .into_iter()
        .filter(|l| matches!(pos(l), 20000..=80000 | 97001..=98200))
        .collect();
    assert!(want.len() > 10 && want.len() < 91, "{}", want.len());
    assert_eq!(records(&sel), want);
    // Standard input and a pipe are scanned (no counting pass), with the same records.
    for name in ["-", "/dev/stdin"] {
        let out = dir.path().join("stdin.vcf");
        let text = std::fs::read(fly.vcf()).unwrap();
        let o = fly.run_stdin(&text, name, &out, &extra);
        assert!(o.status.success(), "-I {name}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), sel, "-I {name}");
    }
    // A whole contig is every record; a region without records gives a header-only VCF.
    let (all, _) = fly.ok(&fly.vcf(), dir.path(), &["--region", CONTIG]);
    assert_eq!(all, whole);
    let empty_region = format!("{CONTIG}:150000-150010");
    let (none, _) = fly.ok(&fly.vcf(), dir.path(), &["--region", &empty_region]);
    assert_eq!(none, header(&whole).join("\n") + "\n");
    // Shards of a selection concatenate to the selection.
    let mut got = Vec::new();
    for i in 1..=3 {
        let spec = format!("{i}/3");
        let mut e = extra.to_vec();
        e.extend(["--shard", spec.as_str()]);
        let (part, err) = fly.ok(&fly.vcf(), dir.path(), &e);
        assert!(
            err.contains(&format!("of the {} selected", want.len())),
            "{err}"
        );
        got.extend(records(&part).iter().map(|s| s.to_string()));
    }
    assert_eq!(got, want);
}

#[test]
fn indexed_input_reads_as_plain() {
    let Some(fly) = Fly::locate() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        format!("{CONTIG}:20000-30000"),
        format!("{CONTIG}:25000-80000"),
    );
    let regions = ["--region", a.as_str(), "--region", b.as_str()];
    let (plain, _) = fly.ok(&fly.vcf(), dir.path(), &regions);
    let (plain_all, _) = fly.ok(&fly.vcf(), dir.path(), &[]);
    let (plain_shard, _) = fly.ok(&fly.vcf(), dir.path(), &["--shard", "2/3"]);
    for csi in [false, true] {
        let sub = dir.path().join(if csi { "csi" } else { "tbi" });
        std::fs::create_dir(&sub).unwrap();
        let Some(gz) = bgzip_and_index(&fly.vcf(), &sub, "v.vcf.gz", csi) else {
            return;
        };
        let ext = if csi { "csi" } else { "tbi" };
        assert!(sub.join(format!("v.vcf.gz.{ext}")).is_file());
        let (indexed, err) = fly.ok(&gz, &sub, &regions);
        assert!(!err.contains("no .tbi or .csi index"), "{ext}: {err}");
        assert_eq!(indexed, plain, "{ext}: regions through the index");
        assert_eq!(fly.ok(&gz, &sub, &[]).0, plain_all, "{ext}: whole file");
        assert_eq!(
            fly.ok(&gz, &sub, &["--shard", "2/3"]).0,
            plain_shard,
            "{ext}: shard"
        );
        let mut e = regions.to_vec();
        e.extend(["--shard", "1/2"]);
        let (first, _) = fly.ok(&gz, &sub, &e);
        e[5] = "2/2";
        let (second, _) = fly.ok(&gz, &sub, &e);
        let mut both = records(&first);
        both.extend(records(&second));
        assert_eq!(both, records(&plain), "{ext}: shards of indexed regions");
    }
}

/// A VCF of `n` records on two contigs, bgzipped and tabix-indexed in `dir`, then a compressed block
/// near the end damaged (and the index made newer again): a scan fails on it, a region read through the
/// index never touches it.
#[test]
fn only_the_regions_blocks_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let n = 60_000u64;
    let mut text =
        String::from("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n");
    for c in ["c1", "c2"] {
        for p in 1..=n {
            text.push_str(&format!("{c}\t{p}\tid{p}\tA\tC\t.\t.\tDP={p}\n"));
        }
    }
    let plain = dir.path().join("source.vcf");
    std::fs::write(&plain, &text).unwrap();
    let Some(gz) = bgzip_and_index(&plain, dir.path(), "big.vcf.gz", false) else {
        return;
    };
    let idx = dir.path().join("big.vcf.gz.tbi");
    let select = |specs: &[&str], shard: Shard| -> Result<Vec<u64>, String> {
        let given: Vec<_> = specs.iter().map(|s| s.parse().unwrap()).collect();
        let regions = Regions::new(&given, None).unwrap();
        let mut sel = SelectedVcf::open(&gz, &regions, shard).map_err(|e| format!("{e:#}"))?;
        let mut got = Vec::new();
        while let Some(r) = sel.next_record().map_err(|e| format!("{e:#}"))? {
            got.push(r.pos as u64);
        }
        Ok(got)
    };
    let want: Vec<u64> = (1000..=1100).chain(5000..=5001).collect();
    assert_eq!(
        select(
            &["c1:1000-1100", "c1:1050-1060", "c1:5000-5001"],
            Shard::ALL
        )
        .unwrap(),
        want
    );
    assert_eq!(
        select(
            &["c1:1000-1100", "c1:5000-5001"],
            Shard { index: 2, count: 2 }
        )
        .unwrap(),
        want[51..]
    );
    // Damage a block in c2's records, 3/4 of the way through the file.
    let mut bytes = std::fs::read(&gz).unwrap();
    let at = bytes.len() * 3 / 4;
    for b in &mut bytes[at..at + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&gz, &bytes).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&idx)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert_eq!(
        select(
            &["c1:1000-1100", "c1:1050-1060", "c1:5000-5001"],
            Shard::ALL
        )
        .unwrap(),
        want,
        "the region's blocks alone"
    );
    let err = select(&[], Shard { index: 1, count: 2 }).unwrap_err();
    assert!(
        err.contains("corrupt") || err.contains("big.vcf.gz"),
        "{err}"
    );
    let err = select(&["c2"], Shard::ALL).unwrap_err();
    assert!(err.contains("big.vcf.gz"), "{err}");
}

#[test]
fn bad_regions_shards_indexes_and_orders_fail_clearly() {
    let Some(fly) = Fly::locate() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vcf = fly.vcf();
    let fa = fly.fa.display().to_string();
    // Malformed specs: clap's exit status 2, naming the flag.
    for (flag, spec) in [
        ("--region", "chr2R:0-5"),
        ("--region", "chr2R:9-5"),
        ("--region", ":1-5"),
        ("--shard", "4/3"),
        ("--shard", "0/3"),
        ("--shard", "x"),
    ] {
        fly.fails(&vcf, d, &[flag, spec], Some(2), &[flag, spec]);
    }
    // A region on a contig the reference lacks, and a bad BED line.
    fly.fails(
        &vcf,
        d,
        &["--region", "chrX:1-10"],
        None,
        &["--region chrX:1-10", "`chrX`", &fa],
    );
    let bed = d.join("bad.bed");
    std::fs::write(&bed, format!("{CONTIG}\t10\t5\n")).unwrap();
    let bed_arg = bed.display().to_string();
    fly.fails(
        &vcf,
        d,
        &["--regions-file", &bed_arg],
        None,
        &[&format!("{bed_arg}:1")],
    );
    std::fs::write(&bed, "chrX\t10\t50\n").unwrap();
    fly.fails(
        &vcf,
        d,
        &["--regions-file", &bed_arg],
        None,
        &[&format!("{bed_arg}:1"), "chrX"],
    );
    // Unsorted: a POS going back, and a contig appearing again (with --region, and with --shard).
    let text = std::fs::read_to_string(&vcf).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let first = lines.iter().position(|l| !l.starts_with('#')).unwrap();
    lines.swap(first + 10, first + 11);
    let unsorted = d.join("unsorted.vcf");
    std::fs::write(&unsorted, lines.join("\n") + "\n").unwrap();
    let at = format!("{}:{}", unsorted.display(), first + 12);
    let whole = format!("--region={CONTIG}");
    for extra in [whole.as_str(), "--shard=1/2"] {
        fly.fails(
            &unsorted,
            d,
            &[extra],
            None,
            &[&at, "not sorted", "comes after POS"],
        );
    }
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.insert(first + 5, "chrOther\t10\t.\tA\tC\t.\t.\t.".to_string());
    let regrouped = d.join("regrouped.vcf");
    std::fs::write(&regrouped, lines.join("\n") + "\n").unwrap();
    let at = format!("{}:{}", regrouped.display(), first + 7);
    fly.fails(
        &regrouped,
        d,
        &["--shard", "2/2"],
        None,
        &[&at, "appears again"],
    );
    // Unsorted without --region or --shard is scored as before.
    fly.ok(&unsorted, d, &[]);
    // Indexed: a contig absent from the index, and an index older than its VCF.
    let Some(gz) = bgzip_and_index(&vcf, d, "v.vcf.gz", false) else {
        return;
    };
    let tbi = d.join("v.vcf.gz.tbi");
    let tbi_name = tbi.display().to_string();
    // (chr3L is in this reference, so it is the index that lacks it.)
    let two = d.join("two.fa");
    let mut fasta = std::fs::read_to_string(&fly.fa).unwrap();
    fasta.push_str(">chr3L\nACGTACGTAC\n");
    std::fs::write(&two, fasta).unwrap();
    let fly2 = Fly {
        fa: two,
        ..Fly::locate().unwrap()
    };
    fly2.fails(
        &gz,
        d,
        &["--region", "chr3L"],
        None,
        &["--region chr3L", "`chr3L`", &tbi_name],
    );
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&gz)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let gz_name = gz.display().to_string();
    let region = format!("{CONTIG}:1-30000");
    fly.fails(
        &gz,
        d,
        &["--region", &region],
        None,
        &[&tbi_name, &gz_name, "older"],
    );
    // A shard of standard input, or of a pipe, cannot be counted first.
    let out = d.join("refused.vcf");
    let o = fly.run_stdin(text.as_bytes(), "-", &out, &["--shard", "1/2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("--shard 1/2") && err.contains("standard input"),
        "{err}"
    );
    let o = fly.run_stdin(text.as_bytes(), "/dev/stdin", &out, &["--shard", "1/2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("/dev/stdin is not a regular file"), "{err}");
    assert!(!out.exists());
}
