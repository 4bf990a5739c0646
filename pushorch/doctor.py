"""`pushorch doctor`: every host checked before a run, one SSH connection and one command each (plus
one agent call where the playbooks register in Consul and one TCP connect per registry they pull
from): SSH, become, Docker, free space, clock skew, the Consul agent, registries, host ports."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from pushorch.commands import doctor as doctor_cmd
from pushorch.commands.doctor import HostFacts
from pushorch.connection import ConnectionSettings
from pushorch.consul import client as consul_client
from pushorch.converge import connected
from pushorch.fanout import DEFAULT_FORKS
from pushorch.spec import HostSpec, Registry, Service, Spec
from pushorch.transport import Transport, http

CHECKS = ("ssh", "become", "docker", "disk", "clock", "consul", "registry", "ports")
SKEW_WARN, SKEW_FAIL = 2, 30  # seconds: failover durations and lock expiry read hosts' clocks
DOCKER_FREE_WARN, DOCKER_FREE_FAIL = 2 << 20, 512 << 10  # KiB
STATE_FREE_FAIL = 1 << 10  # KiB: marks, history, snapshots


@dataclass(frozen=True, slots=True)
class Check:
    status: str  # ok | warn | fail | -
    detail: str = ""


@dataclass
class HostReport:
    host: str
    checks: dict[str, Check] = field(default_factory=dict)
    skew: float | None = None

    @property
    def failed(self) -> bool:
        return any(c.status == "fail" for c in self.checks.values())

    def to_json(self) -> dict[str, object]:
        return {
            "host": self.host,
            "checks": {k: {"status": c.status, "detail": c.detail} for k, c in self.checks.items()},
        }


async def doctor(
    settings: Mapping[str, ConnectionSettings],
    spec: Spec | None = None,
    lock_host: str | None = None,
    forks: int = DEFAULT_FORKS,
) -> list[HostReport]:
    # Connected without become: whether sudo works is a check here, not a reason to give up on a host.
    plain = {h: dataclasses.replace(s, become=False, become_password=None) for h, s in settings.items()}
    async with connected(plain, forks) as (transports, unreachable, _):
        reports = {h: HostReport(h, {"ssh": Check("fail", e)}) for h, e in unreachable.items()}
        hosts = spec.hosts if spec else {}
        done = await asyncio.gather(*(_one(h, t, settings[h], hosts.get(h)) for h, t in transports.items()))
        reports.update({r.host: r for r in done})
    _against_lock_host(reports, lock_host)
    return [reports[h] for h in settings if h in reports]


async def _one(host: str, transport: Transport, s: ConnectionSettings, wanted: HostSpec | None) -> HostReport:
    report = HostReport(host, {"ssh": _ssh(s)})
    before = time.time()
    done = await transport.run(doctor_cmd.script(), timeout=60)
    facts = doctor_cmd.parse(done.stdout)
    if facts.clock is not None:
        report.skew = facts.clock - (before + time.time()) / 2
    needs_become = s.become or bool(wanted and any(p.become for p in wanted.plays))
    report.checks["become"] = _become(facts, needs_become, s.become_password is not None)
    report.checks["docker"] = _docker(facts)
    report.checks["disk"] = _disk(facts)
    report.checks["clock"] = _clock(report.skew)
    if wanted is not None:
        report.checks["consul"] = await _consul(transport, wanted)
        report.checks["registry"] = await _registries(transport, wanted)
        report.checks["ports"] = _ports(facts, wanted)
    return report


def _ssh(s: ConnectionSettings) -> Check:
    auth = f"key {', '.join(s.key_files)}" if s.key_files else "password" if s.password else "agent or default keys"
    if s.host_key_checking == "strict":
        return Check("ok", f"{auth}; host key verified")
    return Check("warn", f"{auth}; host key not verified (--host-key-checking {s.host_key_checking})")


def _become(facts: HostFacts, needed: bool, password: bool) -> Check:
    said = {"root": "root (no sudo needed)", "nopasswd": "sudo without a password", "none": "no sudo"}
    detail = said.get(facts.sudo, "sudo asks for a password" + (" (given)" if password else ""))
    if not needed or facts.sudo in ("root", "nopasswd") or (facts.sudo == "password" and password):
        return Check("ok", detail)
    if facts.sudo == "password":
        return Check("fail", "sudo asks for a password: give ansible_become_password (or -K)")
    return Check("fail", f"the playbooks need root ({detail})")


def _docker(facts: HostFacts) -> Check:
    if facts.docker == "not installed":
        return Check("warn", "not installed (a `docker` task installs it)")
    if not facts.docker[:1].isdigit():
        return Check("fail", f"the daemon does not answer: {facts.docker or 'no answer'}")
    return Check("ok", f"engine {facts.docker}, storage {facts.driver or '?'}")


def _disk(facts: HostFacts) -> Check:
    status, said = "ok", []
    for directory, kib in facts.free_kib.items():
        said.append(f"{directory} {kib // 1024} MiB free")
        low = (kib < STATE_FREE_FAIL) if directory == "/var/lib/pushorch" else (kib < DOCKER_FREE_FAIL)
        if low:
            status = "fail"
        elif directory != "/var/lib/pushorch" and kib < DOCKER_FREE_WARN and status == "ok":
            status = "warn"
    return Check(status, ", ".join(said) or "df gave no answer")


def _clock(skew: float | None) -> Check:
    if skew is None:
        return Check("fail", "the host's clock could not be read")
    said = f"{skew:+.0f}s against this controller"
    return Check("ok" if abs(skew) <= SKEW_WARN else "warn" if abs(skew) <= SKEW_FAIL else "fail", said)


def _against_lock_host(reports: Mapping[str, HostReport], lock_host: str | None) -> None:
    """Failover and lock expiry compare hosts' clocks with the lock host's: a skew between them counts."""
    anchor = reports.get(lock_host or "")
    if anchor is None or anchor.skew is None:
        return
    for report in reports.values():
        if report is anchor or report.skew is None:
            continue
        apart = report.skew - anchor.skew
        if abs(apart) > SKEW_FAIL:
            report.checks["clock"] = Check(
                "fail", f"{report.checks['clock'].detail}, {apart:+.0f}s against {lock_host} (lock host)"
            )


async def _consul(transport: Transport, wanted: HostSpec) -> Check:
    if not any(s.consul and s.consul.enabled for p in wanted.plays for s in p.services):
        return Check("-", "no service registers in Consul")
    agent = transport.settings.consul
    try:
        reply = await consul_client.request(transport, "GET", "/v1/agent/self", timeout=10)
    except consul_client.ConsulRefused as exc:
        return Check("fail", str(exc))
    except ssl.SSLError as exc:
        return Check("fail", f"TLS to {agent.address}: {exc.reason or exc}")
    except (OSError, TimeoutError) as exc:
        return Check("fail", f"no agent answers at {agent.address} ({exc or 'timeout'})")
    if reply.status != 200:
        return Check("fail", f"the agent at {agent.address} answered HTTP {reply.status}")
    said = "token accepted" if transport.settings.consul.token or agent.token_file else "no token"
    return Check("ok", f"{agent.address} answers ({said}{', TLS verified' if agent.tls and agent.verify else ''})")


def _registry_of(image: str) -> tuple[str, int] | None:
    """The registry an image is pulled from, when the reference names one (Docker Hub's is not tried)."""
    first, slash, _ = image.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        return None
    host, _, port = first.partition(":")
    return host, int(port) if port.isdigit() else 443


async def _registries(transport: Transport, wanted: HostSpec) -> Check:
    """Each named registry asked for /v2/ from the host, with the playbook's credentials when it has any."""
    wanted_ones: dict[tuple[str, int], Service] = {}
    for play in wanted.plays:
        for service in play.services:
            where = _registry_of(service.image) if service.source == "pull" else None
            if where and (where not in wanted_ones or service.registry):
                wanted_ones[where] = service
    if not wanted_ones:
        return Check("-", "no image is pulled from a named registry")
    said, status = [], "ok"
    for (host, port), service in sorted(wanted_ones.items()):
        verdict, detail = await _registry(transport, host, port, service.registry)
        said.append(f"{host}:{port} {detail}")
        status = "fail" if "fail" in (status, verdict) else "warn" if "warn" in (status, verdict) else "ok"
    return Check(status, "; ".join(said))


async def _registry(transport: Transport, host: str, port: int, credentials: Registry | None) -> tuple[str, str]:
    """GET /v2/ through the host's connection (HTTPS, else plain HTTP as Docker does for an
    insecure registry); a Basic challenge answered with the credentials."""
    headers = [("Host", f"{host}:{port}"), ("User-Agent", "pushorch")]
    for tls in (ssl.create_default_context(), None):
        try:
            async with asyncio.timeout(10):
                connection = await http.connect(lambda: transport.open_tcp(host, port), tls, host)
                try:
                    reply = await connection.request("GET", "/v2/", headers)
                    challenge = reply.headers.get("www-authenticate", "")
                    if reply.status != 401 or not challenge.lower().startswith("basic"):
                        break
                    if not (credentials and credentials.username and credentials.password):
                        return (
                            "warn",
                            "asks for credentials and the playbook gives none (a `docker login` on the host may)",
                        )
                    pair = f"{credentials.username}:{credentials.password.reveal()}".encode()
                    auth = [*headers, ("Authorization", "Basic " + base64.b64encode(pair).decode())]
                    reply = await connection.request("GET", "/v2/", auth)
                    if reply.status == 200:
                        return "ok", f"credentials of {credentials.username} accepted"
                    return "fail", f"refused the credentials of {credentials.username} (HTTP {reply.status})"
                finally:
                    await connection.close()
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            if tls is None:
                return "fail", f"unreachable from the host ({exc or 'timeout'})"
    if reply.status == 401:
        return "ok", "reachable (token auth: credentials not tried)"
    return ("ok", "reachable") if reply.status < 500 else ("fail", f"answers HTTP {reply.status}")


def _ports(facts: HostFacts, wanted: HostSpec) -> Check:
    held = []
    for play in wanted.plays:
        for service in play.services:
            if play.policy_for(service).order == "start-first" or service.name in wanted.excluded:
                continue
            for port in service.ports:
                if port.host is None or port.protocol != "tcp" or port.host not in facts.listening:
                    continue
                if service.name in facts.published.get(port.host, set()):
                    continue
                owners = ", ".join(sorted(facts.published.get(port.host, set())))
                if not owners and port.host in facts.proxied:
                    # Seen by the soak: a dockerd killed mid-start comes back holding the port for a
                    # container that no longer runs; only a clean restart of dockerd frees it.
                    owners = "a docker-proxy no container owns (left by a dockerd crash): restart dockerd"
                held.append(f"{port.host} ({service.name}) is held by {owners or 'something else'}")
    return Check("fail", "; ".join(held)) if held else Check("ok", "every published host port is free or the service's")
