//! Tests of the data module: both HDF5 reader paths, h5py-written layouts, the split, the loader's
//! epoch coverage, every kind of bad input, and the example data.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openspliceai_rs::data::example::{
    write_create_data_file, write_example_data, write_h5, DatasetSpec, ExampleOptions, WriteType,
};
use openspliceai_rs::data::{
    decode_batch, split_train_validation, train_validation_windows, Backend, Batch, DataError,
    ElementType, H5File, Loader, LoaderConfig, Order, WindowRef, SEQ_LEN, X_LEN,
};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The formula of scripts/make_test_h5.py: X rows of window `g`.
fn formula_x(g: usize) -> Vec<u8> {
    let mut x = vec![0u8; X_LEN * 4];
    for r in 7000 + 100 * g..8200 + 100 * g {
        if !(r + g).is_multiple_of(13) {
            x[r * 4 + (7 * r + 3 * g + r / 5) % 4] = 1;
        }
    }
    x
}

/// The formula of scripts/make_test_h5.py: Y rows of window `g`.
fn formula_y(g: usize) -> Vec<u8> {
    let mut y = vec![0u8; SEQ_LEN * 3];
    for p in 0..SEQ_LEN {
        let l = if p % 500 == 17 * g + 3 {
            1
        } else if p % 500 == 250 + g {
            2
        } else {
            0
        };
        y[p * 3 + l] = 1;
    }
    y
}

/// Shard bytes (n, X, Y) of the formula windows `first..first + n`.
fn formula_shard(first: usize, n: usize) -> (usize, Vec<u8>, Vec<u8>) {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for g in first..first + n {
        x.extend(formula_x(g));
        y.extend(formula_y(g));
    }
    (n, x, y)
}

fn write_formula_file(path: &Path, sizes: &[usize]) {
    let mut first = 0;
    let shards: Vec<_> = sizes
        .iter()
        .map(|&n| {
            let s = formula_shard(first, n);
            first += n;
            s
        })
        .collect();
    write_create_data_file(path, &shards).unwrap();
}

/// Global window number of a WindowRef, given the shard sizes.
fn global(sizes: &[usize], w: WindowRef) -> usize {
    sizes[..w.shard].iter().sum::<usize>() + w.index
}

/// Asserts that every window of the batch decodes to its formula window.
fn assert_batch_matches_formula(b: &Batch, sizes: &[usize]) {
    let len = SEQ_LEN + b.flank;
    let off = (10000 - b.flank) / 2;
    assert_eq!(b.x.len(), b.n * 4 * len);
    assert_eq!(b.y.len(), b.n * 3 * SEQ_LEN);
    for (k, w) in b.windows.iter().enumerate() {
        let g = global(sizes, *w);
        let (fx, fy) = (formula_x(g), formula_y(g));
        for c in 0..4 {
            for p in 0..len {
                assert_eq!(
                    b.x[(k * 4 + c) * len + p],
                    f32::from(fx[(off + p) * 4 + c]),
                    "x window {g} c {c} p {p}"
                );
            }
        }
        for c in 0..3 {
            for p in 0..SEQ_LEN {
                assert_eq!(
                    b.y[(k * 3 + c) * SEQ_LEN + p],
                    f32::from(fy[p * 3 + c]),
                    "y window {g} c {c} p {p}"
                );
            }
        }
    }
}

fn sequential_batches(file: H5File, flank: usize, batch: usize) -> Vec<Batch> {
    let file = Arc::new(file);
    let windows = file.all_windows();
    Loader::batches(
        file,
        windows,
        LoaderConfig::new(flank, batch, Order::Sequential),
    )
    .unwrap()
    .collect::<Result<Vec<_>, _>>()
    .unwrap()
}

fn backends() -> Vec<Backend> {
    #[cfg(feature = "libhdf5")]
    return vec![Backend::Pure, Backend::LibHdf5];
    #[cfg(not(feature = "libhdf5"))]
    vec![Backend::Pure]
}

