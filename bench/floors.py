"""The floors: the least work each SSH library needs to run one command on every host.

asyncssh: connect to all concurrently, run, close. paramiko: one thread per host, same steps.
Usage: python -m bench.floors asyncssh|paramiko HOSTS.json COMMAND...
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any


async def _asyncssh(hosts: list[dict[str, Any]], command: str) -> int:
    import asyncssh

    known = asyncssh.read_known_hosts(hosts[0]["known_hosts"])

    async def one(h: dict[str, Any]) -> int:
        async with asyncssh.connect(
            h["address"], port=h["port"], username=h["user"], client_keys=[h["key"]], known_hosts=known
        ) as conn:
            result = await conn.run(command)
            return 0 if result.exit_status == 0 else 1

    return sum(await asyncio.gather(*(one(h) for h in hosts)))


def _paramiko(hosts: list[dict[str, Any]], command: str) -> int:
    import paramiko

    failures: list[int] = []

    def one(h: dict[str, Any]) -> None:
        client = paramiko.SSHClient()
        client.get_host_keys().load(h["known_hosts"])
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            h["address"],
            port=h["port"],
            username=h["user"],
            key_filename=h["key"],
            look_for_keys=False,
            allow_agent=False,
        )
        _, stdout, _ = client.exec_command(command)
        stdout.read()
        if stdout.channel.recv_exit_status() != 0:
            failures.append(1)
        client.close()

    threads = [threading.Thread(target=one, args=(h,)) for h in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(failures)


def main() -> int:
    kind, path, *command = sys.argv[1:]
    with open(path) as handle:
        hosts = json.load(handle)
    line = " ".join(command)
    failed = asyncio.run(_asyncssh(hosts, line)) if kind == "asyncssh" else _paramiko(hosts, line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
