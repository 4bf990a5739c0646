"""Run a Rollout: batch after batch, hosts of a batch concurrently; stop, and revert, as the policy says.

A batch starts only when every gate of the one before passed (or its failures stay within
max_failures). More failed gates than allowed abort the rollout: later batches never start, and with
auto_revert every host this rollout already moved goes back, batch by batch in reverse order. More
hosts lost than max_unreachable stop it too, without reverting (the new version is not at fault).
Only a rollout that completes removes the kept containers beyond `keep`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

from pushorch.actions import JobRun, ReplaceContainer, Rollout
from pushorch.commands import docker as docker_cmd
from pushorch.commands import service_scripts, shell, system
from pushorch.errors import PushorchError
from pushorch.events import Event
from pushorch.execute.edges import Edges
from pushorch.execute.guard import UNGUARDED, Guard
from pushorch.execute.hooks import run_hook
from pushorch.execute.kept import drop_kept
from pushorch.execute.replace import HostResult, Replacer, StepRecord
from pushorch.transport import Transport

Emit = Callable[[Event], None]


@dataclass(slots=True)
class RolloutReport:
    """What a rollout did, per host, and why it stopped (if it did)."""

    service: str
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)
    reverted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stopped: str = ""  # why later batches did not run; "" when it ran to the end
    aborted: bool = False  # stopped by failed gates (exit 6)
    wall: float = 0.0
    waiting: float = 0.0  # asleep between health probes and in `delay`s (the longest host of each batch)
    batches: list[dict[str, float]] = field(default_factory=list)  # each batch's wall and waiting, in order

    @property
    def revert_failed(self) -> bool:
        """A host the rollout could not put back: its auto-revert, or its own old container, failed."""
        marks = ("revert failed:", "did not come back healthy", "could not restore the old container")
        return any(mark in message for message in self.failed.values() for mark in marks)

    @property
    def own(self) -> float:
        """pushorch's own time: wall minus waiting (docker run/stop, probe round trips, inspects, Consul)."""
        return max(0.0, self.wall - self.waiting)

    def to_json(self) -> dict[str, object]:
        times = {"wall": round(self.wall, 3), "waiting": round(self.waiting, 3), "own": round(self.own, 3)}
        return {**asdict(self), **times}