/// The h5py-written files of tests/data, with shard sizes and element type.
fn h5py_files() -> Vec<(&'static str, Vec<usize>, ElementType)> {
    vec![
        ("h5py_contiguous_i8.h5", vec![1], ElementType::I8),
        (
            "h5py_chunked_gzip_shuffle_i8.h5",
            vec![3, 2],
            ElementType::I8,
        ),
        (
            "h5py_v110_chunked_gzip_shuffle_i8.h5",
            vec![3, 2],
            ElementType::I8,
        ),
        ("h5py_chunked_gzip_u8.h5", vec![2, 1], ElementType::U8),
        ("h5py_chunked_gzip_bool.h5", vec![2], ElementType::Bool),
        (
            "h5py_chunked_gzip_shuffle_f32.h5",
            vec![2],
            ElementType::F32 { big_endian: false },
        ),
    ]
}

#[test]
fn h5py_layouts_decode_to_their_windows() {
    for (name, sizes, ty) in h5py_files() {
        for backend in backends() {
            let f = H5File::open_with(data_dir().join(name), backend).unwrap();
            let got: Vec<usize> = f.shards().iter().map(|s| s.n_windows).collect();
            assert_eq!(got, sizes, "{name}");
            assert_eq!(f.element_types(0), Some((ty, ty)), "{name} {backend:?}");
            for flank in [80, 10000] {
                let batches = sequential_batches(
                    H5File::open_with(data_dir().join(name), backend).unwrap(),
                    flank,
                    2,
                );
                assert_eq!(batches.len(), sizes.iter().sum::<usize>().div_ceil(2));
                for b in &batches {
                    assert_batch_matches_formula(b, &sizes);
                }
            }
        }
    }
}

#[test]
fn rust_written_layouts_decode_to_their_windows() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = [3usize, 2];
    let mut first = 0;
    let mut contiguous = Vec::new();
    let mut chunked = Vec::new();
    let mut unsigned = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let (_, x, y) = formula_shard(first, n);
        first += n;
        let xs = vec![n as u64, X_LEN as u64, 4];
        let ys = vec![1, n as u64, SEQ_LEN as u64, 3];
        contiguous.push(DatasetSpec::int8(format!("X{i}"), xs.clone(), x.clone()));
        contiguous.push(DatasetSpec::int8(format!("Y{i}"), ys.clone(), y.clone()));
        for (d, shape, chunks) in [
            (("X", x.clone()), xs.clone(), vec![1, 1000, 4]),
            (("Y", y.clone()), ys.clone(), vec![1, 1, 1000, 3]),
        ] {
            chunked.push(DatasetSpec {
                chunks: Some(chunks),
                gzip: Some(4),
                shuffle: true,
                ..DatasetSpec::int8(format!("{}{i}", d.0), shape.clone(), d.1.clone())
            });
            unsigned.push(DatasetSpec {
                dtype: WriteType::U8,
                ..DatasetSpec::int8(format!("{}{i}", d.0), shape, d.1)
            });
        }
    }
    for (name, specs) in [
        ("contiguous.h5", contiguous),
        ("chunked.h5", chunked),
        ("u8.h5", unsigned),
    ] {
        let path = dir.path().join(name);
        write_h5(&path, &specs).unwrap();
        for backend in backends() {
            for b in sequential_batches(H5File::open_with(&path, backend).unwrap(), 400, 3) {
                assert_batch_matches_formula(&b, &sizes);
            }
        }
    }
}

/// The same bytes through the pure-Rust reader and libhdf5, for every file we can lay hands on.
#[cfg(feature = "libhdf5")]
#[test]
fn pure_and_libhdf5_read_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = h5py_files()
        .iter()
        .map(|(n, _, _)| data_dir().join(n))
        .collect();
    let example = write_example_data(
        dir.path(),
        &ExampleOptions {
            train_shards: 2,
            test_shards: 1,
            windows_per_shard: 3,
            ..ExampleOptions::default()
        },
    )
    .unwrap();
    files.push(example.train);
    if let Some(d) = common::dmel_dir() {
        files.push(d.join("dataset_test.h5"));
    }
    for path in files {
        let a = H5File::open_with(&path, Backend::Pure).unwrap();
        let b = H5File::open_with(&path, Backend::LibHdf5).unwrap();
        assert_eq!(a.shards(), b.shards(), "{}", path.display());
        for s in a.shards() {
            assert_eq!(a.element_types(s.index), b.element_types(s.index));
            let (ra, rb) = (
                a.read_shard(s.index).unwrap(),
                b.read_shard(s.index).unwrap(),
            );
            assert!(
                ra.x_codes() == rb.x_codes(),
                "{} X{}",
                path.display(),
                s.index
            );
            assert!(
                ra.y_codes() == rb.y_codes(),
                "{} Y{}",
                path.display(),
                s.index
            );
        }
    }
}

