"""The ingress proxy, HAProxy (pure): the commands that assemble its configuration from the fragments
(commands/haproxy_config.py) and load it, checked first, and move one instance in and out through its
runtime API.

Why HAProxy: its runtime API sets a server drain/ready without a reload, master-worker reloads are
hitless, and Debian ships 2.6. The runtime API is a Unix socket; socat talks to it.
"""

from __future__ import annotations

from pushorch.commands import haproxy_config as config
from pushorch.commands.haproxy_config import (
    CERTS,
    FRAGMENTS,
    Route,
    Server,
    backend,
    certificate_path,
    render,
)
from pushorch.commands.shell import Argv, quote, sh, wait_gone

__all__ = ["CERTS", "FRAGMENTS", "Route", "Server", "backend", "certificate_path", "render"]

CONFIG = "/etc/haproxy/haproxy.cfg"
ADMIN = "/run/haproxy/admin.sock"
MASTER = "/run/haproxy-master.sock"
PIDFILE = "/run/haproxy.pid"
STATE = "/var/lib/haproxy/server-state"
BINARY = "/usr/sbin/haproxy"
SOCAT = "/usr/bin/socat"
STAGING = f"{FRAGMENTS}.new"  # this run's fragments beside the others, until the whole is checked
LOCK = "/run/haproxy/pushorch.lock"  # one writer of the fragments at a time (steps of one run side by side)


def prepare(services: tuple[str, ...], pruned: tuple[str, ...] = ()) -> Argv:
    """A copy of the fragments the host has, for this run's to be written into (STAGING), less this
    run's services' own (a changed path prefix renames a route's fragment) and those of the services
    `--prune` removes (with their certificates)."""
    mine = " ".join(
        f"{STAGING}/r???-{q}.route {STAGING}/{q}.backend {STAGING}/{q}@*.servers {STAGING}/{q}.owner-*"
        for q in map(quote, (*services, *pruned))
    )
    mine += "".join(f" {CERTS}/{quote(s)}.pem" for s in pruned)
    return sh(
        f"rm -rf {STAGING} && mkdir -p {FRAGMENTS} {CERTS} /run/haproxy /var/lib/haproxy && "
        f"cp -a {FRAGMENTS} {STAGING} && chmod 700 {CERTS}" + (f" && rm -f {mine}" if mine else "")
    )


def assemble(systemd: bool) -> Argv:
    """haproxy.cfg from every fragment in STAGING (this run's and those of services it was not given),
    checked (`haproxy -c`) before anything replaces what is loaded: a bad one changes nothing (exit 3
    and HAProxy's reasons). Then the fragments and the file go in place and HAProxy reloads hitlessly
    (USR2, the servers' states saved for the new worker), or starts (Debian's package may have started
    one with its own configuration: that one goes). A reload is done when the old workers are gone."""
    new = f"{CONFIG}.pushorch-new"
    save = f"echo 'show servers state' | socat stdio UNIX-CONNECT:{ADMIN} > {STATE} 2>/dev/null || rm -f {STATE}"
    if systemd:
        load = f"{{ {save}; }}; systemctl enable -q haproxy; systemctl reload-or-restart haproxy"
    else:
        start = f"haproxy -W -D -S {MASTER} -f {CONFIG}"
        running = f'[ -S {MASTER} ] && kill -0 "$(cat {PIDFILE} 2>/dev/null)" 2>/dev/null'
        stale = f'p=$(cat {PIDFILE} 2>/dev/null); [ -n "$p" ] && kill "$p" 2>/dev/null; sleep 0.2; rm -f {MASTER}'
        load = f'if {running}; then {{ {save}; }}; kill -USR2 "$(cat {PIDFILE})"; else {stale}; {start}; fi'
    load = f"{_WORKERS}; {load} || exit $?; {_OLD_GONE}"
    return sh(
        f"exec 9>{LOCK}; flock 9; {_assembled(STAGING, new)} || exit 1; "
        f'if ! out=$(haproxy -c -q -f {new} 2>&1); then rm -rf {new} {STAGING}; echo "$out" >&2; exit 3; fi; '
        f"rm -rf {FRAGMENTS}.old && mv {FRAGMENTS} {FRAGMENTS}.old && mv {STAGING} {FRAGMENTS} && "
        # The lock's descriptor closed for HAProxy: a master that inherits it holds the lock for good.
        f"rm -rf {FRAGMENTS}.old && mv -f {new} {CONFIG} || exit 1; {{ {load}; }} 9>&-"
    )


# A reload returns at once; the old workers serve the old configuration until their connections end.
# The step is done when they are gone (bounded): a step after it (--prune's removal of a service's
# containers) must not meet a worker that still routes to them.
_WORKERS = (
    f"old=$(echo 'show proc' | socat stdio UNIX-CONNECT:{MASTER} 2>/dev/null"
    " | awk '/^# workers/ {w=1; next} /^#/ {w=0} w && $2 == \"worker\" {print $1}')"
)
_OLD_GONE = f"{wait_gone('$old', 10)} || true"


