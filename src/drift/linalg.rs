//! Dense linear algebra for the engine: products over rows read by index (a matrix, a subset of one, or
//! two windows pooled) with f64 accumulation, Gram–Schmidt and a Jacobi eigensolver for small symmetric
//! matrices. No I/O.
//!
//! Determinism: work is cut into fixed-size chunks that do not depend on the thread count, each chunk is
//! computed by one thread in a fixed order, and chunk results are added in chunk order. So every result
//! is bit-identical on any number of threads (`RAYON_NUM_THREADS=1` or `2`).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Slice};
use rayon::prelude::*;

use super::rng::{self, Rng};

/// Rows per parallel chunk: large enough for an efficient GEMM, small enough to balance two cores.
pub const CHUNK_ROWS: usize = 2048;
/// Rows gathered and centred per GEMM: the block (at most 256 × d f32) stays in cache.
const GATHER_ROWS: usize = 256;

/// Rows of f32 vectors read by index.
pub trait Rows: Sync {
    /// Number of rows.
    fn count(&self) -> usize;
    /// Values per row.
    fn width(&self) -> usize;
    /// Row `i` (`i < count()`).
    fn row(&self, i: usize) -> ArrayView1<'_, f32>;
}

impl Rows for ArrayView2<'_, f32> {
    fn count(&self) -> usize {
        self.nrows()
    }
    fn width(&self) -> usize {
        self.ncols()
    }
    fn row(&self, i: usize) -> ArrayView1<'_, f32> {
        self.index_axis(Axis(0), i)
    }
}

impl Rows for Array2<f32> {
    fn count(&self) -> usize {
        self.nrows()
    }
    fn width(&self) -> usize {
        self.ncols()
    }
    fn row(&self, i: usize) -> ArrayView1<'_, f32> {
        self.index_axis(Axis(0), i)
    }
}

/// The listed rows of another row source, in the listed order.
pub struct Subset<'a, R: Rows + ?Sized> {
    pub rows: &'a R,
    pub index: &'a [usize],
}

impl<R: Rows + ?Sized> Rows for Subset<'_, R> {
    fn count(&self) -> usize {
        self.index.len()
    }
    fn width(&self) -> usize {
        self.rows.width()
    }
    fn row(&self, i: usize) -> ArrayView1<'_, f32> {
        self.rows.row(self.index[i])
    }
}

/// Rows `a..b` of a view.
pub fn rows<'a, T>(x: ArrayView2<'a, T>, a: usize, b: usize) -> ArrayView2<'a, T> {
    x.slice_axis_move(Axis(0), Slice::from(a..b))
}

/// Fixed chunks `[from, to)` of `0..n`, `size` rows each (the last shorter).
fn chunks(n: usize, size: usize) -> Vec<(usize, usize)> {
    (0..n.div_ceil(size))
        .map(|c| (c * size, ((c + 1) * size).min(n)))
        .collect()
}

/// Adds the parts in order (a fixed-order reduction).
fn sum_in_order<D: ndarray::Dimension>(parts: Vec<ndarray::Array<f64, D>>) -> Option<ndarray::Array<f64, D>> {
    let mut parts = parts.into_iter();
    let mut total = parts.next()?;
    for p in parts {
        total += &p;
    }
    Some(total)
}

/// Column means in f64.
pub fn col_means<R: Rows + ?Sized>(x: &R) -> Array1<f64> {
    let (n, d) = (x.count(), x.width());
    let parts: Vec<Array1<f64>> = chunks(n, CHUNK_ROWS)
        .into_par_iter()
        .map(|(a, b)| {
            let mut acc = Array1::<f64>::zeros(d);
            for i in a..b {
                for (s, &v) in acc.iter_mut().zip(x.row(i).iter()) {
                    *s += f64::from(v);
                }
            }
            acc
        })
        .collect();
    sum_in_order(parts).unwrap_or_else(|| Array1::zeros(d)) / n.max(1) as f64
}

