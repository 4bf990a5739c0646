"""The host's Consul agent, over the host's SSH connection: every agent call pushorch makes goes here.

Requests are HTTP/1.1 (`transport.http`, inside TLS when the agent's address is https://) through
`open_tcp` to the agent's address as the host sees it (`consul_http_addr`, default 127.0.0.1:8500),
so hosts need no curl and the agent's port never leaves the host. A run keeps one connection to
each host's agent alive and sends every call on it (one channel, one TLS handshake). The ACL token
travels only in the X-Consul-Token header (or on stdin to `consul reload`), never on a command line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import urllib.parse
import weakref
from dataclasses import dataclass
from typing import Any

from pushorch.commands import marks
from pushorch.consul import commands as consul_cmd
from pushorch.errors import ExitStatus, HostError, PushorchError, TransportError
from pushorch.secret import Secret
from pushorch.transport import Transport, http
from pushorch.transport.http import Reply
from pushorch.transport.tls import client_context


class ConsulError(HostError):
    """The agent answered a write with an error, or did not answer it: a failed step (exit 5)."""

    exit_status = ExitStatus.APPLY_FAILED


class ConsulNotFound(ConsulError):
    """404: the agent does not know what the call names (an instance not registered on that host)."""


class ConsulRefused(ConsulError):
    """403: the agent's ACLs refused the token (or its absence)."""

    def __init__(self, host: str, detail: str) -> None:
        self.host = host
        PushorchError.__init__(self, f"Consul refused the token on {host} (HTTP 403: {detail or 'Permission denied'})")


# Per connection, and gone with it (weak keys: each run's transports are its own objects): the
# token read from the host's token file, and the TLS context made from the controller's files.
_tokens: weakref.WeakKeyDictionary[Any, Secret | None] = weakref.WeakKeyDictionary()
_contexts: weakref.WeakKeyDictionary[Any, ssl.SSLContext] = weakref.WeakKeyDictionary()
_definitions: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def definitions(transport: Transport) -> asyncio.Lock:
    """Held by whoever changes the host's definitions directory or reloads the agent, from the change
    through its reload. The agent reads every file there on reload, so a file another service's
    step removes meanwhile fails that reload (the suite's soak, seed 20261205 round 15: one rollout's
    drain took its file while another's reload read the directory: HTTP 500, "no such file")."""
    lock = _definitions.get(transport)
    if lock is None:
        lock = _definitions[transport] = asyncio.Lock()
    return lock


async def _token(transport: Transport) -> Secret | None:
    agent = transport.settings.consul
    if agent.token is not None or agent.token_file is None:
        return agent.token
    if transport not in _tokens:
        done = await transport.run(["cat", "--", agent.token_file], timeout=30, become=transport.settings.become)
        if not done.ok:
            raise ConsulError(transport.settings.name, f"cannot read the Consul token file {agent.token_file}")
        text = done.stdout.strip()
        _tokens[transport] = Secret(text) if text else None
    return _tokens[transport]


def _context(transport: Transport) -> ssl.SSLContext:
    if transport not in _contexts:
        a = transport.settings.consul
        _contexts[transport] = client_context(a.ca_file, a.cert_file, a.key_file, a.verify)
    return _contexts[transport]


async def request(
    transport: Transport, method: str, path: str, body: bytes = b"", timeout: float = 5.0, check: bool = True
) -> Reply:
    """One agent call. OSError/TimeoutError when the agent does not answer; ConsulRefused on 403
    (unless check=False)."""
    agent, host = transport.settings.consul, transport.settings.name
    token = await _token(transport)
    headers = [("Host", f"{agent.server_name or agent.host}:{agent.port}"), ("User-Agent", "pushorch")]
    if token is not None:
        headers.append(("X-Consul-Token", token.reveal()))
    tls = _context(transport) if agent.tls else None
    agents = http.pool(transport, agent.host, agent.port, agent.tls)
    async with asyncio.timeout(timeout):
        reply = await agents.request(
            lambda: transport.open_tcp(agent.host, agent.port),
            tls,
            agent.server_name or agent.host,
            method,
            path,
            headers,
            body,
        )
    if reply.status == 403 and check:
        raise ConsulRefused(host, reply.body.decode(errors="replace").strip()[:100])
    return reply


