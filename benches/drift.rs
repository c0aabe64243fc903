//! Criterion benchmarks of the drift engine on seeded synthetic windows (latent-factor embeddings).
//!
//! `cargo bench --bench drift` runs d = 384 with 10k reference vs 2k comparison per detector and the
//! default set; `DRIFTWATCH_BENCH_FULL=1` adds 100k × 768 vs 20k × 768 (≈ 370 MB of input; the
//! targets of issue 3); `DRIFTWATCH_BENCH_GRID=1` runs the default set over the whole grid
//! d ∈ {384, 768} × reference ∈ {10k, 100k} × comparison ∈ {2k, 20k} × no drift / mean shift / scale /
//! new cluster (about 10 minutes on 2 cores); `DRIFTWATCH_BENCH_EXPLAIN=1` times the explanation (slices,
//! regions, example points) against the default set at 100k × 768 vs 20k × 768 and 20k × 768 vs 20k × 768
//! (a plain timing loop: one such run takes seconds). For the side-by-side comparison with Python use
//! `scripts/reference/side_by_side.py`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use driftwatch::api::v1alpha1::{DataSource, Method, Threshold};
use driftwatch::drift::explain::{Request, SliceColumn};
use driftwatch::drift::{self, EngineConfig, Sample, defaults, rng};
use ndarray::Array2;
use rand::SeedableRng;

/// How the comparison window differs from the reference.
#[derive(Clone, Copy, Debug)]
enum Shift {
    None,
    /// The top latent factor's mean moves by 0.25 sd.
    Mean,
    /// Every latent factor scaled by 1.15.
    Scale,
    /// 10 % of the rows come from a new cluster (top factor at +3 sd).
    Cluster,
}

impl Shift {
    fn name(self) -> &'static str {
        match self {
            Shift::None => "no_drift",
            Shift::Mean => "mean_shift",
            Shift::Scale => "scale",
            Shift::Cluster => "new_cluster",
        }
    }
}

fn window(n: usize, d: usize, shift: Shift, seed: u64) -> Array2<f32> {
    let mut r = rng::Rng::seed_from_u64(seed);
    let k = 32;
    let mut lr = rng::Rng::seed_from_u64(1);
    let loadings = Array2::from_shape_fn((k, d), |(i, _)| {
        (rng::normal(&mut lr) * 0.9f64.powi(i as i32)) as f32
    });
    let mut z = Array2::from_shape_fn((n, k), |_| rng::normal(&mut r) as f32);
    match shift {
        Shift::None => {}
        Shift::Mean => z.column_mut(0).mapv_inplace(|v| v + 0.25),
        Shift::Scale => z.mapv_inplace(|v| v * 1.15),
        Shift::Cluster => z
            .column_mut(0)
            .iter_mut()
            .step_by(10)
            .for_each(|v| *v = 3.0 + 0.3 * *v),
    }
    let noise = Array2::from_shape_fn((n, d), |_| (rng::normal(&mut r) * 0.1) as f32);
    z.dot(&loadings) + noise
}

/// A window of embeddings without confidence scores.
fn embeddings(x: &Array2<f32>) -> Sample<'_> {
    Sample {
        embeddings: x.view(),
        scores: None,
    }
}

