"""Install as users install: a built wheel in fresh venvs, compiled (`__pycache__` everywhere), without
PYTHONDONTWRITEBYTECODE, run from outside the source tree. `pushorch check` of the examples on every
Python 3.11+ this machine has; and the lab driven from the wheel's venv alone (lab up, apply, status,
lab down)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PYTHONS = ("3.11", "3.12", "3.13")


def _user_env() -> dict[str, str]:
    """The environment of a user's shell: bytecode written, nothing pointing into this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


def _find_python(minor: str) -> str | None:
    """A working python{minor}: on PATH, in /usr/bin or /usr/local/bin, or a pyenv version."""
    candidates = [shutil.which(f"python{minor}"), f"/usr/bin/python{minor}", f"/usr/local/bin/python{minor}"]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{minor}*/bin/python{minor}")))
    for candidate in filter(None, candidates):
        if not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run([candidate, "-c", "import sys, venv"], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None


def _venv(python: str, wheel: Path, where: Path) -> Path:
    """A fresh venv with the wheel (and its dependencies from the package index) installed; its pushorch."""
    subprocess.run([python, "-m", "venv", str(where)], check=True, env=_user_env())
    pip = [str(where / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, str(wheel)], check=True, env=_user_env())
    return where / "bin" / "pushorch"


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check", "-w", str(out)]
    subprocess.run([*build, str(ROOT)], check=True, env=_user_env())
    return next(out.glob("pushorch-*.whl"))


@pytest.fixture(scope="session")
def user_pushorch(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed for the interpreter running the tests."""
    return _venv(sys.executable, wheel, tmp_path_factory.mktemp("user") / "venv")


def _run(pushorch: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(pushorch), *args], cwd=cwd, env=_user_env(), capture_output=True, text=True)


def _site_files(pushorch: Path) -> Path:
    python = str(pushorch.parent / "python")
    done = subprocess.run(
        [python, "-c", "import pushorch.lab.files as f; print(f.__path__[0])"],
        capture_output=True,
        text=True,
        check=True,
        env=_user_env(),
        cwd="/",
    )
    return Path(done.stdout.strip())


@pytest.mark.parametrize("minor", PYTHONS)
def test_the_wheel_installs_and_checks_the_examples(minor: str, wheel: Path, tmp_path: Path) -> None:
    python = _find_python(minor)
    if python is None:
        if f"{sys.version_info.major}.{sys.version_info.minor}" == minor:
            pytest.fail(f"python{minor} runs these tests but was not found")
        pytest.skip(f"no python{minor} on this machine")
    pushorch = _venv(python, wheel, tmp_path / "venv")
    assert (_site_files(pushorch) / "__pycache__").is_dir()  # compiled, as pip installs for users
    examples = [str(ROOT / "playbooks" / p) for p in ("seed-nginx.yml", "demo-app.yml")]
    done = _run(pushorch, "check", "-i", str(ROOT / "inventory" / "example.ini"), *examples, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok: 2 playbook(s)")


@pytest.mark.lab
def test_the_lab_runs_from_the_installed_wheel(user_pushorch: Path, tmp_path: Path) -> None:
    files = _site_files(user_pushorch)
    assert str(files).startswith(str(user_pushorch.parent.parent)) and (files / "__pycache__").is_dir()
    shutil.copytree(ROOT / "playbooks", tmp_path / "playbooks")  # nothing read from the checkout
    lab = tmp_path / "lab"
    up = _run(user_pushorch, "lab", "up", "--dir", str(lab), cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        inventory = str(lab / "inventory.yml")
        playbook = str(tmp_path / "playbooks" / "seed-nginx.yml")
        applied = _run(user_pushorch, "apply", "-i", inventory, playbook, cwd=tmp_path)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        status = _run(user_pushorch, "status", "-i", inventory, "--json", playbook, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        import json

        rows = json.loads(status.stdout)["services"]
        assert {(r["host"], r["version"], r["health"], r["consul"]) for r in rows} == {
            (h, "1.14.2", "healthy", "registered") for h in ("lab-1", "lab-2", "lab-3")
        }
    finally:
        down = _run(user_pushorch, "lab", "down", "--dir", str(lab), cwd=tmp_path)
    assert down.returncode == 0, down.stdout + down.stderr
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=pushorch.lab.dir={lab.resolve()}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert left.stdout.split() == []
