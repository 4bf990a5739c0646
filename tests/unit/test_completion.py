"""Shell completion as the README gives it: the script click prints, sourced in a real bash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _complete(words: list[str]) -> list[str]:
    script = (
        'eval "$(_PUSHORCH_COMPLETE=bash_source pushorch)"; '
        f"COMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}; "
        '_pushorch_completion pushorch; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, check=True)
    return done.stdout.split()


def test_bash_completes_commands_and_options() -> None:
    if not (BIN / "pushorch").exists() or not shutil.which("bash"):
        pytest.fail("the pushorch entry point (an install into this venv) and bash are needed")
    assert _complete(["pushorch", "ro"]) == ["rollback"]
    assert "--limit" in _complete(["pushorch", "apply", "--li"])
    assert set(_complete(["pushorch", "lab", ""])) >= {"up", "down", "status"}
