"""`rollback` (pure): back to the kept container as it was, by spec not version label; a second
rollback goes further back; `--hold` keeps apply and reconcile off the service (issue 27 item 7)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pushorch.commands import docker as docker_cmd
from pushorch.errors import NothingToRollBack
from pushorch.load.playbooks import load_spec
from pushorch.planner import Options, plan
from pushorch.planner.config import config_files, digests
from pushorch.planner.rollback import rollback_plan
from pushorch.spec import Spec
from tests.unit.test_planner_golden import _observed

PLAYBOOK = """
- hosts: web
  services:
    - name: web
      image: "reg/web:1"
      env: {MODE: "{{ mode | default('good') }}"}
      update: {keep: 3}
"""


def _spec(tmp_path: Path, *extra: str) -> Spec:
    (tmp_path / "inv.ini").write_text("[web]\nw1\n")
    (tmp_path / "p.yml").write_text(PLAYBOOK)
    return load_spec([str(tmp_path / "inv.ini")], [str(tmp_path / "p.yml")], list(extra))[1]


def _env_only_deploy(spec: Spec):  # type: ignore[no-untyped-def]
    """w1 after a bad deploy that changed only the env: it runs the playbook's spec; the good one is kept."""
    return _observed(
        spec,
        "w1",
        {
            "images": ["reg/web:1"],
            "containers": [
                {"service": "web", "state": "running", "version": "1"},
                {"service": "web", "state": "exited", "version": "1", "was": {"env": {"MODE": "good"}},
                 "finished": "2026-12-01T10:00:00Z"},
            ],
        },
    )  # fmt: skip


def _steps(result):  # type: ignore[no-untyped-def]
    return [a for r in result.rollouts for b in r.batches for a in b]


def test_a_bad_deploy_that_changed_only_env_is_rolled_back_to_the_kept_container(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "mode=bad")  # the bad deploy: same image and version label, another env
    seen = _env_only_deploy(spec)
    kept = next(c for c in seen.containers if not c.running)
    [step] = _steps(rollback_plan(spec, {"w1": seen}, Options(), "web", None, False))
    assert (step.name, step.argv, step.snapshot, step.rollback) == (kept.name, (), kept.name, True)
    assert step.old == (next(c for c in seen.containers if c.running).name,) and step.hold == ""
    assert "rollback to kept container" in step.reason


def test_a_second_rollback_goes_further_back_not_to_what_the_first_retired(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    seen = _observed(
        spec,
        "w1",
        {
            "images": ["reg/web:1"],
            "containers": [
                {"service": "web", "state": "exited", "version": "2", "was": {"image": "reg/web:2"},
                 "finished": "2026-12-02T10:00:00Z"},
                {"service": "web", "state": "running", "version": "1"},
                {"service": "web", "state": "exited", "version": "0", "was": {"image": "reg/web:0"},
                 "finished": "2026-12-01T10:00:00Z"},
            ],
        },
    )  # fmt: skip
    bad = seen.containers[0]
    [step] = _steps(rollback_plan(spec, {"w1": seen}, Options(), "web", None, False))
    assert step.version == "2"  # nothing marks v2 as rolled back: it is the previous one
    marked = replace(seen, rolled_back=frozenset({bad.name}))
    [step] = _steps(rollback_plan(spec, {"w1": marked}, Options(), "web", None, False))
    assert step.version == "0" and step.name == seen.containers[2].name
    [step] = _steps(rollback_plan(spec, {"w1": marked}, Options(), "web", "2", False))
    assert step.name == bad.name  # named with --to: allowed
    only_bad = replace(marked, containers=seen.containers[:2])
    with pytest.raises(NothingToRollBack):
        rollback_plan(spec, {"w1": only_bad}, Options(), "web", None, False)


def test_a_hold_keeps_apply_off_the_service_until_the_playbook_changes(tmp_path: Path) -> None:
    bad = _spec(tmp_path, "mode=bad")
    seen = _env_only_deploy(bad)
    [step] = _steps(rollback_plan(bad, {"w1": seen}, Options(), "web", None, True))
    host = bad.hosts["w1"]
    service = host.plays[0].services[0]
    digest = docker_cmd.spec_hash(service, digests(config_files(host, service)))
    assert step.hold == digest  # the bad playbook's spec: what the hold refuses
    # After the rollback: the good container runs, the bad one is kept; the hold is on the host.
    after = replace(
        seen,
        containers=tuple(replace(c, state="exited" if c.running else "running") for c in seen.containers),
        holds={"web": (digest, step.name)},
    )
    held = plan(bad, {"w1": after})
    assert not held.rollouts and not held.actions
    assert held.notes == (
        f"w1: web: held on {step.name} by `rollback --hold`: the playbook's version is not deployed here until"
        " it changes or `pushorch rollback --release`",
    )
    newer = _spec(tmp_path, "mode=fixed")  # a new version in the playbook ends the hold
    assert [a.version for a in _steps(plan(newer, {"w1": after}))] == ["1"] and not plan(newer, {"w1": after}).notes
