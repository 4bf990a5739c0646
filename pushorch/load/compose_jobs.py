"""Compose's `depends_on: {X: {condition: service_completed_successfully}}` as pushorch's run-once job:
X runs to completion before each rollout of the service that waits for it (a migration), and is not
deployed as a service of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pushorch.load.yamlfile import KeyPath

# What a job takes from the service it runs for (commands/docker.py job_run): X must have the same
_SHARED = ("image", "entrypoint", "env", "volumes", "user", "network_mode", "extra_hosts")


def as_jobs(plays: list[dict[str, Any]], waits: dict[str, list[str]], bad: Callable[[KeyPath, str], None]) -> None:
    """`waits`: service -> the services it waits to complete. Each becomes a job of that service."""
    services = {s["name"]: s for play in plays for s in play["services"]}
    jobs = {x for xs in waits.values() for x in xs}
    for name, completed in waits.items():
        service = services.get(name)
        for x in completed:
            where = ("services", name, "depends_on", x)
            job = services.get(x)
            if service is None or job is None:
                continue
            differs = [k for k in _SHARED if job.get(k) != service.get(k)]
            differs += ["networks"] if _first_network(job) != _first_network(service) else []
            if differs:
                shared = ", ".join(differs)
                bad(where, f"service_completed_successfully: pushorch runs {x} as a job of {name}, with {name}'s "
                    f"{shared}; {x}'s differ: make them the same, or run {x} another way")  # fmt: skip
            elif not job.get("command"):
                bad(where, f"service_completed_successfully: {x} runs as a job of {name}: give it a command")
            else:
                service.setdefault("jobs", []).append({"name": x, "command": job["command"]})
    for x in jobs:
        waited = [name for name, s in services.items() if x in (s.get("depends_on") or [])]
        if waited:  # started (or healthy) for one service, completed for another: it cannot be both
            bad(("services", waited[0], "depends_on", x), f"{x} is a run-once job of another service: wait for it "
                "with service_completed_successfully here too")  # fmt: skip
    for play in plays:
        play["services"] = [s for s in play["services"] if s["name"] not in jobs]


def _first_network(service: dict[str, Any]) -> Any:
    """The network a job joins: the service's first."""
    return (service.get("networks") or [{}])[0].get("name")
