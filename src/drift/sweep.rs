//! One-dimensional two-sample distances on every relabelling at once: each row of values is sorted once,
//! then a branch-free sweep over the sorted points evaluates eight relabellings per pass (one label byte
//! per point). Exact W1 (the integral of |F_a - F_b|) and the KS distance (its supremum). No I/O.

use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;

use super::relabel::{LANES, Relabellings};

/// One row of pooled values in sorted order: which point sits at each position and the gaps between
/// consecutive values.
pub struct Sorted {
    order: Vec<u32>,
    gaps: Vec<f64>,
}

impl Sorted {
    /// Sorts f32 values (radix sort; NaN-free input, validated upstream).
    pub fn from_f32(values: impl Iterator<Item = f32>) -> Sorted {
        let mut pairs: Vec<(f32, u32)> = values.zip(0u32..).collect();
        radsort::sort_by_key(&mut pairs, |p| p.0);
        Sorted {
            gaps: pairs
                .windows(2)
                .map(|w| f64::from(w[1].0) - f64::from(w[0].0))
                .collect(),
            order: pairs.into_iter().map(|p| p.1).collect(),
        }
    }

    /// Sorts f64 values (NaN-free input).
    pub fn from_f64(values: impl Iterator<Item = f64>) -> Sorted {
        let mut pairs: Vec<(f64, u32)> = values.zip(0u32..).collect();
        radsort::sort_by_key(&mut pairs, |p| p.0);
        Sorted {
            gaps: pairs.windows(2).map(|w| w[1].0 - w[0].0).collect(),
            order: pairs.into_iter().map(|p| p.1).collect(),
        }
    }

    /// Each column of `x` sorted: one row per principal component.
    pub fn columns(x: ArrayView2<f64>) -> Vec<Sorted> {
        x.axis_iter(Axis(1))
            .map(|c| Sorted::from_f64(c.iter().copied()))
            .collect()
    }
}

/// How per-row distances combine into one statistic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distance {
    /// Wasserstein-1; rows combine by their sum (divide by the row count for the mean).
    W1,
    /// Kolmogorov–Smirnov D; rows combine by their maximum.
    Ks,
}

/// Adds (W1) or maxes (KS) the distance of every row into `acc[j]` for every labelling `j` (`acc` has one
/// entry per labelling). Parallel over lane groups; each labelling sees the rows in order, so the result
/// is the same on any thread count.
pub fn accumulate(rows: &[Sorted], labels: &Relabellings, distance: Distance, acc: &mut [f64]) {
    let (na, nb) = (labels.n_first(), labels.n_second());
    acc.par_chunks_mut(LANES).enumerate().for_each(|(g, out)| {
        let bits = labels.group(g);
        for row in rows {
            let d = match distance {
                Distance::W1 => w1_lanes(row, bits, na, nb),
                Distance::Ks => ks_lanes(row, bits, na, nb),
            };
            for (o, v) in out.iter_mut().zip(d) {
                match distance {
                    Distance::W1 => *o += v,
                    Distance::Ks => *o = o.max(v),
                }
            }
        }
    });
}

static UNPACK: std::sync::LazyLock<[[f64; LANES]; 256]> = std::sync::LazyLock::new(|| {
    std::array::from_fn(|byte| std::array::from_fn(|p| f64::from((byte >> p) as u8 & 1)))
});

/// Per lane p, the W1 between the points labelled 1 and 0 in bit p. Branch-free and vectorisable: the
/// labels are random, so branching on them would mispredict half the time, and the lanes share each load.
pub fn w1_lanes(s: &Sorted, bits: &[u8], na: usize, nb: usize) -> [f64; LANES] {
    let unpack = &*UNPACK;
    let (fa, fb) = (1.0 / na.max(1) as f64, 1.0 / nb.max(1) as f64);
    let mut count_a = [0.0f64; LANES];
    let mut total = [0.0f64; LANES];
    for (t, (&gap, &i)) in s.gaps.iter().zip(&s.order).enumerate() {
        let labels = &unpack[usize::from(bits[i as usize])];
        // F_a - F_b after t + 1 points, with count_b = (t + 1) - count_a.
        let seen_b = (t + 1) as f64 * fb;
        for p in 0..LANES {
            count_a[p] += labels[p];
            total[p] += (count_a[p] * (fa + fb) - seen_b).abs() * gap;
        }
    }
    total
}

/// Per lane p, the KS distance sup |F_a - F_b| between the points labelled 1 and 0 in bit p, evaluated
/// where the value changes (ties are consumed whole, as in scipy's `ks_2samp`).
pub fn ks_lanes(s: &Sorted, bits: &[u8], na: usize, nb: usize) -> [f64; LANES] {
    let unpack = &*UNPACK;
    let (fa, fb) = (1.0 / na.max(1) as f64, 1.0 / nb.max(1) as f64);
    let mut count_a = [0.0f64; LANES];
    let mut best = [0.0f64; LANES];
    for (t, (&gap, &i)) in s.gaps.iter().zip(&s.order).enumerate() {
        let labels = &unpack[usize::from(bits[i as usize])];
        for p in 0..LANES {
            count_a[p] += labels[p];
        }
        if gap > 0.0 {
            let seen_b = (t + 1) as f64 * fb;
            for p in 0..LANES {
                best[p] = best[p].max((count_a[p] * (fa + fb) - seen_b).abs());
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::rng::Rng;
    use crate::drift::{univariate, wasserstein};
    use rand::SeedableRng;

    fn groups(values: &[f64], mask: &[bool]) -> (Vec<f64>, Vec<f64>) {
        let a = values
            .iter()
            .zip(mask)
            .filter(|(_, m)| **m)
            .map(|(v, _)| *v)
            .collect();
        let b = values
            .iter()
            .zip(mask)
            .filter(|(_, m)| !**m)
            .map(|(v, _)| *v)
            .collect();
        (a, b)
    }

    #[test]
    fn the_sweep_agrees_with_the_direct_distances_on_every_relabelling() {
        // Rounded values give ties; 21 relabellings span three lane groups.
        let values: Vec<f64> = (0..60).map(|i| (((i * 37) % 23) as f64 * 0.5).round()).collect();
        let labels = Relabellings::draw(60, 35, 20, &mut Rng::seed_from_u64(5));
        let rows = [Sorted::from_f64(values.iter().copied())];
        let mut w = vec![0.0; labels.count()];
        let mut k = vec![0.0; labels.count()];
        accumulate(&rows, &labels, Distance::W1, &mut w);
        accumulate(&rows, &labels, Distance::Ks, &mut k);
        for j in 0..labels.count() {
            let (a, b) = groups(&values, &labels.mask(j));
            assert!((w[j] - wasserstein::w1(&a, &b)).abs() < 1e-12, "w1 labelling {j}");
            assert!(
                (k[j] - univariate::ks(&a, &b).0).abs() < 1e-12,
                "ks labelling {j}"
            );
        }
    }
}