#[test]
fn real_create_data_files() {
    let Some(d) = common::dmel_dir() else {
        return;
    };
    let train = H5File::open(d.join("dataset_train.h5")).unwrap();
    assert_eq!(train.shards().len(), 3);
    assert_eq!(train.n_windows(), 334);
    let test = Arc::new(H5File::open(d.join("dataset_test.h5")).unwrap());
    assert_eq!(test.n_windows(), 135);
    let loader = Loader::batches(
        test.clone(),
        test.all_windows(),
        LoaderConfig::new(400, 24, Order::Sequential),
    )
    .unwrap();
    assert_eq!(loader.batches_per_epoch(), 6);
    let (mut acceptors, mut donors, mut seen) = (0.0, 0.0, 0);
    for b in loader {
        let b = b.unwrap();
        for k in 0..b.n {
            acceptors += b.y[(k * 3 + 1) * SEQ_LEN..(k * 3 + 2) * SEQ_LEN]
                .iter()
                .sum::<f32>();
            donors += b.y[(k * 3 + 2) * SEQ_LEN..(k * 3 + 3) * SEQ_LEN]
                .iter()
                .sum::<f32>();
        }
        seen += b.n;
    }
    assert_eq!((seen, acceptors, donors), (135, 232.0, 232.0));
}

#[test]
fn split_is_seeded_disjoint_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    for sizes in [vec![23usize], vec![7, 1, 13, 5]] {
        let path = dir.path().join(format!("split{}.h5", sizes.len()));
        write_formula_file(&path, &sizes);
        let f = H5File::open(&path).unwrap();
        let n = f.n_windows();
        let (t1, v1) = split_train_validation(&f, 42);
        let (t2, v2) = split_train_validation(&f, 42);
        assert_eq!((&t1, &v1), (&t2, &v2), "same seed, same split");
        assert_eq!(v1.len(), ((n as f64) * 0.1).round() as usize);
        let (ts, vs): (HashSet<_>, HashSet<_>) =
            (t1.iter().copied().collect(), v1.iter().copied().collect());
        assert!(ts.is_disjoint(&vs));
        let mut all: Vec<WindowRef> = t1.iter().chain(&v1).copied().collect();
        all.sort_unstable();
        assert_eq!(all, f.all_windows());
        let differs = (0..8u64).any(|s| split_train_validation(&f, 100 + s).1 != v1);
        assert!(differs, "other seeds give other splits");
    }
    // An explicit validation file replaces the split.
    let (train, val) = (dir.path().join("split4.h5"), dir.path().join("split1.h5"));
    let (train, val) = (H5File::open(train).unwrap(), H5File::open(val).unwrap());
    let (t, v) = train_validation_windows(&train, Some(&val), 42);
    assert_eq!((t, v), (train.all_windows(), val.all_windows()));
    assert_eq!(
        train_validation_windows(&train, None, 42),
        split_train_validation(&train, 42)
    );
    // A one-window file keeps its window for training.
    let path = dir.path().join("one.h5");
    write_formula_file(&path, &[1]);
    let (t, v) = split_train_validation(&H5File::open(&path).unwrap(), 1);
    assert_eq!((t.len(), v.len()), (1, 0));
}