/// `(x - 1 mean^T) w` as `[n, l]` f32, computed chunk by chunk in parallel. Each block is centred in a
/// small working copy first, so large offsets do not cancel in f32.
pub fn project<R: Rows + ?Sized>(x: &R, mean: Option<ArrayView1<f64>>, w: ArrayView2<f32>) -> Array2<f32> {
    let mean32: Option<Array1<f32>> = mean.map(|m| m.mapv(|v| v as f32));
    let mut out = Array2::<f32>::zeros((x.count(), w.ncols()));
    out.axis_chunks_iter_mut(Axis(0), CHUNK_ROWS)
        .into_par_iter()
        .enumerate()
        .for_each(|(c, mut chunk)| {
            let mut buffer = Array2::<f32>::zeros((GATHER_ROWS.min(chunk.nrows()), x.width()));
            let base = c * CHUNK_ROWS;
            for (b, mut out_rows) in chunk.axis_chunks_iter_mut(Axis(0), GATHER_ROWS).enumerate() {
                let from = base + b * GATHER_ROWS;
                let len = out_rows.nrows();
                gather_centred(x, from, len, mean32.as_ref(), &mut buffer);
                let xc = buffer.slice_axis(Axis(0), Slice::from(..len));
                ndarray::linalg::general_mat_mul(1.0, &xc, &w, 0.0, &mut out_rows);
            }
        });
    out
}

/// `w^T x^T` as `[l, n]` f32 — one row per column of `w` — so each projection is contiguous (what the
/// sort-based 1-D distances want). Computed chunk by chunk in parallel, written in place.
pub fn project_rows<R: Rows + ?Sized>(x: &R, w: ArrayView2<f32>) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros((w.ncols(), x.count()));
    out.axis_chunks_iter_mut(Axis(1), CHUNK_ROWS)
        .into_par_iter()
        .enumerate()
        .for_each(|(c, mut block)| {
            let mut buffer = Array2::<f32>::zeros((GATHER_ROWS.min(block.ncols()), x.width()));
            let base = c * CHUNK_ROWS;
            for (b, mut out_cols) in block.axis_chunks_iter_mut(Axis(1), GATHER_ROWS).enumerate() {
                let from = base + b * GATHER_ROWS;
                let len = out_cols.ncols();
                gather_centred(x, from, len, None, &mut buffer);
                let xb = buffer.slice_axis(Axis(0), Slice::from(..len));
                ndarray::linalg::general_mat_mul(1.0, &w.t(), &xb.t(), 0.0, &mut out_cols);
            }
        });
    out
}

/// Copies rows `from..from + len` of `x` into the top of `buffer`, minus `mean`.
fn gather_centred<R: Rows + ?Sized>(
    x: &R,
    from: usize,
    len: usize,
    mean: Option<&Array1<f32>>,
    buffer: &mut Array2<f32>,
) {
    for slot in 0..len {
        let src = x.row(from + slot);
        let mut dst = buffer.row_mut(slot);
        match mean {
            Some(m) => ndarray::Zip::from(&mut dst)
                .and(&src)
                .and(m)
                .for_each(|o, &a, &c| *o = a - c),
            None => dst.assign(&src),
        }
    }
}

