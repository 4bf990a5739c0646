"""The ingress proxy, HAProxy (pure): its configuration rendered from the routes the plan placed, and
the commands that load it (validated first) and move one instance in and out through its runtime API.

Why HAProxy: its runtime API sets a server drain/ready without a reload, master-worker reloads are
hitless, and Debian ships 2.6. The runtime API is a Unix socket; socat talks to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pushorch.commands.shell import Argv, quote, sh

CONFIG = "/etc/haproxy/haproxy.cfg"
ADMIN = "/run/haproxy/admin.sock"
MASTER = "/run/haproxy-master.sock"
PIDFILE = "/run/haproxy.pid"
STATE = "/var/lib/haproxy/server-state"
BINARY = "/usr/sbin/haproxy"
SOCAT = "/usr/bin/socat"
CERTS = "/etc/haproxy/certs"


@dataclass(frozen=True, slots=True)
class Server:
    """One instance behind the proxy: the host that runs it, at the host port it publishes."""

    host: str
    address: str
    port: int


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
    maintenance_page: str = ""  # answered with a 503 while no server takes requests
    tls: str = ""  # the certificate's sha256 (it changes the configuration): served on https_port

    @property
    def backend(self) -> str:
        return backend(self.service)


def backend(service: str) -> str:
    return f"be_{service}"


def certificate_path(service: str) -> str:
    """The service's certificate and key, one PEM file (0600) HAProxy reads."""
    return f"{CERTS}/{service}.pem"


def render(routes: list[Route], http_port: int, check_interval: float, https_port: int = 443) -> str:
    """haproxy.cfg for these routes. Longer path prefixes are matched first; a request no route takes
    gets 404. Server states (drain, maint) survive reloads through the state file."""
    inter = f"{max(int(check_interval * 1000), 100)}ms"
    lines = [
        "# Written by pushorch from the plan; the next run rewrites it (docs/ingress.md).",
        "global",
        "    master-worker",
        f"    pidfile {PIDFILE}",
        f"    stats socket {ADMIN} mode 600 level admin expose-fd listeners",
        f"    server-state-file {STATE}",
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
        f"    default-server inter {inter} fall 2 rise 2",
        "",
        "frontend http",
        f"    bind :{http_port}",
    ]
    secured = sorted((r for r in routes if r.tls), key=lambda r: r.service)
    if secured:  # SNI picks each service's certificate
        lines.append(f"    bind :{https_port} ssl " + " ".join(f"crt {certificate_path(r.service)}" for r in secured))
    ordered = sorted(routes, key=lambda r: (-len(r.path), r.service))
    uses = []
    for route in ordered:
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
        uses.append(f"    use_backend {route.backend} if {condition}")
    lines += uses
    lines += ["    default_backend be_no_route", "", "backend be_no_route"]
    lines.append('    http-request return status 404 content-type text/plain string "no service here\\n"')
    for route in sorted(routes, key=lambda r: r.service):
        lines += ["", f"backend {route.backend}", *_balance(route)]
        if route.tls:  # a new certificate is a new configuration: the run writes it and reloads
            lines.append(f"    # certificate sha256 {route.tls}")
        if route.maintenance_page:
            page = " ".join(route.maintenance_page.splitlines()).replace("\\", "\\\\").replace('"', '\\"')
            lines.append(
                f'    http-request return status 503 content-type text/html string "{page}" '
                f"if {{ nbsrv({route.backend}) eq 0 }}"
            )
        if route.check:
            lines += ["    option httpchk", f"    http-check send meth GET uri {route.check}"]
        for server in route.servers:
            lines.append(f"    server {server.host} {server.address}:{server.port} check")
    return "\n".join(lines) + "\n"


def _balance(route: Route) -> list[str]:
    if route.balance != "consistent":
        return [f"    balance {route.balance}"]
    kind, _, name = route.hash_key.partition(":")
    how = {"uri": "uri", "header": f"hdr({name})", "cookie": f"hash req.cook({name})"}[kind]
    return [f"    balance {how}", "    hash-type consistent"]


