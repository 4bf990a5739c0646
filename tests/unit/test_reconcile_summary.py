"""reconcile's summary (what cron logs and scripts read) says "converged" only when it is true.
Found reading the code (issue 27, item 10): failed and unreachable hosts were summed up as converged."""

from __future__ import annotations

import json

import pytest

from pushorch.converge import Outcome
from pushorch.report.runs import ReconcileReporter


@pytest.mark.parametrize(
    ("failed", "unreachable", "lock_lost", "state"),
    [
        ({}, {}, "", "converged"),
        ({"web2": "PullImage: refused"}, {}, "", "failed"),
        ({}, {"web3": "timed out"}, "", "unreachable"),
        ({"web2": "x"}, {"web3": "y"}, "", "failed"),
        ({}, {}, "taken over by b@ops", "failed"),
    ],
)
def test_the_summary_names_how_the_fleet_ended(
    capsys: pytest.CaptureFixture[str], failed: dict[str, str], unreachable: dict[str, str], lock_lost: str, state: str
) -> None:
    outcome = Outcome(failed=failed, unreachable=unreachable, lock_lost=lock_lost)
    ReconcileReporter(as_json=True).summary(outcome)
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["reconcile"] == state
