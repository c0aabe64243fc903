//! Example points: the comparison points least like the reference, by the mean distance to their
//! [`NEIGHBOURS`] nearest reference points in the explanation's principal components. Pure, no I/O.
//!
//! Exact nearest neighbours on seeded subsamples: at most [`CANDIDATES`] candidates against at most
//! [`REFERENCE_POINTS`] reference points, so one call costs at most `CANDIDATES × REFERENCE_POINTS`
//! distances in a few dimensions whatever the window sizes.

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::super::linalg;
use super::super::rng::{self, Rng};

/// Nearest reference points averaged.
pub const NEIGHBOURS: usize = 3;
/// Most candidates scored.
pub const CANDIDATES: usize = 1_000;
/// Most reference points searched.
pub const REFERENCE_POINTS: usize = 4_000;

/// Up to `count` of `candidates` (rows of `z`), farthest from `reference` (rows of `z`) first; ties by
/// row.
pub fn most_unlike(
    z: ArrayView2<f64>,
    candidates: &[usize],
    reference: &[usize],
    count: usize,
    rng: &mut Rng,
) -> Vec<usize> {
    if count == 0 || candidates.is_empty() {
        return Vec::new();
    }
    let cap = |rows: &[usize], most: usize, rng: &mut Rng| -> Vec<usize> {
        if rows.len() > most {
            rng::subset(rng, rows.len(), most)
                .into_iter()
                .map(|p| rows[p])
                .collect()
        } else {
            rows.to_vec()
        }
    };
    let candidates = cap(candidates, CANDIDATES, rng);
    let reference = cap(reference, REFERENCE_POINTS, rng);
    let row = |i: usize| z.row(i).to_vec();
    let reference_points: Vec<Vec<f64>> = reference.iter().map(|&i| row(i)).collect();
    let mut scored: Vec<(f64, usize)> = candidates
        .par_iter()
        .map(|&c| {
            let point = row(c);
            let mut nearest = [f64::INFINITY; NEIGHBOURS];
            for (r, other) in reference.iter().zip(&reference_points) {
                if *r == c {
                    continue;
                }
                let d = linalg::squared_distance(&point, other);
                if d < nearest[NEIGHBOURS - 1] {
                    let at = nearest.partition_point(|&v| v <= d);
                    nearest.copy_within(at..NEIGHBOURS - 1, at + 1);
                    nearest[at] = d;
                }
            }
            let found: Vec<f64> = nearest.iter().copied().filter(|v| v.is_finite()).collect();
            let score = if found.is_empty() {
                f64::INFINITY
            } else {
                found.iter().map(|v| v.sqrt()).sum::<f64>() / found.len() as f64
            };
            (score, c)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(count).map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::SeedableRng;

    #[test]
    fn the_points_farthest_from_the_reference_come_first() {
        // Reference on a line at x = 0..10; candidates at distance 1, 5, 3 and 0 from it.
        let mut z = Array2::<f64>::zeros((14, 2));
        for i in 0..10 {
            z[[i, 0]] = i as f64;
        }
        for (k, dy) in [1.0, 5.0, 3.0, 0.0].iter().enumerate() {
            z[[10 + k, 0]] = 4.0;
            z[[10 + k, 1]] = *dy;
        }
        let reference: Vec<usize> = (0..10).collect();
        let picked = most_unlike(
            z.view(),
            &[10, 11, 12, 13],
            &reference,
            3,
            &mut Rng::seed_from_u64(1),
        );
        assert_eq!(picked, vec![11, 12, 10]);
        assert!(most_unlike(z.view(), &[], &reference, 3, &mut Rng::seed_from_u64(1)).is_empty());
    }

    #[test]
    fn a_candidate_with_no_reference_to_compare_is_the_most_unlike() {
        let z = Array2::<f64>::zeros((3, 1));
        assert_eq!(
            most_unlike(z.view(), &[1, 2], &[], 1, &mut Rng::seed_from_u64(1)),
            vec![1]
        );
    }
}
