//! The bf16 conv kernels on Intel AMX (`tdpbf16ps`): the forward (plain and fused) and the weight
//! gradient, bf16 operands and f32 accumulation, on x86-64 Linux CPUs with AMX-BF16 (Sapphire Rapids
//! and later).
//!
//! AMX keeps eight tile registers of 16 rows × 64 bytes; `tdpbf16ps C, A, B` adds to the 16 × 16 f32
//! tile C the product of A (16 rows of 16 bf16 pairs) and B (16 rows of pairs, one pair per column):
//! `C[m][n] += Σ_r A[m][2r]·B[r][2n] + A[m][2r+1]·B[r][2n+1]`, 8,192 multiply-adds in one instruction
//! (an AVX-512 FMA does 16, `vdpbf16ps` 32).
//!
//! - Forward: C is 16 output channels × 16 positions, the reduction runs over input-channel pairs. The
//!   AVX-512 BF16 kernel's pair slab (`conv_bf16`: a `u32` per position holding channels `2c`, `2c+1`)
//!   is already B's layout: a tile is 16 consecutive pair rows × 16 positions, loaded with the slab's row
//!   stride, and tap `k` is the same load shifted by `k·d` positions. A holds the kernel's pairs for 16
//!   output channels, one tile per (channel block, pair block, tap). A micro-tile is 16 channels × 48
//!   positions (three C tiles); the result goes through the f32 epilogue of the other forward kernels.
//! - Weight gradient: C is 16 input channels × 16 output channels of one tap, the reduction runs over
//!   positions. A is the input rounded to bf16, rows = input channels and consecutive positions as the
//!   pairs, so tap `k` is again an address offset of `k·d` elements; B is the output gradient with pairs
//!   of consecutive positions per output channel (transposed once per task; it does not shift with the
//!   tap). Four C tiles (32 × 32 channels) take one tap's sums over the task's positions.
//!
//! Channel counts are padded with zeros to whole tiles. The operating system must allow the process to
//! use AMX's tile state (Linux: `arch_prctl(ARCH_REQ_XCOMP_PERM)`, asked for once); where it does not,
//! or `OSAI_AMX=off`, the AVX-512 BF16 kernel runs instead.

use std::arch::asm;
use std::sync::OnceLock;

use super::conv::Fusion;
use super::conv_bf16::{bf16_bits, ChannelSums};
use super::conv_direct::{store_tile, Out, Tile, MR, NR, NV};
use super::cpu::accumulate_tasks;
use super::gemm_plan::ConvShape;
use std::arch::x86_64::*;

/// Rows (and 4-byte columns) of every tile.
const T16: usize = 16;
/// Positions per weight-gradient task (a multiple of 32).
const GW_TILE: usize = 1920;

/// Whether the AMX kernels run here: the CPU has AMX-TILE and AMX-BF16 (and the AVX-512 F, BW and BF16
/// that the fills use), the OS granted the tile state, and `OSAI_AMX` is not `off`.
pub(crate) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::env::var("OSAI_AMX").map_or(true, |v| v != "off")
            && super::precision::native_bf16_available()
            && std::is_x86_feature_detected!("avx512bw")
            && cpu_has_amx_bf16()
            && request_tile_state()
    })
}

/// CPUID leaf 7: EDX bit 24 (AMX-TILE) and bit 22 (AMX-BF16).
fn cpu_has_amx_bf16() -> bool {
    if __get_cpuid_max(0).0 < 7 {
        return false;
    }
    let r = __cpuid_count(7, 0);
    r.edx & (1 << 24) != 0 && r.edx & (1 << 22) != 0
}

