//! Pearson's chi-square goodness-of-fit test for the uniformity tests of sampled windows. Pure.
#![allow(dead_code)]

/// Pearson's statistic of observed counts against expected counts (same length, expected > 0).
pub fn statistic(observed: &[u64], expected: &[f64]) -> f64 {
    observed
        .iter()
        .zip(expected)
        .map(|(&o, &e)| (o as f64 - e).powi(2) / e)
        .sum()
}

/// P(X >= x) for X ~ chi-square with `df` degrees of freedom: the regularized upper incomplete gamma
/// Q(df/2, x/2) (series below a + 1, continued fraction above; Numerical Recipes' gammq).
pub fn survival(x: f64, df: usize) -> f64 {
    let a = df as f64 / 2.0;
    let x = x / 2.0;
    if x <= 0.0 {
        return 1.0;
    }
    let ln_gamma_a = ln_gamma(a);
    if x < a + 1.0 {
        // P(a, x) by its series.
        let (mut sum, mut term, mut n) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        1.0 - sum * (-x + a * x.ln() - ln_gamma_a).exp()
    } else {
        // Q(a, x) by Lentz's continued fraction.
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (-x + a * x.ln() - ln_gamma_a).exp() * h
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The p-value of observed counts against expected counts (degrees of freedom: bins − 1).
pub fn p_value(observed: &[u64], expected: &[f64]) -> f64 {
    survival(statistic(observed, expected), observed.len().saturating_sub(1))
}

#[test]
fn the_chi_square_survival_function_matches_scipy() {
    // scipy.stats.chi2.sf(x, df), scipy 1.17.1.
    for (x, df, want) in [
        (30.0, 19, 0.05179845889302389),
        (5.0, 3, 0.1717971442967335),
        (0.5, 1, 0.47950012218695337),
        (120.0, 99, 0.07424385580596692),
        (3.0, 15, 0.9995978014473508),
        (50.795489665621886, 19, 1e-4),
    ] {
        let got = survival(x, df);
        assert!(
            (got - want).abs() < 1e-9 * want.max(1e-3),
            "sf({x}, {df}) = {got}, scipy {want}"
        );
    }
}
