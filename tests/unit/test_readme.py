"""The README's promises: .ci/run runs exactly the README's test command; the CLI basics hold."""

from __future__ import annotations

import re
import subprocess
import sys

from pushorch import __version__
from tests.conftest import ROOT


def _readme_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README must open with a sh block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_two_commands() -> None:
    assert len(_readme_commands()) == 2


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    test_command = _readme_commands()[1]
    assert test_command in ci_lines


def test_version_and_module_entry_point() -> None:
    done = subprocess.run([sys.executable, "-m", "pushorch", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"pushorch, version {__version__}"


def test_usage_error_exits_2(run_cli) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("inventory", "--no-such-option").status == 2
    assert run_cli("inventory", "-i", "a,", "--list", "--graph").status == 2
