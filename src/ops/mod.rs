//! Our own ops: candle `CustomOp`s with their CPU kernels, and reference paths made of stock candle ops
//! (used on CUDA/Metal and by the tests).

use candle_core::{Result, Tensor};

/// What the `bwd` of a candle `CustomOp2` returns: a gradient for each input, `None` where none is needed.
pub(crate) type Grads2 = Result<(Option<Tensor>, Option<Tensor>)>;

/// The same for a `CustomOp3`.
pub(crate) type Grads3 = Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)>;

/// `f()` where a gradient is wanted (`want`: an input's `track_op()`), `None` without running it: the
/// backwards compute each gradient only where it flows further.
pub(crate) fn grad_if(want: bool, f: impl FnOnce() -> Result<Tensor>) -> Result<Option<Tensor>> {
    want.then(f).transpose()
}

/// A `CustomOp2`/`CustomOp3` forward method named `$fn` on storages `$S` whose body is one expression,
/// written like a closure: `|op, (s1, l1), (s2, l2)| body` binds `op` to `&self` and names each input's
/// storage and layout. Through `cpu_fwd!` and `storage_fwd!`.
macro_rules! fwd_method {
    ($fn:ident, $S:ty, |$op:ident $(, ($s:ident, $l:ident))+| $body:expr) => {
        fn $fn(
            &self,
            $($s: &$S, $l: &candle_core::Layout),+
        ) -> candle_core::Result<($S, candle_core::Shape)> {
            let $op = self;
            $body
        }
    };
}

/// `cpu_fwd!(|op, (s1, l1), (s2, l2)| body)`: the `cpu_fwd` of an op that runs on the CPU only.
macro_rules! cpu_fwd {
    ($($t:tt)*) => {
        fwd_method!(cpu_fwd, candle_core::CpuStorage, $($t)*);
    };
}

/// `storage_fwd!(|op, (s1, l1), (s2, l2)| body)`: `cpu_fwd` and, with the `cuda` feature, `cuda_fwd` of
/// an op whose forward is one function generic over the backend storage: the same body serves both.
macro_rules! storage_fwd {
    ($($t:tt)*) => {
        fwd_method!(cpu_fwd, candle_core::CpuStorage, $($t)*);
        #[cfg(feature = "cuda")]
        fwd_method!(cuda_fwd, candle_core::CudaStorage, $($t)*);
    };
}

pub mod bn_act;
pub mod bn_device;
pub mod conv;
#[cfg(target_arch = "x86_64")]
mod conv_amx;
pub mod conv_bf16;
#[cfg(target_arch = "x86_64")]
mod conv_direct;
pub mod conv_gemm;
mod cpu;
pub mod gemm_plan;
pub mod path;
pub mod precision;