def _assembled(source: str, into: str) -> str:
    """The shell that writes haproxy.cfg from the fragments in `source`: the head, the routes, the 404,
    then each backend followed by its hosts' server files (render() is the same, in Python)."""
    mark = config.HTTPS_MARK.replace(" ", "[ ]")
    return (
        "export LC_ALL=C; "
        f"{{ if ls {CERTS}/*.pem >/dev/null 2>&1; then sed 's/^{mark}//' {source}/{config.HEAD}; "
        f"else cat {source}/{config.HEAD}; fi; "
        f'for f in {source}/*.route; do [ -e "$f" ] && cat "$f"; done; printf %s {quote(config.TAIL)}; '
        f'for f in {source}/*.backend; do [ -e "$f" ] || continue; cat "$f"; '
        f'for g in "${{f%.backend}}"@*.servers; do [ -e "$g" ] && cat "$g"; done; done; }} > {into}'
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


def _column(service: str, server: str, column: int) -> str:
    """A shell command printing one column of the server's `show stat` line (5 scur, 18 status)."""
    return (
        f"echo 'show stat' | socat stdio UNIX-CONNECT:{ADMIN} | "
        f"awk -F, -v b={quote(backend(service))} -v s={quote(server)} '$1==b && $2==s {{print ${column}}}'"
    )


# A server in maintenance (`maintenance enable`, or set by hand) stays there: a rollout neither drains
# it (no request reaches it) nor makes it ready (the maintenance never ends by a rollout).
_UNLESS_MAINT = 'case "$({status})" in MAINT*) exit 0;; esac; '


def drain(service: str, server: str, wait: float) -> Argv:
    """New requests stop going to the instance; then wait (at most `wait` seconds) until the requests
    it is serving are done (its `scur` in `show stat` is 0). A server the proxy does not have (an
    instance no server file named yet) takes no request: nothing to drain."""
    named = f"{backend(service)}/{server}"
    ticks = max(int(wait * 10), 1)
    count = _column(service, server, 5)
    status = _column(service, server, 18)
    return sh(
        f'st=$({status}); [ -z "$st" ] && exit 0; case "$st" in MAINT*) exit 0;; esac; '
        f"{_told(f'set server {named} state drain')}; "
        f'i=0; while [ $i -lt {ticks} ]; do n=$({count}); [ "${{n:-0}}" = 0 ] && exit 0; sleep 0.1; i=$((i+1)); done'
    )


def route(service: str, server: Server, inter: str) -> Argv:
    """The instance passed pushorch's gate: HAProxy takes it as healthy and sends it requests now,
    rather than after its own checks' `rise`. A server the configuration does not name (a Docker-chosen
    port: start-first) is added at runtime first, and the host's server file names it alone from now
    on (haproxy.cfg assembled again and checked, not reloaded), so a later reload or start keeps it."""
    named = f"{backend(service)}/{server.name}"
    others = (
        f"echo 'show stat' | socat stdio UNIX-CONNECT:{ADMIN} | "
        f"awk -F, -v b={quote(backend(service))} -v s={quote(server.name)} "
        "'$1==b && $2!=\"BACKEND\" && $2!=s {print $18}'"
    )
    add = server.added(backend(service), inter)
    file = f"{FRAGMENTS}/{config.servers_name(service, server.host)}"
    new = f"{CONFIG}.pushorch-new"
    return sh(
        f"exec 9>{LOCK}; flock 9; st=$({_column(service, server.name, 18)}); "
        # Added, it is in maintenance; it stays there while the service is (every other server MAINT).
        f'if [ -z "$st" ]; then out=$(echo {quote(add)} | socat stdio UNIX-CONNECT:{ADMIN}); '
        f'case "$out" in *"New server"*) ;; *) echo "$out" >&2; exit 1;; esac; '
        f"{_told(f'enable health {named}')}; o=$({others}); "
        f'if [ -n "$o" ] && ! echo "$o" | grep -qv "^MAINT"; then st=MAINT; fi; fi; '
        f'case "$st" in MAINT*) ;; *) {_told(f"set server {named} health up; set server {named} state ready")};; esac; '
        f"printf %s {quote(server.line())} > {file}.tmp || exit 1; "
        f"if cmp -s {file}.tmp {file}; then rm -f {file}.tmp; exit 0; fi; mv -f {file}.tmp {file} && "
        f"{{ {_assembled(FRAGMENTS, new)}; }} && haproxy -c -q -f {new} && mv -f {new} {CONFIG}"
    )


def remove(service: str, server: str) -> Argv:
    """An instance that stopped after its drain (its host's server file already names the one that
    replaced it): out of the running proxy. One that keeps a connection stays in maintenance until
    the next reload drops it."""
    named = f"{backend(service)}/{server}"
    told = f"set server {named} state maint; shutdown sessions server {named}; del server {named}"
    return sh(f"echo {quote(told)} | socat stdio UNIX-CONNECT:{ADMIN} >/dev/null")


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
    """(backend, host) -> UP | DOWN | DRAIN | MAINT | ... (HAProxy adds the check's transition: 'UP 1/2');
    a host with two servers (a start-first step under way) has both states: 'UP+DRAIN'."""
    out: dict[tuple[str, str], str] = {}
    for line in csv.splitlines():
        fields = line.split(",")
        if len(fields) > 17 and not line.startswith("#") and fields[1] not in ("FRONTEND", "BACKEND"):
            key = (fields[0], config.host_of(fields[1]))
            out[key] = f"{out[key]}+{fields[17]}" if key in out else fields[17]
    return out
