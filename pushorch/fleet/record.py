"""What controllers remember between runs (pure): kept as JSON on the lock host, beside the fleet lock.

Failover must not act on one moment's view: a host is lost only when it has been unreachable for
`failover.after` without a break, and an instance has failed only when its health check has been
failing that long. Any controller (a laptop, either of two cron boxes) reads the same record, so the
clock that measures "how long" is the lock host's, read together with the record.

    unreachable   host -> since when no run could reach it
    confirmed     host -> the last run that found it unreachable (the proof of continuity)
    failing       "service@host" -> since when its running instance fails its check, when a run last
                  saw it failing, and when it was replaced in place (0: not yet; the clock then
                  starts again for the fresh container); dropped once seen healthy, or an hour after
                  a replacement that did not help (the host may run the service again after that)
    placed        service -> the hosts that ran it at the last run (what an unreachable host held)

"Without a break" needs proof: a duration only goes on when every run since it began had the host
in its scope and found it unreachable (a run limited to other hosts says nothing about it: its
confirmation is dropped), and the last confirmation is at most the window old: failover.after, but
never less than PROOF_WINDOW, so a cron interval longer than `failover.after` still moves instances.
A record that sat on a former lock host while another host kept the lock is older than that and
proves nothing: every duration starts again. Failover is delayed by missing proof, never hastened.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

# How long a host stays out of a service's placement after replacing in place did not make it healthy.
FAILED_HOST_MEMORY = 3600.0
# The least age a confirmation may have and still prove continuity (cron runs every few minutes).
PROOF_WINDOW = 600.0


@dataclass(frozen=True, slots=True)
class Failing:
    since: float
    replaced: float = 0.0  # when it was replaced in place; 0: not yet
    seen: float = 0.0  # the last run that saw it failing; 0: unknown (an older record)


@dataclass(frozen=True, slots=True)
class FleetState:
    now: float = 0.0  # the lock host's clock when this was read; 0: no record (nothing is known)
    unreachable: Mapping[str, float] = field(default_factory=dict)
    failing: Mapping[str, Failing] = field(default_factory=dict)
    placed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    confirmed: Mapping[str, float] = field(default_factory=dict)

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
            "confirmed": dict(sorted(self.confirmed.items())),
            "failing": {
                k: {"since": f.since, "replaced": f.replaced, "seen": f.seen} for k, f in sorted(self.failing.items())
            },
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
        str(k): Failing(float(v.get("since", now)), float(v.get("replaced", 0.0)), float(v.get("seen", 0.0)))
        for k, v in (data.get("failing") or {}).items()
        if isinstance(v, dict)
    }
    return FleetState(
        now=now,
        unreachable={str(h): float(t) for h, t in (data.get("unreachable") or {}).items()},
        failing=failing,
        placed={str(s): tuple(str(h) for h in hosts) for s, hosts in (data.get("placed") or {}).items()},
        confirmed={str(h): float(t) for h, t in (data.get("confirmed") or {}).items()},
    )


def observe(
    previous: FleetState,
    *,
    scope: Iterable[str],
    unreachable: Iterable[str],
    failing: Iterable[tuple[str, str]],
    healthy: Iterable[tuple[str, str]],
    window: Callable[[str], float] = lambda _: float("inf"),
) -> FleetState:
    """The record after this run's observation of the hosts in `scope` (others keep what they had).
    `window(name)`: how old the last confirmation of a host's (or of "service@host"'s) entry may be
    for its duration to go on (at least PROOF_WINDOW); an older one starts again now.

    Worked example, window 600: lab-2 first unreachable at 1000 -> {lab-2: 1000}; at 1300 still
    unreachable -> still 1000 (300 s); reachable at 1350 -> dropped; unreachable again at 1400 ->
    1400. A run at 1500 limited to other hosts keeps {lab-2: 1400} but drops its confirmation, so
    lab-2 unreachable at 1560 -> 1560, not 1400. With no run from 1560 to 2400 (840 s > 600):
    unreachable at 2400 -> 2400.
    """
    now, scope = previous.now, set(scope)
    lost = set(unreachable) & scope
    kept_lost = {h: t for h, t in previous.unreachable.items() if h not in scope}
    confirmed: dict[str, float] = {}  # hosts outside this run's scope lose theirs: nothing proves they stayed away
    for host in lost:
        last = previous.confirmed.get(host)
        went = previous.unreachable.get(host)
        continuous = went is not None and last is not None and now - last <= max(window(host), PROOF_WINDOW)
        kept_lost[host] = went if continuous and went is not None else now
        confirmed[host] = now
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
            failing_map[name] = replace(entry, seen=0.0)  # not seen this run: nothing proves it went on
    for name in failing_now:
        old = previous.failing.get(name)
        proven = old is not None and (old.replaced or (old.seen and now - old.seen <= max(window(name), PROOF_WINDOW)))
        # New, or its last sighting too old to prove it went on failing: the clock starts now.
        failing_map[name] = replace(old, seen=now) if old is not None and proven else Failing(since=now, seen=now)
    return replace(previous, unreachable=kept_lost, failing=failing_map, confirmed=confirmed)


def replaced(previous: FleetState, pairs: Iterable[tuple[str, str]], now: float) -> FleetState:
    """Mark instances as replaced in place at `now` (lock host's clock): the fresh container's own
    failing time starts there."""
    failing = dict(previous.failing)
    for service, host in pairs:
        failing[key(service, host)] = Failing(since=now, replaced=now, seen=now)
    return replace(previous, failing=failing)


def with_placement(previous: FleetState, placed: Mapping[str, Iterable[str]]) -> FleetState:
    return replace(previous, placed={**previous.placed, **{s: tuple(h) for s, h in placed.items()}})