def apply(systemd: bool) -> Argv:
    """Put the configuration on stdin in place and (re)load it. It is checked first (`haproxy -c`):
    a bad one never replaces the good one (exit 3 and HAProxy's reasons). A running master reloads
    hitlessly (USR2), with the servers' states saved for the new worker; otherwise HAProxy starts
    (Debian's package may have started one with its own configuration: that one goes)."""
    new = f"{CONFIG}.pushorch-new"
    save = f"echo 'show servers state' | socat stdio UNIX-CONNECT:{ADMIN} > {STATE} 2>/dev/null || rm -f {STATE}"
    if systemd:
        load = f"{{ {save}; }}; systemctl enable -q haproxy; systemctl reload-or-restart haproxy"
    else:
        start = f"haproxy -W -D -S {MASTER} -f {CONFIG}"
        running = f'[ -S {MASTER} ] && kill -0 "$(cat {PIDFILE} 2>/dev/null)" 2>/dev/null'
        stale = f'p=$(cat {PIDFILE} 2>/dev/null); [ -n "$p" ] && kill "$p" 2>/dev/null; sleep 0.2; rm -f {MASTER}'
        load = f'if {running}; then {{ {save}; }}; kill -USR2 "$(cat {PIDFILE})"; else {stale}; {start}; fi'
    return sh(
        f"mkdir -p /etc/haproxy /run/haproxy /var/lib/haproxy && cat > {new} || exit 1; "
        f'if ! out=$(haproxy -c -q -f {new} 2>&1); then rm -f {new}; echo "$out" >&2; exit 3; fi; '
        f"mv -f {new} {CONFIG} || exit 1; {load}"
    )


def _told(text: str) -> str:
    """Send runtime API commands; HAProxy answers nothing to one that worked, else why it did not."""
    return _told_word(quote(text))


def _told_word(word: str) -> str:
    """`_told` for commands given as one shell word (it may expand a loop variable)."""
    return (
        f"out=$(echo {word} | socat stdio UNIX-CONNECT:{ADMIN}) || exit 1; "
        '[ -z "$(echo $out)" ] || { echo "$out" >&2; exit 1; }'
    )


def _column(service: str, host: str, column: int) -> str:
    """A shell command printing one column of the server's `show stat` line (5 scur, 18 status)."""
    return (
        f"echo 'show stat' | socat stdio UNIX-CONNECT:{ADMIN} | "
        f"awk -F, -v b={quote(backend(service))} -v s={quote(host)} '$1==b && $2==s {{print ${column}}}'"
    )


# A server in maintenance (`maintenance enable`, or set by hand) stays there: a rollout neither drains
# it (no request reaches it) nor makes it ready (the maintenance never ends by a rollout).
_UNLESS_MAINT = 'case "$({status})" in MAINT*) exit 0;; esac; '


def drain(service: str, host: str, wait: float) -> Argv:
    """New requests stop going to the instance; then wait (at most `wait` seconds) until the requests
    it is serving are done (its `scur` in `show stat` is 0)."""
    server = f"{backend(service)}/{host}"
    ticks = max(int(wait * 10), 1)
    count = _column(service, host, 5)
    return sh(
        _UNLESS_MAINT.format(status=_column(service, host, 18)) + f"{_told(f'set server {server} state drain')}; "
        f'i=0; while [ $i -lt {ticks} ]; do n=$({count}); [ "${{n:-0}}" = 0 ] && exit 0; sleep 0.1; i=$((i+1)); done'
    )


def ready(service: str, host: str) -> Argv:
    """The instance passed pushorch's gate: HAProxy takes it as healthy and sends it requests now,
    rather than after its own checks' `rise`."""
    server = f"{backend(service)}/{host}"
    told = _told(f"set server {server} health up; set server {server} state ready")
    return sh(_UNLESS_MAINT.format(status=_column(service, host, 18)) + told)


def maintenance(service: str, on: bool) -> Argv:
    """Every server of the service's backend in (`maint`) or out of (`ready`) maintenance: with none
    left, the backend answers 503 with the service's maintenance page. A server the configuration does
    not name yet is set by the next reload's state file."""
    stat = f"echo 'show stat' | socat stdio UNIX-CONNECT:{ADMIN}"
    pick = f"awk -F, -v b={quote(backend(service))} '$1==b && $2!=\"BACKEND\" {{print $2}}'"
    state = "maint" if on else "ready"
    each = _told_word(f'"set server "{quote(backend(service))}"/$s state {state}"')
    return sh(f"servers=$({stat} | {pick}) || exit 1; for s in $servers; do {each}; done")


def show_stat() -> Argv:
    """`show stat`: one CSV line per frontend, backend and server (its status in column 18)."""
    return sh(f"echo 'show stat' | socat stdio UNIX-CONNECT:{ADMIN}")


def parse_stat(csv: str) -> dict[tuple[str, str], str]:
    """(backend, server) -> UP | DOWN | DRAIN | MAINT | ... (HAProxy adds the check's transition: 'UP 1/2')."""
    out = {}
    for line in csv.splitlines():
        fields = line.split(",")
        if len(fields) > 17 and not line.startswith("#") and fields[1] not in ("FRONTEND", "BACKEND"):
            out[(fields[0], fields[1])] = fields[17]
    return out
