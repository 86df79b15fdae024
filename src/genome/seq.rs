//! Nucleotide sequences: the one home of the complement table, one-hot encoding, and the window geometry
//! that create-data, predict and variant share. Sequences are upper-cased by the readers and by
//! extraction (`make_ascii_uppercase`); everything here also accepts lower case.

use crate::model::config::SEQ_LEN;

/// The largest flanking context (5000 each side): files of `create-data` store windows of
/// `SEQ_LEN + MAX_FLANK` positions.
pub const MAX_FLANK: usize = 10_000;
/// Positions of one stored window (`X{i}` rows): 15000.
pub const X_LEN: usize = SEQ_LEN + MAX_FLANK;

/// Biopython 1.88's complement (also pyfaidx's, but for U): A↔T, C↔G, R↔Y, K↔M, B↔V, D↔H, U→A, in either case;
/// S, W, N and every other character map to themselves.
pub fn complement(b: u8) -> u8 {
    let c = match b.to_ascii_uppercase() {
        b'A' => b'T',
        b'T' | b'U' => b'A',
        b'C' => b'G',
        b'G' => b'C',
        b'R' => b'Y',
        b'Y' => b'R',
        b'K' => b'M',
        b'M' => b'K',
        b'B' => b'V',
        b'V' => b'B',
        b'D' => b'H',
        b'H' => b'D',
        _ => return b,
    };
    if b.is_ascii_lowercase() {
        c.to_ascii_lowercase()
    } else {
        c
    }
}

/// Reverse-complements a sequence in place ([`complement`]; case is kept).
pub fn reverse_complement(seq: &mut [u8]) {
    seq.reverse();
    for b in seq.iter_mut() {
        *b = complement(*b);
    }
}

/// Python's `s[a:b]` for possibly negative or out-of-range bounds.
pub fn py_slice(s: &[u8], a: i64, b: i64) -> &[u8] {
    let len = s.len() as i64;
    let norm = |i: i64| {
        if i < 0 {
            (i + len).max(0)
        } else {
            i.min(len)
        }
    };
    let (a, b) = (norm(a), norm(b));
    if a >= b {
        &[]
    } else {
        &s[a as usize..b as usize]
    }
}

// ---- one-hot encoding ----

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

/// The one-hot row of a base as `create-data` stores it (int8): A, C, G, T; anything else all zero.
pub fn base_row(b: u8) -> [u8; 4] {
    let mut row = [0u8; 4];
    if let Some(c) = channel(b) {
        row[c] = 1;
    }
    row
}

// ---- window geometry ----

/// Windows of `SEQ_LEN` scored positions a record of `len` bases is cut into: ceil(len / 5000).
pub fn window_count(len: usize) -> usize {
    len.div_ceil(SEQ_LEN)
}

/// The part of a record inside one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpan {
    /// Record positions `[start, end)` that the window holds.
    pub start: usize,
    pub end: usize,
    /// Window position of `start` (the context before it, past the record's start, is padding).
    pub offset: usize,
}

/// Window `j` of a record of `len` bases with `half` context positions each side covers record positions
/// `[SEQ_LEN·j − half, SEQ_LEN·(j+1) + half)`, `2·half + SEQ_LEN` in all; outside the record it is padding.
pub fn window_span(j: usize, len: usize, half: usize) -> WindowSpan {
    let start = (SEQ_LEN * j).saturating_sub(half).min(len);
    let end = (SEQ_LEN * (j + 1) + half).min(len);
    WindowSpan {
        start,
        end: end.max(start),
        offset: start + half - SEQ_LEN * j,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_complement_keeps_unknown_letters() {
        let mut s = b"ACGTNRYKMBVDHSWUX*".to_vec();
        reverse_complement(&mut s);
        assert_eq!(&s, b"*XAWSDHBVKMRYNACGT");
    }

    #[test]
    fn reverse_complement_keeps_case() {
        let mut s = b"acgTNr".to_vec();
        reverse_complement(&mut s);
        assert_eq!(&s, b"yNAcgt");
    }

    #[test]
    fn python_slices() {
        let s = b"ABCDEF";
        assert_eq!(py_slice(s, 1, 3), b"BC");
        assert_eq!(py_slice(s, -2, 10), b"EF");
        assert_eq!(py_slice(s, -10, 1), b"A");
        assert_eq!(py_slice(s, 4, 2), b"");
    }

    #[test]
    fn base_rows() {
        assert_eq!(base_row(b'A'), [1, 0, 0, 0]);
        assert_eq!(base_row(b'T'), [0, 0, 0, 1]);
        assert_eq!(base_row(b'N'), [0; 4]);
    }

    #[test]
    fn window_spans() {
        // First window of a long record: the context before the record is padding.
        assert_eq!(
            window_span(0, 20_000, 5000),
            WindowSpan {
                start: 0,
                end: 10_000,
                offset: 5000
            }
        );
        // A middle window: all record.
        assert_eq!(
            window_span(1, 20_000, 5000),
            WindowSpan {
                start: 0,
                end: 15_000,
                offset: 0
            }
        );
        // The last window of a short record ends at the record's end.
        assert_eq!(
            window_span(0, 7, 40),
            WindowSpan {
                start: 0,
                end: 7,
                offset: 40
            }
        );
        assert_eq!(window_count(0), 0);
        assert_eq!(window_count(5000), 1);
        assert_eq!(window_count(5001), 2);
    }

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
