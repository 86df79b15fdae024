//! Indexed, mergeable VCF outputs (issue 21, item 4): `variant -O x.vcf.gz` and `merge -O x.vcf.gz` write
//! BGZF with a tabix (or, with `--csi`, a CSI) index beside it, built while writing. The index is read back
//! by a second reader: noodles (index header, region queries against the records filtered by hand) and,
//! when installed, htslib's `tabix`, `bcftools view -r` and `bcftools index --stats`. `merge` joins pieces
//! of a VCF into the whole, as `bcftools concat` does, and refuses pieces that do not belong together.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::PvData;

const BIN: &str = env!("CARGO_BIN_EXE_openspliceai-rs");

fn run(command: &str, args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .env_remove("RUST_LOG")
        .arg(command)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the binary");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether tabix and bcftools are here (a skip message when not; a failure under CI).
fn htslib_tools() -> bool {
    let ok = have("tabix") && have("bcftools");
    if !ok {
        common::missing("tabix and bcftools (apt-get install tabix bcftools; scripts/ci-setup.sh)");
    }
    ok
}

fn tool(name: &str, args: &[&str]) -> String {
    let r = Command::new(name).args(args).output().unwrap();
    assert!(
        r.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8(r.stdout).unwrap()
}

/// A VCF's text, plain or BGZF.
fn read_vcf(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut noodles_bgzf::io::Reader::new(&bytes[..]), &mut text)
            .unwrap();
        text
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

fn records(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

fn header(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with('#')).collect()
}

/// A record's span as tabix reads it: POS to POS + len(REF) - 1, or INFO `END` when further.
fn span(line: &str) -> (String, u64, u64) {
    let f: Vec<&str> = line.split('\t').collect();
    let pos: u64 = f[1].parse().unwrap();
    let mut end = pos + f[3].len() as u64 - 1;
    if let Some(e) = f[7].split(';').find_map(|kv| kv.strip_prefix("END=")) {
        end = end.max(e.parse().unwrap());
    }
    (f[0].to_string(), pos, end)
}

/// The records of `text` that overlap `chrom:start-end` (what an index query returns).
fn overlapping<'a>(text: &'a str, chrom: &str, start: u64, end: u64) -> Vec<&'a str> {
    records(text)
        .into_iter()
        .filter(|l| {
            let (c, a, b) = span(l);
            c == chrom && a <= end && b >= start
        })
        .collect()
}

/// The records of `text` whose POS lies in `chrom:start-end` (what noodles' query returns: the index
/// names the blocks by span, its record filter reads POS alone).
fn pos_in<'a>(text: &'a str, chrom: &str, start: u64, end: u64) -> Vec<&'a str> {
    records(text)
        .into_iter()
        .filter(|l| {
            let (c, p, _) = span(l);
            c == chrom && (start..=end).contains(&p)
        })
        .collect()
}

/// A region query through noodles: the index (`.tbi` or `.csi`) beside `vcf`, then the blocks it names.
fn noodles_query(vcf: &Path, region: &str) -> Vec<String> {
    let file = std::fs::File::open(vcf).unwrap();
    let region: noodles_core::Region = region.parse().unwrap();
    let tbi = PathBuf::from(format!("{}.tbi", vcf.display()));
    let lines = |it: &mut dyn Iterator<
        Item = std::io::Result<noodles_csi::io::indexed_records::Record>,
    >| {
        it.map(|r| r.unwrap().as_ref().to_string())
            .collect::<Vec<_>>()
    };
    if tbi.exists() {
        let index = noodles_tabix::fs::read(&tbi).unwrap();
        let mut r = noodles_csi::io::IndexedReader::new(file, index);
        let mut q = r.query(&region).unwrap();
        lines(&mut q)
    } else {
        let index = noodles_csi::fs::read(format!("{}.csi", vcf.display())).unwrap();
        let mut r = noodles_csi::io::IndexedReader::new(file, index);
        let mut q = r.query(&region).unwrap();
        lines(&mut q)
    }
}

/// The contig names an index holds, in order.
fn index_names(index: &Path) -> Vec<String> {
    use noodles_csi::BinningIndex;
    let names = |h: Option<&noodles_csi::binning_index::index::Header>| {
        h.expect("a tabix header")
            .reference_sequence_names()
            .iter()
            .map(|n| n.to_string())
            .collect()
    };
    if index.extension().is_some_and(|e| e == "tbi") {
        names(noodles_tabix::fs::read(index).unwrap().header())
    } else {
        names(noodles_csi::fs::read(index).unwrap().header())
    }
}

