"""The soak's own checks (bench/soak/invariants.py), on what a look returned: no lab needed."""

from __future__ import annotations

import subprocess
from typing import Any

from bench.soak.invariants import _serving, still_left


class _Hosts:
    """Answers `kill -0 PID` as if only the given pids still ran."""

    def __init__(self, alive: set[str]) -> None:
        self.alive = alive

    def sh(self, host: str, script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        pid = script.split()[2]
        return subprocess.CompletedProcess([host], 0 if pid in self.alive else 1, "", "")


def test_a_process_gone_once_the_plan_beside_the_looks_ended_was_that_plan_s_own_probe() -> None:
    # Seed 254786 r110/r291: the `plan` run beside the at-rest looks had a `docker ps` running.
    found = [
        "lab-2: process left: 14096 docker ps -aq --no-trunc --filter label=pushorch.service",
        "lab-3: process left: 777 sleep 30",
        "lab-1: temporary file left: /var/lib/pushorch/x.tmp",
    ]
    world: Any = _Hosts({"777"})
    assert still_left(world, found) == found[1:]


def test_a_slow_health_answer_is_serving_and_a_refused_one_is_not() -> None:
    """Session 35: on a busy machine an instance answered /health after the sampler's 0.4 s, and the
    run was full of `served from 0 hosts` that no instance had caused."""
    import socket
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(0.7)
            self.send_response(200 if self.path == "/health" else 500)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    try:
        assert _serving("127.0.0.1", server.server_address[1])
        assert not _serving("127.0.0.1", closed.getsockname()[1])  # refused: down at once
    finally:
        server.shutdown()
        closed.close()
