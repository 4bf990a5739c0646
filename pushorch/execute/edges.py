"""The ingress hosts around one instance's replacement: drained there before it stops, ready there
once its gate passed (commands/haproxy.py's runtime API; no reload)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from pushorch.commands import haproxy
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
    """One service's server for one host, on every ingress host of the run."""

    def __init__(self, service: str, host: str, edges: Mapping[str, Transport | None]) -> None:
        self.service, self.host, self.edges = service, host, edges

    def __bool__(self) -> bool:
        return bool(self.edges)

    async def drain(self, wait: float) -> None:
        """No new request goes to the instance; back when the requests it serves are done (at most
        `wait` seconds). An ingress that cannot be told fails the step before anything stops: the
        rollout never stops an instance an ingress still sends requests to."""
        await self._everywhere(haproxy.drain(self.service, self.host, wait), "drain", wait + 30)

    async def ready(self) -> None:
        await self._everywhere(haproxy.ready(self.service, self.host), "ready", 30)

    async def _everywhere(self, argv: tuple[str, ...], what: str, timeout: float) -> None:
        async def one(edge: str, transport: Transport | None) -> None:
            if transport is None:  # it may still send requests to the instance: nothing stops
                why = f"ingress {edge}: not connected: cannot set {self.service} on {self.host} {what}"
                raise PushorchError(f"{why} (to go on without that ingress, leave it out with --limit)")
            try:
                result = await transport.run(argv, timeout=timeout)
            except TransportError as lost:  # the ingress host's, not the instance's host: the step fails
                raise PushorchError(f"ingress {edge}: {lost}") from lost
            result.check(f"ingress {edge}: {self.service} on {self.host} {what}")

        await asyncio.gather(*(one(edge, t) for edge, t in self.edges.items()))
