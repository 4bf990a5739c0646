"""Execute a Plan: each host's actions in order, hosts concurrently; a failed action stops its host only."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pushorch import actions as a
from pushorch import consul_client
from pushorch.commands import docker as docker_cmd
from pushorch.commands import system
from pushorch.errors import CommandFailed, PushorchError, TransportError
from pushorch.events import Event
from pushorch.execute.batches import RolloutReport, run_rollout
from pushorch.execute.guard import UNGUARDED, Guard
from pushorch.transport import Transport

Emit = Callable[[Event], None]


@dataclass(slots=True)
class Executed:
    """host -> None (all its actions done) or the error that stopped it; and each rollout's report."""

    hosts: dict[str, str | None] = field(default_factory=dict)
    rollouts: list[RolloutReport] = field(default_factory=list)
    stopped: str = ""  # why later host batches (and every rollout) did not run
    lock_lost: str = ""  # the fleet lock was taken over: nothing after it ran


async def execute(plan: a.Plan, transports: dict[str, Transport], emit: Emit, guard: Guard = UNGUARDED) -> Executed:
    """Each host's actions (hosts concurrently), then the rollouts, on the hosts still standing.

    `guard` is asked before every action and every rollout batch: a run that lost the fleet lock
    finishes the steps under way (each leaves its host on one version) and starts no other.
    """
    done = Executed()
    by_host = plan.by_host()
    batches = plan.host_batches or (tuple(by_host),)
    for index, batch in enumerate(batches):
        mine = {h: by_host[h] for h in batch if h in by_host and h in transports}
        results = await _actions(mine, transports, emit, guard)
        done.hosts.update(results)
        failed = [h for h in batch if results.get(h) is not None]
        done.stopped = done.lock_lost = guard.lost() or ""
        done.stopped = done.stopped or _stop_reason(plan, failed, len(batch))
        if done.stopped:
            left = [h for later in batches[index + 1 :] for h in later]
            emit(Event("", "stopped", None, done.stopped + (f"; not run: {', '.join(left)}" if left else "")))
            return done  # no further batch, and no rollout
    standing = {h: t for h, t in transports.items() if done.hosts.get(h) is None}
    # Services are independent: their rollouts run side by side, each batch by batch.
    fallen = {h: e for h, e in done.hosts.items() if e is not None}
    done.rollouts = list(await asyncio.gather(*(run_rollout(r, standing, emit, fallen, guard) for r in plan.rollouts)))
    done.lock_lost = guard.lost() or ""
    for report in done.rollouts:
        for host, error in {**report.failed, **report.unreachable}.items():
            done.hosts[host] = error
        for host in report.skipped + report.done:
            done.hosts.setdefault(host, None)
    return done


def _stop_reason(plan: a.Plan, failed: list[str], batch_size: int) -> str:
    if failed and plan.any_errors_fatal:
        return f"any_errors_fatal: {', '.join(failed)} failed"
    limit = plan.max_fail_percentage
    if limit is not None and batch_size and 100 * len(failed) / batch_size > limit:
        return f"max_fail_percentage {limit:g}: {len(failed)} of {batch_size} hosts in the batch failed"
    return ""


async def _actions(
    by_host: dict[str, list[a.Action]], transports: dict[str, Transport], emit: Emit, guard: Guard
) -> dict[str, str | None]:
    """Each host's actions in order, hosts concurrently; a failure stops only its host."""

    async def host_run(host: str) -> tuple[str, str | None]:
        transport = transports[host]
        for action in by_host[host]:
            if guard.lost():
                return host, None  # the run stops here; execute() says why, once
            started = time.monotonic()
            try:
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


async def run_action(action: a.Action, transport: Transport) -> None:
    handler = _HANDLERS[type(action)]
    await handler(action, transport)


async def _run(transport: Transport, action: a.Action, argv: tuple[str, ...], what: str, **kw: Any) -> None:
    result = await transport.run(argv, become=action.become, **kw)
    result.check(f"{action.kind}({what})")


async def _install_docker(action: Any, t: Transport) -> None:
    await _run(t, action, system.install_packages(action.package_manager, action.packages), "docker", timeout=900)


async def _start_docker(action: Any, t: Transport) -> None:
    await _run(t, action, system.start_docker(action.systemd), "docker", timeout=120)


async def _write_file(action: Any, t: Transport) -> None:
    mode = int(action.mode, 8) if action.mode else 0o644
    await t.put(action.content.encode(), action.path, mode, become=action.become)
    steps = system.attributes(action.path, None, action.owner, action.group)
    if steps:
        await _run(t, action, ("sh", "-c", " && ".join(steps)), action.path)


async def _ensure_path(action: Any, t: Transport) -> None:
    argv = system.ensure_path(action.path, action.state, action.mode, action.owner, action.group)
    await _run(t, action, argv, action.path)


async def _run_command(action: Any, t: Transport) -> None:
    argv = action.argv
    if action.chdir:
        argv = ("sh", "-c", 'cd "$0" && exec "$@"', action.chdir, *argv)
    await _run(t, action, argv, " ".join(action.argv)[:60], timeout=600)


async def _pull(action: Any, t: Transport) -> None:
    if action.username and action.password is not None:
        login = docker_cmd.login(action.registry or "", action.username)
        result = await t.run(login, stdin=action.password.reveal().encode(), become=action.become)
        result.check(f"PullImage({action.image}): docker login {action.registry}")
    await _run(t, action, docker_cmd.pull(action.image), action.image, timeout=900)


async def _ship(action: Any, t: Transport) -> None:
    """docker save on the controller, gzip, then docker load on the host through the SSH connection."""

    def save() -> bytes:
        done = subprocess.run(["sh", "-c", 'docker save "$0" | gzip -1', action.image], capture_output=True)
        if done.returncode != 0:
            raise CommandFailed("controller", f"ShipImage({action.image})", done.returncode, done.stderr.decode())
        return done.stdout

    data = await asyncio.to_thread(save)
    result = await t.run(docker_cmd.load(), stdin=data, become=action.become, timeout=900)
    result.check(f"ShipImage({action.image})")


async def _restart_container(action: Any, t: Transport) -> None:
    await _run(t, action, docker_cmd.start(action.name), action.name)


async def _remove_container(action: Any, t: Transport) -> None:
    await _run(t, action, docker_cmd.remove(action.name), action.name, timeout=120)


async def _write_consul(action: Any, t: Transport) -> None:
    await _run(t, action, system.parent_dir(action.path), action.path)
    await t.put(action.content.encode(), action.path, 0o640, become=action.become)


async def _remove_consul(action: Any, t: Transport) -> None:
    await _run(t, action, system.remove_file(action.path), action.path)


async def _reload_consul(action: Any, t: Transport) -> None:
    await consul_client.reload(t, action.binary, action.become)


_HANDLERS: dict[type[a.Action], Callable[[Any, Transport], Awaitable[None]]] = {
    a.InstallDocker: _install_docker,
    a.StartDocker: _start_docker,
    a.WriteFile: _write_file,
    a.EnsurePath: _ensure_path,
    a.RunCommand: _run_command,
    a.PullImage: _pull,
    a.ShipImage: _ship,
    a.RestartContainer: _restart_container,
    a.RemoveContainer: _remove_container,
    a.WriteConsul: _write_consul,
    a.RemoveConsul: _remove_consul,
    a.ReloadConsul: _reload_consul,
}
