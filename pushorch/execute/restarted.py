"""A rollout starts from serving instances: the instances of its service that this run's host steps
started again (a drift restart) pass the rollout's gate before its first batch stops another one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pushorch import actions as a
from pushorch.events import Event
from pushorch.execute.health import Prober, wait_healthy
from pushorch.transport import Transport


def restarted(plan: a.Plan, standing: dict[str, Transport]) -> dict[str, list[a.RestartContainer]]:
    """service -> the drift restarts of its instances this run made, on hosts still standing."""
    out: dict[str, list[a.RestartContainer]] = {}
    for action in plan.actions:
        if isinstance(action, a.RestartContainer) and action.host in standing:
            out.setdefault(action.service, []).append(action)
    return out


async def wait_for_restarted(
    rollout: a.Rollout,
    restarts: list[a.RestartContainer],
    standing: dict[str, Transport],
    emit: Callable[[Event], None],
) -> dict[str, str]:
    """Until each restarted instance passes its gate (the planner gives it its own instance's check, as a
    rollout step has); host -> why its instance does not serve (the rollout must not start), empty
    when each does. A Consul gate once named the rollout's first instance: CI, the Consul lock test.
    The soak (seed 1 round 152): after a killed run, the next one started lab-2's exited instance and,
    at once, stopped lab-3's for its rollout: for a moment only one of three served."""
    if not restarts or not rollout.hosts:
        return {}

    async def one(action: a.RestartContainer) -> tuple[str, str]:
        gate = action.gate
        emit(
            Event(
                action.host,
                "progress",
                None,
                f"{rollout.service}: {action.name}, started again, before the rollout: {gate.describe()}",
            )
        )
        prober = Prober(standing[action.host], action.name, gate, action.become)
        await prober.state()  # the restart count to compare against
        outcome = await wait_healthy(prober.check, gate, confirm=prober.state)
        return action.host, "" if outcome.passed else f"{action.name}, started again, {outcome.why(gate)}"

    return {host: why for host, why in await asyncio.gather(*(one(r) for r in restarts)) if why}
