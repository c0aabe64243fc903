//! The drift engine through its public interface: degenerate input, determinism across seeds and thread
//! counts, decisions, and the calibration of each detector's permutation test (p-values uniform on
//! seeded no-drift pairs). The calibration of the check's verdict is in `drift_calibration.rs`.

use driftwatch::api::v1alpha1::{DataSource, DetectorSpec, Method, Threshold};
use driftwatch::drift::{self, DriftError, EngineConfig, Sample, defaults};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn gauss(n: usize, d: usize, shift: f32, seed: u64) -> Array2<f32> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |(_, j)| {
        let u: f64 = r.random::<f64>().max(1e-300);
        let v: f64 = r.random();
        let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        (z / (1.0 + j as f64 * 0.3)) as f32 + if j == 0 { shift } else { 0.0 }
    })
}

fn sample(x: &Array2<f32>) -> Sample<'_> {
    Sample {
        embeddings: x.view(),
        scores: None,
    }
}

fn all_embedding_detectors() -> Vec<DetectorSpec> {
    let mut v = vec![
        defaults::spec(
            Method::KlDivergence,
            DataSource::Embeddings,
            Some(Threshold::Auto),
            None,
        ),
        defaults::spec(Method::Emd, DataSource::Embeddings, Some(Threshold::Auto), None),
        defaults::spec(Method::Mmd, DataSource::Embeddings, None, Some(0.05)),
        defaults::spec(Method::Ks, DataSource::Embeddings, None, Some(0.05)),
        defaults::spec(Method::Classifier, DataSource::Embeddings, None, Some(0.05)),
        defaults::spec(
            Method::KlDivergence,
            DataSource::Embeddings,
            Some(Threshold::Value(0.1)),
            None,
        ),
    ];
    let mut per_pc = defaults::spec(Method::Emd, DataSource::Embeddings, Some(Threshold::Auto), None);
    per_pc.components = Some(3);
    v.push(per_pc);
    let mut resub = defaults::spec(
        Method::KlDivergence,
        DataSource::Embeddings,
        Some(Threshold::Value(0.1)),
        None,
    );
    resub.estimator = Some(driftwatch::api::v1alpha1::KlEstimator::Resubstitution);
    v.push(resub);
    v
}

#[test]
fn default_detectors_always_include_kl_on_embeddings_and_add_score_detectors_when_there_are_scores() {
    let without = drift::default_detectors(false);
    assert!(
        without
            .iter()
            .any(|d| d.method == Method::KlDivergence && d.source == DataSource::Embeddings)
    );
    assert!(without.iter().all(|d| d.source == DataSource::Embeddings));
    let with = drift::default_detectors(true);
    assert!(with.iter().any(|d| d.source == DataSource::ConfidenceScores));
    assert_eq!(
        EngineConfig::default(),
        EngineConfig {
            seed: 42,
            min_samples: 50,
            alpha: 0.05,
        }
    );
}

#[test]
fn a_clear_mean_shift_fires_every_embedding_detector() {
    let r = gauss(600, 24, 0.0, 1);
    let c = gauss(300, 24, 1.0, 2);
    let out = drift::run(
        &all_embedding_detectors(),
        &sample(&r),
        &sample(&c),
        &EngineConfig::default(),
    )
    .unwrap();
    for o in &out.scores {
        assert!(o.drifted, "{:?} did not fire: {o:?}", o.method);
        assert_eq!((o.n_reference, o.n_comparison), (600, 300));
        assert!(o.score.is_finite());
        assert!(o.adjusted_p_value.is_some_and(|p| p < 0.05), "{o:?}");
    }
    assert!(out.drift_detected && out.combined_p_value < 0.05, "{out:?}");
    assert_eq!(out.scores[0].method, Method::KlDivergence);
    let json = serde_json::to_value(&out).unwrap();
    assert!(json.get("combinedPValue").is_some());
    assert!(json["scores"][0].get("pValue").is_some() && json["scores"][0].get("nReference").is_some());
}

/// Score, p-value, threshold and adjusted p-value of one detector, as bits.
type Bits = (u64, Option<u64>, Option<u64>, Option<u64>);

/// Every detector's statistics, p-values and thresholds, as bits.
fn fingerprint(out: &drift::Outcome) -> Vec<Bits> {
    let mut v: Vec<_> = out
        .scores
        .iter()
        .map(|o| {
            (
                o.score.to_bits(),
                o.p_value.map(f64::to_bits),
                o.threshold.map(f64::to_bits),
                o.adjusted_p_value.map(f64::to_bits),
            )
        })
        .collect();
    v.push((out.combined_p_value.to_bits(), None, None, None));
    v
}

