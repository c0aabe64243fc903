//! The engine's working memory is bounded for every allowed spec: the largest `projections` (4096) and
//! `permutations` (10 000) stream through fixed-size blocks instead of materialising `N × projections`
//! projections or `permutations × N` relabelling masks. Measured with a counting global allocator (peak
//! bytes allocated above the input while the engine runs); one test in its own binary, so nothing else
//! allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use driftwatch::api::v1alpha1::{DataSource, Method, Threshold};
use driftwatch::drift::{self, EngineConfig, Sample, defaults, rng};
use ndarray::Array2;
use rand::SeedableRng;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grow(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::SeqCst) + bytes;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call forwards to the system allocator unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
            grow(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak bytes allocated above what was live before `f` ran.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst).saturating_sub(base))
}

fn gauss(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut r = rng::Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| rng::normal(&mut r) as f32)
}

fn run(
    specs: &[driftwatch::api::v1alpha1::DetectorSpec],
    r: &Array2<f32>,
    c: &Array2<f32>,
) -> drift::Outcome {
    let (a, b) = (
        Sample {
            embeddings: r.view(),
            scores: None,
        },
        Sample {
            embeddings: c.view(),
            scores: None,
        },
    );
    drift::run(specs, &a, &b, &EngineConfig::default()).expect("check")
}

#[test]
fn the_largest_projections_and_permutations_run_in_bounded_memory() {
    const MB: usize = 1 << 20;
    // 1. projections: 4096 on 10 000 + 10 000 points. Materialising the projections would take
    //    N × 4096 × 4 B = 313 MiB; blocks of 32 directions need N × 32 × (4 + 4 + 8) B = 10 MiB.
    let (r, c) = (gauss(10_000, 32, 1), gauss(10_000, 32, 2));
    let mut sliced = defaults::spec(Method::Emd, DataSource::Embeddings, Some(Threshold::Auto), None);
    sliced.projections = Some(4096);
    sliced.permutations = Some(20);
    let (out, peak) = peak_during(|| run(std::slice::from_ref(&sliced), &r, &c));
    eprintln!(
        "projections 4096, 20 000 points: peak {:.1} MiB above the input",
        peak as f64 / MB as f64
    );
    assert!(out.scores[0].score.is_finite());
    assert!(peak < 48 * MB, "peak {peak} bytes");

    // 2. permutations: 10 000 for the default set on 4 000 + 2 000 points (random-feature MMD). Masks
    //    of every relabelling would take 10 000 × N B = 57 MiB (plus as many index vectors); packed
    //    relabellings take ceil(10 001 / 8) × N B = 7.2 MiB; MMD features N × 256 × 4 B = 5.9 MiB.
    let (r, c) = (gauss(4_000, 16, 3), gauss(2_000, 16, 4));
    let mut specs = drift::default_detectors(false);
    for s in &mut specs {
        s.permutations = Some(10_000);
        s.components = s.components.map(|_| 1);
        if s.method == Method::Emd {
            s.projections = Some(8);
        }
    }
    let (out, peak) = peak_during(|| run(&specs, &r, &c));
    eprintln!(
        "permutations 10 000, 6 000 points: peak {:.1} MiB above the input",
        peak as f64 / MB as f64
    );
    assert!(out.combined_p_value > 0.0);
    assert!(peak < 40 * MB, "peak {peak} bytes");
}
