//! `--device auto|cpu|cuda[:N]|metal`: picks the candle device (auto: CUDA, then Metal, then CPU, like
//! OpenSpliceAI's `setup_device`).

use candle_core::{Device, Tensor};

/// A device the user asked for that this binary cannot provide.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}`: expected auto, cpu, cuda, cuda:N or metal")]
    Unknown(String),
    #[error("device `{0}` was requested but this binary was built without the `{1}` feature (rebuild with `cargo build --release --features {1}`)")]
    NotBuilt(String, &'static str),
    #[error("device `{spec}` could not be opened")]
    Open {
        spec: String,
        #[source]
        source: candle_core::Error,
    },
}

/// Opens the device named by `spec`.
pub fn select_device(spec: &str) -> Result<Device, DeviceError> {
    let s = spec.trim().to_ascii_lowercase();
    let open = |r: candle_core::Result<Device>| {
        r.map_err(|source| DeviceError::Open {
            spec: spec.to_string(),
            source,
        })
    };
    match s.as_str() {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(auto()),
        "metal" => {
            if !cfg!(feature = "metal") {
                return Err(DeviceError::NotBuilt(spec.to_string(), "metal"));
            }
            open(Device::new_metal(0))
        }
        _ if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = match s.strip_prefix("cuda:") {
                None => 0,
                Some(n) => n
                    .parse::<usize>()
                    .map_err(|_| DeviceError::Unknown(spec.to_string()))?,
            };
            if !cfg!(feature = "cuda") {
                return Err(DeviceError::NotBuilt(spec.to_string(), "cuda"));
            }
            open(Device::new_cuda(ordinal))
        }
        _ => Err(DeviceError::Unknown(spec.to_string())),
    }
}

/// `--device auto`: CUDA, then Metal, then the CPU; says (warn) why a built-in GPU backend did not open.
fn auto() -> Device {
    type Open = fn() -> candle_core::Result<Device>;
    let tries: [(&str, bool, Open); 2] = [
        ("cuda", cfg!(feature = "cuda"), || Device::new_cuda(0)),
        ("metal", cfg!(feature = "metal"), || Device::new_metal(0)),
    ];
    for (name, built, open) in tries {
        if !built {
            continue;
        }
        match open() {
            Ok(d) => return d,
            Err(e) => {
                log::warn!("--device auto: {name} did not open ({e}); trying the next device")
            }
        }
    }
    Device::Cpu
}

/// Rows `start..start + len` (dim 0) of the host tensor `x`, as a new tensor on `device` holding only
/// those rows (`narrow(..).to_device(..)` would copy the whole storage and keep the offset).
pub fn upload_rows(
    x: &Tensor,
    start: usize,
    len: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let rows = x.narrow(0, start, len)?;
    if device.same_device(x.device()) {
        return Ok(rows);
    }
    // force_contiguous copies just these rows into a storage of their own (`copy` keeps the whole one).
    rows.force_contiguous()?.to_device(device)
}

/// A short human name for a device.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => format!("cpu ({} threads)", rayon::current_num_threads()),
        Device::Cuda(_) => "cuda".to_string(),
        Device::Metal(_) => "metal".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_rows_holds_only_those_rows() {
        let x = Tensor::arange(0f32, 24.0, &Device::Cpu)
            .unwrap()
            .reshape((4, 2, 3))
            .unwrap();
        let r = upload_rows(&x, 1, 2, &Device::Cpu).unwrap();
        assert_eq!(r.dims(), [2, 2, 3]);
        let v = r.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v, (6..18).map(|i| i as f32).collect::<Vec<_>>());
    }

    #[test]
    fn devices_this_binary_lacks_are_clear_errors() {
        assert!(matches!(select_device("cpu"), Ok(Device::Cpu)));
        let e = select_device("tpu").unwrap_err().to_string();
        assert!(e.contains("unknown device `tpu`"), "{e}");
        if !cfg!(feature = "cuda") {
            let e = select_device("cuda:1").unwrap_err().to_string();
            assert!(e.contains("built without the `cuda` feature"), "{e}");
        }
        if !cfg!(feature = "metal") {
            let e = select_device("metal").unwrap_err().to_string();
            assert!(e.contains("built without the `metal` feature"), "{e}");
        }
        if !cfg!(feature = "cuda") && !cfg!(feature = "metal") {
            assert!(matches!(select_device("auto"), Ok(Device::Cpu)));
        }
    }
}
