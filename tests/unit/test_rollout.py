"""Rollout and gate unit tests on the fake transport and a fake clock: order of steps, stops, reverts."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Any

from pushorch.actions import Gate, JobRun, Plan, ReplaceContainer, Rollout
from pushorch.commands import docker as docker_cmd
from pushorch.commands import marks, shell
from pushorch.commands.shell import join
from pushorch.connection import ConnectionSettings
from pushorch.consul import commands as consul_cmd
from pushorch.events import Event
from pushorch.execute import execute
from pushorch.execute.batches import run_rollout
from pushorch.execute.health import Reading, wait_healthy
from pushorch.transport.fake import FakeTransport, Script

INSTANT = Gate("running", min_healthy_time=0, deadline=10)
CONSUL = "/etc/consul.d/pushorch-web.json"
RELOAD = join(consul_cmd.reload("http://127.0.0.1:8500"))


def bounded(command: str, seconds: int = 120) -> str:
    """A container step as the replacement sends it: ended on the host at its deadline."""
    return join(shell.bounded(tuple(shlex.split(command)), seconds))


RUN = join(
    shell.bounded(docker_cmd.run_replacing("web-new", ("docker", "run", "-d", "--name", "web-new", "img:2")), 300)
)
PASSED = (
    f"rm -f -- {marks.UNGATED_DIR}/web-new {marks.HOLD_DIR}/web"  # the gate passed: its ungated mark (and a hold) go
)
STOP_OLD, START_OLD, STOP_NEW = (
    bounded(c) for c in ("docker stop -t 10 web-old", "docker start web-old", "docker stop -t 10 web-new")
)
STATE = (
    "docker inspect --format '{{.State.Status}} {{.RestartCount}} {{if .State.Health}}{{.State.Health.Status}}{{end}}\n"
    "{{json .NetworkSettings.Ports}}\n{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' web-new"
)


def _replace(host: str, **kw: object) -> ReplaceContainer:
    fields: dict[str, Any] = {
        "service": "web",
        "version": "2",
        "old_version": "1",
        "name": "web-new",
        "argv": ("docker", "run", "-d", "--name", "web-new", "img:2"),
        "old": ("web-old",),
        "gate": INSTANT,
    }
    fields.update(kw)
    return ReplaceContainer(host, "replace: image changed", **fields)


def _host(name: str, new_state: str = "running") -> FakeTransport:
    script = Script()
    script.answer(r"(?s)docker inspect --format .* web-new$", 0, f"{new_state} \n")
    script.answer(r"(?s)docker inspect --format .* web-old$", 0, "running \n")
    script.answer(r"cat -- ", 0, '{"service": {"id": "web-old-def"}}\n')
    return FakeTransport(ConnectionSettings(name=name, address=name), script)


def _run(rollout: Rollout, hosts: dict[str, FakeTransport]) -> tuple[object, list[Event]]:
    events: list[Event] = []
    done = asyncio.run(execute(Plan(rollouts=(rollout,)), dict(hosts), events.append))
    return done, events


def test_stop_first_drains_stops_starts_gates_then_registers() -> None:
    host = _host("a")
    step = _replace("a", consul_path=CONSUL, consul_content="{new}\n", consul_reload="binary", drop=("web-older",))
    done, _ = _run(Rollout("web", ((step,),)), {"a": host})
    assert host.calls == [
        f'sh -c \'cat -- "$0" 2>/dev/null; rm -f -- "$0"\' {CONSUL}',  # drain first, keeping the old definition
        RELOAD,
        STOP_OLD,  # stopped, not removed: kept for rollback
        RUN,
        *[STATE] * 2,  # the gate's probe, then the confirmation before passing
        f"put {CONSUL} 0640",
        RELOAD,
        PASSED,  # last of the step: a run stopped before it leaves the new one to be gated again
        join(
            marks.removing(("docker", "rm", "-f", "web-older"), ("web-older",))
        ),  # beyond keep, once the rollout passed
    ]
    assert host.files[CONSUL][0] == b"{new}\n"
    assert done.rollouts[0].done == ["a"] and not done.rollouts[0].stopped  # type: ignore[attr-defined]


def test_start_first_stops_the_old_only_after_the_new_passed() -> None:
    host = _host("a")
    _run(Rollout("web", ((_replace("a", order="start-first"),),)), {"a": host})
    assert host.calls[-5:] == [RUN, STATE, STATE, STOP_OLD, PASSED]


def test_failed_gate_restores_the_old_container_stops_the_rollout_and_reverts_earlier_batches() -> None:
    hosts = {"a": _host("a"), "b": _host("b", new_state="exited"), "c": _host("c")}
    batches = ((_replace("a", consul_path=CONSUL, consul_content="{new}\n"),), (_replace("b"),), (_replace("c"),))
    done, events = _run(Rollout("web", batches, auto_revert=True), hosts)
    report = done.rollouts[0]  # type: ignore[attr-defined]
    assert report.aborted and report.failed.keys() == {"b"} and report.reverted == ["b", "a"]
    assert "b" in report.failed and "container exited" in report.failed["b"]
    assert hosts["c"].calls == []  # batch 3 never started
    b = hosts["b"].calls
    assert b.index("docker rm -f web-new", b.index(RUN)) < b.index(START_OLD)
    a = hosts["a"].calls
    revert = a[a.index(PASSED) + 1 :]
    assert revert[:2] == [f"rm -f -- {CONSUL}", STOP_NEW]
    assert START_OLD in revert and revert[-1] == "docker rm -f web-new"
    assert hosts["a"].files[CONSUL][0] == b'{"service": {"id": "web-old-def"}}\n'  # the old definition back
    assert [e.message for e in events if e.status == "reverted"] == ["back on 1"]


def test_failures_within_max_failures_let_the_rollout_go_on_and_nothing_is_reverted() -> None:
    hosts = {"a": _host("a"), "b": _host("b", new_state="exited"), "c": _host("c")}
    batches = ((_replace("a"),), (_replace("b"),), (_replace("c"),))
    done, _ = _run(Rollout("web", batches, max_failures=1), hosts)
    report = done.rollouts[0]  # type: ignore[attr-defined]
    assert not report.stopped and report.done == ["a", "c"] and report.reverted == ["b"]
    assert done.hosts == {"a": None, "b": report.failed["b"], "c": None}  # type: ignore[attr-defined]


def test_a_host_lost_mid_rollout_is_unreachable_and_stops_it_without_revert() -> None:
    class Lost(FakeTransport):
        async def run(self, argv, **kw):  # type: ignore[no-untyped-def, override]
            from pushorch.errors import ConnectError

            raise ConnectError(self.settings.name, "connection lost")

    hosts = {"a": _host("a"), "b": Lost(ConnectionSettings(name="b", address="b")), "c": _host("c")}
    batches = ((_replace("a"),), (_replace("b"),), (_replace("c"),))
    done, _ = _run(Rollout("web", batches), hosts)
    report = done.rollouts[0]  # type: ignore[attr-defined]
    assert report.unreachable == {"b": "b: connection lost"} and not report.aborted
    assert report.skipped == ["c"] and report.done == ["a"] and START_OLD not in hosts["a"].calls
    done, _ = _run(Rollout("web", batches, max_unreachable=1), {**hosts, "a": _host("a"), "c": _host("c")})
    assert done.rollouts[0].done == ["a", "c"]  # type: ignore[attr-defined]


def _clocked(readings: list[Reading]) -> tuple[list[float], object, object]:
    now = [0.0]
    it = iter(readings)

    async def check() -> Reading:
        return next(it)

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    return now, check, sleep


def test_gate_needs_min_healthy_time_without_a_break() -> None:
    gate = Gate("http", port=80, interval=1, min_healthy_time=3, deadline=60)
    ok, bad = Reading(True, "HTTP 200"), Reading(False, "HTTP 503")
    now, check, sleep = _clocked([ok, ok, bad, ok, ok, ok, ok])
    result = asyncio.run(wait_healthy(check, gate, clock=lambda: now[0], sleep=sleep))  # type: ignore[arg-type]
    assert result.passed and now[0] == 6  # healthy at 3, 4, 5, 6: the break at 2 restarted the window


def test_gate_fails_at_the_deadline_with_the_last_status_and_at_once_when_the_container_exits() -> None:
    gate = Gate("http", port=80, interval=1, min_healthy_time=1, deadline=3)
    now, check, sleep = _clocked([Reading(False, "HTTP 404")] * 10)
    result = asyncio.run(wait_healthy(check, gate, clock=lambda: now[0], sleep=sleep))  # type: ignore[arg-type]
    assert not result.passed and now[0] == 3 and "last: HTTP 404" in result.why(gate)
    now, check, sleep = _clocked([Reading(True, "HTTP 200"), Reading(False, "container exited", exited=True)])
    result = asyncio.run(wait_healthy(check, Gate("http", min_healthy_time=5), clock=lambda: now[0], sleep=sleep))  # type: ignore[arg-type]
    assert not result.passed and result.why(gate).startswith("container exited after 1.0s")


def test_a_host_that_failed_before_the_rollout_counts_against_max_failures() -> None:
    hosts = {"a": _host("a"), "c": _host("c")}  # b is not standing: its image pull failed
    batches = ((_replace("a"),), (_replace("b"),), (_replace("c"),))
    events: list[Event] = []
    report = asyncio.run(run_rollout(Rollout("web", batches), hosts, events.append, {"b": "b: PullImage: exit 1"}))
    assert report.stopped.startswith("1 host(s) failed before the first batch") and not report.aborted
    assert hosts["a"].calls == [] and hosts["c"].calls == []  # nothing touched
    report = asyncio.run(run_rollout(Rollout("web", batches, max_failures=1), hosts, events.append, {"b": "lost"}))
    assert report.done == ["a", "c"] and report.failed == {"b": "not updated: lost"}


def test_a_lost_fleet_lock_stops_a_rollout_between_batches_without_reverting() -> None:
    from tests.unit.test_executor import TakenOver

    hosts = {h: _host(h) for h in "ab"}
    rollout = Rollout("web", ((_replace("a"),), (_replace("b"),)), auto_revert=True)
    guard = TakenOver(after=2)  # asked after the (empty) host actions, then before batch 1: lost before batch 2
    done = asyncio.run(execute(Plan(rollouts=(rollout,)), dict(hosts), lambda _: None, guard))
    report = done.rollouts[0]
    assert (report.done, report.skipped, report.aborted) == (["a"], ["b"], False)  # a keeps the new version
    assert report.stopped == "taken over by b@ops" and hosts["b"].calls == [] and done.lock_lost


def test_a_gate_counts_only_its_sleeps_as_waiting_and_its_probes_as_pushorchs_own_time() -> None:
    now = [0.0]

    async def slow_probe() -> Reading:
        now[0] += 0.25  # a probe round trip
        return Reading(True, "HTTP 200")

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    gate = Gate("http", port=80, interval=1, min_healthy_time=1, deadline=60)
    result = asyncio.run(wait_healthy(slow_probe, gate, clock=lambda: now[0], sleep=sleep))
    assert result.passed and (result.elapsed, result.waited) == (1.5, 1.0)  # two probes, one sleep


def test_a_failing_pre_deploy_hook_replaces_nothing_and_post_deploy_gets_the_rollout(tmp_path: Path) -> None:
    hosts = {"a": _host("a")}
    failing = (("pre_deploy", ("sh", "-c", "echo checking; exit 4")),)
    done, events = _run(Rollout("web", ((_replace("a"),),), hooks=failing), hosts)
    report = done.rollouts[0]  # type: ignore[attr-defined]
    assert hosts["a"].calls == [] and "pre_deploy hook exited 4" in report.stopped and "a" in report.failed
    assert "web: hook pre_deploy: checking" in [e.message for e in events]
    seen = tmp_path / "env"
    after = (("post_deploy", ("sh", "-c", f"env | grep ^PUSHORCH_ | sort > {seen}")),)
    done, _ = _run(Rollout("web", ((_replace("a"),),), hooks=after), {"a": _host("a")})
    assert seen.read_text().splitlines() == [
        "PUSHORCH_FROM_VERSION=1",
        "PUSHORCH_HOSTS=a",
        "PUSHORCH_RESULT=done",
        "PUSHORCH_SERVICE=web",
        "PUSHORCH_VERSION=2",
    ]


def test_a_rollout_waits_for_its_dependency_and_does_not_start_when_it_stops() -> None:
    hosts = {"a": _host("a"), "b": _host("b", new_state="exited")}
    db = Rollout("db", ((_replace("b", service="db"),),))
    app = Rollout("app", ((_replace("a", service="app"),),), depends_on=("db",))
    events: list[Event] = []
    done = asyncio.run(execute(Plan(rollouts=(app, db)), dict(hosts), events.append))
    reports = {r.service: r for r in done.rollouts}
    assert reports["db"].stopped and reports["app"].skipped == ["a"] and hosts["a"].calls == []
    assert "not started: its dependency db did not complete" in reports["app"].stopped
    ok = {"a": _host("a"), "b": _host("b")}
    events = []
    asyncio.run(execute(Plan(rollouts=(app, db)), dict(ok), events.append))
    batches = [e.message for e in events if e.status == "batch"]
    assert batches == ["db: batch 1 of 1: b", "app: batch 1 of 1: a"]  # the dependency first


def test_a_failing_job_stops_the_rollout_before_any_replacement() -> None:
    hosts = {"a": _host("a"), "b": _host("b")}
    hosts["a"].script.answer(r"docker run --rm --name web-job-migrate", 3, "step 1\nboom\n")
    job = JobRun("a", "migrate", ("docker", "run", "--rm", "--name", "web-job-migrate", "img:2", "migrate"))
    rollout = Rollout("web", ((_replace("a"),), (_replace("b"),)), jobs=(job,))
    done, events = _run(rollout, hosts)
    report = done.rollouts[0]  # type: ignore[attr-defined]
    assert "job migrate on a exited 3: nothing was replaced" in report.stopped
    assert report.failed.keys() == {"a", "b"} and hosts["b"].calls == []
    assert not any("docker run -d" in c for c in hosts["a"].calls)  # no replacement started
    assert "web: job migrate: boom" in [e.message for e in events]


def test_old_images_are_pruned_only_after_every_rollout_of_the_pass() -> None:
    """Issue 27 item 11: the prune after `db`'s rollout removed the image `app` (same repository) had
    just pulled, before `app`'s rollout (which waits on db) could start it."""
    host = _host("a")
    db = Rollout("db", ((_replace("a", service="db"),),), image_repository="reg/shared")
    app = Rollout("app", ((_replace("a", service="app"),),), depends_on=("db",), image_repository="reg/shared")
    asyncio.run(execute(Plan(rollouts=(app, db)), {"a": host}, lambda _: None))
    prunes = [i for i, call in enumerate(host.calls) if "reg/shared" in call]
    runs = [i for i, call in enumerate(host.calls) if "docker run -d --name web-new" in call]
    assert len(prunes) == 2 and runs and max(runs) < min(prunes), host.calls