async def run_rollout(
    rollout: Rollout,
    transports: Mapping[str, Transport],
    emit: Emit,
    failed_before: Mapping[str, str] | None = None,
    guard: Guard = UNGUARDED,
    record: StepRecord | None = None,
) -> RolloutReport:
    """Run the batches; hosts in `failed_before` (their image pull or preparation failed) count as failed.
    Before each batch the guard confirms the run still holds the fleet lock."""
    report = RolloutReport(rollout.service)
    started = time.monotonic()
    # A pre_deploy hook or a job (a migration) changes things too: the lock is confirmed before them.
    why = (await guard.confirm() or "") if dict(rollout.hooks).get("pre_deploy") or rollout.jobs else ""
    if not why:
        status = await run_hook(rollout, "pre_deploy", emit)
        why = f"the pre_deploy hook exited {status}" if status else await _run_jobs(rollout, transports, emit)
    if why:  # nothing was replaced: every host keeps what it runs
        report.stopped = f"{why}: nothing was replaced"
        report.failed.update({h: f"not updated: {report.stopped}" for h in rollout.hosts})
        emit(Event("", "stopped", None, f"{rollout.service}: {report.stopped}"))
        report.wall = time.monotonic() - started
        return report
    passed: list[tuple[ReplaceContainer, HostResult]] = []  # moved hosts, with what their way back puts back
    total = len(rollout.batches)
    before = failed_before or {}
    report.failed.update({h: f"not updated: {before[h]}" for h in rollout.hosts if h in before})
    if len(report.failed) > rollout.max_failures:
        report.stopped = (
            f"{len(report.failed)} host(s) failed before the first batch, max_failures is {rollout.max_failures}"
        )
    for index, batch in enumerate(rollout.batches):
        batch = tuple(a for a in batch if a.host not in report.failed)
        if not batch:
            continue
        if not report.stopped and (lost := await guard.confirm()):
            report.stopped = lost
        if report.stopped:
            report.skipped.extend(a.host for a in batch)
            emit(Event("", "skipped", None, f"{rollout.service}: batch {index + 1} of {total} not started"))
            continue
        label = " (canary)" if rollout.canary and index == _canary_index(rollout) else ""
        hosts = ", ".join(a.host for a in batch)
        emit(Event("", "batch", None, f"{rollout.service}: batch {index + 1} of {total}{label}: {hosts}"))
        batch_started = time.monotonic()
        results = await asyncio.gather(*(_one(a, transports, emit, record) for a in batch))
        waited = max(r.gate_wait for r in results)  # a batch's hosts wait side by side
        report.waiting += waited
        report.batches.append({"wall": round(time.monotonic() - batch_started, 3), "waiting": round(waited, 3)})
        for action, result in zip(batch, results, strict=True):
            if result.status == "done":
                report.done.append(action.host)
                passed.append((action, result))
            elif result.status == "unreachable":
                report.unreachable[action.host] = result.message
            else:
                report.failed[action.host] = result.message
                report.reverted.append(action.host)
        if len(report.failed) > rollout.max_failures:
            report.stopped = f"{len(report.failed)} failed gate(s), max_failures is {rollout.max_failures}"
            report.aborted = True
        elif len(report.unreachable) > rollout.max_unreachable:
            report.stopped = f"{len(report.unreachable)} host(s) lost, max_unreachable is {rollout.max_unreachable}"
        if not report.stopped and rollout.delay and index < total - 1:
            await asyncio.sleep(rollout.delay)
            report.waiting += rollout.delay
    if report.aborted and rollout.auto_revert and passed:
        await _revert(rollout, passed, transports, emit, report)
    if report.stopped:
        emit(Event("", "aborted" if report.aborted else "stopped", None, f"{rollout.service}: {report.stopped}"))
    else:
        await asyncio.gather(*(drop_kept(a, transports[a.host]) for a, _ in passed if a.drop))
    # The rollout's outcome is final here (the hook cannot change it; its failure is said, not fatal).
    outcome = "aborted" if report.aborted else "stopped" if report.stopped else "done"
    after = await run_hook(rollout, "on_abort" if report.stopped else "post_deploy", emit, outcome)
    if after:
        emit(Event("", "progress", None, f"{rollout.service}: the hook after the rollout exited {after}"))
    report.wall = time.monotonic() - started
    return report


async def prune_images(
    rollouts: tuple[Rollout, ...], reports: list[RolloutReport], transports: Mapping[str, Transport]
) -> None:
    """After every rollout of the pass: each completed rollout's old images go from the hosts it moved.
    Not sooner: a sibling service of the same repository may have pulled its new image for a rollout
    that waits on this one (`depends_on`), and no container uses that image yet."""
    jobs = []
    for rollout, report in zip(rollouts, reports, strict=True):
        if report.stopped or not rollout.image_repository:
            continue
        prune = service_scripts.prune([], [(rollout.image_repository, rollout.keep_images)])
        become = {a.host: a.become for batch in rollout.batches for a in batch}
        jobs += [_best_effort(transports[h], prune, become.get(h)) for h in report.done if h in transports]
    await asyncio.gather(*jobs)


async def _run_jobs(rollout: Rollout, transports: Mapping[str, Transport], emit: Emit) -> str:
    """The rollout's jobs, in order, their output streamed; why the rollout must not go on, or ""."""
    for job in rollout.jobs:
        transport = transports.get(job.host)
        if transport is None:
            return f"job {job.name}: {job.host} is not reachable"
        emit(Event(job.host, "progress", None, f"{rollout.service}: job {job.name} on {job.host}"))
        why = await _run_job(job, transport, rollout.service, emit)
        if why:
            # A failed job leaves no container behind: one killed at its deadline on the host is
            # already gone; this catches the rest (no `timeout` there, a connection that dropped).
            if job.container:
                await _best_effort(transport, docker_cmd.remove(job.container), job.become)
            return why
    return ""


