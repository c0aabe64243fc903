#!/usr/bin/env bash
# Installs the test-only services and data the Rust tests use: moto's S3-compatible server (PyPI) and
# scikit-learn, whose bundled digits data set (no download) the drift engine's calibration test splits
# (tests/drift_calibration.rs via scripts/reference/export_digits.py).
# Idempotent; CI calls it before `cargo test`. Prints the moto_server path on the last line.
set -euo pipefail
# Pinned for reproducible digits exports and confidence scores.
sklearn_version=1.9.1
if [ "$(python3 -c 'import sklearn; print(sklearn.__version__)' 2>/dev/null)" != "$sklearn_version" ]; then
  python3 -m pip install --quiet --disable-pip-version-check "scikit-learn==$sklearn_version" >&2
fi
# Pinned: moto 5.2's generic serializer answers CompleteMultipartUpload with the wrong XML root
# (CompleteMultipartUploadResponse), which aws-sdk-s3 rightly rejects; 5.1.22 sends S3's own document.
moto_version=5.1.22
if [ "$(python3 -c 'import moto, flask, flask_cors; print(moto.__version__)' 2>/dev/null)" != "$moto_version" ]; then
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]==$moto_version" >&2
fi
command -v moto_server >/dev/null 2>&1 || { echo "error: moto_server not on PATH after install" >&2; exit 1; }
command -v moto_server