async def _write(transport: Transport, method: str, path: str, what: str, body: bytes = b"") -> Reply:
    """An agent call that must succeed: a refusal, an error status or no answer is a ConsulError."""
    host = transport.settings.name
    try:
        reply = await request(transport, method, path, body, timeout=30)
    except (OSError, TimeoutError) as exc:
        where = transport.settings.consul.address
        raise ConsulError(host, f"{what}: the Consul agent at {where} did not answer ({exc or 'timeout'})") from None
    if reply.status != 200:
        detail = f"{what}: HTTP {reply.status}: {reply.body.decode(errors='replace').strip()[:200]}"
        raise (ConsulNotFound if reply.status == 404 else ConsulError)(host, detail)
    return reply


async def reload(transport: Transport, binary: bool, become: bool | None) -> None:
    """The agent's reload endpoint, or `consul reload` where only the binary answers. A reload that
    fails leaves a mark on the host: the definitions there look done, but the agent never loaded
    them, so the next run reloads (the soak, seed 358149 round 21: a 500 during a rollback's way back)."""
    try:
        await _reload(transport, binary, become)
    except TransportError:
        raise
    except PushorchError:
        with contextlib.suppress(PushorchError):
            await transport.run(marks.reload_failed(), timeout=30, become=become)
        raise


async def _reload(transport: Transport, binary: bool, become: bool | None) -> None:
    if binary:
        agent = transport.settings.consul
        if agent.cert_file:
            raise ConsulError(
                transport.settings.name,
                "consul reload: the CLI on the host cannot present the controller's client certificate; "
                "the agent must answer on its API (consul_http_addr)",
            )
        token = await _token(transport)
        stdin = (token.reveal() + "\n").encode() if token is not None else b"\n"
        if agent.ca_file:
            with open(agent.ca_file, "rb") as handle:  # the CA is the controller's: sent, not assumed there
                stdin += handle.read()
        argv = consul_cmd.reload(agent.address, agent.server_name, agent.verify)
        done = await transport.run(argv, stdin=stdin, timeout=60, become=become)
        done.check("consul reload")
        return
    await _write(transport, "PUT", "/v1/agent/reload", "consul reload (agent API)")


async def check_tokens(transports: list[Transport]) -> None:
    """Ask each host's agent to read itself (agent:read): ConsulRefused when its ACLs refuse the token.
    An agent that does not answer is left to the steps that need it."""

    async def one(transport: Transport) -> None:
        with contextlib.suppress(OSError, TimeoutError):
            await request(transport, "GET", "/v1/agent/self", timeout=10)

    await asyncio.gather(*(one(t) for t in transports))


async def maintenance(transport: Transport, service_id: str, enable: bool, reason: str = "") -> None:
    """The agent's maintenance mode for one instance: listed but critical, so clients leave it."""
    query = urllib.parse.urlencode({"enable": "true" if enable else "false", **({"reason": reason} if reason else {})})
    what = f"consul maintenance {'on' if enable else 'off'} for {service_id}"
    await _write(transport, "PUT", f"/v1/agent/service/maintenance/{service_id}?{query}", what)


async def maintenance_reasons(transport: Transport, timeout: float = 5.0) -> dict[str, str]:
    """Service id -> reason, for the local agent's instances in maintenance mode (its checks say so)."""
    reply = await request(transport, "GET", "/v1/agent/checks", timeout=timeout)
    checks = reply.json({})
    if reply.status != 200 or not isinstance(checks, dict):
        return {}
    prefix = "_service_maintenance:"
    return {
        str(c.get("ServiceID") or k[len(prefix) :]): str(c.get("Notes") or "")
        for k, c in checks.items()
        if k.startswith(prefix) and isinstance(c, dict)
    }


async def service_status(transport: Transport, service_id: str, timeout: float) -> str:
    """The local agent's aggregated status of one service instance: passing, warning, critical, unknown."""
    reply = await request(transport, "GET", f"/v1/agent/health/service/id/{service_id}", timeout=timeout)
    found = reply.json({})
    return str(found.get("AggregatedStatus", "unknown")) if isinstance(found, dict) and reply.status else "unknown"


