//! The KL-vs-EMD study (docs/research/kl-vs-emd.md): detection power at a fixed false-positive rate
//! across shift types, dimensions and sample sizes, and the calibration of the check's verdict.
//!
//! - `cargo bench --bench study` — the power table: every detector's own test at alpha = 0.05, the
//!   default set's calibrated verdict, and the old rule "any detector of the default set fired".
//!   `DRIFTWATCH_STUDY_REPS` (default 30) sets the seeded pairs per cell.
//! - `cargo bench --bench study -- calibration` — the family-wise false-alarm rate of the default set
//!   (verdict and old rule, with 95 % Wilson intervals) on synthetic no-drift pairs of several dimensions
//!   and sizes and on random splits of scikit-learn's digits (pixels + a classifier's confidence
//!   scores), and the power on real shifts of the digits (a new class mixed in).
//!   `DRIFTWATCH_CALIBRATION_REPS` (default 400) sets the checks per row. Needs python3 with
//!   scikit-learn (hack/test-deps.sh) to export the digits.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use driftwatch::api::v1alpha1::{DataSource, DetectorSpec, Method, Threshold};
use driftwatch::drift::{self, EngineConfig, Sample, defaults, rng};
use driftwatch::npy::NpyArray;
use ndarray::{Array1, Array2, Axis};
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
    // The original resubstitution estimator is left out: every detector of a check now computes its
    // statistic on the shared relabellings, which costs O(n m) per relabelling for it (§4 keeps its
    // numbers from before the change).
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

/// One check: (the verdict, whether any detector fired on its own).
fn check(
    specs: &[DetectorSpec],
    a: (&Array2<f32>, Option<&Array1<f32>>),
    b: (&Array2<f32>, Option<&Array1<f32>>),
    seed: u64,
) -> (bool, bool) {
    fn sample<'a>((x, s): (&'a Array2<f32>, Option<&'a Array1<f32>>)) -> Sample<'a> {
        Sample {
            embeddings: x.view(),
            scores: s.map(|s| s.view()),
        }
    }
    let config = EngineConfig {
        seed,
        ..EngineConfig::default()
    };
    match drift::run(specs, &sample(a), &sample(b), &config) {
        Ok(out) => (out.drift_detected, out.scores.iter().any(|s| s.drifted)),
        Err(e) => panic!("check failed: {e}"),
    }
}

/// 95 % Wilson score interval of k successes in n.
fn wilson(k: u64, n: u64) -> (f64, f64) {
    let (k, n, z) = (k as f64, n as f64, 1.959_964);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (centre - half, centre + half)
}

fn rate(k: u64, n: u64) -> String {
    let (lo, hi) = wilson(k, n);
    format!("{:.3} [{:.3}, {:.3}] ({k}/{n})", k as f64 / n as f64, lo, hi)
}

fn power_table(reps: u64) {
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
    let default_set = drift::default_detectors(false);
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
            println!(" default set: verdict | default set: any fired |");
            println!("|---|{}", "---|".repeat(dets.len() + 2));
            let mut cost = vec![0.0f64; dets.len() + 1];
            for &shift in &shifts {
                let mut fired = vec![0u64; dets.len() + 2];
                for rep in 0..reps {
                    let mut r = rng::Rng::seed_from_u64(rep * 7919 + m as u64 + d as u64 * 31);
                    let _: u64 = r.random();
                    let a = window(n, &loadings, Shift::None, &mut r);
                    let b = window(m, &loadings, shift, &mut r);
                    for (k, (_, spec)) in dets.iter().enumerate() {
                        let t = Instant::now();
                        let out = drift::run(
                            std::slice::from_ref(spec),
                            &Sample {
                                embeddings: a.view(),
                                scores: None,
                            },
                            &Sample {
                                embeddings: b.view(),
                                scores: None,
                            },
                            &EngineConfig {
                                seed: rep,
                                ..EngineConfig::default()
                            },
                        );
                        cost[k] += t.elapsed().as_secs_f64();
                        fired[k] += u64::from(out.map(|o| o.scores[0].drifted).unwrap_or(false));
                    }
                    let t = Instant::now();
                    let (verdict, any) = check(&default_set, (&a, None), (&b, None), rep);
                    cost[dets.len()] += t.elapsed().as_secs_f64();
                    fired[dets.len()] += u64::from(verdict);
                    fired[dets.len() + 1] += u64::from(any);
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
            println!(" (same run) |\n");
        }
    }
}

/// scikit-learn's digits exported by `scripts/reference/export_digits.py`: pixels, confidences, labels.
fn digits() -> (Array2<f32>, Array1<f32>, Array1<f32>) {
    let dir = std::env::temp_dir().join(format!("driftwatch-digits-{}", std::process::id()));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/reference/export_digits.py");
    let ok = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "exporting the digits needs python3 with scikit-learn (hack/test-deps.sh)"
    );
    let read = |name: &str| NpyArray::read_file(&dir.join(name)).expect("exported file");
    let x = read("digits.npy").into_matrix("digits").expect("matrix");
    let s = read("digits_scores.npy").into_vector("scores").expect("vector");
    let y = read("digits_labels.npy").into_vector("labels").expect("vector");
    let _ = std::fs::remove_dir_all(&dir);
    (x, s, y)
}

