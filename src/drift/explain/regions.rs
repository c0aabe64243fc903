//! Regions of the embedding space whose share changed: k-means++ on the pooled points' principal-component
//! scores, k chosen by the silhouette, and per region its size in each window. Pure, no I/O.
//!
//! The clustering never looks at which window a point came from (it is fitted on a seeded subsample of at
//! most [`FIT_ROWS`] pooled points, chosen by position), so a region's counts in the two windows compare
//! like any other label-blind split. For each k in 2..=[`MAX_CLUSTERS`], Lloyd's algorithm from a
//! k-means++ start; the k with the largest mean silhouette on [`SILHOUETTE_ROWS`] of the fitted points wins
//! (ties: the smaller k). Every pooled point is then assigned to its nearest centre. Assignment is
//! parallel per point; sums run in point order, so the result is the same on any thread count.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::Rng as _;
use rayon::prelude::*;

use super::super::linalg;
use super::super::rng::{self, Rng};

/// Largest k tried.
pub const MAX_CLUSTERS: usize = 10;
/// Pooled points the centres are fitted on (a seeded subsample above this).
pub const FIT_ROWS: usize = 10_000;
/// Fitted points the silhouette is computed on.
pub const SILHOUETTE_ROWS: usize = 1_000;
/// Lloyd iterations at most.
pub const ITERATIONS: usize = 50;
/// Fewest pooled points worth clustering.
pub const MIN_POINTS: usize = 20;
/// A region whose share in one window is below this fraction of its share in the other is `new` or
/// `vanished`.
pub const NEW_RATIO: f64 = 0.2;

/// How a region's share changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// (Almost) only in the comparison window: share there at least 1/[`NEW_RATIO`] times the reference's.
    New,
    /// A larger share of the comparison window.
    Grown,
    /// A smaller share of the comparison window.
    Shrunk,
    /// (Almost) only in the reference window.
    Vanished,
}

impl RegionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RegionKind::New => "new",
            RegionKind::Grown => "grown",
            RegionKind::Shrunk => "shrunk",
            RegionKind::Vanished => "vanished",
        }
    }
}

/// One region (cluster) of the pooled points.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionFinding {
    /// Index of the cluster (0-based, in the clustering's order).
    pub cluster: usize,
    pub kind: RegionKind,
    /// Pooled points of the region in each window (reference, comparison).
    pub counts: [usize; 2],
    /// `counts` over the tested points of each window.
    pub shares: [f64; 2],
    /// Rows of the comparison window's sample least like the reference (filled for the top regions).
    pub examples: Vec<usize>,
    /// Pooled indices of the region's comparison points.
    pub(crate) members: Vec<usize>,
}

impl RegionFinding {
    /// Comparison share minus reference share.
    pub fn share_change(&self) -> f64 {
        self.shares[1] - self.shares[0]
    }
}

/// A clustering of every pooled point.
#[derive(Clone, Debug, PartialEq)]
pub struct Clustering {
    pub centres: Array2<f64>,
    pub labels: Vec<u32>,
    pub silhouette: f64,
}

/// Regions of the pooled points (`z` in pooled order, the first `n` from the reference), largest share
/// change first (on a tie, the grown one first); empty when there are too few points.
pub fn findings(z: ArrayView2<f64>, n: usize, seed: u64) -> Vec<RegionFinding> {
    let Some(clustering) = cluster(z, seed) else {
        return Vec::new();
    };
    let (total, k) = (z.nrows(), clustering.centres.nrows());
    let m = total - n.min(total);
    let mut counts = vec![[0usize; 2]; k];
    let mut members = vec![Vec::new(); k];
    for (i, &label) in clustering.labels.iter().enumerate() {
        let window = usize::from(i >= n);
        counts[label as usize][window] += 1;
        if window == 1 {
            members[label as usize].push(i);
        }
    }
    let share = |c: usize, t: usize| if t == 0 { 0.0 } else { c as f64 / t as f64 };
    let mut out: Vec<RegionFinding> = counts
        .into_iter()
        .zip(members)
        .enumerate()
        .filter(|(_, (c, _))| c[0] + c[1] > 0)
        .map(|(cluster, (counts, members))| {
            let shares = [share(counts[0], n), share(counts[1], m)];
            let kind = if shares[0] < NEW_RATIO * shares[1] {
                RegionKind::New
            } else if shares[1] < NEW_RATIO * shares[0] {
                RegionKind::Vanished
            } else if shares[1] >= shares[0] {
                RegionKind::Grown
            } else {
                RegionKind::Shrunk
            };
            RegionFinding {
                cluster,
                kind,
                counts,
                shares,
                examples: Vec::new(),
                members,
            }
        })
        .collect();
    // Largest change first; equal changes (e.g. two regions trading the same share, up to rounding):
    // the one that grew first, since a new kind of content is what a reviewer looks for.
    let change = |r: &RegionFinding| (r.share_change().abs() * 1e9).round();
    out.sort_by(|a, b| {
        change(b)
            .total_cmp(&change(a))
            .then(b.share_change().total_cmp(&a.share_change()))
            .then(a.cluster.cmp(&b.cluster))
    });
    out
}

