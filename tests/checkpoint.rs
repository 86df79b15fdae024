//! Integration tests of the checkpoint module: real OpenSpliceAI checkpoints, PyTorch-layout writing,
//! safetensors, malformed input, state-dict matching and atomic saving.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use common::{check_pt_structure, make_zip, noise_bytes, run_structure_script};
use openspliceai_rs::checkpoint::{
    self, detect_format, encode_pt, load, match_state_dict, read_pt, read_safetensors, save,
    write_pt, write_safetensors, CheckpointError, DType, Expected, Format, RawTensor, StateDict,
};
use openspliceai_rs::model::inspect;

const FLANKS: [usize; 4] = [80, 400, 2000, 10000];

/// Number of residual units (ResidualUnit, not Skip) for a flanking size.
fn units(flank: usize) -> usize {
    match flank {
        80 => 4,
        400 => 8,
        2000 => 12,
        _ => 16,
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("valid hex"))
        .collect()
}

/// The `data.pkl` that `encode_pt` writes for `sd`.
fn pickle_of(sd: &StateDict) -> Vec<u8> {
    let bytes = encode_pt(Path::new("x.pt"), "archive", sd).expect("encode");
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).expect("our own zip");
    let mut f = z.by_name("archive/data.pkl").expect("data.pkl");
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut out).expect("read data.pkl");
    out
}

fn small_sd() -> StateDict {
    let mut sd = StateDict::new();
    sd.insert(
        "conv.weight",
        RawTensor::from_f32(vec![2, 3], &[1.0, -2.0, 3.5, 0.0, 1e-8, -0.25]),
    );
    sd.insert(
        "bn.num_batches_tracked",
        RawTensor::from_i64(Vec::<usize>::new(), &[12345]),
    );
    sd
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write scratch file");
    p
}

/// Asserts that `r` failed and that its message names `path` and contains every fragment.
fn assert_err_mentions<T: std::fmt::Debug>(
    r: Result<T, CheckpointError>,
    path: &Path,
    fragments: &[&str],
) {
    let e = r.expect_err("expected an error");
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "error does not name the file {}: {msg}",
        path.display()
    );
    for f in fragments {
        assert!(msg.contains(f), "error lacks {f:?}: {msg}");
    }
}

/// With `OSAI_TORCH_PYTHON` set to an interpreter that has PyTorch, also checks that
/// `torch.load(path, weights_only=True)` accepts the file. Without it, nothing is run.
fn check_torch_load(path: &Path) {
    let Ok(python) = std::env::var("OSAI_TORCH_PYTHON") else {
        return;
    };
    let (ok, text) = run_structure_script(&python, &["--torch-load".as_ref(), path.as_os_str()])
        .unwrap_or_else(|e| panic!("OSAI_TORCH_PYTHON={python} cannot run: {e}"));
    assert!(
        ok && text.contains("weights_only=True"),
        "torch.load rejected {}: {text}",
        path.display()
    );
}

/// Offsets of every record's data, from the local headers (independent of the writer).
fn data_offsets(bytes: &[u8]) -> Vec<(String, u64)> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes.to_vec())).expect("readable zip");
    let mut out = Vec::new();
    for i in 0..z.len() {
        let f = z.by_index_raw(i).expect("record");
        let name = f.name().expect("record name").to_string();
        let h = f.header_start() as usize;
        assert_eq!(&bytes[h..h + 4], b"PK\x03\x04", "local header of {name}");
        let name_len = u16::from_le_bytes([bytes[h + 26], bytes[h + 27]]) as usize;
        let extra_len = u16::from_le_bytes([bytes[h + 28], bytes[h + 29]]) as usize;
        out.push((name, (h + 30 + name_len + extra_len) as u64));
    }
    out
}

