//! The same-padded dilated Conv1d forward with bf16 operands and f32 accumulation (`--precision bf16`).
//!
//! - [`round_bf16`]: f32 → bf16 → f32, round to nearest even (NaN stays NaN): the one rounding both paths
//!   use, so the emulation and the kernel see the same operands.
//! - [`forward_emulated`]: rounds the input (after the `pre` map) and the kernel, runs the f32 kernels,
//!   then the f32 epilogue. Any CPU; the reference of the native kernel and of later GPU plans.
//! - the native kernel (x86-64 with AVX-512 BF16): the layout of `ops/conv_direct.rs` with bf16 pairs. Its
//!   slab holds the input rounded to bf16 with each pair of consecutive input channels interleaved per
//!   position (a `u32` per position: channel `2c` in the low half, `2c+1` in the high half; a zero channel
//!   pads an odd count), so one 512-bit load is 16 positions × 2 channels, what `vdpbf16ps` multiplies
//!   pairwise and adds into 16 f32 lanes; a tap `k` is the same row shifted by `k·d` positions. The kernel
//!   is packed as the matching pairs `(w[co, 2c, k], w[co, 2c+1, k])`, broadcast per output channel. A
//!   micro-tile is 8 output channels × 48 positions in 24 registers: per (channel pair, tap) 3 loads, 8
//!   broadcasts and 24 `vdpbf16ps`, each 32 multiply-adds (an f32 FMA does 16). Bias, the `post` map,
//!   the residual and the channel sums stay f32, as in the f32 kernel.

use super::conv::Fusion;
use super::gemm_plan::ConvShape;

/// Per-channel Σv and Σv² (f64).
pub(crate) type ChannelSums = Vec<(f64, f64)>;

