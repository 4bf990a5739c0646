"""Executor unit tests on the fake transport: order per host, a failure stops only its host."""

from __future__ import annotations

import asyncio

from pushorch.actions import EnsurePath, Plan, RemoveContainer, RunCommand, WriteFile
from pushorch.connection import ConnectionSettings
from pushorch.events import Event
from pushorch.executor import execute
from pushorch.transport.fake import FakeTransport, Script


def _fake(name: str, script: Script | None = None) -> FakeTransport:
    return FakeTransport(ConnectionSettings(name=name, address=name), script)


def test_actions_run_in_order_and_a_failure_stops_only_its_host() -> None:
    plan = Plan((
        EnsurePath("a", "missing", path="/etc/x", state="directory"),
        WriteFile("a", "missing", path="/etc/x/f", content="hi\n", mode="0640"),
        RunCommand("a", "commands always run", argv=("false-cmd",)),
        RemoveContainer("a", "replaced", service="web", name="web-old"),
        RemoveContainer("b", "replaced", service="web", name="web-old"),
        RunCommand("b", "commands always run", argv=("true",)),
    ))  # fmt: skip
    a = _fake("a", Script().answer(r"^false-cmd$", 1, "", "boom"))
    b = _fake("b")
    events: list[Event] = []
    results = asyncio.run(execute(plan, {"a": a, "b": b}, events.append)).hosts
    assert results == {"a": "a: RunCommand(false-cmd): exit 1: boom", "b": None}
    assert a.calls == ["sh -c 'mkdir -p /etc/x'", "put /etc/x/f 0640", "false-cmd"]  # web-old on a untouched
    assert a.files["/etc/x/f"] == (b"hi\n", 0o640)
    assert b.calls == ["docker rm -f web-old", "true"]
    assert [(e.host, e.status) for e in events if e.host == "a"] == [
        ("a", "changed"),
        ("a", "changed"),
        ("a", "failed"),
    ]


def test_unreachable_during_execution_is_reported_as_such() -> None:
    class Lost(FakeTransport):
        async def run(self, argv, **kw):  # type: ignore[no-untyped-def, override]
            from pushorch.errors import ConnectError

            raise ConnectError(self.settings.name, "connection lost")

    events: list[Event] = []
    plan = Plan((RemoveContainer("c", "replaced", service="web", name="w"),))
    results = asyncio.run(execute(plan, {"c": Lost(ConnectionSettings(name="c", address="c"))}, events.append)).hosts
    assert results == {"c": "c: connection lost"} and events[0].status == "unreachable"
