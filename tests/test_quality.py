"""Static checks run as part of the suite: ruff and mypy --strict, both clean."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def _tool(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_clean() -> None:
    done = _tool("ruff", "check", "pushorch", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr
    done = _tool("ruff", "format", "--check", "pushorch", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_clean() -> None:
    done = _tool("mypy", "--strict", "pushorch")
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_file_the_project_reads_is_ignored_by_git() -> None:
    # A fixture under an ignored name (a corpus directory called build/) passed
    # here and was missing from CI's clean clone.
    done = subprocess.run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "pushorch", "tests", "playbooks", "bench", "inventory", "lab", "scripts", "docs"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    ignored = [p for p in done.stdout.splitlines() if "__pycache__" not in p and not p.endswith(".pyc")]
    assert ignored == [], ignored