#[test]
fn every_window_once_per_epoch_across_odd_shards() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = [7usize, 1, 13, 5];
    let path = dir.path().join("odd.h5");
    write_formula_file(&path, &sizes);
    let file = Arc::new(H5File::open(&path).unwrap());
    let all = file.all_windows();
    for batch in [1usize, 4, 5, 26] {
        let mut orders = Vec::new();
        for epoch in 0..3u64 {
            for parallel in [true, false] {
                let config = LoaderConfig {
                    prefetch: 2,
                    parallel_decode: parallel,
                    ..LoaderConfig::new(80, batch, Order::Shuffled { seed: 9, epoch })
                };
                let loader = Loader::batches(file.clone(), all.clone(), config).unwrap();
                let expected = 26usize.div_ceil(batch);
                assert_eq!(loader.batches_per_epoch(), expected);
                let batches: Vec<Batch> = loader.collect::<Result<_, _>>().unwrap();
                assert_eq!(batches.len(), expected);
                for (i, b) in batches.iter().enumerate() {
                    if i + 1 < expected {
                        assert_eq!(b.n, batch, "only the last batch may be short");
                    }
                    assert_batch_matches_formula(b, &sizes);
                }
                let order: Vec<WindowRef> =
                    batches.iter().flat_map(|b| b.windows.clone()).collect();
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, all, "every window exactly once");
                orders.push(order);
            }
        }
        assert_eq!(orders[0], orders[1], "same seed and epoch, same order");
        assert_ne!(orders[0], orders[2], "another epoch, another order");
    }
    // Evaluation: every window in order, the last partial batch included.
    let (_, val) = split_train_validation(&file, 3);
    let batches: Vec<Batch> = Loader::batches(
        file.clone(),
        val.clone(),
        LoaderConfig::new(80, 2, Order::Sequential),
    )
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap();
    let order: Vec<WindowRef> = batches.iter().flat_map(|b| b.windows.clone()).collect();
    assert_eq!(order, val);
    assert_eq!(batches.last().map(|b| b.n), Some(1));
}

