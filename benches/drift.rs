//! Criterion benchmarks of the drift engine on seeded synthetic windows (latent-factor embeddings).
//!
//! `cargo bench --bench drift` runs d = 384 with 10k reference vs 2k comparison per detector and the
//! default set; `DRIFTWATCH_BENCH_FULL=1` adds 100k × 768 vs 20k × 768 (≈ 370 MB of input; the
//! targets of issue 3). For the side-by-side comparison with Python use
//! `scripts/reference/side_by_side.py`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use driftwatch::api::v1alpha1::{DataSource, Method, Threshold};
use driftwatch::drift::{self, EngineConfig, Sample, defaults, rng};
use ndarray::Array2;
use rand::SeedableRng;

fn window(n: usize, d: usize, shift: f32, seed: u64) -> Array2<f32> {
    let mut r = rng::Rng::seed_from_u64(seed);
    let k = 32;
    let mut lr = rng::Rng::seed_from_u64(1);
    let loadings = Array2::from_shape_fn((k, d), |(i, _)| {
        (rng::normal(&mut lr) * 0.9f64.powi(i as i32)) as f32
    });
    let mut z = Array2::from_shape_fn((n, k), |_| rng::normal(&mut r) as f32);
    z.column_mut(0).mapv_inplace(|v| v + shift);
    let noise = Array2::from_shape_fn((n, d), |_| (rng::normal(&mut r) * 0.1) as f32);
    z.dot(&loadings) + noise
}

fn bench_size(c: &mut Criterion, n: usize, m: usize, d: usize) {
    let r = window(n, d, 0.0, 11);
    let q = window(m, d, 0.25, 12);
    let (rs, qs) = (
        Sample {
            embeddings: r.view(),
            scores: None,
        },
        Sample {
            embeddings: q.view(),
            scores: None,
        },
    );
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

fn benches(c: &mut Criterion) {
    bench_size(c, 10_000, 2_000, 384);
    if std::env::var_os("DRIFTWATCH_BENCH_FULL").is_some() {
        bench_size(c, 100_000, 20_000, 768);
        bench_size(c, 20_000, 20_000, 768);
    }
}

criterion_group!(drift_benches, benches);
criterion_main!(drift_benches);