/// No temporary file of ours is left in `dir`.
fn no_temps(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !(name.starts_with('.') && name.ends_with(".tmp")),
            "left behind: {name}"
        );
    }
}

/// Writes a VCF from header lines and record lines; `.gz` names are BGZF.
fn write_vcf(path: &Path, header: &[&str], records: &[&str]) {
    let mut text = String::new();
    for l in header.iter().chain(records) {
        text.push_str(l);
        text.push('\n');
    }
    if path.to_string_lossy().ends_with(".gz") {
        let plain = path.with_extension("plain");
        std::fs::write(&plain, text).unwrap();
        common::bgzip_copy(&plain, path);
        std::fs::remove_file(plain).unwrap();
    } else {
        std::fs::write(path, text).unwrap();
    }
}

/// Checks `vcf` and its index against htslib: `tabix -l`, region queries with `tabix` and `bcftools view
/// -r` equal to noodles' and to the records filtered by hand, and `bcftools index --stats` counting every
/// record of each contig.
fn check_with_htslib(vcf: &Path, text: &str, regions: &[(&str, u64, u64)]) {
    let v = s(vcf);
    let contigs: Vec<String> = {
        let mut c: Vec<String> = Vec::new();
        for l in records(text) {
            let name = l.split('\t').next().unwrap();
            if c.last().is_none_or(|x| x != name) {
                c.push(name.to_string());
            }
        }
        c
    };
    assert_eq!(
        tool("tabix", &["-l", &v]).lines().collect::<Vec<_>>(),
        contigs
    );
    for &(c, a, b) in regions {
        let region = format!("{c}:{a}-{b}");
        let want = overlapping(text, c, a, b);
        let got = tool("tabix", &[&v, &region]);
        assert_eq!(got.lines().collect::<Vec<_>>(), want, "tabix {region}");
        let got = tool("bcftools", &["view", "-H", "-r", &region, &v]);
        assert_eq!(
            got.lines().collect::<Vec<_>>(),
            want,
            "bcftools view -r {region}"
        );
    }
    let stats = tool("bcftools", &["index", "--stats", &v]);
    for c in &contigs {
        let n = records(text)
            .iter()
            .filter(|l| l.split('\t').next() == Some(c))
            .count();
        assert!(
            stats
                .lines()
                .any(|l| l.starts_with(&format!("{c}\t")) && l.ends_with(&format!("\t{n}"))),
            "bcftools index --stats: no `{c} ... {n}` in\n{stats}"
        );
    }
}

