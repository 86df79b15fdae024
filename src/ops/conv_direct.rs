//! Direct AVX-512 kernels of the same-padded dilated Conv1d (x86_64 CPUs with AVX-512F).
//!
//! The im2col + gemm path of [`super::conv`] copies each input K times into a column buffer, and `gemm`
//! packs that buffer once more, for an output of only 32 rows: the copies, not the multiply-adds, bound it
//! at ~80% of the matmul ceiling forward and ~70% backward. These kernels read the input straight from a
//! zero-padded slab (one copy per task, `Cin × (T + 2·pad)` floats) with unaligned vector loads, because a
//! tap `k` of a stride-1 conv is the same row shifted by `k·d`:
//!
//! - forward (and the input gradient, which is the same conv with the flipped, transposed kernel): a
//!   micro-tile of 8 output channels × 48 positions lives in 24 registers; for each `(ci, k)` it loads three
//!   16-float vectors of the slab and broadcasts 8 weights (24 FMAs per 11 loads);
//! - weight gradient: a micro-tile of 4 output channels × 6 `(ci, k)` rows keeps 24 registers of partial
//!   sums over positions (24 FMAs per 10 loads) and reduces them once per tile. (A 4 × 4 tile, 16 FMAs
//!   per 8 loads, ran at half the speed: the unaligned loads, not the FMAs, bound it.)
//!
//! Any channel count works: channel blocks past the end use zero weights (forward) or repeat a valid row
//! whose result is discarded (weight gradient). Other CPUs use the gemm path.

use std::arch::x86_64::*;
use std::sync::OnceLock;

use rayon::prelude::*;

use super::conv::{ChannelMap, Fusion};
use super::cpu::{accumulate_tasks, SendPtr};
use super::gemm_plan::ConvShape;

/// Output channels per forward micro-tile.
pub(super) const MR: usize = 8;
/// 16-float vectors of positions per forward micro-tile.
pub(super) const NV: usize = 3;
/// Positions per forward micro-tile.
pub(super) const NR: usize = NV * 16;
/// Positions per forward task (a multiple of `NR`): the slab stays in L2 even for the 10000nt model's
/// widest dilation (pad 500): 32 × (960 + 1000) floats = 250 KB.
pub(super) const TILE: usize = 20 * NR;
/// Output channels × `(ci, k)` rows per weight-gradient micro-tile.
const GW_MR: usize = 4;
const GW_NR: usize = 6;
/// Positions per weight-gradient task (a multiple of 16).
const GW_TILE: usize = 1920;

/// Per-channel Σv and Σv² (f64).
pub(crate) type ChannelSums = Vec<(f64, f64)>;

/// Whether these kernels run here: the CPU has AVX-512F and `OSAI_CONV_KERNEL` is not `gemm` (that
/// setting selects the im2col + gemm path, for comparisons).
pub(crate) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::is_x86_feature_detected!("avx512f")
            && std::env::var("OSAI_CONV_KERNEL").map_or(true, |v| v != "gemm")
    })
}

/// The positions one task computes, `len` of them from `p0`, and the rows of its slab: the task reads
/// its window's input from a zero-padded copy (the slab) of `Cin` rows of `row_len` floats, row `ci`
/// holding `x[ci, p0 − pad .. p0 − pad + row_len]` (the tile rounded up to whole vectors, and the halo).
#[derive(Debug, Clone, Copy)]
pub(super) struct Tile {
    pub(super) p0: usize,
    pub(super) len: usize,
    pub(super) row_len: usize,
}

impl Tile {
    /// `(start, lo, hi)`: the sequence position of slab column 0 (negative in the left halo), and the
    /// slab columns `lo..hi` that fall inside `[0, L)` of the conv `s` (the others hold zeros).
    pub(super) fn inside(&self, s: &ConvShape) -> (isize, usize, usize) {
        let sl = self.row_len as isize;
        let start = self.p0 as isize - s.pad() as isize;
        let lo = (-start).clamp(0, sl) as usize;
        let hi = (s.l as isize - start).clamp(0, sl) as usize;
        (start, lo, hi)
    }
}