/// CPython protocol-2 pickle of a wrapper dict (see `wrapper_pickle_hex`).
const WRAPPER_P2: &str = concat!(
    "80027d710028580500000065706f636871014b0758100000006d6f64656c5f73746174655f64696374710263636f6c6c",
    "656374696f6e730a4f726465726564446963740a710329527104285808000000612e776569676874710563746f726368",
    "2e5f7574696c730a5f72656275696c645f706172616d657465720a710663746f7263682e5f7574696c730a5f72656275",
    "696c645f74656e736f725f76320a71072828580700000073746f72616765710863746f7263680a466c6f617453746f72",
    "6167650a7109580100000030710a5806000000637564613a30710b4b0874710c514b004b024b0386710d4b014b028671",
    "0e8968032952710f747110527111886803295271128771135271145806000000612e6269617371156807282868086809",
    "680a680b4b08747116514b064b028571174b018571188968032952711974711a52711b5816000000626e2e6e756d5f62",
    "6174636865735f747261636b6564711c68072828680863746f7263680a4c6f6e6753746f726167650a711d5801000000",
    "31711e680b4b0174711f514b002929896803295271207471215271227558090000006f7074696d697a657271237d7124",
    "2858020000006c727125473f50624dd2f1a9fc580500000062657461737126473feccccccccccccd473feff7ced91687",
    "2b867127580300000062696771288a090000000000000000405805000000666c61677371295d712a28884e635f636f64",
    "6563730a656e636f64650a712b58020000007879712c58060000006c6174696e31712d86712e52712f6558040000006e",
    "616d65713058050000004164616d57713175752e",
);

/// CPython protocol-4 pickle of a wrapper dict (see `wrapper_pickle_hex`).
const WRAPPER_P4: &str = concat!(
    "800495cd010000000000007d94288c0565706f6368944b078c106d6f64656c5f73746174655f64696374948c0b636f6c",
    "6c656374696f6e73948c0b4f72646572656444696374949394295294288c08612e776569676874948c0c746f7263682e",
    "5f7574696c73948c125f72656275696c645f706172616d6574657294939468088c125f72656275696c645f74656e736f",
    "725f763294939428288c0773746f72616765948c05746f726368948c0c466c6f617453746f726167659493948c013094",
    "8c06637564613a30944b087494514b004b024b0386944b014b0286948968052952947494529488680529529487945294",
    "8c06612e6269617394680c2828680d6810681168124b087494514b064b0285944b018594896805295294749452948c16",
    "626e2e6e756d5f626174636865735f747261636b656494680c2828680d680e8c0b4c6f6e6753746f726167659493948c",
    "01319468124b017494514b00292989680529529474945294758c096f7074696d697a6572947d94288c026c7294473f50",
    "624dd2f1a9fc8c05626574617394473feccccccccccccd473feff7ced916872b86948c03626967948a09000000000000",
    "0000408c05666c616773945d9428884e4302787994658c046e616d65948c054164616d579475752e",
);

/// CPython protocol-5 pickle of a wrapper dict (see `wrapper_pickle_hex`).
const WRAPPER_P5: &str = concat!(
    "800595cd010000000000007d94288c0565706f6368944b078c106d6f64656c5f73746174655f64696374948c0b636f6c",
    "6c656374696f6e73948c0b4f72646572656444696374949394295294288c08612e776569676874948c0c746f7263682e",
    "5f7574696c73948c125f72656275696c645f706172616d6574657294939468088c125f72656275696c645f74656e736f",
    "725f763294939428288c0773746f72616765948c05746f726368948c0c466c6f617453746f726167659493948c013094",
    "8c06637564613a30944b087494514b004b024b0386944b014b0286948968052952947494529488680529529487945294",
    "8c06612e6269617394680c2828680d6810681168124b087494514b064b0285944b018594896805295294749452948c16",
    "626e2e6e756d5f626174636865735f747261636b656494680c2828680d680e8c0b4c6f6e6753746f726167659493948c",
    "01319468124b017494514b00292989680529529474945294758c096f7074696d697a6572947d94288c026c7294473f50",
    "624dd2f1a9fc8c05626574617394473feccccccccccccd473feff7ced916872b86948c03626967948a09000000000000",
    "0000408c05666c616773945d9428884e4302787994658c046e616d65948c054164616d579475752e",
);