/// `variant -O x.vcf.gz` writes a tabix index beside the BGZF file (`--csi`: a CSI index), which noodles,
/// tabix and bcftools read; the header records the tool, its version and the command line; `-O x.vcf`
/// stays plain text with no index, with the same text.
#[test]
fn variant_bgzf_output_is_indexed_and_read_back() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let m = common::mane_checkpoint(80).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (fa, genes, input) = (
        c.input_arg("region200k.fa"),
        c.input_arg("genes_region200k.txt"),
        c.input_arg("variants.vcf"),
    );
    let m = s(&m);
    let base = [
        "-q", "-R", &fa, "-A", &genes, "-I", &input, "-m", &m, "-f", "80", "-D", "40",
    ];
    let out = |name: &str, extra: &[&str]| {
        let p = tmp.path().join(name);
        let r = run("variant", &[&base[..], &["-O", &s(&p)], extra].concat());
        assert!(r.status.success());
        p
    };
    let gz = out("out.vcf.gz", &[]);
    let plain = out("out.vcf", &[]);
    let csi = out("csi.vcf.gz", &["--csi"]);
    let tbi = tmp.path().join("out.vcf.gz.tbi");
    assert!(tbi.is_file());
    assert!(!tmp.path().join("out.vcf.gz.csi").exists());
    assert!(!tmp.path().join("out.vcf.tbi").exists());
    assert!(tmp.path().join("csi.vcf.gz.csi").is_file());
    assert!(!tmp.path().join("csi.vcf.gz.tbi").exists());
    no_temps(tmp.path());

    let text = read_vcf(&gz);
    let plain_text = read_vcf(&plain);
    // The same text but for the command line, which names the output.
    let drop_cmd = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with("##openspliceai-rs_variantCommand="))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(drop_cmd(&text), drop_cmd(&plain_text));
    assert_eq!(records(&text).len(), 91);
    let h = header(&text);
    let version = format!(
        "##openspliceai-rs_variantVersion={}",
        env!("CARGO_PKG_VERSION")
    );
    let at = h.iter().position(|l| *l == version).expect("version line");
    let cmd = h[at + 1];
    assert!(
        cmd.starts_with("##openspliceai-rs_variantCommand=variant -q -R "),
        "{cmd}"
    );
    assert!(cmd.ends_with(&format!("-O {}", s(&gz))), "{cmd}");
    assert!(h[at + 2].starts_with("##INFO=<ID=OpenSpliceAI,"), "{h:?}");

    // noodles reads the index: its contig, and region queries equal to the records filtered by hand.
    let chrom = "chr2R_7000001_7200000";
    assert_eq!(index_names(&tbi), [chrom]);
    assert_eq!(index_names(&tmp.path().join("csi.vcf.gz.csi")), [chrom]);
    let regions = [
        (chrom, 1, 200_000),
        (chrom, 23_500, 28_100),
        (chrom, 23_800, 23_803),
        (chrom, 150_000, 150_010),
    ];
    for &(c, a, b) in &regions {
        let want = pos_in(&text, c, a, b);
        let region = format!("{c}:{a}-{b}");
        assert_eq!(noodles_query(&gz, &region), want, "{region}");
        assert_eq!(noodles_query(&csi, &region), want, "{region} (csi)");
    }
    assert!(!overlapping(&text, chrom, 23_500, 28_100).is_empty());
    if htslib_tools() {
        check_with_htslib(&gz, &text, &regions);
        check_with_htslib(&csi, &read_vcf(&csi), &regions);
    }

    // --no-provenance: no version or command line either.
    let bare = out("bare.vcf.gz", &["--no-provenance"]);
    assert!(!read_vcf(&bare).contains("##openspliceai-rs_"));
}

