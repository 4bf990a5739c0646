"""What controllers remember between runs (pure): kept as JSON on the lock host, beside the fleet lock.

Failover must not act on one moment's view: a host is lost only when it has been unreachable for
`failover.after` without a break, and an instance has failed only when its health check has been
failing that long. Any controller (a laptop, either of two cron boxes) reads the same record, so the
clock that measures "how long" is the lock host's, read together with the record.

    unreachable   host -> since when no run could reach it
    failing       "service@host" -> since when its running instance fails its check, and when it
                  was replaced in place (0: not yet; the clock then starts again for the fresh
                  container); dropped once seen healthy, or an hour after a replacement that did
                  not help (the host may run the service again after that)
    placed        service -> the hosts that ran it at the last run (what an unreachable host held)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

# How long a host stays out of a service's placement after replacing in place did not make it healthy.
FAILED_HOST_MEMORY = 3600.0


@dataclass(frozen=True, slots=True)
class Failing:
    since: float
    replaced: float = 0.0  # when it was replaced in place; 0: not yet


@dataclass(frozen=True, slots=True)
class FleetState:
    now: float = 0.0  # the lock host's clock when this was read; 0: no record (nothing is known)
    unreachable: Mapping[str, float] = field(default_factory=dict)
    failing: Mapping[str, Failing] = field(default_factory=dict)
    placed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return self.now > 0

    def unreachable_for(self, host: str) -> float:
        """Seconds the host has been unreachable without a break (0: reachable, or nothing recorded)."""
        since = self.unreachable.get(host)
        return self.now - since if since is not None else 0.0

    def failing_of(self, service: str, host: str) -> Failing | None:
        return self.failing.get(key(service, host))

    def to_json(self) -> str:
        data = {
            "unreachable": dict(sorted(self.unreachable.items())),
            "failing": {k: {"since": f.since, "replaced": f.replaced} for k, f in sorted(self.failing.items())},
            "placed": {s: list(h) for s, h in sorted(self.placed.items())},
        }
        return json.dumps(data, indent=1, sort_keys=True) + "\n"


def key(service: str, host: str) -> str:
    return f"{service}@{host}"


def parse(text: str) -> FleetState:
    """The lock host's answer: its clock (epoch seconds) on the first line, then the record (or nothing)."""
    now_line, _, body = text.partition("\n")
    try:
        now = float(now_line.strip())
    except ValueError:
        return FleetState()
    try:
        data = json.loads(body) if body.strip() else {}
    except ValueError:
        data = {}  # a damaged record is no record: every duration starts again
    if not isinstance(data, dict):
        data = {}
    failing = {
        str(k): Failing(float(v.get("since", now)), float(v.get("replaced", 0.0)))
        for k, v in (data.get("failing") or {}).items()
        if isinstance(v, dict)
    }
    return FleetState(
        now=now,
        unreachable={str(h): float(t) for h, t in (data.get("unreachable") or {}).items()},
        failing=failing,
        placed={str(s): tuple(str(h) for h in hosts) for s, hosts in (data.get("placed") or {}).items()},
    )


def observe(
    previous: FleetState,
    *,
    scope: Iterable[str],
    unreachable: Iterable[str],
    failing: Iterable[tuple[str, str]],
    healthy: Iterable[tuple[str, str]],
) -> FleetState:
    """The record after this run's observation of the hosts in `scope` (others keep what they had).

    Worked example, failover.after 60: lab-2 first unreachable at 1000 -> {lab-2: 1000}; at 1030 still
    unreachable -> still 1000 (30 s); reachable at 1050 -> dropped; unreachable again at 1100 -> 1100.
    """
    now, scope = previous.now, set(scope)
    lost = set(unreachable) & scope
    kept_lost = {h: t for h, t in previous.unreachable.items() if h not in scope}
    kept_lost.update({h: previous.unreachable.get(h, now) for h in lost})
    failing_now = {key(s, h) for s, h in failing}
    healthy_now = {key(s, h) for s, h in healthy}
    failing_map: dict[str, Failing] = {}
    for name, entry in previous.failing.items():
        host = name.rpartition("@")[2]
        if name in failing_now or name in healthy_now:
            continue  # decided below from this run's observation
        if entry.replaced and now - entry.replaced < FAILED_HOST_MEMORY:
            failing_map[name] = entry  # replaced in place and moved away: keep the host out a while
        elif host not in scope or host in lost:
            failing_map[name] = entry  # not seen this run: nothing new is known
    for name in failing_now:
        failing_map[name] = previous.failing.get(name) or Failing(since=now)
    return replace(previous, unreachable=kept_lost, failing=failing_map)


def replaced(previous: FleetState, pairs: Iterable[tuple[str, str]], now: float) -> FleetState:
    """Mark instances as replaced in place at `now` (lock host's clock): the fresh container's own
    failing time starts there."""
    failing = dict(previous.failing)
    for service, host in pairs:
        failing[key(service, host)] = Failing(since=now, replaced=now)
    return replace(previous, failing=failing)


def with_placement(previous: FleetState, placed: Mapping[str, Iterable[str]]) -> FleetState:
    return replace(previous, placed={**previous.placed, **{s: tuple(h) for s, h in placed.items()}})
