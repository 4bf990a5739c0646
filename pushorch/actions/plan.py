"""The plan: every host's steps, then each rollout. What `plan` prints is exactly what `apply` runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pushorch.actions.rollout import Rollout
from pushorch.actions.steps import Action, DeleteKv, ReloadConsul, RemoveConsul, WriteConsul, WriteKv


@dataclass(frozen=True, slots=True)
class Plan:
    """Per host, `actions` in order (hosts concurrently); then each rollout, batch by batch."""

    actions: tuple[Action, ...] = ()
    unreachable: dict[str, str] = field(default_factory=dict)
    rollouts: tuple[Rollout, ...] = ()
    # Ansible's serial / max_fail_percentage / any_errors_fatal over the host actions:
    # batches of hosts run one after another (empty: every host at once).
    host_batches: tuple[tuple[str, ...], ...] = ()
    max_fail_percentage: float | None = None
    any_errors_fatal: bool = False
    placed: dict[str, tuple[str, ...]] = field(default_factory=dict)  # service -> the hosts that run it
    notes: tuple[str, ...] = ()  # what failover is waiting for ("lab-2: web: unreachable for 12s; ...")
    # Host steps run once every rollout completed (none if one stopped): removals `--prune` leaves for
    # after the replacement passed (a renamed service: the new name runs before the old one goes).
    after: tuple[Action, ...] = ()

    def consul_hosts(self) -> set[str]:
        """Hosts whose steps talk to their Consul agent (definitions, reloads, drains, consul gates)."""
        consul_steps = (WriteConsul, RemoveConsul, ReloadConsul, WriteKv, DeleteKv)
        talking = {a.host for a in (*self.actions, *self.after) if isinstance(a, consul_steps)}
        for rollout in self.rollouts:
            talking |= {s.host for b in rollout.batches for s in b if s.consul_reload or s.gate.kind == "consul"}
        return talking

    def by_host(self, rollouts: bool = False) -> dict[str, list[Action]]:
        """Each host's actions in order (with its rollout steps after them when asked), grouped in one
        pass: a fleet's plan holds thousands of actions, so no per-host scans."""
        grouped: dict[str, list[Action]] = {}
        for action in self.steps if rollouts else self.actions:
            grouped.setdefault(action.host, []).append(action)
        return grouped

    @property
    def hosts(self) -> list[str]:
        rolled = (h for r in self.rollouts for h in r.hosts)
        return list(dict.fromkeys([*(a.host for a in self.actions), *rolled, *(a.host for a in self.after)]))

    @property
    def steps(self) -> list[Action]:
        """Every action of the plan in the order it runs (rollouts batch by batch, then `after`)."""
        return [*self.actions, *(a for r in self.rollouts for batch in r.batches for a in batch), *self.after]

    def __bool__(self) -> bool:
        return bool(self.actions or self.rollouts or self.after)

    def to_json(self) -> dict[str, Any]:
        return {
            "actions": [a.to_json() for a in self.actions],
            "rollouts": [r.to_json() for r in self.rollouts],
            "unreachable": self.unreachable,
            "host_batches": [list(b) for b in self.host_batches],
            "max_fail_percentage": self.max_fail_percentage,
            "any_errors_fatal": self.any_errors_fatal,
            "placed": {service: list(hosts) for service, hosts in self.placed.items()},
            "notes": list(self.notes),
            "after": [a.to_json() for a in self.after],
        }