/// The bias of `cout` channels padded with zeros to whole blocks of [`MR`] (zero without a bias).
pub(super) fn pack_bias(bias: Option<&[f32]>, cout: usize) -> Vec<f32> {
    let mut bp = vec![0f32; cout.div_ceil(MR) * MR];
    if let Some(b) = bias {
        bp[..cout].copy_from_slice(b);
    }
    bp
}

/// Fills the `slab` of `tile` from one window `x` (Cin, L) of the conv `s`: zero outside `[0, L)`,
/// through `pre` where given.
fn fill_slab(slab: &mut [f32], x: &[f32], s: &ConvShape, tile: Tile, pre: Option<&ChannelMap>) {
    let (cin, l, sl) = (s.c_in, s.l, tile.row_len);
    let (start, lo, hi) = tile.inside(s);
    for ci in 0..cin {
        let dst = &mut slab[ci * sl..(ci + 1) * sl];
        if lo >= hi {
            dst.fill(0.0);
            continue;
        }
        let src = (start + lo as isize) as usize + ci * l;
        dst[..lo].fill(0.0);
        match pre {
            None => dst[lo..hi].copy_from_slice(&x[src..src + (hi - lo)]),
            Some(a) => {
                let (sc, sh, slope) = (a.scale[ci], a.shift[ci], a.slope);
                for (d, &v) in dst[lo..hi].iter_mut().zip(&x[src..src + (hi - lo)]) {
                    let z = v * sc + sh;
                    *d = z.max(z * slope);
                }
            }
        }
        dst[hi..].fill(0.0);
    }
}

/// `y (N, Cout, L) = conv(x (N, Cin, L), w (Cout, Cin, K)) (+ bias)` for the conv `s`; `None` when the
/// CPU lacks AVX-512F.
pub(crate) fn forward(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    s: &ConvShape,
) -> Option<Vec<f32>> {
    forward_fused(x, w, bias, s, Fusion::default()).map(|(y, _)| y)
}

/// The forward with the maps of `fuse` applied in the same pass; the sums come back when asked for.
pub(crate) fn forward_fused(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    s: &ConvShape,
    fuse: Fusion<'_, &[f32]>,
) -> Option<(Vec<f32>, Option<ChannelSums>)> {
    if !available() {
        return None;
    }
    Some(forward_tasks(
        (x, w, bias, s, fuse),
        "conv forward",
        s.c_in,
        || Packed::new(w, bias, s),
        |slab, xw, tile| fill_slab(slab, xw, s, tile, fuse.pre),
        // SAFETY: AVX-512F was detected; see forward_tasks for the tile's bounds.
        |p, slab, tile, out| unsafe { forward_tile(slab, &p.w, &p.bias, s, tile, out) },
    ))
}

/// What a forward of the conv `s` reads: `(x, w, bias, s, fuse)`.
pub(super) type ForwardArgs<'a, 'b> = (
    &'a [f32],
    &'a [f32],
    Option<&'a [f32]>,
    &'a ConvShape,
    Fusion<'b, &'b [f32]>,
);

