//! The batch loader: a seeded epoch order over a window list, a background reader thread that
//! reads the next shard while the current one is decoded, rayon decoding, a per-batch transform,
//! and a bounded queue of ready batches.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::decode::{decode_batch, RawShard};
use super::{check_flank, Batch, DataError, H5File, WindowRef};

/// The order in which a [`Loader`] visits its windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Training order for one epoch: shard order and the windows within each shard shuffled by an
    /// RNG seeded from `seed` and `epoch`; the same pair always gives the same order.
    Shuffled {
        /// The run's random seed.
        seed: u64,
        /// The epoch number (from 0).
        epoch: u64,
    },
    /// Evaluation order: shards ascending, windows ascending within each shard.
    Sequential,
}

/// How a [`Loader`] batches and prefetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderConfig {
    /// Flanking size; X is clipped to 5000 + flank positions.
    pub flank: usize,
    /// Windows per batch; only the epoch's last batch may be shorter.
    pub batch_size: usize,
    /// Epoch order.
    pub order: Order,
    /// Ready batches queued ahead of the consumer (at least 1).
    pub prefetch: usize,
    /// Decode the windows of a batch on rayon's pool (otherwise on the loader thread alone).
    pub parallel_decode: bool,
}

/// Default number of ready batches queued ahead of the consumer.
pub const DEFAULT_PREFETCH: usize = 4;

impl LoaderConfig {
    /// A config with [`DEFAULT_PREFETCH`] and parallel decoding.
    pub fn new(flank: usize, batch_size: usize, order: Order) -> Self {
        Self {
            flank,
            batch_size,
            order,
            prefetch: DEFAULT_PREFETCH,
            parallel_decode: true,
        }
    }
}

/// Mixes a 64-bit value (splitmix64's finaliser).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The epoch's visiting plan: shards in visiting order, each with its windows in visiting order.
/// Windows are grouped by shard so each shard is read once per epoch.
pub fn epoch_plan(windows: &[WindowRef], order: Order) -> Vec<(usize, Vec<usize>)> {
    let mut by_shard: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for w in windows {
        by_shard.entry(w.shard).or_default().push(w.index);
    }
    let mut plan: Vec<(usize, Vec<usize>)> = by_shard.into_iter().collect();
    match order {
        Order::Sequential => {
            for (_, idx) in &mut plan {
                idx.sort_unstable();
            }
        }
        Order::Shuffled { seed, epoch } => {
            let mut rng = StdRng::seed_from_u64(mix(seed ^ mix(epoch ^ 0xE90C_4000_0000_0000)));
            for (_, idx) in &mut plan {
                idx.sort_unstable();
            }
            plan.shuffle(&mut rng);
            for (_, idx) in &mut plan {
                idx.shuffle(&mut rng);
            }
        }
    }
    plan
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Iterates batches over a window list for one epoch, from a background thread.
///
/// Two threads run per loader: a reader that reads shard after shard in the epoch's order (at most
/// one read ahead of the decoder), and a decoder that assembles batches (a shard's remainder joins
/// the next shard's windows), decodes them (with rayon when `parallel_decode`), runs the
/// transform, and queues at most `prefetch` results. So at most about three shards of raw bytes
/// and `prefetch` batches are in memory, never the whole file. Every window of the list is
/// delivered exactly once; only the last batch may be short. Dropping the loader stops both
/// threads (it waits for a read in progress to finish).
pub struct Loader<T> {
    rx: Option<Receiver<Result<T, DataError>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    batches: usize,
    windows: usize,
    delivered: usize,
    done: bool,
    waited: Duration,
}

impl<T> std::fmt::Debug for Loader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("batches", &self.batches)
            .field("windows", &self.windows)
            .field("delivered", &self.delivered)
            .finish()
    }
}

impl Loader<Batch> {
    /// A loader that yields the decoded [`Batch`]es themselves.
    pub fn batches(
        file: Arc<H5File>,
        windows: Vec<WindowRef>,
        config: LoaderConfig,
    ) -> Result<Self, DataError> {
        Loader::new(file, windows, config, Ok::<Batch, std::convert::Infallible>)
    }
}

