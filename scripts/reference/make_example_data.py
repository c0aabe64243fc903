#!/usr/bin/env python3
"""Writes the bundled example windows of `driftwatch compute` to examples/data/ (seeded, reproducible).

reference.npy          2000 x 64 float32: 8 latent factors + isotropic noise (a stand-in for embeddings)
comparison.npy          500 x 64 float32: same model, the latent mean shifted by 0.35 sd along factor 1
                        and 10% of points from a new cluster (a known drift)
reference_scores.npy   2000 float32 confidence scores ~ Beta(8, 2)
comparison_scores.npy   500 float32 confidence scores ~ Beta(6, 2.5) (the model is less sure)

Usage: python3 scripts/reference/make_example_data.py [OUT_DIR]
"""
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "examples" / "data")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    d, k = 64, 8
    loadings = rng.normal(size=(k, d)) * np.linspace(2.0, 0.5, k)[:, None]
    def window(n, shift=0.0, cluster=0.0):
        z = rng.normal(size=(n, k))
        z[:, 0] += shift
        x = z @ loadings + rng.normal(scale=0.5, size=(n, d))
        m = int(round(cluster * n))
        if m:
            center = rng.normal(size=d) * 2.0
            x[:m] = center + rng.normal(scale=0.5, size=(m, d))
        return x.astype(np.float32)
    np.save(out / "reference.npy", window(2000))
    np.save(out / "comparison.npy", window(500, shift=0.35, cluster=0.10))
    np.save(out / "reference_scores.npy", rng.beta(8, 2, size=2000).astype(np.float32))
    np.save(out / "comparison_scores.npy", rng.beta(6, 2.5, size=500).astype(np.float32))


if __name__ == "__main__":
    main()
