"""Execute a Plan: each host's actions in order, hosts concurrently; a failed action stops its host only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pushorch import actions as a
from pushorch.actions import Rollout
from pushorch.errors import PushorchError, TransportError
from pushorch.events import Event
from pushorch.execute.batches import RolloutReport, prune_images, run_rollout
from pushorch.execute.guard import UNGUARDED, Guard
from pushorch.execute.replace import StepRecord
from pushorch.execute.restarted import restarted, wait_for_restarted
from pushorch.execute.steps import run_action
from pushorch.fanout import DEFAULT_FORKS
from pushorch.transport import Transport

Emit = Callable[[Event], None]


@dataclass(slots=True)
class Executed:
    """host -> None (all its actions done) or the error that stopped it; and each rollout's report."""

    hosts: dict[str, str | None] = field(default_factory=dict)
    rollouts: list[RolloutReport] = field(default_factory=list)
    stopped: str = ""  # why later host batches (and every rollout) did not run
    lock_lost: str = ""  # the fleet lock was taken over: nothing after it ran


async def execute(
    plan: a.Plan,
    transports: dict[str, Transport],
    emit: Emit,
    guard: Guard = UNGUARDED,
    pulls: int = DEFAULT_FORKS,
    record: StepRecord | None = None,
) -> Executed:
    """Each host's actions (hosts concurrently), then the rollouts, on the hosts still standing.

    `guard` is asked before every action and every rollout batch: a run that lost the fleet lock
    finishes the steps under way (each leaves its host on one version) and starts no other.
    `pulls` bounds the image pulls and ships under way at once (a registry, or the controller's
    uplink, serves `-f` hosts at a time, not the whole fleet). `record` gives a replacement its
    history record, written with its last command (fleet/journal.py).
    """
    done = Executed()
    by_host = plan.by_host()
    batches = plan.host_batches or (tuple(by_host),)
    for index, batch in enumerate(batches):
        mine = {h: by_host[h] for h in batch if h in by_host and h in transports}
        results = await _actions(mine, transports, emit, guard, asyncio.Semaphore(max(1, pulls)))
        done.hosts.update(results)
        failed = [h for h in batch if results.get(h) is not None]
        done.lock_lost = guard.lost() or ""
        done.stopped = done.lock_lost or _stop_reason(plan, failed, len(batch))
        if done.stopped:
            left = [h for later in batches[index + 1 :] for h in later]
            emit(Event("", "stopped", None, done.stopped + (f"; not run: {', '.join(left)}" if left else "")))
            return done  # no further batch, and no rollout
    standing = {h: t for h, t in transports.items() if done.hosts.get(h) is None}
    # Services are independent: their rollouts run side by side, each batch by batch.
    fallen = {h: e for h, e in done.hosts.items() if e is not None}
    waits = restarted(plan, standing)
    done.rollouts = await _rollouts(plan.rollouts, standing, emit, fallen, guard, record, waits)
    done.lock_lost = guard.lost() or ""
    for report in done.rollouts:
        for host, error in {**report.failed, **report.unreachable}.items():
            done.hosts[host] = error
        for host in report.skipped + report.done:
            done.hosts.setdefault(host, None)
    await _after(plan, done, standing, emit, guard, pulls)
    return done