def test_a_replacement_writes_its_history_record_in_the_command_that_removes_its_ungated_mark() -> None:
    """The soak, seed 193541 round 30: a controller killed after the mark went and before the history
    line was written left a container serving that no history named (and no mark to gate it again)."""
    from pushorch.fleet import history
    from pushorch.fleet.journal import Journal

    host = _host("a")
    journal = Journal({"a": host}, ("pushorch", "apply", "site.yml"))
    stdins: list[bytes | None] = []
    run = host.run

    async def seen(argv: tuple[str, ...], **kw: Any) -> Any:
        stdins.append(kw.get("stdin"))
        return await run(argv, **kw)

    host.run = seen  # type: ignore[method-assign]

    async def go() -> None:
        rollout = Rollout("web", ((_replace("a", order="start-first"),),))
        await execute(Plan(rollouts=(rollout,)), {"a": host}, journal.add, record=journal.step_record)
        await journal.flush()

    asyncio.run(go())
    append, _ = history.append([])
    both = join(("sh", "-c", f"if {join(append)}; then {PASSED}; fi"))
    assert host.calls[-3:] == [STATE, STOP_OLD, both]  # the record, then the mark, in one command, last
    assert b'"to": "2"' in (stdins[-1] or b"") and b'"from": "1"' in (stdins[-1] or b"")
    assert sum(c.startswith(join(append)[:20]) or c == both for c in host.calls) == 1  # not written twice


