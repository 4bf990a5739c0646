"""HAProxy's configuration (pure), in fragments: a head (global, defaults, the frontend's binds), and
per routed service its frontend lines, its backend, and one file per host with that host's servers.
Each run writes the fragments of the services it routes; the ingress host assembles every fragment it
has into haproxy.cfg (commands/haproxy.py), so a run leaves the routes of services other playbooks
declare as they are. A rollout step rewrites one host's server file as it moves the instance
(a Docker-chosen port is known only once the container runs).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

FRAGMENTS = "/etc/haproxy/pushorch.d"
CERTS = "/etc/haproxy/certs"
HEAD = "00-head.cfg"
# In the head: bound when the certificates directory has a file (the assembly uncomments it).
HTTPS_MARK = "#pushorch-https "
# After the routes: a request no route takes gets 404.
TAIL = (
    "    default_backend be_no_route\n\nbackend be_no_route\n"
    '    http-request return status 404 content-type text/plain string "no service here\\n"\n'
)


@dataclass(frozen=True, slots=True)
class Server:
    """One instance behind the proxy: the host that runs it, at the host port it publishes."""

    host: str
    address: str
    port: int

    @property
    def name(self) -> str:
        """HOST:PORT: a start-first instance and the one it replaces are two servers side by side."""
        return server_name(self.host, self.port)

    def line(self) -> str:
        return f"    server {self.name} {self.address}:{self.port} check\n"

    def added(self, backend: str, inter: str) -> str:
        """The runtime API's `add server` of it (no default-server applies there: its check timing too)."""
        return (
            f"add server {backend}/{self.name} {self.address}:{self.port} check inter {inter} fall {FALL} rise {RISE}"
        )


def server_name(host: str, port: int) -> str:
    return f"{host}:{port}"


def host_of(server: str) -> str:
    return server.rpartition(":")[0] or server


FALL, RISE = 2, 2


@dataclass(frozen=True, slots=True)
class Route:
    """One service reached through the ingress."""

    service: str
    hostnames: tuple[str, ...]
    path: str
    balance: str  # roundrobin | leastconn | consistent
    hash_key: str  # uri | header:NAME | cookie:NAME (consistent only)
    check: str  # "" (TCP connect) or the HTTP path HAProxy's own check asks for
    servers: tuple[Server, ...]
    hosts: tuple[str, ...] = ()  # placed hosts: each has a server file (empty until its instance runs)
    maintenance_page: str = ""  # answered with a 503 while no server takes requests
    tls: str = ""  # the certificate's sha256 (it changes the fragment): served on https_port
    owner: str = ""  # owner_mark() of the playbook that declares it: `--prune` of that playbook removes it

    @property
    def backend(self) -> str:
        return backend(self.service)


def backend(service: str) -> str:
    return f"be_{service}"


def certificate_path(service: str) -> str:
    """The service's certificate and key, one PEM file (0600) HAProxy reads."""
    return f"{CERTS}/{service}.pem"


def route_name(route: Route) -> str:
    """The frontend fragment's file name: longer path prefixes sort (and so match) first."""
    return f"r{999 - min(len(route.path), 999):03d}-{route.service}.route"


def backend_name(service: str) -> str:
    return f"{service}.backend"


def owner_mark(owner: str) -> str:
    """A short, file-name-safe mark of a playbook's owner identity (load/owner.py)."""
    return hashlib.sha256(owner.encode()).hexdigest()[:12]


def owner_name(service: str, mark: str) -> str:
    """An empty fragment whose name says which playbook routes the service (the probe lists names)."""
    return f"{service}.owner-{mark}"


def servers_name(service: str, host: str) -> str:
    """One host's servers of the service's backend, assembled after its backend fragment."""
    return f"{service}@{host}.servers"


def interval(seconds: float) -> str:
    """HAProxy's time between two checks of a server."""
    return f"{max(int(seconds * 1000), 100)}ms"