#[test]
fn real_checkpoints_round_trip_through_pt_and_safetensors() {
    for flank in FLANKS {
        let Some(src) = common::mane_checkpoint(flank) else {
            return;
        };
        let sd = read_pt(&src).unwrap_or_else(|e| panic!("{e}"));
        // 4 + 11 per unit + 2 per Skip + 2 final.
        let n_units = units(flank);
        assert_eq!(
            sd.len(),
            4 + 14 * n_units + 2 * (n_units / 4) + 2,
            "{flank}nt tensor count"
        );
        let names = sd.names();
        assert_eq!(names[0], "initial_conv.weight");
        assert_eq!(names[4], "residual_units.0.batchnorm1.weight");
        assert_eq!(*names.last().expect("non-empty"), "final_conv.bias");
        let nbt = sd
            .get("residual_units.0.batchnorm1.num_batches_tracked")
            .expect("nbt");
        assert_eq!((nbt.dtype, nbt.shape.as_slice()), (DType::I64, &[][..]));
        assert_eq!(
            sd.get("initial_conv.weight").expect("w").shape,
            vec![32, 4, 1]
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("model_best.pt");
        write_pt(&out, &sd).unwrap_or_else(|e| panic!("{e}"));
        let back = read_pt(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            back.names(),
            sd.names(),
            "{flank}nt key order after .pt round trip"
        );
        for (name, t) in sd.iter() {
            assert_eq!(
                back.get(name),
                Some(t),
                "{flank}nt tensor {name} after .pt round trip"
            );
        }
        let bytes = std::fs::read(&out).expect("read written file");
        for (rec, off) in data_offsets(&bytes) {
            assert!(
                rec.starts_with("model_best/"),
                "record {rec} lacks the file-stem prefix"
            );
            assert_eq!(
                off % 64,
                0,
                "record {rec} data at {off} is not 64-byte aligned"
            );
        }
        // Deterministic output.
        let again = dir.path().join("again").join("model_best.pt");
        std::fs::create_dir(again.parent().expect("parent")).expect("mkdir");
        write_pt(&again, &sd).expect("second write");
        assert_eq!(
            std::fs::read(&again).expect("read"),
            bytes,
            "{flank}nt output is not deterministic"
        );
        if let Some((ok, text)) = check_pt_structure(&out) {
            assert!(
                ok,
                "check_pt_structure.py rejected our {flank}nt file: {text}"
            );
            assert!(text.starts_with("ok:"), "{text}");
        }
        check_torch_load(&out);

        let st = dir.path().join("model_best.safetensors");
        save(&st, &sd).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(detect_format(&st).expect("detect"), Format::Safetensors);
        let back = load(&st).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            back.names(),
            sd.names(),
            "{flank}nt key order after safetensors round trip"
        );
        assert_eq!(back, sd, "{flank}nt tensors after safetensors round trip");
        // And safetensors -> .pt again.
        let pt2 = dir.path().join("from_st.pt");
        save(&pt2, &back).expect("save .pt");
        assert_eq!(read_pt(&pt2).expect("read"), sd);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "temporary files left behind: {leftovers:?}"
        );
    }
}