/// The driver of both forward kernels (f32 here, bf16 in `conv_bf16`): checks the sizes (panics naming
/// `what`), packs the kernel with `pack`, then runs one task per (window, tile of [`TILE`] positions) in
/// parallel: `fill` copies the task's window of x into its slab (`slab_rows` rows of `row_len`
/// elements `T`), `run` computes and stores its output tile ([`Out`]: rows 0..Cout, the tile's
/// columns, disjoint from every other task; the residual sliced from the same place). The channel sums
/// are reduced in task order (deterministic whatever the scheduling).
pub(super) fn forward_tasks<P: Sync, T: Copy + Default + Send>(
    (x, w, bias, s, fuse): ForwardArgs<'_, '_>,
    what: &str,
    slab_rows: usize,
    pack: impl FnOnce() -> P,
    fill: impl Fn(&mut [T], &[f32], Tile) + Sync,
    run: impl Fn(&P, &[T], Tile, Out) + Sync,
) -> (Vec<f32>, Option<ChannelSums>) {
    let (n, cin, cout, l, k_size, _) = checked_dims(s, x, what);
    assert_eq!(w.len(), cout * cin * k_size, "{what}: kernel size");
    if let Some(b) = bias {
        assert_eq!(b.len(), cout, "{what}: bias size");
    }
    if let Some(a) = fuse.pre {
        assert!(
            a.scale.len() == cin && a.shift.len() == cin,
            "{what}: pre map size"
        );
    }
    if let Some(a) = fuse.post {
        assert!(
            a.scale.len() == cout && a.shift.len() == cout,
            "{what}: post map size"
        );
    }
    let total = n * cout * l;
    if let Some(r) = fuse.residual {
        assert_eq!(r.len(), total, "{what}: residual size");
    }
    if total == 0 {
        return (Vec::new(), fuse.sums.then(|| vec![(0.0, 0.0); cout]));
    }
    let packed = pack();
    let t_len = TILE.min(l.div_ceil(NR) * NR);
    let n_tiles = l.div_ceil(t_len);
    let n_tasks = n * n_tiles;
    let row_len = t_len + 2 * s.pad();
    let mut y: Vec<f32> = Vec::with_capacity(total);
    let y_ptr = SendPtr(y.as_mut_ptr());
    // Each task's channel sums, reduced in task order below (deterministic whatever the scheduling).
    let mut task_sums = vec![0f64; if fuse.sums { n_tasks * 2 * cout } else { 0 }];
    let sums_ptr = SendPtr(task_sums.as_mut_ptr());
    (0..n_tasks).into_par_iter().for_each_init(
        || vec![T::default(); slab_rows * row_len],
        |slab, task| {
            let (b, p0) = (task / n_tiles, (task % n_tiles) * t_len);
            let tile = Tile {
                p0,
                len: t_len.min(l - p0),
                row_len,
            };
            fill(slab, &x[b * cin * l..(b + 1) * cin * l], tile);
            let out = Out {
                y: y_ptr.get().wrapping_add(b * cout * l + p0),
                rs: l,
                residual: fuse
                    .residual
                    .map(|r| &r[b * cout * l + p0..(b + 1) * cout * l]),
                post: fuse.post,
                // SAFETY: 2·cout slots of this task alone, inside task_sums.
                sums: fuse.sums.then(|| unsafe {
                    std::slice::from_raw_parts_mut(sums_ptr.get().add(task * 2 * cout), 2 * cout)
                }),
            };
            // `run` writes rows 0..cout, columns p0..p0+tile.len of window b, disjoint from every other
            // task and inside y's allocation; its slab reads stay inside the slab (t_len is a multiple
            // of NR, and row_len adds the 2·pad halo); residual reads are masked to the same columns.
            run(&packed, slab, tile, out);
        },
    );
    // SAFETY: the tasks above wrote every element of y (each (window, tile) covers all channels and its
    // positions), and f32 has no invalid bit patterns.
    unsafe { y.set_len(total) };
    let sums = fuse.sums.then(|| {
        let mut s = vec![(0f64, 0f64); cout];
        for ts in task_sums.chunks_exact(2 * cout) {
            for (co, acc) in s.iter_mut().enumerate() {
                acc.0 += ts[2 * co];
                acc.1 += ts[2 * co + 1];
            }
        }
        s
    });
    (y, sums)
}

/// The forward's kernel and bias, packed for its micro-tiles: rows past Cout stay zero.
struct Packed {
    /// `w[block][ci][k][i] = w[block·MR + i, ci, k]`.
    w: Vec<f32>,
    /// `bias[block·MR + i]`, zero without a bias.
    bias: Vec<f32>,
}