async def passing_ids(transport: Transport, name: str, timeout: float = 5.0) -> set[str]:
    """Service IDs of `name` whose checks all pass, cluster-wide, as this host's agent sees the catalog."""
    reply = await request(transport, "GET", f"/v1/health/service/{name}?passing", timeout=timeout)
    if reply.status != 200:
        # Unknown is not "none passing": the caller must not act as if the catalog were empty.
        raise ConsulError(transport.settings.name, f"consul health of {name}: HTTP {reply.status}")
    entries = reply.json([])
    return {str((e.get("Service") or {}).get("ID", "")) for e in entries if isinstance(e, dict)} - {""}


# -- KV and sessions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KvEntry:
    key: str
    value: bytes
    flags: int
    modify_index: int
    session: str = ""


async def kv_get(transport: Transport, key: str) -> KvEntry | None:
    reply = await request(transport, "GET", f"/v1/kv/{_key(key)}", timeout=10)
    if reply.status == 404:
        return None
    if reply.status != 200:
        raise ConsulError(transport.settings.name, f"consul kv get {key}: HTTP {reply.status}")
    entries = reply.json([])
    return _entry(entries[0]) if entries else None


async def kv_list(transport: Transport, prefix: str) -> list[KvEntry]:
    reply = await request(transport, "GET", f"/v1/kv/{_key(prefix)}?recurse", timeout=10)
    if reply.status == 404:
        return []
    if reply.status != 200:
        raise ConsulError(transport.settings.name, f"consul kv get -recurse {prefix}: HTTP {reply.status}")
    return [_entry(e) for e in reply.json([]) if isinstance(e, dict)]


async def kv_put(transport: Transport, key: str, value: bytes, cas: int | None = None, flags: int = 0) -> bool:
    """Write a key; with `cas`, only if its ModifyIndex is still that (0: only if it does not exist)."""
    query = urllib.parse.urlencode({"flags": flags, **({"cas": cas} if cas is not None else {})})
    reply = await _write(transport, "PUT", f"/v1/kv/{_key(key)}?{query}", f"consul kv put {key}", value)
    return reply.json(False) is True


async def kv_delete(transport: Transport, key: str, cas: int | None = None) -> bool:
    query = f"?cas={cas}" if cas is not None else ""
    reply = await _write(transport, "DELETE", f"/v1/kv/{_key(key)}{query}", f"consul kv delete {key}")
    return reply.json(False) is True


async def session_create(transport: Transport, name: str, ttl: int, lock_delay: int = 15) -> str:
    """A session with a TTL and behavior=release: its locks are freed when it is invalidated."""
    body = json.dumps({"Name": name, "TTL": f"{ttl}s", "Behavior": "release", "LockDelay": f"{lock_delay}s"})
    reply = await _write(transport, "PUT", "/v1/session/create", "consul session create", body.encode())
    return str(reply.json({}).get("ID", ""))


async def session_renew(transport: Transport, session: str) -> bool:
    """False when the session is gone (expired or destroyed): its locks are lost."""
    reply = await request(transport, "PUT", f"/v1/session/renew/{session}", timeout=30)
    if reply.status == 404:
        return False
    if reply.status != 200:
        raise ConsulError(transport.settings.name, f"consul session renew: HTTP {reply.status}")
    return True


async def session_destroy(transport: Transport, session: str) -> None:
    await _write(transport, "PUT", f"/v1/session/destroy/{session}", "consul session destroy")


async def kv_acquire(transport: Transport, key: str, value: bytes, session: str) -> bool:
    reply = await _write(transport, "PUT", f"/v1/kv/{_key(key)}?acquire={session}", f"consul lock {key}", value)
    return reply.json(False) is True


async def kv_release(transport: Transport, key: str, session: str) -> bool:
    reply = await _write(transport, "PUT", f"/v1/kv/{_key(key)}?release={session}", f"consul unlock {key}")
    return reply.json(False) is True


def _key(key: str) -> str:
    return urllib.parse.quote(key.lstrip("/"), safe="/")


def _entry(raw: dict[str, Any]) -> KvEntry:
    value = raw.get("Value")
    return KvEntry(
        key=str(raw.get("Key", "")),
        value=base64.b64decode(value) if value else b"",
        flags=int(raw.get("Flags") or 0),
        modify_index=int(raw.get("ModifyIndex") or 0),
        session=str(raw.get("Session") or ""),
    )
