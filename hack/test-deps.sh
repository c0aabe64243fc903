#!/usr/bin/env bash
# Installs the test-only services the Rust tests start themselves: moto's S3-compatible server (PyPI).
# Idempotent; CI calls it before `cargo test`. Prints the moto_server path on the last line.
set -euo pipefail
# Pinned: moto 5.2's generic serializer answers CompleteMultipartUpload with the wrong XML root
# (CompleteMultipartUploadResponse), which aws-sdk-s3 rightly rejects; 5.1.22 sends S3's own document.
moto_version=5.1.22
if [ "$(python3 -c 'import moto, flask, flask_cors; print(moto.__version__)' 2>/dev/null)" != "$moto_version" ]; then
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]==$moto_version" >&2
fi
command -v moto_server >/dev/null 2>&1 || { echo "error: moto_server not on PATH after install" >&2; exit 1; }
command -v moto_server