class _Slow(FakeTransport):
    """Every command takes a moment, as on a real host, and says when it began and ended."""

    async def run(self, argv: Any, **kw: Any) -> Any:
        self.calls.append(f"begin {join(argv)}")
        await asyncio.sleep(0.05 if join(argv) == RELOAD else 0.01)
        done = await super().run(argv, **kw)
        self.calls.append(f"end {join(argv)}")
        return done

    async def put(self, data: bytes, path: str, mode: int = 0o644, *, become: bool | None = None) -> None:
        self.calls.append(f"begin put {path}")
        await asyncio.sleep(0.01)
        await super().put(data, path, mode, become=become)
        self.calls.append(f"end put {path}")


def test_two_services_never_change_the_consul_directory_of_a_host_while_one_reloads_its_agent() -> None:
    """The suite's soak, seed 20261205 round 15: one rollout's drain removed its definition while the
    other's reload read the directory, and the agent refused the reload (no such file)."""
    script = Script().answer(r"(?s)docker inspect --format .* (web|api)-(new|old)$", 0, "running \n")
    host = _Slow(ConnectionSettings(name="a", address="a"), script.answer(r"cat -- ", 0, '{"service": {}}\n'))
    rollouts = tuple(
        Rollout(
            svc,
            (
                (
                    _replace(
                        "a",
                        service=svc,
                        name=f"{svc}-new",
                        old=(f"{svc}-old",),
                        consul_path=f"/etc/consul.d/pushorch-{svc}.json",
                        consul_content="{new}\n",
                        consul_reload="binary",
                        order=order,
                    ),
                ),
            ),
        )
        for svc, order in (("web", "stop-first"), ("api", "start-first"))
    )
    asyncio.run(execute(Plan(rollouts=rollouts), {"a": host}, lambda e: None))
    reloading, overlaps = 0, []
    for call in host.calls:
        if call.startswith(("begin", "end")) and RELOAD in call:
            reloading += 1 if call.startswith("begin") else -1
        elif reloading and call.startswith("begin") and "/etc/consul.d/" in call:
            overlaps.append(call)
    # web (stop-first) reloads after its drain and after its register; api (start-first) after its register
    assert sum(c == f"begin {RELOAD}" for c in host.calls) == 3
    assert overlaps == []


