"""pushorch inventory vs ansible-inventory on the same inventories: the output must be identical."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

CASES = sorted(p for p in (FIXTURES / "inventory").iterdir() if p.is_dir())
MODES = [["--list"], ["--list", "--export"], ["--graph", "--vars"]]


def _ansible_inventory() -> str:
    found = shutil.which("ansible-inventory") or str(Path(sys.executable).parent / "ansible-inventory")
    if not os.path.exists(found):
        # ansible-core is a dev dependency: its absence is a broken setup, not a reason to skip.
        pytest.fail("ansible-inventory not found: install the dev extras (pip install -e '.[dev]')")
    return found


def _run(argv: list[str], cwd: Path, home: Path) -> str:
    # An ansible.cfg in a parent directory would change what ansible reads; the fixtures have none.
    env = {**os.environ, "ANSIBLE_HOME": str(home), "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


def test_at_least_fifteen_inventories() -> None:
    assert len(CASES) >= 15


@pytest.mark.ansible
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_same_output_as_ansible_inventory(case: Path, tmp_path: Path) -> None:
    args = shlex.split((case / ".args").read_text())
    ours_exe = [sys.executable, "-m", "pushorch", "inventory"]
    for mode in MODES:
        theirs = _run([_ansible_inventory(), *args, *mode], case, tmp_path)
        ours = _run([*ours_exe, *args, *mode], case, tmp_path)
        assert ours == theirs, f"{case.name} {' '.join(mode)} differs"


@pytest.mark.ansible
@pytest.mark.parametrize("case", ["ini_precedence", "vars_files", "precedence_conflict", "deep_diamond"])
def test_same_host_vars_as_ansible_inventory(case: str, tmp_path: Path) -> None:
    where = FIXTURES / "inventory" / case
    args = shlex.split((where / ".args").read_text())
    for host in ("h1", "h2", "web1", "db1"):
        listing = _run([sys.executable, "-m", "pushorch", "inventory", *args, "--list"], where, tmp_path)
        if f'"{host}"' not in listing:
            continue
        theirs = _run([_ansible_inventory(), *args, "--host", host], where, tmp_path)
        ours = _run([sys.executable, "-m", "pushorch", "inventory", *args, "--host", host], where, tmp_path)
        assert ours == theirs, f"{case} --host {host} differs"


def _warnings(argv: list[str], cwd: Path, home: Path) -> list[str]:
    env = {**os.environ, "ANSIBLE_HOME": str(home), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "0"}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stderr.splitlines() if line.startswith("[WARNING]: ")]


@pytest.mark.ansible
@pytest.mark.parametrize("case", ["name_warnings", "only_group_vars", "ini_basic"])
def test_same_warnings_as_ansible_inventory(case: str, tmp_path: Path) -> None:
    """What ansible-core warns about (names, a source with nothing to parse) is said the same way."""
    where = FIXTURES / "inventory" / case
    args = shlex.split((where / ".args").read_text())
    theirs = _warnings([_ansible_inventory(), *args, "--list"], where, tmp_path)
    ours = _warnings([sys.executable, "-m", "pushorch", "inventory", *args, "--list"], where, tmp_path)
    assert ours == theirs
    assert bool(theirs) == (case != "ini_basic")
