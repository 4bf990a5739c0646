"""Consul service definitions (pure): the JSON a host's config dir gets, and the reload command."""

from __future__ import annotations

import json
from typing import Any

from pushorch.commands.shell import Argv
from pushorch.spec import ConsulService, Service


def duration(seconds: float) -> str:
    """Consul's duration strings: 10 -> '10s', 0.5 -> '500ms', 300 -> '5m'."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def definition_path(consul: ConsulService, service: str) -> str:
    return f"{consul.config_dir.rstrip('/')}/pushorch-{service}.json"


def host_port(service: Service, container_port: int | None = None) -> int | None:
    for port in service.ports:
        if port.host is not None and (container_port is None or port.container == container_port):
            return port.host
    return None


# The reason a rollout's `drain: maintenance` gives the agent: any other was set by hand (or by
# `pushorch maintenance enable`, whose reasons start "pushorch: ") and only a hand ends it.
MAINTENANCE_PREFIX = "pushorch rollout: "


def service_id(service: str, host: str) -> str:
    """The instance's id in Consul: one per service per host."""
    return f"{service}-{host}"


def definition(service: Service, host: str, address: str, version: str, digest: str) -> str:
    """The definition file for one instance: id, name, tags, address, port, meta and check."""
    consul = service.consul or ConsulService()
    # 0 when Docker chooses the host port (start-first): the executor moves it to the container's
    # port, and the check's with it (with_port), once the container runs.
    port = consul.port or host_port(service) or 0
    body: dict[str, Any] = {
        "id": service_id(service.name, host),
        "name": consul.name or service.name,
        "tags": list(consul.tags),
        "address": consul.address or address,
        "port": port,
        "meta": {**consul.meta, "pushorch_version": version, "pushorch_spec_hash": digest},
    }
    check = _check(service, consul, body["address"], port)
    if check:
        body["check"] = check
    return json.dumps({"service": body}, indent=2, sort_keys=True) + "\n"


def _check(service: Service, consul: ConsulService, address: str, port: int) -> dict[str, Any] | None:
    c = consul.check
    timing = {
        "interval": duration(c.interval if c else 10),
        "timeout": duration(c.timeout if c else 2),
        "deregister_critical_service_after": duration(c.deregister_critical_service_after if c else 300),
    }
    if c and c.http:
        return {"http": f"http://{address}:{port}{c.http}", **timing}
    if c and c.tcp:
        return {"tcp": f"{address}:{port}", **timing}
    health = service.health
    if health and health.http:
        target = host_port(service, health.http.port) or port
        return {"http": f"http://{address}:{target}{health.http.path}", **timing}
    if health and health.tcp:
        target = host_port(service, health.tcp.port) or port
        return {"tcp": f"{address}:{target}", **timing}
    return None


def with_port(content: str, old: int, new: int) -> str:
    """The definition with its port (and its check's target) moved from `old` to `new` (start-first)."""
    data = json.loads(content)
    body = data["service"]
    if body.get("port") == old:
        body["port"] = new
    check = body.get("check") or {}
    target = f"{body['address']}:{old}"
    if check.get("tcp") == target:
        check["tcp"] = f"{body['address']}:{new}"
    if str(check.get("http", "")).startswith(f"http://{target}/"):
        check["http"] = f"http://{body['address']}:{new}" + check["http"][len(f"http://{target}") :]
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def take_definition(path: str) -> Argv:
    """Print the definition file and remove it, in one round trip (the drain keeps what it removed)."""
    return ("sh", "-c", 'cat -- "$0" 2>/dev/null; rm -f -- "$0"', path)


# stdin: the ACL token's line (empty: none), then the CA bundle (PEM; may be empty), kept in a private
# temporary file for CONSUL_CACERT while `consul reload` runs. The token never reaches argv.
_RELOAD = (
    'IFS= read -r t || :; if [ -n "$t" ]; then CONSUL_HTTP_TOKEN=$t; export CONSUL_HTTP_TOKEN; fi; '
    "CONSUL_HTTP_ADDR=$1; export CONSUL_HTTP_ADDR; "
    'if [ -n "$2" ]; then CONSUL_TLS_SERVER_NAME=$2; export CONSUL_TLS_SERVER_NAME; fi; '
    'if [ "$3" = 0 ]; then CONSUL_HTTP_SSL_VERIFY=false; export CONSUL_HTTP_SSL_VERIFY; fi; '
    'ca=$(umask 077 && mktemp) || exit 1; cat > "$ca"; '
    'if [ -s "$ca" ]; then CONSUL_CACERT=$ca; export CONSUL_CACERT; fi; '
    'consul reload; s=$?; rm -f "$ca"; exit $s'
)


def reload(address: str, server_name: str | None = None, verify: bool = True) -> Argv:
    """`consul reload` against the agent the host's consul_* variables name (the CLI reads the same
    CONSUL_* environment as the agent's other clients); token and CA on stdin."""
    return ("sh", "-c", _RELOAD, "consul-reload", address, server_name or "", "1" if verify else "0")