/// Asks Linux for the AMX tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`), once
/// for the process; false where it is refused or on other systems.
fn request_tile_state() -> bool {
    #[cfg(target_os = "linux")]
    {
        const SYS_ARCH_PRCTL: i64 = 158;
        const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
        const XFEATURE_XTILEDATA: i64 = 18;
        let ret: i64;
        // SAFETY: a plain system call that changes only the process's permission for a CPU state; the
        // kernel clobbers rcx and r11.
        unsafe {
            asm!("syscall", inlateout("rax") SYS_ARCH_PRCTL => ret,
                 in("rdi") ARCH_REQ_XCOMP_PERM, in("rsi") XFEATURE_XTILEDATA,
                 lateout("rcx") _, lateout("r11") _, options(nostack));
        }
        if ret != 0 {
            log::info!("AMX: the kernel refused the tile state (arch_prctl returned {ret})");
        }
        ret == 0
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// The tile configuration both kernels use: palette 1, all eight tiles 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

const CONFIG: TileConfig = {
    let mut c = [0u8; 64];
    c[0] = 1;
    let mut t = 0;
    while t < 8 {
        c[16 + 2 * t] = 64;
        c[48 + t] = T16 as u8;
        t += 1;
    }
    TileConfig(c)
};

/// Loads [`CONFIG`] for this thread; [`release`] ends the use.
#[inline(always)]
unsafe fn configure() {
    asm!("ldtilecfg [{0}]", in(reg) CONFIG.0.as_ptr(), options(nostack, readonly));
}

#[inline(always)]
unsafe fn release() {
    asm!("tilerelease", options(nostack, nomem));
}

#[inline(always)]
unsafe fn zero<const T: u8>() {
    asm!("tilezero tmm{t}", t = const T, options(nostack, nomem));
}

/// Tile `T` = 16 rows of 64 bytes from `p`, rows `stride` bytes apart.
#[inline(always)]
unsafe fn load<const T: u8>(p: *const u32, stride: usize) {
    asm!("tileloadd tmm{t}, [{p} + {s}*1]", t = const T, p = in(reg) p, s = in(reg) stride,
         options(nostack, readonly));
}

/// 16 rows of 64 bytes of tile `T` to `p`, rows `stride` bytes apart.
#[inline(always)]
unsafe fn store<const T: u8>(p: *mut f32, stride: usize) {
    asm!("tilestored [{p} + {s}*1], tmm{t}", t = const T, p = in(reg) p, s = in(reg) stride,
         options(nostack));
}

/// `C += A·B` on tiles.
#[inline(always)]
unsafe fn dot<const C: u8, const A: u8, const B: u8>() {
    asm!("tdpbf16ps tmm{c}, tmm{a}, tmm{b}", c = const C, a = const A, b = const B,
         options(nostack, nomem));
}

/// A bf16 pair in a `u32`, `lo` in the low half.
#[inline(always)]
fn pair(lo: f32, hi: f32) -> u32 {
    bf16_bits(lo) as u32 | (bf16_bits(hi) as u32) << 16
}

/// The fused forward on AMX; `None` where it does not run.
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
    let pair_rows = s.c_in.div_ceil(2).div_ceil(T16) * T16;
    Some(super::conv_direct::forward_tasks(
        (x, w, bias, s, fuse),
        "AMX conv",
        pair_rows,
        || pack_forward(w, bias, s),
        |slab, xw, tile| super::conv_bf16::fill_pair_slab(slab, xw, s, tile, fuse.pre),
        // SAFETY: AMX was granted and AVX-512F is present; forward_tasks sizes the slab for tiles of NR
        // positions plus the halo, and pair_rows is a whole number of tiles (rows past Cin/2 stay zero).
        |(wp, bp), slab, tile, out| unsafe { forward_tile(slab, wp, bp, s, tile, out) },
    ))
}

/// The kernel as A tiles: `w[((cb·PB + pb)·K + k)·256 + i·16 + c]` holds the pair
/// `(w[cb·16 + i, 2(pb·16 + c), k], w[.., 2(pb·16 + c) + 1, k])`, zero past Cout and Cin; and the bias
/// (f32, zero-padded to whole blocks of 16).
fn pack_forward(w: &[f32], bias: Option<&[f32]>, s: &ConvShape) -> (Vec<u32>, Vec<f32>) {
    let (cin, cout, k_size) = (s.c_in, s.c_out, s.k);
    let pbs = cin.div_ceil(2).div_ceil(T16);
    let cbs = cout.div_ceil(T16);
    let mut wp = vec![0u32; cbs * pbs * k_size * T16 * T16];
    let at = |co: usize, ci: usize, k: usize| {
        if ci < cin {
            w[(co * cin + ci) * k_size + k]
        } else {
            0.0
        }
    };
    for co in 0..cout {
        for c in 0..cin.div_ceil(2) {
            for k in 0..k_size {
                let (cb, pb) = (co / T16, c / T16);
                let i = ((cb * pbs + pb) * k_size + k) * T16 * T16 + (co % T16) * T16 + c % T16;
                wp[i] = pair(at(co, 2 * c, k), at(co, 2 * c + 1, k));
            }
        }
    }
    let mut bp = vec![0f32; cbs * T16];
    if let Some(b) = bias {
        bp[..cout].copy_from_slice(b);
    }
    (wp, bp)
}

/// One forward task: every micro-tile of `tile`, 32 output channels × 32 positions (two C tiles each
/// way, so each tile loaded feeds two multiplies); a last block of 16 channels, or a last 16 positions
/// before the end of the slab's whole vectors, use one tile that way.
#[target_feature(enable = "avx512f")]
unsafe fn forward_tile(
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
    let pbs = cin.div_ceil(2).div_ceil(T16);
    let cbs = cout.div_ceil(T16);
    // The slab holds whole micro-tiles of NR positions plus the halo: reads stay below `end`.
    let end = t.div_ceil(NR) * NR;
    debug_assert!(slab.len() >= pbs * T16 * sl);
    debug_assert!(end + (k_size - 1) * dilation <= sl);
    debug_assert_eq!(NR % T16, 0);
    let stride = sl * 4;
    let mut ctile = [0f32; 2 * T16 * 2 * T16];
    let cp = ctile.as_mut_ptr();
    configure();
    for j0 in (0..end).step_by(2 * T16) {
        let two_pos = j0 + 2 * T16 <= end;
        for cb in (0..cbs).step_by(2) {
            let two_co = cb + 1 < cbs;
            zero::<0>();
            zero::<1>();
            zero::<2>();
            zero::<3>();
            for pb in 0..pbs {
                let xrow = slab.as_ptr().add(pb * T16 * sl + j0);
                let w0 = wp.as_ptr().add((cb * pbs + pb) * k_size * T16 * T16);
                let w1 = w0.add(pbs * k_size * T16 * T16);
                for kk in 0..k_size {
                    let xp = xrow.add(kk * dilation);
                    load::<4>(w0.add(kk * T16 * T16), 64);
                    load::<6>(xp, stride);
                    dot::<0, 4, 6>();
                    if two_pos {
                        load::<7>(xp.add(T16), stride);
                        dot::<1, 4, 7>();
                    }
                    if two_co {
                        load::<5>(w1.add(kk * T16 * T16), 64);
                        dot::<2, 5, 6>();
                        if two_pos {
                            dot::<3, 5, 7>();
                        }
                    }
                }
            }
            // C tile (co half h, positions half v) at ctile[(h·16 + i)·32 + v·16].
            let rs = 2 * T16 * 4;
            store::<0>(cp, rs);
            store::<1>(cp.add(T16), rs);
            store::<2>(cp.add(T16 * 2 * T16), rs);
            store::<3>(cp.add(T16 * 2 * T16 + T16), rs);
            for blk in cb * 2..(cb + if two_co { 2 } else { 1 }) * 2 {
                let rows = cp.add((blk - cb * 2) * MR * 2 * T16);
                let acc: [[__m512; NV]; MR] = std::array::from_fn(|i| {
                    let row = rows.add(i * 2 * T16);
                    let b = _mm512_set1_ps(bp[blk * MR + i]);
                    std::array::from_fn(|v| {
                        if v < 2 {
                            _mm512_add_ps(_mm512_loadu_ps(row.add(T16 * v)), b)
                        } else {
                            b
                        }
                    })
                });
                let width = if two_pos { 2 * T16 } else { T16 };
                if j0 < t {
                    store_tile(&acc, blk, j0, width.min(t - j0), cout, &mut out);
                }
            }
        }
    }
    release();
}

/// `gw (Cout, Cin, K) = Σ_n Σ_p g[n, co, p] · x[n, ci, p + k·d − pad]` with x and g rounded to bf16 and
/// f32 sums; `None` where AMX does not run.
pub(crate) fn grad_weight(x: &[f32], g: &[f32], s: &ConvShape) -> Option<Vec<f32>> {
    if !available() {
        return None;
    }
    let (n, cin, cout, l, k_size, _) = s.dims();
    assert!(
        k_size % 2 == 1,
        "AMX grad-weight: kernel size {k_size} is not odd"
    );
    assert_eq!(x.len(), n * cin * l, "AMX grad-weight: input size");
    assert_eq!(g.len(), n * cout * l, "AMX grad-weight: gradient size");
    let rows = cin * k_size;
    if n == 0 || l == 0 || cout * rows == 0 {
        return Some(vec![0f32; cout * rows]);
    }
    let t_len = GW_TILE.min(l.div_ceil(32) * 32);
    let n_tiles = l.div_ceil(t_len);
    let lay = GwLayout::new(s, t_len);
    let gw = accumulate_tasks(
        n * n_tiles,
        cout * rows,
        || GwScratch {
            xs: vec![0u16; lay.ci * lay.cols],
            gt: vec![0u32; lay.t / 2 * lay.co],
            c: [0f32; 4 * T16 * T16],
        },
        |task, scr, acc| {
            let (b, p0) = (task / n_tiles, (task % n_tiles) * t_len);
            let tile = Tile {
                p0,
                len: t_len.min(l - p0),
                row_len: lay.cols,
            };
            let (xb, gb) = (
                &x[b * cin * l..(b + 1) * cin * l],
                &g[b * cout * l..(b + 1) * cout * l],
            );
            // SAFETY: `available()` checked AVX-512F, BW and BF16.
            unsafe {
                fill_input(&mut scr.xs, xb, s, tile, &lay);
                fill_gradient(&mut scr.gt, gb, s, tile, &lay);
            }
            // SAFETY: AMX was granted; the layout bounds every tile read (see GwLayout).
            unsafe { grad_weight_tile(scr, s, &lay, acc) };
        },
    );
    Some(gw)
}

/// The per-task buffers of the weight gradient.
struct GwScratch {
    /// The input in bf16 (A): `xs[ci·cols + q] = x[ci, p0 − pad + q]`, zero outside `[0, L)` and past
    /// Cin.
    xs: Vec<u16>,
    /// The output gradient as pairs of consecutive positions (B): `gt[r·CO + co] = (g[co, p0 + 2r],
    /// g[co, p0 + 2r + 1])`, zero past the tile and Cout.
    gt: Vec<u32>,
    /// Four C tiles as stored.
    c: [f32; 4 * T16 * T16],
}

/// The padded sizes of one weight-gradient task. A tile of A reads 16 channel rows × 32 positions from
/// column `j + k·d` (`j + 32 ≤ t`, `k·d ≤ 2·pad`), so `cols` = t + 2·pad bounds it; B reads 16 pair rows
/// from `j/2`.
#[derive(Debug, Clone, Copy)]
struct GwLayout {
    /// Positions per task, a multiple of 32.
    t: usize,
    /// Input channels, a multiple of 32 (two A tiles high).
    ci: usize,
    /// Output channels, a multiple of 32 (two B tiles wide).
    co: usize,
    /// Input columns: the tile and the 2·pad halo.
    cols: usize,
}

impl GwLayout {
    fn new(s: &ConvShape, t: usize) -> Self {
        GwLayout {
            t,
            ci: s.c_in.div_ceil(32) * 32,
            co: s.c_out.div_ceil(32) * 32,
            cols: t + 2 * s.pad(),
        }
    }
}

/// 32 floats from `p` (those of `m`, zero elsewhere: masked lanes are not read) as 32 bf16 in order, rounded to nearest even by
/// `vcvtne2ps2bf16` (which, unlike [`bf16_bits`], flushes f32 denormals to zero: the tile multiply
/// would treat them as zero anyway).
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn bf16x32(p: *const f32, m: u32) -> __m512i {
    let lo = _mm512_maskz_loadu_ps(m as __mmask16, p);
    let hi = _mm512_maskz_loadu_ps((m >> 16) as __mmask16, p.add(16));
    _mm512_castps_si512(std::mem::transmute::<__m512bh, __m512>(
        _mm512_cvtne2ps_pbh(hi, lo),
    ))
}

/// The mask of the first `n` of 32 lanes.
fn lanes(n: usize) -> u32 {
    if n >= 32 {
        u32::MAX
    } else {
        (1u32 << n) - 1
    }
}

/// Fills the bf16 input rows of `tile` from one window `x` (Cin, L); rows past Cin stay zero.
#[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
unsafe fn fill_input(xs: &mut [u16], x: &[f32], s: &ConvShape, tile: Tile, lay: &GwLayout) {
    let (start, lo, hi) = tile.inside(s);
    for (ci, row) in xs.chunks_exact_mut(lay.cols).take(s.c_in).enumerate() {
        row[..lo.min(hi)].fill(0);
        if lo < hi {
            let src = &x[ci * s.l + (start + lo as isize) as usize..][..hi - lo];
            let dst = &mut row[lo..hi];
            for j in (0..dst.len()).step_by(32) {
                let m = lanes(dst.len() - j);
                let v = bf16x32(src.as_ptr().add(j), m);
                _mm512_mask_storeu_epi16(dst.as_mut_ptr().add(j) as *mut i16, m, v);
            }
        }
        row[hi.max(lo)..].fill(0);
    }
}

/// Fills the gradient pairs of `tile` from one window `g` (Cout, L): per 16 channels and 32 positions,
/// each channel's positions become 16 pairs in one conversion, and a 16 × 16 transpose turns them into
/// the 16 rows of `gt`; channels past Cout are zero.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn fill_gradient(gt: &mut [u32], g: &[f32], s: &ConvShape, tile: Tile, lay: &GwLayout) {
    debug_assert!(
        gt.len() >= lay.t / 2 * lay.co && lay.t.is_multiple_of(32) && lay.co.is_multiple_of(T16)
    );
    for co0 in (0..s.c_out).step_by(T16) {
        for j in (0..lay.t).step_by(32) {
            let m = lanes(tile.len.saturating_sub(j));
            let mut r: [__m512i; 16] = std::array::from_fn(|i| {
                if co0 + i < s.c_out {
                    let src = g.as_ptr().add((co0 + i) * s.l + tile.p0);
                    bf16x32(src.wrapping_add(j), m)
                } else {
                    _mm512_setzero_si512()
                }
            });
            transpose16(&mut r);
            for (q, v) in r.iter().enumerate() {
                let dst = gt.as_mut_ptr().add((j / 2 + q) * lay.co + co0);
                _mm512_storeu_si512(dst as *mut _, *v);
            }
        }
    }
}