#[test]
fn real_80nt_values_match_an_independent_reader() {
    let Some(src) = common::mane_checkpoint(80) else {
        return;
    };
    // Values read with Python's zipfile + struct from model_best/data/{0,6,8,63}.
    let sd = load(&src).expect("load 80nt");
    let bits = |name: &str| -> Vec<u32> {
        sd.get(name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .to_f32_vec()
            .expect("f32")
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    assert_eq!(
        bits("initial_conv.weight")[..4],
        [0x3ec0_0d6c, 0xbda1_7614, 0xbd17_4e6c, 0x3e4e_ff07]
    );
    assert_eq!(
        bits("final_conv.bias"),
        vec![0x3e8a_5fae, 0xbe51_d22c, 0xbe2b_a04d]
    );
    assert_eq!(
        bits("residual_units.0.batchnorm1.running_mean")[..2],
        [0xbe3f_8c5c, 0x3e89_d5da]
    );
    for i in 0..4 {
        for bn in ["batchnorm1", "batchnorm2"] {
            let name = format!("residual_units.{i}.{bn}.num_batches_tracked");
            let t = sd.get(&name).expect("nbt");
            assert_eq!(t.to_i64_vec().expect("i64"), vec![39834], "{name}");
        }
    }
    assert_eq!(
        sd.get("residual_units.3.conv2.weight").expect("w").shape,
        vec![32, 32, 11]
    );
    assert_eq!(
        sd.get("residual_units.4.conv.weight").expect("skip").shape,
        vec![32, 32, 1]
    );

    let info = inspect::inspect(&src).expect("inspect");
    assert_eq!(info.format, Format::Pt);
    assert_eq!(info.residual_units, 4);
    assert_eq!(info.flanking, Some(80));
    // 160 + 1056 + 4 * (64 + 64 + 11296 + 11296) + 1056 + 99
    assert_eq!(info.parameter_count, 93_251);
    let bn = info.batchnorm.as_ref().expect("batchnorm summary");
    assert_eq!(bn.layers, 8);
    assert_eq!(bn.num_batches_tracked, vec![39834]);
    let rv = bn.running_var.expect("running_var stats");
    assert!(
        rv.min > 0.0 && rv.min <= rv.mean && rv.mean <= rv.max,
        "{rv:?}"
    );
    let text = info.to_string();
    for frag in [
        "flanking size 80",
        "39834",
        "running_var",
        "initial_conv.weight",
        "float32",
        "int64",
    ] {
        assert!(
            text.contains(frag),
            "inspect output lacks {frag:?}:\n{text}"
        );
    }
}

#[test]
fn inspect_infers_flanking_of_every_real_checkpoint() {
    for flank in FLANKS {
        let Some(src) = common::mane_checkpoint(flank) else {
            return;
        };
        let info = inspect::inspect(&src).expect("inspect");
        assert_eq!(info.residual_units, units(flank));
        assert_eq!(info.flanking, Some(flank), "{flank}nt");
    }
}

/// Stored data for the CPython-made wrapper pickles: storage "0" = 0..8 as f32, storage "1" = 42 as i64.
fn wrapper_records(pkl: &[u8]) -> Vec<u8> {
    let s0: Vec<u8> = (0..8).flat_map(|v| (v as f32).to_le_bytes()).collect();
    let s1 = 42i64.to_le_bytes();
    make_zip(&[
        ("archive/data.pkl", pkl),
        ("archive/byteorder", b"little"),
        ("archive/data/0", &s0),
        ("archive/data/1", &s1),
        ("archive/version", b"3\n"),
    ])
}

#[test]
fn cpython_pickles_of_protocols_2_4_5_with_views_and_wrappers() {
    // Made by CPython's pickler (fake `torch` modules) from
    //   {'epoch': 7, 'model_state_dict': OrderedDict(
    //        'a.weight': Parameter(rebuild_tensor_v2(storage 0, offset 0, size (2, 3), stride (1, 2))),
    //        'a.bias': rebuild_tensor_v2(storage 0, offset 6, size (2,), stride (1,)),
    //        'bn.num_batches_tracked': rebuild_tensor_v2(storage 1 (LongStorage), 0, (), ())),
    //   'optimizer': {'lr': 1e-3, 'betas': (0.9, 0.999), 'big': 2**70, 'flags': [True, None, b'xy'], 'name': 'AdamW'}}
    // with storage locations 'cuda:0'.
    let dir = tempfile::tempdir().expect("tempdir");
    for (proto, h) in [(2, WRAPPER_P2), (4, WRAPPER_P4), (5, WRAPPER_P5)] {
        let p = write_file(
            dir.path(),
            &format!("p{proto}.pt"),
            &wrapper_records(&hex(h)),
        );
        let sd = load(&p).unwrap_or_else(|e| panic!("protocol {proto}: {e}"));
        assert_eq!(
            sd.names(),
            vec!["a.weight", "a.bias", "bn.num_batches_tracked"],
            "protocol {proto}"
        );
        let w = sd.get("a.weight").expect("a.weight");
        assert_eq!(w.shape, vec![2, 3]);
        assert_eq!(
            w.to_f32_vec().expect("f32"),
            vec![0., 2., 4., 1., 3., 5.],
            "transposed view"
        );
        assert_eq!(
            sd.get("a.bias").expect("bias").to_f32_vec().expect("f32"),
            vec![6., 7.]
        );
        let nbt = sd.get("bn.num_batches_tracked").expect("nbt");
        assert_eq!((nbt.dtype, nbt.shape.len()), (DType::I64, 0));
        assert_eq!(nbt.to_i64_vec().expect("i64"), vec![42]);
    }
}

#[test]
fn malformed_files_give_errors_that_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    let empty = write_file(d, "empty.pt", b"");
    assert_err_mentions(load(&empty), &empty, &["empty"]);
    assert_err_mentions(read_pt(&empty), &empty, &["empty"]);
    assert_err_mentions(read_safetensors(&empty), &empty, &["safetensors"]);

    let text = write_file(d, "notes.pt", b"this is a text file, not a checkpoint\n");
    assert_err_mentions(load(&text), &text, &["is not a checkpoint"]);
    assert_err_mentions(
        read_pt(&text),
        &text,
        &["not a readable PyTorch zip checkpoint"],
    );
    let noise = noise_bytes(0x2545_f491_4f6c_dd1d, 4096);
    let random = write_file(d, "random.bin", &noise);
    assert_err_mentions(load(&random), &random, &["is not a checkpoint"]);
    assert_err_mentions(read_pt(&random), &random, &["zip"]);

    let missing = d.join("does-not-exist.pt");
    assert_err_mentions(load(&missing), &missing, &["cannot open"]);

    let good = encode_pt(Path::new("x.pt"), "x", &small_sd()).expect("encode");
    for cut in [good.len() / 2, good.len() - 10, 30] {
        let truncated = write_file(d, &format!("truncated{cut}.pt"), &good[..cut]);
        assert_err_mentions(load(&truncated), &truncated, &["zip"]);
    }

    // A pickle that would run os.system("ls") under plain pickle.load.
    let evil_pkl = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.";
    let evil = write_file(d, "evil.pt", &make_zip(&[("archive/data.pkl", evil_pkl)]));
    assert_err_mentions(load(&evil), &evil, &["os.system", "refusing to load"]);
    // CPython: pickle.dumps(obj whose __reduce__ is (builtins.eval, ("1",)), protocol=4).
    let eval_pkl = b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94\x8c\x011\x94\x85\x94R\x94.";
    let evil2 = write_file(d, "evil2.pt", &make_zip(&[("m/data.pkl", eval_pkl)]));
    assert_err_mentions(load(&evil2), &evil2, &["builtins.eval", "refusing to load"]);

    let sd = small_sd();
    let pkl = pickle_of(&sd);
    let rec0: Vec<u8> = sd.get("conv.weight").expect("w").data.clone();
    let rec1: Vec<u8> = sd.get("bn.num_batches_tracked").expect("nbt").data.clone();

    let no_record = write_file(
        d,
        "missing_record.pt",
        &make_zip(&[("archive/data.pkl", &pkl), ("archive/data/0", &rec0)]),
    );
    assert_err_mentions(
        load(&no_record),
        &no_record,
        &["bn.num_batches_tracked", "archive/data/1", "missing"],
    );

    let short = write_file(
        d,
        "short_record.pt",
        &make_zip(&[
            ("archive/data.pkl", &pkl),
            ("archive/data/0", &rec0[..20]),
            ("archive/data/1", &rec1),
        ]),
    );
    assert_err_mentions(
        load(&short),
        &short,
        &[
            "conv.weight",
            "archive/data/0",
            "too short",
            "24 bytes",
            "20",
        ],
    );

    let complex_pkl = {
        let s = pkl.clone();
        let needle = b"torch\nFloatStorage\n";
        let at = s
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("FloatStorage global");
        let mut out = s[..at].to_vec();
        out.extend_from_slice(b"torch\nComplexFloatStorage\n");
        out.extend_from_slice(&s[at + needle.len()..]);
        out
    };
    let complex = write_file(
        d,
        "complex.pt",
        &make_zip(&[
            ("archive/data.pkl", &complex_pkl),
            ("archive/data/0", &rec0),
            ("archive/data/1", &rec1),
        ]),
    );
    assert_err_mentions(
        load(&complex),
        &complex,
        &[
            "conv.weight",
            "unsupported element type",
            "ComplexFloatStorage",
        ],
    );

    let bad_op = write_file(
        d,
        "bad_op.pt",
        &make_zip(&[("archive/data.pkl", b"\x80\x02\xff")]),
    );
    assert_err_mentions(
        load(&bad_op),
        &bad_op,
        &["unsupported pickle opcode 0xff", "archive/data.pkl"],
    );
    let cut_pkl = write_file(
        d,
        "cut_pkl.pt",
        &make_zip(&[("archive/data.pkl", &pkl[..pkl.len() / 2])]),
    );
    assert_err_mentions(load(&cut_pkl), &cut_pkl, &["malformed pickle"]);
    let list_pkl = write_file(
        d,
        "list.pt",
        &make_zip(&[("archive/data.pkl", b"\x80\x02]q\x00K\x01a.")]),
    );
    assert_err_mentions(
        load(&list_pkl),
        &list_pkl,
        &["a list", "expected a state dict"],
    );
    let no_pkl = write_file(d, "no_pkl.pt", &make_zip(&[("archive/version", b"3\n")]));
    assert_err_mentions(load(&no_pkl), &no_pkl, &["no data.pkl"]);
    let two_pkl = write_file(
        d,
        "two_pkl.pt",
        &make_zip(&[("a/data.pkl", &pkl), ("b/data.pkl", &pkl)]),
    );
    assert_err_mentions(
        load(&two_pkl),
        &two_pkl,
        &["several data.pkl", "a/data.pkl", "b/data.pkl"],
    );

    let st_bad = write_file(
        d,
        "bad.safetensors",
        b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}        ",
    );
    assert_err_mentions(load(&st_bad), &st_bad, &["not a readable safetensors file"]);
}

