//! Histograms of both windows along the top two principal components of the reference (dashboard
//! picture). No I/O.

use ndarray::ArrayView2;

use super::pca::Pca;
use super::rng;
use super::validate;
use crate::job::result::{ComponentHistogram, DistributionSummary};

/// Summary with `bins` (1 to 200) shared bins per component; empty for unusable input. `seed` drives the
/// randomized PCA of wide windows (the check's seed).
pub fn summarize(
    reference: ArrayView2<f32>,
    comparison: ArrayView2<f32>,
    bins: usize,
    seed: u64,
) -> DistributionSummary {
    let empty = DistributionSummary { components: vec![] };
    if validate::embeddings(reference, comparison, 1).is_err() {
        return empty;
    }
    let bins = bins.clamp(1, 200);
    let k = reference.ncols().min(2);
    let pca = Pca::fit(&reference, k, &mut rng::named(seed, "summary"));
    let (r, c) = (pca.transform(&reference), pca.transform(&comparison));
    let components = (0..k)
        .map(|j| {
            let lo = r
                .column(j)
                .iter()
                .chain(c.column(j).iter())
                .copied()
                .fold(f64::INFINITY, f64::min);
            let hi = r
                .column(j)
                .iter()
                .chain(c.column(j).iter())
                .copied()
                .fold(f64::NEG_INFINITY, f64::max);
            let width = if hi > lo { (hi - lo) / bins as f64 } else { 1.0 };
            let hist = |v: ndarray::ArrayView1<f64>| {
                let mut h = vec![0u32; bins];
                for x in v {
                    let i = (((x - lo) / width).floor().max(0.0) as usize).min(bins - 1);
                    h[i] = h[i].saturating_add(1);
                }
                h
            };
            ComponentHistogram {
                range: [lo, if hi > lo { hi } else { lo + 1.0 }],
                reference: hist(r.column(j)),
                comparison: hist(c.column(j)),
            }
        })
        .collect();
    DistributionSummary { components }
}