fn calibration(reps: u64) {
    println!("# family-wise false-alarm rate of the default set, {reps} checks per row, alpha = 0.05\n");
    println!(
        "| data | d | reference | comparison | detectors | verdict (calibrated) | any detector fired (old rule) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let embeddings_only = drift::default_detectors(false);
    for &(d, n, m) in &[
        (8usize, 200usize, 100usize),
        (64, 200, 100),
        (64, 2000, 1000),
        (384, 2000, 1000),
    ] {
        let mut lr = rng::Rng::seed_from_u64(d as u64);
        let loadings = Array2::from_shape_fn((16, d), |(i, _)| {
            (rng::normal(&mut lr) * 0.85f64.powi(i as i32)) as f32
        });
        let (mut verdicts, mut any) = (0, 0);
        for rep in 0..reps {
            let mut r = rng::Rng::seed_from_u64(rep * 104_729 + d as u64 * 7 + n as u64);
            let a = window(n, &loadings, Shift::None, &mut r);
            let b = window(m, &loadings, Shift::None, &mut r);
            let (v, f) = check(&embeddings_only, (&a, None), (&b, None), rep);
            verdicts += u64::from(v);
            any += u64::from(f);
        }
        println!(
            "| synthetic | {d} | {n} | {m} | kl, emd, mmd | {} | {} |",
            rate(verdicts, reps),
            rate(any, reps)
        );
    }
    let (x, scores, labels) = digits();
    let both = drift::default_detectors(true);
    for &(n, m) in &[(300usize, 150usize), (600, 300)] {
        let (mut verdicts, mut any) = (0, 0);
        for rep in 0..reps {
            let mut order: Vec<usize> = (0..x.nrows()).collect();
            rng::shuffle(&mut rng::Rng::seed_from_u64(rep), &mut order);
            let (r, c) = (&order[..n], &order[n..n + m]);
            let (xr, xc) = (x.select(Axis(0), r), x.select(Axis(0), c));
            let (sr, sc) = (scores.select(Axis(0), r), scores.select(Axis(0), c));
            let (v, f) = check(&both, (&xr, Some(&sr)), (&xc, Some(&sc)), rep);
            verdicts += u64::from(v);
            any += u64::from(f);
        }
        println!(
            "| digits (pixels + confidence) | 64 | {n} | {m} | kl, emd, mmd, psi, ks | {} | {} |",
            rate(verdicts, reps),
            rate(any, reps)
        );
    }

    // Power on real shifts: windows of the digits 0-8, the comparison with a share of 9s mixed in.
    let shift_reps = reps.min(100);
    println!(
        "\n# power on the digits: a new class (the 9s) mixed into the comparison, {shift_reps} checks per cell\n"
    );
    println!(
        "| reference | comparison | share of 9s | verdict (calibrated) | any detector fired (old rule) |"
    );
    println!("|---|---|---|---|---|");
    let known: Vec<usize> = (0..x.nrows()).filter(|&i| labels[i] != 9.0).collect();
    let nines: Vec<usize> = (0..x.nrows()).filter(|&i| labels[i] == 9.0).collect();
    for &(n, m) in &[(300usize, 150usize), (600, 300)] {
        for share in [0.0, 0.05, 0.10, 0.25] {
            let k = (share * m as f64).round() as usize;
            let (mut verdicts, mut any) = (0, 0);
            for rep in 0..shift_reps {
                let mut order = known.clone();
                rng::shuffle(&mut rng::Rng::seed_from_u64(rep), &mut order);
                let mut new = nines.clone();
                rng::shuffle(&mut rng::Rng::seed_from_u64(10_000 + rep), &mut new);
                let r = &order[..n];
                let mut c: Vec<usize> = order[n..n + m - k].to_vec();
                c.extend(&new[..k]);
                let (xr, xc) = (x.select(Axis(0), r), x.select(Axis(0), &c));
                let (sr, sc) = (scores.select(Axis(0), r), scores.select(Axis(0), &c));
                let (v, f) = check(&both, (&xr, Some(&sr)), (&xc, Some(&sc)), rep);
                verdicts += u64::from(v);
                any += u64::from(f);
            }
            println!(
                "| {n} | {m} | {:.0} % | {} | {} |",
                share * 100.0,
                rate(verdicts, shift_reps),
                rate(any, shift_reps)
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    if args.iter().any(|a| a == "calibration") {
        calibration(env("DRIFTWATCH_CALIBRATION_REPS", 400));
    } else {
        power_table(env("DRIFTWATCH_STUDY_REPS", 30));
    }
}