#[test]
fn every_prefix_and_byte_flip_of_a_checkpoint_is_an_error_or_a_valid_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = encode_pt(Path::new("x.pt"), "x", &small_sd()).expect("encode");
    let p = dir.path().join("fuzz.pt");
    for cut in (0..good.len()).step_by(7) {
        std::fs::write(&p, &good[..cut]).expect("write");
        assert!(
            load(&p).is_err(),
            "a {cut}-byte prefix of a {}-byte file loaded",
            good.len()
        );
    }
    let pkl = pickle_of(&small_sd());
    let rec0 = small_sd().get("conv.weight").expect("w").data.clone();
    let rec1 = 12345i64.to_le_bytes();
    for i in 0..pkl.len() {
        let mut bad = pkl.clone();
        bad[i] ^= 0x5a;
        let z = make_zip(&[
            ("archive/data.pkl", &bad),
            ("archive/data/0", &rec0),
            ("archive/data/1", &rec1),
        ]);
        std::fs::write(&p, z).expect("write");
        // Must not panic; either outcome is acceptable for a flipped byte.
        let _ = load(&p);
    }
}

#[test]
fn match_state_dict_reports_loaded_missing_and_ignored_in_order() {
    let mut sd = StateDict::new();
    sd.insert("extra.weight", RawTensor::from_f32(vec![1], &[9.0]));
    sd.insert("b", RawTensor::from_f32(vec![2], &[1.0, 2.0]));
    sd.insert("a", RawTensor::from_f32(vec![3], &[1.0, 2.0, 3.0]));
    sd.insert("shape_mismatch", RawTensor::from_f32(vec![4], &[0.0; 4]));
    sd.insert("n", RawTensor::from_i64(Vec::<usize>::new(), &[3]));
    let expected = vec![
        Expected::new("a", vec![3]),
        Expected::new("missing", vec![1]),
        Expected::new("shape_mismatch", vec![2, 2]),
        Expected::new("n", Vec::<usize>::new()),
        Expected::new("b", vec![2]),
    ];
    let (kept, report) = match_state_dict(&sd, &expected);
    assert_eq!(
        kept.names(),
        vec!["a", "n", "b"],
        "kept tensors follow the expected order"
    );
    assert_eq!(kept.get("a"), sd.get("a"));
    assert_eq!(report.loaded, vec!["a", "n", "b"]);
    assert_eq!(report.missing, vec!["missing", "shape_mismatch"]);
    assert_eq!(report.ignored, vec!["extra.weight", "shape_mismatch"]);
    let text = report.to_string();
    assert!(
        text.contains("loaded 3 tensors, 2 missing, 2 ignored"),
        "{text}"
    );
}

