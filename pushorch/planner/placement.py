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
from collections.abc import Iterable
from dataclasses import dataclass, field


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
