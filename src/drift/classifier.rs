//! Domain classifier: L2 logistic regression telling reference from comparison on standardized
//! principal-component scores, 5-fold stratified cross-validation, ROC AUC of the out-of-fold scores.
//! No I/O.
//!
//! Score: the AUC (0.5 = indistinguishable). p-value: one-sided Mann–Whitney normal approximation,
//! `z = (AUC - 0.5) / sqrt((n + m + 1) / (12 n m))`. The regression minimises
//! `sum log-loss + ||w||² / (2C)` with C = 1 (scikit-learn's default, intercept unpenalised) by Newton's
//! method.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

use super::defaults::Plan;
use super::rng::{self, Rng};
use super::{Verdict, decide};

/// Cross-validation folds.
pub const FOLDS: usize = 5;
/// Inverse L2 strength.
pub const C: f64 = 1.0;

/// The classifier detector on PC scores.
pub fn run(plan: &Plan, reference: ArrayView2<f64>, comparison: ArrayView2<f64>, rng: &mut Rng) -> Verdict {
    let auc = cross_validated_auc(reference, comparison, rng);
    let (n, m) = (reference.nrows() as f64, comparison.nrows() as f64);
    let sd = ((n + m + 1.0) / (12.0 * n * m)).sqrt();
    let p = normal_sf((auc - 0.5) / sd);
    decide(plan, auc, Some(p), Vec::new)
}

/// Upper tail of the standard normal.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes erfcc, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Out-of-fold AUC of a logistic regression (labels: reference 0, comparison 1).
pub fn cross_validated_auc(reference: ArrayView2<f64>, comparison: ArrayView2<f64>, rng: &mut Rng) -> f64 {
    let (n, m) = (reference.nrows(), comparison.nrows());
    let k = reference.ncols();
    // standardize with the reference's mean and sd
    let mean = reference.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(k));
    let sd: Array1<f64> = reference
        .std_axis(Axis(0), 1.0)
        .mapv(|s| if s > 1e-12 { s } else { 1.0 });
    let x = ndarray::concatenate(Axis(0), &[reference, comparison]).unwrap_or_else(|_| Array2::zeros((0, k)));
    let x = (x - &mean) / &sd;
    let y: Vec<f64> = (0..n + m).map(|i| if i < n { 0.0 } else { 1.0 }).collect();
    let mut fold = vec![0usize; n + m];
    for (start, len) in [(0, n), (n, m)] {
        let mut idx: Vec<usize> = (start..start + len).collect();
        rng::shuffle(rng, &mut idx);
        for (pos, &i) in idx.iter().enumerate() {
            fold[i] = pos % FOLDS;
        }
    }
    let folds = FOLDS.min(n.min(m)).max(2);
    let preds: Vec<Vec<(usize, f64)>> = (0..folds)
        .into_par_iter()
        .map(|f| {
            let train: Vec<usize> = (0..n + m).filter(|&i| fold[i] % folds != f).collect();
            let test: Vec<usize> = (0..n + m).filter(|&i| fold[i] % folds == f).collect();
            let xt = x.select(Axis(0), &train);
            let yt: Array1<f64> = train.iter().map(|&i| y[i]).collect();
            let (w, b) = fit_logistic(xt.view(), yt.view(), C);
            test.iter().map(|&i| (i, x.row(i).dot(&w) + b)).collect()
        })
        .collect();
    let mut scores = vec![0.0; n + m];
    for part in preds {
        for (i, s) in part {
            scores[i] = s;
        }
    }
    auc(&scores[..n], &scores[n..])
}

/// ROC AUC = P(score_comparison > score_reference) + ½ P(tie), by ranks.
pub fn auc(negatives: &[f64], positives: &[f64]) -> f64 {
    let (n, m) = (negatives.len(), positives.len());
    if n == 0 || m == 0 {
        return 0.5;
    }
    let mut all: Vec<(f64, bool)> = negatives
        .iter()
        .map(|&v| (v, false))
        .chain(positives.iter().map(|&v| (v, true)))
        .collect();
    all.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let avg = (i + j + 1) as f64 / 2.0; // ranks are 1-based
        rank_sum += all[i..j].iter().filter(|e| e.1).count() as f64 * avg;
        i = j;
    }
    (rank_sum - (m * (m + 1)) as f64 / 2.0) / (n * m) as f64
}

/// L2-penalised logistic regression by Newton's method: returns (weights, intercept).
pub fn fit_logistic(x: ArrayView2<f64>, y: ArrayView1<f64>, c: f64) -> (Array1<f64>, f64) {
    let (n, k) = x.dim();
    let p = k + 1;
    let mut beta = Array1::<f64>::zeros(p); // [w..., b]
    for _ in 0..50 {
        let mut grad = Array1::<f64>::zeros(p);
        let mut hess = Array2::<f64>::zeros((p, p));
        for i in 0..n {
            let row = x.row(i);
            let z = row.dot(&beta.slice_axis(Axis(0), ndarray::Slice::from(..k))) + beta[k];
            let mu = 1.0 / (1.0 + (-z).exp());
            let r = mu - y[i];
            let wgt = (mu * (1.0 - mu)).max(1e-12);
            for a in 0..p {
                let xa = if a < k { row[a] } else { 1.0 };
                grad[a] += r * xa;
                for b in 0..=a {
                    let xb = if b < k { row[b] } else { 1.0 };
                    hess[[a, b]] += wgt * xa * xb;
                }
            }
        }
        for a in 0..p {
            for b in 0..a {
                hess[[b, a]] = hess[[a, b]];
            }
        }
        for a in 0..k {
            grad[a] += beta[a] / c;
            hess[[a, a]] += 1.0 / c;
        }
        let step = solve(&hess, &grad);
        beta -= &step;
        if step.iter().map(|v| v.abs()).fold(0.0, f64::max) < 1e-10 {
            break;
        }
    }
    (
        beta.slice_axis(Axis(0), ndarray::Slice::from(..k)).to_owned(),
        beta[k],
    )
}

/// Solves a small symmetric positive definite system by Gaussian elimination with partial pivoting.
fn solve(a: &Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
    let n = b.len();
    let mut m = a.clone();
    let mut v = b.clone();
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| m[[i, col]].abs().total_cmp(&m[[j, col]].abs()))
            .unwrap_or(col);
        if m[[piv, col]].abs() < 1e-300 {
            continue;
        }
        for j in 0..n {
            m.swap([col, j], [piv, j]);
        }
        v.swap(col, piv);
        for i in (col + 1)..n {
            let f = m[[i, col]] / m[[col, col]];
            for j in col..n {
                m[[i, j]] -= f * m[[col, j]];
            }
            v[i] -= f * v[col];
        }
    }
    let mut out = Array1::zeros(n);
    for i in (0..n).rev() {
        let s: f64 = ((i + 1)..n).map(|j| m[[i, j]] * out[j]).sum();
        out[i] = if m[[i, i]].abs() < 1e-300 {
            0.0
        } else {
            (v[i] - s) / m[[i, i]]
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(auc(&[0.0, 1.0], &[2.0, 3.0]), 1.0);
        assert_eq!(auc(&[1.0], &[1.0]), 0.5);
        assert!((auc(&[0.0, 2.0], &[1.0, 3.0]) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn the_normal_tail_is_accurate() {
        assert!((normal_sf(1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-7);
    }
}