#[test]
fn the_same_inputs_and_seed_give_bit_identical_results_on_one_and_two_threads() {
    // Wide enough (d = 80 > 64) for the randomized PCA, big enough for random-feature MMD (> 2000 pooled
    // points): every parallel reduction of the engine is exercised.
    let r = gauss(2400, 80, 0.0, 3);
    let c = gauss(1200, 80, 0.05, 4);
    let mut specs = all_embedding_detectors();
    for s in &mut specs {
        s.permutations = Some(40);
    }
    // The resubstitution KL costs O(n m) per relabelling; it is covered at small sizes below.
    specs.retain(|s| s.estimator.is_none());
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                drift::run(
                    &specs,
                    &sample(&r),
                    &sample(&c),
                    &EngineConfig {
                        seed: 9,
                        ..EngineConfig::default()
                    },
                )
                .unwrap()
            })
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(fingerprint(&one), fingerprint(&two));
    let small_r = gauss(300, 16, 0.0, 3);
    let small_c = gauss(200, 16, 0.2, 4);
    let small = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                drift::run(
                    &all_embedding_detectors(),
                    &sample(&small_r),
                    &sample(&small_c),
                    &EngineConfig::default(),
                )
                .unwrap()
            })
    };
    assert_eq!(fingerprint(&small(1)), fingerprint(&small(2)));
}

#[test]
fn every_randomized_detector_follows_the_engine_seed() {
    // A different seed draws different relabellings, directions, frequencies and subsamples: every
    // permutation p-value (or threshold) moves, while the scores of deterministic statistics stay put.
    let r = gauss(300, 16, 0.0, 3);
    let c = gauss(200, 16, 0.1, 4);
    let run = |seed| {
        drift::run(
            &all_embedding_detectors(),
            &sample(&r),
            &sample(&c),
            &EngineConfig {
                seed,
                ..EngineConfig::default()
            },
        )
        .unwrap()
    };
    let (a, b) = (run(1), run(2));
    for (x, y) in a.scores.iter().zip(&b.scores) {
        let moved = x.p_value != y.p_value || x.threshold != y.threshold || x.score != y.score;
        let analytic = x.method == Method::Ks;
        assert!(moved || analytic, "{:?} ignores the seed: {x:?}", x.method);
    }
    assert_ne!(a.combined_p_value, b.combined_p_value);
}

