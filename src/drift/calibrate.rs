//! From statistics on relabellings to p-values, thresholds and the check's verdict. No I/O.
//!
//! - A detector's permutation p-value: `#{i : T_i >= T_0} / (B + 1)` over the observed split (index 0)
//!   and B relabellings — valid at every level (P(p <= a) <= a under exchangeability).
//! - `threshold: auto` reports the critical value `c` with `score > c` ⇔ `p < alpha` exactly: the
//!   (K+1)-th largest null draw, K the most draws that may reach the score while p stays below alpha.
//! - The check's verdict: Westfall–Young single-step minP over the detectors that share the relabellings
//!   (in the spirit of MMDAgg): each labelling's smallest per-detector p-value, and the observed one
//!   ranked among them. Groups without a shared null (another set of points, or a test with a null of
//!   its own) are combined by Bonferroni. Per-detector adjusted p-values follow the same rule, so the
//!   verdict fires exactly when some detector's adjusted p-value is below alpha.

use super::defaults::{Decision, Plan};

/// Permutation p-value of `stats[0]` among `stats` (observed first, then the null draws).
pub fn permutation_p(stats: &[f64]) -> f64 {
    let Some(&observed) = stats.first() else {
        return 1.0;
    };
    let observed = sanitize(observed);
    let exceed = stats.iter().filter(|&&v| sanitize(v) >= observed).count();
    exceed as f64 / stats.len() as f64
}

/// The most null draws (out of `b`) that may be at or above the observed statistic while the permutation
/// p-value `(1 + c) / (b + 1)` stays below `alpha`; `None` when even `c = 0` is not below it.
pub fn allowed_exceedances(b: usize, alpha: f64) -> Option<usize> {
    let p = |c: usize| (1 + c) as f64 / (b + 1) as f64;
    if p(0) >= alpha {
        return None;
    }
    let mut c = ((alpha * (b + 1) as f64).floor() as usize)
        .saturating_sub(1)
        .min(b);
    while c > 0 && p(c) >= alpha {
        c -= 1;
    }
    while c < b && p(c + 1) < alpha {
        c += 1;
    }
    Some(c)
}

/// The critical value of a permutation test at `alpha`: `observed > critical` ⇔ `p < alpha`, where `p`
/// is [`permutation_p`] of the observed value against `null`. `None` when no observed value can reach
/// `alpha` (too few draws), or when every value does (the threshold would be minus infinity).
pub fn critical_value(null: &[f64], alpha: f64) -> Option<f64> {
    let k = allowed_exceedances(null.len(), alpha)?;
    if k >= null.len() {
        return None;
    }
    let mut sorted: Vec<f64> = null.iter().map(|&v| sanitize(v)).collect();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    Some(sorted[k]).filter(|c| c.is_finite())
}

/// Quantile `q` in [0, 1] of sorted values (type 7, like numpy's default). The engine's one quantile.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// One detector's own decision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Marginal {
    pub score: f64,
    pub threshold: Option<f64>,
    pub p_value: Option<f64>,
    pub drifted: bool,
}

/// The detector's own rule on its statistics (observed first): a fixed threshold, a p-value (the
/// analytic one when the method has it, else the permutation one), or `auto` (permutation p-value with
/// the matching critical value as the threshold, so `score > threshold` ⇔ drifted).
pub fn decide(plan: &Plan, stats: &[f64], analytic_p: Option<f64>) -> Marginal {
    let score = stats.first().copied().unwrap_or(0.0);
    let permutation = (stats.len() > 1).then(|| permutation_p(stats));
    match plan.decision {
        Decision::Threshold(t) => Marginal {
            score,
            threshold: Some(t),
            p_value: analytic_p.or(permutation),
            drifted: score > t,
        },
        Decision::PValue(alpha) | Decision::Auto(alpha) if analytic_p.is_some() => {
            // Methods with an analytic p-value decide on it, also under `auto`.
            let p = analytic_p.unwrap_or(1.0);
            Marginal {
                score,
                threshold: None,
                p_value: Some(p),
                drifted: p < alpha,
            }
        }
        Decision::PValue(alpha) => {
            let p = permutation.unwrap_or(1.0);
            Marginal {
                score,
                threshold: None,
                p_value: Some(p),
                drifted: p < alpha,
            }
        }
        Decision::Auto(alpha) => {
            let p = permutation.unwrap_or(1.0);
            Marginal {
                score,
                threshold: critical_value(&stats[1.min(stats.len())..], alpha),
                p_value: Some(p),
                drifted: p < alpha,
            }
        }
    }
}

