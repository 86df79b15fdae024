//! `predict --bigwig`: acceptor and donor scores per strand as four bigWig tracks (`bigtools`). Each track
//! has its own writer thread fed in contig order: the scorer sends the scores above the threshold as
//! windows are scored (the minus strand's windows are scored from the contig's end, so its positions
//! arrive ascending too). Each file is written to a temporary file and renamed into place at the end.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use bigtools::beddata::BedParserStreamingIterator;
use bigtools::{BigWigWrite, Value};

use crate::atomic::AtomicFile;

/// The four tracks' file names, in [`Track`] order.
pub const TRACK_NAMES: [&str; 4] = [
    "acceptor_plus.bw",
    "acceptor_minus.bw",
    "donor_plus.bw",
    "donor_minus.bw",
];

/// A contig name shared by every value sent for it.
#[derive(Clone, Debug)]
pub struct Chrom(pub Arc<str>);

impl From<Chrom> for String {
    fn from(c: Chrom) -> String {
        c.0.to_string()
    }
}

impl<'a> PartialEq<&'a str> for Chrom {
    fn eq(&self, other: &&'a str) -> bool {
        &*self.0 == *other
    }
}

type Batch = (Chrom, Vec<Value>);

struct TrackWriter {
    tx: Option<SyncSender<Batch>>,
    pending: Vec<Value>,
    chrom: Option<Chrom>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
    target: Option<AtomicFile>,
    file: Option<File>,
    path: PathBuf,
    /// Values pushed.
    values: u64,
}

/// The writers, in [`TRACK_NAMES`] order (the minus ones only with both strands).
pub(crate) struct Tracks {
    writers: Vec<Option<TrackWriter>>,
}

/// What became of one track.
#[derive(Debug, Clone)]
pub enum Written {
    /// The file and its size.
    File(PathBuf, u64),
    /// No score above the threshold: a bigWig cannot be empty, so no file.
    Empty(PathBuf),
}

fn write_track(
    rx: Receiver<Batch>,
    file: File,
    sizes: HashMap<String, u32>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()?;
    let vals = rx
        .into_iter()
        .flat_map(|(c, v)| v.into_iter().map(move |v| (c.clone(), v)));
    let source = BedParserStreamingIterator::wrap_infallible_iter(vals, true);
    BigWigWrite::new(file, sizes)
        .write(source, runtime)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

impl Tracks {
    /// Starts the writers in `dir` for contigs of the given sizes: the plus tracks, and the minus ones
    /// when `both` strands are scored.
    pub(crate) fn create(dir: &Path, sizes: &[(String, u64)], both: bool) -> std::io::Result<Self> {
        let mut map = HashMap::new();
        for (name, len) in sizes {
            let len = u32::try_from(*len).map_err(|_| {
                std::io::Error::other(format!(
                    "contig `{name}` ({len} bases) is longer than bigWig allows (4 Gb)"
                ))
            })?;
            map.insert(name.clone(), len);
        }
        let mut writers = Vec::new();
        for (t, name) in TRACK_NAMES.into_iter().enumerate() {
            if t % 2 == 1 && !both {
                writers.push(None);
                continue;
            }
            let path = dir.join(name);
            let (target, file) = AtomicFile::create(&path)?;
            let keep = file.try_clone()?;
            let (tx, rx) = sync_channel::<Batch>(64);
            let sizes = map.clone();
            let handle = std::thread::spawn(move || write_track(rx, file, sizes));
            writers.push(Some(TrackWriter {
                tx: Some(tx),
                pending: Vec::new(),
                chrom: None,
                handle: Some(handle),
                target: Some(target),
                file: Some(keep),
                path,
                values: 0,
            }));
        }
        Ok(Self { writers })
    }

    /// Adds the score of contig position `pos` to track `t` (0..4 in [`TRACK_NAMES`] order); positions of a
    /// track come in ascending order within a contig.
    pub(crate) fn push(&mut self, t: usize, chrom: &Chrom, pos: u64, score: f32) {
        let Some(w) = &mut self.writers[t] else {
            return;
        };
        w.values += 1;
        if w.chrom
            .as_ref()
            .is_none_or(|c| !Arc::ptr_eq(&c.0, &chrom.0))
        {
            w.send();
            w.chrom = Some(chrom.clone());
        }
        let p = pos as u32;
        w.pending.push(Value {
            start: p,
            end: p + 1,
            value: score,
        });
        if w.pending.len() >= 1 << 16 {
            w.send();
        }
    }

    /// Sends what is left, waits for the writers and renames the files into place.
    pub(crate) fn finish(mut self) -> Result<Vec<Written>, (PathBuf, std::io::Error)> {
        for w in self.writers.iter_mut().flatten() {
            w.send();
            w.tx = None;
        }
        let mut out = Vec::new();
        for w in self.writers.iter_mut().flatten() {
            let path = w.path.clone();
            let fail = |e: std::io::Error| (path.clone(), e);
            let handle = w.handle.take().expect("joined once");
            let result = handle
                .join()
                .map_err(|_| fail(std::io::Error::other("the bigWig writer panicked")))?;
            if w.values == 0 {
                // bigtools refuses an empty track; the temporary file goes with its guard.
                w.target = None;
                out.push(Written::Empty(path));
                continue;
            }
            result.map_err(fail)?;
            let file = w.file.take().expect("committed once");
            w.target
                .take()
                .expect("committed once")
                .commit(file)
                .map_err(|e| fail(e.into()))?;
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            out.push(Written::File(path, bytes));
        }
        Ok(out)
    }
}

impl TrackWriter {
    fn send(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let (Some(tx), Some(c)) = (&self.tx, &self.chrom) else {
            return;
        };
        // A writer that stopped reports its error when joined.
        let _ = tx.send((c.clone(), std::mem::take(&mut self.pending)));
    }
}

impl Drop for Tracks {
    fn drop(&mut self) {
        for w in self.writers.iter_mut().flatten() {
            w.tx = None;
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
        }
    }
}
