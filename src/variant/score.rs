//! SpliceAI's delta scores for one (allele, gene) from the model outputs of the reference and alternate
//! windows (`get_delta_scores`): indel alignment, argmax deltas, `-M` masking, entry text.

/// Model output for one window: acceptor and donor probabilities per output position, genomic order.
#[derive(Debug, Clone, Default)]
pub struct Track {
    pub acceptor: Vec<f32>,
    pub donor: Vec<f32>,
}

/// The four delta scores and positions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deltas {
    /// AG, AL, DG, DL.
    pub ds: [f64; 4],
    pub dp: [i64; 4],
}

/// First index of the maximum (numpy's argmax) of `f(i)` over `0..n`.
fn argmax<T: PartialOrd + Copy>(n: usize, f: impl Fn(usize) -> T) -> usize {
    let mut best = 0;
    for i in 1..n {
        if f(i) > f(best) {
            best = i;
        }
    }
    best
}

/// Aligns the alternate track with the reference (deletions: zeros inserted after the first base;
/// insertions: the inserted positions' max), then takes the deltas. `cov` = 2D + 1.
pub fn deltas(r: &Track, a: &Track, ref_len: usize, alt_len: usize, cov: usize) -> Deltas {
    let c = cov / 2;
    if ref_len > 1 && alt_len == 1 {
        // numpy promotes to float64 through the zeros: differences in f64.
        let fix = |v: &[f32]| -> Vec<f64> {
            let mut out: Vec<f64> = v[..c + 1].iter().map(|&x| x as f64).collect();
            out.extend(std::iter::repeat_n(0.0, ref_len - 1));
            out.extend(v[c + 1..].iter().map(|&x| x as f64));
            out
        };
        let (aa, ad) = (fix(&a.acceptor), fix(&a.donor));
        let ra: Vec<f64> = r.acceptor.iter().map(|&x| x as f64).collect();
        let rd: Vec<f64> = r.donor.iter().map(|&x| x as f64).collect();
        return take(&ra, &rd, &aa, &ad, cov, |x, y| x - y);
    }
    if ref_len == 1 && alt_len > 1 {
        let fix = |v: &[f32]| -> Vec<f32> {
            let mut out = v[..c].to_vec();
            out.push(
                v[c..c + alt_len]
                    .iter()
                    .copied()
                    .fold(f32::NEG_INFINITY, f32::max),
            );
            out.extend_from_slice(&v[c + alt_len..]);
            out
        };
        let (aa, ad) = (fix(&a.acceptor), fix(&a.donor));
        return take(&r.acceptor, &r.donor, &aa, &ad, cov, |x, y| x - y);
    }
    take(&r.acceptor, &r.donor, &a.acceptor, &a.donor, cov, |x, y| {
        x - y
    })
}

fn take<T: PartialOrd + Copy + Into<f64>>(
    ra: &[T],
    rd: &[T],
    aa: &[T],
    ad: &[T],
    cov: usize,
    sub: impl Fn(T, T) -> T,
) -> Deltas {
    let c = cov as i64 / 2;
    let n = cov.min(aa.len()).min(ra.len());
    let ag = argmax(n, |i| sub(aa[i], ra[i]));
    let al = argmax(n, |i| sub(ra[i], aa[i]));
    let dg = argmax(n, |i| sub(ad[i], rd[i]));
    let dl = argmax(n, |i| sub(rd[i], ad[i]));
    Deltas {
        ds: [
            sub(aa[ag], ra[ag]).into(),
            sub(ra[al], aa[al]).into(),
            sub(ad[dg], rd[dg]).into(),
            sub(rd[dl], ad[dl]).into(),
        ],
        dp: [ag as i64 - c, al as i64 - c, dg as i64 - c, dl as i64 - c],
    }
}

impl Deltas {
    /// `-M 1`: gains at an annotated boundary and losses elsewhere count zero (×0, so −0.00 stays).
    pub fn masked(mut self, d_exon: i64) -> Self {
        let mask = [
            self.dp[0] == d_exon,
            self.dp[1] != d_exon,
            self.dp[2] == d_exon,
            self.dp[3] != d_exon,
        ];
        for (ds, m) in self.ds.iter_mut().zip(mask) {
            if m {
                *ds *= 0.0;
            }
        }
        self
    }

    /// `ALT|GENE|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL` with `precision` decimals.
    pub fn entry(&self, alt: &str, gene: &str, precision: usize) -> String {
        let [a, b, c, d] = self.ds;
        let [e, f, g, h] = self.dp;
        let p = precision;
        format!("{alt}|{gene}|{a:.p$}|{b:.p$}|{c:.p$}|{d:.p$}|{e}|{f}|{g}|{h}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(a: &[f32], d: &[f32]) -> Track {
        Track {
            acceptor: a.to_vec(),
            donor: d.to_vec(),
        }
    }

    #[test]
    fn snv_deltas_and_mask() {
        let r = track(&[0.1, 0.5, 0.1], &[0.0, 0.0, 0.9]);
        let a = track(&[0.6, 0.5, 0.1], &[0.0, 0.0, 0.2]);
        let d = deltas(&r, &a, 1, 1, 3);
        assert_eq!(d.dp, [-1, 0, -1, 1]);
        assert!((d.ds[0] - 0.5).abs() < 1e-6 && (d.ds[3] - 0.7).abs() < 1e-6);
        let m = d.masked(-1);
        assert_eq!(m.ds[0], 0.0);
        assert_eq!(d.entry("A", "g", 2), "A|g|0.50|0.00|0.00|0.70|-1|0|-1|1");
    }

    #[test]
    fn deletion_inserts_zeros_and_insertion_takes_max() {
        // cov 5, deletion of 2 bases: alt has 3 outputs, padded to 5 after index 2.
        let r = track(&[0.0; 5], &[0.0, 0.0, 0.0, 0.5, 0.0]);
        let a = track(&[0.0; 3], &[0.0, 0.0, 0.0]);
        let d = deltas(&r, &a, 3, 1, 5);
        assert_eq!(d.dp[3], 1);
        let r = track(&[0.0; 5], &[0.0; 5]);
        let a = track(&[0.0, 0.0, 0.3, 0.9, 0.0, 0.0, 0.0], &[0.0; 7]);
        let d = deltas(&r, &a, 1, 3, 5);
        assert_eq!(d.dp[0], 0);
        assert!((d.ds[0] - 0.9).abs() < 1e-6);
    }
}