async def _run_job(job: JobRun, transport: Transport, service: str, emit: Emit) -> str:
    try:
        if job.env_file:
            path, content = job.env_file
            await transport.run(system.parent_dir(path, 0o700), timeout=30, become=job.become)
            await transport.put(content.encode(), path, 0o600, become=job.become)

        def line(_: str, text: str, name: str = job.name, host: str = job.host) -> None:
            emit(Event(host, "progress", None, f"{service}: job {name}: {text}"))

        status = await transport.stream(job.argv, line, become=job.become)
    except PushorchError as exc:
        return f"job {job.name} on {job.host}: {exc}"
    if status != 0:
        late = (
            f" (out of time after {job.timeout:g}s: stopped and removed)" if status in shell.DEADLINE_STATUSES else ""
        )
        return f"job {job.name} on {job.host} exited {status}{late}"
    return ""


async def _best_effort(transport: Transport, argv: tuple[str, ...], become: bool | None) -> None:
    with contextlib.suppress(PushorchError):  # old images left behind are removed by the next prune
        await transport.run(argv, timeout=120, become=become)


def _canary_index(rollout: Rollout) -> int:
    """The canary batch follows the batch of fresh starts when there is one."""
    first = rollout.batches[0] if rollout.batches else ()
    return 1 if first and not first[0].old else 0


async def _one(
    action: ReplaceContainer, transports: Mapping[str, Transport], emit: Emit, record: StepRecord | None
) -> HostResult:
    transport = transports.get(action.host)
    if transport is None:
        result = HostResult("unreachable", "not connected")
    else:
        started = time.monotonic()

        def progress(message: str) -> None:
            emit(Event(action.host, "progress", action, message, time.monotonic() - started))

        result = await Replacer(action, transport, progress, record, _edges(action, transports)).replace()
    status = {"done": "changed", "failed": "failed", "unreachable": "unreachable"}[result.status]
    emit(Event(action.host, status, action, result.message))  # type: ignore[arg-type]
    return result


def _edges(action: ReplaceContainer, transports: Mapping[str, Transport]) -> Edges | None:
    target, local = action.ingress, transports.get(action.host)
    if target is None or not target.edges or local is None:
        return None
    edges = {e: transports.get(e) for e in target.edges}
    return Edges(action.service, action.host, target, edges, local, action.become)


async def _revert(
    rollout: Rollout,
    passed: list[tuple[ReplaceContainer, HostResult]],
    transports: Mapping[str, Transport],
    emit: Emit,
    report: RolloutReport,
) -> None:
    """auto_revert: the hosts this rollout moved go back, most recent batch first, one batch at a time."""
    moved = {id(a): saved for a, saved in passed}
    for batch in reversed(rollout.batches):
        todo = [(a, moved[id(a)]) for a in batch if id(a) in moved and a.old and not a.restart]
        if not todo:
            continue
        emit(Event("", "batch", None, f"{rollout.service}: reverting {', '.join(a.host for a, _ in todo)}"))

        async def back(action: ReplaceContainer, moved_by: HostResult) -> HostResult:
            transport = transports[action.host]
            say = lambda m: emit(Event(action.host, "progress", action, m))  # noqa: E731
            replacer = Replacer(action, transport, say, edges=_edges(action, transports))
            return await replacer.revert(moved_by.saved, moved_by.saved_files)

        results = await asyncio.gather(*(back(a, s) for a, s in todo))
        for (action, _), result in zip(todo, results, strict=True):
            report.done.remove(action.host)
            if result.status == "done":
                report.reverted.append(action.host)
                emit(Event(action.host, "reverted", action, f"back on {action.old_version}"))
            else:
                report.failed[action.host] = "revert failed: " + result.message
                emit(Event(action.host, "failed", action, report.failed[action.host]))