#[test]
fn loader_transform_errors_and_early_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.h5");
    write_formula_file(&path, &[4, 4, 4]);
    let file = Arc::new(H5File::open(&path).unwrap());
    let config = LoaderConfig {
        prefetch: 1,
        ..LoaderConfig::new(80, 2, Order::Shuffled { seed: 1, epoch: 0 })
    };
    // The transform runs on the loader side; its error ends the epoch.
    let loader = Loader::new(file.clone(), file.all_windows(), config, |b: Batch| {
        if b.windows.iter().any(|w| w.shard == 2) {
            Err(std::io::Error::other("device full"))
        } else {
            Ok(b.n)
        }
    })
    .unwrap();
    let results: Vec<_> = loader.collect();
    let last = results.last().unwrap();
    assert!(matches!(last, Err(DataError::Transform(_))), "{last:?}");
    assert!(last
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("device full"));
    assert!(results[..results.len() - 1]
        .iter()
        .all(|r| matches!(r, Ok(2))));
    // Dropping a loader mid-epoch stops its threads.
    let mut loader = Loader::batches(file.clone(), file.all_windows(), config).unwrap();
    assert!(loader.next().unwrap().is_ok());
    drop(loader);
    // Sequential evaluation accepts fewer windows than a batch; training does not.
    let few = vec![WindowRef { shard: 0, index: 1 }];
    let b: Vec<Batch> = Loader::batches(
        file.clone(),
        few.clone(),
        LoaderConfig::new(80, 36, Order::Sequential),
    )
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap();
    assert_eq!(b.len(), 1);
    let e = Loader::batches(
        file.clone(),
        few,
        LoaderConfig::new(80, 36, Order::Shuffled { seed: 0, epoch: 0 }),
    )
    .unwrap_err();
    assert!(matches!(e, DataError::TooFewWindows { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("t.h5") && msg.contains("1 windows") && msg.contains("36"),
        "{msg}"
    );
    // Windows that do not exist, or appear twice, are refused.
    let e = Loader::batches(
        file.clone(),
        vec![WindowRef { shard: 1, index: 4 }],
        LoaderConfig::new(80, 1, Order::Sequential),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("window 4") && e.contains("X1"), "{e}");
    let twice = vec![WindowRef { shard: 0, index: 0 }; 2];
    assert!(Loader::batches(
        file.clone(),
        twice,
        LoaderConfig::new(80, 1, Order::Sequential)
    )
    .is_err());
    assert!(Loader::batches(file, vec![], LoaderConfig::new(81, 1, Order::Sequential)).is_err());
}

/// Opens `path` and returns the error message (the open must fail).
fn open_err(path: &Path) -> String {
    match H5File::open(path) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_names(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

#[test]
fn bad_inputs_name_file_dataset_and_window() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (n, x, y) = formula_shard(0, 2);
    let xs = |n: u64| vec![n, X_LEN as u64, 4];
    let ys = |n: u64| vec![1, n, SEQ_LEN as u64, 3];
    let good = |i: usize| {
        vec![
            DatasetSpec::int8(format!("X{i}"), xs(n as u64), x.clone()),
            DatasetSpec::int8(format!("Y{i}"), ys(n as u64), y.clone()),
        ]
    };
    let write = |name: &str, specs: Vec<DatasetSpec>| {
        let p = d.join(name);
        write_h5(&p, &specs).unwrap();
        p
    };

    assert_names(&open_err(&d.join("absent.h5")), &["absent.h5", "not found"]);
    let text = d.join("notes.h5");
    std::fs::write(&text, "X0,Y0\n".repeat(300)).unwrap();
    assert_names(&open_err(&text), &["notes.h5", "not an HDF5 file"]);
    let truncated = d.join("truncated.h5");
    let full = std::fs::read(write("full.h5", good(0))).unwrap();
    std::fs::write(&truncated, &full[..600]).unwrap();
    assert!(H5File::open(&truncated)
        .and_then(|f| f.read_shard(0))
        .is_err());

    let other = DatasetSpec::int8("labels", vec![3], vec![0, 1, 0]);
    assert_names(
        &open_err(&write("nox0.h5", vec![other])),
        &["nox0.h5", "X0", "missing"],
    );
    let mut specs = good(0);
    specs.push(DatasetSpec::int8("X1", xs(2), x.clone()));
    assert_names(
        &open_err(&write("noy1.h5", specs)),
        &["noy1.h5", "Y1", "X1 has no labels"],
    );
    let mut specs = good(0);
    specs.push(DatasetSpec::int8("Y1", ys(2), y.clone()));
    assert_names(
        &open_err(&write("nox1.h5", specs)),
        &["nox1.h5", "X1", "missing"],
    );
    let mut specs = good(0);
    specs.extend(good(2));
    assert_names(
        &open_err(&write("gap.h5", specs)),
        &["gap.h5", "X1", "without gaps"],
    );

    let shape_cases: Vec<(&str, &str, DatasetSpec)> = vec![
        (
            "short.h5",
            "X0",
            DatasetSpec::int8("X0", vec![2, 14000, 4], vec![0; 2 * 14000 * 4]),
        ),
        (
            "five.h5",
            "X0",
            DatasetSpec::int8("X0", vec![2, 12000, 5], vec![0; 2 * 12000 * 5]),
        ),
        (
            "ychan.h5",
            "Y0",
            DatasetSpec::int8("Y0", vec![1, 2, 5000, 2], vec![0; 2 * 5000 * 2]),
        ),
        (
            "ylen.h5",
            "Y0",
            DatasetSpec::int8("Y0", vec![1, 2, 4000, 3], vec![0; 2 * 4000 * 3]),
        ),
        (
            "yn.h5",
            "Y0",
            DatasetSpec::int8("Y0", ys(1), y[..SEQ_LEN * 3].to_vec()),
        ),
        (
            "ylead.h5",
            "Y0",
            DatasetSpec::int8("Y0", vec![2, 1, 5000, 3], y.clone()),
        ),
    ];
    for (file, dataset, bad) in shape_cases {
        let mut specs = good(0);
        specs.retain(|s| s.name != bad.name);
        specs.push(bad);
        assert_names(
            &open_err(&write(file, specs)),
            &[file, dataset, "shape", "expected"],
        );
    }
    let empty = vec![
        DatasetSpec::int8("X0", xs(0), vec![]),
        DatasetSpec::int8("Y0", ys(0), vec![]),
    ];
    assert_names(
        &open_err(&write("empty.h5", empty)),
        &["empty.h5", "X0", "empty"],
    );
    let mut specs = good(0);
    specs[0] = DatasetSpec {
        dtype: WriteType::I16,
        bytes: x.iter().flat_map(|&v| [v, 0]).collect(),
        ..specs[0].clone()
    };
    assert_names(
        &open_err(&write("int16.h5", specs)),
        &["int16.h5", "X0", "element type"],
    );

    // Row values: checked as each shard is decoded, named by file, dataset, window and position.
    let bad_row = |file: &str, xb: Option<(usize, [u8; 4])>, yb: Option<(usize, [u8; 3])>| {
        let (mut x1, mut y1) = (x.clone(), y.clone());
        if let Some((at, v)) = xb {
            x1[at * 4..at * 4 + 4].copy_from_slice(&v);
        }
        if let Some((at, v)) = yb {
            y1[at * 3..at * 3 + 3].copy_from_slice(&v);
        }
        let mut specs = good(0);
        specs.push(DatasetSpec::int8("X1", xs(2), x1));
        specs.push(DatasetSpec::int8("Y1", ys(2), y1));
        let file = Arc::new(H5File::open(write(file, specs)).unwrap());
        let loader = Loader::batches(
            file.clone(),
            file.all_windows(),
            LoaderConfig::new(80, 1, Order::Sequential),
        )
        .unwrap();
        let results: Vec<_> = loader.collect();
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            2 + usize::from(xb.map_or(0, |b| b.0) >= X_LEN || yb.map_or(0, |b| b.0) >= SEQ_LEN)
        );
        results
            .into_iter()
            .find_map(Result::err)
            .unwrap()
            .to_string()
    };
    // Window 1 of X1, row 20: outside any flank's clip, but every row is checked.
    let m = bad_row("twohot.h5", Some((X_LEN + 20, [1, 1, 0, 0])), None);
    assert_names(
        &m,
        &[
            "twohot.h5",
            "dataset X1",
            "window 1",
            "position 20",
            "one-hot",
        ],
    );
    let m = bad_row("two.h5", Some((9000, [0, 2, 0, 0])), None);
    assert_names(&m, &["two.h5", "dataset X1", "window 0", "position 9000"]);
    let m = bad_row("minus.h5", Some((5, [0, 0, 255, 0])), None);
    assert_names(&m, &["minus.h5", "X1", "window 0", "position 5"]);
    let m = bad_row("ytwo1.h5", None, Some((SEQ_LEN + 4999, [1, 0, 1])));
    assert_names(
        &m,
        &[
            "ytwo1.h5",
            "dataset Y1",
            "window 1",
            "position 4999",
            "one-hot label row",
        ],
    );
    let m = bad_row("yval.h5", None, Some((7, [0, 0, 2])));
    assert_names(&m, &["yval.h5", "dataset Y1", "window 0", "position 7"]);
    let m = bad_row("ytwo.h5", None, Some((3, [0, 1, 1])));
    assert_names(&m, &["ytwo.h5", "dataset Y1", "window 0", "position 3"]);
    let float_half = {
        let mut specs = good(0);
        let mut bytes: Vec<u8> = x.iter().flat_map(|&v| f32::from(v).to_le_bytes()).collect();
        bytes[(100 * 4 + 1) * 4..(100 * 4 + 2) * 4].copy_from_slice(&0.5f32.to_le_bytes());
        specs[0] = DatasetSpec {
            dtype: WriteType::F32,
            bytes,
            ..specs[0].clone()
        };
        let f = H5File::open(write("half.h5", specs)).unwrap();
        decode_batch(&[(&f.read_shard(0).unwrap(), 0)], 80, false)
            .unwrap_err()
            .to_string()
    };
    assert_names(
        &float_half,
        &["half.h5", "dataset X0", "window 0", "position 100"],
    );
}

#[test]
fn example_data_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ExampleOptions {
        train_shards: 3,
        test_shards: 1,
        windows_per_shard: 5,
        seed: 11,
        sites_per_window: (3, 6),
    };
    let paths = write_example_data(dir.path(), &opts).unwrap();
    assert_eq!(paths.train, dir.path().join("dataset_train.h5"));
    let again = write_example_data(&dir.path().join("again"), &opts).unwrap();
    assert_eq!(
        std::fs::read(&paths.train).unwrap(),
        std::fs::read(&again.train).unwrap(),
        "seeded"
    );
    let train = H5File::open(&paths.train).unwrap();
    assert_eq!(train.shards().len(), 3);
    assert_eq!(train.n_windows(), 15);
    assert_eq!(
        train.element_types(0),
        Some((ElementType::I8, ElementType::I8))
    );
    let test = H5File::open(&paths.test).unwrap();
    assert_eq!(test.n_windows(), 5);
    let (mut acceptors, mut donors, mut n_rows) = (0, 0, 0);
    for b in sequential_batches(train, 10000, 4) {
        for k in 0..b.n {
            let len = b.x_len();
            let base = |p: usize| (0..4).find(|&c| b.x[(k * 4 + c) * len + p] == 1.0);
            n_rows += (0..len).filter(|&p| base(p).is_none()).count();
            for p in 0..SEQ_LEN {
                let q = p + 5000;
                if b.y[(k * 3 + 1) * SEQ_LEN + p] == 1.0 {
                    acceptors += 1;
                    assert_eq!(
                        (base(q - 2), base(q - 1)),
                        (Some(0), Some(2)),
                        "AG before an acceptor"
                    );
                }
                if b.y[(k * 3 + 2) * SEQ_LEN + p] == 1.0 {
                    donors += 1;
                    assert_eq!(
                        (base(q + 1), base(q + 2)),
                        (Some(2), Some(3)),
                        "GT after a donor"
                    );
                }
            }
        }
    }
    assert!(
        acceptors >= 15 && donors >= 15,
        "{acceptors} acceptors, {donors} donors"
    );
    assert!(n_rows > 0, "some N bases");
    assert!(write_example_data(
        dir.path(),
        &ExampleOptions {
            train_shards: 0,
            ..opts.clone()
        }
    )
    .is_err());
}

