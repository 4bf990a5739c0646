"""Where a service's instances run: rendezvous (highest-random-weight) hashing of (service, host).

Deterministic with no state: every controller computes the same hosts, and losing a host moves
only that host's instances (every other host keeps its score and its rank).

Failover (`Failover`): a host that cannot be reached, or whose instance has been stopped for longer
than `failover.after`, is not eligible; its instance starts on the next host by rank, labelled
`pushorch.replaces=<lost host>`. Without failback (the default) placement is sticky: hosts already
running an instance keep it, and a host whose instance another host took over stays out while that
other host runs it, so a returning host gets its stale instance removed instead of taking it back
(nothing flaps). With `failback: true` placement is pure rendezvous: the instance goes home.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pushorch.fleet.record import FleetState
from pushorch.observed import ObservedContainer, ObservedHost
from pushorch.planner.labels import REPLACES
from pushorch.spec import HostSpec, Service, Spec


def score(service: str, host: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{service}\0{host}".encode()).digest()[:8], "big")


def place(service: str, hosts: Iterable[str], replicas: int | None) -> list[str]:
    """The hosts that run the service: all of them without replicas, else the top `replicas` by score."""
    candidates = list(dict.fromkeys(hosts))
    if replicas is None:
        return candidates
    ranked = sorted(candidates, key=lambda h: (-score(service, h), h))
    return ranked[:replicas]


@dataclass(frozen=True, slots=True)
class Candidates:
    """One service's view of its hosts, as the probe saw them."""

    service: str
    replicas: int | None
    declared: list[str]  # the play's hosts that meet the placement constraints, in inventory order
    eligible: list[str]  # ... minus unreachable hosts and hosts whose instance failed past `after`
    running: list[str]  # eligible hosts running an instance now
    taken_over: set[str] = field(default_factory=set)  # hosts named by a running `pushorch.replaces`
    failback: bool = False


def place_with_failover(c: Candidates) -> tuple[list[str], dict[str, str]]:
    """(hosts that run the service, {new host: the lost host it replaces})."""
    if c.replicas is None:
        return list(c.eligible), {}
    ranked = place(c.service, c.eligible, len(c.eligible))
    if c.failback:
        chosen = ranked[: c.replicas]
    else:
        keep = [h for h in ranked if h in c.running and h not in c.taken_over][: c.replicas]
        fill = [h for h in ranked if h not in keep and h not in c.taken_over][: c.replicas - len(keep)]
        # A host another one stands in for stays out only while others can fill: short of replicas,
        # it takes one again rather than the service running fewer (seed 254786 r200: lab-2's
        # instance failed, lab-1 was lab-3's stand-in, and rep ran 1 of 2 and then 0).
        fill += [h for h in ranked if h not in keep and h not in fill][: c.replicas - len(keep) - len(fill)]
        chosen = sorted(keep + fill, key=ranked.index)
    ideal = place(c.service, c.declared, c.replicas)
    lost = [h for h in ideal if h not in c.eligible and h not in c.taken_over]
    new = [h for h in chosen if h not in c.running and h not in ideal]
    return chosen, dict(zip(new, lost, strict=False))


@dataclass(frozen=True, slots=True)
class Placed:
    """Where one service runs after this plan, and why some hosts are special."""

    hosts: list[str]  # hosts that run it
    moves: dict[str, str] = field(default_factory=dict)  # new host -> the lost host it stands in for
    recreate: dict[str, str] = field(default_factory=dict)  # host -> why its instance is replaced in place
    notes: dict[str, str] = field(default_factory=dict)  # host -> why its instance is not moved (yet)


@dataclass(frozen=True, slots=True)
class Memory:
    """What the planner knows beyond one probe: the fleet record, the controller's clock, Consul's view."""

    now: float | None = None  # controller's epoch seconds (Docker's FinishedAt is compared to it)
    fleet: FleetState = field(default_factory=FleetState)
    partitioned: frozenset[tuple[str, str]] = frozenset()  # (service, host): unreachable, passing in Consul
    unwitnessed: frozenset[tuple[str, str]] = frozenset()  # (service, host): unreachable, no agent could say
    read_at: float = 0.0  # monotonic time the fleet record was read (its clock moves on from fleet.now)


