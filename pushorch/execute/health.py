"""One gate: poll a new instance until it stays healthy for min_healthy_time, or fail at the deadline.

The loop (`wait_healthy`) takes its clock and sleep as arguments so it is tested without waiting.
The probes (`Prober`) go through the host's SSH connection: http and tcp open a TCP stream from the
host's side (`open_tcp`), so hosts need no curl; docker, cmd and the container's state are commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from pushorch.actions import Gate
from pushorch.commands import docker as docker_cmd
from pushorch.consul import client as consul_client
from pushorch.errors import CommandTimeout
from pushorch.facts import published_ports
from pushorch.observed import ObservedContainer
from pushorch.planner.rollout import gate_for
from pushorch.spec import Service, UpdatePolicy
from pushorch.transport import Transport, http


@dataclass(frozen=True, slots=True)
class Reading:
    """One probe's answer: healthy or not, in words, and whether the container has stopped."""

    healthy: bool
    status: str
    exited: bool = False


@dataclass(frozen=True, slots=True)
class GateResult:
    passed: bool
    elapsed: float
    last: str  # the last probe's status, for the failure message
    waited: float = 0.0  # asleep between probes; the rest of `elapsed` is probing (pushorch's own time)
    probes: int = 0
    best: float = 0.0  # the longest time it stayed healthy without a break

    def why(self, gate: Gate) -> str:
        if self.passed:
            return f"healthy for {gate.min_healthy_time:g}s after {self.elapsed:.1f}s"
        if self.last.startswith("container "):
            return f"{self.last} after {self.elapsed:.1f}s"
        return (
            f"not healthy for {gate.min_healthy_time:g}s within {gate.deadline:g}s (last: {self.last}; "
            f"{self.probes} probe(s), healthy at best for {self.best:.1f}s)"
        )


async def wait_healthy(
    check: Callable[[], Awaitable[Reading]],
    gate: Gate,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    confirm: Callable[[], Awaitable[Reading]] | None = None,
) -> GateResult:
    """Pass once healthy without a break for min_healthy_time; fail at the deadline or when it exits.

    `confirm` is asked once before passing: a container that crashed and was restarted by its restart
    policy between two probes looks healthy to them, not to it.
    """
    started = clock()
    healthy_since: float | None = None
    waited = best = 0.0
    probes = 0
    while True:
        reading = await check()
        now = clock()
        probes += 1
        if reading.exited:
            return GateResult(False, now - started, reading.status, waited, probes, best)
        if not reading.healthy:
            healthy_since = None  # a relapse restarts the min_healthy_time window
        elif healthy_since is None:
            healthy_since = now
        best = max(best, now - healthy_since) if healthy_since is not None else best
        if healthy_since is not None and now - healthy_since >= gate.min_healthy_time:
            final = await confirm() if confirm is not None else reading
            last = final.status if final.exited else reading.status
            return GateResult(not final.exited, clock() - started, last, waited, probes, best)
        if now - started >= gate.deadline:
            return GateResult(False, now - started, reading.status, waited, probes, best)
        await sleep(max(0.0, min(gate.interval, started + gate.deadline - now)))
        waited += clock() - now