/// Squared Euclidean distance in f64 with eight independent accumulators (so it vectorises).
pub fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(p, q)| (p - q) * (p - q))
        .sum();
    for (pa, pb) in ca.zip(cb) {
        for ((acc, p), q) in lanes.iter_mut().zip(pa).zip(pb) {
            *acc += (p - q) * (p - q);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// [`squared_distance`] of two f32 rows, accumulated in f64 (no f64 copy of the data).
pub fn squared_distance_f32(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f64 {
    match (a.as_slice(), b.as_slice()) {
        (Some(a), Some(b)) => {
            let mut lanes = [0.0f64; 8];
            let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
            let tail: f64 = ca
                .remainder()
                .iter()
                .zip(cb.remainder())
                .map(|(&p, &q)| (f64::from(p) - f64::from(q)).powi(2))
                .sum();
            for (pa, pb) in ca.zip(cb) {
                for ((acc, &p), &q) in lanes.iter_mut().zip(pa).zip(pb) {
                    let t = f64::from(p) - f64::from(q);
                    *acc += t * t;
                }
            }
            lanes.iter().sum::<f64>() + tail
        }
        _ => a
            .iter()
            .zip(b.iter())
            .map(|(&p, &q)| (f64::from(p) - f64::from(q)).powi(2))
            .sum(),
    }
}

/// `Xc^T (Xc v)` over the rows of `x`, `Xc` centred on `mean`: the covariance operator applied to `v`
/// ([d, l]) without forming the covariance, reading each row once. f32 GEMMs per block of 256 rows, f64
/// sums across blocks (16 blocks per chunk, chunks added in order).
pub fn covariance_apply<R: Rows + ?Sized>(x: &R, mean: ArrayView1<f64>, v: ArrayView2<f64>) -> Array2<f64> {
    let (d, l) = (x.width(), v.ncols());
    let mean32 = mean.mapv(|m| m as f32);
    let v32 = v.mapv(|a| a as f32);
    let parts: Vec<Array2<f64>> = chunks(x.count(), 16 * GATHER_ROWS)
        .into_par_iter()
        .map(|(a, b)| {
            let mut acc = Array2::<f64>::zeros((d, l));
            let mut block = Array2::<f32>::zeros((GATHER_ROWS, d));
            for (from, to) in chunks(b - a, GATHER_ROWS) {
                gather_centred(x, a + from, to - from, Some(&mean32), &mut block);
                let xc = block.slice_axis(Axis(0), Slice::from(..to - from));
                let y = xc.dot(&v32);
                acc += &xc.t().dot(&y).mapv(f64::from);
            }
            acc
        })
        .collect();
    sum_in_order(parts).unwrap_or_else(|| Array2::zeros((d, l)))
}

/// The covariance `(x - mean)^T (x - mean) / (n - 1)` in f64 (for small widths).
pub fn covariance<R: Rows + ?Sized>(x: &R, mean: ArrayView1<f64>) -> Array2<f64> {
    let (n, d) = (x.count(), x.width());
    let parts: Vec<Array2<f64>> = chunks(n, CHUNK_ROWS)
        .into_par_iter()
        .map(|(a, b)| {
            let xc = Array2::from_shape_fn((b - a, d), |(i, j)| f64::from(x.row(a + i)[j]) - mean[j]);
            xc.t().dot(&xc)
        })
        .collect();
    sum_in_order(parts).unwrap_or_else(|| Array2::zeros((d, d))) / (n.saturating_sub(1).max(1)) as f64
}

/// Orthonormalises the columns in place (twice-applied modified Gram–Schmidt). A column that vanishes
/// (rank deficiency, zero variance) is replaced by a random direction orthogonal to the others.
pub fn orthonormalize(a: &mut Array2<f64>, rng: &mut Rng) {
    let (n, l) = a.dim();
    for j in 0..l {
        let mut attempts = 0;
        loop {
            let before = a.column(j).dot(&a.column(j)).sqrt();
            for _ in 0..2 {
                for i in 0..j {
                    let proj = a.column(i).dot(&a.column(j));
                    let ci = a.column(i).to_owned();
                    a.column_mut(j).scaled_add(-proj, &ci);
                }
            }
            let norm = a.column(j).dot(&a.column(j)).sqrt();
            if norm > 1e-10 * before.max(1e-300) && norm > 1e-300 && attempts < 8 {
                a.column_mut(j).mapv_inplace(|v| v / norm);
                break;
            }
            if attempts >= 8 {
                // Give up gracefully: leave a unit coordinate vector (only reachable when l > n).
                a.column_mut(j).fill(0.0);
                a[[j % n.max(1), j]] = 1.0;
                break;
            }
            for v in a.column_mut(j).iter_mut() {
                *v = rng::normal(rng);
            }
            attempts += 1;
        }
    }
}

/// Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations. Returns eigenvalues in
/// decreasing order and the matching eigenvectors as columns.
pub fn symmetric_eigen(a: &Array2<f64>) -> (Vec<f64>, Array2<f64>) {
    let n = a.nrows();
    let mut m = a.clone();
    let mut v = Array2::<f64>::eye(n);
    for _sweep in 0..100 {
        let mut off = 0.0;
        for p in 0..n {
            for q in (p + 1)..n {
                off += m[[p, q]] * m[[p, q]];
            }
        }
        let scale: f64 = m.iter().map(|x| x * x).sum::<f64>().max(1e-300);
        if off <= 1e-30 * scale {
            break;
        }
        for p in 0..n {
            for q in (p + 1)..n {
                let apq = m[[p, q]];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (m[[q, q]] - m[[p, p]]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let mkp = m[[k, p]];
                    let mkq = m[[k, q]];
                    m[[k, p]] = c * mkp - s * mkq;
                    m[[k, q]] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let mpk = m[[p, k]];
                    let mqk = m[[q, k]];
                    m[[p, k]] = c * mpk - s * mqk;
                    m[[q, k]] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let vkp = v[[k, p]];
                    let vkq = v[[k, q]];
                    v[[k, p]] = c * vkp - s * vkq;
                    v[[k, q]] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[[j, j]].total_cmp(&m[[i, i]]));
    let values = order.iter().map(|&i| m[[i, i]]).collect();
    let mut vectors = Array2::zeros((n, n));
    for (dst, &src) in order.iter().enumerate() {
        vectors.column_mut(dst).assign(&v.column(src));
    }
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::SeedableRng;

    #[test]
    fn jacobi_recovers_the_eigenvalues_of_a_known_matrix() {
        let a = array![[4.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 1.0]];
        let (vals, vecs) = symmetric_eigen(&a);
        let expect = [3.5 + 0.5 * 5f64.sqrt(), 3.5 - 0.5 * 5f64.sqrt(), 1.0];
        for (v, e) in vals.iter().zip(expect) {
            assert!((v - e).abs() < 1e-12, "{v} vs {e}");
        }
        let back = vecs.dot(&Array2::from_diag(&Array1::from(vals))).dot(&vecs.t());
        assert!((back - &a).iter().all(|x| x.abs() < 1e-10));
    }

    #[test]
    fn gram_schmidt_replaces_a_vanishing_column() {
        let mut a = array![[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]];
        orthonormalize(&mut a, &mut Rng::seed_from_u64(1));
        let g = a.t().dot(&a);
        assert!((g - Array2::<f64>::eye(2)).iter().all(|x| x.abs() < 1e-10));
    }

    #[test]
    fn chunked_products_match_the_plain_product() {
        let x = Array2::from_shape_fn((5000, 7), |(i, j)| ((i * 31 + j * 17) % 13) as f32 - 6.0);
        let w = Array2::from_shape_fn((7, 3), |(i, j)| (i as f32 - j as f32) * 0.1);
        let mean = col_means(&x.view());
        let y = project(&x.view(), Some(mean.view()), w.view());
        let xc = x.mapv(f64::from) - &mean;
        let expect = xc.dot(&w.mapv(f64::from));
        assert!((y.mapv(f64::from) - &expect).iter().all(|v| v.abs() < 1e-3));
        let t = project_rows(&x.view(), w.view());
        let expect_t = x.mapv(f64::from).dot(&w.mapv(f64::from)).reversed_axes();
        assert!((t.mapv(f64::from) - &expect_t).iter().all(|v| v.abs() < 1e-3));
        let g = covariance_apply(&x.view(), mean.view(), w.mapv(f64::from).view());
        let expect_g = xc.t().dot(&expect);
        let cov = covariance(&x.view(), mean.view());
        let expect_cov = xc.t().dot(&xc) / 4999.0;
        assert!((cov - expect_cov).iter().all(|v| v.abs() < 1e-9));
        let rel = (g - &expect_g).iter().map(|v| v.abs()).fold(0.0, f64::max)
            / expect_g.iter().map(|v| v.abs()).fold(0.0, f64::max);
        assert!(rel < 1e-5, "{rel}");
    }

    #[test]
    fn a_subset_reads_the_listed_rows_in_order() {
        let x = Array2::from_shape_fn((10, 3), |(i, j)| (i * 3 + j) as f32);
        let view = x.view();
        let s = Subset {
            rows: &view,
            index: &[7, 2],
        };
        assert_eq!(s.count(), 2);
        assert_eq!(s.row(0).to_vec(), vec![21.0, 22.0, 23.0]);
        assert_eq!(col_means(&s).to_vec(), vec![13.5, 14.5, 15.5]);
    }

    #[test]
    fn reductions_are_bit_identical_on_one_and_two_threads() {
        let x = Array2::from_shape_fn((20_000, 9), |(i, j)| {
            ((i * 7919 + j * 104_729) % 1013) as f32 * 1e-3
        });
        let v = Array2::from_shape_fn((9, 4), |(i, j)| (i + 2 * j) as f64 * 0.01);
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let m = col_means(&x.view());
                    (
                        m.clone(),
                        covariance(&x.view(), m.view()),
                        covariance_apply(&x.view(), m.view(), v.view()),
                    )
                })
        };
        assert_eq!(run(1), run(2));
    }
}