/// Transposes the 16 × 16 matrix of 32-bit lanes held in `r` (row `i` in `r[i]`).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn transpose16(r: &mut [__m512i; 16]) {
    let mut t = [_mm512_setzero_si512(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for i in 0..4 {
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for i in 0..2 {
        for j in 0..4 {
            t[8 * i + j] = _mm512_shuffle_i32x4::<0x88>(r[8 * i + j], r[8 * i + 4 + j]);
            t[8 * i + 4 + j] = _mm512_shuffle_i32x4::<0xdd>(r[8 * i + j], r[8 * i + 4 + j]);
        }
    }
    for j in 0..8 {
        r[j] = _mm512_shuffle_i32x4::<0x88>(t[j], t[j + 8]);
        r[j + 8] = _mm512_shuffle_i32x4::<0xdd>(t[j], t[j + 8]);
    }
}

/// One weight-gradient task: for each tap and 32 × 32 block of (input, output) channels, four C tiles
/// summed over the task's positions, then added to `acc` (Cout, Cin·K).
unsafe fn grad_weight_tile(scr: &mut GwScratch, s: &ConvShape, lay: &GwLayout, acc: &mut [f32]) {
    let ConvShape {
        c_in: cin,
        c_out: cout,
        k: k_size,
        dilation,
        ..
    } = *s;
    let rows = cin * k_size;
    let x_stride = lay.cols * 2;
    let g_stride = lay.co * 4;
    let cp = scr.c.as_mut_ptr();
    configure();
    for kk in 0..k_size {
        for ib in (0..lay.ci).step_by(32) {
            for ob in (0..lay.co).step_by(32) {
                zero::<0>();
                zero::<1>();
                zero::<2>();
                zero::<3>();
                for j in (0..lay.t).step_by(32) {
                    // Two bf16 per u32: the A rows start at an element offset that may be odd.
                    let xp = scr.xs.as_ptr().add(ib * lay.cols + j + kk * dilation);
                    load::<4>(xp as *const u32, x_stride);
                    load::<5>(xp.add(T16 * lay.cols) as *const u32, x_stride);
                    let gp = scr.gt.as_ptr().add(j / 2 * lay.co + ob);
                    load::<6>(gp, g_stride);
                    load::<7>(gp.add(T16), g_stride);
                    dot::<0, 4, 6>();
                    dot::<1, 4, 7>();
                    dot::<2, 5, 6>();
                    dot::<3, 5, 7>();
                }
                for (t, (di, dc)) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
                    let p = cp.add(t * T16 * T16);
                    match t {
                        0 => store::<0>(p, 64),
                        1 => store::<1>(p, 64),
                        2 => store::<2>(p, 64),
                        _ => store::<3>(p, 64),
                    }
                    for i in 0..T16 {
                        let ci = ib + di * T16 + i;
                        if ci >= cin {
                            break;
                        }
                        for c in 0..T16 {
                            let co = ob + dc * T16 + c;
                            if co >= cout {
                                break;
                            }
                            acc[co * rows + ci * k_size + kk] += *p.add(i * T16 + c);
                        }
                    }
                }
            }
        }
    }
    release();
}
