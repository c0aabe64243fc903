#!/usr/bin/env python3
"""Times each drift detector in Rust and in a numpy/scipy/scikit-learn implementation of the SAME estimator
on the same .npy windows, with the same permutation count; prints a labelled ratio table.

Usage:
  python3 scripts/reference/make_bench_data.py /tmp/dw-bench/big            # 100k x 768 vs 20k x 768
  python3 scripts/reference/side_by_side.py /tmp/dw-bench/big [--bin target/release/driftwatch]

Like for like: the Rust engine tests at most 20 000 rows per window (a seeded subsample above that,
src/drift/pooled.rs), so the Python side takes the same number of rows (its own seeded subsample), and
both compute the statistic on the observed split plus B = 200 random relabellings of the pooled rows:

  kl_divergence  PCA(2) fitted on the pooled windows; binned Gaussian KDE on one 256 x 256 grid, bandwidth
                 = pooled sd x Scott's factor for min(n, m); KL with mixture smoothing 1e-3; 201 labellings
  emd            sliced W1, 128 random directions, on 201 labellings (sort once, sweep per labelling)
  mmd            RBF kernel, median heuristic on 600 pooled points, 128 random Fourier frequencies,
                 unbiased MMD^2 on 201 labellings (one GEMM of labels x features)
  ks             PCA(5) on the pooled windows, max KS D over the 5 components, 201 labellings
  classifier     PCA(5), logistic regression (C = 1) fitted on half of each window, held-out ROC AUC,
                 200 relabellings of the held-out points
Rust side: `driftwatch compute --output json`, one detector per process, the detector's own `seconds`
(its share of pooling, PCA and relabelling included; reading the files excluded). The Python side's time
excludes loading the arrays too. Both on the same machine, medians of --repeat runs.
"""
import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

B = 200
CAP = 20_000


def timed(fn, repeat):
    ts, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), out


def labellings(total, n, rng):
    """Boolean [B + 1, total]: row 0 the observed split (first n), then B random splits of the same sizes."""
    out = np.zeros((B + 1, total), dtype=bool)
    out[0, :n] = True
    for b in range(1, B + 1):
        out[b, rng.choice(total, n, replace=False)] = True
    return out


def pooled_pca(z, k):
    from sklearn.decomposition import PCA

    return PCA(k, svd_solver="covariance_eigh").fit_transform(z)