/// The bf16 bits of `v`, rounded to nearest even; a NaN stays a (quiet) NaN.
#[inline(always)]
pub fn bf16_bits(v: f32) -> u16 {
    let mut b = v.to_bits();
    if v.is_nan() {
        // Quiet it first: a payload only in the low half would otherwise round up to infinity.
        b |= 0x0040_0000;
    }
    (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// `v` rounded to bf16 (8 significant bits), as an f32.
#[inline(always)]
pub fn round_bf16(v: f32) -> f32 {
    f32::from_bits((bf16_bits(v) as u32) << 16)
}

/// `v` rounded to TF32 (f32's exponent, 10 explicit mantissa bits: 11 significant bits), round to nearest
/// even, as an f32 (the low 13 bits zero); a NaN stays a (quiet) NaN. The GEMM plan's CPU emulation of
/// CUDA's TF32 tensor-core math (`ops/gemm_plan.rs`).
#[inline(always)]
pub fn round_tf32(v: f32) -> f32 {
    let mut b = v.to_bits();
    if v.is_nan() {
        b |= 0x0040_0000;
    }
    f32::from_bits(b.wrapping_add(0x0fff + ((b >> 13) & 1)) & !0x1fff)
}

/// `post(conv(pre(x)) + bias) + residual` with the conv's operands rounded to bf16 and everything else in
/// f32 (the f32 kernels: the direct AVX-512F one where it runs, else im2col + gemm); the sums when asked.
pub(crate) fn forward_emulated(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    s: &ConvShape,
    fuse: Fusion<'_, &[f32]>,
) -> (Vec<f32>, Option<ChannelSums>) {
    let (n, cin, cout, l, ..) = s.dims();
    let xr: Vec<f32> = match fuse.pre {
        None => x.iter().map(|&v| round_bf16(v)).collect(),
        Some(a) => x
            .chunks(l.max(1))
            .enumerate()
            .flat_map(|(row, xs)| {
                let ci = row % cin;
                let (sc, sh) = (a.scale[ci], a.shift[ci]);
                xs.iter().map(move |&v| {
                    let z = v * sc + sh;
                    round_bf16(z.max(z * a.slope))
                })
            })
            .collect(),
    };
    let wr: Vec<f32> = w.iter().map(|&v| round_bf16(v)).collect();
    let mut y = super::conv::conv_forward_f32(&xr, &wr, bias, s);
    let mut sums = fuse.sums.then(|| vec![(0f64, 0f64); cout]);
    if l > 0 {
        for (row, yr) in y.chunks_mut(l).enumerate() {
            let co = row % cout;
            for (p, v) in yr.iter_mut().enumerate() {
                if let Some(m) = fuse.post {
                    let z = *v * m.scale[co] + m.shift[co];
                    *v = z.max(z * m.slope);
                }
                if let Some(r) = fuse.residual {
                    *v += r[row * l + p];
                }
                if let Some(s) = sums.as_mut() {
                    s[co].0 += *v as f64;
                    s[co].1 += (*v as f64) * (*v as f64);
                }
            }
        }
    }
    debug_assert_eq!(y.len(), n * cout * l);
    (y, sums)
}

/// The fused forward through the fastest native bf16 kernel here: AMX (`ops/conv_amx.rs`) where the CPU
/// and the OS allow it, else AVX-512 BF16; `None` where neither runs.
pub(crate) fn forward_fused(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    s: &ConvShape,
    fuse: Fusion<'_, &[f32]>,
) -> Option<(Vec<f32>, Option<ChannelSums>)> {
    #[cfg(target_arch = "x86_64")]
    if let Some(out) = super::conv_amx::forward_fused(x, w, bias, s, fuse) {
        return Some(out);
    }
    forward_avx512(x, w, bias, s, fuse)
}

/// The fused forward through the AVX-512 BF16 kernel; `None` where it does not run (not x86-64, or a CPU
/// without AVX-512 BF16).
pub(crate) fn forward_avx512(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    s: &ConvShape,
    fuse: Fusion<'_, &[f32]>,
) -> Option<(Vec<f32>, Option<ChannelSums>)> {
    #[cfg(target_arch = "x86_64")]
    {
        if !native::available() {
            return None;
        }
        Some(super::conv_direct::forward_tasks(
            (x, w, bias, s, fuse),
            "bf16 conv",
            s.c_in.div_ceil(2),
            || native::pack(w, bias, s),
            |slab, xw, tile| native::fill_slab(slab, xw, s, tile, fuse.pre),
            // SAFETY: AVX-512F and AVX-512 BF16 were detected; see forward_tasks for the tile's bounds.
            |(wp, bp), slab, tile, out| unsafe { native::forward_tile(slab, wp, bp, s, tile, out) },
        ))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, w, bias, s, fuse);
        None
    }
}

/// The pair slab of the AVX-512 BF16 kernel, which is also the AMX kernel's B layout.
#[cfg(target_arch = "x86_64")]
pub(super) use native::fill_slab as fill_pair_slab;

#[cfg(target_arch = "x86_64")]
mod native {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    use super::super::conv::ChannelMap;
    use super::super::conv_direct::{bias_tile, pack_bias, store_tile, Out, Tile, MR, NR};
    use super::super::gemm_plan::ConvShape;
    use super::bf16_bits;

    pub(super) fn available() -> bool {
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE.get_or_init(super::super::precision::native_bf16_available)
    }

    /// A bf16 pair in a `u32`: `lo` in the low half (the even element `vdpbf16ps` multiplies first).
    #[inline(always)]
    fn pair(lo: f32, hi: f32) -> u32 {
        bf16_bits(lo) as u32 | (bf16_bits(hi) as u32) << 16
    }

    /// Fills the pair slab of `tile`: row `c` holds the pairs of input channels `2c`, `2c+1` (the second
    /// zero past Cin) at `x[·, p0 − pad .. p0 − pad + row_len]`, zero outside `[0, L)`, through `pre`.
    pub(in crate::ops) fn fill_slab(
        slab: &mut [u32],
        x: &[f32],
        s: &ConvShape,
        tile: Tile,
        pre: Option<&ChannelMap>,
    ) {
        let (cin, l, sl) = (s.c_in, s.l, tile.row_len);
        let (start, lo, hi) = tile.inside(s);
        // (scale, shift) of channel `ci` under `pre`; the identity without it.
        let map = |ci: usize| pre.map_or((1.0, 0.0), |a| (a.scale[ci], a.shift[ci]));
        let slope = pre.map(|a| a.slope);
        for c in 0..cin.div_ceil(2) {
            let dst = &mut slab[c * sl..(c + 1) * sl];
            if lo >= hi {
                dst.fill(0);
                continue;
            }
            dst[..lo].fill(0);
            let off = (start + lo as isize) as usize;
            let (c0, c1) = (2 * c, 2 * c + 1);
            let x0 = &x[c0 * l + off..c0 * l + off + (hi - lo)];
            let x1 = (c1 < cin).then(|| &x[c1 * l + off..c1 * l + off + (hi - lo)]);
            let maps = (map(c0), if c1 < cin { map(c1) } else { (0.0, 0.0) });
            // SAFETY: AVX-512F, BW and BF16 are present wherever this kernel runs
            // (`precision::native_bf16_available`); the slices have hi − lo elements each.
            unsafe { round_pairs(&mut dst[lo..hi], x0, x1, maps, slope) };
            dst[hi..].fill(0);
        }
    }

    /// `dst[j] = pair(f(x0[j]), f(x1[j]))` (0 for a missing `x1`), `f` the map `(scale, shift)` followed
    /// by LeakyReLU of `slope` where given, else the identity: 16 positions per step, rounded by
    /// `vcvtne2ps2bf16` (nearest even, as [`bf16_bits`], except that it flushes f32 denormals to zero).
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    unsafe fn round_pairs(
        dst: &mut [u32],
        x0: &[f32],
        x1: Option<&[f32]>,
        ((s0, h0), (s1, h1)): ((f32, f32), (f32, f32)),
        slope: Option<f32>,
    ) {
        let n = dst.len();
        debug_assert!(x0.len() == n && x1.is_none_or(|x| x.len() == n));
        let (s0, h0, s1, h1) = (
            _mm512_set1_ps(s0),
            _mm512_set1_ps(h0),
            _mm512_set1_ps(s1),
            _mm512_set1_ps(h1),
        );
        let sl = _mm512_set1_ps(slope.unwrap_or(1.0));
        let f = |v: __m512, sc: __m512, sh: __m512| {
            if slope.is_some() {
                // Multiply, then add (no FMA): the f32 kernels and the emulation round `v·sc` first,
                // and one f32 step of difference may land on the other side of a bf16 rounding.
                let z = _mm512_add_ps(_mm512_mul_ps(v, sc), sh);
                _mm512_max_ps(z, _mm512_mul_ps(z, sl))
            } else {
                v
            }
        };
        // `vcvtne2ps2bf16` puts the 16 bf16 of its second operand below those of its first; this
        // permutation interleaves them into 16 pairs.
        const PAIRS: [u16; 32] = {
            let mut p = [0u16; 32];
            let mut j = 0;
            while j < 16 {
                p[2 * j] = j as u16;
                p[2 * j + 1] = 16 + j as u16;
                j += 1;
            }
            p
        };
        let pairs = _mm512_loadu_si512(PAIRS.as_ptr() as *const _);
        for j in (0..n).step_by(16) {
            let m: __mmask16 = if j + 16 <= n {
                0xffff
            } else {
                ((1u32 << (n - j)) - 1) as __mmask16
            };
            let a = f(_mm512_maskz_loadu_ps(m, x0.as_ptr().add(j)), s0, h0);
            let b = match x1 {
                Some(x1) => f(_mm512_maskz_loadu_ps(m, x1.as_ptr().add(j)), s1, h1),
                None => _mm512_setzero_ps(),
            };
            let bf: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(b, a));
            let p = _mm512_permutexvar_epi16(pairs, bf);
            _mm512_mask_storeu_epi32(dst.as_mut_ptr().add(j) as *mut _, m, p);
        }
    }

    /// The kernel as bf16 pairs for the micro-tiles: `w[((blk·pairs + c)·K + k)·MR + i]` holds
    /// `(w[blk·MR + i, 2c, k], w[blk·MR + i, 2c+1, k])`, zero past Cout and Cin; and the bias (f32).
    pub(super) fn pack(w: &[f32], bias: Option<&[f32]>, s: &ConvShape) -> (Vec<u32>, Vec<f32>) {
        let (cin, cout, k_size) = (s.c_in, s.c_out, s.k);
        let pairs = cin.div_ceil(2);
        let blocks = cout.div_ceil(MR);
        let mut wp = vec![0u32; blocks * pairs * k_size * MR];
        let at = |co: usize, ci: usize, k: usize| {
            if ci < cin {
                w[(co * cin + ci) * k_size + k]
            } else {
                0.0
            }
        };
        for co in 0..cout {
            for c in 0..pairs {
                for k in 0..k_size {
                    wp[(((co / MR) * pairs + c) * k_size + k) * MR + co % MR] =
                        pair(at(co, 2 * c, k), at(co, 2 * c + 1, k));
                }
            }
        }
        (wp, pack_bias(bias, cout))
    }

    /// One task: every channel block and micro-tile of the positions of `tile`, from its pair `slab`
    /// and the packed pairs `wp` and bias `bp` (slices as arguments, for the reason given at
    /// `conv_direct::forward_tile`).
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn forward_tile(
        slab: &[u32],
        wp: &[u32],
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
        let pairs = cin.div_ceil(2);
        let rows = pairs * k_size;
        debug_assert!(slab.len() >= pairs * sl);
        debug_assert!(t.div_ceil(NR) * NR + (k_size - 1) * dilation <= sl);
        if let Some(r) = out.residual {
            debug_assert!(r.len() >= (cout - 1) * out.rs + t);
        }
        let bh = |v: __m512| -> __m512bh { std::mem::transmute(v) };
        for j0 in (0..t).step_by(NR) {
            let remain = t - j0;
            for blk in 0..cout.div_ceil(MR) {
                let mut acc = bias_tile(bp, blk);
                let wblk = wp.as_ptr().add(blk * rows * MR);
                for c in 0..pairs {
                    let xrow = slab.as_ptr().add(c * sl + j0);
                    let wrow = wblk.add(c * k_size * MR);
                    for kk in 0..k_size {
                        let xp = xrow.add(kk * dilation) as *const f32;
                        let xv = [
                            bh(_mm512_loadu_ps(xp)),
                            bh(_mm512_loadu_ps(xp.add(16))),
                            bh(_mm512_loadu_ps(xp.add(32))),
                        ];
                        let wr = wrow.add(kk * MR);
                        for (i, row) in acc.iter_mut().enumerate() {
                            let wv = bh(_mm512_castsi512_ps(_mm512_set1_epi32(*wr.add(i) as i32)));
                            for (a, &xq) in row.iter_mut().zip(&xv) {
                                *a = _mm512_dpbf16_ps(*a, xq, wv);
                            }
                        }
                    }
                }
                store_tile(&acc, blk, j0, remain, cout, &mut out);
            }
        }
    }
}

