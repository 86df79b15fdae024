//! The frozen-prefix cache (`--freeze-bn` with some units frozen): the frozen part of the network is a
//! fixed function, so its output at the cut is computed once per window, stored in f16 in a memory-mapped
//! file under the run directory, and later epochs and evaluations run only the trainable suffix.
//!
//! Each slot holds the trunk activation `h` over the full input length (the trained units' BatchNorms
//! take batch statistics over every position, so the whole length is needed for exactness) and the skip
//! accumulator cropped to the 5000 output positions. Every use of a slot, the first included, reads the
//! f16 values back, so all epochs see identical inputs; the only difference from an uncached `--freeze-bn`
//! run is the f16 rounding of the activations at the cut.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use candle_core::{Device, Tensor};
use half::f16;
use memmap2::MmapMut;

use super::TrainError;
use crate::data::WindowRef;
use crate::model::config::{CHANNELS, SEQ_LEN};
use crate::model::{FlankConfig, Trunk};
use crate::rundir::Split;

/// The cache file and its slot table.
pub struct PrefixCache {
    path: PathBuf,
    map: RwLock<MmapMut>,
    h_len: usize,
    skip_len: usize,
    input_len: usize,
    slots: HashMap<(Split, WindowRef), usize>,
    filled: Vec<AtomicBool>,
    keep: bool,
}

impl std::fmt::Debug for PrefixCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixCache")
            .field("path", &self.path)
            .field("slots", &self.slots.len())
            .finish()
    }
}

fn io_err(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

impl PrefixCache {
    /// Creates the cache file `path` (`prefix_cache.f16` in the run directory, or `--cache-dir`'s file)
    /// with a slot for every window of every split.
    pub fn create(
        path: &Path,
        config: &FlankConfig,
        splits: &[(Split, &[WindowRef])],
        keep: bool,
    ) -> Result<Self, TrainError> {
        let input_len = config.input_len();
        let h_len = CHANNELS * input_len;
        let skip_len = CHANNELS * SEQ_LEN;
        let mut slots = HashMap::new();
        for (split, windows) in splits {
            for w in windows.iter() {
                let next = slots.len();
                slots.entry((*split, *w)).or_insert(next);
            }
        }
        let path = path.to_path_buf();
        let bytes = (slots.len() * (h_len + skip_len) * 2) as u64;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        file.set_len(bytes.max(1)).map_err(|e| io_err(&path, e))?;
        // SAFETY: the file was just created by us and is only accessed through this map.
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| io_err(&path, e))?;
        log::info!(
            "prefix cache {}: {} windows × {:.2} MB = {:.1} MB",
            path.display(),
            slots.len(),
            ((h_len + skip_len) * 2) as f64 / 1e6,
            bytes as f64 / 1e6
        );
        let filled = (0..slots.len()).map(|_| AtomicBool::new(false)).collect();
        Ok(Self {
            path,
            map: RwLock::new(map),
            h_len,
            skip_len,
            input_len,
            slots,
            filled,
            keep,
        })
    }

    /// Bytes of the whole file (a slot per window of every split).
    pub fn total_bytes(&self) -> u64 {
        self.slots.len() as u64 * self.slot_bytes() as u64
    }

    /// Windows with a slot.
    pub fn windows(&self) -> usize {
        self.slots.len()
    }

    /// Bytes per window.
    pub fn slot_bytes(&self) -> usize {
        (self.h_len + self.skip_len) * 2
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes of window `w`'s slot in the mapped file.
    fn slot_range(&self, split: Split, w: WindowRef) -> Result<std::ops::Range<usize>, TrainError> {
        let (s, b) = (self.slot(split, w)?, self.slot_bytes());
        Ok(s * b..(s + 1) * b)
    }

    fn slot(&self, split: Split, w: WindowRef) -> Result<usize, TrainError> {
        self.slots.get(&(split, w)).copied().ok_or_else(|| {
            TrainError::Config(format!(
                "prefix cache: no slot for window {} of shard {}",
                w.index, w.shard
            ))
        })
    }

    /// True when every window of the batch is stored.
    pub fn is_filled(&self, split: Split, windows: &[WindowRef]) -> bool {
        windows.iter().all(|w| {
            self.slots
                .get(&(split, *w))
                .is_some_and(|&s| self.filled[s].load(Ordering::Acquire))
        })
    }

    /// Stores a batch's prefix state (h (n, 32, L), skip (n, 32, 5000)) as f16.
    pub fn store(
        &self,
        split: Split,
        windows: &[WindowRef],
        state: &Trunk,
    ) -> Result<(), TrainError> {
        let h = state
            .h
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let skip = state
            .skip
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if h.len() != windows.len() * self.h_len || skip.len() != windows.len() * self.skip_len {
            return Err(TrainError::Config(
                "prefix cache: state does not match the batch".into(),
            ));
        }
        let mut map = self.map.write().map_err(|_| poisoned())?;
        for (i, w) in windows.iter().enumerate() {
            let dst = &mut map[self.slot_range(split, *w)?];
            let (dh, ds) = dst.split_at_mut(self.h_len * 2);
            let ok = encode(&h[i * self.h_len..(i + 1) * self.h_len], dh)
                & encode(&skip[i * self.skip_len..(i + 1) * self.skip_len], ds);
            if !ok {
                return Err(TrainError::Config(format!(
                    "prefix cache: an activation of window {} (shard {}) does not fit in f16; rerun with --no-cache",
                    w.index, w.shard
                )));
            }
        }
        for w in windows {
            self.filled[self.slot(split, *w)?].store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Reads a batch's prefix state back (f32 on `device`).
    pub fn load(
        &self,
        split: Split,
        windows: &[WindowRef],
        device: &Device,
    ) -> Result<Trunk, TrainError> {
        let n = windows.len();
        let mut h = vec![0f32; n * self.h_len];
        let mut skip = vec![0f32; n * self.skip_len];
        {
            let map = self.map.read().map_err(|_| poisoned())?;
            for (i, w) in windows.iter().enumerate() {
                let src_bytes = &map[self.slot_range(split, *w)?];
                let (bh, bs) = src_bytes.split_at(self.h_len * 2);
                decode(bh, &mut h[i * self.h_len..(i + 1) * self.h_len]);
                decode(bs, &mut skip[i * self.skip_len..(i + 1) * self.skip_len]);
            }
        }
        Ok(Trunk {
            h: Tensor::from_vec(h, (n, CHANNELS, self.input_len), device)?,
            skip: Tensor::from_vec(skip, (n, CHANNELS, SEQ_LEN), device)?,
        })
    }
}

/// Writes f16 values; false if a finite value overflowed f16's range.
fn encode(src: &[f32], dst: &mut [u8]) -> bool {
    let mut ok = true;
    for (v, out) in src.iter().zip(dst.chunks_exact_mut(2)) {
        let h = f16::from_f32(*v);
        ok &= h.is_finite() || !v.is_finite();
        out.copy_from_slice(&h.to_le_bytes());
    }
    ok
}

fn decode(src: &[u8], dst: &mut [f32]) {
    for (b, out) in src.chunks_exact(2).zip(dst.iter_mut()) {
        *out = f16::from_le_bytes([b[0], b[1]]).to_f32();
    }
}

impl Drop for PrefixCache {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(e) = std::fs::remove_file(&self.path) {
                log::warn!(
                    "could not remove the prefix cache {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}

fn poisoned() -> TrainError {
    TrainError::Config("prefix cache lock poisoned".into())
}