def test_a_rollout_waits_for_the_instances_this_run_started_again_before_it_stops_another() -> None:
    """The soak (seed 1 round 152): after a killed run, the next one started lab-2's exited instance
    (drift) and at once stopped lab-3's for its rollout: for a moment one of three instances served."""
    from pushorch.actions import RestartContainer

    for state, rolls in (("running", True), ("exited", False)):
        b = FakeTransport(
            ConnectionSettings(name="b", address="b"),
            Script().answer(r"(?s)docker inspect --format .* web-b$", 0, f"{state} \n"),
        )
        a = _host("a")
        restart = RestartContainer("b", "exited (drift)", service="web", name="web-b", version="1", gate=INSTANT)
        plan = Plan(actions=(restart,), rollouts=(Rollout("web", ((_replace("a"),),)),))
        events: list[Event] = []
        done = asyncio.run(execute(plan, {"a": a, "b": b}, events.append))
        gated = [c for c in b.calls if c.startswith("docker inspect") and c.endswith("web-b")]
        assert len(gated) >= 2, b.calls  # its gate, on the restarted instance, before the rollout
        assert (RUN in a.calls) == rolls, a.calls
        if not rolls:
            assert "an instance it would count on is not serving (b: web-b" in done.rollouts[0].stopped  # type: ignore[attr-defined]
            assert set(done.hosts) == {"a", "b"} and "web-b, started again" in str(done.hosts["b"])  # type: ignore[attr-defined]