#[test]
fn a_10000nt_checkpoint_seeds_a_400nt_model() {
    let Some(src) = common::mane_checkpoint(10000) else {
        return;
    };
    let Some(src400) = common::mane_checkpoint(400) else {
        return;
    };
    let big = load(&src).expect("10000nt");
    let small = load(&src400).expect("400nt");
    let expected: Vec<Expected> = small
        .iter()
        .map(|(n, t)| Expected::new(n, t.shape.clone()))
        .collect();
    let (kept, report) = match_state_dict(&big, &expected);
    // The 400nt layout (units 0-7, Skips 4 and 9, final_conv) is a prefix of the 10000nt one with the same
    // shapes, so all 122 names match; the other 116 tensors of the 10000nt file are ignored.
    assert_eq!(report.loaded.len(), small.len());
    assert!(report.missing.is_empty(), "{report}");
    assert_eq!(report.ignored.len(), big.len() - small.len());
    assert_eq!(kept.names(), small.names());
}

#[test]
fn atomic_save_keeps_the_old_file_on_failure_and_leaves_no_temporaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["model_best.pt", "model_best.safetensors"] {
        let path = dir.path().join(name);
        save(&path, &small_sd()).expect("first save");
        let before = std::fs::read(&path).expect("read");

        let mut broken = small_sd();
        broken.insert(
            "bad",
            RawTensor {
                dtype: DType::F32,
                shape: vec![2, 2],
                data: vec![0u8; 15],
            },
        );
        assert_err_mentions(
            save(&path, &broken),
            &path,
            &["bad", "15 bytes", "needs 16"],
        );
        assert_eq!(
            std::fs::read(&path).expect("read"),
            before,
            "{name} changed after a failed save"
        );
        assert_eq!(load(&path).expect("old file still loads"), small_sd());
    }
    // A failure after the temporary file exists: the target is a directory, so the rename fails.
    let blocked = dir.path().join("blocked.pt");
    std::fs::create_dir(&blocked).expect("mkdir");
    let e = save(&blocked, &small_sd()).expect_err("rename over a directory must fail");
    assert!(e.to_string().contains("blocked.pt"), "{e}");
    // No such directory.
    let nowhere = dir.path().join("no/such/dir/model.pt");
    assert_err_mentions(save(&nowhere, &small_sd()), &nowhere, &["temporary file"]);
    // Unknown extension.
    let odd = dir.path().join("model.ckpt");
    assert_err_mentions(save(&odd, &small_sd()), &odd, &[".safetensors"]);

    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["blocked.pt", "model_best.pt", "model_best.safetensors"]
    );
}

