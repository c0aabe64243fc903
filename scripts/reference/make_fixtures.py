#!/usr/bin/env python3
"""Reference values for the drift engine, computed independently with numpy / scipy / scikit-learn / POT.

Writes tests/fixtures/drift/reference.json, read by tests/drift_reference.rs (CI needs no Python).
Reproduce: pip install numpy scipy scikit-learn POT && python3 scripts/reference/make_fixtures.py

Every case stores its (small, seeded) inputs and the expected outputs:
- w1:      scipy.stats.wasserstein_distance on 1-D samples
- sliced:  ot.sliced_wasserstein_distance(p=1) with explicit unit directions (mean of 1-D W1)
- ks:      scipy.stats.ks_2samp (exact and asymptotic modes)
- psi:     numpy, reference-decile bins, floor 1e-4
- histkl:  numpy, 20 equal-width bins over the pooled range, +0.5 per bin
- mmd:     unbiased MMD^2 from sklearn.metrics.pairwise.rbf_kernel, sigma = median of scipy pdist
- resub:   the original estimator: scipy gaussian_kde (Scott/Silverman) on each window,
           mean log q(y) - log p(y) over comparison points (logpdf)
- gridkl:  shared diagonal bandwidth (pooled standard deviation of both windows x Scott's factor for the
           smaller window) KDEs evaluated exactly (scipy.special.logsumexp) on a fine grid, mixture
           smoothing lambda = 1e-3, integrated numerically (what the binned estimator approximates)
- pca:     sklearn PCA(n_components=k, svd_solver="full"): explained variances and scores
- logreg:  sklearn LogisticRegression(C=1): coefficients and intercept; roc_auc_score
"""
import json
from pathlib import Path

import numpy as np
import ot
from scipy import stats
from scipy.spatial.distance import pdist
from scipy.special import logsumexp
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.metrics.pairwise import rbf_kernel

ROOT = Path(__file__).resolve().parents[2]
rng = np.random.default_rng(20261126)


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def psi(ref, cmp, bins=10, floor=1e-4):
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins))
    p = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1) / len(ref)
    q = np.bincount(np.searchsorted(edges, cmp, side="left"), minlength=len(edges) + 1) / len(cmp)
    p, q = np.maximum(p, floor), np.maximum(q, floor)
    return float(np.sum((q - p) * np.log(q / p)))


def hist_kl(ref, cmp, bins=20):
    lo, hi = min(ref.min(), cmp.min()), max(ref.max(), cmp.max())
    edges = np.linspace(lo, hi, bins + 1)
    p = np.histogram(ref, edges)[0] + 0.5
    q = np.histogram(cmp, edges)[0] + 0.5
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(q * np.log(q / p)))