/// Per labelling `i`, the permutation p-value of `stats[i]` among all of `stats`: `#{i' : T_i' >= T_i} / len`.
fn p_values_of_every_labelling(stats: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = stats.iter().map(|&v| sanitize(v)).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    let len = stats.len() as f64;
    stats
        .iter()
        .map(|&v| {
            let v = sanitize(v);
            let below = sorted.partition_point(|&x| x < v);
            (sorted.len() - below) as f64 / len
        })
        .collect()
}

/// NaN never counts as extreme (a statistic as the permutation p-values compare it).
pub fn sanitize(v: f64) -> f64 {
    if v.is_nan() { f64::NEG_INFINITY } else { v }
}

/// Westfall–Young single-step minP over detectors sharing one set of labellings: `columns[j]` holds
/// detector j's statistic on every labelling (observed first, all the same length). Returns the combined
/// p-value of the family and each detector's adjusted p-value (`min` of them equals the combined one).
pub fn min_p(columns: &[Vec<f64>]) -> (f64, Vec<f64>) {
    let Some(len) = columns.first().map(Vec::len).filter(|&l| l > 0) else {
        return (1.0, vec![1.0; columns.len()]);
    };
    let ps: Vec<Vec<f64>> = columns.iter().map(|c| p_values_of_every_labelling(c)).collect();
    let mut minima: Vec<f64> = (0..len)
        .map(|i| ps.iter().map(|p| p[i]).fold(1.0, f64::min))
        .collect();
    let observed_min = minima[0];
    minima.sort_unstable_by(f64::total_cmp);
    let at_or_below = |x: f64| minima.partition_point(|&m| m <= x) as f64 / len as f64;
    let adjusted = ps.iter().map(|p| at_or_below(p[0])).collect();
    (at_or_below(observed_min), adjusted)
}

/// Benjamini–Hochberg adjusted p-values (R's `p.adjust(p, "BH")`), in the input's order: rejecting every
/// hypothesis whose adjusted p-value is at most `q` keeps the false-discovery rate at most `q` for
/// independent (or positively dependent) tests. NaN counts as 1.
pub fn benjamini_hochberg(ps: &[f64]) -> Vec<f64> {
    let m = ps.len();
    let clean = |p: f64| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) };
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| clean(ps[a]).total_cmp(&clean(ps[b])).then(a.cmp(&b)));
    let mut adjusted = vec![1.0; m];
    let mut running = 1.0_f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(clean(ps[i]) * m as f64 / (rank + 1) as f64);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