impl Packed {
    fn new(w: &[f32], bias: Option<&[f32]>, s: &ConvShape) -> Self {
        let (cout, rows) = (s.c_out, s.c_in * s.k);
        let blocks = cout.div_ceil(MR);
        let mut wp = vec![0f32; blocks * rows * MR];
        for co in 0..cout {
            for r in 0..rows {
                wp[((co / MR) * rows + r) * MR + co % MR] = w[co * rows + r];
            }
        }
        Packed {
            w: wp,
            bias: pack_bias(bias, cout),
        }
    }
}

/// Where one forward task puts its output tile, and what it does on the way.
pub(super) struct Out<'a> {
    /// Output at (channel 0, first position of the tile); row stride `rs`.
    pub(super) y: *mut f32,
    pub(super) rs: usize,
    /// The residual from the same (channel 0, first position), same row stride.
    pub(super) residual: Option<&'a [f32]>,
    pub(super) post: Option<&'a ChannelMap>,
    /// Σy and Σy² per channel, interleaved (2·Cout).
    pub(super) sums: Option<&'a mut [f64]>,
}

/// Adds the 16 lanes of `v` and of `v²` (in f64) to `s1`, `s2`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn add_sums(v: __m512, s1: &mut __m512d, s2: &mut __m512d) {
    let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(
        _mm512_castps_pd(v),
        1,
    )));
    *s1 = _mm512_add_pd(*s1, _mm512_add_pd(lo, hi));
    *s2 = _mm512_fmadd_pd(lo, lo, _mm512_fmadd_pd(hi, hi, *s2));
}

/// The accumulators of one forward micro-tile of channel block `blk`, each row holding its bias from the
/// packed bias `bp` (both kernels accumulate in f32 from there).
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn bias_tile(bp: &[f32], blk: usize) -> [[__m512; NV]; MR] {
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    for (i, row) in acc.iter_mut().enumerate() {
        let bv = _mm512_set1_ps(bp[blk * MR + i]);
        for a in row.iter_mut() {
            *a = bv;
        }
    }
    acc
}

/// The epilogue of both forward kernels: stores the micro-tile `acc` of channel block `blk` (rows past
/// `cout` dropped) at positions `j0..` of `out`, `remain` of them valid from `j0`, through the `post` map
/// and the residual, and adds its channel sums. Inlined (no `target_feature` of its own, which would
/// keep it out of line): only call it from a kernel with AVX-512F enabled.
#[inline(always)]
pub(super) unsafe fn store_tile(
    acc: &[[__m512; NV]; MR],
    blk: usize,
    j0: usize,
    remain: usize,
    cout: usize,
    out: &mut Out,
) {
    for (i, row) in acc.iter().enumerate() {
        let co = blk * MR + i;
        if co >= cout {
            break;
        }
        let post = out.post.map(|p| {
            (
                _mm512_set1_ps(p.scale[co]),
                _mm512_set1_ps(p.shift[co]),
                _mm512_set1_ps(p.slope),
            )
        });
        let (mut s1, mut s2) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let dst = out.y.add(co * out.rs + j0);
        for (v, &a) in row.iter().enumerate() {
            let off = v * 16;
            if off >= remain {
                break;
            }
            let mask: __mmask16 = if off + 16 <= remain {
                0xffff
            } else {
                ((1u32 << (remain - off)) - 1) as __mmask16
            };
            let mut a = a;
            if let Some((sc, sh, slope)) = post {
                a = _mm512_fmadd_ps(a, sc, sh);
                a = _mm512_max_ps(a, _mm512_mul_ps(a, slope));
            }
            if let Some(r) = out.residual {
                let rp = r.as_ptr().add(co * out.rs + j0 + off);
                a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(mask, rp));
            }
            _mm512_mask_storeu_ps(dst.add(off), mask, a);
            if out.sums.is_some() {
                add_sums(_mm512_maskz_mov_ps(mask, a), &mut s1, &mut s2);
            }
        }
        if let Some(sums) = out.sums.as_deref_mut() {
            sums[2 * co] += _mm512_reduce_add_pd(s1);
            sums[2 * co + 1] += _mm512_reduce_add_pd(s2);
        }
    }
}