def mmd2_unbiased(x, y):
    z = np.vstack([x, y])
    sigma = np.median(pdist(z))
    k = rbf_kernel(z, gamma=1.0 / (2 * sigma**2))
    n, m = len(x), len(y)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    v = (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    return float(v), float(sigma)


def resub(ref, cmp, rule):
    p = stats.gaussian_kde(ref.T, bw_method=rule)
    q = stats.gaussian_kde(cmp.T, bw_method=rule)
    return float(np.mean(q.logpdf(cmp.T) - p.logpdf(cmp.T)))


def grid_kl_exact(ref, cmp, rule="scott", lam=1e-3, cells=400):
    k = ref.shape[1]
    n_eff = min(len(ref), len(cmp))
    factor = n_eff ** (-1.0 / (k + 4)) if rule == "scott" else (n_eff * (k + 2) / 4.0) ** (-1.0 / (k + 4))
    h = np.vstack([ref, cmp]).std(axis=0, ddof=1) * factor
    lo = np.minimum(ref.min(0), cmp.min(0)) - 4 * h
    hi = np.maximum(ref.max(0), cmp.max(0)) + 4 * h
    axes = [np.linspace(lo[j], hi[j], cells if k == 1 else 160) for j in range(k)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, k)

    def logdens(data):
        out = np.empty(len(mesh))
        for s in range(0, len(mesh), 2000):
            g = mesh[s : s + 2000]
            d2 = (((g[:, None, :] - data[None, :, :]) / h) ** 2).sum(-1)
            out[s : s + 2000] = logsumexp(-0.5 * d2, axis=1)
        return out

    p = np.exp(logdens(ref) - logdens(ref).max())
    q = np.exp(logdens(cmp) - logdens(cmp).max())
    p, q = p / p.sum(), q / q.sum()
    mix = (1 - lam) * p + lam * 0.5 * (p + q)
    mask = q > 0
    return float(np.sum(q[mask] * np.log(q[mask] / mix[mask])))


cases = {}

# 1-D families: no drift, mean shift, scale change, ties
one_d = []
for name, (a, b) in {
    "same": (rng.normal(size=300), rng.normal(size=200)),
    "shift": (rng.normal(size=300), rng.normal(0.4, 1, size=250)),
    "scale": (rng.beta(8, 2, size=400), rng.beta(4, 2, size=150)),
    "ties": (np.round(rng.normal(size=200), 1), np.round(rng.normal(0.2, 1, size=180), 1)),
    "large": (rng.normal(size=6000), rng.normal(0.05, 1, size=5000)),
}.items():
    a, b = f32(a), f32(b)
    ks = stats.ks_2samp(a, b, method="exact" if name != "large" else "asymp")
    one_d.append(
        {
            "name": name,
            "reference": a.tolist(),
            "comparison": b.tolist(),
            "w1": float(stats.wasserstein_distance(a, b)),
            "ks_d": float(ks.statistic),
            "ks_p": float(ks.pvalue),
            "ks_mode": "exact" if name != "large" else "asymp",
            "psi": psi(a, b),
            "hist_kl": hist_kl(a, b),
        }
    )
cases["one_d"] = one_d

# sliced W1 with explicit directions
sliced = []
for shift in (0.0, 0.5):
    x = f32(rng.normal(size=(300, 10)))
    y = f32(rng.normal(size=(200, 10)) + shift)
    w = rng.normal(size=(10, 16))
    w /= np.linalg.norm(w, axis=0)
    w = f32(w)
    val = ot.sliced_wasserstein_distance(x, y, n_projections=16, p=1, projections=w)
    sliced.append({"shift": shift, "x": x.tolist(), "y": y.tolist(), "directions": w.tolist(), "value": float(val)})
cases["sliced"] = sliced

# MMD (exact regime: pooled <= 600 so the median heuristic uses every pair)
mmd = []
for shift in (0.0, 0.3):
    x = f32(rng.normal(size=(250, 12)))
    y = f32(rng.normal(size=(200, 12)) + shift)
    v, s = mmd2_unbiased(x, y)
    mmd.append({"shift": shift, "x": x.tolist(), "y": y.tolist(), "mmd2": v, "sigma": s})
cases["mmd"] = mmd

# KL estimators on 2-D principal-component-like scores
kl = []
for name, shift, scale in (("same", 0.0, 1.0), ("shift", 0.7, 1.0), ("scale", 0.0, 1.6)):
    r = f32(rng.normal(size=(800, 2)) * [2.0, 1.0])
    c = f32(rng.normal(size=(300, 2)) * [2.0 * scale, 1.0] + [shift, 0.0])
    kl.append(
        {
            "name": name,
            "reference": r.tolist(),
            "comparison": c.tolist(),
            "resub_scott": resub(r, c, "scott"),
            "resub_silverman": resub(r, c, "silverman"),
            "grid_scott": grid_kl_exact(r, c, "scott"),
        }
    )
for name, shift in (("1d_shift", 0.5),):
    r = f32(rng.normal(size=(600, 1)))
    c = f32(rng.normal(size=(400, 1)) + shift)
    kl.append(
        {
            "name": name,
            "reference": r.tolist(),
            "comparison": c.tolist(),
            "resub_scott": resub(r, c, "scott"),
            "resub_silverman": resub(r, c, "silverman"),
            "grid_scott": grid_kl_exact(r, c, "scott"),
        }
    )
cases["kl"] = kl

# PCA
x = f32(rng.normal(size=(500, 8)) @ np.diag([5, 3, 2, 1, 0.5, 0.4, 0.3, 0.2]) @ np.linalg.qr(rng.normal(size=(8, 8)))[0] + 3.0)
pca = PCA(n_components=3, svd_solver="full").fit(x)
cases["pca"] = {
    "x": x.tolist(),
    "variances": pca.explained_variance_.tolist(),
    "scores": pca.transform(x)[:20].tolist(),
}

# logistic regression + AUC
xl = f32(rng.normal(size=(400, 3)))
yl = (rng.random(400) < 1 / (1 + np.exp(-(xl @ [1.0, -0.5, 0.2] + 0.3)))).astype(float)
lr = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(xl, yl)
dec = lr.decision_function(xl)
cases["logreg"] = {
    "x": xl.tolist(),
    "y": yl.tolist(),
    "coef": lr.coef_[0].tolist(),
    "intercept": float(lr.intercept_[0]),
    "auc": float(roc_auc_score(yl, dec)),
}

out = ROOT / "tests" / "fixtures" / "drift" / "reference.json"
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps(cases, separators=(",", ":")))
print(f"wrote {out} ({out.stat().st_size} bytes)")
