//! Seeded random streams: one independent ChaCha stream per (seed, method, source) and per permutation,
//! so results do not depend on detector order or thread count. No I/O.

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

/// The stream of the shared PCA fit.
pub fn pca_stream(seed: u64) -> Rng {
    ChaCha8Rng::seed_from_u64(mix(seed ^ salt("pca")))
}

/// A child stream, e.g. for permutation `index` of a detector, derived from a parent draw.
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

/// A uniformly random subset of `k` of `0..n`, sorted (partial Fisher–Yates).
pub fn subset(rng: &mut Rng, n: usize, k: usize) -> Vec<usize> {
    use rand::Rng as _;
    let k = k.min(n);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = rng.random_range(i..n);
        idx.swap(i, j);
    }
    idx.truncate(k);
    idx.sort_unstable();
    idx
}

/// Fisher–Yates shuffle.
pub fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
    use rand::Rng as _;
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}