def head(http_port: int, https_port: int, check_interval: float) -> str:
    inter = interval(check_interval)
    lines = [
        "# Written by pushorch from the plan: the fragments in /etc/haproxy/pushorch.d (docs/ingress.md).",
        "global",
        "    master-worker",
        "    pidfile /run/haproxy.pid",
        "    stats socket /run/haproxy/admin.sock mode 600 level admin expose-fd listeners",
        "    server-state-file /var/lib/haproxy/server-state",
        "",
        "defaults",
        "    mode http",
        "    option http-keep-alive",
        # A reload closes no idle kept-alive connection: the old worker answers its next request with
        # `Connection: close` instead (a client that does not retry saw RemoteDisconnected).
        "    option idle-close-on-response",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        # A connection refused (an instance stopping under a stale check) is tried once more elsewhere.
        "    retries 2",
        "    option redispatch 1",
        "    load-server-state-from-file global",
        f"    default-server inter {inter} fall {FALL} rise {RISE}",
        "",
        "frontend http",
        f"    bind :{http_port}",
        f"{HTTPS_MARK}    bind :{https_port} ssl crt {CERTS}/",  # SNI picks each service's certificate
    ]
    return "\n".join(lines) + "\n"


def route_fragment(route: Route) -> str:
    lines = []
    exact = [h for h in route.hostnames if not h.startswith("*.")]
    wild = [h[1:] for h in route.hostnames if h.startswith("*.")]  # "*.example.com" -> ".example.com"
    matched = "hdr(host),field(1,:),lower"
    if exact:
        lines.append(f"    acl host_{route.service} {matched} -m str {' '.join(exact)}")
    if wild:
        lines.append(f"    acl host_{route.service} {matched} -m end {' '.join(wild)}")
    condition = f"host_{route.service}"
    if route.path != "/":
        lines.append(f"    acl path_{route.service} path_beg {route.path}")
        condition += f" path_{route.service}"
    if route.tls:
        lines.append(f"    http-request redirect scheme https code 301 if !{{ ssl_fc }} {condition}")
    lines.append(f"    use_backend {route.backend} if {condition}")
    return "\n".join(lines) + "\n"


def backend_fragment(route: Route) -> str:
    lines = ["", f"backend {route.backend}", *_balance(route)]
    if route.tls:  # a new certificate is a new fragment: the run writes it and reloads
        lines.append(f"    # certificate sha256 {route.tls}")
    if route.maintenance_page:
        page = " ".join(route.maintenance_page.splitlines()).replace("\\", "\\\\").replace('"', '\\"')
        # HAProxy's own 503 (no server takes requests) carries the page. Not `nbsrv eq 0`: a worker
        # that a reload is stopping counts no server, and answered a kept-alive request with the page.
        lines.append(f'    http-error status 503 content-type text/html string "{page}"')
    if route.check:
        lines += ["    option httpchk", f"    http-check send meth GET uri {route.check}"]
    return "\n".join(lines) + "\n"


def servers_fragment(route: Route, host: str) -> str:
    return "".join(s.line() for s in route.servers if s.host == host)


def fragments(routes: list[Route], http_port: int, https_port: int, check_interval: float) -> dict[str, str]:
    """File name (in FRAGMENTS) -> content, for the head and each route."""
    out = {HEAD: head(http_port, https_port, check_interval)}
    for route in routes:
        out[route_name(route)] = route_fragment(route)
        out[backend_name(route.service)] = backend_fragment(route)
        for host in dict.fromkeys([*route.hosts, *(s.host for s in route.servers)]):
            out[servers_name(route.service, host)] = servers_fragment(route, host)
        if route.owner:
            out[owner_name(route.service, route.owner)] = ""
    return out


def render(routes: list[Route], http_port: int, check_interval: float, https_port: int = 443) -> str:
    """haproxy.cfg as the host assembles it from these routes' fragments alone (commands/haproxy.py)."""
    parts = fragments(routes, http_port, https_port, check_interval)
    text = parts[HEAD]
    if any(r.tls for r in routes):
        text = text.replace(HTTPS_MARK, "")
    text += "".join(parts[name] for name in sorted(parts) if name.endswith(".route")) + TAIL
    for name in sorted(n for n in parts if n.endswith(".backend")):
        service = name.removesuffix(".backend")
        text += parts[name] + "".join(parts[n] for n in sorted(parts) if n.startswith(f"{service}@"))
    return text


def _balance(route: Route) -> list[str]:
    if route.balance != "consistent":
        return [f"    balance {route.balance}"]
    kind, _, name = route.hash_key.partition(":")
    how = {"uri": "uri", "header": f"hdr({name})", "cookie": f"hash req.cook({name})"}[kind]
    return [f"    balance {how}", "    hash-type consistent"]