#[test]
fn written_pt_uses_the_final_file_stem_and_passes_the_structure_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model_3.pt");
    write_pt(&path, &small_sd()).expect("write");
    let bytes = std::fs::read(&path).expect("read");
    let names: Vec<String> = data_offsets(&bytes).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        vec![
            "model_3/data.pkl",
            "model_3/.format_version",
            "model_3/.storage_alignment",
            "model_3/byteorder",
            "model_3/data/0",
            "model_3/data/1",
            "model_3/version",
            "model_3/.data/serialization_id",
        ]
    );
    let sd = read_pt(&path).expect("read back");
    assert_eq!(sd, small_sd());
    if let Some((ok, text)) = check_pt_structure(&path) {
        assert!(ok, "{text}");
    }
    // The structure check must also catch problems: a misaligned archive written by another zip writer.
    let pkl = pickle_of(&small_sd());
    let rec0 = small_sd().get("conv.weight").expect("w").data.clone();
    let rec1 = 12345i64.to_le_bytes();
    let plain = write_file(
        dir.path(),
        "plain.pt",
        &make_zip(&[
            ("archive/data.pkl", &pkl),
            ("archive/byteorder", b"little"),
            ("archive/data/0", &rec0),
            ("archive/data/1", &rec1),
            ("archive/version", b"3\n"),
        ]),
    );
    assert_eq!(
        read_pt(&plain).expect("unaligned archives still load"),
        small_sd()
    );
    if let Some((ok, text)) = check_pt_structure(&plain) {
        assert!(!ok, "the checker accepted an unaligned archive: {text}");
        assert!(text.contains("not 64-byte aligned"), "{text}");
    }
}

