"""The compose corpus (issue 25) on the small corpus written here: pushorch reads each file to the
services docker-compose's own `config` prints, or refuses it naming what it does not map. The public
corpora (docker/awesome-compose, the compose-spec's examples) are run by hand: docs/compose.md."""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.conftest import ROOT


def test_the_small_corpus_reads_as_docker_compose_reads_it_or_is_refused_by_name() -> None:
    assert shutil.which("docker-compose"), "the reference: apt install docker-compose (scripts/setup does)"
    done = subprocess.run(
        [sys.executable, "-m", "bench.compose_corpus", "tests/fixtures/compose_corpus"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "6 compose files: 1 refused, 5 same, 6 schema-valid, 0 differ", done.stdout
    assert "  refused 1x: pushorch names the containers (a rollout runs two at once): remove it" in lines
