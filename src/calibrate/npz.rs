//! numpy's `.npy` and `.npz` formats for one-dimensional float64 and int64 arrays: what `np.savez` writes
//! for upstream's `calibration_data_*.npz` (a zip of uncompressed `.npy` members), which `np.load` reads.

use std::io::Write;

/// A one-dimensional array.
#[derive(Debug, Clone, Copy)]
pub enum Array<'a> {
    /// `<f8`
    F64(&'a [f64]),
    /// `<i8`
    I64(&'a [i64]),
}

impl Array<'_> {
    fn descr(&self) -> &'static str {
        match self {
            Array::F64(_) => "<f8",
            Array::I64(_) => "<i8",
        }
    }

    fn len(&self) -> usize {
        match self {
            Array::F64(v) => v.len(),
            Array::I64(v) => v.len(),
        }
    }
}

/// The bytes of a `.npy` file (format 1.0) holding `a`, header as numpy 2 writes it: the dict, room for
/// the shape to grow to 21 digits, spaces to a 64-byte boundary, a newline.
pub fn npy_bytes(a: Array<'_>) -> Vec<u8> {
    let n = a.len();
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({n},), }}",
        a.descr()
    );
    header.push_str(&" ".repeat(21usize.saturating_sub(n.to_string().len())));
    let hlen = header.len() + 1;
    let pad = 64 - (8 + 2 + hlen) % 64;
    let mut out = Vec::with_capacity(10 + hlen + pad + 8 * n);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&((hlen + pad) as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    match a {
        Array::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Array::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
    out
}

/// The bytes of an `.npz` file: each named array as the stored (uncompressed) member `{name}.npy`, as
/// `np.savez(path, name=array, ...)` writes them.
pub fn npz_bytes(arrays: &[(&str, Array<'_>)]) -> Result<Vec<u8>, zip::result::ZipError> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, a) in arrays {
        zip.start_file(format!("{name}.npy"), options)?;
        zip.write_all(&npy_bytes(*a))?;
    }
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_numpys() {
        let b = npy_bytes(Array::F64(&[0.5; 28]));
        // numpy 2.4: header length 118, the data at byte 128.
        assert_eq!(&b[..10], b"\x93NUMPY\x01\x00v\x00");
        assert_eq!(
            &b[10..68],
            b"{'descr': '<f8', 'fortran_order': False, 'shape': (28,), }"
        );
        assert_eq!(b[127], b'\n');
        assert_eq!(b.len(), 128 + 8 * 28);
        let b = npy_bytes(Array::I64(&[]));
        assert_eq!((b.len() % 64, b[b.len() - 1]), (0, b'\n'));
    }

    #[test]
    fn npz_members_read_back() {
        use std::io::Read;
        let bytes = npz_bytes(&[
            ("prob_true", Array::F64(&[0.25, 1.0])),
            ("bin_counts", Array::I64(&[3, 4])),
        ])
        .unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(
            z.file_names()
                .map(|n| n.unwrap().into_owned())
                .collect::<Vec<_>>(),
            vec!["prob_true.npy", "bin_counts.npy"]
        );
        let mut m = Vec::new();
        z.by_name("bin_counts.npy")
            .unwrap()
            .read_to_end(&mut m)
            .unwrap();
        assert_eq!(m, npy_bytes(Array::I64(&[3, 4])));
    }
}
