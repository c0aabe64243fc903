//! The check's verdict holds its family-wise false-alarm rate: on windows drawn from one distribution,
//! the default detector set reports drift in at most alpha of the checks (up to binomial noise), on
//! synthetic data of several dimensions and sizes and on real data shipped with scikit-learn (the
//! handwritten digits, pixel vectors plus a classifier's confidence scores, split at random).
//!
//! Each check's combined p-value does not depend on alpha, so one run tests several levels. A level-a
//! verdict fires in at most a of the checks; the bounds below are the 0.999 quantiles of Binomial(R, a),
//! so a calibrated verdict fails a bound with probability < 0.001 per level. A lower bound on
//! #{p <= 0.5} catches a verdict that never fires. The heavier runs (more checks, the study's shifts)
//! are in `cargo bench --bench study -- calibration` (docs/research/kl-vs-emd.md §3).

use std::path::PathBuf;
use std::process::Command;

use driftwatch::drift::{self, EngineConfig, Sample, rng};
use driftwatch::npy::NpyArray;
use ndarray::{Array1, Array2, Axis};
use rand::SeedableRng;

/// Smallest c with P(Binomial(r, p) > c) < tail.
fn binomial_upper(r: u64, p: f64, tail: f64) -> u64 {
    let mut pmf = (1.0 - p).powi(r as i32);
    let mut cdf = pmf;
    let mut c = 0;
    while 1.0 - cdf >= tail && c < r {
        pmf *= (r - c) as f64 / (c + 1) as f64 * p / (1.0 - p);
        cdf += pmf;
        c += 1;
    }
    c
}

/// Checks the combined p-values of no-drift checks at several levels.
fn assert_calibrated(what: &str, combined: &[f64], any_fired: usize) {
    let r = combined.len() as u64;
    for a in [0.05, 0.1, 0.2] {
        let fired = combined.iter().filter(|&&p| p < a).count() as u64;
        let bound = binomial_upper(r, a, 0.001);
        eprintln!("{what}: verdict at alpha {a}: {fired} / {r} checks (bound {bound})");
        assert!(
            fired <= bound,
            "{what}: the level-{a} verdict fired on {fired} of {r} no-drift checks (bound {bound})"
        );
    }
    let half = combined.iter().filter(|&&p| p <= 0.5).count() as u64;
    eprintln!("{what}: combined p <= 0.5 in {half} / {r}; any detector fired on its own: {any_fired} / {r}");
    assert!(
        half * 10 >= r * 3,
        "{what}: combined p <= 0.5 in only {half} of {r} checks: the verdict is dead"
    );
}

fn sample<'a>(x: &'a Array2<f32>, s: Option<&'a Array1<f32>>) -> Sample<'a> {
    Sample {
        embeddings: x.view(),
        scores: s.map(|s| s.view()),
    }
}

#[test]
fn the_default_set_holds_its_family_wise_rate_on_synthetic_no_drift_windows() {
    // (dimension, reference rows, comparison rows, checks): correlated Gaussian factors plus noise.
    let setups = [
        (8usize, 120usize, 60usize, 90u64),
        (64, 200, 100, 60),
        (24, 400, 400, 50),
    ];
    let detectors = drift::default_detectors(false);
    let mut combined = Vec::new();
    let mut any = 0;
    for (d, n, m, checks) in setups {
        let mut lr = rng::Rng::seed_from_u64(d as u64);
        let loadings = Array2::from_shape_fn((6, d), |(i, _)| {
            (rng::normal(&mut lr) * 0.8f64.powi(i as i32)) as f32
        });
        for i in 0..checks {
            let mut r = rng::Rng::seed_from_u64(10_000 * d as u64 + i);
            let mut window = |rows: usize| {
                let z = Array2::from_shape_fn((rows, 6), |_| rng::normal(&mut r) as f32);
                z.dot(&loadings) + Array2::from_shape_fn((rows, d), |_| (rng::normal(&mut r) * 0.5) as f32)
            };
            let (a, b) = (window(n), window(m));
            let out = drift::run(
                &detectors,
                &sample(&a, None),
                &sample(&b, None),
                &EngineConfig {
                    seed: i,
                    ..EngineConfig::default()
                },
            )
            .expect("no-drift check");
            assert_eq!(out.drift_detected, out.combined_p_value < 0.05);
            any += usize::from(out.scores.iter().any(|s| s.drifted));
            combined.push(out.combined_p_value);
        }
    }
    assert_calibrated("synthetic", &combined, any);
}

