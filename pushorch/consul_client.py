"""The host's Consul agent, over the host's SSH connection: every agent call pushorch makes goes here.

Requests are plain HTTP/1.0 through `open_tcp` to the agent's address on the host (127.0.0.1:8500),
so hosts need no curl and the agent's port never leaves the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from typing import Any

from pushorch.commands import consul as consul_cmd
from pushorch.errors import CommandFailed
from pushorch.transport import Transport

AGENT = ("127.0.0.1", 8500)


async def request(transport: Transport, method: str, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body) of one agent call; OSError/TimeoutError when the agent does not answer."""
    async with asyncio.timeout(timeout):
        stream = await transport.open_tcp(*AGENT)
        try:
            head = f"{method} {path} HTTP/1.0\r\nHost: localhost\r\nUser-Agent: pushorch\r\nContent-Length: 0\r\n\r\n"
            await stream.write(head.encode())
            reply = b""
            while len(reply) < 1 << 20:
                chunk = await stream.read(65536)
                if not chunk:
                    break
                reply += chunk
        finally:
            await stream.close()
    status_line, _, rest = reply.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    parts = status_line.split()
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), body


async def reload(transport: Transport, binary: bool, become: bool | None) -> None:
    """`consul reload`, or without a binary the agent's reload endpoint."""
    if binary:
        done = await transport.run(consul_cmd.reload(), timeout=60, become=become)
        done.check("consul reload")
        return
    status, body = await request(transport, "PUT", "/v1/agent/reload")
    if status != 200:
        raise CommandFailed(transport.settings.name, "consul reload (agent API)", 1, f"HTTP {status}: {body[:200]!r}")


async def maintenance(transport: Transport, service_id: str, enable: bool, reason: str = "") -> None:
    """The agent's maintenance mode for one instance: listed but critical, so clients leave it."""
    query = urllib.parse.urlencode({"enable": "true" if enable else "false", **({"reason": reason} if reason else {})})
    status, body = await request(transport, "PUT", f"/v1/agent/service/maintenance/{service_id}?{query}")
    if status != 200:
        what = f"consul maintenance {'on' if enable else 'off'} for {service_id}"
        raise CommandFailed(transport.settings.name, what, 1, f"HTTP {status}: {body[:200]!r}")


async def maintenance_reasons(transport: Transport, timeout: float = 5.0) -> dict[str, str]:
    """Service id -> reason, for the local agent's instances in maintenance mode (its checks say so)."""
    status, body = await request(transport, "GET", "/v1/agent/checks", timeout)
    checks: Any = {}
    with contextlib.suppress(ValueError):
        checks = json.loads(body or b"{}")
    if status != 200 or not isinstance(checks, dict):
        return {}
    prefix = "_service_maintenance:"
    return {
        str(c.get("ServiceID") or k[len(prefix) :]): str(c.get("Notes") or "")
        for k, c in checks.items()
        if k.startswith(prefix) and isinstance(c, dict)
    }


async def service_status(transport: Transport, service_id: str, timeout: float) -> str:
    """The local agent's aggregated status of one service instance: passing, warning, critical, unknown."""
    status, body = await request(transport, "GET", f"/v1/agent/health/service/id/{service_id}", timeout)
    found: Any = {}
    with contextlib.suppress(ValueError):
        found = json.loads(body or b"{}")
    return str(found.get("AggregatedStatus", "unknown")) if isinstance(found, dict) and status else "unknown"


async def passing_ids(transport: Transport, name: str, timeout: float = 5.0) -> set[str]:
    """Service IDs of `name` whose checks all pass, cluster-wide, as this host's agent sees the catalog."""
    status, body = await request(transport, "GET", f"/v1/health/service/{name}?passing", timeout)
    if status != 200:
        return set()
    entries: Any = []
    with contextlib.suppress(ValueError):
        entries = json.loads(body or b"[]")
    return {str((e.get("Service") or {}).get("ID", "")) for e in entries if isinstance(e, dict)} - {""}