/// Clusters the rows of `z` (k chosen by the silhouette); `None` below [`MIN_POINTS`] rows.
pub fn cluster(z: ArrayView2<f64>, seed: u64) -> Option<Clustering> {
    let total = z.nrows();
    if total < MIN_POINTS || z.ncols() == 0 {
        return None;
    }
    let mut rng = rng::named(seed, "explain-regions");
    let fit_rows = rng::subset(&mut rng, total, FIT_ROWS);
    let x = z.select(Axis(0), &fit_rows);
    let probe = rng::subset(&mut rng, x.nrows(), SILHOUETTE_ROWS);
    let probe_points = x.select(Axis(0), &probe);
    let distances = pairwise(probe_points.view());
    let base: u64 = rng.random();
    let mut best: Option<(f64, Array2<f64>)> = None;
    for k in 2..=MAX_CLUSTERS.min(x.nrows() / 2) {
        let centres = kmeans(x.view(), k, &mut rng::child(base, k as u64));
        let labels = assign(probe_points.view(), centres.view());
        let s = silhouette(&distances, &labels, k);
        if best.as_ref().is_none_or(|(b, _)| s > *b + 1e-12) {
            best = Some((s, centres));
        }
    }
    let (silhouette, centres) = best?;
    let labels = assign(z, centres.view());
    Some(Clustering {
        centres,
        labels,
        silhouette,
    })
}

/// Lloyd's algorithm from a k-means++ start; an emptied cluster restarts at the point farthest from its
/// centre.
pub fn kmeans(x: ArrayView2<f64>, k: usize, rng: &mut Rng) -> Array2<f64> {
    let mut centres = plus_plus(x, k, rng);
    let mut labels: Vec<u32> = Vec::new();
    for _ in 0..ITERATIONS {
        let next = assign(x, centres.view());
        if next == labels {
            break;
        }
        labels = next;
        let d = x.ncols();
        let mut sums = Array2::<f64>::zeros((k, d));
        let mut counts = vec![0usize; k];
        for (row, &label) in x.rows().into_iter().zip(&labels) {
            let mut s = sums.row_mut(label as usize);
            s += &row;
            counts[label as usize] += 1;
        }
        for (c, &count) in counts.iter().enumerate() {
            if count > 0 {
                let mean = &sums.row(c) / count as f64;
                centres.row_mut(c).assign(&mean);
            } else if let Some(far) = farthest(x, &centres, &labels) {
                centres.row_mut(c).assign(&x.row(far));
                labels[far] = c as u32;
            }
        }
    }
    centres
}

/// k-means++ seeding: the first centre uniformly, each next one with probability proportional to the
/// squared distance to the nearest centre chosen (uniformly when every point sits on a centre).
fn plus_plus(x: ArrayView2<f64>, k: usize, rng: &mut Rng) -> Array2<f64> {
    let (n, d) = x.dim();
    let mut centres = Array2::<f64>::zeros((k, d));
    let first = rng.random_range(0..n);
    centres.row_mut(0).assign(&x.row(first));
    let mut nearest: Vec<f64> = x.rows().into_iter().map(|r| squared(r, x.row(first))).collect();
    for c in 1..k {
        let total: f64 = nearest.iter().sum();
        let pick = if total > 0.0 && total.is_finite() {
            let target = rng.random::<f64>() * total;
            let mut acc = 0.0;
            nearest
                .iter()
                .position(|&v| {
                    acc += v;
                    acc > target
                })
                .unwrap_or(n - 1)
        } else {
            rng.random_range(0..n)
        };
        centres.row_mut(c).assign(&x.row(pick));
        for (v, r) in nearest.iter_mut().zip(x.rows()) {
            *v = v.min(squared(r, x.row(pick)));
        }
    }
    centres
}

/// The nearest centre of every row (ties: the lower index).
pub fn assign(x: ArrayView2<f64>, centres: ArrayView2<f64>) -> Vec<u32> {
    (0..x.nrows())
        .into_par_iter()
        .map(|i| {
            let row = x.row(i);
            let mut best = (f64::INFINITY, 0u32);
            for (c, centre) in centres.rows().into_iter().enumerate() {
                let d = squared(row, centre);
                if d < best.0 {
                    best = (d, c as u32);
                }
            }
            best.1
        })
        .collect()
}

/// The row farthest from its own centre.
fn farthest(x: ArrayView2<f64>, centres: &Array2<f64>, labels: &[u32]) -> Option<usize> {
    labels
        .iter()
        .enumerate()
        .map(|(i, &l)| (squared(x.row(i), centres.row(l as usize)), i))
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, i)| i)
}

fn squared(a: ArrayView1<f64>, b: ArrayView1<f64>) -> f64 {
    match (a.as_slice(), b.as_slice()) {
        (Some(a), Some(b)) => linalg::squared_distance(a, b),
        _ => a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum(),
    }
}

