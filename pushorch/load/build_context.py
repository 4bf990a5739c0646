"""A Docker build context's digest (pure but for reading the files): every file's path and content, the
Dockerfile's name and the build args, so any change to what `docker build` would see changes it."""

from __future__ import annotations

import hashlib
import os

SKIPPED = {".git", "__pycache__"}


def digest(context: str, dockerfile: str, args: dict[str, str], target: str | None = None) -> str:
    """sha256 hex of the context; raises OSError when it cannot be read."""
    if not os.path.isdir(context):
        raise FileNotFoundError(2, "no such directory", context)
    h = hashlib.sha256()
    h.update(f"dockerfile={dockerfile}\n".encode())
    if target is not None:  # another stage is another image (absent: the digests of earlier builds hold)
        h.update(f"target={target}\n".encode())
    for key, value in sorted(args.items()):
        h.update(f"arg {key}={value}\n".encode())
    for root, dirs, files in os.walk(context):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED)
        for name in sorted(files):
            path = os.path.join(root, name)
            relative = os.path.relpath(path, context)
            h.update(f"file {relative} {os.stat(path).st_mode & 0o777:o}\n".encode())
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 16), b""):
                    h.update(chunk)
    return h.hexdigest()
