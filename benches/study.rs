//! The KL-vs-EMD study (docs/research/kl-vs-emd.md): detection power at a fixed false-positive rate
//! (every detector's own calibrated test at alpha = 0.05) across shift types, dimensions and sample sizes,
//! plus cost. One command: `cargo bench --bench study` (prints the markdown tables).
//! `DRIFTWATCH_STUDY_REPS` (default 30) sets the replicate pairs per cell.

use std::time::Instant;

use driftwatch::api::v1alpha1::{DataSource, DetectorSpec, Method, Threshold};
use driftwatch::drift::{self, EngineConfig, Sample, defaults, rng};
use ndarray::Array2;
use rand::{Rng as _, SeedableRng};

#[derive(Clone, Copy)]
enum Shift {
    None,
    MeanTop,
    MeanLow,
    Scale,
    Cluster(f64),
}

impl Shift {
    fn name(self) -> String {
        match self {
            Shift::None => "none (FPR)".into(),
            Shift::MeanTop => "mean, top factor +0.2".into(),
            Shift::MeanLow => "mean, 9th factor +0.5".into(),
            Shift::Scale => "scale, top 4 factors x1.15".into(),
            Shift::Cluster(f) => format!("new cluster {:.0}%", f * 100.0),
        }
    }
}

/// 16 latent factors with decaying loadings + isotropic noise; `loadings` fixed per dimension.
fn window(n: usize, loadings: &Array2<f32>, shift: Shift, r: &mut rng::Rng) -> Array2<f32> {
    let (k, d) = loadings.dim();
    let mut z = Array2::from_shape_fn((n, k), |_| rng::normal(r) as f32);
    match shift {
        Shift::MeanTop => z.column_mut(0).mapv_inplace(|v| v + 0.2),
        Shift::MeanLow => z.column_mut(8).mapv_inplace(|v| v + 0.5),
        Shift::Scale => {
            for j in 0..4 {
                z.column_mut(j).mapv_inplace(|v| v * 1.15);
            }
        }
        Shift::None | Shift::Cluster(_) => {}
    }
    let mut x = z.dot(loadings) + Array2::from_shape_fn((n, d), |_| (rng::normal(r) * 0.3) as f32);
    if let Shift::Cluster(f) = shift {
        let m = (f * n as f64).round() as usize;
        let center: Vec<f32> = (0..d).map(|_| (rng::normal(r) * 0.3) as f32).collect();
        for i in 0..m {
            for j in 0..d {
                x[[i, j]] = center[j] + (rng::normal(r) * 0.3) as f32;
            }
        }
    }
    x
}

fn detectors() -> Vec<(String, DetectorSpec)> {
    let mut per_pc = defaults::spec(Method::Emd, DataSource::Embeddings, Some(Threshold::Auto), None);
    per_pc.components = Some(5);
    let mut resub = defaults::spec(
        Method::KlDivergence,
        DataSource::Embeddings,
        Some(Threshold::Value(0.1)),
        None,
    );
    resub.estimator = Some(driftwatch::api::v1alpha1::KlEstimator::Resubstitution);
    let fixed = defaults::spec(
        Method::KlDivergence,
        DataSource::Embeddings,
        Some(Threshold::Value(0.1)),
        None,
    );
    vec![
        (
            "kl grid (auto)".into(),
            defaults::spec(
                Method::KlDivergence,
                DataSource::Embeddings,
                Some(Threshold::Auto),
                None,
            ),
        ),
        ("kl grid > 0.1".into(), fixed),
        ("kl resub > 0.1".into(), resub),
        (
            "emd sliced (auto)".into(),
            defaults::spec(Method::Emd, DataSource::Embeddings, Some(Threshold::Auto), None),
        ),
        ("emd per-PC k=5 (auto)".into(), per_pc),
        (
            "mmd (p<0.05)".into(),
            defaults::spec(Method::Mmd, DataSource::Embeddings, None, Some(0.05)),
        ),
        (
            "ks k=5 (p<0.05)".into(),
            defaults::spec(Method::Ks, DataSource::Embeddings, None, Some(0.05)),
        ),
        (
            "classifier (p<0.05)".into(),
            defaults::spec(Method::Classifier, DataSource::Embeddings, None, Some(0.05)),
        ),
    ]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let reps: u64 = std::env::var("DRIFTWATCH_STUDY_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let shifts = [
        Shift::None,
        Shift::MeanTop,
        Shift::MeanLow,
        Shift::Scale,
        Shift::Cluster(0.05),
        Shift::Cluster(0.10),
        Shift::Cluster(0.25),
    ];
    let dets = detectors();
    println!("# power at alpha = 0.05, {reps} seeded pairs per cell (reference = 2 x comparison)\n");
    for &d in &[64usize, 384] {
        let mut lr = rng::Rng::seed_from_u64(d as u64);
        let loadings = Array2::from_shape_fn((16, d), |(i, _)| {
            (rng::normal(&mut lr) * 0.85f64.powi(i as i32)) as f32
        });
        for &m in &[100usize, 1000] {
            let n = 2 * m;
            println!("## d = {d}, reference {n}, comparison {m}\n");
            print!("| shift |");
            for (name, _) in &dets {
                print!(" {name} |");
            }
            println!();
            println!("|---|{}", "---|".repeat(dets.len()));
            let mut cost = vec![0.0f64; dets.len()];
            for &shift in &shifts {
                let mut fired = vec![0u64; dets.len()];
                for rep in 0..reps {
                    let mut r = rng::Rng::seed_from_u64(rep * 7919 + m as u64 + d as u64 * 31);
                    let _: u64 = r.random();
                    let a = window(n, &loadings, Shift::None, &mut r);
                    let b = window(m, &loadings, shift, &mut r);
                    let (sa, sb) = (
                        Sample {
                            embeddings: a.view(),
                            scores: None,
                        },
                        Sample {
                            embeddings: b.view(),
                            scores: None,
                        },
                    );
                    for (k, (_, spec)) in dets.iter().enumerate() {
                        let t = Instant::now();
                        let out = drift::run(
                            std::slice::from_ref(spec),
                            &sa,
                            &sb,
                            &EngineConfig {
                                seed: rep,
                                min_samples: 50,
                            },
                        );
                        cost[k] += t.elapsed().as_secs_f64();
                        fired[k] += u64::from(out.map(|o| o[0].drifted).unwrap_or(false));
                    }
                }
                print!("| {} |", shift.name());
                for f in &fired {
                    print!(" {:.2} |", *f as f64 / reps as f64);
                }
                println!();
            }
            print!("| mean seconds per check |");
            for c in &cost {
                print!(" {:.4} |", c / (reps as f64 * shifts.len() as f64));
            }
            println!("\n");
        }
    }
}