/// One task of the forward of the conv `s`: every channel block and micro-tile of the positions of `tile`,
/// from its `slab` and the [`Packed`] kernel `wp` and bias `bp`.
///
/// The slab and the kernel come as slice arguments, not behind `&Packed` or a slab struct: only when
/// their pointers are arguments does LLVM keep the 24 accumulators in registers (read out of a struct,
/// it stored every accumulator after each FMA, at half the speed).
#[target_feature(enable = "avx512f")]
unsafe fn forward_tile(
    slab: &[f32],
    wp: &[f32],
    bp: &[f32],
    s: &ConvShape,
    tile: Tile,
    mut out: Out,
) {
    let ConvShape {
        c_in: cin,
        c_out: cout,
        k: k_size,
        dilation,
        ..
    } = *s;
    let (t, sl) = (tile.len, tile.row_len);
    let rows = cin * k_size;
    debug_assert!(slab.len() >= cin * sl);
    debug_assert!(t.div_ceil(NR) * NR + (k_size - 1) * dilation <= sl);
    if let Some(r) = out.residual {
        debug_assert!(r.len() >= (cout - 1) * out.rs + t);
    }
    for j0 in (0..t).step_by(NR) {
        let remain = t - j0;
        for blk in 0..cout.div_ceil(MR) {
            let mut acc = bias_tile(bp, blk);
            let wblk = wp.as_ptr().add(blk * rows * MR);
            for ci in 0..cin {
                let xrow = slab.as_ptr().add(ci * sl + j0);
                let wrow = wblk.add(ci * k_size * MR);
                for kk in 0..k_size {
                    let xp = xrow.add(kk * dilation);
                    let xv = [
                        _mm512_loadu_ps(xp),
                        _mm512_loadu_ps(xp.add(16)),
                        _mm512_loadu_ps(xp.add(32)),
                    ];
                    let wr = wrow.add(kk * MR);
                    for (i, row) in acc.iter_mut().enumerate() {
                        let wv = _mm512_set1_ps(*wr.add(i));
                        for (a, &xq) in row.iter_mut().zip(&xv) {
                            *a = _mm512_fmadd_ps(wv, xq, *a);
                        }
                    }
                }
            }
            store_tile(&acc, blk, j0, remain, cout, &mut out);
        }
    }
}

/// `gw (Cout, Cin, K) = Σ_n Σ_p g[n, co, p] · x[n, ci, p + k·d − pad]` for the conv `s`; `None` without
/// AVX-512F.
pub(crate) fn grad_weight(x: &[f32], g: &[f32], s: &ConvShape) -> Option<Vec<f32>> {
    if !available() {
        return None;
    }
    let (n, cin, cout, l, k_size, _) = checked_dims(s, x, "conv grad-weight");
    assert_eq!(g.len(), n * cout * l, "conv grad-weight: gradient size");
    let rows = cin * k_size;
    let size = cout * rows;
    if n == 0 || l == 0 || size == 0 {
        return Some(vec![0f32; size]);
    }
    let t_len = GW_TILE.min(l.div_ceil(16) * 16);
    let n_tiles = l.div_ceil(t_len);
    let row_len = t_len + 2 * s.pad();
    let gw = accumulate_tasks(
        n * n_tiles,
        size,
        || vec![0f32; cin * row_len],
        |task, slab, acc| {
            let (b, p0) = (task / n_tiles, (task % n_tiles) * t_len);
            let tile = Tile {
                p0,
                len: t_len.min(l - p0),
                row_len,
            };
            fill_slab(slab, &x[b * cin * l..(b + 1) * cin * l], s, tile, None);
            let gb = &g[b * cout * l + p0..(b + 1) * cout * l];
            // SAFETY: AVX-512F was detected; g reads are masked to the tile.len valid positions of each
            // row (row stride l, inside gb), slab reads stay inside the slab (t_len is a multiple of 16).
            unsafe { grad_weight_tile(slab, gb, s, tile, acc) };
        },
    );
    Some(gw)
}

