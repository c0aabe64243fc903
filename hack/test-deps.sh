#!/usr/bin/env bash
# Installs the test-only services the Rust tests start themselves: moto's S3-compatible server (PyPI).
# Idempotent; CI calls it before `cargo test`. Prints the moto_server path on the last line.
set -euo pipefail
if ! python3 -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6' >&2
fi
command -v moto_server >/dev/null 2>&1 || { echo "error: moto_server not on PATH after install" >&2; exit 1; }
command -v moto_server
