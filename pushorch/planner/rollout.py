"""Rollouts (pure): a service's gate, and its replacements cut into batches by the update policy.

Hosts that run no instance yet risk no availability: they start together in a first batch. Then the
canary batch, then batches of `parallelism`. Percentages resolve against the instances the service
runs (see Amount.of for the rounding).
"""

from __future__ import annotations

from dataclasses import replace

from pushorch.actions import Gate, ReplaceContainer, Rollout
from pushorch.commands.docker import repository
from pushorch.consul.commands import service_id
from pushorch.spec import Service, UpdatePolicy


def gate_for(service: Service, policy: UpdatePolicy, host: str) -> Gate:
    base = Gate("running", min_healthy_time=policy.min_healthy_time, deadline=policy.healthy_deadline)
    health = service.health
    if health is None:
        return base
    base = replace(base, interval=health.interval, timeout=health.timeout)
    if health.http is not None:
        return replace(
            base, kind="http", port=health.http.port, path=health.http.path, expect=tuple(health.http.expect_status)
        )
    if health.tcp is not None:
        return replace(base, kind="tcp", port=health.tcp.port)
    if health.cmd is not None:
        return replace(base, kind="cmd", cmd=tuple(health.cmd))
    if health.consul:
        return replace(base, kind="consul", consul_id=service_id(service.name, host))
    return replace(base, kind="docker")


def rollout(service: Service, policy: UpdatePolicy, replacements: list[ReplaceContainer], instances: int) -> Rollout:
    """Batches for one service: fresh starts first, then the canary, then `parallelism` hosts at a time."""
    fresh = [r for r in replacements if not r.old]
    replacing = [r for r in replacements if r.old]
    batches: list[tuple[ReplaceContainer, ...]] = []
    if fresh:
        batches.append(tuple(fresh))
    canary = min(policy.canary, len(replacing))
    if canary:
        batches.append(tuple(replacing[:canary]))
    size = policy.parallelism.of(max(instances, 1), minimum=1)
    rest = replacing[canary:]
    batches.extend(tuple(rest[i : i + size]) for i in range(0, len(rest), size))
    return Rollout(
        service=service.name,
        batches=tuple(batches),
        canary=canary,
        delay=policy.delay,
        max_failures=policy.max_failures.of(len(replacements)),
        max_unreachable=policy.max_unreachable.of(len(replacements)),
        auto_revert=policy.auto_revert,
        image_repository=repository(service.image),
        keep_images=policy.keep_images,
        depends_on=tuple(service.depends_on),
        hooks=hook_argvs(service),
        hook_timeout=service.hooks.timeout if service.hooks else 300.0,
    )


def hook_argvs(service: Service) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The service's hooks as argv: a string runs through `sh -c`."""
    if service.hooks is None:
        return ()
    out = []
    for kind in ("pre_deploy", "post_deploy", "on_abort"):
        given = getattr(service.hooks, kind)
        if given:
            out.append((kind, ("sh", "-c", given) if isinstance(given, str) else tuple(given)))
    return tuple(out)
