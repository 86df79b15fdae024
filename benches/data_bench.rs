//! Data-path benchmark (`cargo bench --bench data_bench`; a `harness = false` main).
//!
//! Windows per second from the HDF5 file to a ready batch, for the 80nt and 10000nt flanks, with
//! decoding on one thread and on rayon's pool, through the real [`Loader`] (background shard
//! reads, bounded prefetch). The consumer does no work, so this is the loader's ceiling.
//! Input: `$OSAI_BENCH_H5` if set (e.g. a real `dataset_train.h5`), else example data written to
//! a temporary folder (contiguous int8, as `create-data` writes) plus the same windows chunked
//! with gzip + shuffle. `$OSAI_BENCH_EPOCHS` epochs per case (default 3).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openspliceai_rs::data::example::{write_example_data, write_h5, DatasetSpec, ExampleOptions};
use openspliceai_rs::data::{Backend, H5File, Loader, LoaderConfig, Order};

fn loader_rate(
    path: &Path,
    backend: Backend,
    flank: usize,
    batch: usize,
    parallel: bool,
    prefetch: usize,
    epochs: u64,
) -> f64 {
    let file = Arc::new(H5File::open_with(path, backend).expect("open"));
    let windows = file.all_windows();
    let start = Instant::now();
    let mut n = 0usize;
    for epoch in 0..epochs {
        let config = LoaderConfig {
            prefetch,
            parallel_decode: parallel,
            ..LoaderConfig::new(flank, batch, Order::Shuffled { seed: 42, epoch })
        };
        for b in Loader::batches(file.clone(), windows.clone(), config).expect("loader") {
            n += b.expect("batch").n;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// A consumer that works `busy` per batch (like a training step): how long it waited for data
/// after the first batch, out of the epoch's wall time.
fn consumer_wait(
    path: &Path,
    flank: usize,
    batch: usize,
    busy: Duration,
) -> (Duration, Duration, usize) {
    let file = Arc::new(H5File::open(path).expect("open"));
    let windows = file.all_windows();
    let config = LoaderConfig::new(flank, batch, Order::Shuffled { seed: 42, epoch: 0 });
    let mut loader = Loader::batches(file, windows, config).expect("loader");
    let start = Instant::now();
    let mut first = Duration::ZERO;
    let mut batches = 0;
    while let Some(b) = loader.next() {
        b.expect("batch");
        if batches == 0 {
            first = loader.wait_time();
        }
        batches += 1;
        std::thread::sleep(busy);
    }
    (loader.wait_time() - first, start.elapsed(), batches)
}

fn read_rate(path: &Path, backend: Backend) -> (f64, f64) {
    let file = H5File::open_with(path, backend).expect("open");
    let start = Instant::now();
    let mut bytes = 0usize;
    for s in file.shards() {
        bytes += file.read_shard(s.index).expect("read").memory_bytes();
    }
    let secs = start.elapsed().as_secs_f64();
    (file.n_windows() as f64 / secs, bytes as f64 / secs / 1e6)
}

fn chunked_copy(src: &Path, dst: &Path) {
    let file = H5File::open(src).expect("open");
    let mut specs = Vec::new();
    for s in file.shards() {
        let raw = file.read_shard(s.index).expect("read");
        let n = s.n_windows as u64;
        for (name, shape, chunks, bytes) in [
            (
                format!("X{}", s.index),
                vec![n, 15000, 4],
                vec![1, 15000, 4],
                raw.x_codes().to_vec(),
            ),
            (
                format!("Y{}", s.index),
                vec![1, n, 5000, 3],
                vec![1, 1, 5000, 3],
                raw.y_codes().to_vec(),
            ),
        ] {
            specs.push(DatasetSpec {
                chunks: Some(chunks),
                gzip: Some(4),
                shuffle: true,
                ..DatasetSpec::int8(name, shape, bytes)
            });
        }
    }
    write_h5(dst, &specs).expect("write chunked copy");
}

fn main() {
    let epochs: u64 = std::env::var("OSAI_BENCH_EPOCHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().expect("tempdir");
    let files: Vec<(String, PathBuf)> = match std::env::var_os("OSAI_BENCH_H5") {
        Some(p) => vec![("given file".into(), PathBuf::from(p))],
        None => {
            let opts = ExampleOptions {
                train_shards: 4,
                test_shards: 1,
                windows_per_shard: 64,
                ..ExampleOptions::default()
            };
            let paths = write_example_data(tmp.path(), &opts).expect("example data");
            let chunked = tmp.path().join("chunked.h5");
            chunked_copy(&paths.train, &chunked);
            vec![
                ("contiguous int8".into(), paths.train),
                ("chunked gzip+shuffle int8".into(), chunked),
            ]
        }
    };
    #[cfg(not(feature = "libhdf5"))]
    let backends = [Backend::Pure];
    #[cfg(feature = "libhdf5")]
    let backends = [Backend::Pure, Backend::LibHdf5];
    println!(
        "rayon threads: {}, epochs per case: {epochs}",
        rayon::current_num_threads()
    );
    for (label, path) in &files {
        let n = H5File::open(path).expect("open").n_windows();
        println!("\n{label}: {} ({n} windows)", path.display());
        for &backend in &backends {
            let (wps, mbps) = read_rate(path, backend);
            println!("  {backend:?} raw shard reads: {wps:8.0} windows/s ({mbps:.0} MB/s)");
        }
        for &backend in &backends {
            for (flank, batch) in [(80usize, 36usize), (10000, 12)] {
                for parallel in [false, true] {
                    let prefetch = 4;
                    let rate = loader_rate(path, backend, flank, batch, parallel, prefetch, epochs);
                    println!(
                        "  {backend:?} flank {flank:5} batch {batch:2} decode {:6} prefetch {prefetch}: {rate:8.0} windows/s",
                        if parallel { "rayon" } else { "1 thr" }
                    );
                }
            }
        }
        for (flank, batch, busy_ms) in [(80usize, 36usize, 10u64), (10000, 12, 10)] {
            let (waited, total, batches) =
                consumer_wait(path, flank, batch, Duration::from_millis(busy_ms));
            println!(
                "  consumer busy {busy_ms} ms/batch, flank {flank}: waited {:.1} ms after the first batch, over {batches} batches in {:.0} ms",
                waited.as_secs_f64() * 1e3,
                total.as_secs_f64() * 1e3
            );
        }
    }
}
