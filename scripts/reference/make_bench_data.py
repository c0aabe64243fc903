#!/usr/bin/env python3
"""Seeded synthetic embedding windows for benchmarks and the side-by-side comparison.

Usage: make_bench_data.py OUT_DIR --n-ref 100000 --n-cmp 20000 --dim 768 --drift mean|scale|cluster|none
Writes OUT_DIR/reference.npy, OUT_DIR/comparison.npy (float32, C order) and *_scores.npy.
Model: 32 latent factors with decaying loadings + isotropic noise; drift acts on the latent factors.
"""
import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n-ref", type=int, default=100_000)
    ap.add_argument("--n-cmp", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--drift", default="mean", choices=["mean", "scale", "cluster", "none"])
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    k = 32
    loadings = (rng.standard_normal((k, a.dim)) * np.geomspace(1.0, 0.05, k)[:, None]).astype(np.float32)

    def window(n, drift):
        z = rng.standard_normal((n, k), dtype=np.float32)
        if drift == "mean":
            z[:, 0] += 0.25
        elif drift == "scale":
            z[:, :4] *= 1.2
        x = z @ loadings
        x += rng.standard_normal((n, a.dim), dtype=np.float32) * 0.1
        if drift == "cluster":
            m = n // 10
            x[:m] = rng.standard_normal(a.dim).astype(np.float32) * 0.2 + rng.standard_normal((m, a.dim), dtype=np.float32) * 0.1
        return np.ascontiguousarray(x, dtype=np.float32)

    np.save(out / "reference.npy", window(a.n_ref, "none"))
    np.save(out / "comparison.npy", window(a.n_cmp, a.drift))
    np.save(out / "reference_scores.npy", rng.beta(8, 2, a.n_ref).astype(np.float32))
    np.save(out / "comparison_scores.npy", rng.beta(7 if a.drift != "none" else 8, 2, a.n_cmp).astype(np.float32))


if __name__ == "__main__":
    main()