class Prober:
    """Probes one container on one host, as its gate says."""

    def __init__(
        self,
        transport: Transport,
        container: str,
        gate: Gate,
        become: bool | None = None,
        published: Mapping[str, str] | None = None,  # what a probe saw ("8080/tcp" -> "0.0.0.0:49153")
        restarts: int | None = None,  # the restart count to compare against; None: the first one seen
    ) -> None:
        self.transport, self.container, self.gate, self.become = transport, container, gate, become
        self._restarts = restarts
        self._published = dict(published or {})
        self._ips: list[str] | None = None  # the container's addresses, once inspected

    async def check(self) -> Reading:
        kind = self.gate.kind
        if kind in ("http", "tcp"):
            reading = await self._network()
        elif kind == "cmd":
            reading = await self._cmd()
        elif kind == "consul":
            reading = await self._consul()
        else:
            return await self.state()  # running / docker: the state answers it all
        if reading.healthy:
            return reading
        state = await self.state()  # not healthy: has the container stopped? then fail at once
        return state if state.exited else reading

    async def _cmd(self) -> Reading:
        argv = docker_cmd.exec_(self.container, self.gate.cmd)
        try:
            done = await self.transport.run(argv, timeout=self.gate.timeout, become=self.become)
        except CommandTimeout:  # a check that hangs is a failing check, not a lost host
            return Reading(False, f"cmd gave no result within {self.gate.timeout:g}s")
        return Reading(done.ok, "cmd exit 0" if done.ok else f"cmd exit {done.exit_status}")

    async def state(self) -> Reading:
        """The container's own state (running, exited, restarted since first seen)."""
        try:
            done = await self.transport.run(docker_cmd.state(self.container), timeout=30, become=self.become)
        except CommandTimeout:  # dockerd does not answer: not healthy, and the deadline still counts
            return Reading(False, "docker inspect gave no answer")
        first, _, addresses = done.stdout.partition("\n")
        status, _, rest = first.strip().partition(" ")
        count, _, health = rest.partition(" ")
        if done.ok and status == "running" and self._ips is None:  # ports exist while it runs
            self._addresses(addresses)
        if not done.ok or status not in ("running", "created", "restarting"):
            return Reading(False, f"container {status or 'gone'}", exited=True)
        restarts = int(count) if count.isdigit() else 0
        if self._restarts is None:
            self._restarts = restarts
        if restarts > self._restarts or status == "restarting":
            return Reading(False, "container exited and was restarted (crash)", exited=True)
        if self.gate.kind == "docker":
            return Reading(health == "healthy", f"docker health {health or 'none (no HEALTHCHECK)'}")
        return Reading(status == "running", f"container {status}")

    async def target(self, port: int | None = None, direct: bool = False) -> tuple[str, int]:
        """Where a container port (default: the gate's) answers on the host: its published port, else
        (or when `direct`) the container's IP. One `docker inspect` per container, whatever was asked."""
        port = port or self.gate.port or 0
        if self._ips is None and (direct or f"{port}/tcp" not in self._published):
            try:
                done = await self.transport.run(docker_cmd.addresses(self.container), timeout=30, become=self.become)
            except CommandTimeout:
                done = None
            if done is not None:
                self._addresses(done.stdout)
        ip, _, published = self._published.get(f"{port}/tcp", "").rpartition(":")
        if published.isdigit() and not (direct and self._ips):
            return _loopback(ip), int(published)
        return (self._ips or ["127.0.0.1"])[0], port

    def _addresses(self, out: str) -> None:
        """Take in `docker_cmd.addresses`' answer: published ports as JSON, then the IPs."""
        ports_json, _, ips = out.partition("\n")
        with contextlib.suppress(ValueError):
            self._published.update(published_ports(json.loads(ports_json or "null")))
        self._ips = ips.split()

    async def _network(self) -> Reading:
        # A tcp check goes to the container itself: Docker's userland proxy accepts on a published port
        # whether or not anything listens behind it. http sees the proxy's close as "no HTTP answer".
        host, port = await self.target(direct=self.gate.kind == "tcp")
        try:
            async with asyncio.timeout(self.gate.timeout):
                stream = await self.transport.open_tcp(host, port)
                try:
                    if self.gate.kind == "tcp":
                        return Reading(True, f"tcp {port} open")
                    code, body = await http.probe(stream, self.gate.path, self.gate.expect)
                    said = " ".join(body.decode("utf-8", "replace").split())
                    return Reading(code in self.gate.expect, f"HTTP {code}" + (f" {said!r}" if said else ""))
                finally:
                    await stream.close()
        except TimeoutError:
            return Reading(False, f"no answer within {self.gate.timeout:g}s")
        except http.HttpError:  # e.g. Docker's proxy accepting on a published port, then closing
            return Reading(False, "no HTTP answer")
        except OSError as exc:
            return Reading(False, str(exc).split(": ", 1)[-1] or type(exc).__name__)

    async def _consul(self) -> Reading:
        try:
            status = await consul_client.service_status(self.transport, self.gate.consul_id, self.gate.timeout)
        except (TimeoutError, OSError) as exc:
            return Reading(False, f"consul agent: {exc or 'no answer'}")
        return Reading(status == "passing", f"consul {status}")


def _loopback(ip: str) -> str:
    """A port published on every address is reached on the host's loopback."""
    return "127.0.0.1" if ip in ("0.0.0.0", "::", "") else ip


async def instance_health(service: Service, host: str, transport: Transport, container: ObservedContainer) -> Reading:
    """One probe of the service's check, as its gate makes it (Docker's own health without a check)."""
    if service.health is None:
        unhealthy = container.health == "unhealthy"
        return Reading(not unhealthy, f"docker health {container.health or 'none'}")
    gate = gate_for(service, UpdatePolicy(), host)
    return await Prober(transport, container.name, gate, published=container.ports).check()
