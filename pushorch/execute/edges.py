"""The ingress hosts around one instance's replacement: drained there before it stops, routed there
once its gate passed (commands/haproxy.py's runtime API; no reload). A server is HOST:PORT, so a
start-first instance (a port Docker chose) and the one it replaces are two servers side by side."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from pushorch.actions import IngressTarget
from pushorch.commands import haproxy
from pushorch.commands.haproxy_config import Server, server_name
from pushorch.errors import PushorchError, TransportError
from pushorch.transport import Transport


async def maintenance(service: str, on: bool, edges: Mapping[str, Transport]) -> dict[str, str]:
    """`maintenance enable|disable` on every ingress: all of the service's servers `maint` (the ingress
    answers its maintenance page) or `ready`. Returns edge -> why it failed."""

    async def one(edge: str, transport: Transport) -> str:
        try:
            result = await transport.run(haproxy.maintenance(service, on), timeout=30)
        except PushorchError as exc:
            return str(exc)
        return "" if result.ok else f"ingress: {result.stderr.strip() or f'exit {result.exit_status}'}"

    errors = await asyncio.gather(*(one(e, t) for e, t in edges.items()))
    return {edge: error for edge, error in zip(edges, errors, strict=True) if error}


class Edges:
    """One service's servers for one host, on every ingress host of the run."""

    def __init__(
        self,
        service: str,
        host: str,
        target: IngressTarget,
        edges: Mapping[str, Transport | None],
        local: Transport,
        become: bool | None = None,
    ) -> None:
        self.service, self.host, self.target, self.edges = service, host, target, edges
        self.local, self.become = local, become  # the instance's host: where a Docker-chosen port is read
        self._drained: set[int] = set()  # ports of servers this step drained (their instance stops)
        self._routed = 0

    def __bool__(self) -> bool:
        return bool(self.edges)

    async def drain(self, container: str, wait: float) -> None:
        """No new request goes to the container's instance; back when the requests it serves are done
        (at most `wait` seconds). An ingress that cannot be told fails the step before anything stops:
        the rollout never stops an instance an ingress still sends requests to."""
        port = await self._port(container)
        if not port:  # it publishes no port (it is not running): no ingress sends it anything
            return
        self._drained.add(port)
        server = server_name(self.host, port)
        await self._everywhere(haproxy.drain(self.service, server, wait), f"{server} drain", wait + 30)

    async def route(self, container: str) -> None:
        """The container passed its gate: every ingress sends it requests. A drained server of another
        port (its instance stopped, or a restart moved its port) goes."""
        port = await self._port(container)
        if not port:
            raise PushorchError(f"ingress: {container} publishes no port {self.target.container_port}")
        self._routed = port
        server = Server(self.host, self.target.address, port)
        await self._everywhere(haproxy.route(self.service, server, self.target.inter), f"{server.name} ready", 30)
        if self._drained - {port}:
            await self.retire()

    async def retire(self) -> None:
        """Drained servers other than the routed one leave every ingress (their instances stopped)."""
        for port in sorted(self._drained - {self._routed}):
            server = server_name(self.host, port)
            await self._everywhere(haproxy.remove(self.service, server), f"{server} remove", 30)
        self._drained &= {self._routed}

    async def _port(self, container: str) -> int:
        """The host port the ingress reaches the container at, as it runs: fixed or Docker's choice (a
        start-first service's, or one that was before a change of `update.order`). 0: not running."""
        published = f"{self.target.container_port}/tcp"
        done = await self.local.run(("docker", "port", container, published), timeout=30, become=self.become)
        ports = [line.rpartition(":")[2] for line in done.stdout.split()] if done.ok else []
        return next((int(p) for p in ports if p.isdigit()), 0)

    async def _everywhere(self, argv: tuple[str, ...], what: str, timeout: float) -> None:
        async def one(edge: str, transport: Transport | None) -> None:
            if transport is None:  # it may still send requests to the instance: nothing stops
                why = f"ingress {edge}: not connected: cannot set {self.service} {what} on {self.host}"
                raise PushorchError(f"{why} (to go on without that ingress, leave it out with --limit)")
            try:
                result = await transport.run(argv, timeout=timeout)
            except TransportError as lost:  # the ingress host's, not the instance's host: the step fails
                raise PushorchError(f"ingress {edge}: {lost}") from lost
            result.check(f"ingress {edge}: {self.service} {what}")

        await asyncio.gather(*(one(edge, t) for edge, t in self.edges.items()))
