"""Executable inventory sources (Ansible's script plugin): `SCRIPT --list` / `--host NAME`, run on the
controller without a shell, bounded in time; stderr is shown only as its first line."""

from __future__ import annotations

import os
import subprocess

TIMEOUT = 60.0


def run(path: str, args: list[str]) -> tuple[str | None, str]:
    """(stdout, "") or (None, why it failed)."""
    try:
        argv = [os.path.abspath(path), *args]  # a relative path is a file here, not a command on PATH
        done = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    except OSError as exc:
        return None, f"cannot run it: {exc.strerror or exc}"
    except subprocess.TimeoutExpired:
        return None, f"no answer within {TIMEOUT:g}s"
    if done.returncode != 0:
        first = (done.stderr.decode("utf-8", "replace").strip().splitlines() or [""])[0][:200]
        return None, f"{' '.join(args)} exited {done.returncode}" + (f": {first}" if first else "")
    return done.stdout.decode("utf-8", "replace"), ""
