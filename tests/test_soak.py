"""The fault soak, short: 15 faults with a fixed seed on a lab of its own (bench/soak; the long runs
and their results are in docs/reliability.md). Every violation it prints is a bug to fix."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bench.soak.__main__ import soak
from bench.soak.faults import KINDS
from bench.soak.world import World

pytestmark = pytest.mark.lab

SEED = 20261205


def test_fifteen_faults_at_random_moments_break_no_invariant(tmp_path_factory: pytest.TempPathFactory) -> None:
    if not shutil.which("docker") or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker daemon: the soak needs one (.ci/run starts dockerd)")
    world = World.up(tmp_path_factory.mktemp("soak") / ".lab", 3)
    try:
        assert soak(world, SEED, 15, None, list(KINDS), keep=False) == 0  # its output names each violation
    finally:
        world.lab.down(lambda _: None)