/// The sizes of the conv `s` (as [`ConvShape::dims`]); panics (naming `what`) unless the kernel is odd
/// and `x` holds the conv's input. The slab's halo is (K−1)·d/2 on each side: an even kernel would read
/// one float past it.
fn checked_dims(
    s: &ConvShape,
    x: &[f32],
    what: &str,
) -> (usize, usize, usize, usize, usize, usize) {
    let dims @ (n, cin, _, l, k_size, _) = s.dims();
    assert!(k_size % 2 == 1, "{what}: kernel size {k_size} is not odd");
    assert_eq!(x.len(), n * cin * l, "{what}: input size");
    dims
}

/// One task of the weight gradient of the conv `s`: adds the contributions of the positions of `tile`, from
/// its `slab` and the output gradient `g` (its window's Cout rows, row stride L, from the tile's first
/// position), to `acc`. Slices, not structs, for the reason given at [`forward_tile`].
#[target_feature(enable = "avx512f")]
unsafe fn grad_weight_tile(slab: &[f32], g: &[f32], s: &ConvShape, tile: Tile, acc: &mut [f32]) {
    let ConvShape {
        c_in: cin,
        c_out: cout,
        l: g_rs,
        k: k_size,
        dilation,
        ..
    } = *s;
    let (t, sl) = (tile.len, tile.row_len);
    let rows = cin * k_size;
    debug_assert!(g.len() >= (cout - 1) * g_rs + t);
    debug_assert!(t.div_ceil(16) * 16 + (k_size - 1) * dilation <= sl);
    let full = t / 16;
    let rem = t % 16;
    let tail = ((1u32 << rem) - 1) as __mmask16;
    for blk in 0..cout.div_ceil(GW_MR) {
        // Rows past Cout repeat the last channel; their sums are dropped below.
        let grow: [*const f32; GW_MR] =
            std::array::from_fn(|i| g.as_ptr().add((blk * GW_MR + i).min(cout - 1) * g_rs));
        for rb in 0..rows.div_ceil(GW_NR) {
            let xrow: [*const f32; GW_NR] = std::array::from_fn(|j| {
                let r = (rb * GW_NR + j).min(rows - 1);
                slab.as_ptr()
                    .add((r / k_size) * sl + (r % k_size) * dilation)
            });
            let mut a = [[_mm512_setzero_ps(); GW_NR]; GW_MR];
            for s in 0..full {
                let p = s * 16;
                let gv: [__m512; GW_MR] = std::array::from_fn(|i| _mm512_loadu_ps(grow[i].add(p)));
                let xv: [__m512; GW_NR] = std::array::from_fn(|j| _mm512_loadu_ps(xrow[j].add(p)));
                for (ai, &gq) in a.iter_mut().zip(&gv) {
                    for (aij, &xq) in ai.iter_mut().zip(&xv) {
                        *aij = _mm512_fmadd_ps(gq, xq, *aij);
                    }
                }
            }
            if rem > 0 {
                let p = full * 16;
                // Positions past t read zeros of g (masked); the slab there holds finite values.
                let gv: [__m512; GW_MR] =
                    std::array::from_fn(|i| _mm512_maskz_loadu_ps(tail, grow[i].add(p)));
                let xv: [__m512; GW_NR] = std::array::from_fn(|j| _mm512_loadu_ps(xrow[j].add(p)));
                for (ai, &gq) in a.iter_mut().zip(&gv) {
                    for (aij, &xq) in ai.iter_mut().zip(&xv) {
                        *aij = _mm512_fmadd_ps(gq, xq, *aij);
                    }
                }
            }
            for (i, ai) in a.iter().enumerate() {
                let co = blk * GW_MR + i;
                if co >= cout {
                    break;
                }
                for (j, &aij) in ai.iter().enumerate() {
                    let r = rb * GW_NR + j;
                    if r < rows {
                        acc[co * rows + r] += _mm512_reduce_add_ps(aij);
                    }
                }
            }
        }
    }
}
