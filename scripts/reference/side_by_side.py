#!/usr/bin/env python3
"""Runs the Python reference pipelines and the Rust binary on the same .npy windows; prints the ratio table.

Usage:
  python3 scripts/reference/make_bench_data.py /tmp/dw-bench/big            # 100k x 768 vs 20k x 768
  python3 scripts/reference/side_by_side.py /tmp/dw-bench/big [--bin target/release/driftwatch] [--skip-slow]

Python side (numpy / scipy / scikit-learn / POT, as in the original design, medians of --repeat runs):
  pca         covariance + eigh, 5 components (sklearn svd_solver="covariance_eigh")
  kl          PCA(2) + scipy gaussian_kde on each window + mean log-ratio over the comparison points
  emd         POT sliced Wasserstein, 128 directions, p = 1
  mmd         unbiased MMD^2 RBF (median heuristic) on 2k/2k subsamples + 100 permutations
  ks          PCA(5) + scipy ks_2samp per component, Bonferroni
  classifier  PCA(5) + LogisticRegression, 5-fold cross-validated ROC AUC
Rust side: `driftwatch compute --output json` with one detector per run (the detector's own `seconds`,
which include its share of the PCA), and the whole default set under /usr/bin/time for wall time and
peak RSS.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(fn, repeat):
    ts, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), out


def python_side(ref, cmp, repeat, skip_slow):
    from scipy import stats
    from scipy.spatial.distance import cdist
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    import ot

    res = {}
    res["pca"] = timed(lambda: PCA(5, svd_solver="covariance_eigh").fit(ref), repeat)[0]

    def kl():
        p = PCA(2, svd_solver="covariance_eigh").fit(ref)
        r, c = p.transform(ref), p.transform(cmp)
        kp, kq = stats.gaussian_kde(r.T), stats.gaussian_kde(c.T)
        return float(np.mean(kq.logpdf(c.T) - kp.logpdf(c.T)))

    if not skip_slow:
        res["kl_divergence"] = timed(kl, 1)[0]

    res["emd"] = timed(lambda: ot.sliced_wasserstein_distance(ref, cmp, n_projections=128, p=1, seed=0), repeat)[0]

    def mmd():
        rng = np.random.default_rng(0)
        x = ref[rng.choice(len(ref), 2000, replace=False)]
        y = cmp[rng.choice(len(cmp), 2000, replace=False)]
        z = np.vstack([x, y]).astype(np.float64)
        d2 = cdist(z, z, "sqeuclidean")
        sigma2 = np.median(d2[np.triu_indices(len(z), 1)])
        k = np.exp(-d2 / (2 * sigma2))
        n = len(x)

        def stat(idx):
            a, b = idx[:n], idx[n:]
            kaa, kbb, kab = k[np.ix_(a, a)], k[np.ix_(b, b)], k[np.ix_(a, b)]
            return (kaa.sum() - np.trace(kaa)) / (n * (n - 1)) + (kbb.sum() - np.trace(kbb)) / (n * (n - 1)) - 2 * kab.mean()

        obs = stat(np.arange(len(z)))
        null = [stat(rng.permutation(len(z))) for _ in range(100)]
        return (1 + sum(v >= obs for v in null)) / 101

    res["mmd"] = timed(mmd, 1)[0]

    def ks():
        p = PCA(5, svd_solver="covariance_eigh").fit(ref)
        r, c = p.transform(ref), p.transform(cmp)
        return min(1.0, 5 * min(stats.ks_2samp(r[:, j], c[:, j]).pvalue for j in range(5)))

    res["ks"] = timed(ks, repeat)[0]

    def clf():
        p = PCA(5, svd_solver="covariance_eigh").fit(ref)
        x = np.vstack([p.transform(ref), p.transform(cmp)])
        y = np.r_[np.zeros(len(ref)), np.ones(len(cmp))]
        return cross_val_score(LogisticRegression(), x, y, cv=5, scoring="roc_auc").mean()

    res["classifier"] = timed(clf, repeat)[0]
    return res


def rust_side(binary, data, repeat):
    specs = {
        "kl_divergence": "- {method: kl_divergence, source: embeddings, threshold: auto, components: 2}",
        "emd": "- {method: emd, source: embeddings, threshold: auto}",
        "mmd": "- {method: mmd, source: embeddings, pValue: 0.05}",
        "ks": "- {method: ks, source: embeddings, pValue: 0.05}",
        "classifier": "- {method: classifier, source: embeddings, pValue: 0.05}",
        "pca": "- {method: ks, source: embeddings, pValue: 0.05, components: 5}",
    }
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in specs.items():
            f = Path(tmp) / f"{name}.yaml"
            f.write_text(spec + "\n")
            ts = []
            for _ in range(repeat):
                out = subprocess.run(
                    [binary, "compute", "--reference", str(data / "reference.npy"), "--comparison",
                     str(data / "comparison.npy"), "--detectors", str(f), "--output", "json"],
                    check=True, capture_output=True, text=True,
                )
                ts.append(json.loads(out.stdout)["scores"][0]["seconds"])
            res[name] = float(np.median(ts))
        walls, rss = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            out = subprocess.run(
                ["/usr/bin/time", "-f", "%M", binary, "compute", "--reference", str(data / "reference.npy"),
                 "--comparison", str(data / "comparison.npy"), "--output", "json"],
                check=True, capture_output=True, text=True,
            )
            walls.append(time.perf_counter() - t)
            rss.append(int(out.stderr.strip().splitlines()[-1]) * 1024)
            doc = json.loads(out.stdout)
        res["default_set_engine"] = sum(s["seconds"] for s in doc["scores"])
        res["default_set_wall"] = float(np.median(walls))
        res["peak_rss"] = max(rss)
        res["default_scores"] = doc["scores"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--bin", default=str(Path(__file__).resolve().parents[2] / "target" / "release" / "driftwatch"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-slow", action="store_true", help="skip the Python KDE KL (about 20 s at 100k x 20k)")
    a = ap.parse_args()
    ref = np.load(a.data / "reference.npy")
    cmp = np.load(a.data / "comparison.npy")
    input_bytes = ref.nbytes + cmp.nbytes
    print(f"data: reference {ref.shape}, comparison {cmp.shape}, {input_bytes / 2**20:.0f} MiB float32", flush=True)
    rs = rust_side(a.bin, a.data, a.repeat)
    py = python_side(ref, cmp, a.repeat, a.skip_slow)
    print(f"\n{'method':<14} {'python s':>10} {'rust s':>10} {'ratio':>8}")
    for m in ("pca", "kl_divergence", "emd", "mmd", "ks", "classifier"):
        p, r = py.get(m), rs.get(m)
        ratio = f"{p / r:8.1f}x" if p and r else "       -"
        ps = f"{p:10.3f}" if p else "         -"
        print(f"{m:<14} {ps} {r:10.3f} {ratio}")
    print("(pca: python = the fit alone; rust = the ks detector with 5 components, i.e. fit + projection of"
          " both windows + 5 KS tests)")
    print(f"\nrust default set (kl+emd+mmd): engine {rs['default_set_engine']:.3f} s, wall incl. reading "
          f"{rs['default_set_wall']:.3f} s, peak RSS {rs['peak_rss'] / 2**20:.0f} MiB "
          f"= {rs['peak_rss'] / input_bytes:.2f}x input")
    for s in rs["default_scores"]:
        print(f"  {s['method']:<14} score {s['score']:.4g} p {s.get('pValue')} drifted {s['drifted']} {s['seconds']:.3f}s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
