//! Live heap bytes, counted by the global allocator while enabled: the CPU's measure of what a training
//! step keeps alive (the same quantity the CUDA allocator reports on a GPU). Off by default; while off,
//! each allocation costs one relaxed atomic load.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

static ENABLED: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// A global allocator that counts the bytes of `A`'s allocations while [`enable`]d.
pub struct Counting<A>(pub A);

/// The program's allocator, chosen here once for the binary and the test binaries (the library itself
/// sets none): mimalloc keeps freed pages for reuse, where with the system allocator every large tensor
/// is a fresh mmap whose pages fault in on first touch (a third of a CPU forward pass); counted by
/// [`Counting`] for `bench --memory` and the memory tests. Use as
/// `#[global_allocator] static GLOBAL: ProgramAllocator = PROGRAM_ALLOCATOR;`.
#[cfg(feature = "mimalloc")]
pub type ProgramAllocator = Counting<mimalloc::MiMalloc>;
#[cfg(feature = "mimalloc")]
pub const PROGRAM_ALLOCATOR: ProgramAllocator = Counting(mimalloc::MiMalloc);
#[cfg(not(feature = "mimalloc"))]
pub type ProgramAllocator = Counting<std::alloc::System>;
#[cfg(not(feature = "mimalloc"))]
pub const PROGRAM_ALLOCATOR: ProgramAllocator = Counting(std::alloc::System);

fn grow(bytes: usize) {
    if ENABLED.load(Relaxed) {
        let now = LIVE.fetch_add(bytes as isize, Relaxed) + bytes as isize;
        PEAK.fetch_max(now, Relaxed);
    }
}

fn shrink(bytes: usize) {
    if ENABLED.load(Relaxed) {
        LIVE.fetch_sub(bytes as isize, Relaxed);
    }
}

// SAFETY: every call is forwarded to `A` unchanged; the counters only observe sizes.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.0.dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrink(layout.size());
            grow(new_size);
        }
        p
    }
}

/// Starts counting (from the current net count; frees of memory allocated before count negative).
pub fn enable() {
    ENABLED.store(true, Relaxed);
}

/// Stops counting.
pub fn disable() {
    ENABLED.store(false, Relaxed);
}

/// Net bytes allocated while counting.
pub fn live() -> isize {
    LIVE.load(Relaxed)
}

/// Sets the peak to the current net count.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Relaxed), Relaxed);
}

/// The highest net count since [`reset_peak`].
pub fn peak() -> isize {
    PEAK.load(Relaxed)
}

/// Device memory in use (total − free) on a CUDA device, from the driver; `None` on other devices.
pub fn device_used(device: &candle_core::Device) -> candle_core::Result<Option<usize>> {
    #[cfg(feature = "cuda")]
    if let candle_core::Device::Cuda(d) = device {
        device.synchronize()?;
        let (free, total) = d
            .cuda_stream()
            .context()
            .mem_get_info()
            .map_err(|e| candle_core::Error::Msg(format!("cuMemGetInfo: {e:?}")))?;
        return Ok(Some(total - free));
    }
    let _ = device;
    Ok(None)
}