async def _rollouts(
    rollouts: tuple[Rollout, ...],
    standing: dict[str, Transport],
    emit: Emit,
    fallen: dict[str, str],
    guard: Guard,
    record: StepRecord | None,
    waits: dict[str, list[a.RestartContainer]],
) -> list[RolloutReport]:
    """Each rollout once its dependencies' rollouts completed (the others side by side); a rollout whose
    dependency stopped does not start."""
    finished: dict[str, asyncio.Future[RolloutReport]] = {
        r.service: asyncio.get_running_loop().create_future() for r in rollouts
    }

    async def one(rollout: Rollout) -> RolloutReport:
        for dependency in rollout.depends_on:
            before = await asyncio.shield(finished[dependency])
            if before.stopped:
                report = RolloutReport(rollout.service, skipped=list(rollout.hosts))
                report.stopped = f"not started: its dependency {dependency} did not complete ({before.stopped})"
                emit(Event("", "skipped", None, f"{rollout.service}: {report.stopped}"))
                finished[rollout.service].set_result(report)
                return report
        if rollout.depends_on:
            emit(Event("", "progress", None, f"{rollout.service}: after {', '.join(rollout.depends_on)}"))
        failing = await wait_for_restarted(rollout, waits.get(rollout.service, []), standing, emit)
        if failing:  # those hosts failed (exit 5): the run did not converge, though it replaced nothing
            report = RolloutReport(rollout.service, skipped=list(rollout.hosts), failed=failing)
            why = "; ".join(f"{host}: {reason}" for host, reason in failing.items())
            report.stopped = f"not started: an instance it would count on is not serving ({why})"
            emit(Event("", "skipped", None, f"{rollout.service}: {report.stopped}"))
            finished[rollout.service].set_result(report)
            return report
        report = await run_rollout(rollout, standing, emit, fallen, guard, record)
        finished[rollout.service].set_result(report)
        return report

    reports = list(await asyncio.gather(*(one(r) for r in rollouts)))
    await prune_images(rollouts, reports, standing)
    return reports


async def _after(
    plan: a.Plan, done: Executed, standing: dict[str, Transport], emit: Emit, guard: Guard, pulls: int
) -> None:
    """`plan.after` once every rollout completed, on the hosts still standing; none when one stopped
    (what they would remove may still be the way back: the next run decides again)."""
    if not plan.after:
        return
    stopped = [r.service for r in done.rollouts if r.stopped] or (["the run"] if guard.lost() else [])
    if stopped:
        emit(Event("", "skipped", None, f"removals after the rollouts not run: {', '.join(stopped)} did not complete"))
        return
    by_host: dict[str, list[a.Action]] = {}
    for action in plan.after:
        if action.host in standing and done.hosts.get(action.host) is None:
            by_host.setdefault(action.host, []).append(action)
    results = await _actions(by_host, standing, emit, guard, asyncio.Semaphore(max(1, pulls)))
    done.hosts.update({h: e for h, e in results.items() if e is not None})


def _stop_reason(plan: a.Plan, failed: list[str], batch_size: int) -> str:
    if failed and plan.any_errors_fatal:
        return f"any_errors_fatal: {', '.join(failed)} failed"
    limit = plan.max_fail_percentage
    if limit is not None and batch_size and 100 * len(failed) / batch_size > limit:
        return f"max_fail_percentage {limit:g}: {len(failed)} of {batch_size} hosts in the batch failed"
    return ""


async def _actions(
    by_host: dict[str, list[a.Action]],
    transports: dict[str, Transport],
    emit: Emit,
    guard: Guard,
    fetching: asyncio.Semaphore,
) -> dict[str, str | None]:
    """Each host's actions in order, hosts concurrently; a failure stops only its host."""

    async def host_run(host: str) -> tuple[str, str | None]:
        transport = transports[host]
        for action in by_host[host]:
            if guard.lost():
                return host, None  # the run stops here; execute() says why, once
            emit(Event(host, "started", action))
            started = time.monotonic()
            try:
                if isinstance(action, (a.PullImage, a.ShipImage)):
                    async with fetching:
                        await run_action(action, transport)
                else:
                    await run_action(action, transport)
            except TransportError as exc:
                emit(Event(host, "unreachable", action, str(exc), time.monotonic() - started))
                return host, str(exc)
            except PushorchError as exc:
                emit(Event(host, "failed", action, str(exc), time.monotonic() - started))
                return host, str(exc)
            emit(Event(host, "changed", action, "", time.monotonic() - started))
        return host, None

    results = await asyncio.gather(*(host_run(h) for h in by_host))
    return dict(results)
