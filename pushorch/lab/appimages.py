"""The example app images, made FROM scratch with busybox-static (no registry pull, no Dockerfile RUN).

Each serves /health and /version with busybox httpd: demo-app v1 and v2 (healthy), `broken` (no
/health: its health check never passes), `flaky` (healthy for 3 s, then exits), `mute` (runs but
never listens: a tcp check fails), and the seed's nginx-like service on port 80. demo-app-hc v1, v2
and broken carry a Docker HEALTHCHECK (wget /health every second) for the `docker` gate.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from pushorch.lab.shell import LabError, run

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "wget", "cat", "sleep", "httpd", "ls", "echo", "printf")


@dataclass(frozen=True, slots=True)
class App:
    name: str
    port: int
    version: str
    health: bool = True
    crash_after: int | None = None
    listen: bool = True
    healthcheck: bool = False  # a Docker HEALTHCHECK in the image


APPS = (
    App("pushorch/demo-app:v1", 8080, "v1"),
    App("pushorch/demo-app:v2", 8080, "v2"),
    App("pushorch/demo-app:broken", 8080, "broken", health=False),
    App("pushorch/demo-app:flaky", 8080, "flaky", crash_after=3),
    App("pushorch/demo-app:mute", 8080, "mute", listen=False),
    App("pushorch/demo-app-hc:v1", 8080, "v1", healthcheck=True),
    App("pushorch/demo-app-hc:v2", 8080, "v2", healthcheck=True),
    App("pushorch/demo-app-hc:broken", 8080, "broken", health=False, healthcheck=True),
    App("pushorch/nginx-seed:1.14.2", 80, "1.14.2"),
    App("pushorch/nginx-seed:1.16.1", 80, "1.16.1"),  # the seed's Deployment with a changed image tag
)


def _start_script(app: App) -> str:
    # PID 1 ignores SIGTERM unless it traps it: without the trap every `docker stop` waits its timeout.
    daemon = f"/bin/busybox httpd -f -p {app.port} -h /www" if app.listen else "/bin/busybox sleep 2147483647"
    serve = f"{daemon} &\nserver=$!\ntrap 'kill $server; exit 0' TERM INT\n"
    if app.crash_after is None:
        return serve + "wait $server\n"
    # Turns healthy, then dies inside min_healthy_time: a gate must catch it.
    return serve + f"sleep {app.crash_after}\nexit 1\n"


# /cgi-bin/slow answers after 0.3 s: a request in flight when its instance stops (the ingress drain waits
# for such requests to end; without it the proxy answers 502: tests/test_lab_ingress.py).
SLOW_CGI = '#!/bin/sh\nsleep 0.3\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\ncat /www/version\n'


def recipe_digest() -> str:
    """Changes whenever what the images hold changes, so `lab up` rebuilds them."""
    recipe = "|".join(f"{app}:{_start_script(app)}" for app in APPS) + SLOW_CGI
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def in_registry(registry: str) -> bool:
    """Whether every app image's tag is in the registry (its HTTP API, on the controller's loopback)."""
    for app in APPS:
        repository, _, tag = app.name.partition(":")
        try:
            with urllib.request.urlopen(f"http://{registry}/v2/{repository}/tags/list", timeout=5) as reply:
                tags = json.load(reply).get("tags") or []
        except (OSError, ValueError):
            return False
        if tag not in tags:
            return False
    return True


def build_and_push(registry: str, say: Callable[[str], None]) -> list[str]:
    """Build every app image with the controller's dockerd and push it to registry (host:port)."""
    if not os.path.exists(BUSYBOX):
        raise LabError(f"app images: {BUSYBOX} not found (install busybox-static)")
    pushed = []
    for app in APPS:
        tag = f"{registry}/{app.name}"
        say(f"app images: {app.name}")
        with tempfile.TemporaryDirectory(prefix="pushorch-app-") as root:
            os.makedirs(f"{root}/bin")
            os.makedirs(f"{root}/www")
            os.makedirs(f"{root}/tmp")
            shutil.copy(BUSYBOX, f"{root}/bin/busybox")
            for applet in APPLETS:
                os.symlink("busybox", f"{root}/bin/{applet}")
            with open(f"{root}/www/version", "w") as handle:
                handle.write(f"{app.version}\n")
            with open(f"{root}/www/index.html", "w") as handle:
                handle.write(f"<h1>{app.name}</h1>\n")
            if app.health:
                with open(f"{root}/www/health", "w") as handle:
                    handle.write("ok\n")
            os.makedirs(f"{root}/www/cgi-bin")
            with open(f"{root}/www/cgi-bin/slow", "w") as handle:
                handle.write(SLOW_CGI)
            os.chmod(f"{root}/www/cgi-bin/slow", 0o755)
            with open(f"{root}/start", "w") as handle:
                handle.write(_start_script(app))
            changes = [
                'CMD ["/bin/busybox", "sh", "/start"]',
                f"EXPOSE {app.port}",
                f"LABEL org.opencontainers.image.version={app.version}",
            ]
            if app.healthcheck:
                probe = f'"/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:{app.port}/health"'
                changes.append(f"HEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD [{probe}]")
            importer = shlex.join(["docker", "import", *(a for c in changes for a in ("--change", c)), "-", tag])
            tar = shlex.join(["tar", "-C", root, "--numeric-owner", "-c", "."])
            run(f"app images: import {app.name}", ["bash", "-o", "pipefail", "-c", f"{tar} | {importer}"])
        run(f"app images: push {tag}", ["docker", "push", tag])
        pushed.append(app.name)
    return pushed
