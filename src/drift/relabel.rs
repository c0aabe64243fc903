//! The relabellings every detector of a check is tested on: the observed split and `B` uniformly random
//! splits of the pooled points at the real window sizes, packed eight to a byte. No I/O.
//!
//! Index 0 is the observed split (the first `n` pooled points are the reference); relabelling `j >= 1`
//! comes from its own seeded stream, so the set is the same on any thread count. All detectors of a
//! check read the same set — the joint permutation test that calibrates the check's verdict (see
//! [`super::calibrate::min_p`]). Memory: `ceil((B + 1) / 8)` bytes per pooled point, at most
//! 40 000 × 1 251 B ≈ 50 MB (10 000 permutations on two capped windows).

use rand::Rng as _;
use rayon::prelude::*;

use super::rng::{self, Rng};

/// Relabellings swept together: one byte per pooled point holds their labels.
pub const LANES: usize = 8;

/// `1 + B` labellings of `total` pooled points into a first group of `n_first` and the rest.
pub struct Relabellings {
    total: usize,
    n_first: usize,
    count: usize,
    /// Group-major: byte `g * total + i`, bit `p` = point `i` is in the first group under labelling `8g + p`.
    lanes: Vec<u8>,
}

impl Relabellings {
    /// The observed split and `b` random relabellings drawn from `rng`.
    pub fn draw(total: usize, n_first: usize, b: usize, rng: &mut Rng) -> Relabellings {
        let base: u64 = rng.random();
        let n_first = n_first.min(total);
        let count = b + 1;
        let groups = count.div_ceil(LANES);
        let mut lanes = vec![0u8; groups * total];
        // The smaller group is drawn as a uniform random subset (partial Fisher–Yates); the rest is the other.
        let small = n_first.min(total - n_first);
        let small_is_first = small == n_first;
        lanes
            .par_chunks_mut(total.max(1))
            .enumerate()
            .for_each(|(g, bytes)| {
                let mut idx: Vec<u32> = Vec::new();
                for p in 0..LANES {
                    let j = g * LANES + p;
                    if j >= count {
                        break;
                    }
                    let bit = 1u8 << p;
                    if j == 0 {
                        bytes[..n_first].iter_mut().for_each(|b| *b |= bit);
                        continue;
                    }
                    idx.clear();
                    idx.extend(0..total as u32);
                    rng::partial_shuffle(&mut rng::child(base, j as u64), &mut idx, small);
                    if small_is_first {
                        idx[..small].iter().for_each(|&i| bytes[i as usize] |= bit);
                    } else {
                        bytes.iter_mut().for_each(|b| *b |= bit);
                        idx[..small].iter().for_each(|&i| bytes[i as usize] &= !bit);
                    }
                }
            });
        Relabellings {
            total,
            n_first,
            count,
            lanes,
        }
    }

    /// Labellings held (the observed one plus B).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Pooled points.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Size of the first group (the reference) in every labelling.
    pub fn n_first(&self) -> usize {
        self.n_first
    }

    /// Size of the second group (the comparison) in every labelling.
    pub fn n_second(&self) -> usize {
        self.total - self.n_first
    }

    /// Lane groups: labellings `8g .. 8g + 8` share group `g`.
    pub fn groups(&self) -> usize {
        self.count.div_ceil(LANES)
    }

    /// The label bytes of lane group `g` (one per pooled point).
    pub fn group(&self, g: usize) -> &[u8] {
        &self.lanes[g * self.total..(g + 1) * self.total]
    }

    /// Whether point `i` is in the first group under labelling `j`.
    pub fn is_first(&self, j: usize, i: usize) -> bool {
        self.lanes[(j / LANES) * self.total + i] >> (j % LANES) & 1 == 1
    }

    /// The points of the first (`true`) or second group under labelling `j`, in pooled order.
    pub fn members(&self, j: usize, first: bool) -> Vec<u32> {
        let bytes = self.group(j / LANES);
        let bit = 1u8 << (j % LANES);
        (0..self.total as u32)
            .filter(|&i| (bytes[i as usize] & bit != 0) == first)
            .collect()
    }

    /// Labelling `j` as one flag per point (`true` = first group).
    pub fn mask(&self, j: usize) -> Vec<bool> {
        let bytes = self.group(j / LANES);
        let bit = 1u8 << (j % LANES);
        bytes.iter().map(|b| b & bit != 0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_first_labelling_is_the_observed_split_and_every_labelling_keeps_the_group_sizes() {
        for (total, n) in [(30, 20), (30, 10), (9, 0), (17, 17)] {
            let r = Relabellings::draw(total, n, 21, &mut Rng::seed_from_u64(1));
            assert_eq!((r.count(), r.groups()), (22, 3));
            assert_eq!(r.members(0, true), (0..n as u32).collect::<Vec<_>>());
            for j in 0..r.count() {
                assert_eq!(r.members(j, true).len(), n, "labelling {j}");
                assert_eq!(r.mask(j).iter().filter(|&&b| b).count(), n);
                assert!((0..total).all(|i| r.is_first(j, i) == r.mask(j)[i]));
            }
        }
    }

    #[test]
    fn each_point_is_in_the_first_group_about_n_over_total_of_the_time() {
        let r = Relabellings::draw(40, 10, 4000, &mut Rng::seed_from_u64(2));
        for i in 0..40 {
            let hits = (1..r.count()).filter(|&j| r.is_first(j, i)).count();
            // Binomial(4000, 0.25): mean 1000, sd 27.
            assert!((880..1120).contains(&hits), "point {i}: {hits}");
        }
    }

    #[test]
    fn relabellings_are_the_same_on_one_and_two_threads_and_change_with_the_seed() {
        let draw = |threads, seed| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| Relabellings::draw(500, 300, 99, &mut Rng::seed_from_u64(seed)).lanes)
        };
        assert_eq!(draw(1, 3), draw(2, 3));
        assert_ne!(draw(1, 3), draw(1, 4));
    }
}