/// Euclidean distances between every pair of rows.
fn pairwise(x: ArrayView2<f64>) -> Array2<f64> {
    let n = x.nrows();
    let rows: Vec<Array1<f64>> = (0..n)
        .into_par_iter()
        .map(|i| Array1::from_iter((0..n).map(|j| squared(x.row(i), x.row(j)).sqrt())))
        .collect();
    let mut out = Array2::<f64>::zeros((n, n));
    for (i, r) in rows.into_iter().enumerate() {
        out.row_mut(i).assign(&r);
    }
    out
}

/// Mean silhouette of a labelling given the pairwise distances (a point alone in its cluster counts 0).
pub fn silhouette(distances: &Array2<f64>, labels: &[u32], k: usize) -> f64 {
    let n = labels.len();
    if n == 0 {
        return 0.0;
    }
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l as usize] += 1;
    }
    let total: f64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let own = labels[i] as usize;
            if sizes[own] <= 1 {
                return 0.0;
            }
            let mut sums = vec![0.0; k];
            for (j, &l) in labels.iter().enumerate() {
                sums[l as usize] += distances[[i, j]];
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            if !b.is_finite() {
                return 0.0;
            }
            let scale = a.max(b);
            if scale > 0.0 { (b - a) / scale } else { 0.0 }
        })
        .collect::<Vec<f64>>()
        .iter()
        .sum();
    total / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Points around the given centres in 2-D, `per` each, spread `sd`.
    fn blobs(centres: &[[f64; 2]], per: usize, sd: f64, seed: u64) -> Array2<f64> {
        let mut r = Rng::seed_from_u64(seed);
        Array2::from_shape_fn((centres.len() * per, 2), |(i, j)| {
            centres[i / per][j] + sd * rng::normal(&mut r)
        })
    }

    #[test]
    fn three_separated_blobs_give_three_clusters_with_their_points() {
        let x = blobs(&[[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], 200, 0.5, 1);
        let c = cluster(x.view(), 7).unwrap();
        assert_eq!(c.centres.nrows(), 3, "silhouette {}", c.silhouette);
        for blob in 0..3 {
            let labels = &c.labels[blob * 200..(blob + 1) * 200];
            assert!(labels.iter().all(|&l| l == labels[0]), "blob {blob} split");
        }
        assert!(c.silhouette > 0.8);
    }

    #[test]
    fn a_region_only_in_the_comparison_window_is_new_and_ranked_first() {
        // Reference: two blobs; comparison: the same two plus a third one.
        let reference = blobs(&[[0.0, 0.0], [8.0, 0.0]], 300, 0.6, 2);
        let comparison = blobs(&[[0.0, 0.0], [8.0, 0.0], [4.0, 9.0]], 100, 0.6, 3);
        let mut z = ndarray::concatenate(Axis(0), &[reference.view(), comparison.view()]).unwrap();
        // Make the third blob half of the comparison: drop half of its first two blobs.
        z = z.select(
            Axis(0),
            &(0..600)
                .chain(600..650)
                .chain(700..750)
                .chain(800..900)
                .collect::<Vec<_>>(),
        );
        let regions = findings(z.view(), 600, 5);
        let top = &regions[0];
        assert_eq!(top.kind, RegionKind::New);
        assert_eq!(top.counts, [0, 100]);
        assert!((top.shares[1] - 0.5).abs() < 1e-9);
        assert_eq!(top.members, (700..800).collect::<Vec<_>>());
    }

    #[test]
    fn identical_points_do_not_panic() {
        let z = Array2::<f64>::ones((50, 3));
        let regions = findings(z.view(), 25, 1);
        assert!(!regions.is_empty());
        assert!(regions.iter().all(|r| r.share_change().abs() < 1e-12));
        assert!(findings(Array2::<f64>::zeros((5, 2)).view(), 3, 1).is_empty());
    }

    #[test]
    fn of_two_regions_trading_the_same_share_the_grown_one_comes_first() {
        // Two far blobs; the second holds 0 of 40 reference and 2 of 40 comparison points: +0.05 / -0.05.
        let z = blobs(&[[0.0, 0.0], [30.0, 30.0]], 40, 0.5, 6);
        let rows: Vec<usize> = (0..40).chain(0..38).chain(40..42).collect();
        let regions = findings(z.select(Axis(0), &rows).view(), 40, 1);
        assert_eq!(regions[0].kind, RegionKind::New, "{regions:?}");
        assert_eq!(regions[0].counts, [0, 2]);
        assert_eq!(regions[1].kind, RegionKind::Shrunk);
    }

    #[test]
    fn clustering_is_the_same_on_one_and_two_threads() {
        let x = blobs(&[[0.0, 0.0], [5.0, 5.0], [9.0, 0.0], [2.0, 7.0]], 400, 1.0, 4);
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| cluster(x.view(), 3).unwrap())
        };
        assert_eq!(run(1), run(2));
    }

    #[test]
    fn the_silhouette_of_two_far_pairs_is_near_one() {
        let x = ndarray::array![[0.0, 0.0], [0.0, 0.1], [10.0, 0.0], [10.0, 0.1]];
        let s = silhouette(&pairwise(x.view()), &[0, 0, 1, 1], 2);
        assert!(s > 0.98, "{s}");
        assert_eq!(silhouette(&pairwise(x.view()), &[0, 1, 2, 3], 4), 0.0);
    }
}