def placements(spec: Spec, observed: Mapping[str, ObservedHost], memory: Memory | None = None) -> dict[str, list[str]]:
    """service -> the hosts that run it (rendezvous, failover, stickiness)."""
    return {name: p.hosts for name, p in placed(spec, observed, memory or Memory()).items()}


def placed(spec: Spec, observed: Mapping[str, ObservedHost], memory: Memory) -> dict[str, Placed]:
    """Per service: its hosts, sorted into named sets first (Nomad's reconciler does the same).

    declared     the play's hosts that meet the placement constraints
    unreachable  not probed this run; `held` while they may still run it (below), else `lost`
    failed       stopped past failover.after, or still unhealthy after a replacement in place
    recreate     unhealthy past failover.after, not yet replaced in place: replaced there first
    """
    services: dict[str, Service] = {}
    declared: dict[str, list[str]] = {}
    outside: set[str] = set()
    for name, host in [*spec.hosts.items(), *spec.outside.items()]:
        for play in host.plays:
            for service in play.services:
                services.setdefault(service.name, service)
                if _eligible(service, host):
                    declared.setdefault(service.name, []).append(name)
                    if name in spec.outside:
                        outside.add(name)
    return {
        name: _place(services[name], hosts, observed, memory, outside)
        for name, hosts in declared.items()
        if any(h not in outside for h in hosts)
    }


def _place(
    service: Service,
    hosts: list[str],
    observed: Mapping[str, ObservedHost],
    memory: Memory,
    outside: set[str] = frozenset(),  # type: ignore[assignment]
) -> Placed:
    name, fleet = service.name, memory.fleet
    frozen, notes = _outside(service, hosts, outside, memory)
    inside = [h for h in hosts if h not in outside]
    seen = {h: observed.get(h) for h in inside}
    up = [h for h in inside if (o := seen[h]) is None or (o.reachable and not o.error)]
    held, held_notes = _held(service, [h for h in inside if h not in up], hosts, memory)
    notes.update(held_notes)
    failed = {h for h in up if _failed_past_grace(service, seen[h], memory.now)}
    recreate: dict[str, str] = {}
    for host in up:
        verdict = _unhealthy(service, host, fleet, any(c.running for c in _of(seen[host], name)))
        if verdict == "failed":
            failed.add(host)
        elif verdict:
            recreate[host] = verdict
    eligible = [h for h in hosts if (h in up and h not in failed) or h in held or h in frozen]
    running = [h for h in eligible if h in held or h in frozen or any(c.running for c in _of(seen[h], name))]
    taken = _taken_over(name, up, seen)
    candidates = Candidates(name, service.replicas, hosts, eligible, running, taken, service.failover.failback)
    chosen, moves = place_with_failover(candidates)
    # Nothing is done on a host outside --limit: it is not a fill, and no instance moves for it.
    moves = {new: lost for new, lost in moves.items() if lost not in outside}
    return Placed(chosen, moves, {h: r for h, r in recreate.items() if h in chosen}, notes)


def _outside(service: Service, hosts: list[str], outside: set[str], memory: Memory) -> tuple[set[str], dict[str, str]]:
    """Hosts outside --limit that run the service, as far as this run can know without touching
    them: the fleet record's last placement, or (no record of the service) where rendezvous puts it."""
    mine = [h for h in hosts if h in outside]
    if not mine or service.replicas is None:
        return set(), {}
    recorded = memory.fleet.placed.get(service.name)
    ran = set(recorded) if recorded is not None else set(place(service.name, hosts, service.replicas))
    why = "the fleet record" if recorded is not None else "rendezvous, no fleet record"
    frozen = {h for h in mine if h in ran}
    notes = {h: f"{service.name}: outside --limit, counted as running it ({why}): not touched" for h in sorted(frozen)}
    return frozen, notes


