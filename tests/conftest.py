"""Shared test helpers: run the CLI in-process and capture what it printed and its exit status."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from pushorch.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


@dataclass
class Run:
    status: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Call `pushorch ARGS...` in this process; returns status, stdout and stderr."""

    def run(*args: str, cwd: str | os.PathLike[str] | None = None) -> Run:
        old = os.getcwd()
        if cwd is not None:
            os.chdir(cwd)
        try:
            try:
                main(list(args))
                status = 0
            except SystemExit as exc:
                status = int(exc.code or 0) if not isinstance(exc.code, str) else 1
        finally:
            os.chdir(old)
        captured = capsys.readouterr()
        return Run(status, captured.out, captured.err)

    return run
