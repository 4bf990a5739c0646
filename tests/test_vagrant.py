"""Vagrant with the docker provider: two lab machines up, `pushorch exec` through the Vagrant inventory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from pushorch.lab.image import ensure_images
from tests.conftest import ROOT

pytestmark = pytest.mark.lab
VAGRANT_DIR = ROOT / "vagrant"


def _docker(*args: str) -> list[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.split()


def _vagrant(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["vagrant", *args], cwd=VAGRANT_DIR, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def machines() -> Iterator[None]:
    if not shutil.which("vagrant"):
        pytest.fail("vagrant is not installed (scripts/setup installs it)")
    ensure_images(lambda _: None)
    up = _vagrant("up", "--provider=docker")
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    yield
    _vagrant("destroy", "-f")
    for network in _docker("network", "ls", "-q", "--filter", "label=pushorch.vagrant=1"):
        subprocess.run(["docker", "network", "rm", network], check=False, capture_output=True)


def test_exec_through_the_vagrant_inventory(machines: None, run_cli) -> None:  # type: ignore[no-untyped-def]
    listing = run_cli("inventory", "-i", str(VAGRANT_DIR), "--list")
    assert listing.status == 0, listing.err
    hostvars = json.loads(listing.out)["_meta"]["hostvars"]
    assert sorted(hostvars) == ["lab-1", "lab-2"]
    assert {v["host_key_checking"] for v in hostvars.values()} == {"strict"}  # keys verified, not disabled
    result = run_cli(
        "exec",
        "-i",
        str(VAGRANT_DIR),
        "--json",
        "all",
        "--",
        "sh",
        "-c",
        "hostname; docker info --format '{{.Driver}}'",
    )
    assert result.status == 0, result.err
    records = {r["host"]: r for r in map(json.loads, result.out.splitlines())}
    assert {h: r["stdout"].split() for h, r in records.items()} == {
        "lab-1": ["lab-1", "overlay2"],
        "lab-2": ["lab-2", "overlay2"],
    }


def test_zz_destroy_leaves_nothing(machines: None) -> None:
    assert _vagrant("destroy", "-f").returncode == 0
    assert _docker("ps", "-aq", "--filter", "label=pushorch.vagrant=1") == []
    volumes = [v for v in _docker("volume", "ls", "-q") if v.startswith("pushorch-vagrant")]
    for volume in volumes:  # named volumes outlive `vagrant destroy`; the test cleans what the Vagrantfile made
        subprocess.run(["docker", "volume", "rm", volume], check=True, capture_output=True)
    assert os.path.isdir(VAGRANT_DIR / ".keys")
