"""The faults the soak injects into its own lab, each with its healing. Only lab containers and this
machine's route to them are touched (the network rule); the kernel clock never is (the clock fault
shims the `date` the lock host's shell runs)."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.soak.world import Run, World
from pushorch.commands.shell import wait_gone
from pushorch.lab.faults import start_consul

SAVED = "/run/soak-pushorch-saved"
STATE = "/var/lib/pushorch"
DOCKER_SHIM = """#!/bin/sh
case "$1" in {verb}) echo "$$" >> /run/soak-hung; exec sleep 3600 ;; esac
exec /usr/bin/docker "$@"
"""
SETTLE = 5.0  # seconds a restarted dockerd is given to start what its restart policies bring back
START_DOCKERD = "pgrep -x dockerd >/dev/null || { rm -f /run/docker.pid; dockerd >/var/log/dockerd.log 2>&1 & }"
DATE_SHIM = """#!/bin/sh
if [ "$1" = "+%s" ]; then echo $(( $(/bin/date +%s) + {offset} )); else exec /bin/date "$@"; fi
"""


@dataclass
class Fault:
    """One fault: its kind, the host it hits ('' for none), and how far it takes that host's instances
    out of service (`serving_lost`: the sampler does not count them while the round lasts)."""

    kind: str
    host: str = ""
    detail: str = ""
    serving_lost: bool = False

    def __str__(self) -> str:
        inside = ", ".join(part for part in (self.host, self.detail) if part)
        return f"{self.kind}({inside})" if inside else self.kind


def _install(world: World, host: str, path: str, script: str) -> None:
    world.sh(host, f"cat > {path} <<'EOF'\n{script}EOF\nchmod 755 {path}")


def _docker(*argv: str) -> None:
    subprocess.run(["docker", *argv], capture_output=True, check=False, timeout=120)


def _iptables(action: str, address: str) -> None:
    rule = ["OUTPUT", "-d", address, "-p", "tcp", "--dport", "22", "-j", "DROP"]
    subprocess.run(["iptables", action, *rule], capture_output=True, check=False, timeout=30)


def inject(world: World, fault: Fault, runs: list[Run]) -> None:
    """Do the fault now. `runs`: the controllers of the round (the kill faults' targets)."""
    host, container = fault.host, world.lab.container(fault.host) if fault.host else ""
    if fault.kind == "kill-controller":
        # The first controller still running (of two at once, one may have lost the lock already).
        alive = [run for run in runs if run.proc.poll() is None]
        for run in alive[:1]:
            run.proc.send_signal(signal.SIGKILL)
            run.killed = True
        fault.detail = "" if alive else "every controller had ended"
    elif fault.kind == "pause-host":
        _docker("pause", container)
    elif fault.kind == "restart-host":
        _docker("stop", "-t", "0", container)
        _docker("start", container)
    elif fault.kind == "cut-ssh":
        _iptables("-I", world.hosts[host])
    elif fault.kind == "kill-dockerd":
        world.sh(host, "p=$(pgrep -x dockerd); echo $p > /run/soak-killed-dockerd; kill -9 $p; true")
    elif fault.kind == "registry-down":
        _docker("stop", "-t", "0", world.lab.registry)
    elif fault.kind in ("hang-pull", "hang-run"):
        verb = fault.kind.removeprefix("hang-")
        _install(world, host, "/usr/local/bin/docker", DOCKER_SHIM.format(verb=verb))
    elif fault.kind == "kill-consul":
        world.sh(host, "pkill -f '[c]onsul_standin.py'; true")
    elif fault.kind == "consul-500":
        world.sh(host, "touch /run/consul-standin.fail")
    elif fault.kind == "full-disk":
        world.disk_full_at[host] = time.time()
        world.sh(
            host,
            # The copy may race the run (a file it removes mid-copy fails cp: seed 1 round 198 mounted
            # nothing): the small filesystem goes on whatever the copy says. Filled only once it is
            # there: that round's dd, with no tmpfs under it, filled this machine's whole disk, and
            # every lab host's dockerd met "no space left on device" (round 203's runc error).
            f"mkdir -p {STATE} {SAVED}; cp -a {STATE}/. {SAVED}/ 2>/dev/null; "
            f"mount -t tmpfs -o size=512k tmpfs {STATE} && cp -a {SAVED}/. {STATE}/ ; "
            f"grep -q ' {STATE} tmpfs ' /proc/mounts && dd if=/dev/zero of={STATE}/.soak-fill bs=4k 2>/dev/null; true",
        )
    elif fault.kind == "clock-jump":
        _install(world, host, "/usr/local/bin/date", DATE_SHIM.format(offset=fault.detail))


def in_effect(world: World, fault: Fault, runs: list[Run]) -> bool:
    """Whether the fault injected really holds (the soak's own check: a fault that did not take would
    make every round it is in a pass that tests nothing)."""
    host, container = fault.host, world.lab.container(fault.host) if fault.host else ""
    if fault.kind == "kill-controller":
        return all(run.proc.wait(10) == -signal.SIGKILL for run in runs if run.killed)
    if fault.kind == "pause-host":
        return _inspect(container, "{{.State.Paused}}") == "true"
    if fault.kind == "cut-ssh":
        try:
            socket.create_connection((world.hosts[host], 22), 1).close()
            return False
        except OSError:
            return True
    if fault.kind == "registry-down":
        return _inspect(world.lab.registry, "{{.State.Running}}") == "false"
    probes = {
        # the dockerd killed is gone (a run may start another at once: seed 1 round 222 saw pushorch's
        # own `start docker` step, and counted the fault as one that did not take)
        # A zombie not yet reaped still answers `kill -0` (seed 1 round 1 of a 300-round run, alone):
        # gone or a zombie, within 3 s, counts as killed.
        "kill-dockerd": 'p=$(cat /run/soak-killed-dockerd 2>/dev/null); [ -n "$p" ] || exit 1; ' + wait_gone("$p", 3),
        "hang-pull": "[ $(command -v docker) = /usr/local/bin/docker ]",
        "hang-run": "[ $(command -v docker) = /usr/local/bin/docker ]",
        "kill-consul": "! pgrep -f '[c]onsul_standin.py'",  # [c]: not this sh -c itself
        "consul-500": "[ -e /run/consul-standin.fail ]",
        # the small tmpfs is in place (a write test alone raced the run: a mark it removed made room,
        # seed 254786 round 109, and the full disk was counted as a fault that did not take)
        "full-disk": f"grep -q ' {STATE} tmpfs .*size=512k' /proc/mounts",
        "clock-jump": f"d=$(( $(date +%s) - $(/bin/date +%s) - ({fault.detail or 0}) )); [ ${{d#-}} -le 5 ]",
        "restart-host": "true",
    }
    return world.sh(host, probes[fault.kind]).returncode == 0


def _inspect(container: str, template: str) -> str:
    done = subprocess.run(["docker", "inspect", "-f", template, container], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def heal(world: World, fault: Fault) -> None:
    """Undo the fault; the host is back as `lab up` left it, plus whatever pushorch did to it."""
    host, container = fault.host, world.lab.container(fault.host) if fault.host else ""
    if fault.kind == "pause-host":
        _docker("unpause", container)
    elif fault.kind == "cut-ssh":
        _iptables("-D", world.hosts[host])
    elif fault.kind in ("kill-dockerd", "restart-host"):
        # Restarted cleanly once up, as an operator does after a crash: a dockerd killed mid-`docker
        # run` (by itself, or with its host: `docker stop -t 0` is a power cut) can come back with a
        # host port its allocator holds for nothing, "port is already allocated" until dockerd
        # restarts (moby/moby issue 20486; seed 1 round 35: 21 rounds of it; docs/reliability.md).
        if fault.kind == "kill-dockerd":
            world.sh(host, "rm -f /run/soak-killed-dockerd; " + START_DOCKERD)
        world.wait_ready(host)
        stopped = "pkill -TERM -x dockerd; while pgrep -x dockerd >/dev/null; do sleep 0.2; done; "
        world.sh(host, stopped + START_DOCKERD)
    elif fault.kind == "registry-down":
        _docker("start", world.lab.registry)
    elif fault.kind in ("hang-pull", "hang-run"):
        # The hung commands are the fault's; what pushorch left besides them the invariants judge.
        world.sh(host, "rm -f /usr/local/bin/docker; kill $(cat /run/soak-hung) 2>/dev/null; rm -f /run/soak-hung")
    elif fault.kind == "kill-consul":
        start_consul(world.lab, [host])
    elif fault.kind == "consul-500":
        world.sh(host, "rm -f /run/consul-standin.fail")
    elif fault.kind == "full-disk":
        world.sh(
            host,
            f"rm -f {STATE}/.soak-fill {STATE}/.soak-probe; rm -rf {SAVED} && mkdir -p {SAVED} "
            f"&& cp -a {STATE}/. {SAVED}/ && umount {STATE} && cp -a {SAVED}/. {STATE}/ && rm -rf {SAVED}",
        )
    elif fault.kind == "clock-jump":
        world.sh(host, "rm -f /usr/local/bin/date")
    if host:
        world.wait_ready(host)
    if fault.kind in ("restart-host", "kill-dockerd"):
        # dockerd answers before it has started the containers its restart policies bring back (seed
        # 1 round 22: a reconcile seconds after a host restart saw one still exited, the next one saw
        # it running beside its replacement). A host is healed once that is done.
        time.sleep(SETTLE)


KINDS: dict[str, Callable[[random.Random, World], Fault]] = {
    "kill-controller": lambda r, w: Fault("kill-controller"),
    "pause-host": lambda r, w: Fault("pause-host", r.choice(list(w.hosts)), serving_lost=True),
    "restart-host": lambda r, w: Fault("restart-host", r.choice(list(w.hosts)), serving_lost=True),
    "cut-ssh": lambda r, w: Fault("cut-ssh", r.choice(list(w.hosts))),
    "kill-dockerd": lambda r, w: Fault("kill-dockerd", r.choice(list(w.hosts)), serving_lost=True),
    "registry-down": lambda r, w: Fault("registry-down"),
    "hang-pull": lambda r, w: Fault("hang-pull", r.choice(list(w.hosts))),
    "hang-run": lambda r, w: Fault("hang-run", r.choice(list(w.hosts)), serving_lost=True),
    "kill-consul": lambda r, w: Fault("kill-consul", r.choice(list(w.hosts))),
    "consul-500": lambda r, w: Fault("consul-500", r.choice(list(w.hosts))),
    "full-disk": lambda r, w: Fault("full-disk", r.choice(list(w.hosts))),
    "clock-jump": lambda r, w: Fault("clock-jump", w.lock_host, str(r.choice([-3600, -120, 120, 3600]))),
}
