//! The drift engine against reference values computed independently in Python
//! (`scripts/reference/make_fixtures.py` → `tests/fixtures/drift/reference.json`).
//!
//! Tolerances: 1e-6 relative for deterministic closed forms (W1, KS D, PSI, histogram KL, MMD² on the
//! same bandwidth, exact KS p-values, KDE resubstitution); 1e-3 for PCA variances and logistic-regression
//! coefficients (different solvers); 5 % for the binned grid KL against exact kernel sums integrated on a
//! fine grid (binning error), and 10 % relative (or 0.01 absolute) for the asymptotic KS p-value
//! (Kolmogorov limit with Stephens' correction vs scipy's `kstwo` at the effective size).

use driftwatch::api::v1alpha1::Bandwidth;
use driftwatch::drift::{classifier, kl, linalg, mmd, pca, univariate, wasserstein};
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use serde_json::Value;

fn fixtures() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/drift/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture file")).expect("fixture json")
}

fn vec1(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn mat(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v.as_array().expect("rows").iter().map(vec1).collect();
    let (n, d) = (rows.len(), rows.first().map_or(0, Vec::len));
    Array2::from_shape_vec((n, d), rows.concat()).expect("rectangular")
}

fn num(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn close(a: f64, b: f64, rel: f64, what: &str) {
    let tol = rel * b.abs().max(1e-12);
    assert!(
        (a - b).abs() <= tol,
        "{what}: rust {a} vs python {b} (tolerance {tol})"
    );
}

#[test]
fn one_dimensional_detectors_match_scipy_and_numpy() {
    let f = fixtures();
    for case in f["one_d"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let (a, b) = (vec1(&case["reference"]), vec1(&case["comparison"]));
        close(
            wasserstein::w1(&a, &b),
            num(&case["w1"]),
            1e-9,
            &format!("{name} w1"),
        );
        let (d, p) = univariate::ks(&a, &b);
        close(d, num(&case["ks_d"]), 1e-12, &format!("{name} ks D"));
        if case["ks_mode"] == "exact" {
            let expect = num(&case["ks_p"]);
            assert!(
                (p - expect).abs() <= 1e-6 * expect + 1e-12,
                "{name} ks p exact: {p} vs {expect}"
            );
        } else {
            let expect = num(&case["ks_p"]);
            assert!(
                (p - expect).abs() <= (0.1 * expect).max(0.01),
                "{name} ks p asymptotic: {p} vs {expect}"
            );
        }
        close(
            univariate::psi(&a, &b),
            num(&case["psi"]),
            1e-9,
            &format!("{name} psi"),
        );
        let lo = a.iter().chain(&b).copied().fold(f64::INFINITY, f64::min);
        let hi = a.iter().chain(&b).copied().fold(f64::NEG_INFINITY, f64::max);
        close(
            univariate::hist_kl(&a, &b, lo, hi),
            num(&case["hist_kl"]),
            1e-9,
            &format!("{name} hist kl"),
        );
    }
}

#[test]
fn sliced_wasserstein_matches_pot_on_the_same_directions() {
    let f = fixtures();
    for case in f["sliced"].as_array().expect("cases") {
        let x = mat(&case["x"]).mapv(|v| v as f32);
        let y = mat(&case["y"]).mapv(|v| v as f32);
        let w = mat(&case["directions"]).mapv(|v| v as f32);
        let px = linalg::project_rows(&x.view(), w.view());
        let py = linalg::project_rows(&y.view(), w.view());
        close(
            wasserstein::mean_w1(px.view(), py.view()),
            num(&case["value"]),
            1e-5,
            "sliced w1",
        );
    }
}

#[test]
fn unbiased_mmd_matches_sklearn_kernels_with_the_median_bandwidth() {
    let f = fixtures();
    for case in f["mmd"].as_array().expect("cases") {
        let x = mat(&case["x"]).mapv(|v| v as f32);
        let y = mat(&case["y"]).mapv(|v| v as f32);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let pooled = ndarray::concatenate(ndarray::Axis(0), &[x.view(), y.view()]).expect("same width");
        let sigma = mmd::median_heuristic(&pooled.view(), &mut rng);
        close(sigma, num(&case["sigma"]), 1e-9, "median heuristic");
        let labels: Vec<bool> = (0..pooled.nrows()).map(|i| i < x.nrows()).collect();
        let v = mmd::mmd2_from_kernel(&mmd::kernel_matrix(&pooled.view(), sigma), &labels);
        assert!(
            (v - num(&case["mmd2"])).abs() < 1e-9,
            "mmd2 {v} vs {}",
            case["mmd2"]
        );
    }
}

#[test]
fn kl_estimators_match_the_python_reference() {
    let f = fixtures();
    for case in f["kl"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let (r, c) = (mat(&case["reference"]), mat(&case["comparison"]));
        close(
            kl::resubstitution(Bandwidth::Scott, r.view(), c.view()),
            num(&case["resub_scott"]),
            1e-6,
            &format!("{name} resubstitution scott"),
        );
        close(
            kl::resubstitution(Bandwidth::Silverman, r.view(), c.view()),
            num(&case["resub_silverman"]),
            1e-6,
            &format!("{name} resubstitution silverman"),
        );
        let grid = kl::SharedKde::new(Bandwidth::Scott, r.view(), c.view()).kl(r.view(), c.view());
        let expect = num(&case["grid_scott"]);
        assert!(
            (grid - expect).abs() <= 0.05 * expect + 2e-3,
            "{name} grid kl: binned {grid} vs exact-kernel {expect}"
        );
    }
}

#[test]
fn pca_matches_sklearn_variances_and_scores_up_to_sign() {
    let f = fixtures();
    let case = &f["pca"];
    let x = mat(&case["x"]).mapv(|v| v as f32);
    let p = pca::Pca::fit(&x.view(), 3, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
    for (a, b) in p.variances.iter().zip(vec1(&case["variances"])) {
        close(*a, b, 1e-4, "pca variance");
    }
    let scores = p.transform(&x.view());
    let expect = mat(&case["scores"]);
    for j in 0..3 {
        let sign = if scores[[0, j]] * expect[[0, j]] < 0.0 {
            -1.0
        } else {
            1.0
        };
        for i in 0..expect.nrows() {
            assert!(
                (sign * scores[[i, j]] - expect[[i, j]]).abs()
                    < 1e-3 * expect.column(j).iter().map(|v| v.abs()).fold(1.0, f64::max),
                "score [{i}, {j}]"
            );
        }
    }
}

#[test]
fn logistic_regression_and_auc_match_scikit_learn() {
    let f = fixtures();
    let case = &f["logreg"];
    let x = mat(&case["x"]);
    let y = Array1::from(vec1(&case["y"]));
    let (w, b) = classifier::fit_logistic(x.view(), y.view(), 1.0);
    for (a, e) in w.iter().zip(vec1(&case["coef"])) {
        close(*a, e, 1e-4, "coefficient");
    }
    close(b, num(&case["intercept"]), 1e-4, "intercept");
    let dec: Vec<f64> = x.rows().into_iter().map(|r| r.dot(&w) + b).collect();
    let neg: Vec<f64> = dec
        .iter()
        .zip(y.iter())
        .filter(|(_, l)| **l == 0.0)
        .map(|(d, _)| *d)
        .collect();
    let pos: Vec<f64> = dec
        .iter()
        .zip(y.iter())
        .filter(|(_, l)| **l == 1.0)
        .map(|(d, _)| *d)
        .collect();
    close(classifier::auc(&neg, &pos), num(&case["auc"]), 1e-9, "auc");
}