def _held(
    service: Service, unreachable: list[str], hosts: list[str], memory: Memory
) -> tuple[set[str], dict[str, str]]:
    """Unreachable hosts that keep their instance: they ran it, and have not been unreachable for
    failover.after without a break, or another host's Consul agent still sees their instance pass
    (the controller is cut off from them, they are not down). Without a fleet record nothing proves
    the break lasted, so nothing moves."""
    if service.replicas is None:
        return set(), {}
    fleet, after = memory.fleet, service.failover.after
    ran = (
        set(fleet.placed[service.name])
        if service.name in fleet.placed
        else set(place(service.name, hosts, service.replicas))
    )
    held, notes = set(), {}
    for host in unreachable:
        if host not in ran:
            continue
        gone_for = fleet.unreachable_for(host)
        if (service.name, host) in memory.partitioned:
            held.add(host)
            notes[host] = f"{service.name}: unreachable from here, but its instance passes in Consul: not moved"
        elif (service.name, host) in memory.unwitnessed and service.failover.enabled and gone_for >= after:
            held.add(host)
            why = "witness unavailable (no Consul agent answered): not moved"
            notes[host] = f"{service.name}: unreachable for {gone_for:.0f}s; {why}"
        elif not service.failover.enabled or not fleet.known or gone_for < after:
            held.add(host)
            if service.failover.enabled:
                notes[host] = f"{service.name}: unreachable for {gone_for:.0f}s; its instance moves after {after:g}s"
    return held, notes


def _unhealthy(service: Service, host: str, fleet: FleetState, running: bool) -> str:
    """'' (fine, or not failing for long enough), 'failed' (replaced in place, and the fresh container
    did not pass its gate or failed for failover.after again: move it), or why to replace it in place."""
    entry = fleet.failing_of(service.name, host)
    if entry is None or not service.failover.enabled or service.replicas is None:
        return ""
    if entry.replaced and not running:
        return "failed"
    failing_for = fleet.now - entry.since
    if failing_for < service.failover.after:
        return ""
    return "failed" if entry.replaced else f"unhealthy for {failing_for:.0f}s: replaced in place"


def _taken_over(service: str, up: list[str], seen: Mapping[str, ObservedHost | None]) -> set[str]:
    """Hosts a running stand-in (`pushorch.replaces`) names, unless the host runs an instance created
    after its stand-in: placement filled it again when the service ran short, it is not stale."""
    out = set()
    for host in up:
        for stand_in in _of(seen[host], service):
            lost = stand_in.labels.get(REPLACES, "")
            if not lost or not stand_in.running:
                continue
            since = _epoch(stand_in.created)
            if not any(c.running and _epoch(c.created) > since for c in _of(seen.get(lost), service)):
                out.add(lost)
    return out


def _of(seen: ObservedHost | None, service: str) -> list[ObservedContainer]:
    return seen.containers_of(service) if seen is not None else []


def _failed_past_grace(service: Service, seen: ObservedHost | None, now: float | None) -> bool:
    """The host's instance has been stopped for longer than failover.after (and none runs there)."""
    if not service.failover.enabled or service.replicas is None or now is None or seen is None:
        return False
    mine = seen.containers_of(service.name)
    if not mine or any(c.running for c in mine):
        return False
    stopped = [_epoch(c.finished) for c in mine if c.finished]
    return bool(stopped) and now - max(stopped) > service.failover.after


def _epoch(stamp: str) -> float:
    """Docker's RFC 3339 time (nanoseconds, Z) as epoch seconds; 0 when it cannot be read."""
    try:
        head, _, tail = stamp.rstrip("Z").partition(".")
        fraction = float(f"0.{tail}") if tail.isdigit() else 0.0
        return datetime.fromisoformat(head + "+00:00").timestamp() + fraction
    except ValueError:
        return 0.0


def _eligible(service: Service, host: HostSpec) -> bool:
    if service.name in host.excluded:
        return False
    required = service.placement.require if service.placement else {}
    return all(host.vars.get(key) == value for key, value in required.items())