fn bench_size(c: &mut Criterion, n: usize, m: usize, d: usize) {
    let r = window(n, d, Shift::None, 11);
    let q = window(m, d, Shift::Mean, 12);
    let (rs, qs) = (embeddings(&r), embeddings(&q));
    let cfg = EngineConfig::default();
    let mut group = c.benchmark_group(format!("{n}x{d}_vs_{m}x{d}"));
    group.sample_size(10);
    let single = [
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
    for spec in single {
        group.bench_function(spec.method.as_str(), |b| {
            b.iter(|| drift::run(black_box(std::slice::from_ref(&spec)), &rs, &qs, &cfg))
        });
    }
    let all = drift::default_detectors(false);
    group.bench_function("default_set", |b| {
        b.iter(|| drift::run(black_box(&all), &rs, &qs, &cfg))
    });
    group.finish();
}

/// The default set over the grid of sizes and shift types.
fn bench_grid(c: &mut Criterion) {
    let all = drift::default_detectors(false);
    let cfg = EngineConfig::default();
    for d in [384, 768] {
        for n in [10_000, 100_000] {
            let r = window(n, d, Shift::None, 11);
            for m in [2_000, 20_000] {
                let mut group = c.benchmark_group(format!("grid_{n}x{d}_vs_{m}"));
                group.sample_size(10);
                for shift in [Shift::None, Shift::Mean, Shift::Scale, Shift::Cluster] {
                    let q = window(m, d, shift, 12);
                    let (rs, qs) = (embeddings(&r), embeddings(&q));
                    let (fired, combined) = drift::run(&all, &rs, &qs, &cfg)
                        .map(|o| (o.scores.iter().filter(|x| x.drifted).count(), o.combined_p_value))
                        .unwrap_or((0, 1.0));
                    eprintln!(
                        "{n}x{d} vs {m} {}: {fired} of {} detectors fired on their own, combined p {combined:.4}",
                        shift.name(),
                        all.len()
                    );
                    group.bench_function(shift.name(), |b| {
                        b.iter(|| drift::run(black_box(&all), &rs, &qs, &cfg))
                    });
                }
                group.finish();
            }
        }
    }
}

/// The explanation's extra time over the default set: each size run `REPEATS` times plain and explained
/// (two slice fields: 8 cameras, one of which drifts, and 3 model versions; regions; 3 examples each).
fn bench_explain() {
    const REPEATS: usize = 3;
    let all = drift::default_detectors(false);
    let cfg = EngineConfig::default();
    for (n, m) in [(100_000, 20_000), (20_000, 20_000)] {
        let d = 768;
        let r = window(n, d, Shift::None, 11);
        let mut q = window(m, d, Shift::None, 12);
        // Camera 3 of the comparison (1/8 of it) moved along the top latent direction.
        let top = window(1, d, Shift::None, 13);
        for (i, mut row) in q.rows_mut().into_iter().enumerate() {
            if i % 8 == 3 {
                row.scaled_add(0.5, &top.row(0));
            }
        }
        let camera = |i: usize| format!("camera-{}", i % 8);
        let version = |i: usize| format!("v{}", i % 3);
        let (rc, qc): (Vec<String>, Vec<String>) =
            ((0..n).map(camera).collect(), (0..m).map(camera).collect());
        let (rv, qv): (Vec<String>, Vec<String>) =
            ((0..n).map(version).collect(), (0..m).map(version).collect());
        let column = |field: &str, a: &[String], b: &[String]| {
            SliceColumn::new(
                field,
                a.iter().map(|v| Some(v.as_str())),
                b.iter().map(|v| Some(v.as_str())),
            )
        };
        let request = Request {
            slices: vec![column("camera_id", &rc, &qc), column("model_version", &rv, &qv)],
            ..Request::default()
        };
        let (rs, qs) = (embeddings(&r), embeddings(&q));
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (mut plain, mut explained, mut inside) = (Vec::new(), Vec::new(), Vec::new());
        let mut top_slice = String::new();
        for _ in 0..REPEATS {
            let started = std::time::Instant::now();
            black_box(drift::run(&all, &rs, &qs, &cfg).ok());
            plain.push(started.elapsed().as_secs_f64());
            let started = std::time::Instant::now();
            let out = drift::run_explained(&all, &rs, &qs, &cfg, Some(&request)).ok();
            explained.push(started.elapsed().as_secs_f64());
            if let Some((_, Some(e))) = out {
                inside.push(e.seconds);
                top_slice = e
                    .slices
                    .first()
                    .map(|f| format!("{}={} {}", f.field, f.value, f.status.as_str()))
                    .unwrap_or_default();
            }
        }
        let (plain, explained, inside) = (median(plain), median(explained), median(inside));
        eprintln!(
            "explain {n}x{d} vs {m}x{d}: default set {plain:.2} s, with explanation {explained:.2} s, \
             explanation alone {inside:.2} s = {:.0} % of the default set (median of {REPEATS}); top slice {top_slice}",
            100.0 * inside / plain
        );
    }
}

fn benches(c: &mut Criterion) {
    if std::env::var_os("DRIFTWATCH_BENCH_EXPLAIN").is_some() {
        bench_explain();
        return;
    }
    if std::env::var_os("DRIFTWATCH_BENCH_GRID").is_some() {
        bench_grid(c);
        return;
    }
    bench_size(c, 10_000, 2_000, 384);
    if std::env::var_os("DRIFTWATCH_BENCH_FULL").is_some() {
        bench_size(c, 100_000, 20_000, 768);
        bench_size(c, 20_000, 20_000, 768);
    }
}

criterion_group!(drift_benches, benches);
criterion_main!(drift_benches);
