//! Sequence helpers with Biopython's semantics.

/// Biopython 1.88's complement of one upper-case character: A↔T, C↔G, R↔Y, K↔M, B↔V, D↔H, U→A; S, W, N and every
/// other character map to themselves.
fn complement(b: u8) -> u8 {
    match b {
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
        other => other,
    }
}

/// Reverse-complements an upper-case sequence in place.
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
    fn python_slices() {
        let s = b"ABCDEF";
        assert_eq!(py_slice(s, 1, 3), b"BC");
        assert_eq!(py_slice(s, -2, 10), b"EF");
        assert_eq!(py_slice(s, -10, 1), b"A");
        assert_eq!(py_slice(s, 4, 2), b"");
    }
}
