//! Seeded random streams: one independent ChaCha stream per (seed, purpose), per detector and per
//! relabelling, so results depend on the seed only, never on detector order or thread count. The one
//! Fisher–Yates shuffle of the engine lives here. No I/O.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::api::v1alpha1::{DataSource, Method};

pub type Rng = ChaCha8Rng;

fn mix(mut z: u64) -> u64 {
    // splitmix64 finaliser
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn salt(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The stream of one detector.
pub fn stream(seed: u64, method: Method, source: DataSource) -> Rng {
    ChaCha8Rng::seed_from_u64(mix(
        seed ^ mix(salt(method.as_str()) ^ salt(source.as_str()).rotate_left(17))
    ))
}

/// The stream of one engine step that is not a detector (`"pca"`, `"relabel"`, `"subsample"`, `"summary"`).
pub fn named(seed: u64, purpose: &str) -> Rng {
    ChaCha8Rng::seed_from_u64(mix(seed ^ salt(purpose)))
}

/// A child stream, e.g. for relabelling `index`, derived from a parent draw.
pub fn child(base: u64, index: u64) -> Rng {
    ChaCha8Rng::seed_from_u64(mix(base ^ mix(index.wrapping_add(1))))
}

/// Standard normal draw (Box–Muller), independent of `rand_distr`.
pub fn normal(rng: &mut Rng) -> f64 {
    use rand::Rng as _;
    loop {
        let u: f64 = rng.random();
        let v: f64 = rng.random();
        if u > 0.0 {
            return (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        }
    }
}

/// Partial Fisher–Yates: afterwards `v[..k]` is a uniformly random `k`-subset of `v` in random order.
/// The engine's only shuffle: full shuffles, subsets and relabellings all go through it.
pub fn partial_shuffle<T>(rng: &mut Rng, v: &mut [T], k: usize) {
    use rand::Rng as _;
    let n = v.len();
    for i in 0..k.min(n.saturating_sub(1)) {
        let j = rng.random_range(i..n);
        v.swap(i, j);
    }
}

/// A uniformly random permutation of `v`.
pub fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
    let n = v.len();
    partial_shuffle(rng, v, n);
}

/// A uniformly random subset of `k` of `0..n`, sorted.
pub fn subset(rng: &mut Rng, n: usize, k: usize) -> Vec<usize> {
    let k = k.min(n);
    let mut idx: Vec<usize> = (0..n).collect();
    partial_shuffle(rng, &mut idx, k);
    idx.truncate(k);
    idx.sort_unstable();
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_position_of_a_shuffle_is_equally_likely_for_every_element() {
        // 3 elements, 6 permutations: each must appear about 1/6 of the time.
        let mut counts = std::collections::HashMap::new();
        let mut r = Rng::seed_from_u64(1);
        for _ in 0..60_000 {
            let mut v = [0, 1, 2];
            shuffle(&mut r, &mut v);
            *counts.entry(v).or_insert(0usize) += 1;
        }
        assert_eq!(counts.len(), 6);
        for (perm, c) in counts {
            assert!((9_400..10_600).contains(&c), "{perm:?} drawn {c} times of 60000");
        }
    }

    #[test]
    fn subsets_are_sorted_distinct_and_seed_dependent() {
        let a = subset(&mut Rng::seed_from_u64(2), 1000, 100);
        let b = subset(&mut Rng::seed_from_u64(3), 1000, 100);
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_ne!(a, b);
        assert_eq!(subset(&mut Rng::seed_from_u64(2), 5, 10), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn named_streams_differ_by_purpose_and_seed() {
        use rand::Rng as _;
        let draw = |mut r: Rng| r.random::<u64>();
        assert_ne!(draw(named(1, "pca")), draw(named(1, "relabel")));
        assert_ne!(draw(named(1, "pca")), draw(named(2, "pca")));
        assert_eq!(draw(named(1, "pca")), draw(named(1, "pca")));
    }
}
