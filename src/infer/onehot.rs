//! One-hot encoding of nucleotide text into the model's channel-first layout.

/// Channel of a base: A, C, G, T (either case) → 0..4; anything else (N, IUPAC codes, padding) is
/// an all-zero column, as OpenSpliceAI's `predict` and `variant` encode it.
#[inline]
pub fn channel(b: u8) -> Option<usize> {
    match b {
        b'A' | b'a' => Some(0),
        b'C' | b'c' => Some(1),
        b'G' | b'g' => Some(2),
        b'T' | b't' => Some(3),
        _ => None,
    }
}

/// Writes the one-hot of `seq` into `out` laid out as (4, `len`) starting at column `offset`
/// (`out.len() == 4 * len`); columns not covered keep their value (zero for padding).
pub fn encode_into(seq: &[u8], out: &mut [f32], len: usize, offset: usize) {
    debug_assert_eq!(out.len(), 4 * len);
    for (i, &b) in seq.iter().enumerate() {
        if let Some(c) = channel(b) {
            out[c * len + offset + i] = 1.0;
        }
    }
}

/// Like [`encode_into`] for the reverse complement of `seq`: column `offset + i` holds the complement of
/// `seq[len(seq) - 1 - i]`.
pub fn encode_revcomp_into(seq: &[u8], out: &mut [f32], len: usize, offset: usize) {
    debug_assert_eq!(out.len(), 4 * len);
    let n = seq.len();
    for (i, &b) in seq.iter().enumerate() {
        if let Some(c) = channel(b) {
            out[(3 - c) * len + offset + (n - 1 - i)] = 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_reverse_complements() {
        let mut f = vec![0.0; 4 * 5];
        encode_into(b"ACgTN", &mut f, 5, 0);
        let col = |f: &[f32], j: usize| (0..4).map(|c| f[c * 5 + j]).collect::<Vec<_>>();
        assert_eq!(col(&f, 0), [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(col(&f, 2), [0.0, 0.0, 1.0, 0.0]);
        assert_eq!(col(&f, 4), [0.0; 4]);
        let mut r = vec![0.0; 4 * 5];
        encode_revcomp_into(b"AACGR", &mut r, 5, 0);
        // reverse complement of AACGR is (R→zero) C G T T
        assert_eq!(col(&r, 0), [0.0; 4]);
        assert_eq!(col(&r, 1), [0.0, 1.0, 0.0, 0.0]);
        assert_eq!(col(&r, 2), [0.0, 0.0, 1.0, 0.0]);
        assert_eq!(col(&r, 4), [0.0, 0.0, 0.0, 1.0]);
    }
}