impl<T: Send + 'static> Loader<T> {
    /// Starts a loader over `windows` of `file`. `transform` runs on the loader thread for each
    /// decoded batch (e.g. to move it to a device); its error ends the epoch with
    /// [`DataError::Transform`].
    ///
    /// Errors at once for an invalid flank, a batch size or prefetch of 0, a window that does not
    /// exist or appears twice, and, for [`Order::Shuffled`], fewer windows than one batch
    /// ([`DataError::TooFewWindows`]).
    pub fn new<F, E>(
        file: Arc<H5File>,
        windows: Vec<WindowRef>,
        config: LoaderConfig,
        transform: F,
    ) -> Result<Self, DataError>
    where
        F: Fn(Batch) -> Result<T, E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        check_flank(config.flank)?;
        if config.batch_size == 0 {
            return Err(DataError::InvalidArgument(
                "batch size must be at least 1".into(),
            ));
        }
        if config.prefetch == 0 {
            return Err(DataError::InvalidArgument(
                "prefetch depth must be at least 1".into(),
            ));
        }
        let mut seen = HashSet::with_capacity(windows.len());
        for &w in &windows {
            file.check_window(w)?;
            if !seen.insert(w) {
                return Err(DataError::InvalidArgument(format!(
                    "{}: window {} of shard X{} is listed twice",
                    file.path().display(),
                    w.index,
                    w.shard
                )));
            }
        }
        if matches!(config.order, Order::Shuffled { .. }) && windows.len() < config.batch_size {
            return Err(DataError::TooFewWindows {
                path: file.path().to_path_buf(),
                n_windows: windows.len(),
                batch_size: config.batch_size,
            });
        }
        let n_windows = windows.len();
        let batches = n_windows.div_ceil(config.batch_size);
        let plan = Arc::new(epoch_plan(&windows, config.order));
        let stop = Arc::new(AtomicBool::new(false));

        let (shard_tx, shard_rx) = sync_channel::<Result<RawShard, DataError>>(1);
        let (out_tx, out_rx) = sync_channel::<Result<T, DataError>>(config.prefetch);

        let reader = {
            let (file, plan, stop) = (file.clone(), plan.clone(), stop.clone());
            std::thread::Builder::new()
                .name("osai-data-read".into())
                .spawn(move || read_shards(&file, &plan, &stop, shard_tx))
                .map_err(|e| {
                    DataError::InvalidArgument(format!("cannot start the loader thread: {e}"))
                })?
        };
        let decoder = {
            let (plan, stop) = (plan.clone(), stop.clone());
            std::thread::Builder::new()
                .name("osai-data-decode".into())
                .spawn(move || {
                    let transform =
                        |b: Batch| transform(b).map_err(|e| DataError::Transform(e.into()));
                    decode_batches(&plan, config, &stop, shard_rx, out_tx, transform)
                })
                .map_err(|e| {
                    DataError::InvalidArgument(format!("cannot start the loader thread: {e}"))
                })?
        };
        log::debug!(
            "{}: loader over {n_windows} windows, {batches} batches of {}, prefetch {}",
            file.path().display(),
            config.batch_size,
            config.prefetch
        );
        Ok(Self {
            rx: Some(out_rx),
            stop,
            threads: vec![decoder, reader],
            batches,
            windows: n_windows,
            delivered: 0,
            done: false,
            waited: Duration::ZERO,
        })
    }
}

impl<T> Loader<T> {
    /// Batches this epoch: ceil(windows / batch size).
    pub fn batches_per_epoch(&self) -> usize {
        self.batches
    }

    /// Windows this epoch.
    pub fn n_windows(&self) -> usize {
        self.windows
    }

    /// Total time the consumer has spent waiting for a batch so far (near zero when the
    /// prefetch keeps ahead; the first batch always includes the first shard's read).
    pub fn wait_time(&self) -> Duration {
        self.waited
    }
}