/// An indexed output needs sorted records: `variant` refuses an unsorted input for `-O x.vcf.gz`, naming
/// the input's line, and leaves nothing; the same input to a plain `.vcf` is written as before.
#[test]
fn variant_refuses_unsorted_records_for_an_indexed_output() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let m = s(&common::mane_checkpoint(80).unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(c.input("variants.vcf")).unwrap();
    let recs = records(&text);
    let unsorted = tmp.path().join("unsorted.vcf");
    write_vcf(&unsorted, &header(&text), &[recs[5], recs[2]]);
    let (fa, genes) = (
        c.input_arg("region200k.fa"),
        c.input_arg("genes_region200k.txt"),
    );
    let gz = tmp.path().join("out/x.vcf.gz");
    let args = |o: &Path| {
        [
            "-q",
            "-R",
            &fa,
            "-A",
            &genes,
            "-I",
            &s(&unsorted),
            "-m",
            &m,
            "-f",
            "80",
            "-O",
            &s(o),
        ]
        .map(String::from)
    };
    let a = args(&gz);
    let r = run("variant", &a.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    for want in [
        format!("{}:9:", s(&unsorted)),
        "comes after".into(),
        "not sorted".into(),
        "bcftools sort".into(),
    ] {
        assert!(err.contains(&want), "`{want}` not in {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(!gz.exists());
    assert!(!tmp.path().join("out/x.vcf.gz.tbi").exists());
    no_temps(&tmp.path().join("out"));
    let plain = tmp.path().join("out/x.vcf");
    let a = args(&plain);
    let r = run("variant", &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(r.status.success());
    assert_eq!(records(&read_vcf(&plain)).len(), 2);
}

/// The shared VCF cut in three (plain, BGZF, BGZF; each header with a command line of its own, as shards
/// have) and merged gives the whole: the first piece's header (plus merge's own version and command
/// lines), every record in order, an index noodles and htslib read; `bcftools concat` of the same pieces
/// gives the same records. Plain `-O` is the same text, unindexed; `--no-provenance` is the first header
/// exactly.
#[test]
fn merge_of_three_pieces_equals_the_whole() {
    let Some(c) = PvData::locate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let whole = std::fs::read_to_string(c.input("variants.vcf")).unwrap();
    let (h, recs) = (header(&whole), records(&whole));
    let mut pieces = Vec::new();
    for (i, (name, range)) in [
        ("p1.vcf", 0..30),
        ("p2.vcf.gz", 30..61),
        ("p3.vcf.gz", 61..recs.len()),
    ]
    .into_iter()
    .enumerate()
    {
        let cmd = format!(
            "##openspliceai-rs_variantCommand=variant --shard {}/3 -O {name}",
            i + 1
        );
        let mut hi = h.clone();
        hi.insert(h.len() - 1, &cmd);
        let p = tmp.path().join(name);
        write_vcf(&p, &hi, &recs[range]);
        pieces.push(s(&p));
    }
    let p: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let gz = tmp.path().join("merged/all.vcf.gz");
    let r = run("merge", &[&["-O", &s(&gz)], &p[..]].concat());
    assert!(r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("merged 91 records of 3 files"));
    let text = read_vcf(&gz);
    assert_eq!(records(&text), recs);
    let first = read_vcf(Path::new(&pieces[0]));
    let mut want_header = header(&first);
    let version = format!(
        "##openspliceai-rs_mergeVersion={}",
        env!("CARGO_PKG_VERSION")
    );
    let cmd = format!(
        "##openspliceai-rs_mergeCommand=merge -O {} {}",
        s(&gz),
        p.join(" ")
    );
    want_header.insert(want_header.len() - 1, &version);
    want_header.insert(want_header.len() - 1, &cmd);
    assert_eq!(header(&text), want_header);
    let tbi = tmp.path().join("merged/all.vcf.gz.tbi");
    let chrom = "chr2R_7000001_7200000";
    assert_eq!(index_names(&tbi), [chrom]);
    let regions = [(chrom, 1, 200_000), (chrom, 28_000, 70_000)];
    for &(c, a, b) in &regions {
        let region = format!("{c}:{a}-{b}");
        assert_eq!(noodles_query(&gz, &region), pos_in(&text, c, a, b));
    }
    no_temps(&tmp.path().join("merged"));

    let plain = tmp.path().join("merged/all.vcf");
    let r = run(
        "merge",
        &[&["-O", &s(&plain), "--no-provenance"], &p[..]].concat(),
    );
    assert!(r.status.success());
    assert_eq!(
        read_vcf(&plain),
        first
            .lines()
            .filter(|l| l.starts_with('#'))
            .chain(recs.iter().copied())
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    assert!(!tmp.path().join("merged/all.vcf.tbi").exists());

    // Standard output without -O.
    let r = run("merge", &p);
    assert!(r.status.success());
    assert_eq!(records(&String::from_utf8_lossy(&r.stdout)), recs);

    if htslib_tools() {
        check_with_htslib(&gz, &text, &regions);
        let concat = tmp.path().join("concat.vcf");
        tool(
            "bcftools",
            &[&["concat", "-o", &s(&concat)], &p[..]].concat(),
        );
        assert_eq!(records(&read_vcf(&concat)), records(&text));
    }
}

/// Many BGZF blocks, several contigs, records with INFO `END`, an empty piece: the index built while
/// writing answers region queries as the records filtered by hand (noodles; tabix, bcftools and an index
/// tabix builds itself when installed), with `.tbi` and with `--csi`; writing one kind removes a stale
/// index of the other.
#[test]
fn merge_indexes_many_blocks_and_contigs() {
    let tmp = tempfile::tempdir().unwrap();
    let h = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=chrA,length=3000000>",
        "##contig=<ID=chrB,length=3000000>",
        "##contig=<ID=chrC,length=3000000>",
        "##INFO=<ID=END,Number=1,Type=Integer,Description=\"End\">",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ];
    let mut all = Vec::new();
    for (ci, chrom) in ["chrA", "chrB", "chrC"].iter().enumerate() {
        for i in 0..10_000u64 {
            let pos = 1 + i * 97 + ci as u64;
            let rec = match i % 50 {
                0 => format!(
                    "{chrom}\t{pos}\tsv{i}\tA\t<DEL>\t.\tPASS\tEND={}",
                    pos + 40_000
                ),
                7 => format!("{chrom}\t{pos}\tdel{i}\tACGTACGTAC\tA\t.\tPASS\t."),
                _ => format!("{chrom}\t{pos}\tsnv{i}\tA\tG\t50\tPASS\tDP={}", i % 17),
            };
            all.push(rec);
        }
    }
    let recs: Vec<&str> = all.iter().map(String::as_str).collect();
    let cuts = [0, 7_000, 15_000, 15_000, recs.len()];
    let mut pieces = Vec::new();
    for k in 0..4 {
        let p = tmp.path().join(format!("s{k}.vcf.gz"));
        write_vcf(&p, &h, &recs[cuts[k]..cuts[k + 1]]);
        pieces.push(s(&p));
    }
    let p: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let gz = tmp.path().join("big.vcf.gz");
    let stale = tmp.path().join("big.vcf.gz.csi");
    std::fs::write(&stale, b"stale").unwrap();
    let r = run(
        "merge",
        &[&["-O", &s(&gz), "--no-provenance"], &p[..]].concat(),
    );
    assert!(r.status.success());
    assert!(!stale.exists(), "a stale .csi beside the new VCF");
    let text = read_vcf(&gz);
    // Many BGZF blocks (64 KiB of text each).
    assert!(text.len() > 10 * 65_536, "{}", text.len());
    assert_eq!(records(&text), recs);
    let csi = tmp.path().join("big_csi.vcf.gz");
    let r = run(
        "merge",
        &[&["-O", &s(&csi), "--csi", "--no-provenance"], &p[..]].concat(),
    );
    assert!(r.status.success());
    assert_eq!(read_vcf(&csi), text);
    assert_eq!(
        index_names(&tmp.path().join("big.vcf.gz.tbi")),
        ["chrA", "chrB", "chrC"]
    );
    let regions = [
        ("chrA", 1, 100),
        ("chrA", 300_000, 310_000),
        ("chrB", 1, 1),
        ("chrB", 500_000, 700_000),
        ("chrB", 969_000, 2_000_000),
        ("chrC", 48_500, 48_600),
        ("chrC", 16_384, 16_385),
    ];
    for &(c, a, b) in &regions {
        let want = pos_in(&text, c, a, b);
        let region = format!("{c}:{a}-{b}");
        assert_eq!(noodles_query(&gz, &region), want, "{region}");
        assert_eq!(noodles_query(&csi, &region), want, "{region} (csi)");
    }
    if htslib_tools() {
        check_with_htslib(&gz, &text, &regions);
        check_with_htslib(&csi, &text, &regions);
        // An index tabix builds itself answers as ours does.
        let copy = tmp.path().join("copy.vcf.gz");
        std::fs::copy(&gz, &copy).unwrap();
        tool("tabix", &["-p", "vcf", &s(&copy)]);
        for &(c, a, b) in &regions {
            let region = format!("{c}:{a}-{b}");
            assert_eq!(
                tool("tabix", &[&s(&copy), &region]),
                tool("tabix", &[&s(&gz), &region])
            );
        }
    }
}

/// What `merge` refuses, each with exit status 1, a message naming the files, and no output left: headers
/// that differ (naming the file, the line and both texts), pieces out of order (naming both files), a
/// contig that comes back, an unsorted piece for an indexed output, a file that is not a VCF, and `-O` (or
/// its index) that is one of the inputs.
#[test]
fn merge_refuses_bad_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let h = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=1>",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ];
    let rec = |c: &str, p: u32| format!("{c}\t{p}\t.\tA\tG\t.\t.\t.");
    let vcf = |name: &str, header: &[&str], recs: &[String]| {
        let p = d.join(name);
        let r: Vec<&str> = recs.iter().map(String::as_str).collect();
        write_vcf(&p, header, &r);
        s(&p)
    };
    let a = vcf("a.vcf", &h, &[rec("1", 10), rec("1", 20)]);
    let b = vcf("b.vcf.gz", &h, &[rec("1", 30), rec("2", 5)]);
    let later = vcf("later.vcf", &h, &[rec("1", 30)]);
    let other = vcf(
        "other.vcf",
        &["##fileformat=VCFv4.2", "##contig=<ID=9>", h[2]],
        &[rec("1", 40)],
    );
    let back = vcf("back.vcf", &h, &[rec("1", 50)]);
    let unsorted = vcf("unsorted.vcf", &h, &[rec("2", 9), rec("2", 7)]);
    let not_vcf = d.join("notes.vcf");
    std::fs::write(&not_vcf, "hello\n").unwrap();
    let out = d.join("out/m.vcf.gz");
    let o = s(&out);
    let nv = s(&not_vcf);
    let cases: Vec<(Vec<&str>, Vec<String>)> = vec![
        (
            vec![&a, &other],
            vec![
                format!("{other}: its header differs from that of {a}"),
                "at its line 2".into(),
                "`##contig=<ID=9>` where the first has `##contig=<ID=1>`".into(),
            ],
        ),
        (
            vec![&later, &a],
            vec![
                format!("{a}: its first record 1:10 (line 4) comes before {later}'s last record 1:30"),
                "shard 1 first".into(),
            ],
        ),
        (
            vec![&a, &b, &back],
            vec![format!(
                "{back}: its first record 1:50 (line 4) is on a contig that ended before {b}'s last record 2:5"
            )],
        ),
        (
            vec![&a, &unsorted],
            vec![
                format!("{unsorted}:5:"),
                "record 2:7 comes after 2:9".into(),
            ],
        ),
        (
            vec![&a, &nv],
            vec![format!("{nv}:1: expected a header line starting with `#`")],
        ),
        (
            vec![&a, &o],
            vec![format!("-O {o}: the output would overwrite the input VCF {o}")],
        ),
    ];
    // `-O`'s input clash is checked before anything is read; give it something to clash with.
    std::fs::create_dir_all(d.join("out")).unwrap();
    for (inputs, words) in cases {
        let clash = inputs.contains(&o.as_str());
        if clash {
            std::fs::copy(&a, &out).unwrap();
        }
        let r = run("merge", &[&["-O", &o][..], &inputs[..]].concat());
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{inputs:?}: {err}");
        for w in &words {
            assert!(err.contains(w.as_str()), "{inputs:?}: `{w}` not in {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        if clash {
            assert_eq!(
                std::fs::read_to_string(&out).unwrap(),
                std::fs::read_to_string(&a).unwrap()
            );
            std::fs::remove_file(&out).unwrap();
        }
        assert!(!out.exists(), "{inputs:?}: output left");
        assert!(
            !d.join("out/m.vcf.gz.tbi").exists(),
            "{inputs:?}: index left"
        );
        no_temps(&d.join("out"));
    }
    // The index is an output too: an input under its name is refused.
    let tbi_named = d.join("out/m.vcf.gz.tbi");
    std::fs::copy(&a, &tbi_named).unwrap();
    let r = run("merge", &["-O", &o, &a, &s(&tbi_named)]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("would overwrite the input VCF"), "{err}");
    assert!(err.contains("m.vcf.gz.tbi"), "{err}");
    assert!(!out.exists());
    // Pieces in order merge, into plain text too (no order check within a file then, as bcftools concat).
    let plain = d.join("out/m.vcf");
    let r = run("merge", &["-O", &s(&plain), &a, &b]);
    assert!(r.status.success());
    assert_eq!(records(&read_vcf(&plain)).len(), 4);
    // Without an input: clap's usage error.
    let r = run("merge", &["-O", &o]);
    assert_eq!(r.status.code(), Some(2));
}

/// `variant`'s index is an output too: an input under its name (`-O x.vcf.gz -I x.vcf.gz.tbi`) is refused
/// before anything is read, naming both. Both kinds' names are checked whatever `--csi` says: one is
/// written, the other removed as stale.
#[test]
fn variant_lists_its_index_as_an_output() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for (name, csi) in [
        ("x.vcf.gz.tbi", false),
        ("x.vcf.gz.csi", true),
        ("x.vcf.gz.csi", false),
        ("x.vcf.gz.tbi", true),
    ] {
        let input = d.join(name);
        std::fs::write(&input, "##fileformat=VCFv4.2\n").unwrap();
        for f in ["ref.fa", "genes.txt", "m.pt"] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        let out = s(&d.join("x.vcf.gz"));
        let (i, fa, genes, m) = (
            s(&input),
            s(&d.join("ref.fa")),
            s(&d.join("genes.txt")),
            s(&d.join("m.pt")),
        );
        let mut args = vec![
            "-q", "-R", &fa, "-A", &genes, "-I", &i, "-m", &m, "-O", &out,
        ];
        if csi {
            args.push("--csi");
        }
        let r = run("variant", &args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "-O {i}: the output would overwrite the input -I {i}"
            )),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(&input).unwrap(),
            "##fileformat=VCFv4.2\n"
        );
        assert!(!d.join("x.vcf.gz").exists());
        std::fs::remove_file(&input).unwrap();
    }
}