def sweep(values, labels, n, m, reduce):
    """W1 (reduce='sum') or KS D (reduce='max') of every labelling, values sorted once."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    gaps = np.diff(v)
    lab = labels[:, order][:, :-1].astype(np.float64)
    count_a = np.cumsum(lab, axis=1)
    seen = np.arange(1, len(v))
    diff = np.abs(count_a / n - (seen - count_a) / m)
    if reduce == "sum":
        return diff @ gaps
    return np.where(gaps > 0, diff, 0).max(axis=1)


def python_side(ref, cmp, repeat):
    from scipy.ndimage import convolve1d
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    ref = ref[rng.choice(len(ref), min(CAP, len(ref)), replace=False)] if len(ref) > CAP else ref
    cmp = cmp[rng.choice(len(cmp), min(CAP, len(cmp)), replace=False)] if len(cmp) > CAP else cmp
    n, m = len(ref), len(cmp)
    z = np.vstack([ref, cmp])
    res = {}

    def kl():
        x = pooled_pca(z, 2)
        lab = labellings(n + m, n, np.random.default_rng(1))
        factor = min(n, m) ** (-1 / 6)
        h = x.std(axis=0, ddof=1) * factor
        lo, hi = x.min(0) - 4 * h, x.max(0) + 4 * h
        cells = np.clip(np.ceil((hi - lo) / (h / 2)).astype(int) + 1, 16, 256)
        step = (hi - lo) / (cells - 1)
        h = np.maximum(h, step / 2)
        t = (x - lo) / step
        i0 = np.minimum(np.floor(t).astype(int), cells - 2)
        f = t - i0
        kernels = []
        for j in range(2):
            r = h[j] / step[j]
            taps = min(int(np.ceil(4 * r)), cells[j])
            kernels.append(np.exp(-0.5 * (np.arange(-taps, taps + 1) / r) ** 2))

        def density(mask):
            g = np.zeros(cells)
            for c0 in (0, 1):
                for c1 in (0, 1):
                    w = (f[mask, 0] if c0 else 1 - f[mask, 0]) * (f[mask, 1] if c1 else 1 - f[mask, 1])
                    np.add.at(g, (i0[mask, 0] + c0, i0[mask, 1] + c1), w)
            g = convolve1d(convolve1d(g, kernels[0], axis=0, mode="constant"), kernels[1], axis=1, mode="constant")
            return g / g.sum()

        out = []
        for row in lab:
            p, q = density(row), density(~row)
            mix = 0.999 * p + 0.0005 * (p + q)
            mask = q > 0
            out.append(float(np.sum(q[mask] * np.log(q[mask] / np.maximum(mix[mask], 1e-300)))))
        return out

    res["kl_divergence"] = timed(kl, repeat)[0]

    def emd():
        lab = labellings(n + m, n, np.random.default_rng(2))
        w = np.random.default_rng(3).normal(size=(z.shape[1], 128))
        w /= np.linalg.norm(w, axis=0)
        proj = z @ w.astype(np.float32)
        return sum(sweep(proj[:, j].astype(np.float64), lab, n, m, "sum") for j in range(128)) / 128

    res["emd"] = timed(emd, repeat)[0]

    def mmd():
        from scipy.spatial.distance import pdist

        r = np.random.default_rng(4)
        sigma = np.median(pdist(z[r.choice(n + m, 600, replace=False)].astype(np.float64)))
        omega = (r.normal(size=(z.shape[1], 128)) / sigma).astype(np.float32)
        t = (z - z.mean(0)) @ omega
        feats = np.hstack([np.cos(t), np.sin(t)]) / np.sqrt(128)
        mean = feats.mean(0, dtype=np.float64)
        feats = feats - mean.astype(np.float32)
        lab = labellings(n + m, n, r).astype(np.float32)
        sums = (lab @ feats).astype(np.float64)
        mu_a = mean + sums / n
        mu_b = mean - sums / m
        d2 = (sums * sums).sum(1) * (1 / n + 1 / m) ** 2
        return d2 + ((mu_a * mu_a).sum(1) - 1) / (n - 1) + ((mu_b * mu_b).sum(1) - 1) / (m - 1)

    res["mmd"] = timed(mmd, repeat)[0]

    def ks():
        x = pooled_pca(z, 5)
        lab = labellings(n + m, n, np.random.default_rng(5))
        return np.max([sweep(x[:, j], lab, n, m, "max") for j in range(5)], axis=0)

    res["ks"] = timed(ks, repeat)[0]

    def clf():
        x = pooled_pca(z, 5)
        r = np.random.default_rng(6)
        ir, ic = r.permutation(n), n + r.permutation(m)
        train = np.r_[ir[: n // 2], ic[: m // 2]]
        test = np.r_[ir[n // 2 :], ic[m // 2 :]]
        y = np.r_[np.zeros(n), np.ones(m)]
        mu, sd = x[train].mean(0), x[train].std(0, ddof=1)
        model = LogisticRegression(C=1.0).fit((x[train] - mu) / sd, y[train])
        s = model.decision_function((x[test] - mu) / sd)
        yt = y[test]
        out = [roc_auc_score(yt, s)]
        for _ in range(B):
            out.append(roc_auc_score(r.permutation(yt), s))
        return out

    res["classifier"] = timed(clf, repeat)[0]
    return res, (n, m)


def rust_side(binary, data, repeat):
    specs = {
        "kl_divergence": "- {method: kl_divergence, source: embeddings, autoThreshold: true, components: 2}",
        "emd": "- {method: emd, source: embeddings, autoThreshold: true}",
        "mmd": "- {method: mmd, source: embeddings, pValue: 0.05}",
        "ks": "- {method: ks, source: embeddings, pValue: 0.05}",
        "classifier": "- {method: classifier, source: embeddings, pValue: 0.05}",
    }
    res = {}
    args = ["compute", "--reference", str(data / "reference.npy"), "--comparison", str(data / "comparison.npy")]
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in specs.items():
            f = Path(tmp) / f"{name}.yaml"
            f.write_text(spec + "\n")
            ts = []
            for _ in range(repeat):
                out = subprocess.run([binary, *args, "--detectors", str(f), "--output", "json"],
                                     check=True, capture_output=True, text=True)
                ts.append(json.loads(out.stdout)["scores"][0]["seconds"])
            res[name] = float(np.median(ts))
        walls, rss = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            out = subprocess.run(["/usr/bin/time", "-f", "%M", binary, *args, "--output", "json"],
                                 check=True, capture_output=True, text=True)
            walls.append(time.perf_counter() - t)
            rss.append(int(out.stderr.strip().splitlines()[-1]) * 1024)
            doc = json.loads(out.stdout)
        res["default_set_engine"] = sum(s["seconds"] for s in doc["scores"])
        res["default_set_wall"] = float(np.median(walls))
        res["peak_rss"] = max(rss)
        res["doc"] = doc
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--bin", default=str(Path(__file__).resolve().parents[2] / "target" / "release" / "driftwatch"))
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    ref = np.load(a.data / "reference.npy")
    cmp = np.load(a.data / "comparison.npy")
    input_bytes = ref.nbytes + cmp.nbytes
    print(f"data: reference {ref.shape}, comparison {cmp.shape}, {input_bytes / 2**20:.0f} MiB float32", flush=True)
    rs = rust_side(a.bin, a.data, a.repeat)
    py, (n, m) = python_side(ref, cmp, a.repeat)
    print(f"\nboth sides: {n} x {m} rows tested, statistic on 1 + {B} labellings, medians of {a.repeat}")
    print(f"{'detector (same estimator both sides)':<40} {'python s':>10} {'rust s':>10} {'ratio':>8}")
    labels = {
        "kl_divergence": "kl_divergence: pooled PCA(2) + grid KDE KL",
        "emd": "emd: sliced W1, 128 directions",
        "mmd": "mmd: RBF, 128 random Fourier freqs",
        "ks": "ks: pooled PCA(5) + max KS D",
        "classifier": "classifier: PCA(5) + held-out logreg AUC",
    }
    for k, label in labels.items():
        p, r = py[k], rs[k]
        print(f"{label:<40} {p:10.3f} {r:10.3f} {p / r:7.1f}x")
    doc = rs["doc"]
    print(f"\nrust default set (kl+emd+mmd): engine {rs['default_set_engine']:.3f} s, wall incl. reading "
          f"{rs['default_set_wall']:.3f} s, peak RSS {rs['peak_rss'] / 2**20:.0f} MiB "
          f"= {rs['peak_rss'] / input_bytes:.2f}x input; verdict {doc['driftDetected']} "
          f"(combined p {doc['combinedPValue']:.4g})")
    for s in doc["scores"]:
        print(f"  {s['method']:<14} score {s['score']:.4g} p {s.get('pValue')} drifted {s['drifted']} {s['seconds']:.3f}s")


if __name__ == "__main__":
    main()