#[test]
fn state_dict_and_raw_tensor_basics() {
    let mut sd = StateDict::new();
    assert!(sd.is_empty());
    sd.insert("x", RawTensor::from_f32(vec![1], &[1.0]));
    sd.insert("y", RawTensor::from_f32(vec![1], &[2.0]));
    let old = sd.insert("x", RawTensor::from_f32(vec![1], &[3.0]));
    assert_eq!(old, Some(RawTensor::from_f32(vec![1], &[1.0])));
    assert_eq!(
        sd.names(),
        vec!["x", "y"],
        "replacing keeps the first position"
    );
    assert_eq!(
        sd.get("x").expect("x").to_f32_vec().expect("f32"),
        vec![3.0]
    );
    assert_eq!(sd.len(), 2);

    let h = RawTensor {
        dtype: DType::F16,
        shape: vec![2],
        data: [half::f16::from_f32(1.5), half::f16::from_f32(-2.0)]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    };
    assert_eq!(h.to_f32_vec().expect("f16"), vec![1.5, -2.0]);
    let b = RawTensor {
        dtype: DType::BF16,
        shape: vec![1],
        data: half::bf16::from_f32(0.375).to_le_bytes().to_vec(),
    };
    assert_eq!(b.to_f32_vec().expect("bf16"), vec![0.375]);
    let e = RawTensor::from_f32(vec![1], &[1.0])
        .to_i64_vec()
        .expect_err("float to i64");
    assert!(e.to_string().contains("integer"), "{e}");
    let wrong = RawTensor {
        dtype: DType::I64,
        shape: vec![2],
        data: vec![0; 8],
    };
    assert!(wrong.to_i64_vec().is_err());
    assert_eq!(DType::I64.size_in_bytes(), 8);
    assert_eq!(DType::BF16.name(), "bfloat16");

    // Every supported type survives both formats.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut all = StateDict::new();
    for (i, dt) in [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::I64,
        DType::I32,
        DType::I16,
        DType::I8,
        DType::U8,
        DType::Bool,
    ]
    .into_iter()
    .enumerate()
    {
        let n = 3 + i;
        let data = (0..n * dt.size_in_bytes())
            .map(|b| {
                if dt == DType::Bool {
                    (b % 2) as u8
                } else {
                    (b * 7 + i) as u8
                }
            })
            .collect();
        all.insert(
            format!("t{i}.{}", dt.name()),
            RawTensor {
                dtype: dt,
                shape: vec![n],
                data,
            },
        );
    }
    all.insert(
        "empty",
        RawTensor {
            dtype: DType::F32,
            shape: vec![0, 4],
            data: vec![],
        },
    );
    for name in ["all.pt", "all.safetensors"] {
        let p = dir.path().join(name);
        if name.ends_with(".pt") {
            write_pt(&p, &all).expect("write_pt");
        } else {
            write_safetensors(&p, &all).expect("write_safetensors");
        }
        assert_eq!(load(&p).expect("load"), all, "{name}");
    }
    if let Some((ok, text)) = check_pt_structure(&dir.path().join("all.pt")) {
        assert!(ok, "{text}");
    }
    check_torch_load(&dir.path().join("all.pt"));
    let _ = checkpoint::Format::from_extension(Path::new("x.pth")).expect("pth");
}
