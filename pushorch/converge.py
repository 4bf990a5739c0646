"""apply's loop: connect once per host, then observe -> plan -> execute until nothing is left to do."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace

from pushorch import build
from pushorch.actions import Plan, WriteConsul, WriteFile
from pushorch.connection import ConnectionSettings
from pushorch.consul import client as consul_client
from pushorch.consul.lock import ConsulLock
from pushorch.consul.lock import read_record as read_consul_record
from pushorch.errors import ConnectError, TransportError
from pushorch.events import Event
from pushorch.execute import execute
from pushorch.execute.batches import RolloutReport
from pushorch.execute.failover import continuity_window, health_of_movable, passing_in_consul
from pushorch.execute.guard import UNGUARDED
from pushorch.execute.interrupt import Interrupt, Stoppable
from pushorch.facts import unreachable
from pushorch.fanout import DEFAULT_FORKS
from pushorch.fleet import record as fleetstate
from pushorch.fleet.journal import Journal
from pushorch.fleet.lock import FleetLock, Locking, read_state
from pushorch.fleet.record import FleetState
from pushorch.load import claims
from pushorch.observe import observe, observe_kv, observe_maintenance
from pushorch.observed import ObservedHost
from pushorch.planner import Memory, Options, plan
from pushorch.spec import Spec
from pushorch.transport import Shared, Transport, open_transport

# A pass installs Docker, the next starts containers, a third confirms; more means something flaps.
MAX_PASSES = 4

Planner = Callable[[Spec, Mapping[str, ObservedHost], Options], Plan]


@dataclass(slots=True)
class Outcome:
    """What a run did: the first plan (what `plan` shows), events, and how each host ended."""

    first_plan: Plan = field(default_factory=Plan)
    last_plan: Plan = field(default_factory=Plan)
    events: list[Event] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)
    passes: int = 0
    observed: dict[str, ObservedHost] = field(default_factory=dict)
    rollouts: list[RolloutReport] = field(default_factory=list)
    lock_lost: str = ""  # the fleet lock was taken over mid-run: the run stopped (exit 7)
    interrupted: int = 0  # the signal that stopped the run after the steps under way (exit 128 + it)

    @property
    def aborted(self) -> bool:
        return any(r.aborted for r in self.rollouts)

    @property
    def revert_failed(self) -> bool:
        return any(r.revert_failed for r in self.rollouts)


async def connect_all(
    settings: Mapping[str, ConnectionSettings], forks: int, shared: Shared
) -> tuple[dict[str, Transport], dict[str, str]]:
    handshakes = asyncio.Semaphore(max(1, forks))
    transports: dict[str, Transport] = {}
    failed: dict[str, str] = {}

    async def one(name: str, s: ConnectionSettings) -> None:
        transport = open_transport(s, shared)
        try:
            async with handshakes:
                await transport.connect()
            transports[name] = transport
        except TransportError as exc:
            failed[name] = str(exc)

    await asyncio.gather(*(one(n, s) for n, s in settings.items()))
    return transports, failed


@contextlib.asynccontextmanager
async def connected(
    settings: Mapping[str, ConnectionSettings], forks: int
) -> AsyncIterator[tuple[dict[str, Transport], dict[str, str], Shared]]:
    """(transports, host -> why it could not be reached, the run's shared state): one connection per host,
    every one closed when the block ends, however it ends."""
    shared = Shared()
    transports, failed = await connect_all(settings, forks, shared)
    try:
        yield transports, failed, shared
    finally:
        await asyncio.gather(*(t.close() for t in transports.values()), return_exceptions=True)
        await shared.close()


async def converge(
    spec: Spec,
    settings: Mapping[str, ConnectionSettings],
    *,
    options: Options | None = None,
    forks: int = DEFAULT_FORKS,
    check_only: bool = False,
    diff: bool = False,
    emit: Callable[[Event], None] = lambda _: None,
    locking: Locking | None = None,
    planner: Planner = plan,
    once: bool = False,
    interrupt: Interrupt | None = None,
) -> Outcome:
    """Observe -> plan -> execute until nothing is left. `planner`: another plan than the playbook's
    (rollback, restart). `once`: one pass, for plans that are not level-based (`restart` would restart
    again on every pass, `rollback` would roll forward on the next). `interrupt`: what signals asked
    (execute/interrupt.py); a stop asked for ends the run after the steps under way."""
    outcome = Outcome()
    interrupt = interrupt or Interrupt()
    async with connected(settings, forks) as (transports, outcome.unreachable, shared):
        for host, error in outcome.unreachable.items():
            emit(Event(host, "unreachable", None, error))
        fleet: FleetLock | ConsulLock | None = None
        memory, recorded = Memory(), FleetState()
        try:
            if locking is not None and not check_only:
                fleet = await take_fleet_lock(locking, transports, shared, emit)
            if not check_only:  # images built from a context exist before anything ships or pulls them
                await build.ensure_images(spec, emit)
            for _ in range(MAX_PASSES + 1):  # the last pass only observes: did it converge?
                active = {
                    h: t for h, t in transports.items() if h not in outcome.failed and h not in outcome.unreachable
                }
                observed = await _observe_pass(spec, active, outcome, options, emit)
                if outcome.passes == 0:
                    claims.refuse_claimed(spec, observed)  # two playbooks, one service name: exit 3
                    stored = await _read_record(fleet, locking, transports)
                    memory, recorded = await _memory(spec, observed, active, set(outcome.unreachable), stored)
                current = planner(spec, observed, replace(options or Options(), memory=memory))
                if outcome.passes == 0:
                    await _first_plan(current, outcome, memory, recorded, fleet, emit)
                outcome.last_plan = current
                if diff:
                    await _diffs(current, active, emit)
                if check_only or not current:
                    break
                if outcome.passes == MAX_PASSES:
                    _give_up(current, outcome, emit)
                    break
                outcome.passes += 1
                interrupt.in_flight = True
                try:
                    memory, stop = await _execute_pass(
                        current, active, outcome, emit, fleet, locking, memory, interrupt, forks
                    )
                finally:
                    interrupt.in_flight = False
                if interrupt.signum:
                    outcome.interrupted = interrupt.signum
                    why = f"{interrupt.reason()}: the steps under way finished, no other started"
                    emit(Event("", "stopped", None, why))
                    break
                if once or stop:
                    break
            return outcome
        finally:
            if fleet is not None:
                await fleet.release()


# -- the phases of one converge ----------------------------------------------------------------------


async def _observe_pass(
    spec: Spec,
    active: Mapping[str, Transport],
    outcome: Outcome,
    options: Options | None,
    emit: Callable[[Event], None],
) -> dict[str, ObservedHost]:
    """One probe round trip per standing host (and the KV keys the plan compares); hosts that failed
    or went away keep what they were; a probe that failed takes its host out of the run."""
    observed = await observe_all(spec, active)
    await observe_kv(spec, observed, active, (options or Options()).prune)
    await observe_maintenance(spec, observed, active)
    observed.update({h: unreachable(h, e) for h, e in {**outcome.unreachable, **outcome.failed}.items()})
    for host, seen in observed.items():
        if host in active and seen.error:
            (outcome.failed if seen.reachable else outcome.unreachable)[host] = seen.error
            emit(Event(host, "failed" if seen.reachable else "unreachable", None, seen.error))
    outcome.observed = observed
    return observed


async def _first_plan(
    current: Plan,
    outcome: Outcome,
    memory: Memory,
    recorded: FleetState,
    fleet: FleetLock | ConsulLock | None,
    emit: Callable[[Event], None],
) -> None:
    """What `plan` shows: the first plan and its notes; the fleet record written with this run's
    observation and placement, under the lock and only when it changed (a converged cron run writes
    nothing)."""
    outcome.first_plan = current
    for note in current.notes:
        emit(Event("", "progress", None, note))
    remembered = fleetstate.with_placement(memory.fleet, current.placed)
    if fleet is not None and remembered.known and remembered.to_json() != recorded.to_json():
        await fleet.write_record(remembered)


def _give_up(current: Plan, outcome: Outcome, emit: Callable[[Event], None]) -> None:
    for host in current.hosts:
        outcome.failed[host] = f"still changing after {MAX_PASSES} passes (something undoes the changes)"
        emit(Event(host, "failed", None, outcome.failed[host]))


async def _execute_pass(
    current: Plan,
    active: Mapping[str, Transport],
    outcome: Outcome,
    emit: Callable[[Event], None],
    fleet: FleetLock | ConsulLock | None,
    locking: Locking | None,
    memory: Memory,
    interrupt: Interrupt,
    forks: int = DEFAULT_FORKS,
) -> tuple[Memory, bool]:
    """Run one plan: Consul tokens checked before the first (a refused one stops the run before any
    host is touched), then the plan under the lock's guard, each changed host's history, and the
    instances replaced in place remembered. Returns the memory and whether the run stops here (a
    lost lock, a stopped play or rollout: final for this run, the next run starts it again)."""

    journal = Journal(active, locking.command if locking else ())

    def record(event: Event) -> None:
        outcome.events.append(event)
        journal.add(event)
        interrupt.follow(event)
        emit(event)

    if outcome.passes == 1:
        talking = current.consul_hosts()
        await consul_client.check_tokens([t for h, t in active.items() if h in talking])
    try:
        guard = Stoppable(fleet or UNGUARDED, interrupt)
        results = await execute(current, dict(active), record, guard, forks, journal.step_record)
    finally:  # also when a second signal cancelled the pass: what changed so far is history
        await journal.flush()
    if fleet is not None and memory.fleet.known:
        memory = await _replaced_in_place(current, results.rollouts, memory, fleet)
    outcome.rollouts.extend(results.rollouts)
    outcome.lock_lost = (fleet.lost() or "") if fleet is not None else ""
    for host, problem in results.hosts.items():
        if problem is None:
            continue
        lost = any(e.host == host and e.status == "unreachable" for e in outcome.events)
        (outcome.unreachable if lost else outcome.failed)[host] = problem
    stop = bool(outcome.lock_lost or results.stopped or any(r.stopped for r in results.rollouts))
    return memory, stop


async def _read_record(
    fleet: FleetLock | ConsulLock | None, locking: Locking | None, transports: Mapping[str, Transport]
) -> FleetState:
    """The fleet record lives beside the lock (the lock host's file, or with the consul backend the KV
    store): written under the lock, read the same way by plan and --check without it."""
    if fleet is not None:
        return await fleet.read_record()
    host = locking.pick(list(transports)) if locking is not None else None
    transport = transports.get(host) if host is not None else None
    if transport is None or locking is None:
        return FleetState()
    if locking.backend == "consul":
        return (await read_consul_record(transport, locking.name))[0]
    return await read_state(transport)


async def _memory(
    spec: Spec,
    observed: Mapping[str, ObservedHost],
    active: Mapping[str, Transport],
    lost: set[str],
    previous: FleetState,
) -> tuple[Memory, FleetState]:
    """What failover knows at this run's start: the fleet record updated with this observation
    (unreachable hosts, failing instances) and Consul's view of the unreachable hosts' instances;
    and the record as it was read."""
    fleet = previous
    if previous.known:
        failing, passing = await health_of_movable(spec, observed, active)
        fleet = fleetstate.observe(
            previous,
            scope=spec.hosts,
            unreachable=lost,
            failing=failing,
            healthy=passing,
            window=continuity_window(spec),
        )
    consul = await passing_in_consul(spec, observed, active, lost)
    memory = Memory(
        now=time.time(), fleet=fleet, partitioned=consul.passing, unwitnessed=consul.unknown, read_at=time.monotonic()
    )
    return memory, previous


async def _replaced_in_place(
    current: Plan, reports: list[RolloutReport], memory: Memory, keeper: FleetLock | ConsulLock
) -> Memory:
    """Remember the instances this pass replaced in place: if they fail again, failover moves them."""
    tried = {h for r in reports for h in [*r.done, *r.failed]}
    pairs = {
        (a.service, a.host) for r in current.rollouts for b in r.batches for a in b if a.recreate and a.host in tried
    }
    if not pairs:
        return memory
    fleet = fleetstate.replaced(memory.fleet, pairs, memory.fleet.now + time.monotonic() - memory.read_at)
    await keeper.write_record(fleet)  # nothing once the lock is lost
    return replace(memory, fleet=fleet)


async def take_fleet_lock(
    locking: Locking, transports: dict[str, Transport], shared: Shared, emit: Callable[[Event], None]
) -> FleetLock | ConsulLock | None:
    """Take the fleet lock on the lock host, over the run's own connection to it when it has one."""
    host = locking.pick(list(transports))
    if host is None:
        return None
    transport = transports.get(host)
    if transport is None and locking.settings is not None:
        transport = (await connect_all({host: locking.settings}, 1, shared))[0].get(host)
        if transport is not None:
            transports[host] = transport  # not a host of the run: nothing observes or plans it
    if transport is None:
        raise ConnectError(host, "the lock host is unreachable: no run can start without its lock")
    fleet: FleetLock | ConsulLock
    if locking.backend == "consul":
        fleet = ConsulLock(host, transport, locking.ttl, locking.wait, locking.name, command=locking.command)
    else:
        fleet = FleetLock(host, transport, locking.ttl, locking.wait, command=locking.command)
    await fleet.acquire()
    if fleet.taken_over is not None:
        emit(Event(host, "progress", None, f"took over an expired fleet lock from {fleet.taken_over}"))
    return fleet


async def _diffs(plan_: Plan, transports: Mapping[str, Transport], emit: Callable[[Event], None]) -> None:
    """Unified diffs of the files this plan writes (one read per file, only with --diff; secrets masked)."""

    async def one(action: WriteFile | WriteConsul) -> None:
        transport = transports.get(action.host)
        if transport is None:
            return
        old = await transport.run(["cat", "--", action.path], become=action.become)
        before = old.stdout if old.ok else ""
        secret = isinstance(action, WriteFile) and action.secret
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            action.content.splitlines(keepends=True),
            f"{action.host}:{action.path} (before)",
            f"{action.host}:{action.path} (after)",
        )
        text = "(content holds secrets: diff masked)\n" if secret else "".join(lines)
        emit(Event(action.host, "diff", action, text))

    writes = [a for a in plan_.actions if isinstance(a, (WriteFile, WriteConsul))]
    await asyncio.gather(*(one(a) for a in writes))


async def observe_all(spec: Spec, transports: Mapping[str, Transport]) -> dict[str, ObservedHost]:
    names = [h for h in spec.hosts if h in transports]
    seen = await asyncio.gather(*(observe(spec.hosts[h], transports[h]) for h in names))
    return dict(zip(names, seen, strict=True))