#[test]
fn degenerate_windows_give_named_errors_instead_of_panics() {
    let d = drift::default_detectors(false);
    let cfg = EngineConfig::default();
    let ok = gauss(100, 8, 0.0, 5);
    let empty = Array2::<f32>::zeros((0, 8));
    let err = drift::run(&d, &sample(&empty), &sample(&ok), &cfg).unwrap_err();
    assert_eq!(err.kind(), "EmptyWindow");
    let small = gauss(10, 8, 0.0, 6);
    assert_eq!(
        drift::run(&d, &sample(&ok), &sample(&small), &cfg)
            .unwrap_err()
            .kind(),
        "InsufficientData"
    );
    let wide = gauss(100, 9, 0.0, 7);
    assert_eq!(
        drift::run(&d, &sample(&ok), &sample(&wide), &cfg)
            .unwrap_err()
            .kind(),
        "DimensionMismatch"
    );
    let mut bad = ok.clone();
    bad[[42, 3]] = f32::NAN;
    let err = drift::run(&d, &sample(&ok), &sample(&bad), &cfg).unwrap_err();
    assert!(
        matches!(err, DriftError::InvalidVector { index: 42, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("row 42"));
    let scores = drift::default_detectors(true);
    assert_eq!(
        drift::run(&scores, &sample(&ok), &sample(&ok), &cfg)
            .unwrap_err()
            .kind(),
        "MissingScores"
    );
    let mut bad_spec = defaults::spec(Method::Psi, DataSource::Embeddings, None, None);
    bad_spec.threshold = Some(Threshold::Value(0.2));
    assert_eq!(
        drift::run(&[bad_spec], &sample(&ok), &sample(&ok), &cfg)
            .unwrap_err()
            .kind(),
        "InvalidSpec"
    );
}

#[test]
fn constant_and_duplicated_windows_give_finite_scores() {
    let cfg = EngineConfig::default();
    let constant = Array2::<f32>::from_elem((80, 6), 0.5);
    let out = drift::run(
        &all_embedding_detectors(),
        &sample(&constant),
        &sample(&constant),
        &cfg,
    )
    .unwrap();
    for o in &out.scores {
        assert!(o.score.is_finite(), "{o:?}");
        assert!(!o.drifted, "identical constant windows fired {o:?}");
    }
    assert!(!out.drift_detected && out.combined_p_value == 1.0, "{out:?}");
    let other = Array2::<f32>::from_elem((80, 6), 2.0);
    let out = drift::run(
        &all_embedding_detectors(),
        &sample(&constant),
        &sample(&other),
        &cfg,
    )
    .unwrap();
    assert!(out.scores.iter().all(|o| o.score.is_finite()));
    assert!(out.scores.iter().any(|o| o.drifted));
    assert!(out.drift_detected);
}

#[test]
fn confidence_score_detectors_fire_on_a_shift_and_not_on_the_same_distribution() {
    let r = Array1::from_iter((0..1000).map(|i| ((i * 7919) % 1000) as f32 / 1000.0));
    let same = Array1::from_iter((0..400).map(|i| ((i * 104_729) % 400) as f32 / 400.0));
    let shifted = same.mapv(|v| (v * 0.6).min(1.0));
    let e = Array2::<f32>::zeros((0, 0));
    let mut specs: Vec<DetectorSpec> = drift::default_detectors(true)
        .into_iter()
        .filter(|d| d.source == DataSource::ConfidenceScores)
        .collect();
    specs.push(defaults::spec(
        Method::Emd,
        DataSource::ConfidenceScores,
        Some(Threshold::Auto),
        None,
    ));
    specs.push(defaults::spec(
        Method::KlDivergence,
        DataSource::ConfidenceScores,
        Some(Threshold::Auto),
        None,
    ));
    let run = |c: &Array1<f32>| {
        drift::run(
            &specs,
            &Sample {
                embeddings: e.view(),
                scores: Some(r.view()),
            },
            &Sample {
                embeddings: e.view(),
                scores: Some(c.view()),
            },
            &EngineConfig::default(),
        )
        .unwrap()
    };
    let shifted = run(&shifted);
    assert!(
        shifted.scores.iter().all(|o| o.drifted) && shifted.drift_detected,
        "{shifted:?}"
    );
    let same = run(&same);
    assert!(
        same.scores.iter().all(|o| !o.drifted) && !same.drift_detected,
        "{same:?}"
    );
}

#[test]
fn the_summary_has_two_component_histograms_with_every_point() {
    let r = gauss(500, 10, 0.0, 8);
    let c = gauss(200, 10, 0.5, 9);
    let s = drift::summarize(r.view(), c.view(), 20, 42);
    assert_eq!(s.components.len(), 2);
    for h in &s.components {
        assert_eq!(h.reference.iter().sum::<u32>(), 500);
        assert_eq!(h.comparison.iter().sum::<u32>(), 200);
        assert_eq!(h.reference.len(), 20);
    }
    assert!(
        drift::summarize(r.view(), gauss(5, 3, 0.0, 1).view(), 20, 42)
            .components
            .is_empty()
    );
}

/// Each detector's p-value over seeded no-drift pairs. A valid test is below alpha at most alpha of the
/// time; an exact permutation test is (discretely) uniform, so it is also below 0.5 about half the time —
/// which catches a test that never fires, or a p-value stuck at 1. With R = 120 pairs the bounds hold with
/// probability > 0.999 for a calibrated test: #{p < 0.05} <= 14 and 40 <= #{p <= 0.5} <= 80. The
/// per-component KS decides on Bonferroni-corrected analytic p-values, conservative by design: it gets
/// the upper bound only.
#[test]
fn every_detector_s_p_values_are_calibrated_on_no_drift_pairs() {
    let mut specs = vec![
        defaults::spec(
            Method::KlDivergence,
            DataSource::Embeddings,
            Some(Threshold::Auto),
            None,
        ),
        defaults::spec(Method::Emd, DataSource::Embeddings, Some(Threshold::Auto), None),
        defaults::spec(Method::Mmd, DataSource::Embeddings, None, Some(0.05)),
        defaults::spec(Method::Ks, DataSource::Embeddings, None, Some(0.05)),
        defaults::spec(Method::Classifier, DataSource::Embeddings, None, Some(0.05)),
    ];
    let mut per_pc = defaults::spec(Method::Emd, DataSource::Embeddings, Some(Threshold::Auto), None);
    per_pc.components = Some(3);
    specs.push(per_pc);
    for s in &mut specs {
        s.permutations = Some(59);
        if s.method == Method::Emd {
            s.projections = Some(16);
        }
    }
    let pairs = 120u64;
    let mut below_alpha = vec![0usize; specs.len()];
    let mut below_half = vec![0usize; specs.len()];
    for i in 0..pairs {
        let r = gauss(120, 8, 0.0, 1000 + i);
        let c = gauss(60, 8, 0.0, 5000 + i);
        let out = drift::run(
            &specs,
            &sample(&r),
            &sample(&c),
            &EngineConfig {
                seed: i,
                ..EngineConfig::default()
            },
        )
        .unwrap();
        for (k, o) in out.scores.iter().enumerate() {
            let p = o.p_value.expect("every detector here reports a p-value");
            below_alpha[k] += usize::from(o.drifted);
            assert_eq!(o.drifted, p < 0.05, "{o:?}");
            below_half[k] += usize::from(p <= 0.5);
        }
    }
    for ((s, a), h) in specs.iter().zip(&below_alpha).zip(&below_half) {
        eprintln!("{} p < 0.05: {a} / {pairs}, p <= 0.5: {h} / {pairs}", s.method);
        assert!(*a <= 14, "{} fired on {a} of {pairs} no-drift pairs", s.method);
        if s.method != Method::Ks {
            assert!(
                (40..=80).contains(h),
                "{}: p <= 0.5 in {h} of {pairs} pairs",
                s.method
            );
        }
    }
}
