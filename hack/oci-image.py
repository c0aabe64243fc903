#!/usr/bin/env python3
"""Builds a single-layer OCI image archive (an OCI image layout in a tar) from files on this machine, with
no container engine and no registry: what `ctr images import` and `docker load` read.

Reproducible: entries are sorted, owned by root, dated 1970, so the same inputs give the same digests.

  oci-image.py --name driftwatch.local/pause:1 --output pause.tar --entrypoint /pause \
      --file /path/to/pause:/pause --user 65535:65535

--file SRC:DEST copies a file (mode kept: executables stay executable); --binary SRC:DEST does the same
and adds every shared library `ldd` lists for it, and its loader, at the paths the loader looks for;
--strip strips binaries on the way in (smaller images from debug builds); --dir DEST[:MODE] adds an
empty directory (e.g. /tmp:1777).
"""
import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

EPOCH = 0


def shared_libraries(binary):
    """Resolved paths of the libraries `ldd` reports (and the ELF interpreter); [] for a static binary."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    text = out.stdout + out.stderr
    if "not a dynamic executable" in text or "statically linked" in text:
        return []
    if out.returncode != 0:
        sys.exit(f"error: ldd {binary} failed: {text.strip()}")
    libs = []
    for line in text.splitlines():
        line = line.strip()
        match = re.match(r"^\S+ => (/\S+) \(0x[0-9a-f]+\)$", line) or re.match(r"^(/\S+) \(0x[0-9a-f]+\)$", line)
        if match:
            libs.append(match.group(1))
        elif "=> not found" in line:
            sys.exit(f"error: {binary} needs a library that is not installed: {line}")
    return libs


def strip_copy(path, workdir):
    stripped = os.path.join(workdir, hashlib.sha256(path.encode()).hexdigest()[:16])
    subprocess.run(["objcopy", "--strip-debug", path, stripped], check=True)
    os.chmod(stripped, os.stat(path).st_mode & 0o7777)
    return stripped


def add_parents(entries, dest):
    parent = os.path.dirname(dest.rstrip("/"))
    while parent not in ("", "/"):
        entries.setdefault(parent, ("dir", None, 0o755))
        parent = os.path.dirname(parent)


def layer_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dest in sorted(entries):
            kind, src, mode = entries[dest]
            info = tarfile.TarInfo(dest.lstrip("/"))
            info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "", ""
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, mode
                tar.addfile(info)
            elif kind == "data":
                info.size, info.mode = len(src), mode
                tar.addfile(info, io.BytesIO(src))
            else:
                info.size, info.mode = os.path.getsize(src), mode
                with open(src, "rb") as f:
                    tar.addfile(info, f)
    return buf.getvalue()


def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="image reference, e.g. driftwatch.local/driftwatch:dev")
    p.add_argument("--output", required=True)
    p.add_argument("--file", action="append", default=[], metavar="SRC:DEST")
    p.add_argument("--binary", action="append", default=[], metavar="SRC:DEST")
    p.add_argument("--text", action="append", default=[], metavar="DEST=CONTENT", help="a small text file")
    p.add_argument("--dir", action="append", default=[], metavar="DEST[:MODE]")
    p.add_argument("--strip", action="store_true")
    p.add_argument("--entrypoint", nargs="*", default=[])
    p.add_argument("--cmd", nargs="*", default=[])
    p.add_argument("--user", default="")
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--workdir", default="/")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()

    entries = {}
    with tempfile.TemporaryDirectory() as work:
        def put(src, dest, follow_libs):
            if not os.path.isfile(src):
                sys.exit(f"error: {src} is not a file")
            mode = os.stat(src).st_mode & 0o7777
            real = strip_copy(src, work) if args.strip and follow_libs else src
            add_parents(entries, dest)
            entries[dest] = ("file", real, mode)
            if follow_libs:
                for lib in shared_libraries(src):
                    add_parents(entries, lib)
                    entries[lib] = ("file", os.path.realpath(lib), 0o755)

        for spec in args.file:
            src, dest = spec.rsplit(":", 1)
            put(src, dest, False)
        for spec in args.binary:
            src, dest = spec.rsplit(":", 1)
            put(src, dest, True)
        for spec in args.text:
            dest, content = spec.split("=", 1)
            add_parents(entries, dest)
            entries[dest] = ("data", content.encode(), 0o644)
        for spec in args.dir:
            dest, _, mode = spec.partition(":")
            add_parents(entries, dest)
            entries[dest] = ("dir", None, int(mode or "755", 8))
        layer_digest, layer = blob(layer_bytes(entries))

    labels = dict(label.split("=", 1) for label in args.label)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "User": args.user,
            "Entrypoint": args.entrypoint or None,
            "Cmd": args.cmd or None,
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", *args.env],
            "WorkingDir": args.workdir,
            "Labels": labels or None,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "hack/oci-image.py"}],
    }
    config_digest, config_bytes = blob(json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                    "size": len(layer)}],
    }
    manifest_digest, manifest_bytes = blob(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())
    tag = args.name.rsplit(":", 1)[1] if ":" in args.name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": len(manifest_bytes),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": args.name, "org.opencontainers.image.ref.name": tag},
        }],
    }
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True).encode(),
        "blobs/sha256/" + config_digest[7:]: config_bytes,
        "blobs/sha256/" + manifest_digest[7:]: manifest_bytes,
        "blobs/sha256/" + layer_digest[7:]: layer,
    }
    tmp = args.output + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in ["blobs", "blobs/sha256"]:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tar.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, EPOCH
            tar.addfile(info, io.BytesIO(files[name]))
    os.replace(tmp, args.output)
    print(f"{args.name} {manifest_digest} ({len(layer) / 1e6:.1f} MB) -> {args.output}")


if __name__ == "__main__":
    main()