/// `v` with every value rounded to bf16 ([`round_bf16`]), in parallel chunks.
fn rounded(v: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    let mut out = vec![0f32; v.len()];
    out.par_chunks_mut(1 << 16)
        .zip(v.par_chunks(1 << 16))
        .for_each(|(o, i)| {
            for (o, &i) in o.iter_mut().zip(i) {
                *o = round_bf16(i);
            }
        });
    out
}

/// The weight gradient of the conv `s` with bf16 operands and f32 accumulation: x (N, Cin, L) and the
/// output gradient g (N, Cout, L) rounded to bf16 with [`round_bf16`], then the f32 kernels
/// (`conv::conv_grad_weight_f32`) → gw (Cout, Cin·K) in f32. Any CPU; the reference of native kernels.
pub(crate) fn grad_weight_emulated(x: &[f32], g: &[f32], s: &ConvShape) -> Vec<f32> {
    super::conv::conv_grad_weight_f32(&rounded(x), &rounded(g), s)
}

/// The weight gradient `--precision bf16` runs natively: the AMX kernel (`ops/conv_amx.rs`) where the CPU
/// and the OS allow it, else the emulation (an AVX-512 BF16 weight gradient would be slower than f32's on
/// the CPUs that have the instruction but no AMX: it issues at a quarter of the FMA's rate).
pub(crate) fn grad_weight(x: &[f32], g: &[f32], s: &ConvShape) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if let Some(gw) = super::conv_amx::grad_weight(x, g, s) {
        return gw;
    }
    grad_weight_emulated(x, g, s)
}
