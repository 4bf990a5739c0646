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
        chosen = sorted(keep + fill, key=ranked.index)
    ideal = place(c.service, c.declared, c.replicas)
    lost = [h for h in ideal if h not in c.eligible and h not in c.taken_over]
    new = [h for h in chosen if h not in c.running and h not in ideal]
    return chosen, dict(zip(new, lost, strict=False))


def placements(spec: Spec, observed: Mapping[str, ObservedHost], now: float | None = None) -> dict[str, list[str]]:
    """service -> the hosts that run it (rendezvous, failover, stickiness)."""
    return {name: hosts for name, (hosts, _) in placed(spec, observed, now).items()}


def placed(
    spec: Spec, observed: Mapping[str, ObservedHost], now: float | None
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """service -> (hosts that run it, {new host: the lost host it stands in for})."""
    services: dict[str, Service] = {}
    declared: dict[str, list[str]] = {}
    for name, host in spec.hosts.items():
        for play in host.plays:
            for service in play.services:
                services.setdefault(service.name, service)
                if _eligible(service, host):
                    declared.setdefault(service.name, []).append(name)
    out = {}
    for name, hosts in declared.items():
        service = services[name]
        seen = {h: observed.get(h) for h in hosts}
        up = [h for h in hosts if (o := seen[h]) is None or (o.reachable and not o.error)]
        failed = {h for h in up if _failed_past_grace(service, seen[h], now)}
        eligible = [h for h in up if h not in failed]
        running = [h for h in eligible if any(c.running for c in _of(seen[h], name))]
        taken = {c.labels.get(REPLACES, "") for h in up for c in _of(seen[h], name) if c.running} - {""}
        candidates = Candidates(name, service.replicas, hosts, eligible, running, taken, service.failover.failback)
        out[name] = place_with_failover(candidates)
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
        head, _, _ = stamp.partition(".")
        return datetime.fromisoformat(head.rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return 0.0


def _eligible(service: Service, host: HostSpec) -> bool:
    if service.name in host.excluded:
        return False
    required = service.placement.require if service.placement else {}
    return all(host.vars.get(key) == value for key, value in required.items())
