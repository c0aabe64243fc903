#!/usr/bin/env python3
"""Writes scikit-learn's bundled handwritten-digits data (no download: it ships inside the package) as .npy
files for the drift engine's calibration test and study.

Usage: python3 scripts/reference/export_digits.py OUTDIR

OUTDIR/digits.npy          float32 [1197, 64]  pixel vectors (0..16) of the images not used for training
OUTDIR/digits_scores.npy   float32 [1197]      a logistic regression's confidence (max class probability)
                                               for each of them, trained on the other 600 images
OUTDIR/digits_labels.npy   float32 [1197]      the true digit of each row (to build real shifts)

Every row is an independent draw of one distribution (the images are shuffled once with a fixed seed), so
any random split of the rows into a reference and a comparison window has no drift.
"""
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
x, y = load_digits(return_X_y=True)
order = np.random.default_rng(20261129).permutation(len(x))
x, y = x[order], y[order]
train, rest = slice(0, 600), slice(600, None)
model = LogisticRegression(max_iter=2000).fit(x[train] / 16.0, y[train])
confidence = model.predict_proba(x[rest] / 16.0).max(axis=1)
np.save(out / "digits.npy", x[rest].astype(np.float32))
np.save(out / "digits_scores.npy", confidence.astype(np.float32))
np.save(out / "digits_labels.npy", y[rest].astype(np.float32))
print(f"{out}: {x[rest].shape[0]} rows, mean confidence {confidence.mean():.3f}")