/// Corrupted files give errors, never panics (nor aborts): deterministic byte flips and
/// truncations of a chunked+gzip and a contiguous file, through open, read and decode.
#[test]
fn corrupt_files_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let contiguous = dir.path().join("c.h5");
    write_formula_file(&contiguous, &[1, 1]);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut opened, mut failed) = (0, 0);
    for src in [
        data_dir().join("h5py_chunked_gzip_shuffle_i8.h5"),
        contiguous,
    ] {
        let orig = std::fs::read(&src).unwrap();
        for case in 0..150 {
            let mut bytes = orig.clone();
            if case % 10 == 0 {
                bytes.truncate(orig.len() * (case / 10 + 1) / 16);
            } else {
                for _ in 0..1 + next() % 4 {
                    // Mostly metadata (the first 4 KiB), sometimes anywhere.
                    let span = if next() % 3 == 0 {
                        bytes.len()
                    } else {
                        4096.min(bytes.len())
                    };
                    let at = (next() as usize) % span;
                    bytes[at] = next() as u8;
                }
            }
            let path = dir.path().join("corrupt.h5");
            std::fs::write(&path, &bytes).unwrap();
            let result = H5File::open(&path).and_then(|f| {
                f.shards().iter().try_for_each(|s| {
                    let raw = f.read_shard(s.index)?;
                    let parts: Vec<_> = (0..s.n_windows).map(|i| (&raw, i)).collect();
                    decode_batch(&parts, 80, false).map(|_| ())
                })
            });
            match result {
                Ok(()) => opened += 1,
                Err(e) => {
                    failed += 1;
                    assert!(e.to_string().contains("corrupt.h5"), "{e}");
                }
            }
        }
    }
    assert!(
        failed > 50,
        "{failed} of {} corrupt files were refused",
        opened + failed
    );
}
