"""Executor unit tests on the fake transport: order per host, a failure stops only its host."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from pushorch.actions import EnsurePath, Plan, RemoveContainer, ReplaceContainer, Rollout, RunCommand, WriteFile
from pushorch.commands import marks
from pushorch.commands.shell import join
from pushorch.connection import ConnectionSettings
from pushorch.events import Event
from pushorch.execute import execute
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
    removed = join(marks.removing(("docker", "rm", "-f", "web-old"), ("web-old",)))  # its snapshot and marks too
    assert b.calls == [removed, "true"]
    assert [(e.host, e.status) for e in events if e.host == "a" and e.status != "started"] == [
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
    assert results == {"c": "c: connection lost"} and [e.status for e in events] == ["started", "unreachable"]


def test_serial_batches_stop_at_max_fail_percentage_and_nothing_later_runs() -> None:
    plan = Plan(
        tuple(RunCommand(h, "commands always run", argv=("check",)) for h in ("a", "b", "c", "d")),
        host_batches=(("a", "b"), ("c", "d")),
        max_fail_percentage=40,
    )
    hosts = {
        "a": _fake("a"),
        "b": _fake("b", Script().answer("^check$", 1, "", "bad")),
        "c": _fake("c"),
        "d": _fake("d"),
    }
    events: list[Event] = []
    done = asyncio.run(execute(plan, dict(hosts), events.append))  # type: ignore[arg-type]
    assert done.stopped == "max_fail_percentage 40: 1 of 2 hosts in the batch failed"
    assert hosts["a"].calls == ["check"] and hosts["c"].calls == [] and hosts["d"].calls == []
    assert events[-1].status == "stopped" and events[-1].message.endswith("not run: c, d")
    done = asyncio.run(execute(replace(plan, max_fail_percentage=50), dict(hosts), events.append))  # type: ignore[arg-type]
    assert not done.stopped and hosts["d"].calls == ["check"]  # 1 of 2 is not more than 50%


def test_any_errors_fatal_stops_the_rollouts_too() -> None:
    plan = Plan(
        (RunCommand("a", "commands always run", argv=("check",)),),
        rollouts=(Rollout("web", ((ReplaceContainer("b", "not running", service="web", name="web-1"),),)),),
        any_errors_fatal=True,
    )
    hosts = {"a": _fake("a", Script().answer("^check$", 1, "", "bad")), "b": _fake("b")}
    done = asyncio.run(execute(plan, dict(hosts), lambda _: None))  # type: ignore[arg-type]
    assert done.stopped == "any_errors_fatal: a failed" and hosts["b"].calls == [] and done.rollouts == []


class TakenOver:
    """A guard whose lock is taken over once `after` steps have been asked about."""

    def __init__(self, after: int) -> None:
        self.asked, self.after = 0, after

    def lost(self) -> str | None:
        self.asked += 1
        return "taken over by b@ops" if self.asked > self.after else None

    async def confirm(self) -> str | None:
        return self.lost()


def test_a_lost_fleet_lock_stops_before_the_next_step_and_no_rollout_starts() -> None:
    plan = Plan(
        (RunCommand("a", "commands always run", argv=("one",)), RunCommand("a", "commands always run", argv=("two",))),
        rollouts=(Rollout("web", ((ReplaceContainer("a", "not running", service="web", name="web-1"),),)),),
    )
    a = _fake("a")
    done = asyncio.run(execute(plan, {"a": a}, lambda _: None, TakenOver(after=1)))
    assert a.calls == ["one"] and done.lock_lost == "taken over by b@ops" and done.rollouts == []


def test_image_pulls_are_bounded_by_forks_other_steps_are_not() -> None:
    """Issue 27 item 11: -f bounded only the handshakes, so every host of the fleet pulled at once."""
    from pushorch.actions import PullImage

    under_way = {"pull": 0, "other": 0}
    most = {"pull": 0, "other": 0}

    class Slow(FakeTransport):
        async def run(self, argv, **kw):  # type: ignore[no-untyped-def, override]
            kind = "pull" if "docker pull" in " ".join(argv) else "other"
            under_way[kind] += 1
            most[kind] = max(most[kind], under_way[kind])
            await asyncio.sleep(0.05)
            under_way[kind] -= 1
            return await super().run(argv, **kw)

    hosts = [f"h{i}" for i in range(8)]
    plan = Plan(
        tuple(PullImage(h, "image not on the host", image="reg/web:2") for h in hosts)
        + tuple(RunCommand(h, "commands always run", argv=("true",)) for h in hosts)
    )
    for bound, seen in ((3, 3), (100, 8)):
        most["pull"] = 0
        transports = {h: Slow(ConnectionSettings(name=h, address=h)) for h in hosts}
        done = asyncio.run(execute(plan, dict(transports), lambda _: None, pulls=bound))
        assert done.hosts == dict.fromkeys(hosts) and most["pull"] == seen, (bound, most)