fn read_shards(
    file: &H5File,
    plan: &[(usize, Vec<usize>)],
    stop: &AtomicBool,
    tx: SyncSender<Result<RawShard, DataError>>,
) {
    for (shard, _) in plan {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let r = file.read_shard(*shard);
        let failed = r.is_err();
        if tx.send(r).is_err() || failed {
            return;
        }
    }
}

fn decode_batches<T>(
    plan: &[(usize, Vec<usize>)],
    config: LoaderConfig,
    stop: &AtomicBool,
    shards: Receiver<Result<RawShard, DataError>>,
    out: SyncSender<Result<T, DataError>>,
    transform: impl Fn(Batch) -> Result<T, DataError>,
) {
    let emit = |pending: &mut Vec<(Arc<RawShard>, usize)>| -> bool {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let parts: Vec<(&RawShard, usize)> = pending.iter().map(|(s, i)| (&**s, *i)).collect();
        let result =
            decode_batch(&parts, config.flank, config.parallel_decode).and_then(&transform);
        pending.clear();
        let failed = result.is_err();
        out.send(result).is_ok() && !failed
    };
    let mut pending: Vec<(Arc<RawShard>, usize)> = Vec::with_capacity(config.batch_size);
    for (shard_index, windows) in plan {
        let shard = match shards.recv() {
            Ok(Ok(s)) if s.index() == *shard_index => Arc::new(s),
            Ok(Ok(s)) => {
                let _ = out.send(Err(DataError::InvalidArgument(format!(
                    "internal: loader read shard {} where {shard_index} was planned",
                    s.index()
                ))));
                return;
            }
            Ok(Err(e)) => {
                let _ = out.send(Err(e));
                return;
            }
            Err(_) => return,
        };
        for &i in windows {
            pending.push((shard.clone(), i));
            if pending.len() == config.batch_size && !emit(&mut pending) {
                return;
            }
        }
    }
    if !pending.is_empty() {
        emit(&mut pending);
    }
}

impl<T> Iterator for Loader<T> {
    type Item = Result<T, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rx = self.rx.as_ref()?;
        let start = Instant::now();
        let received = rx.recv();
        self.waited += start.elapsed();
        match received {
            Ok(Ok(item)) => {
                self.delivered += 1;
                if self.delivered == self.batches {
                    self.done = true;
                }
                Some(Ok(item))
            }
            Ok(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            Err(_) => {
                self.done = true;
                (self.delivered < self.batches).then_some(Err(DataError::LoaderStopped {
                    delivered: self.delivered,
                    expected: self.batches,
                }))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.done {
            0
        } else {
            self.batches - self.delivered
        };
        (0, Some(left))
    }
}

impl<T> Drop for Loader<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.rx.take());
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                log::warn!("a data loader thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_every_window_once() {
        let windows: Vec<WindowRef> = (0..3)
            .flat_map(|s| (0..(5 + 3 * s)).map(move |index| WindowRef { shard: s, index }))
            .collect();
        for order in [Order::Sequential, Order::Shuffled { seed: 7, epoch: 2 }] {
            let plan = epoch_plan(&windows, order);
            let mut got: Vec<WindowRef> = plan
                .iter()
                .flat_map(|(s, idx)| idx.iter().map(move |&index| WindowRef { shard: *s, index }))
                .collect();
            got.sort_unstable();
            assert_eq!(got, windows);
        }
        let a = epoch_plan(&windows, Order::Shuffled { seed: 7, epoch: 2 });
        assert_eq!(
            a,
            epoch_plan(&windows, Order::Shuffled { seed: 7, epoch: 2 })
        );
        assert_ne!(
            a,
            epoch_plan(&windows, Order::Shuffled { seed: 7, epoch: 3 })
        );
        assert_ne!(
            a,
            epoch_plan(&windows, Order::Shuffled { seed: 8, epoch: 2 })
        );
    }
}