/// scikit-learn's digits written by `scripts/reference/export_digits.py` (scikit-learn is installed by
/// hack/test-deps.sh).
fn digits() -> (Array2<f32>, Array1<f32>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/reference/export_digits.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .output()
        .expect("python3 runs (install the test dependencies with hack/test-deps.sh)");
    assert!(
        out.status.success(),
        "exporting scikit-learn's digits failed (install scikit-learn with hack/test-deps.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let x = NpyArray::read_file(&dir.path().join("digits.npy"))
        .expect("digits.npy")
        .into_matrix("digits")
        .expect("a matrix");
    let s = NpyArray::read_file(&dir.path().join("digits_scores.npy"))
        .expect("digits_scores.npy")
        .into_vector("scores")
        .expect("a vector");
    (x, s)
}

#[test]
fn the_default_set_holds_its_family_wise_rate_on_random_splits_of_real_digits() {
    let (x, scores) = digits();
    assert_eq!((x.nrows(), x.ncols(), scores.len()), (1197, 64, 1197));
    // Both sources: kl, emd, mmd on the pixel vectors and psi, ks on the confidence scores, one family.
    let detectors = drift::default_detectors(true);
    assert_eq!(detectors.len(), 5);
    let checks = 150u64;
    let mut combined = Vec::new();
    let mut any = 0;
    for i in 0..checks {
        let rows = rng::subset(&mut rng::Rng::seed_from_u64(i), x.nrows(), 450);
        let mut order = rows.clone();
        rng::shuffle(&mut rng::Rng::seed_from_u64(1_000 + i), &mut order);
        let (r, c) = order.split_at(300);
        let (xr, xc) = (x.select(Axis(0), r), x.select(Axis(0), c));
        let (sr, sc) = (scores.select(Axis(0), r), scores.select(Axis(0), c));
        let out = drift::run(
            &detectors,
            &sample(&xr, Some(&sr)),
            &sample(&xc, Some(&sc)),
            &EngineConfig {
                seed: i,
                ..EngineConfig::default()
            },
        )
        .expect("no-drift check");
        any += usize::from(out.scores.iter().any(|s| s.drifted));
        combined.push(out.combined_p_value);
    }
    assert_calibrated("digits", &combined, any);
}

#[test]
fn the_verdict_catches_a_real_shift_in_the_digits() {
    // Comparison windows with 30 % of one digit class added: every check must see it.
    let (x, _) = digits();
    let dir = tempfile::tempdir().expect("temp dir");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/reference/export_digits.py");
    let ok = Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .status()
        .expect("python3");
    assert!(ok.success());
    let labels = NpyArray::read_file(&dir.path().join("digits_labels.npy"))
        .expect("labels")
        .into_vector("labels")
        .expect("a vector");
    let zeros: Vec<usize> = (0..x.nrows()).filter(|&i| labels[i] == 0.0).collect();
    let others: Vec<usize> = (0..x.nrows()).filter(|&i| labels[i] != 0.0).collect();
    for i in 0..5u64 {
        let mut pick = others.clone();
        rng::shuffle(&mut rng::Rng::seed_from_u64(i), &mut pick);
        let reference: Vec<usize> = pick[..300].to_vec();
        let mut comparison: Vec<usize> = pick[300..405].to_vec();
        comparison.extend(&zeros[..45]);
        let (xr, xc) = (x.select(Axis(0), &reference), x.select(Axis(0), &comparison));
        let out = drift::run(
            &drift::default_detectors(false),
            &sample(&xr, None),
            &sample(&xc, None),
            &EngineConfig {
                seed: i,
                ..EngineConfig::default()
            },
        )
        .expect("check");
        assert!(out.drift_detected, "missed a 30 % new-class shift: {out:?}");
    }
}
