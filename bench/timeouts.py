"""Benchmark: how long the failure paths take to report, per transport (what the tests no longer time).

A command past its timeout (0.5 s), a closed port, and a port that accepts TCP but never speaks SSH
(connect timeout 1 s), each against a loopback sshd of the tests' harness. Medians of `--runs`.
Writes the table into docs/performance.md between the `timeouts` markers.

    .venv/bin/python -m bench.timeouts --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.fanout import write_doc
from pushorch.connection import ConnectionSettings
from pushorch.errors import PushorchError
from pushorch.transport import open_transport
from tests.harness.sshd import Sshd


async def _timed(attempt: Callable[[], Awaitable[object]]) -> float:
    started = time.monotonic()
    with contextlib.suppress(PushorchError):
        await attempt()
    return time.monotonic() - started


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.1.1", 0))
        return int(probe.getsockname()[1])


async def _cases(server: Sshd, kind: str) -> dict[str, float]:
    settings = ConnectionSettings(
        name="h1",
        address=server.addresses[0],
        port=server.port,
        user="root",
        key_files=(str(server.client_key),),
        known_hosts=str(server.known_hosts),
        transport=kind,
    )
    transport = open_transport(settings)
    await transport.connect()
    try:
        timeout = await _timed(lambda: transport.run(["sleep", "30"], timeout=0.5))
    finally:
        await transport.close()
    closed = ConnectionSettings(name="closed", address="127.0.1.1", port=_free_port(), transport=kind)
    refused = await _timed(lambda: open_transport(closed).connect())
    silent = socket.create_server(("127.0.1.1", 0))
    try:
        mute = ConnectionSettings(
            name="mute", address="127.0.1.1", port=silent.getsockname()[1], connect_timeout=1.0, transport=kind
        )
        quiet = await _timed(lambda: open_transport(mute).connect())
    finally:
        silent.close()
    return {"command timeout 0.5 s": timeout, "closed port": refused, "silent port, -T 1": quiet}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pushorch-bench-") as tmp:
        server = Sshd(Path(tmp), 1).start()
        try:
            rows = []
            for kind in ("asyncssh", "paramiko"):
                runs = [asyncio.run(_cases(server, kind)) for _ in range(args.runs)]
                for case in runs[0]:
                    rows.append(f"| {kind} | {case} | {statistics.median(r[case] for r in runs):.2f} s |")
        finally:
            server.stop()
    table = "\n".join(
        [
            f"Time to report a failure, loopback sshd, median of {args.runs}. `python -m bench.timeouts`.",
            "",
            "| transport | case | reported after |",
            "|---|---|---|",
            *rows,
        ]
    )
    print(table)
    if not args.no_write:
        write_doc(table, "timeouts")


if __name__ == "__main__":
    main()
