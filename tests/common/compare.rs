//! Comparing tensors and arrays. The maxima propagate NaN (a NaN difference makes the result NaN, which
//! fails every `<` / `<=` bound) and the pairwise ones refuse operands of different sizes.

use candle_core::{DType, Tensor};

/// A tensor's values, flattened, as f32 (from any float dtype, on any device).
pub fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_vec1::<f32>())
        .expect("float tensor")
}

/// The larger of two maxima, NaN when either is.
fn nan_max32(m: f32, v: f32) -> f32 {
    if m.is_nan() || v.is_nan() {
        f32::NAN
    } else {
        m.max(v)
    }
}

fn nan_max64(m: f64, v: f64) -> f64 {
    if m.is_nan() || v.is_nan() {
        f64::NAN
    } else {
        m.max(v)
    }
}

/// max |v| (0 for an empty slice).
pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |m, x| nan_max32(m, x.abs()))
}

/// max |v|, in f64.
pub fn max_abs_f64(v: &[f32]) -> f64 {
    v.iter().fold(0f64, |m, x| nan_max64(m, (*x as f64).abs()))
}

/// max |a − b| with the differences in f32 (as candle's f32 ops compute them).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "comparing arrays of different sizes");
    a.iter()
        .zip(b)
        .fold(0f32, |m, (x, y)| nan_max32(m, (x - y).abs()))
}

/// max |a − b| with the differences in f64.
pub fn max_abs_diff_f64(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "comparing arrays of different sizes");
    a.iter().zip(b).fold(0f64, |m, (x, y)| {
        nan_max64(m, (*x as f64 - *y as f64).abs())
    })
}

/// max |a − b| over two tensors of the same shape.
pub fn tensor_max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "comparing tensors of different shapes");
    max_abs_diff(&values(a), &values(b))
}

/// max |t|.
pub fn tensor_max_abs(t: &Tensor) -> f32 {
    max_abs(&values(t))
}

/// max |a − b| relative to max |b| (at least 1e-12).
pub fn tensor_max_rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    tensor_max_abs_diff(a, b) / tensor_max_abs(b).max(1e-12)
}

/// max |got − want| relative to max |want|, the scale at least `floor`.
pub fn rel_err(got: &[f32], want: &[f64], floor: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "comparing arrays of different sizes");
    let scale = want.iter().fold(floor, |m, v| m.max(v.abs()));
    got.iter()
        .zip(want)
        .fold(0f64, |m, (&a, &b)| nan_max64(m, (a as f64 - b).abs()))
        / scale
}

/// `a` and `b` equal, or within `rel` of the larger magnitude.
pub fn close(a: f64, b: f64, rel: f64) -> bool {
    a == b || (a - b).abs() <= rel * a.abs().max(b.abs())
}