def test_a_restarted_instance_is_gated_on_its_own_consul_check_not_the_first_steps() -> None:
    """CI (the Consul lock test): a killed run left lab-1's instance exited and lab-2 on v2. The next
    run started lab-1's again and asked lab-1's agent for sec-web-lab-2, the rollout's first step's
    check, until the deadline; the rollout did not start and the run exited 0 with lab-2 on v2. The
    planner gives the restart its own check (fixtures/planner/restart_own_gate.yml); it is the one
    probed."""
    from pushorch.actions import RestartContainer

    gate = Gate("consul", consul_id="web-a", min_healthy_time=0, deadline=3, interval=0.1)
    own = Gate("consul", consul_id="web-b", min_healthy_time=0, deadline=3, interval=0.1)
    passing = '{"AggregatedStatus": "passing"}'
    b = FakeTransport(
        ConnectionSettings(name="b", address="b"),
        Script()
        .answer(r"(?s)docker inspect --format .* web-b$", 0, "running \n")
        .serve(r"^GET /v1/agent/health/service/id/web-b ", 200, passing),
    )
    a = _host("a")
    a.script.serve(r"^GET /v1/agent/health/service/id/web-a ", 200, passing)
    restart = RestartContainer("b", "exited (drift)", service="web", name="web-b", version="1", gate=own)
    plan = Plan(actions=(restart,), rollouts=(Rollout("web", ((_replace("a", gate=gate),),)),))
    done = asyncio.run(execute(plan, {"a": a, "b": b}, lambda e: None))
    assert "http GET /v1/agent/health/service/id/web-b HTTP/1.1" in b.calls, b.calls
    assert not done.rollouts[0].stopped and RUN in a.calls  # type: ignore[attr-defined]