/// Bonferroni over `groups` families that do not share a null: `min(1, groups * p)`.
pub fn bonferroni(p: f64, groups: usize) -> f64 {
    (p * groups.max(1) as f64).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1alpha1::{DataSource, Method, Threshold};
    use crate::drift::defaults;

    #[test]
    fn a_score_above_every_null_draw_gets_the_smallest_p_value() {
        let mut stats = vec![1000.0];
        stats.extend((0..99).map(f64::from));
        assert!((permutation_p(&stats) - 0.01).abs() < 1e-12);
        stats[0] = -1.0;
        assert!((permutation_p(&stats) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!((quantile_sorted(&v, 0.5) - 2.5).abs() < 1e-12);
        assert!((quantile_sorted(&v, 0.95) - 3.85).abs() < 1e-12);
    }

    #[test]
    fn the_critical_value_agrees_with_the_p_value_for_every_observed_value() {
        // Null draws with ties; every observed value on a fine grid, for several B and alpha.
        for b in [19usize, 20, 99, 199, 200, 1000] {
            let null: Vec<f64> = (0..b).map(|i| ((i * 37) % 50) as f64 / 10.0).collect();
            for alpha in [0.01, 0.05, 0.1, 0.2] {
                let c = critical_value(&null, alpha);
                for t in 0..600 {
                    let observed = t as f64 / 100.0;
                    let mut stats = vec![observed];
                    stats.extend(&null);
                    let drifted = permutation_p(&stats) < alpha;
                    let above = c.is_some_and(|c| observed > c);
                    assert_eq!(
                        drifted, above,
                        "b {b} alpha {alpha} observed {observed} critical {c:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn auto_reports_a_threshold_the_score_exceeds_exactly_when_it_drifted() {
        // The old rule (1 - alpha quantile, type 7) let 9.5 exceed the threshold without drifting.
        let plan = defaults::Plan::resolve(&defaults::spec(
            Method::Emd,
            DataSource::Embeddings,
            Some(Threshold::Auto),
            None,
        ))
        .unwrap();
        let null: Vec<f64> = (0..200).map(f64::from).map(|v| v / 20.0).collect();
        for observed in [9.44, 9.46, 9.5, 9.54, 9.56, 10.0] {
            let mut stats = vec![observed];
            stats.extend(&null);
            let m = decide(&plan, &stats, None);
            let threshold = m.threshold.expect("a threshold");
            assert_eq!(m.score > threshold, m.drifted, "{m:?}");
        }
    }

    #[test]
    fn too_few_permutations_for_alpha_give_no_critical_value() {
        assert_eq!(allowed_exceedances(19, 0.05), None);
        assert_eq!(allowed_exceedances(20, 0.05), Some(0));
        assert_eq!(critical_value(&[1.0; 19], 0.05), None);
    }

    #[test]
    fn min_p_of_one_detector_is_its_own_p_value() {
        let column: Vec<f64> = vec![5.0, 1.0, 7.0, 3.0, 5.0, 0.0, 2.0, 9.0];
        let (combined, adjusted) = min_p(std::slice::from_ref(&column));
        assert!((combined - permutation_p(&column)).abs() < 1e-12);
        assert_eq!(adjusted, vec![combined]);
    }

    #[test]
    fn min_p_of_identical_detectors_equals_one_of_them_and_of_independent_ones_is_larger() {
        // Observed 94.5 against a permutation of 0..99: 5 draws above, p = 6 / 101.
        let column = |step: usize, offset: usize| {
            let mut v = vec![94.5];
            v.extend((0..100).map(|i| ((i * step + offset) % 100) as f64));
            v
        };
        let a = column(61, 0);
        let (same, _) = min_p(&[a.clone(), a.clone()]);
        assert!((same - permutation_p(&a)).abs() < 1e-12);
        assert!((same - 6.0 / 101.0).abs() < 1e-12);
        // An independent second detector makes small minima more common: the combined p grows.
        let b = column(37, 11);
        let (both, adjusted) = min_p(&[a.clone(), b]);
        assert!(both > permutation_p(&a), "{both}");
        assert!((adjusted.iter().copied().fold(1.0, f64::min) - both).abs() < 1e-12);
        assert!(adjusted[0] >= permutation_p(&a));
    }

    #[test]
    fn benjamini_hochberg_matches_r_p_adjust() {
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.005, 0.2, 0.9), "BH")
        //    0.030 0.060 0.060 0.030 0.240 0.900
        let adjusted = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005, 0.2, 0.9]);
        let expected = [0.03, 0.06, 0.06, 0.03, 0.24, 0.9];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{adjusted:?}");
        }
        assert_eq!(benjamini_hochberg(&[]), Vec::<f64>::new());
        assert_eq!(benjamini_hochberg(&[f64::NAN, 0.5]), vec![1.0, 1.0]);
    }

    #[test]
    fn nan_statistics_never_count_as_extreme() {
        let column = vec![3.0, f64::NAN, 1.0, f64::NAN];
        let (combined, _) = min_p(&[column]);
        assert!((combined - 0.25).abs() < 1e-12);
    }
}
