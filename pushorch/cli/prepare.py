"""What every command that connects prepares: the spec, each host's connection settings (bad
variables located), the fleet Locking, and the locks a mutating run holds."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from pushorch.cli.app import (
    current_app,
    inventory_sources,
    load_context,
    make_overrides,
    missing_controller_files,
    warn_inventory,
    warn_unverified,
)
from pushorch.errors import ExitStatus, InputError, Interrupted, LockLost, Problem

if TYPE_CHECKING:  # imported where used: a command loads only what it runs
    from pushorch.connection import ConnectionSettings
    from pushorch.converge import Outcome
    from pushorch.fleet.lock import Locking
    from pushorch.planner import Options
    from pushorch.spec import Spec


def prepare(
    inventories: tuple[str, ...],
    playbooks: tuple[str, ...],
    extra_vars: tuple[str, ...],
    limit: str | None,
    connection: dict[str, Any],
) -> tuple[Spec, dict[str, ConnectionSettings], Options]:
    spec, settings, options, _ = prepare_locked(inventories, playbooks, extra_vars, limit, connection, None, 0.0)
    return spec, settings, options


def prepare_locked(
    inventories: tuple[str, ...],
    playbooks: tuple[str, ...],
    extra_vars: tuple[str, ...],
    limit: str | None,
    connection: dict[str, Any],
    lock_ttl: int | None,
    lock_wait: float,
) -> tuple[Spec, dict[str, ConnectionSettings], Options, Locking]:
    """Spec, connection settings (warning when host keys go unverified), planner options and the
    fleet Locking (from pushorch_lock_* vars and the lock options)."""
    from pushorch.connection import settings_for
    from pushorch.fleet.lock import DEFAULT_TTL, Locking
    from pushorch.load.playbooks import load_spec
    from pushorch.planner import Options
    from pushorch.variables import LOCK_VARIABLES, VariableError, typed

    context = load_context()
    inventory, spec = load_spec(inventory_sources(inventories), playbooks, extra_vars, limit, context)
    warn_inventory(inventory)
    overrides = make_overrides(connection)
    settings, problems = {}, []
    for name, host_spec in spec.hosts.items():
        try:
            settings[name] = settings_for(name, host_spec.vars, overrides)
        except ValueError as exc:
            problems.extend(variable_problems(exc, inventory, name, extra_vars))
    first_host = next(iter(spec.hosts), None)
    try:
        variables = typed(spec.hosts[first_host].vars, LOCK_VARIABLES) if first_host else {}
    except VariableError as exc:
        problems.extend(variable_problems(exc, inventory, str(first_host), extra_vars))
        variables = {}
    chosen = variables.get("pushorch_lock_host")
    lock_host = None if chosen in (None, "none") else str(chosen)
    lock_settings = None
    if lock_host is not None and lock_host not in settings:
        if lock_host not in inventory.hosts:
            problems.append(Problem("pushorch_lock_host", 0, 0, "", f"{lock_host!r} is not a host of the inventory"))
        else:
            try:
                lock_settings = settings_for(lock_host, inventory.host_vars(lock_host), overrides)
            except ValueError as exc:
                problems.extend(variable_problems(exc, inventory, lock_host, ()))
    problems.extend(missing_controller_files([*settings.values(), *([lock_settings] if lock_settings else [])]))
    if problems:
        raise InputError(merge_hosts(problems))
    warn_unverified(settings.values())
    locking = Locking(
        enabled=chosen != "none",
        host=lock_host,
        settings=lock_settings,
        ttl=int(lock_ttl or variables.get("pushorch_lock_ttl") or DEFAULT_TTL),
        wait=lock_wait,
        backend=str(variables.get("pushorch_lock_backend") or "mkdir"),
        name=str(variables.get("pushorch_lock_name") or "fleet"),
        command=current_app().command,
    )
    from pushorch.load.owner import owner

    return spec, settings, Options(playbooks=tuple(owner(p) for p in playbooks)), locking


def variable_problems(exc: ValueError, inventory: Any, host: str, extra_vars: tuple[str, ...]) -> list[Problem]:
    """One Problem per bad variable of a host, located where its value was set (-e or the inventory
    file), naming the host; other ValueErrors from the settings name the host only."""
    from pushorch.load.extravars import parse_extra_vars
    from pushorch.variables import VariableError

    if not isinstance(exc, VariableError):
        return [Problem(f"host {host}", 0, 0, "", str(exc))]
    extra, _ = parse_extra_vars(list(extra_vars), load_context())
    return [
        Problem("-e" if name in extra else inventory.origin(host, name), 0, 0, name, f"{message} (host {host})")
        for name, message in exc.problems
    ]


def merge_hosts(problems: list[Problem]) -> list[Problem]:
    """Problems that differ only by the host they end with, '(host X)', as one naming every host."""
    hosts: dict[Problem, list[str]] = {}
    for problem in problems:
        head, sep, tail = problem.message.rpartition(" (host ")
        key = Problem(problem.path, problem.line, problem.col, problem.key, head) if sep else problem
        named = hosts.setdefault(key, [])
        if sep and tail.rstrip(")") not in named:
            named.append(tail.rstrip(")"))
    return [
        Problem(p.path, p.line, p.col, p.key, f"{p.message} ({'host' if len(h) == 1 else 'hosts'} {', '.join(h)})")
        if h
        else p
        for p, h in hosts.items()
    ]


def exit_status(outcome: Outcome, pending: bool, detailed: bool, reverts: bool = True) -> int:
    """`reverts`: the command rolls back a failed rollout (6); `restart` has no version to go back to (5)."""
    if outcome.interrupted:
        return 128 + outcome.interrupted  # as a shell reports a process a signal ended: 130, 143
    if outcome.lock_lost:
        raise LockLost(f"{outcome.lock_lost}: this run stopped before its next step")
    if outcome.revert_failed:
        return ExitStatus.REVERT_FAILED
    if outcome.aborted:
        return ExitStatus.ROLLOUT_ABORTED if reverts else ExitStatus.APPLY_FAILED
    if outcome.unreachable:
        return ExitStatus.UNREACHABLE
    if outcome.failed:
        return ExitStatus.APPLY_FAILED
    return ExitStatus.CHANGES_PENDING if detailed and pending else ExitStatus.OK


def local_lock(lock_file: str | None, locking: Any, skip: bool = False) -> contextlib.AbstractContextManager[Any]:
    """The local flock every mutating command holds (none for --check, --dry-run)."""
    from pathlib import Path

    from pushorch.fleet.lock import LocalLock, default_lock_file

    if skip:
        return contextlib.nullcontext()
    return LocalLock(Path(lock_file) if lock_file else default_lock_file(), locking.wait, locking.command)


def converge_locked(lock_file: str | None, locking: Locking, check_only: bool = False, **kw: Any) -> Outcome:
    """converge() under the local flock and the fleet lock, as every mutating command runs it;
    --check takes neither."""
    from pushorch.converge import converge
    from pushorch.execute.interrupt import Interrupt, interruptible

    interrupt = Interrupt()
    with local_lock(lock_file, locking, skip=check_only):
        work = converge(locking=locking, check_only=check_only, interrupt=interrupt, **kw)
        try:
            return asyncio.run(interruptible(work, interrupt, kw.get("emit") or (lambda _: None)))
        except asyncio.CancelledError:  # stopped at once: the lock is released, the hosts may be in between
            raise Interrupted(interrupt.left(), interrupt.exit_status) from None
