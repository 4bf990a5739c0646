"""A Consul reload that failed (the agent answered 500) after a definition was written leaves a mark,
and the next run reloads: the file alone looked done, but the agent never loaded it (the soak, seed
358149 round 21)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from pushorch.actions import ReloadConsul
from pushorch.commands import marks
from pushorch.commands.probe import MARK
from pushorch.connection import ConnectionSettings
from pushorch.consul import client as consul_client
from pushorch.errors import PushorchError
from pushorch.facts import parse_probe
from pushorch.load.playbooks import load_spec
from pushorch.planner import Options, plan
from pushorch.transport.fake import FakeTransport, Script
from tests.unit.test_planner_golden import _observed


def test_the_plan_reloads_where_the_last_reload_failed_and_only_there(tmp_path: Path) -> None:
    (tmp_path / "inv.ini").write_text("[web]\nw1\n")
    (tmp_path / "p.yml").write_text("- hosts: web\n  services:\n    - {name: api, image: 'reg/api:1'}\n")
    _, spec = load_spec([str(tmp_path / "inv.ini")], [str(tmp_path / "p.yml")])
    seen = _observed(
        spec, "w1", {"consul": "agent", "images": ["reg/api:1"], "containers": [{"service": "api", "state": "running"}]}
    )
    assert not [a for a in plan(spec, {"w1": seen}, Options()).actions if isinstance(a, ReloadConsul)]
    pending = dataclasses.replace(seen, consul_reload_pending=True)
    (reload,) = [a for a in plan(spec, {"w1": pending}, Options()).actions if isinstance(a, ReloadConsul)]
    assert reload.pending and not reload.binary and "the last reload failed" in reload.reason


def test_the_probe_reads_the_mark() -> None:
    assert any(marks.RELOAD_PENDING in line for line in marks.probe_lines(MARK))
    assert parse_probe("w1", MARK.format("reload") + "\npending\n").consul_reload_pending
    assert not parse_probe("w1", MARK.format("reload") + "\n").consul_reload_pending


def test_a_failed_reload_leaves_the_mark_on_the_host() -> None:
    script = Script().answer(r"consul reload", 1, "", "Error reloading: Unexpected response code: 500")
    host = FakeTransport(ConnectionSettings(name="w1", address="w1"), script)
    with pytest.raises(PushorchError):
        asyncio.run(consul_client.reload(host, True, None))
    assert host.calls[-1] == f"sh -c 'mkdir -p {marks.ROOT} && : > {marks.RELOAD_PENDING}'"
